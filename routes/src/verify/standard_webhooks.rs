//! Standard Webhooks (<https://www.standardwebhooks.com/>), and Svix, which
//! sends the same with `svix-` header names.
//!
//! The sender signs `"{id}.{timestamp}.{raw body}"` and sends
//! `webhook-signature` with space-separated entries: `v1,<base64>` is an
//! HMAC-SHA256 under a shared `whsec_<base64 key>`; `v1a,<base64>` an
//! Ed25519 signature checked with a `whpk_<base64 public key>`. A route may
//! hold several secrets of either kind (rotation); entries of a kind it has
//! no key for are skipped.
//!
//! The cost of a check is bounded before any of it is paid: at most
//! [`MAX_SIGNATURES`](super::MAX_SIGNATURES) entries in at most
//! [`MAX_SIGNATURE_HEADER_BYTES`](super::MAX_SIGNATURE_HEADER_BYTES), one
//! HMAC over the body per `whsec_` key whatever the number of entries,
//! compared in constant time with each `v1` entry. An Ed25519 check hashes
//! the body with each signature's own nonce, so `v1a` costs one check per
//! entry and `whpk_` key, within the same bound.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Secret, Signed, VerifyError, fresh, signature_entries};

/// A key read from a secret.
pub(super) enum Key {
    /// `whsec_`: an HMAC-SHA256 key.
    Symmetric(Vec<u8>),
    /// `whpk_`: an Ed25519 public key.
    Public(VerifyingKey),
}

/// Reads `whsec_` and `whpk_` secrets (number `i + 1` is named in errors).
pub(super) fn keys(secrets: &[Secret]) -> Result<Vec<Key>, VerifyError> {
    secrets
        .iter()
        .enumerate()
        .map(|(i, secret)| {
            let bad = || VerifyError::BadSecret(i + 1);
            let value = secret.expose().trim();
            if let Some(key) = value.strip_prefix("whsec_") {
                match BASE64.decode(key) {
                    Ok(bytes) if !bytes.is_empty() => Ok(Key::Symmetric(bytes)),
                    _ => Err(bad()),
                }
            } else if let Some(key) = value.strip_prefix("whpk_") {
                let bytes: [u8; 32] = BASE64
                    .decode(key)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(bad)?;
                VerifyingKey::from_bytes(&bytes)
                    .map(Key::Public)
                    .map_err(|_| bad())
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// The header under its `webhook-` name, or its `svix-` name.
fn header<'a>(request: &'a Signed<'_>, name: &'static str) -> Result<&'a str, VerifyError> {
    let svix = match name {
        "webhook-id" => "svix-id",
        "webhook-timestamp" => "svix-timestamp",
        _ => "svix-signature",
    };
    request
        .header(name)
        .or_else(|_| request.header(svix))
        .map_err(|_| VerifyError::Missing(name))
}

pub(super) fn verify(secrets: &[Secret], request: &Signed<'_>) -> Result<(), VerifyError> {
    let keys = keys(secrets)?;
    let id = header(request, "webhook-id")?;
    let timestamp = header(request, "webhook-timestamp")?;
    let signatures = header(request, "webhook-signature")?;
    // A repeated header arrives joined with ", ": the comma is not part of
    // the entry before it.
    let entries = signature_entries("webhook-signature", signatures, |value| {
        value
            .split_whitespace()
            .map(|s| s.trim_end_matches(','))
            .collect()
    })?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
    fresh(sent, request.now_secs)?;

    let signed_content = [
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        request.body,
    ]
    .concat();
    // Each `whsec_` key's MAC, once.
    let macs: Vec<_> = keys
        .iter()
        .filter_map(|key| match key {
            Key::Symmetric(secret) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(&signed_content);
                Some(mac.finalize().into_bytes())
            }
            Key::Public(_) => None,
        })
        .collect();
    let decoded = entries
        .iter()
        .filter_map(|entry| entry.split_once(','))
        .filter_map(|(version, b64)| Some((version, BASE64.decode(b64).ok()?)));
    for (version, signature) in decoded {
        let matched = match version {
            "v1" => macs
                .iter()
                .any(|mac| bool::from(mac.as_slice().ct_eq(&signature))),
            "v1a" => Signature::from_slice(&signature).is_ok_and(|sig| {
                keys.iter().any(|key| match key {
                    Key::Public(public) => public.verify(&signed_content, &sig).is_ok(),
                    Key::Symmetric(_) => false,
                })
            }),
            _ => false,
        };
        if matched {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch("webhook-signature"))
}

/// Signs like a Standard Webhooks `v1` sender with a `whsec_` secret.
#[cfg(test)]
fn sign_v1(secret: &Secret, id: &str, timestamp: &str, body: &[u8]) -> Option<String> {
    let key = BASE64
        .decode(secret.expose().strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(&[id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat());
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    // The Standard Webhooks reference libraries' own test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(prefix: &str, signature: &str) -> BTreeMap<String, String> {
        [("id", ID), ("timestamp", TS), ("signature", signature)]
            .into_iter()
            .map(|(k, v)| (format!("{prefix}-{k}"), v.to_owned()))
            .collect()
    }

    fn check(
        headers: &BTreeMap<String, String>,
        secrets: &[&str],
        now: i64,
    ) -> Result<(), VerifyError> {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        verify(
            &secrets,
            &Signed {
                headers,
                body: BODY,
                now_secs: now,
            },
        )
    }

    #[test]
    fn the_reference_vector_verifies_under_both_header_names() {
        assert_eq!(sign_v1(&Secret::new(SECRET), ID, TS, BODY).unwrap(), SIG);
        for prefix in ["webhook", "svix"] {
            check(&headers(prefix, SIG), &[SECRET], 1614265330).unwrap();
        }
    }

    #[test]
    fn tampering_time_rotation_and_repeated_headers() {
        let now = 1614265330;
        assert_eq!(
            check(&headers("webhook", SIG), &[SECRET], now + 301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            check(&headers("webhook", SIG), &[SECRET], now - 301),
            Err(VerifyError::TooNew)
        );
        let other = "whsec_bmV3LWtleQ==";
        assert_eq!(
            check(&headers("webhook", SIG), &[other], now),
            Err(VerifyError::NoMatch("webhook-signature"))
        );
        assert!(check(&headers("webhook", SIG), &[other, SECRET], now).is_ok());
        assert!(
            check(
                &headers("webhook", &format!("v1,AAAA, {SIG}")),
                &[SECRET],
                now
            )
            .is_ok()
        );
        assert_eq!(
            check(&headers("webhook", SIG), &["plain"], now),
            Err(VerifyError::BadSecret(1))
        );
    }
}
