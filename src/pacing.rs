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

use serde::{Deserialize, Serialize};

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

impl Pace {
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
    fn an_idle_pacer_starts_now() {
        let mut pace = Pace {
            next_free_us: 50_000,
        };
        assert_eq!(pace.grant(10_000, 6_000, 2, 0).starts_ms, vec![10_000]);
        assert_eq!(pace.next_free_us, 10_010_200);
    }
}
