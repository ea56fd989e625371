//! `GET /v1/stats`: what `/metrics` and the dashboard's quota page show.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters, histograms and upstream calls per minute over the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// A field left out reads as empty: a body from a Worker one version apart
// still renders.
#[serde(default)]
pub struct Stats {
    /// `YUNXIN_RATE_PER_MINUTE`, drawn against the calls.
    pub rate_per_minute: u32,
    /// The last 60 minutes, oldest first, this one last.
    pub minutes: Vec<Minute>,
    /// Every counter series, by name then labels.
    pub counters: Vec<Counter>,
    /// Every histogram series, by name then labels.
    pub histograms: Vec<Histogram>,
    /// Each Yunxin endpoint's health over the last hour.
    pub endpoints: Vec<EndpointHealth>,
}

/// Upstream calls in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minute {
    /// The minute's start (UNIX ms).
    pub start_ms: u64,
    /// Calls made to Yunxin.
    pub calls: u64,
    /// Of those, answered 416 (frequency control).
    pub rate_limited: u64,
}

/// One counter series: it only goes up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The name, without prefix or `_total`.
    pub name: String,
    /// Label names to values.
    pub labels: BTreeMap<String, String>,
    /// The count.
    pub value: u64,
}

/// One histogram series, in whole milliseconds as the index counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// The name, without prefix or unit (`upstream_latency`).
    pub name: String,
    /// Label names to values.
    pub labels: BTreeMap<String, String>,
    /// Upper bounds of the buckets, ascending, in ms; `+Inf` is implied.
    pub le_ms: Vec<u64>,
    /// Cumulative observations per bucket: one per bound, then `+Inf`.
    pub counts: Vec<u64>,
    /// All observations.
    pub count: u64,
    /// Their sum, in ms.
    pub sum_ms: u64,
}

impl Histogram {
    /// The mean observation in ms, if there is any.
    ///
    /// ```
    /// let h = yunxin_edge_index::Histogram { count: 4, sum_ms: 1000, ..Default::default() };
    /// assert_eq!(h.mean_ms(), Some(250.0));
    /// ```
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }
}

/// One Yunxin endpoint over the last hour, as the attempts saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// The base URL.
    pub base_url: String,
    /// Calls made to it.
    pub calls: u64,
    /// Of those, failures that count against the endpoint (no connection,
    /// a lost answer, a 5xx).
    pub failures: u64,
    /// The last failure (UNIX ms).
    pub last_failure_ms: Option<u64>,
    /// The last success (UNIX ms).
    pub last_success_ms: Option<u64>,
    /// Whether its last call succeeded.
    pub healthy: bool,
}
