//! Digests: the events of a route that share a key, collected for a window
//! and sent as one notification.
//!
//! ```json
//! "digest": { "window_secs": 300, "key": "payload.commonLabels.alertname", "max_events": 50,
//!             "single": "plain" },
//! "digest_content": "{{ count }} 条告警（{{ first_at | datetime('%H:%M') }}–{{ last_at | datetime('%H:%M') }}）…",
//! "digest_push_content": "{{ count }} 条告警"
//! ```
//!
//! The window opens with its first event and closes `window_secs` later
//! (the caller's alarm: [`Digest::closes_at_ms`], then [`Digest::flush_due`]),
//! or as soon as it holds `max_events` events, [`MAX_DIGEST_RECEIVERS`]
//! receivers or [`MAX_DIGEST_BYTES`] of payloads ([`Added::Full`] hands the
//! digest back at once: a digest is never full and still open). The
//! flushed digest ([`Flushed`]) is rendered by [`crate::render_digest`]
//! from `digest_content` and `digest_push_content` over `events` (the
//! payloads, oldest first), `count`, `first_at` and `last_at` (UNIX
//! seconds), and sent once to the union of the events' receivers, under its
//! own id ([`DigestId`]) as its idempotency key.
//!
//! `key` is an expression over the event, as a `filter` is; its text keys
//! the digest (by default, or when it renders empty, the route's name: one
//! digest for the whole route). With `single = "plain"`, a window that
//! closes with one event sends that event's own notification, so quiet
//! times look as they would without a digest.
//!
//! ```
//! use yunxin_edge::AccountId;
//! use yunxin_edge_routes::storm::digest::{Added, Collect, Digest, DigestConfig, DigestKey};
//!
//! let config: DigestConfig = serde_json::from_value(serde_json::json!(
//!     { "window_secs": 60, "max_events": 3 }))?;
//! let mut digest = Digest::new("alerts", DigestKey::new("alerts"));
//! let event = |n: u32, who: &str| {
//!     Collect::new(format!("alerts:{n}"), serde_json::json!({ "n": n }), vec![AccountId::new(who)])
//! };
//! let Added::Open { closes_at_ms, .. } = digest.add(&config, event(1, "ann"), 1_000) else { panic!() };
//! assert_eq!(closes_at_ms, 61_000);
//! digest.add(&config, event(2, "Ann"), 2_000);
//! // The third event fills it: flushed at once.
//! let Added::Full(flushed) = digest.add(&config, event(3, "bo"), 3_000) else { panic!() };
//! assert_eq!(flushed.count(), 3);
//! assert_eq!(flushed.receivers, [AccountId::new("ann"), AccountId::new("bo")]);
//! assert!(digest.closes_at_ms().is_none());
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use yunxin_edge::AccountId;

/// Longest digest window, in seconds (a day).
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// Most events one digest may collect.
pub const MAX_EVENTS: u32 = 1_000;
/// `max_events` when not given.
pub const DEFAULT_MAX_EVENTS: u32 = 100;
/// Payload bytes (their JSON) at which a digest is full and sent: with
/// the relay's 1 MiB body limit a digest holds less than 1.5 MiB, within a
/// Durable Object's 2 MiB value. The event that crosses it is kept.
pub const MAX_DIGEST_BYTES: usize = 512 * 1024;
/// Distinct receivers at which a digest is full and sent: the relay's
/// default `MAX_RECEIVERS_PER_EVENT`.
pub const MAX_DIGEST_RECEIVERS: usize = 10_000;
/// Longest digest key kept as it is; a longer one (or one that is not
/// visible ASCII) is replaced by its SHA-256.
const MAX_KEY_CHARS: usize = 128;

/// A route's `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DigestConfig {
    /// How long a window stays open after its first event: 1..=[`MAX_WINDOW_SECS`].
    pub window_secs: u32,
    /// An expression over the event whose text keys the digest; by default
    /// the route (one digest for all its events).
    #[serde(default)]
    pub key: Option<String>,
    /// Events at which the digest is sent without waiting: 1..=[`MAX_EVENTS`].
    #[serde(default = "default_max_events")]
    pub max_events: u32,
    /// What a window that closes with one event sends.
    #[serde(default)]
    pub single: Single,
}

fn default_max_events() -> u32 {
    DEFAULT_MAX_EVENTS
}

/// What a digest of one event sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Single {
    /// The digest's rendering, with `count` 1.
    #[default]
    Digest,
    /// The event's own notification, as the route renders it without a
    /// digest.
    Plain,
}

impl DigestConfig {
    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    /// Problems with the numbers, as `(field, problem)`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(1..=MAX_WINDOW_SECS).contains(&self.window_secs) {
            problems.push((
                "digest.window_secs",
                format!("must be 1 to {MAX_WINDOW_SECS} (a day)"),
            ));
        }
        if !(1..=MAX_EVENTS).contains(&self.max_events) {
            problems.push(("digest.max_events", format!("must be 1 to {MAX_EVENTS}")));
        }
        problems
    }
}

/// The text that keys a digest: the `key` expression's value, at most 128
/// visible ASCII characters (else `sha256:` and its hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DigestKey(String);

impl DigestKey {
    /// The key of that text.
    pub fn new(text: &str) -> Self {
        if text.len() <= MAX_KEY_CHARS && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            DigestKey(text.to_owned())
        } else {
            DigestKey(format!("sha256:{}", hex::encode(Sha256::digest(text))))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A digest's id, also its event id (idempotency key and status):
/// `{route}:digest:{16 hex of the key's SHA-256}:{opened_at_ms}-{seq}`,
/// visible ASCII well within the relay's 256 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DigestId(String);

impl DigestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DigestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event to collect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Collect {
    /// Its event id (`{route}:{key}`), for its status and the digest's.
    pub event_id: String,
    /// Its payload, the parsed body.
    pub payload: Value,
    /// Its receivers, as rendered (repeats allowed: the union drops them).
    pub receivers: Vec<AccountId>,
    /// Its own rendered notification (`Rendered::Notification`'s `json`),
    /// for `single = "plain"`; kept only while it is the window's only event.
    pub notification: Option<Value>,
}

impl Collect {
    /// An event to collect, without its own notification.
    pub fn new(event_id: impl Into<String>, payload: Value, receivers: Vec<AccountId>) -> Self {
        Collect {
            event_id: event_id.into(),
            payload,
            receivers,
            notification: None,
        }
    }

    /// The same, with its own notification for `single = "plain"`.
    pub fn with_notification(mut self, notification: Value) -> Self {
        self.notification = Some(notification);
        self
    }
}

/// One collected event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Collected {
    /// Its event id.
    pub event_id: String,
    /// When it was collected (UNIX ms).
    pub at_ms: u64,
    /// Its payload.
    pub payload: Value,
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    id: DigestId,
    opened_at_ms: u64,
    closes_at_ms: u64,
    events: Vec<Collected>,
    receivers: Vec<AccountId>,
    /// The receivers' keys (the core's [`AccountId::key`]), for the union.
    #[serde(skip)]
    seen: Option<HashSet<String>>,
    bytes: usize,
    /// The only event's own notification, while there is one event.
    plain: Option<Value>,
}

/// One key's digest: the open window, if any. Serialises, so a Durable
/// Object (one per route and key) can keep it between events and alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    route: String,
    key: DigestKey,
    /// Windows opened so far, part of each id.
    seq: u64,
    window: Option<Window>,
}

/// What [`Digest::add`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Added {
    /// Collected; the window is open until `closes_at_ms` (set an alarm).
    Open {
        /// The digest the event went into.
        digest_id: DigestId,
        /// When the window closes (UNIX ms).
        closes_at_ms: u64,
    },
    /// Collected, and that filled the digest: here it is, to send now.
    Full(Box<Flushed>),
}

/// Why a digest was flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlushReason {
    /// Its window closed.
    Closed,
    /// It reached `max_events`, [`MAX_DIGEST_RECEIVERS`] or [`MAX_DIGEST_BYTES`].
    Full,
    /// The caller flushed it ([`Digest::flush`]).
    Forced,
}

/// A digest to send: its events, the union of their receivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Flushed {
    /// Its id: the event id it is delivered and reported under.
    pub id: DigestId,
    /// The route.
    pub route: String,
    /// The key.
    pub key: DigestKey,
    /// The events, oldest first.
    pub events: Vec<Collected>,
    /// Every event's receivers, each once (ids compared as the core
    /// compares them), first spelling kept, in order of first appearance.
    pub receivers: Vec<AccountId>,
    /// When the window opened (UNIX ms).
    pub opened_at_ms: u64,
    /// When it was flushed (UNIX ms): the `now` of its rendering.
    pub flushed_at_ms: u64,
    /// Why.
    pub reason: FlushReason,
    /// The only event's own notification, for `single = "plain"`.
    pub plain: Option<Value>,
}

impl Flushed {
    /// How many events it holds.
    pub fn count(&self) -> usize {
        self.events.len()
    }

    /// When its first event was collected (UNIX ms).
    pub fn first_at_ms(&self) -> u64 {
        self.events.first().map_or(self.opened_at_ms, |e| e.at_ms)
    }

    /// When its last event was collected (UNIX ms).
    pub fn last_at_ms(&self) -> u64 {
        self.events.last().map_or(self.opened_at_ms, |e| e.at_ms)
    }

    /// Its events' ids, for the digest's status.
    pub fn event_ids(&self) -> impl Iterator<Item = &str> {
        self.events.iter().map(|e| e.event_id.as_str())
    }
}

impl Digest {
    /// The digest of `route` for `key`, with no window open.
    pub fn new(route: &str, key: DigestKey) -> Self {
        Digest {
            route: route.to_owned(),
            key,
            seq: 0,
            window: None,
        }
    }

    /// The key.
    pub fn key(&self) -> &DigestKey {
        &self.key
    }

    /// When the open window closes (UNIX ms): the alarm to set.
    pub fn closes_at_ms(&self) -> Option<u64> {
        self.window.as_ref().map(|w| w.closes_at_ms)
    }

    /// The open window's id.
    pub fn id(&self) -> Option<&DigestId> {
        self.window.as_ref().map(|w| &w.id)
    }

    /// How many events the open window holds.
    pub fn len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.events.len())
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.window.is_none()
    }

    /// Collects `event` at `now_ms`, opening a window if none is open.
    pub fn add(&mut self, config: &DigestConfig, event: Collect, now_ms: u64) -> Added {
        let window = match &mut self.window {
            Some(window) => window,
            empty @ None => {
                self.seq += 1;
                let id = DigestId(format!(
                    "{}:digest:{}:{now_ms}-{}",
                    self.route,
                    &hex::encode(Sha256::digest(self.key.as_str()))[..16],
                    self.seq
                ));
                empty.insert(Window {
                    id,
                    opened_at_ms: now_ms,
                    closes_at_ms: now_ms.saturating_add(config.window_ms()),
                    events: Vec::new(),
                    receivers: Vec::new(),
                    seen: Some(HashSet::new()),
                    bytes: 0,
                    plain: None,
                })
            }
        };
        // A payload's size as stored: its JSON text.
        let size = serde_json::to_string(&event.payload).map_or(0, |text| text.len());
        window.bytes += size;
        window.plain = if window.events.is_empty() {
            event.notification
        } else {
            None
        };
        if let Some(plain) = &window.plain {
            window.bytes += plain.to_string().len();
        }
        // The seen-set is not stored (a Durable Object keeps the list):
        // rebuilt from the list after a load.
        let seen = window.seen.get_or_insert_with(|| {
            window
                .receivers
                .iter()
                .map(|id| id.key().into_owned())
                .collect()
        });
        for id in event.receivers {
            if seen.insert(id.key().into_owned()) {
                window.bytes += id.as_str().len();
                window.receivers.push(id);
            }
        }
        window.events.push(Collected {
            event_id: event.event_id,
            at_ms: now_ms,
            payload: event.payload,
        });
        let full = window.events.len() >= config.max_events.clamp(1, MAX_EVENTS) as usize
            || window.receivers.len() >= MAX_DIGEST_RECEIVERS
            || window.bytes >= MAX_DIGEST_BYTES;
        if full {
            let flushed = self.take(now_ms, FlushReason::Full);
            Added::Full(Box::new(flushed.expect("a window is open")))
        } else {
            Added::Open {
                digest_id: window.id.clone(),
                closes_at_ms: window.closes_at_ms,
            }
        }
    }

    /// The open window, if it has closed by `now_ms` (the alarm fired).
    /// `None` when nothing is due: an alarm for a window flushed early
    /// finds the next window still open (set the alarm again for
    /// [`Digest::closes_at_ms`]).
    pub fn flush_due(&mut self, now_ms: u64) -> Option<Flushed> {
        match self.closes_at_ms() {
            Some(closes_at_ms) if closes_at_ms <= now_ms => self.take(now_ms, FlushReason::Closed),
            _ => None,
        }
    }

    /// The open window, whenever it closes.
    pub fn flush(&mut self, now_ms: u64) -> Option<Flushed> {
        self.take(now_ms, FlushReason::Forced)
    }

    fn take(&mut self, now_ms: u64, reason: FlushReason) -> Option<Flushed> {
        let window = self.window.take()?;
        Some(Flushed {
            id: window.id,
            route: self.route.clone(),
            key: self.key.clone(),
            events: window.events,
            receivers: window.receivers,
            opened_at_ms: window.opened_at_ms,
            flushed_at_ms: now_ms,
            reason,
            plain: window.plain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn config(window_secs: u32, max_events: u32) -> DigestConfig {
        DigestConfig {
            window_secs,
            key: None,
            max_events,
            single: Single::Digest,
        }
    }

    fn event(n: usize, receivers: &[&str]) -> Collect {
        Collect::new(
            format!("r:{n}"),
            json!({ "n": n }),
            receivers.iter().map(|id| AccountId::new(*id)).collect(),
        )
    }

    proptest! {
        /// Whatever events come, in whatever windows: every event is in
        /// exactly one flushed digest, in order, and each digest's
        /// receivers are the union of its events', each exactly once.
        #[test]
        fn every_event_once_and_every_receiver_once(
            max_events in 1u32..6,
            events in proptest::collection::vec(
                (0u64..3_000, proptest::collection::vec(0usize..5, 0..4)), 1..60),
        ) {
            let names = ["ann", "ANN", "bo", "cy", "Bo"];
            let config = config(2, max_events);
            let mut digest = Digest::new("r", DigestKey::new("k"));
            let mut flushed = Vec::new();
            let mut sent_receivers: Vec<Vec<Vec<AccountId>>> = Vec::new();
            let mut current: Vec<Vec<AccountId>> = Vec::new();
            let mut now = 0;
            for (n, (advance, who)) in events.iter().enumerate() {
                now += advance;
                if let Some(done) = digest.flush_due(now) {
                    flushed.push(done);
                    sent_receivers.push(std::mem::take(&mut current));
                }
                let receivers: Vec<&str> = who.iter().map(|i| names[*i]).collect();
                current.push(receivers.iter().map(|id| AccountId::new(*id)).collect());
                match digest.add(&config, event(n, &receivers), now) {
                    Added::Open { closes_at_ms, .. } => prop_assert!(closes_at_ms > now),
                    Added::Full(done) => {
                        prop_assert_eq!(done.count(), max_events as usize);
                        flushed.push(*done);
                        sent_receivers.push(std::mem::take(&mut current));
                    }
                }
            }
            if let Some(done) = digest.flush(now) {
                flushed.push(done);
                sent_receivers.push(std::mem::take(&mut current));
            }
            let ids: Vec<String> = flushed.iter().flat_map(|d| d.event_ids().map(str::to_owned)).collect();
            let expected: Vec<String> = (0..events.len()).map(|n| format!("r:{n}")).collect();
            prop_assert_eq!(ids, expected);
            for (digest, receivers) in flushed.iter().zip(sent_receivers) {
                let keys: Vec<String> = digest.receivers.iter().map(|id| id.key().into_owned()).collect();
                let unique: HashSet<&String> = keys.iter().collect();
                prop_assert_eq!(unique.len(), keys.len(), "a receiver twice");
                let wanted: HashSet<String> =
                    receivers.iter().flatten().map(|id| id.key().into_owned()).collect();
                prop_assert_eq!(unique.len(), wanted.len());
                prop_assert!(wanted.iter().all(|k| unique.contains(k)));
                prop_assert!(digest.count() <= max_events as usize);
                prop_assert!(digest.first_at_ms() <= digest.last_at_ms());
                prop_assert!(digest.last_at_ms() < digest.opened_at_ms + config.window_ms());
            }
            // Each digest has an id of its own.
            let ids: HashSet<&DigestId> = flushed.iter().map(|d| &d.id).collect();
            prop_assert_eq!(ids.len(), flushed.len());
        }
    }

    #[test]
    fn a_window_closes_window_secs_after_its_first_event() {
        let mut digest = Digest::new("r", DigestKey::new("k"));
        let config = config(60, 10);
        digest.add(&config, event(0, &["ann"]), 1_000);
        digest.add(&config, event(1, &["bo"]), 30_000);
        assert_eq!(digest.closes_at_ms(), Some(61_000));
        assert!(digest.flush_due(60_999).is_none());
        let flushed = digest.flush_due(61_000).unwrap();
        assert_eq!(flushed.reason, FlushReason::Closed);
        assert_eq!(
            (flushed.first_at_ms(), flushed.last_at_ms()),
            (1_000, 30_000)
        );
        // The next event opens a new window with a new id.
        let Added::Open {
            digest_id,
            closes_at_ms,
        } = digest.add(&config, event(2, &["ann"]), 70_000)
        else {
            panic!()
        };
        assert_ne!(digest_id, flushed.id);
        assert_eq!(closes_at_ms, 130_000);
        assert!(digest_id.as_str().starts_with("r:digest:"), "{digest_id}");
    }

    #[test]
    fn the_plain_notification_is_kept_only_for_a_lone_event() {
        let mut digest = Digest::new("r", DigestKey::new("k"));
        let config = config(60, 10);
        digest.add(
            &config,
            event(0, &["ann"]).with_notification(json!({ "content": "one" })),
            0,
        );
        let lone = digest.clone().flush(1).unwrap();
        assert_eq!(lone.plain, Some(json!({ "content": "one" })));
        digest.add(
            &config,
            event(1, &["ann"]).with_notification(json!({ "content": "two" })),
            1,
        );
        assert_eq!(digest.flush(2).unwrap().plain, None);
    }

    #[test]
    fn payload_bytes_fill_a_digest() {
        let mut digest = Digest::new("r", DigestKey::new("k"));
        let config = config(60, MAX_EVENTS);
        let big = "x".repeat(200 * 1024);
        let mut added = Vec::new();
        for n in 0..3 {
            let event = Collect::new(
                format!("r:{n}"),
                json!({ "big": big }),
                vec![AccountId::new("ann")],
            );
            added.push(digest.add(&config, event, n));
        }
        // 3 × 200 KiB crosses 512 KiB with the third, which is kept.
        let Added::Full(flushed) = &added[2] else {
            panic!("{:?}", added[2])
        };
        assert_eq!(flushed.count(), 3);
        assert_eq!(flushed.reason, FlushReason::Full);
    }

    #[test]
    fn the_union_survives_serialisation() {
        let mut digest = Digest::new("r", DigestKey::new("k"));
        let config = config(60, 10);
        digest.add(&config, event(0, &["ann", "bo"]), 0);
        let mut back: Digest =
            serde_json::from_str(&serde_json::to_string(&digest).unwrap()).unwrap();
        back.add(&config, event(1, &["Ann", "cy"]), 1);
        let flushed = back.flush(2).unwrap();
        assert_eq!(flushed.receivers, ["ann", "bo", "cy"].map(AccountId::new));
    }

    #[test]
    fn keys_are_kept_short_and_visible() {
        assert_eq!(DigestKey::new("HighErrorRate").as_str(), "HighErrorRate");
        assert!(DigestKey::new("告警").as_str().starts_with("sha256:"));
        assert!(
            DigestKey::new(&"k".repeat(129))
                .as_str()
                .starts_with("sha256:")
        );
    }

    #[test]
    fn bad_numbers_are_named() {
        let problems = config(0, 0).problems();
        assert_eq!(problems[0].0, "digest.window_secs");
        assert_eq!(problems[1].0, "digest.max_events");
        assert!(config(86_401, 1_001).problems().len() == 2);
        assert!(config(86_400, 1_000).problems().is_empty());
    }
}
