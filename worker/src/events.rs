//! The record of each accepted event, holding its [`Delivery`], in one of
//! [`SHARDS`] Durable Objects chosen by its `webhook-id` ([`shard_of`]).
//!
//! Why a Durable Object and not KV: idempotency needs "create if absent" to be
//! atomic. KV is eventually consistent, so the same webhook delivered twice,
//! to two locations or within a minute, could read "absent" twice and be
//! enqueued twice. A Durable Object runs every request for one id in one
//! place, one at a time, over strongly consistent storage; its SQLite storage
//! is synchronous, so a command reads, decides and writes without yielding.
//!
//! Storage: an event's row holds what never changes (the body's hash, the
//! delivery's [`DeliveryHead`](yunxin_edge::DeliveryHead)) beside the few
//! fields that change with the event; each call has a row of its own, so a
//! command rewrites the calls it changed, not every receiver.
//!
//! The object speaks a typed protocol ([`Command`] in, one answer type per
//! command out, JSON over the stub's `fetch`). It does no delivery itself:
//! the queue consumer asks it what to do for a call ([`Command::Begin`]) and
//! reports back ([`Command::Record`]); the core's [`Delivery`] decides. A
//! watchdog alarm re-enqueues calls whose queue message was lost, including
//! every call of an event whose intake died between recording and
//! enqueueing, so that nothing acknowledged with 202 is dropped. Re-sending
//! is safe: the trace id makes Yunxin take each call once, and the delivery
//! ignores a report for an attempt that is not in flight.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State, Stub,
    console_log, durable_object,
};
use yunxin_edge::{
    Attempt, AttemptId, AttemptOutcome, CallAction, Delivery, Outcome, Recorded, Replay,
};

use crate::{body, rpc};
use crate::{index, task};

/// The binding of the namespace.
pub const BINDING: &str = "EVENTS";
/// How long a `webhook-id` is remembered.
const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// A call overdue for this long is re-enqueued (`WATCHDOG_SECS`, default 600).
const DEFAULT_WATCHDOG_SECS: u64 = 600;
/// An intake that recorded the event but never confirmed the enqueue is
/// presumed dead after this long (or the watchdog period, if shorter): the
/// watchdog enqueues in its place. Should the intake still be alive, its
/// messages only duplicate the watchdog's, which the delivery shrugs off.
const INTAKE_GRACE_MS: u64 = 30_000;

/// A command about one event, as the object receives it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The event's `webhook-id`.
    pub event_id: String,
    /// What to do.
    pub command: Command,
}

/// What the object is asked about one event.
#[derive(Debug, Serialize, Deserialize)]
// Externally tagged (`{"begin": {…}}`): an internally tagged enum would be
// buffered before it is read, which builds the `Delivery` deserializer twice
// (~15 KB of the bundle).
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Record a new event unless its id is known. Answer: [`Created`].
    Create {
        /// Hex SHA-256 of the event's body.
        body_sha256: String,
        /// The delivery to keep, none of it sent yet.
        delivery: Box<Delivery>,
        /// Calls to [`Command::Begin`] at once if the event is new (the
        /// synchronous path's first calls: one round trip instead of two).
        #[serde(default)]
        begin: Vec<usize>,
        /// The webhook route it came by, for the index; `None`:
        /// `/v1/notifications`.
        #[serde(default)]
        route: Option<String>,
        /// The queued intake: the object enqueues every call itself, so the
        /// intake makes one round trip. A failed enqueue is the watchdog's,
        /// as when an intake dies.
        #[serde(default)]
        enqueue: bool,
    },
    /// Every call is enqueued. Answer: `Option<EventStatus>`, the event's
    /// status when `status` is asked (the synchronous path answers it; one
    /// round trip instead of two), else `None`.
    MarkEnqueued {
        /// Whether to answer the status.
        status: bool,
    },
    /// The event's status. Answer: `Option<EventStatus>`.
    Status,
    /// What to do now for some calls. Answer: one [`Step`] per call, in order.
    Begin {
        /// The calls' indices: a queue batch asks for all its calls of one
        /// event at once, so the record is written once for them.
        calls: Vec<usize>,
    },
    /// An attempt handed out by `Begin` was not sent (no send slot soon
    /// enough): it does not count. Answer: `bool`.
    Release {
        /// The attempt.
        attempt: AttemptId,
        /// When the call may start again (UNIX ms).
        at_ms: u64,
    },
    /// What became of an attempt. Answer: [`Recorded`].
    Record {
        /// The synchronous path's report: once every call is finished, the
        /// object marks the event settled (nothing for the queue) and
        /// answers its status, in this one round trip.
        #[serde(default)]
        finish: bool,
        /// The attempt.
        attempt: AttemptId,
        /// Its outcome.
        outcome: AttemptOutcome,
        /// How it went out, for the index's timeline.
        #[serde(default)]
        sent: Option<Sent>,
    },
    /// Send failed receivers again ([`Delivery::replay`]) and enqueue their
    /// calls. Answer: `Option<Replay>` (`None`: no such event).
    Retry {
        /// Every failed receiver, not only the retryable ones.
        all: bool,
        /// Unknown receivers too, under the trace id they were last sent
        /// with (`Delivery::replay_unknown`).
        #[serde(default)]
        unknown: bool,
    },
    /// Take over an event kept by an object of its own before the shards
    /// ([`Legacy`]), unless it is known. Answer: `bool`, whether adopted.
    Adopt {
        /// The event as that object kept it.
        record: Box<Legacy>,
    },
    /// The dead-letter queue received this call. Answer: `bool`.
    DeadLettered {
        /// The call's index.
        call: usize,
        /// Why, for a call the delivery had not finished itself.
        reason: String,
        /// The message's replay round: one from before the latest replay
        /// is about a call since reopened, and is ignored.
        #[serde(default)]
        round: u32,
    },
}

/// How an attempt went out: what the index's timeline shows beside the
/// outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    /// Its trace id.
    pub trace_id: String,
    /// The endpoint it went to.
    pub endpoint: String,
    /// When it left (UNIX ms).
    pub started_at_ms: u64,
    /// How long until its outcome.
    pub latency_ms: u64,
    /// The HTTP status of the answer, if one came.
    #[serde(default)]
    pub http_status: Option<u16>,
}

/// The answer to [`Command::Record`]: what the delivery made of the outcome,
/// and the index's entry for it. The caller writes the entries of its whole
/// batch to the index at once ([`index::Batch`]): at thousands of calls a
/// minute, one index request per call would cost the quota's pace.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordedWith {
    /// What the delivery made of it.
    pub recorded: Recorded,
    /// The index's entry, as JSON (none for a stale report).
    pub index: Option<Box<serde_json::value::RawValue>>,
    /// With `finish`, once every call is finished: the event's status.
    #[serde(default)]
    pub status: Option<Box<EventStatus>>,
}

/// The answer to [`Command::Create`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    /// Recorded now: the caller enqueues it.
    New {
        /// The steps of the calls asked to begin, in order.
        steps: Vec<Step>,
        /// The index's entry for the new event, for the caller to write
        /// with others ([`index::defer`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<Box<serde_json::value::RawValue>>,
    },
    /// Known, with the same body: a re-delivery.
    Known,
    /// Known, with another body: not the same event.
    Conflict,
}

/// The answer to [`Command::Begin`]: the core's [`CallAction`], over the wire.
#[derive(Debug, Serialize, Deserialize)]
// Externally tagged, as `Command` (an `Attempt` read once, not buffered first).
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Sign and send this attempt, then record it.
    Send {
        /// The attempt.
        attempt: Attempt,
    },
    /// Nothing to do before `until_ms`: an attempt is due then, or one in
    /// flight elsewhere is presumed lost then.
    Later {
        /// When to look again (UNIX ms).
        until_ms: u64,
    },
    /// The call is finished, or the event is unknown (forgotten).
    Done,
}

/// The per-receiver status of an event, as `GET /v1/events/{id}` shows it.
pub use yunxin_edge_index::EventStatus;

/// An event as releases before the shards kept it: one object per event,
/// one JSON row in its table `record`. At that object's next alarm it hands
/// the event to its shard ([`Command::Adopt`]) and deletes itself, so an
/// upgrade loses no event in flight; until then the shard does not know it
/// (its status is a 404, its queue messages find nothing to do, and the
/// shard's watchdog re-enqueues its overdue calls once adopted).
#[derive(Debug, Serialize, Deserialize)]
pub struct Legacy {
    event_id: String,
    body_sha256: String,
    created_ms: u64,
    enqueued: bool,
    dead_lettered: Vec<usize>,
    #[serde(default)]
    replayed_ms: u64,
    #[serde(default)]
    replays: u32,
    #[serde(default)]
    version: u64,
    delivery: Delivery,
}

/// How many objects hold the events. An event's object is chosen by a hash
/// of its id ([`shard_of`]), so this number is part of where every stored
/// event lives: **never change it on a deployment with events**, or their
/// status and their watchdog are lost.
///
/// Why shards and not one object per event: an object is created, its
/// SQLite database opened and its alarm set for each new id, which in
/// workerd costs ~4 ms of CPU per event against ~0.3 ms for a request to an
/// object already running (BENCHMARKS.md, issue 20). 32 objects take
/// thousands of events a second between them, far above any app's quota.
pub const SHARDS: u64 = 32;

/// The name of the object that holds `event_id`: a stable hash (the first
/// eight bytes of its SHA-256), not the std hasher, whose output may change
/// between Rust releases.
pub fn shard_of(event_id: &str) -> String {
    let digest = Sha256::digest(event_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("events-{}", u64::from_be_bytes(first) % SHARDS)
}

/// What changes with the event rather than with one call: kept as JSON in
/// the event's row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Meta {
    dead_lettered: Vec<usize>,
    /// How many replays reopened calls: the round of their messages.
    replays: u32,
    /// The row's part of the event's version ([`Event::version`]).
    version: u64,
}

/// One event as the object works on it: its row, and its delivery made of
/// the head (written once) and one row per call.
struct Event {
    event_id: String,
    body_sha256: String,
    created_ms: u64,
    /// When the event was accepted, or its failures last replayed: what the
    /// intake grace and the idempotency window count from.
    since_ms: u64,
    enqueued: bool,
    meta: Meta,
    delivery: Delivery,
    /// What storage holds, to write only what a command changed.
    stored: Stored,
}

/// The stored copy of an event's changing parts.
#[derive(Default)]
struct Stored {
    since_ms: u64,
    enqueued: bool,
    meta: Meta,
    /// Each call's state as stored (JSON), and its version.
    calls: Vec<(String, u64)>,
}

impl Event {
    /// A new event accepted at `now`, nothing stored yet.
    fn new(id: &str, body_sha256: String, now: u64, delivery: Delivery) -> Self {
        Event {
            event_id: id.to_owned(),
            body_sha256,
            created_ms: now,
            since_ms: now,
            enqueued: false,
            meta: Meta {
                version: 1,
                ..Meta::default()
            },
            delivery,
            stored: Stored::default(),
        }
    }

    /// Bumped at every change told to the index, which keeps the newest:
    /// the row's part plus each call's. Every write bumps one of them, so a
    /// command that rewrites one call's row leaves the others untouched.
    fn version(&self) -> u64 {
        self.meta.version + self.stored.calls.iter().map(|(_, v)| v).sum::<u64>()
    }

    /// The index's entry for an attempt's outcome (`retried`: the call goes
    /// again); its version is stamped once the change is written.
    fn attempted(&self, attempt: index::AttemptRow, retried: bool) -> index::Entry {
        index::Entry::Attempt {
            event_id: self.event_id.clone(),
            attempt,
            retried,
            counts: self.delivery.counts(),
            version: 0,
        }
    }

    /// The index's entry for a change that is not an attempt: a call
    /// dead-lettered, or receivers replayed.
    fn changed(&mut self, dead_lettered: bool, replayed: usize) -> index::Entry {
        self.meta.version += 1;
        index::Entry::Changed {
            event_id: self.event_id.clone(),
            counts: self.delivery.counts(),
            version: 0,
            dead_lettered,
            replayed,
        }
    }

    /// Whether the watchdog need not enqueue it for a dead intake.
    fn handed_over(&self) -> bool {
        self.enqueued || self.delivery.is_done()
    }

    /// Roughly what it holds in memory, to bound the cache.
    fn size(&self) -> usize {
        self.stored.calls.iter().map(|(json, _)| json.len()).sum()
    }
}

/// Stamps an entry with the version of the change that made it.
fn stamped(mut entry: index::Entry, at: u64) -> index::Entry {
    match &mut entry {
        index::Entry::Accepted { version, .. }
        | index::Entry::Attempt { version, .. }
        | index::Entry::Changed { version, .. } => *version = at,
        _ => {}
    }
    entry
}

/// Events kept parsed between commands, at most this many bytes of call
/// state: the synchronous path's two commands, and a queue batch's calls
/// of one event, find it without reading storage again.
const CACHE_BYTES: usize = 4 << 20;

/// The Durable Object class: one of [`SHARDS`] objects, each holding the
/// events whose id hashes to it.
#[durable_object]
pub struct EventStore {
    state: State,
    env: Env,
    /// Recently used events, newest last. SQLite storage is the truth:
    /// every change is written before it is answered, and a failed write
    /// drops the copy.
    cache: RefCell<VecDeque<Event>>,
    /// Whether the tables exist (made once per life of the object).
    schema: Cell<bool>,
    /// Events recorded but not yet handed to the queue nor finished, and
    /// when the watchdog looks at them; `None` until read from storage
    /// after a restart.
    unconfirmed: RefCell<Option<HashMap<String, u64>>>,
    /// When the alarm is set for, as far as this life of the object knows.
    alarm_at: Cell<Option<u64>>,
    /// When the watchdog last looked at every open call (0: not in this life).
    swept_ms: Cell<u64>,
    /// SQLite rows written (SQLite's own count) by the commands running, by
    /// event: answered in the [`ROWS_WRITTEN`] header, what a change to the
    /// storage costs. Kept by event, not as one count, because commands for
    /// other events run while one awaits (its enqueue, its alarm).
    rows_written: RefCell<HashMap<String, u64>>,
}

/// The header in which the object answers the SQLite rows its command wrote.
pub const ROWS_WRITTEN: &str = "x-rows-written";

fn now_ms() -> u64 {
    Date::now().as_millis()
}

impl DurableObject for EventStore {
    fn new(state: State, env: Env) -> Self {
        EventStore {
            state,
            env,
            cache: RefCell::new(VecDeque::new()),
            schema: Cell::new(false),
            unconfirmed: RefCell::new(None),
            alarm_at: Cell::new(None),
            swept_ms: Cell::new(0),
            rows_written: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // serde_json over the text, not `req.json()` (serde_wasm_bindgen over
        // a JS object): the same parser as the sender's, and exact integers.
        let Envelope { event_id, command } = serde_json::from_str(&req.text().await?)?;
        self.rows_written.borrow_mut().insert(event_id.clone(), 0);
        let answered = self.command(&event_id, command).await;
        let rows = self.rows_written.borrow_mut().remove(&event_id);
        let mut response = answered?;
        response
            .headers_mut()
            .set(ROWS_WRITTEN, &rows.unwrap_or(0).to_string())?;
        Ok(response)
    }

    async fn alarm(&self) -> Result<Response> {
        crate::meter::add(|m| m.do_requests += 1);
        self.alarm_at.set(None);
        if let Some(legacy) = self.legacy()? {
            return self.hand_to_shard(legacy).await;
        }
        self.watchdog().await
    }
}

impl EventStore {
    /// Runs one command.
    async fn command(&self, id: &str, command: Command) -> Result<Response> {
        let now = now_ms();
        match command {
            Command::Create {
                body_sha256,
                delivery,
                begin,
                route,
                enqueue,
            } => {
                let created = self
                    .create(id, body_sha256, *delivery, &begin, route, enqueue, now)
                    .await?;
                if enqueue && matches!(created, Created::New { .. }) {
                    self.enqueue_all(id).await;
                }
                Response::from_json(&created)
            }
            Command::MarkEnqueued { status: asked } => {
                let answer = self.update(id, |e| {
                    e.enqueued = true;
                    asked.then(|| status(e))
                })?;
                Response::from_json(&answer.flatten())
            }
            Command::Status => Response::from_json(&self.read(id, status)?),
            Command::Begin { calls } => {
                let mut steps: Vec<Step> = self
                    .update(id, |e| {
                        calls
                            .iter()
                            .map(|call| begin(&mut e.delivery, *call, now))
                            .collect()
                    })?
                    .unwrap_or_default();
                // An unknown event: every call is done (forgotten).
                steps.resize_with(calls.len(), || Step::Done);
                Response::from_json(&steps)
            }
            Command::Release { attempt, at_ms } => {
                let released = self.update(id, |e| e.delivery.release(attempt, at_ms))?;
                Response::from_json(&released.unwrap_or(false))
            }
            Command::Record {
                finish,
                attempt,
                outcome,
                sent,
            } => {
                let row = sent.map(|sent| attempt_row(attempt, &outcome, sent));
                let answer = self.update_told(id, |e| {
                    let recorded = e.delivery.record(attempt, outcome, now);
                    let entry = match (row, recorded == Recorded::Stale) {
                        (Some(row), false) => {
                            let retried = matches!(recorded, Recorded::Retry { .. });
                            Some(e.attempted(row, retried))
                        }
                        _ => None,
                    };
                    // Once every call is finished, nothing is left for the
                    // queue: the status answers the synchronous path.
                    let settled = (finish && e.delivery.is_done()).then(|| Box::new(status(e)));
                    ((recorded, settled), entry)
                })?;
                let ((recorded, status), entry) = match answer {
                    Some(answer) => answer,
                    None => ((Recorded::Stale, None), None),
                };
                Response::from_json(&RecordedWith {
                    recorded,
                    index: entry.as_ref().and_then(index::raw),
                    status,
                })
            }
            Command::Retry { all, unknown } => {
                Response::from_json(&self.replay(id, all, unknown, now).await?)
            }
            Command::Adopt { record } => Response::from_json(&self.adopt(*record, now).await?),
            Command::DeadLettered {
                call,
                reason,
                round,
            } => {
                let known = self.update_told(id, |e| {
                    if round < e.meta.replays || e.meta.dead_lettered.contains(&call) {
                        return ((), None);
                    }
                    e.meta.dead_lettered.push(call);
                    // Only a call the queue itself gave up is still open here;
                    // one the delivery gave up keeps the reason it recorded.
                    e.delivery.abandon(call, &reason);
                    ((), Some(e.changed(true, 0)))
                })?;
                if let Some(((), entry)) = known.as_ref() {
                    self.tell_index(entry.as_ref());
                }
                Response::from_json(&known.is_some())
            }
        }
    }

    /// The watchdog (the object's alarm): enqueues the calls of intakes that
    /// died between recording and enqueueing, and, once per watchdog period,
    /// re-enqueues overdue calls and forgets finished events older than the
    /// idempotency window.
    async fn watchdog(&self) -> Result<Response> {
        let now = now_ms();
        let watchdog_ms = self.watchdog_secs() * 1000;
        let grace_ms = INTAKE_GRACE_MS.min(watchdog_ms);
        let due: Vec<String> = self.with_unconfirmed(|waiting| {
            let due: Vec<String> = waiting
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &due {
                waiting.remove(id);
            }
            due
        })?;
        let mut requeued = 0;
        for id in &due {
            requeued += self
                .requeue(id, |e| (0..e.delivery.calls()).collect())
                .await?;
        }
        if now >= self.swept_ms.get() + watchdog_ms {
            self.swept_ms.set(now);
            for id in self.open_events()? {
                requeued += self
                    .requeue(&id, |e| {
                        if e.enqueued {
                            // A call never begun is due from the event's
                            // enqueue, not from the epoch: a backlog younger
                            // than the watchdog period is not re-enqueued.
                            if now < e.since_ms + watchdog_ms {
                                Vec::new()
                            } else {
                                e.delivery.overdue(now, watchdog_ms)
                            }
                        } else if now >= e.since_ms + grace_ms {
                            // The intake died between recording and enqueueing.
                            (0..e.delivery.calls()).collect()
                        } else {
                            Vec::new()
                        }
                    })
                    .await?;
            }
            self.forget(now)?;
        }
        // Next: the first dead-intake check, else the next sweep while any
        // event is kept (its calls may stall, or it is to be forgotten).
        let next_check = self.with_unconfirmed(|waiting| waiting.values().min().copied())?;
        let next_sweep = self
            .keeps_events()?
            .then(|| self.swept_ms.get() + watchdog_ms);
        if let Some(at) = next_check.into_iter().chain(next_sweep).min() {
            self.alarm_by(at.max(now + 1000)).await?;
        }
        Response::ok(format!("requeued {requeued}"))
    }

    /// Enqueues the calls `which` picks of an event that is not finished,
    /// and marks it enqueued; answers how many.
    async fn requeue(&self, id: &str, which: impl FnOnce(&Event) -> Vec<usize>) -> Result<usize> {
        let Some(Some((round, calls))) = self.read(id, |e| {
            let calls = which(e);
            (!e.delivery.is_done() && !calls.is_empty()).then_some((e.meta.replays, calls))
        })?
        else {
            return Ok(0);
        };
        task::enqueue(&self.env, id, round, calls.iter().copied()).await?;
        self.update(id, |e| e.enqueued = true)?;
        console_log!(
            "{}",
            serde_json::json!({ "event_id": id, "watchdog_requeued": calls })
        );
        Ok(calls.len())
    }
}

/// An attempt's line in the index's timeline.
fn attempt_row(id: AttemptId, outcome: &AttemptOutcome, sent: Sent) -> index::AttemptRow {
    let (name, code, http_status, error) = match &outcome.outcome {
        Outcome::Delivered { .. } => ("delivered", Some(200), None, None),
        Outcome::PartialFailure { failed, .. } => {
            let codes: Vec<String> = failed.iter().map(|f| f.error_code.to_string()).collect();
            let error = format!("{} receivers failed ({})", failed.len(), codes.join(", "));
            ("partial", Some(200), None, Some(error))
        }
        Outcome::Rejected { code: 416, msg } => {
            ("rate_limited", Some(416), None, Some(msg.clone()))
        }
        Outcome::Rejected { code, msg } => ("rejected", Some(*code), None, Some(msg.clone())),
        Outcome::Transport {
            http_status,
            reason,
        } => ("transport", None, *http_status, Some(reason.clone())),
        Outcome::AnswerLost { reason } => ("answer_lost", None, None, Some(reason.clone())),
        _ => ("other", None, None, None),
    };
    index::AttemptRow {
        call: id.call,
        attempt: id.attempt,
        http_status: sent.http_status.or(http_status),
        trace_id: sent.trace_id,
        endpoint: sent.endpoint,
        started_at_ms: sent.started_at_ms,
        latency_ms: sent.latency_ms,
        code,
        outcome: name.to_owned(),
        error,
        endpoint_failure: outcome.outcome.is_endpoint_failure(),
    }
}

/// The core's answer for one call, as a [`Step`].
fn begin(delivery: &mut Delivery, call: usize, now: u64) -> Step {
    match delivery.poll_call(call, now) {
        CallAction::Send(attempt) => Step::Send { attempt },
        CallAction::Wait { until_ms } | CallAction::InFlight { until_ms } => {
            Step::Later { until_ms }
        }
        _ => Step::Done,
    }
}

fn status(event: &Event) -> EventStatus {
    EventStatus {
        event_id: event.event_id.clone(),
        requests: event.delivery.calls(),
        created_at_ms: event.created_ms,
        status: event.delivery.status(),
        dead_lettered_requests: event.meta.dead_lettered.clone(),
        status_url: None,
    }
}

/// An event's id, as a query of ids reads it back.
#[derive(Deserialize)]
struct IdRow {
    event_id: String,
}

/// Whether the object's SQLite storage has the table `name`.
fn has_table(sql: &SqlStorage, name: &str) -> Result<bool> {
    let found: Vec<serde_json::Value> = sql
        .exec(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
            Some(vec![name.into()]),
        )?
        .to_array()?;
    Ok(!found.is_empty())
}

/// An event's row as read back.
#[derive(Deserialize)]
struct EventRow {
    body_sha256: String,
    created_ms: u64,
    since_ms: u64,
    enqueued: u8,
    meta: String,
    head: String,
}

/// A call's row as read back.
#[derive(Deserialize)]
struct CallRow {
    version: u64,
    state: String,
}

impl EventStore {
    fn watchdog_secs(&self) -> u64 {
        self.env
            .var("WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .filter(|secs| *secs > 0)
            .unwrap_or(DEFAULT_WATCHDOG_SECS)
    }

    /// The two tables, made once per life of the object. `WITHOUT ROWID`:
    /// the primary key is the table, so a row written is one row, not a row
    /// and an index entry.
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.schema.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL, \
                 created_ms INTEGER NOT NULL, since_ms INTEGER NOT NULL, enqueued INTEGER NOT NULL, \
                 meta TEXT NOT NULL, head TEXT NOT NULL) WITHOUT ROWID",
                None,
            )?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS calls (event_id TEXT NOT NULL, call INTEGER NOT NULL, \
                 open INTEGER NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, \
                 PRIMARY KEY (event_id, call)) WITHOUT ROWID",
                None,
            )?;
            self.schema.set(true);
        }
        Ok(sql)
    }

    /// Runs a statement that writes `event_id`'s rows, counting them for the
    /// command about it that is running, if one is (the alarm's are not).
    fn write(&self, event_id: &str, query: &str, values: Vec<SqlStorageValue>) -> Result<()> {
        let rows = crate::meter::write(&self.sql()?, query, Some(values))?.rows_written() as u64;
        if let Some(count) = self.rows_written.borrow_mut().get_mut(event_id) {
            *count += rows;
        }
        Ok(())
    }

    /// An event, from the cache or storage.
    fn take(&self, id: &str) -> Result<Option<Event>> {
        let mut cache = self.cache.borrow_mut();
        if let Some(at) = cache.iter().position(|e| e.event_id == id) {
            return Ok(cache.remove(at));
        }
        drop(cache);
        self.load(id)
    }

    /// An event, read from storage.
    fn load(&self, id: &str) -> Result<Option<Event>> {
        let sql = self.sql()?;
        let rows: Vec<EventRow> = sql
            .exec(
                "SELECT body_sha256, created_ms, since_ms, enqueued, meta, head FROM events WHERE event_id = ?",
                Some(vec![id.into()]),
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let calls: Vec<CallRow> = sql
            .exec(
                "SELECT version, state FROM calls WHERE event_id = ? ORDER BY call",
                Some(vec![id.into()]),
            )?
            .to_array()?;
        let states = calls
            .iter()
            .map(|c| serde_json::from_str(&c.state))
            .collect::<serde_json::Result<_>>()?;
        let meta: Meta = serde_json::from_str(&row.meta)?;
        let enqueued = row.enqueued != 0;
        Ok(Some(Event {
            event_id: id.to_owned(),
            body_sha256: row.body_sha256,
            created_ms: row.created_ms,
            since_ms: row.since_ms,
            enqueued,
            delivery: Delivery::from_parts(serde_json::from_str(&row.head)?, states),
            stored: Stored {
                since_ms: row.since_ms,
                enqueued,
                meta: meta.clone(),
                calls: calls.into_iter().map(|c| (c.state, c.version)).collect(),
            },
            meta,
        }))
    }

    /// Writes what changed of `event` since it was read: its row, and the
    /// rows of the calls whose state changed (each bumping its version).
    fn save(&self, event: &mut Event) -> Result<()> {
        let meta_changed = event.meta != event.stored.meta
            || event.since_ms != event.stored.since_ms
            || event.enqueued != event.stored.enqueued;
        if meta_changed {
            self.write(
                &event.event_id,
                "UPDATE events SET since_ms = ?, enqueued = ?, meta = ? WHERE event_id = ?",
                vec![
                    (event.since_ms as f64).into(),
                    i32::from(event.enqueued).into(),
                    serde_json::to_string(&event.meta)?.into(),
                    event.event_id.as_str().into(),
                ],
            )?;
            event.stored.since_ms = event.since_ms;
            event.stored.enqueued = event.enqueued;
            event.stored.meta = event.meta.clone();
        }
        for (call, state) in event.delivery.call_states().iter().enumerate() {
            let json = serde_json::to_string(state)?;
            let Some((stored, version)) = event.stored.calls.get_mut(call) else {
                continue;
            };
            if *stored == json {
                continue;
            }
            self.write(
                &event.event_id,
                "UPDATE calls SET open = ?, version = ?, state = ? WHERE event_id = ? AND call = ?",
                vec![
                    i32::from(!state.is_done()).into(),
                    ((*version + 1) as f64).into(),
                    json.as_str().into(),
                    event.event_id.as_str().into(),
                    (call as f64).into(),
                ],
            )?;
            *stored = json;
            *version += 1;
        }
        // Not read from storage just for this: the read finds it handed over.
        if let (true, Some(waiting)) = (event.handed_over(), self.unconfirmed.borrow_mut().as_mut())
        {
            waiting.remove(&event.event_id);
        }
        Ok(())
    }

    /// Puts an event back in the cache, evicting the oldest beyond its bound.
    fn keep(&self, event: Event) {
        let mut cache = self.cache.borrow_mut();
        cache.push_back(event);
        let mut bytes: usize = cache.iter().map(Event::size).sum();
        while bytes > CACHE_BYTES && cache.len() > 1 {
            if let Some(old) = cache.pop_front() {
                bytes -= old.size();
            }
        }
    }

    /// Looks at an event (`None`: there is none). Synchronous: no await
    /// while it is out of the cache.
    fn read<T>(&self, id: &str, look: impl FnOnce(&Event) -> T) -> Result<Option<T>> {
        let Some(event) = self.take(id)? else {
            return Ok(None);
        };
        let answer = look(&event);
        self.keep(event);
        Ok(Some(answer))
    }

    /// Applies `change` to an event and writes what it changed (`None`:
    /// there is none).
    fn update<T>(&self, id: &str, change: impl FnOnce(&mut Event) -> T) -> Result<Option<T>> {
        let Some(mut event) = self.take(id)? else {
            return Ok(None);
        };
        let answer = change(&mut event);
        // On a failed write the copy is dropped: the next command reads
        // storage again.
        self.save(&mut event)?;
        self.keep(event);
        Ok(Some(answer))
    }

    /// As [`EventStore::update`], for a change that may make an index
    /// entry: the entry is stamped with the version the change wrote.
    fn update_told<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Event) -> (T, Option<index::Entry>),
    ) -> Result<Option<(T, Option<index::Entry>)>> {
        let Some(mut event) = self.take(id)? else {
            return Ok(None);
        };
        let (answer, entry) = change(&mut event);
        self.save(&mut event)?;
        let entry = entry.map(|entry| stamped(entry, event.version()));
        self.keep(event);
        Ok(Some((answer, entry)))
    }

    /// Records the event unless its id is known. The lookup and the insert
    /// happen without an await between them, so two intakes of the same id
    /// cannot both create it. With `enqueue` (the queued intake, whose calls
    /// this object enqueues at once) it is written as enqueued, sparing a
    /// write of its row once they are: until then this life of the object
    /// watches it as it watches every intake (30 s), and should the object
    /// die first, a sweep finds the calls overdue one `WATCHDOG_SECS` after
    /// the intake.
    #[allow(clippy::too_many_arguments)]
    async fn create(
        &self,
        id: &str,
        body_sha256: String,
        mut delivery: Delivery,
        calls: &[usize],
        route: Option<String>,
        enqueue: bool,
        now: u64,
    ) -> Result<Created> {
        if let Some(same) = self.read(id, |known| known.body_sha256 == body_sha256)? {
            return Ok(if same {
                Created::Known
            } else {
                Created::Conflict
            });
        }
        let steps = calls
            .iter()
            .map(|call| begin(&mut delivery, *call, now))
            .collect();
        let accepted = index::Entry::Accepted {
            event_id: id.to_owned(),
            route,
            requests: delivery.calls(),
            counts: delivery.counts(),
            version: 1,
            created_ms: now,
        };
        let mut event = Event::new(id, body_sha256, now, delivery);
        event.enqueued = enqueue;
        self.insert(event)?;
        self.watch_intake(id, now).await?;
        Ok(Created::New {
            steps,
            index: index::raw(&accepted),
        })
    }

    /// Writes a new event: its row, with the delivery's head, and one row
    /// per call; then keeps it in the cache.
    fn insert(&self, mut event: Event) -> Result<()> {
        let (head, states) = event.delivery.into_parts();
        self.write(
            &event.event_id,
            "INSERT INTO events (event_id, body_sha256, created_ms, since_ms, enqueued, meta, head) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                event.event_id.as_str().into(),
                event.body_sha256.as_str().into(),
                (event.created_ms as f64).into(),
                (event.since_ms as f64).into(),
                i32::from(event.enqueued).into(),
                serde_json::to_string(&event.meta)?.into(),
                serde_json::to_string(&head)?.into(),
            ],
        )?;
        for (call, state) in states.iter().enumerate() {
            let json = serde_json::to_string(state)?;
            self.write(
                &event.event_id,
                "INSERT INTO calls (event_id, call, open, version, state) VALUES (?, ?, ?, 0, ?)",
                vec![
                    event.event_id.as_str().into(),
                    (call as f64).into(),
                    i32::from(!state.is_done()).into(),
                    json.as_str().into(),
                ],
            )?;
            event.stored.calls.push((json, 0));
        }
        event.delivery = Delivery::from_parts(head, states);
        event.stored.since_ms = event.since_ms;
        event.stored.enqueued = event.enqueued;
        event.stored.meta = event.meta.clone();
        self.keep(event);
        Ok(())
    }

    /// The event this object kept as one object per event, if it is one.
    fn legacy(&self) -> Result<Option<Legacy>> {
        #[derive(Deserialize)]
        struct Row {
            json: String,
        }
        let sql = self.state.storage().sql();
        if !has_table(&sql, "record")? {
            return Ok(None);
        }
        let rows: Vec<Row> = sql
            .exec("SELECT json FROM record WHERE id = 1", None)?
            .to_array()?;
        rows.first()
            .map(|row| serde_json::from_str(&row.json).map_err(worker::Error::from))
            .transpose()
    }

    /// Hands this object's event to its shard, then forgets it here.
    async fn hand_to_shard(&self, legacy: Legacy) -> Result<Response> {
        let event_id = legacy.event_id.clone();
        EventClient::new(&self.env, &event_id)?
            .call::<bool>(Command::Adopt {
                record: Box::new(legacy),
            })
            .await?;
        // An old event's id may name a shard ("events-7"): then this object
        // is that shard too, and only the old table goes.
        let sql = self.state.storage().sql();
        if !has_table(&sql, "events")? {
            self.state.storage().delete_all().await?;
        } else {
            sql.exec("DROP TABLE record", None)?;
        }
        console_log!(
            "{}",
            serde_json::json!({ "event_id": event_id, "adopted_by": shard_of(&event_id) })
        );
        Response::ok("adopted")
    }

    /// Takes over an event from its own object of before the shards, unless
    /// it is known here already (an adoption answered but not confirmed).
    async fn adopt(&self, legacy: Legacy, now: u64) -> Result<bool> {
        let id = legacy.event_id.as_str();
        if self.read(id, |_| ())?.is_some() {
            return Ok(false);
        }
        let mut event = Event::new(id, legacy.body_sha256, legacy.created_ms, legacy.delivery);
        event.since_ms = legacy.created_ms.max(legacy.replayed_ms);
        event.enqueued = legacy.enqueued;
        event.meta = Meta {
            dead_lettered: legacy.dead_lettered,
            replays: legacy.replays,
            version: legacy.version,
        };
        let unconfirmed = !event.handed_over();
        self.insert(event)?;
        if unconfirmed {
            self.watch_intake(id, now).await?;
        } else {
            // The next watchdog finds its overdue calls, or forgets it.
            self.alarm_by(now + INTAKE_GRACE_MS).await?;
        }
        Ok(true)
    }

    /// The queued intake's enqueue, done by the object: every call, then
    /// the intake no longer watched. A failure is logged, not answered: the
    /// watchdog enqueues the calls at the intake's check.
    async fn enqueue_all(&self, id: &str) {
        let enqueued = async {
            if self
                .env
                .var("TEST_FAIL_ENQUEUE")
                .is_ok_and(|v| v.to_string() == "1")
            {
                return Err(worker::Error::RustError("TEST_FAIL_ENQUEUE is set".into()));
            }
            let Some(calls) = self.read(id, |e| e.delivery.calls())? else {
                return Ok(());
            };
            task::enqueue(&self.env, id, 0, 0..calls).await?;
            self.with_unconfirmed(|waiting| waiting.remove(id))
                .map(drop)
        };
        if let Err(e) = enqueued.await {
            console_log!(
                "{}",
                serde_json::json!({ "event_id": id, "enqueue_failed": e.to_string(), "recovery": "watchdog" })
            );
        }
    }

    /// Tells the index of a change, after this command's answer: the index
    /// is for the operator, and never holds up or fails a delivery.
    fn tell_index(&self, entry: Option<&index::Entry>) {
        if let Some(entry) = entry.and_then(index::raw) {
            let env = self.env.clone();
            self.state
                .wait_until(async move { index::log(&env, &[entry]).await });
        }
    }

    /// The events recorded but not yet handed over, read from storage once
    /// per life of the object (then kept in memory), given to `look`.
    fn with_unconfirmed<T>(&self, look: impl FnOnce(&mut HashMap<String, u64>) -> T) -> Result<T> {
        if self.unconfirmed.borrow().is_none() {
            #[derive(Deserialize)]
            struct Row {
                event_id: String,
                since_ms: u64,
            }
            let grace_ms = INTAKE_GRACE_MS.min(self.watchdog_secs() * 1000);
            let rows: Vec<Row> = self
                .sql()?
                .exec(
                    "SELECT event_id, since_ms FROM events AS e WHERE enqueued = 0 AND EXISTS \
                     (SELECT 1 FROM calls AS c WHERE c.event_id = e.event_id AND c.open = 1)",
                    None,
                )?
                .to_array()?;
            let waiting = rows
                .into_iter()
                .map(|r| (r.event_id, r.since_ms + grace_ms))
                .collect();
            self.unconfirmed.replace(Some(waiting));
        }
        let mut unconfirmed = self.unconfirmed.borrow_mut();
        Ok(look(unconfirmed.get_or_insert_with(HashMap::new)))
    }

    /// The watchdog's first look at an event about to be enqueued: should
    /// its enqueue never be confirmed, it enqueues the calls itself.
    async fn watch_intake(&self, id: &str, now: u64) -> Result<()> {
        let check_at = now + INTAKE_GRACE_MS.min(self.watchdog_secs() * 1000);
        self.with_unconfirmed(|waiting| waiting.insert(id.to_owned(), check_at))?;
        self.alarm_by(check_at).await
    }

    /// Makes the alarm ring at `at_ms` or sooner.
    async fn alarm_by(&self, at_ms: u64) -> Result<()> {
        if self.alarm_at.get().is_some_and(|set| set <= at_ms) {
            return Ok(());
        }
        let now = now_ms();
        self.state
            .storage()
            .set_alarm(Duration::from_millis(at_ms.saturating_sub(now).max(1)))
            .await?;
        self.alarm_at.set(Some(at_ms));
        Ok(())
    }

    /// The events with a call not finished.
    fn open_events(&self) -> Result<Vec<String>> {
        let rows: Vec<IdRow> = self
            .sql()?
            .exec("SELECT DISTINCT event_id FROM calls WHERE open = 1", None)?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.event_id).collect())
    }

    /// Forgets every finished event kept a full idempotency window.
    fn forget(&self, now: u64) -> Result<()> {
        let Some(before) = now.checked_sub(IDEMPOTENCY_WINDOW_MS) else {
            return Ok(());
        };
        let old: Vec<IdRow> = self
            .sql()?
            .exec(
                "SELECT event_id FROM events AS e WHERE since_ms <= ? AND NOT EXISTS \
                 (SELECT 1 FROM calls AS c WHERE c.event_id = e.event_id AND c.open = 1)",
                Some(vec![(before as f64).into()]),
            )?
            .to_array()?;
        for IdRow { event_id } in old {
            let id: SqlStorageValue = event_id.as_str().into();
            self.write(
                &event_id,
                "DELETE FROM calls WHERE event_id = ?",
                vec![id.clone()],
            )?;
            self.write(&event_id, "DELETE FROM events WHERE event_id = ?", vec![id])?;
            self.cache.borrow_mut().retain(|e| e.event_id != event_id);
        }
        Ok(())
    }

    /// Whether any event is kept.
    fn keeps_events(&self) -> Result<bool> {
        #[derive(Deserialize)]
        struct Row {
            kept: u8,
        }
        let rows: Vec<Row> = self
            .sql()?
            .exec("SELECT EXISTS (SELECT 1 FROM events) AS kept", None)?
            .to_array()?;
        Ok(rows.first().is_some_and(|r| r.kept != 0))
    }

    /// Reopens failed receivers and enqueues their calls. Like a new event,
    /// it says "not enqueued" until the enqueue is confirmed, so the
    /// watchdog enqueues in its place should this die half-way.
    async fn replay(&self, id: &str, all: bool, unknown: bool, now: u64) -> Result<Option<Replay>> {
        let Some((replay, entry)) = self.update_told(id, |e| {
            // Unknown receivers first, under their own trace id: a call
            // holding both unknown and failed receivers sends the unknown
            // ones now and keeps its failed ones for a later replay.
            let mut replay = if unknown {
                e.delivery.replay_unknown(now)
            } else {
                Replay::default()
            };
            let failed = e.delivery.replay(all, now);
            replay.receivers += failed.receivers;
            replay.calls.extend(failed.calls);
            replay.calls.sort_unstable();
            if replay.calls.is_empty() {
                return (replay, None);
            }
            e.meta
                .dead_lettered
                .retain(|call| !replay.calls.contains(call));
            e.enqueued = false;
            e.since_ms = now;
            e.meta.replays += 1;
            let entry = e.changed(false, replay.receivers);
            (replay, Some(entry))
        })?
        else {
            return Ok(None);
        };
        self.tell_index(entry.as_ref());
        if !replay.calls.is_empty() {
            let round = self.read(id, |e| e.meta.replays)?.unwrap_or_default();
            self.watch_intake(id, now).await?;
            task::enqueue(&self.env, id, round, replay.calls.iter().copied()).await?;
            self.update(id, |e| e.enqueued = true)?;
        }
        Ok(Some(replay))
    }
}

/// Calls one event's object.
pub struct EventClient {
    event_id: String,
    stub: Stub,
    /// Round trips made to the event's object (counted in
    /// [`EventClient::call`], the one place that calls its stub).
    trips: Cell<u32>,
    /// Round trips to the pacer made for this event
    /// ([`EventClient::count_pacer_trip`]).
    pacer_trips: Cell<u32>,
    /// SQLite rows the object said its commands wrote.
    rows_written: Cell<u64>,
}

impl EventClient {
    /// The object of the event `event_id`.
    pub fn new(env: &Env, event_id: &str) -> Result<Self> {
        Ok(EventClient {
            event_id: event_id.to_owned(),
            stub: env
                .durable_object(BINDING)?
                .get_by_name(&shard_of(event_id))?,
            trips: Cell::new(0),
            pacer_trips: Cell::new(0),
            rows_written: Cell::new(0),
        })
    }

    /// Counts a round trip to the pacer made for this event.
    pub fn count_pacer_trip(&self) {
        self.pacer_trips.set(self.pacer_trips.get() + 1);
    }

    /// Round trips to the event's object so far.
    pub fn trips(&self) -> u32 {
        self.trips.get()
    }

    /// Round trips to the pacer for this event so far.
    pub fn pacer_trips(&self) -> u32 {
        self.pacer_trips.get()
    }

    /// SQLite rows written by the commands of this client so far.
    pub fn rows_written(&self) -> u64 {
        self.rows_written.get()
    }

    /// The event's id.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    async fn call<T: DeserializeOwned>(&self, command: Command) -> Result<T> {
        self.trips.set(self.trips.get() + 1);
        let asked = serde_json::to_string(&Envelope {
            event_id: self.event_id.clone(),
            command,
        })?;
        let response = rpc::post(&self.stub, "/", asked, &[]).await?;
        let rows: u64 = response
            .headers()
            .get(ROWS_WRITTEN)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.rows_written.set(self.rows_written.get() + rows);
        let status = response.status_code();
        let text = body::response_text(response).await?;
        match status {
            200 => Ok(serde_json::from_str(&text)?),
            status => Err(worker::Error::RustError(format!(
                "event store answered {status}: {text}"
            ))),
        }
    }

    /// Records a new event that came by `route`, and begins `calls` of
    /// it; or says it is known.
    /// With `enqueue`, the object enqueues every call itself (the queued
    /// intake: one round trip).
    pub async fn create(
        &self,
        body_sha256: &str,
        delivery: Delivery,
        calls: Vec<usize>,
        route: Option<String>,
        enqueue: bool,
    ) -> Result<Created> {
        self.call(Command::Create {
            body_sha256: body_sha256.to_owned(),
            delivery: Box::new(delivery),
            begin: calls,
            route,
            enqueue,
        })
        .await
    }

    /// Confirms that every call was enqueued.
    pub async fn mark_enqueued(&self) -> Result<()> {
        self.call::<Option<EventStatus>>(Command::MarkEnqueued { status: false })
            .await
            .map(drop)
    }

    /// Confirms that every call was enqueued, and answers the event's status.
    pub async fn mark_enqueued_with_status(&self) -> Result<Option<EventStatus>> {
        self.call(Command::MarkEnqueued { status: true }).await
    }

    /// The event's status; `None` for an unknown event.
    pub async fn status(&self) -> Result<Option<EventStatus>> {
        self.call(Command::Status).await
    }

    /// What to do now for one call.
    pub async fn begin(&self, call: usize) -> Result<Step> {
        let mut steps = self.begin_all(vec![call]).await?;
        Ok(steps.pop().unwrap_or(Step::Done))
    }

    /// What to do now for each of `calls`, in one round trip and one write.
    pub async fn begin_all(&self, calls: Vec<usize>) -> Result<Vec<Step>> {
        self.call(Command::Begin { calls }).await
    }

    /// Gives back an attempt that was not sent.
    pub async fn release(&self, attempt: AttemptId, at_ms: u64) -> Result<()> {
        self.call::<bool>(Command::Release { attempt, at_ms })
            .await
            .map(drop)
    }

    /// Reports what became of an attempt, and how it went out.
    /// With `finish` (the synchronous path), the object answers the status
    /// once every call is finished.
    pub async fn record(
        &self,
        attempt: AttemptId,
        outcome: AttemptOutcome,
        sent: Sent,
        finish: bool,
    ) -> Result<RecordedWith> {
        self.call(Command::Record {
            finish,
            attempt,
            outcome,
            sent: Some(sent),
        })
        .await
    }

    /// Sends the event's failed receivers again (retryable ones, or `all`);
    /// `None` for an unknown event.
    pub async fn replay(&self, all: bool) -> Result<Option<Replay>> {
        self.replay_with(all, false).await
    }

    /// As [`EventClient::replay`], and with `unknown` the unknown receivers
    /// too, under their original trace id.
    pub async fn replay_with(&self, all: bool, unknown: bool) -> Result<Option<Replay>> {
        self.call(Command::Retry { all, unknown }).await
    }

    /// Marks a call as dead-lettered by a message of replay `round`.
    pub async fn dead_lettered(&self, call: usize, round: u32, reason: &str) -> Result<()> {
        self.call::<bool>(Command::DeadLettered {
            call,
            reason: reason.to_owned(),
            round,
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunxin_edge::{BatchNotification, Content, Outcome, Plan, PlanOptions, RetryPolicy};

    fn delivery(receivers: usize) -> Delivery {
        let notification = BatchNotification::new("bot", Content::text("x"))
            .to((0..receivers).map(|i| format!("u{i}")));
        let plan = Plan::new(&notification, &PlanOptions::for_event("evt")).unwrap();
        Delivery::new(plan, RetryPolicy::default()).unwrap()
    }

    #[test]
    fn commands_and_steps_cross_the_wire_intact() {
        let mut original = delivery(501);
        let Step::Send { attempt } = begin(&mut original, 1, 0) else {
            panic!("call 1 is due")
        };
        let commands = [
            Command::Create {
                body_sha256: "00".into(),
                delivery: Box::new(original.clone()),
                begin: vec![0, 1],
                route: Some("github-push".into()),
                enqueue: true,
            },
            Command::Begin { calls: vec![1] },
            Command::Record {
                finish: true,
                attempt: attempt.id,
                outcome: Outcome::answer_lost("timed out").into(),
                sent: None,
            },
        ];
        for command in commands {
            let json = serde_json::to_string(&command).unwrap();
            let back: Command = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
        let steps = serde_json::to_string(&Created::New {
            steps: vec![
                Step::Send { attempt },
                Step::Later { until_ms: 5 },
                Step::Done,
            ],
            index: None,
        })
        .unwrap();
        assert!(
            steps.starts_with(r#"{"new":{"steps":[{"send":{"attempt":"#),
            "{steps}"
        );
        assert!(
            steps.ends_with(r#"{"later":{"until_ms":5}},"done"]}}"#),
            "{steps}"
        );
        let back: Created = serde_json::from_str(&steps).unwrap();
        assert!(matches!(back, Created::New { steps, .. } if steps.len() == 3));
    }

    #[test]
    fn an_event_keeps_its_shard_across_releases() {
        // Where every stored event lives: a change here loses them all. The
        // values are those of `sha256(id)`, first 8 bytes big-endian, mod 32
        // (checked with node:crypto).
        let names: Vec<String> = ["evt_1", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ""]
            .iter()
            .map(|id| shard_of(id))
            .collect();
        assert_eq!(names, ["events-1", "events-7", "events-20"]);
    }

    #[test]
    fn a_record_of_one_object_per_event_is_read_for_adoption() {
        // The JSON the objects of one event each wrote before the shards.
        let json = serde_json::json!({
            "event_id": "evt_old",
            "body_sha256": "ab",
            "created_ms": 1_000,
            "enqueued": true,
            "dead_lettered": [1],
            "replayed_ms": 5_000,
            "replays": 1,
            "version": 7,
            "delivery": delivery(501),
        });
        let legacy: Legacy = serde_json::from_value(json).unwrap();
        assert_eq!(legacy.delivery.calls(), 2);
        assert_eq!(
            (legacy.replayed_ms, legacy.replays, legacy.version),
            (5_000, 1, 7)
        );
        assert_eq!(legacy.dead_lettered, [1]);
    }

    #[test]
    fn begin_maps_the_core_answer_for_one_call() {
        let mut delivery = delivery(2);
        let Step::Send { attempt } = begin(&mut delivery, 0, 1_000) else {
            panic!("a new call is due")
        };
        // A second message for the same call while it is in flight: later, at the lease's end.
        let lease_end = 1_000 + delivery.policy().lease_ms;
        assert!(
            matches!(begin(&mut delivery, 0, 2_000), Step::Later { until_ms } if until_ms == lease_end)
        );
        delivery.record(attempt.id, Outcome::from_http(502, b"").into(), 3_000);
        assert!(matches!(
            begin(&mut delivery, 0, 3_000),
            Step::Later { until_ms: 8_000 }
        ));
        let Step::Send { attempt } = begin(&mut delivery, 0, 8_000) else {
            panic!("the retry is due")
        };
        delivery.record(
            attempt.id,
            Outcome::from_http(200, br#"{"code":200}"#).into(),
            8_100,
        );
        assert!(matches!(begin(&mut delivery, 0, 9_000), Step::Done));
        assert!(
            matches!(begin(&mut delivery, 7, 9_000), Step::Done),
            "no such call"
        );
    }
}
