//! Time in templates: instants, time zones and durations, for the
//! `datetime`, `timestamp` and `duration` filters and for quiet hours.
//!
//! - `{{ payload.startsAt | datetime("%m-%d %H:%M") }}` formats an instant
//!   in the default zone (the relay's `TIMEZONE`, `Asia/Shanghai` unless
//!   set; see [`Timezone`]); `datetime("%H:%M %Z", tz="Europe/London")` in a
//!   named one. Without a format: `%Y-%m-%d %H:%M:%S`. The directives are
//!   `strftime`'s, as `jiff` implements them (`%Y %m %d %H %M %S %a %b %Z
//!   %z %:z %.f`, `%Q` the zone's IANA name …).
//! - `{{ alert.startsAt | timestamp }}` is the instant in UNIX seconds, for
//!   arithmetic: `{{ (now - (alert.startsAt | timestamp)) | duration }}`.
//! - `{{ 7500 | duration }}` is `2h 5m`; `duration(lang="zh")` is
//!   `2小时5分钟`. The two largest non-zero units of d/h/m/s, truncated
//!   (`parts=1` to `parts=4` for fewer or more); `0s` / `0秒` for zero; a
//!   negative duration starts with `-`.
//!
//! An instant is UNIX seconds (an integer, a float, or a string of
//! either) or an RFC 3339 text (`2026-03-08T06:59:00Z`,
//! `2026-03-08T14:59:00+08:00`, fractions allowed). Milliseconds are not
//! guessed: divide them (`payload.msgTimestamp // 1000`). An undefined or
//! `none` value stays undefined (it renders empty, as a missing field does
//! anywhere else); anything else that is not an instant, an unknown zone or
//! a format directive `jiff` does not know is a template error naming the
//! filter, never a panic.
//!
//! Zones are IANA names from the tz database bundled into the build (no
//! host's `/usr/share/zoneinfo`, which wasm32 does not have), so a zone's
//! rules are the same wherever the code runs.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, tz};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value as Jinja};

/// The default zone of `datetime` when the relay's `TIMEZONE` is not set.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// The `datetime` format when none is given.
pub const DEFAULT_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Longest `datetime` format, in bytes: formats are short, and output
/// grows with them.
const MAX_FORMAT_BYTES: usize = 256;

/// A named IANA time zone, checked against the bundled tz database.
///
/// ```
/// use yunxin_edge_routes::time::Timezone;
/// let tz: Timezone = "America/New_York".parse()?;
/// assert_eq!(tz.name(), "America/New_York");
/// assert!("Mars/Olympus_Mons".parse::<Timezone>().is_err());
/// # Ok::<(), yunxin_edge_routes::time::UnknownZone>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Timezone {
    name: String,
    zone: TimeZone,
}

/// A zone name the tz database does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time zone (e.g. `Asia/Shanghai`, `America/New_York`, `UTC`)")]
pub struct UnknownZone(pub String);

impl Timezone {
    /// The zone of that IANA name (`UTC` included).
    pub fn new(name: &str) -> Result<Self, UnknownZone> {
        // Bounded before the lookup: names are short, input may not be.
        if name.is_empty() || name.len() > 64 {
            return Err(UnknownZone(name.chars().take(64).collect()));
        }
        let zone = tz::db()
            .get(name)
            .map_err(|_| UnknownZone(name.to_owned()))?;
        Ok(Timezone {
            name: name.to_owned(),
            zone,
        })
    }

    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `jiff` zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }
}

impl Default for Timezone {
    /// [`DEFAULT_TIMEZONE`].
    fn default() -> Self {
        // The bundled database always has it; UTC rather than a panic if a
        // build ever left the database out.
        Timezone::new(DEFAULT_TIMEZONE).unwrap_or_else(|_| Timezone {
            name: "UTC".to_owned(),
            zone: TimeZone::UTC,
        })
    }
}

impl fmt::Debug for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Timezone").field(&self.name).finish()
    }
}

impl FromStr for Timezone {
    type Err = UnknownZone;
    fn from_str(name: &str) -> Result<Self, UnknownZone> {
        Timezone::new(name)
    }
}

impl serde::Serialize for Timezone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for Timezone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Timezone::new(&name).map_err(serde::de::Error::custom)
    }
}

/// A wall-clock time of day, `HH:MM` (24-hour), as quiet hours take it.
///
/// ```
/// use yunxin_edge_routes::time::ClockTime;
/// let t: ClockTime = "07:30".parse()?;
/// assert_eq!((t.hour(), t.minute()), (7, 30));
/// assert!("24:00".parse::<ClockTime>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime {
    hour: u8,
    minute: u8,
}

impl ClockTime {
    /// The time `hour:minute`, if `hour` is 0..=23 and `minute` 0..=59.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour <= 23 && minute <= 59).then_some(ClockTime { hour, minute })
    }

    /// The hour, 0..=23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0..=59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// The `jiff` civil time.
    pub fn time(self) -> Time {
        // In range by construction (`new` and `from_str` check it).
        Time::constant(self.hour as i8, self.minute as i8, 0, 0)
    }
}

impl FromStr for ClockTime {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a time of day `HH:MM` (00:00 to 23:59)");
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        let (hour, minute): (u8, u8) =
            (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        ClockTime::new(hour, minute).ok_or_else(bad)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl serde::Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The civil date of `ts` in `zone`.
pub(crate) fn local_date(ts: Timestamp, zone: &TimeZone) -> Date {
    zone.to_datetime(ts).date()
}

/// An instant from text: UNIX seconds (`1772953140`, `-5`, `1772953140.5`)
/// or RFC 3339 (`2026-03-08T06:59:00Z`).
///
/// ```
/// use yunxin_edge_routes::time::parse_instant;
/// assert_eq!(parse_instant("1772953140")?.as_second(), 1_772_953_140);
/// assert_eq!(parse_instant("2026-03-08T14:59:00+08:00")?.as_second(), 1_772_953_140);
/// assert!(parse_instant("yesterday").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let numeric = !text.is_empty()
        && text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    if numeric {
        if let Ok(secs) = text.parse::<i64>() {
            return from_secs(secs);
        }
        if let Ok(secs) = text.parse::<f64>() {
            return from_float_secs(secs);
        }
    }
    Timestamp::from_str(text).map_err(|_| {
        format!(
            "`{}` is not UNIX seconds or an RFC 3339 time",
            text.chars().take(64).collect::<String>()
        )
    })
}

fn from_secs(secs: i64) -> Result<Timestamp, String> {
    Timestamp::from_second(secs).map_err(|_| format!("{secs} is out of the range of time"))
}

fn from_float_secs(secs: f64) -> Result<Timestamp, String> {
    let ms = (secs * 1000.0).round();
    // `as` saturates; the range check below refuses what saturated.
    if !ms.is_finite() || ms.abs() > 1e17 {
        return Err(format!("{secs:?} is out of the range of time"));
    }
    Timestamp::from_millisecond(ms as i64)
        .map_err(|_| format!("{secs} is out of the range of time"))
}

/// An instant from a template value; `None` for undefined and `none`.
fn instant(filter: &str, value: &Jinja) -> Result<Option<Timestamp>, Error> {
    let bad = |why: String| Error::new(ErrorKind::InvalidOperation, format!("{filter}: {why}"));
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(None),
        ValueKind::Number => {
            if let Ok(secs) = i64::try_from(value.clone()) {
                from_secs(secs).map(Some).map_err(bad)
            } else if let Ok(secs) = f64::try_from(value.clone()) {
                from_float_secs(secs).map(Some).map_err(bad)
            } else {
                Err(bad(format!("{value} is out of the range of time")))
            }
        }
        ValueKind::String => parse_instant(value.as_str().unwrap_or_default())
            .map(Some)
            .map_err(bad),
        other => Err(bad(format!(
            "a {other} is not UNIX seconds or an RFC 3339 time"
        ))),
    }
}

/// The `datetime` filter, with `default` as the zone when `tz` is not given.
pub(crate) fn datetime(
    default: &Timezone,
    value: &Jinja,
    format: Option<&str>,
    kwargs: &Kwargs,
) -> Result<Jinja, Error> {
    let bad = |why: String| Error::new(ErrorKind::InvalidOperation, format!("datetime: {why}"));
    let tz: Option<&str> = kwargs.get("tz")?;
    kwargs.assert_all_used()?;
    let Some(instant) = instant("datetime", value)? else {
        return Ok(value.clone());
    };
    let format = format.unwrap_or(DEFAULT_FORMAT);
    if format.len() > MAX_FORMAT_BYTES {
        return Err(bad(format!(
            "the format is longer than {MAX_FORMAT_BYTES} bytes"
        )));
    }
    let named;
    let zone = match tz {
        None => default,
        Some(name) => {
            named = Timezone::new(name).map_err(|e| bad(e.to_string()))?;
            &named
        }
    };
    let zoned = instant.to_zoned_datetime(zone.zone().clone());
    jiff::fmt::strtime::format(format, &zoned)
        .map(Jinja::from)
        .map_err(|e| bad(format!("format `{format}`: {e}")))
}

/// The `timestamp` filter: UNIX seconds (an integer) of an instant.
pub(crate) fn timestamp(value: &Jinja) -> Result<Jinja, Error> {
    Ok(match instant("timestamp", value)? {
        None => value.clone(),
        Some(instant) => Jinja::from(instant.as_second()),
    })
}

/// Units of `duration`: seconds each, English and Chinese names.
const UNITS: [(i64, &str, &str); 4] = [
    (86_400, "d", "天"),
    (3_600, "h", "小时"),
    (60, "m", "分钟"),
    (1, "s", "秒"),
];

/// A duration in seconds as text: the `parts` (1 to 4) largest units from
/// the first non-zero one (truncated, zero units not shown), English
/// (`2h 5m`) or Chinese (`2小时5分钟`).
///
/// ```
/// use yunxin_edge_routes::time::format_duration;
/// assert_eq!(format_duration(7_530, 2, false), "2h 5m");
/// assert_eq!(format_duration(7_530, 3, true), "2小时5分钟30秒");
/// assert_eq!(format_duration(0, 2, false), "0s");
/// assert_eq!(format_duration(-90, 2, false), "-1m 30s");
/// ```
pub fn format_duration(secs: i64, parts: usize, zh: bool) -> String {
    let parts = parts.clamp(1, UNITS.len());
    let mut rest = secs.unsigned_abs();
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
    }
    let mut written = 0;
    for (size, en, cn) in UNITS {
        let size = size as u64;
        let n = rest / size;
        rest %= size;
        if n == 0 && written == 0 {
            continue;
        }
        if written == parts {
            break;
        }
        // Zero units inside (`1h 0m 5s`) count as a part but are not shown:
        // `1h 5s` would read as more precise than two parts promise.
        written += 1;
        if n == 0 {
            continue;
        }
        if !zh && out.len() > usize::from(secs < 0) {
            out.push(' ');
        }
        out.push_str(&n.to_string());
        out.push_str(if zh { cn } else { en });
    }
    if written == 0 {
        out.push_str(if zh { "0秒" } else { "0s" });
    }
    out
}

/// The `duration` filter: seconds (a number or digits) to text.
pub(crate) fn duration(value: &Jinja, kwargs: &Kwargs) -> Result<Jinja, Error> {
    let bad = |why: String| Error::new(ErrorKind::InvalidOperation, format!("duration: {why}"));
    let lang: Option<&str> = kwargs.get("lang")?;
    let parts: Option<u32> = kwargs.get("parts")?;
    kwargs.assert_all_used()?;
    let zh = match lang {
        None | Some("en") => false,
        Some("zh") => true,
        Some(other) => return Err(bad(format!("lang `{other}` is not `en` or `zh`"))),
    };
    let parts = match parts {
        None => 2,
        Some(n @ 1..=4) => n as usize,
        Some(n) => return Err(bad(format!("parts {n} is not 1 to 4"))),
    };
    let secs = match value.kind() {
        ValueKind::Undefined | ValueKind::None => return Ok(value.clone()),
        ValueKind::Number => i64::try_from(value.clone())
            .ok()
            .or_else(|| {
                f64::try_from(value.clone())
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9e18)
                    .map(|f| f.trunc() as i64)
            })
            .ok_or_else(|| bad(format!("{value} is not a number of seconds")))?,
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            text.parse::<i64>()
                .ok()
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && f.abs() < 9e18)
                        .map(|f| f.trunc() as i64)
                })
                .ok_or_else(|| {
                    bad(format!(
                        "`{}` is not a number of seconds",
                        text.chars().take(64).collect::<String>()
                    ))
                })?
        }
        other => return Err(bad(format!("a {other} is not a number of seconds"))),
    };
    Ok(Jinja::from(format_duration(secs, parts, zh)))
}
