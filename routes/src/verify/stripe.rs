//! Stripe: `Stripe-Signature: t=<unix secs>,v1=<hex>[,v1=<hex>…]`, each
//! `v1` the HMAC-SHA256 of `"{t}.{body}"` under the endpoint secret (the
//! whole `whsec_…` string is the key). `t` must be within 300 s. The event's
//! `id` in the body is the default idempotency key (see `render`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Secret, Signed, VerifyError, fresh, signature_entries};

pub(super) fn verify(secrets: &[Secret], request: &Signed<'_>) -> Result<(), VerifyError> {
    let header = request.header("stripe-signature")?;
    let parts = signature_entries("stripe-signature", header, |value| {
        value.split(',').collect()
    })?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in parts {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            // Other schemes (v0, test-mode extras) are not ours to check.
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed("stripe-signature"))?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::Malformed("stripe-signature"))?;
    fresh(sent, request.now_secs)?;
    // One MAC per secret, compared (in constant time) with each entry.
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(request.body);
        if signatures
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch("stripe-signature"))
}
