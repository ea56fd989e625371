//! Delivery: getting one notification to every receiver, as a state machine
//! that does no I/O.
//!
//! A [`Delivery`] is made from a [`Plan`] and a [`RetryPolicy`]. Its caller
//! (the relay's synchronous path, its queue consumer, the npm package's
//! `send()`) does the I/O and reports back, the way rustls' `Connection`
//! works: it asks what to do ([`Delivery::poll`], or
//! [`Delivery::poll_call`] for one call), gets told to send an [`Attempt`],
//! to wait until a time, or that everything is done with the final
//! [`Report`], and tells the delivery what became of each attempt
//! ([`Delivery::record`]). Time is always the caller's: every method that
//! needs "now" takes it, in UNIX milliseconds.
//!
//! Every retry rule lives here:
//!
//! - a call that failed as a whole in a retryable way (a transport error, a
//!   5xx, Yunxin's 416/449/500/503/514, an answer lost after sending) is sent
//!   again with the **same trace id**, so Yunxin processes it at most once;
//! - receivers that failed with a retryable per-receiver code inside an
//!   answered call (`1xx449`, `1xx500`, `1xx503`, `1xx514`, `1xx416`) are sent
//!   again in a follow-up call of their own, a new **generation** with a new
//!   trace id ([`TraceId::derived`]); receivers that succeeded are never sent
//!   again;
//! - waits follow the policy's schedule, are at least
//!   [`RetryPolicy::rate_limit_wait_ms`] after a 416, at least the answer's
//!   `Retry-After` (up to a cap), and a policy for inline use gives up on a
//!   wait longer than it may hold the caller ([`RetryPolicy::max_wait_ms`]);
//! - a receiver whose last attempt lost its answer after the request went
//!   out ends [`unknown`](Report::unknown), never failed: Yunxin may have
//!   notified it.
//!
//! A `Delivery` serialises (serde) at any point and resumes identically, so
//! a Durable Object can keep it between the queue messages that drive it.
//!
//! ```
//! use yunxin_edge::delivery::{Action, Delivery, RetryPolicy};
//! use yunxin_edge::{BatchNotification, Content, Outcome, Plan, PlanOptions};
//!
//! let notification = BatchNotification::new("bot", Content::text("hi")).to(["ann", "bo"]);
//! let plan = Plan::new(&notification, &PlanOptions::for_event("evt_1"))?;
//! let mut delivery = Delivery::new(plan, RetryPolicy::default())?;
//!
//! let Action::Send(attempt) = delivery.poll(0) else { unreachable!() };
//! // …sign it (attempt.sign(&credentials, &endpoint)), send it; the answer lost a receiver:
//! let answer = Outcome::from_http(200, br#"{"code":200,"data":{"failed_list":[
//!     {"account_id":"bo","error_code":102503,"error_msg":"busy"}]}}"#);
//! delivery.record(attempt.id, answer.into(), 10);
//!
//! // `bo` alone goes again after the first scheduled wait (5 s), under a new trace id.
//! assert!(matches!(delivery.poll(20), Action::Wait { until_ms: Some(5_010) }));
//! let Action::Send(retry) = delivery.poll(5_010) else { unreachable!() };
//! assert_eq!(retry.receiver_ids, ["bo".into()]);
//! assert_ne!(retry.trace_id, attempt.trace_id);
//! delivery.record(retry.id, Outcome::from_http(200, br#"{"code":200}"#).into(), 5_100);
//!
//! let Action::Done(report) = delivery.poll(5_100) else { unreachable!() };
//! assert_eq!(report.delivered, ["ann".into(), "bo".into()]);
//! # Ok::<(), yunxin_edge::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::batch::{Endpoint, Plan, SignedRequest, body_json};
use crate::error::Result;
use crate::notification::{AccountId, BatchNotification};
use crate::response::{Failure, NotAttempted, Outcome, Report, RetryVerdict, Unknown};
use crate::sign::{Credentials, CurTime, Nonce, TraceId};

/// When and how often to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The wait before each retry: `schedule_ms[0]` before the second
    /// attempt, and so on; the last entry repeats. Empty: no wait.
    pub schedule_ms: Vec<u64>,
    /// Attempts at one call, follow-up generations included, before giving up.
    pub max_attempts: u32,
    /// The least wait after a 416 (Yunxin's rate limit blocks the app for
    /// about a minute).
    pub rate_limit_wait_ms: u64,
    /// An answer's `Retry-After` is honoured up to this long.
    pub retry_after_cap_ms: u64,
    /// For inline use (a caller that holds a request open while it retries):
    /// a retry that needs a longer wait is not made, and its receivers end
    /// failed (retryable), for the caller to schedule. `None`: any wait.
    pub max_wait_ms: Option<u64>,
    /// How long an attempt may stay unanswered before [`Delivery::poll_call`]
    /// presumes its sender dead and treats the answer as lost.
    pub lease_ms: u64,
}

impl Default for RetryPolicy {
    /// The queued schedule: 5 s, 30 s, 2 min, 10 min, 1 h (six attempts), at
    /// least 60 s after a 416, `Retry-After` up to an hour, a 60 s lease.
    fn default() -> Self {
        RetryPolicy::scheduled([5_000, 30_000, 120_000, 600_000, 3_600_000])
    }
}

impl RetryPolicy {
    /// A policy that waits `schedule_ms[i]` before retry `i + 1`, one attempt
    /// more than the schedule has entries, with no limit on waits.
    pub fn scheduled(schedule_ms: impl Into<Vec<u64>>) -> Self {
        let schedule_ms = schedule_ms.into();
        RetryPolicy {
            max_attempts: u32::try_from(schedule_ms.len())
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
            schedule_ms,
            rate_limit_wait_ms: 60_000,
            retry_after_cap_ms: 3_600_000,
            max_wait_ms: None,
            lease_ms: 60_000,
        }
    }

    /// A policy for inline use: `retries` retries after `first_wait_ms`,
    /// doubling each time up to `max_wait_ms`, and no wait longer than
    /// `max_wait_ms` (a 416's minute ends the call as failed, retryable).
    ///
    /// ```
    /// use yunxin_edge::delivery::RetryPolicy;
    /// let policy = RetryPolicy::backoff(2, 200, 5_000);
    /// assert_eq!((policy.schedule_ms.as_slice(), policy.max_attempts), (&[200, 400][..], 3));
    /// ```
    pub fn backoff(retries: u32, first_wait_ms: u64, max_wait_ms: u64) -> Self {
        // Doubling stops at `max_wait_ms`: uncapped, the first wait past it
        // would end the call (as a wait the policy refuses) before the
        // `retries` retries asked for were made.
        let schedule: Vec<u64> = (0..retries.min(64))
            .map(|i| {
                first_wait_ms
                    .saturating_mul(1u64 << i.min(63))
                    .min(max_wait_ms)
            })
            .collect();
        RetryPolicy {
            max_attempts: retries.saturating_add(1),
            max_wait_ms: Some(max_wait_ms),
            ..RetryPolicy::scheduled(schedule)
        }
    }

    /// The wait before attempt `next` (2 for the first retry), given why the
    /// last one failed.
    fn wait_before(&self, next: u32, rate_limited: bool, retry_after_secs: Option<u64>) -> u64 {
        let index = (next.saturating_sub(2) as usize).min(self.schedule_ms.len().saturating_sub(1));
        let scheduled = self.schedule_ms.get(index).copied().unwrap_or(0);
        let floor = if rate_limited {
            self.rate_limit_wait_ms
        } else {
            0
        };
        let told = retry_after_secs
            .map_or(0, |secs| secs.saturating_mul(1000))
            .min(self.retry_after_cap_ms);
        scheduled.max(floor).max(told)
    }
}

/// Which attempt of which call: the receipt [`Delivery::record`] takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptId {
    /// The call's index in the plan.
    pub call: usize,
    /// The attempt's number at that call, from 1.
    pub attempt: u32,
}

/// One attempt to make: a call's body under its trace id, to be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// What to give [`Delivery::record`] with the outcome.
    pub id: AttemptId,
    /// The `X-custom-traceid`: the same on every retry of the same receivers.
    pub trace_id: TraceId,
    /// The receivers of this attempt.
    pub receiver_ids: Vec<AccountId>,
    /// The JSON body.
    pub body: String,
}

impl Attempt {
    /// The signed request, with the current time and a fresh nonce. Fails
    /// only if the platform's random source does.
    pub fn sign(&self, credentials: &Credentials, endpoint: &Endpoint) -> Result<SignedRequest> {
        SignedRequest::new(
            credentials,
            endpoint,
            self.trace_id.clone(),
            self.body.clone(),
        )
    }

    /// The signed request, with the given time and nonce.
    pub fn sign_at(
        &self,
        credentials: &Credentials,
        endpoint: &Endpoint,
        cur_time: CurTime,
        nonce: Nonce,
    ) -> SignedRequest {
        SignedRequest::at(
            credentials,
            endpoint,
            self.trace_id.clone(),
            self.body.clone(),
            cur_time,
            nonce,
        )
    }
}

/// What the caller saw of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    /// The classified answer.
    pub outcome: Outcome,
    /// The answer's `Retry-After`, in seconds, when it had one.
    pub retry_after_secs: Option<u64>,
}

impl From<Outcome> for AttemptOutcome {
    fn from(outcome: Outcome) -> Self {
        AttemptOutcome {
            outcome,
            retry_after_secs: None,
        }
    }
}

/// What to do next for the whole delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Sign and send this attempt, then [`record`](Delivery::record) its outcome.
    Send(Attempt),
    /// Nothing to send before `until_ms`; `None`: nothing until an attempt
    /// in flight is recorded.
    Wait {
        /// When to poll again.
        until_ms: Option<u64>,
    },
    /// Every receiver has its final result.
    Done(Report),
}

/// What to do next for one call ([`Delivery::poll_call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallAction {
    /// Sign and send this attempt, then [`record`](Delivery::record) its outcome.
    Send(Attempt),
    /// The call's next attempt is due at `until_ms`.
    Wait {
        /// When to poll again.
        until_ms: u64,
    },
    /// An attempt is in flight; its lease ends at `until_ms`.
    InFlight {
        /// When the attempt is presumed lost.
        until_ms: u64,
    },
    /// The call is finished (or there is no such call).
    Done,
}

/// What [`Delivery::record`] made of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "recorded", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Recorded {
    /// Not the attempt in flight (a late or duplicate report): ignored.
    Stale,
    /// The call will be tried again at `at_ms`.
    Retry {
        /// When.
        at_ms: u64,
    },
    /// The call is finished.
    Done {
        /// Whether receivers were left failed (retryable) or unknown because
        /// the policy ran out: what a queue would dead-letter.
        gave_up: bool,
    },
}

/// Receivers per outcome, and the state they make ([`Delivery::counts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// Where the delivery stands.
    pub state: DeliveryState,
    /// Receivers that got the notification.
    pub delivered: usize,
    /// Receivers that did not.
    pub failed: usize,
    /// The failed receivers by their error code (Yunxin's, or the HTTP
    /// status of a transport failure; 0 for none), in the order first met.
    #[serde(default)]
    pub failed_by_code: Vec<(i64, usize)>,
    /// Receivers whose last attempt lost its answer.
    pub unknown: usize,
    /// Receivers still waiting.
    pub pending: usize,
    /// Receivers never to be sent: repeats of earlier ones.
    pub not_attempted: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            state: DeliveryState::Pending,
            delivered: 0,
            failed: 0,
            failed_by_code: Vec::new(),
            unknown: 0,
            pending: 0,
            not_attempted: 0,
        }
    }
}

/// What [`Delivery::replay`] reopened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Replay {
    /// The calls reopened, in order: each is driven again like a new one.
    pub calls: Vec<usize>,
    /// How many receivers are to be sent again.
    pub receivers: usize,
}

/// Where a delivery stands, for a status view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryState {
    /// Some receivers have no final result yet.
    Pending,
    /// Every receiver got the notification.
    Delivered,
    /// Finished, with some receivers failed or unknown.
    CompletedWithFailures,
}

impl DeliveryState {
    /// The state of receivers this many pending, failed and unknown: the
    /// one rule [`Delivery::status`] and [`Delivery::counts`] share.
    fn of(pending: usize, failed: usize, unknown: usize) -> Self {
        if pending > 0 {
            DeliveryState::Pending
        } else if failed == 0 && unknown == 0 {
            DeliveryState::Delivered
        } else {
            DeliveryState::CompletedWithFailures
        }
    }
}

/// A receiver still waiting for its final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The receiver.
    pub account_id: AccountId,
    /// Attempts at its call that have an outcome (one in flight is not counted).
    pub attempts: u32,
    /// When the next attempt is due (UNIX ms); `None` while one is in flight.
    pub next_attempt_at_ms: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// The per-receiver status of a delivery: final results so far, and who is
/// still pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// Where the delivery stands.
    pub state: DeliveryState,
    /// Receivers that got the notification.
    pub delivered: Vec<AccountId>,
    /// Receivers that did not, with the reason.
    pub failed: Vec<Failure>,
    /// Receivers whose last attempt lost its answer.
    pub unknown: Vec<Unknown>,
    /// Receivers still waiting.
    pub pending: Vec<Pending>,
    /// Receivers never to be sent: repeats of earlier ones.
    pub not_attempted: Vec<NotAttempted>,
}

/// One notification's delivery to all its receivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Trace ids are derived from this: the event id, or a random id.
    trace_seed: String,
    /// The notification without receivers; bodies are built from it.
    template: BatchNotification,
    policy: RetryPolicy,
    calls: Vec<CallState>,
    /// Receivers left out as repeats: reported, never sent.
    duplicates: Vec<NotAttempted>,
}

/// What a [`Delivery`] keeps that never changes once it is made: the
/// notification without receivers, the policy, the trace seed and the
/// repeats left out. With one [`CallState`] per call it is the whole
/// delivery ([`Delivery::into_parts`]), so that a store can write it once
/// and then rewrite only the call a command changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryHead {
    trace_seed: String,
    template: BatchNotification,
    policy: RetryPolicy,
    duplicates: Vec<NotAttempted>,
}

/// One call of the plan and what has become of its receivers: the part of
/// a [`Delivery`] that its commands change. Opaque: stored and given back
/// as it was serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallState {
    /// The receivers still to send, in the current generation.
    open: Vec<AccountId>,
    /// 0 for the call as planned; +1 for each follow-up of some receivers.
    generation: u32,
    /// Attempts with an outcome (what the policy counts).
    attempts: u32,
    /// Attempts handed out, released ones included: the source of attempt
    /// ids, so that a released attempt's id is never reused.
    started: u32,
    /// Whether an attempt of the current generation lost its answer: its
    /// request may have reached Yunxin, whatever later attempts say.
    lost_in_generation: bool,
    phase: Phase,
    delivered: Vec<AccountId>,
    failed: Vec<Failure>,
    unknown: Vec<Unknown>,
    /// Why the last attempt failed, while the call waits for a retry.
    last_failure: Option<LastFailure>,
    /// When the call gave up with retryable receivers: the wait it needed.
    retry_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    /// The next attempt may start at `at_ms`.
    Ready {
        at_ms: u64,
    },
    /// Attempt `attempt` started at `since_ms` and is not recorded yet.
    InFlight {
        attempt: u32,
        since_ms: u64,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LastFailure {
    code: i64,
    message: String,
    /// The answer was lost after sending.
    lost: bool,
}

impl Delivery {
    /// A delivery of every call of `plan`, none sent yet. Trace ids derive
    /// from the plan's event id or, without one, from an id drawn here: this
    /// fails only if the platform's random source does.
    pub fn new(plan: Plan, policy: RetryPolicy) -> Result<Self> {
        let trace_seed = plan.trace_seed()?;
        let template = plan.template().clone();
        let calls = plan
            .requests()
            .iter()
            .map(|request| CallState {
                open: request.receiver_ids.clone(),
                generation: 0,
                attempts: 0,
                started: 0,
                lost_in_generation: false,
                phase: Phase::Ready { at_ms: 0 },
                delivered: Vec::new(),
                failed: Vec::new(),
                unknown: Vec::new(),
                last_failure: None,
                retry_after_ms: None,
            })
            .collect();
        Ok(Delivery {
            trace_seed,
            template,
            policy,
            calls,
            duplicates: plan.duplicates().iter().map(NotAttempted::from).collect(),
        })
    }

    /// The delivery in its parts: what never changes, and each call's state.
    ///
    /// ```
    /// # use yunxin_edge::{BatchNotification, Content, Delivery, Plan, PlanOptions, RetryPolicy};
    /// let notification = BatchNotification::new("bot", Content::text("hi")).to(["alice"]);
    /// let plan = Plan::new(&notification, &PlanOptions::for_event("evt_1")).unwrap();
    /// let delivery = Delivery::new(plan, RetryPolicy::default()).unwrap();
    /// let (head, calls) = delivery.clone().into_parts();
    /// assert_eq!(calls.len(), 1);
    /// assert_eq!(Delivery::from_parts(head, calls), delivery);
    /// ```
    pub fn into_parts(self) -> (DeliveryHead, Vec<CallState>) {
        let head = DeliveryHead {
            trace_seed: self.trace_seed,
            template: self.template,
            policy: self.policy,
            duplicates: self.duplicates,
        };
        (head, self.calls)
    }

    /// The delivery made of parts that [`Delivery::into_parts`] gave.
    pub fn from_parts(head: DeliveryHead, calls: Vec<CallState>) -> Self {
        Delivery {
            trace_seed: head.trace_seed,
            template: head.template,
            policy: head.policy,
            calls,
            duplicates: head.duplicates,
        }
    }

    /// Each call's state, in order: what a store rewrites when it changed.
    pub fn call_states(&self) -> &[CallState] {
        &self.calls
    }

    /// The policy this delivery follows.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// How many calls the plan had.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether every receiver has its final result.
    pub fn is_done(&self) -> bool {
        self.calls.iter().all(|c| c.phase == Phase::Done)
    }

    /// What to do next: the first call whose attempt is due is marked in
    /// flight and handed back to send. Call it again to start more attempts
    /// concurrently; each one must be [`record`](Self::record)ed.
    pub fn poll(&mut self, now_ms: u64) -> Action {
        if self.is_done() {
            return Action::Done(self.report());
        }
        let due = self
            .calls
            .iter()
            .position(|c| matches!(c.phase, Phase::Ready { at_ms } if at_ms <= now_ms));
        if let Some(index) = due {
            return Action::Send(self.start(index, now_ms));
        }
        let until_ms = self
            .calls
            .iter()
            .filter_map(|c| match c.phase {
                Phase::Ready { at_ms } => Some(at_ms),
                _ => None,
            })
            .min();
        Action::Wait { until_ms }
    }

    /// What to do next for call `index` alone (a queue message per call).
    /// An attempt in flight for longer than the policy's lease is presumed
    /// lost (its sender died): it counts as an attempt whose answer was lost.
    pub fn poll_call(&mut self, index: usize, now_ms: u64) -> CallAction {
        let Some(call) = self.calls.get(index) else {
            return CallAction::Done;
        };
        match call.phase {
            Phase::Done => CallAction::Done,
            Phase::InFlight { attempt, since_ms } => {
                let until_ms = since_ms.saturating_add(self.policy.lease_ms);
                if now_ms < until_ms {
                    return CallAction::InFlight { until_ms };
                }
                let lost = Outcome::answer_lost(format!(
                    "no outcome recorded within {} ms of sending",
                    self.policy.lease_ms
                ));
                let id = AttemptId {
                    call: index,
                    attempt,
                };
                self.record(id, lost.into(), now_ms);
                self.poll_call(index, now_ms)
            }
            Phase::Ready { at_ms } if at_ms > now_ms => CallAction::Wait { until_ms: at_ms },
            Phase::Ready { .. } => CallAction::Send(self.start(index, now_ms)),
        }
    }

    /// Puts an attempt that was handed out but never sent back (the caller
    /// could not get a send slot, say): it does not count, and the call may
    /// start again at `at_ms`.
    pub fn release(&mut self, id: AttemptId, at_ms: u64) -> bool {
        let Some(call) = self.calls.get_mut(id.call) else {
            return false;
        };
        if !matches!(call.phase, Phase::InFlight { attempt, .. } if attempt == id.attempt) {
            return false;
        }
        call.phase = Phase::Ready { at_ms };
        true
    }

    fn start(&mut self, index: usize, now_ms: u64) -> Attempt {
        let call = &mut self.calls[index];
        call.started += 1;
        call.phase = Phase::InFlight {
            attempt: call.started,
            since_ms: now_ms,
        };
        let body = body_json(&BatchNotification {
            receiver_ids: call.open.clone(),
            ..self.template.clone()
        });
        Attempt {
            id: AttemptId {
                call: index,
                attempt: call.started,
            },
            trace_id: TraceId::derived(&self.trace_seed, index, call.generation),
            receiver_ids: call.open.clone(),
            body,
        }
    }

    /// Records what became of an attempt, and decides what follows for its
    /// call. An outcome for anything but the call's attempt in flight is
    /// ignored ([`Recorded::Stale`]).
    pub fn record(&mut self, id: AttemptId, outcome: AttemptOutcome, now_ms: u64) -> Recorded {
        let policy = &self.policy;
        let Some(call) = self.calls.get_mut(id.call) else {
            return Recorded::Stale;
        };
        if !matches!(call.phase, Phase::InFlight { attempt, .. } if attempt == id.attempt) {
            return Recorded::Stale;
        }
        call.attempts += 1;

        let AttemptOutcome {
            outcome,
            retry_after_secs,
        } = outcome;
        let mut part = Report::default();
        part.add(&call.open, Some(&outcome));
        call.delivered.append(&mut part.delivered);
        let (retryable, permanent): (Vec<Failure>, Vec<Failure>) =
            part.failed.into_iter().partition(|f| f.retryable);
        call.failed.extend(permanent);
        if retryable.is_empty() && part.unknown.is_empty() {
            call.finish(None);
            return Recorded::Done { gave_up: false };
        }

        // Some receivers may succeed later: all of the call's open ones
        // (same trace id), or those a partial failure named (a follow-up).
        let follow_up = matches!(outcome, Outcome::PartialFailure { .. });
        let rate_limited = retryable.iter().any(|f| f.error_code % 1000 == 416);
        let next = call.attempts + 1;
        let wait = policy.wait_before(next, rate_limited, retry_after_secs);
        let last_failure = match (retryable.first(), part.unknown.first()) {
            (Some(f), _) => LastFailure {
                code: f.error_code,
                message: f.error_msg.clone(),
                lost: false,
            },
            (None, Some(u)) => LastFailure {
                code: 0,
                message: u.reason.clone(),
                lost: true,
            },
            (None, None) => unreachable!("checked above: something is retryable"),
        };

        call.lost_in_generation |= last_failure.lost;

        let attempts_left = call.attempts < policy.max_attempts;
        let wait_allowed = policy.max_wait_ms.is_none_or(|max| wait <= max);
        if attempts_left && wait_allowed {
            if follow_up {
                call.open = retryable.into_iter().map(|f| f.account_id).collect();
                call.generation += 1;
                call.lost_in_generation = false;
            }
            let at_ms = now_ms.saturating_add(wait);
            call.last_failure = Some(last_failure);
            call.phase = Phase::Ready { at_ms };
            return Recorded::Retry { at_ms };
        }

        let attempts = call.attempts;
        let gave_up = |message: &str| {
            if attempts_left {
                message.to_owned()
            } else {
                format!("gave up after {attempts} attempts: {message}")
            }
        };
        if call.lost_in_generation && !follow_up {
            // An earlier attempt with this trace id lost its answer: Yunxin
            // may have taken it, whatever the last attempt was told.
            call.unknown.extend(retryable.into_iter().map(|f| Unknown {
                account_id: f.account_id,
                reason: gave_up(&format!(
                    "an earlier attempt's answer was lost; the last one: {}",
                    f.error_msg
                )),
            }));
        } else {
            call.failed.extend(retryable.into_iter().map(|mut f| {
                f.error_msg = gave_up(&f.error_msg);
                f
            }));
        }
        call.unknown.extend(part.unknown);
        call.finish(Some(wait));
        Recorded::Done { gave_up: true }
    }

    /// Ends call `index` now, as a queue does when it gives up on a message:
    /// its open receivers fail with `reason` (retryable, as nothing says
    /// Yunxin refused them), or are unknown if the last answer was lost or
    /// an attempt is in flight.
    /// Returns false if the call was already finished.
    pub fn abandon(&mut self, index: usize, reason: &str) -> bool {
        let Some(call) = self.calls.get_mut(index) else {
            return false;
        };
        if call.phase == Phase::Done {
            return false;
        }
        let open = std::mem::take(&mut call.open);
        // An attempt in flight may have reached Yunxin: like a lost answer,
        // its receivers are unknown, never failed (as `report` shows them).
        let in_flight = matches!(call.phase, Phase::InFlight { .. });
        match &call.last_failure {
            _ if in_flight => call.unknown.extend(open.into_iter().map(|id| Unknown {
                account_id: id,
                reason: format!("{reason} (request sent, no answer yet)"),
            })),
            Some(last) if last.lost => call.unknown.extend(open.into_iter().map(|id| Unknown {
                account_id: id,
                reason: format!("{reason} ({})", last.message),
            })),
            last => {
                let code = last.as_ref().map_or(0, |l| l.code);
                call.failed.extend(open.into_iter().map(|id| Failure {
                    account_id: id,
                    error_code: code,
                    error_msg: reason.to_owned(),
                    retryable: true,
                }));
            }
        }
        call.finish(Some(0));
        true
    }

    /// Sends again the receivers whose call ended with them failed: those
    /// failed for a retryable reason (a 5xx, a 416, a transport error, a
    /// call the queue gave up), or with `all` every failed one. Each such
    /// call is reopened as a new generation (a new trace id: Yunxin has taken
    /// the old one and would drop it) with a fresh attempt budget, due at
    /// `now_ms`.
    ///
    /// Delivered receivers are never sent again, nor unknown ones (Yunxin may
    /// have notified them), nor the receivers of a call still under way.
    /// Replaying twice reopens nothing the second time until the first has
    /// finished, so two operators pressing "retry" at once send once.
    ///
    /// ```
    /// use yunxin_edge::delivery::{Action, Delivery, RetryPolicy};
    /// use yunxin_edge::{BatchNotification, Content, Outcome, Plan, PlanOptions};
    ///
    /// let notification = BatchNotification::new("bot", Content::text("hi")).to(["ann", "bo"]);
    /// let plan = Plan::new(&notification, &PlanOptions::for_event("evt_1"))?;
    /// let mut delivery = Delivery::new(plan, RetryPolicy::scheduled([]))?;
    /// let Action::Send(attempt) = delivery.poll(0) else { unreachable!() };
    /// // `bo` is busy, and the policy allows no retry: `bo` ends failed.
    /// let busy = Outcome::from_http(200, br#"{"code":200,"data":{"failed_list":[
    ///     {"account_id":"bo","error_code":102503,"error_msg":"busy"}]}}"#);
    /// delivery.record(attempt.id, busy.into(), 10);
    /// assert!(delivery.is_done());
    ///
    /// let replay = delivery.replay(false, 60_000);
    /// assert_eq!((replay.calls, replay.receivers), (vec![0], 1));
    /// let Action::Send(again) = delivery.poll(60_000) else { unreachable!() };
    /// assert_eq!(again.receiver_ids, ["bo".into()]);
    /// assert_ne!(again.trace_id, attempt.trace_id);
    /// assert_eq!(delivery.replay(false, 60_000).receivers, 0, "already under way");
    /// # Ok::<(), yunxin_edge::Error>(())
    /// ```
    pub fn replay(&mut self, all: bool, now_ms: u64) -> Replay {
        let mut replay = Replay::default();
        for (index, call) in self.calls.iter_mut().enumerate() {
            if call.phase != Phase::Done {
                continue;
            }
            let (again, kept): (Vec<Failure>, Vec<Failure>) = std::mem::take(&mut call.failed)
                .into_iter()
                .partition(|f| all || f.retryable);
            call.failed = kept;
            if again.is_empty() {
                continue;
            }
            replay.calls.push(index);
            replay.receivers += again.len();
            // A new generation: a new trace id, nothing lost in it yet.
            call.generation += 1;
            call.reopen(again.into_iter().map(|f| f.account_id), false, now_ms);
        }
        replay
    }

    /// Sends again the receivers whose call ended with them unknown (an
    /// answer was lost after the request went out), **under the trace id
    /// they were last sent with** and as the same body: their call is
    /// reopened in the same generation, so Yunxin, if it took that trace
    /// id, answers from its de-duplication instead of notifying them twice.
    /// [`Delivery::replay`] never sends them, as a new trace id could.
    ///
    /// The reopened call keeps the lost answer in mind: should it give up
    /// again without an answer, its receivers are unknown again, never
    /// failed. A call still under way is left alone, as in `replay`.
    ///
    /// At most once holds only while Yunxin still remembers the trace id;
    /// how long that is, Yunxin does not document (see the relay's README).
    ///
    /// ```
    /// use yunxin_edge::delivery::{Action, Delivery, RetryPolicy};
    /// use yunxin_edge::{BatchNotification, Content, Outcome, Plan, PlanOptions};
    ///
    /// let notification = BatchNotification::new("bot", Content::text("hi")).to(["ann", "bo"]);
    /// let plan = Plan::new(&notification, &PlanOptions::for_event("evt_1"))?;
    /// let mut delivery = Delivery::new(plan, RetryPolicy::scheduled([]))?;
    /// let Action::Send(attempt) = delivery.poll(0) else { unreachable!() };
    /// delivery.record(attempt.id, Outcome::answer_lost("timeout").into(), 10);
    /// assert_eq!(delivery.report().unknown.len(), 2);
    ///
    /// assert_eq!(delivery.replay(true, 60_000).receivers, 0, "unknown: never under a new trace id");
    /// let replay = delivery.replay_unknown(60_000);
    /// assert_eq!((replay.calls, replay.receivers), (vec![0], 2));
    /// let Action::Send(again) = delivery.poll(60_000) else { unreachable!() };
    /// assert_eq!((again.trace_id, again.receiver_ids), (attempt.trace_id, attempt.receiver_ids));
    /// # Ok::<(), yunxin_edge::Error>(())
    /// ```
    pub fn replay_unknown(&mut self, now_ms: u64) -> Replay {
        let mut replay = Replay::default();
        for (index, call) in self.calls.iter_mut().enumerate() {
            if call.phase != Phase::Done || call.unknown.is_empty() {
                continue;
            }
            // In the order they were open in: the same body as before.
            let again = std::mem::take(&mut call.unknown);
            replay.calls.push(index);
            replay.receivers += again.len();
            // The same generation, whose answer was lost.
            call.reopen(again.into_iter().map(|u| u.account_id), true, now_ms);
        }
        replay
    }

    /// The calls whose next step is overdue by more than `grace_ms`: due for
    /// an attempt, or in flight past the lease. A watchdog re-drives these.
    pub fn overdue(&self, now_ms: u64, grace_ms: u64) -> Vec<usize> {
        self.calls
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let due = match c.phase {
                    Phase::Ready { at_ms } => at_ms,
                    Phase::InFlight { since_ms, .. } => {
                        since_ms.saturating_add(self.policy.lease_ms)
                    }
                    Phase::Done => return false,
                };
                now_ms >= due.saturating_add(grace_ms)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The report so far. Finished calls give their final results; a call
    /// never attempted gives "not attempted"; a call waiting for a retry
    /// gives its last failure (retryable), and one in flight "unknown".
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        report.not_attempted.extend(self.duplicates.iter().cloned());
        for call in &self.calls {
            report.delivered.extend(call.delivered.iter().cloned());
            report.failed.extend(call.failed.iter().cloned());
            report.unknown.extend(call.unknown.iter().cloned());
            if let Some(ms) = call.retry_after_ms {
                let secs = ms.div_ceil(1000);
                report.retry_after_secs = Some(report.retry_after_secs.unwrap_or(0).max(secs));
            }
            let open_unknown = |reason: &str| -> Vec<Unknown> {
                call.open
                    .iter()
                    .map(|id| Unknown {
                        account_id: id.clone(),
                        reason: reason.to_owned(),
                    })
                    .collect()
            };
            match (call.phase, &call.last_failure) {
                (Phase::Done, _) => {}
                (Phase::InFlight { .. }, _) => {
                    let unknown = open_unknown("request sent, no answer yet");
                    report.unknown.extend(unknown);
                    report.retry_after_secs = report.retry_after_secs.or(Some(0));
                }
                (Phase::Ready { .. }, Some(last)) if last.lost => {
                    report.unknown.extend(open_unknown(&last.message));
                    report.retry_after_secs = report.retry_after_secs.or(Some(0));
                }
                (Phase::Ready { .. }, Some(last)) => {
                    let verdict = RetryVerdict::Retry { min_delay_secs: 0 };
                    for id in &call.open {
                        report.fail(id, last.code, &last.message, verdict);
                    }
                }
                (Phase::Ready { .. }, None) => {
                    report
                        .not_attempted
                        .extend(call.open.iter().map(|id| NotAttempted {
                            account_id: id.clone(),
                            reason: "not sent".to_owned(),
                        }));
                }
            }
        }
        report
    }

    /// How many receivers stand where, without listing them: what an index
    /// of many events keeps per event. Agrees with [`Delivery::status`]'s
    /// list lengths and state.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            not_attempted: self.duplicates.len(),
            ..Counts::default()
        };
        for call in &self.calls {
            counts.delivered += call.delivered.len();
            counts.failed += call.failed.len();
            for failure in &call.failed {
                // A few codes at most: a scan beats a map (and its code size).
                let by_code = &mut counts.failed_by_code;
                match by_code
                    .iter_mut()
                    .find(|(code, _)| *code == failure.error_code)
                {
                    Some((_, n)) => *n += 1,
                    None => by_code.push((failure.error_code, 1)),
                }
            }
            counts.unknown += call.unknown.len();
            if call.phase != Phase::Done {
                counts.pending += call.open.len();
            }
        }
        counts.state = DeliveryState::of(counts.pending, counts.failed, counts.unknown);
        counts
    }

    /// The status view: final results so far, and who is pending (with
    /// attempts, next attempt time and last error).
    pub fn status(&self) -> Status {
        let mut status = Status {
            state: DeliveryState::Pending,
            delivered: Vec::new(),
            failed: Vec::new(),
            unknown: Vec::new(),
            pending: Vec::new(),
            not_attempted: self.duplicates.clone(),
        };
        for call in &self.calls {
            status.delivered.extend(call.delivered.iter().cloned());
            status.failed.extend(call.failed.iter().cloned());
            status.unknown.extend(call.unknown.iter().cloned());
            // An attempt in flight is not counted until it has an outcome.
            let (next_attempt_at_ms, attempts) = match call.phase {
                Phase::Done => continue,
                Phase::Ready { at_ms } => (Some(at_ms), call.attempts),
                Phase::InFlight { .. } => (None, call.attempts),
            };
            status.pending.extend(call.open.iter().map(|id| Pending {
                account_id: id.clone(),
                attempts,
                next_attempt_at_ms,
                last_error: call.last_failure.as_ref().map(|l| l.message.clone()),
            }));
        }
        status.state = DeliveryState::of(
            status.pending.len(),
            status.failed.len(),
            status.unknown.len(),
        );
        status
    }
}

impl CallState {
    /// Whether this call has its final result for every receiver.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Opens the finished call again for `open`, due at `now_ms`, with a
    /// fresh count of attempts (a replay's).
    fn reopen(&mut self, open: impl IntoIterator<Item = AccountId>, lost: bool, now_ms: u64) {
        self.open = open.into_iter().collect();
        self.attempts = 0;
        self.lost_in_generation = lost;
        self.last_failure = None;
        self.retry_after_ms = None;
        self.phase = Phase::Ready { at_ms: now_ms };
    }

    fn finish(&mut self, retry_after_ms: Option<u64>) {
        self.open.clear();
        self.lost_in_generation = false;
        self.phase = Phase::Done;
        self.last_failure = None;
        self.retry_after_ms = retry_after_ms;
    }
}
