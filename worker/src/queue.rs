//! The queue consumer: one message per planned call. Each attempt waits for a
//! pacing slot, sends, and reports to the event's record. A retryable failure
//! is retried on the backoff schedule (at least `RATE_LIMIT_BACKOFF_SECS`
//! after a 416, at least the answer's `Retry-After`) with the same trace id;
//! after the last attempt the call's open receivers are recorded as failed
//! and the message goes to the dead-letter queue.

use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use worker::{Date, Delay, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, console_log};
use yunxin_edge::{Report, RetryVerdict};

use crate::config::Config;
use crate::events::{AttemptRecord, EventClient};
use crate::pacer;
use crate::relay::{Attempt, send_once};

/// The producer binding of the delivery queue.
pub const DELIVERIES: &str = "DELIVERIES";
/// The producer binding of the dead-letter queue.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// Longest pacing wait spent inside one invocation; longer waits go back to the queue.
const MAX_INLINE_WAIT_MS: u64 = 20_000;

/// A message of both queues: which call of which event. The call itself lives
/// in the event's record, which is the source of truth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryTask {
    /// The `webhook-id`.
    pub event_id: String,
    /// The call's index in the plan.
    pub index: usize,
}

/// What to do with a message after an attempt.
enum Disposition {
    Ack,
    RetryAfter(u32),
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
        match attempt(message.body(), env, config).await {
            Ok(Disposition::Ack) => message.ack(),
            Ok(Disposition::RetryAfter(secs)) => {
                message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build())
            }
            Err(e) => {
                // Our own storage or queue failed: try the whole step again soon.
                console_log!("{}", serde_json::json!({ "event_id": message.body().event_id, "error": e.to_string() }));
                message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(5).build())
            }
        }
    }))
    .await;
    Ok(())
}

async fn attempt(task: &DeliveryTask, env: &Env, config: &Config) -> worker::Result<Disposition> {
    let events = EventClient::new(env, &task.event_id)?;
    let Some(chunk) = events.chunk(task.index).await? else {
        return Ok(Disposition::Ack); // forgotten after the idempotency window
    };
    if chunk.done {
        return Ok(Disposition::Ack); // a duplicate message
    }

    let wait_ms = pacer::reserve(
        env,
        config.credentials.app_key.as_str(),
        config.rate_per_minute,
    )
    .await?;
    if wait_ms > MAX_INLINE_WAIT_MS {
        return Ok(Disposition::RetryAfter((wait_ms / 1000) as u32));
    }
    Delay::from(Duration::from_millis(wait_ms)).await;

    let Attempt {
        outcome,
        retry_after_secs,
    } = send_once(&chunk.request, config).await;
    let attempts = chunk.attempts + 1;
    let mut report = Report::default();
    report.add(&chunk.request.receiver_ids, Some(&outcome));
    let verdict = outcome.retry();

    if let RetryVerdict::Retry { min_delay_secs } = verdict
        && attempts < config.max_attempts()
    {
        let scheduled = config.retry_schedule_secs[attempts as usize - 1];
        let floor = if min_delay_secs > 0 {
            config.rate_limit_backoff_secs
        } else {
            0
        };
        let delay = scheduled
            .max(floor)
            .max(retry_after_secs.unwrap_or(0) as u32);
        let error = report
            .failed
            .first()
            .map(|f| f.error_msg.clone())
            .unwrap_or_default();
        let next_attempt_ms = Date::now().as_millis() + u64::from(delay) * 1000;
        events
            .record(
                task.index,
                &AttemptRecord::Retry {
                    next_attempt_ms,
                    error,
                },
            )
            .await?;
        return Ok(Disposition::RetryAfter(delay));
    }

    let gave_up = verdict.is_retryable();
    if gave_up {
        for failure in &mut report.failed {
            failure.error_msg = format!("gave up after {attempts} attempts: {}", failure.error_msg);
            failure.retryable = false;
        }
    }
    let record = AttemptRecord::Final {
        delivered: report.delivered,
        failed: report.failed,
    };
    events.record(task.index, &record).await?;
    if gave_up {
        env.queue(DEAD_LETTERS)?.send(task.clone()).await?;
    }
    Ok(Disposition::Ack)
}

/// Handles a batch of the dead-letter queue: marks each call in its event's
/// record, so the status API shows where it ended. A call the consumer gave
/// up keeps the reason it recorded; one the queue itself gave up (our own
/// storage failing again and again) gets this one.
pub async fn bury(batch: MessageBatch<DeliveryTask>, env: &Env) -> worker::Result<()> {
    for message in batch.messages()? {
        let task = message.body();
        EventClient::new(env, &task.event_id)?
            .dead_lettered(task.index, "dead-lettered: the queue gave up retrying")
            .await?;
        message.ack();
    }
    Ok(())
}
