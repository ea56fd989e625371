//! The record of each accepted event: one Durable Object per `webhook-id`,
//! holding the event's [`Delivery`].
//!
//! Why a Durable Object and not KV: idempotency needs "create if absent" to be
//! atomic. KV is eventually consistent, so the same webhook delivered twice,
//! to two locations or within a minute, could read "absent" twice and be
//! enqueued twice. A Durable Object runs every request for one id in one
//! place, one at a time, over strongly consistent storage; its SQLite storage
//! is synchronous, so a command reads, decides and writes without yielding.
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
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, State, Stub, console_log,
    durable_object,
};
use yunxin_edge::{
    Attempt, AttemptId, AttemptOutcome, CallAction, Delivery, Outcome, Recorded, Replay,
};

use crate::rpc;
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

/// What the object is asked.
#[derive(Debug, Serialize, Deserialize)]
// Externally tagged (`{"begin": {…}}`): an internally tagged enum would be
// buffered before it is read, which builds the `Delivery` deserializer twice
// (~15 KB of the bundle).
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Record a new event unless its id is known. Answer: [`Created`].
    Create {
        /// The `webhook-id`.
        event_id: String,
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
        /// The queued intake: the object enqueues every call itself and
        /// marks the event enqueued, so the intake makes one round trip. A
        /// failed enqueue is the watchdog's, as when an intake dies.
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

/// What the object stores: one row, one JSON document.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    event_id: String,
    body_sha256: String,
    created_ms: u64,
    enqueued: bool,
    dead_lettered: Vec<usize>,
    /// When failures were last sent again (UNIX ms; 0: never): the record is
    /// kept a full idempotency window after it, so the replay's outcome can
    /// be seen.
    #[serde(default)]
    replayed_ms: u64,
    /// How many replays reopened calls: the round of their messages.
    #[serde(default)]
    replays: u32,
    /// Bumped at every change told to the index, which keeps the newest.
    #[serde(default)]
    version: u64,
    delivery: Delivery,
}

impl Record {
    /// When the event was accepted, or its failures last replayed: what the
    /// intake grace and the idempotency window count from.
    fn since_ms(&self) -> u64 {
        self.created_ms.max(self.replayed_ms)
    }

    /// A new version of the record, and the index's entry for an attempt's
    /// outcome (`retried`: the call goes again).
    fn attempted(&mut self, attempt: index::AttemptRow, retried: bool) -> index::Entry {
        self.version += 1;
        index::Entry::Attempt {
            event_id: self.event_id.clone(),
            attempt,
            retried,
            counts: self.delivery.counts(),
            version: self.version,
        }
    }

    /// A new version of the record, and the index's entry for a change that
    /// is not an attempt: a call dead-lettered, or receivers replayed.
    fn changed(&mut self, dead_lettered: bool, replayed: usize) -> index::Entry {
        self.version += 1;
        index::Entry::Changed {
            event_id: self.event_id.clone(),
            counts: self.delivery.counts(),
            version: self.version,
            dead_lettered,
            replayed,
        }
    }
}

/// The Durable Object class.
#[durable_object]
pub struct EventStore {
    state: State,
    env: Env,
    /// The stored record, parsed once per life of the object rather than
    /// once per command (a 10,000-receiver delivery is ~200 KB of JSON).
    /// SQLite storage is the truth: every change is written before it is
    /// answered, and a failed write drops this copy.
    cached: RefCell<Option<Record>>,
    /// SQLite rows the current command wrote (SQLite's own count), answered
    /// in the [`ROWS_WRITTEN`] header: what a change to the storage costs.
    rows_written: Cell<u64>,
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
            cached: RefCell::new(None),
            rows_written: Cell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.rows_written.set(0);
        let mut response = self.command(req).await?;
        response
            .headers_mut()
            .set(ROWS_WRITTEN, &self.rows_written.get().to_string())?;
        Ok(response)
    }

    async fn alarm(&self) -> Result<Response> {
        crate::meter::add(|m| m.do_requests += 1);
        self.watchdog().await
    }
}

impl EventStore {
    /// Runs one command.
    async fn command(&self, mut req: Request) -> Result<Response> {
        // serde_json over the text, not `req.json()` (serde_wasm_bindgen over
        // a JS object): the same parser as the sender's, and exact integers.
        let command: Command = serde_json::from_str(&req.text().await?)?;
        let now = now_ms();
        match command {
            Command::Create {
                event_id,
                body_sha256,
                delivery,
                begin,
                route,
                enqueue,
            } => {
                let created = self
                    .create(event_id, body_sha256, *delivery, &begin, route, now)
                    .await?;
                if enqueue && matches!(created, Created::New { .. }) {
                    self.enqueue_all().await;
                }
                Response::from_json(&created)
            }
            Command::MarkEnqueued { status: asked } => {
                let mut answer = None;
                self.update(|r| {
                    r.enqueued = true;
                    answer = asked.then(|| status(r));
                })?;
                Response::from_json(&answer)
            }
            Command::Status => Response::from_json(&self.read(status)?),
            Command::Begin { calls } => {
                let mut steps = Vec::new();
                self.update(|r| {
                    steps = calls
                        .iter()
                        .map(|call| begin(&mut r.delivery, *call, now))
                        .collect();
                })?;
                // An unknown event: every call is done (forgotten).
                steps.resize_with(calls.len(), || Step::Done);
                Response::from_json(&steps)
            }
            Command::Release { attempt, at_ms } => {
                let mut released = false;
                self.update(|r| released = r.delivery.release(attempt, at_ms))?;
                Response::from_json(&released)
            }
            Command::Record {
                finish,
                attempt,
                outcome,
                sent,
            } => {
                let mut recorded = Recorded::Stale;
                let row = sent.map(|sent| attempt_row(attempt, &outcome, sent));
                let (mut entry, mut settled) = (None, None);
                self.update(|r| {
                    recorded = r.delivery.record(attempt, outcome, now);
                    if let (Some(row), false) = (row, recorded == Recorded::Stale) {
                        let retried = matches!(recorded, Recorded::Retry { .. });
                        entry = Some(r.attempted(row, retried));
                    }
                    if finish && r.delivery.is_done() {
                        // Nothing is left for the queue: as good as enqueued.
                        r.enqueued = true;
                        settled = Some(Box::new(status(r)));
                    }
                })?;
                Response::from_json(&RecordedWith {
                    recorded,
                    index: entry.as_ref().and_then(index::raw),
                    status: settled,
                })
            }
            Command::Retry { all, unknown } => {
                Response::from_json(&self.replay(all, unknown, now).await?)
            }
            Command::DeadLettered {
                call,
                reason,
                round,
            } => {
                let mut entry = None;
                let known = self.update(|r| {
                    if round < r.replays || r.dead_lettered.contains(&call) {
                        return;
                    }
                    r.dead_lettered.push(call);
                    // Only a call the queue itself gave up is still open here;
                    // one the delivery gave up keeps the reason it recorded.
                    r.delivery.abandon(call, &reason);
                    entry = Some(r.changed(true, 0));
                })?;
                self.tell_index(entry);
                Response::from_json(&known)
            }
        }
    }

    /// The watchdog (the object's alarm).
    async fn watchdog(&self) -> Result<Response> {
        let now = now_ms();
        let watchdog_ms = self.watchdog_secs() * 1000;
        let intake_grace_ms = INTAKE_GRACE_MS.min(watchdog_ms);
        let Some((event_id, round, kept_since_ms, enqueued, done, overdue)) =
            self.read(|record| {
                let overdue: Vec<usize> = if record.enqueued {
                    record.delivery.overdue(now, watchdog_ms)
                } else if now >= record.since_ms() + intake_grace_ms {
                    // The intake died between recording and enqueueing.
                    (0..record.delivery.calls()).collect()
                } else {
                    Vec::new()
                };
                let done = record.delivery.is_done();
                (
                    record.event_id.clone(),
                    record.replays,
                    record.since_ms(),
                    record.enqueued,
                    done,
                    overdue,
                )
            })?
        else {
            return Response::ok("gone");
        };
        let mut enqueued = enqueued;
        if !overdue.is_empty() {
            task::enqueue(&self.env, &event_id, round, overdue.iter().copied()).await?;
            if !enqueued {
                self.update(|r| r.enqueued = true)?;
                enqueued = true;
            }
            console_log!(
                "{}",
                serde_json::json!({ "event_id": event_id, "watchdog_requeued": overdue })
            );
        }
        let forget_at = kept_since_ms + IDEMPOTENCY_WINDOW_MS;
        let next_in_ms = if !done {
            if enqueued {
                watchdog_ms
            } else {
                (kept_since_ms + intake_grace_ms)
                    .saturating_sub(now)
                    .max(1000)
            }
        } else if now >= forget_at {
            // Finished and older than the idempotency window: forget it.
            self.cached.replace(None);
            self.state.storage().delete_all().await?;
            return Response::ok("forgotten");
        } else {
            forget_at - now
        };
        self.state
            .storage()
            .set_alarm(Duration::from_millis(next_in_ms))
            .await?;
        Response::ok("checked")
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

fn status(record: &Record) -> EventStatus {
    EventStatus {
        event_id: record.event_id.clone(),
        requests: record.delivery.calls(),
        created_at_ms: record.created_ms,
        status: record.delivery.status(),
        dead_lettered_requests: record.dead_lettered.clone(),
        status_url: None,
    }
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

    /// The one table. Created on every use: idempotent and cheap, and
    /// `delete_all` (forgetting an event) drops it.
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS record (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)",
            None,
        )?;
        Ok(sql)
    }

    /// The stored record, parsed.
    fn load(&self) -> Result<Option<Record>> {
        #[derive(Deserialize)]
        struct Row {
            json: String,
        }
        let rows: Vec<Row> = self
            .sql()?
            .exec("SELECT json FROM record WHERE id = 1", None)?
            .to_array()?;
        rows.first()
            .map(|row| serde_json::from_str(&row.json).map_err(worker::Error::from))
            .transpose()
    }

    /// Writes `record`, and keeps it as the cached copy.
    fn store(&self, record: Record) -> Result<()> {
        let json = serde_json::to_string(&record)?;
        let written = self.sql()?.exec(
            "INSERT OR REPLACE INTO record (id, json) VALUES (1, ?)",
            Some(vec![json.into()]),
        )?;
        self.count_rows(crate::meter::written(written).rows_written());
        self.cached.replace(Some(record));
        Ok(())
    }

    /// Reads the record (`None`: there is none). No await while the copy is
    /// borrowed: the closures are synchronous.
    fn read<T>(&self, look: impl FnOnce(&Record) -> T) -> Result<Option<T>> {
        if self.cached.borrow().is_none() {
            let stored = self.load()?;
            self.cached.replace(stored);
        }
        Ok(self.cached.borrow().as_ref().map(look))
    }

    /// Applies `change` to the record and writes it; false if there is none.
    fn update(&self, change: impl FnOnce(&mut Record)) -> Result<bool> {
        let record = match self.cached.take() {
            Some(record) => Some(record),
            None => self.load()?,
        };
        let Some(mut record) = record else {
            return Ok(false);
        };
        change(&mut record);
        // On a failed write the copy is gone (taken above): the next
        // command reads storage again.
        self.store(record)?;
        Ok(true)
    }

    /// Records the event unless its id is known. The load and the store
    /// happen without an await between them, so two intakes of the same id
    /// cannot both create it.
    async fn create(
        &self,
        event_id: String,
        body_sha256: String,
        mut delivery: Delivery,
        calls: &[usize],
        route: Option<String>,
        now: u64,
    ) -> Result<Created> {
        if let Some(same) = self.read(|known| known.body_sha256 == body_sha256)? {
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
            event_id: event_id.clone(),
            route,
            requests: delivery.calls(),
            counts: delivery.counts(),
            version: 1,
            created_ms: now,
        };
        self.store(Record {
            event_id,
            body_sha256,
            created_ms: now,
            enqueued: false,
            dead_lettered: Vec::new(),
            replayed_ms: 0,
            replays: 0,
            version: 1,
            delivery,
        })?;
        self.watch_intake().await?;
        Ok(Created::New {
            steps,
            index: index::raw(&accepted),
        })
    }

    /// Adds rows a statement of this command wrote.
    fn count_rows(&self, rows: usize) {
        self.rows_written.set(self.rows_written.get() + rows as u64);
    }

    /// The queued intake's enqueue, done by the object: every call, then
    /// the record marked enqueued. A failure is logged, not answered: the
    /// record exists and says "not enqueued", so its watchdog enqueues.
    async fn enqueue_all(&self) {
        let enqueued = async {
            if self
                .env
                .var("TEST_FAIL_ENQUEUE")
                .is_ok_and(|v| v.to_string() == "1")
            {
                return Err(worker::Error::RustError("TEST_FAIL_ENQUEUE is set".into()));
            }
            let Some((event_id, calls)) =
                self.read(|r| (r.event_id.clone(), r.delivery.calls()))?
            else {
                return Ok(());
            };
            task::enqueue(&self.env, &event_id, 0, 0..calls).await?;
            self.update(|r| r.enqueued = true).map(drop)
        };
        if let Err(e) = enqueued.await {
            let event_id = self.read(|r| r.event_id.clone()).ok().flatten();
            console_log!(
                "{}",
                serde_json::json!({ "event_id": event_id, "enqueue_failed": e.to_string(), "recovery": "watchdog" })
            );
        }
    }

    /// Tells the index of a change, after this command's answer: the index
    /// is for the operator, and never holds up or fails a delivery.
    fn tell_index(&self, entry: Option<index::Entry>) {
        if let Some(entry) = entry.as_ref().and_then(index::raw) {
            let env = self.env.clone();
            self.state
                .wait_until(async move { index::log(&env, &[entry]).await });
        }
    }

    /// The watchdog's first look at calls about to be enqueued: should their
    /// enqueue never be confirmed, it enqueues them itself.
    async fn watch_intake(&self) -> Result<()> {
        let first_check_ms = (self.watchdog_secs() * 1000).min(INTAKE_GRACE_MS);
        self.state
            .storage()
            .set_alarm(Duration::from_millis(first_check_ms))
            .await
    }

    /// Reopens failed receivers and enqueues their calls. Like a new event,
    /// the record says "not enqueued" until the enqueue is confirmed, so the
    /// watchdog enqueues in its place should this die half-way.
    async fn replay(&self, all: bool, unknown: bool, now: u64) -> Result<Option<Replay>> {
        let mut replay = Replay::default();
        let (mut event_id, mut round) = (String::new(), 0);
        let mut entry = None;
        let known = self.update(|r| {
            // Unknown receivers first, under their own trace id: a call
            // holding both unknown and failed receivers sends the unknown
            // ones now and keeps its failed ones for a later replay.
            let again = if unknown {
                r.delivery.replay_unknown(now)
            } else {
                Replay::default()
            };
            replay = r.delivery.replay(all, now);
            replay.receivers += again.receivers;
            replay.calls.extend(again.calls);
            replay.calls.sort_unstable();
            if !replay.calls.is_empty() {
                r.dead_lettered.retain(|call| !replay.calls.contains(call));
                r.enqueued = false;
                r.replayed_ms = now;
                r.replays += 1;
                entry = Some(r.changed(false, replay.receivers));
            }
            (event_id, round) = (r.event_id.clone(), r.replays);
        })?;
        self.tell_index(entry);
        if !known {
            return Ok(None);
        }
        if !replay.calls.is_empty() {
            self.watch_intake().await?;
            task::enqueue(&self.env, &event_id, round, replay.calls.iter().copied()).await?;
            self.update(|r| r.enqueued = true)?;
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
            stub: env.durable_object(BINDING)?.get_by_name(event_id)?,
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

    async fn call<T: DeserializeOwned>(&self, command: &Command) -> Result<T> {
        self.trips.set(self.trips.get() + 1);
        let body = serde_json::to_string(command)?;
        let mut response = rpc::post(&self.stub, "/", body, &[]).await?;
        let rows: u64 = response
            .headers()
            .get(ROWS_WRITTEN)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.rows_written.set(self.rows_written.get() + rows);
        match response.status_code() {
            200 => response.json().await,
            status => Err(worker::Error::RustError(format!(
                "event store answered {status}: {}",
                response.text().await.unwrap_or_default()
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
        self.call(&Command::Create {
            event_id: self.event_id.clone(),
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
        self.call::<Option<EventStatus>>(&Command::MarkEnqueued { status: false })
            .await
            .map(drop)
    }

    /// Confirms that every call was enqueued, and answers the event's status.
    pub async fn mark_enqueued_with_status(&self) -> Result<Option<EventStatus>> {
        self.call(&Command::MarkEnqueued { status: true }).await
    }

    /// The event's status; `None` for an unknown event.
    pub async fn status(&self) -> Result<Option<EventStatus>> {
        self.call(&Command::Status).await
    }

    /// What to do now for one call.
    pub async fn begin(&self, call: usize) -> Result<Step> {
        let mut steps = self.begin_all(vec![call]).await?;
        Ok(steps.pop().unwrap_or(Step::Done))
    }

    /// What to do now for each of `calls`, in one round trip and one write.
    pub async fn begin_all(&self, calls: Vec<usize>) -> Result<Vec<Step>> {
        self.call(&Command::Begin { calls }).await
    }

    /// Gives back an attempt that was not sent.
    pub async fn release(&self, attempt: AttemptId, at_ms: u64) -> Result<()> {
        self.call::<bool>(&Command::Release { attempt, at_ms })
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
        self.call(&Command::Record {
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
        self.call(&Command::Retry { all, unknown }).await
    }

    /// Marks a call as dead-lettered by a message of replay `round`.
    pub async fn dead_lettered(&self, call: usize, round: u32, reason: &str) -> Result<()> {
        self.call::<bool>(&Command::DeadLettered {
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
                event_id: "evt".into(),
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
