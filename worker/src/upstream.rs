//! One attempt at one call: sign, `fetch` under a deadline, classify.
//!
//! The only judgement made here is the one the core cannot make: whether
//! the request went out. A deadline passed while waiting, or a connection
//! lost mid-answer, means Yunxin may have processed it ([`Outcome::AnswerLost`]);
//! a refused connection means it did not ([`Outcome::Transport`]).

use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::pin_mut;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};
use yunxin_edge::{Attempt, AttemptOutcome, Outcome};

use crate::config::Config;

/// Sends one attempt, waiting at most `timeout_ms` for the whole answer, and
/// says what became of it. Never fails: every failure is an outcome for the
/// delivery to judge.
pub async fn send(attempt: &Attempt, config: &Config, timeout_ms: u64) -> AttemptOutcome {
    let signed = match attempt.sign(&config.credentials, &config.endpoint) {
        Ok(signed) => signed,
        Err(e) => return Outcome::transport(format!("could not sign: {e}")).into(),
    };
    let headers = Headers::new();
    for (name, value) in &signed.headers {
        if let Err(e) = headers.set(name, value) {
            return Outcome::transport(format!("could not set header {name}: {e}")).into();
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&signed.body)));
    let upstream = match Request::new_with_init(&signed.url, &init) {
        Ok(upstream) => upstream,
        Err(e) => return Outcome::transport(format!("could not build the request: {e}")).into(),
    };

    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut response = Fetch::Request(upstream).send_with_signal(&signal).await?;
        let retry_after = response.headers().get("retry-after")?;
        let body = response.bytes().await?;
        Ok::<_, worker::Error>((response.status_code(), retry_after, body))
    };
    let deadline = Delay::from(Duration::from_millis(timeout_ms));
    pin_mut!(exchange, deadline);
    match select(exchange, deadline).await {
        Either::Left((Ok((status, retry_after, body)), _)) => AttemptOutcome {
            outcome: Outcome::from_http(status, &body),
            retry_after_secs: retry_after.and_then(|v| v.trim().parse().ok()),
        },
        Either::Left((Err(e), _)) => classify_fetch_error(&e.to_string()).into(),
        Either::Right(_) => {
            controller.abort();
            Outcome::answer_lost(format!("no answer within {timeout_ms} ms")).into()
        }
    }
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
