//! Global pacing: one Durable Object per app key keeps the app's
//! [`Pace`] and grants send slots from it (the core decides the spacing), so
//! that every location together stays within Yunxin's per-minute quota
//! instead of tripping its 416 block. A queue batch asks once for all its
//! calls. After a 416 the pacer is paused until Yunxin's block of the app
//! ends ([`pause`]), so that no other call burns a 416 meanwhile; this
//! isolate also remembers the block ([`blocked_until`]), so that slots it
//! was granted before the 416 are not used during it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use crate::rpc;
use serde::{Deserialize, Serialize};
use worker::{Date, DurableObject, Env, Request, Response, Result, State, durable_object};
use yunxin_edge::pacing::{self, Grant, Pace};

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

/// `POST /pause`: grant nothing that starts before `until_ms`.
#[derive(Serialize, Deserialize)]
struct Pause {
    until_ms: u64,
}

thread_local! {
    /// The end of the latest block of the app this isolate has seen. Slots
    /// granted before a 416 (a queue batch holds them up to
    /// `MAX_INLINE_WAIT_MS` ahead) are checked against it before they are
    /// used: the pacer cannot take them back. Other isolates holding slots
    /// learn of the block from their own first 416.
    static BLOCKED_UNTIL_MS: Cell<u64> = const { Cell::new(0) };
}

thread_local! {
    /// Slots this isolate holds for the synchronous path, leased from the
    /// pacer in blocks ([`lease_slot`]), with the app key and quota they
    /// were leased under.
    static LEASE: RefCell<Lease> = RefCell::new(Lease::default());
}

/// A block of slots leased from the app's pacer.
#[derive(Default)]
struct Lease {
    app_key: String,
    per_minute: u32,
    starts_ms: VecDeque<u64>,
}

/// The most slots one lease takes: at most `LEASE_HORIZON_MS` of the quota.
const LEASE_SLOTS: usize = 16;
/// How far ahead a lease reaches. A leased slot nobody uses is lost (the
/// quota is never exceeded, only left idle), so a lease is short.
const LEASE_HORIZON_MS: u64 = 1_000;

/// One send slot for a synchronous call, no later than `max_wait_ms` from
/// now: from this isolate's lease when it holds one still usable
/// ([`pacing::may_leave`]), else from a new lease of up to [`LEASE_SLOTS`]
/// slots within [`LEASE_HORIZON_MS`] (the call takes the first). Most events
/// thus ask the pacer nothing, and each slot is used at most once, so the
/// quota holds in any 60 s window as it does for single grants. Answers the
/// slot (or when to come back) and whether the pacer was asked.
pub async fn lease_slot(
    env: &Env,
    app_key: &str,
    per_minute: u32,
    max_wait_ms: u64,
) -> Result<(Result<u64, u64>, bool)> {
    let now = Date::now().as_millis();
    let latest = now.saturating_add(max_wait_ms);
    let take = |lease: &mut Lease| -> Option<u64> {
        if lease.app_key != app_key || lease.per_minute != per_minute {
            *lease = Lease {
                app_key: app_key.to_owned(),
                per_minute,
                starts_ms: VecDeque::new(),
            };
        }
        while let Some(&start) = lease.starts_ms.front() {
            if pacing::may_leave(start, now) {
                break;
            }
            lease.starts_ms.pop_front();
        }
        match lease.starts_ms.front() {
            Some(&start) if start <= latest && start >= blocked_until() => {
                lease.starts_ms.pop_front()
            }
            _ => None,
        }
    };
    if let Some(start) = LEASE.with_borrow_mut(take) {
        return Ok((Ok(start), false));
    }
    let grant = grant(
        env,
        app_key,
        per_minute,
        LEASE_SLOTS,
        max_wait_ms.min(LEASE_HORIZON_MS),
    )
    .await?;
    let mut starts = grant.starts_ms.into_iter();
    let Some(first) = starts.next() else {
        return Ok((Err(grant.next_ms), true));
    };
    LEASE.with_borrow_mut(|lease| {
        if lease.app_key == app_key && lease.per_minute == per_minute {
            lease.starts_ms.extend(starts);
            lease.starts_ms.make_contiguous().sort_unstable();
        }
    });
    Ok((Ok(first), true))
}

/// When this isolate last learnt that the app's block ends (0: none seen).
pub fn blocked_until() -> u64 {
    BLOCKED_UNTIL_MS.get()
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

    /// `POST /grant` → a [`Grant`]; `POST /pause` → `true`.
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if req.path() == "/pause" {
            let Pause { until_ms } = req.json().await?;
            let mut pace: Pace = storage.get("pace").await?.unwrap_or_default();
            pace.pause_until(until_ms);
            storage.put("pace", pace).await?;
            crate::meter::add(|m| m.sqlite_rows_written += 1);
            return Response::from_json(&true);
        }
        let Ask {
            per_minute,
            count,
            max_wait_ms,
        } = req.json().await?;
        let mut pace: Pace = storage.get("pace").await?.unwrap_or_default();
        let grant = pace.grant(Date::now().as_millis(), per_minute, count, max_wait_ms);
        if !grant.starts_ms.is_empty() {
            storage.put("pace", pace).await?;
            crate::meter::add(|m| m.sqlite_rows_written += 1);
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
    let body = serde_json::to_string(&ask)?;
    let response = rpc::post(&stub, "/grant", body, &[]).await?;
    Ok(serde_json::from_str(
        &crate::body::response_text(response).await?,
    )?)
}

/// Pauses `app_key`'s pacer, and this isolate, until `until_ms`: Yunxin
/// answered 416 and blocks the app until then.
pub async fn pause(env: &Env, app_key: &str, until_ms: u64) -> Result<()> {
    BLOCKED_UNTIL_MS.set(BLOCKED_UNTIL_MS.get().max(until_ms));
    // Leased slots inside the block would only burn 416s.
    LEASE.with_borrow_mut(|lease| lease.starts_ms.retain(|start| *start >= until_ms));
    let stub = env.durable_object(BINDING)?.get_by_name(app_key)?;
    let body = serde_json::to_string(&Pause { until_ms })?;
    rpc::post(&stub, "/pause", body, &[]).await?;
    Ok(())
}
