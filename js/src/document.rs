//! Documents passed as JSON text: a stored request, an outcome and the parts
//! of a report. (The notification is the core's to read:
//! [`yunxin_edge::BatchNotification::from_json`].)
//!
//! The wrapper `JSON.stringify`s them (see the crate docs for why); they are
//! read here from `serde_json::Value`, field by field, so that an error names
//! the field at fault (`request.traceId`, `parts[2].receiverIds[0]`).

use js_sys::Uint8Array;
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};
use yunxin_edge::{AccountId, Error, Outcome};

use crate::error::{JsResult, js_error};
use crate::input::type_name;
use crate::output::outcome_from_value;

/// The JSON text of a document argument; `undefined`/`null` mean it is missing.
pub fn text(value: &JsValue, name: &str) -> JsResult<String> {
    if value.is_undefined() || value.is_null() {
        return Err(js_error(&Error::Missing {
            field: name.to_owned().into(),
        }));
    }
    value.as_string().ok_or_else(|| {
        js_error(&Error::Invalid {
            field: name.to_owned().into(),
            reason: "must be JSON text (the package's functions stringify it)",
            value: type_name(value),
        })
    })
}

/// A document's JSON as UTF-8 bytes: its text, or the `Uint8Array` the
/// wrapper encoded it into (copied into WebAssembly at once, where a string
/// is copied by a JavaScript loop over its characters); `undefined`/`null`
/// mean it is missing.
pub fn json(value: &JsValue, name: &str) -> JsResult<Vec<u8>> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    text(value, name).map(String::into_bytes)
}

/// Parses a document's JSON text. From bytes, as the core parses the
/// notification and Yunxin's answers: one instance of serde_json's parser
/// in the .wasm instead of two (about 1 kB gzip).
pub fn parse(text: &str, name: &str) -> Result<Value, Error> {
    serde_json::from_slice(text.as_bytes()).map_err(|e| Error::Json {
        field: name.to_owned().into(),
        reason: e.to_string(),
    })
}

/// An outcome in its serialised form (see [`outcome_from_value`]).
pub fn outcome(text: &str) -> Result<Outcome, Error> {
    outcome_from_value(&parse(text, "outcome")?, "outcome")
}

/// A request from `buildBatchRequests`, as read back for re-signing.
#[derive(Debug)]
pub struct StoredRequest {
    /// Position of the call in its plan.
    pub index: usize,
    /// The full URL of the batch call.
    pub url: String,
    /// The JSON body, sent again unchanged.
    pub body: String,
    /// The trace id, kept so that Yunxin delivers at most once.
    pub trace_id: String,
    /// The receivers of the call.
    pub receiver_ids: Vec<AccountId>,
}

/// Reads a stored request.
pub fn request(text: &str) -> Result<StoredRequest, Error> {
    let value = parse(text, "request")?;
    let request = Object::new(&value, "request".to_owned())?;
    Ok(StoredRequest {
        index: request.index("index")?,
        url: request.string("url")?,
        body: request.string("body")?,
        trace_id: request.string("traceId")?,
        receiver_ids: request.account_ids("receiverIds")?,
    })
}

/// One call's share of a report: its receivers and what became of it.
#[derive(Debug)]
pub struct ReportPart {
    /// The call's receivers.
    pub receiver_ids: Vec<AccountId>,
    /// The call's outcome; `None` when it was never sent.
    pub outcome: Option<Outcome>,
}

/// Reads the argument of `mergeReport`: an array of `{ receiverIds, outcome }`.
pub fn report_parts(text: &str) -> Result<Vec<ReportPart>, Error> {
    let Value::Array(parts) = parse(text, "parts")? else {
        return Err(Error::Invalid {
            field: "parts".into(),
            reason: "must be an array of { receiverIds, outcome }",
            value: "not an array".to_owned(),
        });
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let part = Object::new(part, format!("parts[{i}]"))?;
            let outcome = match part.get("outcome") {
                None | Some(Value::Null) => None,
                Some(outcome) => Some(outcome_from_value(outcome, &part.field("outcome"))?),
            };
            Ok(ReportPart {
                receiver_ids: part.account_ids("receiverIds")?,
                outcome,
            })
        })
        .collect()
}

/// A JSON object read field by field, with its path for errors.
struct Object<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Object<'a> {
    fn new(value: &'a Value, path: String) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Object { map, path }),
            other => Err(Error::Invalid {
                field: path.into(),
                reason: "must be an object",
                value: json_type(other).to_owned(),
            }),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn string(&self, key: &str) -> Result<String, Error> {
        match self.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => Err(Error::Missing {
                field: self.field(key).into(),
            }),
            Some(other) => Err(Error::Invalid {
                field: self.field(key).into(),
                reason: "must be a string",
                value: json_type(other).to_owned(),
            }),
        }
    }

    fn index(&self, key: &str) -> Result<usize, Error> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => value
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| Error::Invalid {
                    field: self.field(key).into(),
                    reason: "must be a non-negative whole number",
                    value: json_type(value).to_owned(),
                }),
        }
    }

    fn account_ids(&self, key: &str) -> Result<Vec<AccountId>, Error> {
        let field = self.field(key);
        match self.get(key) {
            None | Some(Value::Null) => Err(Error::Missing {
                field: field.into(),
            }),
            Some(Value::Array(ids)) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| match id {
                    Value::String(id) => Ok(AccountId::new(id.clone())),
                    other => Err(Error::Invalid {
                        field: format!("{field}[{i}]").into(),
                        reason: "must be a string",
                        value: json_type(other).to_owned(),
                    }),
                })
                .collect(),
            Some(other) => Err(Error::Invalid {
                field: field.into(),
                reason: "must be an array of account ids",
                value: json_type(other).to_owned(),
            }),
        }
    }
}

/// The JSON type of a value, as a reader would name it.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        result.unwrap_err().field().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_stored_request_reads_back() {
        let text = r#"{"index":2,"url":"u","body":"{}","traceId":"t","receiverIds":["a","b"],"headers":{}}"#;
        let request = request(text).unwrap();
        assert_eq!((request.index, request.trace_id.as_str()), (2, "t"));
        assert_eq!(
            request.receiver_ids,
            vec![AccountId::new("a"), AccountId::new("b")]
        );
    }

    #[test]
    fn request_errors_name_the_field() {
        assert_eq!(
            field_of(request(r#"{"url":"u","body":"b","receiverIds":[]}"#)),
            "request.traceId"
        );
        assert_eq!(
            field_of(request(
                r#"{"url":"u","body":"b","traceId":"t","receiverIds":["a",1]}"#
            )),
            "request.receiverIds[1]"
        );
        assert_eq!(field_of(request("[]")), "request");
        assert_eq!(field_of(request("{")), "request");
    }

    #[test]
    fn report_parts_read_outcomes_and_name_faults() {
        let parts = report_parts(
            r#"[{"receiverIds":["a"],"outcome":{"kind":"rejected","code":416,"msg":"m","retry":{}}},
                {"receiverIds":["b"],"outcome":null},{"receiverIds":["c"]}]"#,
        )
        .unwrap();
        assert_eq!(parts.len(), 3);
        assert!(matches!(
            parts[0].outcome,
            Some(Outcome::Rejected { code: 416, .. })
        ));
        assert!(parts[1].outcome.is_none() && parts[2].outcome.is_none());
        assert_eq!(
            field_of(report_parts(r#"[{"outcome":null}]"#)),
            "parts[0].receiverIds"
        );
        assert_eq!(
            field_of(report_parts(
                r#"[{"receiverIds":[],"outcome":{"kind":"maybe"}}]"#
            )),
            "parts[0].outcome"
        );
        assert_eq!(field_of(report_parts("{}")), "parts");
    }
}
