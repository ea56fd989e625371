//! Throttle: at most `limit` notifications per receiver (or per route) in
//! any `window_secs`, as a sliding log of send times.
//!
//! ```json
//! "throttle": { "limit": 5, "window_secs": 600, "per": "receiver" }
//! ```
//!
//! A receiver over the limit is not sent to: the event's report lists it
//! as throttled, with the time its throttle opens again (when the oldest
//! send in its window leaves the window). The log is exact, not an
//! estimate: no window of `window_secs`, wherever it starts, holds more
//! than `limit` sends to one key (a property test checks it). Its size is
//! bounded: at most `limit` times per key ([`MAX_LIMIT`] at most), and only
//! keys that were sent to in the last two windows (see [`Throttle::admit`]).
//!
//! ```
//! use yunxin_edge::AccountId;
//! use yunxin_edge_routes::storm::throttle::{Throttle, ThrottleConfig};
//!
//! let config: ThrottleConfig = serde_json::from_value(serde_json::json!(
//!     { "limit": 2, "window_secs": 60 }))?;
//! let mut throttle = Throttle::default();
//! let ann = [AccountId::new("ann")];
//! assert_eq!(throttle.admit(&config, &ann, 0).allowed.len(), 1);
//! assert_eq!(throttle.admit(&config, &ann, 1_000).allowed.len(), 1);
//! let third = throttle.admit(&config, &ann, 2_000);
//! assert!(third.allowed.is_empty());
//! // Open again when the first send leaves the window.
//! assert_eq!(third.throttled[0].opens_at_ms, 60_000);
//! assert_eq!(throttle.admit(&config, &ann, 60_000).allowed.len(), 1);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use yunxin_edge::AccountId;

/// Most notifications a throttle may allow per window: a throttle is for
/// keeping a few, and each one allowed is kept in the log for a window.
pub const MAX_LIMIT: u32 = 1_000;
/// Longest throttle window, in seconds (a day).
pub const MAX_WINDOW_SECS: u32 = 86_400;

/// A route's `throttle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// Notifications allowed per key in any window: 1..=[`MAX_LIMIT`].
    pub limit: u32,
    /// The window, in seconds: 1..=[`MAX_WINDOW_SECS`].
    pub window_secs: u32,
    /// What is counted: each receiver's notifications (the default), or the
    /// route's (every event once, whatever its receivers).
    #[serde(default)]
    pub per: Per,
    /// What becomes of receivers over the limit.
    #[serde(default)]
    pub overflow: Overflow,
}

/// What a throttle counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Per {
    /// Each receiver's notifications (ids compared as the core compares
    /// them, case-insensitively).
    #[default]
    Receiver,
    /// The route's notifications: an event over the limit is throttled for
    /// all of its receivers.
    Route,
}

/// What becomes of the receivers a throttle holds back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Overflow {
    /// They are not sent this event; the report lists them as throttled.
    #[default]
    Skip,
    /// They get the event in the route's next digest instead (the route
    /// must have a `digest`, which then collects only this overflow).
    Digest,
}

impl ThrottleConfig {
    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    /// Problems with the numbers, as `(field, problem)` under `throttle`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            problems.push(("throttle.limit", format!("must be 1 to {MAX_LIMIT}")));
        }
        if !(1..=MAX_WINDOW_SECS).contains(&self.window_secs) {
            problems.push((
                "throttle.window_secs",
                format!("must be 1 to {MAX_WINDOW_SECS} (a day)"),
            ));
        }
        problems
    }
}

/// A receiver held back by the throttle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThrottledReceiver {
    /// The receiver, as the event spelled it.
    pub account_id: AccountId,
    /// When its throttle opens again (UNIX ms): a notification then is
    /// allowed, if none is allowed in between.
    pub opens_at_ms: u64,
}

/// What the throttle makes of one event's receivers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Admission {
    /// Receivers to send to (counted as sent), first spelling of each.
    pub allowed: Vec<AccountId>,
    /// Receivers held back, first spelling of each.
    pub throttled: Vec<ThrottledReceiver>,
}

/// The key of [`Per::Route`]: one log for the whole route. Receiver keys
/// are account ids, which the core refuses to be empty.
const ROUTE_KEY: &str = "";

/// One route's throttle: for each key, the times (UNIX ms) of the sends
/// still inside the window, oldest first. Serialises as a JSON object, so
/// a Durable Object can keep it between events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Send times by key: the lower-cased account id, or `""` for the route.
    sent: BTreeMap<String, Vec<u64>>,
    /// When every key was last pruned (UNIX ms).
    #[serde(default)]
    pruned_at_ms: u64,
}

impl Throttle {
    /// Admits `receivers` at `now_ms`: those under the limit are allowed
    /// (and counted), the others throttled. Receivers are compared as the
    /// core compares them ([`AccountId::key`]); a repeated one is counted
    /// once and listed once.
    ///
    /// Keys not sent to are pruned at most once a window, so the log holds
    /// only keys sent to within the last two windows.
    pub fn admit(
        &mut self,
        config: &ThrottleConfig,
        receivers: &[AccountId],
        now_ms: u64,
    ) -> Admission {
        let window_ms = config.window_ms();
        let limit = config.limit.clamp(1, MAX_LIMIT) as usize;
        if now_ms >= self.pruned_at_ms.saturating_add(window_ms) || now_ms < self.pruned_at_ms {
            self.prune(window_ms, now_ms);
        }
        let mut admission = Admission::default();
        match config.per {
            Per::Route => match self.take(ROUTE_KEY, limit, window_ms, now_ms) {
                Ok(()) => admission.allowed = unique(receivers),
                Err(opens_at_ms) => {
                    admission.throttled = unique(receivers)
                        .into_iter()
                        .map(|account_id| ThrottledReceiver {
                            account_id,
                            opens_at_ms,
                        })
                        .collect();
                }
            },
            Per::Receiver => {
                for account_id in unique(receivers) {
                    match self.take(&account_id.key(), limit, window_ms, now_ms) {
                        Ok(()) => admission.allowed.push(account_id),
                        Err(opens_at_ms) => admission.throttled.push(ThrottledReceiver {
                            account_id,
                            opens_at_ms,
                        }),
                    }
                }
            }
        }
        admission
    }

    /// Counts one send to `key` if it is under the limit; else the time it
    /// opens again.
    fn take(&mut self, key: &str, limit: usize, window_ms: u64, now_ms: u64) -> Result<(), u64> {
        let log = self.sent.entry(key.to_owned()).or_default();
        // A send counts while `now < at + window`.
        log.retain(|at| at.saturating_add(window_ms) > now_ms);
        if log.len() < limit {
            // Kept sorted whatever order the callers' clocks give.
            let at = log.partition_point(|at| *at <= now_ms);
            log.insert(at, now_ms);
            Ok(())
        } else {
            // Open once all but `limit - 1` of the sends have left the window.
            Err(log[log.len() - limit].saturating_add(window_ms))
        }
    }

    /// Forgets sends older than the window, and keys left with none.
    pub fn prune(&mut self, window_ms: u64, now_ms: u64) {
        self.sent.retain(|_, log| {
            log.retain(|at| at.saturating_add(window_ms) > now_ms);
            !log.is_empty()
        });
        self.pruned_at_ms = now_ms;
    }

    /// How many keys the log holds.
    pub fn keys(&self) -> usize {
        self.sent.len()
    }

    /// How many send times the log holds, all keys together.
    pub fn entries(&self) -> usize {
        self.sent.values().map(Vec::len).sum()
    }
}

/// The receivers without repeats, first spelling kept, compared by the
/// core's rule ([`AccountId::key`]).
pub(crate) fn unique(receivers: &[AccountId]) -> Vec<AccountId> {
    let mut seen = HashSet::with_capacity(receivers.len());
    receivers
        .iter()
        .filter(|id| seen.insert(id.key().into_owned()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(limit: u32, window_secs: u32, per: Per) -> ThrottleConfig {
        ThrottleConfig {
            limit,
            window_secs,
            per,
            overflow: Overflow::Skip,
        }
    }

    fn ids(names: &[&str]) -> Vec<AccountId> {
        names.iter().map(|n| AccountId::new(*n)).collect()
    }

    proptest! {
        /// However events arrive, no window of `window_secs` (sliding,
        /// wherever it starts) holds more than `limit` allowed sends to
        /// one receiver, and a receiver is refused only when its window
        /// is full.
        #[test]
        fn never_more_than_the_limit_in_any_window(
            limit in 1u32..6,
            window_secs in 1u32..30,
            events in proptest::collection::vec(
                (0u64..4_000, proptest::collection::vec(0usize..4, 0..5)), 1..80),
        ) {
            let names = ["ann", "Ann", "bo", "cy"];
            let config = config(limit, window_secs, Per::Receiver);
            let window_ms = config.window_ms();
            let mut throttle = Throttle::default();
            let mut now = 0;
            let mut sends: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for (advance, who) in events {
                now += advance;
                let receivers: Vec<AccountId> =
                    who.iter().map(|i| AccountId::new(names[*i])).collect();
                let admission = throttle.admit(&config, &receivers, now);
                // Every receiver is answered once, allowed or throttled.
                prop_assert_eq!(
                    admission.allowed.len() + admission.throttled.len(),
                    unique(&receivers).len()
                );
                for id in &admission.allowed {
                    sends.entry(id.key().into_owned()).or_default().push(now);
                }
                for held in &admission.throttled {
                    prop_assert!(held.opens_at_ms > now);
                    let log = &sends[&*held.account_id.key()];
                    let in_window = log.iter().filter(|t| **t + window_ms > now).count();
                    prop_assert!(in_window >= limit as usize);
                }
            }
            for log in sends.values() {
                for (i, start) in log.iter().enumerate() {
                    let in_window = log[i..].iter().take_while(|t| **t < start + window_ms).count();
                    prop_assert!(in_window <= limit as usize, "{in_window} > {limit}");
                }
            }
            // Pruned: only keys sent to in the last two windows are kept,
            // each with at most `limit` times.
            let recent = sends
                .values()
                .filter(|log| log.iter().any(|t| t + 2 * window_ms > now))
                .count();
            prop_assert!(throttle.keys() <= recent, "{} > {recent}", throttle.keys());
            prop_assert!(throttle.entries() <= recent * limit as usize);
        }
    }

    #[test]
    fn per_route_counts_events_not_receivers() {
        let config = config(1, 60, Per::Route);
        let mut throttle = Throttle::default();
        let first = throttle.admit(&config, &ids(&["ann", "bo"]), 0);
        assert_eq!(first.allowed, ids(&["ann", "bo"]));
        let second = throttle.admit(&config, &ids(&["cy", "ann"]), 10_000);
        assert!(second.allowed.is_empty());
        assert_eq!(
            second.throttled,
            [
                ThrottledReceiver {
                    account_id: AccountId::new("cy"),
                    opens_at_ms: 60_000
                },
                ThrottledReceiver {
                    account_id: AccountId::new("ann"),
                    opens_at_ms: 60_000
                }
            ]
        );
    }

    #[test]
    fn ids_are_compared_as_the_core_compares_them() {
        let config = config(1, 60, Per::Receiver);
        let mut throttle = Throttle::default();
        let admission = throttle.admit(&config, &ids(&["Ann", "ann", "bo"]), 0);
        assert_eq!(admission.allowed, ids(&["Ann", "bo"]));
        assert!(admission.throttled.is_empty());
        let again = throttle.admit(&config, &ids(&["ANN"]), 1);
        assert_eq!(again.throttled[0].account_id, AccountId::new("ANN"));
    }

    #[test]
    fn a_lowered_limit_opens_when_enough_sends_have_left() {
        let mut throttle = Throttle::default();
        let ann = ids(&["ann"]);
        for at in [0, 10, 20] {
            throttle.admit(&config(3, 100, Per::Receiver), &ann, at);
        }
        // Now only one is allowed: it opens when two of three have left.
        let held = throttle.admit(&config(1, 100, Per::Receiver), &ann, 30);
        assert_eq!(held.throttled[0].opens_at_ms, 100_020);
    }

    #[test]
    fn state_survives_serialisation() {
        let config = config(1, 60, Per::Receiver);
        let mut throttle = Throttle::default();
        throttle.admit(&config, &ids(&["ann"]), 5);
        let json = serde_json::to_string(&throttle).unwrap();
        let mut back: Throttle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, throttle);
        assert!(back.admit(&config, &ids(&["ann"]), 6).allowed.is_empty());
    }
}
