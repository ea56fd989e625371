//! The event index: one Durable Object ([`EventIndex`], bound as `INDEX`)
//! that every event's record tells of each change, and that the operator's
//! list, the dashboard and `/metrics` read from ([`IndexClient`]).
//!
//! Both sides speak the `yunxin_edge_index` protocol; the answers are the
//! same types the JSON API serialises and the dashboard renders.

mod store;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use worker::{Delay, Env, Result, Stub, console_log};
pub use yunxin_edge_index::{AttemptRow, Command, Entry, MAX_PAGE, Query, Wait};
use yunxin_edge_index::{BINDING, Detail, NAME, Page, Stats};

pub use store::EventIndex;

use crate::{body, rpc};

/// Talks to the index.
pub struct IndexClient {
    stub: Stub,
}

impl IndexClient {
    /// The index of this relay.
    pub fn new(env: &Env) -> Result<Self> {
        Ok(IndexClient {
            stub: env.durable_object(BINDING)?.get_by_name(NAME)?,
        })
    }

    /// Asks `command`; its answer.
    async fn ask<T: DeserializeOwned>(&self, command: &Command) -> Result<T> {
        let answer = self.post(serde_json::to_string(command)?).await?;
        Ok(serde_json::from_str(&answer)?)
    }

    async fn post(&self, command: String) -> Result<String> {
        let response = rpc::post(&self.stub, "/", command, &[]).await?;
        match (response.status_code(), body::response_text(response).await?) {
            (200, text) => Ok(text),
            (status, text) => Err(worker::Error::RustError(format!(
                "event index answered {status}: {text}"
            ))),
        }
    }

    /// Records changes (each an [`Entry`] as JSON). A failure is logged,
    /// never passed on: the index serves the operator, and must not fail a
    /// delivery.
    async fn log(&self, entries: &[Box<RawValue>]) {
        // `Command::Log` as the index reads it, built around entries that
        // were serialised where they were made (the event's record).
        let joined: Vec<&str> = entries.iter().map(|e| e.get()).collect();
        let command = format!(r#"{{"log":[{}]}}"#, joined.join(","));
        if let Err(e) = self.post(command).await {
            console_log!("{}", serde_json::json!({ "index_error": e.to_string() }));
        }
    }

    /// A page of events, newest first.
    pub async fn list(&self, query: Query) -> Result<Page> {
        self.ask(&Command::List(query)).await
    }

    /// An event's route and attempts; `None` for an event it does not know.
    pub async fn detail(&self, event_id: &str) -> Result<Option<Detail>> {
        self.ask(&Command::Detail(event_id.to_owned())).await
    }

    /// Counters, histograms and calls per minute over the last hour.
    pub async fn stats(&self, rate_per_minute: u32) -> Result<Stats> {
        self.ask(&Command::Stats { rate_per_minute }).await
    }
}

/// An entry as JSON, to log later (or with others).
pub fn raw(entry: &Entry) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(entry).ok()
}

/// Logs `entries`, if any, without failing: a failure is logged, never
/// passed on, as the index serves the operator and must not fail a delivery.
pub async fn log(env: &Env, entries: &[Box<RawValue>]) {
    if entries.is_empty() {
        return;
    }
    match IndexClient::new(env) {
        Ok(index) => index.log(entries).await,
        Err(e) => console_log!("{}", serde_json::json!({ "index_error": e.to_string() })),
    }
}

thread_local! {
    /// Entries of the intake's events, waiting to be written together
    /// ([`defer`], [`flush_deferred`]).
    static DEFERRED: RefCell<Vec<Box<RawValue>>> = const { RefCell::new(Vec::new()) };
    /// Whether a flush of [`DEFERRED`] is already waiting.
    static FLUSHING: Cell<bool> = const { Cell::new(false) };
}

/// How long intake entries wait for others before they are written: the
/// index is at most this much behind the events' records, and each write
/// serves every event of the isolate in that time. An index write costs a
/// Durable Object request and a SQLite row per counter series touched, so
/// written one event at a time the index was most of an event's cost.
pub const DEFER_MS: u64 = 1_000;

/// Keeps an intake's entries for the next write of this isolate's entries.
pub fn defer(entries: impl IntoIterator<Item = Box<RawValue>>) {
    DEFERRED.with_borrow_mut(|deferred| deferred.extend(entries));
}

/// Writes the deferred entries after [`DEFER_MS`], together with those
/// deferred meanwhile; does nothing if a write is already waiting (it takes
/// them). For `waitUntil`, after the answer: off every request's path. An
/// isolate evicted meanwhile loses them; the events' records, the truth,
/// tell the index again at their next change.
pub async fn flush_deferred(env: &Env) {
    if FLUSHING.get() || DEFERRED.with_borrow(Vec::is_empty) {
        return;
    }
    // Cleared however this ends: a future dropped mid-wait (its invocation
    // cut short) must not leave every later flush thinking one is waiting.
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            FLUSHING.set(false);
        }
    }
    FLUSHING.set(true);
    let waiting = Waiting;
    Delay::from(Duration::from_millis(DEFER_MS)).await;
    drop(waiting);
    log_with_deferred(env, Vec::new()).await;
}

/// Writes `entries` now, with the intakes' deferred ones before them: one
/// index request where there would be two. For the queue consumer, which
/// writes before its batch ends: a flush left to the queue handler's
/// `waitUntil` was not seen to write in workerd (the dashboard's counts
/// stayed behind in `tests/worker/dashboard.test.mjs`).
pub async fn log_with_deferred(env: &Env, entries: Vec<Box<RawValue>>) {
    let mut all = DEFERRED.take();
    all.extend(entries);
    log(env, &all).await;
}

/// The entries one invocation collects (a queue batch, a synchronous
/// request), written to the index in one request at its end: one subrequest
/// per batch rather than one per upstream call.
#[derive(Default)]
pub struct Batch(RefCell<Vec<Box<RawValue>>>);

impl Batch {
    /// Adds an entry, already serialised.
    pub fn push(&self, entry: Option<Box<RawValue>>) {
        self.0.borrow_mut().extend(entry);
    }

    /// Adds an entry.
    pub fn add(&self, entry: &Entry) {
        self.push(raw(entry));
    }

    /// Takes the entries, to write later ([`defer`]).
    pub fn take(&self) -> Vec<Box<RawValue>> {
        self.0.take()
    }
}
