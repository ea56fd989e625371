//! `yunxin-edge render`: a route's notification for a payload, through the
//! relay's own path (filter, templates, receivers, groups, the core's
//! parser and planner) but without checking the signature, so that routes
//! can be written and tried offline, with no secrets at hand. With
//! `--digest`, the digests a route with a `digest` makes of several
//! payloads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use yunxin_edge::{BatchNotification, Plan, PlanOptions};
use yunxin_edge_routes::storm::digest::{Added, Collect, Digest, DigestKey, Flushed};
use yunxin_edge_routes::storm::digest_key;
use yunxin_edge_routes::time::DEFAULT_TIMEZONE;
use yunxin_edge_routes::{Event, RenderOptions, Rendered, Route, RouteError};

use crate::Output;
use crate::failure::{Exit, Failure, Problem};
use crate::input;

/// The relay's default `MAX_RECEIVERS_PER_EVENT`.
const DEFAULT_MAX_RECEIVERS: usize = 10_000;

/// `render`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The routes config: a JSON object of route name to route (the relay's
    /// ROUTES binding), or a wrangler JSON config holding it at
    /// `vars.ROUTES`.
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,

    /// The route to render.
    #[arg(long, value_name = "NAME")]
    pub route: String,

    /// The webhook's body, as its sender would POST it.
    #[arg(long, value_name = "FILE", required_unless_present = "digest")]
    pub payload: Option<PathBuf>,

    /// Render the route's digest of these payloads instead (the route must
    /// have a `digest`): each is rendered as an event (the filter still
    /// skips), collected under its digest key, `--interval` seconds apart
    /// from `--now`, and every digest they make is rendered as the relay
    /// would send it when its window closes (or it fills).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "payload")]
    pub digest: Vec<PathBuf>,

    /// With `--digest`: the seconds between one payload's arrival and the
    /// next's.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "digest")]
    pub interval: u64,

    /// The zone `datetime` formats in when a template names none (the
    /// relay's TIMEZONE).
    #[arg(long, value_name = "IANA_NAME", default_value = DEFAULT_TIMEZONE)]
    pub timezone: String,

    /// A request header the route's filter or templates read, e.g.
    /// `X-GitHub-Event: push`; repeat for more. Names are case-insensitive.
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = input::header)]
    pub headers: Vec<(String, String)>,

    /// Named lists of receivers (the relay's GROUPS binding): a JSON object
    /// of group name to a list of account ids.
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,

    /// The clock the templates see as `now`, in UNIX seconds [default: the
    /// current time].
    #[arg(long, value_name = "UNIX_SECS", allow_negative_numbers = true)]
    pub now: Option<i64>,

    /// Refuse more unique receivers than this, as the relay's
    /// MAX_RECEIVERS_PER_EVENT does.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RECEIVERS)]
    pub max_receivers: usize,
}

/// Renders the route and plans the notification, as the relay does before
/// it delivers (or answers `?dry_run=1`).
pub fn run(args: &Args) -> Result<Output, Failure> {
    let routes = input::routes(&args.routes)?;
    let route = routes.get(&args.route).map_err(|error| {
        // A name that is not in the file is a wrong argument: list the
        // names that are.
        let names: Vec<&str> = routes.iter().map(|(name, _)| name).collect();
        let known = if names.is_empty() {
            "it has no routes".to_owned()
        } else {
            format!("routes: {}", names.join(", "))
        };
        let mut problem = Problem::from_route(&error);
        problem.message = format!(
            "{} in `{}` ({known})",
            problem.message,
            args.routes.display()
        );
        Failure::of(Exit::Usage, problem)
    })?;
    let groups = input::groups(args.groups.as_deref())?;
    let headers = input::headers(&args.headers);
    let options = RenderOptions::with_timezone(&args.timezone).map_err(|_| {
        Failure::usage(
            "unknown_timezone",
            format!(
                "--timezone `{}` is not an IANA time zone (e.g. Asia/Shanghai, America/New_York, UTC)",
                args.timezone
            ),
        )
    })?;
    let Some(payload) = &args.payload else {
        return digest(args, route, &groups, &headers, &options);
    };
    let body = input::read(payload, "--payload")?;

    // No signature is checked; the event id comes from the headers given
    // (`--header x-github-delivery:…`), the route's `idempotency_key`, or
    // the body's SHA-256, as in the relay.
    let event = Event {
        route: &args.route,
        headers: &headers,
        body: &body,
        now_secs: args.now.unwrap_or_else(now_secs),
    };
    let (notification, json, event_id) =
        match yunxin_edge_routes::render_with(route, &event, &groups, &options)
            .map_err(|e| Failure::route(&e))?
        {
            Rendered::Skipped { reason } => {
                return Ok(Output::json(
                    json!({ "route": args.route, "skipped": skipped_because(route, reason) }),
                ));
            }
            Rendered::Notification {
                notification,
                json,
                event_id,
            } => (notification, json, event_id),
        };

    Ok(Output::json(json!({
        "route": args.route,
        "event_id": event_id,
        "requests": requests(args, &notification, &event_id)?,
        "notification": json,
    })))
}

/// How many calls the relay would make for the notification. Rendering
/// parses it; planning validates it against every documented limit
/// (content length, receiver ids, push fields) and splits it into calls of
/// at most 500 receivers.
fn requests(
    args: &Args,
    notification: &BatchNotification,
    event_id: &str,
) -> Result<usize, Failure> {
    let options = PlanOptions::for_event(event_id).max_receivers(args.max_receivers);
    let plan = Plan::new(notification, &options).map_err(|error| {
        Failure::route(&RouteError::Notification {
            route: args.route.clone(),
            error,
        })
    })?;
    Ok(plan.requests().len())
}

/// `render --digest`: the payloads as events of the route, `--interval`
/// apart, collected into digests by key as the relay collects them, and
/// each digest rendered when it fills or its window closes. Prints
/// `{"route", "digests": [{"digest_id", "key", "count", "events",
/// "first_at", "last_at", "requests", "notification"}], "skipped"}`.
fn digest(
    args: &Args,
    route: &Route,
    groups: &yunxin_edge_routes::Groups,
    headers: &BTreeMap<String, String>,
    options: &RenderOptions,
) -> Result<Output, Failure> {
    let Some(config) = &route.digest else {
        return Err(Failure::usage(
            "no_digest",
            format!(
                "route `{}` has no `digest`: --digest renders a route's digests",
                args.route
            ),
        ));
    };
    let start_secs = args.now.unwrap_or_else(now_secs);
    let start_ms = u64::try_from(start_secs).unwrap_or(0).saturating_mul(1000);
    let mut open: BTreeMap<DigestKey, Digest> = BTreeMap::new();
    let mut flushed: Vec<Flushed> = Vec::new();
    let mut skipped = Vec::new();
    let mut at_ms = start_ms;
    for (i, path) in args.digest.iter().enumerate() {
        at_ms =
            start_ms.saturating_add(args.interval.saturating_mul(1000).saturating_mul(i as u64));
        // Windows that closed before this payload arrived were sent when
        // they closed (the relay's alarm).
        let mut closed: Vec<Flushed> = open
            .values_mut()
            .filter_map(|digest| digest.flush_due(digest.closes_at_ms().filter(|c| *c <= at_ms)?))
            .collect();
        closed.sort_by_key(|digest| digest.flushed_at_ms);
        flushed.extend(closed);
        let body = input::read(path, "--digest")?;
        let event = Event {
            route: &args.route,
            headers,
            body: &body,
            now_secs: (at_ms / 1000) as i64,
        };
        let rendered = yunxin_edge_routes::render_with(route, &event, groups, options)
            .map_err(|e| Failure::route(&e))?;
        let (notification, json, event_id) = match rendered {
            Rendered::Skipped { reason } => {
                let reason = skipped_because(route, reason);
                skipped.push(json!({ "payload": path.display().to_string(), "skipped": reason }));
                continue;
            }
            Rendered::Notification {
                notification,
                json,
                event_id,
            } => (notification, json, event_id),
        };
        let key = digest_key(route, &event, options)
            .map_err(|e| Failure::route(&e))?
            .unwrap_or_else(|| DigestKey::new(&args.route));
        let payload: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
        let collect = Collect::new(event_id, payload, notification.receiver_ids.clone())
            .with_notification(json);
        let digest = open
            .entry(key.clone())
            .or_insert_with(|| Digest::new(&args.route, key));
        if let Added::Full(full) = digest.add(config, collect, at_ms) {
            flushed.push(*full);
        }
    }
    // The rest are sent when their windows close.
    let mut rest: Vec<Flushed> = open
        .values_mut()
        .filter_map(|digest| {
            let closes_at_ms = digest.closes_at_ms()?;
            digest.flush_due(closes_at_ms.max(at_ms))
        })
        .collect();
    rest.sort_by_key(|digest| digest.flushed_at_ms);
    flushed.extend(rest);

    let mut digests = Vec::new();
    for digest in &flushed {
        let (notification, json, event_id) =
            match yunxin_edge_routes::render_digest(route, digest, options)
                .map_err(|e| Failure::route(&e))?
            {
                Rendered::Notification {
                    notification,
                    json,
                    event_id,
                } => (notification, json, event_id),
                Rendered::Skipped { reason } => {
                    skipped.push(json!({ "digest": digest.id, "skipped": reason }));
                    continue;
                }
            };
        digests.push(json!({
            "digest_id": event_id,
            "key": digest.key,
            "count": digest.count(),
            "events": digest.event_ids().collect::<Vec<_>>(),
            "first_at": digest.first_at_ms() / 1000,
            "last_at": digest.last_at_ms() / 1000,
            "sent_at": digest.flushed_at_ms / 1000,
            "requests": requests(args, &notification, &event_id)?,
            "notification": json,
        }));
    }
    Ok(Output::json(json!({
        "route": args.route,
        "digests": digests,
        "skipped": skipped,
    })))
}

/// The current time in UNIX seconds, the relay's clock for `now`.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Why an event was skipped, for the route's author: the relay tells a
/// sender only that the filter said no; the author, who wrote it, is shown
/// which filter.
fn skipped_because(route: &yunxin_edge_routes::Route, reason: String) -> String {
    match &route.filter {
        Some(filter) => format!("filter `{filter}` is false"),
        None => reason,
    }
}
