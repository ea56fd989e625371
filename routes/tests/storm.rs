//! Alert storms through the public API: time in templates across zones and
//! daylight saving, the storm settings' config problems named by field,
//! digests rendered through the core's parser, and the order in which an
//! event is decided (silence → quiet hours → digest → throttle).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use yunxin_edge::AccountId;
use yunxin_edge_routes::storm::digest::{Added, Collect, Digest, DigestKey};
use yunxin_edge_routes::storm::silence::{Silence, SilenceId, Silences};
use yunxin_edge_routes::storm::{Disposition, RouteState, Step, decide, screen};
use yunxin_edge_routes::{
    Event, Groups, RenderOptions, Rendered, RouteError, Routes, render_digest, render_with,
};

/// 2026-01-01T00:00:00Z.
const NOW_SECS: i64 = 1_767_225_600;

fn routes(config: Value) -> Routes {
    let routes = Routes::parse(&config).unwrap();
    let problems: Vec<_> = routes.problems().collect();
    assert!(problems.is_empty(), "{problems:?}");
    routes
}

fn route(extra: Value) -> Value {
    let mut route = json!({
        "verify": { "scheme": "bearer", "secrets": ["T"] },
        "sender_id": "ops",
        "receivers_from": "payload.to",
        "content": "{{ payload.text }}"
    });
    route
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    route
}

/// Renders `content` of a one-route config over `payload`.
fn content(template: &str, payload: Value, options: &RenderOptions) -> Result<String, RouteError> {
    let routes =
        routes(json!({ "r": route(json!({ "content": template, "receivers": ["ann"] })) }));
    let body = payload.to_string();
    let headers = BTreeMap::new();
    let event = Event {
        route: "r",
        headers: &headers,
        body: body.as_bytes(),
        now_secs: NOW_SECS,
    };
    match render_with(routes.get("r").unwrap(), &event, &Groups::new(), options)? {
        Rendered::Notification { notification, .. } => Ok(notification.content.as_str().to_owned()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn datetime_formats_across_zones_and_daylight_saving() {
    let default = RenderOptions::default();
    // (instant, format, zone or none for the default, expected)
    let table = [
        // The default zone is Asia/Shanghai (UTC+8, no DST).
        (
            json!(1_772_953_140),
            "%Y-%m-%d %H:%M %Z",
            None,
            "2026-03-08 14:59 CST",
        ),
        // New York, a minute before and after spring forward (02:00 EST → 03:00 EDT).
        (
            json!("2026-03-08T06:59:00Z"),
            "%m-%d %H:%M %Z",
            Some("America/New_York"),
            "03-08 01:59 EST",
        ),
        (
            json!("2026-03-08T07:00:00Z"),
            "%m-%d %H:%M %Z",
            Some("America/New_York"),
            "03-08 03:00 EDT",
        ),
        // Fall back: 01:30 happens twice, first EDT then EST.
        (
            json!("2026-11-01T05:30:00Z"),
            "%H:%M %Z %:z",
            Some("America/New_York"),
            "01:30 EDT -04:00",
        ),
        (
            json!("2026-11-01T06:30:00Z"),
            "%H:%M %Z %:z",
            Some("America/New_York"),
            "01:30 EST -05:00",
        ),
        // London: GMT in winter, BST from 2026-03-29 01:00 UTC.
        (
            json!("2026-03-29T00:59:59Z"),
            "%H:%M:%S %Z",
            Some("Europe/London"),
            "00:59:59 GMT",
        ),
        (
            json!("2026-03-29T01:00:00Z"),
            "%H:%M:%S %Z",
            Some("Europe/London"),
            "02:00:00 BST",
        ),
        // Offsets in the input are honoured; fractions and float seconds too.
        (
            json!("2026-03-08T14:59:00+08:00"),
            "%H:%M",
            Some("UTC"),
            "06:59",
        ),
        (
            json!("2026-03-08T06:59:00.750Z"),
            "%H:%M:%S%.3f",
            Some("UTC"),
            "06:59:00.750",
        ),
        (
            json!(1_772_953_140.25),
            "%H:%M:%S%.3f",
            Some("UTC"),
            "06:59:00.250",
        ),
        (json!("1772953140"), "%Y-%m-%d", Some("UTC"), "2026-03-08"),
        // Alertmanager's "not set" time is a valid instant, year 1.
        (json!("0001-01-01T00:00:00Z"), "%Y", Some("UTC"), "0001"),
    ];
    for (instant, format, tz, expected) in table {
        let template = match tz {
            Some(tz) => format!("{{{{ payload.t | datetime('{format}', tz='{tz}') }}}}"),
            None => format!("{{{{ payload.t | datetime('{format}') }}}}"),
        };
        let got = content(&template, json!({ "t": instant }), &default).unwrap();
        assert_eq!(got, expected, "{instant} {format} {tz:?}");
    }
    // The default zone comes from the caller (the relay's TIMEZONE).
    let london = RenderOptions::with_timezone("Europe/London").unwrap();
    assert_eq!(
        content(
            "{{ payload.t | datetime }}",
            json!({ "t": "2026-07-01T12:00:00Z" }),
            &london
        )
        .unwrap(),
        "2026-07-01 13:00:00"
    );
    // `now` is the event's clock, never the machine's.
    assert_eq!(
        content(
            "{{ now | datetime('%Y-%m-%d %H:%M') }}",
            json!({}),
            &default
        )
        .unwrap(),
        "2026-01-01 08:00"
    );
    // Undefined renders empty, as any missing field does.
    assert_eq!(
        content("[{{ payload.nope | datetime }}]", json!({}), &default).unwrap(),
        "[]"
    );
}

#[test]
fn durations_and_timestamps() {
    let default = RenderOptions::default();
    let table = [
        ("{{ 7500 | duration }}", "2h 5m"),
        ("{{ 7500 | duration(lang='zh') }}", "2小时5分钟"),
        ("{{ 180 | duration(lang='zh') }}", "3分钟"),
        ("{{ 93784 | duration(parts=4) }}", "1d 2h 3m 4s"),
        ("{{ 93784 | duration(lang='zh', parts=1) }}", "1天"),
        ("{{ 3605 | duration }}", "1h"),
        ("{{ 0 | duration }}", "0s"),
        ("{{ '45' | duration }}", "45s"),
        ("{{ 59.9 | duration }}", "59s"),
        ("{{ -90 | duration }}", "-1m 30s"),
        // How long an alert has fired, from its RFC 3339 start and `now`.
        (
            "{{ (now - (payload.startsAt | timestamp)) | duration(lang='zh') }}",
            "1小时30分钟",
        ),
        ("{{ payload.startsAt | timestamp }}", "1767220200"),
    ];
    for (template, expected) in table {
        let got = content(
            template,
            json!({ "startsAt": "2025-12-31T22:30:00Z" }),
            &default,
        )
        .unwrap();
        assert_eq!(got, expected, "{template}");
    }
}

#[test]
fn bad_input_to_a_time_filter_is_a_render_error_naming_the_filter() {
    let default = RenderOptions::default();
    let table = [
        (
            "{{ payload.t | datetime }}",
            json!({ "t": "yesterday" }),
            "datetime: `yesterday` is not UNIX seconds or an RFC 3339 time",
        ),
        (
            "{{ payload.t | datetime }}",
            json!({ "t": [1] }),
            "datetime: a sequence is not UNIX seconds",
        ),
        (
            "{{ payload.t | datetime }}",
            json!({ "t": 1e300 }),
            "datetime: 1e300 is out of the range of time",
        ),
        (
            "{{ payload.t | datetime }}",
            json!({ "t": 99_999_999_999_999i64 }),
            "datetime: 99999999999999 is out of the range of time",
        ),
        (
            "{{ payload.t | datetime(tz='Mars/Base') }}",
            json!({ "t": 0 }),
            "datetime: `Mars/Base` is not an IANA time zone",
        ),
        (
            "{{ payload.t | datetime('%K') }}",
            json!({ "t": 0 }),
            "datetime: format `%K`",
        ),
        (
            "{{ payload.t | datetime(zone='UTC') }}",
            json!({ "t": 0 }),
            "zone",
        ),
        (
            "{{ payload.t | duration }}",
            json!({ "t": "soon" }),
            "duration: `soon` is not a number of seconds",
        ),
        (
            "{{ payload.t | duration(lang='fr') }}",
            json!({ "t": 5 }),
            "duration: lang `fr` is not `en` or `zh`",
        ),
        (
            "{{ payload.t | duration(parts=9) }}",
            json!({ "t": 5 }),
            "duration: parts 9 is not 1 to 4",
        ),
        (
            "{{ payload.t | timestamp }}",
            json!({ "t": "x" }),
            "timestamp: `x` is not UNIX seconds",
        ),
    ];
    for (template, payload, message) in table {
        let err = content(template, payload, &default).unwrap_err();
        let RouteError::Render { field, reason, .. } = &err else {
            panic!("{template}: {err:?}")
        };
        assert_eq!(field, "content");
        assert!(reason.contains(message), "{template}: {reason}");
    }
    let e = RenderOptions::with_timezone("Asia/Shangai").unwrap_err();
    assert_eq!(
        (e.status(), e.to_json()["field"].as_str()),
        (500, Some("TIMEZONE"))
    );
}

#[test]
fn storm_settings_are_checked_naming_each_field() {
    let config = json!({
        "windows": route(json!({
            "digest": { "window_secs": 0, "max_events": 5000, "key": "payload.x ==" },
            "digest_content": "{% for e in events %}",
            "digest_push_content": "{{ count",
            "throttle": { "limit": 0, "window_secs": 90000 },
        })),
        "zone": route(json!({ "quiet_hours": { "tz": "Asia/Shangai", "from": "22:00", "to": "08:00" } })),
        "clock": route(json!({ "quiet_hours": { "tz": "UTC", "from": "22:00", "to": "8:00" } })),
        "same": route(json!({ "quiet_hours": { "tz": "UTC", "from": "08:00", "to": "08:00" } })),
        "mode": route(json!({ "quiet_hours": { "tz": "UTC", "from": "22:00", "to": "08:00", "mode": "mute" } })),
        "per": route(json!({ "throttle": { "limit": 1, "window_secs": 60, "per": "team" } })),
        "single": route(json!({ "digest": { "window_secs": 60, "single": "one" }, "digest_content": "x" })),
        "unknown": route(json!({ "digest": { "window_secs": 60, "windw": 1 }, "digest_content": "x" })),
        "needs": route(json!({ "digest": { "window_secs": 60 } })),
        "alone": route(json!({ "digest_content": "x", "digest_push_content": "y" })),
        "overflow": route(json!({ "throttle": { "limit": 1, "window_secs": 60, "overflow": "digest" } })),
        "overflow-bad": route(json!({ "throttle": { "limit": 1, "window_secs": 60, "overflow": "later" } })),
    });
    let routes = Routes::parse(&config).unwrap();
    let problems: Vec<(String, String, String)> = routes
        .problems()
        .map(|p| match p {
            RouteError::Config {
                route,
                field,
                problem,
            } => (route.clone(), field.clone(), problem.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected = [
        ("windows", "digest.window_secs", "must be 1 to 86400"),
        ("windows", "digest.max_events", "must be 1 to 1000"),
        ("windows", "digest.key", "is not a valid expression"),
        ("windows", "digest_content", "is not a valid template"),
        ("windows", "digest_push_content", "is not a valid template"),
        ("windows", "throttle.limit", "must be 1 to 1000"),
        ("windows", "throttle.window_secs", "must be 1 to 86400"),
        (
            "zone",
            "quiet_hours.tz",
            "`Asia/Shangai` is not an IANA time zone",
        ),
        (
            "clock",
            "quiet_hours.to",
            "`8:00` is not a time of day `HH:MM`",
        ),
        ("same", "quiet_hours.to", "must differ from `from`"),
        (
            "mode",
            "quiet_hours.mode",
            "unknown variant `mute`, expected `defer` or `drop`",
        ),
        (
            "per",
            "throttle.per",
            "unknown variant `team`, expected `receiver` or `route`",
        ),
        (
            "single",
            "digest.single",
            "unknown variant `one`, expected `digest` or `plain`",
        ),
        ("unknown", "digest.windw", "unknown field `windw`"),
        ("needs", "digest_content", "is required with `digest`"),
        ("alone", "digest_content", "has no effect without `digest`"),
        (
            "alone",
            "digest_push_content",
            "has no effect without `digest`",
        ),
        ("overflow", "throttle.overflow", "the route has no `digest`"),
        (
            "overflow-bad",
            "throttle.overflow",
            "unknown variant `later`, expected `skip` or `digest`",
        ),
    ];
    for (route, field, problem) in expected {
        assert!(
            problems
                .iter()
                .any(|(r, f, p)| r == route && f == field && p.contains(problem)),
            "({route}, {field}, {problem}) missing from {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

fn alerts() -> Value {
    json!({ "alerts": route(json!({
        "receivers_from": "payload.oncall",
        "content": "🔥 {{ payload.alert }}",
        "push_content": "{{ payload.alert }}",
        "digest": { "window_secs": 300, "key": "payload.team", "single": "plain" },
        "digest_content": "{{ count }} 条告警（{{ first_at | datetime('%H:%M') }}–{{ last_at | datetime('%H:%M') }}）\n{% for e in events[:3] %}• {{ e.alert }}\n{% endfor %}{% if count > 3 %}…\n{% endif %}",
        "digest_push_content": "{{ key }}：{{ count }} 条告警",
        "throttle": { "limit": 2, "window_secs": 3600 },
    })) })
}

fn collect(n: usize, oncall: &[&str]) -> Collect {
    Collect::new(
        format!("alerts:{n}"),
        json!({ "alert": format!("Disk{n}"), "team": "sre", "oncall": oncall }),
        oncall.iter().map(|id| AccountId::new(*id)).collect(),
    )
    .with_notification(
        json!({ "sender_id": "ops", "receiver_ids": oncall, "content": format!("🔥 Disk{n}") }),
    )
}

#[test]
fn a_digest_renders_its_events_to_the_union_of_their_receivers() {
    let routes = routes(alerts());
    let route = routes.get("alerts").unwrap();
    let config = route.digest.as_ref().unwrap();
    let mut digest = Digest::new("alerts", DigestKey::new("sre"));
    let start = NOW_SECS as u64 * 1000;
    for (n, oncall) in [&["ann", "bo"][..], &["Ann"], &["cy"], &["bo"]]
        .iter()
        .enumerate()
    {
        let added = digest.add(config, collect(n, oncall), start + n as u64 * 60_000);
        assert!(matches!(added, Added::Open { .. }), "{added:?}");
    }
    let flushed = digest.flush_due(start + 300_000).unwrap();
    let Rendered::Notification {
        notification,
        json,
        event_id,
    } = render_digest(route, &flushed, &RenderOptions::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(event_id, flushed.id.as_str());
    assert_eq!(
        notification.content.as_str(),
        "4 条告警（08:00–08:03）\n• Disk0\n• Disk1\n• Disk2\n…\n"
    );
    assert_eq!(json["push_config"]["push_content"], "sre：4 条告警");
    let receivers: Vec<&str> = notification
        .receiver_ids
        .iter()
        .map(AccountId::as_str)
        .collect();
    assert_eq!(receivers, ["ann", "bo", "cy"]);

    // One event and `single = "plain"`: its own notification, under the digest's id.
    digest.add(config, collect(9, &["ann"]), start + 400_000);
    let lone = digest.flush_due(start + 700_000).unwrap();
    let Rendered::Notification {
        notification,
        event_id,
        ..
    } = render_digest(route, &lone, &RenderOptions::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(notification.content.as_str(), "🔥 Disk9");
    assert_eq!(event_id, lone.id.as_str());
}

#[test]
fn a_digest_over_a_limit_fails_naming_the_field() {
    let config = json!({ "r": route(json!({
        "digest": { "window_secs": 60 },
        "digest_content": "{% for e in events %}{{ e.text }}{% endfor %}",
    })) });
    let routes = routes(config);
    let route = routes.get("r").unwrap();
    let mut digest = Digest::new("r", DigestKey::new("r"));
    for n in 0..3 {
        let event = Collect::new(
            format!("r:{n}"),
            json!({ "text": "长".repeat(2000) }),
            vec![AccountId::new("ann")],
        );
        digest.add(route.digest.as_ref().unwrap(), event, n);
    }
    let err =
        render_digest(route, &digest.flush(10).unwrap(), &RenderOptions::default()).unwrap_err();
    let RouteError::Notification { error, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (error.field(), error.limit()),
        (Some("content"), Some(4096))
    );
}

/// Decides one event of the `alerts` route, to `oncall`, at `now_ms`.
fn decide_at(
    routes: &Routes,
    silences: &Silences,
    state: &mut RouteState,
    oncall: &[&str],
    now_ms: u64,
) -> Disposition {
    let route = routes.get("alerts").unwrap();
    let body = json!({ "alert": "Disk", "team": "sre", "oncall": oncall }).to_string();
    let headers = BTreeMap::new();
    let event = Event {
        route: "alerts",
        headers: &headers,
        body: body.as_bytes(),
        now_secs: (now_ms / 1000) as i64,
    };
    let options = RenderOptions::default();
    let rendered = render_with(route, &event, &Groups::new(), &options).unwrap();
    decide(route, &event, &rendered, silences, state, &options, now_ms)
        .unwrap()
        .unwrap()
        .disposition
}

#[test]
fn silences_come_first_then_quiet_hours_then_the_digest() {
    let mut config = alerts();
    config["alerts"]["quiet_hours"] =
        json!({ "tz": "Asia/Shanghai", "from": "22:00", "to": "08:00" });
    let routes = routes(config);
    let mut state = RouteState::default();
    // 2026-01-01 07:00 in Shanghai: quiet until 08:00.
    let night = (NOW_SECS as u64 - 3_600) * 1000;
    let mut silences = Silences::default();
    let deferred = decide_at(&routes, &silences, &mut state, &["ann"], night);
    assert_eq!(
        deferred,
        Disposition::Deferred {
            until_ms: NOW_SECS as u64 * 1000,
            quiet_hours: "22:00–08:00 Asia/Shanghai".into()
        }
    );
    assert!(state.digests.is_empty(), "nothing collected in quiet hours");

    // A silence beats quiet hours.
    let body =
        json!({ "route": "alerts", "matcher": "payload.team == 'sre'", "ends_at": NOW_SECS + 60 });
    let silence = Silence::parse(
        body.to_string().as_bytes(),
        &routes,
        SilenceId::new("s1").unwrap(),
        night,
    )
    .unwrap();
    silences.insert(silence, night).unwrap();
    let silenced = decide_at(&routes, &silences, &mut state, &["ann"], night);
    assert!(
        matches!(&silenced, Disposition::Silenced { silence_id, .. } if silence_id.as_str() == "s1"),
        "{silenced:?}"
    );
    assert_eq!(silenced.name(), "silenced");

    // Once the silence has ended and the quiet hours too, the digest collects it.
    let later = (NOW_SECS as u64 + 60) * 1000;
    let Disposition::Digested(digested) =
        decide_at(&routes, &silences, &mut state, &["ann"], later)
    else {
        panic!()
    };
    assert_eq!(digested.key.as_str(), "sre");
    assert_eq!(digested.closes_at_ms, later + 300_000);
    assert_eq!(state.next_alarm_ms(), Some(later + 300_000));
    // The throttle does not touch collected events: it counts the digest when sent.
    assert_eq!(state.throttle.keys(), 0);
    let flushed = state.flush_due(later + 300_000);
    assert_eq!(flushed.len(), 1);
    assert!(state.digests.is_empty());
    let route = routes.get("alerts").unwrap();
    assert_eq!(
        yunxin_edge_routes::storm::digest_throttle(route).map(|t| t.limit),
        Some(2)
    );
}

#[test]
fn the_throttle_holds_back_receivers_and_overflows_into_the_digest() {
    let mut config = alerts();
    config["alerts"]["throttle"] = json!({ "limit": 1, "window_secs": 600, "overflow": "digest" });
    let routes = routes(config);
    let mut state = RouteState::default();
    let silences = Silences::default();
    let t0 = NOW_SECS as u64 * 1000;
    assert_eq!(
        decide_at(&routes, &silences, &mut state, &["ann", "bo"], t0),
        Disposition::Send
    );
    let Disposition::Throttled {
        allowed,
        throttled,
        digest,
    } = decide_at(&routes, &silences, &mut state, &["ann", "cy"], t0 + 1_000)
    else {
        panic!()
    };
    assert_eq!(allowed, [AccountId::new("cy")]);
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].account_id, AccountId::new("ann"));
    assert_eq!(throttled[0].opens_at_ms, t0 + 600_000);
    let digest = digest.expect("overflow goes into the digest");
    let flushed = state.flush_due(digest.closes_at_ms);
    // Only the held-back receiver gets the digest.
    assert_eq!(flushed[0].receivers, [AccountId::new("ann")]);
    // single = "plain": its own notification, to the held-back receiver only.
    assert_eq!(
        flushed[0].plain.as_ref().unwrap()["receiver_ids"],
        json!(["ann"])
    );
    let route = routes.get("alerts").unwrap();
    assert!(yunxin_edge_routes::storm::digest_throttle(route).is_none());
}

#[test]
fn quiet_hours_may_drop_and_steps_serialise_for_the_state_keeper() {
    let config = json!({ "alerts": route(json!({
        "receivers_from": "payload.oncall",
        "quiet_hours": { "tz": "UTC", "from": "00:00", "to": "01:00", "mode": "drop" },
    })) });
    let routes = routes(config);
    let route = routes.get("alerts").unwrap();
    let headers = BTreeMap::new();
    let body = br#"{"oncall": "ann"}"#;
    let event = Event {
        route: "alerts",
        headers: &headers,
        body,
        now_secs: NOW_SECS,
    };
    let screened = screen(
        route,
        &event,
        &Silences::default(),
        &RenderOptions::default(),
        NOW_SECS as u64 * 1000,
    )
    .unwrap();
    let step: Step = serde_json::from_value(serde_json::to_value(&screened.step).unwrap()).unwrap();
    assert_eq!(step, screened.step);
    let Step::Decided { disposition } = step else {
        panic!()
    };
    assert_eq!(
        serde_json::to_value(&disposition).unwrap(),
        json!({ "disposition": "dropped", "quiet_hours": "00:00–01:00 UTC" })
    );
    // An hour later it is sent as usual.
    let screened = screen(
        route,
        &event,
        &Silences::default(),
        &RenderOptions::default(),
        (NOW_SECS as u64 + 3_600) * 1000,
    )
    .unwrap();
    assert_eq!(screened.step, Step::Send);
}
