//! Alert storms: what becomes of a rendered event besides being sent.
//! Silences ([`silence`]), quiet hours ([`quiet`]), digests ([`digest`])
//! and throttles ([`throttle`]), each a small serialisable state and pure
//! functions of the caller's clock (`now_ms`, UNIX milliseconds), so a
//! Durable Object can keep the state and drive it with alarms.
//!
//! One event is decided in two steps, which may run in different places:
//!
//! 1. [`screen`] (needs the template engine and the route) runs the
//!    stateless checks, silences and quiet hours, and renders the digest
//!    key; it answers a [`Step`], which serialises.
//! 2. [`RouteState::apply`] (needs the state: a Durable Object) applies
//!    the [`Step`] to the digest or throttle and answers the event's
//!    [`Disposition`], with a digest to send now if the event filled one.
//!
//! [`decide`] does both at once (the command-line tool, tests; a dry run
//! decides on a clone of the state).
//!
//! ## The order: silence → quiet hours → digest → throttle
//!
//! - **Silences first**: a silence is an operator's explicit "not this",
//!   more specific than any route setting, and a silenced event must not
//!   count anywhere: not collected into a digest someone will read, not
//!   spending a throttle's allowance.
//! - **Quiet hours next**: they say when nothing may be sent. A deferred
//!   event comes back at the window's end and is screened again (so a
//!   silence made overnight still applies, and it then goes into the
//!   digest like any event); checking them before the digest keeps a
//!   digest window from closing, and sending, inside quiet hours with
//!   events collected before them.
//! - **Digest before throttle**: a digest is already one notification for
//!   many events; throttling each collected event would lose it from the
//!   digest for nothing. The throttle counts what is actually sent: plain
//!   events and, when the route has both, each digest as it is flushed
//!   ([`digest_throttle`]).
//! - With `throttle.overflow = "digest"` the route's digest collects only
//!   what the throttle holds back: events are sent as usual while under the
//!   limit, and the receivers over it get the event in the next digest,
//!   which the throttle does not count again (it would hold it back too).

pub mod digest;
pub mod quiet;
pub mod silence;
pub mod throttle;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use yunxin_edge::AccountId;

use crate::config::Route;
use crate::error::RouteError;
use crate::render::{Event, RenderOptions, Rendered, failed, payload};
use crate::template::{self, Context};
use digest::{Added, Collect, Digest, DigestConfig, DigestId, DigestKey, Flushed};
use quiet::QuietMode;
use silence::{SilenceId, Silences};
use throttle::{Overflow, Throttle, ThrottleConfig, ThrottledReceiver};

/// What became of an event: what the relay records in its status and
/// shows in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "disposition", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disposition {
    /// Send it as rendered, to all its receivers.
    Send,
    /// A silence matched: accepted, nothing is sent.
    Silenced {
        /// The silence.
        silence_id: SilenceId,
        /// When the silence ends (UNIX ms).
        ends_at_ms: u64,
    },
    /// Inside quiet hours: held until `until_ms`, then screened again.
    Deferred {
        /// When the quiet hours end (UNIX ms): the alarm to set.
        until_ms: u64,
        /// Which: `22:00–08:00 Asia/Shanghai`.
        quiet_hours: String,
    },
    /// Inside quiet hours whose mode is `drop`: nothing is sent.
    Dropped {
        /// Which: `22:00–08:00 Asia/Shanghai`.
        quiet_hours: String,
    },
    /// Collected into a digest.
    Digested(Digested),
    /// Some or all receivers are over the throttle: only `allowed` are
    /// sent to (nothing when it is empty).
    Throttled {
        /// Receivers to send to.
        allowed: Vec<AccountId>,
        /// Receivers held back, each with the time its throttle opens.
        throttled: Vec<ThrottledReceiver>,
        /// With `overflow = "digest"`: the digest the held-back receivers
        /// get the event in.
        digest: Option<Digested>,
    },
}

impl Disposition {
    /// A short name for logs and metrics: `send`, `silenced`, `deferred`,
    /// `dropped`, `digested`, `throttled`.
    pub fn name(&self) -> &'static str {
        match self {
            Disposition::Send => "send",
            Disposition::Silenced { .. } => "silenced",
            Disposition::Deferred { .. } => "deferred",
            Disposition::Dropped { .. } => "dropped",
            Disposition::Digested(_) => "digested",
            Disposition::Throttled { .. } => "throttled",
        }
    }
}

/// The digest an event went into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Digested {
    /// The digest's key.
    pub key: DigestKey,
    /// The digest's id (its event id, for its `status_url`).
    pub digest_id: DigestId,
    /// When it is sent at the latest (UNIX ms): its window's close. When
    /// `full`, it is being sent now.
    pub closes_at_ms: u64,
    /// Whether this event filled it, so it is sent now
    /// ([`Decision::flushed`]).
    pub full: bool,
}

/// What [`screen`] leaves for [`RouteState::apply`]: serialisable, and
/// carrying the settings it needs, so the state's keeper needs no routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Decided already (silenced, deferred, dropped).
    Decided {
        /// The outcome.
        disposition: Disposition,
    },
    /// Collect into the digest of `key`.
    Digest {
        /// The digest key, rendered.
        key: DigestKey,
        /// The route's digest settings.
        config: DigestConfig,
    },
    /// Count against the throttle.
    Throttle {
        /// The route's throttle.
        config: ThrottleConfig,
        /// With `overflow = "digest"`: the digest for held-back receivers.
        overflow: Option<(DigestKey, DigestConfig)>,
    },
    /// Send as rendered.
    Send,
}

/// [`screen`]'s answer: the step, and the silences whose matcher failed on
/// this event (they did not silence it; the relay should log them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Screened {
    /// What is left to do.
    pub step: Step,
    /// `(silence id, error)` of each matcher that failed.
    pub failed_silences: Vec<(SilenceId, String)>,
}

/// The throttle a route's digests are counted against when sent: its
/// `throttle`, unless that puts its overflow into the digest.
pub fn digest_throttle(route: &Route) -> Option<&ThrottleConfig> {
    route.digest.as_ref()?;
    route
        .throttle
        .as_ref()
        .filter(|throttle| throttle.overflow != Overflow::Digest)
}

/// Screens a rendered event of `route` (its name is `event.route`): its
/// silences, quiet hours, and the step left for its state, at `now_ms`.
/// Fails only on a `digest.key` that fails on this payload, or a body that
/// is not JSON (which [`crate::render`] refuses first).
pub fn screen(
    route: &Route,
    event: &Event<'_>,
    silences: &Silences,
    options: &RenderOptions,
    now_ms: u64,
) -> Result<Screened, RouteError> {
    let name = event.route;
    let payload = payload(name, event.body)?;
    let context = Context::new(&payload, event.headers, name, event.now_secs)
        .with_timezone(&options.timezone);
    let decided = |disposition| Step::Decided { disposition };

    let (silence, failed_silences) = silences.matching(name, &context, now_ms);
    let step = if let Some(silence) = silence {
        decided(Disposition::Silenced {
            silence_id: silence.id.clone(),
            ends_at_ms: silence.ends_at_ms,
        })
    } else if let Some(quiet) = &route.quiet_hours
        && let Some(window) = quiet.window_at(now_ms)
    {
        decided(match quiet.mode {
            QuietMode::Drop => Disposition::Dropped {
                quiet_hours: quiet.label(),
            },
            _ => Disposition::Deferred {
                until_ms: window.ends_at_ms,
                quiet_hours: quiet.label(),
            },
        })
    } else {
        let overflow = route
            .throttle
            .as_ref()
            .is_some_and(|t| t.overflow == Overflow::Digest);
        let digest = match &route.digest {
            Some(config) => Some((key_of(config, name, &context)?, config.clone())),
            None => None,
        };
        match (&route.throttle, digest) {
            (_, Some((key, config))) if !overflow => Step::Digest { key, config },
            (Some(throttle), overflow) => Step::Throttle {
                config: throttle.clone(),
                overflow,
            },
            (None, _) => Step::Send,
        }
    };
    Ok(Screened {
        step,
        failed_silences,
    })
}

/// The digest key of an event of `route` (its name is `event.route`):
/// `digest.key`'s text, or the route's name when it has none or it renders
/// empty; `None` for a route without a digest.
pub fn digest_key(
    route: &Route,
    event: &Event<'_>,
    options: &RenderOptions,
) -> Result<Option<DigestKey>, RouteError> {
    let Some(config) = &route.digest else {
        return Ok(None);
    };
    let payload = payload(event.route, event.body)?;
    let context = Context::new(&payload, event.headers, event.route, event.now_secs)
        .with_timezone(&options.timezone);
    key_of(config, event.route, &context).map(Some)
}

/// The digest key of an event: `digest.key`'s text, or the route's name.
fn key_of(config: &DigestConfig, name: &str, context: &Context) -> Result<DigestKey, RouteError> {
    let text = match &config.key {
        None => String::new(),
        Some(expression) => {
            match template::eval(expression, context).map_err(failed(name, "digest.key"))? {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            }
        }
    };
    Ok(DigestKey::new(if text.is_empty() { name } else { &text }))
}

/// What [`RouteState::apply`] decided.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// What became of the event.
    pub disposition: Disposition,
    /// A digest the event filled: send it now ([`crate::render_digest`]).
    pub flushed: Option<Flushed>,
}

/// Most digests one [`RouteState`] keeps open: a `digest.key` with more
/// distinct values in a window than this sends the events of the keys
/// beyond it as usual (see [`RouteState::apply`]).
pub const MAX_OPEN_DIGESTS: usize = 1_000;

/// One route's state: its throttle and its open digests. A Durable Object
/// per route can keep it whole; one that keeps a [`Digest`] per key uses
/// [`Digest`] and [`Throttle`] directly, as [`RouteState::apply`] does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteState {
    /// The throttle's log.
    pub throttle: Throttle,
    /// Open digests by key.
    pub digests: BTreeMap<DigestKey, Digest>,
}

impl RouteState {
    /// Applies `step` to the event `event` (its id, payload, receivers and
    /// own notification) of route `route` at `now_ms`.
    ///
    /// With [`MAX_OPEN_DIGESTS`] digests open, an event of yet another key
    /// is not collected: its disposition is [`Disposition::Send`] (or the
    /// throttle's, with overflow), so nothing is lost.
    pub fn apply(&mut self, route: &str, step: &Step, event: Collect, now_ms: u64) -> Decision {
        let decision = |disposition| Decision {
            disposition,
            flushed: None,
        };
        match step {
            Step::Decided { disposition } => decision(disposition.clone()),
            Step::Send => decision(Disposition::Send),
            Step::Digest { key, config } => match self.collect(route, key, config, event, now_ms) {
                Some((digested, flushed)) => Decision {
                    disposition: Disposition::Digested(digested),
                    flushed,
                },
                None => decision(Disposition::Send),
            },
            Step::Throttle { config, overflow } => {
                let admission = self.throttle.admit(config, &event.receivers, now_ms);
                if admission.throttled.is_empty() {
                    return decision(Disposition::Send);
                }
                let mut flushed = None;
                let digest = overflow.as_ref().and_then(|(key, digest)| {
                    let held: Vec<AccountId> = admission
                        .throttled
                        .iter()
                        .map(|t| t.account_id.clone())
                        .collect();
                    // The event's own notification, to the held-back only.
                    let notification = event.notification.clone().map(|mut json| {
                        json["receiver_ids"] = serde_json::to_value(&held).unwrap_or_default();
                        json
                    });
                    let mut overflow =
                        Collect::new(event.event_id.clone(), event.payload.clone(), held);
                    overflow.notification = notification;
                    let (digested, full) = self.collect(route, key, digest, overflow, now_ms)?;
                    flushed = full;
                    Some(digested)
                });
                Decision {
                    disposition: Disposition::Throttled {
                        allowed: admission.allowed,
                        throttled: admission.throttled,
                        digest,
                    },
                    flushed,
                }
            }
        }
    }

    fn collect(
        &mut self,
        route: &str,
        key: &DigestKey,
        config: &DigestConfig,
        event: Collect,
        now_ms: u64,
    ) -> Option<(Digested, Option<Flushed>)> {
        if !self.digests.contains_key(key) && self.digests.len() >= MAX_OPEN_DIGESTS {
            return None;
        }
        let digest = self
            .digests
            .entry(key.clone())
            .or_insert_with(|| Digest::new(route, key.clone()));
        let result = match digest.add(config, event, now_ms) {
            Added::Open {
                digest_id,
                closes_at_ms,
            } => (
                Digested {
                    key: key.clone(),
                    digest_id,
                    closes_at_ms,
                    full: false,
                },
                None,
            ),
            Added::Full(flushed) => (
                Digested {
                    key: key.clone(),
                    digest_id: flushed.id.clone(),
                    closes_at_ms: now_ms,
                    full: true,
                },
                Some(*flushed),
            ),
        };
        if digest.is_empty() {
            self.digests.remove(key);
        }
        Some(result)
    }

    /// The digests whose window has closed by `now_ms`, to send (the alarm).
    pub fn flush_due(&mut self, now_ms: u64) -> Vec<Flushed> {
        let flushed: Vec<Flushed> = self
            .digests
            .values_mut()
            .filter_map(|digest| digest.flush_due(now_ms))
            .collect();
        self.digests.retain(|_, digest| !digest.is_empty());
        flushed
    }

    /// When the next open digest closes: the alarm to set.
    pub fn next_alarm_ms(&self) -> Option<u64> {
        self.digests.values().filter_map(Digest::closes_at_ms).min()
    }
}

/// Screens and applies at once: [`screen`], then [`RouteState::apply`]
/// with the rendered event. `None` for an event the filter skipped
/// (nothing to decide). A dry run decides on a clone of the state.
pub fn decide(
    route: &Route,
    event: &Event<'_>,
    rendered: &Rendered,
    silences: &Silences,
    state: &mut RouteState,
    options: &RenderOptions,
    now_ms: u64,
) -> Result<Option<Decision>, RouteError> {
    let Rendered::Notification {
        notification,
        json,
        event_id,
    } = rendered
    else {
        return Ok(None);
    };
    let screened = screen(route, event, silences, options, now_ms)?;
    let collect = Collect::new(
        event_id.clone(),
        payload(event.route, event.body)?,
        notification.receiver_ids.clone(),
    )
    .with_notification(json.clone());
    Ok(Some(state.apply(
        event.route,
        &screened.step,
        collect,
        now_ms,
    )))
}
