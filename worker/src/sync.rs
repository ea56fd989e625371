//! The synchronous path (`Prefer: wait`): the request itself drives its
//! event's calls, through the same event record and pacer as the queue, for
//! as long as it may: at most `SYNC_MAX_CALLS` upstream calls and until
//! `SYNC_DEADLINE_MS`. What is not finished by then is handed to the queue,
//! never dropped. The event record decides every step, so a replay of the
//! same request finds the event known and sends nothing, and a hand-off
//! resumes exactly where the request stopped.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use worker::{Date, Delay, Env};
use yunxin_edge::Recorded;

use crate::config::{Config, MAX_IN_FLIGHT};
use crate::events::{EventClient, EventStatus, Step};
use crate::index::{self, Batch};
use crate::pacer;
use crate::queue::send_on_slot;

/// Don't start an attempt with less time than this before the deadline.
const MIN_ATTEMPT_MS: u64 = 1_000;

/// The bounds of one synchronous request.
struct Budget {
    deadline_ms: u64,
    calls_left: Cell<usize>,
    /// The status the report that finished the last call answered.
    settled: RefCell<Option<Box<EventStatus>>>,
}

impl Budget {
    /// Whether there is time to start an attempt at `at_ms`.
    fn has_time_at(&self, at_ms: u64) -> bool {
        at_ms + MIN_ATTEMPT_MS <= self.deadline_ms
    }

    /// Takes one upstream call from the budget, if one is left.
    fn take_call(&self) -> bool {
        let left = self.calls_left.get();
        self.calls_left.set(left.saturating_sub(1));
        left > 0
    }

    /// Gives back a call taken for a step that sent nothing.
    fn give_back(&self) {
        self.calls_left.set(self.calls_left.get() + 1);
    }
}

/// How many calls the request starts with (and begins when it records the
/// event): as many as run at once, within the call budget.
pub fn first_round(config: &Config) -> usize {
    MAX_IN_FLIGHT.min(config.sync_max_calls)
}

/// Drives every call of the event until it is finished or the budget runs
/// out; returns the calls left for the queue, and the event's status if its
/// last report found every call finished (then nothing is left, the event
/// is settled, and the intake needs no further round trip). `first` are the
/// steps of the first calls, begun when the event was recorded.
pub async fn drive(
    env: &Env,
    config: &Config,
    events: &EventClient,
    calls: usize,
    first: Vec<Step>,
) -> (Vec<usize>, Option<Box<EventStatus>>) {
    let budget = Budget {
        deadline_ms: now_ms() + config.sync_deadline_ms,
        calls_left: Cell::new(config.sync_max_calls),
        settled: RefCell::new(None),
    };
    let journal = Batch::default();
    let mut first = first.into_iter();
    let left: Vec<Option<usize>> = stream::iter((0..calls).map(|call| (call, first.next())))
        .map(|(call, step)| {
            let (budget, journal) = (&budget, &journal);
            async move {
                // Our own storage failing is the queue's to retry, too.
                let finished = drive_call(call, step, env, config, events, budget, journal).await;
                (!matches!(finished, Ok(true))).then_some(call)
            }
        })
        .buffered(MAX_IN_FLIGHT)
        .collect()
        .await;
    // The attempts' entries: written with other events' after the answer.
    index::defer(journal.take());
    let left: Vec<usize> = left.into_iter().flatten().collect();
    let settled = budget.settled.take().filter(|_| left.is_empty());
    (left, settled)
}

/// One call, step by step as its record says (from `given`, its first step
/// if already begun); true when it is finished.
async fn drive_call(
    call: usize,
    mut given: Option<Step>,
    env: &Env,
    config: &Config,
    events: &EventClient,
    budget: &Budget,
    journal: &Batch,
) -> worker::Result<bool> {
    loop {
        // The call is taken from the budget before any subrequest, so that
        // calls past the budget cost none: one event's subrequests stay
        // bounded (at most four per upstream call, and a few for the event).
        if !budget.has_time_at(now_ms()) || !budget.take_call() {
            if let Some(Step::Send { attempt }) = given {
                // Begun with the event but not sent: the queue's.
                events.release(attempt.id, now_ms()).await?;
            }
            return Ok(false);
        }
        let step = match given.take() {
            Some(step) => step,
            None => events.begin(call).await?,
        };
        let attempt = match step {
            Step::Send { attempt } => attempt,
            Step::Done => {
                budget.give_back();
                return Ok(true);
            }
            Step::Later { until_ms } => {
                budget.give_back();
                if !budget.has_time_at(until_ms) {
                    return Ok(false);
                }
                sleep_until(until_ms).await;
                continue;
            }
        };
        // A slot only if it comes in time; else the call is the queue's.
        let max_wait_ms = budget.deadline_ms.saturating_sub(now_ms() + MIN_ATTEMPT_MS);
        let app_key = config.credentials.app_key.as_str();
        let (slot, asked) =
            pacer::lease_slot(env, app_key, config.rate_per_minute, max_wait_ms).await?;
        if asked {
            events.count_pacer_trip();
        }
        let start_ms = match slot {
            Ok(start_ms) => start_ms,
            Err(next_ms) => {
                events.release(attempt.id, next_ms).await?;
                return Ok(false);
            }
        };
        // Round 0: only a new event is driven synchronously; replays are queued.
        match send_on_slot(
            env,
            config,
            events,
            0,
            attempt,
            start_ms,
            Some(budget.deadline_ms),
            journal,
            true,
        )
        .await?
        {
            (Recorded::Retry { at_ms }, _) if budget.has_time_at(at_ms) => sleep_until(at_ms).await,
            (Recorded::Done { .. }, settled) => {
                if settled.is_some() {
                    budget.settled.replace(settled);
                }
                return Ok(true);
            }
            // A retry after the deadline, or stale (the watchdog's message
            // took the call over): the queue's.
            _ => return Ok(false),
        }
    }
}

async fn sleep_until(at_ms: u64) {
    let ms = at_ms.saturating_sub(now_ms());
    if ms > 0 {
        Delay::from(Duration::from_millis(ms)).await;
    }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}
