//! Asking a Durable Object: a command as JSON text in a `POST` to its stub,
//! the answer's status and text back. Each object's client (the index, the
//! guard, a route's storm object) builds on this, so a request to an object
//! is made one way.

use wasm_bindgen::JsValue;
use worker::{Headers, Method, Request, RequestInit, Result, Stub};

/// `POST`s `body` to `stub`, with `headers`; the answer's status and text.
/// The URL's host is not used: a stub reaches its object whatever it says.
pub async fn post(stub: &Stub, body: String, headers: &[(&str, &str)]) -> Result<(u16, String)> {
    let sent = Headers::new();
    for (name, value) in headers {
        sent.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(sent)
        .with_body(Some(JsValue::from_str(&body)));
    let req = Request::new_with_init("https://object/", &init)?;
    crate::meter::add(|m| m.do_requests += 1);
    let mut response = stub.fetch_with_request(req).await?;
    Ok((response.status_code(), response.text().await?))
}
