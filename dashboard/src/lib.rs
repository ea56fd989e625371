//! The operations dashboard (`/dashboard`) and the Prometheus metrics
//! (`/metrics`), as a library without I/O: each page is a function from the
//! event index's types ([`yunxin_edge_index`]) to HTML or text, so it is
//! tested natively. The Worker (`worker/src/dashboard.rs`) reads the
//! request, asks the Durable Objects, calls these and answers.
//!
//! - [`session`]: the sign-in token, signed session cookies, CSRF tokens.
//! - [`html`]: the event list and the event page; [`quota`]: the quota
//!   chart and the endpoints' health.
//! - [`metrics`]: the Prometheus text format.
//! - [`web`]: what a handler answers ([`web::Page`]), cookies, forms,
//!   redirects and times.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod html;
pub mod metrics;
pub mod quota;
pub mod session;
pub mod silences;
pub mod web;

#[cfg(test)]
pub(crate) mod samples {
    //! Sample answers, as the Worker's JSON API serialises them.

    /// A page of `GET /v1/events`.
    pub const LIST: &str = r#"{"events":[
      {"event_id":"evt_<b>1","route":"github-push","created_at_ms":1796000000000,"updated_at_ms":1796000001000,
       "state":"completed_with_failures","requests":2,
       "receivers":{"total":10,"delivered":7,"failed":2,"unknown":1,"pending":0}},
      {"event_id":"evt 2/x","route":null,"created_at_ms":1795999000000,"updated_at_ms":1795999000500,
       "state":"pending","requests":1,
       "receivers":{"total":3,"delivered":1,"failed":0,"unknown":0,"pending":2}}],
     "next_cursor":"c&2"}"#;

    /// `GET /v1/events/{id}`.
    pub const DETAIL: &str = r#"{"event_id":"evt_<b>1","route":"github-push","requests":2,"created_at_ms":1796000000000,
      "state":"completed_with_failures",
      "delivered":["user0","user1"],
      "failed":[{"account_id":"ghost1","error_code":102404,"error_msg":"account not exist","retryable":false},
                {"account_id":"user3","error_code":102503,"error_msg":"server busy","retryable":true}],
      "unknown":[{"account_id":"user9","reason":"request sent, answer lost"}],
      "pending":[{"account_id":"user5","attempts":1,"next_attempt_at_ms":1796000005000,"last_error":"HTTP 502"}],
      "not_attempted":[{"account_id":"USER0","reason":"duplicate of user0"}],
      "dead_lettered_requests":[1],
      "attempts":[
        {"call":0,"attempt":1,"trace_id":"tr-0-1","endpoint":"http://127.0.0.1:1234","started_at_ms":1796000000100,
         "latency_ms":12,"http_status":200,"code":200,"outcome":"partial","error":null},
        {"call":1,"attempt":1,"trace_id":"tr-1-1","endpoint":"http://127.0.0.1:1234","started_at_ms":1796000000200,
         "latency_ms":30000,"http_status":502,"code":null,"outcome":"transport","error":"HTTP 502 <html>"}]}"#;

    /// `GET /v1/stats`.
    pub fn stats() -> String {
        let minutes: Vec<String> = (0..60)
            .map(|i| {
                let calls = if i == 57 { 130 } else { i % 7 };
                let limited = if i == 57 { 10 } else { 0 };
                format!(
                    r#"{{"start_ms":{},"calls":{calls},"rate_limited":{limited}}}"#,
                    1_796_000_000_000u64 - 3_600_000 + i * 60_000
                )
            })
            .collect();
        format!(
            r#"{{"rate_per_minute":120,"minutes":[{}],
            "counters":[
              {{"name":"events_accepted","labels":{{"route":"-"}},"value":12}},
              {{"name":"events_accepted","labels":{{"route":"git\"hub\\push\n"}},"value":3}},
              {{"name":"events_rejected","labels":{{"route":"-","status":"401"}},"value":2}},
              {{"name":"upstream_calls","labels":{{"endpoint":"http://127.0.0.1:1","outcome":"delivered"}},"value":7}}],
            "histograms":[
              {{"name":"upstream_latency","labels":{{"endpoint":"http://127.0.0.1:1"}},
                "le_ms":[50,100,250,500,1000,2500,5000,10000],"counts":[3,5,6,7,7,7,7,7,8],"count":8,"sum_ms":12500}}],
            "endpoints":[{{"base_url":"http://127.0.0.1:1","calls":8,"failures":1,"last_failure_ms":1795999990000,
                           "last_success_ms":null,"healthy":false}}]}}"#,
            minutes.join(",")
        )
    }
}
