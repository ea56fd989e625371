//! The shapes handed to JavaScript, and their conversion.
//!
//! Results are JSON text that the wrapper parses into plain objects, which
//! can be stored and passed back: a stored request can be re-signed, stored
//! outcomes merged.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yunxin_edge::{AccountId, FailedReceiver, Outcome, Report, RetryVerdict, SignedRequest};

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
    pub url: &'a str,
    /// Signature, trace id and content type.
    pub headers: HeaderMap<'a>,
    /// The JSON body.
    pub body: &'a str,
    /// The `X-custom-traceid`, kept on every retry.
    pub trace_id: &'a str,
    /// The receivers of this call.
    pub receiver_ids: &'a [AccountId],
}

impl<'a> RequestShape<'a> {
    /// The shape of call `index` to `receiver_ids`, signed as `signed`.
    pub fn new(index: usize, signed: &'a SignedRequest, receiver_ids: &'a [AccountId]) -> Self {
        RequestShape {
            index,
            method: signed.method,
            url: &signed.url,
            headers: HeaderMap(&signed.headers),
            body: &signed.body,
            trace_id: signed.trace_id.as_str(),
            receiver_ids,
        }
    }
}

/// The requests of `buildBatchRequests`, packed for the wrapper's
/// `unpackRequests` (js/npm/api.js), which makes the same objects as
/// `JSON.parse` of a [`RequestShape`] array would, at a fraction of the cost
/// for thousands of receivers: the bodies are not escaped as JSON strings
/// and the receivers are not parsed one JSON string at a time.
///
/// One line of JSON, `[{ index, method, url, headers, traceId, bodyLength,
/// receiverCount }, …]`, then the bodies one after the other (`bodyLength`
/// in UTF-16 code units, JavaScript's string length), then every receiver
/// of every call in order, separated by `\n`. A body is compact JSON, so it
/// has no raw line break, and an account id has none either (validation
/// refuses whitespace in ids), which is what makes `\n` safe both ends.
pub fn pack_requests(requests: &[RequestShape<'_>]) -> JsResult<String> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Call<'a> {
        index: usize,
        method: &'static str,
        url: &'a str,
        headers: &'a HeaderMap<'a>,
        trace_id: &'a str,
        body_length: usize,
        receiver_count: usize,
    }
    let calls: Vec<Call<'_>> = requests
        .iter()
        .map(|r| Call {
            index: r.index,
            method: r.method,
            url: r.url,
            headers: &r.headers,
            trace_id: r.trace_id,
            body_length: utf16_len(r.body),
            receiver_count: r.receiver_ids.len(),
        })
        .collect();
    let mut packed = to_json(&calls)?;
    let bodies: usize = requests.iter().map(|r| r.body.len()).sum();
    let ids: usize = requests
        .iter()
        .flat_map(|r| r.receiver_ids)
        .map(|id| id.as_str().len() + 1)
        .sum();
    packed.reserve(1 + bodies + ids);
    packed.push('\n');
    for request in requests {
        packed.push_str(request.body);
    }
    let mut first = true;
    for id in requests.iter().flat_map(|r| r.receiver_ids) {
        if !first {
            packed.push('\n');
        }
        first = false;
        packed.push_str(id.as_str());
    }
    Ok(packed)
}

/// The length of `text` in UTF-16 code units, as JavaScript counts it.
fn utf16_len(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().map(char::len_utf16).sum()
    }
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

/// What `DeliveryDriver.poll` returns, tagged by `action`.
#[derive(Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum PollShape<'a> {
    /// Send this request, then record its outcome under `id`.
    Send {
        /// The attempt's receipt, opaque to JavaScript.
        id: String,
        /// The signed request.
        request: RequestShape<'a>,
    },
    /// Nothing to send before `untilMs` (`null`: before an attempt in
    /// flight is recorded).
    Wait {
        /// When to poll again, UNIX milliseconds.
        #[serde(rename = "untilMs")]
        until_ms: Option<u64>,
    },
    /// Every receiver has its final result.
    Done {
        /// The per-receiver report.
        report: Report,
    },
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
/// receiver itself). Not the core's derived `Deserialize`: serde's
/// internally tagged enums buffer the input generically, which costs more
/// code than the rest of this crate together.
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
        (Some("answer_lost"), f) => Ok(Outcome::answer_lost(f.reason)),
        (Some("rejected"), _) => Err(invalid(
            "a rejected outcome needs a code",
            "none".to_owned(),
        )),
        (kind, _) => Err(invalid(
            "needs kind delivered, partial_failure, rejected, transport or answer_lost",
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_outcome_kind_reads_back() {
        let lost = outcome_from_value(&json!({"kind": "answer_lost", "reason": "r"}), "o").unwrap();
        assert_eq!(lost, Outcome::answer_lost("r"));
        let transport = json!({"kind": "transport", "http_status": 502, "reason": "bad"});
        assert!(matches!(
            outcome_from_value(&transport, "o").unwrap(),
            Outcome::Transport {
                http_status: Some(502),
                ..
            }
        ));
        let rejected = json!({"kind": "rejected", "msg": "m"});
        assert_eq!(
            outcome_from_value(&rejected, "o").unwrap_err().field(),
            Some("o")
        );
        let unknown = outcome_from_value(&json!({"kind": "maybe"}), "o").unwrap_err();
        assert!(unknown.to_string().contains("answer_lost"), "{unknown}");
    }

    #[test]
    fn a_serialised_outcome_reads_back_as_itself() {
        let outcome = Outcome::from_http(
            200,
            br#"{"code":200,"data":{"failed_list":[{"account_id":"b","error_code":102503,"error_msg":"busy"}]}}"#,
        );
        let value = serde_json::to_value(with_retry(outcome.clone())).unwrap();
        assert_eq!(outcome_from_value(&value, "o").unwrap(), outcome);
    }

    #[test]
    fn packed_requests_hold_each_body_and_receiver_in_order() {
        let receivers = [AccountId::new("a"), AccountId::new("Bé")];
        let headers = [("AppKey", "k".to_owned())];
        let request = |index, body, receiver_ids| RequestShape {
            index,
            method: "POST",
            url: "https://x/y",
            headers: HeaderMap(&headers),
            body,
            trace_id: "t",
            receiver_ids,
        };
        let packed = pack_requests(&[
            request(0, r#"{"c":"通😀"}"#, &receivers[..1]),
            request(1, "{}", &receivers[1..]),
        ])
        .unwrap();
        let (calls, rest) = packed.split_once('\n').unwrap();
        let calls: Value = serde_json::from_str(calls).unwrap();
        // 通 is one UTF-16 unit, 😀 two.
        assert_eq!(calls[0]["bodyLength"], 11);
        assert_eq!(calls[1]["receiverCount"], 1);
        assert_eq!(calls[0]["headers"]["AppKey"], "k");
        assert_eq!(calls[1]["traceId"], "t");
        assert_eq!(rest, "{\"c\":\"通😀\"}{}a\nBé");
    }
}
