//! What the hooks Worker answers the relay for one webhook request.
//!
//! The template engine is most of a route's code, so it runs in a Worker of
//! its own (`hooks/`): the relay, which every notification goes through,
//! stays small and starts fast. The relay forwards `POST /v1/hooks/{route}`
//! as received (headers and the bounded body) over a service binding and
//! reads back one [`HookAnswer`] as JSON; idempotency, planning, delivery
//! and status stay with the relay.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RouteError;
use crate::render::Rendered;

/// The hooks Worker's verdict on one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HookAnswer {
    /// Verified and rendered: deliver this.
    Notification {
        /// The event id: route and idempotency key, visible ASCII.
        event_id: String,
        /// The rendered notification, in Yunxin's batch JSON; the relay
        /// parses it again with the core (it trusts no other Worker's JSON).
        notification: Value,
    },
    /// The route's filter said no: nothing is sent.
    Skipped {
        /// Why, for the answer.
        reason: String,
    },
    /// Refused or misconfigured: the relay answers `status` and `error` as
    /// they are ([`RouteError::status`], [`RouteError::to_json`]).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The answer's `error` object.
        error: Value,
    },
}

impl From<Rendered> for HookAnswer {
    fn from(rendered: Rendered) -> Self {
        match rendered {
            Rendered::Skipped { reason } => HookAnswer::Skipped { reason },
            Rendered::Notification { json, event_id, .. } => HookAnswer::Notification {
                event_id,
                notification: json,
            },
        }
    }
}

impl From<&RouteError> for HookAnswer {
    fn from(error: &RouteError) -> Self {
        HookAnswer::Refused {
            status: error.status(),
            error: error.to_json(),
        }
    }
}
