//! `POST /v1/notifications`: a body that already is Yunxin's batch JSON,
//! signed with Standard Webhooks under the relay's `WEBHOOK_SECRET`.

use worker::{Env, Request};
use yunxin_edge::{BatchNotification, Plan, PlanOptions};

use crate::body;
use crate::config::{Config, MAX_BODY_BYTES};
use crate::error::RelayError;
use crate::intake::Accepted;
use crate::webhook;

/// Checks media type, id, size, signature and body, in that order, and plans.
pub async fn accept(mut req: Request, env: &Env) -> Result<Accepted, RelayError> {
    let config = Config::from_env(env)?;

    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(RelayError::UnsupportedMediaType(content_type));
    }
    let event_id = webhook::event_id_header(&req)?;
    let body = body::read(&mut req, MAX_BODY_BYTES, config.body_deadline_ms).await?;
    webhook::verify(&req, &config, &body)?;

    let notification = BatchNotification::from_json(&body)?;
    let options = PlanOptions::for_event(event_id.as_str()).max_receivers(config.max_receivers);
    let plan = Plan::new(&notification, &options)?;
    Ok(Accepted::new(config, event_id, &body, plan))
}
