//! Global pacing: one Durable Object per app key hands out send slots spaced
//! `60 s / YUNXIN_RATE_PER_MINUTE` apart, so that every location together
//! stays within Yunxin's per-minute quota instead of tripping its 416 block.
//!
//! Slots are evenly spaced (no burst allowance) and 2 % wider than the quota
//! strictly needs: calls leave on their slot but reach Yunxin with network
//! jitter, which can bring two of them closer than their slots were.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{
    Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State, durable_object,
};

/// The binding of the namespace.
pub const BINDING: &str = "PACER";

#[derive(Serialize, Deserialize)]
struct Acquire {
    per_minute: u32,
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

    /// `POST /acquire {"per_minute": n}` → milliseconds to wait before sending.
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Acquire { per_minute } = req.json().await?;
        let interval_ms = (60_000_u64 * 102).div_ceil(100 * u64::from(per_minute.max(1)));
        let storage = self.state.storage();
        let now = Date::now().as_millis();
        let next_free: u64 = storage.get("next_free_ms").await?.unwrap_or(0);
        let slot = next_free.max(now);
        storage.put("next_free_ms", slot + interval_ms).await?;
        Response::from_json(&(slot - now))
    }
}

/// Reserves the next send slot of `app_key`; returns how long to wait for it.
pub async fn reserve(env: &Env, app_key: &str, per_minute: u32) -> Result<u64> {
    let stub = env.durable_object(BINDING)?.get_by_name(app_key)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&serde_json::to_string(&Acquire {
            per_minute,
        })?)));
    let mut response = stub
        .fetch_with_request(Request::new_with_init("https://pacer/acquire", &init)?)
        .await?;
    response.json().await
}
