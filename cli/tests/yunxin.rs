//! `send`, `sign` and `verify-callback`: the built `yunxin-edge` binary
//! against the project's Yunxin emulator (`emulator/cli.mjs`, a separate
//! Node process on 127.0.0.1 with its own implementation of Yunxin's
//! checks), the way a user runs them.
//!
//! Every run gets a clean environment with only the variables a test gives
//! it, and no run may print the app secret, on stdout or stderr.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const KEY: &str = "test-app-key";
/// Distinctive, so that a leak in any output is found by a plain search.
const SECRET: &str = "S3cret-Sentinel-7f2c";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is in the repository")
}

/// The emulator as a child process, killed when dropped.
struct Emulator {
    child: Child,
    url: String,
}

impl Emulator {
    fn start() -> Self {
        let mut child = Command::new("node")
            .args(["emulator/cli.mjs", "--port", "0", "--app-key", KEY])
            .args(["--app-secret", SECRET])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the emulator prints its URL");
        let url = line
            .trim()
            .strip_prefix("yunxin-emulator listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Emulator { child, url }
    }

    fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(format!("{}{path}", self.url))
            .call()
            .expect("the control API answers");
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    }

    /// Batch calls the emulator saw, in order.
    fn requests(&self) -> Vec<Value> {
        match self.get("/_emulator/requests") {
            Value::Array(requests) => requests,
            other => panic!("not a list: {other}"),
        }
    }

    /// Notifications delivered, by receiver.
    fn counts(&self) -> Value {
        self.get("/_emulator/counts")
    }

    fn inject(&self, spec: Value) {
        ureq::post(format!("{}/_emulator/faults", self.url))
            .send(spec.to_string())
            .expect("the fault is accepted");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run of the tool did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs the tool with `args`, only the variables `env`, and `stdin`.
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yunxin-edge"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("piped");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("stdin is written");
    drop(input);
    let output = child.wait_with_output().expect("the binary exits");
    let run = Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    };
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(SECRET), "the secret is in {name}: {run:?}");
    }
    run
}

/// Runs the tool with the right credentials.
fn run(args: &[&str]) -> Run {
    run_with(
        args,
        &[("YUNXIN_APP_KEY", KEY), ("YUNXIN_APP_SECRET", SECRET)],
        None,
    )
}

/// `send` to `to` through `emulator`, with `extra` flags.
fn send(emulator: &Emulator, to: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "send",
        "--to",
        to,
        "--content",
        r#"{"deploy":"ok"}"#,
        "--from",
        "ops-bot",
        "--base-url",
        &emulator.url,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A directory of its own for one test's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new scratch directory: tests run in parallel, each in its own.
fn scratch(name: &str) -> Scratch {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "yunxin-edge-cli-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

// --- send -------------------------------------------------------------------

#[test]
fn send_delivers_to_every_receiver() {
    let emulator = Emulator::start();
    let out = send(&emulator, "alice,bob", &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "delivered": ["alice", "bob"], "failed": [], "unknown": [], "not_attempted": [],
            "calls": 1
        })
    );
    // One call, so no progress lines.
    assert_eq!(out.stderr, "");
    assert_eq!(emulator.counts(), json!({ "alice": 1, "bob": 1 }));
    let requests = emulator.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["code"], 200);
}

#[test]
fn an_unknown_receiver_is_reported_failed_with_its_code() {
    let emulator = Emulator::start();
    let out = send(&emulator, "alice,ghost1,bob", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.stdout,
        "delivered 2 of 3 receivers in 1 call\nfailed ghost1: 102404 account not exist\n"
    );
    assert_eq!(out.stderr, "yunxin-edge: 1 of 3 receivers not delivered\n");

    let out = send(&emulator, "alice,ghost1,bob", &["--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    let report = out.json();
    assert_eq!(report["delivered"], json!(["alice", "bob"]));
    assert_eq!(
        report["failed"],
        json!([{
            "account_id": "ghost1", "error_code": 102404,
            "error_msg": "account not exist", "retryable": false
        }])
    );
}

#[test]
fn over_500_receivers_are_split_into_calls_of_at_most_500() {
    let emulator = Emulator::start();
    // 1,201 ids on stdin (one repeated in another case), and one more by --to.
    let mut ids: Vec<String> = (0..1201).map(|i| format!("user{i}")).collect();
    ids.push("USER7".to_owned());
    let stdin = ids.join("\n") + "\n\n";
    let out = run_with(
        &[
            "send",
            "--to-file",
            "-",
            "--to",
            "extra",
            "--content",
            "hello",
            "--base-url",
            &emulator.url,
            "--json",
        ],
        &[
            ("YUNXIN_APP_KEY", KEY),
            ("YUNXIN_APP_SECRET", SECRET),
            ("YUNXIN_SENDER_ID", "ops-bot"),
        ],
        Some(&stdin),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["calls"], 3);
    assert_eq!(report["delivered"].as_array().unwrap().len(), 1202);
    assert_eq!(
        report["not_attempted"],
        json!([{ "account_id": "USER7", "reason": "duplicate of user7" }])
    );

    let sizes: Vec<Value> = emulator
        .requests()
        .iter()
        .map(|r| r["receiverCount"].clone())
        .collect();
    assert_eq!(sizes, [500, 500, 202]);
    let counts = emulator.counts();
    assert_eq!(counts.as_object().unwrap().len(), 1202);
    assert!(counts.as_object().unwrap().values().all(|n| n == 1));
    // Progress on stderr, one line per call.
    assert_eq!(
        out.stderr,
        "yunxin-edge: call 1/3 (500 receivers): delivered\n\
         yunxin-edge: call 2/3 (500 receivers): delivered\n\
         yunxin-edge: call 3/3 (202 receivers): delivered\n"
    );
    // --quiet drops them.
    let out = run_with(
        &[
            "send",
            "--to-file",
            "-",
            "--content",
            "hello",
            "--from",
            "ops-bot",
            "--base-url",
            &emulator.url,
            "--quiet",
        ],
        &[("YUNXIN_APP_KEY", KEY), ("YUNXIN_APP_SECRET", SECRET)],
        Some(&stdin),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "");
}

#[test]
fn a_wrong_secret_exits_4_and_no_secret_is_printed() {
    let emulator = Emulator::start();
    let wrong = "Wrong-Sentinel-91aa";
    let args = [
        "send",
        "--to",
        "alice",
        "--content",
        "hi",
        "--from",
        "ops-bot",
        "--base-url",
        &emulator.url,
    ];
    let env = [("YUNXIN_APP_KEY", KEY), ("YUNXIN_APP_SECRET", wrong)];
    let out = run_with(&args, &env, None);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        out.stderr,
        "yunxin-edge: Yunxin refused the call: 414 checksum error; \
         check YUNXIN_APP_KEY and YUNXIN_APP_SECRET\n"
    );
    assert!(!out.stdout.contains(wrong) && !out.stderr.contains(wrong));
    assert_eq!(emulator.counts(), json!({}));

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = run_with(&json_args, &env, None);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.json()["failed"][0]["error_code"], 414);
    assert!(!out.stdout.contains(wrong) && !out.stderr.contains(wrong));
}

#[test]
fn a_failed_call_is_sent_again_with_the_same_trace_id() {
    let emulator = Emulator::start();
    emulator.inject(json!({ "kind": "http502", "count": 1 }));
    let out = send(&emulator, "alice,bob", &["--retry-delay-ms", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "delivered 2 of 2 receivers in 1 call\n");
    assert_eq!(
        out.stderr,
        "yunxin-edge: call 1/1 (2 receivers): HTTP 502 from upstream; again in 0 ms\n\
         yunxin-edge: call 1/1 (2 receivers), attempt 2: delivered\n"
    );
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["httpStatus"], 502);
    assert_eq!(requests[0]["traceId"], requests[1]["traceId"]);
    assert_eq!(emulator.counts(), json!({ "alice": 1, "bob": 1 }));
}

#[test]
fn an_answer_lost_after_delivery_does_not_notify_twice() {
    let emulator = Emulator::start();
    // The emulator delivers, then drops the connection without an answer.
    emulator.inject(json!({ "kind": "drop-after", "count": 1 }));
    let out = send(&emulator, "alice,bob", &["--retry-delay-ms", "0", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["delivered"], json!(["alice", "bob"]));
    assert!(
        out.stderr
            .starts_with("yunxin-edge: call 1/1 (2 receivers): answer lost: "),
        "{out:?}"
    );
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    // The retry kept the trace id, so the emulator replayed its answer.
    assert_eq!(requests[0]["traceId"], requests[1]["traceId"]);
    assert_eq!(requests[1]["replayed"], true);
    assert_eq!(emulator.counts(), json!({ "alice": 1, "bob": 1 }));
}

#[test]
fn a_receiver_failing_retryably_is_sent_again_alone() {
    let emulator = Emulator::start();
    emulator.inject(json!({
        "kind": "receiver-code", "code": 102503, "accounts": ["bob"], "count": 1
    }));
    let out = send(&emulator, "alice,bob,carol", &["--retry-delay-ms", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        "yunxin-edge: call 1/1 (3 receivers): 1 of 3 receivers failed, e.g. bob: 102503 server busy; again in 0 ms\n\
         yunxin-edge: call 1/1 (1 receiver), attempt 2: delivered\n"
    );
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["receiverCount"], 1);
    // Other receivers: a new trace id, or Yunxin would replay the first answer.
    assert_ne!(requests[0]["traceId"], requests[1]["traceId"]);
    assert_eq!(
        emulator.counts(),
        json!({ "alice": 1, "bob": 1, "carol": 1 })
    );
}

#[test]
fn retries_that_run_out_leave_receivers_failed_and_retryable() {
    let emulator = Emulator::start();
    emulator.inject(json!({ "kind": "code503" }));
    let out = send(
        &emulator,
        "alice",
        &["--retries", "1", "--retry-delay-ms", "0", "--json"],
    );
    assert_eq!(out.code, 3, "{out:?}");
    let failed = &out.json()["failed"][0];
    assert_eq!(failed["error_code"], 503);
    assert_eq!(failed["retryable"], true);
    assert!(
        out.stderr
            .contains("attempt 2: refused: 503 server busy; giving up"),
        "{out:?}"
    );
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn the_same_event_id_sent_again_is_a_repeat_yunxin_drops() {
    let emulator = Emulator::start();
    for _ in 0..2 {
        let out = send(&emulator, "alice,bob", &["--event-id", "deploy-42"]);
        assert_eq!(out.code, 0, "{out:?}");
    }
    let requests = emulator.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["replayed"], true);
    assert_eq!(emulator.counts(), json!({ "alice": 1, "bob": 1 }));
}

#[test]
fn a_whole_notification_from_a_file_gets_the_receivers_of_to() {
    let emulator = Emulator::start();
    let dir = scratch("notification");
    let path = dir.join("notification.json");
    let notification = json!({
        "sender_id": "ops-bot",
        "receiver_ids": ["alice"],
        "content": { "deploy": "ok" },
        "push_config": { "push_content": "部署完成 ✅" }
    });
    std::fs::write(&path, notification.to_string()).unwrap();
    let out = run(&[
        "send",
        "--notification",
        path.to_str().unwrap(),
        "--to",
        "bob",
        "--base-url",
        &emulator.url,
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["delivered"], json!(["alice", "bob"]));
    let deliveries = emulator.get("/_emulator/deliveries");
    assert_eq!(deliveries[0]["content"], r#"{"deploy":"ok"}"#);
    assert_eq!(emulator.counts(), json!({ "alice": 1, "bob": 1 }));

    // --content and --notification are one or the other.
    let out = run(&[
        "send",
        "--notification",
        path.to_str().unwrap(),
        "--content",
        "x",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--content"), "{out:?}");
}

#[test]
fn an_invalid_notification_exits_1_naming_the_field_and_limit_and_sends_nothing() {
    let emulator = Emulator::start();
    let long = "x".repeat(4097);
    let out = run(&[
        "send",
        "--to",
        "alice",
        "--content",
        &long,
        "--from",
        "ops-bot",
        "--base-url",
        &emulator.url,
        "--json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.json(),
        json!({ "error": {
            "code": "too_long",
            "message": "`content` must be at most 4096 characters, got 4097",
            "field": "content", "limit": 4096
        }})
    );
    assert!(emulator.requests().is_empty());
}

#[test]
fn bad_arguments_are_usage_errors_naming_the_flag() {
    let creds = [("YUNXIN_APP_KEY", KEY), ("YUNXIN_APP_SECRET", SECRET)];
    /// Arguments, environment, and the flag or variable the error names.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["send", "--to", "alice"], &creds, "--content"),
        (
            &[
                "send",
                "--to",
                "a",
                "--content",
                "x",
                "--from",
                "b",
                "--retries",
                "many",
            ],
            &creds,
            "--retries",
        ),
        (
            &[
                "send",
                "--to",
                "a",
                "--content",
                "x",
                "--from",
                "b",
                "--base-url",
                "ftp://x",
            ],
            &creds,
            "--base-url",
        ),
        (&["send", "--content", "x", "--from", "b"], &creds, "--to"),
        (&["send", "--to", "a", "--content", "x"], &creds, "--from"),
        (
            &[
                "send",
                "--to",
                "a",
                "--content",
                "x",
                "--from",
                "b",
                "--frm",
                "c",
            ],
            &creds,
            "--frm",
        ),
        (
            &[
                "send",
                "--to",
                "a",
                "--content",
                "x",
                "--from",
                "b",
                "--to-file",
                "missing.txt",
            ],
            &creds,
            "--to-file",
        ),
        (
            &["send", "--to", "a", "--content", "x", "--from", "b"],
            &[("YUNXIN_APP_KEY", KEY)],
            "YUNXIN_APP_SECRET",
        ),
        (
            &["sign"],
            &[("YUNXIN_APP_SECRET", SECRET)],
            "YUNXIN_APP_KEY",
        ),
        (&["sign", "--curl"], &creds, "--body"),
        (&["verify-callback", "--header", "AppKey"], &creds, "AppKey"),
    ];
    for (args, env, flag) in cases {
        let out = run_with(args, env, None);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr.starts_with("yunxin-edge: ") && out.stderr.contains(flag),
            "{args:?} should name {flag}: {out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
    }
    // With --json, the error is JSON on stdout.
    let out = run_with(&["send", "--to", "a", "--json"], &creds, None);
    assert_eq!(out.code, 2);
    assert_eq!(out.json()["error"]["code"], "usage");
}

#[test]
fn help_documents_the_flags_the_variables_and_the_exit_codes() {
    let out = run(&["send", "--help"]);
    assert_eq!(out.code, 0, "{out:?}");
    for text in [
        "--to <IDS>",
        "--to-file <FILE>",
        "--content <TEXT>",
        "--from <ACCOUNT>",
        "--base-url <URL>",
        "YUNXIN_APP_KEY and YUNXIN_APP_SECRET",
        "3 some were not",
        "4 Yunxin refused",
    ] {
        assert!(out.stdout.contains(text), "no {text:?} in {}", out.stdout);
    }
    let out = run(&["--help"]);
    for text in ["send", "sign", "verify-callback", "render", "check"] {
        assert!(out.stdout.contains(text), "no {text:?} in {}", out.stdout);
    }
}

// --- sign -------------------------------------------------------------------

#[test]
fn sign_gives_the_reference_checksum() {
    // The reference's test vector: SHA1("secret" + "abc" + "1443592222").
    let env = [("YUNXIN_APP_KEY", "K"), ("YUNXIN_APP_SECRET", "secret")];
    let out = run_with(
        &["sign", "--nonce", "abc", "--cur-time", "1443592222"],
        &env,
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "AppKey: K\nNonce: abc\nCurTime: 1443592222\nCheckSum: 6461e65304e590d2268093aa1d290482274995b9\n"
    );
    let out = run_with(&["sign", "--json"], &env, None);
    let headers = out.json();
    assert_eq!(headers["AppKey"], "K");
    assert_eq!(headers["Nonce"].as_str().unwrap().len(), 32);
}

/// The requests of `sign --json` for `notification`.
fn signed_requests(emulator: &Emulator, notification: &Value, extra: &[&str]) -> Vec<Value> {
    let dir = scratch("sign");
    let path = dir.join("notification.json");
    std::fs::write(&path, notification.to_string()).unwrap();
    let mut args = vec![
        "sign",
        "--body",
        path.to_str().unwrap(),
        "--base-url",
        &emulator.url,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.code, 0, "{out:?}");
    if extra.contains(&"--json") {
        out.json()["requests"].as_array().unwrap().clone()
    } else {
        vec![Value::String(out.stdout)]
    }
}

/// POSTs a request as given, returning Yunxin's answer.
fn post(url: &str, headers: &[(String, String)], body: &str) -> Value {
    let mut request = ureq::post(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = request.send(body).expect("the emulator answers");
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

#[test]
fn signed_calls_are_accepted_by_the_emulator() {
    let emulator = Emulator::start();
    let receivers: Vec<String> = (0..600).map(|i| format!("u{i}")).collect();
    let notification =
        json!({ "sender_id": "ops-bot", "receiver_ids": receivers, "content": "hi" });
    let requests = signed_requests(&emulator, &notification, &["--json"]);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["receivers"], 500);
    assert_eq!(requests[1]["receivers"], 100);
    for request in &requests {
        let headers: Vec<(String, String)> = request["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .collect();
        let answer = post(
            request["url"].as_str().unwrap(),
            &headers,
            request["body"].as_str().unwrap(),
        );
        assert_eq!(answer["code"], 200, "{answer}");
    }
    assert_eq!(emulator.counts().as_object().unwrap().len(), 600);
}

#[test]
fn the_curl_command_survives_the_shell() {
    let emulator = Emulator::start();
    // Quotes, `$` and a backslash: all must reach curl unexpanded.
    let content = r#"it's $HOME and `id` \n"#;
    let notification =
        json!({ "sender_id": "ops-bot", "receiver_ids": ["alice"], "content": content });
    let command = signed_requests(&emulator, &notification, &["--curl"]).remove(0);
    let command = command.as_str().unwrap();
    assert!(command.starts_with("curl -sS -X POST '"), "{command}");

    // A stand-in `curl` that prints its arguments, NUL-separated: what the
    // shell made of the command.
    let bin = scratch("curl");
    let fake = bin.join("curl");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.0.display()))
        .output()
        .expect("sh runs");
    assert!(output.status.success());
    let argv: Vec<String> = output
        .stdout
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8(arg.to_vec()).unwrap())
        .collect();
    assert_eq!(argv[..3], ["-sS", "-X", "POST"]);
    let url = &argv[3];
    let mut headers = Vec::new();
    let mut body = None;
    let mut rest = argv[4..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().expect("a flag's value");
        match flag.as_str() {
            "-H" => {
                let (name, value) = value.split_once(": ").unwrap();
                headers.push((name.to_owned(), value.to_owned()));
            }
            "--data-raw" => body = Some(value.clone()),
            other => panic!("unexpected {other}"),
        }
    }
    let body = body.expect("a body");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["content"],
        content
    );
    let answer = post(url, &headers, &body);
    assert_eq!(answer["code"], 200, "{answer}");
    assert_eq!(emulator.counts(), json!({ "alice": 1 }));
}

// --- verify-callback --------------------------------------------------------

/// MD5 of `body` and `SHA1(secret + MD5 + cur_time)`, computed by Node's
/// crypto, independently of the Rust code under test.
fn callback_signature(body: &[u8], secret: &str, cur_time: &str) -> (String, String) {
    let dir = scratch("callback");
    let path = dir.join("signed-body");
    std::fs::write(&path, body).unwrap();
    let script = "const c = require('crypto');\
        const md5 = c.createHash('md5').update(require('fs').readFileSync(process.argv[1])).digest('hex');\
        console.log(md5, c.createHash('sha1').update(process.argv[2] + md5 + process.argv[3]).digest('hex'));";
    let output = Command::new("node")
        .args(["-e", script])
        .arg(&path)
        .args([secret, cur_time])
        .output()
        .expect("node runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let (md5, checksum) = text.trim().split_once(' ').expect("two digests");
    (md5.to_owned(), checksum.to_owned())
}

#[test]
fn verify_callback_accepts_a_signed_callback_and_names_what_fails() {
    let dir = scratch("verify");
    let body = r#"{"eventType":"1","fromAccount":"alice","body":"你好"}"#.as_bytes();
    let body_path = dir.join("body.json");
    std::fs::write(&body_path, body).unwrap();
    let body_arg = body_path.to_str().unwrap();
    let now = now_ms().to_string();
    let (md5, checksum) = callback_signature(body, SECRET, &now);
    let headers = |md5: &str, checksum: &str, cur_time: &str| {
        vec![
            format!("AppKey: {KEY}"),
            format!("CurTime: {cur_time}"),
            format!("MD5: {md5}"),
            format!("CheckSum: {checksum}"),
        ]
    };
    let verify = |body: &str, headers: &[String], extra: &[&str]| {
        let mut args = vec!["verify-callback", "--body", body];
        for header in headers {
            args.extend(["--header", header.as_str()]);
        }
        args.extend_from_slice(extra);
        run(&args)
    };

    let out = verify(body_arg, &headers(&md5, &checksum, &now), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("ok: a callback for app {KEY}\n"));
    let out = verify(body_arg, &headers(&md5, &checksum, &now), &["--json"]);
    assert_eq!(
        out.json(),
        json!({ "ok": true, "app_key": KEY, "cur_time": now })
    );

    // The same headers, as a request head in a file.
    let head = format!(
        "POST /yunxin/callback HTTP/1.1\r\n{}\r\n\r\n",
        headers(&md5, &checksum, &now).join("\r\n")
    );
    let head_path = dir.join("head.txt");
    std::fs::write(&head_path, head).unwrap();
    let out = run(&[
        "verify-callback",
        "--body",
        body_arg,
        "--headers-file",
        head_path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");

    // A changed body, a checksum under another secret, an old CurTime, a
    // missing header: each exits 1 naming what failed.
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, r#"{"eventType":"2"}"#).unwrap();
    let (_, other_checksum) = callback_signature(body, "another-secret", &now);
    let old = (now_ms() - 10 * 60 * 1000).to_string();
    let (_, old_checksum) = callback_signature(body, SECRET, &old);
    let cases = [
        (
            verify(
                tampered.to_str().unwrap(),
                &headers(&md5, &checksum, &now),
                &["--json"],
            ),
            "md5_mismatch",
            "MD5",
            "callback rejected: MD5 does not match the body",
        ),
        (
            verify(body_arg, &headers(&md5, &other_checksum, &now), &["--json"]),
            "checksum_mismatch",
            "CheckSum",
            "callback rejected: CheckSum does not match",
        ),
        (
            verify(body_arg, &headers(&md5, &old_checksum, &old), &["--json"]),
            "cur_time_skew",
            "CurTime",
            "callback rejected: CurTime is ",
        ),
        (
            verify(body_arg, &headers(&md5, &checksum, &now)[..3], &["--json"]),
            "missing_header",
            "CheckSum",
            "callback rejected: the CheckSum header is missing",
        ),
    ];
    for (out, code, field, message) in cases {
        assert_eq!(out.code, 1, "{out:?}");
        let error = &out.json()["error"];
        assert_eq!(error["code"], code, "{out:?}");
        assert_eq!(error["field"], field, "{out:?}");
        assert!(
            error["message"].as_str().unwrap().starts_with(message),
            "{out:?}"
        );
    }

    // And as a line on stderr without --json.
    let out = verify(body_arg, &headers(&md5, &other_checksum, &now), &[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "yunxin-edge: callback rejected: CheckSum does not match\n"
    );
}
