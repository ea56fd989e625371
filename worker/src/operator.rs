//! The operator's API over one event: its status, and replaying its
//! failures.
//!
//! - `GET /v1/events`: the events, newest first, from the [`index`](crate::index).
//! - `GET /v1/events/{id}`: the per-receiver status and the attempts.
//! - `GET /v1/stats`: what `/metrics` and the dashboard's quota view show.
//! - `POST /v1/events/{id}/retry`: sends again the receivers that ended
//!   failed for a retryable reason, or every failed one with
//!   `{"all": true}`. The core's [`Delivery::replay`](yunxin_edge::Delivery::replay)
//!   decides who; the event's record reopens the calls and enqueues them, so
//!   a replay is delivered like any queued event, and two replays at once
//!   send once.
//!
//! All answer a bearer of `STATUS_TOKEN`, or a Standard Webhooks signature
//! over the request's body (empty for a `GET`).

use futures_util::future::join;
use serde::{Deserialize, Serialize};
use worker::{Env, Request, Response};
use yunxin_edge::DeliveryState;
use yunxin_edge::Replay;
use yunxin_edge_index::{EventDetail, EventView, Held, HeldEvent, Page, Stats};
use yunxin_edge_routes::config::is_route_name;
use yunxin_edge_routes::storm::Disposition;

use crate::body;
use crate::config::Config;
use crate::error::RelayError;
use crate::events::EventClient;
use crate::guard::{self, TokenCheck};
use crate::index::{IndexClient, MAX_PAGE, Query};
use crate::storm::StormClient;
use crate::webhook::EventId;

/// A retry request's body is a small JSON object.
const MAX_RETRY_BODY_BYTES: u64 = 1024;

/// The body of `POST /v1/events/{id}/retry` (empty means the defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    /// Every failed receiver, not only those failed for a retryable reason.
    #[serde(default)]
    all: bool,
    /// The unknown receivers too (an answer lost after sending), each call's
    /// under the trace id it was last sent with, so that Yunxin takes them
    /// at most once while it remembers that trace id.
    #[serde(default)]
    unknown: bool,
}

impl RetryRequest {
    /// The body as exactly the documented object: a derived struct would
    /// also take a JSON array of its fields (`[true]`), which nobody means.
    fn parse(body: &[u8]) -> Result<RetryRequest, RelayError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(RetryRequest::default());
        }
        let bad = |e: serde_json::Error| RelayError::BadBody(e.to_string());
        match serde_json::from_slice(body).map_err(bad)? {
            value @ serde_json::Value::Object(_) => serde_json::from_value(value).map_err(bad),
            _ => Err(RelayError::BadBody(
                r#"must be a JSON object such as {"all": true} or {"unknown": true}"#.into(),
            )),
        }
    }
}

/// The answer to a retry.
#[derive(Debug, Serialize)]
struct RetryAnswer<'a> {
    event_id: &'a str,
    /// Receivers sent again.
    retried_receivers: usize,
    /// The calls reopened.
    requests: &'a [usize],
    status_url: String,
}

/// `GET /v1/events/{id}`: the record's status, with the index's route and
/// attempts timeline.
pub async fn status(req: &Request, env: &Env, segment: &str) -> Result<Response, RelayError> {
    authorized(req, env).await?;
    let detail = event_detail(env, &event_id(segment)?)
        .await?
        .ok_or_else(|| not_found(segment))?;
    Ok(Response::from_json(&detail)?)
}

/// An event's status from its record, with its route and attempts from the
/// index, both asked at once; `None` for an event its record does not know.
/// The index is for the operator: without it the status still answers,
/// with no route and no attempts.
pub async fn event_detail(env: &Env, id: &EventId) -> Result<Option<EventView>, RelayError> {
    let events = EventClient::new(env, id.as_str())?;
    let index = IndexClient::new(env)?;
    // A route's event (`{route}:{key}`) may have been held by the route's
    // object: asked at the same time.
    let route = route_of(id.as_str());
    let storm = route
        .map(|route| StormClient::new(env, route))
        .transpose()?;
    let held = async {
        match &storm {
            Some(storm) => storm.held(id.as_str()).await,
            None => Ok(None),
        }
    };
    let ((status, detail), held) =
        join(join(events.status(), index.detail(id.as_str())), held).await;
    let held = held?;
    let Some(event) = status? else {
        let (Some(disposition), Some(route)) = (held, route) else {
            return Ok(None);
        };
        let digest_status_url = match &disposition {
            Disposition::Digested(digested) => EventId::parse(digested.digest_id.as_str())
                .ok()
                .map(|digest| digest.status_url()),
            _ => None,
        };
        return Ok(Some(EventView::Held(Box::new(HeldEvent {
            event_id: id.to_string(),
            route: route.to_owned(),
            state: Held::Held,
            disposition,
            digest_status_url,
        }))));
    };
    let detail = detail.ok().flatten().unwrap_or_default();
    let digest_of = match &storm {
        Some(storm) if id.as_str().contains(":digest:") => storm.digest_events(id.as_str()).await?,
        _ => Vec::new(),
    };
    Ok(Some(EventView::Sent(Box::new(EventDetail {
        event,
        route: detail.route,
        attempts: detail.attempts,
        // Only a throttle both sends and holds: its record shows who was held.
        disposition: held.filter(|d| matches!(d, Disposition::Throttled { .. })),
        digest_of,
    }))))
}

/// The route of a route's event id (`{route}:{key}`), if it has one.
fn route_of(event_id: &str) -> Option<&str> {
    let (route, _) = event_id.split_once(':')?;
    is_route_name(route).then_some(route)
}

/// `GET /v1/events?state=&route=&limit=&cursor=`: the index's events,
/// newest first.
pub async fn list(req: &Request, env: &Env) -> Result<Response, RelayError> {
    authorized(req, env).await?;
    let query = list_query(req.url()?.query_pairs())?;
    Ok(Response::from_json(&events(env, query).await?)?)
}

/// A page of events from the index.
pub async fn events(env: &Env, query: Query) -> Result<Page, RelayError> {
    Ok(IndexClient::new(env)?.list(query).await?)
}

/// The list's query from `GET /v1/events`' parameters (the dashboard's
/// filters are the same).
pub fn list_query<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<Query, RelayError> {
    let mut query = Query {
        limit: 50,
        ..Query::default()
    };
    for (name, value) in pairs {
        match name.as_ref() {
            "state" if !value.is_empty() => {
                query.state = Some(match value.as_ref() {
                    "pending" => DeliveryState::Pending,
                    "delivered" => DeliveryState::Delivered,
                    "completed_with_failures" => DeliveryState::CompletedWithFailures,
                    _ => {
                        return Err(RelayError::BadQuery {
                            parameter: "state",
                            problem: "must be pending, delivered or completed_with_failures",
                        });
                    }
                });
            }
            "route" if !value.is_empty() => query.route = Some(value.into_owned()),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(RelayError::BadQuery {
                        parameter: "limit",
                        problem: "must be a whole number from 1 to 100",
                    })?;
            }
            "cursor" if !value.is_empty() => {
                if yunxin_edge_index::parse_cursor(&value).is_none() {
                    return Err(RelayError::BadQuery {
                        parameter: "cursor",
                        problem: "is not a next_cursor this API gave",
                    });
                }
                query.cursor = Some(value.into_owned());
            }
            _ => {}
        }
    }
    Ok(query)
}

/// `GET /v1/stats`: counters, histograms and upstream calls per minute over
/// the last hour, for the dashboard and `/metrics`.
pub async fn stats(req: &Request, env: &Env) -> Result<Response, RelayError> {
    let config = authorized(req, env).await?;
    Ok(Response::from_json(&stats_of(env, &config).await?)?)
}

/// The index's stats, drawn against the configured quota.
pub async fn stats_of(env: &Env, config: &Config) -> Result<Stats, RelayError> {
    Ok(IndexClient::new(env)?.stats(config.rate_per_minute).await?)
}

/// `POST /v1/events/{id}/retry`: 202 when receivers go again, 200 when there
/// was nothing to send.
pub async fn retry(mut req: Request, env: &Env, segment: &str) -> Result<Response, RelayError> {
    let config = authorized(&req, env).await?;
    let body = body::read(&mut req, MAX_RETRY_BODY_BYTES, config.body_deadline_ms).await?;
    let asked = RetryRequest::parse(&body)?;
    let id = event_id(segment)?;
    let replay: Replay = EventClient::new(env, id.as_str())?
        .replay_with(asked.all, asked.unknown)
        .await?
        .ok_or_else(|| not_found(segment))?;
    let answer = RetryAnswer {
        event_id: id.as_str(),
        retried_receivers: replay.receivers,
        requests: &replay.calls,
        status_url: id.status_url(),
    };
    let status = if replay.receivers > 0 { 202 } else { 200 };
    Ok(Response::from_json(&answer)?.with_status(status))
}

/// The configuration, once the request is authorised (see [`authorize`]).
pub async fn authorized(req: &Request, env: &Env) -> Result<Config, RelayError> {
    let config = Config::from_env(env)?;
    authorize(req, env, &config).await?;
    Ok(config)
}

/// A bearer of `STATUS_TOKEN`, from a client not limited for wrong ones
/// ([`guard`]). Only the bearer token: a Standard Webhooks signature covers
/// a body but not the method and path it was sent to, so a signed request
/// could be replayed against another event.
async fn authorize(req: &Request, env: &Env, config: &Config) -> Result<(), RelayError> {
    let (Some(expected), Some(presented)) = (config.status_token.as_ref(), guard::bearer(req))
    else {
        return Err(RelayError::BadBearer);
    };
    match guard::check_token(env, req, expected.expose(), &presented).await? {
        TokenCheck::Right => Ok(()),
        TokenCheck::Wrong => Err(RelayError::BadBearer),
        TokenCheck::Limited { retry_after_secs } => {
            Err(RelayError::TooManyAttempts { retry_after_secs })
        }
    }
}

/// The event id of a path segment (percent-encoded, as status URLs are).
fn event_id(segment: &str) -> Result<EventId, RelayError> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .and_then(|id| EventId::parse(&id).ok())
        .ok_or_else(|| not_found(segment))
}

fn not_found(segment: &str) -> RelayError {
    RelayError::NotFound(format!("/v1/events/{segment}"))
}
