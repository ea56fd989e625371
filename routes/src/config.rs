//! The routes configuration: a JSON object, one route per key, each served
//! at `POST /v1/hooks/{route}`.
//!
//! ```json
//! { "github": {
//!     "verify": { "scheme": "github", "secrets": ["GITHUB_WEBHOOK_SECRET"] },
//!     "filter": "headers['x-github-event'] == 'push'",
//!     "sender_id": "github-bot",
//!     "groups": ["team"],
//!     "content": "{{ payload.pusher.name }} pushed to {{ payload.repository.full_name }}" } }
//! ```
//!
//! Secrets are always binding names, never values. [`Routes::parse`] keeps
//! every problem it finds ([`Routes::problems`]), not just the first, so
//! that a configuration can be fixed in one go; a broken route answers with
//! its own problem while the others keep working.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::RouteError;
use crate::storm::digest::DigestConfig;
use crate::storm::quiet::QuietHours;
use crate::storm::throttle::{Overflow, ThrottleConfig};
use crate::template;
use crate::verify::Scheme;

/// Every route, by name, and the problems of those that are broken: a
/// broken route answers with its own problem, the others keep working.
#[derive(Debug, Clone)]
pub struct Routes {
    routes: BTreeMap<String, Route>,
    broken: BTreeMap<String, Vec<RouteError>>,
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Who may call it.
    pub verify: Verify,
    /// An expression over the event; false skips it (`200 {"skipped"}`).
    #[serde(default)]
    pub filter: Option<String>,
    /// The sending account: a template.
    pub sender_id: String,
    /// Receivers named in the route.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// An expression giving an id or a list of ids from the event.
    #[serde(default)]
    pub receivers_from: Option<String>,
    /// Names of groups in the `GROUPS` binding.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A template rendering text, or a JSON object whose string values are
    /// templates (sent as its JSON text).
    pub content: Value,
    /// `push_config.push_content`: a template.
    #[serde(default)]
    pub push_content: Option<String>,
    /// `push_config.push_payload`: a template, or a JSON object of templates.
    #[serde(default)]
    pub push_payload: Option<Value>,
    /// `sound`: a template.
    #[serde(default)]
    pub sound: Option<String>,
    /// Further `push_config` fields (string values are templates).
    #[serde(default)]
    pub push_config: Option<Map<String, Value>>,
    /// `route_config` (string values are templates).
    #[serde(default)]
    pub route_config: Option<Map<String, Value>>,
    /// `notification_config` (string values are templates).
    #[serde(default)]
    pub notification_config: Option<Map<String, Value>>,
    /// An expression giving the event's idempotency key; by default the
    /// scheme's delivery id, Stripe's event `id`, or the body's SHA-256.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Collect events sharing a key into one notification per window
    /// ([`crate::storm::digest`]).
    #[serde(default)]
    pub digest: Option<DigestConfig>,
    /// A digest's `content`: a template, or a JSON object of templates,
    /// over `events`, `count`, `first_at`, `last_at`, `key`, `route`, `now`.
    #[serde(default)]
    pub digest_content: Option<Value>,
    /// A digest's `push_config.push_content`: a template over the same.
    #[serde(default)]
    pub digest_push_content: Option<String>,
    /// At most `limit` notifications per receiver or route in any window
    /// ([`crate::storm::throttle`]).
    #[serde(default)]
    pub throttle: Option<ThrottleConfig>,
    /// A daily window in which events are deferred or dropped
    /// ([`crate::storm::quiet`]).
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

/// `verify`: a scheme and the bindings holding its secrets.
#[derive(Debug, Clone)]
pub struct Verify {
    /// The scheme and its settings.
    pub scheme: Scheme,
    /// Binding names, several for a rotation.
    pub secrets: Vec<String>,
}

impl<'de> Deserialize<'de> for Verify {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // `secrets` sits beside the scheme's own settings; serde cannot
        // flatten into an internally tagged enum that denies unknown fields.
        let mut fields = Map::deserialize(deserializer)?;
        let secrets = match fields.remove("secrets") {
            None => Vec::new(),
            Some(value) => Vec::<String>::deserialize(value).map_err(D::Error::custom)?,
        };
        let scheme = Scheme::deserialize(Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(Verify { scheme, secrets })
    }
}

/// Longest route name.
const MAX_ROUTE_NAME: usize = 64;

/// Whether `name` can name a route: 1 to [`MAX_ROUTE_NAME`] ASCII letters,
/// digits, `-` or `_`. A route's event ids start with it (`{route}:{key}`).
///
/// ```
/// use yunxin_edge_routes::config::is_route_name;
/// assert!(is_route_name("github-push"));
/// assert!(!is_route_name("a:b") && !is_route_name(""));
/// ```
pub fn is_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROUTE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Routes {
    /// Reads the configuration: a JSON object, or a JSON string holding one
    /// (a secret or `.dev.vars` holds text). Fails only when the document
    /// itself is unusable; a route's problems are kept with the route (see
    /// [`Routes::problems`]).
    pub fn parse(config: &Value) -> Result<Routes, RouteError> {
        let problem = |route: &str, field: &str, problem: String| RouteError::Config {
            route: route.to_owned(),
            field: field.to_owned(),
            problem,
        };
        let parsed;
        let config = match config {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|e| problem("ROUTES", "ROUTES", format!("is not JSON: {e}")))?;
                &parsed
            }
            other => other,
        };
        let Value::Object(routes) = config else {
            return Err(problem(
                "ROUTES",
                "ROUTES",
                "must be a JSON object of route name to route".into(),
            ));
        };

        let mut out = Routes {
            routes: BTreeMap::new(),
            broken: BTreeMap::new(),
        };
        for (name, value) in routes {
            let mut problems = Vec::new();
            if !is_route_name(name) {
                problems.push(problem(
                    name,
                    "name",
                    format!("must be 1 to {MAX_ROUTE_NAME} letters, digits, `-` or `_`"),
                ));
            }
            match serde_path_to_error::deserialize::<_, Route>(value) {
                Ok(route) => {
                    problems.extend(route.check(name));
                    if problems.is_empty() {
                        out.routes.insert(name.clone(), route);
                    }
                }
                Err(e) => {
                    let field = e.path().to_string();
                    problems.push(problem(name, &field, e.into_inner().to_string()));
                }
            }
            if !problems.is_empty() {
                out.broken.insert(name.clone(), problems);
            }
        }
        Ok(out)
    }

    /// The route of that name; a broken route answers its first problem.
    pub fn get(&self, name: &str) -> Result<&Route, RouteError> {
        if let Some(problems) = self.broken.get(name) {
            return Err(problems[0].clone());
        }
        self.routes
            .get(name)
            .ok_or_else(|| RouteError::UnknownRoute(name.to_owned()))
    }

    /// Every working route, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Route)> {
        self.routes
            .iter()
            .map(|(name, route)| (name.as_str(), route))
    }

    /// Every problem of every broken route, route by route.
    pub fn problems(&self) -> impl Iterator<Item = &RouteError> {
        self.broken.values().flatten()
    }

    /// How many routes the configuration names, broken ones included.
    pub fn len(&self) -> usize {
        self.routes.len() + self.broken.len()
    }

    /// Whether the configuration names no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Route {
    /// Problems a route's shape cannot show: templates and expressions that
    /// do not compile, a verify scheme with no secret.
    fn check(&self, name: &str) -> Vec<RouteError> {
        let mut problems = Vec::new();
        let mut report = |field: &str, problem: String| {
            problems.push(RouteError::Config {
                route: name.to_owned(),
                field: field.to_owned(),
                problem,
            })
        };
        if self.secrets_required() && self.verify.secrets.is_empty() {
            report("verify.secrets", "must name at least one binding".into());
        }
        let digest_key = self.digest.as_ref().and_then(|d| d.key.clone());
        for (field, expression) in [
            ("filter", &self.filter),
            ("receivers_from", &self.receivers_from),
            ("idempotency_key", &self.idempotency_key),
            ("digest.key", &digest_key),
        ] {
            if let Some(expression) = expression
                && let Err(e) = template::check_expression(expression)
            {
                report(field, format!("is not a valid expression: {e}"));
            }
        }
        let mut templates: Vec<(String, &Value)> = vec![("content".into(), &self.content)];
        if let Some(payload) = &self.push_payload {
            templates.push(("push_payload".into(), payload));
        }
        if let Some(content) = &self.digest_content {
            templates.push(("digest_content".into(), content));
        }
        for (field, template) in templates {
            for (path, e) in template::check_value(&field, template) {
                report(&path, format!("is not a valid template: {e}"));
            }
        }
        for (field, text) in [
            ("sender_id", Some(&self.sender_id)),
            ("push_content", self.push_content.as_ref()),
            ("sound", self.sound.as_ref()),
            ("digest_push_content", self.digest_push_content.as_ref()),
        ] {
            if let Some(text) = text
                && let Err(e) = template::check_template(text)
            {
                report(field, format!("is not a valid template: {e}"));
            }
        }
        for (field, settings) in [
            ("push_config", &self.push_config),
            ("route_config", &self.route_config),
            ("notification_config", &self.notification_config),
        ] {
            if let Some(settings) = settings {
                for (path, e) in template::check_value(field, &Value::Object(settings.clone())) {
                    report(&path, format!("is not a valid template: {e}"));
                }
            }
        }
        self.check_storm(&mut report);
        if self.receivers.is_empty() && self.receivers_from.is_none() && self.groups.is_empty() {
            report(
                "receivers",
                "no receivers: give `receivers`, `receivers_from` or `groups`".into(),
            );
        }
        problems
    }

    /// Problems of `digest`, `throttle` and `quiet_hours` that their shape
    /// cannot show: numbers out of bounds, and fields that need each other.
    fn check_storm(&self, report: &mut impl FnMut(&str, String)) {
        let problems = [
            self.digest.as_ref().map(DigestConfig::problems),
            self.throttle.as_ref().map(ThrottleConfig::problems),
            self.quiet_hours.as_ref().map(QuietHours::problems),
        ];
        for (field, problem) in problems.into_iter().flatten().flatten() {
            report(field, problem);
        }
        match (&self.digest, &self.digest_content) {
            (Some(_), None) => report(
                "digest_content",
                "is required with `digest`: the template of a digest's content".into(),
            ),
            (None, Some(_)) => report("digest_content", "has no effect without `digest`".into()),
            _ => {}
        }
        if self.digest.is_none() && self.digest_push_content.is_some() {
            report(
                "digest_push_content",
                "has no effect without `digest`".into(),
            );
        }
        if let Some(throttle) = &self.throttle
            && throttle.overflow == Overflow::Digest
            && self.digest.is_none()
        {
            report(
                "throttle.overflow",
                "is `digest`, but the route has no `digest` to put them in".into(),
            );
        }
    }

    /// Whether the scheme checks secrets (all do but Yunxin's callback,
    /// whose secret defaults to the relay's own app secret).
    fn secrets_required(&self) -> bool {
        !matches!(self.verify.scheme, Scheme::YunxinCallback { .. })
    }
}
