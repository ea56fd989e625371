//! yunxin-edge relay: a Cloudflare Worker that accepts Standard Webhooks
//! events and delivers them to Yunxin as signed batch notifications.
//!
//! A thin adapter: the `yunxin_edge` core parses, validates, plans, signs
//! and decides every retry (its `Delivery`); this crate reads bindings,
//! authenticates, stores, queues, `fetch`es, and maps its one error enum to
//! HTTP once. Modules, from the edge inwards (none imports one above it):
//!
//! - `POST /v1/notifications`: authenticate ([`webhook`]), parse and plan;
//!   then by default record the event ([`events`], idempotent per
//!   `webhook-id`), enqueue one message per call ([`task`]) and answer 202;
//!   the consumer ([`queue`]) drives the delivery with [`pacer`] slots. With
//!   `Prefer: wait` (or `?wait=1`) the request drives it first ([`sync`]),
//!   within its bounds, and answers the status; the queue gets the rest.
//! - `GET /v1/events/{id}`: the event's per-receiver status.
//! - `GET /healthz`.

pub mod body;
pub mod config;
pub mod error;
pub mod events;
pub mod pacer;
pub mod queue;
pub mod sync;
pub mod task;
pub mod upstream;
pub mod webhook;

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use worker::{Context, Date, Env, MessageBatch, Method, Request, Response, console_log, event};
use yunxin_edge::{BatchNotification, Delivery, DeliveryState, Plan, PlanOptions};

use crate::config::{Config, MAX_BODY_BYTES};
use crate::error::RelayError;
use crate::events::{Created, EventClient, EventStatus};
use crate::task::{DEAD_LETTER_QUEUE, DeliveryTask};
use crate::webhook::{EventId, VerifyError, WebhookHeaders};

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
enum Answer {
    /// `Prefer: wait`: the event's status once the request has done what it
    /// may: 200 when finished, 202 (with `Retry-After`) when the queue has
    /// the rest.
    Waited {
        event_id: EventId,
        status: Box<EventStatus>,
    },
    /// Queued: 202 with the status URL.
    Accepted { event_id: EventId, requests: usize },
    /// A known `webhook-id`: 200 with the event's status so far.
    Known(Box<EventStatus>),
}

/// The body of [`Answer::Waited`].
#[derive(Serialize)]
struct WaitedBody<'a> {
    #[serde(flatten)]
    status: &'a EventStatus,
    status_url: String,
}

/// The body of [`Answer::Accepted`].
#[derive(Serialize)]
struct AcceptedBody<'a> {
    event_id: &'a str,
    requests: usize,
    status_url: String,
}

fn status_url(event_id: &EventId) -> String {
    format!("/v1/events/{}", event_id.path_segment())
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Waited { status, .. } if status.status.state == DeliveryState::Pending => 202,
            Answer::Waited { .. } | Answer::Known(_) => 200,
            Answer::Accepted { .. } => 202,
        }
    }

    fn response(&self) -> worker::Result<Response> {
        let mut response = match self {
            Answer::Waited { event_id, status } => Response::from_json(&WaitedBody {
                status,
                status_url: status_url(event_id),
            })?,
            Answer::Accepted { event_id, requests } => Response::from_json(&AcceptedBody {
                event_id: event_id.as_str(),
                requests: *requests,
                status_url: status_url(event_id),
            })?,
            Answer::Known(status) => Response::from_json(status)?,
        }
        .with_status(self.status());
        if let Answer::Waited { status, .. } = self
            && status.status.state == DeliveryState::Pending
        {
            // When the queue's next attempt is due: asking earlier shows nothing new.
            let next_ms = status
                .status
                .pending
                .iter()
                .filter_map(|p| p.next_attempt_at_ms)
                .min()
                .unwrap_or(0);
            let secs = next_ms
                .saturating_sub(Date::now().as_millis())
                .div_ceil(1000);
            response
                .headers_mut()
                .set("Retry-After", &secs.max(1).to_string())?;
        }
        Ok(response)
    }

    fn event_id(&self) -> &str {
        match self {
            Answer::Waited { event_id, .. } | Answer::Accepted { event_id, .. } => {
                event_id.as_str()
            }
            Answer::Known(status) => &status.event_id,
        }
    }

    /// Calls and receiver counts for the log line.
    fn counts(&self) -> serde_json::Value {
        match self {
            Answer::Waited { status, .. } | Answer::Known(status) => json!({
                "requests": status.requests,
                "delivered": status.status.delivered.len(),
                "failed": status.status.failed.len(),
                "unknown": status.status.unknown.len(),
                "pending": status.status.pending.len(),
            }),
            Answer::Accepted { requests, .. } => json!({ "requests": requests }),
        }
    }
}

/// Handles one event and writes its one log line, whatever the outcome.
async fn notifications(req: Request, env: &Env) -> Result<Response, RelayError> {
    let started = Date::now().as_millis();
    let result = match prefers_wait(&req) {
        Ok(wait) => match accept(req, env).await {
            Ok(accepted) => intake(accepted, env, wait).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };

    // The event id is logged only once the event is authenticated: before
    // that it is anybody's text.
    let mut line = json!({ "duration_ms": Date::now().as_millis().saturating_sub(started) });
    match &result {
        Ok(answer) => {
            line["event_id"] = json!(answer.event_id());
            line["mode"] = json!(if matches!(answer, Answer::Waited { .. }) {
                "wait"
            } else {
                "queue"
            });
            line["status"] = json!(answer.status());
            if let (Some(line), serde_json::Value::Object(counts)) =
                (line.as_object_mut(), answer.counts())
            {
                line.extend(counts);
            }
        }
        Err(e) => {
            line["status"] = json!(e.status());
            line["error"] = json!(e.code());
        }
    }
    console_log!("{line}");

    Ok(result?.response()?)
}

/// Whether to deliver before answering: `Prefer: wait` (or `wait=<seconds>`,
/// RFC 7240), or `?wait=1` / `?wait=true`; `?wait=0` / `?wait=false` queue.
fn prefers_wait(req: &Request) -> Result<bool, RelayError> {
    let header = req.headers().get("prefer")?.unwrap_or_default();
    let preferred = header.split(',').any(|preference| {
        let name = preference.split(['=', ';']).next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("wait")
    });
    let url = req.url()?;
    let query = url.query_pairs().find(|(k, _)| k == "wait");
    let asked = match query.as_ref().map(|(_, v)| v.as_ref()) {
        None => None,
        Some("" | "1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => {
            return Err(RelayError::BadQuery {
                parameter: "wait",
                problem: "must be 1, true, 0 or false",
            });
        }
    };
    Ok(asked.unwrap_or(preferred))
}

/// An authenticated, validated and planned event.
struct Accepted {
    config: Config,
    event_id: EventId,
    /// Hex SHA-256 of the body: a re-used id with another body is refused.
    body_sha256: String,
    plan: Plan,
}

/// Checks media type, id, size, signature and body, in that order, and plans.
async fn accept(mut req: Request, env: &Env) -> Result<Accepted, RelayError> {
    let config = Config::from_env(env)?;

    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(RelayError::UnsupportedMediaType(content_type));
    }
    let event_id = event_id_header(&req)?;
    let body = body::read(&mut req, MAX_BODY_BYTES, config.body_deadline_ms).await?;
    verify_webhook(&req, &config, &body)?;

    let notification = BatchNotification::from_json(&body)?;
    let options = PlanOptions::for_event(event_id.as_str()).max_receivers(config.max_receivers);
    let plan = Plan::new(&notification, &options)?;
    Ok(Accepted {
        config,
        event_id,
        body_sha256: hex::encode(Sha256::digest(&body)),
        plan,
    })
}

/// The `webhook-id` header, checked for shape (absence is the signature's
/// error, named by [`verify_webhook`]).
fn event_id_header(req: &Request) -> Result<EventId, RelayError> {
    let Some(id) = req.headers().get("webhook-id")? else {
        return Err(VerifyError::Missing("webhook-id").into());
    };
    EventId::parse(&id).map_err(|e| RelayError::BadHeader {
        header: "webhook-id",
        problem: e.to_string(),
    })
}

/// Verifies the Standard Webhooks headers over `body`.
fn verify_webhook(req: &Request, config: &Config, body: &[u8]) -> Result<(), RelayError> {
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
    Ok(())
}

/// Records the event once per `webhook-id`, then delivers what it may
/// before answering (`wait`) and hands the rest to the queue, or hands all
/// of it to the queue at once. A known id sends nothing: it answers 200 with
/// the event's status, or 409 if it came with another body.
async fn intake(accepted: Accepted, env: &Env, wait: bool) -> Result<Answer, RelayError> {
    let Accepted {
        config,
        event_id,
        body_sha256,
        plan,
    } = accepted;
    let requests = plan.requests().len();
    let events = EventClient::new(env, event_id.as_str())?;
    let policy = if wait {
        config.sync_policy()
    } else {
        config.queued_policy()
    };
    match events
        .create(&body_sha256, Delivery::new(plan, policy)?)
        .await?
    {
        Created::New => {}
        Created::Known => {
            return match events.status().await? {
                Some(status) => Ok(Answer::Known(Box::new(status))),
                None => Err(RelayError::Internal(
                    "the event store lost a known event".into(),
                )),
            };
        }
        Created::Conflict => {
            return Err(RelayError::Conflict {
                event_id: event_id.to_string(),
            });
        }
    }
    let left = if wait {
        sync::drive(env, &config, &events, requests).await
    } else {
        (0..requests).collect()
    };
    hand_to_queue(&config, env, &events, left).await;
    if !wait {
        return Ok(Answer::Accepted { event_id, requests });
    }
    match events.status().await? {
        Some(status) => Ok(Answer::Waited {
            event_id,
            status: Box::new(status),
        }),
        None => Err(RelayError::Internal(
            "the event store lost the event".into(),
        )),
    }
}

/// Enqueues the calls the intake leaves to the queue and marks the event
/// enqueued. A failure here is logged, not answered: the record exists, so
/// its watchdog enqueues an event never marked enqueued. Something will
/// deliver it, which is what a 2xx promises.
async fn hand_to_queue(config: &Config, env: &Env, events: &EventClient, calls: Vec<usize>) {
    let enqueued = async {
        if config.test_fail_enqueue {
            return Err(worker::Error::RustError("TEST_FAIL_ENQUEUE is set".into()));
        }
        if !calls.is_empty() {
            task::enqueue(env, events.event_id(), calls).await?;
        }
        events.mark_enqueued().await
    };
    if let Err(e) = enqueued.await {
        console_log!(
            "{}",
            json!({ "event_id": events.event_id(), "enqueue_failed": e.to_string(), "recovery": "watchdog" })
        );
    }
}

/// `GET /v1/events/{id}`, for a bearer of `STATUS_TOKEN` or a Standard
/// Webhooks signature over an empty body.
async fn event_status(req: &Request, env: &Env, event_id: &str) -> Result<Response, RelayError> {
    let config = Config::from_env(env)?;
    let bearer = req.headers().get("authorization")?;
    let token = bearer.as_deref().and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    });
    match token {
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
    let not_found = || RelayError::NotFound(format!("/v1/events/{event_id}"));
    let id = percent_encoding::percent_decode_str(event_id)
        .decode_utf8()
        .ok()
        .and_then(|id| EventId::parse(&id).ok())
        .ok_or_else(not_found)?;
    match EventClient::new(env, id.as_str())?.status().await? {
        Some(status) => Ok(Response::from_json(&status)?),
        None => Err(not_found()),
    }
}
