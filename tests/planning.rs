//! Planning: ⌈n/500⌉ signed calls, no receiver lost or repeated, each call
//! re-verifiable the way Yunxin verifies it.

use std::collections::HashSet;

use serde_json::Value;
use yunxin_edge::{
    AccountId, BatchNotification, Content, Credentials, CurTime, Endpoint, Error, Nonce, Plan,
    PlanOptions, SignedRequest, TraceId,
};

const SECRET: &str = "plan-test-secret";

fn notification(n: usize) -> BatchNotification {
    BatchNotification::new("bot", Content::text("deploy finished"))
        .to((0..n).map(|i| format!("user{i}")))
}

fn header<'a>(request: &'a SignedRequest, name: &str) -> &'a str {
    let found: Vec<_> = request.headers.iter().filter(|(n, _)| *n == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name} header");
    &found[0].1
}

/// Yunxin's check, written from the reference rather than through the crate.
fn verify_like_yunxin(request: &SignedRequest, now: u64) {
    use sha1::{Digest, Sha1};
    let nonce = header(request, "Nonce");
    let cur_time = header(request, "CurTime");
    assert!(nonce.len() <= 128);
    let sent: u64 = cur_time.parse().expect("CurTime is decimal seconds");
    assert!(
        sent <= now && now - sent <= 300,
        "CurTime {sent} vs now {now}"
    );
    let expected = hex::encode(Sha1::digest(
        format!("{SECRET}{nonce}{cur_time}").as_bytes(),
    ));
    assert_eq!(header(request, "CheckSum"), expected);
    assert_eq!(header(request, "AppKey"), "plan-app");
}

fn plan_and_check(n: usize) {
    let creds = Credentials::new("plan-app", SECRET);
    let plan = Plan::new(&notification(n), &PlanOptions::default()).unwrap();
    let requests = plan.sign(&creds, &Endpoint::default()).unwrap();
    let now = CurTime::now().0;

    assert_eq!(requests.len(), n.div_ceil(500), "n = {n}");
    let mut seen = HashSet::new();
    let mut nonces = HashSet::new();
    let mut traces = HashSet::new();
    for (planned, request) in plan.requests().iter().zip(&requests) {
        verify_like_yunxin(request, now);
        assert!(
            nonces.insert(header(request, "Nonce").to_owned()),
            "nonce reused"
        );
        assert!(
            traces.insert(header(request, "X-custom-traceid").to_owned()),
            "trace reused"
        );
        assert_eq!(request.method, "POST");
        assert_eq!(
            header(request, "Content-Type"),
            "application/json;charset=utf-8"
        );

        let body: Value = serde_json::from_str(&request.body).unwrap();
        let ids: Vec<&str> = body["receiver_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            (1..=500).contains(&ids.len()),
            "{} receivers in one call",
            ids.len()
        );
        assert_eq!(body["sender_id"], "bot");
        assert_eq!(body["content"], "deploy finished");
        let planned_ids: Vec<&str> = planned.receiver_ids.iter().map(AccountId::as_str).collect();
        assert_eq!(ids, planned_ids);
        for id in ids {
            assert!(seen.insert(id.to_owned()), "{id} planned twice");
        }
    }
    let expected: HashSet<String> = (0..n).map(|i| format!("user{i}")).collect();
    assert_eq!(seen, expected, "every receiver planned exactly once");
}

#[test]
fn zero_receivers_is_an_error_not_an_empty_plan() {
    let err = Plan::new(&notification(0), &PlanOptions::default()).unwrap_err();
    assert_eq!(err.field(), Some("receiver_ids"));
}

#[test]
fn one() {
    plan_and_check(1);
}

#[test]
fn exactly_500_is_one_call() {
    plan_and_check(500);
}

#[test]
fn five_hundred_and_one_is_two_calls() {
    plan_and_check(501);
}

#[test]
fn one_thousand() {
    plan_and_check(1000);
}

#[test]
fn one_hundred_thousand() {
    plan_and_check(100_000);
}

#[test]
fn duplicates_are_removed_before_splitting() {
    // 600 ids, but only 500 distinct accounts once case is folded.
    let ids = (0..500)
        .map(|i| format!("User{i}"))
        .chain((0..100).map(|i| format!("user{i}")));
    let n = BatchNotification::new("bot", Content::text("x")).to(ids);
    let plan = Plan::new(&n, &PlanOptions::default()).unwrap();
    assert_eq!(plan.requests().len(), 1);
    assert_eq!(plan.receivers().count(), 500);
    assert_eq!(plan.receivers().next().unwrap().as_str(), "User0");
}

#[test]
fn event_id_gives_the_same_trace_ids_on_every_plan() {
    let options = PlanOptions::for_event("evt_7");
    let a = Plan::new(&notification(1201), &options).unwrap();
    let b = Plan::new(&notification(1201), &options).unwrap();
    let creds = Credentials::new("plan-app", SECRET);
    let traces = |p: &Plan| {
        p.sign(&creds, &Endpoint::default())
            .unwrap()
            .into_iter()
            .map(|r| r.trace_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(traces(&a), traces(&b));
    assert_eq!(traces(&a).into_iter().collect::<HashSet<_>>().len(), 3);

    let random = Plan::new(&notification(1201), &PlanOptions::default()).unwrap();
    assert_ne!(traces(&random), traces(&a));
}

#[test]
fn a_retry_is_signed_anew_with_the_same_trace_id() {
    let creds = Credentials::new("plan-app", SECRET);
    let plan = Plan::new(&notification(3), &PlanOptions::default()).unwrap();
    let request = &plan.requests()[0];
    let endpoint = Endpoint::default();
    let trace_id = TraceId::derived("evt_3", 0, 0);
    let sign = |time, nonce| {
        SignedRequest::at(
            &creds,
            &endpoint,
            trace_id.clone(),
            request.body.clone(),
            CurTime(time),
            Nonce::new(nonce).unwrap(),
        )
    };
    let first = sign(1000, "n1");
    let retry = sign(1100, "n2");
    assert_eq!(
        header(&first, "X-custom-traceid"),
        header(&retry, "X-custom-traceid")
    );
    assert_ne!(header(&first, "CheckSum"), header(&retry, "CheckSum"));
    assert_eq!(first.body, retry.body);
}

#[test]
fn max_receivers_is_enforced_after_deduplication() {
    let options = PlanOptions::default().max_receivers(1000);
    assert!(Plan::new(&notification(1000), &options).is_ok());
    let err = Plan::new(&notification(1001), &options).unwrap_err();
    assert_eq!(
        err,
        Error::TooMany {
            field: "receiver_ids".into(),
            limit: 1000,
            actual: 1001
        }
    );
}

#[test]
fn invalid_notifications_are_not_planned() {
    let mut n = notification(10);
    n.receiver_ids[4] = AccountId::new("x".repeat(33));
    let err = Plan::new(&n, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.field(), Some("receiver_ids[4]"));
}

#[test]
fn endpoints() {
    let url = |base: &str| Endpoint::new(base).map(|e| e.batch_url().to_owned());
    assert_eq!(
        Endpoint::default().batch_url(),
        "https://open.yunxinapi.com/im/v2/custom_notification/batch"
    );
    assert_eq!(
        url("https://open-sg.yunxinapi.com/").unwrap(),
        "https://open-sg.yunxinapi.com/im/v2/custom_notification/batch"
    );
    assert_eq!(
        url("https://api-cn.yunxinapi.com/nimserver").unwrap(),
        "https://api-cn.yunxinapi.com/nimserver/im/v2/custom_notification/batch"
    );
    assert_eq!(
        url("http://127.0.0.1:9100").unwrap(),
        "http://127.0.0.1:9100/im/v2/custom_notification/batch"
    );
    // The base URL is kept as given, less a trailing slash.
    let base = |url: &str| Endpoint::new(url).unwrap().base_url().to_owned();
    assert_eq!(
        base("https://open-sg.yunxinapi.com/"),
        "https://open-sg.yunxinapi.com"
    );
    assert_eq!(
        base("https://api-cn.yunxinapi.com/nimserver"),
        "https://api-cn.yunxinapi.com/nimserver"
    );
    assert_eq!(Endpoint::default().base_url(), "https://open.yunxinapi.com");
    for bad in [
        "",
        "open.yunxinapi.com",
        "ftp://x",
        "https://",
        "https://x?y=1",
        "https://a b",
    ] {
        let err = Endpoint::new(bad).unwrap_err();
        assert_eq!(err.field(), Some("base_url"), "{bad}");
    }
}

#[test]
fn repeated_receivers_are_reported_as_not_attempted_naming_the_one_kept() {
    let n = BatchNotification::new("bot", Content::text("x")).to(["Ann", "bo", "ann", "ANN", "bo"]);
    let plan = Plan::new(&n, &PlanOptions::default()).unwrap();
    assert_eq!(plan.receivers().count(), 2);
    let report = plan.report(&[]);
    let repeats: Vec<(&str, &str)> = report
        .not_attempted
        .iter()
        .filter(|n| n.reason.starts_with("duplicate"))
        .map(|n| (n.account_id.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        repeats,
        [
            ("ann", "duplicate of Ann"),
            ("ANN", "duplicate of Ann"),
            ("bo", "duplicate of bo")
        ]
    );
    assert_eq!(report.len(), 5, "every id sent is named once");
}
