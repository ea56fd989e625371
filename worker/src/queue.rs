//! The queue consumer: one message per planned call. For each message it
//! asks the event's record what to do ([`EventClient::begin`]), waits for a
//! pacing slot, sends, and reports back ([`EventClient::record`]); the core's
//! `Delivery` inside the record decides whether and when the call goes
//! again, and the message is retried with that delay. A call the delivery
//! gave up on goes to the dead-letter queue.

use std::time::Duration;

use futures_util::future::join_all;
use worker::{
    Date, Delay, Env, Message, MessageBatch, MessageExt, QueueRetryOptionsBuilder, console_log,
};
use yunxin_edge::{Attempt, Recorded};

use crate::config::{Config, MAX_INLINE_WAIT_MS};
use crate::events::{EventClient, Step};
use crate::pacer;
use crate::task::{self, DeliveryTask};
use crate::upstream;

/// The delay before a message whose step failed on our side (storage, queue) is tried again.
const OWN_FAILURE_DELAY_SECS: u32 = 5;

/// What to do with a message after its step.
enum Disposition {
    Ack,
    RetryAt(u64),
}

/// Handles a batch of the delivery queue, every message concurrently (the
/// pacer keeps them apart).
pub async fn deliver(
    batch: MessageBatch<DeliveryTask>,
    env: &Env,
    config: &Config,
) -> worker::Result<()> {
    let messages = batch.messages()?;
    join_all(messages.iter().map(|message| async move {
        match step(message.body(), env, config).await {
            Ok(Disposition::Ack) => message.ack(),
            Ok(Disposition::RetryAt(at_ms)) => retry(message, delay_secs(at_ms)),
            Err(e) => {
                // Our own storage or queue failed: try the whole step again soon.
                console_log!(
                    "{}",
                    serde_json::json!({ "event_id": message.body().event_id, "call": message.body().call, "error": e.to_string() })
                );
                retry(message, OWN_FAILURE_DELAY_SECS)
            }
        }
    }))
    .await;
    Ok(())
}

fn retry(message: &Message<DeliveryTask>, delay_secs: u32) {
    message.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(delay_secs)
            .build(),
    );
}

/// Whole seconds from now until `at_ms`, rounded up (a queue delay has no finer unit).
fn delay_secs(at_ms: u64) -> u32 {
    let ms = at_ms.saturating_sub(now_ms());
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

async fn step(task: &DeliveryTask, env: &Env, config: &Config) -> worker::Result<Disposition> {
    let events = EventClient::new(env, &task.event_id)?;
    let attempt = match events.begin(task.call).await? {
        Step::Send { attempt } => attempt,
        Step::Later { until_ms } => return Ok(Disposition::RetryAt(until_ms)),
        Step::Done => return Ok(Disposition::Ack),
    };
    let inline = |start_ms: u64| start_ms.saturating_sub(now_ms()) <= MAX_INLINE_WAIT_MS;
    match send_on_slot(env, config, &events, attempt, inline, None).await? {
        Sent::Released { at_ms } | Sent::Recorded(Recorded::Retry { at_ms }) => {
            Ok(Disposition::RetryAt(at_ms))
        }
        // Done (dead-lettered if given up), or stale: another message took the call over.
        Sent::Recorded(_) => Ok(Disposition::Ack),
    }
}

/// What became of an attempt handed out by [`EventClient::begin`].
pub enum Sent {
    /// No send slot in time: the attempt was given back; the call may
    /// start again at `at_ms`.
    Released {
        /// When the slot would have come.
        at_ms: u64,
    },
    /// Sent, and what the event's record made of the outcome.
    Recorded(Recorded),
}

/// Sends an attempt handed out by `begin` on the app's next pacing slot, if
/// `may_start(slot_ms)` allows, and reports the outcome to the event's record.
/// The answer is awaited for the upstream timeout, and no later than
/// `deadline_ms`; a call the delivery gave up on goes to the dead-letter queue.
/// The queue consumer and the synchronous path both send this way.
pub async fn send_on_slot(
    env: &Env,
    config: &Config,
    events: &EventClient,
    attempt: Attempt,
    may_start: impl Fn(u64) -> bool,
    deadline_ms: Option<u64>,
) -> worker::Result<Sent> {
    // The send slot after `begin`, so that the call leaves on its slot: a
    // storage round trip between the two would bunch calls together.
    let wait_ms = pacer::reserve(
        env,
        config.credentials.app_key.as_str(),
        config.rate_per_minute,
    )
    .await?;
    let start_ms = now_ms() + wait_ms;
    if !may_start(start_ms) {
        events.release(attempt.id, start_ms).await?;
        return Ok(Sent::Released { at_ms: start_ms });
    }
    Delay::from(Duration::from_millis(start_ms.saturating_sub(now_ms()))).await;

    // A deadline cuts the wait short: a cut-short answer is a lost one,
    // which is retried with the same trace id.
    let timeout_ms = deadline_ms.map_or(config.upstream_timeout_ms, |deadline| {
        config
            .upstream_timeout_ms
            .min(deadline.saturating_sub(now_ms()))
    });
    let outcome = upstream::send(&attempt, config, timeout_ms).await;
    let recorded = events.record(attempt.id, outcome).await?;
    if let Recorded::Done { gave_up: true } = recorded {
        let task = DeliveryTask {
            event_id: events.event_id().to_owned(),
            call: attempt.id.call,
        };
        task::dead_letter(env, &task).await?;
    }
    Ok(Sent::Recorded(recorded))
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Handles a batch of the dead-letter queue: marks each call in its event's
/// record, so the status API shows where it ended. A call the delivery gave
/// up keeps the reason it recorded; one the queue itself gave up (our own
/// storage failing again and again) gets this one.
pub async fn bury(batch: MessageBatch<DeliveryTask>, env: &Env) -> worker::Result<()> {
    for message in batch.messages()? {
        let task = message.body();
        EventClient::new(env, &task.event_id)?
            .dead_lettered(task.call, "dead-lettered: the queue gave up retrying")
            .await?;
        message.ack();
    }
    Ok(())
}
