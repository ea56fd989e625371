//! The one piece of I/O `send` does: one signed request over HTTP(S), with
//! a blocking client, turned into what the core's delivery needs to hear.
//!
//! The only judgement made here is the one the core cannot make: whether
//! the request went out. A connection that could not be made means it did
//! not ([`Outcome::Transport`]); a timeout or a connection lost after it was
//! made means Yunxin may have processed it ([`Outcome::AnswerLost`]). What
//! follows from either (retry, when, with which trace id) is the core's.

use std::time::Duration;

use yunxin_edge::{AttemptOutcome, Outcome, SignedRequest};

/// A blocking HTTP client for Yunxin calls.
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Client {
    /// A client that gives each call at most `timeout` for the whole
    /// exchange. Proxies come from the usual variables (`HTTPS_PROXY`,
    /// `NO_PROXY`, …).
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Every status is an answer for `Outcome::from_http` to judge.
            .http_status_as_error(false)
            // A POST is never redirected: a 3xx is an answer too.
            .max_redirects(0)
            .user_agent(concat!("yunxin-edge/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, timeout }
    }

    /// Sends `request` and says what became of it. Never fails: every
    /// failure is an outcome for the delivery to judge.
    pub fn send(&self, request: &SignedRequest) -> AttemptOutcome {
        let mut builder = self.agent.post(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let mut response = match builder.send(&request.body) {
            Ok(response) => response,
            Err(error) => return self.failed(&error).into(),
        };
        let status = response.status().as_u16();
        let retry_after_secs = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        match response.body_mut().read_to_vec() {
            Ok(body) => AttemptOutcome {
                outcome: Outcome::from_http(status, &body),
                retry_after_secs,
            },
            // The status line came back: the request was received.
            Err(error) => {
                Outcome::answer_lost(format!("HTTP {status}, then {}", self.describe(&error)))
                    .into()
            }
        }
    }

    /// A call that got no answer: not sent if no connection was made,
    /// else lost.
    fn failed(&self, error: &ureq::Error) -> Outcome {
        let reason = self.describe(error);
        if not_sent(error) {
            Outcome::transport(reason)
        } else {
            Outcome::answer_lost(reason)
        }
    }

    fn describe(&self, error: &ureq::Error) -> String {
        match error {
            ureq::Error::Timeout(_) => format!("no answer within {} ms", self.timeout.as_millis()),
            other => other.to_string(),
        }
    }
}

/// Whether the request certainly did not reach the server: the name did
/// not resolve, the connection or the TLS handshake failed, or the request
/// could not be built. Anything else may have happened after it went out.
fn not_sent(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::ConnectProxyFailed(_)
        | ureq::Error::TlsRequired
        | ureq::Error::RequireHttpsOnly(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_) => true,
        ureq::Error::Timeout(timeout) => {
            matches!(timeout, ureq::Timeout::Resolve | ureq::Timeout::Connect)
        }
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_were_not_sent_lost_ones_may_have_been() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(not_sent(&ureq::Error::Io(refused)));
        assert!(not_sent(&ureq::Error::HostNotFound));
        assert!(not_sent(&ureq::Error::Timeout(ureq::Timeout::Connect)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!not_sent(&ureq::Error::Io(reset)));
        assert!(!not_sent(&ureq::Error::Timeout(ureq::Timeout::Global)));
        assert!(!not_sent(&ureq::Error::Timeout(
            ureq::Timeout::RecvResponse
        )));
    }
}
