//! Yunxin's answers: parsing, classification, retry verdicts, and the merge of
//! every call of one notification into one per-receiver [`Report`].

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::batch::Plan;
use crate::error::{Error, Result};
use crate::notification::{AccountId, Duplicate};

/// The JSON body of a batch call's answer.
///
/// Missing or `null` lists are read as empty and unknown fields are ignored,
/// because Yunxin's documentation and its answers do not always agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// 200 when the call was accepted; see the reference's code table.
    pub code: i64,
    /// Yunxin's message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub msg: String,
    /// Per-receiver results.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: ResponseData,
}

/// The `data` of a [`BatchResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseData {
    /// Receivers that got the notification.
    #[serde(default, deserialize_with = "null_as_default")]
    pub success_list: Vec<AccountId>,
    /// Receivers that did not, with Yunxin's reason.
    #[serde(default, deserialize_with = "null_as_default")]
    pub failed_list: Vec<FailedReceiver>,
}

/// One entry of `failed_list`.
///
/// The seed's schema types these entries as plain strings while the example
/// and the SDKs use objects; both are read, a string as an id with code 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FailedEntry")]
pub struct FailedReceiver {
    /// The receiver.
    pub account_id: AccountId,
    /// Six-digit code: 1 + resource (2 digits) + code (3 digits), e.g. 102404.
    pub error_code: i64,
    /// Yunxin's message.
    pub error_msg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FailedEntry {
    Object {
        account_id: AccountId,
        #[serde(default)]
        error_code: i64,
        #[serde(default, deserialize_with = "null_as_default")]
        error_msg: String,
    },
    Id(AccountId),
}

impl From<FailedEntry> for FailedReceiver {
    fn from(entry: FailedEntry) -> Self {
        match entry {
            FailedEntry::Object {
                account_id,
                error_code,
                error_msg,
            } => FailedReceiver {
                account_id,
                error_code,
                error_msg,
            },
            FailedEntry::Id(account_id) => FailedReceiver {
                account_id,
                error_code: 0,
                error_msg: String::new(),
            },
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl BatchResponse {
    /// Parses an answer's body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| Error::Response {
            reason: e.to_string(),
        })
    }
}

/// Whether, and when, a failed call or receiver is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum RetryVerdict {
    /// Trying again cannot help (bad input, no permission, unknown account…).
    Permanent,
    /// Try again, with the same trace id, after at least this long.
    Retry {
        /// The shortest sensible wait, in seconds (60 after a rate limit).
        min_delay_secs: u64,
    },
}

impl RetryVerdict {
    /// Whether another try may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, RetryVerdict::Retry { .. })
    }

    /// The verdict for a Yunxin code: the call-level three-digit codes, and the
    /// six-digit per-receiver codes by their last three digits.
    pub fn for_code(code: i64) -> Self {
        match code % 1000 {
            416 => RetryVerdict::Retry { min_delay_secs: 60 },
            449 | 500 | 503 | 514 => RetryVerdict::Retry { min_delay_secs: 0 },
            _ => RetryVerdict::Permanent,
        }
    }

    /// The verdict for an HTTP-level failure (no Yunxin JSON, or none at all).
    /// Only a 4xx other than 408 and 429 says the request itself is wrong.
    pub fn for_transport(http_status: Option<u16>) -> Self {
        match http_status {
            Some(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
                RetryVerdict::Permanent
            }
            _ => RetryVerdict::Retry { min_delay_secs: 0 },
        }
    }
}

/// What became of one batch call. Serialises tagged by `kind`
/// (`{"kind":"partial_failure","success":[…],"failed":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// `code` 200 and no failed receivers.
    Delivered {
        /// Yunxin's `success_list`.
        success: Vec<AccountId>,
    },
    /// `code` 200, but some receivers failed: not a success.
    PartialFailure {
        /// Yunxin's `success_list`.
        success: Vec<AccountId>,
        /// Yunxin's `failed_list`.
        failed: Vec<FailedReceiver>,
    },
    /// Yunxin refused the whole call.
    Rejected {
        /// Yunxin's code, e.g. 414 or 416.
        code: i64,
        /// Yunxin's message.
        msg: String,
    },
    /// No Yunxin answer, and the request was not processed as far as the
    /// caller can tell: the connection failed before the request went out,
    /// or an HTTP error without Yunxin JSON (a gateway's 502, say).
    Transport {
        /// The HTTP status, when there was one.
        http_status: Option<u16>,
        /// What went wrong, in a few words.
        reason: String,
    },
    /// The request went out and its answer was lost (a timeout, a connection
    /// closed mid-answer): Yunxin may or may not have notified the
    /// receivers. A retry with the same trace id is safe, as Yunxin drops a
    /// trace id it has already processed.
    AnswerLost {
        /// What went wrong, in a few words.
        reason: String,
    },
}

impl Outcome {
    /// Classifies an HTTP answer by its status and body.
    pub fn from_http(status: u16, body: &[u8]) -> Self {
        if status != 200 {
            return Outcome::Transport {
                http_status: Some(status),
                reason: format!("HTTP {status} from upstream"),
            };
        }
        match BatchResponse::parse(body) {
            Ok(response) => Outcome::from_response(response),
            Err(e) => Outcome::Transport {
                http_status: Some(status),
                reason: e.to_string(),
            },
        }
    }

    /// Classifies a parsed answer.
    pub fn from_response(response: BatchResponse) -> Self {
        match response.code {
            200 if response.data.failed_list.is_empty() => Outcome::Delivered {
                success: response.data.success_list,
            },
            200 => Outcome::PartialFailure {
                success: response.data.success_list,
                failed: response.data.failed_list,
            },
            code => Outcome::Rejected {
                code,
                msg: response.msg,
            },
        }
    }

    /// A transport failure without an HTTP status (connect error, timeout).
    pub fn transport(reason: impl Into<String>) -> Self {
        Outcome::Transport {
            http_status: None,
            reason: reason.into(),
        }
    }

    /// An answer lost after the request went out.
    pub fn answer_lost(reason: impl Into<String>) -> Self {
        Outcome::AnswerLost {
            reason: reason.into(),
        }
    }

    /// Whether the whole call should be sent again. Per-receiver failures of a
    /// partial failure are judged one by one in the [`Report`] instead.
    pub fn retry(&self) -> RetryVerdict {
        match self {
            Outcome::Delivered { .. } | Outcome::PartialFailure { .. } => RetryVerdict::Permanent,
            Outcome::Rejected { code, .. } => RetryVerdict::for_code(*code),
            Outcome::Transport { http_status, .. } => RetryVerdict::for_transport(*http_status),
            Outcome::AnswerLost { .. } => RetryVerdict::Retry { min_delay_secs: 0 },
        }
    }

    /// Whether the outcome speaks against the endpoint that gave it, so
    /// that the next attempt should go elsewhere ([`crate::failover`]): no
    /// connection, a lost answer (a timeout, a connection closed
    /// mid-answer) or an HTTP 5xx. Any other answer, a Yunxin refusal or a
    /// 4xx included, came from a server that is up and would be given
    /// again by the other endpoint.
    pub fn is_endpoint_failure(&self) -> bool {
        match self {
            Outcome::Transport { http_status, .. } => {
                http_status.is_none_or(|status| (500..600).contains(&status))
            }
            Outcome::AnswerLost { .. } => true,
            Outcome::Delivered { .. }
            | Outcome::PartialFailure { .. }
            | Outcome::Rejected { .. } => false,
        }
    }
}

/// A receiver that did not get the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The receiver, as the caller spelled it.
    pub account_id: AccountId,
    /// Yunxin's code (per-receiver or call-level), or the HTTP status of a
    /// transport failure (0 when there was none).
    pub error_code: i64,
    /// What went wrong.
    pub error_msg: String,
    /// Whether a later attempt may succeed.
    pub retryable: bool,
}

/// A receiver whose fate is unknown: its call went out and the answer was
/// lost. Yunxin may have notified it; a retry with the same trace id is
/// safe, as Yunxin drops a trace id it has already processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// The receiver, as the caller spelled it.
    pub account_id: AccountId,
    /// What happened, e.g. `request sent, answer lost: no answer within 10000 ms`.
    pub reason: String,
}

/// A receiver whose call was never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAttempted {
    /// The receiver, as the caller spelled it.
    pub account_id: AccountId,
    /// Why it was not attempted: `not sent`, or `duplicate of <id>`.
    pub reason: String,
}

impl From<&Duplicate> for NotAttempted {
    fn from(duplicate: &Duplicate) -> Self {
        NotAttempted {
            account_id: duplicate.account_id.clone(),
            reason: format!("duplicate of {}", duplicate.duplicate_of),
        }
    }
}

/// Every receiver of one notification, each exactly once: delivered, failed,
/// unknown, or not attempted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Receivers that got the notification.
    pub delivered: Vec<AccountId>,
    /// Receivers that Yunxin refused, or whose call failed, with the reason.
    pub failed: Vec<Failure>,
    /// Receivers whose call went out and whose answer was lost.
    pub unknown: Vec<Unknown>,
    /// Receivers whose call was not sent.
    pub not_attempted: Vec<NotAttempted>,
    /// The least time to wait before retrying the retryable failures, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl Report {
    /// Adds the receivers of one call with what became of it (`None`: never sent).
    ///
    /// Yunxin answers with lower-cased ids, so ids are matched
    /// case-insensitively; the report keeps the caller's spelling. On a
    /// 200 answer, a receiver missing from `failed_list` counts as delivered
    /// whether or not `success_list` names it: `success_list` is optional.
    pub fn add(&mut self, receivers: &[AccountId], outcome: Option<&Outcome>) {
        match outcome {
            None => self
                .not_attempted
                .extend(receivers.iter().map(|id| NotAttempted {
                    account_id: id.clone(),
                    reason: "not sent".to_owned(),
                })),
            Some(Outcome::Delivered { .. }) => self.delivered.extend_from_slice(receivers),
            Some(Outcome::PartialFailure { failed, .. }) => {
                let mut by_key: HashMap<Cow<'_, str>, &FailedReceiver> = HashMap::new();
                for f in failed {
                    by_key.entry(f.account_id.key()).or_insert(f);
                }
                for id in receivers {
                    match by_key.get(id.key().as_ref()) {
                        Some(f) => self.fail(
                            id,
                            f.error_code,
                            &f.error_msg,
                            RetryVerdict::for_code(f.error_code),
                        ),
                        None => self.delivered.push(id.clone()),
                    }
                }
            }
            Some(outcome @ Outcome::Rejected { code, msg }) => {
                for id in receivers {
                    self.fail(id, *code, msg, outcome.retry());
                }
            }
            Some(Outcome::AnswerLost { reason }) => {
                self.retry_after_secs = Some(self.retry_after_secs.unwrap_or(0));
                self.unknown.extend(receivers.iter().map(|id| Unknown {
                    account_id: id.clone(),
                    reason: format!("request sent, answer lost: {reason}"),
                }));
            }
            Some(
                outcome @ Outcome::Transport {
                    http_status,
                    reason,
                },
            ) => {
                for id in receivers {
                    self.fail(
                        id,
                        http_status.map_or(0, i64::from),
                        reason,
                        outcome.retry(),
                    );
                }
            }
        }
    }

    pub(crate) fn fail(&mut self, id: &AccountId, code: i64, msg: &str, verdict: RetryVerdict) {
        if let RetryVerdict::Retry { min_delay_secs } = verdict {
            self.retry_after_secs = Some(self.retry_after_secs.unwrap_or(0).max(min_delay_secs));
        }
        self.failed.push(Failure {
            account_id: id.clone(),
            error_code: code,
            error_msg: msg.to_owned(),
            retryable: verdict.is_retryable(),
        });
    }

    /// Whether some receiver failed, or has an unknown fate, in a way a later
    /// attempt may fix.
    pub fn has_retryable(&self) -> bool {
        self.retry_after_secs.is_some()
    }

    /// How many receivers the report accounts for.
    pub fn len(&self) -> usize {
        self.delivered.len() + self.failed.len() + self.unknown.len() + self.not_attempted.len()
    }

    /// Appends another report's receivers (of other calls) to this one.
    pub fn extend(&mut self, other: Report) {
        self.delivered.extend(other.delivered);
        self.failed.extend(other.failed);
        self.unknown.extend(other.unknown);
        self.not_attempted.extend(other.not_attempted);
        self.retry_after_secs = match (self.retry_after_secs, other.retry_after_secs) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Whether the report accounts for no receiver.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Plan {
    /// Merges the outcome of each call (`outcomes[i]` for `requests()[i]`;
    /// missing or `None` means never sent) into one report. Duplicates are
    /// not attempted, as `duplicate of <id>`.
    pub fn report(&self, outcomes: &[Option<Outcome>]) -> Report {
        let mut report = Report::default();
        report
            .not_attempted
            .extend(self.duplicates().iter().map(NotAttempted::from));
        for (i, request) in self.requests().iter().enumerate() {
            report.add(
                &request.receiver_ids,
                outcomes.get(i).and_then(Option::as_ref),
            );
        }
        report
    }
}
