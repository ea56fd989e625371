//! Webhook routes for the yunxin-edge relay: take an event that someone
//! else's system sends, in its own format and signature, and turn it into a
//! Yunxin notification.
//!
//! A route ([`config`]) names who may call it ([`verify`]: Standard
//! Webhooks v1 and v1a, GitHub, Stripe, a generic HMAC, bearer and basic
//! tokens, Yunxin's own callbacks), a filter, and templates for the
//! notification's fields ([`template`]); [`render`] runs them over the
//! event and hands the result to the core's parser, so a rendered
//! notification meets every limit a sent one does. Like the core, this
//! crate does no I/O: the relay and the command-line tool read requests,
//! files and secrets, and call it.
//!
//! For alert storms, [`storm`] decides what becomes of a rendered event:
//! silenced, deferred or dropped in quiet hours, collected into a digest
//! ([`render_digest`] renders it), throttled, or sent; its states are
//! serialisable and driven by the caller's clock. Templates format time
//! in any IANA zone ([`time`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod render;
pub mod storm;
pub mod template;
pub mod time;
pub mod verify;

pub use config::{Route, Routes, Verify};
pub use error::RouteError;
pub use render::{Event, Groups, RenderOptions, Rendered, render, render_digest, render_with};
pub use verify::{Scheme, Secret, Signed, VerifyError, check_secrets, delivery_id, verify};
