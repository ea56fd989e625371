//! `yunxin-edge verify-callback`: a callback Yunxin POSTed to an app server
//! (抄送 or 第三方回调), checked by the core's [`verify_callback`] as the
//! relay checks it: AppKey, the body's MD5, CheckSum, then CurTime's age.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use yunxin_edge::{CallbackError, CallbackHeaders, DEFAULT_CALLBACK_TOLERANCE_MS, verify_callback};

use crate::Output;
use crate::credentials;
use crate::failure::{Exit, Failure, Problem};
use crate::input;

/// `verify-callback`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The callback's raw body, byte for byte as received.
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,

    /// A header of the callback, e.g. `CheckSum: 6a1f…`; repeat for AppKey,
    /// CurTime, MD5 and CheckSum. Names are case-insensitive.
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = input::header)]
    pub headers: Vec<(String, String)>,

    /// A file of the callback's headers, one `Name: value` a line, as a
    /// request head or a log shows them (a first `POST /path HTTP/1.1`
    /// line is skipped; reading stops at a blank line).
    #[arg(long = "headers-file", value_name = "FILE")]
    pub headers_file: Option<PathBuf>,

    /// How far CurTime may be from now, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CALLBACK_TOLERANCE_MS / 1000)]
    pub tolerance_secs: u64,

    /// The time to check CurTime against, in UNIX milliseconds (to verify a
    /// callback kept from earlier) [default: now].
    #[arg(long, value_name = "UNIX_MS")]
    pub now_ms: Option<u64>,
}

/// `ok`, or a problem (exit 1) naming the check that failed.
pub fn run(args: &Args) -> Result<Output, Failure> {
    let body = input::read(&args.body, "--body")?;
    let mut pairs = Vec::new();
    if let Some(path) = &args.headers_file {
        pairs.extend(headers_file(path)?);
    }
    pairs.extend(args.headers.iter().cloned());
    let headers: BTreeMap<String, String> = input::headers(&pairs);
    let credentials = credentials::from_env()?;

    let header = |name: &str| headers.get(name).map_or("", String::as_str);
    let callback = CallbackHeaders {
        app_key: header("appkey"),
        cur_time: header("curtime"),
        md5: header("md5"),
        checksum: header("checksum"),
    };
    let now_ms = args.now_ms.unwrap_or_else(yunxin_edge::sign::now_millis);
    let tolerance_ms = args.tolerance_secs.saturating_mul(1000);
    match verify_callback(&credentials, &callback, &body, now_ms, tolerance_ms) {
        Ok(()) => Ok(Output::text(
            format!("ok: a callback for app {}", callback.app_key),
            json!({ "ok": true, "app_key": callback.app_key, "cur_time": callback.cur_time }),
        )),
        Err(yunxin_edge::Error::Callback(error)) => Err(rejected(&error)),
        Err(other) => Err(Failure::core(&other)),
    }
}

/// The failed check as a problem with the input (exit 1), naming the header.
fn rejected(error: &CallbackError) -> Failure {
    let (code, header) = match error {
        CallbackError::MissingHeader(header) => ("missing_header", *header),
        CallbackError::AppKey => ("app_key_mismatch", "AppKey"),
        CallbackError::Md5 => ("md5_mismatch", "MD5"),
        CallbackError::CheckSum => ("checksum_mismatch", "CheckSum"),
        CallbackError::CurTimeFormat => ("invalid_cur_time", "CurTime"),
        CallbackError::CurTimeSkew { .. } => ("cur_time_skew", "CurTime"),
        // The enum is non-exhaustive: a new check still reports.
        _ => ("callback_rejected", ""),
    };
    let mut problem = Problem::new(code, format!("callback rejected: {error}"));
    if !header.is_empty() {
        problem = problem.field(header);
    }
    Failure::of(Exit::Input, problem)
}

/// The `Name: value` lines of `path`, up to the first blank line, after an
/// optional request line.
fn headers_file(path: &std::path::Path) -> Result<Vec<(String, String)>, Failure> {
    let bytes = input::read(path, "--headers-file")?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::usage(
            "unreadable_file",
            format!("--headers-file `{}` is not UTF-8", path.display()),
        )
    })?;
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if index == 0 && line.contains(" HTTP/") {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        let pair = input::header(line).map_err(|reason| {
            Failure::usage(
                "invalid_headers",
                format!(
                    "--headers-file `{}` line {}: {reason}",
                    path.display(),
                    index + 1
                ),
            )
        })?;
        pairs.push(pair);
    }
    Ok(pairs)
}
