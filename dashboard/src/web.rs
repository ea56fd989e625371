//! HTTP odds and ends, free of I/O: the answer a handler makes ([`Page`]),
//! cookies, forms, event ids in paths, sign-in redirects, and times.

use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What a handler answers; the Worker turns it into a `Response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// More headers (`Location`, `Set-Cookie`, …).
    pub headers: Vec<(&'static str, String)>,
}

/// An HTML page's `Content-Type`.
pub const HTML: &str = "text/html; charset=utf-8";
/// Plain text.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text format, version 0.0.4.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every page: no script may run, nothing loads from elsewhere, no framing,
/// forms post only here. Inline styles are the pages' only styling.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Page {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Page {
        Page {
            status,
            content_type: HTML,
            body,
            headers: Vec::new(),
        }
    }

    /// Plain text.
    pub fn text(status: u16, body: impl Into<String>) -> Page {
        Page {
            status,
            content_type: TEXT,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A redirect to a path on this origin (`302` for a GET sent to sign
    /// in, `303` after a form).
    pub fn redirect(status: u16, location: impl Into<String>) -> Page {
        Page::text(status, "").with_header("Location", location.into())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Page {
        self.headers.push((name, value));
        self
    }

    /// The same with another `Content-Type`.
    pub fn with_content_type(self, content_type: &'static str) -> Page {
        Page {
            content_type,
            ..self
        }
    }
}

/// The query of a request URL, without `?` (empty if none): read by hand,
/// as the `url` crate's parser would add a fifth to the Worker's code.
pub fn query(url: &str) -> &str {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    url.split_once('?').map_or("", |(_, query)| query)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The fields of an `application/x-www-form-urlencoded` body or query.
pub fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Field `name` of a parsed form: its first value.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// What a path segment or query value leaves unescaped: RFC 3986's
/// unreserved characters, as the relay's status URLs.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` percent-encoded for a path segment or a query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The most characters of an event id (as the relay's `webhook-id`).
pub const MAX_EVENT_ID_CHARS: usize = 256;

/// The event id in a percent-encoded path segment: 1 to 256 visible ASCII
/// characters, as the relay takes them.
pub fn event_id(segment: &str) -> Option<String> {
    let id = percent_decode_str(segment).decode_utf8().ok()?;
    let fine = !id.is_empty()
        && id.len() <= MAX_EVENT_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_graphic())
        && id != "."
        && id != "..";
    fine.then(|| id.into_owned())
}

/// Where the sign-in page sends a browser that came for `next`: `next` if
/// it is a dashboard path on this origin made of printable ASCII (as a
/// browser sends a path: anything else percent-encoded), the event list
/// otherwise. An open redirect would let a link sign people in and send
/// them elsewhere, and a control character cannot go in a `Location`.
pub fn after_login(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/dashboard"
                || path.starts_with("/dashboard/")
                || path.starts_with("/dashboard?"))
                && path.bytes().all(|b| b.is_ascii_graphic())
                && !path.contains('\\')
                && !path.contains("/..")
                && !path.starts_with("/dashboard/login") =>
        {
            path.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

/// The sign-in page's URL for a browser that came for `path_and_query`.
pub fn login_location(path_and_query: &str) -> String {
    if path_and_query == "/dashboard" {
        "/dashboard/login".to_owned()
    } else {
        format!("/dashboard/login?next={}", encode(path_and_query))
    }
}

/// A UNIX time in ms as `YYYY-MM-DD hh:mm:ss` UTC, and its ISO form for
/// `<time datetime>`.
pub fn utc(ms: u64) -> (String, String) {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    (
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}"),
        format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
            ms % 1000
        ),
    )
}

/// `hh:mm` UTC.
pub fn clock(ms: u64) -> String {
    let rest = ms / 1000 % 86_400;
    format!("{:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

/// `hh:mm:ss.mmm` UTC.
pub fn clock_ms(ms: u64) -> String {
    let rest = ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How long ago `then_ms` was at `now_ms`, as a person says it.
pub fn age(then_ms: u64, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => {
            let mut text = format!("{} h", secs / 3600);
            if secs % 3600 >= 60 {
                let _ = write!(text, " {} min", secs % 3600 / 60);
            }
            text + " ago"
        }
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A duration in ms as `12 ms`, `1.25 s` or `3 min 5 s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => {
            let centis = (ms + 5) / 10;
            let text = format!("{}.{:02}", centis / 100, centis % 100);
            format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// `value` with `decimals` (at most 3) digits after the point, rounded:
/// SVG coordinates, bar widths, percentages.
pub struct Fixed(pub f64, pub u32);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = 10i64.pow(self.1.min(3));
        let scaled = (self.0 * scale as f64).round() as i64;
        if scaled < 0 {
            f.write_str("-")?;
        }
        let scaled = scaled.unsigned_abs();
        write!(f, "{}", scaled / scale as u64)?;
        if self.1 > 0 {
            write!(
                f,
                ".{:0width$}",
                scaled % scale as u64,
                width = self.1.min(3) as usize
            )?;
        }
        Ok(())
    }
}

/// A count with thousands separated: `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_what_follows_the_question_mark() {
        assert_eq!(
            query("https://h/dashboard?state=x&route=-"),
            "state=x&route=-"
        );
        assert_eq!(query("https://h/dashboard?a=1#frag?b"), "a=1");
        assert_eq!(query("https://h/dashboard#x?y"), "");
        assert_eq!(query("https://h/dashboard"), "");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header = "a=1; yx_ops_session=v1.2.3.4; yx_ops_session_x=no";
        assert_eq!(cookie(header, "yx_ops_session"), Some("v1.2.3.4"));
        assert_eq!(cookie(header, "a"), Some("1"));
        assert_eq!(cookie(header, "b"), None);
        assert_eq!(cookie("", "a"), None);
    }

    #[test]
    fn forms_decode() {
        let fields = form(b"token=a%2Bb+c&next=%2Fdashboard%3Fstate%3Dpending&token=second");
        assert_eq!(field(&fields, "token"), Some("a+b c"));
        assert_eq!(field(&fields, "next"), Some("/dashboard?state=pending"));
        assert_eq!(field(&fields, "csrf"), None);
    }

    #[test]
    fn event_ids_round_trip_through_path_segments() {
        for id in ["evt_1", "a/b c?&#%", "~-._", "x".repeat(256).as_str()] {
            let spaced = id.replace(' ', "_");
            assert_eq!(event_id(&encode(&spaced)).as_deref(), Some(spaced.as_str()));
        }
        for bad in ["", "%20", "..", ".", "%C3%A9", "%FF", &"x".repeat(257)] {
            assert_eq!(event_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sign_in_sends_back_to_dashboard_paths_only() {
        for (next, to) in [
            (Some("/dashboard/events/e%201"), "/dashboard/events/e%201"),
            (Some("/dashboard?state=pending"), "/dashboard?state=pending"),
            (Some("/dashboard"), "/dashboard"),
            (Some("//evil.example/dashboard"), "/dashboard"),
            (Some("https://evil.example/dashboard"), "/dashboard"),
            (Some("/dashboardx"), "/dashboard"),
            (Some("/dashboard/../metrics"), "/dashboard"),
            (Some("/dashboard/\\evil"), "/dashboard"),
            (Some("/dashboard/login"), "/dashboard"),
            // Control characters, spaces and non-ASCII: never into a Location.
            (Some("/dashboard/events/a\0b"), "/dashboard"),
            (Some("/dashboard/events/a\x01"), "/dashboard"),
            (Some("/dashboard/events/a\x7f"), "/dashboard"),
            (Some("/dashboard/events/a\r\nSet-Cookie:x"), "/dashboard"),
            (Some("/dashboard/events/a b"), "/dashboard"),
            (Some("/dashboard/events/é"), "/dashboard"),
            (None, "/dashboard"),
        ] {
            assert_eq!(after_login(next), to, "{next:?}");
        }
        assert_eq!(login_location("/dashboard"), "/dashboard/login");
        assert_eq!(
            login_location("/dashboard/events/a%2Fb?x=1"),
            "/dashboard/login?next=%2Fdashboard%2Fevents%2Fa%252Fb%3Fx%3D1"
        );
        // What the form sends back decodes to the path asked for.
        let fields = form(b"next=%2Fdashboard%2Fevents%2Fa%252Fb%3Fx%3D1");
        assert_eq!(
            after_login(field(&fields, "next")),
            "/dashboard/events/a%2Fb?x=1"
        );
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            utc(0),
            (
                "1970-01-01 00:00:00".to_owned(),
                "1970-01-01T00:00:00.000Z".to_owned()
            )
        );
        // 2026-12-03T03:14:05.123Z
        let ms = 1_796_267_645_123;
        assert_eq!(utc(ms).1, "2026-12-03T03:14:05.123Z");
        assert_eq!(clock(ms), "03:14");
        assert_eq!(clock_ms(ms), "03:14:05.123");
        // A leap day.
        assert_eq!(utc(951_782_400_000).0, "2000-02-29 00:00:00");
    }

    #[test]
    fn ages_and_durations_read_as_people_say_them() {
        let now = 10_000_000_000;
        assert_eq!(age(now - 5_000, now), "5 s ago");
        assert_eq!(age(now + 5_000, now), "0 s ago");
        assert_eq!(age(now - 125_000, now), "2 min ago");
        assert_eq!(age(now - 3_600_000, now), "1 h ago");
        assert_eq!(age(now - 3_720_000, now), "1 h 2 min ago");
        assert_eq!(age(now - 3 * 86_400_000, now), "3 d ago");
        assert_eq!(duration(12), "12 ms");
        assert_eq!(duration(1250), "1.25 s");
        assert_eq!(duration(2000), "2 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(1999), "2 s");
        assert_eq!(Fixed(12.345, 1).to_string(), "12.3");
        assert_eq!(Fixed(0.05, 2).to_string(), "0.05");
        assert_eq!(Fixed(-1.25, 1).to_string(), "-1.3");
        assert_eq!(Fixed(99.96, 1).to_string(), "100.0");
        assert_eq!(Fixed(7.0, 0).to_string(), "7");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
