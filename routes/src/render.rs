//! From an event (verified by the caller) to a notification: parse the payload, apply the
//! filter, render every field, resolve receivers and groups, and hand the
//! JSON to the core's one parser, so a rendered notification is checked
//! exactly like one sent to `/v1/notifications`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use yunxin_edge::BatchNotification;

use crate::config::Route;
use crate::error::RouteError;
use crate::template::{self, Context};
use crate::verify::{self, Scheme};

/// Named lists of receivers (the `GROUPS` binding).
pub type Groups = BTreeMap<String, Vec<String>>;

/// An event as the route sees it, once verified.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The route's name.
    pub route: &'a str,
    /// Header names lower-cased.
    pub headers: &'a BTreeMap<String, String>,
    /// The raw body.
    pub body: &'a [u8],
    /// The relay's clock, UNIX seconds.
    pub now_secs: i64,
}

/// What a route makes of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// The filter said no: nothing is sent.
    Skipped {
        /// Why, for the answer.
        reason: String,
    },
    /// A notification to deliver.
    Notification {
        /// The notification, parsed and ready to plan.
        notification: Box<BatchNotification>,
        /// Its JSON, as rendered (for a dry run).
        json: Value,
        /// The event id: route and idempotency key, visible ASCII.
        event_id: String,
    },
}

/// Longest event id (the relay's `webhook-id` limit).
const MAX_EVENT_ID: usize = 256;

/// Renders `route` for `event`.
pub fn render(route: &Route, event: &Event<'_>, groups: &Groups) -> Result<Rendered, RouteError> {
    let name = event.route;
    let payload: Value = if event.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&exact_integers(event.body)).map_err(|e| RouteError::Payload {
            route: name.to_owned(),
            reason: e.to_string(),
        })?
    };
    let context = Context::new(&payload, event.headers, name, event.now_secs);
    let failed = |field: &str| {
        let field = field.to_owned();
        move |e: minijinja::Error| {
            use minijinja::ErrorKind::{
                UnknownFilter, UnknownFunction, UnknownMethod, UnknownTest,
            };
            // A name the engine does not know is the route's fault, not the
            // event's: it is only found when a template runs.
            if matches!(
                e.kind(),
                UnknownFilter | UnknownTest | UnknownFunction | UnknownMethod
            ) {
                RouteError::Config {
                    route: name.to_owned(),
                    field,
                    problem: e.to_string(),
                }
            } else {
                RouteError::Render {
                    route: name.to_owned(),
                    field,
                    reason: e.to_string(),
                }
            }
        }
    };

    if let Some(filter) = &route.filter
        && !template::is_true(filter, &context).map_err(failed("filter"))?
    {
        // The sender learns that it was filtered out, not the filter.
        return Ok(Rendered::Skipped {
            reason: "the route's filter is false for this event".to_owned(),
        });
    }

    let mut receivers: Vec<Value> = route.receivers.iter().cloned().map(Value::from).collect();
    if let Some(expression) = &route.receivers_from {
        match template::eval(expression, &context).map_err(failed("receivers_from"))? {
            Value::Null => {}
            Value::Array(ids) => {
                for id in ids {
                    receivers.push(id_text(id).map_err(|reason| RouteError::Render {
                        route: name.to_owned(),
                        field: "receivers_from".to_owned(),
                        reason,
                    })?);
                }
            }
            id => receivers.push(id_text(id).map_err(|reason| RouteError::Render {
                route: name.to_owned(),
                field: "receivers_from".to_owned(),
                reason,
            })?),
        }
    }
    for group in &route.groups {
        let members = groups.get(group).ok_or_else(|| RouteError::Config {
            route: name.to_owned(),
            field: format!("groups[{group}]"),
            problem: "is not in the GROUPS binding".to_owned(),
        })?;
        receivers.extend(members.iter().cloned().map(Value::from));
    }

    let text =
        |field: &str, template: &str| template::render(template, &context).map_err(failed(field));
    let mut notification = Map::new();
    notification.insert(
        "sender_id".into(),
        text("sender_id", &route.sender_id)?.into(),
    );
    notification.insert("receiver_ids".into(), Value::Array(receivers));
    let content = template::render_value(&route.content, &context).map_err(failed("content"))?;
    notification.insert("content".into(), content);
    if let Some(sound) = &route.sound {
        notification.insert("sound".into(), text("sound", sound)?.into());
    }
    let mut push = match &route.push_config {
        Some(settings) => object(
            template::render_value(&Value::Object(settings.clone()), &context)
                .map_err(failed("push_config"))?,
        ),
        None => Map::new(),
    };
    if let Some(push_content) = &route.push_content {
        push.insert(
            "push_content".into(),
            text("push_content", push_content)?.into(),
        );
    }
    if let Some(push_payload) = &route.push_payload {
        // Yunxin takes the payload as JSON text.
        let rendered =
            template::render_value(push_payload, &context).map_err(failed("push_payload"))?;
        let text = match rendered {
            Value::String(text) => text,
            other => other.to_string(),
        };
        push.insert("push_payload".into(), text.into());
    }
    if !push.is_empty() {
        notification.insert("push_config".into(), Value::Object(push));
    }
    for (field, settings) in [
        ("route_config", &route.route_config),
        ("notification_config", &route.notification_config),
    ] {
        if let Some(settings) = settings {
            let rendered = template::render_value(&Value::Object(settings.clone()), &context)
                .map_err(failed(field))?;
            notification.insert(field.into(), rendered);
        }
    }

    let json = Value::Object(notification);
    let invalid = |error| RouteError::Notification {
        route: name.to_owned(),
        error,
    };
    let parsed = BatchNotification::from_json(json.to_string()).map_err(invalid)?;
    parsed.validate().map_err(invalid)?;

    let key = match &route.idempotency_key {
        Some(expression) => {
            let key = template::eval(expression, &context).map_err(failed("idempotency_key"))?;
            Some(match key {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .filter(|k| !k.is_empty())
        }
        None => default_key(&route.verify.scheme, event.headers, &payload),
    };
    let key = key.unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(event.body))));
    Ok(Rendered::Notification {
        notification: Box::new(parsed),
        json,
        event_id: event_id(name, &key),
    })
}

/// The scheme's own idempotency key: the delivery id it signs (Standard
/// Webhooks), or Stripe's event id (inside the signed body). Nothing for
/// GitHub: `X-GitHub-Delivery` is not signed, so a captured request replayed
/// with a fresh one would notify again; its body's hash is the key instead
/// (a redelivery repeats the body exactly).
fn default_key(
    scheme: &Scheme,
    headers: &BTreeMap<String, String>,
    payload: &Value,
) -> Option<String> {
    match scheme {
        Scheme::Stripe => payload["id"].as_str().map(str::to_owned),
        Scheme::StandardWebhooks => verify::delivery_id(scheme, headers).map(str::to_owned),
        _ => None,
    }
}

/// `{route}:{key}`, or `{route}:sha256:{hex}` of a key that is not short
/// visible ASCII.
fn event_id(route: &str, key: &str) -> String {
    let id = format!("{route}:{key}");
    if id.len() <= MAX_EVENT_ID && id.bytes().all(|b| b.is_ascii_graphic()) {
        id
    } else {
        format!(
            "{route}:sha256:{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

/// A receiver id from an expression's value: text as it is, integers as
/// their digits (ids are often numeric in payloads). Any other number is
/// refused: `1.5` or `1e3` names no account, and writing it as some
/// account's digits would notify the wrong one.
fn id_text(id: Value) -> Result<Value, String> {
    match id {
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Value::String(n.to_string())),
        Value::Number(n) => Err(format!(
            "gave the number {n}, which is not an integer: an account id is text or an integer"
        )),
        other => Ok(other),
    }
}

/// The payload with each integer too large for 64 bits written as a string
/// of its digits: parsed as a number, it would become the nearest double
/// and lose digits (`12345678901234567890123` → `1.2345678901234568e22`),
/// and an id that loses digits names another account. Nothing else
/// changes; the body is borrowed as it is when it holds no such integer.
///
/// ```text
/// {"to": 12345678901234567890123, "n": 7}  →  {"to": "12345678901234567890123", "n": 7}
/// ```
pub fn exact_integers(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < body.len() {
        let byte = body[i];
        if in_string {
            match byte {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < body.len()
                    && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &body[start..i];
                if is_wide_integer(token) {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 16));
                    out.extend_from_slice(&body[copied..start]);
                    out.push(b'"');
                    out.extend_from_slice(token);
                    out.push(b'"');
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            std::borrow::Cow::Owned(out)
        }
    }
}

/// A JSON integer literal (`-?(0|[1-9][0-9]*)`) that fits neither `i64`
/// nor `u64`.
fn is_wide_integer(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    let literal = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    let text = std::str::from_utf8(token).unwrap_or_default();
    literal && text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => Map::new(),
    }
}
