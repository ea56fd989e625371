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
//! template that fails, a notification over a limit), 2 a usage error (an
//! unknown flag, a missing argument, a file that cannot be read).

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

mod check;
mod failure;
mod input;
mod render;

/// Send NetEase Yunxin notifications from the edge: the yunxin-edge
/// command-line tool.
///
/// It runs the relay's own code (the `yunxin-edge` core and the
/// `yunxin-edge-routes` crate) on files, offline, so that what it accepts
/// the relay accepts. Exit codes: 0 ok, 1 a problem with the input, 2 a
/// usage error.
#[derive(Debug, Parser)]
// Without a subcommand clap would print the whole help as the "error";
// a one-line error names the subcommands instead.
#[command(name = "yunxin-edge", version, arg_required_else_help = false)]
struct Cli {
    /// Report errors as a JSON object on stdout,
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
}

/// What a subcommand answers when it succeeds.
#[derive(Debug)]
pub struct Output {
    /// The answer as JSON: always printed by `--json`, and by subcommands
    /// whose answer is data (`render`).
    json: Value,
    /// The answer for a person, when it differs from the JSON (`check`'s
    /// `ok: N routes`).
    text: Option<String>,
}

impl Output {
    /// An answer that is data: JSON whatever `--json` says.
    pub fn json(json: Value) -> Self {
        Output { json, text: None }
    }

    /// An answer with a line for a person and JSON for `--json`.
    pub fn text(text: String, json: Value) -> Self {
        Output {
            json,
            text: Some(text),
        }
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
    };
    match result {
        Ok(output) => {
            let text = match (&output.text, cli.json) {
                (Some(text), false) => text.clone(),
                _ => pretty(&output.json),
            };
            // A closed pipe (`| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            ExitCode::SUCCESS
        }
        Err(failure) => failure.report(cli.json),
    }
}

/// JSON for a person to read and a program to parse.
fn pretty(json: &Value) -> String {
    serde_json::to_string_pretty(json).expect("a serde_json::Value always serialises")
}
