//! The queue consumer: one message per planned call. For each message it
//! asks the event's record what to do ([`EventClient::begin`]), waits for its
//! pacing slot (one pacer request per batch), sends, and reports back
//! ([`EventClient::record`]); the core's
//! `Delivery` inside the record decides whether and when the call goes
//! again, and the message is retried with that delay. A call the delivery
//! gave up on goes to the dead-letter queue.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::{join, join_all};
use worker::{
    Date, Delay, Env, Message, MessageBatch, MessageExt, QueueRetryOptionsBuilder, console_log,
};
use yunxin_edge::{Attempt, Recorded, pacing};

use crate::config::{Config, MAX_INLINE_WAIT_MS};
use crate::events::{EventClient, EventStatus, RecordedWith, Sent, Step};
use crate::index::{self, Batch, Entry, Wait};
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

/// Handles a batch of the delivery queue: asks every message's event record
/// for its next step and, meanwhile, the pacer once for slots for the whole
/// batch, then sends each attempt on its slot, concurrently. Attempts
/// without a slot within [`MAX_INLINE_WAIT_MS`] are given back and come back
/// in order.
pub async fn deliver(
    batch: MessageBatch<DeliveryTask>,
    env: &Env,
    config: &Config,
) -> worker::Result<()> {
    let messages = batch.messages()?;
    crate::meter::add(|m| m.queue_reads += messages.len() as u64);
    // The records and the pacer are asked at once: asking for slots only
    // after the records answered would leave the quota idle for a round
    // trip per batch. A slot the batch does not use is lost, never reused;
    // a call ready after its slot leaves late, within `pacing::MAX_LAG_MS`.
    let (steps, grant) = join(
        begin_all(&messages, env),
        pacer::grant(
            env,
            config.credentials.app_key.as_str(),
            config.rate_per_minute,
            messages.len(),
            MAX_INLINE_WAIT_MS,
        ),
    )
    .await;

    // Each attempt's turn, in batch order: its slot, or when to come back.
    let mut turns = Vec::with_capacity(messages.len());
    let (mut granted, mut refused) = (0, 0);
    for step in &steps {
        let turn = match (step, &grant) {
            (Ok(Step::Send { .. }), Ok(grant)) => match grant.starts_ms.get(granted) {
                Some(start_ms) => {
                    granted += 1;
                    Turn::Send(*start_ms)
                }
                None => {
                    refused += 1;
                    Turn::Release(grant.retry_at_ms(refused - 1, config.rate_per_minute))
                }
            },
            // The pacer failed: give the attempt back, to try again soon.
            (Ok(Step::Send { .. }), Err(_)) => {
                Turn::Release(now_ms() + u64::from(OWN_FAILURE_DELAY_SECS) * 1000)
            }
            // Nothing to send: the turn goes unused.
            _ => Turn::Release(now_ms()),
        };
        turns.push(turn);
    }

    // How long the messages waited for this consumer, and the attempts will
    // for their slots: measured for /metrics, written while they wait.
    let now = now_ms();
    let lags = messages.iter().map(|m| Entry::Waited {
        what: Wait::QueueLag,
        ms: now.saturating_sub(m.timestamp().as_millis()),
    });
    let waits = turns.iter().filter_map(|turn| match turn {
        Turn::Send(start_ms) => Some(Entry::Waited {
            what: Wait::PacerWait,
            ms: start_ms.saturating_sub(now),
        }),
        Turn::Release(_) => None,
    });
    let journal = Batch::default();
    for entry in lags.chain(waits) {
        journal.add(&entry);
    }

    let runs = messages.iter().zip(steps).zip(turns);
    let journal = &journal;
    join_all(runs.map(|((message, step), turn)| async move {
        match run(message.body(), step, turn, env, config, journal).await {
            Ok(Disposition::Ack) => {
                crate::meter::add(|m| m.queue_deletes += 1);
                message.ack()
            }
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
    // Every attempt's entry and the waits, in one request to the index,
    // with the entries the isolate's intakes deferred meanwhile.
    index::log_with_deferred(env, journal.take()).await;
    Ok(())
}

/// When an attempt of a batch goes.
enum Turn {
    /// On this slot.
    Send(u64),
    /// Not now: given back, to start again at this time.
    Release(u64),
}

/// Every message's next step, asked of its event's record: one round trip
/// (and one write of the record) per event in the batch, not per message.
async fn begin_all(messages: &[Message<DeliveryTask>], env: &Env) -> Vec<worker::Result<Step>> {
    let mut by_event: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, message) in messages.iter().enumerate() {
        by_event
            .entry(&message.body().event_id)
            .or_default()
            .push(i);
    }
    let answers = join_all(by_event.iter().map(|(event_id, indices)| async move {
        let calls = indices.iter().map(|&i| messages[i].body().call).collect();
        EventClient::new(env, event_id)?.begin_all(calls).await
    }))
    .await;
    let mut steps: Vec<Option<worker::Result<Step>>> = messages.iter().map(|_| None).collect();
    for (indices, answer) in by_event.values().zip(answers) {
        match answer {
            Ok(answered) => {
                for (&i, step) in indices.iter().zip(answered) {
                    steps[i] = Some(Ok(step));
                }
            }
            Err(e) => {
                for &i in indices {
                    steps[i] = Some(Err(worker::Error::RustError(e.to_string())));
                }
            }
        }
    }
    steps
        .into_iter()
        .map(|step| step.unwrap_or(Ok(Step::Done)))
        .collect()
}

/// One message's step, on its turn.
async fn run(
    task: &DeliveryTask,
    step: worker::Result<Step>,
    turn: Turn,
    env: &Env,
    config: &Config,
    journal: &Batch,
) -> worker::Result<Disposition> {
    let attempt = match step? {
        Step::Done => return Ok(Disposition::Ack),
        Step::Later { until_ms } => return Ok(Disposition::RetryAt(until_ms)),
        Step::Send { attempt } => attempt,
    };
    let events = EventClient::new(env, &task.event_id)?;
    match turn {
        Turn::Release(at_ms) => {
            events.release(attempt.id, at_ms).await?;
            Ok(Disposition::RetryAt(at_ms))
        }
        // Too late for its slot (a slow record): it asks for another.
        Turn::Send(start_ms) if !pacing::may_leave(start_ms, now_ms()) => {
            events.release(attempt.id, now_ms()).await?;
            Ok(Disposition::RetryAt(now_ms()))
        }
        Turn::Send(start_ms) => Ok(
            match send_on_slot(
                env, config, &events, task.round, attempt, start_ms, None, journal, false,
            )
            .await?
            .0
            {
                Recorded::Retry { at_ms } => Disposition::RetryAt(at_ms),
                // Done (dead-lettered if given up), or stale: another message took the call over.
                _ => Disposition::Ack,
            },
        ),
    }
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

/// Sends an attempt handed out by `begin` on its pacing slot `start_ms`,
/// and reports the outcome to the event's record. The answer is awaited for
/// the upstream timeout, and no later than `deadline_ms`; a call the
/// delivery gave up on goes to the dead-letter queue (as a message of replay
/// `round`); the index's entry for the attempt goes to `journal`. The queue
/// consumer and the synchronous path both send this way; the synchronous
/// path asks to `finish` (see [`EventClient::record`]), and gets the event's
/// status once every call is finished.
#[allow(clippy::too_many_arguments)]
pub async fn send_on_slot(
    env: &Env,
    config: &Config,
    events: &EventClient,
    round: u32,
    attempt: Attempt,
    start_ms: u64,
    deadline_ms: Option<u64>,
    journal: &Batch,
    finish: bool,
) -> worker::Result<(Recorded, Option<Box<EventStatus>>)> {
    Delay::from(Duration::from_millis(start_ms.saturating_sub(now_ms()))).await;

    // A 416 seen since the slot was granted: the app is blocked, and this
    // call would only burn another 416. It goes back, for after the block.
    let blocked_until = pacer::blocked_until();
    if now_ms() < blocked_until {
        events.release(attempt.id, blocked_until).await?;
        return Ok((
            Recorded::Retry {
                at_ms: blocked_until,
            },
            None,
        ));
    }

    // A deadline cuts the wait short: a cut-short answer is a lost one,
    // which is retried with the same trace id.
    let timeout_ms = deadline_ms.map_or(config.upstream_timeout_ms, |deadline| {
        config
            .upstream_timeout_ms
            .min(deadline.saturating_sub(now_ms()))
    });
    let started_at_ms = now_ms();
    let exchanged = upstream::send(&attempt, config, timeout_ms).await;
    let sent = Sent {
        trace_id: attempt.trace_id.to_string(),
        endpoint: exchanged.endpoint.base_url().to_owned(),
        http_status: exchanged.http_status,
        started_at_ms,
        latency_ms: now_ms().saturating_sub(started_at_ms),
    };
    // A 416 blocks the whole app: the pacer grants nothing until the block
    // ends. Told beside the record, not before it: no extra wait.
    let block_end = pacing::rate_limit_block_end(
        &exchanged.outcome,
        now_ms(),
        u64::from(config.rate_limit_backoff_secs) * 1000,
        config.queued_policy().retry_after_cap_ms,
    );
    let app_key = config.credentials.app_key.as_str();
    let pause = async {
        match block_end {
            Some(until_ms) => pacer::pause(env, app_key, until_ms).await,
            None => Ok(()),
        }
    };
    let (recorded, paused) = join(
        events.record(attempt.id, exchanged.outcome, sent, finish),
        pause,
    )
    .await;
    if let Err(e) = paused {
        // The 416's call itself still waits out the block (its delivery says
        // so); other calls may burn 416s until the block ends.
        console_log!(
            "{}",
            serde_json::json!({ "pacer": "pause failed", "error": e.to_string() })
        );
    }
    let RecordedWith {
        recorded,
        index,
        status,
    } = recorded?;
    journal.push(index);
    if let Recorded::Done { gave_up: true } = recorded {
        let task = DeliveryTask {
            event_id: events.event_id().to_owned(),
            call: attempt.id.call,
            round,
        };
        task::dead_letter(env, &task).await?;
    }
    Ok((recorded, status))
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Handles a batch of the dead-letter queue: marks each call in its event's
/// record, so the status API shows where it ended. A call the delivery gave
/// up keeps the reason it recorded; one the queue itself gave up (our own
/// storage failing again and again) gets this one.
pub async fn bury(batch: MessageBatch<DeliveryTask>, env: &Env) -> worker::Result<()> {
    let messages = batch.messages()?;
    crate::meter::add(|m| m.queue_reads += messages.len() as u64);
    for message in messages {
        let task = message.body();
        EventClient::new(env, &task.event_id)?
            .dead_lettered(
                task.call,
                task.round,
                "dead-lettered: the queue gave up retrying",
            )
            .await?;
        crate::meter::add(|m| m.queue_deletes += 1);
        message.ack();
    }
    Ok(())
}
