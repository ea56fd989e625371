//! `yunxin-edge check`: a routes config checked by the relay's own parser,
//! with every problem listed at once, so that a config can be fixed in one
//! go before it is deployed.

use std::path::PathBuf;

use serde_json::json;

use crate::Output;
use crate::failure::Failure;
use crate::input;

/// `check`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The routes config: a JSON object of route name to route (the relay's
    /// ROUTES binding), or a wrangler JSON config holding it at
    /// `vars.ROUTES`.
    #[arg(long, value_name = "FILE")]
    pub routes: PathBuf,
}

/// Checks the config: `ok: N routes`, or a failure listing every problem.
pub fn run(args: &Args) -> Result<Output, Failure> {
    let routes = input::routes(&args.routes)?;
    let names: Vec<&str> = routes.iter().map(|(name, _)| name).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    Ok(Output::text(
        format!("ok: {} route{plural}", names.len()),
        json!({ "ok": true, "routes": names }),
    ))
}
