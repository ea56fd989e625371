//! Templates and expressions: Jinja syntax through `minijinja`, over the
//! event's `payload` (the parsed JSON body), `headers` (lower-cased names),
//! `route` (its name) and `now` (UNIX seconds, the caller's clock), with
//! the time filters `datetime`, `timestamp` and `duration` ([`crate::time`]).
//!
//! Undefined values chain (`payload.pull_request.merged` on a push event is
//! simply undefined, and false in a filter), and every evaluation runs on a
//! fuel budget, so that no payload can keep a template busy for long.

use minijinja::value::{Kwargs, Serde};
use minijinja::{Environment, UndefinedBehavior, Value as Jinja};
use serde_json::{Map, Value};

use crate::time::{self, Timezone};

/// Headers templates never see.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Instructions one template or expression may run; a template that loops
/// over a payload's lists stays well under it.
const FUEL: u64 = 200_000;

/// The engine, its time filters formatting in `zone` by default.
fn environment(zone: &Timezone) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    let zone = zone.clone();
    env.add_filter(
        "datetime",
        move |value: Jinja, format: Option<String>, kwargs: Kwargs| {
            time::datetime(&zone, &value, format.as_deref(), &kwargs)
        },
    );
    env.add_filter("timestamp", |value: Jinja| time::timestamp(&value));
    env.add_filter("duration", |value: Jinja, kwargs: Kwargs| {
        time::duration(&value, &kwargs)
    });
    env
}

/// The engine for compiling only: filters are looked up when a template
/// runs, so the zone does not matter.
fn compiler() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_recursion_limit(32);
    env
}

/// The values templates see, and the default zone of `datetime`.
pub struct Context(Jinja, Timezone);

impl Context {
    /// The context of one event.
    pub fn new(
        payload: &Value,
        headers: &std::collections::BTreeMap<String, String>,
        route: &str,
        now_secs: i64,
    ) -> Self {
        // Headers that carry credentials are left out, so that no template
        // can put a token into a notification or a dry-run answer.
        let headers: std::collections::BTreeMap<&str, &str> = headers
            .iter()
            .filter(|(name, _)| !CREDENTIAL_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Context(
            minijinja::context! {
                payload => Jinja::from(Serde(payload)),
                headers => Jinja::from(Serde(&headers)),
                route => route,
                now => now_secs,
            },
            Timezone::default(),
        )
    }

    /// The same context, `datetime` formatting in `zone` unless told
    /// otherwise (the relay's `TIMEZONE`).
    pub fn with_timezone(mut self, zone: &Timezone) -> Self {
        self.1 = zone.clone();
        self
    }

    /// The same values and more: a digest's `events`, `count`, … beside
    /// `route` and `now`.
    pub(crate) fn with_values(mut self, values: Jinja) -> Self {
        self.0 = minijinja::context! { ..values, ..self.0 };
        self
    }
}

/// Renders a template to text.
pub fn render(template: &str, context: &Context) -> Result<String, minijinja::Error> {
    environment(&context.1).render_str(template, &context.0)
}

/// Renders a JSON value: strings are templates, objects and arrays are
/// rendered value by value, anything else is kept.
pub fn render_value(value: &Value, context: &Context) -> Result<Value, minijinja::Error> {
    Ok(match value {
        Value::String(template) => Value::String(render(template, context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_value(item, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), render_value(value, context)?)))
                .collect::<Result<Map<_, _>, minijinja::Error>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates an expression to JSON (undefined is `null`).
pub fn eval(expression: &str, context: &Context) -> Result<Value, minijinja::Error> {
    let env = environment(&context.1);
    let value = env.compile_expression(expression)?.eval(&context.0)?;
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()))
}

/// Evaluates an expression for its truth.
pub fn is_true(expression: &str, context: &Context) -> Result<bool, minijinja::Error> {
    let env = environment(&context.1);
    Ok(env
        .compile_expression(expression)?
        .eval(&context.0)?
        .is_true())
}

/// Whether an expression compiles.
pub fn check_expression(expression: &str) -> Result<(), minijinja::Error> {
    compiler().compile_expression(expression).map(drop)
}

/// Whether a template compiles.
pub fn check_template(template: &str) -> Result<(), minijinja::Error> {
    compiler().template_from_str(template).map(drop)
}

/// The templates of a JSON value that do not compile, by path.
pub fn check_value(path: &str, value: &Value) -> Vec<(String, minijinja::Error)> {
    match value {
        Value::String(template) => check_template(template)
            .err()
            .map(|e| (path.to_owned(), e))
            .into_iter()
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| check_value(&format!("{path}[{i}]"), item))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(key, item)| check_value(&format!("{path}.{key}"), item))
            .collect(),
        _ => Vec::new(),
    }
}
