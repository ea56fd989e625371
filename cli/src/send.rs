//! `yunxin-edge send`: one notification to any number of receivers, with a
//! report that names each receiver once.
//!
//! This module does the I/O and nothing else: it builds the notification
//! from the flags, and drives the core's [`Delivery`] (made from the core's
//! [`Plan`] and [`RetryPolicy::backoff`]) by sending what `poll` hands out
//! with [`http::Client`](crate::http::Client), recording what came back, and
//! sleeping when told to wait. Which calls go again, when and under which
//! trace id, and what each receiver's final result is, are the core's
//! decisions, the same as in the relay and the npm package.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use yunxin_edge::delivery::{Action, Delivery, Recorded, RetryPolicy};
use yunxin_edge::sign::now_millis;
use yunxin_edge::{
    AccountId, Attempt, AttemptOutcome, BatchNotification, Content, Endpoint, Outcome, Plan,
    PlanOptions, Report,
};

use crate::Output;
use crate::credentials;
use crate::failure::{Exit, Failure, Problem};
use crate::http::Client;
use crate::input;

/// The variable `--from` defaults to.
const SENDER_VARIABLE: &str = "YUNXIN_SENDER_ID";
/// The variable `--base-url` defaults to (the relay's name for it).
const BASE_URL_VARIABLE: &str = "YUNXIN_BASE_URL";
/// The relay's and the npm package's default cap on unique receivers.
const DEFAULT_MAX_RECEIVERS: usize = 10_000;

/// `send`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Receivers' account ids, comma-separated; repeat for more.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub to: Vec<String>,

    /// A file of receivers' account ids, one per line (blank lines are
    /// skipped); `-` reads them from stdin.
    #[arg(long, value_name = "FILE")]
    pub to_file: Option<PathBuf>,

    /// The notification's content, at most 4096 characters: usually JSON
    /// text that your app's clients read.
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "notification",
        conflicts_with = "notification"
    )]
    pub content: Option<String>,

    /// The sending account [default: $YUNXIN_SENDER_ID].
    #[arg(long, value_name = "ACCOUNT", conflicts_with = "notification")]
    pub from: Option<String>,

    /// A whole notification as JSON, the batch call's body (`sender_id`,
    /// `receiver_ids`, `content`, `push_config`, …), instead of `--content`
    /// and `--from`; `--to` and `--to-file` add receivers to it. `-` reads
    /// it from stdin.
    #[arg(long, value_name = "FILE")]
    pub notification: Option<PathBuf>,

    /// Yunxin's base URL, e.g. https://open-sg.yunxinapi.com [default:
    /// $YUNXIN_BASE_URL, else https://open.yunxinapi.com].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Derive the calls' trace ids from this id: the same command run
    /// again with the same id is dropped by Yunxin as a repeat instead of
    /// notifying twice [default: random trace ids].
    #[arg(long, value_name = "ID")]
    pub event_id: Option<String>,

    /// Refuse more unique receivers than this.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RECEIVERS)]
    pub max_receivers: usize,

    /// Retries of a call that failed in a retryable way (a 5xx, a timeout,
    /// Yunxin's 449/500/503/514, a receiver's retryable code).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,

    /// The wait before the first retry, doubled for each further one.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub retry_delay_ms: u64,

    /// The longest wait for a retry: a call that must wait longer (a long
    /// Retry-After) ends failed (retryable) instead. The default waits out
    /// a rate limit's minute (Yunxin's 416).
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub max_wait_ms: u64,

    /// How long one call may take, answer included.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Sends the notification and answers with the report: exit 0 if every
/// receiver got it, 3 if some did not, 4 if Yunxin refused the calls.
pub fn run(args: &Args, json: bool) -> Result<Output, Failure> {
    let notification = notification(args)?;
    let mut options = PlanOptions::default().max_receivers(args.max_receivers);
    options.event_id = args.event_id.clone();
    let plan = Plan::new(&notification, &options).map_err(|e| Failure::core(&e))?;
    let endpoint = endpoint(args.base_url.as_deref())?;
    let credentials = credentials::from_env()?;
    let policy = RetryPolicy::backoff(args.retries, args.retry_delay_ms, args.max_wait_ms);
    let mut delivery = Delivery::new(plan, policy).map_err(|e| Failure::core(&e))?;
    let client = Client::new(Duration::from_millis(args.timeout_ms));
    let progress = Progress {
        quiet: args.quiet,
        calls: delivery.calls(),
    };

    let report = loop {
        match delivery.poll(now_millis()) {
            Action::Send(attempt) => {
                let request = match attempt.sign(&credentials, &endpoint) {
                    Ok(request) => request,
                    Err(e) => {
                        delivery.release(attempt.id, now_millis());
                        return Err(Failure::core(&e));
                    }
                };
                let outcome = client.send(&request);
                let recorded = delivery.record(attempt.id, outcome.clone(), now_millis());
                progress.attempt(&attempt, &outcome, recorded);
            }
            Action::Wait {
                until_ms: Some(until_ms),
            } => {
                let wait = until_ms.saturating_sub(now_millis());
                std::thread::sleep(Duration::from_millis(wait));
            }
            Action::Done(report) => break report,
            // One attempt at a time, each recorded before the next poll:
            // nothing is ever in flight here, and an action this version
            // does not know cannot be carried out.
            other => {
                return Err(Failure::input(
                    "internal",
                    format!("the delivery asked for what this tool cannot do: {other:?}"),
                ));
            }
        }
    };
    Ok(answer(&report, delivery.calls(), json))
}

/// The notification from `--notification`, or from `--content` and
/// `--from`, with the receivers of `--to` and `--to-file` added.
fn notification(args: &Args) -> Result<BatchNotification, Failure> {
    let mut receivers: Vec<String> = args.to.iter().map(|id| id.trim().to_owned()).collect();
    if let Some(path) = &args.to_file {
        receivers.extend(receivers_file(path)?);
    }
    let notification = match (&args.notification, &args.content) {
        (Some(path), _) => {
            let bytes = read_or_stdin(path, "--notification")?;
            BatchNotification::from_json(bytes).map_err(|e| Failure::core(&e))?
        }
        (None, Some(content)) => {
            let sender = match &args.from {
                Some(sender) => sender.clone(),
                None => std::env::var(SENDER_VARIABLE)
                    .ok()
                    .filter(|sender| !sender.is_empty())
                    .ok_or_else(|| {
                        usage_for(
                            "--from",
                            format!(
                                "--from is required: the sending account (or set {SENDER_VARIABLE})"
                            ),
                        )
                    })?,
            };
            if receivers.is_empty() {
                return Err(usage_for(
                    "--to",
                    "no receivers: give --to (comma-separated ids) or --to-file",
                ));
            }
            BatchNotification::new(sender, Content::text(content.clone()))
        }
        // clap requires one of the two.
        (None, None) => return Err(usage_for("--content", "--content is required")),
    };
    Ok(notification.to(receivers))
}

/// The ids in `path`, one per line; blank lines are skipped.
fn receivers_file(path: &Path) -> Result<Vec<String>, Failure> {
    let bytes = read_or_stdin(path, "--to-file")?;
    let mut ids = Vec::new();
    for (index, line) in bytes.lines().enumerate() {
        let line = line.map_err(|_| {
            usage_for(
                "--to-file",
                format!(
                    "--to-file `{}`: line {} is not UTF-8",
                    path.display(),
                    index + 1
                ),
            )
        })?;
        let id = line.trim();
        if !id.is_empty() {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// The bytes of the file given to `flag`, or of stdin for `-`.
fn read_or_stdin(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() != "-" {
        return input::read(path, flag);
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .map_err(|e| Failure::usage("unreadable_file", format!("cannot read {flag} `-`: {e}")))?;
    Ok(bytes)
}

/// The endpoint of `--base-url`, `$YUNXIN_BASE_URL` or Yunxin's default.
pub fn endpoint(flag: Option<&str>) -> Result<Endpoint, Failure> {
    let (base_url, source) = match flag {
        Some(url) => (url.to_owned(), "--base-url"),
        None => match std::env::var(BASE_URL_VARIABLE) {
            Ok(url) if !url.is_empty() => (url, BASE_URL_VARIABLE),
            _ => return Ok(Endpoint::default()),
        },
    };
    Endpoint::new(&base_url).map_err(|e| {
        let reason = match &e {
            yunxin_edge::Error::Invalid { reason, .. } => *reason,
            _ => "is not a base URL",
        };
        usage_for(source, format!("{source} `{base_url}` {reason}"))
    })
}

/// A usage error (exit 2) about `flag`.
fn usage_for(flag: &str, message: impl Into<String>) -> Failure {
    Failure::of(Exit::Usage, Problem::new("usage", message).field(flag))
}

/// The report, for a person or as JSON, with the exit code it means.
fn answer(report: &Report, calls: usize, json: bool) -> Output {
    let mut value = serde_json::to_value(report).expect("a Report always serialises");
    if let Value::Object(fields) = &mut value {
        fields.insert("calls".into(), calls.into());
    }
    let text = if json {
        None
    } else {
        Some(text(report, calls))
    };
    let output = match text {
        Some(text) => Output::text(text, value),
        None => Output::json(value),
    };

    let undelivered = report.failed.len() + report.unknown.len();
    // A call refused as a whole with 414 (Yunxin's code for a bad AppKey or
    // CheckSum, among parameter errors the core has already ruled out) or
    // 403 (no permission). Per-receiver codes have six digits.
    let refused = report
        .failed
        .iter()
        .find(|f| f.error_code == 414 || f.error_code == 403);
    if let Some(refused) = refused {
        let why = format!(
            "Yunxin refused the call: {} {}; check {} and {}",
            refused.error_code,
            refused.error_msg,
            credentials::APP_KEY,
            credentials::APP_SECRET
        );
        output.exit(Exit::Refused, why)
    } else if undelivered > 0 {
        let total = report.len() - report.not_attempted.len();
        let why = format!(
            "{undelivered} of {} not delivered",
            count(total, "receiver")
        );
        output.exit(Exit::Undelivered, why)
    } else {
        output
    }
}

/// The report for a person: counts, then one line per receiver that was
/// not delivered (the delivered ones could be thousands).
fn text(report: &Report, calls: usize) -> String {
    let mut lines = vec![format!(
        "delivered {} of {} in {}",
        report.delivered.len(),
        count(report.len(), "receiver"),
        count(calls, "call"),
    )];
    for f in &report.failed {
        let again = if f.retryable { " (retryable)" } else { "" };
        lines.push(format!(
            "failed {}: {} {}{again}",
            f.account_id, f.error_code, f.error_msg
        ));
    }
    for u in &report.unknown {
        lines.push(format!("unknown {}: {}", u.account_id, u.reason));
    }
    for n in &report.not_attempted {
        lines.push(format!("not sent {}: {}", n.account_id, n.reason));
    }
    if let Some(secs) = report.retry_after_secs {
        lines.push(format!("retry the failed ones after {secs} s"));
    }
    lines.join("\n")
}

/// Progress lines on stderr: one per attempt when the send has several
/// calls, and one for every attempt that is to be retried.
struct Progress {
    quiet: bool,
    calls: usize,
}

impl Progress {
    fn attempt(&self, attempt: &Attempt, outcome: &AttemptOutcome, recorded: Recorded) {
        let retry = match recorded {
            Recorded::Retry { at_ms } => Some(at_ms.saturating_sub(now_millis())),
            _ => None,
        };
        if self.quiet || (self.calls == 1 && attempt.id.attempt == 1 && retry.is_none()) {
            return;
        }
        let mut line = format!(
            "yunxin-edge: call {}/{} ({})",
            attempt.id.call + 1,
            self.calls,
            count(attempt.receiver_ids.len(), "receiver")
        );
        if attempt.id.attempt > 1 {
            line += &format!(", attempt {}", attempt.id.attempt);
        }
        line += ": ";
        line += &what_happened(&outcome.outcome, &attempt.receiver_ids);
        match (recorded, retry) {
            (_, Some(wait_ms)) => line += &format!("; again in {}", seconds(wait_ms)),
            (Recorded::Done { gave_up: true }, _) => line += "; giving up",
            _ => {}
        }
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// An outcome in a few words.
fn what_happened(outcome: &Outcome, receivers: &[AccountId]) -> String {
    match outcome {
        Outcome::Delivered { .. } => "delivered".to_owned(),
        Outcome::PartialFailure { failed, .. } => {
            let first = failed
                .first()
                .map(|f| format!(", e.g. {}: {} {}", f.account_id, f.error_code, f.error_msg))
                .unwrap_or_default();
            format!(
                "{} of {} failed{first}",
                failed.len(),
                count(receivers.len(), "receiver")
            )
        }
        Outcome::Rejected { code, msg } => format!("refused: {code} {msg}"),
        Outcome::Transport {
            http_status: None,
            reason,
        } => format!("not sent: {reason}"),
        Outcome::Transport { reason, .. } => reason.clone(),
        Outcome::AnswerLost { reason } => format!("answer lost: {reason}"),
        other => format!("{other:?}"),
    }
}

fn count(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_report_names_every_undelivered_receiver() {
        let mut report = Report::default();
        report.delivered.push("alice".into());
        report.failed.push(yunxin_edge::Failure {
            account_id: "ghost1".into(),
            error_code: 102404,
            error_msg: "account not exist".into(),
            retryable: false,
        });
        let text = text(&report, 1);
        assert_eq!(
            text,
            "delivered 1 of 2 receivers in 1 call\nfailed ghost1: 102404 account not exist"
        );
    }

    #[test]
    fn a_refused_call_exits_4_and_an_undelivered_receiver_3() {
        let refused = yunxin_edge::Failure {
            account_id: "alice".into(),
            error_code: 414,
            error_msg: "checksum error".into(),
            retryable: false,
        };
        let mut report = Report::default();
        report.failed.push(refused.clone());
        let output = answer(&report, 1, true);
        let (exit, why) = output.exit.expect("an exit");
        assert_eq!(exit, Exit::Refused);
        assert!(why.contains("414 checksum error"), "{why}");

        report.failed[0].error_code = 102414;
        let (exit, _) = answer(&report, 1, true).exit.expect("an exit");
        assert_eq!(exit, Exit::Undelivered);
    }
}
