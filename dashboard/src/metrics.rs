//! `/metrics`: the Worker's [`Stats`] in the Prometheus text format,
//! version 0.0.4. Every name gets the `yunxin_edge_` prefix, counters end in
//! `_total`, histograms have cumulative `_bucket{le}` series ending at
//! `+Inf`, `_sum` and `_count`; each family is written together under one
//! `# HELP` and `# TYPE`, and label values are escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use yunxin_edge_index::{EndpointHealth, Stats};

use crate::html::w;

/// What the names mean, for `# HELP`.
const HELP: &[(&str, &str)] = &[
    (
        "events_accepted",
        "Events accepted, by route (- for /v1/notifications).",
    ),
    (
        "events_rejected",
        "Events refused, by route and HTTP status.",
    ),
    ("receivers_delivered", "Receivers notified, by route."),
    (
        "receivers_failed",
        "Receivers that ended failed, by route and Yunxin code.",
    ),
    ("attempts_retried", "Calls attempted again, by route."),
    (
        "events_held",
        "Events a route's silences or storm settings held (silenced, deferred, dropped, digested, throttled), by route and disposition.",
    ),
    (
        "receivers_throttled",
        "Receivers not sent to because they were over a route's throttle, by route.",
    ),
    (
        "calls_dead_lettered",
        "Calls moved to the dead-letter queue, by route.",
    ),
    (
        "receivers_replayed",
        "Receivers sent again by a retry of their event, by route.",
    ),
    (
        "upstream_calls",
        "Calls to Yunxin, by endpoint and outcome.",
    ),
    (
        "upstream_latency_seconds",
        "Time from sending a call to Yunxin to its answer, by endpoint.",
    ),
    (
        "queue_lag_seconds",
        "Time from enqueueing a call to its first attempt.",
    ),
    ("pacer_wait_seconds", "Time a call waited for a pacer slot."),
];

/// Every metric's prefix.
pub const PREFIX: &str = "yunxin_edge_";

fn help(name: &str) -> String {
    HELP.iter().find(|(known, _)| *known == name).map_or_else(
        || format!("{name}, from the Worker's stats."),
        |(_, h)| (*h).to_owned(),
    )
}

/// A metric or label name made of the characters Prometheus allows.
fn sanitize(name: &str, colons: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label value escaped: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` text escaped: `\` → `\\`, newline → `\n`.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as Prometheus reads it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        // The shortest form that reads back as the same number.
        serde_json::Number::from_f64(value).map_or_else(|| "NaN".into(), |n| n.to_string())
    }
}

/// `{name="value",…}` with `extra` appended, or nothing without labels.
fn labels(map: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = map
        .iter()
        .map(|(name, value)| format!("{}=\"{}\"", sanitize(name, false), escape_label(value)))
        .collect();
    if let Some((name, value)) = extra {
        parts.push(format!("{name}=\"{}\"", escape_label(value)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    w!(
        out,
        "# HELP {name} {}\n# TYPE {name} {kind}\n",
        escape_help(help)
    );
}

/// Names in first-seen order, each once.
fn names<'a>(all: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in all {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// Each endpoint's health (the last hour): up or not, calls, failures and
/// when it last failed.
fn endpoint_gauges(out: &mut String, stats: &Stats) {
    type Read = fn(&EndpointHealth) -> Option<f64>;
    let gauges: [(&str, &str, Read); 4] = [
        (
            "endpoint_healthy",
            "Whether a Yunxin endpoint's last call succeeded (1) or failed (0).",
            |e| Some(if e.healthy { 1.0 } else { 0.0 }),
        ),
        (
            "endpoint_calls_last_hour",
            "Calls to a Yunxin endpoint in the last hour.",
            |e| Some(e.calls as f64),
        ),
        (
            "endpoint_failures_last_hour",
            "Failures of a Yunxin endpoint in the last hour (no connection, a lost answer, a 5xx).",
            |e| Some(e.failures as f64),
        ),
        (
            "endpoint_last_failure_timestamp_seconds",
            "When a Yunxin endpoint last failed, UNIX seconds.",
            |e| e.last_failure_ms.map(|ms| ms as f64 / 1000.0),
        ),
    ];
    for (name, help, read) in gauges {
        let samples: Vec<_> = stats
            .endpoints
            .iter()
            .filter_map(|e| Some((e, read(e)?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let metric = format!("{PREFIX}{name}");
        family(out, &metric, "gauge", help);
        for (endpoint, value) in samples {
            w!(
                out,
                "{metric}{{endpoint=\"{}\"}} {}\n",
                escape_label(&endpoint.base_url),
                number(value)
            );
        }
    }
}

/// The exposition of `stats`.
pub fn render(stats: &Stats) -> String {
    let mut out = String::with_capacity(4096);

    let quota = format!("{PREFIX}rate_per_minute");
    family(
        &mut out,
        &quota,
        "gauge",
        "The Yunxin call quota per minute (YUNXIN_RATE_PER_MINUTE).",
    );
    w!(out, "{quota} {}\n", stats.rate_per_minute);

    for name in names(stats.counters.iter().map(|c| c.name.as_str())) {
        let base = sanitize(name, true);
        let metric = format!("{PREFIX}{}_total", base.trim_end_matches("_total"));
        family(&mut out, &metric, "counter", &help(name));
        for counter in stats.counters.iter().filter(|c| c.name == name) {
            w!(
                out,
                "{metric}{} {}\n",
                labels(&counter.labels, None),
                number(counter.value as f64)
            );
        }
    }

    // The index counts whole milliseconds; Prometheus's base unit is the
    // second, named in the metric.
    for name in names(stats.histograms.iter().map(|h| h.name.as_str())) {
        let seconds = format!("{}_seconds", name.trim_end_matches("_seconds"));
        let metric = format!("{PREFIX}{}", sanitize(&seconds, true));
        family(&mut out, &metric, "histogram", &help(&seconds));
        for histogram in stats.histograms.iter().filter(|h| h.name == name) {
            for (le_ms, count) in histogram.le_ms.iter().zip(&histogram.counts) {
                let le = number(*le_ms as f64 / 1000.0);
                w!(
                    out,
                    "{metric}_bucket{} {count}\n",
                    labels(&histogram.labels, Some(("le", &le)))
                );
            }
            let plain = labels(&histogram.labels, None);
            w!(
                out,
                "{metric}_bucket{} {}\n{metric}_sum{plain} {}\n{metric}_count{plain} {}\n",
                labels(&histogram.labels, Some(("le", "+Inf"))),
                histogram.count,
                number(histogram.sum_ms as f64 / 1000.0),
                histogram.count
            );
        }
    }

    endpoint_gauges(&mut out, stats);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    #[test]
    fn counters_histograms_and_gauges_in_the_text_format() {
        let stats: Stats = serde_json::from_str(&samples::stats()).unwrap();
        let text = render(&stats);
        let expected_lines = [
            "# TYPE yunxin_edge_rate_per_minute gauge",
            "yunxin_edge_rate_per_minute 120",
            "# HELP yunxin_edge_events_accepted_total Events accepted, by route (- for /v1/notifications).",
            "# TYPE yunxin_edge_events_accepted_total counter",
            "yunxin_edge_events_accepted_total{route=\"-\"} 12",
            // Quote, backslash and newline escaped.
            "yunxin_edge_events_accepted_total{route=\"git\\\"hub\\\\push\\n\"} 3",
            "yunxin_edge_events_rejected_total{route=\"-\",status=\"401\"} 2",
            "yunxin_edge_upstream_calls_total{endpoint=\"http://127.0.0.1:1\",outcome=\"delivered\"} 7",
            "# TYPE yunxin_edge_upstream_latency_seconds histogram",
            "yunxin_edge_upstream_latency_seconds_bucket{endpoint=\"http://127.0.0.1:1\",le=\"0.05\"} 3",
            "yunxin_edge_upstream_latency_seconds_bucket{endpoint=\"http://127.0.0.1:1\",le=\"2.5\"} 7",
            "yunxin_edge_upstream_latency_seconds_bucket{endpoint=\"http://127.0.0.1:1\",le=\"10\"} 7",
            "yunxin_edge_upstream_latency_seconds_bucket{endpoint=\"http://127.0.0.1:1\",le=\"+Inf\"} 8",
            "yunxin_edge_upstream_latency_seconds_sum{endpoint=\"http://127.0.0.1:1\"} 12.5",
            "yunxin_edge_upstream_latency_seconds_count{endpoint=\"http://127.0.0.1:1\"} 8",
            "yunxin_edge_endpoint_last_failure_timestamp_seconds{endpoint=\"http://127.0.0.1:1\"} 1795999990",
            "yunxin_edge_endpoint_calls_last_hour{endpoint=\"http://127.0.0.1:1\"} 8",
            "yunxin_edge_endpoint_failures_last_hour{endpoint=\"http://127.0.0.1:1\"} 1",
        ];
        let lines: Vec<&str> = text.lines().collect();
        for line in expected_lines {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        // One HELP and TYPE per family, samples of a family together.
        assert_eq!(
            text.matches("# TYPE yunxin_edge_events_accepted_total ")
                .count(),
            1
        );
        let first = lines
            .iter()
            .position(|l| l.starts_with("yunxin_edge_events_accepted_total{"))
            .unwrap();
        assert!(lines[first + 1].starts_with("yunxin_edge_events_accepted_total{"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn the_index_histograms_in_milliseconds_are_exposed_in_seconds() {
        let stats: Stats = serde_json::from_str(
            r#"{"rate_per_minute":120,"histograms":[{"name":"queue_lag","labels":{},
                "le_ms":[10,50,100],"counts":[2,3,3,4],"count":4,"sum_ms":1234}]}"#,
        )
        .unwrap();
        let text = render(&stats);
        for line in [
            "# TYPE yunxin_edge_queue_lag_seconds histogram",
            "yunxin_edge_queue_lag_seconds_bucket{le=\"0.01\"} 2",
            "yunxin_edge_queue_lag_seconds_bucket{le=\"0.05\"} 3",
            "yunxin_edge_queue_lag_seconds_bucket{le=\"0.1\"} 3",
            "yunxin_edge_queue_lag_seconds_bucket{le=\"+Inf\"} 4",
            "yunxin_edge_queue_lag_seconds_sum 1.234",
            "yunxin_edge_queue_lag_seconds_count 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("# HELP yunxin_edge_queue_lag_seconds Time from enqueueing"));
    }

    #[test]
    fn names_and_numbers_are_made_valid() {
        assert_eq!(sanitize("a-b.c", true), "a_b_c");
        assert_eq!(sanitize("9lives", false), "_9lives");
        assert_eq!(sanitize("ns:metric", true), "ns:metric");
        assert_eq!(sanitize("ns:label", false), "ns_label");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn a_counter_already_named_total_is_not_doubled_and_unknown_names_get_help() {
        let stats: Stats = serde_json::from_str(
            r#"{"rate_per_minute":5,"counters":[{"name":"odd_total","labels":{},"value":1}]}"#,
        )
        .unwrap();
        let text = render(&stats);
        assert!(
            text.contains("# HELP yunxin_edge_odd_total odd_total, from the Worker's stats.\n")
        );
        assert!(text.contains("\nyunxin_edge_odd_total 1\n"));
    }
}
