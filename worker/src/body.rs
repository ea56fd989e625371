//! Reading a request body without trusting the client: its size is bounded
//! before a byte is buffered, and so is the time it may take to arrive.
//!
//! A `Content-Length` over the limit is refused unread (parsed as `u64`: a
//! 32-bit `usize` on wasm32 would wrap or refuse 2^32 and up). A body
//! without one (chunked) is read as a stream that stops at the limit. The
//! whole read runs under a deadline, so a client that announces more than
//! it sends is answered 408 instead of holding the request.

use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{StreamExt, pin_mut};
use worker::{Delay, Request};

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
