//! Standard Webhooks verification (<https://www.standardwebhooks.com/>).
//!
//! The sender signs `"{webhook-id}.{webhook-timestamp}.{raw body}"` with
//! HMAC-SHA256 under a shared secret `whsec_<base64 key>` and sends
//! `webhook-signature: v1,<base64 mac>` (several, space-separated, during a
//! key rotation). The relay accepts several secrets for the same reason.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from the relay's clock, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest `webhook-id` accepted.
pub const MAX_EVENT_ID_CHARS: usize = 256;

/// A `webhook-id`: 1 to 256 visible ASCII characters. It names the event's
/// record and derives its trace ids, so nothing else is accepted: an empty
/// id would make every later empty id a "duplicate", and a control
/// character or a 40 KB id has no business in a URL or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId(String);

/// Why a `webhook-id` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// Empty or absent.
    #[error("is empty")]
    Empty,
    /// Over [`MAX_EVENT_ID_CHARS`].
    #[error("is longer than 256 characters")]
    TooLong,
    /// A space, a control character or a non-ASCII character.
    #[error("may hold only visible ASCII characters (no space or control character)")]
    NotVisibleAscii,
    /// `.` or `..`, which URLs resolve away (even percent-encoded).
    #[error("may not be `.` or `..`")]
    DotSegment,
}

impl EventId {
    /// Checks an id as received.
    pub fn parse(id: &str) -> Result<Self, EventIdError> {
        if id.is_empty() {
            return Err(EventIdError::Empty);
        }
        if id.len() > MAX_EVENT_ID_CHARS {
            return Err(EventIdError::TooLong);
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EventIdError::NotVisibleAscii);
        }
        if id == "." || id == ".." {
            return Err(EventIdError::DotSegment);
        }
        Ok(EventId(id.to_owned()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one URL path segment: everything but unreserved characters
    /// percent-encoded, so `?`, `#`, `/` and `%` stay part of the id.
    pub fn path_segment(&self) -> String {
        const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        percent_encoding::utf8_percent_encode(&self.0, RESERVED).to_string()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One webhook signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The accepted secrets: any one of them may have signed a webhook.
#[derive(Debug, Clone)]
pub struct WebhookSecrets(Vec<WebhookSecret>);

/// Why a secrets string could not be read; never includes the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// No secret at all.
    #[error("holds no secret")]
    Empty,
    /// A secret without the `whsec_` prefix.
    #[error("secret #{0} does not start with `whsec_`")]
    Prefix(usize),
    /// A secret whose key is not base64 or is empty.
    #[error("secret #{0} is not `whsec_` followed by a non-empty base64 key")]
    Base64(usize),
}

impl WebhookSecrets {
    /// Reads space-separated `whsec_<base64>` secrets.
    pub fn parse(value: &str) -> Result<Self, SecretFormatError> {
        let secrets = value
            .split_whitespace()
            .enumerate()
            .map(|(i, secret)| {
                let key = secret
                    .strip_prefix("whsec_")
                    .ok_or(SecretFormatError::Prefix(i + 1))?;
                match BASE64.decode(key) {
                    Ok(bytes) if !bytes.is_empty() => Ok(WebhookSecret(bytes)),
                    _ => Err(SecretFormatError::Base64(i + 1)),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(SecretFormatError::Empty);
        }
        Ok(WebhookSecrets(secrets))
    }

    /// Checks the headers and body of one webhook against every secret.
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        let id = headers.id.ok_or(VerifyError::Missing("webhook-id"))?;
        let timestamp = headers
            .timestamp
            .ok_or(VerifyError::Missing("webhook-timestamp"))?;
        let signatures = headers
            .signature
            .ok_or(VerifyError::Missing("webhook-signature"))?;

        let sent: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
        if sent < now_secs - TOLERANCE_SECS {
            return Err(VerifyError::TooOld);
        }
        if sent > now_secs + TOLERANCE_SECS {
            return Err(VerifyError::TooNew);
        }

        // Decoded candidates; entries of other schemes (v1a, …) are skipped.
        // A repeated header arrives joined with ", ": the comma is not part
        // of the entry before it.
        let candidates: Vec<Vec<u8>> = signatures
            .split_whitespace()
            .map(|s| s.trim_end_matches(','))
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| BASE64.decode(b64).ok())
            .collect();
        for secret in &self.0 {
            let mac = signed_content_mac(secret, id, timestamp, body);
            // verify_slice compares in constant time.
            if candidates
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
            {
                return Ok(());
            }
        }
        Err(VerifyError::NoMatch)
    }

    /// Signs like a Standard Webhooks sender, with the first secret (for tests
    /// and tools that send sample events).
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let mac = signed_content_mac(&self.0[0], id, timestamp, body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

fn signed_content_mac(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The three Standard Webhooks headers, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`: the event's unique id.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`: UNIX seconds.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`: space-separated `v1,<base64>` entries.
    pub signature: Option<&'a str>,
}

/// Why a webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing `{0}` header")]
    Missing(&'static str),
    /// `webhook-timestamp` is not a whole number of seconds.
    #[error("`webhook-timestamp` is not UNIX seconds")]
    BadTimestamp,
    /// The timestamp is older than the tolerance.
    #[error("`webhook-timestamp` is more than {TOLERANCE_SECS} s in the past")]
    TooOld,
    /// The timestamp is further ahead than the tolerance.
    #[error("`webhook-timestamp` is more than {TOLERANCE_SECS} s in the future")]
    TooNew,
    /// No signature matches any secret.
    #[error("no `webhook-signature` matches")]
    NoMatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks reference libraries' own test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(signature: &'a str, timestamp: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            id: Some(ID),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    #[test]
    fn reference_vector_verifies() {
        let secrets = WebhookSecrets::parse(SECRET).unwrap();
        assert_eq!(secrets.sign(ID, TS, BODY), SIG);
        secrets.verify(&headers(SIG, TS), BODY, 1614265330).unwrap();
    }

    #[test]
    fn tampering_time_and_rotation() {
        let secrets = WebhookSecrets::parse(SECRET).unwrap();
        let now = 1614265330;
        assert_eq!(
            secrets.verify(&headers(SIG, TS), b"{}", now),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            secrets.verify(&headers(SIG, TS), BODY, now + 301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            secrets.verify(&headers(SIG, TS), BODY, now - 301),
            Err(VerifyError::TooNew)
        );
        assert!(secrets.verify(&headers(SIG, TS), BODY, now + 300).is_ok());
        assert_eq!(
            secrets.verify(&headers(SIG, "16x"), BODY, now),
            Err(VerifyError::BadTimestamp)
        );
        let no_id = WebhookHeaders {
            id: None,
            ..headers(SIG, TS)
        };
        assert_eq!(
            secrets.verify(&no_id, BODY, now),
            Err(VerifyError::Missing("webhook-id"))
        );

        // Several signatures, one valid; several secrets, the second one signed.
        let multi = format!("v1,AAAA v1a,xyz {SIG}");
        secrets.verify(&headers(&multi, TS), BODY, now).unwrap();
        let rotated = WebhookSecrets::parse(&format!("whsec_bmV3LWtleQ== {SECRET}")).unwrap();
        rotated.verify(&headers(SIG, TS), BODY, now).unwrap();
    }

    #[test]
    fn a_repeated_signature_header_is_read_whole() {
        let secrets = WebhookSecrets::parse(SECRET).unwrap();
        // Two headers, joined by the runtime; the first holds no valid entry.
        let joined = format!("v1,AAAA, {SIG}");
        secrets
            .verify(&headers(&joined, TS), BODY, 1614265330)
            .unwrap();
    }

    #[test]
    fn event_ids_are_visible_ascii_up_to_256() {
        assert!(EventId::parse("msg_2zvJ3-._~:/?#[]@!$&'()*+,;=").is_ok());
        assert!(EventId::parse(&"x".repeat(256)).is_ok());
        assert_eq!(EventId::parse(""), Err(EventIdError::Empty));
        assert_eq!(EventId::parse(".."), Err(EventIdError::DotSegment));
        assert_eq!(EventId::parse(&"x".repeat(257)), Err(EventIdError::TooLong));
        let odd = EventId::parse("a?b#c/../d%e").unwrap();
        assert_eq!(odd.path_segment(), "a%3Fb%23c%2F..%2Fd%25e");
        for bad in ["a b", "a\tb", "a\u{7f}", "é", "a\u{200b}"] {
            assert_eq!(
                EventId::parse(bad),
                Err(EventIdError::NotVisibleAscii),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_secrets_are_named_not_shown() {
        assert_eq!(
            WebhookSecrets::parse("  ").unwrap_err(),
            SecretFormatError::Empty
        );
        assert_eq!(
            WebhookSecrets::parse("whsec_QQ== plain").unwrap_err(),
            SecretFormatError::Prefix(2)
        );
        assert_eq!(
            WebhookSecrets::parse("whsec_!!").unwrap_err(),
            SecretFormatError::Base64(1)
        );
        let debug = format!("{:?}", WebhookSecrets::parse(SECRET).unwrap());
        assert!(!debug.contains("MfKQ"), "{debug}");
    }
}
