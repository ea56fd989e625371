//! The app's credentials, from the environment only: a flag would show the
//! secret in `ps` and in shell history. Nothing here ever prints or
//! formats the secret; errors name the variable, never its value.

use yunxin_edge::Credentials;

use crate::failure::{Failure, Problem};

/// The variable holding the app key.
pub const APP_KEY: &str = "YUNXIN_APP_KEY";
/// The variable holding the app secret.
pub const APP_SECRET: &str = "YUNXIN_APP_SECRET";

/// `YUNXIN_APP_KEY` and `YUNXIN_APP_SECRET`; a usage error (exit 2) naming
/// the variable when one is unset, empty or not UTF-8, or when the key
/// could not go into a header.
pub fn from_env() -> Result<Credentials, Failure> {
    let app_key = variable(APP_KEY, "the app key")?;
    let app_secret = variable(APP_SECRET, "the app secret")?;
    // The key goes into a header as it is; the core refuses control
    // characters in it (and shows the key, which is not a secret).
    Credentials::try_new(app_key, app_secret).map_err(|e| {
        let problem = Problem::from_core(&e).field(APP_KEY);
        Failure::of(crate::failure::Exit::Usage, problem)
    })
}

fn variable(name: &str, what: &str) -> Result<String, Failure> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) | Err(std::env::VarError::NotPresent) => Err(missing(name, what, "is not set")),
        Err(std::env::VarError::NotUnicode(_)) => Err(missing(name, what, "is not UTF-8")),
    }
}

fn missing(name: &str, what: &str, problem: &str) -> Failure {
    let problem = Problem::new(
        "missing_credentials",
        format!(
            "{name} {problem}: set it to {what} from the Yunxin console (credentials are read from the environment only)"
        ),
    )
    .field(name);
    Failure::of(crate::failure::Exit::Usage, problem)
}
