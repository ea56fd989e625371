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
use crate::storm::digest::{Flushed, Single};
use crate::template::{self, Context};
use crate::time::{Timezone, UnknownZone};
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

/// What rendering takes besides the route and the event: the default zone
/// of the `datetime` filter (the relay's `TIMEZONE`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// The zone `datetime` formats in when not told (`tz=`); by default
    /// [`crate::time::DEFAULT_TIMEZONE`].
    pub timezone: Timezone,
}

impl RenderOptions {
    /// Options with the default zone `name` (an IANA name, e.g. the
    /// relay's `TIMEZONE`); an unknown name is a configuration problem
    /// naming `TIMEZONE`.
    ///
    /// ```
    /// use yunxin_edge_routes::RenderOptions;
    /// assert!(RenderOptions::with_timezone("Europe/London").is_ok());
    /// let e = RenderOptions::with_timezone("Europe/Londn").unwrap_err();
    /// assert_eq!(e.to_json()["field"], "TIMEZONE");
    /// ```
    pub fn with_timezone(name: &str) -> Result<Self, RouteError> {
        let timezone = Timezone::new(name).map_err(|UnknownZone(_)| RouteError::Config {
            route: "TIMEZONE".into(),
            field: "TIMEZONE".into(),
            problem: format!("{}", UnknownZone(name.chars().take(64).collect())),
        })?;
        Ok(RenderOptions { timezone })
    }
}

/// The payload of an event: its body as JSON, `{}` for an empty body.
pub fn payload(name: &str, body: &[u8]) -> Result<Value, RouteError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        serde_json::from_slice(&exact_integers(body)).map_err(|e| RouteError::Payload {
            route: name.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// The error of a template or expression in `field` of route `name`.
pub(crate) fn failed(
    name: &str,
    field: &str,
) -> impl FnOnce(minijinja::Error) -> RouteError + use<> {
    let (name, field) = (name.to_owned(), field.to_owned());
    move |e: minijinja::Error| {
        use minijinja::ErrorKind::{UnknownFilter, UnknownFunction, UnknownMethod, UnknownTest};
        // A name the engine does not know is the route's fault, not the
        // event's: it is only found when a template runs.
        if matches!(
            e.kind(),
            UnknownFilter | UnknownTest | UnknownFunction | UnknownMethod
        ) {
            RouteError::Config {
                route: name,
                field,
                problem: e.to_string(),
            }
        } else {
            RouteError::Render {
                route: name,
                field,
                reason: e.to_string(),
            }
        }
    }
}

/// Renders `route` for `event`, `datetime` formatting in
/// [`crate::time::DEFAULT_TIMEZONE`] unless told otherwise; see
/// [`render_with`].
pub fn render(route: &Route, event: &Event<'_>, groups: &Groups) -> Result<Rendered, RouteError> {
    render_with(route, event, groups, &RenderOptions::default())
}

/// Renders `route` for `event` with `options` (the relay's `TIMEZONE`).
pub fn render_with(
    route: &Route,
    event: &Event<'_>,
    groups: &Groups,
    options: &RenderOptions,
) -> Result<Rendered, RouteError> {
    let name = event.route;
    let payload = payload(name, event.body)?;
    let context = Context::new(&payload, event.headers, name, event.now_secs)
        .with_timezone(&options.timezone);
    let failed = |field: &str| failed(name, field);

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

    let (parsed, json) = notification(
        route,
        name,
        &context,
        receivers,
        ("content", &route.content),
        route
            .push_content
            .as_ref()
            .map(|template| ("push_content", template)),
    )?;

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

/// Renders a flushed digest of `route` (see [`crate::storm::digest`]):
/// `digest_content` and `digest_push_content` over `events` (the payloads,
/// oldest first), `count`, `first_at` and `last_at` (UNIX seconds), `key`,
/// `route` and `now` (the flush time), to the digest's receivers, with the
/// digest's id as its event id. The route's other fields (`sender_id`,
/// `sound`, `push_payload`, `push_config`, `route_config`,
/// `notification_config`) render as for its first event (`payload` is the
/// first event's; `headers` are empty: a digest has no one request). With
/// no `digest_push_content` the digest has no push text: the route's
/// `push_content` speaks of one event.
///
/// A window of one event with `single = "plain"` sends that event's own
/// notification (to the same receivers, under the digest's id). Either
/// way the notification goes through the core's parser, so it meets every
/// documented limit: keep `events` loops bounded (`events[:10]`).
pub fn render_digest(
    route: &Route,
    digest: &Flushed,
    options: &RenderOptions,
) -> Result<Rendered, RouteError> {
    let name = digest.route.as_str();
    let invalid = |error| RouteError::Notification {
        route: name.to_owned(),
        error,
    };
    let config = route.digest.as_ref().ok_or_else(|| RouteError::Config {
        route: name.to_owned(),
        field: "digest".into(),
        problem: "is not set: the route makes no digests".into(),
    })?;
    if config.single == Single::Plain
        && digest.count() == 1
        && let Some(plain) = &digest.plain
    {
        let parsed = BatchNotification::from_json(plain.to_string()).map_err(invalid)?;
        parsed.validate().map_err(invalid)?;
        return Ok(Rendered::Notification {
            notification: Box::new(parsed),
            json: plain.clone(),
            event_id: digest.id.to_string(),
        });
    }
    let content = route
        .digest_content
        .as_ref()
        .ok_or_else(|| RouteError::Config {
            route: name.to_owned(),
            field: "digest_content".into(),
            problem: "is not set: a route with a `digest` needs one".into(),
        })?;
    let secs = |ms: u64| (ms / 1000) as i64;
    let first = digest
        .events
        .first()
        .map_or(Value::Null, |e| e.payload.clone());
    let events: Vec<&Value> = digest.events.iter().map(|e| &e.payload).collect();
    let context = Context::new(&first, &BTreeMap::new(), name, secs(digest.flushed_at_ms))
        .with_timezone(&options.timezone)
        .with_values(minijinja::context! {
            events => minijinja::Value::from(minijinja::value::Serde(&events)),
            count => digest.count(),
            first_at => secs(digest.first_at_ms()),
            last_at => secs(digest.last_at_ms()),
            key => digest.key.as_str(),
        });
    let receivers = digest
        .receivers
        .iter()
        .map(|id| Value::from(id.as_str()))
        .collect();
    let (parsed, json) = notification(
        route,
        name,
        &context,
        receivers,
        ("digest_content", content),
        route
            .digest_push_content
            .as_ref()
            .map(|template| ("digest_push_content", template)),
    )?;
    Ok(Rendered::Notification {
        notification: Box::new(parsed),
        json,
        event_id: digest.id.to_string(),
    })
}

/// Renders the notification's fields in `context`, to `receivers`, with
/// `content` and `push_content` from the fields named, and parses it with
/// the core.
fn notification(
    route: &Route,
    name: &str,
    context: &Context,
    receivers: Vec<Value>,
    (content_field, content): (&str, &Value),
    push_content: Option<(&str, &String)>,
) -> Result<(BatchNotification, Value), RouteError> {
    let failed = |field: &str| failed(name, field);
    let text =
        |field: &str, template: &str| template::render(template, context).map_err(failed(field));
    let mut notification = Map::new();
    notification.insert(
        "sender_id".into(),
        text("sender_id", &route.sender_id)?.into(),
    );
    notification.insert("receiver_ids".into(), Value::Array(receivers));
    let content = template::render_value(content, context).map_err(failed(content_field))?;
    notification.insert("content".into(), content);
    if let Some(sound) = &route.sound {
        notification.insert("sound".into(), text("sound", sound)?.into());
    }
    let mut push = match &route.push_config {
        Some(settings) => object(
            template::render_value(&Value::Object(settings.clone()), context)
                .map_err(failed("push_config"))?,
        ),
        None => Map::new(),
    };
    if let Some((field, push_content)) = push_content {
        push.insert("push_content".into(), text(field, push_content)?.into());
    }
    if let Some(push_payload) = &route.push_payload {
        // Yunxin takes the payload as JSON text.
        let rendered =
            template::render_value(push_payload, context).map_err(failed("push_payload"))?;
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
            let rendered = template::render_value(&Value::Object(settings.clone()), context)
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
    Ok((parsed, json))
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
fn exact_integers(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
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
