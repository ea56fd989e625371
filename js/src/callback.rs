//! Signing a callback the way Yunxin signs what it POSTs to an app server
//! (抄送), for testing a handler that calls `verifyYunxinCallback`.
//!
//! The headers are those the core's [`verify_callback`] checks: `CurTime` in
//! milliseconds, `MD5` the hex MD5 of the raw body, and `CheckSum` the core's
//! [`checksum`] of the app secret, that MD5 and `CurTime`. The unit test below
//! holds the two together: whatever this signs, the core verifies.
//!
//! [`verify_callback`]: yunxin_edge::verify_callback

use md5::{Digest, Md5};
use yunxin_edge::{Credentials, checksum};

/// The headers of a callback signed at `cur_time_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCallback {
    /// `CurTime`: UNIX milliseconds, as decimal text.
    pub cur_time: String,
    /// `MD5`: lowercase hex MD5 of the body.
    pub md5: String,
    /// `CheckSum`: lowercase hex SHA1(AppSecret + MD5 + CurTime).
    pub checksum: String,
}

/// Signs `body` for `credentials` at `cur_time_ms`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use yunxin_edge::{AppKey, AppSecret, CallbackHeaders, verify_callback};

    fn credentials(secret: &str) -> Credentials {
        Credentials {
            app_key: AppKey::new("app-key"),
            app_secret: AppSecret::new(secret),
        }
    }

    #[test]
    fn the_core_verifies_what_is_signed_here() {
        let body = "{\"eventType\":\"1\",\"body\":\"你好\"}".as_bytes();
        let signed = sign_callback(&credentials("秘密"), body, 1_700_000_000_123);
        let headers = CallbackHeaders {
            app_key: "app-key",
            cur_time: &signed.cur_time,
            md5: &signed.md5,
            checksum: &signed.checksum,
        };
        assert_eq!(signed.cur_time, "1700000000123");
        verify_callback(&credentials("秘密"), &headers, body, 1_700_000_000_123, 0).unwrap();
        // Another secret or another body does not verify.
        assert!(
            verify_callback(&credentials("other"), &headers, body, 1_700_000_000_123, 0).is_err()
        );
        assert!(
            verify_callback(&credentials("秘密"), &headers, b"{}", 1_700_000_000_123, 0).is_err()
        );
    }
}
