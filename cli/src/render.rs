//! `yunxin-edge render`: a route's notification for a payload, through the
//! relay's own path (filter, templates, receivers, groups, the core's
//! parser and planner) but without checking the signature, so that routes
//! can be written and tried offline, with no secrets at hand.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use yunxin_edge::{Plan, PlanOptions};
use yunxin_edge_routes::{Event, Rendered, RouteError};

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
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,

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
    let body = input::read(&args.payload, "--payload")?;
    let groups = input::groups(args.groups.as_deref())?;
    let headers = input::headers(&args.headers);

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
        match yunxin_edge_routes::render(route, &event, &groups).map_err(|e| Failure::route(&e))? {
            Rendered::Skipped { reason } => {
                return Ok(Output::json(
                    json!({ "route": args.route, "skipped": reason }),
                ));
            }
            Rendered::Notification {
                notification,
                json,
                event_id,
            } => (notification, json, event_id),
        };

    // Rendering parses the notification; planning validates it against
    // every documented limit (content length, receiver ids, push fields)
    // and splits it into calls of at most 500 receivers.
    let options = PlanOptions::for_event(event_id.as_str()).max_receivers(args.max_receivers);
    let plan = Plan::new(&notification, &options).map_err(|error| {
        Failure::route(&RouteError::Notification {
            route: args.route.clone(),
            error,
        })
    })?;
    Ok(Output::json(json!({
        "route": args.route,
        "event_id": event_id,
        "requests": plan.requests().len(),
        "notification": json,
    })))
}

/// The current time in UNIX seconds, the relay's clock for `now`.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}
