//! Reading the files and flags the subcommands share: the routes config,
//! groups, payloads and headers. A file that cannot be read is a usage
//! error (exit 2); one that reads but is wrong is a problem with the input
//! (exit 1).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use yunxin_edge_routes::{Groups, RouteError, Routes};

use crate::failure::Failure;

/// The bytes of the file given to `flag`.
pub fn read(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::usage(
            "unreadable_file",
            format!("cannot read {flag} `{}`: {e}", path.display()),
        )
    })
}

/// The routes config in `path`, parsed and checked by `Routes::parse`, the
/// relay's own parser; every problem it finds is in the failure.
///
/// The file holds the `ROUTES` binding: a JSON object of route name to
/// route (or JSON text holding one, as a secret would), or a wrangler JSON
/// config with the object at `vars.ROUTES`.
pub fn routes(path: &Path) -> Result<Routes, Failure> {
    let value = json(path, "--routes", |reason| {
        // The relay's wording for a ROUTES binding that is not JSON.
        Failure::config(&[RouteError::Config {
            route: "ROUTES".to_owned(),
            field: "ROUTES".to_owned(),
            problem: format!("is not JSON: {reason}"),
        }])
    })?;
    let routes = Routes::parse(&binding(value, "ROUTES")).map_err(|e| Failure::config(&[e]))?;
    // The relay serves the good routes of a config with broken ones; the
    // tool holds a config to the higher bar: no problem at all.
    let problems: Vec<RouteError> = routes.problems().cloned().collect();
    if problems.is_empty() {
        Ok(routes)
    } else {
        Err(Failure::config(&problems))
    }
}

/// The groups in `path` (the relay's `GROUPS` binding: a JSON object of
/// group name to a list of account ids); none without a file, as in a relay
/// without the binding.
pub fn groups(path: Option<&Path>) -> Result<Groups, Failure> {
    let Some(path) = path else {
        return Ok(Groups::new());
    };
    let invalid = |reason: String| {
        Failure::input(
            "invalid_groups",
            format!(
                "--groups `{}` is not a JSON object of group name to a list of account ids: {reason}",
                path.display()
            ),
        )
    };
    let value = binding(json(path, "--groups", invalid)?, "GROUPS");
    // The binding may hold JSON text, as a secret or a `.dev.vars` does.
    let value = match value {
        Value::String(text) => serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?,
        other => other,
    };
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// A `--header` value, `name: value`: the name lower-cased (the relay
/// matches names case-insensitively), the value trimmed as HTTP does.
pub fn header(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| format!("`{arg}` is not `name: value`"))?;
    let name = name.trim();
    let is_token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b));
    if !is_token {
        return Err(format!("`{name}` is not a header name"));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_owned()))
}

/// Headers as the routes crate takes them: lower-cased names, a repeated
/// header's values joined with `", "` as the relay's request does.
pub fn headers(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in pairs {
        headers
            .entry(name.clone())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    headers
}

/// The JSON in the file given to `flag`; `not_json` makes the failure for
/// a file that reads but does not parse.
fn json(
    path: &Path,
    flag: &str,
    not_json: impl FnOnce(String) -> Failure,
) -> Result<Value, Failure> {
    serde_json::from_slice(&read(path, flag)?).map_err(|e| not_json(e.to_string()))
}

/// The binding `name` of a wrangler JSON config (`{"vars": {name: ...}}`),
/// or `value` itself. A route named `vars` cannot be mistaken for it: a
/// route has no field named like a binding.
fn binding(value: Value, name: &str) -> Value {
    match value {
        Value::Object(mut config)
            if config.get("vars").and_then(|vars| vars.get(name)).is_some() =>
        {
            config["vars"][name].take()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_lower_cased_and_values_trimmed() {
        assert_eq!(
            header("X-GitHub-Event:  push "),
            Ok(("x-github-event".into(), "push".into()))
        );
        // Only the first colon separates: values may hold more.
        assert_eq!(
            header("Link: <https://x>; rel=next"),
            Ok(("link".into(), "<https://x>; rel=next".into()))
        );
        assert_eq!(header("empty:"), Ok(("empty".into(), String::new())));
        assert!(header("no colon").is_err());
        assert!(header(": value").is_err());
        assert!(header("two words: value").is_err());
    }

    #[test]
    fn repeated_headers_are_joined_as_in_a_request() {
        let pairs = [
            ("accept".to_owned(), "a".to_owned()),
            ("x-one".to_owned(), "1".to_owned()),
            ("accept".to_owned(), "b".to_owned()),
        ];
        let headers = headers(&pairs);
        assert_eq!(headers["accept"], "a, b");
        assert_eq!(headers["x-one"], "1");
    }

    #[test]
    fn a_wrangler_config_gives_its_binding() {
        let routes = serde_json::json!({ "r": { "sender_id": "s" } });
        let wrangler = serde_json::json!({ "name": "relay", "vars": { "ROUTES": routes } });
        assert_eq!(binding(wrangler, "ROUTES"), routes);
        // Anything else is the binding itself, a route named `vars` too.
        let vars = serde_json::json!({ "vars": { "sender_id": "s" } });
        assert_eq!(binding(vars.clone(), "ROUTES"), vars);
    }
}
