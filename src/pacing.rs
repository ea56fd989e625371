//! Pacing: when each upstream call may leave, so that an app's calls stay
//! within Yunxin's per-minute quota (over it, Yunxin answers 416 and blocks
//! the app for a while).
//!
//! Slots are evenly spaced, `60 s / quota` apart and 2 % wider: no burst
//! allowance, so any 60-second window, sliding or fixed, holds at most
//! `quota` slots; the 2 % absorbs network jitter that brings two calls
//! closer on arrival than they were on leaving. A caller asks for several
//! slots at once ([`Pace::grant`]): a queue consumer with a batch of calls
//! makes one request to its pacer instead of one per call, and takes only
//! slots it can wait for, so no granted slot goes unused.
//!
//! ```
//! use yunxin_edge::pacing::Pace;
//!
//! let mut pace = Pace::default();
//! // 600 calls a minute: slots 102 ms apart; wait at most 250 ms.
//! let grant = pace.grant(1_000, 600, 5, 250);
//! assert_eq!(grant.starts_ms, vec![1_000, 1_102, 1_204]);
//! // The two calls without a slot come back no earlier than this.
//! assert_eq!(grant.next_ms, 1_306);
//!
//! // 10,000 a minute: 6.12 ms apart, kept to the microsecond.
//! let grant = Pace::default().grant(0, 10_000, 4, 1_000);
//! assert_eq!(grant.starts_ms, vec![0, 7, 13, 19]);
//! ```
//!
//! After a 416, Yunxin blocks the whole app, not just the call it refused:
//! every call made during the block burns another 416 (and, on a strict
//! server, may extend nothing but still fails). [`Pace::pause_until`] moves
//! the next free slot past the block's end, so that no grant of the app
//! starts before it; [`rate_limit_block_end`] says from an attempt's outcome
//! whether, and until when, to pause.
//!
//! ```
//! use yunxin_edge::pacing::Pace;
//!
//! let mut pace = Pace::default();
//! pace.pause_until(61_000);
//! // Nothing within a 1 s wait at 1 s; the next slot is the block's end.
//! let grant = pace.grant(1_000, 600, 3, 1_000);
//! assert!(grant.starts_ms.is_empty());
//! assert_eq!(grant.next_ms, 61_000);
//! ```

use serde::{Deserialize, Serialize};

use crate::delivery::AttemptOutcome;
use crate::response::Outcome;

/// One app's pacing state: the next free slot. Kept by whoever serialises
/// the app's calls (the relay's pacer Durable Object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// The earliest time the next slot may start, in microseconds: at
    /// 10,000 calls a minute a slot is 6.12 ms, and whole milliseconds
    /// would lose 13 % of the quota.
    pub next_free_us: u64,
}

/// Slots handed out by [`Pace::grant`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Grant {
    /// When each granted call may leave (ms), in order; at most the count
    /// asked for, each no later than `now + max_wait`.
    pub starts_ms: Vec<u64>,
    /// The next free slot after these: when a call that got none could
    /// have one.
    pub next_ms: u64,
}

impl Grant {
    /// When the `nth` (from 0) of the calls that got no slot may ask again:
    /// after the calls refused before it, so that they come back in order
    /// and spread out, not all at once for the same slot.
    pub fn retry_at_ms(&self, nth: usize, per_minute: u32) -> u64 {
        self.next_ms + (nth as u64 * interval_us(per_minute)).div_ceil(1000)
    }
}

/// How late after its slot a call may still leave: 500 ms. The 2 % margin
/// makes 60 s of slots span 61.2 s, so calls that each leave less than
/// 1.2 s after their slot still fit any 60-second window; half of that is
/// left for network jitter. A call later than this gives its slot up and
/// asks for another.
pub const MAX_LAG_MS: u64 = 500;

/// Whether a call whose slot starts at `slot_ms` may still leave at `now_ms`
/// (it may not leave before its slot; the caller waits until then).
pub fn may_leave(slot_ms: u64, now_ms: u64) -> bool {
    now_ms <= slot_ms + MAX_LAG_MS
}

/// The spacing of slots for `per_minute` calls a minute (at least 1), with
/// the 2 % margin, in microseconds.
pub fn interval_us(per_minute: u32) -> u64 {
    (60_000_000_u64 * 102).div_ceil(100 * u64::from(per_minute.max(1)))
}

/// When Yunxin's block of the app ends, if `outcome` (received at `now_ms`)
/// says the app is blocked: a whole call refused with code 416. The block
/// lasts at least `backoff_ms` (`RATE_LIMIT_BACKOFF_SECS`; Yunxin says
/// "about a minute") and at least the answer's `Retry-After`, capped at
/// `retry_after_cap_ms`. A receiver's own `1xx416` inside an answered call
/// is not a block of the app (the call was taken) and pauses nothing.
pub fn rate_limit_block_end(
    outcome: &AttemptOutcome,
    now_ms: u64,
    backoff_ms: u64,
    retry_after_cap_ms: u64,
) -> Option<u64> {
    let Outcome::Rejected { code: 416, .. } = outcome.outcome else {
        return None;
    };
    let told = outcome
        .retry_after_secs
        .map_or(0, |secs| secs.saturating_mul(1000))
        .min(retry_after_cap_ms);
    Some(now_ms.saturating_add(backoff_ms.max(told)))
}

impl Pace {
    /// Grants nothing that starts before `until_ms`: the app is blocked
    /// until then (see [`rate_limit_block_end`]). Slots already granted are
    /// not taken back (their holders check the block themselves); a pause
    /// never shortens an earlier one, and costs the quota nothing, as the
    /// first slot after it is spaced from nothing sent during the block.
    pub fn pause_until(&mut self, until_ms: u64) {
        self.next_free_us = self.next_free_us.max(until_ms.saturating_mul(1000));
    }

    /// Grants up to `count` consecutive slots starting no later than
    /// `now_ms + max_wait_ms`, and advances past them. Slots not granted are
    /// not reserved: a call that cannot wait costs the quota nothing.
    pub fn grant(&mut self, now_ms: u64, per_minute: u32, count: usize, max_wait_ms: u64) -> Grant {
        let interval = interval_us(per_minute);
        let first = self.next_free_us.max(now_ms.saturating_mul(1000));
        let latest = now_ms.saturating_add(max_wait_ms).saturating_mul(1000);
        let granted: Vec<u64> = (0..count as u64)
            .map(|i| first + i * interval)
            .take_while(|start| *start <= latest)
            .collect();
        if let Some(last) = granted.last() {
            self.next_free_us = last + interval;
        }
        // Rounded up: a call never leaves before its slot.
        let ms = |us: u64| us.div_ceil(1000);
        Grant {
            starts_ms: granted.into_iter().map(ms).collect(),
            next_ms: ms(self.next_free_us.max(first)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However callers ask, no 60-second window holds more slots than
        /// the quota, and no slot is granted past its caller's wait.
        #[test]
        fn never_over_the_quota_in_any_minute(
            per_minute in 1u32..20_000,
            asks in proptest::collection::vec((0u64..5_000, 0usize..120, 0u64..30_000), 1..60),
        ) {
            let mut pace = Pace::default();
            let mut now = 0;
            let mut starts = Vec::new();
            for (advance, count, max_wait) in asks {
                now += advance;
                let grant = pace.grant(now, per_minute, count, max_wait);
                prop_assert!(grant.starts_ms.len() <= count);
                prop_assert!(grant.starts_ms.iter().all(|s| *s >= now && *s <= now + max_wait));
                starts.extend(grant.starts_ms);
            }
            // Calls leave between their slot and MAX_LAG_MS after it: any
            // 60 s window of departures holds only slots from a window
            // MAX_LAG_MS longer, which must still hold at most the quota.
            for (i, first) in starts.iter().enumerate() {
                let span = 60_000 + MAX_LAG_MS;
                let in_window = starts[i..].iter().take_while(|s| **s < first + span).count();
                prop_assert!(in_window as u32 <= per_minute, "{in_window} > {per_minute}");
            }
        }
    }

    #[test]
    fn nothing_is_reserved_beyond_the_wait() {
        let mut pace = Pace::default();
        // 120 a minute: 510 ms apart; nothing within 100 ms after the first.
        assert_eq!(pace.grant(0, 120, 3, 100).starts_ms, vec![0]);
        let later = pace.grant(0, 120, 3, 100);
        assert!(later.starts_ms.is_empty());
        assert_eq!(later.next_ms, 510);
        // The refusal took no slot: the next caller gets 510.
        assert_eq!(pace.grant(400, 120, 1, 200).starts_ms, vec![510]);
    }

    #[test]
    fn a_late_call_gives_its_slot_up() {
        assert!(may_leave(1_000, 500));
        assert!(may_leave(1_000, 1_500));
        assert!(!may_leave(1_000, 1_501));
    }

    #[test]
    fn a_416_pauses_every_grant_until_the_block_ends() {
        let mut pace = Pace::default();
        // 600 a minute, 102 ms apart: three calls due in the next 300 ms.
        assert_eq!(pace.grant(0, 600, 3, 300).starts_ms, vec![0, 102, 204]);
        // The first is answered 416 at 50 ms: the app is blocked for 60 s.
        let refused = AttemptOutcome::from(Outcome::Rejected {
            code: 416,
            msg: "frequency control".into(),
        });
        let end = rate_limit_block_end(&refused, 50, 60_000, 3_600_000);
        assert_eq!(end, Some(60_050));
        pace.pause_until(60_050);
        // No caller, however long it may wait short of the end, gets a slot.
        for now in [60, 1_000, 59_000] {
            let grant = pace.grant(now, 600, 5, 60_049 - now);
            assert!(grant.starts_ms.is_empty(), "granted at {now}: {grant:?}");
            assert_eq!(grant.next_ms, 60_050);
            assert_eq!(grant.retry_at_ms(1, 600), 60_152);
        }
        // At the end, slots again, spaced as before.
        assert_eq!(pace.grant(60_050, 600, 2, 0).starts_ms, vec![60_050]);
        assert_eq!(pace.grant(60_050, 600, 2, 200).starts_ms, vec![60_152]);
        // A shorter pause later never shortens the block.
        let mut paused = Pace::default();
        paused.pause_until(10_000);
        paused.pause_until(5_000);
        assert_eq!(paused.grant(0, 600, 1, 20_000).starts_ms, vec![10_000]);
    }

    #[test]
    fn only_a_refused_call_blocks_the_app() {
        let at = |outcome: Outcome, retry_after_secs| {
            rate_limit_block_end(
                &AttemptOutcome {
                    outcome,
                    retry_after_secs,
                },
                1_000,
                60_000,
                120_000,
            )
        };
        let refused = || Outcome::Rejected {
            code: 416,
            msg: "frequency control".into(),
        };
        assert_eq!(at(refused(), None), Some(61_000));
        // Retry-After longer than the backoff, and capped.
        assert_eq!(at(refused(), Some(90)), Some(91_000));
        assert_eq!(at(refused(), Some(3_600)), Some(121_000));
        // Other refusals, a receiver's own 416, and lost answers: no block.
        let other = Outcome::Rejected {
            code: 414,
            msg: "bad".into(),
        };
        assert_eq!(at(other, None), None);
        let receiver = Outcome::from_http(
            200,
            br#"{"code":200,"data":{"failed_list":[{"account_id":"a","error_code":102416,"error_msg":"busy"}]}}"#,
        );
        assert!(matches!(receiver, Outcome::PartialFailure { .. }));
        assert_eq!(at(receiver, Some(90)), None);
        assert_eq!(at(Outcome::answer_lost("timeout"), None), None);
    }

    proptest! {
        /// Whatever was granted before, no slot starts inside a block.
        #[test]
        fn nothing_is_granted_inside_a_block(
            per_minute in 1u32..20_000,
            before in 0usize..50,
            block_ms in 1u64..120_000,
            asks in proptest::collection::vec((0u64..5_000, 0usize..20, 0u64..200_000), 1..30),
        ) {
            let mut pace = Pace::default();
            pace.grant(0, per_minute, before, 60_000);
            let end = 1_000 + block_ms;
            pace.pause_until(end);
            let mut now = 1_000;
            for (advance, count, max_wait) in asks {
                now += advance;
                let grant = pace.grant(now, per_minute, count, max_wait);
                prop_assert!(grant.starts_ms.iter().all(|s| *s >= end));
                prop_assert!(grant.next_ms >= end);
            }
        }
    }

    #[test]
    fn an_idle_pacer_starts_now() {
        let mut pace = Pace {
            next_free_us: 50_000,
        };
        assert_eq!(pace.grant(10_000, 6_000, 2, 0).starts_ms, vec![10_000]);
        assert_eq!(pace.next_free_us, 10_010_200);
    }
}
