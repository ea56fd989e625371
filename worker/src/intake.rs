//! What every route that takes events shares: record the event once per
//! id, deliver what the request may (`Prefer: wait`) or queue it, and
//! answer.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use worker::{Date, Env, Request, Response, console_log};
use yunxin_edge::{BatchNotification, Delivery, DeliveryState, Plan, PlanOptions};
use yunxin_edge_routes::RouteError;
use yunxin_edge_routes::storm::Disposition;

use crate::config::Config;
use crate::error::RelayError;
use crate::events::{Created, EventClient, EventStatus};
use crate::query::Query;
use crate::webhook::EventId;
use crate::{index, sync, task};

/// An authenticated, validated and planned event.
pub struct Accepted {
    /// The relay's configuration.
    pub config: Config,
    /// The event's id: its `webhook-id`, or a route's idempotency key.
    pub event_id: EventId,
    /// Hex SHA-256 of the body: a re-used id with another body is refused.
    pub body_sha256: String,
    /// The notification, validated and split.
    pub plan: Plan,
    /// The webhook route it came by; `None`: `/v1/notifications`.
    pub route: Option<String>,
}

impl Accepted {
    /// The accepted form of a plan for `event_id`, made from `body`.
    pub fn new(config: Config, event_id: EventId, body: &[u8], plan: Plan) -> Self {
        Accepted {
            config,
            event_id,
            body_sha256: hex::encode(Sha256::digest(body)),
            plan,
            route: None,
        }
    }
}

/// What taking an event cost on the request's path, for its log line (and
/// the tests and the benchmark's cost model, which read it there): Durable
/// Object round trips, counted where the stubs are called, and the SQLite
/// rows the event's object wrote, as SQLite counted them.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Round trips to Durable Objects: the event's object and the pacer.
    pub do_round_trips: u32,
    /// Of those, to the pacer (a synchronous call's slot lease).
    pub pacer_round_trips: u32,
    /// Rows the event's object wrote for this request.
    pub sqlite_rows_written: u64,
}

impl Cost {
    fn of(events: &EventClient) -> Self {
        Cost {
            do_round_trips: events.trips() + events.pacer_trips(),
            pacer_round_trips: events.pacer_trips(),
            sqlite_rows_written: events.rows_written(),
        }
    }
}

impl Accepted {
    /// A route's rendered notification as an event of the route, planned
    /// under `event_id` within `MAX_RECEIVERS_PER_EVENT`: a limit it
    /// crosses is the route's problem, naming the route.
    pub fn of_route(
        config: Config,
        event_id: EventId,
        body: &[u8],
        notification: &BatchNotification,
        route: &str,
    ) -> Result<Self, RelayError> {
        let options = PlanOptions::for_event(event_id.as_str()).max_receivers(config.max_receivers);
        let plan = Plan::new(notification, &options).map_err(|error| RouteError::Notification {
            route: route.to_owned(),
            error,
        })?;
        let mut accepted = Accepted::new(config, event_id, body, plan);
        accepted.route = Some(route.to_owned());
        Ok(accepted)
    }
}

/// What a route that takes events answers.
pub enum Answer {
    /// `Prefer: wait`: the event's status once the request has done what it
    /// may: 200 when finished, 202 (with `Retry-After`) when the queue has
    /// the rest.
    Waited {
        event_id: EventId,
        status: Box<EventStatus>,
        cost: Cost,
    },
    /// Queued: 202 with the status URL.
    Accepted {
        event_id: EventId,
        requests: usize,
        cost: Cost,
    },
    /// A known `webhook-id`: 200 with the event's status so far.
    Known(Box<EventStatus>),
    /// A route's filter said no: 200, nothing sent.
    Skipped {
        /// Why.
        reason: String,
    },
    /// A route's dry run: 200 with what would be sent.
    DryRun {
        /// The event id the notification would have.
        event_id: String,
        /// Calls it would take.
        requests: usize,
        /// The rendered notification.
        notification: serde_json::Value,
        /// What the route's silences and storm settings would make of it.
        disposition: Box<Disposition>,
    },
    /// A route's event accepted and held, nothing sent now (silenced,
    /// dropped or deferred by quiet hours, collected into a digest, every
    /// receiver throttled): 202 with what became of it.
    Held {
        /// The event's id.
        event_id: EventId,
        /// What became of it.
        disposition: Box<Disposition>,
    },
}

/// The body of [`Answer::Accepted`].
#[derive(Serialize)]
struct AcceptedBody<'a> {
    event_id: &'a str,
    requests: usize,
    status_url: String,
}

impl Answer {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Answer::Waited { status, .. } if status.status.state == DeliveryState::Pending => 202,
            Answer::Accepted { .. } | Answer::Held { .. } => 202,
            Answer::Waited { .. }
            | Answer::Known(_)
            | Answer::Skipped { .. }
            | Answer::DryRun { .. } => 200,
        }
    }

    /// The HTTP response.
    pub fn response(&self) -> worker::Result<Response> {
        let mut response = match self {
            Answer::Skipped { reason } => Response::from_json(&json!({ "skipped": reason }))?,
            Answer::DryRun {
                event_id,
                requests,
                notification,
                disposition,
            } => Response::from_json(&json!({
                "dry_run": true,
                "event_id": event_id,
                "requests": requests,
                "notification": notification,
                "disposition": disposition,
            }))?,
            Answer::Held {
                event_id,
                disposition,
            } => Response::from_json(&json!({
                "event_id": event_id.as_str(),
                "disposition": disposition,
                "status_url": event_id.status_url(),
            }))?,
            Answer::Waited { status, .. } => Response::from_json(status)?,
            Answer::Accepted {
                event_id, requests, ..
            } => Response::from_json(&AcceptedBody {
                event_id: event_id.as_str(),
                requests: *requests,
                status_url: event_id.status_url(),
            })?,
            Answer::Known(status) => Response::from_json(status)?,
        }
        .with_status(self.status());
        if let Answer::Waited { status, .. } = self
            && status.status.state == DeliveryState::Pending
        {
            // When the queue's next attempt is due: asking earlier shows nothing new.
            let next_ms = status
                .status
                .pending
                .iter()
                .filter_map(|p| p.next_attempt_at_ms)
                .min()
                .unwrap_or(0);
            let secs = next_ms
                .saturating_sub(Date::now().as_millis())
                .div_ceil(1000);
            response
                .headers_mut()
                .set("Retry-After", &secs.max(1).to_string())?;
        }
        Ok(response)
    }

    /// The event's id, when there is an event.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Answer::Waited { event_id, .. }
            | Answer::Accepted { event_id, .. }
            | Answer::Held { event_id, .. } => Some(event_id.as_str()),
            Answer::Known(status) => Some(&status.event_id),
            Answer::DryRun { event_id, .. } => Some(event_id),
            Answer::Skipped { .. } => None,
        }
    }

    /// What the answer says, for the log line: mode, calls and receiver counts.
    pub fn summary(&self) -> serde_json::Value {
        let mut summary = self.counts();
        if let (Answer::Waited { cost, .. } | Answer::Accepted { cost, .. }, Some(line)) =
            (self, summary.as_object_mut())
        {
            line.insert("do_round_trips".into(), json!(cost.do_round_trips));
            line.insert("pacer_round_trips".into(), json!(cost.pacer_round_trips));
            line.insert(
                "sqlite_rows_written".into(),
                json!(cost.sqlite_rows_written),
            );
        }
        summary
    }

    fn counts(&self) -> serde_json::Value {
        match self {
            Answer::Waited { status, .. } | Answer::Known(status) => json!({
                "mode": if matches!(self, Answer::Waited { .. }) { "wait" } else { "known" },
                "requests": status.requests,
                "delivered": status.status.delivered.len(),
                "failed": status.status.failed.len(),
                "unknown": status.status.unknown.len(),
                "pending": status.status.pending.len(),
            }),
            Answer::Accepted { requests, .. } => json!({ "mode": "queue", "requests": requests }),
            Answer::Skipped { .. } => json!({ "skipped": true }),
            Answer::DryRun { requests, .. } => json!({ "dry_run": true, "requests": requests }),
            Answer::Held { disposition, .. } => json!({ "held": disposition.name() }),
        }
    }
}

/// Whether to deliver before answering: `Prefer: wait` (or `wait=<seconds>`,
/// RFC 7240), or `?wait=1` / `?wait=true`; `?wait=0` / `?wait=false` queue.
pub fn prefers_wait(req: &Request, query: &Query) -> Result<bool, RelayError> {
    let header = req.headers().get("prefer")?.unwrap_or_default();
    let preferred = header.split(',').any(|preference| {
        let name = preference.split(['=', ';']).next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("wait")
    });
    Ok(query.flag("wait")?.unwrap_or(preferred))
}

/// Records the event once per `webhook-id`, then delivers what it may
/// before answering (`wait`) and hands the rest to the queue, or hands all
/// of it to the queue at once. A known id sends nothing: it answers 200 with
/// the event's status, or 409 if it came with another body.
pub async fn intake(accepted: Accepted, env: &Env, wait: bool) -> Result<Answer, RelayError> {
    let Accepted {
        config,
        event_id,
        body_sha256,
        plan,
        route,
    } = accepted;
    let requests = plan.requests().len();
    let events = EventClient::new(env, event_id.as_str())?;
    let policy = if wait {
        config.sync_policy()
    } else {
        config.queued_policy()
    };
    // The synchronous path begins its first calls with the creation.
    let first = if wait {
        (0..requests.min(sync::first_round(&config))).collect()
    } else {
        Vec::new()
    };
    // Queued, the event's object enqueues the calls itself: one round trip.
    let steps = match events
        .create(
            &body_sha256,
            Delivery::new(plan, policy)?,
            first,
            route,
            !wait,
        )
        .await?
    {
        Created::New {
            steps,
            index: entry,
        } => {
            // Written with other events' entries, after the answer.
            index::defer(entry);
            steps
        }
        Created::Known => {
            return match events.status().await? {
                Some(status) => Ok(Answer::Known(Box::new(status))),
                None => Err(RelayError::Internal(
                    "the event store lost a known event".into(),
                )),
            };
        }
        Created::Conflict => {
            return Err(RelayError::Conflict {
                event_id: event_id.to_string(),
            });
        }
    };
    if !wait {
        return Ok(Answer::Accepted {
            event_id,
            requests,
            cost: Cost::of(&events),
        });
    }
    let (left, settled) = sync::drive(env, &config, &events, requests, steps).await;
    let status = match settled {
        // Every call finished: the last report answered the status.
        Some(status) => Some(*status),
        None => match hand_to_queue(&config, env, &events, left, true).await {
            Some(status) => Some(status),
            // The hand-off failed (the watchdog will enqueue): read the status alone.
            None => events.status().await?,
        },
    };
    match status {
        Some(status) => Ok(Answer::Waited {
            status: Box::new(EventStatus {
                status_url: Some(event_id.status_url()),
                ..status
            }),
            event_id,
            cost: Cost::of(&events),
        }),
        None => Err(RelayError::Internal(
            "the event store lost the event".into(),
        )),
    }
}

/// Enqueues the calls the intake leaves to the queue and marks the event
/// enqueued, answering its status if `with_status` (in the same round trip).
/// A failure here is logged, not answered: the record exists, so its
/// watchdog enqueues an event never marked enqueued. Something will deliver
/// it, which is what a 2xx promises.
async fn hand_to_queue(
    config: &Config,
    env: &Env,
    events: &EventClient,
    calls: Vec<usize>,
    with_status: bool,
) -> Option<EventStatus> {
    let enqueued = async {
        if config.test_fail_enqueue {
            return Err(worker::Error::RustError("TEST_FAIL_ENQUEUE is set".into()));
        }
        if !calls.is_empty() {
            task::enqueue(env, events.event_id(), 0, calls).await?;
        }
        if with_status {
            events.mark_enqueued_with_status().await
        } else {
            events.mark_enqueued().await.map(|()| None)
        }
    };
    match enqueued.await {
        Ok(status) => status,
        Err(e) => {
            console_log!(
                "{}",
                json!({ "event_id": events.event_id(), "enqueue_failed": e.to_string(), "recovery": "watchdog" })
            );
            None
        }
    }
}
