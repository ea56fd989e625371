//! The notification, from the JSON text the wrapper made of the caller's
//! object, with the field at fault named when its shape is wrong.
//!
//! The JSON goes through `serde_json::Value` into the core's
//! [`BatchNotification`], so the core's rules apply unchanged: unknown fields
//! are refused, `content` may be any JSON value. Two things are added for
//! JavaScript callers:
//!
//! - `null` properties count as absent (`undefined` ones vanish in
//!   `JSON.stringify` already), as `{ sound: undefined }` or `null` is how JS
//!   code usually leaves a field unset;
//! - a type error names its field (`receiver_ids[3]`), which serde's message
//!   does not (see `locate`).

use serde::Deserialize;
use serde_json::Value;
use yunxin_edge::{BatchNotification, Error};

use crate::document::{json_type, parse};

/// Reads a notification from JSON text (not validated yet: planning does it).
pub fn from_json(text: &str) -> Result<BatchNotification, Error> {
    let json = parse(text, "notification")?;
    if !json.is_object() {
        return Err(Error::Invalid {
            field: "notification".into(),
            reason: "must be an object",
            value: json_type(&json).to_owned(),
        });
    }
    from_value(json)
}

/// Reads a notification from JSON data, naming the field at fault.
pub fn from_value(mut json: Value) -> Result<BatchNotification, Error> {
    drop_nulls(&mut json);
    BatchNotification::deserialize(&json).map_err(|e| Error::Invalid {
        field: render(&locate(&json)).into(),
        reason: "wrong type or unknown field",
        value: e.to_string(),
    })
}

/// Removes `null` properties of the notification and of its settings
/// objects; not array items (a `null` receiver id is an error worth naming),
/// and nothing inside `content`, which is the app's own JSON, sent as it is.
fn drop_nulls(notification: &mut Value) {
    let Value::Object(fields) = notification else {
        return;
    };
    fields.retain(|_, v| !v.is_null());
    for (key, value) in fields.iter_mut() {
        if key != "content"
            && let Value::Object(settings) = value
        {
            settings.retain(|_, v| !v.is_null());
        }
    }
}

/// One step of a path into the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path of the value that makes `json` fail to deserialise.
///
/// Every field of [`BatchNotification`] has a default, so a notification
/// holding a single field deserialises unless that field is unknown or
/// mistyped. Each child is therefore tried alone, wrapped in its path; a
/// failing container is descended into when an empty container of the same
/// kind passes (the fault is inside), and blamed itself otherwise (the key
/// is unknown, or the container is the wrong kind). Only called on the error
/// path, so the repeated small deserialisations do not matter.
fn locate(json: &Value) -> Vec<Step> {
    let mut path = Vec::new();
    let mut node = json;
    'descend: loop {
        let children: Vec<(Step, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Step::Index(i), v))
                .collect(),
            _ => break,
        };
        for (step, child) in children {
            path.push(step);
            if fails(&path, child) {
                let inside = match child {
                    Value::Object(_) => !fails(&path, &Value::Object(Default::default())),
                    Value::Array(_) => !fails(&path, &Value::Array(Vec::new())),
                    _ => false,
                };
                if !inside {
                    return path;
                }
                node = child;
                continue 'descend;
            }
            path.pop();
        }
        break;
    }
    path
}

/// Whether a notification holding only `leaf` at `path` fails to deserialise.
fn fails(path: &[Step], leaf: &Value) -> bool {
    let wrapped = path
        .iter()
        .rev()
        .fold(leaf.clone(), |inner, step| match step {
            Step::Key(key) => Value::Object([(key.clone(), inner)].into_iter().collect()),
            Step::Index(_) => Value::Array(vec![inner]),
        });
    BatchNotification::deserialize(&wrapped).is_err()
}

/// A path as the core names fields: `push_config.push_forcepush_ids[2]`.
fn render(path: &[Step]) -> String {
    if path.is_empty() {
        return "notification".to_owned();
    }
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(json: Value) -> String {
        match from_value(json) {
            Err(Error::Invalid { field, .. }) => field.into_owned(),
            other => panic!("expected an invalid-field error, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_notification_reads_with_nulls_as_absent() {
        let notification = from_value(json!({
            "sender_id": "ops", "receiver_ids": ["a", "b"], "content": {"k": 1},
            "sound": null, "push_config": {"push_content": null, "push_enabled": false}
        }))
        .unwrap();
        assert_eq!(notification.sound, None);
        assert_eq!(notification.content.as_str(), r#"{"k":1}"#);
        assert_eq!(notification.push_config.unwrap().push_enabled, Some(false));
    }

    #[test]
    fn nulls_inside_content_are_sent_as_they_are() {
        let json =
            json!({"sender_id": "a", "receiver_ids": ["b"], "content": {"k": null, "l": [null]}});
        let notification = from_value(json).unwrap();
        assert_eq!(notification.content.as_str(), r#"{"k":null,"l":[null]}"#);
    }

    #[test]
    fn a_mistyped_receiver_is_named_by_its_index() {
        let json = json!({"sender_id": "ops", "receiver_ids": ["a", 5], "content": "x"});
        assert_eq!(field_of(json), "receiver_ids[1]");
    }

    #[test]
    fn a_null_receiver_is_named_not_dropped() {
        let json = json!({"sender_id": "ops", "receiver_ids": ["a", null], "content": "x"});
        assert_eq!(field_of(json), "receiver_ids[1]");
    }

    #[test]
    fn nested_fields_and_unknown_keys_are_named() {
        let json = json!({"sender_id": "ops", "push_config": {"push_content": 5}});
        assert_eq!(field_of(json), "push_config.push_content");
        let json = json!({"sender_id": "ops", "recevier_ids": ["a"]});
        assert_eq!(field_of(json), "recevier_ids");
        let json = json!({"route_config": {"route_enabled": true, "route_env": "x"}});
        assert_eq!(field_of(json), "route_config.route_env");
        let json = json!({"push_config": {"push_forcepush_ids": ["a", "b", true]}});
        assert_eq!(field_of(json), "push_config.push_forcepush_ids[2]");
    }

    #[test]
    fn a_container_of_the_wrong_kind_is_blamed_itself() {
        assert_eq!(field_of(json!({"receiver_ids": "alice"})), "receiver_ids");
        assert_eq!(
            field_of(json!({"receiver_ids": {"0": "alice"}})),
            "receiver_ids"
        );
        assert_eq!(field_of(json!({"push_config": "x"})), "push_config");
    }

    #[test]
    fn a_fractional_priority_is_named() {
        let json = json!({"notification_config": {"high_priority": 1.5}});
        assert_eq!(field_of(json), "notification_config.high_priority");
    }
}
