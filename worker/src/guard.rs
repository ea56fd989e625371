//! The guard of `STATUS_TOKEN`: one Durable Object (`GUARD`, class `Guard`)
//! that counts each client's wrong tokens, wherever the token is presented
//! (the dashboard's sign-in, `/metrics`, the operator API), and remembers
//! the dashboard sessions ended before their expiry.
//!
//! A Durable Object rather than Cloudflare's rate limiting binding: the
//! binding counts within a single Cloudflare location and over periods of
//! 10 or 60 s only
//! (<https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/>),
//! so a guesser spread over locations would get more tries than the limit,
//! and it cannot lock out for a quarter of an hour; sessions need storage
//! anyway. The limit itself is decided by
//! [`SignInAttempts`] (the dashboard library). A right token costs one read;
//! only wrong ones and sign-outs write.

use serde::{Deserialize, Serialize};
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, State, durable_object,
};
use yunxin_edge_dashboard::session::{SIGN_IN_WINDOW_MS, SignIn, SignInAttempts, token_matches};

/// The binding of the namespace.
pub const BINDING: &str = "GUARD";
/// The one object's name.
const NAME: &str = "status-token";
/// The most characters of a client's address kept.
const MAX_CLIENT_CHARS: usize = 64;

/// What the guard is asked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Command {
    /// `client` presented a token, right or not. Answer: `Option<u64>`, the
    /// ms to wait when the client is limited (then nothing is allowed).
    Attempt { client: String, ok: bool },
    /// Whether a session (its id, signed in at `issued_ms`) is still on.
    /// Answer: `bool`.
    Session { id: String, issued_ms: u64 },
    /// Ends one session, which would expire at `expires_ms`. Answer: `bool`.
    SignOut { id: String, expires_ms: u64 },
    /// Ends every session signed in so far. Answer: `bool`.
    SignOutEverywhere,
}

/// The Durable Object class.
#[allow(missing_docs)] // The macro's glue methods.
#[durable_object]
pub struct Guard {
    state: State,
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS attempts (client TEXT PRIMARY KEY, failures INTEGER NOT NULL, \
     window_start_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ended (id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS everyone (id INTEGER PRIMARY KEY CHECK (id = 1), \
     signed_out_ms INTEGER NOT NULL)",
];

impl DurableObject for Guard {
    fn new(state: State, _env: Env) -> Self {
        Guard { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: Command = req.json().await?;
        let sql = self.sql()?;
        let now = Date::now().as_millis();
        match command {
            Command::Attempt { client, ok } => {
                Response::from_json(&attempt(&sql, &client, ok, now)?)
            }
            Command::Session { id, issued_ms } => {
                let ended: Vec<serde_json::Value> = sql
                    .exec("SELECT id FROM ended WHERE id = ?", vec![id.into()])?
                    .to_array()?;
                Response::from_json(&(ended.is_empty() && issued_ms > signed_out_ms(&sql)?))
            }
            Command::SignOut { id, expires_ms } => {
                // Ended sessions are kept until they would have expired anyway.
                crate::meter::write(
                    &sql,
                    "DELETE FROM ended WHERE expires_ms < ?",
                    vec![(now as i64).into()],
                )?;
                crate::meter::write(
                    &sql,
                    "INSERT OR REPLACE INTO ended (id, expires_ms) VALUES (?, ?)",
                    vec![id.into(), (expires_ms as i64).into()],
                )?;
                Response::from_json(&true)
            }
            Command::SignOutEverywhere => {
                crate::meter::write(
                    &sql,
                    "INSERT OR REPLACE INTO everyone (id, signed_out_ms) VALUES (1, ?)",
                    vec![(now as i64).into()],
                )?;
                crate::meter::write(&sql, "DELETE FROM ended", None)?;
                Response::from_json(&true)
            }
        }
    }
}

impl Guard {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        for statement in SCHEMA {
            sql.exec(statement, None)?;
        }
        Ok(sql)
    }
}

/// Counts an attempt of `client`; the wait when it is limited.
fn attempt(sql: &SqlStorage, client: &str, ok: bool, now: u64) -> Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Row {
        failures: u32,
        window_start_ms: u64,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT failures, window_start_ms FROM attempts WHERE client = ?",
            vec![client.into()],
        )?
        .to_array()?;
    let before = rows
        .first()
        .map_or(SignInAttempts::default(), |row| SignInAttempts {
            failures: row.failures,
            window_start_ms: row.window_start_ms,
        });
    let mut after = before;
    let verdict = after.attempt(ok, now);
    if after != before {
        if after.failures == 0 {
            crate::meter::write(
                sql,
                "DELETE FROM attempts WHERE client = ?",
                vec![client.into()],
            )?;
        } else {
            // Windows over are forgotten as new ones open: the table holds
            // only the last quarter hour's guessers.
            crate::meter::write(
                sql,
                "DELETE FROM attempts WHERE window_start_ms < ?",
                vec![(now.saturating_sub(SIGN_IN_WINDOW_MS) as i64).into()],
            )?;
            crate::meter::write(
                sql,
                "INSERT OR REPLACE INTO attempts (client, failures, window_start_ms) VALUES (?, ?, ?)",
                vec![
                    client.into(),
                    i64::from(after.failures).into(),
                    (after.window_start_ms as i64).into(),
                ],
            )?;
        }
    }
    Ok(match verdict {
        SignIn::Limited { retry_after_ms } => Some(retry_after_ms),
        SignIn::Allowed | SignIn::Refused => None,
    })
}

/// When every session was last ended (UNIX ms; 0: never).
fn signed_out_ms(sql: &SqlStorage) -> Result<u64> {
    #[derive(Deserialize)]
    struct Row {
        signed_out_ms: u64,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT signed_out_ms FROM everyone WHERE id = 1", None)?
        .to_array()?;
    Ok(rows.first().map_or(0, |row| row.signed_out_ms))
}

/// Who is asking: the address Cloudflare saw (`CF-Connecting-IP`), the same
/// for every local request.
fn client(req: &Request) -> String {
    let address = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".to_owned());
    address.chars().take(MAX_CLIENT_CHARS).collect()
}

/// What a presented `STATUS_TOKEN` comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token, from a client not limited.
    Right,
    /// Not the token (counted against the client).
    Wrong,
    /// Too many wrong tokens from this client: refused, right or wrong,
    /// for this many seconds.
    Limited {
        /// Seconds until the client may try again.
        retry_after_secs: u64,
    },
}

/// Checks `presented` against `expected` (in constant time) and counts it
/// against the request's client.
pub async fn check_token(
    env: &Env,
    req: &Request,
    expected: &str,
    presented: &str,
) -> Result<TokenCheck> {
    let ok = token_matches(expected, presented);
    let limited: Option<u64> = ask(
        env,
        &Command::Attempt {
            client: client(req),
            ok,
        },
    )
    .await?;
    Ok(match (limited, ok) {
        (Some(ms), _) => TokenCheck::Limited {
            retry_after_secs: ms.div_ceil(1000),
        },
        (None, true) => TokenCheck::Right,
        (None, false) => TokenCheck::Wrong,
    })
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(req: &Request) -> Option<String> {
    let header = req.headers().get("authorization").ok().flatten()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Whether a session whose cookie verified is still on.
pub async fn session_on(env: &Env, id: &str, issued_ms: u64) -> Result<bool> {
    ask(
        env,
        &Command::Session {
            id: id.to_owned(),
            issued_ms,
        },
    )
    .await
}

/// Ends one session.
pub async fn sign_out(env: &Env, id: &str, expires_ms: u64) -> Result<()> {
    ask::<bool>(
        env,
        &Command::SignOut {
            id: id.to_owned(),
            expires_ms,
        },
    )
    .await
    .map(drop)
}

/// Ends every session.
pub async fn sign_out_everywhere(env: &Env) -> Result<()> {
    ask::<bool>(env, &Command::SignOutEverywhere)
        .await
        .map(drop)
}

async fn ask<T: serde::de::DeserializeOwned>(env: &Env, command: &Command) -> Result<T> {
    let stub = env.durable_object(BINDING)?.get_by_name(NAME)?;
    let body = serde_json::to_string(command)?;
    let response = crate::rpc::post(&stub, "/", body, &[]).await?;
    Ok(serde_json::from_str(
        &crate::body::response_text(response).await?,
    )?)
}
