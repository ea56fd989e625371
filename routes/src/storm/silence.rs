//! Silences: an operator's "not now" for one route's matching events,
//! until a time.
//!
//! `POST /v1/silences` takes
//!
//! ```json
//! { "route": "alertmanager", "matcher": "payload.commonLabels.alertname == 'DiskFull'",
//!   "ends_at": "2026-03-08T08:00:00+08:00", "comment": "replacing the disk" }
//! ```
//!
//! `matcher` is an expression over the event, as a route's `filter` is
//! (`payload`, `headers`, `route`, `now`); `ends_at` is UNIX seconds (a
//! number or digits) or an RFC 3339 time, in the future and at most
//! [`MAX_SILENCE_SECS`] away; `comment` is optional text. A matching event
//! is accepted and recorded as silenced with the silence's id; nothing is
//! sent. A silence stops matching at `ends_at` by itself: expiry is a
//! comparison with the caller's clock, not a deletion anyone must make.
//!
//! ```
//! use yunxin_edge_routes::Routes;
//! use yunxin_edge_routes::storm::silence::{Silence, SilenceId};
//! # let routes = Routes::parse(&serde_json::json!({ "alertmanager": {
//! #     "verify": { "scheme": "bearer", "secrets": ["T"] }, "sender_id": "am",
//! #     "receivers": ["ann"], "content": "hi" } }))?;
//!
//! let body = br#"{"route": "alertmanager", "matcher": "payload.status == 'firing'",
//!                 "ends_at": 1767229200, "comment": "maintenance"}"#;
//! let id = SilenceId::new("sil_1").unwrap();
//! let silence = Silence::parse(body, &routes, id, 1_767_225_600_000).unwrap();
//! assert_eq!(silence.ends_at_ms, 1_767_229_200_000);
//! assert!(silence.is_active(1_767_229_199_999));
//! assert!(!silence.is_active(1_767_229_200_000));
//! # Ok::<(), yunxin_edge_routes::RouteError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Routes;
use crate::template::{self, Context};
use crate::time::parse_instant;

/// Longest a silence may last from its creation: about a year.
pub const MAX_SILENCE_SECS: u64 = 366 * 86_400;
/// Longest `matcher`, in bytes.
pub const MAX_MATCHER_BYTES: usize = 1_024;
/// Longest `comment`, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// Most silences kept at once (expired ones are pruned first).
pub const MAX_SILENCES: usize = 200;
/// Longest silence id.
const MAX_ID_BYTES: usize = 64;

/// A silence's id: 1 to 64 ASCII letters, digits, `_` or `-`, so that it
/// fits a URL path (`DELETE /v1/silences/{id}`) as it is. The caller makes
/// it (the library draws no random numbers): a UUID, say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SilenceId(String);

impl SilenceId {
    /// The id, if it is 1 to 64 of `[A-Za-z0-9_-]`.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_BYTES
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then_some(SilenceId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SilenceId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        SilenceId::new(id).ok_or_else(|| {
            format!("a silence id is 1 to {MAX_ID_BYTES} ASCII letters, digits, `_` or `-`")
        })
    }
}

impl From<SilenceId> for String {
    fn from(id: SilenceId) -> String {
        id.0
    }
}

/// A silence, as kept and as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Silence {
    /// Its id.
    pub id: SilenceId,
    /// The route it silences.
    pub route: String,
    /// An expression over the event; true silences it.
    pub matcher: String,
    /// When it stops matching (UNIX ms, exclusive).
    pub ends_at_ms: u64,
    /// Why, for whoever lists it.
    pub comment: String,
    /// When it was made (UNIX ms).
    pub created_at_ms: u64,
}

/// What is wrong with a silence request: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
#[non_exhaustive]
pub struct SilenceError {
    /// The field at fault (`body` for one that is not a silence's JSON).
    pub field: String,
    /// What is wrong, with the limit crossed if any.
    pub problem: String,
    /// The HTTP status to answer (see [`SilenceError::status`]).
    pub status: u16,
}

impl SilenceError {
    /// A problem with `field`, answered with `status`.
    pub fn new(status: u16, field: &str, problem: impl Into<String>) -> Self {
        SilenceError {
            field: field.to_owned(),
            problem: problem.into(),
            status,
        }
    }

    /// The HTTP status: 400 for a body that is not a silence's JSON, 404
    /// for an unknown route, 409 for a taken id or when too many silences
    /// are kept, 422 for a value that breaks a rule.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `error` object of an answer: `code`, `message`, `field`.
    pub fn to_json(&self) -> Value {
        let code = match self.status {
            400 => "malformed_json",
            404 => "not_found",
            409 => "conflict",
            _ => "invalid_silence",
        };
        json!({ "code": code, "message": self.to_string(), "field": self.field })
    }
}

/// The request body of `POST /v1/silences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    route: String,
    matcher: String,
    ends_at: Value,
    #[serde(default)]
    comment: Option<String>,
}

impl Silence {
    /// Reads and checks a `POST /v1/silences` body, made at `now_ms` with
    /// the id `id`: the route exists among `routes`, the matcher compiles
    /// and is at most [`MAX_MATCHER_BYTES`], `ends_at` is after `now_ms`
    /// and at most [`MAX_SILENCE_SECS`] later, the comment at most
    /// [`MAX_COMMENT_CHARS`].
    pub fn parse(
        body: &[u8],
        routes: &Routes,
        id: SilenceId,
        now_ms: u64,
    ) -> Result<Silence, SilenceError> {
        let request: Request =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
                .map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." { "body" } else { path.as_str() };
                    // A wrong type in a known field is that field's problem; an
                    // unknown or missing field, or no JSON at all, is the body's.
                    let field = if ["route", "matcher", "ends_at", "comment"].contains(&field) {
                        field
                    } else {
                        "body"
                    };
                    let status = if field == "body" { 400 } else { 422 };
                    SilenceError::new(
                        status,
                        field,
                        format!("is not a silence: {}", e.into_inner()),
                    )
                })?;

        routes.get(&request.route).map_err(|_| {
            SilenceError::new(
                404,
                "route",
                format!(
                    "names no route `{}`",
                    request.route.chars().take(64).collect::<String>()
                ),
            )
        })?;
        if request.matcher.len() > MAX_MATCHER_BYTES {
            return Err(SilenceError::new(
                422,
                "matcher",
                format!("is longer than {MAX_MATCHER_BYTES} bytes"),
            ));
        }
        template::check_expression(&request.matcher).map_err(|e| {
            SilenceError::new(422, "matcher", format!("is not a valid expression: {e}"))
        })?;

        let ends_at = match &request.ends_at {
            Value::Number(n) => parse_instant(&n.to_string()),
            Value::String(text) => parse_instant(text),
            _ => Err("is not UNIX seconds or an RFC 3339 time".to_owned()),
        }
        .map_err(|e| SilenceError::new(422, "ends_at", e))?;
        let ends_at_ms = u64::try_from(ends_at.as_millisecond()).unwrap_or(0);
        if ends_at_ms <= now_ms {
            return Err(SilenceError::new(422, "ends_at", "is not in the future"));
        }
        if ends_at_ms - now_ms > MAX_SILENCE_SECS * 1000 {
            return Err(SilenceError::new(
                422,
                "ends_at",
                format!(
                    "is more than {} days away (the limit)",
                    MAX_SILENCE_SECS / 86_400
                ),
            ));
        }

        let comment = request.comment.unwrap_or_default();
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(SilenceError::new(
                422,
                "comment",
                format!("is longer than {MAX_COMMENT_CHARS} characters"),
            ));
        }
        Ok(Silence {
            id,
            route: request.route,
            matcher: request.matcher,
            ends_at_ms,
            comment,
            created_at_ms: now_ms,
        })
    }

    /// Whether it still matches anything at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        now_ms < self.ends_at_ms
    }

    /// Whether it silences an event of `route` with `context` at `now_ms`:
    /// never once expired, nor for another route. An error is the
    /// matcher's on this event (the caller should not silence on it).
    pub fn matches(
        &self,
        route: &str,
        context: &Context,
        now_ms: u64,
    ) -> Result<bool, minijinja::Error> {
        if !self.is_active(now_ms) || self.route != route {
            return Ok(false);
        }
        template::is_true(&self.matcher, context)
    }

    /// How it is listed and answered (`201` to its POST):
    /// `{"id", "route", "matcher", "ends_at" (UNIX s), "ends_at_ms",
    /// "comment", "created_at_ms", "active"}`.
    pub fn to_json(&self, now_ms: u64) -> Value {
        json!({
            "id": self.id,
            "route": self.route,
            "matcher": self.matcher,
            "ends_at": self.ends_at_ms / 1000,
            "ends_at_ms": self.ends_at_ms,
            "comment": self.comment,
            "created_at_ms": self.created_at_ms,
            "active": self.is_active(now_ms),
        })
    }
}

/// The silences a relay keeps: at most [`MAX_SILENCES`], expired ones
/// pruned whenever one is added. Serialises as a JSON array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Silences(Vec<Silence>);

impl Silences {
    /// Keeps `silence`; refuses a repeated id, or one more than
    /// [`MAX_SILENCES`] once the expired are gone.
    pub fn insert(&mut self, silence: Silence, now_ms: u64) -> Result<(), SilenceError> {
        self.prune(now_ms);
        if self.0.iter().any(|kept| kept.id == silence.id) {
            return Err(SilenceError::new(409, "id", "is already taken"));
        }
        if self.0.len() >= MAX_SILENCES {
            return Err(SilenceError::new(
                409,
                "silences",
                format!("{MAX_SILENCES} are active, the most kept: delete one first"),
            ));
        }
        self.0.push(silence);
        Ok(())
    }

    /// Removes a silence (`DELETE /v1/silences/{id}`).
    pub fn remove(&mut self, id: &SilenceId) -> Option<Silence> {
        let at = self.0.iter().position(|kept| &kept.id == id)?;
        Some(self.0.remove(at))
    }

    /// Forgets the expired.
    pub fn prune(&mut self, now_ms: u64) {
        self.0.retain(|silence| silence.is_active(now_ms));
    }

    /// Every silence kept, active or not yet pruned, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.0.iter()
    }

    /// The first active silence of `route` that matches the event, and the
    /// matchers that failed on it (id and error), which do not silence it.
    pub fn matching(
        &self,
        route: &str,
        context: &Context,
        now_ms: u64,
    ) -> (Option<&Silence>, Vec<(SilenceId, String)>) {
        let mut failed = Vec::new();
        for silence in &self.0 {
            match silence.matches(route, context, now_ms) {
                Ok(true) => return (Some(silence), failed),
                Ok(false) => {}
                Err(e) => failed.push((silence.id.clone(), e.to_string())),
            }
        }
        (None, failed)
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn routes() -> Routes {
        Routes::parse(&json!({ "am": {
            "verify": { "scheme": "bearer", "secrets": ["T"] }, "sender_id": "am",
            "receivers": ["ann"], "content": "hi" } }))
        .unwrap()
    }

    fn parse(body: Value) -> Result<Silence, SilenceError> {
        Silence::parse(
            body.to_string().as_bytes(),
            &routes(),
            SilenceId::new("s1").unwrap(),
            NOW,
        )
    }

    #[test]
    fn ends_at_is_unix_seconds_or_rfc3339() {
        for ends_at in [
            json!(1_767_229_200),
            json!("1767229200"),
            json!("2026-01-01T01:00:00Z"),
            json!("2026-01-01T09:00:00+08:00"),
        ] {
            let silence =
                parse(json!({ "route": "am", "matcher": "true", "ends_at": ends_at })).unwrap();
            assert_eq!(silence.ends_at_ms, 1_767_229_200_000, "{ends_at}");
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let table = [
            (
                json!({ "route": "am", "matcher": "payload.x ==", "ends_at": 1_767_229_200 }),
                "matcher",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "x".repeat(1025), "ends_at": 1_767_229_200 }),
                "matcher",
                422,
            ),
            (
                json!({ "route": "nope", "matcher": "true", "ends_at": 1_767_229_200 }),
                "route",
                404,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": 1_767_225_600 }),
                "ends_at",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": "tomorrow" }),
                "ends_at",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": true }),
                "ends_at",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": 1_767_225_600 + 367 * 86_400 }),
                "ends_at",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": 1_767_229_200, "comment": "x".repeat(501) }),
                "comment",
                422,
            ),
            (
                json!({ "route": "am", "matcher": 5, "ends_at": 1_767_229_200 }),
                "matcher",
                422,
            ),
            (
                json!({ "route": "am", "matcher": "true", "ends_at": 1_767_229_200, "extra": 1 }),
                "body",
                400,
            ),
            (
                json!({ "route": "am", "ends_at": 1_767_229_200 }),
                "body",
                400,
            ),
            (json!([1]), "body", 400),
        ];
        for (body, field, status) in table {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.status()),
                (field, status),
                "{body}: {e}"
            );
        }
        assert!(SilenceId::new("a/b").is_none());
        assert!(SilenceId::new("").is_none());
        assert!(SilenceId::new("x".repeat(65)).is_none());
    }

    #[test]
    fn a_silence_matches_its_route_until_it_ends() {
        let silence = parse(
            json!({ "route": "am", "matcher": "payload.status == 'firing'",
                                    "ends_at": 1_767_229_200, "comment": "disk swap" }),
        )
        .unwrap();
        let headers = BTreeMap::new();
        let firing = Context::new(&json!({ "status": "firing" }), &headers, "am", 0);
        let resolved = Context::new(&json!({ "status": "resolved" }), &headers, "am", 0);
        assert!(silence.matches("am", &firing, NOW).unwrap());
        assert!(!silence.matches("am", &resolved, NOW).unwrap());
        assert!(!silence.matches("other", &firing, NOW).unwrap());
        assert!(!silence.matches("am", &firing, 1_767_229_200_000).unwrap());
        assert_eq!(silence.to_json(NOW)["ends_at"], 1_767_229_200);
    }

    #[test]
    fn the_list_is_bounded_and_prunes_the_expired() {
        let mut silences = Silences::default();
        let make = |i: usize, ends_at_ms: u64| Silence {
            id: SilenceId::new(format!("s{i}")).unwrap(),
            route: "am".into(),
            matcher: "true".into(),
            ends_at_ms,
            comment: String::new(),
            created_at_ms: NOW,
        };
        for i in 0..MAX_SILENCES {
            silences.insert(make(i, NOW + 1_000), NOW).unwrap();
        }
        let e = silences.insert(make(999, NOW + 5_000), NOW).unwrap_err();
        assert_eq!(e.status(), 409);
        assert_eq!(
            silences
                .insert(make(0, NOW + 5_000), NOW)
                .unwrap_err()
                .field,
            "id"
        );
        // Once they have ended, room again.
        silences
            .insert(make(999, NOW + 5_000), NOW + 1_000)
            .unwrap();
        assert_eq!(silences.len(), 1);
        assert!(silences.remove(&SilenceId::new("s999").unwrap()).is_some());
        assert!(silences.is_empty());
    }

    #[test]
    fn a_failing_matcher_does_not_silence_and_is_reported() {
        let mut silences = Silences::default();
        let mut broken = parse(
            json!({ "route": "am", "matcher": "payload.n + 1 > 0", "ends_at": 1_767_229_200 }),
        )
        .unwrap();
        broken.id = SilenceId::new("broken").unwrap();
        silences.insert(broken, NOW).unwrap();
        let headers = BTreeMap::new();
        let context = Context::new(&json!({ "n": "text" }), &headers, "am", 0);
        let (matched, failed) = silences.matching("am", &context, NOW);
        assert!(matched.is_none());
        assert_eq!(failed[0].0.as_str(), "broken");
    }
}
