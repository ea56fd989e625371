//! The record of each accepted event: one Durable Object per `webhook-id`.
//!
//! Why a Durable Object and not KV: idempotency needs "create if absent" to be
//! atomic. KV is eventually consistent, so the same webhook delivered twice,
//! to two locations or within a minute, could read "absent" twice and be
//! enqueued twice. A Durable Object runs every request for one id in one
//! place, one at a time, over strongly consistent storage.
//!
//! The object holds each planned call (body, trace id, receivers) and its
//! progress, answers the status API, and runs a watchdog alarm that re-enqueues
//! calls whose queue message was lost (the local runtime keeps queues in
//! memory), so that nothing acknowledged with 202 is dropped. Re-sending is
//! safe: the trace id makes Yunxin take each call once, and a finished call
//! ignores later reports.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{
    Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, State, Stub,
    console_log, durable_object,
};
use yunxin_edge::{AccountId, Failure, PlannedRequest};

use crate::queue::{DELIVERIES, DeliveryTask};

/// The binding of the namespace.
pub const BINDING: &str = "EVENTS";
/// How long a `webhook-id` is remembered.
const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// A call not heard of for this long is re-enqueued (`WATCHDOG_SECS`, default 600).
const DEFAULT_WATCHDOG_SECS: u64 = 600;
/// An intake that created the record but never confirmed the enqueue is
/// presumed dead after this long, and a re-delivery enqueues again.
const INTAKE_GRACE_MS: u64 = 30_000;

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    event_id: String,
    requests: usize,
    created_ms: u64,
    enqueued: bool,
}

/// One planned call and what has become of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chunk {
    /// The call, as planned at intake.
    pub request: PlannedRequest,
    /// Attempts made so far.
    pub attempts: u32,
    /// Whether every receiver has its final result.
    pub done: bool,
    /// Receivers that got the notification.
    pub delivered: Vec<AccountId>,
    /// Receivers that did not, with the reason.
    pub failed: Vec<Failure>,
    /// When the next attempt is due, while one is planned.
    pub next_attempt_ms: Option<u64>,
    /// The last retryable error.
    pub last_error: Option<String>,
    /// Last time anyone reported on this call.
    pub updated_ms: u64,
    /// Whether the call went to the dead-letter queue.
    pub dead_lettered: bool,
}

/// What the queue consumer reports after one attempt.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptRecord {
    /// The call failed retryably and will be tried again.
    Retry {
        /// When.
        next_attempt_ms: u64,
        /// Why it failed.
        error: String,
    },
    /// Every receiver has its final result.
    Final {
        /// Receivers that got the notification.
        delivered: Vec<AccountId>,
        /// Receivers that did not.
        failed: Vec<Failure>,
    },
}

/// The answer to creating an event.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    /// False when the `webhook-id` was already known.
    pub created: bool,
    /// Whether the caller must enqueue the calls.
    pub enqueue: bool,
}

/// A receiver still waiting for its final result.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    /// The receiver.
    pub account_id: AccountId,
    /// Attempts made at its call so far.
    pub attempts: u32,
    /// When the next attempt is due (UNIX ms), when known.
    pub next_attempt_at_ms: Option<u64>,
    /// The last retryable error.
    pub last_error: Option<String>,
}

/// The per-receiver report of an event so far.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    /// The `webhook-id`.
    pub event_id: String,
    /// `pending`, `delivered` (every receiver) or `completed_with_failures`.
    pub state: String,
    /// Number of Yunxin calls.
    pub requests: usize,
    /// When the event was accepted (UNIX ms).
    pub created_at_ms: u64,
    /// Receivers that got the notification.
    pub delivered: Vec<AccountId>,
    /// Receivers that did not, with the reason.
    pub failed: Vec<Failure>,
    /// Receivers still waiting.
    pub pending: Vec<Pending>,
    /// Calls that went to the dead-letter queue.
    pub dead_lettered_requests: Vec<usize>,
}

/// The Durable Object class.
#[durable_object]
pub struct EventStore {
    state: State,
    env: Env,
}

fn chunk_key(index: usize) -> String {
    format!("chunk:{index:06}")
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

impl DurableObject for EventStore {
    fn new(state: State, env: Env) -> Self {
        EventStore { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (Method::Put, ["event"]) => {
                let (event_id, requests): (String, Vec<PlannedRequest>) = req.json().await?;
                Response::from_json(&self.create(event_id, requests).await?)
            }
            (Method::Post, ["enqueued"]) => {
                if let Some(mut meta) = self.meta().await? {
                    meta.enqueued = true;
                    self.state.storage().put("meta", &meta).await?;
                }
                Response::from_json(&true)
            }
            (Method::Get, ["status"]) => match self.status().await? {
                Some(status) => Response::from_json(&status),
                None => Response::error("unknown event", 404),
            },
            (Method::Get, ["chunk", index]) => {
                match self.chunk(index.parse().unwrap_or(usize::MAX)).await? {
                    Some(chunk) => Response::from_json(&chunk),
                    None => Response::error("unknown chunk", 404),
                }
            }
            (Method::Post, ["chunk", index, "attempt"]) => {
                let record: AttemptRecord = req.json().await?;
                self.update(index, |chunk| {
                    if chunk.done {
                        return; // a duplicate or late report changes nothing
                    }
                    chunk.attempts += 1;
                    match record {
                        AttemptRecord::Retry {
                            next_attempt_ms,
                            error,
                        } => {
                            chunk.next_attempt_ms = Some(next_attempt_ms);
                            chunk.last_error = Some(error);
                        }
                        AttemptRecord::Final { delivered, failed } => {
                            chunk.delivered = delivered;
                            chunk.failed = failed;
                            chunk.next_attempt_ms = None;
                            chunk.done = true;
                        }
                    }
                })
                .await
            }
            (Method::Post, ["chunk", index, "dead"]) => {
                let reason: String = req.json().await?;
                self.update(index, |chunk| {
                    chunk.dead_lettered = true;
                    if chunk.done {
                        return; // the consumer already recorded why it gave up
                    }
                    chunk.next_attempt_ms = None;
                    chunk.done = true;
                    let code = chunk.failed.first().map_or(0, |f| f.error_code);
                    chunk.failed = chunk
                        .request
                        .receiver_ids
                        .iter()
                        .filter(|id| !chunk.delivered.contains(id))
                        .map(|id| Failure {
                            account_id: id.clone(),
                            error_code: code,
                            error_msg: reason.clone(),
                            retryable: false,
                        })
                        .collect();
                })
                .await
            }
            _ => Response::error("no such route", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(meta) = self.meta().await? else {
            return Response::ok("gone");
        };
        let now = now_ms();
        let watchdog_ms = self.watchdog_secs() * 1000;
        let mut unfinished = false;
        let mut redriven = Vec::new();
        for index in 0..meta.requests {
            let Some(mut chunk) = self.chunk(index).await? else {
                continue;
            };
            if chunk.done {
                continue;
            }
            unfinished = true;
            let due = chunk.updated_ms.max(chunk.next_attempt_ms.unwrap_or(0)) + watchdog_ms;
            if meta.enqueued && now >= due {
                let task = DeliveryTask {
                    event_id: meta.event_id.clone(),
                    index,
                };
                self.env.queue(DELIVERIES)?.send(task).await?;
                chunk.updated_ms = now;
                self.state.storage().put(&chunk_key(index), &chunk).await?;
                redriven.push(index);
            }
        }
        if !redriven.is_empty() {
            console_log!(
                "{}",
                serde_json::json!({ "event_id": meta.event_id, "watchdog_requeued": redriven })
            );
        }
        let forget_at = meta.created_ms + IDEMPOTENCY_WINDOW_MS;
        let next_in_ms = if unfinished {
            watchdog_ms
        } else if now >= forget_at {
            // Finished and older than the idempotency window: forget it.
            self.state.storage().delete_all().await?;
            return Response::ok("forgotten");
        } else {
            forget_at - now
        };
        self.state
            .storage()
            .set_alarm(Duration::from_millis(next_in_ms))
            .await?;
        Response::ok("checked")
    }
}

impl EventStore {
    fn watchdog_secs(&self) -> u64 {
        self.env
            .var("WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(DEFAULT_WATCHDOG_SECS)
    }

    async fn meta(&self) -> Result<Option<Meta>> {
        self.state.storage().get("meta").await
    }

    async fn chunk(&self, index: usize) -> Result<Option<Chunk>> {
        self.state.storage().get(&chunk_key(index)).await
    }

    /// Creates the record unless the id is known. Runs without interleaving:
    /// the object's input gate holds other requests during storage calls.
    async fn create(&self, event_id: String, requests: Vec<PlannedRequest>) -> Result<Created> {
        let now = now_ms();
        if let Some(meta) = self.meta().await? {
            let intake_died = !meta.enqueued && now > meta.created_ms + INTAKE_GRACE_MS;
            return Ok(Created {
                created: false,
                enqueue: intake_died,
            });
        }
        let storage = self.state.storage();
        for request in requests.iter() {
            let chunk = Chunk {
                request: request.clone(),
                attempts: 0,
                done: false,
                delivered: Vec::new(),
                failed: Vec::new(),
                next_attempt_ms: None,
                last_error: None,
                updated_ms: now,
                dead_lettered: false,
            };
            storage.put(&chunk_key(request.index), &chunk).await?;
        }
        let meta = Meta {
            event_id,
            requests: requests.len(),
            created_ms: now,
            enqueued: false,
        };
        storage.put("meta", &meta).await?;
        storage
            .set_alarm(Duration::from_secs(self.watchdog_secs()))
            .await?;
        Ok(Created {
            created: true,
            enqueue: true,
        })
    }

    /// Applies a report to a chunk and stores it.
    async fn update(&self, index: &str, apply: impl FnOnce(&mut Chunk)) -> Result<Response> {
        let index: usize = index.parse().unwrap_or(usize::MAX);
        let Some(mut chunk) = self.chunk(index).await? else {
            return Response::error("unknown chunk", 404);
        };
        apply(&mut chunk);
        chunk.updated_ms = now_ms();
        self.state.storage().put(&chunk_key(index), &chunk).await?;
        Response::from_json(&chunk.done)
    }

    async fn status(&self) -> Result<Option<Status>> {
        let Some(meta) = self.meta().await? else {
            return Ok(None);
        };
        let mut status = Status {
            event_id: meta.event_id,
            state: String::new(),
            requests: meta.requests,
            created_at_ms: meta.created_ms,
            delivered: Vec::new(),
            failed: Vec::new(),
            pending: Vec::new(),
            dead_lettered_requests: Vec::new(),
        };
        for index in 0..meta.requests {
            let Some(chunk) = self.chunk(index).await? else {
                continue;
            };
            if chunk.dead_lettered {
                status.dead_lettered_requests.push(index);
            }
            if chunk.done {
                status.delivered.extend(chunk.delivered);
                status.failed.extend(chunk.failed);
            } else {
                status
                    .pending
                    .extend(chunk.request.receiver_ids.into_iter().map(|id| Pending {
                        account_id: id,
                        attempts: chunk.attempts,
                        next_attempt_at_ms: chunk.next_attempt_ms,
                        last_error: chunk.last_error.clone(),
                    }));
            }
        }
        status.state = if !status.pending.is_empty() {
            "pending"
        } else if status.failed.is_empty() {
            "delivered"
        } else {
            "completed_with_failures"
        }
        .to_owned();
        Ok(Some(status))
    }
}

/// Calls one event's object.
pub struct EventClient {
    stub: Stub,
}

impl EventClient {
    /// The object of the event `event_id`.
    pub fn new(env: &Env, event_id: &str) -> Result<Self> {
        Ok(EventClient {
            stub: env.durable_object(BINDING)?.get_by_name(event_id)?,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Option<T>> {
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_body(body.map(|b| JsValue::from_str(&b)));
        let req = Request::new_with_init(&format!("https://event{path}"), &init)?;
        let mut response = self.stub.fetch_with_request(req).await?;
        match response.status_code() {
            200 => Ok(Some(response.json().await?)),
            404 => Ok(None),
            status => Err(worker::Error::RustError(format!(
                "event store answered {status} to {path}"
            ))),
        }
    }

    fn json(value: &impl Serialize) -> Result<Option<String>> {
        Ok(Some(serde_json::to_string(value)?))
    }

    /// Records a new event, or says it is known.
    pub async fn create(&self, event_id: &str, requests: &[PlannedRequest]) -> Result<Created> {
        self.call(Method::Put, "/event", Self::json(&(event_id, requests))?)
            .await?
            .ok_or_else(|| worker::Error::RustError("event store lost the event".into()))
    }

    /// Confirms that every call was enqueued.
    pub async fn mark_enqueued(&self) -> Result<()> {
        self.call::<bool>(Method::Post, "/enqueued", None)
            .await
            .map(drop)
    }

    /// The event's report so far; `None` for an unknown event.
    pub async fn status(&self) -> Result<Option<Status>> {
        self.call(Method::Get, "/status", None).await
    }

    /// One call and its progress.
    pub async fn chunk(&self, index: usize) -> Result<Option<Chunk>> {
        self.call(Method::Get, &format!("/chunk/{index}"), None)
            .await
    }

    /// Reports one attempt.
    pub async fn record(&self, index: usize, record: &AttemptRecord) -> Result<()> {
        self.call::<bool>(
            Method::Post,
            &format!("/chunk/{index}/attempt"),
            Self::json(record)?,
        )
        .await
        .map(drop)
    }

    /// Marks a call as dead-lettered: its open receivers fail with `reason`.
    pub async fn dead_lettered(&self, index: usize, reason: &str) -> Result<()> {
        self.call::<bool>(
            Method::Post,
            &format!("/chunk/{index}/dead"),
            Self::json(&reason)?,
        )
        .await
        .map(drop)
    }
}
