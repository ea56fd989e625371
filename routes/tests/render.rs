//! Routes from configuration to notification: every problem of a config at
//! once, filters, receivers from the payload and from groups, templates
//! (text, JSON objects, CJK and emoji), the core's limits after rendering,
//! and idempotency keys.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use yunxin_edge_routes::{Event, Groups, Rendered, RouteError, Routes, render};

fn routes(config: Value) -> Routes {
    let routes = Routes::parse(&config).unwrap();
    let problems: Vec<_> = routes.problems().collect();
    assert!(problems.is_empty(), "{problems:?}");
    routes
}

fn event<'a>(route: &'a str, headers: &'a BTreeMap<String, String>, body: &'a [u8]) -> Event<'a> {
    Event {
        route,
        headers,
        body,
        now_secs: 1_700_000_000,
    }
}

fn github() -> Value {
    json!({
        "push": {
            "verify": { "scheme": "github", "secrets": ["GITHUB_SECRET"] },
            "filter": "headers['x-github-event'] == 'push' and payload.ref == 'refs/heads/' ~ payload.repository.default_branch",
            "sender_id": "github-bot",
            "receivers": ["lead"],
            "receivers_from": "payload.commits | map(attribute='author.username') | list",
            "groups": ["team"],
            "content": "🚀 {{ payload.pusher.name }} 推送了 {{ payload.commits | length }} 个提交到 {{ payload.repository.full_name }}",
            "push_content": "{{ payload.repository.name }}: {{ payload.head_commit.message[:40] }}",
            "push_payload": { "repo": "{{ payload.repository.full_name }}" }
        }
    })
}

fn push_payload(branch: &str) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "repository": { "name": "edge", "full_name": "acme/edge", "default_branch": "main" },
        "pusher": { "name": "octocat" },
        "head_commit": { "message": "Fix the pacer" },
        "commits": [ { "author": { "username": "ann" } }, { "author": { "username": "bo" } } ]
    })
    .to_string()
    .into_bytes()
}

fn groups() -> Groups {
    [("team".to_owned(), vec!["ann".to_owned(), "cy".to_owned()])].into()
}

fn push_headers() -> BTreeMap<String, String> {
    [
        ("x-github-event".to_owned(), "push".to_owned()),
        (
            "x-github-delivery".to_owned(),
            "72d3162e-cc78-11e3".to_owned(),
        ),
    ]
    .into()
}

#[test]
fn a_github_push_to_the_default_branch_becomes_a_notification() {
    let routes = routes(github());
    let route = routes.get("push").unwrap();
    let headers = push_headers();
    let body = push_payload("main");
    let Rendered::Notification {
        notification,
        json,
        event_id,
    } = render(route, &event("push", &headers, &body), &groups()).unwrap()
    else {
        panic!("not skipped")
    };
    // X-GitHub-Delivery is unsigned: the body's hash is GitHub's key.
    assert!(event_id.starts_with("push:sha256:"), "{event_id}");
    assert_eq!(
        notification.content.as_str(),
        "🚀 octocat 推送了 2 个提交到 acme/edge"
    );
    // Static, from the payload, from the group; duplicates are the planner's to drop.
    let receivers: Vec<&str> = notification
        .receiver_ids
        .iter()
        .map(|id| id.as_str())
        .collect();
    assert_eq!(receivers, ["lead", "ann", "bo", "ann", "cy"]);
    let push = notification.push_config.as_ref().unwrap();
    assert_eq!(push.push_content.as_deref(), Some("edge: Fix the pacer"));
    assert_eq!(
        push.push_payload.as_deref(),
        Some(r#"{"repo":"acme/edge"}"#)
    );
    assert_eq!(json["sender_id"], "github-bot");
}

#[test]
fn a_false_filter_skips_and_says_why() {
    let routes = routes(github());
    let headers = push_headers();
    let body = push_payload("feature");
    let rendered = render(
        routes.get("push").unwrap(),
        &event("push", &headers, &body),
        &groups(),
    )
    .unwrap();
    let Rendered::Skipped { reason } = rendered else {
        panic!("{rendered:?}")
    };
    // The sender learns that it was filtered out, never the filter itself.
    assert!(!reason.contains("x-github-event"), "{reason}");
    assert!(reason.contains("filter"), "{reason}");

    // Undefined values chain: a pull request event has no `ref`, and is skipped, not an error.
    let other = BTreeMap::from([("x-github-event".to_owned(), "pull_request".to_owned())]);
    let rendered = render(
        routes.get("push").unwrap(),
        &event("push", &other, b"{\"action\":\"opened\"}"),
        &groups(),
    );
    assert!(
        matches!(rendered, Ok(Rendered::Skipped { .. })),
        "{rendered:?}"
    );
}

#[test]
fn content_objects_numbers_and_the_core_limits_after_rendering() {
    let config = json!({
        "stripe": {
            "verify": { "scheme": "stripe", "secrets": ["STRIPE_SECRET"] },
            "sender_id": "billing",
            "receivers_from": "payload.data.object.metadata.user_id",
            "content": { "type": "payment", "amount": "{{ payload.data.object.amount }}", "ok": true },
            "sound": "{{ 'x' * 31 }}"
        },
        "long": {
            "verify": { "scheme": "bearer", "secrets": ["TOKEN"] },
            "sender_id": "ops",
            "receivers": ["u1"],
            "content": "{{ payload.text * 2 }}"
        }
    });
    let routes = routes(config);
    let body = json!({ "id": "evt_3Nq", "data": { "object": { "amount": 1999, "metadata": { "user_id": 10042 } } } }).to_string();
    let err = render(
        routes.get("stripe").unwrap(),
        &event("stripe", &BTreeMap::new(), body.as_bytes()),
        &Groups::new(),
    )
    .unwrap_err();
    let RouteError::Notification { route, error } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (route.as_str(), error.field(), error.limit()),
        ("stripe", Some("sound"), Some(30))
    );

    let text = json!({ "text": "通".repeat(2049) }).to_string();
    let err = render(
        routes.get("long").unwrap(),
        &event("long", &BTreeMap::new(), text.as_bytes()),
        &Groups::new(),
    )
    .unwrap_err();
    let RouteError::Notification { error, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (error.field(), error.limit()),
        (Some("content"), Some(4096))
    );
}

#[test]
fn idempotency_keys_per_scheme_and_by_expression() {
    let config = json!({
        "stripe": {
            "verify": { "scheme": "stripe", "secrets": ["S"] },
            "sender_id": "billing", "receivers": ["u1"],
            "content": { "amount": "{{ payload.data.object.amount }}" }
        },
        "alerts": {
            "verify": { "scheme": "bearer", "secrets": ["T"] },
            "sender_id": "ops", "receivers": ["u1"], "content": "{{ payload.status }}"
        },
        "keyed": {
            "verify": { "scheme": "bearer", "secrets": ["T"] },
            "sender_id": "ops", "receivers": ["u1"], "content": "x",
            "idempotency_key": "payload.groupKey ~ '/' ~ payload.status"
        }
    });
    let routes = routes(config);
    let render_id = |name: &str, body: &Value| {
        let body = body.to_string();
        match render(
            routes.get(name).unwrap(),
            &event(name, &BTreeMap::new(), body.as_bytes()),
            &Groups::new(),
        )
        .unwrap()
        {
            Rendered::Notification {
                event_id,
                notification,
                ..
            } => (event_id, notification),
            other => panic!("{other:?}"),
        }
    };
    let stripe =
        json!({ "id": "evt_3Nq", "data": { "object": { "amount": 123456789012345678u64 } } });
    let (id, notification) = render_id("stripe", &stripe);
    assert_eq!(id, "stripe:evt_3Nq");
    assert_eq!(
        notification.content.as_str(),
        r#"{"amount":"123456789012345678"}"#
    );

    let alert = json!({ "status": "firing", "groupKey": "{}:{alertname=\"HighLatency\"}" });
    let (id, _) = render_id("alerts", &alert);
    assert!(
        id.starts_with("alerts:sha256:") && id.len() == "alerts:sha256:".len() + 64,
        "{id}"
    );
    // A key with spaces or quotes is hashed into visible ASCII.
    let (id, _) = render_id("keyed", &alert);
    assert!(
        id.starts_with("keyed:") && id.bytes().all(|b| b.is_ascii_graphic()),
        "{id}"
    );
    assert_ne!(
        id,
        render_id(
            "keyed",
            &json!({ "status": "resolved", "groupKey": "{}:{alertname=\"HighLatency\"}" })
        )
        .0
    );
}

#[test]
fn a_config_reports_every_problem_at_once_never_a_secret() {
    let config = json!({
        "bad name!": { "verify": { "scheme": "bearer", "secrets": ["T"] }, "sender_id": "a", "receivers": ["b"], "content": "c" },
        "broken": {
            "verify": { "scheme": "github" },
            "filter": "payload.x ==",
            "sender_id": "{{ unclosed",
            "content": { "a": "{% if %}" }
        },
        "typo": { "verify": { "scheme": "gitlab", "secrets": ["S"] }, "sender_id": "a", "receivers": ["b"], "content": "c" },
        "unknown-field": { "verify": { "scheme": "bearer", "secrets": ["T"] }, "sender_id": "a", "receivers": ["b"], "content": "c", "recievers": [] }
    });
    let routes = Routes::parse(&config).unwrap();
    let named: Vec<(String, String)> = routes
        .problems()
        .map(|p| match p {
            RouteError::Config { route, field, .. } => (route.clone(), field.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    for expected in [
        ("bad name!", "name"),
        ("broken", "verify.secrets"),
        ("broken", "filter"),
        ("broken", "sender_id"),
        ("broken", "content.a"),
        ("broken", "receivers"),
        ("typo", "verify"),
        ("unknown-field", "recievers"),
    ] {
        assert!(
            named.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {named:?}"
        );
    }
    // A broken route answers its own problem; the others keep working.
    assert!(
        matches!(routes.get("broken"), Err(RouteError::Config { route, .. }) if route == "broken")
    );
    assert_eq!(routes.len(), 4);
    // JSON text is accepted too (a secret or .dev.vars holds text).
    let text = Value::String(github().to_string());
    assert!(Routes::parse(&text).unwrap().get("push").is_ok());
    assert!(Routes::parse(&json!([1])).is_err());
}

/// Ids from payloads: integers of any length keep their digits (a number
/// that lost digits would name another account); numbers that are not
/// integers are refused naming `receivers_from`.
#[test]
fn numeric_ids_keep_every_digit_and_non_integers_are_refused() {
    let routes = routes(json!({
        "ids": {
            "verify": { "scheme": "bearer", "secrets": ["T"] },
            "sender_id": "bot",
            "receivers_from": "payload.to",
            "content": "for {{ payload.to }}"
        }
    }));
    let route = routes.get("ids").unwrap();
    let headers = BTreeMap::new();
    let receivers = |body: &str| {
        render(route, &event("ids", &headers, body.as_bytes()), &groups()).map(|rendered| {
            let Rendered::Notification { json, .. } = rendered else {
                panic!("{rendered:?}")
            };
            json
        })
    };

    let wide = receivers(
        r#"{"to": [12345678901234567890123, -98765432109876543210, 42, 18446744073709551615]}"#,
    )
    .unwrap();
    assert_eq!(
        wide["receiver_ids"],
        json!([
            "12345678901234567890123",
            "-98765432109876543210",
            "42",
            "18446744073709551615"
        ])
    );
    // The same digits wherever the payload is used.
    let one = receivers(r#"{"to": 12345678901234567890123}"#).unwrap();
    assert_eq!(one["receiver_ids"], json!(["12345678901234567890123"]));
    assert_eq!(one["content"], "for 12345678901234567890123");
    // Digits inside strings, escaped quotes included, are left as they are.
    let text = receivers(r#"{"to": "a\"12345678901234567890123\"", "n": 1.5}"#).unwrap();
    assert_eq!(
        text["receiver_ids"],
        json!(["a\"12345678901234567890123\""])
    );

    for body in [r#"{"to": 1.5}"#, r#"{"to": [1, 2e3]}"#, r#"{"to": 1e30}"#] {
        match receivers(body) {
            Err(RouteError::Render { field, reason, .. }) => {
                assert_eq!(field, "receivers_from", "{body}");
                assert!(reason.contains("not an integer"), "{body}: {reason}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // Malformed numbers stay malformed: quoting never makes bad JSON good.
    for body in [
        r#"{"to": 0123456789012345678901234}"#,
        r#"{"to": --12345678901234567890123}"#,
    ] {
        assert!(
            matches!(receivers(body), Err(RouteError::Payload { .. })),
            "{body}"
        );
    }
}
