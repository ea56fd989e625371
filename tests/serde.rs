//! The wire format: the seed's examples round-trip, unset fields are absent.

use serde_json::{Value, json};
use yunxin_edge::{BatchNotification, BatchResponse, Content, Error, PushConfig};

const SEED_REQUEST: &str = include_str!("fixtures/seed_request.json");
const SEED_RESPONSE: &str = include_str!("fixtures/seed_response.json");

/// The seed sends `null` for two unset fields; the types leave them out.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn seed_request_round_trips() {
    let parsed = BatchNotification::from_json(SEED_REQUEST).unwrap();
    parsed.validate().unwrap();
    assert_eq!(parsed.sender_id.as_str(), "apifoxtest18");
    assert_eq!(parsed.receiver_ids.len(), 2);
    let push = parsed.push_config.as_ref().unwrap();
    assert_eq!(push.push_payload, None);
    assert_eq!(push.push_forcepush_ids.as_ref().unwrap()[0].as_str(), "30");
    assert_eq!(
        parsed.notification_config.as_ref().unwrap().offline_enabled,
        Some(false)
    );

    let written: Value = serde_json::to_value(&parsed).unwrap();
    let original: Value = serde_json::from_str(SEED_REQUEST).unwrap();
    assert_eq!(written, without_nulls(original));
    let again: BatchNotification = serde_json::from_value(written).unwrap();
    assert_eq!(again, parsed);
}

#[test]
fn seed_response_round_trips() {
    let parsed = BatchResponse::parse(SEED_RESPONSE.as_bytes()).unwrap();
    assert_eq!(parsed.code, 200);
    assert_eq!(parsed.data.success_list[0].as_str(), "hkj1");
    assert_eq!(parsed.data.failed_list[0].error_code, 102404);
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        written,
        serde_json::from_str::<Value>(SEED_RESPONSE).unwrap()
    );
}

#[test]
fn unset_fields_are_absent_not_null() {
    let minimal = BatchNotification::new("bot", Content::text("hi")).to(["u1"]);
    let json = serde_json::to_string(&minimal).unwrap();
    assert_eq!(
        json,
        r#"{"sender_id":"bot","receiver_ids":["u1"],"content":"hi"}"#
    );

    let partial = BatchNotification {
        push_config: Some(PushConfig {
            push_content: Some("deploy done".into()),
            ..Default::default()
        }),
        ..minimal
    };
    let json = serde_json::to_string(&partial).unwrap();
    assert!(
        json.contains(r#""push_config":{"push_content":"deploy done"}"#),
        "{json}"
    );
    assert!(!json.contains("null"), "{json}");
}

#[test]
fn content_object_becomes_a_string() {
    let parsed = BatchNotification::from_json(
        r#"{"sender_id":"bot","receiver_ids":["u1"],"content":{"type":"deploy","ok":true}}"#,
    )
    .unwrap();
    assert_eq!(parsed.content.as_str(), r#"{"type":"deploy","ok":true}"#);
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(written["content"], json!(r#"{"type":"deploy","ok":true}"#));

    let built = Content::json(&json!({"n": 1, "s": "中文"})).unwrap();
    assert_eq!(built.as_str(), r#"{"n":1,"s":"中文"}"#);
}

#[test]
fn both_notification_config_spellings_and_forcepush_enable() {
    let all = json!({
        "sender_id": "bot", "receiver_ids": ["u1"], "content": "x",
        "push_config": {"push_forcepush_enable": true},
        "notification_config": {
            "offline_enabled": true, "unread_enabled": false,
            "notification_enabled": true, "notification_extension": "ext",
            "high_priority": 1, "high_priority_policy": 2
        }
    });
    let parsed: BatchNotification = serde_json::from_value(all.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), all);
}

#[test]
fn unknown_fields_and_bad_json_are_named() {
    let err =
        BatchNotification::from_json(r#"{"sender_id":"bot","recevier_ids":["u1"]}"#).unwrap_err();
    assert_eq!(err.field(), Some("recevier_ids"));
    assert!(
        err.to_string().contains("unknown field `recevier_ids`"),
        "{err}"
    );

    let err = BatchNotification::from_json("{\"sender_id\": \n \"x\",").unwrap_err();
    assert!(matches!(err, Error::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn the_parser_names_the_json_path_of_the_bad_value() {
    let cases = [
        (r#"{"sender_id":12}"#, "sender_id"),
        (r#"{"receiver_ids":["a","b",3]}"#, "receiver_ids[2]"),
        (
            r#"{"push_config":{"push_enabled":"yes"}}"#,
            "push_config.push_enabled",
        ),
        (
            r#"{"push_config":{"push_forcepush_ids":["a",null]}}"#,
            "push_config.push_forcepush_ids[1]",
        ),
        (
            r#"{"notification_config":{"bogus":1}}"#,
            "notification_config.bogus",
        ),
        (r#"["bot",["u1"],"hi"]"#, "."),
        (r#"  "text""#, "."),
    ];
    for (json, path) in cases {
        let err = BatchNotification::from_json(json).unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{json}: {err:?}");
        assert_eq!(err.field(), Some(path), "{json}: {err}");
    }
    let err = BatchNotification::from_json(r#"{"sender_id":"a"} x"#).unwrap_err();
    assert!(matches!(err, Error::Syntax { .. }), "{err:?}");
}

#[test]
fn null_means_absent_and_null_content_is_missing() {
    let parsed = BatchNotification::from_json(
        r#"{"sender_id":"bot","receiver_ids":["u1"],"content":null,"sound":null,"push_config":null}"#,
    )
    .unwrap();
    assert_eq!((&parsed.sound, &parsed.push_config), (&None, &None));
    let err = parsed.validate().unwrap_err();
    assert_eq!(
        err,
        Error::Missing {
            field: "content".into()
        }
    );
}

#[test]
fn responses_tolerate_missing_null_and_extra_fields() {
    for body in [
        r#"{"code":200,"msg":"success"}"#,
        r#"{"code":200,"msg":"success","data":null}"#,
        r#"{"code":200,"msg":null,"data":{"success_list":null,"failed_list":null}}"#,
        r#"{"code":200,"data":{"success_list":["a"]},"extra":{"x":1},"traceId":"t"}"#,
    ] {
        let parsed = BatchResponse::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.code, 200, "{body}");
        assert!(parsed.data.failed_list.is_empty(), "{body}");
    }
    // The seed's schema says failed_list holds strings: accepted too.
    let strings = BatchResponse::parse(br#"{"code":200,"data":{"failed_list":["x1"]}}"#).unwrap();
    assert_eq!(strings.data.failed_list[0].account_id.as_str(), "x1");

    let err = BatchResponse::parse(b"<html>502 Bad Gateway</html>").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the response is not Yunxin JSON"),
        "{err}"
    );
}

#[test]
fn object_content_is_forwarded_exactly_as_sent() {
    let json = r#"{"sender_id":"bot","receiver_ids":["u1"],"content":{"big":123456789012345678901234567890,"e":1E2,"neg":-0,"s":"通知"}}"#;
    let parsed = BatchNotification::from_json(json).unwrap();
    assert_eq!(
        parsed.content.as_str(),
        r#"{"big":123456789012345678901234567890,"e":1E2,"neg":-0,"s":"通知"}"#
    );
    // A string is taken as its text, escapes resolved.
    let parsed = BatchNotification::from_json(r#"{"content":"a\"b\u901a"}"#).unwrap();
    assert_eq!(parsed.content.as_str(), "a\"b通");
    // Any other deserialiser re-serialises the parsed value (an f64).
    let parsed: BatchNotification = serde_json::from_str(json).unwrap();
    assert!(parsed.content.as_str().contains("e+29"), "{parsed:?}");
}
