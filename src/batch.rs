//! Planning: one notification for any number of receivers becomes batch calls
//! of at most 500 receivers, each with its own body and trace id, ready to be
//! signed and sent by whatever transport the caller has.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::notification::{AccountId, BatchNotification, Duplicate, MAX_RECEIVERS_PER_REQUEST};
use crate::sign::{Credentials, CurTime, Nonce, SignedHeaders, TraceId};

/// The path of the batch custom notification call.
pub const BATCH_PATH: &str = "/im/v2/custom_notification/batch";

/// The mainland data centre, Yunxin's default.
pub const DEFAULT_BASE_URL: &str = "https://open.yunxinapi.com";

/// Where calls go: a base URL such as `https://open-sg.yunxinapi.com`,
/// `https://api-cn.yunxinapi.com/nimserver` or a local emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    batch_url: String,
}

impl Endpoint {
    /// An endpoint from a base URL (`http` or `https`, no query or fragment);
    /// a trailing slash is ignored.
    pub fn new(base_url: &str) -> Result<Self> {
        let invalid = |reason| Error::Invalid {
            field: "base_url".into(),
            reason,
            value: base_url.to_owned(),
        };
        let rest = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"))
            .ok_or_else(|| invalid("must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("has no host"));
        }
        if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
            return Err(invalid("may not contain a query, a fragment or whitespace"));
        }
        Ok(Endpoint {
            batch_url: format!("{}{BATCH_PATH}", base_url.trim_end_matches('/')),
        })
    }

    /// The full URL of the batch call.
    pub fn batch_url(&self) -> &str {
        &self.batch_url
    }

    /// The base URL it was made from, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.batch_url[..self.batch_url.len() - BATCH_PATH.len()]
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            batch_url: format!("{DEFAULT_BASE_URL}{BATCH_PATH}"),
        }
    }
}

/// How a plan is made.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Derive each call's trace id from this id (see [`TraceId::derived`]),
    /// so that planning the same event again yields the same trace ids.
    /// Without it, trace ids are drawn at random when the plan is signed or
    /// delivered; planning itself never draws randomness.
    pub event_id: Option<String>,
    /// Refuse notifications with more (unique) receivers than this.
    pub max_receivers: Option<usize>,
}

impl PlanOptions {
    /// Options with trace ids derived from `event_id`.
    pub fn for_event(event_id: impl Into<String>) -> Self {
        PlanOptions {
            event_id: Some(event_id.into()),
            ..Default::default()
        }
    }

    /// The same options with a cap on unique receivers.
    pub fn max_receivers(mut self, limit: usize) -> Self {
        self.max_receivers = Some(limit);
        self
    }
}

/// One batch call, planned but not signed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRequest {
    /// Position of this call in the plan, from 0.
    pub index: usize,
    /// The receivers of this call (1 to 500).
    pub receiver_ids: Vec<AccountId>,
    /// The JSON body.
    pub body: String,
}

/// A request ready for any HTTP client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedRequest {
    /// Always `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Header (name, value) pairs, `X-custom-traceid` and `Content-Type` included.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
    /// The `X-custom-traceid` of this call; a retry must keep it.
    pub trace_id: TraceId,
}

impl SignedRequest {
    /// Signs a call: `body` to `endpoint` under `trace_id`, with the current
    /// time and a fresh nonce. Sign again for a retry: the trace id stays,
    /// the five-minute signature is renewed. Fails only if the platform's
    /// random source does.
    pub fn new(
        credentials: &Credentials,
        endpoint: &Endpoint,
        trace_id: TraceId,
        body: String,
    ) -> Result<Self> {
        Ok(Self::at(
            credentials,
            endpoint,
            trace_id,
            body,
            CurTime::now(),
            Nonce::random()?,
        ))
    }

    /// Signs a call with the given time and nonce (deterministic).
    pub fn at(
        credentials: &Credentials,
        endpoint: &Endpoint,
        trace_id: TraceId,
        body: String,
        cur_time: CurTime,
        nonce: Nonce,
    ) -> Self {
        let signed: SignedHeaders = credentials.sign_at(cur_time, nonce);
        let mut headers: Vec<(&'static str, String)> = signed
            .pairs()
            .into_iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect();
        headers.push(("X-custom-traceid", trace_id.to_string()));
        headers.push(("Content-Type", "application/json;charset=utf-8".to_owned()));
        SignedRequest {
            method: "POST",
            url: endpoint.batch_url().to_owned(),
            headers,
            body,
            trace_id,
        }
    }
}

/// A notification split into batch calls of at most 500 receivers.
///
/// Planning validates and splits; it draws no randomness and never fails
/// for any reason but the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    requests: Vec<PlannedRequest>,
    /// The notification without receivers: each call's body is this with
    /// the call's receivers, so that a follow-up call for some of them can
    /// be built later.
    template: BatchNotification,
    duplicates: Vec<Duplicate>,
    event_id: Option<String>,
}

impl Plan {
    /// Validates the notification, removes duplicate receivers and splits the
    /// rest into calls of at most 500, in order.
    pub fn new(notification: &BatchNotification, options: &PlanOptions) -> Result<Self> {
        notification.validate()?;
        let (receivers, duplicates) = notification.split_receivers();
        Self::split(
            notification.without_receivers(),
            receivers,
            duplicates,
            options,
        )
    }

    /// [`Plan::new`] of a notification the caller has no further use for:
    /// its receivers are moved into the plan rather than copied, which
    /// saves an allocation per receiver.
    pub fn from_notification(
        mut notification: BatchNotification,
        options: &PlanOptions,
    ) -> Result<Self> {
        notification.validate()?;
        let (receivers, duplicates) = notification.take_split_receivers();
        Self::split(notification, receivers, duplicates, options)
    }

    /// The plan of `template` (a notification without receivers) for the
    /// unique `receivers`.
    fn split(
        template: BatchNotification,
        receivers: Vec<AccountId>,
        duplicates: Vec<Duplicate>,
        options: &PlanOptions,
    ) -> Result<Self> {
        if let Some(limit) = options.max_receivers
            && receivers.len() > limit
        {
            return Err(Error::TooMany {
                field: "receiver_ids".into(),
                limit,
                actual: receivers.len(),
            });
        }

        // One template for every chunk: only `receiver_ids` changes.
        let bodies = Bodies::new(&template);
        let mut requests = Vec::with_capacity(receivers.len().div_ceil(MAX_RECEIVERS_PER_REQUEST));
        let mut receivers = receivers.into_iter();
        for index in 0.. {
            let receiver_ids: Vec<AccountId> =
                receivers.by_ref().take(MAX_RECEIVERS_PER_REQUEST).collect();
            if receiver_ids.is_empty() {
                break;
            }
            requests.push(PlannedRequest {
                index,
                body: bodies.with(&receiver_ids),
                receiver_ids,
            });
        }
        Ok(Plan {
            requests,
            template,
            duplicates,
            event_id: options.event_id.clone(),
        })
    }

    /// The planned calls, in order.
    pub fn requests(&self) -> &[PlannedRequest] {
        &self.requests
    }

    /// Every receiver of the plan once, in order.
    pub fn receivers(&self) -> impl Iterator<Item = &AccountId> {
        self.requests.iter().flat_map(|r| r.receiver_ids.iter())
    }

    /// The receivers left out as repeats of earlier ones: not sent, and
    /// reported as not attempted (`duplicate of <id>`).
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// The event id trace ids are derived from, if one was given.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    /// The notification without its receivers.
    pub fn template(&self) -> &BatchNotification {
        &self.template
    }

    /// Signs every call with the current time and its own fresh nonce. Trace
    /// ids are derived from the event id, or drawn at random without one.
    /// Fails only if the platform's random source does.
    pub fn sign(
        &self,
        credentials: &Credentials,
        endpoint: &Endpoint,
    ) -> Result<Vec<SignedRequest>> {
        let seed = self.trace_seed()?;
        self.requests
            .iter()
            .map(|r| {
                let trace_id = TraceId::derived(&seed, r.index, 0);
                SignedRequest::new(credentials, endpoint, trace_id, r.body.clone())
            })
            .collect()
    }

    /// What trace ids are derived from: the event id, or a random id.
    pub(crate) fn trace_seed(&self) -> Result<String> {
        match &self.event_id {
            Some(event_id) => Ok(event_id.clone()),
            None => Ok(TraceId::random()?.to_string()),
        }
    }
}

/// The bodies of one notification's calls: [`body_json`] of the notification
/// with each call's receivers, made by writing only the receiver list
/// between the JSON before and after it, serialised once. The list written
/// here is byte for byte serde_json's: `[`, the ids as JSON strings
/// separated by `,`, then `]`; a string needs escaping only for `"`, `\`
/// and control characters.
struct Bodies {
    /// The template's JSON up to and with the `[` of its empty receiver list.
    head: String,
    /// The rest, from the `]`.
    tail: String,
}

impl Bodies {
    fn new(template: &BatchNotification) -> Self {
        const EMPTY_LIST: &str = "\"receiver_ids\":[]";
        let json = body_json(template);
        // The field's own key is the first match: inside a JSON string every
        // `"` is escaped, so a string cannot hold `s":` (`sender_id`, the one
        // field before it, included).
        // (A window search: `str::find` brings 2 kB of searcher into the .wasm.)
        let at = json
            .as_bytes()
            .windows(EMPTY_LIST.len())
            .position(|window| window == EMPTY_LIST.as_bytes())
            .expect("a BatchNotification always serialises its receiver_ids")
            + EMPTY_LIST.len()
            - 1;
        Bodies {
            head: json[..at].to_owned(),
            tail: json[at..].to_owned(),
        }
    }

    /// The body for `receivers`.
    fn with(&self, receivers: &[AccountId]) -> String {
        let ids: usize = receivers.iter().map(|id| id.as_str().len() + 3).sum();
        let mut body = String::with_capacity(self.head.len() + ids + self.tail.len());
        body.push_str(&self.head);
        for (i, id) in receivers.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let id = id.as_str();
            if id.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                body.push_str(&serde_json::to_string(id).expect("a string always serialises"));
            } else {
                body.push('"');
                body.push_str(id);
                body.push('"');
            }
        }
        body.push_str(&self.tail);
        body
    }
}

/// The JSON body of a call.
pub(crate) fn body_json(notification: &BatchNotification) -> String {
    // Strings, booleans, integers and lists of them: serde_json cannot fail
    // on these (it fails only for non-string map keys and failing writers).
    serde_json::to_string(notification).expect("a BatchNotification always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Content, PushConfig};

    #[test]
    fn bodies_are_the_notification_serialised_with_each_call_s_receivers() {
        let ids = [
            "a",
            "Bé",
            "q\"uote",
            "back\\slash",
            "tab\there",
            "\"receiver_ids\":[]",
            "通😀",
        ];
        let receivers: Vec<AccountId> = ids.iter().map(|id| AccountId::new(*id)).collect();
        let mut notification = BatchNotification::new(
            "x\",\"receiver_ids\":[]",
            Content::text("{\"receiver_ids\":[]}\n\u{1}"),
        );
        for template in [notification.clone(), {
            notification.sound = Some("s\"".to_owned());
            notification.push_config = Some(PushConfig {
                push_forcepush_ids: Some(vec![AccountId::new("f")]),
                ..Default::default()
            });
            notification.clone()
        }] {
            let bodies = Bodies::new(&template);
            for chunk in [&receivers[..1], &receivers[..]] {
                let expected = body_json(&BatchNotification {
                    receiver_ids: chunk.to_vec(),
                    ..template.clone()
                });
                assert_eq!(bodies.with(chunk), expected);
            }
        }
    }
}
