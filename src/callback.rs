//! Verification of what Yunxin POSTs to the app server (抄送 and 第三方回调).
//!
//! Yunxin signs callbacks differently from the calls an app makes: `CurTime`
//! is in **milliseconds**, `MD5` is the hex MD5 of the raw body, and
//! `CheckSum = lowercase hex SHA1(AppSecret + MD5 + CurTime)`.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
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
    let reject = |reason: &'static str| {
        Err(Error::Callback {
            reason: reason.into(),
        })
    };
    if headers.app_key != credentials.app_key.as_str() {
        return reject("AppKey does not match this app");
    }
    let body_md5 = hex::encode(Md5::digest(body));
    if !ct_eq(&body_md5, &headers.md5.to_ascii_lowercase()) {
        return reject("MD5 does not match the body");
    }
    let expected = checksum(&credentials.app_secret, &body_md5, headers.cur_time);
    if !ct_eq(&expected, &headers.checksum.to_ascii_lowercase()) {
        return reject("CheckSum does not match");
    }
    let Ok(sent_ms) = headers.cur_time.parse::<u64>() else {
        return reject("CurTime is not a whole number of milliseconds");
    };
    if sent_ms.abs_diff(now_ms) > tolerance_ms {
        return Err(Error::Callback {
            reason: format!(
                "CurTime is {} ms away from now, more than the tolerated {tolerance_ms} ms",
                sent_ms.abs_diff(now_ms)
            )
            .into(),
        });
    }
    Ok(())
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
