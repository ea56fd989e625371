//! yunxin-edge relay: one Cloudflare Worker that takes events and delivers
//! them to Yunxin as signed batch notifications, and shows the operator
//! what became of them.
//!
//! A thin adapter: the `yunxin_edge` core parses, validates, plans, signs
//! and decides every retry (its `Delivery`); the routes crate verifies and
//! renders webhooks; the dashboard crate renders pages; this crate reads
//! bindings, stores, queues, `fetch`es, and maps its one error enum to HTTP
//! once. It exports every Durable Object class it binds ([`events`]'
//! `EventStore`, [`pacer`]'s `Pacer`, [`index`]'s `EventIndex`, [`guard`]'s
//! `Guard`, [`storm`]'s `Storm`) and binds no other Worker, so a first
//! `wrangler deploy` creates all of it.
//!
//! - `POST /v1/notifications` ([`notifications`]): Yunxin's batch JSON,
//!   signed with Standard Webhooks ([`webhook`]).
//! - `POST /v1/hooks/{route}` ([`hooks`]): any source's own payload and
//!   signature, rendered by a route; its silences, quiet hours, digest and
//!   throttle decided by the route's object ([`storm`]).
//! - `POST`/`GET /v1/silences`, `DELETE /v1/silences/{id}` ([`silences`]).
//! - Both then go through [`intake`]: the event is recorded once per id
//!   ([`events`]); by default one message per call is enqueued ([`task`])
//!   and the consumer ([`queue`]) drives the delivery with [`pacer`] slots;
//!   with `Prefer: wait` the request drives it first ([`sync`]).
//! - `GET /v1/events/{id}` and `POST /v1/events/{id}/retry` ([`operator`]):
//!   an event's per-receiver status, and a replay of its failures; the
//!   bearer token only, its wrong guesses limited per client ([`guard`]).
//! - `/dashboard`, `/dashboard/*` and `/metrics` ([`dashboard`]): the
//!   operations dashboard and the Prometheus metrics, from the same values
//!   the JSON API above serialises.
//! - `GET /healthz`.

pub mod body;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod guard;
pub mod hooks;
pub mod index;
pub mod intake;
pub mod meter;
pub mod notifications;
pub mod operator;
pub mod pacer;
pub mod query;
pub mod queue;
pub mod route_config;
pub mod rpc;
pub mod silences;
pub mod storm;
pub mod sync;
pub mod task;
pub mod upstream;
pub mod webhook;

use serde_json::json;
use worker::{Context, Date, Env, MessageBatch, Method, Request, Response, console_log, event};

use crate::config::Config;
use crate::error::RelayError;
use crate::hooks::Hook;
use crate::intake::{Answer, intake, prefers_wait};
use crate::query::Query;
use crate::task::{DEAD_LETTER_QUEUE, DeliveryTask};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    // The meter's own reads are not counted: they are not the relay's work.
    if path != "/__meter" {
        meter::add(|m| m.invocations += 1);
    }
    let result = match (path.as_str(), req.method()) {
        ("/__meter", Method::Get) if env.var("BENCH_METER").is_ok_and(|v| v.to_string() == "1") => {
            Response::from_json(&meter::snapshot()).map_err(RelayError::from)
        }
        ("/healthz", Method::Get | Method::Head) => {
            Response::from_json(&json!({ "status": "ok" })).map_err(RelayError::from)
        }
        ("/healthz", method) => Err(not_allowed(method, "GET")),
        ("/v1/notifications", Method::Post) => take_event(req, &env, &ctx, None).await,
        ("/v1/notifications", method) => Err(not_allowed(method, "POST")),
        (path, Method::Post) if path.starts_with("/v1/hooks/") => {
            let route = path["/v1/hooks/".len()..].to_owned();
            take_event(req, &env, &ctx, Some(route)).await
        }
        (path, method) if path.starts_with("/v1/hooks/") => Err(not_allowed(method, "POST")),
        ("/v1/events", Method::Get) => operator::list(&req, &env).await,
        ("/v1/events", method) => Err(not_allowed(method, "GET")),
        ("/v1/stats", Method::Get) => operator::stats(&req, &env).await,
        ("/v1/stats", method) => Err(not_allowed(method, "GET")),
        ("/v1/silences", Method::Post) => silences::create(req, &env).await,
        ("/v1/silences", Method::Get) => silences::list(&req, &env).await,
        ("/v1/silences", method) => Err(not_allowed(method, "GET, POST")),
        (path, Method::Delete) if path.starts_with("/v1/silences/") => {
            silences::delete(&req, &env, &path["/v1/silences/".len()..]).await
        }
        (path, method) if path.starts_with("/v1/silences/") => Err(not_allowed(method, "DELETE")),
        (path, method) if path.starts_with("/v1/events/") => {
            let rest = &path["/v1/events/".len()..];
            match (rest.strip_suffix("/retry"), method) {
                (Some(segment), Method::Post) => operator::retry(req, &env, segment).await,
                (Some(_), method) => Err(not_allowed(method, "POST")),
                (None, Method::Get) => operator::status(&req, &env, rest).await,
                (None, method) => Err(not_allowed(method, "GET")),
            }
        }
        ("/metrics" | "/dashboard", _) => return dashboard::serve(req, &env).await,
        (path, _) if path.starts_with("/dashboard/") => return dashboard::serve(req, &env).await,
        (path, _) => Err(RelayError::NotFound(path.to_owned())),
    };
    result.or_else(|e| {
        let mut response = Response::from_json(&e.body())?.with_status(e.status());
        match e {
            RelayError::MethodNotAllowed { allowed, .. } => {
                response.headers_mut().set("Allow", allowed)?;
            }
            RelayError::TooManyAttempts { retry_after_secs } => {
                response
                    .headers_mut()
                    .set("Retry-After", &retry_after_secs.to_string())?;
            }
            _ => {}
        }
        Ok(response)
    })
}

#[event(queue)]
async fn queue(batch: MessageBatch<DeliveryTask>, env: Env, _ctx: Context) -> worker::Result<()> {
    meter::add(|m| m.invocations += 1);
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

/// What a route name no route answered to is logged and counted as.
const UNKNOWN_ROUTE: &str = "(unknown)";

fn not_allowed(method: Method, allowed: &'static str) -> RelayError {
    RelayError::MethodNotAllowed {
        method: method.to_string(),
        allowed,
    }
}

/// Takes one event, from `/v1/notifications` or a hook `route`, and writes
/// its one log line, whatever the outcome.
async fn take_event(
    req: Request,
    env: &Env,
    ctx: &Context,
    route: Option<String>,
) -> Result<Response, RelayError> {
    let started = Date::now().as_millis();
    let result = async {
        // The parameters each path takes; any other is refused, so that a
        // misspelling never sends.
        let allowed: &'static [&'static str] = match route {
            None => &["wait"],
            Some(_) => &["wait", "dry_run"],
        };
        let query = Query::of(&req, allowed)?;
        let wait = prefers_wait(&req, &query)?;
        let accepted = match &route {
            None => notifications::accept(req, env).await?,
            Some(route) => match hooks::accept(req, env, route, &query).await? {
                Hook::Event(accepted) => *accepted,
                Hook::Answered(answer) => return Ok(answer),
            },
        };
        intake(accepted, env, wait).await
    }
    .await;
    // The event's index entries, with those of the isolate's other events.
    let deferred = env.clone();
    ctx.wait_until(async move { index::flush_deferred(&deferred).await });

    // The event id is logged only once the event is authenticated, and a
    // route's name only once a route answered to it: before that they are
    // anybody's text, and would let anybody grow the log, the index's rows
    // and the metrics' labels at will.
    let route = route.map(|name| match &result {
        Err(e) if !e.route_exists() => UNKNOWN_ROUTE.to_owned(),
        _ => name,
    });
    let mut line = json!({ "duration_ms": Date::now().as_millis().saturating_sub(started) });
    if let Some(route) = &route {
        line["route"] = json!(route);
    }
    match &result {
        Ok(answer) => {
            line["event_id"] = json!(answer.event_id());
            line["status"] = json!(answer.status());
            if let (Some(line), serde_json::Value::Object(summary)) =
                (line.as_object_mut(), answer.summary())
            {
                line.extend(summary);
            }
        }
        Err(e) => {
            line["status"] = json!(e.status());
            line["error"] = json!(e.code());
            let env = env.clone();
            let rejected = index::raw(&index::Entry::Rejected {
                route,
                status: e.status(),
            });
            ctx.wait_until(async move { index::log(&env, rejected.as_slice()).await });
        }
    }
    console_log!("{line}");
    let answer: Answer = result?;
    Ok(answer.response()?)
}
