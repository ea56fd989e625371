//! The core's [`Delivery`] state machine for JavaScript: the engine of the
//! package's `send()` and of its `Delivery` class.
//!
//! Every retry rule is the core's (which call again, with which trace id,
//! after how long, when to give up, which receivers end `unknown`). The
//! JavaScript side only does the I/O it is told to: it polls for the next
//! [`Action`], sends what it is given, and records what became of it.
//!
//! The methods read nothing but strings and numbers: a method runs while
//! wasm-bindgen holds the object borrowed, so reading a caller's object
//! (whose getter might call back into the same delivery) is left to the
//! constructor.

use wasm_bindgen::prelude::*;
use yunxin_edge::delivery::{Action, AttemptId, AttemptOutcome, Delivery, RetryPolicy};
use yunxin_edge::{Credentials, Endpoint, Error, Plan};

use crate::document;
use crate::error::{JsResult, js_error};
use crate::input::{self, Fields};
use crate::output::{PollShape, RequestShape, to_json};

/// Further attempts of a call after a retryable failure, unless told.
pub const DEFAULT_RETRIES: u32 = 2;
/// The wait before the first retry, doubled for each further one, unless told.
pub const DEFAULT_RETRY_DELAY_MS: u64 = 200;
/// The longest wait a JavaScript timer can hold (`setTimeout` turns a longer
/// one into 1 ms): the default `maxWaitMs` is never above it.
pub const MAX_TIMER_MS: u64 = (1 << 31) - 1;

/// `new DeliveryDriver(credentials, notificationJson, { baseUrl?, eventId?,
/// maxReceivers?, retries?, retryDelayMs?, maxWaitMs? })`: one
/// notification's delivery to all its receivers, none sent yet.
///
/// The policy is [`RetryPolicy::backoff`]`(retries, retryDelayMs,
/// maxWaitMs)`: `retries` retries (default 2) after `retryDelayMs` (default
/// 200), doubling, and no wait longer than `maxWaitMs` (default: the longest
/// scheduled wait), so a 416's minute or a long `Retry-After` ends the call
/// as failed (retryable) with `retry_after_secs` instead of holding the
/// caller. Trace ids derive from `eventId`, or from a random id drawn here
/// (a failing random source throws code `unsupported`).
#[wasm_bindgen]
pub struct DeliveryDriver {
    delivery: Delivery,
    credentials: Credentials,
    endpoint: Endpoint,
}

#[wasm_bindgen]
impl DeliveryDriver {
    /// See the type's documentation.
    #[wasm_bindgen(constructor)]
    pub fn new(
        credentials: JsValue,
        notification: JsValue,
        options: JsValue,
    ) -> JsResult<DeliveryDriver> {
        let credentials = input::credentials(&credentials)?;
        let notification = crate::read_notification(&notification)?;
        let options = Fields::options(options)?;
        let endpoint = crate::endpoint(options.string("baseUrl")?)?;
        let plan_options = crate::plan_options(&options, options.non_empty_string("eventId")?)?;
        let retries = options.small_integer("retries")?.unwrap_or(DEFAULT_RETRIES);
        let retry_delay_ms = options
            .non_negative_integer("retryDelayMs")?
            .unwrap_or(DEFAULT_RETRY_DELAY_MS);
        let max_wait_ms = options.non_negative_integer("maxWaitMs")?;

        let plan =
            Plan::from_notification(notification, &plan_options).map_err(|e| js_error(&e))?;
        let policy = policy(retries, retry_delay_ms, max_wait_ms);
        let delivery = Delivery::new(plan, policy).map_err(|e| js_error(&e))?;
        Ok(DeliveryDriver {
            delivery,
            credentials,
            endpoint,
        })
    }

    /// `poll(nowMs?)`: what to do next, as JSON: `{ action: "send", id,
    /// request }` (the request signed now, ready for `fetch(request.url,
    /// request)`; record its outcome under `id`), `{ action: "wait", untilMs }`
    /// (`null`: until an attempt in flight is recorded) or `{ action: "done",
    /// report }`. Call it again to start more attempts at once.
    ///
    /// `nowMs` defaults to the runtime's clock. A failing random source
    /// (the nonce) throws code `unsupported`, and the attempt is put back.
    pub fn poll(&mut self, now_ms: JsValue) -> JsResult<String> {
        let now = now(&now_ms)?;
        match self.delivery.poll(now) {
            Action::Send(attempt) => {
                let signed = match attempt.sign(&self.credentials, &self.endpoint) {
                    Ok(signed) => signed,
                    Err(e) => {
                        self.delivery.release(attempt.id, now);
                        return Err(js_error(&e));
                    }
                };
                to_json(&PollShape::Send {
                    id: format!("{}/{}", attempt.id.call, attempt.id.attempt),
                    request: RequestShape::new(attempt.id.call, &signed, &attempt.receiver_ids),
                })
            }
            Action::Wait { until_ms } => to_json(&PollShape::Wait { until_ms }),
            Action::Done(report) => to_json(&PollShape::Done { report }),
            // `Action` is non-exhaustive; a new kind of action would need
            // its own shape here.
            _ => Err(js_error(&Error::Invalid {
                field: "action".into(),
                reason: "is not known to this version of the package",
                value: String::new(),
            })),
        }
    }

    /// `record(id, outcomeJson, retryAfterSecs?, nowMs?)`: what became of the
    /// attempt `id` from [`poll`](Self::poll). `outcomeJson` is an outcome as
    /// `classifyResponse`, `transportFailure` or `answerLost` return it (as
    /// JSON text); `retryAfterSecs` the answer's `Retry-After` in seconds.
    ///
    /// Returns what the delivery made of it as JSON: `{ recorded: "retry",
    /// at_ms }`, `{ recorded: "done", gave_up }`, or `{ recorded: "stale" }`
    /// for an id that is not in flight (ignored).
    pub fn record(
        &mut self,
        id: JsValue,
        outcome: JsValue,
        retry_after_secs: JsValue,
        now_ms: JsValue,
    ) -> JsResult<String> {
        let id = attempt_id(&id)?;
        let outcome =
            document::outcome(&document::text(&outcome, "outcome")?).map_err(|e| js_error(&e))?;
        let retry_after_secs = input::optional_whole(&retry_after_secs, "retryAfterSecs")?;
        let now = now(&now_ms)?;
        let recorded = self.delivery.record(
            id,
            AttemptOutcome {
                outcome,
                retry_after_secs,
            },
            now,
        );
        to_json(&recorded)
    }

    /// `report()`: the per-receiver report so far, as JSON. Receivers of an
    /// attempt in flight, or whose last answer was lost, are `unknown`; of a
    /// call waiting for its retry, `failed` (retryable); of a call never
    /// sent, `not_attempted`.
    pub fn report(&self) -> JsResult<String> {
        to_json(&self.delivery.report())
    }

    /// `progress()`: how many receivers are `delivered`, `failed`,
    /// `unknown` (their last answer lost) and `pending` (in flight or
    /// waiting for a retry), as JSON: the counts of the core's status view.
    /// Repeats left out of the plan are in none of them.
    pub fn progress(&self) -> JsResult<String> {
        let status = self.delivery.status();
        to_json(&serde_json::json!({
            "delivered": status.delivered.len(),
            "failed": status.failed.len(),
            "unknown": status.unknown.len(),
            "pending": status.pending.len(),
        }))
    }
}

/// The policy for `retries`, `retry_delay_ms` and an optional longest wait
/// (default: the longest scheduled wait, at most [`MAX_TIMER_MS`]).
pub fn policy(retries: u32, retry_delay_ms: u64, max_wait_ms: Option<u64>) -> RetryPolicy {
    let max_wait_ms = max_wait_ms.unwrap_or_else(|| {
        let schedule = RetryPolicy::backoff(retries, retry_delay_ms, u64::MAX).schedule_ms;
        schedule.last().copied().unwrap_or(0).min(MAX_TIMER_MS)
    });
    RetryPolicy::backoff(retries, retry_delay_ms, max_wait_ms)
}

/// An attempt id as `poll` hands it out: `"{call}/{attempt}"`.
fn attempt_id(value: &JsValue) -> JsResult<AttemptId> {
    let text = input::string(value, "id")?;
    parse_attempt_id(&text).ok_or_else(|| {
        js_error(&Error::Invalid {
            field: "id".into(),
            reason: "is not an attempt id from poll()",
            value: text,
        })
    })
}

fn parse_attempt_id(text: &str) -> Option<AttemptId> {
    let (call, attempt) = text.split_once('/')?;
    Some(AttemptId {
        call: call.parse().ok()?,
        attempt: attempt.parse().ok()?,
    })
}

/// The given time, or the runtime's clock.
fn now(value: &JsValue) -> JsResult<u64> {
    Ok(input::optional_millis(value, "nowMs")?.unwrap_or_else(yunxin_edge::sign::now_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_ids_round_trip() {
        let id = parse_attempt_id("3/2").unwrap();
        assert_eq!((id.call, id.attempt), (3, 2));
        for bad in ["", "3", "3/", "/2", "a/b", "3/2/1", "-1/2"] {
            assert!(parse_attempt_id(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_default_longest_wait_is_the_longest_scheduled_one() {
        let default = policy(2, 200, None);
        assert_eq!(default.schedule_ms, [200, 400]);
        assert_eq!((default.max_attempts, default.max_wait_ms), (3, Some(400)));
        assert_eq!(policy(0, 200, None).max_wait_ms, Some(0));
        assert_eq!(policy(40, 1_000, None).max_wait_ms, Some(MAX_TIMER_MS));
        assert_eq!(policy(2, 200, Some(70_000)).max_wait_ms, Some(70_000));
    }
}
