//! Sans-IO client for NetEase Yunxin (网易云信) IM API v2
//! `POST /im/v2/custom_notification/batch` (批量发送自定义系统通知).
//!
//! The crate does no I/O. It validates a notification against the documented
//! limits, splits its receivers into calls of at most 500, signs each call,
//! and hands back [`SignedRequest`]s for any HTTP client to send. It then takes
//! the answers back and merges them into one [`Report`] in which every
//! receiver appears exactly once: delivered, failed, or not attempted.
//!
//! ```
//! use yunxin_edge::{
//!     BatchNotification, Content, Credentials, Endpoint, Outcome, Plan, PlanOptions,
//! };
//!
//! let credentials = Credentials::new("my-app-key", "my-app-secret");
//! let notification = BatchNotification::new("ops-bot", Content::text(r#"{"deploy":"ok"}"#))
//!     .to((0..1200).map(|i| format!("user{i}")));
//!
//! // 1,200 receivers become three calls of at most 500, each signed on its own.
//! let options = PlanOptions::for_event("evt_42");
//! let plan = Plan::new(&notification, &options)?;
//! let requests = plan.sign(&credentials, &Endpoint::default())?;
//! assert_eq!(requests.len(), 3);
//! assert_eq!(requests[0].url, "https://open.yunxinapi.com/im/v2/custom_notification/batch");
//!
//! // Send them with any client, then classify each answer…
//! let answered = Outcome::from_http(200, br#"{"code":200,"msg":"success","data":{
//!     "failed_list":[{"account_id":"user7","error_code":102404,"error_msg":"not found"}]}}"#);
//! let outcomes = [Some(answered), Some(Outcome::transport("timed out")), None];
//!
//! // …and merge them: every receiver is accounted for exactly once.
//! let report = plan.report(&outcomes);
//! assert_eq!(report.delivered.len(), 499);
//! assert_eq!(report.failed.len(), 501); // user7, and the 500 of the timed-out call
//! assert_eq!(report.not_attempted.len(), 200);
//! assert!(report.has_retryable());
//! # Ok::<(), yunxin_edge::Error>(())
//! ```
//!
//! Retries (which calls again, with which trace id, after how long) are the
//! [`delivery`] module's: a [`Delivery`] is the whole job as a state machine
//! that its caller drives with time and outcomes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod batch;
pub mod callback;
pub mod delivery;
pub mod error;
pub mod failover;
pub mod notification;
pub mod pacing;
pub mod response;
pub mod sign;

pub use batch::{
    BATCH_PATH, DEFAULT_BASE_URL, Endpoint, Plan, PlanOptions, PlannedRequest, SignedRequest,
};
pub use callback::{
    CallbackHeaders, DEFAULT_CALLBACK_TOLERANCE_MS, SignedCallback, sign_callback, verify_callback,
};
pub use delivery::{
    Action, Attempt, AttemptId, AttemptOutcome, CallAction, CallState, Counts, Delivery,
    DeliveryHead, DeliveryState, Recorded, Replay, RetryPolicy,
};
pub use error::{CallbackError, Error, Result};
pub use notification::{
    AccountId, BatchNotification, Content, MAX_RECEIVERS_PER_REQUEST, NotificationConfig,
    PushConfig, RouteConfig,
};
pub use response::{
    BatchResponse, FailedReceiver, Failure, NotAttempted, Outcome, Report, ResponseData,
    RetryVerdict, Unknown,
};
pub use sign::{AppKey, AppSecret, Credentials, CurTime, Nonce, SignedHeaders, TraceId, checksum};

/// The crate's README (its page on crates.io), whose examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.crate.md")]
pub struct ReadmeDoctests;
