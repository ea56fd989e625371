//! The event index: one Durable Object ([`EventIndex`], bound as `INDEX`)
//! that every event's record tells of each change, and that the operator's
//! list, the dashboard and `/metrics` read from ([`IndexClient`]).
//!
//! Both sides speak the `yunxin_edge_index` protocol; the answers are the
//! same types the JSON API serialises and the dashboard renders.

mod store;

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit, Response, Result, Stub, console_log};
pub use yunxin_edge_index::{AttemptRow, Command, Entry, MAX_PAGE, Query, Wait};
use yunxin_edge_index::{BINDING, Detail, NAME, Page, Stats};

pub use store::EventIndex;

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
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&command)));
        let req = Request::new_with_init("https://event-index/", &init)?;
        crate::meter::add(|m| m.do_requests += 1);
        let mut response: Response = self.stub.fetch_with_request(req).await?;
        let text = response.text().await?;
        match response.status_code() {
            200 => Ok(text),
            status => Err(worker::Error::RustError(format!(
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

    /// Writes the entries (see [`IndexClient::log`]).
    pub async fn flush(&self, env: &Env) {
        log(env, &self.0.take()).await;
    }
}
