//! Reading bodies. A request's, without trusting the client: its size is
//! bounded before a byte is buffered, and so is the time it may take to
//! arrive. A response's (a Durable Object's answer, Yunxin's), in one call to
//! the runtime ([`response_text`], [`response_bytes`]).
//!
//! A `Content-Length` over the limit is refused unread (parsed as `u64`: a
//! 32-bit `usize` on wasm32 would wrap or refuse 2^32 and up). A body
//! without one (chunked) is read as a stream that stops at the limit. The
//! whole read runs under a deadline, so a client that announces more than
//! it sends is answered 408 instead of holding the request.

use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{StreamExt, pin_mut};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Delay, Request, Response, js_sys, web_sys};

use crate::error::RelayError;

/// Reads the body of `req`: at most `limit` bytes, within `deadline_ms`.
pub async fn read(req: &mut Request, limit: u64, deadline_ms: u64) -> Result<Vec<u8>, RelayError> {
    let too_large = |actual| RelayError::PayloadTooLarge { limit, actual };
    let announced = match req.headers().get("content-length")? {
        Some(value) => Some(
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| RelayError::BadHeader {
                    header: "content-length",
                    problem: "is not a whole number of bytes".into(),
                })?,
        ),
        None => None,
    };
    if let Some(announced) = announced
        && announced > limit
    {
        return Err(too_large(announced));
    }

    let reading = async {
        match announced {
            // The runtime holds the body to its announced length: read it in one go.
            Some(_) => Ok(req.bytes().await?),
            None => {
                let mut body = Vec::new();
                let mut chunks = req.stream()?;
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    let total = body.len() as u64 + chunk.len() as u64;
                    if total > limit {
                        // Stop reading: the rest is never buffered.
                        return Err(too_large(total));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            }
        }
    };
    let deadline = Delay::from(Duration::from_millis(deadline_ms));
    pin_mut!(reading, deadline);
    match select(reading, deadline).await {
        Either::Left((body, _)) => body,
        Either::Right(_) => Err(RelayError::RequestTimeout { deadline_ms }),
    }
}

/// The body of `response` as text, read by the runtime in one call.
///
/// Why not `worker::Response::text()`: for a streamed body it pulls the
/// stream chunk by chunk into wasm (a reader, a promise and a microtask per
/// chunk, then a lock released), which was ~14 % of the relay's isolate time
/// per event in a profile (BENCHMARKS.md, issue 20).
pub async fn response_text(response: Response) -> worker::Result<String> {
    let response = web_sys::Response::from(response);
    let text = JsFuture::from(response.text()?).await?;
    text.as_string()
        .ok_or_else(|| worker::Error::RustError("a response body that is not text".into()))
}

/// The body of `response` as bytes, read by the runtime in one call (see
/// [`response_text`]).
pub async fn response_bytes(response: Response) -> worker::Result<Vec<u8>> {
    let response = web_sys::Response::from(response);
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
