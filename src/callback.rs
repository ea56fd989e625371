//! Verification of what Yunxin POSTs to the app server (抄送 and 第三方回调).
//!
//! Yunxin signs callbacks differently from the calls an app makes: `CurTime`
//! is in **milliseconds**, `MD5` is the hex MD5 of the raw body, and
//! `CheckSum = lowercase hex SHA1(AppSecret + MD5 + CurTime)`.
//! [`sign_callback`] signs the same way, to test a handler.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::error::{CallbackError, Result};
use crate::sign::{Credentials, checksum};

/// Default tolerance between a callback's `CurTime` and the local clock.
pub const DEFAULT_CALLBACK_TOLERANCE_MS: u64 = 5 * 60 * 1000;

/// The headers Yunxin sends with a callback, as received.
#[derive(Debug, Clone, Copy)]
pub struct CallbackHeaders<'a> {
    /// `AppKey`.
    pub app_key: &'a str,
    /// `CurTime`, UNIX milliseconds.
    pub cur_time: &'a str,
    /// `MD5`, hex MD5 of the body.
    pub md5: &'a str,
    /// `CheckSum`.
    pub checksum: &'a str,
}

/// Checks a callback: app key, body MD5, CheckSum, then the age of `CurTime`
/// against `now_ms` (± `tolerance_ms`). Comparisons of digests take constant time.
pub fn verify_callback(
    credentials: &Credentials,
    headers: &CallbackHeaders<'_>,
    body: &[u8],
    now_ms: u64,
    tolerance_ms: u64,
) -> Result<()> {
    for (value, header) in [
        (headers.app_key, "AppKey"),
        (headers.cur_time, "CurTime"),
        (headers.md5, "MD5"),
        (headers.checksum, "CheckSum"),
    ] {
        if value.is_empty() {
            return Err(CallbackError::MissingHeader(header).into());
        }
    }
    if headers.app_key != credentials.app_key.as_str() {
        return Err(CallbackError::AppKey.into());
    }
    let body_md5 = hex::encode(Md5::digest(body));
    if !ct_eq(&body_md5, &headers.md5.to_ascii_lowercase()) {
        return Err(CallbackError::Md5.into());
    }
    let expected = checksum(&credentials.app_secret, &body_md5, headers.cur_time);
    if !ct_eq(&expected, &headers.checksum.to_ascii_lowercase()) {
        return Err(CallbackError::CheckSum.into());
    }
    let Ok(sent_ms) = headers.cur_time.parse::<u64>() else {
        return Err(CallbackError::CurTimeFormat.into());
    };
    let skew_ms = sent_ms.abs_diff(now_ms);
    if skew_ms > tolerance_ms {
        return Err(CallbackError::CurTimeSkew {
            skew_ms,
            tolerance_ms,
        }
        .into());
    }
    Ok(())
}

/// The headers of a callback as Yunxin signs it ([`sign_callback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedCallback {
    /// `CurTime`: UNIX milliseconds, as decimal text.
    pub cur_time: String,
    /// `MD5`: lowercase hex MD5 of the body.
    pub md5: String,
    /// `CheckSum`: lowercase hex SHA1(AppSecret + MD5 + CurTime).
    pub checksum: String,
}

/// Signs `body` at `cur_time_ms` the way Yunxin signs a callback, for
/// testing a handler that calls [`verify_callback`].
///
/// ```
/// use yunxin_edge::{AppKey, AppSecret, CallbackHeaders, Credentials, sign_callback, verify_callback};
///
/// let credentials = Credentials { app_key: AppKey::new("app"), app_secret: AppSecret::new("secret") };
/// let signed = sign_callback(&credentials, b"{}", 1_700_000_000_123);
/// let headers = CallbackHeaders {
///     app_key: "app",
///     cur_time: &signed.cur_time,
///     md5: &signed.md5,
///     checksum: &signed.checksum,
/// };
/// assert!(verify_callback(&credentials, &headers, b"{}", 1_700_000_000_123, 0).is_ok());
/// assert!(verify_callback(&credentials, &headers, b"{ }", 1_700_000_000_123, 0).is_err());
/// ```
pub fn sign_callback(credentials: &Credentials, body: &[u8], cur_time_ms: u64) -> SignedCallback {
    let md5 = hex::encode(Md5::digest(body));
    let cur_time = cur_time_ms.to_string();
    let checksum = checksum(&credentials.app_secret, &md5, &cur_time);
    SignedCallback {
        cur_time,
        md5,
        checksum,
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
