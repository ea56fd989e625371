//! The one error enum of the routes layer, and its one mapping to an HTTP
//! status and JSON (used by the Worker and the command-line tool alike).

use serde_json::{Value, json};

use crate::verify::VerifyError;

/// Everything that stops a route from turning a request into a notification.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The routes configuration is wrong: names the route and the field,
    /// never a secret's value.
    #[error("route `{route}`: `{field}` {problem}")]
    Config {
        /// The route (or `ROUTES` for the whole document).
        route: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// No route of that name.
    #[error("no route `{0}`")]
    UnknownRoute(String),
    /// The request is not from the route's source.
    #[error("route `{route}`: {error}")]
    Unauthorized {
        /// The route.
        route: String,
        /// Which check failed.
        error: VerifyError,
    },
    /// The body is not JSON.
    #[error("route `{route}`: the body is not JSON: {reason}")]
    Payload {
        /// The route.
        route: String,
        /// serde_json's explanation.
        reason: String,
    },
    /// A template or expression failed on this payload.
    #[error("route `{route}`: `{field}` could not be rendered: {reason}")]
    Render {
        /// The route.
        route: String,
        /// The route's field whose template failed.
        field: String,
        /// minijinja's explanation.
        reason: String,
    },
    /// The rendered notification crosses a documented limit.
    #[error("route `{route}`: the rendered notification is invalid: {error}")]
    Notification {
        /// The route.
        route: String,
        /// The core's error, naming the field and the limit.
        error: yunxin_edge::Error,
    },
}

impl RouteError {
    /// Whether the configuration has the route this error is about: false
    /// for an unknown route and for a routes document that is missing or
    /// broken as a whole (its field is `ROUTES`). Only then may an adapter
    /// count or log the route's name, which is anybody's text until a
    /// route answers to it.
    pub fn route_is_known(&self) -> bool {
        match self {
            RouteError::UnknownRoute(_) => false,
            RouteError::Config { field, .. } => field != "ROUTES",
            _ => true,
        }
    }

    /// The HTTP status an adapter answers: 500 for a broken route, 404 for
    /// an unknown one, 401 for a sender that is not the source, 400 for a
    /// body that is not JSON, 422 for a template or limit failure.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::Config { .. } => 500,
            RouteError::UnknownRoute(_) => 404,
            RouteError::Unauthorized { .. } => 401,
            RouteError::Payload { .. } => 400,
            RouteError::Render { .. } | RouteError::Notification { .. } => 422,
        }
    }

    /// A stable machine-readable code (the core's own for a limit crossed).
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::Config { .. } => "misconfigured",
            RouteError::UnknownRoute(_) => "not_found",
            RouteError::Unauthorized { .. } => "unauthorized",
            RouteError::Payload { .. } => "malformed_json",
            RouteError::Render { .. } => "render",
            RouteError::Notification { error, .. } => error.code(),
        }
    }

    /// The `error` object of an answer: `code`, `message`, and the `route`,
    /// `field` and `limit` where known. Never a secret: no variant holds one.
    ///
    /// ```
    /// use yunxin_edge_routes::RouteError;
    /// let e = RouteError::UnknownRoute("nope".into());
    /// assert_eq!(e.to_json()["code"], "not_found");
    /// ```
    pub fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        match self {
            RouteError::Config { route, field, .. } | RouteError::Render { route, field, .. } => {
                error["route"] = json!(route);
                error["field"] = json!(field);
            }
            RouteError::Notification { route, error: e } => {
                error["route"] = json!(route);
                if let Some(field) = e.field() {
                    error["field"] = json!(field);
                }
                if let Some(limit) = e.limit() {
                    error["limit"] = json!(limit);
                }
            }
            RouteError::Unauthorized { route, .. } | RouteError::Payload { route, .. } => {
                error["route"] = json!(route);
            }
            RouteError::UnknownRoute(_) => {}
        }
        error
    }
}
