//! Failover: which of Yunxin's endpoints the next attempt goes to.
//!
//! Yunxin serves a region from more than one data centre
//! (`open.yunxinapi.com` and `open-bak.yunxinapi.com` on the mainland), and
//! de-duplicates calls by trace id across them. So an attempt may go to any
//! of them, and a retry may go to another one than the attempt before it,
//! under the same trace id, without a receiver being notified twice.
//!
//! A [`Failover`] holds the endpoints in the caller's order of preference
//! and what happened to the attempts sent to each. The next attempt goes to
//! the first endpoint not avoided. An endpoint is avoided for a while (a
//! [`Cooldown`]) after an attempt there failed in a way that blames the
//! endpoint ([`Outcome::is_endpoint_failure`]: no connection, a lost answer,
//! an HTTP 5xx); once the while is over it is tried first again, being
//! earlier in the order, and an answer from it clears it, while another
//! failure avoids it for twice as long, up to a cap. When every endpoint is
//! avoided, the one whose avoidance ends first is used.
//!
//! Attempts run concurrently, so outcomes arrive for attempts chosen before
//! the endpoint's state last changed; those are counted, but do not move
//! the state: ten calls in flight that all meet a refused connection avoid
//! the endpoint once, for the first cooldown, not ten times over.
//!
//! ```
//! use yunxin_edge::failover::{Cooldown, Failover};
//! use yunxin_edge::{Endpoint, Outcome};
//!
//! let mut failover = Failover::new(Failover::default_endpoints(), Cooldown::default())?;
//! let pick = failover.pick(0);
//! assert_eq!(failover.endpoint(pick).base_url(), "https://open.yunxinapi.com");
//!
//! // A 502 from the first endpoint: the retry goes to the second.
//! failover.record(pick, &Outcome::from_http(502, b"Bad Gateway"), 100);
//! let retry = failover.pick(300);
//! assert_eq!(failover.endpoint(retry).base_url(), "https://open-bak.yunxinapi.com");
//!
//! // 30 s later the first is tried again, and its answer clears it.
//! let probe = failover.pick(30_100);
//! assert_eq!(probe.index(), 0);
//! failover.record(probe, &Outcome::from_http(200, br#"{"code":200}"#), 30_200);
//! assert!(failover.health(30_200).iter().all(|h| h.is_healthy()));
//! # Ok::<(), yunxin_edge::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::batch::Endpoint;
use crate::error::{Error, Result};
use crate::response::Outcome;

/// Yunxin's mainland endpoints, in order: the main data centre, then its backup.
pub const DEFAULT_BASE_URLS: [&str; 2] = [
    "https://open.yunxinapi.com",
    "https://open-bak.yunxinapi.com",
];

/// How long a failed endpoint is avoided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cooldown {
    /// After its first failure in a row.
    pub first_ms: u64,
    /// The longest: each further failure in a row doubles the wait up to this.
    pub max_ms: u64,
}

impl Cooldown {
    /// How many times the first cooldown the longest one is, by default.
    pub const GROWTH_CAP: u64 = 10;

    /// A cooldown of `first_ms`, doubling on each further failure in a row
    /// up to [`Self::GROWTH_CAP`] times that.
    pub fn new(first_ms: u64) -> Self {
        Cooldown {
            first_ms,
            max_ms: first_ms.saturating_mul(Self::GROWTH_CAP),
        }
    }

    /// The wait after `failures_in_a_row` failures (at least one).
    pub fn after(&self, failures_in_a_row: u32) -> u64 {
        let doublings = failures_in_a_row.saturating_sub(1).min(63);
        self.first_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

impl Default for Cooldown {
    /// 30 s, growing to 5 minutes.
    fn default() -> Self {
        Cooldown::new(30_000)
    }
}

/// Which endpoint an attempt went to: the receipt [`Failover::record`]
/// takes back with the attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    index: usize,
    /// The endpoint's state when it was picked (see `Slot::generation`).
    generation: u64,
}

impl Pick {
    /// The endpoint's position in the order, from 0.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// One endpoint's health, as [`Failover::health`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EndpointHealth {
    /// The endpoint's base URL.
    pub base_url: String,
    /// Until when (ms) it is avoided; `None` when it is not.
    pub avoided_until_ms: Option<u64>,
    /// Failures since its last success (kept after the cooldown ends, until
    /// an answer clears them: the next failure avoids it for longer).
    pub consecutive_failures: u32,
    /// Attempts it answered.
    pub successes: u64,
    /// Attempts that failed there.
    pub failures: u64,
}

impl EndpointHealth {
    /// Whether the next attempt may go there.
    pub fn is_healthy(&self) -> bool {
        self.avoided_until_ms.is_none()
    }
}

#[derive(Debug, Clone)]
struct Slot {
    endpoint: Endpoint,
    /// Avoided while the time is before this (0: never avoided).
    avoided_until_ms: u64,
    consecutive_failures: u32,
    successes: u64,
    failures: u64,
    /// Counts the state's changes; a [`Pick`] made under another generation
    /// is older than the latest change and cannot move the state.
    generation: u64,
}

impl Slot {
    fn avoided_at(&self, now_ms: u64) -> bool {
        now_ms < self.avoided_until_ms
    }
}

/// The endpoints in order of preference and their health: which one the
/// next attempt goes to. See the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct Failover {
    slots: Vec<Slot>,
    cooldown: Cooldown,
}

impl Failover {
    /// Yunxin's mainland pair, [`DEFAULT_BASE_URLS`].
    pub fn default_endpoints() -> Vec<Endpoint> {
        DEFAULT_BASE_URLS
            .iter()
            // Valid (a test says so); `filter_map`, not `expect`, keeps
            // panic formatting out of a Worker's bundle.
            .filter_map(|url| Endpoint::new(url).ok())
            .collect()
    }

    /// The endpoints in order of preference, all healthy. Fails when there
    /// is none.
    pub fn new(endpoints: Vec<Endpoint>, cooldown: Cooldown) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::Invalid {
                field: "endpoints".into(),
                reason: "must hold at least one endpoint",
                value: String::new(),
            });
        }
        let slots = endpoints
            .into_iter()
            .map(|endpoint| Slot {
                endpoint,
                avoided_until_ms: 0,
                consecutive_failures: 0,
                successes: 0,
                failures: 0,
                generation: 0,
            })
            .collect();
        Ok(Failover { slots, cooldown })
    }

    /// The endpoints, in order.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &Endpoint> {
        self.slots.iter().map(|slot| &slot.endpoint)
    }

    /// How long a failed endpoint is avoided.
    pub fn cooldown(&self) -> Cooldown {
        self.cooldown
    }

    /// Where an attempt made at `now_ms` goes: the first endpoint not
    /// avoided, or, when all are, the one whose avoidance ends first.
    pub fn pick(&self, now_ms: u64) -> Pick {
        let index = self
            .slots
            .iter()
            .position(|slot| !slot.avoided_at(now_ms))
            .unwrap_or_else(|| {
                // `min_by_key` keeps the first of equals: the earlier in the order.
                self.slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, slot)| slot.avoided_until_ms)
                    .map_or(0, |(index, _)| index)
            });
        Pick {
            index,
            generation: self.slots[index].generation,
        }
    }

    /// The endpoint of a pick.
    pub fn endpoint(&self, pick: Pick) -> &Endpoint {
        &self.slots[pick.index.min(self.slots.len() - 1)].endpoint
    }

    /// Records what became of the attempt sent to `pick` at `now_ms`. An
    /// endpoint failure ([`Outcome::is_endpoint_failure`]) avoids the
    /// endpoint for the cooldown; any other outcome is an answer, which
    /// clears it. Either is counted; only a pick made since the endpoint's
    /// last change moves its state. Says whether the state changed.
    pub fn record(&mut self, pick: Pick, outcome: &Outcome, now_ms: u64) -> bool {
        let cooldown = self.cooldown;
        let Some(slot) = self.slots.get_mut(pick.index) else {
            return false;
        };
        let failed = outcome.is_endpoint_failure();
        if failed {
            slot.failures += 1;
        } else {
            slot.successes += 1;
        }
        if pick.generation != slot.generation {
            return false;
        }
        if failed {
            slot.consecutive_failures = slot.consecutive_failures.saturating_add(1);
            let wait = cooldown.after(slot.consecutive_failures);
            slot.avoided_until_ms = now_ms.saturating_add(wait);
        } else if slot.consecutive_failures > 0 || slot.avoided_until_ms > 0 {
            slot.consecutive_failures = 0;
            slot.avoided_until_ms = 0;
        } else {
            return false;
        }
        slot.generation += 1;
        true
    }

    /// Every endpoint's health at `now_ms`, in order.
    pub fn health(&self, now_ms: u64) -> Vec<EndpointHealth> {
        self.slots
            .iter()
            .map(|slot| EndpointHealth {
                base_url: slot.endpoint.base_url().to_owned(),
                avoided_until_ms: slot.avoided_at(now_ms).then_some(slot.avoided_until_ms),
                consecutive_failures: slot.consecutive_failures,
                successes: slot.successes,
                failures: slot.failures,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://a.example";
    const B: &str = "https://b.example";
    const C: &str = "https://c.example";

    fn failover(urls: &[&str], first_ms: u64) -> Failover {
        let endpoints = urls.iter().map(|u| Endpoint::new(u).unwrap()).collect();
        Failover::new(endpoints, Cooldown::new(first_ms)).unwrap()
    }

    fn url(failover: &Failover, pick: Pick) -> &str {
        failover.endpoint(pick).base_url()
    }

    fn refused() -> Outcome {
        Outcome::transport("fetch failed: connect ECONNREFUSED")
    }

    fn answered() -> Outcome {
        Outcome::from_http(200, br#"{"code":200,"msg":"success"}"#)
    }

    #[test]
    fn what_blames_the_endpoint() {
        let blamed = [
            refused(),
            Outcome::answer_lost("no answer within 10000 ms"),
            Outcome::from_http(500, b""),
            Outcome::from_http(502, b"<html>Bad Gateway</html>"),
            Outcome::from_http(503, b""),
            Outcome::from_http(504, b""),
        ];
        for outcome in &blamed {
            assert!(outcome.is_endpoint_failure(), "{outcome:?}");
        }
        let answers = [
            answered(),
            Outcome::from_http(200, br#"{"code":416,"msg":"frequency control"}"#),
            Outcome::from_http(200, br#"{"code":500,"msg":"server error"}"#),
            Outcome::from_http(
                200,
                br#"{"code":200,"data":{"failed_list":[{"account_id":"u","error_code":102503}]}}"#,
            ),
            Outcome::from_http(404, b"not found"),
            Outcome::from_http(429, b""),
        ];
        for outcome in &answers {
            assert!(!outcome.is_endpoint_failure(), "{outcome:?}");
        }
    }

    #[test]
    fn the_default_pair_is_the_mainland_pair_in_order() {
        let failover = Failover::new(Failover::default_endpoints(), Cooldown::default()).unwrap();
        let urls: Vec<&str> = failover.endpoints().map(Endpoint::base_url).collect();
        assert_eq!(urls, DEFAULT_BASE_URLS);
        assert_eq!(failover.cooldown(), Cooldown::new(30_000));
        assert_eq!(failover.cooldown().max_ms, 300_000);
    }

    #[test]
    fn no_endpoint_is_an_error() {
        let error = Failover::new(Vec::new(), Cooldown::default()).unwrap_err();
        assert_eq!(error.field(), Some("endpoints"));
    }

    #[test]
    fn the_first_healthy_endpoint_is_used() {
        let failover = failover(&[A, B, C], 1_000);
        assert_eq!(url(&failover, failover.pick(0)), A);
        assert_eq!(url(&failover, failover.pick(u64::MAX)), A);
    }

    #[test]
    fn a_failed_endpoint_is_avoided_for_the_cooldown_then_probed() {
        let mut failover = failover(&[A, B], 1_000);
        let pick = failover.pick(0);
        assert!(failover.record(pick, &refused(), 10));
        assert_eq!(url(&failover, failover.pick(10)), B);
        assert_eq!(url(&failover, failover.pick(1_009)), B);
        // The cooldown is over: A is tried again, being first.
        let probe = failover.pick(1_010);
        assert_eq!(url(&failover, probe), A);
        // Its answer clears it.
        assert!(failover.record(probe, &answered(), 1_100));
        let health = failover.health(1_100);
        assert_eq!(health[0].consecutive_failures, 0);
        assert_eq!((health[0].successes, health[0].failures), (1, 1));
        assert!(health.iter().all(EndpointHealth::is_healthy));
    }

    #[test]
    fn repeated_failures_double_the_cooldown_up_to_the_cap() {
        let mut failover = failover(&[A, B], 1_000);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let pick = failover.pick(now);
            assert_eq!(
                url(&failover, pick),
                A,
                "A is probed once its cooldown is over"
            );
            failover.record(pick, &Outcome::from_http(503, b""), now);
            let until = failover.health(now)[0].avoided_until_ms.unwrap();
            waits.push(until - now);
            now = until;
        }
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
        assert_eq!(failover.health(now)[0].consecutive_failures, 7);
        // An answer starts it over.
        let pick = failover.pick(now);
        failover.record(pick, &answered(), now);
        let pick = failover.pick(now);
        failover.record(pick, &refused(), now);
        assert_eq!(failover.health(now)[0].avoided_until_ms, Some(now + 1_000));
    }

    #[test]
    fn any_answer_clears_an_endpoint_even_a_refusal() {
        let mut failover = failover(&[A, B], 1_000);
        let pick = failover.pick(0);
        failover.record(pick, &refused(), 0);
        let probe = failover.pick(2_000);
        let refusal = Outcome::from_http(200, br#"{"code":414,"msg":"bad checksum"}"#);
        assert!(failover.record(probe, &refusal, 2_000));
        assert!(failover.health(2_000)[0].is_healthy());
        assert_eq!(failover.health(2_000)[0].consecutive_failures, 0);
    }

    #[test]
    fn when_all_are_avoided_the_one_back_soonest_is_used() {
        let mut failover = failover(&[A, B, C], 1_000);
        let a = failover.pick(0);
        failover.record(a, &refused(), 0); // A until 1,000
        let b = failover.pick(0);
        assert_eq!(url(&failover, b), B);
        failover.record(b, &refused(), 500); // B until 1,500
        let c = failover.pick(500);
        assert_eq!(url(&failover, c), C);
        failover.record(c, &refused(), 100); // C until 1,100
        assert_eq!(url(&failover, failover.pick(600)), A);
        // A fails again (while avoided): now until 600 + 2,000; C ends first.
        let again = failover.pick(600);
        failover.record(again, &refused(), 600);
        assert_eq!(url(&failover, failover.pick(700)), C);
        // Ties go to the earlier in the order.
        let mut tied = self::failover(&[A, B], 1_000);
        let a = tied.pick(0);
        tied.record(a, &refused(), 0);
        let b = tied.pick(0);
        tied.record(b, &refused(), 0);
        assert_eq!(url(&tied, tied.pick(10)), A);
    }

    #[test]
    fn concurrent_failures_avoid_an_endpoint_once() {
        let mut failover = failover(&[A, B], 1_000);
        // Six attempts go to A before any comes back; all meet a refusal.
        let picks: Vec<Pick> = (0..6).map(|_| failover.pick(0)).collect();
        let changed: Vec<bool> = picks
            .iter()
            .map(|&pick| failover.record(pick, &refused(), 50))
            .collect();
        assert_eq!(changed, [true, false, false, false, false, false]);
        let health = &failover.health(50)[0];
        assert_eq!(health.consecutive_failures, 1);
        assert_eq!(health.failures, 6);
        assert_eq!(health.avoided_until_ms, Some(1_050));
    }

    #[test]
    fn an_answer_to_an_attempt_older_than_the_failure_does_not_clear_it() {
        let mut failover = failover(&[A, B], 1_000);
        let slow = failover.pick(0);
        let fast = failover.pick(0);
        failover.record(fast, &Outcome::from_http(502, b""), 10);
        // The slow attempt was sent before A was known to fail.
        assert!(!failover.record(slow, &answered(), 20));
        assert!(!failover.health(20)[0].is_healthy());
        assert_eq!(failover.health(20)[0].successes, 1);
        assert_eq!(url(&failover, failover.pick(20)), B);
    }

    #[test]
    fn a_pick_from_elsewhere_is_ignored() {
        let mut failover = failover(&[A], 1_000);
        let foreign = Pick {
            index: 3,
            generation: 0,
        };
        assert!(!failover.record(foreign, &refused(), 0));
        assert_eq!(url(&failover, foreign), A);
        assert!(failover.health(0)[0].is_healthy());
    }

    #[test]
    fn health_serialises_for_a_dashboard() {
        let mut failover = failover(&[A, B], 1_000);
        let pick = failover.pick(0);
        failover.record(pick, &refused(), 0);
        let json = serde_json::to_value(failover.health(10)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"base_url": A, "avoided_until_ms": 1_000, "consecutive_failures": 1, "successes": 0, "failures": 1},
                {"base_url": B, "avoided_until_ms": null, "consecutive_failures": 0, "successes": 0, "failures": 0},
            ])
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One step: time passes, then an attempt is picked and later (after
        /// others were picked, for concurrency) its outcome is recorded.
        #[derive(Debug, Clone)]
        enum Step {
            Advance(u64),
            Pick,
            Record { which: usize, failed: bool },
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0u64..5_000).prop_map(Step::Advance),
                Just(Step::Pick),
                (0usize..8, any::<bool>())
                    .prop_map(|(which, failed)| Step::Record { which, failed }),
            ]
        }

        proptest! {
            /// Whatever happens, a pick is the first endpoint not avoided,
            /// or the one back soonest when all are; no cooldown exceeds the
            /// cap; every recorded outcome is counted once.
            #[test]
            fn never_an_avoided_endpoint_while_a_healthy_one_exists(
                count in 1usize..5,
                first_ms in 1u64..3_000,
                steps in proptest::collection::vec(step(), 1..200),
            ) {
                let urls: Vec<String> = (0..count).map(|i| format!("https://e{i}.example")).collect();
                let endpoints = urls.iter().map(|u| Endpoint::new(u).unwrap()).collect();
                let cooldown = Cooldown::new(first_ms);
                let mut failover = Failover::new(endpoints, cooldown).unwrap();
                let mut now = 0u64;
                let mut in_flight: Vec<Pick> = Vec::new();
                let mut recorded = 0u64;
                for step in steps {
                    match step {
                        Step::Advance(ms) => now += ms,
                        Step::Pick => {
                            let pick = failover.pick(now);
                            let health = failover.health(now);
                            let healthy = health.iter().position(EndpointHealth::is_healthy);
                            match healthy {
                                Some(first) => prop_assert_eq!(pick.index(), first),
                                None => {
                                    let soonest = health.iter().filter_map(|h| h.avoided_until_ms).min();
                                    prop_assert_eq!(health[pick.index()].avoided_until_ms, soonest);
                                }
                            }
                            in_flight.push(pick);
                        }
                        Step::Record { which, failed } if !in_flight.is_empty() => {
                            let pick = in_flight.remove(which % in_flight.len());
                            let outcome = if failed { refused() } else { answered() };
                            failover.record(pick, &outcome, now);
                            recorded += 1;
                        }
                        Step::Record { .. } => {}
                    }
                    for h in failover.health(now) {
                        if let Some(until) = h.avoided_until_ms {
                            prop_assert!(until > now && until - now <= cooldown.max_ms);
                            prop_assert!(h.consecutive_failures > 0);
                        }
                    }
                }
                let counted: u64 = failover.health(now).iter().map(|h| h.successes + h.failures).sum();
                prop_assert_eq!(counted, recorded);
            }
        }
    }
}
