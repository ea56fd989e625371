//! CheckSum vectors computed outside Rust, and the shape of signed headers.

use yunxin_edge::{AppSecret, Credentials, CurTime, Nonce, TraceId, checksum};

const NONCE_128: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";

/// (secret, nonce, cur_time, expected) — each computed with an independent tool,
/// named beside it.
const VECTORS: &[(&str, &str, &str, &str)] = &[
    // printf %s secretabc1443592222 | sha1sum  (the reference's vector)
    (
        "secret",
        "abc",
        "1443592222",
        "6461e65304e590d2268093aa1d290482274995b9",
    ),
    // printf %s '密钥🔑ñonce-中文1700000000' | sha1sum
    (
        "密钥🔑",
        "ñonce-中文",
        "1700000000",
        "bbe240541bd073ca76f5c400b8f0d23f87f2a631",
    ),
    // python3: hashlib.sha1(('Ωmega-secret'+'0123…cdef'+'1764201600').encode()).hexdigest()
    (
        "Ωmega-secret",
        "0123456789abcdef0123456789abcdef",
        "1764201600",
        "c0a0e46e8e990a910d18c85795dd6c38142972b6",
    ),
    // python3: hashlib.sha1(('app-secret'+'n'*128+'0').encode()).hexdigest()
    (
        "app-secret",
        NONCE_128,
        "0",
        "ee9d789e29558bdfbc59c9cacdff4dda82e158f0",
    ),
];

#[test]
fn checksum_matches_independent_tools() {
    for (secret, nonce, cur_time, expected) in VECTORS {
        assert_eq!(
            checksum(&AppSecret::new(*secret), nonce, cur_time),
            *expected,
            "secret {secret:?}, nonce {nonce:?}, time {cur_time}"
        );
    }
}

#[test]
fn sign_at_is_deterministic_and_uses_the_documented_headers() {
    let creds = Credentials::new("key1", "secret");
    let signed = creds.sign_at(CurTime(1443592222), Nonce::new("abc").unwrap());
    let pairs = signed.pairs();
    assert_eq!(
        pairs,
        [
            ("AppKey", "key1"),
            ("Nonce", "abc"),
            ("CurTime", "1443592222"),
            ("CheckSum", "6461e65304e590d2268093aa1d290482274995b9"),
        ]
    );
}

#[test]
fn random_nonces_are_32_lowercase_hex_and_differ() {
    let a = Nonce::random().unwrap();
    let b = Nonce::random().unwrap();
    assert_eq!(a.as_str().len(), 32);
    assert!(
        a.as_str()
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    );
    assert_ne!(a, b);
}

#[test]
fn default_clock_is_unix_seconds() {
    // Between 2024-01-01 and 2100-01-01: seconds, not milliseconds.
    let now = CurTime::now().0;
    assert!((1_704_067_200..4_102_444_800).contains(&now), "{now}");
    let signed = Credentials::new("k", "s").sign().unwrap();
    assert_eq!(signed.cur_time.len(), 10);
}

#[test]
fn nonce_limit_is_128_characters() {
    assert!(Nonce::new("n".repeat(128)).is_ok());
    let err = Nonce::new("n".repeat(129)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`Nonce` must be at most 128 characters, got 129"
    );
    assert!(Nonce::new("").is_err());
}

#[test]
fn secrets_never_print() {
    let creds = Credentials::new("visible-key", "hunter2-very-secret");
    let debug = format!("{creds:?}");
    assert!(debug.contains("visible-key"));
    assert!(!debug.contains("hunter2"), "{debug}");
    let signed = format!("{:?}", creds.sign().unwrap());
    assert!(!signed.contains("hunter2"), "{signed}");
}

#[test]
fn derived_trace_ids_are_stable_and_distinct() {
    let a0 = TraceId::derived("evt_1", 0, 0);
    assert_eq!(a0, TraceId::derived("evt_1", 0, 0));
    assert_ne!(a0, TraceId::derived("evt_1", 1, 0));
    assert_ne!(a0, TraceId::derived("evt_2", 0, 0));
    // "evt_1" + chunk 10 must not collide with "evt_11" + chunk 0.
    assert_ne!(
        TraceId::derived("evt_1", 10, 0),
        TraceId::derived("evt_11", 0, 0)
    );
    let s = a0.as_str();
    assert_eq!(s.len(), 36);
    assert_eq!(s.matches('-').count(), 4);
    assert_ne!(TraceId::random().unwrap(), TraceId::random().unwrap());
    // Follow-up generations of one call get ids of their own.
    assert_ne!(a0, TraceId::derived("evt_1", 0, 1));
    assert_ne!(
        TraceId::derived("evt_1", 0, 1),
        TraceId::derived("evt_1", 0, 2)
    );
    assert_ne!(
        TraceId::derived("evt_1", 1, 0),
        TraceId::derived("evt_1", 0, 1)
    );
}

#[test]
fn header_values_refuse_control_characters() {
    for bad in ["a\r\nX-Injected: 1", "a\nb", "a\0b", "a\u{7f}"] {
        let err = Nonce::new(bad).unwrap_err();
        assert_eq!(err.field(), Some("Nonce"), "{bad:?}");
        assert!(err.to_string().contains("control characters"), "{err}");
        assert_eq!(
            TraceId::new(bad).unwrap_err().field(),
            Some("X-custom-traceid")
        );
        assert_eq!(
            Credentials::try_new(bad, "s").unwrap_err().field(),
            Some("AppKey")
        );
    }
    assert_eq!(TraceId::new("").unwrap_err().code(), "missing");
    assert_eq!(
        TraceId::new("t".repeat(257)).unwrap_err().limit(),
        Some(256)
    );
    assert!(TraceId::new("evt-1/0").is_ok());
    assert!(Credentials::try_new("key", "any secret\n is only hashed").is_ok());
}
