//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
//! body under the webhook's secret; `X-GitHub-Delivery` names the delivery.
//! GitHub signs no timestamp, so a replay is stopped by the delivery id
//! (the default idempotency key), not by age.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Secret, Signed, VerifyError};

pub(super) fn verify(secrets: &[Secret], request: &Signed<'_>) -> Result<(), VerifyError> {
    let header = request.header("x-hub-signature-256")?;
    let hex_mac = header
        .strip_prefix("sha256=")
        .ok_or(VerifyError::Malformed("x-hub-signature-256"))?;
    let sent = hex::decode(hex_mac).map_err(|_| VerifyError::Malformed("x-hub-signature-256"))?;
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(request.body);
        if mac.verify_slice(&sent).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch("x-hub-signature-256"))
}
