//! Yunxin's own callbacks (抄送): the core's [`yunxin_edge::verify_callback`]
//! with the app key and any of the app secrets.

use yunxin_edge::{CallbackHeaders, Credentials, DEFAULT_CALLBACK_TOLERANCE_MS, verify_callback};

use super::{Secret, Signed, VerifyError};

pub(super) fn verify(
    secrets: &[Secret],
    app_key: &str,
    request: &Signed<'_>,
) -> Result<(), VerifyError> {
    let header = |name: &'static str| request.header(name);
    let headers = CallbackHeaders {
        app_key: header("appkey")?,
        cur_time: header("curtime")?,
        md5: header("md5")?,
        checksum: header("checksum")?,
    };
    let now_ms = u64::try_from(request.now_secs).unwrap_or(0) * 1000;
    let mut last = VerifyError::NoMatch("checksum");
    for secret in secrets {
        let credentials = Credentials::new(app_key, secret.expose());
        match verify_callback(
            &credentials,
            &headers,
            request.body,
            now_ms,
            DEFAULT_CALLBACK_TOLERANCE_MS,
        ) {
            Ok(()) => return Ok(()),
            Err(yunxin_edge::Error::Callback(yunxin_edge::CallbackError::CurTimeSkew {
                ..
            })) => {
                let sent_ms: u64 = headers.cur_time.parse().unwrap_or(0);
                last = if sent_ms < now_ms {
                    VerifyError::TooOld
                } else {
                    VerifyError::TooNew
                };
            }
            Err(_) => {}
        }
    }
    Err(last)
}
