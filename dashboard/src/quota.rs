//! `/dashboard/quota`: upstream calls per minute over the last hour against
//! the quota (`YUNXIN_RATE_PER_MINUTE`), as an inline SVG bar chart with
//! axes, labels and the limit line, the same numbers as a table, and each
//! Yunxin endpoint's health.

use yunxin_edge_index::{Minute, Stats};

use crate::html::{Chrome, E, Section, layout, w};
use crate::web::{Fixed, clock, duration, thousands, utc};

/// SVG coordinates: one decimal.
fn px(v: f64) -> Fixed {
    Fixed(v, 1)
}
use std::fmt::Write;

// The chart's geometry, in SVG user units (it scales to the page width).
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const TICKS: u64 = 5;

const BAR: &str = "#2f6fd6";
const LIMITED: &str = "#cf222e";
const LIMIT_LINE: &str = "#b35900";

/// The smallest step from 1, 2, 5 × 10ⁿ that covers `max` in [`TICKS`] steps.
fn nice_step(max: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if step * TICKS >= max {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// The y axis: its top value and step. The quota line is on the scale
/// unless the calls are so few (under a tenth of it) that bars drawn
/// against it would be flat lines; then the chart says the quota is above.
fn scale(peak: u64, rate: u64) -> (u64, u64, bool) {
    let limit_shown = rate > 0 && (peak == 0 || peak.saturating_mul(10) >= rate);
    let reach = if limit_shown {
        peak.max(rate) + peak.max(rate) / 10
    } else {
        peak + peak / 5
    }
    .max(1);
    let step = nice_step(reach);
    (step * reach.div_ceil(step), step, limit_shown)
}

/// The chart.
pub fn chart(minutes: &[Minute], rate: u64) -> String {
    let peak = minutes.iter().map(|m| m.calls).max().unwrap_or(0);
    let (top, step, limit_shown) = scale(peak, rate);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: u64| TOP + plot_h - v as f64 / top as f64 * plot_h;
    let slot = plot_w / minutes.len().max(1) as f64;
    let total: u64 = minutes.iter().map(|m| m.calls).sum();
    let limited: u64 = minutes.iter().map(|m| m.rate_limited).sum();
    let over = minutes
        .iter()
        .filter(|m| rate > 0 && m.calls > rate)
        .count();

    let span = match (minutes.first(), minutes.last()) {
        (Some(first), Some(last)) => format!(
            "from {} to {} UTC",
            clock(first.start_ms),
            clock(last.start_ms + 60_000)
        ),
        _ => "no data".into(),
    };
    let mut svg = String::with_capacity(16 * 1024);
    w!(
        svg,
        "<svg viewBox=\"0 0 860 330\" role=\"img\" aria-labelledby=\"chart-title chart-desc\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui,sans-serif\" font-size=\"12\">\
         <title id=\"chart-title\">Upstream calls per minute, last hour</title>\
         <desc id=\"chart-desc\">Bar chart of Yunxin calls per minute {span}: {} calls, at most {} in a \
         minute, {} answered 416 (rate-limited); quota {} per minute, exceeded in {} minute{}.</desc>",
        thousands(total),
        thousands(peak),
        thousands(limited),
        thousands(rate),
        over,
        if over == 1 { "" } else { "s" },
    );
    // Grid lines and y labels.
    let mut tick = 0;
    while tick <= top {
        let (ty, label_y) = (px(y(tick)), px(y(tick) + 4.0));
        w!(
            svg,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ty}\" y2=\"{ty}\" stroke=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            px(LEFT),
            px(WIDTH - RIGHT),
            if tick == 0 { "#57606a" } else { "#e4e8ec" },
            px(LEFT - 8.0),
            label_y,
            thousands(tick)
        );
        tick += step;
    }
    w!(
        svg,
        "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#1f2328\">calls per minute</text>",
        px(TOP + plot_h / 2.0)
    );
    // Bars: all calls, the rate-limited part on top in red.
    for (i, minute) in minutes.iter().enumerate() {
        let x = px(LEFT + i as f64 * slot + slot * 0.15);
        let bw = px(slot * 0.7);
        if minute.calls > 0 {
            let (top_y, base) = (y(minute.calls), y(0));
            let (height, top_y) = (px(base - top_y), px(top_y));
            w!(
                svg,
                "<rect x=\"{x}\" y=\"{top_y}\" width=\"{bw}\" height=\"{}\" fill=\"{BAR}\">\
                 <title>{} UTC: {} calls, {} rate-limited</title></rect>",
                height,
                clock(minute.start_ms),
                minute.calls,
                minute.rate_limited
            );
            let limited = minute.rate_limited.min(minute.calls);
            if limited > 0 {
                let h = px(limited as f64 / top as f64 * plot_h);
                w!(
                    svg,
                    "<rect x=\"{x}\" y=\"{top_y}\" width=\"{bw}\" height=\"{h}\" fill=\"{LIMITED}\"/>"
                );
            }
        }
        // An x label every ten minutes, on the minute's start.
        if i % 10 == 0 || i + 1 == minutes.len() {
            let (label, lx) = if i + 1 == minutes.len() && i % 10 != 0 {
                (
                    clock(minute.start_ms + 60_000),
                    LEFT + (i + 1) as f64 * slot,
                )
            } else {
                (clock(minute.start_ms), LEFT + i as f64 * slot)
            };
            let lx = px(lx);
            w!(
                svg,
                "<line x1=\"{lx}\" x2=\"{lx}\" y1=\"{}\" y2=\"{}\" stroke=\"#57606a\"/>\
                 <text x=\"{lx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#57606a\">{label}</text>",
                px(TOP + plot_h),
                px(TOP + plot_h + 5.0),
                px(TOP + plot_h + 19.0)
            );
        }
    }
    w!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#1f2328\">time (UTC), one bar per minute</text>",
        px(LEFT + plot_w / 2.0),
        px(HEIGHT - 8.0)
    );
    // The quota.
    if limit_shown {
        let ly = y(rate);
        let (ly, label_y) = (px(ly), px(ly - 7.0));
        w!(
            svg,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{LIMIT_LINE}\" stroke-width=\"2.5\" \
             stroke-dasharray=\"8 5\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{LIMIT_LINE}\" \
             font-weight=\"700\">quota {} / min</text>",
            px(LEFT),
            px(WIDTH - RIGHT),
            px(WIDTH - RIGHT - 4.0),
            label_y,
            thousands(rate)
        );
    } else if rate > 0 {
        w!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{LIMIT_LINE}\" font-weight=\"700\">\
             ▲ quota {} / min is above this scale (peak {}% of it)</text>",
            px(WIDTH - RIGHT - 4.0),
            px(TOP - 10.0),
            thousands(rate),
            percent(peak, rate)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `part` as a percentage of `whole`, to one decimal below 10 %.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    Fixed(p, if p < 10.0 { 1 } else { 0 }).to_string()
}

/// Each Yunxin endpoint over the last hour (`endpoints`), with its mean
/// latency since the index began (`upstream_latency`).
fn endpoints_table(main: &mut String, stats: &Stats) {
    main.push_str("<h2 id=\"endpoints\">Yunxin endpoints</h2>");
    if stats.endpoints.is_empty() {
        main.push_str("<p class=\"muted\">No call in the last hour.</p>");
        return;
    }
    main.push_str(
        "<div class=\"wrap\"><table aria-labelledby=\"endpoints\"><caption>Calls and failures in the \
         last hour (a failure: no connection, a lost answer, a 5xx); mean latency since the index \
         began</caption><thead><tr><th scope=\"col\">Endpoint</th><th scope=\"col\">Health</th>\
         <th scope=\"col\" class=\"num\">Calls</th><th scope=\"col\" class=\"num\">Failures</th>\
         <th scope=\"col\">Last failure</th><th scope=\"col\">Last success</th>\
         <th scope=\"col\" class=\"num\">Mean latency</th></tr></thead><tbody>",
    );
    let when = |ms: Option<u64>| ms.map_or_else(|| "—".into(), |ms| format!("{} UTC", utc(ms).0));
    for endpoint in &stats.endpoints {
        let health = if endpoint.healthy {
            "<span class=\"badge ok\">Healthy</span>"
        } else {
            "<span class=\"badge bad\">Failing</span>"
        };
        let latency = stats
            .histograms
            .iter()
            .filter(|h| h.name.starts_with("upstream_latency"))
            .find(|h| h.labels.get("endpoint") == Some(&endpoint.base_url))
            .and_then(|h| h.mean_ms())
            .map_or_else(|| "—".into(), |ms| duration(ms.round() as u64));
        w!(
            main,
            "<tr><td><code>{}</code></td><td>{health}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"num\">{latency}</td></tr>",
            E(&endpoint.base_url),
            thousands(endpoint.calls),
            thousands(endpoint.failures),
            when(endpoint.last_failure_ms),
            when(endpoint.last_success_ms),
        );
    }
    main.push_str("</tbody></table></div>");
}

/// The quota page.
pub fn page(chrome: Chrome<'_>, stats: &Stats) -> String {
    let chrome = Chrome {
        section: Section::Quota,
        ..chrome
    };
    let minutes = &stats.minutes;
    let rate = stats.rate_per_minute;
    let total: u64 = minutes.iter().map(|m| m.calls).sum();
    let peak = minutes.iter().max_by_key(|m| m.calls);
    let limited: u64 = minutes.iter().map(|m| m.rate_limited).sum();
    let mut main = String::from("<h1>Quota</h1>");
    w!(
        main,
        "<p>Calls to Yunxin per minute over the last hour, against the quota of \
         <strong>{} calls per minute</strong> (<code>YUNXIN_RATE_PER_MINUTE</code>).</p>\
         <dl class=\"facts\"><div><dt>Calls, last hour</dt><dd>{}</dd></div>\
         <div><dt>Busiest minute</dt><dd>{}</dd></div>\
         <div><dt>Of the quota</dt><dd>{}%</dd></div>\
         <div><dt>Rate-limited (416)</dt><dd>{}</dd></div></dl>",
        thousands(rate.into()),
        thousands(total),
        peak.map_or_else(
            || "—".into(),
            |m| format!(
                "{} <span class=\"muted\">at {}</span>",
                thousands(m.calls),
                clock(m.start_ms)
            )
        ),
        percent(peak.map_or(0, |m| m.calls), rate.into()),
        thousands(limited),
    );
    w!(
        main,
        "<figure class=\"chart\" style=\"margin:0\">{}<ul class=\"legend\" aria-hidden=\"true\">\
         <li><span class=\"key\" style=\"background:{BAR}\"></span>calls</li>\
         <li><span class=\"key\" style=\"background:{LIMITED}\"></span>answered 416 (rate-limited)</li>\
         <li><span class=\"key\" style=\"background:{LIMIT_LINE};height:3px;vertical-align:4px\"></span>quota</li></ul></figure>",
        chart(minutes, rate.into())
    );
    main.push_str(
        "<details><summary>The same data as a table</summary><div class=\"wrap\"><table>\
         <caption>Calls per minute, oldest first (UTC)</caption><thead><tr><th scope=\"col\">Minute</th>\
         <th scope=\"col\" class=\"num\">Calls</th><th scope=\"col\" class=\"num\">Rate-limited</th>\
         <th scope=\"col\" class=\"num\">Of the quota</th></tr></thead><tbody>",
    );
    for minute in minutes {
        let (full, iso) = utc(minute.start_ms);
        w!(
            main,
            "<tr><th scope=\"row\"><time datetime=\"{iso}\" title=\"{full} UTC\">{}</time></th>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}%</td></tr>",
            clock(minute.start_ms),
            thousands(minute.calls),
            thousands(minute.rate_limited),
            percent(minute.calls, rate.into())
        );
    }
    main.push_str("</tbody></table></div></details>");

    endpoints_table(&mut main, stats);
    layout("Quota", Some(chrome), &main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    #[test]
    fn endpoints_show_health_failures_and_mean_latency() {
        let stats: Stats = serde_json::from_str(
            r#"{"rate_per_minute":120,
             "histograms":[{"name":"upstream_latency","labels":{"endpoint":"http://a"},
              "le_ms":[10],"counts":[8,8],"count":8,"sum_ms":400}],
             "endpoints":[{"base_url":"http://a","calls":8,"failures":0,"last_failure_ms":null,
                           "last_success_ms":60000,"healthy":true},
                          {"base_url":"http://<b>","calls":3,"failures":3,"last_failure_ms":120000,
                           "last_success_ms":null,"healthy":false}]}"#,
        )
        .unwrap();
        let mut html = String::new();
        endpoints_table(&mut html, &stats);
        assert!(html.contains(
            "<tr><td><code>http://a</code></td><td><span class=\"badge ok\">Healthy</span></td>\
             <td class=\"num\">8</td><td class=\"num\">0</td><td>—</td><td>1970-01-01 00:01:00 UTC</td>\
             <td class=\"num\">50 ms</td></tr>"
        ), "{html}");
        assert!(html.contains(
            "<code>http://&lt;b&gt;</code></td><td><span class=\"badge bad\">Failing</span>"
        ));
        let mut empty = String::new();
        endpoints_table(&mut empty, &Stats::default());
        assert!(empty.contains("No call in the last hour"));
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(5), 1);
        assert_eq!(nice_step(6), 2);
        assert_eq!(nice_step(132), 50);
        assert_eq!(nice_step(1100), 500);
        assert_eq!(nice_step(11_000), 5000);
    }

    #[test]
    fn the_scale_holds_the_quota_unless_the_bars_would_be_flat() {
        // The quota on the scale, with room above the busiest minute.
        let (top, step, shown) = scale(130, 120);
        assert!(shown && top >= 130 && top % step == 0);
        let (top, _, shown) = scale(0, 120);
        assert!(shown && top >= 120);
        // 12 calls against 6,000 a minute: drawn against the calls.
        let (top, _, shown) = scale(12, 6000);
        assert!(!shown && (12..=20).contains(&top), "{top}");
        // A tenth of the quota is still drawn against it.
        let (top, _, shown) = scale(12, 120);
        assert!(shown && top >= 120);
        let (top, _, shown) = scale(0, 0);
        assert!(!shown && top >= 1);
    }

    #[test]
    fn the_chart_has_axes_labels_bars_and_the_limit() {
        let stats: Stats = serde_json::from_str(&samples::stats()).unwrap();
        let svg = chart(&stats.minutes, stats.rate_per_minute.into());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"chart-title\">"));
        assert!(svg.contains("quota 120 / min"));
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("calls per minute</text>"));
        assert!(svg.contains("time (UTC)"));
        // 60 minutes, 51 with calls (i % 7 != 0 or the busy one).
        let bars = svg.matches("<rect").count();
        let with_calls = stats.minutes.iter().filter(|m| m.calls > 0).count();
        let limited = stats.minutes.iter().filter(|m| m.rate_limited > 0).count();
        assert_eq!(bars, with_calls + limited);
        assert!(svg.contains("130 calls, 10 rate-limited"));
        assert!(svg.contains("exceeded in 1 minute."));
        // Seven x labels: every ten minutes and the end.
        assert_eq!(
            svg.matches("text-anchor=\"middle\" fill=\"#57606a\"")
                .count(),
            7
        );
    }

    #[test]
    fn a_quiet_hour_under_a_big_quota_says_the_quota_is_above() {
        let minutes: Vec<Minute> = (0..60)
            .map(|i| Minute {
                start_ms: i * 60_000,
                calls: i % 3,
                rate_limited: 0,
            })
            .collect();
        let svg = chart(&minutes, 6000);
        assert!(svg.contains("quota 6,000 / min is above this scale"));
        assert!(!svg.contains("stroke-dasharray"));
    }

    #[test]
    fn the_page_has_the_chart_a_table_alternative_and_endpoints() {
        let stats: Stats = serde_json::from_str(&samples::stats()).unwrap();
        let chrome = Chrome {
            section: Section::Events,
            logout_csrf: "x",
        };
        let html = page(chrome, &stats);
        assert!(html.contains("aria-current=\"page\">Quota"));
        assert!(html.contains("<summary>The same data as a table</summary>"));
        assert_eq!(html.matches("<th scope=\"row\">").count(), 60);
        assert!(html.contains("<td><code>http://127.0.0.1:1</code></td><td><span class=\"badge bad\">Failing</span></td><td class=\"num\">8</td>"));
        assert!(html.contains("<dt>Busiest minute</dt><dd>130"));
        assert!(html.contains("<dd>108%</dd>"));
    }
}
