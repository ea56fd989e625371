//! The relay's own Standard Webhooks: `WEBHOOK_SECRET` signs events sent to
//! `/v1/notifications` and signed reads of the status API, and the
//! `webhook-id` names the event. The verification itself is the routes
//! crate's `standard-webhooks` scheme, the same code every route uses.

use std::collections::BTreeMap;
use std::fmt;

use worker::{Date, Request};
use yunxin_edge_routes::{Signed, VerifyError};

use crate::config::Config;
use crate::error::RelayError;

/// Longest `webhook-id` accepted.
pub const MAX_EVENT_ID_CHARS: usize = 256;

/// A `webhook-id`: 1 to 256 visible ASCII characters. It names the event's
/// record and derives its trace ids, so nothing else is accepted: an empty
/// id would make every later empty id a "duplicate", and a control
/// character or a 40 KB id has no business in a URL or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId(String);

/// Why a `webhook-id` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// Empty or absent.
    #[error("is empty")]
    Empty,
    /// Over [`MAX_EVENT_ID_CHARS`].
    #[error("is longer than 256 characters")]
    TooLong,
    /// A space, a control character or a non-ASCII character.
    #[error("may hold only visible ASCII characters (no space or control character)")]
    NotVisibleAscii,
    /// `.` or `..`, which URLs resolve away (even percent-encoded).
    #[error("may not be `.` or `..`")]
    DotSegment,
}

impl EventId {
    /// Checks an id as received.
    pub fn parse(id: &str) -> Result<Self, EventIdError> {
        if id.is_empty() {
            return Err(EventIdError::Empty);
        }
        if id.len() > MAX_EVENT_ID_CHARS {
            return Err(EventIdError::TooLong);
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EventIdError::NotVisibleAscii);
        }
        if id == "." || id == ".." {
            return Err(EventIdError::DotSegment);
        }
        Ok(EventId(id.to_owned()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one URL path segment: everything but unreserved characters
    /// percent-encoded, so `?`, `#`, `/` and `%` stay part of the id.
    pub fn path_segment(&self) -> String {
        const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        percent_encoding::utf8_percent_encode(&self.0, RESERVED).to_string()
    }

    /// Where its status is answered: `/v1/events/{id}`.
    pub fn status_url(&self) -> String {
        format!("/v1/events/{}", self.path_segment())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request's headers, names lower-cased (as `fetch` gives them),
/// repeated ones joined with `", "`.
pub fn headers(req: &Request) -> BTreeMap<String, String> {
    req.headers().entries().collect()
}

/// The `webhook-id` header, checked for shape (absence is the signature's
/// error, named by [`verify`]).
pub fn event_id_header(req: &Request) -> Result<EventId, RelayError> {
    let Some(id) = req.headers().get("webhook-id")? else {
        return Err(VerifyError::Missing("webhook-id").into());
    };
    EventId::parse(&id).map_err(|e| RelayError::BadHeader {
        header: "webhook-id",
        problem: e.to_string(),
    })
}

/// Verifies the Standard Webhooks headers over `body` with `WEBHOOK_SECRET`.
pub fn verify(req: &Request, config: &Config, body: &[u8]) -> Result<(), RelayError> {
    let headers = headers(req);
    let signed = Signed {
        headers: &headers,
        body,
        now_secs: (Date::now().as_millis() / 1000) as i64,
    };
    yunxin_edge_routes::verify::verify_standard_webhooks(&config.webhook_secrets, &signed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_visible_ascii_up_to_256() {
        assert!(EventId::parse("msg_2zvJ3-._~:/?#[]@!$&'()*+,;=").is_ok());
        assert!(EventId::parse(&"x".repeat(256)).is_ok());
        assert_eq!(EventId::parse(""), Err(EventIdError::Empty));
        assert_eq!(EventId::parse(".."), Err(EventIdError::DotSegment));
        assert_eq!(EventId::parse(&"x".repeat(257)), Err(EventIdError::TooLong));
        let odd = EventId::parse("a?b#c/../d%e").unwrap();
        assert_eq!(odd.path_segment(), "a%3Fb%23c%2F..%2Fd%25e");
        for bad in ["a b", "a\tb", "a\u{7f}", "é", "a\u{200b}"] {
            assert_eq!(
                EventId::parse(bad),
                Err(EventIdError::NotVisibleAscii),
                "{bad:?}"
            );
        }
    }
}
