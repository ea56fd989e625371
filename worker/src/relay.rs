//! Sending to Yunxin with `fetch`. [`send_once`] is one attempt under a
//! deadline (used by the queue consumer too); [`forward`] is the synchronous
//! path: every call of a plan, at most six at a time, each retried on
//! transport errors and retryable codes with its trace id kept and its
//! signature renewed.

use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{StreamExt, pin_mut, stream};
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};
use yunxin_edge::{Outcome, Plan, PlannedRequest, Report, RetryVerdict};

use crate::config::{Config, MAX_IN_FLIGHT, RETRIES};

/// Sends every call of the plan and merges the answers into one report.
pub async fn forward(plan: &Plan, config: &Config) -> Report {
    let outcomes: Vec<Option<Outcome>> = stream::iter(plan.requests())
        .map(|request| async move { Some(send_with_retries(request, config).await) })
        .buffered(MAX_IN_FLIGHT)
        .collect()
        .await;
    plan.report(&outcomes)
}

/// Retries only what may succeed soon: a 416 (rate limit) needs a minute,
/// longer than a webhook sender waits, so it is reported instead.
async fn send_with_retries(request: &PlannedRequest, config: &Config) -> Outcome {
    let mut retries = 0;
    loop {
        let Attempt { outcome, .. } = send_once(request, config).await;
        match outcome.retry() {
            RetryVerdict::Retry { min_delay_secs: 0 } if retries < RETRIES => {
                retries += 1;
                Delay::from(Duration::from_millis(100 << retries)).await;
            }
            _ => return outcome,
        }
    }
}

/// What one attempt brought back.
pub struct Attempt {
    /// The classified answer.
    pub outcome: Outcome,
    /// The answer's `Retry-After`, in seconds, when it had one.
    pub retry_after_secs: Option<u64>,
}

impl From<Outcome> for Attempt {
    fn from(outcome: Outcome) -> Self {
        Attempt {
            outcome,
            retry_after_secs: None,
        }
    }
}

/// One signed attempt at one call, under the configured deadline.
pub async fn send_once(request: &PlannedRequest, config: &Config) -> Attempt {
    let signed = request.sign(&config.credentials, &config.endpoint);
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
    let deadline = Delay::from(Duration::from_millis(config.upstream_timeout_ms));
    pin_mut!(exchange, deadline);
    match select(exchange, deadline).await {
        Either::Left((Ok((status, retry_after, body)), _)) => Attempt {
            outcome: Outcome::from_http(status, &body),
            retry_after_secs: retry_after.and_then(|v| v.trim().parse().ok()),
        },
        Either::Left((Err(e), _)) => Outcome::transport(format!("fetch failed: {e}")).into(),
        Either::Right(_) => {
            controller.abort();
            Outcome::transport(format!(
                "no answer within {} ms",
                config.upstream_timeout_ms
            ))
            .into()
        }
    }
}
