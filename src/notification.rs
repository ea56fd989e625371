//! The request body of `POST /im/v2/custom_notification/batch` and its limits.
//!
//! Field names and limits follow the API reference; unset optional fields are
//! left out of the JSON (Yunxin treats `null` differently from "absent").
//! Unknown fields are rejected when deserialising, so that a typo such as
//! `recevier_ids` is an error instead of a silently dropped setting.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// Most receivers Yunxin accepts in one batch call.
pub const MAX_RECEIVERS_PER_REQUEST: usize = 500;
/// Longest account id, in characters.
pub const MAX_ACCOUNT_ID_CHARS: usize = 32;
/// Longest `content`, in characters.
pub const MAX_CONTENT_CHARS: usize = 4096;
/// Longest `sound`, in characters.
pub const MAX_SOUND_CHARS: usize = 30;
/// Longest `push_config.push_content` and `push_config.push_forcepush_content`.
pub const MAX_PUSH_CONTENT_CHARS: usize = 500;
/// Longest `push_config.push_payload`, in characters.
pub const MAX_PUSH_PAYLOAD_CHARS: usize = 2048;
/// Most ids in `push_config.push_forcepush_ids`.
pub const MAX_FORCEPUSH_IDS: usize = 100;

/// A Yunxin IM account id (`accid`).
///
/// Yunxin lower-cases account ids, so two ids that differ only in case name
/// the same account; see [`AccountId::key`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// Wraps an id without checking it; [`BatchNotification::validate`] checks it.
    pub fn new(id: impl Into<String>) -> Self {
        AccountId(id.into())
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as Yunxin stores it (lower-cased), for comparing ids. Borrows
    /// when the id has no upper-case letter, as most ids have none.
    pub fn key(&self) -> Cow<'_, str> {
        // ASCII ids (nearly all) by bytes; `to_lowercase` agrees with
        // `to_ascii_lowercase` on them.
        if self.0.is_ascii() {
            return if self.0.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(self.0.to_ascii_lowercase())
            } else {
                Cow::Borrowed(&self.0)
            };
        }
        if self.0.chars().any(char::is_uppercase) {
            Cow::Owned(self.0.to_lowercase())
        } else {
            Cow::Borrowed(&self.0)
        }
    }

    fn validate(&self, field: impl Fn() -> Cow<'static, str>) -> Result<()> {
        // An ASCII id (nearly all) in one pass over its bytes: a character
        // is one byte, and the only whitespace, control or format
        // characters of ASCII are the bytes up to the space, and DEL.
        if self.0.is_ascii()
            && (1..=MAX_ACCOUNT_ID_CHARS).contains(&self.0.len())
            && !self.0.bytes().any(|b| b <= b' ' || b == 0x7F)
        {
            return Ok(());
        }
        let len = self.0.chars().count();
        if len == 0 {
            return Err(Error::Missing { field: field() });
        }
        if len > MAX_ACCOUNT_ID_CHARS {
            return Err(Error::TooLong {
                field: field(),
                limit: MAX_ACCOUNT_ID_CHARS,
                actual: len,
            });
        }
        if self
            .0
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_format_char(c))
        {
            return Err(Error::Invalid {
                field: field(),
                reason: "account ids may not contain whitespace, control or invisible format characters",
                value: self.0.escape_debug().to_string(),
            });
        }
        Ok(())
    }
}

/// Whether `c` is a Unicode format character (general category Cf, Unicode
/// 16): zero-width spaces and joiners, bidirectional controls, the BOM, tag
/// characters. Invisible in an id, they make `alice` and `alice\u{200B}`
/// two accounts that look the same, and a bidi override can make an id
/// display as another.
fn is_format_char(c: char) -> bool {
    // From Unicode's DerivedGeneralCategory.txt, every range of `Cf`.
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    if c < 0x00AD {
        return false;
    }
    CF.iter().any(|&(first, last)| (first..=last).contains(&c))
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AccountId {
    fn from(id: &str) -> Self {
        AccountId::new(id)
    }
}

impl From<String> for AccountId {
    fn from(id: String) -> Self {
        AccountId(id)
    }
}

/// A receiver left out because it repeats an earlier one (ids compare
/// case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicate {
    /// The id as the caller spelled it here.
    pub account_id: AccountId,
    /// The earlier id it repeats, which is notified.
    pub duplicate_of: AccountId,
}

/// The notification's `content`: always sent as a string.
///
/// When deserialising, a JSON string is taken as it is and any other JSON
/// value (an object, say) becomes its JSON text, because apps usually put a
/// JSON document in `content` and should not have to escape it by hand.
/// [`BatchNotification::from_json`] keeps that text exactly as it was sent
/// (numbers included); other deserialisers re-serialise the parsed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct Content(String);

impl Content {
    /// Content given as text.
    pub fn text(text: impl Into<String>) -> Self {
        Content(text.into())
    }

    /// Content given as a value, stored as its compact JSON text.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        serde_json::to_string(value)
            .map(Content)
            .map_err(|e| Error::Json {
                field: "content".into(),
                reason: e.to_string(),
            })
    }

    /// The text that will be sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `parsed` (the content of the notification `json`), with a JSON
    /// document kept as the text it was sent as: `1E2` stays `1E2`, a
    /// 30-digit number keeps its digits, which a parsed `f64` would turn
    /// into `1.2345678901234568e+29`.
    fn exact(json: &[u8], parsed: Content) -> Content {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            content: Option<&'a serde_json::value::RawValue>,
        }
        match serde_json::from_slice::<Raw<'_>>(json) {
            Ok(Raw { content: Some(raw) }) if !raw.get().starts_with(['"', 'n']) => {
                Content(raw.get().to_owned())
            }
            _ => parsed,
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Ok(Content(text)),
            // `null` is no content: validation then names `content` as
            // missing, rather than the four letters `null` being sent.
            serde_json::Value::Null => Ok(Content::default()),
            // Through any format; `BatchNotification::from_json` keeps the
            // JSON text as it was sent instead.
            other => Ok(Content(other.to_string())),
        }
    }
}

/// Push settings (`push_config`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Whether the notification is pushed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_enabled: Option<bool>,
    /// Whether the push shows the sender's nickname (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_nick_enabled: Option<bool>,
    /// Push text, at most 500 characters; without it no text is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_content: Option<String>,
    /// Push payload (a JSON string), at most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_payload: Option<String>,
    /// Enables forced push (official SDKs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_forcepush_enable: Option<bool>,
    /// Force-push to everyone (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_forcepush_all: Option<bool>,
    /// Accounts to force-push to, at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_forcepush_ids: Option<Vec<AccountId>>,
    /// Forced push text, at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_forcepush_content: Option<String>,
}

/// Copy-to-app-server settings (`route_config`, 抄送).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Whether the notification is copied to the app server (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_enabled: Option<bool>,
    /// The environment the copy is routed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_environment: Option<String>,
}

/// Notification settings (`notification_config`).
///
/// The sources disagree on its fields, so both spellings are accepted: the
/// official docs and SDKs use `offline_enabled`/`unread_enabled`, the seed's
/// field table lists the other four.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    /// Whether the notification is stored for offline receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_enabled: Option<bool>,
    /// Whether the notification counts as unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_enabled: Option<bool>,
    /// Whether the notification is delivered as a notification (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_enabled: Option<bool>,
    /// App-defined extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_extension: Option<String>,
    /// High-priority flag (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_priority: Option<i64>,
    /// High-priority policy (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_priority_policy: Option<i64>,
}

/// The fields of a [`BatchNotification`] that most have, as it reads them:
/// what [`BatchNotification::from_json`] tries first (see there).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    #[serde(default)]
    sender_id: AccountId,
    #[serde(default)]
    receiver_ids: Vec<AccountId>,
    /// Only text: content given as another JSON value is kept as its exact
    /// JSON text, which the full parse does.
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    sound: Option<String>,
}

/// One custom system notification for any number of receivers.
///
/// This is the body of a batch call, except that `receiver_ids` may hold any
/// number of ids: [`crate::Plan`] splits them into calls of at most 500.
/// Required fields default to empty when deserialising so that
/// [`validate`](Self::validate) can name what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNotification {
    /// The sending account (required).
    #[serde(default)]
    pub sender_id: AccountId,
    /// The receiving accounts (at least one).
    #[serde(default)]
    pub receiver_ids: Vec<AccountId>,
    /// The notification text (required, at most 4096 characters).
    #[serde(default)]
    pub content: Content,
    /// Sound file name, at most 30 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Push settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_config: Option<PushConfig>,
    /// Copy-to-app-server settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_config: Option<RouteConfig>,
    /// Notification settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_config: Option<NotificationConfig>,
}

impl BatchNotification {
    /// A notification from `sender` with `content` and no receivers yet.
    pub fn new(sender: impl Into<AccountId>, content: Content) -> Self {
        BatchNotification {
            sender_id: sender.into(),
            content,
            ..Default::default()
        }
    }

    /// Adds receivers (builder style).
    pub fn to<I, A>(mut self, receivers: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<AccountId>,
    {
        self.receiver_ids
            .extend(receivers.into_iter().map(Into::into));
        self
    }

    /// A copy without receivers (cheaper than cloning them to drop them).
    pub(crate) fn without_receivers(&self) -> BatchNotification {
        // Destructured, so that a field added later cannot be forgotten here.
        let BatchNotification {
            sender_id,
            receiver_ids: _,
            content,
            sound,
            push_config,
            route_config,
            notification_config,
        } = self;
        BatchNotification {
            sender_id: sender_id.clone(),
            receiver_ids: Vec::new(),
            content: content.clone(),
            sound: sound.clone(),
            push_config: push_config.clone(),
            route_config: route_config.clone(),
            notification_config: notification_config.clone(),
        }
    }

    /// Parses a notification from JSON text: the one parser of the
    /// notification JSON, shared by every adapter.
    ///
    /// A syntax error is [`Error::Syntax`] (with line and column); a value of
    /// the wrong type, an unknown field or a top level that is not an object
    /// is [`Error::Schema`] naming the JSON path of the value at fault.
    /// Optional fields given as `null` count as absent. The result is not
    /// validated yet: [`crate::Plan::new`] does that.
    ///
    /// ```
    /// use yunxin_edge::{BatchNotification, Error};
    /// let err = BatchNotification::from_json(br#"{"sender_id":"bot","receiver_ids":["a",7]}"#)
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("receiver_ids[1]"));
    /// ```
    pub fn from_json(json: impl AsRef<[u8]>) -> Result<Self> {
        let json = json.as_ref();
        // serde accepts a JSON array for a struct (its fields in order); a
        // notification is an object, so anything else is refused up front.
        let first = json.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(Error::Schema {
                field: ".".into(),
                reason: "the notification must be a JSON object".to_owned(),
            });
        }
        // The common notification (sender, receivers, content as text,
        // perhaps a sound) is parsed without tracking paths first: the
        // tracking costs a third of the parse of a long receiver list, and
        // only an error needs a path. Anything else (another field, content
        // given as a JSON value, an error) is parsed again in full with
        // paths: the same parse of the same fields, so the same values and
        // the same first error.
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let common = Common::deserialize(&mut deserializer)
            .and_then(|common| deserializer.end().map(|()| common));
        if let Ok(Common {
            sender_id,
            receiver_ids,
            content,
            sound,
        }) = common
        {
            return Ok(BatchNotification {
                sender_id,
                receiver_ids,
                // Text as it is; `null` is no content, as `Content` reads it.
                content: Content::text(content.unwrap_or_default()),
                sound,
                ..BatchNotification::default()
            });
        }
        let mut notification = Self::from_json_with_paths(json)?;
        // Only content given as another JSON value than a string can differ
        // from its exact text, and its compact JSON starts with one of
        // these; content given as text that happens to does no harm.
        if notification
            .content
            .as_str()
            .starts_with(|c: char| matches!(c, '{' | '[' | '-' | '0'..='9' | 't' | 'f'))
        {
            notification.content = Content::exact(json, notification.content);
        }
        Ok(notification)
    }

    /// [`from_json`](Self::from_json)'s parse with the JSON path of every
    /// value tracked, for its errors.
    fn from_json_with_paths(json: &[u8]) -> Result<Self> {
        let syntax = |e: serde_json::Error| Error::Syntax {
            field: "body".into(),
            reason: e.to_string(),
        };
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let notification = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                syntax(inner)
            } else {
                Error::Schema {
                    field: path.into(),
                    reason: inner.to_string(),
                }
            }
        })?;
        deserializer.end().map_err(syntax)?; // trailing characters
        Ok(notification)
    }

    /// Checks every documented limit except the 500-receiver cap per call,
    /// which planning takes care of. Reports the first violation found.
    pub fn validate(&self) -> Result<()> {
        self.sender_id.validate(|| "sender_id".into())?;
        if self.receiver_ids.is_empty() {
            return Err(Error::TooFew {
                field: "receiver_ids".into(),
                limit: 1,
                actual: 0,
            });
        }
        for (i, id) in self.receiver_ids.iter().enumerate() {
            id.validate(|| format!("receiver_ids[{i}]").into())?;
        }
        if self.content.as_str().is_empty() {
            return Err(Error::Missing {
                field: "content".into(),
            });
        }
        max_chars("content", self.content.as_str(), MAX_CONTENT_CHARS)?;
        if let Some(sound) = &self.sound {
            max_chars("sound", sound, MAX_SOUND_CHARS)?;
        }
        if let Some(push) = &self.push_config {
            push.validate()?;
        }
        Ok(())
    }

    /// The receivers with duplicates removed, first occurrence kept.
    ///
    /// Ids are compared case-insensitively because Yunxin lower-cases them:
    /// `Alice` and `alice` are one account and must be notified once.
    pub fn unique_receivers(&self) -> Vec<AccountId> {
        self.split_receivers().0
    }

    /// The receivers with duplicates removed (first occurrence kept), and
    /// the duplicates, each with the id it repeats, so that a report can
    /// name every id the caller sent.
    pub fn split_receivers(&self) -> (Vec<AccountId>, Vec<Duplicate>) {
        let repeats = self.repeats();
        let unique = self
            .receiver_ids
            .iter()
            .zip(&repeats)
            .filter(|(_, repeat)| repeat.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        (unique, self.duplicates(&repeats))
    }

    /// [`split_receivers`](Self::split_receivers) of a notification whose
    /// receivers are not needed any more: they are moved out, not copied,
    /// and the notification is left without any.
    pub(crate) fn take_split_receivers(&mut self) -> (Vec<AccountId>, Vec<Duplicate>) {
        let repeats = self.repeats();
        let duplicates = self.duplicates(&repeats);
        let unique = std::mem::take(&mut self.receiver_ids)
            .into_iter()
            .zip(repeats)
            .filter_map(|(id, repeat)| repeat.is_none().then_some(id))
            .collect();
        (unique, duplicates)
    }

    /// For each receiver, the position of the earlier one it repeats, if any.
    fn repeats(&self) -> Vec<Option<usize>> {
        let mut first: HashMap<Cow<'_, str>, usize, KeyHasher> =
            HashMap::with_capacity_and_hasher(self.receiver_ids.len(), KeyHasher::default());
        self.receiver_ids
            .iter()
            .enumerate()
            .map(|(i, id)| match first.entry(id.key()) {
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    None
                }
                Entry::Occupied(kept) => Some(*kept.get()),
            })
            .collect()
    }

    fn duplicates(&self, repeats: &[Option<usize>]) -> Vec<Duplicate> {
        self.receiver_ids
            .iter()
            .zip(repeats)
            .filter_map(|(id, repeat)| {
                repeat.map(|first| Duplicate {
                    account_id: id.clone(),
                    duplicate_of: self.receiver_ids[first].clone(),
                })
            })
            .collect()
    }
}

/// The hasher of the de-duplication of receivers. std's SipHash on wasm32
/// has fixed keys (wasm32-unknown-unknown gives std no random source), so it
/// resists crafted collisions no better there than foldhash, which is
/// already built for serde_json and hashes short ids several times faster.
/// Elsewhere std's randomly keyed SipHash.
#[cfg(target_arch = "wasm32")]
type KeyHasher = foldhash::fast::RandomState;
#[cfg(not(target_arch = "wasm32"))]
type KeyHasher = std::hash::RandomState;

impl PushConfig {
    fn validate(&self) -> Result<()> {
        if let Some(text) = &self.push_content {
            max_chars("push_config.push_content", text, MAX_PUSH_CONTENT_CHARS)?;
        }
        if let Some(payload) = &self.push_payload {
            max_chars("push_config.push_payload", payload, MAX_PUSH_PAYLOAD_CHARS)?;
        }
        if let Some(text) = &self.push_forcepush_content {
            max_chars(
                "push_config.push_forcepush_content",
                text,
                MAX_PUSH_CONTENT_CHARS,
            )?;
        }
        if let Some(ids) = &self.push_forcepush_ids {
            if ids.len() > MAX_FORCEPUSH_IDS {
                return Err(Error::TooMany {
                    field: "push_config.push_forcepush_ids".into(),
                    limit: MAX_FORCEPUSH_IDS,
                    actual: ids.len(),
                });
            }
            for (i, id) in ids.iter().enumerate() {
                id.validate(|| format!("push_config.push_forcepush_ids[{i}]").into())?;
            }
        }
        Ok(())
    }
}

fn max_chars(field: &'static str, value: &str, limit: usize) -> Result<()> {
    let actual = value.chars().count();
    if actual > limit {
        return Err(Error::TooLong {
            field: field.into(),
            limit,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full parse alone, as `from_json` was before its fast path.
    fn full(json: &str) -> Result<BatchNotification> {
        let mut notification = BatchNotification::from_json_with_paths(json.as_bytes())?;
        notification.content = Content::exact(json.as_bytes(), notification.content);
        Ok(notification)
    }

    #[test]
    fn the_fast_parse_agrees_with_the_full_one_on_values_and_errors() {
        let documents = [
            r#"{"sender_id":"bot","receiver_ids":["a","B","a"],"content":"hi"}"#,
            r#"{"sender_id":"bot","receiver_ids":["a"],"content":null,"sound":null}"#,
            r#"{"receiver_ids":["a"],"content":"{\"x\":1E2}","sound":"s"}"#,
            r#"{"sender_id":"bot","receiver_ids":["a"],"content":{"x":1E2,"y":[true]}}"#,
            r#"{"sender_id":"bot","receiver_ids":["a"],"content":-1.50}"#,
            r#"{"sender_id":"bot","receiver_ids":["a"],"content":"x","push_config":{"push_content":"p"}}"#,
            r#"{"sender_id":"bot","receiver_ids":["a",7],"content":"x"}"#,
            r#"{"sender_id":"bot","receiver_ids":"a","content":"x"}"#,
            r#"{"sender_id":"bot","recevier_ids":["a"]}"#,
            r#"{"sender_id":"bot","sender_id":"bot"}"#,
            r#"{"sender_id":null}"#,
            r#"{"sender_id":"bot","receiver_ids":["a"]} x"#,
            r#"{"sender_id":"bot","#,
            r#"  {}"#,
            "",
        ];
        for json in documents {
            let fast = BatchNotification::from_json(json);
            match (fast, full(json)) {
                (Ok(fast), Ok(full)) => assert_eq!(fast, full, "{json}"),
                (Err(fast), Err(full)) => {
                    assert_eq!(fast.to_string(), full.to_string(), "{json}");
                    assert_eq!(fast.field(), full.field(), "{json}");
                }
                (fast, full) => panic!("{json}: {fast:?} against {full:?}"),
            }
        }
    }
}
