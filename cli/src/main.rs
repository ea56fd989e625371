//! `yunxin-edge`: the project's command-line tool.
//!
//! Read this file top-down: the arguments (each subcommand's own live in
//! its module), then `main`, which parses them, runs the subcommand and
//! turns what it returns into output and an exit code. Subcommands never
//! print: they return an [`Output`] or a [`Failure`](failure::Failure), so
//! that every error of every subcommand is reported the same way, as one
//! line on stderr or, with `--json`, as one JSON object on stdout.
//!
//! A new subcommand is a module with an `Args` struct and a `run` function,
//! a variant of [`Command`] and an arm in `main`.
//!
//! Exit codes: 0 ok, 1 a problem with the input (an invalid routes config, a
//! template that fails, a notification over a limit, a callback that fails
//! verification), 2 a usage error (an unknown flag, a missing argument, a
//! file that cannot be read, credentials missing from the environment), 3
//! `send` left receivers undelivered, 4 Yunxin refused `send`'s calls (414
//! or 403: the credentials, most likely).
//!
//! Credentials (`YUNXIN_APP_KEY`, `YUNXIN_APP_SECRET`) are read from the
//! environment only, never from a flag (a flag shows in `ps` and shell
//! history), and the secret is never printed.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

mod check;
mod credentials;
mod failure;
mod http;
mod input;
mod render;
mod send;
mod sign;
mod verify;

/// Send NetEase Yunxin (网易云信) custom notifications, sign Yunxin
/// requests, verify Yunxin callbacks, and try webhook routes offline: the
/// yunxin-edge command-line tool.
///
/// It runs the relay's own code (the `yunxin-edge` core and the
/// `yunxin-edge-routes` crate), so that what it accepts the relay accepts.
/// Credentials come from the environment only: YUNXIN_APP_KEY and
/// YUNXIN_APP_SECRET (never echoed).
///
/// Exit codes: 0 ok, 1 a problem with the input (or a callback that fails
/// verification), 2 a usage error, 3 receivers left undelivered by `send`,
/// 4 Yunxin refused `send`'s calls (a wrong key or secret, most likely).
#[derive(Debug, Parser)]
// Without a subcommand clap would print the whole help as the "error";
// a one-line error names the subcommands instead.
#[command(name = "yunxin-edge", version, arg_required_else_help = false)]
struct Cli {
    /// Print the answer as JSON (`send`'s report, `sign`'s headers or
    /// requests, `check`'s routes), and errors as a JSON object on stdout,
    /// `{"error": {"code", "message", "route"?, "field"?, "limit"?}}`,
    /// instead of a line on stderr.
    // Global, so that it is accepted before or after any subcommand,
    // including the ones still to come.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands, one module each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Render a webhook route for a payload, without verifying signatures.
    ///
    /// An authoring tool: it works offline and needs no secrets, because it
    /// does NOT check the request's signature. Everything after that is the
    /// relay's own path: the route's filter, templates, receivers and
    /// groups, then the core's parser and planner, so a notification over a
    /// documented limit fails here exactly as it would in the relay, naming
    /// the field and the limit.
    ///
    /// Prints `{"route", "event_id", "requests", "notification"}` (the
    /// relay's `?dry_run=1` answer), or `{"route", "skipped"}` when the
    /// filter is false.
    ///
    /// No signature is checked (no secret is needed). The event id comes
    /// as in the relay: the route's `idempotency_key`, the scheme's delivery
    /// id from `--header` (the signed `webhook-id`), Stripe's
    /// event `id`, or else the payload's SHA-256.
    Render(render::Args),

    /// Check a routes config and list every problem in it.
    ///
    /// Prints one line per problem (`route <name>: <field> <problem>`) and
    /// exits 1, or prints `ok: N routes`.
    Check(check::Args),

    /// Send a custom notification to any number of receivers and print
    /// what became of each one.
    ///
    /// The receivers are split into calls of at most 500, each signed and
    /// sent with its own trace id; failed calls and receivers that failed
    /// in a retryable way are sent again as the core's delivery state
    /// machine decides (the same trace id for a repeated call, so Yunxin
    /// takes it at most once). Progress goes to stderr; the report (every
    /// receiver once: delivered, failed with Yunxin's code, unknown, not
    /// attempted) to stdout.
    ///
    /// Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET from the
    /// environment. Exit codes: 0 every receiver delivered, 3 some were not,
    /// 4 Yunxin refused the calls (414/403: check the key and secret), 1 the
    /// notification is invalid (over a documented limit, say), 2 a usage
    /// error.
    Send(send::Args),

    /// Print the signed headers of a Yunxin server API call (AppKey, Nonce,
    /// CurTime, CheckSum), or whole signed requests for a notification.
    ///
    /// Without `--body`, the four headers every Yunxin server API call
    /// needs (valid for five minutes). With `--body`, the batch calls of
    /// that notification as `send` would make them (headers, trace ids and
    /// bodies), as HTTP text, JSON (`--json`) or curl commands (`--curl`).
    /// Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET from the
    /// environment.
    Sign(sign::Args),

    /// Verify a callback Yunxin POSTed to an app server (抄送 or 第三方回调):
    /// its AppKey, the body's MD5, CheckSum and the age of CurTime.
    ///
    /// Exits 0 and prints `ok` when it verifies, 1 naming the check that
    /// failed otherwise. Credentials: YUNXIN_APP_KEY and YUNXIN_APP_SECRET
    /// from the environment.
    #[command(name = "verify-callback")]
    VerifyCallback(verify::Args),
}

/// What a subcommand answers when it ran to the end.
#[derive(Debug)]
pub struct Output {
    /// The answer as JSON: always printed by `--json`, and by subcommands
    /// whose answer is data (`render`).
    json: Value,
    /// The answer for a person, when it differs from the JSON (`check`'s
    /// `ok: N routes`).
    text: Option<String>,
    /// A non-zero exit for an answer that is also bad news (`send` with
    /// undelivered receivers), with a line for stderr saying why.
    exit: Option<(failure::Exit, String)>,
}

impl Output {
    /// An answer that is data: JSON whatever `--json` says.
    pub fn json(json: Value) -> Self {
        Output {
            json,
            text: None,
            exit: None,
        }
    }

    /// An answer with a line for a person and JSON for `--json`.
    pub fn text(text: String, json: Value) -> Self {
        Output {
            json,
            text: Some(text),
            exit: None,
        }
    }

    /// The same answer, exiting with `exit` and saying `why` on stderr.
    pub fn exit(mut self, exit: failure::Exit, why: String) -> Self {
        self.exit = Some((exit, why));
        self
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` arrive here too, as clap "errors".
        Err(error) => {
            return match failure::from_clap(error) {
                Ok(()) => ExitCode::SUCCESS,
                // The arguments did not parse, so `--json` is looked for
                // in them directly.
                Err(failure) => failure.report(failure::json_requested()),
            };
        }
    };

    let result = match &cli.command {
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Send(args) => send::run(args, cli.json),
        Command::Sign(args) => sign::run(args),
        Command::VerifyCallback(args) => verify::run(args),
    };
    match result {
        Ok(output) => {
            let text = match (&output.text, cli.json) {
                (Some(text), false) => text.clone(),
                _ => pretty(&output.json),
            };
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            match output.exit {
                None => ExitCode::SUCCESS,
                Some((exit, why)) => {
                    let _ = writeln!(std::io::stderr().lock(), "yunxin-edge: {why}");
                    ExitCode::from(exit as u8)
                }
            }
        }
        Err(failure) => failure.report(cli.json),
    }
}

/// JSON for a person to read and a program to parse.
fn pretty(json: &Value) -> String {
    serde_json::to_string_pretty(json).expect("a serde_json::Value always serialises")
}
