//! The synchronous path (`Prefer: wait`): drive one [`Delivery`] to the end
//! inside the request, at most [`MAX_IN_FLIGHT`] calls at a time. Every
//! decision (what to send, when to retry, when to stop) is the delivery's.

use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::stream::{FuturesUnordered, StreamExt};
use worker::{Date, Delay};
use yunxin_edge::{Action, Delivery, Report};

use crate::config::{Config, MAX_IN_FLIGHT};
use crate::upstream;

/// Sends every call of the delivery, retrying as its policy says, and
/// returns the final report.
pub async fn deliver(mut delivery: Delivery, config: &Config) -> Report {
    let mut in_flight = FuturesUnordered::new();
    loop {
        // Start what is due, up to the connection limit.
        let mut wake_at = None;
        while in_flight.len() < MAX_IN_FLIGHT {
            match delivery.poll(now_ms()) {
                Action::Send(attempt) => in_flight.push(async move {
                    let outcome = upstream::send(&attempt, config).await;
                    (attempt.id, outcome)
                }),
                Action::Wait { until_ms } => {
                    wake_at = until_ms;
                    break;
                }
                Action::Done(report) => return report,
                // A future action this driver does not know: stop where it stands.
                _ => return delivery.report(),
            }
        }

        // Then wait for the first answer, or until a retry is due.
        let sleep = |until: u64| Delay::from(Duration::from_millis(until.saturating_sub(now_ms())));
        let finished = match (in_flight.is_empty(), wake_at) {
            (true, Some(until)) => {
                sleep(until).await;
                None
            }
            (true, None) => return delivery.report(), // nothing in flight, nothing due: cannot happen
            (false, None) => in_flight.next().await,
            (false, Some(until)) => match select(in_flight.next(), sleep(until)).await {
                Either::Left((finished, _)) => finished,
                Either::Right(_) => None,
            },
        };
        if let Some((id, outcome)) = finished {
            delivery.record(id, outcome, now_ms());
        }
    }
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}
