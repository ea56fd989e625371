//! Global pacing: one Durable Object per app key keeps the app's
//! [`Pace`] and grants send slots from it (the core decides the spacing), so
//! that every location together stays within Yunxin's per-minute quota
//! instead of tripping its 416 block. A queue batch asks once for all its
//! calls.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{
    Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State, durable_object,
};
use yunxin_edge::pacing::{Grant, Pace};

/// The binding of the namespace.
pub const BINDING: &str = "PACER";

/// `POST /grant`: up to `count` slots of a `per_minute` quota, none later
/// than `max_wait_ms` from now.
#[derive(Serialize, Deserialize)]
struct Ask {
    per_minute: u32,
    count: usize,
    max_wait_ms: u64,
}

/// The Durable Object class.
#[durable_object]
pub struct Pacer {
    state: State,
}

impl DurableObject for Pacer {
    fn new(state: State, _env: Env) -> Self {
        Pacer { state }
    }

    /// `POST /grant` → a [`Grant`].
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Ask {
            per_minute,
            count,
            max_wait_ms,
        } = req.json().await?;
        let storage = self.state.storage();
        let mut pace: Pace = storage.get("pace").await?.unwrap_or_default();
        let grant = pace.grant(Date::now().as_millis(), per_minute, count, max_wait_ms);
        if !grant.starts_ms.is_empty() {
            storage.put("pace", pace).await?;
        }
        Response::from_json(&grant)
    }
}

/// Asks `app_key`'s pacer for up to `count` send slots no later than
/// `max_wait_ms` from now.
pub async fn grant(
    env: &Env,
    app_key: &str,
    per_minute: u32,
    count: usize,
    max_wait_ms: u64,
) -> Result<Grant> {
    let stub = env.durable_object(BINDING)?.get_by_name(app_key)?;
    let ask = Ask {
        per_minute,
        count,
        max_wait_ms,
    };
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&serde_json::to_string(&ask)?)));
    let mut response = stub
        .fetch_with_request(Request::new_with_init("https://pacer/grant", &init)?)
        .await?;
    response.json().await
}
