//! The hooks Worker: the relay's template engine, in a Worker of its own.
//!
//! The relay forwards each `POST /v1/hooks/{route}` here over a service
//! binding (`HOOKS`), headers and bounded body as received. This Worker
//! reads the route from `ROUTES`, checks the sender with the secrets the
//! route names, runs its filter and templates (the routes crate), and
//! answers one [`HookAnswer`]; the relay does the rest (idempotency,
//! delivery, status). Keeping `minijinja` here keeps the relay, which every
//! notification goes through, small and quick to start.
//!
//! Not publicly routed (`workers_dev = false`): only the relay calls it.
//! Bindings: `ROUTES` (a `[vars.ROUTES]` table, or JSON text in a var or a
//! secret), `GROUPS` (the same, name → account ids), and the secrets the
//! routes name.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use worker::{Context, Date, Env, Request, Response, console_log, event};
use yunxin_edge_routes::{
    Event, Groups, HookAnswer, Route, RouteError, Routes, Scheme, Secret, Signed, VerifyError,
};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    let Some(route) = path.strip_prefix("/v1/hooks/") else {
        return Response::error(
            "the hooks Worker serves /v1/hooks/{route} to the relay",
            404,
        );
    };
    let body = req.bytes().await?;
    let headers: BTreeMap<String, String> = req.headers().entries().collect();
    let answer = match hook(&env, route, &headers, &body) {
        Ok(answer) => answer,
        Err(error) => HookAnswer::from(&error),
    };
    Response::from_json(&answer)
}

/// Verifies, filters and renders one request for `route_name`.
fn hook(
    env: &Env,
    route_name: &str,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<HookAnswer, RouteError> {
    let routes = routes(env)?;
    let route = routes.get(route_name).inspect_err(|_| {
        // A broken route: every problem of the config goes to the log.
        for problem in routes.problems() {
            console_log!("{}", json!({ "routes": problem.to_string() }));
        }
    })?;
    let now_secs = (Date::now().as_millis() / 1000) as i64;
    let misconfigured = |field: &str, problem: String| RouteError::Config {
        route: route_name.to_owned(),
        field: field.to_owned(),
        problem,
    };

    let secrets = secrets(env, route_name, route)?;
    yunxin_edge_routes::check_secrets(&route.verify.scheme, &secrets).map_err(|e| match e {
        VerifyError::BadSecret(n) => misconfigured(
            "verify.secrets",
            format!(
                "names binding `{}`, which is not a `whsec_…` or `whpk_…` key",
                route.verify.secrets.get(n - 1).map_or("?", String::as_str)
            ),
        ),
        other => misconfigured("verify.secrets", other.to_string()),
    })?;
    let app_key = match &route.verify.scheme {
        Scheme::YunxinCallback { app_key } => Some(optional(env, app_key).ok_or_else(|| {
            misconfigured(
                "verify.app_key",
                format!("names binding `{app_key}`, which is not set"),
            )
        })?),
        _ => None,
    };
    let signed = Signed {
        headers,
        body,
        now_secs,
    };
    yunxin_edge_routes::verify(&route.verify.scheme, &secrets, app_key.as_deref(), &signed)
        .map_err(|error| RouteError::Unauthorized {
            route: route_name.to_owned(),
            error,
        })?;

    let event = Event {
        route: route_name,
        headers,
        body,
        now_secs,
    };
    Ok(yunxin_edge_routes::render(route, &event, &groups(env)?)?.into())
}

/// The `ROUTES` binding: a table (an object var) or JSON text.
fn routes(env: &Env) -> Result<Routes, RouteError> {
    let config = json_binding(env, "ROUTES").ok_or_else(|| RouteError::Config {
        route: "ROUTES".into(),
        field: "ROUTES".into(),
        problem: "is not set: no webhook routes are configured".into(),
    })?;
    Routes::parse(&config)
}

/// The `GROUPS` binding, if any: a table or JSON text of name → ids.
fn groups(env: &Env) -> Result<Groups, RouteError> {
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
fn secrets(env: &Env, route_name: &str, route: &Route) -> Result<Vec<Secret>, RouteError> {
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

/// A text binding (secret or var), unset when blank.
fn optional(env: &Env, binding: &str) -> Option<String> {
    env.secret(binding)
        .or_else(|_| env.var(binding))
        .ok()
        .map(|value| value.to_string())
        .filter(|value| !value.trim().is_empty())
}
