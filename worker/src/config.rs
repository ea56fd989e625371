//! The Worker's configuration, read once per request from its bindings.

use worker::Env;
use yunxin_edge::failover::{Cooldown, Failover};
use yunxin_edge::{Credentials, Endpoint, RetryPolicy};

use yunxin_edge_routes::{Scheme, Secret, VerifyError, check_secrets};

use crate::error::RelayError;

/// Upstream calls in flight at once; workerd allows six open connections per request.
pub const MAX_IN_FLIGHT: usize = 6;
/// Synchronous path: the quick retries made while the sender waits, before
/// the queued schedule takes over.
const SYNC_QUICK_RETRIES_MS: [u64; 2] = [200, 400];
/// The longest `SYNC_DEADLINE_MS`: under the event store's 30 s grace for an
/// intake, after which its watchdog takes over the event.
pub const MAX_SYNC_DEADLINE_MS: u64 = 28_000;
/// Largest accepted event body.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Longest pacing wait the queue consumer spends inside one invocation;
/// longer waits go back to the queue. A minute: a full batch of 100 calls
/// at 120 a minute (Yunxin's smallest plan) waits 51 s for its last slot,
/// and a call sent back to the queue comes back no sooner than whole
/// seconds later, leaving the quota idle meanwhile. Waiting costs no CPU,
/// and a consumer may run for 15 minutes.
pub const MAX_INLINE_WAIT_MS: u64 = 60_000;

/// Everything the relay needs from its bindings.
#[derive(Debug)]
pub struct Config {
    /// `YUNXIN_APP_KEY` and `YUNXIN_APP_SECRET`.
    pub credentials: Credentials,
    /// `WEBHOOK_SECRET`: one or more `whsec_…` (or `whpk_…` public keys),
    /// space-separated.
    pub webhook_secrets: Vec<Secret>,
    /// `YUNXIN_BASE_URLS`, the endpoints in order of preference (default
    /// `https://open.yunxinapi.com,https://open-bak.yunxinapi.com`;
    /// `YUNXIN_BASE_URL` is a list of one), avoided after a failure for
    /// `ENDPOINT_COOLDOWN_SECS` (default 30, doubling up to ten times that):
    /// all healthy, the state an isolate starts from (see `upstream`).
    pub endpoints: Failover,
    /// `MAX_RECEIVERS_PER_EVENT`, default 10,000.
    pub max_receivers: usize,
    /// `UPSTREAM_TIMEOUT_MS`, default 10,000: one upstream attempt's deadline.
    pub upstream_timeout_ms: u64,
    /// `BODY_DEADLINE_MS`, default 10,000: how long an event body may take
    /// to arrive (then 408).
    pub body_deadline_ms: u64,
    /// `YUNXIN_RATE_PER_MINUTE`, default 120: Yunxin's batch-call quota per app.
    pub rate_per_minute: u32,
    /// `RETRY_SCHEDULE_SECS`, default `5,30,120,600,3600`: the wait before
    /// each retry of a queued call; one attempt more than it has entries.
    pub retry_schedule_secs: Vec<u32>,
    /// `RATE_LIMIT_BACKOFF_SECS`, default 60: the least wait after a 416.
    pub rate_limit_backoff_secs: u32,
    /// `SYNC_MAX_CALLS`, default 10: upstream calls one synchronous request
    /// may make; the rest go to the queue.
    pub sync_max_calls: usize,
    /// `SYNC_DEADLINE_MS`, default 25,000 (at most 28,000): when a
    /// synchronous request answers, whatever is left going to the queue.
    pub sync_deadline_ms: u64,
    /// `STATUS_TOKEN` (optional secret): a bearer token for the status API.
    pub status_token: Option<StatusToken>,
    /// `TEST_FAIL_ENQUEUE=1`, for tests only: enqueueing fails right after
    /// an event is recorded, as a `sendBatch` failure would.
    pub test_fail_enqueue: bool,
}

/// The bearer token of the status API. `Debug` never shows it.
#[derive(Clone)]
pub struct StatusToken(String);

impl StatusToken {
    /// The token, to compare with one presented ([`crate::guard::check_token`]).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StatusToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusToken(<redacted>)")
    }
}

impl Config {
    /// The queued path's policy: `RETRY_SCHEDULE_SECS` (one attempt more
    /// than it has entries), at least `RATE_LIMIT_BACKOFF_SECS` after a 416,
    /// and a lease that covers a pacing wait, an upstream timeout and 10 s
    /// more, so that an attempt is presumed lost only when its consumer must
    /// have died.
    pub fn queued_policy(&self) -> RetryPolicy {
        let schedule: Vec<u64> = self
            .retry_schedule_secs
            .iter()
            .map(|secs| u64::from(*secs) * 1000)
            .collect();
        let mut policy = RetryPolicy::scheduled(schedule);
        policy.rate_limit_wait_ms = u64::from(self.rate_limit_backoff_secs) * 1000;
        policy.lease_ms = MAX_INLINE_WAIT_MS + self.upstream_timeout_ms + 10_000;
        policy
    }

    /// The synchronous path's policy: two quick retries (200 ms, 400 ms)
    /// while the sender waits, then the queued schedule.
    pub fn sync_policy(&self) -> RetryPolicy {
        let mut policy = self.queued_policy();
        policy.schedule_ms.splice(0..0, SYNC_QUICK_RETRIES_MS);
        policy.max_attempts += SYNC_QUICK_RETRIES_MS.len() as u32;
        policy
    }
}

impl Config {
    /// Reads and checks every binding. Errors name the binding, never its value.
    pub fn from_env(env: &Env) -> Result<Self, RelayError> {
        let app_key = required(env, "YUNXIN_APP_KEY")?;
        let app_secret = required(env, "YUNXIN_APP_SECRET")?;
        let webhook_secrets: Vec<Secret> = required(env, "WEBHOOK_SECRET")?
            .split_whitespace()
            .map(Secret::new)
            .collect();
        check_secrets(&Scheme::StandardWebhooks, &webhook_secrets).map_err(|e| match e {
            VerifyError::BadSecret(n) => config_error(
                "WEBHOOK_SECRET",
                format!("secret #{n} does not start with `whsec_` (or `whpk_`) and a base64 key"),
            ),
            other => config_error("WEBHOOK_SECRET", other.to_string()),
        })?;
        let cooldown_secs: u64 = number(env, "ENDPOINT_COOLDOWN_SECS", 30)?;
        let endpoints = Failover::new(
            endpoints(
                optional(env, "YUNXIN_BASE_URLS"),
                optional(env, "YUNXIN_BASE_URL"),
            )?,
            Cooldown::new(cooldown_secs.saturating_mul(1000)),
        )
        .map_err(|_| config_error("YUNXIN_BASE_URLS", "holds no URL"))?;
        let credentials = Credentials::try_new(app_key, app_secret).map_err(|_| {
            config_error(
                "YUNXIN_APP_KEY",
                "holds a control character (a header value cannot)",
            )
        })?;
        Ok(Config {
            credentials,
            webhook_secrets,
            endpoints,
            max_receivers: number(env, "MAX_RECEIVERS_PER_EVENT", 10_000)?,
            upstream_timeout_ms: number(env, "UPSTREAM_TIMEOUT_MS", 10_000)?,
            body_deadline_ms: number(env, "BODY_DEADLINE_MS", 10_000)?,
            rate_per_minute: number(env, "YUNXIN_RATE_PER_MINUTE", 120)?,
            retry_schedule_secs: schedule(env, "RETRY_SCHEDULE_SECS", &[5, 30, 120, 600, 3600])?,
            rate_limit_backoff_secs: number(env, "RATE_LIMIT_BACKOFF_SECS", 60)?,
            sync_max_calls: number(env, "SYNC_MAX_CALLS", 10)?,
            sync_deadline_ms: match number(env, "SYNC_DEADLINE_MS", 25_000)? {
                ms if ms > MAX_SYNC_DEADLINE_MS => {
                    return Err(config_error("SYNC_DEADLINE_MS", "is over 28000"));
                }
                ms => ms,
            },
            status_token: optional(env, "STATUS_TOKEN").map(StatusToken),
            test_fail_enqueue: optional(env, "TEST_FAIL_ENQUEUE").as_deref() == Some("1"),
        })
    }
}

fn config_error(binding: &'static str, problem: impl Into<String>) -> RelayError {
    RelayError::Config {
        binding,
        problem: problem.into(),
    }
}

/// A binding's text, whether it was bound as a secret or as a plain var.
pub fn optional(env: &Env, binding: &str) -> Option<String> {
    env.secret(binding)
        .or_else(|_| env.var(binding))
        .ok()
        .map(|value| value.to_string())
        .filter(|value| !value.trim().is_empty())
}

/// The endpoints of `YUNXIN_BASE_URLS` (`list`) or `YUNXIN_BASE_URL`
/// (`single`), not both, else Yunxin's mainland pair. Each is checked by
/// the core; an error names the binding and the entry at fault, not its
/// text.
fn endpoints(list: Option<String>, single: Option<String>) -> Result<Vec<Endpoint>, RelayError> {
    match (list, single) {
        (Some(_), Some(_)) => Err(config_error(
            "YUNXIN_BASE_URLS",
            "is set together with YUNXIN_BASE_URL: set only one (YUNXIN_BASE_URL is a list of one)",
        )),
        (Some(list), None) => list
            .split(',')
            .enumerate()
            .map(|(i, url)| {
                Endpoint::new(url.trim()).map_err(|_| {
                    let problem = format!("entry {} is not an http(s) base URL", i + 1);
                    config_error("YUNXIN_BASE_URLS", problem)
                })
            })
            .collect(),
        // One URL, as before: a comma may be part of it.
        (None, Some(url)) => Endpoint::new(&url)
            .map(|endpoint| vec![endpoint])
            .map_err(|_| config_error("YUNXIN_BASE_URL", "is not an http(s) base URL")),
        (None, None) => Ok(Failover::default_endpoints()),
    }
}

fn required(env: &Env, binding: &'static str) -> Result<String, RelayError> {
    optional(env, binding).ok_or_else(|| config_error(binding, "is not set"))
}

fn schedule(env: &Env, binding: &'static str, default: &[u32]) -> Result<Vec<u32>, RelayError> {
    match optional(env, binding) {
        None => Ok(default.to_vec()),
        Some(text) => text
            .split(',')
            .map(|part| part.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| config_error(binding, "is not a comma-separated list of seconds")),
    }
}

fn number<T: std::str::FromStr + PartialOrd + Default>(
    env: &Env,
    binding: &'static str,
    default: T,
) -> Result<T, RelayError> {
    match optional(env, binding) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| config_error(binding, "is not a positive whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunxin_edge::{
        Action, BatchNotification, Content, Delivery, Outcome, Plan, PlanOptions, Recorded,
    };

    fn config(schedule: &[u32], backoff_secs: u32, timeout_ms: u64) -> Config {
        Config {
            credentials: Credentials::new("k", "s"),
            webhook_secrets: vec![Secret::new("whsec_QQ==")],
            endpoints: Failover::new(vec![Endpoint::default()], Cooldown::default()).unwrap(),
            max_receivers: 10_000,
            upstream_timeout_ms: timeout_ms,
            body_deadline_ms: 10_000,
            sync_max_calls: 10,
            sync_deadline_ms: 25_000,
            rate_per_minute: 120,
            retry_schedule_secs: schedule.to_vec(),
            rate_limit_backoff_secs: backoff_secs,
            status_token: None,
            test_fail_enqueue: false,
        }
    }

    /// A one-receiver delivery under `policy` whose first attempt got `outcome` at 0 ms.
    fn after_first_attempt(policy: RetryPolicy, outcome: Outcome) -> Recorded {
        let notification = BatchNotification::new("bot", Content::text("x")).to(["u1"]);
        let plan = Plan::new(&notification, &PlanOptions::for_event("evt")).unwrap();
        let mut delivery = Delivery::new(plan, policy).unwrap();
        let Action::Send(attempt) = delivery.poll(0) else {
            panic!("the first poll sends")
        };
        delivery.record(attempt.id, outcome.into(), 0)
    }

    fn base_urls_of(
        list: Option<&str>,
        single: Option<&str>,
    ) -> Result<Vec<String>, (&'static str, String)> {
        match endpoints(list.map(str::to_owned), single.map(str::to_owned)) {
            Ok(endpoints) => Ok(endpoints.iter().map(|e| e.base_url().to_owned()).collect()),
            Err(RelayError::Config { binding, problem }) => Err((binding, problem)),
            Err(other) => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn the_endpoints_come_from_either_binding_or_the_default_pair() {
        assert_eq!(
            base_urls_of(None, None).unwrap(),
            [
                "https://open.yunxinapi.com",
                "https://open-bak.yunxinapi.com"
            ]
        );
        assert_eq!(
            base_urls_of(Some(" http://127.0.0.1:1 , https://b.example/ "), None).unwrap(),
            ["http://127.0.0.1:1", "https://b.example"]
        );
        assert_eq!(
            base_urls_of(None, Some("https://open-sg.yunxinapi.com")).unwrap(),
            ["https://open-sg.yunxinapi.com"]
        );
    }

    #[test]
    fn a_bad_endpoint_list_names_the_binding_and_the_entry_not_its_text() {
        let (binding, problem) =
            base_urls_of(Some("https://a.example,ftp://user:pw@b"), None).unwrap_err();
        assert_eq!(binding, "YUNXIN_BASE_URLS");
        assert!(
            problem.contains("entry 2") && problem.contains("http(s)"),
            "{problem}"
        );
        assert!(!problem.contains("pw"), "{problem}");
        let (binding, problem) = base_urls_of(Some("https://a.example,"), None).unwrap_err();
        assert_eq!(
            (binding, problem.as_str()),
            ("YUNXIN_BASE_URLS", "entry 2 is not an http(s) base URL")
        );
        let (binding, problem) =
            base_urls_of(Some("https://a.example"), Some("https://a.example")).unwrap_err();
        assert_eq!(binding, "YUNXIN_BASE_URLS");
        assert!(problem.contains("YUNXIN_BASE_URL:"), "{problem}");
        let (binding, problem) = base_urls_of(None, Some("ftp://x")).unwrap_err();
        assert_eq!(
            (binding, problem.as_str()),
            ("YUNXIN_BASE_URL", "is not an http(s) base URL")
        );
    }

    #[test]
    fn the_queued_policy_follows_the_bindings() {
        let policy = config(&[7, 40], 90, 2_000).queued_policy();
        assert_eq!(policy.schedule_ms, [7_000, 40_000]);
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.rate_limit_wait_ms, 90_000);
        // Pacing wait + upstream timeout + margin: never shorter than a live attempt.
        assert_eq!(policy.lease_ms, MAX_INLINE_WAIT_MS + 2_000 + 10_000);

        // A 416 waits for RATE_LIMIT_BACKOFF_SECS, not the 7 s of the schedule.
        let rate_limited = Outcome::from_http(200, br#"{"code":416,"msg":"frequency control"}"#);
        assert_eq!(
            after_first_attempt(policy.clone(), rate_limited),
            Recorded::Retry { at_ms: 90_000 }
        );
        assert_eq!(
            after_first_attempt(policy, Outcome::from_http(502, b"")),
            Recorded::Retry { at_ms: 7_000 }
        );
    }

    #[test]
    fn the_sync_policy_retries_quickly_then_on_the_schedule() {
        let policy = config(&[5], 60, 10_000).sync_policy();
        assert_eq!(policy.schedule_ms, [200, 400, 5_000]);
        assert_eq!(policy.max_attempts, 4);
        assert_eq!(
            after_first_attempt(policy.clone(), Outcome::from_http(502, b"")),
            Recorded::Retry { at_ms: 200 }
        );
        let rate_limited = Outcome::from_http(200, br#"{"code":416,"msg":"frequency control"}"#);
        assert_eq!(
            after_first_attempt(policy, rate_limited),
            Recorded::Retry { at_ms: 60_000 }
        );
    }
}
