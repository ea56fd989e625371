//! The relay's JSON API, as the dashboard reads it: `GET /v1/events`,
//! `GET /v1/events/{id}`, `POST /v1/events/{id}/retry`, `GET /v1/stats`.
//!
//! Read leniently: a field the relay leaves out (or sends as another type)
//! takes its empty value and unknown fields are ignored, so a relay one
//! version ahead or behind still renders. The answers are parsed into a
//! `serde_json::Value` (code the Worker has anyway) and read from there by
//! [`FromJson`]: derived deserializers, one per type, would double the
//! Worker's JSON code.

use serde_json::{Map, Value};

/// A type read from a JSON value, leniently.
pub trait FromJson: Sized {
    /// `value` read as `Self`.
    fn from_json(value: &Value) -> Self;
}

/// `bytes` as JSON read as `T`; an error only when they are not JSON.
pub fn parse<T: FromJson>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Value>(bytes).map(|value| T::from_json(&value))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn num(v: &Value, key: &str) -> u64 {
    opt_num(v, key).unwrap_or(0)
}

fn opt_num(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn float(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn labels(v: &Value) -> Map<String, Value> {
    v.get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn list<T>(v: &Value, key: &str, read: impl Fn(&Value) -> T) -> Vec<T> {
    v.get(key)
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |items| items.iter().map(read).collect())
}

fn of<T: FromJson>(v: &Value, key: &str) -> Vec<T> {
    list(v, key, T::from_json)
}

/// `GET /v1/events`: a page of events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventList {
    /// The events of this page.
    pub events: Vec<EventSummary>,
    /// The next page's `cursor`, if there is one.
    pub next_cursor: Option<String>,
}

/// One event in the list.
#[derive(Debug, Clone, Default)]
pub struct EventSummary {
    /// The event id (a `webhook-id`).
    pub event_id: String,
    /// The webhook route, or `None` for `/v1/notifications`.
    pub route: Option<String>,
    /// When it was accepted (UNIX ms).
    pub created_at_ms: u64,
    /// When its record last changed (UNIX ms).
    pub updated_at_ms: Option<u64>,
    /// `pending`, `delivered` or `completed_with_failures`.
    pub state: String,
    /// Yunxin calls in its plan.
    pub requests: u64,
    /// Receivers by outcome.
    pub receivers: ReceiverCounts,
}

/// Receivers of one event, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverCounts {
    /// All receivers.
    pub total: u64,
    /// Notified.
    pub delivered: u64,
    /// Refused, or whose calls failed for good.
    pub failed: u64,
    /// Whose answer was lost.
    pub unknown: u64,
    /// Still waiting.
    pub pending: u64,
}

/// `GET /v1/events/{id}`: an event with each receiver's outcome and its
/// attempts.
#[derive(Debug, Clone, Default)]
pub struct EventDetail {
    /// The event id.
    pub event_id: String,
    /// The webhook route, or `None` for `/v1/notifications`.
    pub route: Option<String>,
    /// Yunxin calls in its plan.
    pub requests: u64,
    /// When it was accepted (UNIX ms).
    pub created_at_ms: Option<u64>,
    /// `pending`, `delivered` or `completed_with_failures`.
    pub state: String,
    /// Receivers notified.
    pub delivered: Vec<String>,
    /// Receivers that failed, with Yunxin's code.
    pub failed: Vec<Failed>,
    /// Receivers whose answer was lost.
    pub unknown: Vec<Reasoned>,
    /// Receivers still waiting.
    pub pending: Vec<Pending>,
    /// Receivers never sent (repeats).
    pub not_attempted: Vec<Reasoned>,
    /// Calls that went to the dead-letter queue.
    pub dead_lettered_requests: Vec<u64>,
    /// Every attempt at every call, in the order made.
    pub attempts: Vec<Attempt>,
}

/// A failed receiver.
#[derive(Debug, Clone, Default)]
pub struct Failed {
    /// The receiver.
    pub account_id: String,
    /// Yunxin's code, or the HTTP status of a transport failure.
    pub error_code: i64,
    /// What went wrong.
    pub error_msg: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
}

/// A receiver with a reason (unknown, not attempted).
#[derive(Debug, Clone, Default)]
pub struct Reasoned {
    /// The receiver.
    pub account_id: String,
    /// Why.
    pub reason: String,
}

/// A receiver still waiting.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// The receiver.
    pub account_id: String,
    /// Attempts at its call so far.
    pub attempts: u32,
    /// When the next attempt is due (UNIX ms), `None` while one is in flight.
    pub next_attempt_at_ms: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// One attempt at one call.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// The call's index in the plan.
    pub call: u64,
    /// The attempt's number within its call, from 1.
    pub attempt: u64,
    /// `X-custom-traceid` sent.
    pub trace_id: String,
    /// The Yunxin base URL called.
    pub endpoint: String,
    /// When it was sent (UNIX ms).
    pub started_at_ms: u64,
    /// How long until its answer (or until it was given up).
    pub latency_ms: Option<u64>,
    /// The HTTP status, `None` without an answer.
    pub http_status: Option<u16>,
    /// Yunxin's `code`, `None` without one.
    pub code: Option<i64>,
    /// `delivered`, `partial`, `failed`, `rate_limited`, `transport`, `answer_lost`.
    pub outcome: String,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// `POST /v1/events/{id}/retry`'s answer.
#[derive(Debug, Clone, Default)]
pub struct RetryAnswer {
    /// Receivers sent again.
    pub retried_receivers: u64,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// `YUNXIN_RATE_PER_MINUTE`.
    pub rate_per_minute: u64,
    /// The last 60 minutes, oldest first.
    pub minutes: Vec<Minute>,
    /// Counters, each a name, labels and a value.
    pub counters: Vec<Counter>,
    /// Histograms with cumulative buckets.
    pub histograms: Vec<Histogram>,
    /// Per Yunxin endpoint health.
    pub endpoints: Vec<Endpoint>,
}

/// Upstream calls in one minute.
#[derive(Debug, Clone, Copy, Default)]
pub struct Minute {
    /// The minute's start (UNIX ms).
    pub start_ms: u64,
    /// Calls made to Yunxin.
    pub calls: u64,
    /// Of those, answered 416 (frequency control).
    pub rate_limited: u64,
}

/// One counter series.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    /// The name, without prefix or `_total`.
    pub name: String,
    /// Label names to values, in the relay's order.
    pub labels: Map<String, Value>,
    /// The count.
    pub value: f64,
}

/// One histogram series.
///
/// The relay's index counts durations in whole milliseconds (`le_ms`,
/// `sum_ms`, names without a unit); [`Histogram::in_seconds`] gives them in
/// seconds, Prometheus's base unit.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// The name, without prefix.
    pub name: String,
    /// Label names to values, in the relay's order.
    pub labels: Map<String, Value>,
    /// Upper bounds of the buckets, ascending (`+Inf` implied), in seconds.
    pub le: Vec<f64>,
    /// The same in milliseconds, as the index sends them.
    pub le_ms: Vec<f64>,
    /// Cumulative observations per bucket, one per bound (and perhaps one
    /// more, for `+Inf`).
    pub counts: Vec<u64>,
    /// All observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
    /// Their sum in milliseconds, as the index sends it.
    pub sum_ms: Option<f64>,
}

impl Histogram {
    /// The histogram with its bounds and sum in seconds, named with a
    /// `_seconds` unit suffix when they came in milliseconds.
    pub fn in_seconds(&self) -> Histogram {
        if self.le_ms.is_empty() && self.sum_ms.is_none() {
            return self.clone();
        }
        let name = if self.name.ends_with("_seconds") {
            self.name.clone()
        } else {
            format!("{}_seconds", self.name.trim_end_matches("_ms"))
        };
        Histogram {
            name,
            le: self.le_ms.iter().map(|ms| ms / 1000.0).collect(),
            le_ms: Vec::new(),
            sum: self.sum_ms.unwrap_or(0.0) / 1000.0,
            sum_ms: None,
            ..self.clone()
        }
    }

    /// The mean observation in seconds, if there is any.
    pub fn mean_seconds(&self) -> Option<f64> {
        let seconds = self.in_seconds();
        (seconds.count > 0).then(|| seconds.sum / seconds.count as f64)
    }
}

/// One Yunxin endpoint's health over the last hour.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The base URL.
    pub base_url: String,
    /// Calls made to it.
    pub calls: u64,
    /// Of those, failures that count against the endpoint (no connection,
    /// a lost answer, a 5xx).
    pub failures: u64,
    /// The last failure (UNIX ms).
    pub last_failure_ms: Option<u64>,
    /// The last success (UNIX ms).
    pub last_success_ms: Option<u64>,
    /// Whether its last call succeeded.
    pub healthy: Option<bool>,
}

impl FromJson for EventList {
    fn from_json(v: &Value) -> Self {
        EventList {
            events: of(v, "events"),
            next_cursor: opt_text(v, "next_cursor"),
        }
    }
}

impl FromJson for EventSummary {
    fn from_json(v: &Value) -> Self {
        EventSummary {
            event_id: text(v, "event_id"),
            route: opt_text(v, "route"),
            created_at_ms: num(v, "created_at_ms"),
            updated_at_ms: opt_num(v, "updated_at_ms"),
            state: text(v, "state"),
            requests: num(v, "requests"),
            receivers: v
                .get("receivers")
                .map(ReceiverCounts::from_json)
                .unwrap_or_default(),
        }
    }
}

impl FromJson for ReceiverCounts {
    fn from_json(v: &Value) -> Self {
        ReceiverCounts {
            total: num(v, "total"),
            delivered: num(v, "delivered"),
            failed: num(v, "failed"),
            unknown: num(v, "unknown"),
            pending: num(v, "pending"),
        }
    }
}

impl FromJson for EventDetail {
    fn from_json(v: &Value) -> Self {
        EventDetail {
            event_id: text(v, "event_id"),
            route: opt_text(v, "route"),
            requests: num(v, "requests"),
            created_at_ms: opt_num(v, "created_at_ms"),
            state: text(v, "state"),
            delivered: list(v, "delivered", |id| {
                id.as_str().unwrap_or_default().to_owned()
            }),
            failed: of(v, "failed"),
            unknown: of(v, "unknown"),
            pending: of(v, "pending"),
            not_attempted: of(v, "not_attempted"),
            dead_lettered_requests: list(v, "dead_lettered_requests", |n| n.as_u64().unwrap_or(0)),
            attempts: of(v, "attempts"),
        }
    }
}

impl FromJson for Failed {
    fn from_json(v: &Value) -> Self {
        Failed {
            account_id: text(v, "account_id"),
            error_code: v.get("error_code").and_then(Value::as_i64).unwrap_or(0),
            error_msg: text(v, "error_msg"),
            retryable: v.get("retryable").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

impl FromJson for Reasoned {
    fn from_json(v: &Value) -> Self {
        Reasoned {
            account_id: text(v, "account_id"),
            reason: text(v, "reason"),
        }
    }
}

impl FromJson for Pending {
    fn from_json(v: &Value) -> Self {
        Pending {
            account_id: text(v, "account_id"),
            attempts: num(v, "attempts") as u32,
            next_attempt_at_ms: opt_num(v, "next_attempt_at_ms"),
            last_error: opt_text(v, "last_error"),
        }
    }
}

impl FromJson for Attempt {
    fn from_json(v: &Value) -> Self {
        Attempt {
            call: num(v, "call"),
            attempt: num(v, "attempt"),
            trace_id: text(v, "trace_id"),
            endpoint: text(v, "endpoint"),
            started_at_ms: num(v, "started_at_ms"),
            latency_ms: opt_num(v, "latency_ms"),
            http_status: opt_num(v, "http_status").and_then(|s| u16::try_from(s).ok()),
            code: v.get("code").and_then(Value::as_i64),
            outcome: text(v, "outcome"),
            error: opt_text(v, "error"),
        }
    }
}

impl FromJson for RetryAnswer {
    fn from_json(v: &Value) -> Self {
        RetryAnswer {
            retried_receivers: num(v, "retried_receivers"),
        }
    }
}

impl FromJson for Stats {
    fn from_json(v: &Value) -> Self {
        Stats {
            rate_per_minute: num(v, "rate_per_minute"),
            minutes: of(v, "minutes"),
            counters: of(v, "counters"),
            histograms: of(v, "histograms"),
            endpoints: of(v, "endpoints"),
        }
    }
}

impl FromJson for Minute {
    fn from_json(v: &Value) -> Self {
        Minute {
            start_ms: num(v, "start_ms"),
            calls: num(v, "calls"),
            rate_limited: num(v, "rate_limited"),
        }
    }
}

impl FromJson for Counter {
    fn from_json(v: &Value) -> Self {
        Counter {
            name: text(v, "name"),
            labels: labels(v),
            value: float(v, "value").unwrap_or(0.0),
        }
    }
}

impl FromJson for Histogram {
    fn from_json(v: &Value) -> Self {
        let floats = |key| list(v, key, |x: &Value| x.as_f64().unwrap_or(0.0));
        Histogram {
            name: text(v, "name"),
            labels: labels(v),
            le: floats("le"),
            le_ms: floats("le_ms"),
            counts: list(v, "counts", |x| x.as_u64().unwrap_or(0)),
            count: num(v, "count"),
            sum: float(v, "sum").unwrap_or(0.0),
            sum_ms: float(v, "sum_ms"),
        }
    }
}

impl FromJson for Endpoint {
    fn from_json(v: &Value) -> Self {
        Endpoint {
            base_url: text(v, "base_url"),
            calls: num(v, "calls"),
            failures: num(v, "failures"),
            last_failure_ms: opt_num(v, "last_failure_ms"),
            last_success_ms: opt_num(v, "last_success_ms"),
            healthy: v.get("healthy").and_then(Value::as_bool),
        }
    }
}

/// What the relay said went wrong, from its error body
/// `{"error":{"code","message","field"?}}`: the message, if any.
pub fn error_message(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("error").map(|e| text(e, "message")))
        .unwrap_or_default()
}

/// A label value as text: strings as they are, anything else as JSON.
pub fn label_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! Sample answers in the contract's shape (notes/ops-contract.md).

    /// `GET /v1/events`.
    pub const LIST: &str = r#"{"events":[
      {"event_id":"evt_<b>1","route":"github-push","created_at_ms":1796000000000,"updated_at_ms":1796000001000,
       "state":"completed_with_failures","requests":2,
       "receivers":{"total":10,"delivered":7,"failed":2,"unknown":1,"pending":0}},
      {"event_id":"evt 2/x","route":null,"created_at_ms":1795999000000,"updated_at_ms":1795999000500,
       "state":"pending","requests":1,
       "receivers":{"total":3,"delivered":1,"failed":0,"unknown":0,"pending":2}}],
     "next_cursor":"c&2"}"#;

    /// `GET /v1/events/{id}`.
    pub const DETAIL: &str = r#"{"event_id":"evt_<b>1","route":"github-push","requests":2,"created_at_ms":1796000000000,
      "state":"completed_with_failures",
      "delivered":["user0","user1"],
      "failed":[{"account_id":"ghost1","error_code":102404,"error_msg":"account not exist","retryable":false},
                {"account_id":"user3","error_code":102503,"error_msg":"server busy","retryable":true}],
      "unknown":[{"account_id":"user9","reason":"request sent, answer lost"}],
      "pending":[{"account_id":"user5","attempts":1,"next_attempt_at_ms":1796000005000,"last_error":"HTTP 502"}],
      "not_attempted":[{"account_id":"USER0","reason":"duplicate of user0"}],
      "dead_lettered_requests":[1],
      "attempts":[
        {"call":0,"attempt":1,"trace_id":"tr-0-1","endpoint":"http://127.0.0.1:1234","started_at_ms":1796000000100,
         "latency_ms":12,"http_status":200,"code":200,"outcome":"partial","error":null},
        {"call":1,"attempt":1,"trace_id":"tr-1-1","endpoint":"http://127.0.0.1:1234","started_at_ms":1796000000200,
         "latency_ms":30000,"http_status":502,"code":null,"outcome":"transport","error":"HTTP 502 <html>"}]}"#;

    /// `GET /v1/stats`.
    pub fn stats() -> String {
        let minutes: Vec<String> = (0..60)
            .map(|i| {
                let calls = if i == 57 { 130 } else { i % 7 };
                let limited = if i == 57 { 10 } else { 0 };
                format!(
                    r#"{{"start_ms":{},"calls":{calls},"rate_limited":{limited}}}"#,
                    1_796_000_000_000u64 - 3_600_000 + i * 60_000
                )
            })
            .collect();
        format!(
            r#"{{"rate_per_minute":120,"minutes":[{}],
            "counters":[
              {{"name":"events_accepted","labels":{{"route":"-"}},"value":12}},
              {{"name":"events_accepted","labels":{{"route":"git\"hub\\push\n"}},"value":3}},
              {{"name":"events_rejected","labels":{{"route":"-","status":401}},"value":2}},
              {{"name":"upstream_calls","labels":{{"endpoint":"http://127.0.0.1:1","outcome":"delivered"}},"value":7}}],
            "histograms":[
              {{"name":"upstream_latency_seconds","labels":{{"endpoint":"http://127.0.0.1:1"}},
                "le":[0.05,0.1,0.25,0.5,1,2.5,5,10],"counts":[3,5,6,7,7,7,7,7],"count":8,"sum":12.5}}],
            "endpoints":[{{"base_url":"http://127.0.0.1:1","calls":8,"failures":1,"last_failure_ms":1795999990000}}]}}"#,
            minutes.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_samples_parse() {
        let list: EventList = parse(samples::LIST.as_bytes()).unwrap();
        assert_eq!(list.events.len(), 2);
        assert_eq!(list.events[1].route, None);
        assert_eq!(list.events[0].receivers.failed, 2);
        assert_eq!(list.next_cursor.as_deref(), Some("c&2"));

        let detail: EventDetail = parse(samples::DETAIL.as_bytes()).unwrap();
        assert_eq!(detail.failed.len(), 2);
        assert_eq!(detail.attempts[1].code, None);
        assert_eq!(detail.attempts[1].http_status, Some(502));

        let stats: Stats = parse(samples::stats().as_bytes()).unwrap();
        assert_eq!(stats.minutes.len(), 60);
        assert_eq!(label_text(&stats.counters[2].labels["status"]), "401");
    }

    #[test]
    fn histograms_in_milliseconds_read_in_seconds() {
        let h: Histogram = parse(
            br#"{"name":"upstream_latency","labels":{"endpoint":"e"},"le_ms":[10,250,1000],
                "counts":[1,3,4,5],"count":5,"sum_ms":1500}"#,
        )
        .unwrap();
        let s = h.in_seconds();
        assert_eq!(s.name, "upstream_latency_seconds");
        assert_eq!(s.le, [0.01, 0.25, 1.0]);
        assert_eq!(s.sum, 1.5);
        assert_eq!(h.mean_seconds(), Some(0.3));
        // Already in seconds: as it is.
        let stats: Stats = parse(samples::stats().as_bytes()).unwrap();
        let s = stats.histograms[0].in_seconds();
        assert_eq!((s.name.as_str(), s.sum), ("upstream_latency_seconds", 12.5));
    }

    #[test]
    fn missing_fields_take_their_empty_values() {
        let detail: EventDetail =
            parse(br#"{"event_id":"e","state":"pending","extra":1,"attempts":"nope"}"#).unwrap();
        assert!(detail.attempts.is_empty() && detail.route.is_none());
        assert_eq!(detail.state, "pending");
        assert!(parse::<EventDetail>(b"not json").is_err());
        assert_eq!(
            error_message(br#"{"error":{"code":"not_found","message":"no"}}"#),
            "no"
        );
        assert_eq!(error_message(b"<html>"), "");
    }
}
