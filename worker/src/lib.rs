//! yunxin-edge relay: a Cloudflare Worker that accepts Standard Webhooks
//! events and forwards them to Yunxin as signed batch notifications.
//!
//! A thin adapter: the `yunxin_edge` core validates, plans, signs and merges;
//! this crate reads bindings, authenticates, does the `fetch`es, and maps the
//! one error enum to HTTP once.
//!
//! Routes: `POST /v1/notifications`, `GET /healthz`.

pub mod config;
pub mod error;
pub mod relay;
pub mod webhook;

use serde_json::{Value, json};
use worker::{Context, Date, Env, Method, Request, Response, console_log, event};
use yunxin_edge::{BatchNotification, Plan, PlanOptions};

use crate::config::{Config, MAX_BODY_BYTES};
use crate::error::RelayError;
use crate::webhook::WebhookHeaders;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let result = match (req.path().as_str(), req.method()) {
        ("/healthz", Method::Get | Method::Head) => {
            Response::from_json(&json!({ "status": "ok" })).map_err(RelayError::from)
        }
        ("/healthz", method) => Err(not_allowed(method, "GET")),
        ("/v1/notifications", Method::Post) => notifications(req, &env).await,
        ("/v1/notifications", method) => Err(not_allowed(method, "POST")),
        (path, _) => Err(RelayError::NotFound(path.to_owned())),
    };
    result.or_else(|e| {
        let mut response = Response::from_json(&e.body())?.with_status(e.status());
        if let RelayError::MethodNotAllowed { allowed, .. } = e {
            response.headers_mut().set("Allow", allowed)?;
        }
        Ok(response)
    })
}

fn not_allowed(method: Method, allowed: &'static str) -> RelayError {
    RelayError::MethodNotAllowed {
        method: method.to_string(),
        allowed,
    }
}

/// Handles one event and writes its one log line, whatever the outcome.
async fn notifications(req: Request, env: &Env) -> Result<Response, RelayError> {
    let started = Date::now().as_millis();
    let event_id = req.headers().get("webhook-id").ok().flatten();
    let result = deliver(req, env).await;
    let mut line = json!({
        "event_id": event_id,
        "duration_ms": Date::now().as_millis().saturating_sub(started),
    });
    match &result {
        Ok((status, report)) => {
            line["status"] = json!(status);
            line["requests"] = report["requests"].clone();
            for key in ["delivered", "failed", "not_attempted"] {
                line[key] = json!(report[key].as_array().map_or(0, Vec::len));
            }
        }
        Err(e) => {
            line["status"] = json!(e.status());
            line["error"] = json!(e.code());
        }
    }
    console_log!("{line}");

    let (status, report) = result?;
    let mut response = Response::from_json(&report)?.with_status(status);
    if let Some(secs) = report["retry_after_secs"].as_u64() {
        response
            .headers_mut()
            .set("Retry-After", &secs.max(1).to_string())?;
    }
    Ok(response)
}

/// Authenticates, validates, plans and forwards; answers (status, report).
async fn deliver(mut req: Request, env: &Env) -> Result<(u16, Value), RelayError> {
    let config = Config::from_env(env)?;

    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(RelayError::UnsupportedMediaType(content_type));
    }
    let too_large = |actual| RelayError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
        actual,
    };
    if let Some(announced) = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse().ok())
        && announced > MAX_BODY_BYTES
    {
        return Err(too_large(announced));
    }
    let body = req.bytes().await?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large(body.len()));
    }

    let header = |name| req.headers().get(name).ok().flatten();
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let headers = WebhookHeaders {
        id: id.as_deref(),
        timestamp: timestamp.as_deref(),
        signature: signature.as_deref(),
    };
    let now_secs = (Date::now().as_millis() / 1000) as i64;
    config.webhook_secrets.verify(&headers, &body, now_secs)?;
    let event_id = id.unwrap_or_default();

    let notification: BatchNotification = serde_json::from_slice(&body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            RelayError::MalformedJson(e.to_string())
        } else {
            RelayError::Schema(e.to_string())
        }
    })?;
    let options = PlanOptions {
        event_id: Some(event_id.clone()),
        max_receivers: Some(config.max_receivers),
    };
    let plan = Plan::new(&notification, &options)?;
    let report = relay::forward(&plan, &config).await;

    let status = if report.has_retryable() { 503 } else { 200 };
    let mut body = json!({ "event_id": event_id, "requests": plan.requests().len() });
    if let (Value::Object(out), Ok(Value::Object(fields))) =
        (&mut body, serde_json::to_value(&report))
    {
        out.extend(fields);
    }
    Ok((status, body))
}
