//! How the tool fails: every error, whichever subcommand it comes from, is
//! a [`Failure`] with an exit code and a [`Problem`] (a stable code and a
//! message naming the route, field and limit at fault), reported in one
//! place ([`Failure::report`]) as one line on stderr or as JSON on stdout.

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use serde_json::{Map, Value, json};
use yunxin_edge_routes::RouteError;

/// Why the tool stopped, as its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the input has a problem (config, payload, template, limit).
    Input = 1,
    /// 2: the tool was called wrongly (a flag, a missing argument, a file
    /// that cannot be read, a route that is not there, credentials missing
    /// from the environment).
    Usage = 2,
    /// 3: `send` finished, but some receivers were not delivered (failed,
    /// or unknown because an answer was lost).
    Undelivered = 3,
    /// 4: `send`: Yunxin refused the calls as a whole with 414 (a wrong
    /// AppKey or CheckSum, among its parameter errors) or 403 (no
    /// permission): the credentials are the first suspect.
    Refused = 4,
}

/// One error, as `--json` shows it.
#[derive(Debug, Clone)]
pub struct Problem {
    /// A stable, machine-readable name: the core's own codes (`too_long`,
    /// `too_many`, ...) for a notification over a limit, else this tool's
    /// (`usage`, `unreadable_file`, `invalid_config`, ...).
    pub code: &'static str,
    /// The whole explanation, on one line.
    pub message: String,
    /// The route at fault.
    pub route: Option<String>,
    /// The field at fault (a route's field, or the notification's).
    pub field: Option<String>,
    /// The limit that was crossed.
    pub limit: Option<usize>,
}

impl Problem {
    /// A problem with a code and a message only.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: one_line(&message.into()),
            route: None,
            field: None,
            limit: None,
        }
    }

    /// The problem as a route error describes it.
    pub fn from_route(error: &RouteError) -> Self {
        let (code, route, field, limit) = match error {
            RouteError::Config { route, field, .. } => {
                ("invalid_config", Some(route), Some(field.as_str()), None)
            }
            RouteError::UnknownRoute(route) => ("unknown_route", Some(route), None, None),
            RouteError::Unauthorized { route, .. } => ("unauthorized", Some(route), None, None),
            RouteError::Payload { route, .. } => ("invalid_payload", Some(route), None, None),
            RouteError::Render { route, field, .. } => {
                ("render_error", Some(route), Some(field.as_str()), None)
            }
            // The core's code, field and limit, as the relay answers them.
            RouteError::Notification { route, error } => {
                (error.code(), Some(route), error.field(), error.limit())
            }
            // The enum is non-exhaustive: a new variant still reports.
            _ => ("route_error", None, None, None),
        };
        Problem {
            code,
            message: one_line(&error.to_string()),
            route: route.cloned(),
            field: field.map(str::to_owned),
            limit,
        }
    }

    /// The problem as the core describes it: its code, field and limit.
    pub fn from_core(error: &yunxin_edge::Error) -> Self {
        Problem {
            code: error.code(),
            message: one_line(&error.to_string()),
            route: None,
            field: error.field().map(str::to_owned),
            limit: error.limit(),
        }
    }

    /// The same problem, naming the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("code".into(), self.code.into());
        fields.insert("message".into(), self.message.clone().into());
        if let Some(route) = &self.route {
            fields.insert("route".into(), route.clone().into());
        }
        if let Some(field) = &self.field {
            fields.insert("field".into(), field.clone().into());
        }
        if let Some(limit) = self.limit {
            fields.insert("limit".into(), limit.into());
        }
        Value::Object(fields)
    }
}

/// An error that ends the run.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The error (for a config, its first problem); boxed to keep
    /// `Result<_, Failure>` small.
    pub problem: Box<Problem>,
    /// Every problem of a routes config, so that all of them can be fixed
    /// in one go; empty otherwise.
    pub problems: Vec<Problem>,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(code: &'static str, message: impl Into<String>) -> Self {
        Failure::of(Exit::Usage, Problem::new(code, message))
    }

    /// A problem with the input (exit 1).
    pub fn input(code: &'static str, message: impl Into<String>) -> Self {
        Failure::of(Exit::Input, Problem::new(code, message))
    }

    /// A failure of one problem.
    pub fn of(exit: Exit, problem: Problem) -> Self {
        Failure {
            exit,
            problem: Box::new(problem),
            problems: Vec::new(),
        }
    }

    /// A core error about the input: a problem with the input (exit 1).
    pub fn core(error: &yunxin_edge::Error) -> Self {
        Failure::of(Exit::Input, Problem::from_core(error))
    }

    /// A route error: a problem with the input (exit 1).
    pub fn route(error: &RouteError) -> Self {
        Failure::of(Exit::Input, Problem::from_route(error))
    }

    /// Every problem `Routes::parse` found (exit 1).
    pub fn config(problems: &[RouteError]) -> Self {
        let problems: Vec<Problem> = problems.iter().map(Problem::from_route).collect();
        let problem = problems
            .first()
            .cloned()
            .unwrap_or_else(|| Problem::new("invalid_config", "the routes config is invalid"));
        Failure {
            exit: Exit::Input,
            problem: Box::new(problem),
            problems,
        }
    }

    /// Prints the failure and gives the exit code: each problem on its own
    /// line on stderr, or (`json`) `{"error": {...}}` on stdout, with a
    /// `problems` list for a config.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            let mut error = self.problem.to_json();
            if !self.problems.is_empty() {
                error["problems"] = self.problems.iter().map(Problem::to_json).collect();
            }
            let text = serde_json::to_string_pretty(&json!({ "error": error }))
                .expect("a serde_json::Value always serialises");
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        } else {
            let mut stderr = std::io::stderr().lock();
            let lines = if self.problems.is_empty() {
                std::slice::from_ref(&*self.problem)
            } else {
                &self.problems[..]
            };
            for problem in lines {
                let _ = writeln!(stderr, "yunxin-edge: {}", problem.message);
            }
        }
        ExitCode::from(self.exit as u8)
    }
}

/// What clap's error means here: `--help` and `--version` are printed and
/// are no failure; anything else is a usage error on one line.
pub fn from_clap(error: clap::Error) -> Result<(), Failure> {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        // clap prints these on stdout.
        let _ = error.print();
        return Ok(());
    }
    // clap's text spans several lines (the error, tips, the usage, a
    // pointer to --help); the usage line is dropped, as --help says more.
    let rendered = error.render().to_string();
    let message = rendered
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("Usage:"))
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .map(|line| line.replace("For more information", "for more information"))
        .fold(String::new(), |mut message, line| {
            // A line ending in `:` introduces the next (a list of
            // missing arguments, say); others are separate sentences.
            if !message.is_empty() {
                message += if message.ends_with(':') { " " } else { "; " };
            }
            message + &line
        });
    Err(Failure::usage("usage", message))
}

/// Whether `--json` is among the arguments, for errors found before they
/// could be parsed. Arguments after `--` are values, not flags.
pub fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// `text` on one line: a minijinja or serde message may span several, and
/// each error is one line of stderr.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
