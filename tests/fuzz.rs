//! Hostile input to the parser and the planner: arbitrary bytes, and
//! arbitrary JSON built from the notification's own field names (which gets
//! much deeper into the parser than random bytes do). Neither may panic;
//! whatever parses and plans must respect the 500-receiver cap.

use proptest::prelude::*;
use serde_json::{Value, json};
use yunxin_edge::{BatchNotification, MAX_RECEIVERS_PER_REQUEST, Plan, PlanOptions};

const FIELDS: &[&str] = &[
    "sender_id",
    "receiver_ids",
    "content",
    "sound",
    "push_config",
    "route_config",
    "notification_config",
    "push_enabled",
    "push_content",
    "push_payload",
    "push_forcepush_ids",
    "offline_enabled",
    "high_priority",
    "bogus",
];

/// Any JSON value, keys drawn mostly from the notification's fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        "[a-zA-Z0-9_\u{200B}\u{202E} ]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(FIELDS).prop_map(str::to_owned), inner),
                0..8
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn plan_if_parsed(bytes: &[u8]) {
    if let Ok(notification) = BatchNotification::from_json(bytes)
        && let Ok(plan) = Plan::new(&notification, &PlanOptions::for_event("fuzz"))
    {
        assert!(
            plan.requests()
                .iter()
                .all(|r| (1..=MAX_RECEIVERS_PER_REQUEST).contains(&r.receiver_ids.len()))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        plan_if_parsed(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        plan_if_parsed(value.to_string().as_bytes());
    }

    #[test]
    fn truncated_notifications_never_panic(cut in 0usize..200, receivers in 1usize..40) {
        let full = json!({
            "sender_id": "bot",
            "receiver_ids": (0..receivers).map(|i| format!("u{i}")).collect::<Vec<_>>(),
            "content": {"n": 1, "s": "通知"},
            "push_config": {"push_content": "x", "push_forcepush_ids": ["a"]},
        })
        .to_string();
        plan_if_parsed(&full.as_bytes()[..cut.min(full.len())]);
    }
}
