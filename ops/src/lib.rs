//! The ops Worker: the relay's operations plane.
//!
//! It hosts the event index ([`index::EventIndex`]), a Durable Object that
//! the relay binds by script name (`INDEX`): the relay tells it of every
//! change to an event and reads lists, attempts and stats from it. Keeping
//! the index here keeps its code out of the relay, which every notification
//! goes through.
//!
//! Not publicly routed (`workers_dev = false`): only the relay reaches it.

#![warn(missing_docs)]

// The `durable_object` macro generates undocumented glue methods.
#[allow(missing_docs)]
pub mod index;

use worker::{Context, Env, Request, Response, event};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> worker::Result<Response> {
    Response::error("the ops Worker is reached through the relay", 404)
}
