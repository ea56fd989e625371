//! Quiet hours: a daily window of wall-clock time in a named zone in which
//! a route's events are deferred to the window's end, or dropped.
//!
//! ```json
//! "quiet_hours": { "tz": "Asia/Shanghai", "from": "22:00", "to": "08:00", "mode": "defer" }
//! ```
//!
//! The window is `[from, to)` each day; `from` after `to` crosses midnight
//! (22:00 to 08:00 the next morning). `from` equal to `to` is refused: it
//! could mean no window or all day.
//!
//! Daylight saving time, as RFC 5545 and JavaScript's Temporal resolve a
//! wall-clock time (jiff's "compatible" rule):
//!
//! - a `from` or `to` that falls in a gap (the clock jumps over it) is
//!   moved forward by the gap: 02:30 on 2026-03-08 in New York is 03:30
//!   EDT;
//! - one that falls in a fold (the clock repeats it) is its first
//!   occurrence: 01:30 on 2026-11-01 in New York is 01:30 EDT.
//!
//! So no day's window is skipped or doubled, and a window spanning the
//! change is an hour shorter (spring) or longer (autumn) in real time:
//! 22:00–08:00 in New York lasts 9 hours on the night of 2026-03-08.
//!
//! ```
//! use yunxin_edge_routes::storm::quiet::QuietHours;
//!
//! let quiet: QuietHours = serde_json::from_value(serde_json::json!(
//!     { "tz": "Asia/Shanghai", "from": "22:00", "to": "08:00" }))?;
//! // 2026-01-01 23:00 in Shanghai (UTC+8) is 15:00 UTC.
//! let window = quiet.window_at(1_767_279_600_000).unwrap();
//! // It ends at 08:00 the next morning, 00:00 UTC on 2026-01-02.
//! assert_eq!(window.ends_at_ms, 1_767_312_000_000);
//! // 12:00 in Shanghai is not quiet.
//! assert!(quiet.window_at(1_767_240_000_000).is_none());
//! # Ok::<(), serde_json::Error>(())
//! ```

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::time::{ClockTime, Timezone, local_date};

/// A route's `quiet_hours`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QuietHours {
    /// The zone of `from` and `to`: an IANA name.
    pub tz: Timezone,
    /// Start of the window, `HH:MM`, inclusive.
    pub from: ClockTime,
    /// End of the window, `HH:MM`, exclusive; before `from` crosses midnight.
    pub to: ClockTime,
    /// What becomes of an event inside the window.
    #[serde(default)]
    pub mode: QuietMode,
}

/// What quiet hours do with an event inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QuietMode {
    /// Held until the window ends, then delivered as usual (into the
    /// route's digest, if it has one).
    #[default]
    Defer,
    /// Not sent at all; the event's status says so.
    Drop,
}

/// One day's quiet window, in UNIX milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuietWindow {
    /// When it started.
    pub starts_at_ms: u64,
    /// When it ends: a deferred event is due then.
    pub ends_at_ms: u64,
}

impl QuietHours {
    /// The window `now_ms` is in, if any.
    pub fn window_at(&self, now_ms: u64) -> Option<QuietWindow> {
        let now = Timestamp::from_millisecond(i64::try_from(now_ms).ok()?).ok()?;
        let today = local_date(now, self.tz.zone());
        // Only a window that starts yesterday or today can hold `now`: a
        // start is never moved earlier than its wall-clock time.
        [today.yesterday().ok()?, today]
            .into_iter()
            .filter_map(|day| self.window_of(day))
            .find(|window| {
                let now = now_ms as i128;
                i128::from(window.starts_at_ms) <= now && now < i128::from(window.ends_at_ms)
            })
    }

    /// The window that starts on `day` (local).
    fn window_of(&self, day: Date) -> Option<QuietWindow> {
        let zone = self.tz.zone();
        let start = zone.to_timestamp(day.to_datetime(self.from.time())).ok()?;
        let end_day = if self.from < self.to {
            day
        } else {
            day.tomorrow().ok()?
        };
        let end = zone
            .to_timestamp(end_day.to_datetime(self.to.time()))
            .ok()?;
        let ms = |t: Timestamp| u64::try_from(t.as_millisecond()).ok();
        Some(QuietWindow {
            starts_at_ms: ms(start)?,
            ends_at_ms: ms(end)?,
        })
    }

    /// How an event's status names them: `22:00–08:00 Asia/Shanghai`.
    pub fn label(&self) -> String {
        format!("{}–{} {}", self.from, self.to, self.tz.name())
    }

    /// Problems `serde` cannot see, as `(field, problem)`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        if self.from == self.to {
            vec![(
                "quiet_hours.to",
                "must differ from `from` (the same time could mean no window or all day)".into(),
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(tz: &str, from: &str, to: &str) -> QuietHours {
        serde_json::from_value(serde_json::json!({ "tz": tz, "from": from, "to": to })).unwrap()
    }

    fn ms(rfc3339: &str) -> u64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    /// (zone, from, to, now, the end of the window it is in, if any)
    #[test]
    fn windows_across_zones_midnight_and_daylight_saving() {
        let table = [
            // Same day, Shanghai (no DST).
            (
                "Asia/Shanghai",
                "12:00",
                "14:00",
                "2026-06-01T04:30:00Z",
                Some("2026-06-01T06:00:00Z"),
            ),
            (
                "Asia/Shanghai",
                "12:00",
                "14:00",
                "2026-06-01T06:00:00Z",
                None,
            ),
            (
                "Asia/Shanghai",
                "12:00",
                "14:00",
                "2026-06-01T03:59:59Z",
                None,
            ),
            // Crossing midnight: before and after it.
            (
                "Asia/Shanghai",
                "22:00",
                "08:00",
                "2026-06-01T14:00:00Z",
                Some("2026-06-02T00:00:00Z"),
            ),
            (
                "Asia/Shanghai",
                "22:00",
                "08:00",
                "2026-06-01T23:59:00Z",
                Some("2026-06-02T00:00:00Z"),
            ),
            (
                "Asia/Shanghai",
                "22:00",
                "08:00",
                "2026-06-02T00:00:00Z",
                None,
            ),
            // New York, spring forward (2026-03-08 02:00 EST → 03:00 EDT):
            // 22:00 EST the night before to 08:00 EDT is 9 hours.
            (
                "America/New_York",
                "22:00",
                "08:00",
                "2026-03-08T06:59:00Z",
                Some("2026-03-08T12:00:00Z"),
            ),
            (
                "America/New_York",
                "22:00",
                "08:00",
                "2026-03-08T11:59:59Z",
                Some("2026-03-08T12:00:00Z"),
            ),
            (
                "America/New_York",
                "22:00",
                "08:00",
                "2026-03-08T12:00:00Z",
                None,
            ),
            // A `from` in the gap (02:30) is moved forward to 03:30 EDT.
            (
                "America/New_York",
                "02:30",
                "05:00",
                "2026-03-08T07:15:00Z",
                None,
            ),
            (
                "America/New_York",
                "02:30",
                "05:00",
                "2026-03-08T07:30:00Z",
                Some("2026-03-08T09:00:00Z"),
            ),
            // Fall back (2026-11-01 02:00 EDT → 01:00 EST): 22:00 EDT to
            // 08:00 EST is 11 hours.
            (
                "America/New_York",
                "22:00",
                "08:00",
                "2026-11-01T02:00:00Z",
                Some("2026-11-01T13:00:00Z"),
            ),
            (
                "America/New_York",
                "22:00",
                "08:00",
                "2026-11-01T12:59:00Z",
                Some("2026-11-01T13:00:00Z"),
            ),
            // A `to` in the fold (01:30) is its first occurrence, EDT.
            (
                "America/New_York",
                "00:00",
                "01:30",
                "2026-11-01T05:29:00Z",
                Some("2026-11-01T05:30:00Z"),
            ),
            (
                "America/New_York",
                "00:00",
                "01:30",
                "2026-11-01T06:00:00Z",
                None,
            ),
            // London, BST starts 2026-03-29 01:00 GMT.
            (
                "Europe/London",
                "00:00",
                "07:00",
                "2026-03-29T05:30:00Z",
                Some("2026-03-29T06:00:00Z"),
            ),
            (
                "Europe/London",
                "00:00",
                "07:00",
                "2026-03-29T06:00:00Z",
                None,
            ),
            (
                "Europe/London",
                "00:00",
                "07:00",
                "2026-01-10T06:59:00Z",
                Some("2026-01-10T07:00:00Z"),
            ),
        ];
        for (tz, from, to, now, end) in table {
            let window = quiet(tz, from, to).window_at(ms(now));
            assert_eq!(
                window.map(|w| w.ends_at_ms),
                end.map(ms),
                "{tz} {from}–{to} at {now}"
            );
        }
    }

    #[test]
    fn the_window_knows_when_it_started() {
        let window = quiet("America/New_York", "22:00", "08:00")
            .window_at(ms("2026-11-01T02:00:00Z"))
            .unwrap();
        // 22:00 EDT on 2026-10-31.
        assert_eq!(window.starts_at_ms, ms("2026-11-01T02:00:00Z"));
        assert_eq!(window.ends_at_ms - window.starts_at_ms, 11 * 3_600_000);
    }

    #[test]
    fn bad_zones_times_and_empty_windows_are_refused() {
        let parse = |value: serde_json::Value| serde_json::from_value::<QuietHours>(value);
        let e = parse(serde_json::json!({ "tz": "Mars/Base", "from": "22:00", "to": "08:00" }))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("`Mars/Base` is not an IANA time zone"),
            "{e}"
        );
        for time in ["24:00", "7:00", "07:60", "0700", "", "07:00:00"] {
            let e =
                parse(serde_json::json!({ "tz": "UTC", "from": time, "to": "08:00" })).unwrap_err();
            assert!(
                e.to_string().contains("is not a time of day `HH:MM`"),
                "{time}: {e}"
            );
        }
        let e = parse(
            serde_json::json!({ "tz": "UTC", "from": "08:00", "to": "08:00", "mode": "mute" }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant `mute`"), "{e}");
        assert_eq!(
            quiet("UTC", "08:00", "08:00").problems()[0].0,
            "quiet_hours.to"
        );
        assert_eq!(quiet("UTC", "08:00", "09:00").label(), "08:00–09:00 UTC");
    }
}
