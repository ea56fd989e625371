//! One event as the operator sees it: `GET /v1/events/{id}`, an intake's
//! answer, and the dashboard's event page.

use serde::{Deserialize, Serialize};
use yunxin_edge::delivery::Status;

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
}
