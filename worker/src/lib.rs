//! yunxin-edge relay: a Cloudflare Worker that accepts Standard Webhooks
//! events and delivers them to Yunxin as signed batch notifications.
//!
//! A thin adapter: the `yunxin_edge` core validates, plans, signs and merges;
//! this crate reads bindings, authenticates, stores, queues, `fetch`es, and
//! maps its one error enum to HTTP once.
//!
//! - `POST /v1/notifications`: authenticate, validate, plan; then by default
//!   record the event ([`events`], idempotent per `webhook-id`), enqueue one
//!   message per call ([`queue`]) and answer 202. With `Prefer: wait` (or
//!   `?wait=1`) deliver at once instead ([`relay`]) and answer the report.
//! - `GET /v1/events/{id}`: the event's per-receiver status.
//! - `GET /healthz`.

pub mod config;
pub mod error;
pub mod events;
pub mod pacer;
pub mod queue;
pub mod relay;
pub mod webhook;

use serde_json::{Value, json};
use worker::{Context, Date, Env, MessageBatch, Method, Request, Response, console_log, event};
use yunxin_edge::{BatchNotification, Plan, PlanOptions};

use crate::config::{Config, MAX_BODY_BYTES};
use crate::error::RelayError;
use crate::events::EventClient;
use crate::queue::{DELIVERIES, DeliveryTask};
use crate::webhook::WebhookHeaders;

/// The dead-letter queue's name in `wrangler.toml`.
const DEAD_LETTER_QUEUE: &str = "yunxin-edge-dead-letters";
/// Messages per `sendBatch`: 8 calls of ≤ 500 receivers stay under its 256 KB.
const ENQUEUE_BATCH: usize = 8;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    let result = match (path.as_str(), req.method()) {
        ("/healthz", Method::Get | Method::Head) => {
            Response::from_json(&json!({ "status": "ok" })).map_err(RelayError::from)
        }
        ("/healthz", method) => Err(not_allowed(method, "GET")),
        ("/v1/notifications", Method::Post) => notifications(req, &env).await,
        ("/v1/notifications", method) => Err(not_allowed(method, "POST")),
        (path, Method::Get) if path.starts_with("/v1/events/") => {
            event_status(&req, &env, &path["/v1/events/".len()..]).await
        }
        (path, method) if path.starts_with("/v1/events/") => Err(not_allowed(method, "GET")),
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

#[event(queue)]
async fn queue(batch: MessageBatch<DeliveryTask>, env: Env, _ctx: Context) -> worker::Result<()> {
    if batch.queue() == DEAD_LETTER_QUEUE {
        return queue::bury(batch, &env).await;
    }
    match Config::from_env(&env) {
        Ok(config) => queue::deliver(batch, &env, &config).await,
        Err(e) => {
            // Misconfigured: keep the messages for when the bindings are fixed.
            console_log!(
                "{}",
                json!({ "queue": batch.queue(), "error": e.to_string() })
            );
            batch.retry_all();
            Ok(())
        }
    }
}

fn not_allowed(method: Method, allowed: &'static str) -> RelayError {
    RelayError::MethodNotAllowed {
        method: method.to_string(),
        allowed,
    }
}

/// What the notifications route answers.
struct Answer {
    status: u16,
    body: Value,
}

/// Handles one event and writes its one log line, whatever the outcome.
async fn notifications(req: Request, env: &Env) -> Result<Response, RelayError> {
    let started = Date::now().as_millis();
    let event_id = req.headers().get("webhook-id").ok().flatten();
    let wait = prefers_wait(&req);
    let result = match accept(req, env).await {
        Ok(accepted) if wait => deliver_now(&accepted).await,
        Ok(accepted) => enqueue(&accepted, env).await,
        Err(e) => Err(e),
    };

    let mut line = json!({
        "event_id": event_id,
        "mode": if wait { "wait" } else { "queue" },
        "duration_ms": Date::now().as_millis().saturating_sub(started),
    });
    match &result {
        Ok(answer) => {
            line["status"] = json!(answer.status);
            line["requests"] = answer.body["requests"].clone();
            for key in ["delivered", "failed", "not_attempted", "pending"] {
                if let Some(list) = answer.body[key].as_array() {
                    line[key] = json!(list.len());
                }
            }
        }
        Err(e) => {
            line["status"] = json!(e.status());
            line["error"] = json!(e.code());
        }
    }
    console_log!("{line}");

    let Answer { status, body } = result?;
    let mut response = Response::from_json(&body)?.with_status(status);
    if let Some(secs) = body["retry_after_secs"].as_u64() {
        response
            .headers_mut()
            .set("Retry-After", &secs.max(1).to_string())?;
    }
    Ok(response)
}

/// `Prefer: wait` or `?wait=1`: deliver before answering.
fn prefers_wait(req: &Request) -> bool {
    let header = req
        .headers()
        .get("prefer")
        .ok()
        .flatten()
        .unwrap_or_default();
    let query = req
        .url()
        .map(|u| u.query_pairs().any(|(k, v)| k == "wait" && v != "0"));
    header
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("wait"))
        || query.unwrap_or(false)
}

/// An authenticated, validated and planned event.
struct Accepted {
    config: Config,
    event_id: String,
    plan: Plan,
}

/// Checks media type, size, signature and body, in that order, and plans.
async fn accept(mut req: Request, env: &Env) -> Result<Accepted, RelayError> {
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

    let id = verify_webhook(&req, &config, &body)?;

    let notification: BatchNotification = serde_json::from_slice(&body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            RelayError::MalformedJson(e.to_string())
        } else {
            RelayError::Schema(e.to_string())
        }
    })?;
    let options = PlanOptions {
        event_id: Some(id.clone()),
        max_receivers: Some(config.max_receivers),
    };
    let plan = Plan::new(&notification, &options)?;
    Ok(Accepted {
        config,
        event_id: id,
        plan,
    })
}

/// Verifies the Standard Webhooks headers over `body`; returns `webhook-id`.
fn verify_webhook(req: &Request, config: &Config, body: &[u8]) -> Result<String, RelayError> {
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
    config.webhook_secrets.verify(&headers, body, now_secs)?;
    Ok(id.unwrap_or_default())
}

/// Delivers before answering: 200 when nothing retryable is left, else 503.
async fn deliver_now(accepted: &Accepted) -> Result<Answer, RelayError> {
    let Accepted {
        config,
        event_id,
        plan,
    } = accepted;
    let report = relay::forward(plan, config).await;
    let status = if report.has_retryable() { 503 } else { 200 };
    let mut body = json!({ "event_id": event_id, "requests": plan.requests().len() });
    if let (Value::Object(out), Ok(Value::Object(fields))) =
        (&mut body, serde_json::to_value(&report))
    {
        out.extend(fields);
    }
    Ok(Answer { status, body })
}

/// Records the event once per `webhook-id` and enqueues its calls: 202. A
/// known id is not enqueued again; it answers 200 with the event's status.
async fn enqueue(accepted: &Accepted, env: &Env) -> Result<Answer, RelayError> {
    let Accepted { event_id, plan, .. } = accepted;
    let events = EventClient::new(env, event_id)?;
    let created = events.create(event_id, plan.requests()).await?;
    if created.enqueue {
        let tasks: Vec<DeliveryTask> = (0..plan.requests().len())
            .map(|index| DeliveryTask {
                event_id: event_id.clone(),
                index,
            })
            .collect();
        let queue = env.queue(DELIVERIES)?;
        for batch in tasks.chunks(ENQUEUE_BATCH) {
            queue.send_batch(batch.to_vec()).await?;
        }
        events.mark_enqueued().await?;
    }
    if !created.created {
        let status = events.status().await?;
        return Ok(Answer {
            status: 200,
            body: serde_json::to_value(status).unwrap_or_default(),
        });
    }
    Ok(Answer {
        status: 202,
        body: json!({
            "event_id": event_id,
            "requests": plan.requests().len(),
            "status_url": format!("/v1/events/{event_id}"),
        }),
    })
}

/// `GET /v1/events/{id}`, for a bearer of `STATUS_TOKEN` or a Standard
/// Webhooks signature over an empty body.
async fn event_status(req: &Request, env: &Env, event_id: &str) -> Result<Response, RelayError> {
    let config = Config::from_env(env)?;
    let bearer = req.headers().get("authorization")?;
    match bearer.as_deref().and_then(|v| v.strip_prefix("Bearer ")) {
        Some(token)
            if config
                .status_token
                .as_ref()
                .is_some_and(|t| t.matches(token.trim())) => {}
        Some(_) => return Err(RelayError::BadBearer),
        None => {
            verify_webhook(req, &config, b"")?;
        }
    }
    match EventClient::new(env, event_id)?.status().await? {
        Some(status) => Ok(Response::from_json(&status)?),
        None => Err(RelayError::NotFound(format!("/v1/events/{event_id}"))),
    }
}
