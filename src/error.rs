//! The one error type of the core crate.
//!
//! Every variant that concerns the input names the offending field (with its
//! index for list items, e.g. `receiver_ids[3]`), the limit and the actual
//! value, so that an adapter can hand the message to the user unchanged.
//! No variant ever carries a secret.

use std::borrow::Cow;

/// Everything that can go wrong in the core crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required field is absent or empty.
    #[error("`{field}` is required")]
    Missing {
        /// The field's path, e.g. `sender_id`.
        field: Cow<'static, str>,
    },
    /// A string is longer than its documented limit (counted in Unicode characters).
    #[error("`{field}` must be at most {limit} characters, got {actual}")]
    TooLong {
        /// The field's path, e.g. `push_config.push_content`.
        field: Cow<'static, str>,
        /// The documented maximum.
        limit: usize,
        /// The length that was given.
        actual: usize,
    },
    /// A list holds fewer items than required.
    #[error("`{field}` must hold at least {limit} item(s), got {actual}")]
    TooFew {
        /// The field's path.
        field: Cow<'static, str>,
        /// The documented minimum.
        limit: usize,
        /// The number of items that was given.
        actual: usize,
    },
    /// A list holds more items than allowed.
    #[error("`{field}` must hold at most {limit} items, got {actual}")]
    TooMany {
        /// The field's path.
        field: Cow<'static, str>,
        /// The documented or configured maximum.
        limit: usize,
        /// The number of items that was given.
        actual: usize,
    },
    /// A value has a character or shape the API does not accept.
    #[error("`{field}` is invalid: {reason} (got {value:?})")]
    Invalid {
        /// The field's path.
        field: Cow<'static, str>,
        /// What is wrong, in a few words.
        reason: &'static str,
        /// The offending value (never a secret).
        value: String,
    },
    /// The body could not be turned into JSON (only for exotic `content` values).
    #[error("`{field}` could not be serialised as JSON: {reason}")]
    Json {
        /// The field's path.
        field: Cow<'static, str>,
        /// serde_json's explanation.
        reason: String,
    },
    /// The notification is not JSON at all: a syntax error or a truncated text.
    #[error("`{field}` is not valid JSON: {reason}")]
    Syntax {
        /// The document, e.g. `body` or `notification`.
        field: Cow<'static, str>,
        /// serde_json's explanation, with line and column.
        reason: String,
    },
    /// The notification is JSON of the wrong shape: a wrong type, an unknown
    /// field, or not an object at the top.
    #[error("`{field}` does not match the notification schema: {reason}")]
    Schema {
        /// The JSON path of the value at fault, e.g. `receiver_ids[3]` or
        /// `push_config.push_enabled` (`.` for the whole document).
        field: Cow<'static, str>,
        /// What is wrong with it.
        reason: String,
    },
    /// The platform's random source failed (nonces, random trace ids).
    #[error("the platform's random number generator failed: {reason}")]
    Random {
        /// The platform's explanation.
        reason: String,
    },
    /// Yunxin's answer is not the documented JSON.
    #[error("the response is not Yunxin JSON: {reason}")]
    Response {
        /// serde_json's explanation, with line and column.
        reason: String,
    },
    /// A Yunxin callback (抄送) failed verification.
    #[error("callback rejected: {0}")]
    Callback(#[from] CallbackError),
}

/// Which check of a Yunxin callback (抄送) failed. Never carries the secret
/// or the expected checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A required header is absent or empty.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// `AppKey` names another app.
    #[error("AppKey does not match this app")]
    AppKey,
    /// `MD5` is not the MD5 of the body.
    #[error("MD5 does not match the body")]
    Md5,
    /// `CheckSum` is not `SHA1(AppSecret + MD5 + CurTime)`.
    #[error("CheckSum does not match")]
    CheckSum,
    /// `CurTime` is not a whole number of milliseconds.
    #[error("CurTime is not a whole number of milliseconds")]
    CurTimeFormat,
    /// `CurTime` is further from the local clock than the tolerance.
    #[error("CurTime is {skew_ms} ms away from now, more than the tolerated {tolerance_ms} ms")]
    CurTimeSkew {
        /// How far `CurTime` is from now, either way.
        skew_ms: u64,
        /// The tolerance.
        tolerance_ms: u64,
    },
}

impl Error {
    /// A stable, machine-readable name for the kind of error, e.g. `"too_long"`.
    ///
    /// Adapters (the JS bindings, the Worker) expose it as an error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing { .. } => "missing",
            Error::TooLong { .. } => "too_long",
            Error::TooFew { .. } => "too_few",
            Error::TooMany { .. } => "too_many",
            Error::Invalid { .. } => "invalid",
            Error::Json { .. } => "json",
            Error::Syntax { .. } => "malformed_json",
            Error::Schema { .. } => "invalid_schema",
            Error::Random { .. } => "unsupported",
            Error::Response { .. } => "response",
            Error::Callback { .. } => "callback",
        }
    }

    /// The path of the field at fault, when the error concerns one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Missing { field }
            | Error::TooLong { field, .. }
            | Error::TooFew { field, .. }
            | Error::TooMany { field, .. }
            | Error::Invalid { field, .. }
            | Error::Json { field, .. }
            | Error::Syntax { field, .. }
            | Error::Schema { field, .. } => Some(field),
            Error::Response { .. } | Error::Random { .. } | Error::Callback(_) => None,
        }
    }

    /// The limit that was crossed, when there is one.
    pub fn limit(&self) -> Option<usize> {
        match self {
            Error::TooLong { limit, .. }
            | Error::TooFew { limit, .. }
            | Error::TooMany { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
