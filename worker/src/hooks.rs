//! `POST /v1/hooks/{route}`: an event in its sender's own format and
//! signature (GitHub, Stripe, Alertmanager, a Standard Webhooks sender,
//! Yunxin's callbacks), turned into a notification by the route's
//! templates, then delivered like any other (`intake`). `?dry_run=1`
//! answers the rendered notification instead, sending nothing.
//!
//! The route runs in the hooks Worker (`hooks/`, the `HOOKS` service
//! binding), which holds `ROUTES`, `GROUPS` and the routes' secrets: this
//! module reads the body within the relay's bounds, forwards it there as
//! received, and takes back a [`HookAnswer`]. The template engine stays out
//! of the relay's bundle.

use worker::{Env, Headers, Method, Request, RequestInit};
use yunxin_edge::{BatchNotification, Plan, PlanOptions};
use yunxin_edge_routes::{HookAnswer, RouteError};

use crate::body;
use crate::config::{Config, MAX_BODY_BYTES};
use crate::error::RelayError;
use crate::intake::{Accepted, Answer};
use crate::webhook::EventId;

/// What a hook request turns into.
pub enum Hook {
    /// An event to deliver.
    Event(Box<Accepted>),
    /// Nothing to deliver; answered as it is (skipped, dry run).
    Answered(Answer),
}

/// Has the hooks Worker verify, filter and render an event for `route_name`.
pub async fn accept(mut req: Request, env: &Env, route_name: &str) -> Result<Hook, RelayError> {
    let config = Config::from_env(env)?;
    let dry_run = is_dry_run(&req)?;
    let body = body::read(&mut req, MAX_BODY_BYTES, config.body_deadline_ms).await?;
    let (event_id, json) = match render(env, &req, &body).await? {
        HookAnswer::Notification {
            event_id,
            notification,
        } => (event_id, notification),
        HookAnswer::Skipped { reason } => return Ok(Hook::Answered(Answer::Skipped { reason })),
        HookAnswer::Refused { status, error } => return Err(RelayError::Hook { status, error }),
        _ => return Err(RelayError::Internal("unknown answer from HOOKS".into())),
    };
    let event_id = EventId::parse(&event_id)
        .map_err(|e| RelayError::Internal(format!("HOOKS answered event id {e}")))?;
    let refused = |error| RouteError::Notification {
        route: route_name.to_owned(),
        error,
    };
    let notification =
        BatchNotification::from_json(&serde_json::to_vec(&json).map_err(|e| {
            RelayError::Internal(format!("HOOKS answered a notification that {e}"))
        })?)
        .map_err(refused)?;
    let options = PlanOptions::for_event(event_id.as_str()).max_receivers(config.max_receivers);
    let plan = Plan::new(&notification, &options).map_err(refused)?;

    if dry_run {
        return Ok(Hook::Answered(Answer::DryRun {
            event_id: event_id.to_string(),
            requests: plan.requests().len(),
            notification: json,
        }));
    }
    let mut accepted = Accepted::new(config, event_id, &body, plan);
    accepted.route = Some(route_name.to_owned());
    Ok(Hook::Event(Box::new(accepted)))
}

/// Forwards the request (headers as received, the body already read) to
/// the hooks Worker and reads its answer.
async fn render(env: &Env, req: &Request, body: &[u8]) -> Result<HookAnswer, RelayError> {
    let hooks = env.service("HOOKS").map_err(|_| RelayError::Config {
        binding: "HOOKS",
        problem: "is not set: webhook routes run in the hooks Worker (hooks/wrangler.toml)".into(),
    })?;
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        headers.append(&name, &value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(worker::js_sys::Uint8Array::from(body).into()));
    // The host is not used: a service binding reaches its Worker whatever it says.
    let url = format!("https://hooks.internal{}", req.path());
    let mut response = hooks.fetch(url, Some(init)).await?;
    if response.status_code() != 200 {
        return Err(RelayError::Internal(format!(
            "HOOKS answered HTTP {}",
            response.status_code()
        )));
    }
    let text = response.bytes().await?;
    serde_json::from_slice(&text)
        .map_err(|e| RelayError::Internal(format!("HOOKS answered JSON that {e}")))
}

/// `?dry_run=1` (or `true`).
fn is_dry_run(req: &Request) -> Result<bool, RelayError> {
    let url = req.url()?;
    Ok(url
        .query_pairs()
        .any(|(k, v)| k == "dry_run" && matches!(v.as_ref(), "" | "1" | "true")))
}
