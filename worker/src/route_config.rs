//! The webhook routes' configuration, read from the Worker's bindings:
//! `ROUTES` (a `[vars.ROUTES]` table, or JSON text in a var or a secret),
//! `GROUPS` (the same, name → account ids), `TIMEZONE`, and the secrets a
//! route names. A leaf: the request path (`hooks`), the routes' objects
//! (`storm`), the silences and the dashboard all read the routes here, and
//! it names none of them.

use serde_json::Value;
use worker::Env;
use yunxin_edge_routes::{Groups, RenderOptions, Route, RouteError, Routes, Scheme, Secret};

use crate::config::optional;

/// The `ROUTES` binding: a table (an object var) or JSON text.
pub fn routes(env: &Env) -> Result<Routes, RouteError> {
    let config = json_binding(env, "ROUTES").ok_or_else(|| RouteError::Config {
        route: "ROUTES".into(),
        field: "ROUTES".into(),
        problem: "is not set: no webhook routes are configured".into(),
    })?;
    Routes::parse(&config)
}

/// How templates show times: `TIMEZONE` (an IANA zone; default
/// `Asia/Shanghai`), a configuration problem naming it when unknown.
pub fn render_options(env: &Env) -> Result<RenderOptions, RouteError> {
    match optional(env, "TIMEZONE") {
        Some(zone) => RenderOptions::with_timezone(zone.trim()),
        None => Ok(RenderOptions::default()),
    }
}

/// The `GROUPS` binding, if any: a table or JSON text of name → ids.
pub fn groups(env: &Env) -> Result<Groups, RouteError> {
    let bad = || RouteError::Config {
        route: "GROUPS".into(),
        field: "GROUPS".into(),
        problem: "is not a JSON object of group name to a list of account ids".into(),
    };
    let value = match json_binding(env, "GROUPS") {
        None => return Ok(Groups::new()),
        Some(Value::String(text)) => serde_json::from_str(&text).map_err(|_| bad())?,
        Some(value) => value,
    };
    serde_json::from_value(value).map_err(|_| bad())
}

/// A binding holding JSON: text (a var, a secret, `.dev.vars`), or a table
/// (`[vars.NAME]` in `wrangler.toml`, an object var).
fn json_binding(env: &Env, binding: &str) -> Option<Value> {
    // Read raw: `var` takes only text and `object_var` only plain objects,
    // and a binding of the wrong type must be reported, not read as unset.
    let value = worker::js_sys::Reflect::get(env, &binding.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())?;
    match value.as_string() {
        Some(text) => Some(Value::String(text)),
        None => worker::js_sys::JSON::stringify(&value)
            .ok()
            .and_then(|text| text.as_string())
            .and_then(|text| serde_json::from_str(&text).ok()),
    }
}

/// The secrets a route names, read from their bindings.
pub fn secrets(env: &Env, route_name: &str, route: &Route) -> Result<Vec<Secret>, RouteError> {
    let mut bindings: Vec<&str> = route.verify.secrets.iter().map(String::as_str).collect();
    if bindings.is_empty() && matches!(route.verify.scheme, Scheme::YunxinCallback { .. }) {
        bindings.push("YUNXIN_APP_SECRET");
    }
    bindings
        .into_iter()
        .map(|binding| {
            optional(env, binding)
                .map(Secret::new)
                .ok_or_else(|| RouteError::Config {
                    route: route_name.to_owned(),
                    field: "verify.secrets".to_owned(),
                    problem: format!("names binding `{binding}`, which is not set"),
                })
        })
        .collect()
}
