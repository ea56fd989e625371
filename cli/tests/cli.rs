//! The built `yunxin-edge` binary, run on the fixture files in
//! `tests/fixtures/` from that directory (so that paths in messages are
//! short and stable).

use std::process::Command;

use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// What one run of the tool did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_yunxin-edge"))
        .args(args)
        .current_dir(FIXTURES)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// `render` of the github route for `payload`, with the push event header.
fn render_push(payload: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "render",
        "--routes",
        "routes.json",
        "--route",
        "github",
        "--payload",
        payload,
        "--header",
        "X-GitHub-Event: push",
        "--groups",
        "groups.json",
        "--now",
        "1700000000",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The one line the broken config's problems are reported as, in order.
const BROKEN: [&str; 3] = [
    "route `github`: `filter` is not a valid expression: syntax error: unexpected end of input, expected expression (in <expression>:1)",
    "route `github`: `content` is not a valid template: syntax error: unexpected identifier, expected end of variable block (in <string>:1)",
    "route `stripe`: `verify.secrets` must name at least one binding",
];

#[test]
fn render_prints_the_notification_the_relay_would_send() {
    let out = render_push("push.json", &[]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.json(),
        json!({
            "route": "github",
            // No verification, so no delivery id: the body's SHA-256
            // (`sha256sum tests/fixtures/push.json`).
            "event_id": "github:sha256:d496fc52ac225c7b946a6169f14457c0180b7870c1417835ddca687254a84aa8",
            "requests": 1,
            "notification": {
                "sender_id": "github-bot",
                // receivers_from, then the oncall group.
                "receiver_ids": ["lilei", "hanmeimei", "ops-lead", "ops-backup"],
                "content": "🚀 李雷 推送了 2 个提交到 acme/yunxin-edge\n• 修复签名 🐛\n• Add emoji support 🎉",
                "push_config": { "push_content": "yunxin-edge：新的推送 ✅" }
            }
        })
    );
    // `--json` changes errors only: the answer is JSON anyway.
    assert_eq!(render_push("push.json", &["--json"]).stdout, out.stdout);
}

#[test]
fn render_reports_a_filter_that_says_no() {
    let skipped = json!({
        "route": "github",
        "skipped": "filter `headers['x-github-event'] == 'push'` is false"
    });
    let ping = run(&[
        "render",
        "--routes",
        "routes.json",
        "--route",
        "github",
        "--payload",
        "push.json",
        "--header",
        "x-github-event:ping",
    ]);
    assert_eq!((ping.code, ping.stderr.as_str()), (0, ""));
    assert_eq!(ping.json(), skipped);
    // No header at all: undefined, so false as well.
    let bare = run(&[
        "render",
        "--routes",
        "routes.json",
        "--route",
        "github",
        "--payload",
        "push.json",
    ]);
    assert_eq!(bare.code, 0);
    assert_eq!(bare.json(), skipped);
}

#[test]
fn render_uses_the_idempotency_key_and_the_clock() {
    let out = run(&[
        "render",
        "--routes",
        "routes.json",
        "--route",
        "alerts",
        "--payload",
        "alert.json",
        "--now",
        "1700000000",
    ]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(
        out.json(),
        json!({
            "route": "alerts",
            "event_id": "alerts:alert-7",
            "requests": 1,
            "notification": {
                "sender_id": "alert-bot",
                "receiver_ids": ["ops-lead"],
                // Object content: each string is a template.
                "content": { "alert": "磁盘快满了 💾", "at": "1700000000" }
            }
        })
    );
}

#[test]
fn render_fails_on_content_over_4096_characters_naming_field_and_limit() {
    // 4,235 characters of CJK text: 12,000+ bytes, counted as characters.
    let message = "route `github`: the rendered notification is invalid: \
                   `content` must be at most 4096 characters, got 4235";
    let out = render_push("long-push.json", &[]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, format!("yunxin-edge: {message}\n"));

    let out = render_push("long-push.json", &["--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "too_long",
            "message": message,
            "route": "github",
            "field": "content",
            "limit": 4096
        } })
    );
}

#[test]
fn render_applies_the_receiver_cap_after_de_duplication() {
    let out = render_push("push.json", &["--max-receivers", "3", "--json"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "too_many",
            "message": "route `github`: the rendered notification is invalid: \
                        `receiver_ids` must hold at most 3 items, got 4",
            "route": "github",
            "field": "receiver_ids",
            "limit": 3
        } })
    );
}

#[test]
fn render_fails_on_a_group_missing_from_groups() {
    let out = run(&[
        "render",
        "--json",
        "--routes",
        "routes.json",
        "--route",
        "github",
        "--payload",
        "push.json",
        "--header",
        "X-GitHub-Event: push",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "invalid_config",
            "message": "route `github`: `groups[oncall]` is not in the GROUPS binding",
            "route": "github",
            "field": "groups[oncall]"
        } })
    );
}

#[test]
fn render_fails_on_a_payload_that_is_not_json() {
    let out = render_push("not-json.txt", &["--json"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "invalid_payload",
            "message": "route `github`: the body is not JSON: expected ident at line 1 column 2",
            "route": "github"
        } })
    );
}

#[test]
fn render_refuses_a_config_with_problems_listing_them_all() {
    let out = run(&[
        "render",
        "--routes",
        "broken-routes.json",
        "--route",
        "stripe",
        "--payload",
        "push.json",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    let lines: Vec<String> = BROKEN.iter().map(|p| format!("yunxin-edge: {p}")).collect();
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), lines);
}

#[test]
fn render_reads_a_wrangler_config() {
    let out = run(&[
        "render",
        "--routes",
        "wrangler.json",
        "--route",
        "alerts",
        "--payload",
        "alert.json",
    ]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(
        out.json()["notification"],
        json!({
            "sender_id": "alert-bot",
            "receiver_ids": ["ops-lead"],
            "content": "磁盘快满了 💾"
        })
    );
}

#[test]
fn render_names_the_routes_of_an_unknown_route() {
    let out = run(&[
        "render",
        "--json",
        "--routes",
        "routes.json",
        "--route",
        "gitlab",
        "--payload",
        "push.json",
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "unknown_route",
            "message": "no route `gitlab` in `routes.json` (routes: alerts, github)",
            "route": "gitlab"
        } })
    );
}

#[test]
fn check_accepts_a_valid_config() {
    let out = run(&["check", "--routes", "routes.json"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "ok: 2 routes\n", "")
    );
    let out = run(&["check", "--routes", "routes.json", "--json"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.json(),
        json!({ "ok": true, "routes": ["alerts", "github"] })
    );
    let out = run(&["check", "--routes", "wrangler.json"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "ok: 1 route\n"));
}

#[test]
fn check_reports_every_problem_one_per_line() {
    let out = run(&["check", "--routes", "broken-routes.json"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    let lines: Vec<String> = BROKEN.iter().map(|p| format!("yunxin-edge: {p}")).collect();
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), lines);
}

#[test]
fn check_reports_every_problem_as_json() {
    let out = run(&["--json", "check", "--routes", "broken-routes.json"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    let problem = |route: &str, field: &str, message: &str| json!({ "code": "invalid_config", "message": message, "route": route, "field": field });
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "invalid_config",
            "message": BROKEN[0],
            "route": "github",
            "field": "filter",
            "problems": [
                problem("github", "filter", BROKEN[0]),
                problem("github", "content", BROKEN[1]),
                problem("stripe", "verify.secrets", BROKEN[2]),
            ]
        } })
    );
}

#[test]
fn check_reports_a_file_that_is_not_json() {
    let out = run(&["check", "--routes", "not-json.txt"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "yunxin-edge: route `ROUTES`: `ROUTES` is not JSON: expected ident at line 1 column 2\n"
    );
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = run(&["check", "--routes", "routes.json", "--frobnicate"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "yunxin-edge: unexpected argument '--frobnicate' found; \
         for more information, try '--help'.\n"
    );

    let out = run(&["render", "--json", "--rout", "github"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "usage",
            "message": "unexpected argument '--rout' found; \
                        tip: a similar argument exists: '--route'; \
                        for more information, try '--help'."
        } })
    );
}

#[test]
fn a_missing_argument_is_a_usage_error() {
    let out = run(&["render", "--routes", "routes.json", "--route", "github"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "yunxin-edge: the following required arguments were not provided: --payload <FILE>; \
         for more information, try '--help'.\n"
    );

    let out = run(&[]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("requires a subcommand"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_malformed_header_is_a_usage_error() {
    let out = render_push("push.json", &["--header", "no colon here"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "yunxin-edge: invalid value 'no colon here' for '--header <NAME:VALUE>': \
         `no colon here` is not `name: value`; for more information, try '--help'.\n"
    );
}

#[test]
fn an_unreadable_file_is_a_usage_error() {
    let out = render_push("missing.json", &["--json"]);
    assert_eq!(out.code, 2);
    let error = &out.json()["error"];
    assert_eq!(error["code"], "unreadable_file");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot read --payload `missing.json`: "),
        "{message}"
    );
}

#[test]
fn help_and_version() {
    let out = run(&["--help"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    for text in ["render", "check", "--json", "--version"] {
        assert!(out.stdout.contains(text), "{text} not in {}", out.stdout);
    }

    let out = run(&["render", "--help"]);
    assert_eq!(out.code, 0);
    for text in [
        "without verifying signatures",
        "needs no secrets",
        "--routes <FILE>",
        "--route <NAME>",
        "--payload <FILE>",
        "--header <NAME:VALUE>",
        "--groups <FILE>",
        "--now <UNIX_SECS>",
        "--max-receivers <N>",
        "--json",
    ] {
        assert!(out.stdout.contains(text), "{text} not in {}", out.stdout);
    }

    let out = run(&["check", "--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("--routes <FILE>"), "{}", out.stdout);

    let out = run(&["--version"]);
    assert_eq!(
        (out.code, out.stdout),
        (0, format!("yunxin-edge {}\n", env!("CARGO_PKG_VERSION")))
    );
}

/// `render --digest` of the digest fixtures' `alerts` route, from
/// `tests/fixtures/digest/`.
fn render_digest(extra: &[&str]) -> Run {
    let mut args = vec![
        "render",
        "--routes",
        "digest/routes.json",
        "--route",
        "alerts",
        "--now",
        "1700000000",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

const ALERTS: [&str; 5] = [
    "digest/alert-1.json",
    "digest/alert-2.json",
    "digest/alert-3.json",
    "digest/alert-4.json",
    "digest/alert-5.json",
];

#[test]
fn render_digest_collects_payloads_by_key_and_renders_each_digest() {
    let mut args = vec!["--digest"];
    args.extend(ALERTS);
    let out = render_digest(&args);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let json = out.json();
    let digests = json["digests"].as_array().unwrap();
    assert_eq!(digests.len(), 2, "{json:#}");
    // Three `sre` alerts fill the digest (max_events 3): sent at once, to
    // the union of their receivers (`Ann` is `ann`).
    assert_eq!(digests[0]["key"], "sre");
    assert_eq!(
        digests[0]["events"],
        json!(["alerts:a1", "alerts:a2", "alerts:a3"])
    );
    assert_eq!(digests[0]["sent_at"], 1_700_000_120);
    assert_eq!(
        digests[0]["notification"],
        json!({
            "sender_id": "alert-bot",
            "receiver_ids": ["ann", "bo", "cy"],
            "content": "sre：3 条告警（06:13–06:15）\n• Disk1 已持续 14分钟20秒\n• Disk2 已持续 13分钟20秒\n• Disk3 已持续 12分钟20秒",
            "push_config": { "push_content": "3 条告警" }
        })
    );
    assert!(
        digests[0]["digest_id"]
            .as_str()
            .unwrap()
            .starts_with("alerts:digest:")
    );
    // The `db` one waits for its window (300 s after its first event).
    assert_eq!(digests[1]["key"], "db");
    assert_eq!(digests[1]["count"], 1);
    assert_eq!(digests[1]["sent_at"], 1_700_000_180 + 300);
    assert_eq!(digests[1]["notification"]["receiver_ids"], json!(["dba"]));
    // The filter still applies: the resolved alert is skipped, and said so.
    assert_eq!(
        json["skipped"],
        json!([{ "payload": "digest/alert-5.json",
                 "skipped": "filter `payload.status == 'firing'` is false" }])
    );
}

#[test]
fn render_digest_closes_windows_and_takes_the_zone() {
    // 400 s apart: each `sre` alert finds the window before it closed.
    let out = render_digest(&[
        "--interval",
        "400",
        "--timezone",
        "Europe/London",
        "--digest",
        ALERTS[0],
        ALERTS[1],
    ]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let json = out.json();
    let digests = json["digests"].as_array().unwrap();
    assert_eq!(digests.len(), 2, "{json:#}");
    assert_eq!(digests[0]["sent_at"], 1_700_000_300);
    assert_eq!(digests[1]["sent_at"], 1_700_000_700);
    let content = digests[0]["notification"]["content"].as_str().unwrap();
    // 22:13 UTC is 22:13 in London in November.
    assert!(
        content.starts_with("sre：1 条告警（22:13–22:13）"),
        "{content}"
    );
}

#[test]
fn render_digest_needs_a_route_with_a_digest_and_a_known_zone() {
    let out = run(&[
        "render",
        "--json",
        "--routes",
        "routes.json",
        "--route",
        "alerts",
        "--digest",
        "alert.json",
    ]);
    assert_eq!(out.code, 2, "stdout: {}", out.stdout);
    assert_eq!(out.json()["error"]["code"], "no_digest");

    let out = render_digest(&["--json", "--timezone", "Mars/Base", "--digest", ALERTS[0]]);
    assert_eq!(out.code, 2, "stdout: {}", out.stdout);
    assert_eq!(out.json()["error"]["code"], "unknown_timezone");

    // One or the other: a payload, or payloads for a digest.
    let out = render_digest(&["--payload", ALERTS[0], "--digest", ALERTS[1]]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--digest"), "{}", out.stderr);
}
