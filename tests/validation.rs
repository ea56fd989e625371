//! Every documented limit, at the limit and one past it.

use yunxin_edge::{AccountId, BatchNotification, Content, Error, PushConfig};

fn valid() -> BatchNotification {
    BatchNotification::new("sender", Content::text("hello")).to(["alice", "bob"])
}

fn assert_too_long(result: Result<(), Error>, field: &str, limit: usize, actual: usize) {
    let err = result.expect_err(field);
    assert_eq!(
        err,
        Error::TooLong {
            field: field.to_owned().into(),
            limit,
            actual
        },
        "{err}"
    );
    assert_eq!(err.code(), "too_long");
    assert_eq!(err.field(), Some(field));
    assert_eq!(err.limit(), Some(limit));
    let message = err.to_string();
    assert!(
        message.contains(field) && message.contains(&limit.to_string()),
        "{message}"
    );
}

#[test]
fn a_valid_notification_passes() {
    valid().validate().unwrap();
}

#[test]
fn sender_is_required() {
    let mut n = valid();
    n.sender_id = AccountId::new("");
    let err = n.validate().unwrap_err();
    assert_eq!(err.to_string(), "`sender_id` is required");
    let parsed = BatchNotification::from_json(r#"{"receiver_ids":["a"],"content":"x"}"#).unwrap();
    assert_eq!(parsed.validate().unwrap_err().field(), Some("sender_id"));
}

#[test]
fn at_least_one_receiver() {
    let err = BatchNotification::new("s", Content::text("x"))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`receiver_ids` must hold at least 1 item(s), got 0"
    );
    assert_eq!(err.limit(), Some(1));
}

#[test]
fn account_ids_are_1_to_32_chars_without_whitespace() {
    let mut n = valid();
    n.receiver_ids.push(AccountId::new("x".repeat(32)));
    n.validate().unwrap();
    n.receiver_ids.push(AccountId::new("y".repeat(33)));
    assert_too_long(n.validate(), "receiver_ids[3]", 32, 33);

    let mut n = valid();
    n.receiver_ids.insert(1, AccountId::new("has space"));
    let err = n.validate().unwrap_err();
    assert_eq!(err.field(), Some("receiver_ids[1]"));
    assert!(err.to_string().contains("whitespace"), "{err}");

    // Invisible format characters (Unicode Cf): two ids that look alike.
    for invisible in ["\u{200B}", "\u{202E}", "\u{FEFF}", "\u{00AD}", "\u{E0041}"] {
        let mut n = valid();
        n.receiver_ids
            .push(AccountId::new(format!("alice{invisible}")));
        let err = n.validate().unwrap_err();
        assert_eq!(err.field(), Some("receiver_ids[2]"), "{invisible:?}");
        assert!(err.to_string().contains("format characters"), "{err}");
        assert!(err.to_string().contains("\\u{"), "shown escaped: {err}");
    }
    // Letters of any script are fine.
    let mut n = valid();
    n.receiver_ids.push(AccountId::new("用户_é"));
    n.validate().unwrap();

    let mut n = valid();
    n.receiver_ids.push(AccountId::new(""));
    assert_eq!(
        n.validate().unwrap_err().to_string(),
        "`receiver_ids[2]` is required"
    );

    let mut n = valid();
    n.sender_id = AccountId::new("tab\there");
    assert_eq!(n.validate().unwrap_err().field(), Some("sender_id"));

    // 32 CJK characters are 96 bytes but 32 characters: allowed.
    let mut n = valid();
    n.receiver_ids = vec![AccountId::new("用".repeat(32))];
    n.validate().unwrap();
}

#[test]
fn content_is_required_and_at_most_4096_characters() {
    let mut n = valid();
    n.content = Content::text("");
    assert_eq!(
        n.validate().unwrap_err().to_string(),
        "`content` is required"
    );

    n.content = Content::text("通".repeat(4096)); // 12,288 bytes, 4,096 characters
    n.validate().unwrap();
    n.content = Content::text("通".repeat(4097));
    assert_too_long(n.validate(), "content", 4096, 4097);
}

#[test]
fn sound_is_at_most_30() {
    let mut n = valid();
    n.sound = Some("s".repeat(30));
    n.validate().unwrap();
    n.sound = Some("声".repeat(31));
    assert_too_long(n.validate(), "sound", 30, 31);
}

/// Sets one text field of a push config.
type SetText = fn(&mut PushConfig, String);

#[test]
fn push_texts_are_bounded() {
    let cases: [(&str, usize, SetText); 3] = [
        ("push_config.push_content", 500, |p, s| {
            p.push_content = Some(s)
        }),
        ("push_config.push_payload", 2048, |p, s| {
            p.push_payload = Some(s)
        }),
        ("push_config.push_forcepush_content", 500, |p, s| {
            p.push_forcepush_content = Some(s)
        }),
    ];
    for (field, limit, set) in cases {
        let mut push = PushConfig::default();
        set(&mut push, "推".repeat(limit));
        let mut n = valid();
        n.push_config = Some(push.clone());
        n.validate()
            .unwrap_or_else(|e| panic!("{field} at the limit: {e}"));
        set(&mut push, "推".repeat(limit + 1));
        n.push_config = Some(push);
        assert_too_long(n.validate(), field, limit, limit + 1);
    }
}

#[test]
fn at_most_100_forcepush_ids() {
    let ids = |n: usize| Some((0..n).map(|i| AccountId::new(format!("f{i}"))).collect());
    let mut n = valid();
    n.push_config = Some(PushConfig {
        push_forcepush_ids: ids(100),
        ..Default::default()
    });
    n.validate().unwrap();
    n.push_config = Some(PushConfig {
        push_forcepush_ids: ids(101),
        ..Default::default()
    });
    let err = n.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`push_config.push_forcepush_ids` must hold at most 100 items, got 101"
    );
    assert_eq!((err.code(), err.limit()), ("too_many", Some(100)));
}

#[test]
fn duplicates_are_removed_case_insensitively_first_kept() {
    let n = BatchNotification::new("s", Content::text("x"))
        .to(["Alice", "bob", "alice", "BOB", "carol", "Alice"]);
    let unique: Vec<_> = n
        .unique_receivers()
        .into_iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(unique, ["Alice", "bob", "carol"]);
}
