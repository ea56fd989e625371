//! `yunxin-edge sign`: the signed headers of a Yunxin server API call, or
//! the signed batch calls of a notification, for curl, Postman or a test.
//!
//! The calls are those `send` would make first: the core's plan (validated,
//! de-duplicated, at most 500 receivers a call) and its delivery's first
//! attempt at each call (body and trace id), signed by the core.

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use yunxin_edge::delivery::{Action, Delivery, RetryPolicy};
use yunxin_edge::{
    Attempt, BatchNotification, Credentials, CurTime, Endpoint, Nonce, Plan, PlanOptions,
    SignedHeaders, SignedRequest,
};

use crate::Output;
use crate::credentials;
use crate::failure::{Exit, Failure, Problem};
use crate::send;

/// `sign`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A notification as JSON (the batch call's body, with any number of
    /// receivers): print its signed calls, not only the headers. `-` reads
    /// it from stdin.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,

    /// Print each call as a curl command (with `--body`; `--json` prints
    /// JSON whatever this says).
    #[arg(long, requires = "body")]
    pub curl: bool,

    /// Yunxin's base URL, for the calls' URL [default: $YUNXIN_BASE_URL,
    /// else https://open.yunxinapi.com].
    #[arg(long, value_name = "URL", requires = "body")]
    pub base_url: Option<String>,

    /// Derive the calls' trace ids from this id, as `send --event-id` does
    /// [default: random trace ids].
    #[arg(long, value_name = "ID", requires = "body")]
    pub event_id: Option<String>,

    /// Sign with this Nonce (at most 128 characters) [default: 32 random
    /// hex characters].
    #[arg(long, value_name = "NONCE")]
    pub nonce: Option<String>,

    /// Sign with this CurTime, in UNIX seconds [default: now]. Yunxin
    /// accepts a signature for five minutes.
    #[arg(long, value_name = "UNIX_SECS")]
    pub cur_time: Option<u64>,
}

/// The headers, or the notification's signed calls.
pub fn run(args: &Args) -> Result<Output, Failure> {
    // The notification is read before the credentials: a broken file is
    // reported the same with or without them.
    let calls = match &args.body {
        Some(path) => Some(attempts(&read(path)?, args.event_id.clone())?),
        None => None,
    };
    let endpoint = send::endpoint(args.base_url.as_deref())?;
    let credentials = credentials::from_env()?;
    let nonce = match &args.nonce {
        Some(nonce) => Some(Nonce::new(nonce.clone()).map_err(|e| {
            let mut problem = Problem::from_core(&e).field("--nonce");
            problem.message = format!("--nonce: {}", problem.message);
            Failure::of(Exit::Usage, problem)
        })?),
        None => None,
    };
    let cur_time = args.cur_time.map(CurTime);

    let Some(attempts) = calls else {
        let headers = match (nonce, cur_time) {
            (None, None) => credentials.sign().map_err(|e| Failure::core(&e))?,
            (nonce, cur_time) => credentials.sign_at(
                cur_time.unwrap_or_else(CurTime::now),
                nonce
                    .map_or_else(Nonce::random, Ok)
                    .map_err(|e| Failure::core(&e))?,
            ),
        };
        return Ok(headers_output(&headers));
    };

    let requests = attempts
        .iter()
        .map(|attempt| sign(attempt, &credentials, &endpoint, nonce.as_ref(), cur_time))
        .collect::<Result<Vec<_>, _>>()?;
    let json = json!({
        "requests": requests.iter().zip(&attempts).map(|(request, attempt)| json!({
            "method": request.method,
            "url": request.url,
            "headers": header_map(&request.headers),
            "body": request.body,
            "trace_id": request.trace_id,
            "receivers": attempt.receiver_ids.len(),
        })).collect::<Vec<_>>(),
    });
    let text = requests
        .iter()
        .map(|request| {
            if args.curl {
                curl(request)
            } else {
                http_text(request)
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(Output::text(text, json))
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(|e| {
            Failure::usage("unreadable_file", format!("cannot read --body `-`: {e}"))
        })?;
        return Ok(bytes);
    }
    crate::input::read(path, "--body")
}

/// The first attempt at every call of the notification in `body`: what
/// `send` would send first.
fn attempts(body: &[u8], event_id: Option<String>) -> Result<Vec<Attempt>, Failure> {
    let notification = BatchNotification::from_json(body).map_err(|e| Failure::core(&e))?;
    let mut options = PlanOptions::default();
    options.event_id = event_id;
    let plan = Plan::new(&notification, &options).map_err(|e| Failure::core(&e))?;
    let mut delivery =
        Delivery::new(plan, RetryPolicy::default()).map_err(|e| Failure::core(&e))?;
    let mut attempts = Vec::with_capacity(delivery.calls());
    // Each poll starts the next call; with every call started, the
    // delivery waits for their outcomes.
    while let Action::Send(attempt) = delivery.poll(0) {
        attempts.push(attempt);
    }
    Ok(attempts)
}

/// One attempt signed now, or with the given nonce and time.
fn sign(
    attempt: &Attempt,
    credentials: &Credentials,
    endpoint: &Endpoint,
    nonce: Option<&Nonce>,
    cur_time: Option<CurTime>,
) -> Result<SignedRequest, Failure> {
    if nonce.is_none() && cur_time.is_none() {
        return attempt
            .sign(credentials, endpoint)
            .map_err(|e| Failure::core(&e));
    }
    let nonce = match nonce {
        Some(nonce) => nonce.clone(),
        None => Nonce::random().map_err(|e| Failure::core(&e))?,
    };
    let cur_time = cur_time.unwrap_or_else(CurTime::now);
    Ok(attempt.sign_at(credentials, endpoint, cur_time, nonce))
}

/// The four headers as `Name: value` lines, or a JSON object.
fn headers_output(headers: &SignedHeaders) -> Output {
    let pairs: Vec<(&str, String)> = headers
        .pairs()
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect();
    let text = pairs
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("\n");
    Output::text(text, header_map(&pairs))
}

fn header_map(headers: &[(&str, String)]) -> Value {
    let map: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Value::from(value.clone())))
        .collect();
    Value::Object(map)
}

/// The request as HTTP text: request line, headers, a blank line, body.
fn http_text(request: &SignedRequest) -> String {
    let mut lines = vec![format!("{} {}", request.method, request.url)];
    lines.extend(
        request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}")),
    );
    lines.push(String::new());
    lines.push(request.body.clone());
    lines.join("\n")
}

/// The request as a curl command for a POSIX shell.
fn curl(request: &SignedRequest) -> String {
    let mut parts = vec![format!(
        "curl -sS -X {} {}",
        request.method,
        quote(&request.url)
    )];
    parts.extend(
        request
            .headers
            .iter()
            .map(|(name, value)| format!("  -H {}", quote(&format!("{name}: {value}")))),
    );
    parts.push(format!("  --data-raw {}", quote(&request.body)));
    parts.join(" \\\n")
}

/// `text` single-quoted for a POSIX shell: nothing in it is expanded.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_the_shell() {
        assert_eq!(quote("it's $HOME"), r"'it'\''s $HOME'");
    }
}
