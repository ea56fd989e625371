//! The shapes handed to JavaScript, and their conversion.
//!
//! Results are JSON text that the wrapper parses into plain objects, which
//! can be stored and passed back: a stored request can be re-signed, stored
//! outcomes merged.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yunxin_edge::{
    AccountId, FailedReceiver, Outcome, PlannedRequest, RetryVerdict, SignedRequest,
};

use crate::error::{JsResult, js_error};

/// A result as JSON text, which the wrapper parses.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> JsResult<String> {
    serde_json::to_string(value).map_err(|e| {
        // Only this crate's own shapes are serialised, and they always can be;
        // the error exists because serde_json's signature has one.
        js_error(&yunxin_edge::Error::Json {
            field: "result".into(),
            reason: e.to_string(),
        })
    })
}

/// Header (name, value) pairs as one JS object, in their order.
///
/// An object rather than pairs because `fetch`, `Headers` and every HTTP
/// client take one, and the header names here are distinct.
pub struct HeaderMap<'a>(pub &'a [(&'a str, String)]);

impl Serialize for HeaderMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A signed batch call, ready for `fetch(request.url, request)`, with what a
/// retry (`resignRequest`) and the report (`mergeReport`) need.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestShape<'a> {
    /// Position of the call in its plan, from 0.
    pub index: usize,
    /// Always `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Signature, trace id and content type.
    #[serde(serialize_with = "header_map")]
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: &'a str,
    /// The `X-custom-traceid`, kept on every retry.
    pub trace_id: &'a str,
    /// The receivers of this call.
    pub receiver_ids: &'a [AccountId],
}

impl<'a> RequestShape<'a> {
    /// The shape of a planned call, signed as `signed`.
    pub fn new(planned: &'a PlannedRequest, signed: SignedRequest) -> Self {
        RequestShape {
            index: planned.index,
            method: signed.method,
            url: signed.url,
            headers: signed.headers,
            body: &planned.body,
            trace_id: planned.trace_id.as_str(),
            receiver_ids: &planned.receiver_ids,
        }
    }
}

fn header_map<S: Serializer>(
    headers: &[(&'static str, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    HeaderMap(headers).serialize(serializer)
}

/// What `validateNotification` returns.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validated<'a> {
    /// The receivers after de-duplication, in order.
    pub receiver_ids: Vec<&'a AccountId>,
    /// How many batch calls they need.
    pub request_count: usize,
}

/// The fields of every kind of outcome; which are required depends on `kind`.
#[derive(Deserialize)]
struct OutcomeFields {
    #[serde(default)]
    success: Vec<AccountId>,
    failed: Option<Vec<FailedReceiver>>,
    code: Option<i64>,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    http_status: Option<u16>,
    #[serde(default)]
    reason: String,
}

/// Reads an [`Outcome`] in its serialised form, as `classifyResponse`
/// returns it (its `retry` verdict is ignored: the report judges each
/// receiver itself). Not a derived `Deserialize`: serde's internally tagged
/// enums buffer the input generically, which costs more code than the rest
/// of this crate together.
pub fn outcome_from_value(value: &Value, field: &str) -> Result<Outcome, yunxin_edge::Error> {
    let invalid = |reason, value| yunxin_edge::Error::Invalid {
        field: field.to_owned().into(),
        reason,
        value,
    };
    let kind = value.get("kind").and_then(Value::as_str);
    let fields = OutcomeFields::deserialize(value)
        .map_err(|e| invalid("is not an outcome", e.to_string()))?;
    match (kind, fields) {
        (Some("delivered"), f) => Ok(Outcome::Delivered { success: f.success }),
        (Some("partial_failure"), f) => Ok(Outcome::PartialFailure {
            success: f.success,
            failed: f.failed.unwrap_or_default(),
        }),
        (
            Some("rejected"),
            OutcomeFields {
                code: Some(code),
                msg,
                ..
            },
        ) => Ok(Outcome::Rejected { code, msg }),
        (Some("transport"), f) => Ok(Outcome::Transport {
            http_status: f.http_status,
            reason: f.reason,
        }),
        (Some("rejected"), _) => Err(invalid(
            "a rejected outcome needs a code",
            "none".to_owned(),
        )),
        (kind, _) => Err(invalid(
            "needs kind delivered, partial_failure, rejected or transport",
            kind.unwrap_or("none").to_owned(),
        )),
    }
}

/// An outcome with its retry verdict, as the classifying exports return it.
#[derive(Serialize)]
pub struct OutcomeWithRetry {
    #[serde(flatten)]
    outcome: Outcome,
    /// `{ verdict: "permanent" }` or `{ verdict: "retry", min_delay_secs }`.
    retry: RetryVerdict,
}

/// The JS form of an outcome, with [`Outcome::retry`] added.
pub fn with_retry(outcome: Outcome) -> OutcomeWithRetry {
    OutcomeWithRetry {
        retry: outcome.retry(),
        outcome,
    }
}
