//! The message of both queues, and how it is enqueued: a leaf that the
//! intake, the event store's watchdog and the consumer all use.

use serde::{Deserialize, Serialize};
use worker::{Env, Result};

/// The producer binding of the delivery queue.
pub const DELIVERIES: &str = "DELIVERIES";
/// The producer binding of the dead-letter queue.
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// The dead-letter queue's name in `wrangler.toml` (a consumer sees names, not bindings).
pub const DEAD_LETTER_QUEUE: &str = "yunxin-edge-dead-letters";
/// Messages per `sendBatch`: 8 calls stay far under its 256 KB (a message
/// names a call; the call itself lives in the event's record).
const SEND_BATCH: usize = 8;

/// Which call of which event. The event's record is the source of truth:
/// a message is only a nudge to look at that call, so a duplicate or a
/// late message is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTask {
    /// The `webhook-id`.
    pub event_id: String,
    /// The call's index in the plan.
    pub call: usize,
    /// How many times the event's failures had been replayed when this was
    /// enqueued: a dead-letter message from before a replay is stale.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
}

fn is_zero(round: &u32) -> bool {
    *round == 0
}

/// Enqueues one message per call of `event_id` on the delivery queue, in
/// replay `round`.
pub async fn enqueue(
    env: &Env,
    event_id: &str,
    round: u32,
    calls: impl IntoIterator<Item = usize>,
) -> Result<()> {
    let tasks: Vec<DeliveryTask> = calls
        .into_iter()
        .map(|call| DeliveryTask {
            event_id: event_id.to_owned(),
            call,
            round,
        })
        .collect();
    let queue = env.queue(DELIVERIES)?;
    for batch in tasks.chunks(SEND_BATCH) {
        queue.send_batch(batch.to_vec()).await?;
        crate::meter::add(|m| m.queue_writes += batch.len() as u64);
    }
    Ok(())
}

/// Sends one call to the dead-letter queue.
pub async fn dead_letter(env: &Env, task: &DeliveryTask) -> Result<()> {
    env.queue(DEAD_LETTERS)?.send(task.clone()).await?;
    crate::meter::add(|m| m.queue_writes += 1);
    Ok(())
}
