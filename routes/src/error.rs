//! The one error enum of the routes layer. The relay maps it to HTTP once.

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
