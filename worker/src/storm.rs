//! Alert storms: one Durable Object per webhook route (`STORM`, class
//! `Storm`, named by the route) keeps what the route's `digest`,
//! `throttle`, `quiet_hours` and silences need between events, and drives
//! it with alarms. The routes crate decides every step (`storm::screen`,
//! `RouteState::apply`, `render_digest`); this module stores, schedules and
//! hands what is to be sent to [`intake`], like any other event.
//!
//! Every rendered hook event is decided here once, by id: a redelivered
//! event gets its first decision back, so it never counts twice against a
//! throttle nor lands twice in a digest. What is not sent at once is kept
//! as a *held* record (its disposition), which `GET /v1/events/{id}` and
//! the dashboard show; a deferred event is kept whole until its quiet hours
//! end; a digest is sent when its window closes (the alarm) or it fills.
//!
//! Storage (SQLite, rows written per event: the event's held row, and the
//! one digest or the throttle it touched):
//! - `decided (event_id, created_ms, disposition)`: every decision, kept
//!   [`KEEP_MS`];
//! - `throttle (id = 1, json)` and `digests (key, json)`: the route's state;
//! - `deferred (event_id, until_ms, json)`: events waiting for quiet hours;
//! - `digest_events (digest_id, created_ms, events)`: what each sent digest
//!   carried, for its status;
//! - `silences (id = 1, json)`: the route's silences (at most 200).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, State, console_log,
    durable_object,
};
use yunxin_edge::{AccountId, BatchNotification};
use yunxin_edge_routes::render::payload;
use yunxin_edge_routes::storm::digest::{Collect, Digest, DigestKey, Flushed};
use yunxin_edge_routes::storm::silence::{Silence, SilenceError, SilenceId, Silences};
use yunxin_edge_routes::storm::throttle::Throttle;
use yunxin_edge_routes::storm::{Disposition, RouteState, screen};
use yunxin_edge_routes::{Event, Rendered, RouteError, render_digest};

use crate::config::Config;
use crate::error::RelayError;
use crate::intake::{self, Accepted};
use crate::route_config;
use crate::rpc;
use crate::webhook::EventId;

/// The binding of the namespace.
pub const BINDING: &str = "STORM";
/// How long a decision is kept: the idempotency window of the event store,
/// and long enough for a held event's status to be looked up for a week.
const KEEP_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// What the route's object is asked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Command {
    /// What becomes of a rendered event. Answer: [`Decided`].
    Decide(Box<Incoming>),
    /// The decision kept for an event, if any. Answer: `Option<Disposition>`.
    Held { event_id: String },
    /// The events a sent digest carried. Answer: `Vec<String>`.
    DigestEvents { digest_id: String },
    /// Keeps a silence (the body of `POST /v1/silences`). Answer: the
    /// silence's JSON, or a [`SilenceError`]'s.
    AddSilence { body: String, id: String },
    /// The route's silences, expired ones gone. Answer: `Vec<Silence>`.
    Silences,
    /// Removes a silence. Answer: `bool` (it existed).
    RemoveSilence { id: String },
}

/// A rendered hook event, as the route's object decides it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incoming {
    /// The event's id (route and idempotency key).
    pub event_id: String,
    /// Its headers, lower-cased (templates and matchers see them).
    pub headers: BTreeMap<String, String>,
    /// Its body (JSON text).
    pub body: String,
    /// The notification the route rendered.
    pub notification: Value,
    /// Decide on a copy of the state and keep nothing (`?dry_run=1`).
    pub dry_run: bool,
}

/// The route's object's answer to [`Command::Decide`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Decided {
    /// What becomes of the event.
    pub disposition: Disposition,
    /// It was decided before (a redelivery): this is that decision.
    pub repeat: bool,
}

/// The Durable Object class.
#[allow(missing_docs)] // The macro's glue methods.
#[durable_object]
pub struct Storm {
    state: State,
    env: Env,
    /// The route's name: the object's name, learnt from its first command
    /// and kept for its alarms.
    route: RefCell<Option<String>>,
}

const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), route TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS decided (event_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, \
     disposition TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS throttle (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS digests (key TEXT PRIMARY KEY, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deferred (event_id TEXT PRIMARY KEY, until_ms INTEGER NOT NULL, \
     json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS digest_events (digest_id TEXT PRIMARY KEY, \
     created_ms INTEGER NOT NULL, events TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS silences (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)",
];

impl DurableObject for Storm {
    fn new(state: State, env: Env) -> Self {
        Storm {
            state,
            env,
            route: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let route = req
            .headers()
            .get("x-route")?
            .ok_or_else(|| worker::Error::RustError("no x-route".into()))?;
        let command: Command = req.json().await?;
        let sql = self.sql()?;
        self.remember_route(&sql, &route)?;
        let now = Date::now().as_millis();
        match command {
            Command::Decide(incoming) => {
                let decided = self.decide(&sql, &route, *incoming, now).await?;
                Response::from_json(&decided)
            }
            Command::Held { event_id } => Response::from_json(&held(&sql, &event_id)?),
            Command::DigestEvents { digest_id } => {
                #[derive(Deserialize)]
                struct Row {
                    events: String,
                }
                let rows: Vec<Row> = sql
                    .exec(
                        "SELECT events FROM digest_events WHERE digest_id = ?",
                        vec![digest_id.into()],
                    )?
                    .to_array()?;
                let events: Vec<String> = rows
                    .first()
                    .map(|row| serde_json::from_str(&row.events))
                    .transpose()?
                    .unwrap_or_default();
                Response::from_json(&events)
            }
            Command::AddSilence { body, id } => {
                let routes = route_config::routes(&self.env).map_err(to_worker)?;
                let mut silences = silences(&sql)?;
                let added = SilenceId::new(id)
                    .ok_or_else(|| SilenceError::new(500, "id", "is not a silence id"))
                    .and_then(|id| Silence::parse(body.as_bytes(), &routes, id, now))
                    .and_then(|silence| {
                        if silence.route != route {
                            return Err(SilenceError::new(500, "route", "reached another route"));
                        }
                        let answer = silence.to_json(now);
                        silences.insert(silence, now)?;
                        Ok(answer)
                    });
                match added {
                    Ok(answer) => {
                        save_silences(&sql, &silences)?;
                        Ok(Response::from_json(&answer)?.with_status(201))
                    }
                    Err(e) => Ok(Response::from_json(&e.to_json())?.with_status(e.status())),
                }
            }
            Command::Silences => {
                let mut kept = silences(&sql)?;
                kept.prune(now);
                Response::from_json(&kept)
            }
            Command::RemoveSilence { id } => {
                let mut kept = silences(&sql)?;
                let removed = SilenceId::new(id).and_then(|id| kept.remove(&id)).is_some();
                if removed {
                    save_silences(&sql, &kept)?;
                }
                Response::from_json(&removed)
            }
        }
    }

    /// Sends the digests whose window closed and the deferred events whose
    /// quiet hours ended, then sets the next alarm.
    async fn alarm(&self) -> Result<Response> {
        let sql = self.sql()?;
        let Some(route_name) = self.route.borrow().clone().or(stored_route(&sql)?) else {
            return Response::ok("no route yet");
        };
        let now = Date::now().as_millis();
        let mut state = load_state(&sql)?;
        let before = state.clone();
        let due = state.flush_due(now);
        save_state(&sql, &before, &state)?;
        for flushed in due {
            if let Err(e) = self.send_digest(&sql, &route_name, &flushed, now).await {
                log_error(&route_name, "digest", &e);
            }
        }
        #[derive(Deserialize)]
        struct Row {
            json: String,
        }
        let waiting: Vec<Row> = sql
            .exec(
                "SELECT json FROM deferred WHERE until_ms <= ? ORDER BY until_ms",
                vec![(now as i64).into()],
            )?
            .to_array()?;
        for row in waiting {
            let incoming: Incoming = serde_json::from_str(&row.json)?;
            crate::meter::write(
                &sql,
                "DELETE FROM deferred WHERE event_id = ?",
                vec![incoming.event_id.clone().into()],
            )?;
            // Screened again: a silence made meanwhile applies, and a
            // digest collects it like any event. Its first decision (the
            // deferral) is forgotten, or `decide` would answer it again.
            let event_id = incoming.event_id.clone();
            crate::meter::write(
                &sql,
                "DELETE FROM decided WHERE event_id = ?",
                vec![event_id.clone().into()],
            )?;
            match self.decide(&sql, &route_name, incoming.clone(), now).await {
                Ok(decided) => {
                    if let Err(e) = self
                        .send_decided(&route_name, &incoming, &decided.disposition)
                        .await
                    {
                        log_error(&route_name, &event_id, &e);
                    }
                }
                Err(e) => log_error(&route_name, &event_id, &RelayError::from(e)),
            }
        }
        self.schedule(&sql, now).await?;
        Response::ok("done")
    }
}

impl Storm {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        for statement in SCHEMA {
            sql.exec(statement, None)?;
        }
        Ok(sql)
    }

    fn remember_route(&self, sql: &SqlStorage, route: &str) -> Result<()> {
        if self.route.borrow().as_deref() == Some(route) {
            return Ok(());
        }
        if stored_route(sql)?.as_deref() != Some(route) {
            crate::meter::write(
                sql,
                "INSERT OR REPLACE INTO meta (id, route) VALUES (1, ?)",
                vec![route.into()],
            )?;
        }
        *self.route.borrow_mut() = Some(route.to_owned());
        Ok(())
    }

    /// Decides `incoming` once: a known id answers its first decision.
    async fn decide(
        &self,
        sql: &SqlStorage,
        route_name: &str,
        incoming: Incoming,
        now: u64,
    ) -> Result<Decided> {
        if let Some(disposition) = held(sql, &incoming.event_id)? {
            return Ok(Decided {
                disposition,
                repeat: true,
            });
        }
        let routes = route_config::routes(&self.env).map_err(to_worker)?;
        let route = routes.get(route_name).map_err(to_worker)?;
        let options = route_config::render_options(&self.env).map_err(to_worker)?;
        let mut silences = silences(sql)?;
        silences.prune(now);
        let event = Event {
            route: route_name,
            headers: &incoming.headers,
            body: incoming.body.as_bytes(),
            now_secs: (now / 1000) as i64,
        };
        let screened = screen(route, &event, &silences, &options, now).map_err(to_worker)?;
        for (id, error) in &screened.failed_silences {
            console_log!(
                "{}",
                json!({ "route": route_name, "silence": id.as_str(), "matcher_failed": error })
            );
        }
        let payload = payload(route_name, incoming.body.as_bytes()).map_err(to_worker)?;
        let receivers: Vec<AccountId> = incoming
            .notification
            .get("receiver_ids")
            .cloned()
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default();
        let collect = Collect::new(incoming.event_id.clone(), payload, receivers)
            .with_notification(incoming.notification.clone());
        let mut state = load_state(sql)?;
        let before = state.clone();
        let decision = state.apply(route_name, &screened.step, collect, now);
        if incoming.dry_run {
            return Ok(Decided {
                disposition: decision.disposition,
                repeat: false,
            });
        }
        save_state(sql, &before, &state)?;
        crate::meter::write(
            sql,
            "DELETE FROM decided WHERE created_ms < ?",
            vec![(now.saturating_sub(KEEP_MS) as i64).into()],
        )?;
        crate::meter::write(
            sql,
            "INSERT OR REPLACE INTO decided (event_id, created_ms, disposition) VALUES (?, ?, ?)",
            vec![
                incoming.event_id.clone().into(),
                (now as i64).into(),
                serde_json::to_string(&decision.disposition)?.into(),
            ],
        )?;
        if let Disposition::Deferred { until_ms, .. } = &decision.disposition {
            crate::meter::write(
                sql,
                "INSERT OR REPLACE INTO deferred (event_id, until_ms, json) VALUES (?, ?, ?)",
                vec![
                    incoming.event_id.clone().into(),
                    (*until_ms as i64).into(),
                    serde_json::to_string(&incoming)?.into(),
                ],
            )?;
        }
        if let Some(flushed) = &decision.flushed
            && let Err(e) = self.send_digest(sql, route_name, flushed, now).await
        {
            log_error(route_name, "digest", &e);
        }
        self.schedule(sql, now).await?;
        Ok(Decided {
            disposition: decision.disposition,
            repeat: false,
        })
    }

    /// Renders a digest and hands it to the queue, under its own id.
    async fn send_digest(
        &self,
        sql: &SqlStorage,
        route_name: &str,
        flushed: &Flushed,
        now: u64,
    ) -> std::result::Result<(), RelayError> {
        let events: Vec<&str> = flushed.event_ids().collect();
        crate::meter::write(
            sql,
            "INSERT OR REPLACE INTO digest_events (digest_id, created_ms, events) VALUES (?, ?, ?)",
            vec![
                flushed.id.as_str().into(),
                (now as i64).into(),
                serde_json::to_string(&events)
                    .map_err(worker::Error::from)?
                    .into(),
            ],
        )?;
        crate::meter::write(
            sql,
            "DELETE FROM digest_events WHERE created_ms < ?",
            vec![(now.saturating_sub(KEEP_MS) as i64).into()],
        )?;
        let routes = route_config::routes(&self.env)?;
        let route = routes.get(route_name)?;
        let options = route_config::render_options(&self.env)?;
        let Rendered::Notification {
            notification,
            json,
            event_id,
        } = render_digest(route, flushed, &options)?
        else {
            return Ok(());
        };
        deliver(
            &self.env,
            route_name,
            &event_id,
            &notification,
            &json.to_string(),
        )
        .await
    }

    /// Sends what a deferred event's new decision lets through.
    async fn send_decided(
        &self,
        route_name: &str,
        incoming: &Incoming,
        disposition: &Disposition,
    ) -> std::result::Result<(), RelayError> {
        let receivers = match disposition {
            Disposition::Send => None,
            Disposition::Throttled { allowed, .. } if !allowed.is_empty() => Some(allowed.clone()),
            _ => return Ok(()),
        };
        let mut json = incoming.notification.clone();
        if let Some(receivers) = receivers {
            json["receiver_ids"] = serde_json::to_value(receivers).map_err(worker::Error::from)?;
        }
        let notification = BatchNotification::from_json(json.to_string())?;
        deliver(
            &self.env,
            route_name,
            &incoming.event_id,
            &notification,
            &incoming.body,
        )
        .await
    }

    /// Sets the alarm for the next digest to close or deferred event to
    /// come back, if any.
    async fn schedule(&self, sql: &SqlStorage, now: u64) -> Result<()> {
        #[derive(Deserialize)]
        struct Row {
            until_ms: Option<u64>,
        }
        let deferred: Vec<Row> = sql
            .exec("SELECT MIN(until_ms) AS until_ms FROM deferred", None)?
            .to_array()?;
        let next = [
            load_state(sql)?.next_alarm_ms(),
            deferred.first().and_then(|row| row.until_ms),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = next {
            let storage = self.state.storage();
            let current = storage.get_alarm().await?;
            if current.is_none_or(|set| set as u64 > at) {
                storage
                    .set_alarm(Duration::from_millis(at.saturating_sub(now)))
                    .await?;
            }
        }
        Ok(())
    }
}

/// Records and queues a notification of `route` under `event_id`.
async fn deliver(
    env: &Env,
    route_name: &str,
    event_id: &str,
    notification: &BatchNotification,
    body: &str,
) -> std::result::Result<(), RelayError> {
    let event_id = EventId::parse(event_id)
        .map_err(|e| RelayError::Internal(format!("a storm event id {e}")))?;
    let config = Config::from_env(env)?;
    let accepted = Accepted::of_route(config, event_id, body.as_bytes(), notification, route_name)?;
    intake::intake(accepted, env, false).await.map(drop)
}

fn log_error(route: &str, what: &str, error: &RelayError) {
    console_log!(
        "{}",
        json!({ "route": route, "storm": what, "error": error.to_string() })
    );
}

fn to_worker(error: RouteError) -> worker::Error {
    worker::Error::RustError(error.to_string())
}

fn stored_route(sql: &SqlStorage) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Row {
        route: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT route FROM meta WHERE id = 1", None)?
        .to_array()?;
    Ok(rows.into_iter().next().map(|row| row.route))
}

fn held(sql: &SqlStorage, event_id: &str) -> Result<Option<Disposition>> {
    #[derive(Deserialize)]
    struct Row {
        disposition: String,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT disposition FROM decided WHERE event_id = ?",
            vec![event_id.into()],
        )?
        .to_array()?;
    rows.first()
        .map(|row| serde_json::from_str(&row.disposition).map_err(worker::Error::from))
        .transpose()
}

fn silences(sql: &SqlStorage) -> Result<Silences> {
    #[derive(Deserialize)]
    struct Row {
        json: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT json FROM silences WHERE id = 1", None)?
        .to_array()?;
    Ok(rows
        .first()
        .map(|row| serde_json::from_str(&row.json))
        .transpose()?
        .unwrap_or_default())
}

fn save_silences(sql: &SqlStorage, silences: &Silences) -> Result<()> {
    crate::meter::write(
        sql,
        "INSERT OR REPLACE INTO silences (id, json) VALUES (1, ?)",
        vec![serde_json::to_string(silences)?.into()],
    )?;
    Ok(())
}

/// The route's throttle and open digests.
fn load_state(sql: &SqlStorage) -> Result<RouteState> {
    #[derive(Deserialize)]
    struct Json {
        json: String,
    }
    #[derive(Deserialize)]
    struct Keyed {
        key: String,
        json: String,
    }
    let throttle: Vec<Json> = sql
        .exec("SELECT json FROM throttle WHERE id = 1", None)?
        .to_array()?;
    let throttle: Throttle = throttle
        .first()
        .map(|row| serde_json::from_str(&row.json))
        .transpose()?
        .unwrap_or_default();
    let rows: Vec<Keyed> = sql
        .exec("SELECT key, json FROM digests", None)?
        .to_array()?;
    let mut digests = BTreeMap::new();
    for row in rows {
        let digest: Digest = serde_json::from_str(&row.json)?;
        digests.insert(DigestKey::new(&row.key), digest);
    }
    Ok(RouteState { throttle, digests })
}

/// Writes what changed between `before` and `after`: the throttle, and the
/// digests added, changed or gone, each its own row.
fn save_state(sql: &SqlStorage, before: &RouteState, after: &RouteState) -> Result<()> {
    if before.throttle != after.throttle {
        crate::meter::write(
            sql,
            "INSERT OR REPLACE INTO throttle (id, json) VALUES (1, ?)",
            vec![serde_json::to_string(&after.throttle)?.into()],
        )?;
    }
    for (key, digest) in &after.digests {
        if before.digests.get(key) != Some(digest) {
            crate::meter::write(
                sql,
                "INSERT OR REPLACE INTO digests (key, json) VALUES (?, ?)",
                vec![key.as_str().into(), serde_json::to_string(digest)?.into()],
            )?;
        }
    }
    for key in before.digests.keys() {
        if !after.digests.contains_key(key) {
            crate::meter::write(
                sql,
                "DELETE FROM digests WHERE key = ?",
                vec![key.as_str().into()],
            )?;
        }
    }
    Ok(())
}

/// Talks to one route's object.
pub struct StormClient {
    stub: worker::Stub,
    route: String,
}

impl StormClient {
    /// The object of route `route`.
    pub fn new(env: &Env, route: &str) -> Result<Self> {
        Ok(StormClient {
            stub: env.durable_object(BINDING)?.get_by_name(route)?,
            route: route.to_owned(),
        })
    }

    async fn ask<T: serde::de::DeserializeOwned>(&self, command: &Command) -> Result<(u16, T)> {
        let body = serde_json::to_string(command)?;
        let response = rpc::post(&self.stub, "/", body, &[("x-route", &self.route)]).await?;
        let status = response.status_code();
        Ok((
            status,
            serde_json::from_str(&crate::body::response_text(response).await?)?,
        ))
    }

    /// Decides a rendered event.
    pub async fn decide(&self, incoming: Incoming) -> Result<Decided> {
        Ok(self.ask(&Command::Decide(Box::new(incoming))).await?.1)
    }

    /// The decision kept for an event, if it was not simply sent.
    pub async fn held(&self, event_id: &str) -> Result<Option<Disposition>> {
        let command = Command::Held {
            event_id: event_id.to_owned(),
        };
        Ok(self.ask(&command).await?.1)
    }

    /// The events a sent digest carried.
    pub async fn digest_events(&self, digest_id: &str) -> Result<Vec<String>> {
        let command = Command::DigestEvents {
            digest_id: digest_id.to_owned(),
        };
        Ok(self.ask(&command).await?.1)
    }

    /// Adds a silence: its status (201, or the error's) and JSON.
    pub async fn add_silence(&self, body: &[u8], id: &str) -> Result<(u16, Value)> {
        let command = Command::AddSilence {
            body: String::from_utf8_lossy(body).into_owned(),
            id: id.to_owned(),
        };
        self.ask(&command).await
    }

    /// The route's silences, expired ones gone.
    pub async fn silences(&self) -> Result<Vec<Silence>> {
        Ok(self.ask(&Command::Silences).await?.1)
    }

    /// Removes a silence; whether it existed.
    pub async fn remove_silence(&self, id: &str) -> Result<bool> {
        let command = Command::RemoveSilence { id: id.to_owned() };
        Ok(self.ask(&command).await?.1)
    }
}

/// Whether a decision sends nothing now: the event is held (silenced,
/// dropped, deferred, digested, or every receiver throttled).
pub fn holds_everything(disposition: &Disposition) -> bool {
    match disposition {
        Disposition::Send => false,
        Disposition::Throttled { allowed, .. } => allowed.is_empty(),
        _ => true,
    }
}
