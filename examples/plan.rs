//! Prints the signed requests for one notification as JSON, without sending
//! them: `cargo run --example plan -- <receivers> <base-url>`.
//!
//! Credentials come from `YUNXIN_APP_KEY` and `YUNXIN_APP_SECRET`. The
//! JavaScript tests use it to check the Rust signatures against the emulator's
//! independent implementation.

use yunxin_edge::{BatchNotification, Content, Credentials, Endpoint, Plan, PlanOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let receivers: usize = args.next().as_deref().unwrap_or("1000").parse()?;
    let base_url = args
        .next()
        .unwrap_or_else(|| yunxin_edge::DEFAULT_BASE_URL.to_owned());
    let credentials = Credentials::new(
        std::env::var("YUNXIN_APP_KEY")?,
        std::env::var("YUNXIN_APP_SECRET")?,
    );

    let notification = BatchNotification::new("ops-bot", Content::text("通知: deploy finished"))
        .to((0..receivers).map(|i| format!("user{i}")));
    let plan = Plan::new(&notification, &PlanOptions::default())?;
    let requests = plan.sign(&credentials, &Endpoint::new(&base_url)?)?;
    println!("{}", serde_json::to_string(&requests)?);
    Ok(())
}
