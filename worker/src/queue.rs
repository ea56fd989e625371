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
use yunxin_edge::Recorded;

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
    let ms = at_ms.saturating_sub(Date::now().as_millis());
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

async fn step(task: &DeliveryTask, env: &Env, config: &Config) -> worker::Result<Disposition> {
    let events = EventClient::new(env, &task.event_id)?;
    let attempt = match events.begin(task.call).await? {
        Step::Send { attempt } => attempt,
        Step::Later { until_ms } => return Ok(Disposition::RetryAt(until_ms)),
        Step::Done => return Ok(Disposition::Ack),
    };

    // The send slot after `begin`, so that the call leaves on its slot: a
    // storage round trip between the two would bunch calls together.
    let wait_ms = pacer::reserve(
        env,
        config.credentials.app_key.as_str(),
        config.rate_per_minute,
    )
    .await?;
    if wait_ms > MAX_INLINE_WAIT_MS {
        let at_ms = Date::now().as_millis() + wait_ms;
        events.release(attempt.id, at_ms).await?;
        return Ok(Disposition::RetryAt(at_ms));
    }
    Delay::from(Duration::from_millis(wait_ms)).await;

    let outcome = upstream::send(&attempt, config, config.upstream_timeout_ms).await;
    match events.record(attempt.id, outcome).await? {
        Recorded::Retry { at_ms } => Ok(Disposition::RetryAt(at_ms)),
        Recorded::Done { gave_up: true } => {
            task::dead_letter(env, task).await?;
            Ok(Disposition::Ack)
        }
        // Done, or stale: another message took the call over.
        _ => Ok(Disposition::Ack),
    }
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
