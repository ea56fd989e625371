//! Yunxin callback (抄送) verification, with vectors computed in Python.

use yunxin_edge::{CallbackError, CallbackHeaders, Credentials, Error, verify_callback};

const BODY: &[u8] = br#"{"eventType":"1"}"#;
// python3: hashlib.md5(b'{"eventType":"1"}').hexdigest()
const MD5: &str = "efdcc402fa9336b84ee459911fcffcfa";
// python3: hashlib.sha1(('callback-secret'+MD5+'1764201600123').encode()).hexdigest()
const CHECKSUM: &str = "2cceb4d56bf66017ee85637eb92e990cae4de6f9";
const SENT_MS: u64 = 1_764_201_600_123;

fn creds() -> Credentials {
    Credentials::new("cb-app", "callback-secret")
}

fn headers() -> CallbackHeaders<'static> {
    CallbackHeaders {
        app_key: "cb-app",
        cur_time: "1764201600123",
        md5: MD5,
        checksum: CHECKSUM,
    }
}

fn reason(result: Result<(), Error>) -> CallbackError {
    match result.unwrap_err() {
        Error::Callback(reason) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_genuine_callback_verifies() {
    verify_callback(&creds(), &headers(), BODY, SENT_MS + 1_000, 300_000).unwrap();
    let upper = CallbackHeaders {
        md5: "EFDCC402FA9336B84EE459911FCFFCFA",
        ..headers()
    };
    verify_callback(&creds(), &upper, BODY, SENT_MS, 300_000).unwrap();
}

#[test]
fn tampering_is_caught_in_order() {
    let r = reason(verify_callback(
        &creds(),
        &headers(),
        br#"{"eventType":"2"}"#,
        SENT_MS,
        300_000,
    ));
    assert_eq!(r, CallbackError::Md5);
    let wrong_secret = Credentials::new("cb-app", "other");
    let r = reason(verify_callback(
        &wrong_secret,
        &headers(),
        BODY,
        SENT_MS,
        300_000,
    ));
    assert_eq!(r, CallbackError::CheckSum);
    let wrong_key = Credentials::new("other-app", "callback-secret");
    let r = reason(verify_callback(
        &wrong_key,
        &headers(),
        BODY,
        SENT_MS,
        300_000,
    ));
    assert_eq!(r, CallbackError::AppKey);
}

#[test]
fn time_tolerance_both_ways() {
    verify_callback(&creds(), &headers(), BODY, SENT_MS + 300_000, 300_000).unwrap();
    verify_callback(&creds(), &headers(), BODY, SENT_MS - 300_000, 300_000).unwrap();
    let r = reason(verify_callback(
        &creds(),
        &headers(),
        BODY,
        SENT_MS + 300_001,
        300_000,
    ));
    assert_eq!(
        r,
        CallbackError::CurTimeSkew {
            skew_ms: 300_001,
            tolerance_ms: 300_000
        }
    );
    let r = reason(verify_callback(
        &creds(),
        &headers(),
        BODY,
        SENT_MS - 300_001,
        300_000,
    ));
    assert!(r.to_string().contains("tolerated 300000 ms"), "{r}");
}

#[test]
fn messages_never_reveal_the_secret_or_expected_checksum() {
    let bad = CallbackHeaders {
        checksum: "0000",
        ..headers()
    };
    let message = verify_callback(&creds(), &bad, BODY, SENT_MS, 300_000)
        .unwrap_err()
        .to_string();
    assert!(
        !message.contains("callback-secret") && !message.contains(CHECKSUM),
        "{message}"
    );
}

#[test]
fn missing_headers_are_named() {
    let no_md5 = CallbackHeaders {
        md5: "",
        ..headers()
    };
    let r = reason(verify_callback(&creds(), &no_md5, BODY, SENT_MS, 300_000));
    assert_eq!(r, CallbackError::MissingHeader("MD5"));
}
