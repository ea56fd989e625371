//! Outcomes, retry verdicts and the per-receiver report.

use std::collections::HashMap;

use proptest::prelude::*;
use yunxin_edge::{
    AccountId, BatchNotification, Content, FailedReceiver, Outcome, Plan, PlanOptions, Report,
    RetryVerdict,
};

fn ids(names: &[&str]) -> Vec<AccountId> {
    names.iter().map(|n| AccountId::new(*n)).collect()
}

#[test]
fn classification() {
    let delivered = Outcome::from_http(
        200,
        br#"{"code":200,"msg":"ok","data":{"success_list":["a"]}}"#,
    );
    assert!(matches!(delivered, Outcome::Delivered { .. }));

    let seed = Outcome::from_http(200, include_bytes!("fixtures/seed_response.json"));
    let Outcome::PartialFailure { failed, .. } = &seed else {
        panic!("{seed:?}")
    };
    assert_eq!(failed[0].error_code, 102404);

    let limited = Outcome::from_http(200, br#"{"code":416,"msg":"frequency control"}"#);
    assert_eq!(
        limited,
        Outcome::Rejected {
            code: 416,
            msg: "frequency control".into()
        }
    );

    let gateway = Outcome::from_http(502, b"Bad Gateway");
    assert_eq!(gateway.retry(), RetryVerdict::Retry { min_delay_secs: 0 });
    let not_json = Outcome::from_http(200, b"<html>");
    assert!(matches!(
        not_json,
        Outcome::Transport {
            http_status: Some(200),
            ..
        }
    ));
}

#[test]
fn retry_verdicts_follow_the_code_table() {
    assert_eq!(
        RetryVerdict::for_code(416),
        RetryVerdict::Retry { min_delay_secs: 60 }
    );
    for code in [449, 500, 503, 514] {
        assert_eq!(
            RetryVerdict::for_code(code),
            RetryVerdict::Retry { min_delay_secs: 0 },
            "{code}"
        );
    }
    for code in [403, 404, 405, 414, 417, 419, 422, 431] {
        assert_eq!(
            RetryVerdict::for_code(code),
            RetryVerdict::Permanent,
            "{code}"
        );
    }
    for code in [102404, 102421, 102422, 102426, 107410] {
        assert_eq!(
            RetryVerdict::for_code(code),
            RetryVerdict::Permanent,
            "{code}"
        );
    }
    assert!(
        Outcome::transport("connection reset")
            .retry()
            .is_retryable()
    );
    assert!(Outcome::from_http(503, b"").retry().is_retryable());
    assert!(Outcome::from_http(429, b"").retry().is_retryable());
    assert!(!Outcome::from_http(404, b"").retry().is_retryable());
    assert!(
        !Outcome::from_http(200, br#"{"code":200,"data":{}}"#)
            .retry()
            .is_retryable()
    );
}

#[test]
fn partial_failure_matches_lowercased_ids_and_keeps_the_callers_spelling() {
    let mut report = Report::default();
    let outcome = Outcome::PartialFailure {
        success: ids(&["alice"]),
        failed: vec![FailedReceiver {
            account_id: AccountId::new("bob"),
            error_code: 102404,
            error_msg: "account not exist".into(),
        }],
    };
    report.add(&ids(&["Alice", "BOB", "carol"]), Some(&outcome));
    // carol is absent from both lists: success_list is optional, so delivered.
    assert_eq!(report.delivered, ids(&["Alice", "carol"]));
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].account_id.as_str(), "BOB");
    assert_eq!(report.failed[0].error_code, 102404);
    assert!(!report.failed[0].retryable);
    assert!(!report.has_retryable());
}

#[test]
fn rate_limit_sets_retry_after_60() {
    let plan = Plan::new(
        &BatchNotification::new("s", Content::text("x")).to((0..700).map(|i| format!("u{i}"))),
        &PlanOptions::default(),
    )
    .unwrap();
    let report = plan.report(&[
        Some(Outcome::Rejected {
            code: 416,
            msg: "frequency control".into(),
        }),
        Some(Outcome::from_http(502, b"")),
    ]);
    assert_eq!(report.failed.len(), 700);
    assert!(report.failed.iter().all(|f| f.retryable));
    assert_eq!(report.failed[0].error_code, 416);
    assert_eq!(report.failed[600].error_code, 502);
    assert_eq!(report.retry_after_secs, Some(60));
}

#[test]
fn report_json_shape() {
    let mut report = Report::default();
    report.add(
        &ids(&["a"]),
        Some(&Outcome::Delivered {
            success: ids(&["a"]),
        }),
    );
    report.add(&ids(&["b"]), Some(&Outcome::transport("timed out")));
    report.add(&ids(&["c"]), None);
    report.add(
        &ids(&["d"]),
        Some(&Outcome::answer_lost("connection reset")),
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "delivered": ["a"],
            "failed": [{"account_id": "b", "error_code": 0, "error_msg": "timed out", "retryable": true}],
            "unknown": [{"account_id": "d", "reason": "request sent, answer lost: connection reset"}],
            "not_attempted": [{"account_id": "c", "reason": "not sent"}],
            "retry_after_secs": 0
        })
    );
}

/// A random outcome for a call to `receivers`, answering with lower-cased ids
/// as Yunxin does, sometimes naming strangers and repeating entries.
fn outcome_for(receivers: Vec<AccountId>) -> impl Strategy<Value = Option<Outcome>> {
    let n = receivers.len();
    (
        0..6u8,
        proptest::collection::vec(any::<bool>(), n),
        any::<bool>(),
    )
        .prop_map(move |(kind, fail_mask, noise)| {
            let lower = |id: &AccountId| AccountId::new(id.key());
            match kind {
                0 => None,
                1 => Some(Outcome::transport("reset")),
                2 => Some(Outcome::Rejected {
                    code: 416,
                    msg: "frequency control".into(),
                }),
                _ => {
                    let mut success = Vec::new();
                    let mut failed = Vec::new();
                    for (id, fail) in receivers.iter().zip(&fail_mask) {
                        if *fail {
                            let f = FailedReceiver {
                                account_id: lower(id),
                                error_code: 102404,
                                error_msg: "account not exist".into(),
                            };
                            if noise {
                                failed.push(f.clone());
                            }
                            failed.push(f);
                        } else {
                            success.push(lower(id));
                        }
                    }
                    if noise {
                        success.push(AccountId::new("stranger"));
                        failed.push(FailedReceiver {
                            account_id: AccountId::new("other"),
                            error_code: 102404,
                            error_msg: String::new(),
                        });
                    }
                    Some(Outcome::from_response(yunxin_edge::BatchResponse {
                        code: 200,
                        msg: "success".into(),
                        data: yunxin_edge::ResponseData {
                            success_list: success,
                            failed_list: failed,
                        },
                    }))
                }
            }
        })
}

fn plan_with_outcomes() -> impl Strategy<Value = (Vec<String>, Plan, Vec<Option<Outcome>>)> {
    // Small alphabet and mixed case so duplicates (by case) are common.
    proptest::collection::vec("[a-cA-C0-9]{1,3}", 1..1600).prop_flat_map(|names| {
        let plan = Plan::new(
            &BatchNotification::new("s", Content::text("x")).to(names.iter().cloned()),
            &PlanOptions::default(),
        )
        .unwrap();
        let outcomes: Vec<_> = plan
            .requests()
            .iter()
            .map(|r| outcome_for(r.receiver_ids.clone()))
            .collect();
        (Just(names), Just(plan), outcomes)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_requested_receiver_appears_exactly_once((names, plan, outcomes) in plan_with_outcomes()) {
        let report = plan.report(&outcomes);
        // Each account once, outside the repeats left out as duplicates…
        let mut count: HashMap<String, usize> = HashMap::new();
        let (repeats, not_sent): (Vec<_>, Vec<_>) = report
            .not_attempted
            .iter()
            .partition(|n| n.reason.starts_with("duplicate of "));
        for id in report
            .delivered
            .iter()
            .chain(report.failed.iter().map(|f| &f.account_id))
            .chain(not_sent.iter().map(|n| &n.account_id))
        {
            *count.entry(id.key().into_owned()).or_default() += 1;
        }
        let requested: std::collections::HashSet<String> =
            names.iter().map(|n| n.to_lowercase()).collect();
        prop_assert_eq!(count.len(), requested.len());
        for key in &requested {
            prop_assert_eq!(count.get(key).copied(), Some(1), "{}", key);
        }
        // …and every id the caller sent, repeats included, named once.
        prop_assert_eq!(repeats.len(), names.len() - requested.len());
        prop_assert_eq!(report.len(), names.len());
        prop_assert!(plan.requests().iter().all(|r| r.receiver_ids.len() <= 500));
    }
}
