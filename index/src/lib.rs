//! The operator's view of events, written once: what the Worker tells its
//! event index of every change ([`Entry`]), what it asks it ([`Command`]),
//! and the answers, which are also the bodies of the JSON API
//! (`GET /v1/events`, `GET /v1/events/{id}`, `GET /v1/stats`) and what the
//! dashboard and `/metrics` render ([`Page`], [`EventDetail`], [`Stats`]).
//!
//! The index itself is a SQLite Durable Object in the Worker
//! (`worker/src/index`); this crate holds no I/O, so the dashboard's
//! rendering (`dashboard/`) is tested natively on the same types.

#![warn(missing_docs)]

mod stats;
mod view;

pub use stats::{Counter, EndpointHealth, Histogram, Minute, Stats};
pub use view::{EventDetail, EventStatus, EventView, Held, HeldEvent};

use serde::{Deserialize, Serialize};
use yunxin_edge::{Counts, DeliveryState};

/// The binding of the index's namespace.
pub const BINDING: &str = "INDEX";
/// The one object's name.
pub const NAME: &str = "index";
/// The most events a page lists.
pub const MAX_PAGE: usize = 100;

/// What the index is asked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Take these changes, in order. Answer: `bool`.
    Log(Vec<Entry>),
    /// A page of events. Answer: [`Page`].
    List(Query),
    /// An event's route and attempts. Answer: `Option<Detail>`.
    Detail(String),
    /// Counters, histograms and upstream calls per minute. Answer: [`Stats`].
    Stats {
        /// `YUNXIN_RATE_PER_MINUTE`, drawn against the calls.
        rate_per_minute: u32,
    },
}

/// One change, as the record that made it tells it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// An event was recorded.
    Accepted {
        /// Its id.
        event_id: String,
        /// The webhook route it came by; `None`: `/v1/notifications`.
        route: Option<String>,
        /// Calls planned.
        requests: usize,
        /// Its receivers.
        counts: Counts,
        /// The record's version.
        version: u64,
        /// When the record was made (UNIX ms; 0: when the index hears of
        /// it). Entries are written in batches, so the index's own clock
        /// would give a batch's events one time and lose their order.
        #[serde(default)]
        created_ms: u64,
    },
    /// A request was refused with `status`.
    Rejected {
        /// The webhook route; `None`: `/v1/notifications`.
        route: Option<String>,
        /// The HTTP status answered.
        status: u16,
    },
    /// An attempt has its outcome.
    Attempt {
        /// The event's id.
        event_id: String,
        /// The attempt.
        attempt: AttemptRow,
        /// Whether the call goes again.
        retried: bool,
        /// The event's receivers after it.
        counts: Counts,
        /// The record's version.
        version: u64,
    },
    /// The event's receivers changed otherwise: a call was dead-lettered, or
    /// failures were replayed.
    Changed {
        /// The event's id.
        event_id: String,
        /// Its receivers now.
        counts: Counts,
        /// The record's version.
        version: u64,
        /// A call went to the dead-letter queue.
        dead_lettered: bool,
        /// Receivers sent again by a replay.
        replayed: usize,
    },
    /// A route's event was held by its silences or storm settings (all of
    /// it, or the receivers over its throttle).
    Held {
        /// The route.
        route: String,
        /// `silenced`, `deferred`, `dropped`, `digested` or `throttled`.
        disposition: String,
        /// Receivers held back by the throttle.
        throttled: usize,
    },
    /// A measured wait: how long a queue message waited for its consumer
    /// (`queue_lag`), or an attempt for its pacing slot (`pacer_wait`).
    Waited {
        /// `queue_lag` or `pacer_wait`.
        what: Wait,
        /// How long, in ms.
        ms: u64,
    },
}

/// The waits the index measures.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// From enqueue to the consumer.
    QueueLag,
    /// From the consumer to the attempt's pacing slot.
    PacerWait,
}

/// One attempt, as the timeline shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRow {
    /// The call's index.
    pub call: usize,
    /// The attempt's number within the call.
    pub attempt: u32,
    /// Yunxin's de-duplication key.
    pub trace_id: String,
    /// The base URL it went to.
    pub endpoint: String,
    /// When it was sent (UNIX ms).
    pub started_at_ms: u64,
    /// How long until its answer (or until it was given up).
    pub latency_ms: u64,
    /// The HTTP status of the answer, if one came.
    pub http_status: Option<u16>,
    /// Yunxin's code, when it answered.
    pub code: Option<i64>,
    /// `delivered`, `partial`, `rejected`, `rate_limited`, `transport` or `answer_lost`.
    pub outcome: String,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Whether the outcome counts against the endpoint (the core's
    /// `Outcome::is_endpoint_failure`: no connection, a lost answer, a 5xx).
    #[serde(default)]
    pub endpoint_failure: bool,
}

/// The cursor after `listed`, the last event of a page:
/// `{created_at_ms}.{event_id}`.
pub fn cursor_after(listed: &Listed) -> String {
    format!("{}.{}", listed.created_at_ms, listed.event_id)
}

/// The time and event id a cursor names, if it is one [`cursor_after`]
/// made.
///
/// ```
/// use yunxin_edge_index::parse_cursor;
/// assert_eq!(parse_cursor("1796000000000.evt.1"), Some((1796000000000, "evt.1")));
/// assert_eq!(parse_cursor("latest"), None);
/// assert_eq!(parse_cursor("12.has space"), None);
/// ```
pub fn parse_cursor(cursor: &str) -> Option<(u64, &str)> {
    let (created, id) = cursor.split_once('.')?;
    let fine = !created.is_empty()
        && created.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && id.len() <= 256
        && id.bytes().all(|b| b.is_ascii_graphic());
    fine.then_some((created.parse().ok()?, id))
}

/// Which events to list.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Query {
    /// Only events in this state.
    pub state: Option<DeliveryState>,
    /// Only events of this route (`-`: `/v1/notifications`).
    pub route: Option<String>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// After this cursor (a previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// A page of events, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Page {
    /// The events.
    pub events: Vec<Listed>,
    /// Where the next page starts; `None`: this is the last.
    pub next_cursor: Option<String>,
}

/// One event in a list.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listed {
    /// Its id.
    pub event_id: String,
    /// The webhook route it came by.
    pub route: Option<String>,
    /// When it was accepted (UNIX ms).
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
    /// Where it stands.
    pub state: DeliveryState,
    /// Calls planned.
    pub requests: usize,
    /// Receivers per outcome.
    pub receivers: Receivers,
}

/// Receivers per outcome, in a list.
#[derive(Debug, Serialize, Deserialize)]
pub struct Receivers {
    /// All of them, repeats included.
    pub total: usize,
    /// Notified.
    pub delivered: usize,
    /// Not notified.
    pub failed: usize,
    /// Perhaps notified.
    pub unknown: usize,
    /// Still waiting.
    pub pending: usize,
}

/// What the index knows of one event beyond its record.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Detail {
    /// The webhook route it came by.
    pub route: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRow>,
}
