//! Each verification scheme against vectors computed outside this code
//! (GitHub's documented example; Python's `hmac` for the others; Standard
//! Webhooks' reference vector lives beside its module): valid, tampered,
//! wrong secret, stale, missing header, rotation.

use std::collections::BTreeMap;

use yunxin_edge_routes::{Scheme, Secret, Signed, VerifyError, verify};

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect()
}

fn check(
    scheme: &Scheme,
    secrets: &[&str],
    headers: &BTreeMap<String, String>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    verify(
        scheme,
        &secrets,
        Some("cb-app"),
        &Signed {
            headers,
            body,
            now_secs: now,
        },
    )
    .map(drop)
}

fn scheme(json: &str) -> Scheme {
    serde_json::from_str(json).unwrap()
}

#[test]
fn github_documented_example() {
    // https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
    let secret = "It's a Secret to Everybody";
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let h = headers(&[("X-Hub-Signature-256", sig), ("X-GitHub-Delivery", "d-1")]);
    let github = scheme(r#"{"scheme":"github"}"#);
    assert_eq!(check(&github, &[secret], &h, b"Hello, World!", 0), Ok(()));
    assert_eq!(
        check(&github, &[secret], &h, b"Hello, World?", 0),
        Err(VerifyError::NoMatch("x-hub-signature-256"))
    );
    assert_eq!(
        check(&github, &["other"], &h, b"Hello, World!", 0),
        Err(VerifyError::NoMatch("x-hub-signature-256"))
    );
    assert_eq!(
        check(&github, &["other", secret], &h, b"Hello, World!", 0),
        Ok(()),
        "rotation"
    );
    assert_eq!(
        check(&github, &[secret], &headers(&[]), b"Hello, World!", 0),
        Err(VerifyError::Missing("x-hub-signature-256"))
    );
    let sha1 = headers(&[("X-Hub-Signature-256", "sha1=abc")]);
    assert_eq!(
        check(&github, &[secret], &sha1, b"x", 0),
        Err(VerifyError::Malformed("x-hub-signature-256"))
    );
}

#[test]
fn stripe_signed_timestamp_and_several_v1() {
    let body = br#"{"id":"evt_1"}"#;
    let v1 = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    let stripe = scheme(r#"{"scheme":"stripe"}"#);
    let header = format!("t=1700000000,v1=00ff,v1={v1},v0=abc");
    let h = headers(&[("Stripe-Signature", &header)]);
    assert_eq!(
        check(&stripe, &["whsec_test_secret"], &h, body, 1700000100),
        Ok(())
    );
    assert_eq!(
        check(&stripe, &["whsec_test_secret"], &h, body, 1700000301),
        Err(VerifyError::TooOld)
    );
    assert_eq!(
        check(&stripe, &["whsec_test_secret"], &h, body, 1699999699),
        Err(VerifyError::TooNew)
    );
    assert_eq!(
        check(&stripe, &["whsec_other"], &h, body, 1700000000),
        Err(VerifyError::NoMatch("stripe-signature"))
    );
    assert_eq!(
        check(&stripe, &["whsec_test_secret"], &h, b"{}", 1700000000),
        Err(VerifyError::NoMatch("stripe-signature"))
    );
}

#[test]
fn generic_hmac_algorithms_encodings_prefix_and_timestamp() {
    let sha512 = "4d948b89a71133e81eb5922b7a2eff649adc1a068cd29c8dd9650946f0e79977511f52e06933619416f70be91b7568c258a037a5d22cd64b00cbc9cab1f981a6";
    let s = scheme(r#"{"scheme":"hmac","header":"X-Sig","algorithm":"sha512","prefix":"sha512="}"#);
    let h = headers(&[("x-sig", &format!("sha512={sha512}"))]);
    assert_eq!(check(&s, &["k"], &h, b"body", 0), Ok(()));
    assert_eq!(
        check(&s, &["k"], &h, b"bodY", 0),
        Err(VerifyError::NoMatch("the configured signature header"))
    );

    let s = scheme(
        r#"{"scheme":"hmac","header":"X-Sig","algorithm":"sha1","encoding":"base64","timestamp_header":"X-Ts"}"#,
    );
    let h = headers(&[
        ("x-sig", "paB3OZG2aQG383Kycr9m5dZCNEc="),
        ("x-ts", "1700000000"),
    ]);
    assert_eq!(check(&s, &["k"], &h, b"body", 1700000000), Ok(()));
    assert_eq!(
        check(&s, &["k"], &h, b"body", 1700000400),
        Err(VerifyError::TooOld)
    );
    let no_ts = headers(&[("x-sig", "paB3OZG2aQG383Kycr9m5dZCNEc=")]);
    assert!(matches!(
        check(&s, &["k"], &no_ts, b"body", 1700000000),
        Err(VerifyError::Missing(_))
    ));
}

#[test]
fn bearer_and_basic_tokens() {
    let bearer = scheme(r#"{"scheme":"bearer"}"#);
    let ok = headers(&[("Authorization", "bearer s3cret")]);
    assert_eq!(check(&bearer, &["old", "s3cret"], &ok, b"", 0), Ok(()));
    assert_eq!(
        check(&bearer, &["s3cre"], &ok, b"", 0),
        Err(VerifyError::NoMatch("authorization"))
    );
    let basic_h = headers(&[("Authorization", "Basic YWxpY2U6cHc=")]); // alice:pw
    assert_eq!(
        check(&bearer, &["s3cret"], &basic_h, b"", 0),
        Err(VerifyError::Malformed("authorization"))
    );
    let basic = scheme(r#"{"scheme":"basic"}"#);
    assert_eq!(check(&basic, &["alice:pw"], &basic_h, b"", 0), Ok(()));
    assert_eq!(
        check(&basic, &["alice:px"], &basic_h, b"", 0),
        Err(VerifyError::NoMatch("authorization"))
    );
}

#[test]
fn yunxin_callbacks_with_the_app_secret() {
    // MD5("{}") and SHA1("cb-secret" + MD5 + CurTime), computed with Python.
    let md5 = "99914b932bd37a50b983c5e7c90ae93b";
    let checksum = "1e80c956de8a43514a7f9368c5bf676d81bf6051";
    let h = headers(&[
        ("AppKey", "cb-app"),
        ("CurTime", "1700000000000"),
        ("MD5", md5),
        ("CheckSum", checksum),
    ]);
    let cb = scheme(r#"{"scheme":"yunxin-callback"}"#);
    assert_eq!(check(&cb, &["cb-secret"], &h, b"{}", 1_700_000_000), Ok(()));
    assert_eq!(
        check(&cb, &["other", "cb-secret"], &h, b"{}", 1_700_000_000),
        Ok(()),
        "rotation"
    );
    assert_eq!(
        check(&cb, &["other"], &h, b"{}", 1_700_000_000),
        Err(VerifyError::NoMatch("checksum"))
    );
    assert_eq!(
        check(&cb, &["cb-secret"], &h, b"{}", 1_700_000_400),
        Err(VerifyError::TooOld)
    );
    assert_eq!(
        check(&cb, &["cb-secret"], &h, b"{ }", 1_700_000_000),
        Err(VerifyError::NoMatch("checksum"))
    );
}

/// Many signatures cost no more than one: past [`MAX_SIGNATURES`] entries or
/// [`MAX_SIGNATURE_HEADER_BYTES`], a header is refused before any MAC, and
/// within them one that matches is found wherever it stands.
#[test]
fn signature_headers_are_bounded_before_any_signature_is_computed() {
    use yunxin_edge_routes::verify::{MAX_SIGNATURE_HEADER_BYTES, MAX_SIGNATURES};

    // The Standard Webhooks reference vector.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let body = br#"{"test": 2432232314}"#;
    let sw = scheme(r#"{"scheme":"standard-webhooks"}"#);
    let signed = |signature: &str| {
        headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", signature),
        ])
    };
    let junk = |n: usize| vec!["v1,AA=="; n].join(" ");

    // The good one last among the most entries allowed: found.
    let within = format!("{} {good}", junk(MAX_SIGNATURES - 1));
    assert_eq!(
        check(&sw, &[secret], &signed(&within), body, 1614265330),
        Ok(())
    );
    // One more entry, or 4,000 of them: refused, good one or not.
    for header in [format!("{} {good}", junk(MAX_SIGNATURES)), junk(4000)] {
        assert_eq!(
            check(&sw, &[secret], &signed(&header), body, 1614265330),
            Err(VerifyError::TooManySignatures("webhook-signature"))
        );
    }
    // Few entries, but too many bytes.
    let long = format!("v1,{} {good}", "A".repeat(MAX_SIGNATURE_HEADER_BYTES));
    assert_eq!(
        check(&sw, &[secret], &signed(&long), body, 1614265330),
        Err(VerifyError::TooManySignatures("webhook-signature"))
    );

    // Stripe's `v1=` entries are bounded the same way.
    let stripe = scheme(r#"{"scheme":"stripe"}"#);
    let many = format!("t=100,{}", vec!["v1=00"; MAX_SIGNATURES + 1].join(","));
    assert_eq!(
        check(
            &stripe,
            &["whsec_x"],
            &headers(&[("stripe-signature", &many)]),
            b"{}",
            100
        ),
        Err(VerifyError::TooManySignatures("stripe-signature"))
    );
}

/// The delivery id is the header the signature covered: an empty
/// `webhook-id` beside a `svix-id` reads the `svix-id`.
#[test]
fn the_delivery_id_is_the_first_id_header_that_is_set() {
    use yunxin_edge_routes::delivery_id;
    let sw = scheme(r#"{"scheme":"standard-webhooks"}"#);
    let both = headers(&[("webhook-id", ""), ("svix-id", "msg_svix")]);
    assert_eq!(delivery_id(&sw, &both), Some("msg_svix"));
    let first = headers(&[("webhook-id", "msg_wh"), ("svix-id", "msg_svix")]);
    assert_eq!(delivery_id(&sw, &first), Some("msg_wh"));
    let none = headers(&[("webhook-id", ""), ("svix-id", "")]);
    assert_eq!(delivery_id(&sw, &none), None);
}
