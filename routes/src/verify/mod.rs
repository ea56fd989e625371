//! Who may call a route: one module per scheme, each checking a request's
//! headers and raw body against secrets the relay holds.
//!
//! Every comparison of a secret or a signature takes constant time, and no
//! error names a secret, a signature or what was expected.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

mod github;
mod hmac_generic;
mod standard_webhooks;
mod stripe;
mod token;
mod yunxin_callback;

pub use hmac_generic::{Algorithm, Encoding, HmacScheme};

/// How far a signed timestamp may be from the relay's clock, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// A secret value, read from a binding. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for a MAC key or a comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A request as the verifier sees it.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// Header names lower-cased; repeated headers joined with `", "`.
    pub headers: &'a BTreeMap<String, String>,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// The relay's clock, UNIX seconds.
    pub now_secs: i64,
}

impl Signed<'_> {
    fn header(&self, name: &'static str) -> Result<&str, VerifyError> {
        self.headers
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(VerifyError::Missing(name))
    }
}

/// A verification scheme, as configured for a route (`verify.scheme`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Scheme {
    /// Standard Webhooks (and Svix): `webhook-*` or `svix-*` headers; `v1`
    /// HMAC-SHA256 under `whsec_` secrets and `v1a` Ed25519 under `whpk_`
    /// public keys.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    Github,
    /// Stripe: `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `"{t}.{body}"`.
    Stripe,
    /// A header holding a MAC of the body (and optionally of a timestamp).
    Hmac(HmacScheme),
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic <base64 user:password>`.
    Basic,
    /// Yunxin's own callbacks (抄送): `AppKey`, `CurTime`, `MD5`, `CheckSum`.
    /// The secrets are the app secret; the app key is read from `app_key`
    /// (a binding name, default `YUNXIN_APP_KEY`).
    YunxinCallback {
        /// The binding holding the app key.
        #[serde(default = "default_app_key_binding")]
        app_key: String,
    },
}

fn default_app_key_binding() -> String {
    "YUNXIN_APP_KEY".to_owned()
}

/// Why a request was not accepted. Names headers, never secrets or MACs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent or empty.
    #[error("missing `{0}` header")]
    Missing(&'static str),
    /// A header is not in the scheme's format.
    #[error("`{0}` is malformed")]
    Malformed(&'static str),
    /// The signed timestamp is too old.
    #[error("the signed timestamp is more than {TOLERANCE_SECS} s in the past")]
    TooOld,
    /// The signed timestamp is too far ahead.
    #[error("the signed timestamp is more than {TOLERANCE_SECS} s in the future")]
    TooNew,
    /// No signature or token in this header matches any secret.
    #[error("no `{0}` matches")]
    NoMatch(&'static str),
    /// A secret is not in the form the scheme needs (e.g. not `whsec_…`).
    #[error("secret #{0} is not in the form this scheme needs")]
    BadSecret(usize),
    /// A signature header holds more entries, or more bytes, than any
    /// sender needs: refused before any signature is computed.
    #[error(
        "`{0}` holds more than {MAX_SIGNATURES} signatures or {MAX_SIGNATURE_HEADER_BYTES} bytes"
    )]
    TooManySignatures(&'static str),
}

/// The most signatures one header may hold. Senders send one per key they
/// sign with, two or three during a rotation.
pub const MAX_SIGNATURES: usize = 32;
/// The most bytes a signature header may hold: 32 Ed25519 entries
/// (`v1a,` and 88 base64 characters) fit.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 4096;

/// The entries of signature header `name` (`value`, split by `split`), once
/// their number and size are within [`MAX_SIGNATURES`] and
/// [`MAX_SIGNATURE_HEADER_BYTES`]: what a check may cost must not grow with
/// what the sender sends.
fn signature_entries<'a>(
    name: &'static str,
    value: &'a str,
    split: impl Fn(&'a str) -> Vec<&'a str>,
) -> Result<Vec<&'a str>, VerifyError> {
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(VerifyError::TooManySignatures(name));
    }
    let entries = split(value);
    if entries.len() > MAX_SIGNATURES {
        return Err(VerifyError::TooManySignatures(name));
    }
    Ok(entries)
}

/// Checks `request` under `scheme` against any of `secrets` (several during
/// a rotation). `app_key` is the app key, for `yunxin-callback`.
pub fn verify(
    scheme: &Scheme,
    secrets: &[Secret],
    app_key: Option<&str>,
    request: &Signed<'_>,
) -> Result<(), VerifyError> {
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks::verify(secrets, request),
        Scheme::Github => github::verify(secrets, request),
        Scheme::Stripe => stripe::verify(secrets, request),
        Scheme::Hmac(hmac) => hmac.verify(secrets, request),
        Scheme::Bearer => token::bearer(secrets, request),
        Scheme::Basic => token::basic(secrets, request),
        Scheme::YunxinCallback { .. } => {
            yunxin_callback::verify(secrets, app_key.unwrap_or_default(), request)
        }
    }
}

/// Checks a Standard Webhooks request (v1 and v1a): [`verify`] for that
/// scheme alone, for a caller that needs no other (the relay's
/// `/v1/notifications`), so that the others stay out of its bundle.
pub fn verify_standard_webhooks(
    secrets: &[Secret],
    request: &Signed<'_>,
) -> Result<(), VerifyError> {
    standard_webhooks::verify(secrets, request)
}

/// The scheme's own delivery id: `webhook-id` (or `svix-id`) for Standard
/// Webhooks, `X-GitHub-Delivery` for GitHub (unsigned). Stripe's is the
/// event `id` in the body.
pub fn delivery_id<'a>(scheme: &Scheme, headers: &'a BTreeMap<String, String>) -> Option<&'a str> {
    let names: &[&str] = match scheme {
        Scheme::StandardWebhooks => &["webhook-id", "svix-id"],
        Scheme::Github => &["x-github-delivery"],
        _ => &[],
    };
    // The first that is set and not empty: the one the signature covered
    // (an empty `webhook-id` beside a signed `svix-id` must not fall back
    // to the body's hash, which another delivery of the event would share
    // only by chance).
    names
        .iter()
        .filter_map(|name| headers.get(*name))
        .map(String::as_str)
        .find(|id| !id.is_empty())
}

/// Whether `secrets` are in the form `scheme` needs, to check a
/// configuration before any request arrives.
pub fn check_secrets(scheme: &Scheme, secrets: &[Secret]) -> Result<(), VerifyError> {
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks::keys(secrets).map(drop),
        _ => Ok(()),
    }
}

/// Whether `sent` (UNIX seconds) is within the tolerance of `now`.
fn fresh(sent: i64, now_secs: i64) -> Result<(), VerifyError> {
    if sent < now_secs - TOLERANCE_SECS {
        Err(VerifyError::TooOld)
    } else if sent > now_secs + TOLERANCE_SECS {
        Err(VerifyError::TooNew)
    } else {
        Ok(())
    }
}

/// Constant-time equality of two byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
