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
        let candidates: Vec<Vec<u8>> = signatures
            .split_whitespace()
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
