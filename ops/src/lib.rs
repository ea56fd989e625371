//! The ops Worker: the relay's operations plane.
//!
//! It hosts the event index ([`index::EventIndex`]), a Durable Object that
//! the relay binds by script name (`INDEX`): the relay tells it of every
//! change to an event and reads lists, attempts and stats from it.
//!
//! And it serves the operations dashboard (`/dashboard`) and the Prometheus
//! metrics (`/metrics`). The relay forwards `/dashboard`, `/dashboard/*` and `/metrics` here over
//! its `OPS` service binding; this Worker reads the relay's JSON API
//! (`/v1/events`, `/v1/events/{id}`, `/v1/events/{id}/retry`, `/v1/stats`)
//! back over its `RELAY` binding with `Authorization: Bearer
//! <STATUS_TOKEN>`, and renders it. The relay, which every notification
//! goes through, stays small: this Worker holds the index's code and the
//! HTML.
//!
//! - Sign-in ([`session`]): `GET /dashboard/login` is a form, `POST` checks
//!   the token and sets a signed session cookie; `POST /dashboard/logout`.
//!   Any other dashboard URL without a valid cookie: 302 to the sign-in
//!   page (GET) or 401.
//! - Pages ([`html`], [`quota`]): the events, an event (with a retry form
//!   protected by a CSRF token), the quota chart.
//! - `/metrics` ([`metrics`]): bearer of `STATUS_TOKEN`.
//!
//! Not publicly routed (`workers_dev = false`): only the relay reaches it.
//! Bindings: `STATUS_TOKEN` (the relay's, a secret), `RELAY` (the relay),
//! `INDEX` (its own Durable Object), `EVENT_RETENTION_DAYS`.

#![warn(missing_docs)]

pub mod api;
pub mod html;
// The `durable_object` macro generates undocumented glue methods.
#[allow(missing_docs)]
pub mod index;
pub mod metrics;
pub mod quota;
pub mod session;
pub mod web;

use futures_util::StreamExt;
use serde_json::json;
use worker::{
    Context, Date, Env, Headers, Method, Request, RequestInit, Response, console_log, event,
};

use crate::html::{Chrome, Filters, Flash, Section, event_path, problem};
use crate::session::{Keys, SESSION_COOKIE, SESSION_ID_BYTES, Session, token_matches};
use crate::web::{Page, after_login, cookie, event_id, field, form, login_location};

/// A form's body is a few short fields.
const MAX_FORM_BYTES: usize = 4096;

/// The one-shot message after a retry.
const FLASH_COOKIE: &str = "yx_ops_flash";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let now_ms = Date::now().as_millis();
    let page = match handle(req, &env, now_ms).await {
        Ok(page) => page,
        Err(error) => {
            console_log!("{}", json!({ "ops": "error", "error": error.to_string() }));
            Page::html(
                500,
                problem(
                    None,
                    "Something went wrong",
                    "The ops Worker failed to answer; its log says why.",
                ),
            )
        }
    };
    respond(page)
}

/// The `Response` of a [`Page`], with the headers every answer carries.
fn respond(page: Page) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", page.content_type)?;
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    if page.content_type == web::HTML {
        headers.set("content-security-policy", web::CONTENT_SECURITY_POLICY)?;
        headers.set("referrer-policy", "no-referrer")?;
        headers.set("x-frame-options", "DENY")?;
    }
    for (name, value) in &page.headers {
        headers.append(name, value)?;
    }
    Ok(Response::from_bytes(page.body.into_bytes())?
        .with_status(page.status)
        .with_headers(headers))
}

/// `STATUS_TOKEN`, if set and not empty.
fn status_token(env: &Env) -> Option<String> {
    env.secret("STATUS_TOKEN")
        .or_else(|_| env.var("STATUS_TOKEN"))
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

async fn handle(mut req: Request, env: &Env, now_ms: u64) -> worker::Result<Page> {
    let path = req.path();
    let method = req.method();
    // A POST's body is read whatever the answer: workerd closes a
    // keep-alive connection whose request body was left unread, and the
    // browser's next request on it would fail.
    let posted = match method {
        Method::Post => match read_form(&mut req).await? {
            Some(body) => form(&body),
            None => {
                return Ok(Page::html(
                    413,
                    problem(
                        None,
                        "Too large",
                        &format!("A dashboard form is at most {MAX_FORM_BYTES} bytes."),
                    ),
                ));
            }
        },
        _ => Vec::new(),
    };
    let token = status_token(env);
    if path == "/metrics" {
        return metrics(&req, env, token.as_deref()).await;
    }
    let Some(token) = token else {
        return Ok(Page::html(
            503,
            problem(
                None,
                "The dashboard is off",
                "STATUS_TOKEN is not set: give the ops Worker the relay's STATUS_TOKEN \
                 (npx wrangler secret put STATUS_TOKEN -c ops/wrangler.toml).",
            ),
        ));
    };
    let keys = Keys::derive(&token);
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    let session = cookie(&cookies, SESSION_COOKIE).and_then(|value| keys.verify(value, now_ms));
    let query = web::query(&req.inner().url()).to_owned();
    let fields = form(query.as_bytes());

    if path == "/dashboard/login" {
        return match method {
            Method::Get | Method::Head => Ok(match session {
                Some(_) => Page::redirect(302, after_login(field(&fields, "next"))),
                None => Page::html(200, html::login(&after_login(field(&fields, "next")), None)),
            }),
            Method::Post => sign_in(&posted, &keys, &token, now_ms),
            _ => Ok(not_allowed("GET, POST")),
        };
    }

    let Some(session) = session else {
        return Ok(match method {
            Method::Get | Method::Head => {
                let asked = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{query}")
                };
                Page::redirect(302, login_location(&asked))
            }
            _ => Page::html(
                401,
                problem(
                    None,
                    "Sign in first",
                    "This needs a signed-in session: sign in at /dashboard/login.",
                ),
            ),
        });
    };
    let logout_csrf = keys.csrf(&session, "logout");
    let chrome = Chrome {
        section: Section::Events,
        logout_csrf: &logout_csrf,
    };
    let relay = Relay { env, token: &token };
    let flash = cookie(&cookies, FLASH_COOKIE).and_then(Flash::decode);

    match (path.as_str(), method) {
        ("/dashboard", Method::Get | Method::Head) => {
            let filters = Filters::from_query(&fields);
            let answer = relay
                .call(
                    Method::Get,
                    &format!("/v1/events{}", filters.query(&filters.cursor)),
                    None,
                )
                .await;
            Ok(match answer.and_then(|a| a.json::<api::EventList>()) {
                Ok(list) => with_flash(
                    Page::html(
                        200,
                        html::event_list(chrome, &filters, &list, now_ms, flash),
                    ),
                    flash,
                ),
                Err(problem) => problem.page(chrome),
            })
        }
        ("/dashboard/", _) => Ok(Page::redirect(301, "/dashboard")),
        ("/dashboard/quota", Method::Get | Method::Head) => Ok(
            match relay
                .call(Method::Get, "/v1/stats", None)
                .await
                .and_then(|a| a.json::<api::Stats>())
            {
                Ok(stats) => Page::html(200, quota::page(chrome, &stats)),
                Err(problem) => problem.page(chrome),
            },
        ),
        ("/dashboard/logout", Method::Post) => {
            if !keys.check_csrf(&session, "logout", field(&posted, "csrf").unwrap_or("")) {
                return Ok(csrf_refused(chrome));
            }
            Ok(Page::redirect(303, "/dashboard/login")
                .with_header("Set-Cookie", session::clear_cookie()))
        }
        ("/dashboard/logout", _) => Ok(not_allowed("POST")),
        (path, method) if path.starts_with("/dashboard/events/") => {
            let rest = &path["/dashboard/events/".len()..];
            match (rest.strip_suffix("/retry"), method) {
                (Some(segment), Method::Post) => {
                    retry(&posted, &relay, &keys, &session, chrome, segment).await
                }
                (Some(_), _) => Ok(not_allowed("POST")),
                (None, Method::Get | Method::Head) => {
                    event(&relay, &keys, &session, chrome, rest, now_ms, flash).await
                }
                (None, _) => Ok(not_allowed("GET")),
            }
        }
        (path, _) => Ok(Page::html(
            404,
            problem(
                Some(chrome),
                "Not found",
                &format!("There is no dashboard page at {path}."),
            ),
        )),
    }
}

/// Shows the flash once: the answer that shows it clears its cookie.
fn with_flash(page: Page, flash: Option<Flash>) -> Page {
    match flash {
        Some(_) => page.with_header("Set-Cookie", flash_cookie("", 0)),
        None => page,
    }
}

fn flash_cookie(value: &str, max_age: u32) -> String {
    format!(
        "{FLASH_COOKIE}={value}; Max-Age={max_age}; Path=/dashboard; HttpOnly; Secure; SameSite=Strict"
    )
}

fn not_allowed(allowed: &str) -> Page {
    Page::text(405, format!("method not allowed: use {allowed}"))
        .with_header("Allow", allowed.to_owned())
}

fn csrf_refused(chrome: Chrome<'_>) -> Page {
    Page::html(
        403,
        problem(
            Some(chrome),
            "Form refused",
            "This form's CSRF token is missing or wrong, so nothing was done. Reload the page and press the button again.",
        ),
    )
}

/// A form body of at most [`MAX_FORM_BYTES`], which no form of the
/// dashboard exceeds; `None` for a larger one, refused once its
/// Content-Length says so, or as soon as that much was read: nobody signed
/// in yet makes this Worker buffer more.
async fn read_form(req: &mut Request) -> worker::Result<Option<Vec<u8>>> {
    let announced = req.headers().get("content-length")?;
    if announced.is_some_and(|n| {
        n.trim()
            .parse::<u64>()
            .map_or(true, |n| n > MAX_FORM_BYTES as u64)
    }) {
        return Ok(None);
    }
    let mut body = Vec::new();
    let Ok(mut chunks) = req.stream() else {
        return Ok(Some(body));
    };
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `POST /dashboard/login`: the token, compared in constant time.
fn sign_in(
    fields: &[(String, String)],
    keys: &Keys,
    token: &str,
    now_ms: u64,
) -> worker::Result<Page> {
    let next = after_login(field(fields, "next"));
    if !token_matches(token, field(fields, "token").unwrap_or("")) {
        console_log!("{}", json!({ "ops": "sign-in refused" }));
        return Ok(Page::html(
            401,
            html::login(&next, Some("That is not the status token.")),
        ));
    }
    let mut random = [0u8; SESSION_ID_BYTES];
    getrandom::fill(&mut random)
        .map_err(|e| worker::Error::RustError(format!("no randomness: {e}")))?;
    let (_, value) = keys.issue(random, now_ms);
    Ok(Page::redirect(303, next).with_header("Set-Cookie", session::set_cookie(&value)))
}

/// `GET /dashboard/events/{id}`.
async fn event(
    relay: &Relay<'_>,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    segment: &str,
    now_ms: u64,
    flash: Option<Flash>,
) -> worker::Result<Page> {
    let Some(id) = event_id(segment) else {
        return Ok(Page::html(
            404,
            problem(Some(chrome), "Not found", "That is not an event id."),
        ));
    };
    let answer = relay
        .call(
            Method::Get,
            &format!("/v1/events/{}", web::encode(&id)),
            None,
        )
        .await;
    Ok(match answer.and_then(|a| a.json::<api::EventDetail>()) {
        Ok(detail) => {
            let csrf = keys.csrf(session, &format!("retry:{id}"));
            with_flash(
                Page::html(200, html::event_page(chrome, &detail, &csrf, now_ms, flash)),
                flash,
            )
        }
        Err(problem) => problem.page(chrome),
    })
}

/// `POST /dashboard/events/{id}/retry`: checks the CSRF token, asks the
/// relay to retry, and sends the browser back to the event with a flash.
async fn retry(
    fields: &[(String, String)],
    relay: &Relay<'_>,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    segment: &str,
) -> worker::Result<Page> {
    let Some(id) = event_id(segment) else {
        return Ok(Page::html(
            404,
            problem(Some(chrome), "Not found", "That is not an event id."),
        ));
    };
    if !keys.check_csrf(
        session,
        &format!("retry:{id}"),
        field(fields, "csrf").unwrap_or(""),
    ) {
        return Ok(csrf_refused(chrome));
    }
    let body = if field(fields, "scope") == Some("all") {
        r#"{"all":true}"#
    } else {
        ""
    };
    let answer = relay
        .call(
            Method::Post,
            &format!("/v1/events/{}/retry", web::encode(&id)),
            Some(body),
        )
        .await;
    let flash = match answer {
        Ok(answer) if answer.status == 200 || answer.status == 202 => {
            match answer.json::<api::RetryAnswer>() {
                Ok(retried) if retried.retried_receivers > 0 => {
                    Flash::Retried(retried.retried_receivers)
                }
                _ => Flash::NothingToRetry,
            }
        }
        Ok(answer) => Flash::RetryRefused(answer.status),
        Err(problem) => Flash::RetryRefused(problem.status),
    };
    console_log!(
        "{}",
        json!({ "ops": "retry", "event_id": id, "flash": flash.encode() })
    );
    Ok(Page::redirect(303, event_path(&id))
        .with_header("Set-Cookie", flash_cookie(&flash.encode(), 60)))
}

/// `GET /metrics`: a bearer of `STATUS_TOKEN`.
async fn metrics(req: &Request, env: &Env, token: Option<&str>) -> worker::Result<Page> {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return Ok(not_allowed("GET"));
    }
    let presented = req.headers().get("authorization")?;
    let bearer = presented.as_deref().and_then(|v| {
        let (scheme, value) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
    });
    let Some(token) = token else {
        return Ok(Page::text(
            503,
            "STATUS_TOKEN is not set: /metrics is off\n",
        ));
    };
    if !bearer.is_some_and(|b| token_matches(token, b)) {
        return Ok(
            Page::text(401, "/metrics needs Authorization: Bearer <STATUS_TOKEN>\n")
                .with_header("WWW-Authenticate", "Bearer realm=\"yunxin-edge\"".into()),
        );
    }
    let relay = Relay { env, token };
    Ok(
        match relay
            .call(Method::Get, "/v1/stats", None)
            .await
            .and_then(|a| a.json::<api::Stats>())
        {
            Ok(stats) => Page {
                content_type: web::PROMETHEUS,
                ..Page::text(200, metrics::render(&stats))
            },
            Err(problem) => Page::text(502, format!("{}\n", problem.message)),
        },
    )
}

/// The relay, over the `RELAY` service binding.
struct Relay<'a> {
    env: &'a Env,
    token: &'a str,
}

/// The relay's answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Why the relay gave no usable answer.
struct RelayProblem {
    /// The status to answer with.
    status: u16,
    title: &'static str,
    message: String,
}

impl RelayProblem {
    fn page(self, chrome: Chrome<'_>) -> Page {
        Page::html(
            self.status,
            problem(Some(chrome), self.title, &self.message),
        )
    }
}

impl Answer {
    /// The body as `T` when the relay said 2xx; otherwise what went wrong.
    fn json<T: api::FromJson>(self) -> Result<T, RelayProblem> {
        if (200..300).contains(&self.status) {
            return api::parse(&self.body).map_err(|e| RelayProblem {
                status: 502,
                title: "Unexpected answer",
                message: format!("The relay answered JSON the dashboard cannot read: {e}."),
            });
        }
        let said = api::error_message(&self.body);
        Err(match self.status {
            401 | 403 => RelayProblem {
                status: 502,
                title: "The relay refused the dashboard",
                message: "The relay refused the ops Worker's STATUS_TOKEN: both Workers need the same one.".into(),
            },
            404 => RelayProblem {
                status: 404,
                title: "Not found",
                message: if said.is_empty() { "The relay has no such thing.".into() } else { said },
            },
            400..=499 => RelayProblem {
                status: self.status,
                title: "Not accepted",
                message: format!("The relay refused the request (HTTP {}): {said}", self.status),
            },
            _ => RelayProblem {
                status: 502,
                title: "The relay failed",
                message: format!("The relay answered HTTP {}: {said}", self.status),
            },
        })
    }
}

impl Relay<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Answer, RelayProblem> {
        let unreachable = |why: String| RelayProblem {
            status: 502,
            title: "The relay is unreachable",
            message: why,
        };
        let relay = self.env.service("RELAY").map_err(|_| {
            unreachable("The RELAY service binding is not set (ops/wrangler.toml).".into())
        })?;
        let send = async {
            let headers = Headers::new();
            headers.set("authorization", &format!("Bearer {}", self.token))?;
            let mut init = RequestInit::new();
            init.with_method(method).with_headers(headers);
            if let Some(body) = body {
                init.headers.set("content-type", "application/json")?;
                init.with_body(Some(body.into()));
            }
            // The host is not used: a service binding reaches its Worker whatever it says.
            let mut response = relay
                .fetch(format!("https://relay.internal{path}"), Some(init))
                .await?;
            Ok::<_, worker::Error>(Answer {
                status: response.status_code(),
                body: response.bytes().await?,
            })
        };
        send.await
            .map_err(|e| unreachable(format!("Calling the relay failed: {e}")))
    }
}
