//! The event index: what came in, what became of it, and how Yunxin is
//! doing, across all events — for the operator's list, the dashboard and
//! `/metrics`.
//!
//! One SQLite-backed Durable Object (named `index`): strongly consistent and
//! queryable, unlike KV, and available offline under `wrangler dev`, unlike
//! D1's remote mode. The events' own records stay the truth: each tells the
//! index of every change ([`Entry`]) with a version, so a late write never
//! replaces a newer one. Events are kept `EVENT_RETENTION_DAYS` (default 7)
//! after their last change. Counters are never pruned: Prometheus expects
//! them to only go up. Every count is a whole number (durations in ms).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use worker::{
    AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset, Date, DurableObject, Env, Request,
    Response, Result, SqlStorage, SqlStorageValue, State, console_log, durable_object,
};
use yunxin_edge::{Counts, DeliveryState};
use yunxin_edge_index::{
    AttemptRow, Command, Counter, Detail, EndpointHealth, Entry, Histogram, Listed, MAX_PAGE,
    Minute, Page, Query, Receivers, Stats, Wait, cursor_after, parse_cursor,
};

/// The optional Workers Analytics Engine dataset binding.
pub const ANALYTICS: &str = "ANALYTICS";
/// Days an event is listed after its last change (`EVENT_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u64 = 7;
/// How often old events are pruned.
const PRUNE_EVERY_MS: u64 = 60 * 60 * 1000;
/// The most counter series the index keeps: every label set of every name,
/// histogram buckets included. Labels come from the configuration (routes,
/// endpoints) and from Yunxin's answers (codes), never from a request, but
/// neither is bounded by us: past this, a new series is counted under its
/// name with [`OVERFLOW_LABELS`], so memory and `/metrics` stay bounded and
/// no count is lost.
pub const MAX_SERIES: i64 = 5_000;
/// The labels of the series that counts what did not fit.
const OVERFLOW_LABELS: &str = r#"{"overflow":"true"}"#;
/// Upper bounds of the latency and wait histograms, in ms.
pub const BUCKETS_MS: [u64; 9] = [10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// The Durable Object class.
#[allow(missing_docs)] // The macro's glue methods.
#[durable_object]
pub struct EventIndex {
    state: State,
    env: Env,
    /// Whether this life of the object has made its tables.
    ready: Cell<bool>,
    /// Whether the tables of the first schema (`events`, `attempts`) are
    /// still there: read beside the new ones until retention empties them
    /// ([`LEGACY`]).
    legacy: Cell<bool>,
    /// When this life of the object last pruned old events (UNIX ms).
    pruned_ms: Cell<u64>,
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

impl DurableObject for EventIndex {
    fn new(state: State, env: Env) -> Self {
        EventIndex {
            state,
            env,
            ready: Cell::new(false),
            legacy: Cell::new(false),
            pruned_ms: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = serde_json::from_str(&req.text().await?)?;
        let sql = self.sql()?;
        match command {
            Command::Log(entries) => {
                let now = now_ms();
                let tally = Tally::new(
                    &sql,
                    self.legacy.get(),
                    self.env.analytics_engine(ANALYTICS).ok(),
                );
                for entry in entries {
                    apply(&tally, entry, now)?;
                }
                tally.flush()?;
                // Pruned as events come in (and by the alarm when none do),
                // several times per retention period.
                // The alarm is looked at with it, not at every write.
                let retention_ms = self.retention_ms();
                if now.saturating_sub(self.pruned_ms.get()) >= prune_every_ms(retention_ms) {
                    self.prune(&sql, now, retention_ms)?;
                    if self.state.storage().get_alarm().await?.is_none() {
                        let first = Duration::from_millis(prune_every_ms(retention_ms));
                        self.state.storage().set_alarm(first).await?;
                    }
                }
                Response::from_json(&true)
            }
            Command::List(query) => Response::from_json(&list(&sql, self.legacy.get(), &query)?),
            Command::Detail(event_id) => {
                Response::from_json(&detail(&sql, self.legacy.get(), &event_id)?)
            }
            Command::Stats { rate_per_minute } => {
                Response::from_json(&stats(&sql, rate_per_minute, now_ms())?)
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        crate::meter::add(|m| m.do_requests += 1);
        let retention_ms = self.retention_ms();
        self.prune(&self.sql()?, now_ms(), retention_ms)?;
        self.state
            .storage()
            .set_alarm(Duration::from_millis(prune_every_ms(retention_ms)))
            .await?;
        Response::ok("pruned")
    }
}

/// How often to prune: hourly, or ten times per retention period if that
/// is shorter.
fn prune_every_ms(retention_ms: u64) -> u64 {
    PRUNE_EVERY_MS.min(retention_ms / 10).max(1)
}

impl EventIndex {
    /// `EVENT_RETENTION_DAYS` in ms (days may be fractional). A value that
    /// is not a positive number is logged, naming the binding, and the
    /// default kept: the index must not stop for it.
    fn retention_ms(&self) -> u64 {
        const DAY_MS: f64 = 24.0 * 60.0 * 60.0 * 1000.0;
        let Ok(value) = self.env.var("EVENT_RETENTION_DAYS") else {
            return DEFAULT_RETENTION_DAYS * DAY_MS as u64;
        };
        match value.to_string().trim().parse::<f64>() {
            Ok(days) if days > 0.0 && days.is_finite() => (days * DAY_MS) as u64,
            _ => {
                console_log!(
                    "{}",
                    serde_json::json!({
                        "error": "EVENT_RETENTION_DAYS is not a positive number of days; keeping events the default 7 days",
                        "field": "EVENT_RETENTION_DAYS",
                    })
                );
                DEFAULT_RETENTION_DAYS * DAY_MS as u64
            }
        }
    }

    /// Forgets events not changed for `retention_ms`, and their attempts;
    /// the attempts of events the index never heard of once their first
    /// attempt is that old; calls per minute older than `/metrics` shows.
    fn prune(&self, sql: &SqlStorage, now: u64, retention_ms: u64) -> Result<()> {
        let cutoff = now.saturating_sub(retention_ms) as i64;
        let mut statements = vec![
            // Attempts first: they are found by their events' ids.
            "DELETE FROM attempt_rows WHERE event_id IN \
             (SELECT event_id FROM event_rows WHERE updated_ms < ?1)",
            "DELETE FROM event_rows WHERE updated_ms < ?1",
            "DELETE FROM attempt_rows WHERE event_id IN (SELECT event_id FROM orphan_events \
             WHERE started_ms < ?1 AND event_id NOT IN (SELECT event_id FROM event_rows))",
            "DELETE FROM orphan_events WHERE started_ms < ?1",
        ];
        if self.legacy.get() {
            statements.extend([
                "DELETE FROM attempt_rows WHERE event_id IN \
                 (SELECT event_id FROM events WHERE updated_ms < ?1)",
                "DELETE FROM events WHERE updated_ms < ?1",
                "DELETE FROM attempts WHERE started_ms < ?1 \
                 AND event_id NOT IN (SELECT event_id FROM events)",
            ]);
        }
        for statement in statements {
            crate::meter::written(sql.exec(statement, vec![cutoff.into()])?);
        }
        let first_minute = (now / MINUTE_MS).saturating_sub(KEEP_MINUTES) as i64;
        crate::meter::written(sql.exec(
            "DELETE FROM calls_by_minute WHERE minute < ?",
            vec![first_minute.into()],
        )?);
        if self.legacy.get() && legacy_is_empty(sql)? {
            for table in LEGACY {
                sql.exec(&format!("DROP TABLE {table}"), None)?;
            }
            self.legacy.set(false);
        }
        self.pruned_ms.set(now);
        Ok(())
    }

    /// The object's storage, its tables made (and, the first time after
    /// the schema changed, the last hour's calls per minute counted from
    /// the first schema's attempts) once per life of the object.
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            #[derive(Deserialize)]
            struct Table {
                name: String,
            }
            let tables: Vec<Table> = sql
                .exec("SELECT name FROM sqlite_master WHERE type = 'table'", None)?
                .to_array()?;
            let has = |name: &str| tables.iter().any(|t| t.name == name);
            let legacy = LEGACY.iter().all(|table| has(table));
            let counted = has("calls_by_minute");
            // All in one turn, with no await between: the object writes
            // them at once, or not at all.
            for statement in SCHEMA {
                sql.exec(statement, None)?;
            }
            if legacy && !counted {
                let since = (now_ms() / MINUTE_MS).saturating_sub(KEEP_MINUTES) * MINUTE_MS;
                crate::meter::written(sql.exec(
                    "INSERT INTO calls_by_minute (minute, endpoint, calls, rate_limited, \
                     failures, last_failure_ms, last_success_ms) \
                     SELECT started_ms / 60000, endpoint, COUNT(*), \
                     SUM(outcome = 'rate_limited'), SUM(endpoint_failure), \
                     MAX(CASE WHEN endpoint_failure THEN started_ms END), \
                     MAX(CASE WHEN endpoint_failure THEN NULL ELSE started_ms END) \
                     FROM attempts WHERE started_ms >= ? GROUP BY started_ms / 60000, endpoint",
                    vec![(since as i64).into()],
                )?);
            }
            self.legacy.set(legacy);
            self.ready.set(true);
        }
        Ok(sql)
    }
}

/// Whether the first schema's tables hold nothing more.
fn legacy_is_empty(sql: &SqlStorage) -> Result<bool> {
    let rows: Vec<Value> = sql
        .exec(
            "SELECT 1 FROM events UNION ALL SELECT 1 FROM attempts LIMIT 1",
            None,
        )?
        .to_array()?;
    Ok(rows.is_empty())
}

const MINUTE_MS: u64 = 60_000;
/// How many whole minutes of calls are kept: the hour `/metrics` and the
/// dashboard show, and as much again for slow clocks and late entries.
const KEEP_MINUTES: u64 = 120;

/// The tables of the first schema, in which every row cost a write more
/// than it needs: a rowid table keeps its primary key in an index of its
/// own, and SQLite counts each index entry as a row written. An existing
/// deployment keeps them, read beside the new ones (no copy: a copy of a
/// week of events in one request could outlast the request's time), and
/// nothing new is written to them but updates of their events; they are
/// dropped once retention has emptied them.
const LEGACY: [&str; 2] = ["events", "attempts"];

/// The tables. Every row written costs as many SQLite rows as the B-trees
/// it goes in, so each table has as few as its readers need:
///
/// - `event_rows`: by id (the primary key, no rowid: one tree) for the
///   entries' updates and the detail, and by time for the list's pages
///   (its one index).
/// - `attempt_rows`: by event only, for the detail (one tree). What the
///   dashboard and `/metrics` count by time is in `calls_by_minute`, one
///   row per minute and endpoint, written once per `Log`, not once per
///   attempt.
/// - `orphan_events`: events the index heard attempts of before (or
///   without) their acceptance, with their first attempt's time, so that
///   their attempts are forgotten as the first schema forgot them
///   (attempts of unknown events, by time) without a time index on
///   `attempt_rows`.
/// - `counters`: unchanged.
const SCHEMA: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS event_rows (event_id TEXT NOT NULL PRIMARY KEY, route TEXT, \
     created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, version INTEGER NOT NULL, \
     state TEXT NOT NULL, requests INTEGER NOT NULL, total INTEGER NOT NULL, \
     delivered INTEGER NOT NULL, failed INTEGER NOT NULL, unknown INTEGER NOT NULL, \
     pending INTEGER NOT NULL, failed_by_code TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS event_rows_by_time ON event_rows (created_ms DESC, event_id DESC)",
    "CREATE TABLE IF NOT EXISTS attempt_rows (event_id TEXT NOT NULL, call INTEGER NOT NULL, \
     attempt INTEGER NOT NULL, row TEXT NOT NULL, started_ms INTEGER NOT NULL, \
     PRIMARY KEY (event_id, call, attempt)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS orphan_events (event_id TEXT NOT NULL PRIMARY KEY, \
     started_ms INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS calls_by_minute (minute INTEGER NOT NULL, \
     endpoint TEXT NOT NULL, calls INTEGER NOT NULL, rate_limited INTEGER NOT NULL, \
     failures INTEGER NOT NULL, last_failure_ms INTEGER, last_success_ms INTEGER, \
     PRIMARY KEY (minute, endpoint)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, labels TEXT NOT NULL, \
     value INTEGER NOT NULL, PRIMARY KEY (name, labels))",
];

/// The label `route` takes: the route's name, or `-` for `/v1/notifications`.
fn route_label(route: Option<&str>) -> &str {
    route.unwrap_or("-")
}

fn state_name(state: DeliveryState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// One `Log` command's work: its statements, and what it can write once at
/// its end rather than once per entry. Counter increments are summed (a
/// queue batch's hundred attempts touch a handful of counters, a hundred
/// times each), calls per minute too, and each event's row is read once and
/// written once with its last counts: an event accepted and attempted in
/// the same batch (the synchronous path's) is inserted as it ends, never
/// inserted then updated.
struct Tally<'a> {
    sql: &'a SqlStorage,
    /// Whether the first schema's tables are still read ([`LEGACY`]).
    legacy: bool,
    counters: RefCell<BTreeMap<(String, String), i64>>,
    /// The events the entries named, by id, as last known: `None` for one
    /// the index does not know.
    events: RefCell<BTreeMap<String, Option<Cached>>>,
    /// Calls by minute and endpoint.
    calls: RefCell<BTreeMap<(i64, String), Calls>>,
    /// Events attempted but unknown, with their first attempt's time.
    orphans: RefCell<BTreeMap<String, i64>>,
    /// The `ANALYTICS` dataset, when configured: each increment is also a
    /// data point there (blobs: name, labels as JSON; double: the increment;
    /// index: the name), for queries over time that `/metrics` cannot answer.
    analytics: Option<AnalyticsEngineDataset>,
}

/// An event's row as a `Log` command knows it.
struct Cached {
    row: Known,
    /// The table it is in, or `None` for one this command adds.
    table: Option<&'static str>,
    /// Whether this command changed it.
    dirty: bool,
}

/// Upstream calls of one minute to one endpoint (see `endpoints`).
#[derive(Default)]
struct Calls {
    calls: i64,
    rate_limited: i64,
    failures: i64,
    last_failure_ms: Option<i64>,
    last_success_ms: Option<i64>,
}

impl<'a> Tally<'a> {
    fn new(sql: &'a SqlStorage, legacy: bool, analytics: Option<AnalyticsEngineDataset>) -> Self {
        Tally {
            sql,
            legacy,
            counters: RefCell::default(),
            events: RefCell::default(),
            calls: RefCell::default(),
            orphans: RefCell::default(),
            analytics,
        }
    }

    /// Reads `event_id`'s row into [`Tally::events`], once per command.
    fn load(&self, event_id: &str) -> Result<()> {
        if self.events.borrow().contains_key(event_id) {
            return Ok(());
        }
        let mut cached = None;
        for table in ["event_rows"]
            .into_iter()
            .chain(self.legacy.then_some(LEGACY[0]))
        {
            if let Some(row) = known(self.sql, table, event_id)? {
                cached = Some(Cached {
                    row,
                    table: Some(table),
                    dirty: false,
                });
                break;
            }
        }
        self.events.borrow_mut().insert(event_id.to_owned(), cached);
        Ok(())
    }

    /// Counts an attempt in its minute's calls.
    fn call(&self, attempt: &AttemptRow) {
        let started = attempt.started_at_ms as i64;
        let minute = (attempt.started_at_ms / MINUTE_MS) as i64;
        let mut calls = self.calls.borrow_mut();
        let calls = calls.entry((minute, attempt.endpoint.clone())).or_default();
        calls.calls += 1;
        calls.rate_limited += i64::from(attempt.outcome == "rate_limited");
        let last = if attempt.endpoint_failure {
            calls.failures += 1;
            &mut calls.last_failure_ms
        } else {
            &mut calls.last_success_ms
        };
        *last = Some(last.map_or(started, |ms| ms.max(started)));
    }

    /// Writes each changed event's row once, the calls per minute, and the
    /// events still unknown that were attempted.
    fn write(&self) -> Result<()> {
        let events = self.events.take();
        for (event_id, cached) in &events {
            let Some(Cached {
                row,
                table,
                dirty: true,
            }) = cached
            else {
                continue;
            };
            let values: Vec<SqlStorageValue> = vec![
                row.updated_ms.into(),
                row.version.into(),
                row.state.clone().into(),
                row.delivered.into(),
                row.failed.into(),
                row.unknown.into(),
                row.pending.into(),
                row.failed_by_code.clone().into(),
                event_id.clone().into(),
            ];
            crate::meter::written(match table {
                None => self.sql.exec(
                    "INSERT INTO event_rows (updated_ms, version, state, delivered, failed, \
                     unknown, pending, failed_by_code, event_id, route, created_ms, requests, \
                     total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (event_id) DO NOTHING",
                    values
                        .into_iter()
                        .chain([
                            row.route.clone().map_or(SqlStorageValue::Null, Into::into),
                            row.created_ms.into(),
                            row.requests.into(),
                            row.total.into(),
                        ])
                        .collect::<Vec<_>>(),
                )?,
                Some(table) => self.sql.exec(
                    &format!(
                        "UPDATE {table} SET updated_ms = ?, version = ?, state = ?, \
                         delivered = ?, failed = ?, unknown = ?, pending = ?, \
                         failed_by_code = ? WHERE event_id = ?"
                    ),
                    values,
                )?,
            });
        }
        for ((minute, endpoint), calls) in self.calls.take() {
            let ms = |ms: Option<i64>| ms.map_or(SqlStorageValue::Null, Into::into);
            crate::meter::written(self.sql.exec(
                "INSERT INTO calls_by_minute (minute, endpoint, calls, rate_limited, failures, \
                 last_failure_ms, last_success_ms) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (minute, endpoint) DO UPDATE SET calls = calls + excluded.calls, \
                 rate_limited = rate_limited + excluded.rate_limited, \
                 failures = failures + excluded.failures, \
                 last_failure_ms = max(coalesce(last_failure_ms, excluded.last_failure_ms), \
                 coalesce(excluded.last_failure_ms, last_failure_ms)), \
                 last_success_ms = max(coalesce(last_success_ms, excluded.last_success_ms), \
                 coalesce(excluded.last_success_ms, last_success_ms))",
                vec![
                    minute.into(),
                    endpoint.into(),
                    calls.calls.into(),
                    calls.rate_limited.into(),
                    calls.failures.into(),
                    ms(calls.last_failure_ms),
                    ms(calls.last_success_ms),
                ],
            )?);
        }
        for (event_id, started_ms) in self.orphans.take() {
            // Accepted later in the same command: not an orphan.
            if matches!(events.get(&event_id), Some(Some(_))) {
                continue;
            }
            crate::meter::written(self.sql.exec(
                "INSERT INTO orphan_events (event_id, started_ms) VALUES (?, ?) \
                 ON CONFLICT (event_id) DO NOTHING",
                vec![event_id.into(), started_ms.into()],
            )?);
        }
        Ok(())
    }

    /// Writes the events, the calls and the summed increments.
    fn flush(self) -> Result<()> {
        self.write()?;
        let mut series = None;
        for ((name, labels), by) in self.counters.take() {
            if let Some(dataset) = &self.analytics {
                AnalyticsEngineDataPointBuilder::new()
                    .indexes([name.as_str()])
                    .add_blob(name.as_str())
                    .add_blob(labels.as_str())
                    .add_double(by as f64)
                    .write_to(dataset)?;
            }
            let updated: Vec<Value> = crate::meter::written(self.sql.exec(
                "UPDATE counters SET value = value + ? WHERE name = ? AND labels = ? \
                 RETURNING value",
                vec![by.into(), name.clone().into(), labels.clone().into()],
            )?)
            .to_array()?;
            if !updated.is_empty() {
                continue;
            }
            // A new series: counted once per flush (new ones are rare once
            // the index has seen a day's traffic), folded past the cap.
            let count = match series {
                Some(count) => count,
                None => self.series()?,
            };
            let labels = if count < MAX_SERIES {
                series = Some(count + 1);
                labels
            } else {
                series = Some(count);
                OVERFLOW_LABELS.to_owned()
            };
            crate::meter::written(self.sql.exec(
                "INSERT INTO counters (name, labels, value) VALUES (?, ?, ?) \
                 ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
                vec![name.into(), labels.into(), by.into()],
            )?);
        }
        Ok(())
    }

    /// How many series the index keeps.
    fn series(&self) -> Result<i64> {
        #[derive(Deserialize)]
        struct Row {
            n: i64,
        }
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT COUNT(*) AS n FROM counters", None)?
            .to_array()?;
        Ok(rows.first().map_or(0, |row| row.n))
    }
}

/// Adds `by` to the counter `name` with `labels`.
fn add(t: &Tally, name: &str, labels: &[(&str, &str)], by: i64) -> Result<()> {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let key = (name.to_owned(), serde_json::to_string(&labels)?);
    *t.counters.borrow_mut().entry(key).or_default() += by;
    Ok(())
}

/// Counts one observation of `ms` in the histogram `name` (its bucket, by
/// index: `BUCKETS_MS.len()` is +Inf).
fn observe(t: &Tally, name: &str, labels: &[(&str, &str)], ms: u64) -> Result<()> {
    let bucket = BUCKETS_MS
        .iter()
        .position(|le| ms <= *le)
        .unwrap_or(BUCKETS_MS.len())
        .to_string();
    let ms = ms as i64;
    let mut with_bucket = labels.to_vec();
    with_bucket.push(("bucket", &bucket));
    add(t, &format!("{name}_bucket"), &with_bucket, 1)?;
    add(t, &format!("{name}_sum_ms"), labels, ms)?;
    add(t, &format!("{name}_count"), labels, 1)
}

/// The columns of an event's row, as [`Known`] reads them.
const EVENT_COLUMNS: &str = "event_id, route, created_ms, updated_ms, version, state, requests, \
     total, delivered, failed, unknown, pending, failed_by_code";

/// An event's row: for its updates, its detail and the list's pages.
#[derive(Deserialize)]
struct Known {
    event_id: String,
    route: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    version: i64,
    state: String,
    requests: i64,
    total: i64,
    delivered: i64,
    failed: i64,
    unknown: i64,
    pending: i64,
    failed_by_code: String,
}

/// `event_id`'s row in `table` (`event_rows`, or the first schema's
/// `events`), if there.
fn known(sql: &SqlStorage, table: &str, event_id: &str) -> Result<Option<Known>> {
    let rows: Vec<Known> = sql
        .exec(
            &format!("SELECT {EVENT_COLUMNS} FROM {table} WHERE event_id = ?"),
            vec![event_id.into()],
        )?
        .to_array()?;
    Ok(rows.into_iter().next())
}

/// Applies an event's new counts if they are newer than what is known, and
/// counts the receivers that became delivered or failed since. `None` for
/// an event the index does not know; else its route.
fn update(
    t: &Tally,
    event_id: &str,
    counts: &Counts,
    version: u64,
    now: u64,
) -> Result<Option<Option<String>>> {
    t.load(event_id)?;
    let mut events = t.events.borrow_mut();
    let Some(Some(cached)) = events.get_mut(event_id) else {
        return Ok(None);
    };
    let known = &mut cached.row;
    let route = known.route.clone();
    if version as i64 <= known.version {
        return Ok(Some(route));
    }
    let label = route_label(route.as_deref()).to_owned();
    let delivered = counts.delivered as i64 - known.delivered;
    if delivered > 0 {
        add(t, "receivers_delivered", &[("route", &label)], delivered)?;
    }
    // Failed receivers by code: a replay can take some back, so only a
    // code's growth counts.
    let before: Vec<(i64, usize)> = serde_json::from_str(&known.failed_by_code).unwrap_or_default();
    for (code, now_failed) in &counts.failed_by_code {
        let was = before
            .iter()
            .find(|(c, _)| c == code)
            .map_or(0, |(_, n)| *n);
        if *now_failed > was {
            let code = code.to_string();
            let labels = [("route", label.as_str()), ("code", code.as_str())];
            add(t, "receivers_failed", &labels, (*now_failed - was) as i64)?;
        }
    }
    known.updated_ms = now as i64;
    known.version = version as i64;
    known.state = state_name(counts.state);
    known.delivered = counts.delivered as i64;
    known.failed = counts.failed as i64;
    known.unknown = counts.unknown as i64;
    known.pending = counts.pending as i64;
    known.failed_by_code = serde_json::to_string(&counts.failed_by_code)?;
    cached.dirty = true;
    Ok(Some(route))
}

fn apply(t: &Tally, entry: Entry, now: u64) -> Result<()> {
    match entry {
        Entry::Accepted {
            event_id,
            route,
            requests,
            counts,
            version,
            created_ms,
        } => {
            t.load(&event_id)?;
            let mut events = t.events.borrow_mut();
            let Some(unknown @ None) = events.get_mut(&event_id) else {
                return Ok(());
            };
            let created_ms = if created_ms == 0 { now } else { created_ms };
            let total = counts.delivered
                + counts.failed
                + counts.unknown
                + counts.pending
                + counts.not_attempted;
            let label = route_label(route.as_deref()).to_owned();
            *unknown = Some(Cached {
                row: Known {
                    event_id: event_id.clone(),
                    route,
                    created_ms: created_ms as i64,
                    updated_ms: now as i64,
                    version: version as i64,
                    state: state_name(counts.state),
                    requests: requests as i64,
                    total: total as i64,
                    delivered: counts.delivered as i64,
                    failed: counts.failed as i64,
                    unknown: counts.unknown as i64,
                    pending: counts.pending as i64,
                    // As the first schema's default: the receivers' failures
                    // count from the first attempt's entry.
                    failed_by_code: "[]".to_owned(),
                },
                table: None,
                dirty: true,
            });
            drop(events);
            add(t, "events_accepted", &[("route", &label)], 1)?;
        }
        Entry::Rejected { route, status } => {
            let status = status.to_string();
            let labels = [
                ("route", route_label(route.as_deref())),
                ("status", &status),
            ];
            add(t, "events_rejected", &labels, 1)?;
        }
        Entry::Attempt {
            event_id,
            attempt,
            retried,
            counts,
            version,
        } => {
            let route = update(t, &event_id, &counts, version, now)?;
            if route.is_none() {
                // Its acceptance may come later (another isolate's batch):
                // its attempts are kept, and forgotten by time if not.
                let started = attempt.started_at_ms as i64;
                let mut orphans = t.orphans.borrow_mut();
                let first = orphans.entry(event_id.clone()).or_insert(started);
                *first = (*first).min(started);
            }
            let label = route_label(route.flatten().as_deref()).to_owned();
            let code = attempt
                .code
                .map(|c| c.to_string())
                .or_else(|| attempt.http_status.map(|s| format!("http_{s}")))
                .unwrap_or_else(|| "none".to_owned());
            let endpoint = attempt.endpoint.clone();
            add(
                t,
                "upstream_calls",
                &[
                    ("endpoint", &endpoint),
                    ("outcome", &attempt.outcome),
                    ("code", &code),
                ],
                1,
            )?;
            observe(
                t,
                "upstream_latency",
                &[("endpoint", &endpoint)],
                attempt.latency_ms,
            )?;
            if retried {
                add(t, "attempts_retried", &[("route", &label)], 1)?;
            }
            t.call(&attempt);
            crate::meter::written(t.sql.exec(
                "INSERT OR REPLACE INTO attempt_rows (event_id, call, attempt, row, started_ms) \
                 VALUES (?, ?, ?, ?, ?)",
                vec![
                    event_id.into(),
                    (attempt.call as i64).into(),
                    i64::from(attempt.attempt).into(),
                    serde_json::to_string(&attempt)?.into(),
                    (attempt.started_at_ms as i64).into(),
                ],
            )?);
        }
        Entry::Changed {
            event_id,
            counts,
            version,
            dead_lettered,
            replayed,
        } => {
            let route = update(t, &event_id, &counts, version, now)?.flatten();
            let label = route_label(route.as_deref()).to_owned();
            if dead_lettered {
                add(t, "calls_dead_lettered", &[("route", &label)], 1)?;
            }
            if replayed > 0 {
                add(
                    t,
                    "receivers_replayed",
                    &[("route", &label)],
                    replayed as i64,
                )?;
            }
        }
        Entry::Held {
            route,
            disposition,
            throttled,
        } => {
            add(
                t,
                "events_held",
                &[("route", &route), ("disposition", &disposition)],
                1,
            )?;
            if throttled > 0 {
                add(
                    t,
                    "receivers_throttled",
                    &[("route", &route)],
                    throttled as i64,
                )?;
            }
        }
        Entry::Waited { what, ms } => {
            let name = match what {
                Wait::QueueLag => "queue_lag",
                Wait::PacerWait => "pacer_wait",
            };
            observe(t, name, &[], ms)?;
        }
    }
    Ok(())
}

fn list(sql: &SqlStorage, legacy: bool, query: &Query) -> Result<Page> {
    let mut conditions = Vec::new();
    let mut values: Vec<SqlStorageValue> = Vec::new();
    if let Some(state) = query.state {
        conditions.push("state = ?");
        values.push(state_name(state).into());
    }
    match query.route.as_deref() {
        Some("-") => conditions.push("route IS NULL"),
        Some(route) => {
            conditions.push("route = ?");
            values.push(route.into());
        }
        None => {}
    }
    if let Some((created, id)) = query.cursor.as_deref().and_then(parse_cursor) {
        let created = created as i64;
        conditions.push("(created_ms < ? OR (created_ms = ? AND event_id < ?))");
        values.extend([created.into(), created.into(), id.into()]);
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let select = |table: &str| format!("SELECT {EVENT_COLUMNS} FROM {table} {filter}");
    let mut from = select("event_rows");
    if legacy {
        // Both in one ordered page: SQLite merges the two time indexes.
        from = format!("{from} UNION ALL {}", select(LEGACY[0]));
        values.extend(values.clone());
    }
    let limit = query.limit.clamp(1, MAX_PAGE);
    values.push((limit as i64 + 1).into());
    let rows: Vec<Known> = sql
        .exec(
            &format!("{from} ORDER BY created_ms DESC, event_id DESC LIMIT ?"),
            values,
        )?
        .to_array()?;
    let more = rows.len() > limit;
    let events: Vec<Listed> = rows
        .into_iter()
        .take(limit)
        .map(|row| Listed {
            state: serde_json::from_value(Value::String(row.state))
                .unwrap_or(DeliveryState::Pending),
            event_id: row.event_id,
            route: row.route,
            created_at_ms: row.created_ms as u64,
            updated_at_ms: row.updated_ms as u64,
            requests: row.requests as usize,
            receivers: Receivers {
                total: row.total as usize,
                delivered: row.delivered as usize,
                failed: row.failed as usize,
                unknown: row.unknown as usize,
                pending: row.pending as usize,
            },
        })
        .collect();
    let next_cursor = more.then(|| events.last()).flatten().map(cursor_after);
    Ok(Page {
        events,
        next_cursor,
    })
}

fn detail(sql: &SqlStorage, legacy: bool, event_id: &str) -> Result<Option<Detail>> {
    let known = match known(sql, "event_rows", event_id)? {
        None if legacy => known(sql, LEGACY[0], event_id)?,
        known => known,
    };
    let Some(known) = known else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Row {
        row: String,
    }
    let select = |table: &str| {
        format!("SELECT row, started_ms, call, attempt FROM {table} WHERE event_id = ?1")
    };
    let mut from = select("attempt_rows");
    if legacy {
        from = format!("{from} UNION ALL {}", select(LEGACY[1]));
    }
    let rows: Vec<Row> = sql
        .exec(
            &format!("{from} ORDER BY started_ms, call, attempt"),
            vec![event_id.into()],
        )?
        .to_array()?;
    let attempts = rows
        .iter()
        .map(|r| serde_json::from_str(&r.row))
        .collect::<serde_json::Result<_>>()?;
    Ok(Some(Detail {
        route: known.route,
        attempts,
    }))
}

fn stats(sql: &SqlStorage, rate_per_minute: u32, now: u64) -> Result<Stats> {
    let this_minute = now / MINUTE_MS;
    let first = this_minute.saturating_sub(59);
    #[derive(Deserialize)]
    struct Counted {
        minute: u64,
        calls: u64,
        rate_limited: u64,
    }
    let counted: Vec<Counted> = sql
        .exec(
            "SELECT minute, SUM(calls) AS calls, SUM(rate_limited) AS rate_limited \
             FROM calls_by_minute WHERE minute >= ? GROUP BY minute",
            vec![(first as i64).into()],
        )?
        .to_array()?;
    let minutes = (first..=this_minute)
        .map(|minute| {
            let found = counted.iter().find(|m| m.minute == minute);
            Minute {
                start_ms: minute * MINUTE_MS,
                calls: found.map_or(0, |m| m.calls),
                rate_limited: found.map_or(0, |m| m.rate_limited),
            }
        })
        .collect();

    #[derive(Deserialize)]
    struct Row {
        name: String,
        labels: String,
        value: u64,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT name, labels, value FROM counters ORDER BY name, labels",
            None,
        )?
        .to_array()?;
    let mut counters = Vec::new();
    let mut histograms: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    for row in rows {
        let mut labels: BTreeMap<String, String> =
            serde_json::from_str(&row.labels).unwrap_or_default();
        let histogram = ["_bucket", "_sum_ms", "_count"]
            .iter()
            .find_map(|suffix| Some((row.name.strip_suffix(suffix)?, *suffix)));
        let Some((name, suffix)) = histogram else {
            counters.push(Counter {
                name: row.name,
                labels,
                value: row.value,
            });
            continue;
        };
        let bucket = labels.remove("bucket");
        let key = (name.to_owned(), serde_json::to_string(&labels)?);
        let entry = histograms.entry(key).or_insert_with(|| Histogram {
            name: name.to_owned(),
            labels,
            le_ms: BUCKETS_MS.to_vec(),
            counts: vec![0; BUCKETS_MS.len() + 1],
            count: 0,
            sum_ms: 0,
        });
        match (suffix, bucket.and_then(|b| b.parse::<usize>().ok())) {
            ("_sum_ms", _) => entry.sum_ms = row.value,
            ("_count", _) => entry.count = row.value,
            (_, Some(index)) if index <= BUCKETS_MS.len() => entry.counts[index] = row.value,
            _ => {}
        }
    }
    // Buckets are stored one each; Prometheus's are cumulative.
    let histograms = histograms
        .into_values()
        .map(|mut h| {
            let mut running = 0;
            for count in &mut h.counts {
                running += *count;
                *count = running;
            }
            h
        })
        .collect();
    Ok(Stats {
        rate_per_minute,
        minutes,
        counters,
        histograms,
        endpoints: endpoints(sql, first)?,
    })
}

/// Each endpoint's calls and failures since minute `since` (the last
/// hour), and whether its last call succeeded: what the Worker's isolates
/// saw of it.
fn endpoints(sql: &SqlStorage, since: u64) -> Result<Vec<EndpointHealth>> {
    #[derive(Deserialize)]
    struct Seen {
        endpoint: String,
        calls: u64,
        failures: u64,
        last_failure_ms: Option<u64>,
        last_success_ms: Option<u64>,
    }
    let seen: Vec<Seen> = sql
        .exec(
            "SELECT endpoint, SUM(calls) AS calls, SUM(failures) AS failures, \
             MAX(last_failure_ms) AS last_failure_ms, MAX(last_success_ms) AS last_success_ms \
             FROM calls_by_minute WHERE minute >= ? GROUP BY endpoint ORDER BY endpoint",
            vec![(since as i64).into()],
        )?
        .to_array()?;
    Ok(seen
        .into_iter()
        .map(|s| EndpointHealth {
            healthy: s.last_failure_ms <= s.last_success_ms,
            base_url: s.endpoint,
            calls: s.calls,
            failures: s.failures,
            last_failure_ms: s.last_failure_ms,
            last_success_ms: s.last_success_ms,
        })
        .collect())
}
