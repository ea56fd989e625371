//! `POST /v1/hooks/{route}`: an event in its sender's own format and
//! signature (GitHub, Stripe, Alertmanager, a Standard Webhooks sender,
//! Yunxin's callbacks), turned into a notification by the route's
//! templates, then delivered like any other (`intake`). `?dry_run=1`
//! answers the rendered notification instead, sending nothing.
//!
//! The routes crate verifies, filters and renders; this module reads the
//! body within the Worker's bounds, takes the route's configuration and
//! secrets from [`route_config`](crate::route_config), and has the route's
//! object ([`storm`](crate::storm)) decide what becomes of the event.

use std::collections::BTreeMap;

use serde_json::json;
use worker::{Date, Env, Request, console_log};
use yunxin_edge_routes::storm::Disposition;
use yunxin_edge_routes::{Event, Rendered, RouteError, Scheme, Signed, VerifyError};

use crate::body;
use crate::config::{Config, MAX_BODY_BYTES, optional};
use crate::error::RelayError;
use crate::index;
use crate::intake::{Accepted, Answer};
use crate::query::Query;
use crate::route_config::{groups, render_options, routes, secrets};
use crate::storm::{Incoming, StormClient};
use crate::webhook::EventId;

/// What a hook request turns into.
pub enum Hook {
    /// An event to deliver.
    Event(Box<Accepted>),
    /// Nothing to deliver; answered as it is (skipped, dry run).
    Answered(Answer),
}

/// Verifies, filters and renders an event for `route_name`.
pub async fn accept(
    mut req: Request,
    env: &Env,
    route_name: &str,
    query: &Query,
) -> Result<Hook, RelayError> {
    let config = Config::from_env(env)?;
    let dry_run = query.flag("dry_run")?.unwrap_or(false);
    let body = body::read(&mut req, MAX_BODY_BYTES, config.body_deadline_ms).await?;
    let headers: BTreeMap<String, String> = req.headers().entries().collect();
    let (mut notification, json, event_id) = match hook(env, route_name, &headers, &body)? {
        Rendered::Notification {
            notification,
            json,
            event_id,
        } => (notification, json, event_id),
        Rendered::Skipped { reason } => return Ok(Hook::Answered(Answer::Skipped { reason })),
    };
    let event_id = EventId::parse(&event_id)
        .map_err(|e| RelayError::Internal(format!("the route rendered event id {e}")))?;
    // Planned before it is decided: a notification over a limit is refused
    // before it counts against a throttle or joins a digest.
    let accepted = Accepted::of_route(config, event_id.clone(), &body, &notification, route_name)?;

    // What the route's silences, quiet hours, digest and throttle make of
    // it: decided once per event id by the route's object (a dry run on a
    // copy of its state).
    let decided = StormClient::new(env, route_name)?
        .decide(Incoming {
            event_id: event_id.to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            notification: json.clone(),
            dry_run,
        })
        .await?;
    if !dry_run && !decided.repeat && decided.disposition != Disposition::Send {
        let throttled = match &decided.disposition {
            Disposition::Throttled { throttled, .. } => throttled.len(),
            _ => 0,
        };
        let entry = index::Entry::Held {
            route: route_name.to_owned(),
            disposition: decided.disposition.name().to_owned(),
            throttled,
        };
        index::log(env, index::raw(&entry).as_slice()).await;
    }
    if dry_run {
        return Ok(Hook::Answered(Answer::DryRun {
            event_id: event_id.to_string(),
            requests: accepted.plan.requests().len(),
            notification: json,
            disposition: Box::new(decided.disposition),
        }));
    }
    let accepted = match decided.disposition {
        Disposition::Send => accepted,
        Disposition::Throttled { allowed, .. } if !allowed.is_empty() => {
            // Only the receivers under the throttle; the event's status
            // lists the others as throttled.
            notification.receiver_ids = allowed;
            Accepted::of_route(accepted.config, event_id, &body, &notification, route_name)?
        }
        disposition => {
            return Ok(Hook::Answered(Answer::Held {
                event_id,
                disposition: Box::new(disposition),
            }));
        }
    };
    Ok(Hook::Event(Box::new(accepted)))
}

/// Verifies, filters and renders one request for `route_name`.
fn hook(
    env: &Env,
    route_name: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Rendered, RouteError> {
    let routes = routes(env)?;
    let route = routes.get(route_name).inspect_err(|_| {
        // A broken route: every problem of the config goes to the log.
        for problem in routes.problems() {
            console_log!("{}", json!({ "routes": problem.to_string() }));
        }
    })?;
    let now_secs = (Date::now().as_millis() / 1000) as i64;
    let misconfigured = |field: &str, problem: String| RouteError::Config {
        route: route_name.to_owned(),
        field: field.to_owned(),
        problem,
    };

    let secrets = secrets(env, route_name, route)?;
    yunxin_edge_routes::check_secrets(&route.verify.scheme, &secrets).map_err(|e| match e {
        VerifyError::BadSecret(n) => misconfigured(
            "verify.secrets",
            format!(
                "names binding `{}`, which is not a `whsec_…` or `whpk_…` key",
                route.verify.secrets.get(n - 1).map_or("?", String::as_str)
            ),
        ),
        other => misconfigured("verify.secrets", other.to_string()),
    })?;
    let app_key = match &route.verify.scheme {
        Scheme::YunxinCallback { app_key } => Some(optional(env, app_key).ok_or_else(|| {
            misconfigured(
                "verify.app_key",
                format!("names binding `{app_key}`, which is not set"),
            )
        })?),
        _ => None,
    };
    let signed = Signed {
        headers,
        body,
        now_secs,
    };
    yunxin_edge_routes::verify(&route.verify.scheme, &secrets, app_key.as_deref(), &signed)
        .map_err(|error| RouteError::Unauthorized {
            route: route_name.to_owned(),
            error,
        })?;

    let event = Event {
        route: route_name,
        headers,
        body,
        now_secs,
    };
    yunxin_edge_routes::render_with(route, &event, &groups(env)?, &render_options(env)?)
}
