//! `POST /v1/silences`, `GET /v1/silences`, `DELETE /v1/silences/{id}`:
//! the operator's silences, with the status API's credentials (the bearer
//! token). A silence belongs to one route and is kept by that route's
//! object ([`crate::storm`]), which every event of the route asks anyway:
//! silencing costs an event no extra round trip. Listing and deleting ask
//! every configured route's object (one subrequest per route).

use futures_util::future::join_all;
use serde_json::{Value, json};
use worker::{Date, Env, Request, Response};
use yunxin_edge_routes::storm::silence::{Silence, SilenceId};

use crate::body;
use crate::error::RelayError;
use crate::operator;
use crate::route_config;
use crate::storm::StormClient;

/// A silence's body is a few short fields (the matcher at most 1 KiB).
const MAX_SILENCE_BODY_BYTES: u64 = 4096;

/// `POST /v1/silences {route, matcher, ends_at, comment}` → 201 with the
/// silence, or the problem naming its field.
pub async fn create(mut req: Request, env: &Env) -> Result<Response, RelayError> {
    let config = operator::authorized(&req, env).await?;
    let body = body::read(&mut req, MAX_SILENCE_BODY_BYTES, config.body_deadline_ms).await?;
    Ok(match make(env, &body, Date::now().as_millis()).await? {
        Ok(silence) => Response::from_json(&silence)?.with_status(201),
        Err((status, error)) => {
            Response::from_json(&json!({ "error": error }))?.with_status(status)
        }
    })
}

/// Checks a silence's body and has its route's object keep it: the
/// silence's JSON, or the status and `error` object of its problem.
pub async fn make(
    env: &Env,
    body: &[u8],
    now_ms: u64,
) -> Result<Result<Value, (u16, Value)>, RelayError> {
    let routes = route_config::routes(env)?;
    let mut random = [0u8; 12];
    getrandom::fill(&mut random)
        .map_err(|e| RelayError::Internal(format!("no randomness: {e}")))?;
    let id = format!("s{}", hex::encode(random));
    let silence_id = SilenceId::new(id.clone())
        .ok_or_else(|| RelayError::Internal("a silence id out of shape".into()))?;
    // Checked here first: a refusal needs no round trip, and names the
    // route's object to ask.
    let silence = match Silence::parse(body, &routes, silence_id, now_ms) {
        Ok(silence) => silence,
        Err(e) => return Ok(Err((e.status(), e.to_json()))),
    };
    let (status, answer) = StormClient::new(env, &silence.route)?
        .add_silence(body, &id)
        .await?;
    Ok(if status == 201 {
        Ok(answer)
    } else {
        Err((status, answer))
    })
}

/// `GET /v1/silences`: every route's, newest first, expired ones gone.
pub async fn list(req: &Request, env: &Env) -> Result<Response, RelayError> {
    operator::authorized(req, env).await?;
    let now = Date::now().as_millis();
    let listed: Vec<Value> = all(env).await?.iter().map(|s| s.to_json(now)).collect();
    Ok(Response::from_json(&json!({ "silences": listed }))?)
}

/// Every route's silences, newest first.
pub async fn all(env: &Env) -> Result<Vec<Silence>, RelayError> {
    let clients = route_objects(env)?;
    let mut silences = Vec::new();
    for listed in join_all(clients.iter().map(StormClient::silences)).await {
        silences.extend(listed?);
    }
    silences.sort_by_key(|s| std::cmp::Reverse(s.created_at_ms));
    Ok(silences)
}

/// `DELETE /v1/silences/{id}`: 200 when it was kept, 404 otherwise.
pub async fn delete(req: &Request, env: &Env, id: &str) -> Result<Response, RelayError> {
    operator::authorized(req, env).await?;
    if remove(env, id).await? {
        Ok(Response::from_json(&json!({ "deleted": id }))?)
    } else {
        Err(RelayError::NotFound(format!("/v1/silences/{id}")))
    }
}

/// Removes silence `id` from whichever route keeps it; whether one did.
pub async fn remove(env: &Env, id: &str) -> Result<bool, RelayError> {
    if SilenceId::new(id).is_none() {
        return Ok(false);
    }
    let clients = route_objects(env)?;
    let mut removed = false;
    for answer in join_all(clients.iter().map(|c| c.remove_silence(id))).await {
        removed |= answer?;
    }
    Ok(removed)
}

/// The object of every configured route: a silence is kept by its route's.
fn route_objects(env: &Env) -> Result<Vec<StormClient>, RelayError> {
    let routes = route_config::routes(env)?;
    let clients = routes
        .iter()
        .map(|(name, _)| StormClient::new(env, name))
        .collect::<worker::Result<Vec<_>>>()?;
    Ok(clients)
}
