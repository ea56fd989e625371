//! One event as the operator sees it: `GET /v1/events/{id}`, an intake's
//! answer, and the dashboard's event page.

use serde::{Deserialize, Serialize};
use yunxin_edge::delivery::Status;
use yunxin_edge_routes::storm::Disposition;

use crate::AttemptRow;

/// An event's per-receiver status, from its record: the core's [`Status`]
/// beside the event's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStatus {
    /// The `webhook-id`.
    pub event_id: String,
    /// Number of Yunxin calls planned.
    pub requests: usize,
    /// When the event was accepted (UNIX ms).
    pub created_at_ms: u64,
    /// Each receiver's fate so far, and where the delivery stands.
    #[serde(flatten)]
    pub status: Status,
    /// Calls that went to the dead-letter queue.
    pub dead_lettered_requests: Vec<usize>,
    /// Where to ask again, in an intake's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

/// `GET /v1/events/{id}`: the record's status with what the index adds,
/// the route it came by and every attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventDetail {
    /// The record's status.
    #[serde(flatten)]
    pub event: EventStatus,
    /// The webhook route it came by; `None`: `/v1/notifications` (or the
    /// index did not answer).
    pub route: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRow>,
    /// What the route's throttle made of it, when it held some receivers
    /// back (`throttled`, each with when its throttle opens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// For a digest: the ids of the events it carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digest_of: Vec<String>,
}

/// `GET /v1/events/{id}` of a route's event that was accepted and held by
/// the route's silences or storm settings: nothing was sent for it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEvent {
    /// The event's id.
    pub event_id: String,
    /// The route it came by.
    pub route: String,
    /// Always `held`.
    pub state: Held,
    /// What became of it: silenced (by which silence), dropped or deferred
    /// (by which quiet hours), digested (into which digest), throttled.
    pub disposition: Disposition,
    /// For a digested event: its digest's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_status_url: Option<String>,
}

/// The state of a [`HeldEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Accepted, nothing sent now.
    Held,
}

/// What `GET /v1/events/{id}` answers: an event that is being or was sent,
/// or one held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventView {
    /// Sent, or being sent.
    Sent(Box<EventDetail>),
    /// Held by the route's silences or storm settings.
    Held(Box<HeldEvent>),
}
