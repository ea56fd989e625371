//! One attempt at one call: choose the endpoint, sign, `fetch` under a
//! deadline, classify, and tell the endpoints' health what happened.
//!
//! The only judgement made here is the one the core cannot make: whether
//! the request went out. A deadline passed while waiting, or a connection
//! lost mid-answer, means Yunxin may have processed it ([`Outcome::AnswerLost`]);
//! a refused connection means it did not ([`Outcome::Transport`]). Which
//! endpoint to use, and what an outcome says of it, is the core's
//! [`Failover`].
//!
//! workerd does not tell the two apart: a `fetch` to a port nothing listens
//! on, a connection reset before or after the request was read, and a
//! connection closed after it was read all reject with the same
//! `Error: Network connection lost.` (properties `remote: true`,
//! `retryable: true`; measured with workerd 1.20260426 against 127.0.0.1,
//! `tests/worker/failover.test.mjs`). So after that error the endpoint is
//! probed with a bare TCP connection (`connect()`, whose `opened` rejects
//! with "cannot connect to the specified address" when nothing accepts):
//! an endpoint that accepts no connection took no request either.

use std::cell::RefCell;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::pin_mut;
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Date, Delay, Fetch, Headers, Method, Request, RequestInit, Socket, Url,
    console_log,
};
use yunxin_edge::failover::Failover;
use yunxin_edge::{Attempt, AttemptOutcome, Endpoint, Outcome};

use crate::config::Config;

thread_local! {
    /// The endpoints' health as this isolate has seen it. Kept per isolate,
    /// not in a Durable Object: asking one would add a round trip to every
    /// upstream call, and an isolate learns that an endpoint is down from
    /// its own first failure there, which the delivery retries (same trace
    /// id) on the next endpoint. Each isolate pays one failed attempt (and
    /// those already in flight) per cooldown.
    static HEALTH: RefCell<Option<Failover>> = const { RefCell::new(None) };
}

/// Runs `f` on this isolate's health, started from the configured
/// endpoints, and started again if the configuration differs from the one
/// it was made for.
fn with_health<R>(config: &Config, f: impl FnOnce(&mut Failover) -> R) -> R {
    let configured = &config.endpoints;
    HEALTH.with_borrow_mut(|health| match health {
        Some(live)
            if live.cooldown() == configured.cooldown()
                && live.endpoints().eq(configured.endpoints()) =>
        {
            f(live)
        }
        _ => f(health.insert(configured.clone())),
    })
}

/// What became of one attempt, and where it went.
pub struct Exchanged {
    /// The outcome, for the delivery to judge.
    pub outcome: AttemptOutcome,
    /// The endpoint it was sent to.
    pub endpoint: Endpoint,
    /// The HTTP status of the answer, if one came.
    pub http_status: Option<u16>,
}

/// Sends one attempt to the endpoint the health picks, waiting at most
/// `timeout_ms` for the whole answer, and says what became of it. Never
/// fails: every failure is an outcome for the delivery to judge.
pub async fn send(attempt: &Attempt, config: &Config, timeout_ms: u64) -> Exchanged {
    let (pick, endpoint) = with_health(config, |health| {
        let pick = health.pick(now_ms());
        (pick, health.endpoint(pick).clone())
    });
    let (outcome, judged, http_status) = exchange(attempt, config, &endpoint, timeout_ms).await;
    if judged {
        let changed = with_health(config, |health| {
            health.record(pick, &outcome.outcome, now_ms())
        });
        // Only changes are logged: one line when an endpoint is avoided or
        // answers again, not one per call.
        if changed {
            let avoided = outcome.outcome.is_endpoint_failure();
            console_log!(
                "{}",
                serde_json::json!({
                    "endpoint": endpoint.base_url(),
                    "state": if avoided { "avoided" } else { "healthy" },
                    "after": summary(&outcome.outcome),
                })
            );
        }
    }
    Exchanged {
        outcome,
        endpoint,
        http_status,
    }
}

/// An outcome in a few words, for the log: no receiver ids.
fn summary(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Transport { reason, .. } | Outcome::AnswerLost { reason } => reason,
        _ => "an answer",
    }
}

/// The request itself; also says whether its outcome is the endpoint's
/// doing (not when the request could not even be made, nor when the
/// caller's wait, cut below the upstream timeout (a synchronous request's
/// deadline), ran out), and the answer's HTTP status.
async fn exchange(
    attempt: &Attempt,
    config: &Config,
    endpoint: &Endpoint,
    timeout_ms: u64,
) -> (AttemptOutcome, bool, Option<u16>) {
    let local = |reason: String| (Outcome::transport(reason).into(), false, None);
    let signed = match attempt.sign(&config.credentials, endpoint) {
        Ok(signed) => signed,
        Err(e) => return local(format!("could not sign: {e}")),
    };
    let headers = Headers::new();
    for (name, value) in &signed.headers {
        if let Err(e) = headers.set(name, value) {
            return local(format!("could not set header {name}: {e}"));
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&signed.body)));
    let upstream = match Request::new_with_init(&signed.url, &init) {
        Ok(upstream) => upstream,
        Err(e) => return local(format!("could not build the request: {e}")),
    };

    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let response = Fetch::Request(upstream).send_with_signal(&signal).await?;
        let retry_after = response.headers().get("retry-after")?;
        let status = response.status_code();
        let body = crate::body::response_bytes(response).await?;
        Ok::<_, worker::Error>((status, retry_after, body))
    };
    let deadline = Delay::from(Duration::from_millis(timeout_ms));
    pin_mut!(exchange, deadline);
    match select(exchange, deadline).await {
        Either::Left((Ok((status, retry_after, body)), _)) => {
            let outcome = AttemptOutcome {
                outcome: Outcome::from_http(status, &body),
                retry_after_secs: retry_after.and_then(|v| v.trim().parse().ok()),
            };
            (outcome, true, Some(status))
        }
        Either::Left((Err(e), _)) => {
            let message = e.to_string();
            let outcome = match classify_fetch_error(&message) {
                Outcome::AnswerLost { .. } if is_connection_lost(&message) => {
                    let probe_ms = PROBE_TIMEOUT_MS.min(timeout_ms);
                    if accepts_connections(endpoint, probe_ms).await {
                        Outcome::answer_lost(format!("fetch failed: {message}"))
                    } else {
                        Outcome::transport(format!(
                            "connection refused: {} accepts no connection ({message})",
                            endpoint.base_url()
                        ))
                    }
                }
                outcome => outcome,
            };
            (outcome.into(), true, None)
        }
        Either::Right(_) => {
            controller.abort();
            let outcome = Outcome::answer_lost(format!("no answer within {timeout_ms} ms"));
            let judged = timeout_ms >= config.upstream_timeout_ms;
            (outcome.into(), judged, None)
        }
    }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// How long the probe after a lost connection waits for the endpoint to
/// accept one: a live endpoint accepts within a round trip.
const PROBE_TIMEOUT_MS: u64 = 2_000;

/// workerd's one text for a connection that failed, before or after the
/// request went out.
fn is_connection_lost(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("network connection lost")
}

/// Whether `endpoint` accepts a TCP connection within `timeout_ms`. Only a
/// refusal says no: a probe that cannot be made, or is not answered in
/// time, says yes, so that an answer that may have been lost stays so.
async fn accepts_connections(endpoint: &Endpoint, timeout_ms: u64) -> bool {
    let Ok(url) = Url::parse(endpoint.base_url()) else {
        return true;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return true;
    };
    let Ok(mut socket) = Socket::builder().connect(host, port) else {
        return true;
    };
    let accepted = {
        let opened = socket.opened();
        let deadline = Delay::from(Duration::from_millis(timeout_ms));
        pin_mut!(opened, deadline);
        match select(opened, deadline).await {
            Either::Left((Ok(_), _)) => true,
            Either::Left((Err(e), _)) => !e
                .to_string()
                .to_ascii_lowercase()
                .contains("cannot connect"),
            Either::Right(_) => true,
        }
    };
    // Nothing was sent on it; a failure to close changes nothing.
    let _ = socket.close().await;
    accepted
}

/// A `fetch` failure: not sent when the connection could not be made;
/// otherwise the request may have reached Yunxin, and its fate is unknown.
pub fn classify_fetch_error(message: &str) -> Outcome {
    let lower = message.to_ascii_lowercase();
    let not_sent = [
        "refused",
        "dns",
        "could not resolve",
        "no such host",
        "invalid url",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    if not_sent {
        Outcome::transport(format!("fetch failed: {message}"))
    } else {
        Outcome::answer_lost(format!("fetch failed: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_were_not_sent_lost_ones_may_have_been() {
        assert!(matches!(
            classify_fetch_error("connect ECONNREFUSED 127.0.0.1:9"),
            Outcome::Transport { .. }
        ));
        assert!(matches!(
            classify_fetch_error("Network connection lost."),
            Outcome::AnswerLost { .. }
        ));
    }
}
