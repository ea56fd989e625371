//! The relay's one error enum, mapped to an HTTP status and a JSON body in
//! exactly one place ([`RelayError::status`] and [`RelayError::body`]).

use serde_json::{Value, json};

use yunxin_edge_routes::{RouteError, VerifyError};

/// Everything that makes the relay refuse an event or fail to run.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A binding is missing or malformed. Names the binding, never its value.
    #[error("binding `{binding}` {problem}")]
    Config {
        /// The binding's name.
        binding: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// No route for this path.
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists, with another method.
    #[error("method {method} not allowed; use {allowed}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The method to use.
        allowed: &'static str,
    },
    /// Not `application/json`.
    #[error("Content-Type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    /// Body over the limit.
    #[error("body is {actual} bytes (or more); the limit is {limit}")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The size announced, or read when reading stopped.
        actual: u64,
    },
    /// The body did not arrive in time.
    #[error("the body did not arrive within {deadline_ms} ms")]
    RequestTimeout {
        /// The deadline.
        deadline_ms: u64,
    },
    /// A request header is malformed. Names the header; its value is not echoed.
    #[error("header `{header}` {problem}")]
    BadHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A query parameter this path does not take.
    #[error("unknown query parameter `{name}`: this path takes {}", allowed.join(", "))]
    UnknownQuery {
        /// The parameter's name, as sent (at most 64 characters of it).
        name: String,
        /// The parameters the path takes.
        allowed: &'static [&'static str],
    },
    /// A query parameter is malformed.
    #[error("query parameter `{parameter}` {problem}")]
    BadQuery {
        /// The parameter's name.
        parameter: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A small JSON request body (not an event) is malformed.
    #[error("request body: {0}")]
    BadBody(String),
    /// The `webhook-id` is known, with another body.
    #[error(
        "event `{event_id}` was already accepted with another body; a new event needs a new webhook-id"
    )]
    Conflict {
        /// The id (validated: visible ASCII, at most 256 characters).
        event_id: String,
    },
    /// Standard Webhooks verification failed.
    #[error("webhook signature rejected: {0}")]
    Unauthorized(#[from] VerifyError),
    /// No bearer token, or one that is not `STATUS_TOKEN` (or none is set).
    #[error("bearer token rejected: this needs Authorization: Bearer <STATUS_TOKEN>")]
    BadBearer,
    /// Too many wrong tokens from this client.
    #[error("too many wrong tokens: try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the client may try again.
        retry_after_secs: u64,
    },
    /// A webhook route refused the event (unknown route, bad signature or
    /// payload, a limit crossed once rendered) or is misconfigured.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The core refused the body (not JSON, the wrong shape, a documented
    /// limit crossed) or could not work (no random source).
    #[error(transparent)]
    Invalid(#[from] yunxin_edge::Error),
    /// The runtime failed (not the caller's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<worker::Error> for RelayError {
    fn from(e: worker::Error) -> Self {
        RelayError::Internal(e.to_string())
    }
}

impl RelayError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            RelayError::Config { .. } | RelayError::Internal(_) => 500,
            RelayError::NotFound(_) => 404,
            RelayError::MethodNotAllowed { .. } => 405,
            RelayError::UnsupportedMediaType(_) => 415,
            RelayError::PayloadTooLarge { .. } => 413,
            RelayError::RequestTimeout { .. } => 408,
            RelayError::BadHeader { .. }
            | RelayError::UnknownQuery { .. }
            | RelayError::BadQuery { .. }
            | RelayError::BadBody(_) => 400,
            RelayError::Conflict { .. } => 409,
            RelayError::Unauthorized(_) | RelayError::BadBearer => 401,
            RelayError::TooManyAttempts { .. } => 429,
            RelayError::Route(e) => e.status(),
            RelayError::Invalid(yunxin_edge::Error::Syntax { .. }) => 400,
            RelayError::Invalid(yunxin_edge::Error::Random { .. }) => 500,
            RelayError::Invalid(_) => 422,
        }
    }

    /// Whether a webhook route was found before this error: the
    /// configuration has it ([`RouteError::route_is_known`]), or its event
    /// was refused after rendering.
    pub fn route_exists(&self) -> bool {
        match self {
            RelayError::Route(e) => e.route_is_known(),
            RelayError::Conflict { .. } | RelayError::Invalid(_) => true,
            _ => false,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            RelayError::Config { .. } => "misconfigured",
            RelayError::NotFound(_) => "not_found",
            RelayError::MethodNotAllowed { .. } => "method_not_allowed",
            RelayError::UnsupportedMediaType(_) => "unsupported_media_type",
            RelayError::PayloadTooLarge { .. } => "payload_too_large",
            RelayError::RequestTimeout { .. } => "request_timeout",
            RelayError::BadHeader { .. } => "bad_header",
            RelayError::UnknownQuery { .. } | RelayError::BadQuery { .. } => "bad_query",
            RelayError::BadBody(_) => "bad_body",
            RelayError::Conflict { .. } => "conflict",
            RelayError::Unauthorized(_) | RelayError::BadBearer => "unauthorized",
            RelayError::TooManyAttempts { .. } => "too_many_attempts",
            RelayError::Route(e) => e.code(),
            RelayError::Invalid(e) => e.code(),
            RelayError::Internal(_) => "internal",
        }
    }

    /// `{ "error": { "code", "message", "field"?, "limit"? } }`.
    pub fn body(&self) -> Value {
        let error = match self {
            RelayError::Route(e) => e.to_json(),
            _ => {
                let mut error = json!({ "code": self.code(), "message": self.to_string() });
                match self {
                    RelayError::Invalid(e) => {
                        if let Some(field) = e.field() {
                            error["field"] = json!(field);
                        }
                        if let Some(limit) = e.limit() {
                            error["limit"] = json!(limit);
                        }
                    }
                    RelayError::Config { binding, .. } => error["field"] = json!(binding),
                    RelayError::BadHeader { header, .. } => error["field"] = json!(header),
                    RelayError::BadQuery { parameter, .. } => error["field"] = json!(parameter),
                    RelayError::UnknownQuery { name, .. } => error["field"] = json!(name),
                    RelayError::PayloadTooLarge { limit, .. } => error["limit"] = json!(limit),
                    _ => {}
                }
                error
            }
        };
        json!({ "error": error })
    }
}
