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
    Command, Counter, Detail, EndpointHealth, Entry, Histogram, Listed, MAX_PAGE, Minute, Page,
    Query, Receivers, Stats, Wait, cursor_after, parse_cursor,
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
            pruned_ms: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = serde_json::from_str(&req.text().await?)?;
        let sql = self.sql()?;
        match command {
            Command::Log(entries) => {
                let now = now_ms();
                let tally = Tally::new(&sql, self.env.analytics_engine(ANALYTICS).ok());
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
            Command::List(query) => Response::from_json(&list(&sql, &query)?),
            Command::Detail(event_id) => Response::from_json(&detail(&sql, &event_id)?),
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

    /// Forgets events not changed for `retention_ms`, and their attempts.
    fn prune(&self, sql: &SqlStorage, now: u64, retention_ms: u64) -> Result<()> {
        let cutoff = now.saturating_sub(retention_ms) as i64;
        crate::meter::written(sql.exec(
            "DELETE FROM events WHERE updated_ms < ?",
            vec![cutoff.into()],
        )?);
        crate::meter::written(sql.exec(
            "DELETE FROM attempts WHERE started_ms < ? AND event_id NOT IN (SELECT event_id FROM events)",
            vec![cutoff.into()],
        )?);
        self.pruned_ms.set(now);
        Ok(())
    }

    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            for statement in SCHEMA {
                sql.exec(statement, None)?;
            }
            self.ready.set(true);
        }
        Ok(sql)
    }
}

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, route TEXT, \
     created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, version INTEGER NOT NULL, \
     state TEXT NOT NULL, requests INTEGER NOT NULL, total INTEGER NOT NULL, \
     delivered INTEGER NOT NULL, failed INTEGER NOT NULL, unknown INTEGER NOT NULL, \
     pending INTEGER NOT NULL, failed_by_code TEXT NOT NULL DEFAULT '[]')",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (created_ms DESC, event_id DESC)",
    "CREATE TABLE IF NOT EXISTS attempts (event_id TEXT NOT NULL, call INTEGER NOT NULL, \
     attempt INTEGER NOT NULL, row TEXT NOT NULL, started_ms INTEGER NOT NULL, \
     outcome TEXT NOT NULL, endpoint TEXT NOT NULL, endpoint_failure INTEGER NOT NULL, \
     PRIMARY KEY (event_id, call, attempt))",
    "CREATE INDEX IF NOT EXISTS attempts_by_time ON attempts (started_ms)",
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

/// One `Log` command's work: its statements, and its counter increments
/// summed in memory and written once at its end (a queue batch's hundred
/// attempts touch a handful of counters, a hundred times each).
struct Tally<'a> {
    sql: &'a SqlStorage,
    counters: RefCell<BTreeMap<(String, String), i64>>,
    /// The `ANALYTICS` dataset, when configured: each increment is also a
    /// data point there (blobs: name, labels as JSON; double: the increment;
    /// index: the name), for queries over time that `/metrics` cannot answer.
    analytics: Option<AnalyticsEngineDataset>,
}

impl<'a> Tally<'a> {
    fn new(sql: &'a SqlStorage, analytics: Option<AnalyticsEngineDataset>) -> Self {
        Tally {
            sql,
            counters: RefCell::default(),
            analytics,
        }
    }

    /// Writes the summed increments.
    fn flush(self) -> Result<()> {
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

#[derive(Deserialize)]
struct Known {
    route: Option<String>,
    version: i64,
    delivered: i64,
    failed_by_code: String,
}

fn known(sql: &SqlStorage, event_id: &str) -> Result<Option<Known>> {
    let rows: Vec<Known> = sql
        .exec(
            "SELECT route, version, delivered, failed_by_code FROM events WHERE event_id = ?",
            vec![event_id.into()],
        )?
        .to_array()?;
    Ok(rows.into_iter().next())
}

/// Applies an event's new counts if they are newer than what is known, and
/// counts the receivers that became delivered or failed since.
fn update(
    t: &Tally,
    event_id: &str,
    counts: &Counts,
    version: u64,
    now: u64,
) -> Result<Option<String>> {
    let Some(known) = known(t.sql, event_id)? else {
        return Ok(None);
    };
    let route = known.route;
    if version as i64 <= known.version {
        return Ok(route);
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
    crate::meter::written(t.sql.exec(
        "UPDATE events SET updated_ms = ?, version = ?, state = ?, delivered = ?, failed = ?, \
         unknown = ?, pending = ?, failed_by_code = ? WHERE event_id = ?",
        vec![
            (now as i64).into(),
            (version as i64).into(),
            state_name(counts.state).into(),
            (counts.delivered as i64).into(),
            (counts.failed as i64).into(),
            (counts.unknown as i64).into(),
            (counts.pending as i64).into(),
            serde_json::to_string(&counts.failed_by_code)?.into(),
            event_id.into(),
        ],
    )?);
    Ok(route)
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
            let created_ms = if created_ms == 0 { now } else { created_ms };
            let total = counts.delivered
                + counts.failed
                + counts.unknown
                + counts.pending
                + counts.not_attempted;
            let label = route_label(route.as_deref()).to_owned();
            let inserted: Vec<Value> = crate::meter::written(t.sql.exec(
                "INSERT INTO events (event_id, route, created_ms, updated_ms, version, state, \
                     requests, total, delivered, failed, unknown, pending) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                vec![
                    event_id.into(),
                    route.map_or(SqlStorageValue::Null, Into::into),
                    (created_ms as i64).into(),
                    (now as i64).into(),
                    (version as i64).into(),
                    state_name(counts.state).into(),
                    (requests as i64).into(),
                    (total as i64).into(),
                    (counts.delivered as i64).into(),
                    (counts.failed as i64).into(),
                    (counts.unknown as i64).into(),
                    (counts.pending as i64).into(),
                ],
            )?)
            .to_array()?;
            if !inserted.is_empty() {
                add(t, "events_accepted", &[("route", &label)], 1)?;
            }
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
            let label = route_label(route.as_deref()).to_owned();
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
            crate::meter::written(t.sql.exec(
                "INSERT OR REPLACE INTO attempts (event_id, call, attempt, row, started_ms, \
                 outcome, endpoint, endpoint_failure) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    event_id.into(),
                    (attempt.call as i64).into(),
                    i64::from(attempt.attempt).into(),
                    serde_json::to_string(&attempt)?.into(),
                    (attempt.started_at_ms as i64).into(),
                    attempt.outcome.clone().into(),
                    attempt.endpoint.clone().into(),
                    i64::from(attempt.endpoint_failure).into(),
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
            let route = update(t, &event_id, &counts, version, now)?;
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

#[derive(Deserialize)]
struct EventRow {
    event_id: String,
    route: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    state: String,
    requests: i64,
    total: i64,
    delivered: i64,
    failed: i64,
    unknown: i64,
    pending: i64,
}

fn list(sql: &SqlStorage, query: &Query) -> Result<Page> {
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
    let limit = query.limit.clamp(1, MAX_PAGE);
    values.push((limit as i64 + 1).into());
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let rows: Vec<EventRow> = sql
        .exec(
            &format!(
                "SELECT event_id, route, created_ms, updated_ms, state, requests, total, \
                 delivered, failed, unknown, pending FROM events {filter} \
                 ORDER BY created_ms DESC, event_id DESC LIMIT ?"
            ),
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

fn detail(sql: &SqlStorage, event_id: &str) -> Result<Option<Detail>> {
    let Some(known) = known(sql, event_id)? else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Row {
        row: String,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT row FROM attempts WHERE event_id = ? ORDER BY started_ms, call, attempt",
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
    const MINUTE_MS: u64 = 60_000;
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
            "SELECT started_ms / 60000 AS minute, COUNT(*) AS calls, \
             SUM(outcome = 'rate_limited') AS rate_limited FROM attempts \
             WHERE started_ms >= ? GROUP BY minute",
            vec![((first * MINUTE_MS) as i64).into()],
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
        endpoints: endpoints(sql, first * MINUTE_MS)?,
    })
}

/// Each endpoint's calls and failures since `since_ms` (the last hour), and
/// whether its last call succeeded: what the Worker's isolates saw of it.
fn endpoints(sql: &SqlStorage, since_ms: u64) -> Result<Vec<EndpointHealth>> {
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
            "SELECT endpoint, COUNT(*) AS calls, SUM(endpoint_failure) AS failures, \
             MAX(CASE WHEN endpoint_failure THEN started_ms END) AS last_failure_ms, \
             MAX(CASE WHEN endpoint_failure THEN NULL ELSE started_ms END) AS last_success_ms \
             FROM attempts WHERE started_ms >= ? GROUP BY endpoint ORDER BY endpoint",
            vec![(since_ms as i64).into()],
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
