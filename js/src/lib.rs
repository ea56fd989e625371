//! wasm-bindgen exports of the [`yunxin_edge`] core: the engine of the
//! `yunxin-edge` npm package.
//!
//! The package's hand-written JavaScript (`js/npm/api.js`) loads this module,
//! wraps every export and adds the I/O the core leaves out (`fetch`,
//! timeouts, concurrency, sleeping). Retries are not I/O: `send()` drives the
//! core's delivery state machine through [`delivery::DeliveryDriver`], so
//! every retry rule is the core's. This crate only converts between
//! JavaScript and the core's types, under four rules:
//!
//! - **Documents travel as JSON text.** The notification, a stored request,
//!   report parts and results are JSON data by nature; the wrapper
//!   `JSON.stringify`s them, so cycles, throwing getters and `BigInt`s fail in
//!   JavaScript, and this crate reads plain text with serde_json's recursion
//!   limit. No user object is walked from inside WebAssembly, where an
//!   exception thrown by a getter would unwind through Rust frames.
//! - **Every other parameter is a `JsValue` whose type is checked here**
//!   (credentials, option bags, numbers, bytes), read with `Reflect.get`,
//!   which catches what a getter throws. A typed parameter such as `&str`
//!   would let the generated glue coerce `undefined` into `"undefined"`.
//! - **Every export returns `Result`**, and every error is a JS `Error` with
//!   the `code`, `field` and `limit` of [`yunxin_edge::Error`] (see [`error`]);
//!   the wrapper turns it into its `YunxinError` class.
//! - **Nothing may panic.** A panic is a wasm `unreachable` trap. A failing
//!   random source is an error of the core like any other (code
//!   `unsupported`), and only signing and random trace ids draw randomness:
//!   validation never does.
//!
//! Names are camelCase for what this adapter defines (options, requests) and
//! snake_case for what mirrors Yunxin's JSON or the core's report.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod delivery;
pub mod document;
pub mod error;
pub mod input;
pub mod output;

use wasm_bindgen::prelude::*;
use yunxin_edge::{
    AccountId, BATCH_PATH, BatchNotification, BatchResponse, CallbackHeaders, CurTime,
    DEFAULT_CALLBACK_TOLERANCE_MS, Endpoint, Nonce, Outcome, Plan, PlanOptions, Report,
    SignedRequest, TraceId, verify_callback,
};

use crate::error::{JsResult, js_error};
use crate::input::Fields;
use crate::output::{HeaderMap, RequestShape, Validated, pack_requests, to_json, with_retry};

/// `checksum(appSecret, nonce, curTime)`: lowercase hex
/// `SHA1(appSecret + nonce + curTime)`, Yunxin's `CheckSum`.
///
/// `curTime` may be the decimal string sent in the header or a whole number.
#[wasm_bindgen(js_name = checksum)]
pub fn checksum(app_secret: JsValue, nonce: JsValue, cur_time: JsValue) -> JsResult<String> {
    let app_secret = input::string(&app_secret, "appSecret")?;
    let nonce = input::string(&nonce, "nonce")?;
    let cur_time = input::cur_time_text(&cur_time, "curTime")?;
    Ok(yunxin_edge::checksum(
        &yunxin_edge::AppSecret::new(app_secret),
        &nonce,
        &cur_time,
    ))
}

/// `signHeaders(credentials, { now?, nonce?, traceId? })`: the `AppKey`,
/// `Nonce`, `CurTime` and `CheckSum` headers, plus `X-custom-traceid` when a
/// trace id is given, as a JSON object.
///
/// `now` is in milliseconds (like `Date.now()`) or a `Date`; without it the
/// runtime's clock is read. Without `nonce`, 32 random hex characters are used.
#[wasm_bindgen(js_name = signHeaders)]
pub fn sign_headers(credentials: JsValue, options: JsValue) -> JsResult<String> {
    let credentials = input::credentials(&credentials)?;
    let options = Fields::options(options)?;
    let cur_time = cur_time(options.millis("now")?);
    let nonce = nonce(options.string("nonce")?)?;
    let trace_id = options.string("traceId")?;

    let signed = credentials.sign_at(cur_time, nonce);
    let mut headers: Vec<(&str, String)> = signed
        .pairs()
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect();
    if let Some(trace_id) = trace_id {
        let trace_id = TraceId::new(trace_id).map_err(|e| js_error(&e))?;
        headers.push(("X-custom-traceid", trace_id.to_string()));
    }
    to_json(&HeaderMap(&headers))
}

/// `buildBatchRequests(credentials, notificationJson, { baseUrl?, eventId?,
/// maxReceivers?, now? })`: validates the notification, removes duplicate
/// receivers, splits them into calls of at most 500 and signs each call.
///
/// Returns `{ index, url, method, headers, body, traceId, receiverIds }` for
/// each call, packed (see [`pack_requests`]) for the wrapper, which unpacks
/// them into objects; each can be passed to `fetch(request.url, request)` as it
/// is. With `eventId` the trace ids are derived from it, so planning the same
/// event again yields the same trace ids and Yunxin de-duplicates the calls;
/// they are the trace ids `send()` gives each call's first attempt.
#[wasm_bindgen(js_name = buildBatchRequests)]
pub fn build_batch_requests(
    credentials: JsValue,
    notification: JsValue,
    options: JsValue,
) -> JsResult<String> {
    let credentials = input::credentials(&credentials)?;
    let notification = read_notification(&notification)?;
    let options = Fields::options(options)?;
    let endpoint = endpoint(options.string("baseUrl")?)?;
    let plan_options = plan_options(&options, options.non_empty_string("eventId")?)?;
    let now = options.millis("now")?;

    let plan = Plan::from_notification(notification, &plan_options).map_err(|e| js_error(&e))?;
    // The trace ids of the core's delivery: derived from the event id, or
    // from one random id (a failing random source throws `unsupported`).
    let seed = match plan.event_id() {
        Some(event_id) => event_id.to_owned(),
        None => TraceId::random().map_err(|e| js_error(&e))?.to_string(),
    };
    // Every call's own nonce, drawn at once (one call out to JavaScript).
    let nonces = Nonce::random_many(plan.requests().len()).map_err(|e| js_error(&e))?;
    let signed: Vec<SignedRequest> = plan
        .requests()
        .iter()
        .zip(nonces)
        .map(|(planned, nonce)| {
            let trace_id = TraceId::derived(&seed, planned.index, 0);
            // The signature covers the headers only: the body is the plan's,
            // packed from there rather than copied into each request.
            SignedRequest::at(
                &credentials,
                &endpoint,
                trace_id,
                String::new(),
                cur_time(now),
                nonce,
            )
        })
        .collect();
    let requests: Vec<RequestShape> = plan
        .requests()
        .iter()
        .zip(&signed)
        .map(|(planned, signed)| RequestShape {
            body: &planned.body,
            ..RequestShape::new(planned.index, signed, &planned.receiver_ids)
        })
        .collect();
    pack_requests(&requests)
}

/// `validateNotification(notificationJson, { maxReceivers? })`: the checks of
/// [`build_batch_requests`] without credentials, for code that must not hold
/// the app secret (a browser form posting to the app's own server).
///
/// Returns `{ receiverIds, requestCount }` as JSON: the receivers after
/// de-duplication and the number of calls they need.
#[wasm_bindgen(js_name = validateNotification)]
pub fn validate_notification(notification: JsValue, options: JsValue) -> JsResult<String> {
    let notification = read_notification(&notification)?;
    let options = Fields::options(options)?;
    // No event id and no signing: validation draws no randomness.
    let plan_options = plan_options(&options, None)?;
    let plan = Plan::from_notification(notification, &plan_options).map_err(|e| js_error(&e))?;
    let receiver_ids: Vec<&AccountId> = plan.receivers().collect();
    to_json(&Validated {
        receiver_ids,
        request_count: plan.requests().len(),
    })
}

/// `resignRequest(credentials, requestJson, { now?, nonce? })`: the same
/// request with a fresh signature, for a retry.
///
/// A CheckSum is valid for five minutes, so a retry needs new `Nonce`,
/// `CurTime` and `CheckSum` headers; it must keep its trace id (and body) so
/// that Yunxin delivers the call at most once.
#[wasm_bindgen(js_name = resignRequest)]
pub fn resign_request(
    credentials: JsValue,
    request: JsValue,
    options: JsValue,
) -> JsResult<String> {
    let credentials = input::credentials(&credentials)?;
    let request =
        document::request(&document::text(&request, "request")?).map_err(|e| js_error(&e))?;
    let base_url = request.url.strip_suffix(BATCH_PATH).ok_or_else(|| {
        js_error(&yunxin_edge::Error::Invalid {
            field: "request.url".into(),
            reason: "is not the URL of a batch call",
            value: request.url.clone(),
        })
    })?;
    let endpoint = endpoint(Some(base_url.to_owned()))?;
    let options = Fields::options(options)?;
    let now = options.millis("now")?;
    let nonce = nonce(options.string("nonce")?)?;

    let signed = SignedRequest::at(
        &credentials,
        &endpoint,
        TraceId::new(request.trace_id).map_err(|e| js_error(&e))?,
        request.body,
        cur_time(now),
        nonce,
    );
    to_json(&RequestShape::new(
        request.index,
        &signed,
        &request.receiver_ids,
    ))
}

/// `parseBatchResponse(json)`: Yunxin's answer, given as text or bytes,
/// checked against the documented shape and normalised (missing lists become
/// empty, `failed_list` entries objects), as JSON.
#[wasm_bindgen(js_name = parseBatchResponse)]
pub fn parse_batch_response(json: JsValue) -> JsResult<String> {
    let body = input::bytes(&json, "json")?;
    let response = BatchResponse::parse(&body).map_err(|e| js_error(&e))?;
    to_json(&response)
}

/// `classifyResponse(status, body)`: what became of one call, from the HTTP
/// status and the body (text or bytes): `delivered`, `partial_failure`,
/// `rejected` or `transport`, with its retry verdict, as JSON.
#[wasm_bindgen(js_name = classifyResponse)]
pub fn classify_response(status: JsValue, body: JsValue) -> JsResult<String> {
    let status = input::http_status(&status, "status")?;
    let body = if body.is_undefined() || body.is_null() {
        Vec::new()
    } else {
        input::bytes(&body, "body")?
    };
    to_json(&with_retry(Outcome::from_http(status, &body)))
}

/// `transportFailure(reason, httpStatus?)`: the outcome of a call that got no
/// Yunxin answer and was not processed as far as the caller can tell (the
/// connection was refused, the name did not resolve, a gateway's error
/// page), as JSON. A request that went out and lost its answer is
/// [`answer_lost`] instead.
#[wasm_bindgen(js_name = transportFailure)]
pub fn transport_failure(reason: JsValue, http_status: JsValue) -> JsResult<String> {
    let reason = input::string(&reason, "reason")?;
    let http_status = if http_status.is_undefined() || http_status.is_null() {
        None
    } else {
        Some(input::http_status(&http_status, "httpStatus")?)
    };
    to_json(&with_retry(Outcome::Transport {
        http_status,
        reason,
    }))
}

/// `answerLost(reason)`: the outcome of a call whose request went out and
/// whose answer was lost (a timeout, a connection closed mid-answer), as
/// JSON. Its receivers end `unknown`: Yunxin may have notified them.
#[wasm_bindgen(js_name = answerLost)]
pub fn answer_lost(reason: JsValue) -> JsResult<String> {
    let reason = input::string(&reason, "reason")?;
    to_json(&with_retry(Outcome::answer_lost(reason)))
}

/// `mergeReport(partsJson)`: one report from `[{ receiverIds, outcome }]`,
/// one part per call (`outcome` absent or `null`: never sent), as JSON. Every
/// receiver appears exactly once: in `delivered`, `failed`, `unknown` or
/// `not_attempted`.
///
/// Requests from [`build_batch_requests`] are valid parts once they carry an
/// `outcome`, so `requests.map((r, i) => ({ ...r, outcome: outcomes[i] }))` works.
#[wasm_bindgen(js_name = mergeReport)]
pub fn merge_report(parts: JsValue) -> JsResult<String> {
    let parts =
        document::report_parts(&document::text(&parts, "parts")?).map_err(|e| js_error(&e))?;
    let mut report = Report::default();
    for part in parts {
        report.add(&part.receiver_ids, part.outcome.as_ref());
    }
    to_json(&report)
}

/// `verifyCallback(credentials, headers, body, { now?, toleranceMs? })`:
/// checks a callback Yunxin POSTed to the app server (抄送): app key, the
/// body's MD5, the CheckSum and the age of `CurTime` (milliseconds). Returns
/// nothing; throws an error with code `callback` saying which check failed.
///
/// `headers` is `{ appKey, curTime, md5, checkSum }` (the wrapper reads them
/// from a `Headers` object or a plain one); `body` is the raw body as text or
/// bytes.
#[wasm_bindgen(js_name = verifyCallback)]
pub fn verify_callback_js(
    credentials: JsValue,
    headers: JsValue,
    body: JsValue,
    options: JsValue,
) -> JsResult<()> {
    let credentials = input::credentials(&credentials)?;
    let headers = Fields::object(headers, "headers")?;
    // An absent header reads as empty, which the core reports as missing
    // (code `callback`), so that every unverifiable callback fails alike.
    let app_key = headers.string("appKey")?.unwrap_or_default();
    let cur_time = headers.string("curTime")?.unwrap_or_default();
    let md5 = headers.string("md5")?.unwrap_or_default();
    let checksum = headers.string("checkSum")?.unwrap_or_default();
    let body = input::bytes(&body, "body")?;
    let options = Fields::options(options)?;
    let now_ms = options
        .millis("now")?
        .unwrap_or_else(yunxin_edge::sign::now_millis);
    let tolerance_ms = options
        .non_negative_integer("toleranceMs")?
        .unwrap_or(DEFAULT_CALLBACK_TOLERANCE_MS);

    let headers = CallbackHeaders {
        app_key: &app_key,
        cur_time: &cur_time,
        md5: &md5,
        checksum: &checksum,
    };
    verify_callback(&credentials, &headers, &body, now_ms, tolerance_ms).map_err(|e| js_error(&e))
}

/// `signCallback(credentials, body, { now? })`: the headers Yunxin sends
/// with a callback of this raw body (`AppKey`, `CurTime` in milliseconds,
/// `MD5`, `CheckSum`), as a JSON object: what `verifyCallback` accepts, for
/// testing a callback handler. `now` defaults to the runtime's clock.
#[wasm_bindgen(js_name = signCallback)]
pub fn sign_callback_js(credentials: JsValue, body: JsValue, options: JsValue) -> JsResult<String> {
    let credentials = input::credentials(&credentials)?;
    let body = input::bytes(&body, "body")?;
    let options = Fields::options(options)?;
    let now_ms = options
        .millis("now")?
        .unwrap_or_else(yunxin_edge::sign::now_millis);
    let signed = yunxin_edge::sign_callback(&credentials, &body, now_ms);
    let app_key = credentials.app_key.as_str().to_owned();
    let headers = [
        ("AppKey", app_key),
        ("CurTime", signed.cur_time),
        ("MD5", signed.md5),
        ("CheckSum", signed.checksum),
    ];
    to_json(&HeaderMap(&headers))
}

/// `CurTime` from milliseconds, or from the runtime's clock.
fn cur_time(now_ms: Option<u64>) -> CurTime {
    now_ms.map_or_else(CurTime::now, |ms| CurTime(ms / 1000))
}

/// The given nonce, checked against Yunxin's limit, or a random one.
fn nonce(given: Option<String>) -> JsResult<Nonce> {
    match given {
        Some(nonce) => Nonce::new(nonce),
        None => Nonce::random(),
    }
    .map_err(|e| js_error(&e))
}

/// The notification from its JSON text, read by the core's one parser: a
/// wrong type or an unknown field is named by its JSON path
/// (`receiver_ids[3]`, code `invalid_schema`), `null` fields are absent.
pub(crate) fn read_notification(value: &JsValue) -> JsResult<BatchNotification> {
    let json = document::json(value, "notification")?;
    BatchNotification::from_json(json).map_err(|e| js_error(&e))
}

/// Planning options: `maxReceivers` from `options`, and the event id.
pub(crate) fn plan_options(options: &Fields, event_id: Option<String>) -> JsResult<PlanOptions> {
    let mut plan_options = PlanOptions::default();
    plan_options.event_id = event_id;
    plan_options.max_receivers = options.positive_integer("maxReceivers")?;
    Ok(plan_options)
}

/// The endpoint for an optional base URL (Yunxin's mainland default without one).
pub(crate) fn endpoint(base_url: Option<String>) -> JsResult<Endpoint> {
    match base_url {
        Some(base_url) => Endpoint::new(&base_url).map_err(|e| js_error(&e)),
        None => Ok(Endpoint::default()),
    }
}
