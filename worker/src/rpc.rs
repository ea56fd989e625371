//! Asking a Durable Object: a command as JSON text in a `POST` to its stub.
//! Every object's client (the event store, the pacer, the index, the guard,
//! a route's storm object) builds on this, so a request to an object is made
//! one way, and counted once for the bench's meter.

use wasm_bindgen::JsValue;
use worker::{Headers, Method, Request, RequestInit, Response, Result, Stub};

/// `POST`s `body` to `path` of `stub`'s object, with `headers`; its answer.
/// The URL's host is not used: a stub reaches its object whatever it says.
pub async fn post(
    stub: &Stub,
    path: &str,
    body: String,
    headers: &[(&str, &str)],
) -> Result<Response> {
    let sent = Headers::new();
    for (name, value) in headers {
        sent.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(sent)
        .with_body(Some(JsValue::from_str(&body)));
    let req = Request::new_with_init(&format!("https://object{path}"), &init)?;
    crate::meter::add(|m| m.do_requests += 1);
    stub.fetch_with_request(req).await
}
