//! `/dashboard` and `/metrics`: the thin adapter between HTTP and the
//! dashboard library (`dashboard/`), which renders pages from the event
//! index's types.
//!
//! Reads go straight to the Durable Objects, typed: the event list and the
//! stats from the index ([`crate::operator::events`],
//! [`crate::operator::stats_of`]), an event from its record and the index
//! ([`crate::operator::event_detail`]), a retry to the event's record. The
//! JSON API serialises the same values.
//!
//! - Sign-in ([`session`]): `GET /dashboard/login` is a form, `POST` checks
//!   `STATUS_TOKEN` and sets a signed session cookie; wrong tokens are
//!   limited per client ([`guard`](crate::guard): 429 with `Retry-After`).
//!   `POST /dashboard/logout` ends the session, with `scope=everywhere`
//!   every session. Any other dashboard URL without a valid cookie of a
//!   session still on: 302 to the sign-in page (GET) or 401.
//! - Pages ([`html`], [`quota`]): the events, an event (with a retry form
//!   protected by a CSRF token), the quota chart.
//! - `/metrics` ([`metrics`]): a bearer of `STATUS_TOKEN`.

use futures_util::StreamExt;
use serde_json::json;
use worker::{Date, Env, Headers, Method, Request, Response, console_log};
use yunxin_edge_dashboard::html::{self, Chrome, Filters, Flash, Section, event_path, problem};
use yunxin_edge_dashboard::session::{self, Keys, SESSION_COOKIE, SESSION_ID_BYTES, Session};
use yunxin_edge_dashboard::silences as silences_html;
use yunxin_edge_dashboard::web::{
    self, Page, after_login, cookie, event_id, field, form, login_location,
};
use yunxin_edge_dashboard::{metrics, quota};

use crate::config::{Config, optional};
use crate::error::RelayError;
use crate::events::EventClient;
use crate::guard::{self, TokenCheck};
use crate::webhook::EventId;
use crate::{operator, route_config, silences};
use yunxin_edge_index::{EventView, Stats};

/// A form's body is a few short fields.
const MAX_FORM_BYTES: usize = 4096;

/// The one-shot message after a retry.
const FLASH_COOKIE: &str = "yx_ops_flash";

/// Answers a request for `/dashboard`, `/dashboard/*` or `/metrics`.
pub async fn serve(req: Request, env: &Env) -> worker::Result<Response> {
    let now_ms = Date::now().as_millis();
    let page = match handle(req, env, now_ms).await {
        Ok(page) => page,
        Err(error) => {
            console_log!(
                "{}",
                json!({ "dashboard": "error", "error": error.to_string() })
            );
            Page::html(
                500,
                problem(
                    None,
                    "Something went wrong",
                    "The dashboard failed to answer; the Worker's log says why.",
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
    let token = optional(env, "STATUS_TOKEN");
    if path == "/metrics" {
        return metrics(&req, env, token.as_deref()).await;
    }
    let Some(token) = token else {
        return Ok(Page::html(
            503,
            problem(
                None,
                "The dashboard is off",
                "STATUS_TOKEN is not set: set it to sign in \
                 (npx wrangler secret put STATUS_TOKEN).",
            ),
        ));
    };
    let keys = Keys::derive(&token);
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    let session =
        match cookie(&cookies, SESSION_COOKIE).and_then(|value| keys.verify(value, now_ms)) {
            // Signed by us and not expired; still on unless it was signed out.
            Some(session) if guard::session_on(env, &session.id, session.issued_ms()).await? => {
                Some(session)
            }
            _ => None,
        };
    let query = web::query(&req.inner().url()).to_owned();
    let fields = form(query.as_bytes());

    if path == "/dashboard/login" {
        return match method {
            Method::Get | Method::Head => Ok(match session {
                Some(_) => Page::redirect(302, after_login(field(&fields, "next"))),
                None => Page::html(200, html::login(&after_login(field(&fields, "next")), None)),
            }),
            Method::Post => sign_in(&req, env, &posted, &keys, &token, now_ms).await,
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
    let flash = cookie(&cookies, FLASH_COOKIE).and_then(Flash::decode);

    match (path.as_str(), method) {
        ("/dashboard", Method::Get | Method::Head) => {
            let filters = Filters::from_query(&fields);
            let pairs = [
                ("state", &filters.state),
                ("route", &filters.route),
                ("cursor", &filters.cursor),
            ]
            .map(|(name, value)| (name.into(), value.as_str().into()));
            let list = match operator::list_query(pairs.into_iter()) {
                Ok(query) => operator::events(env, query).await,
                Err(e) => Err(e),
            };
            Ok(match list {
                Ok(list) => with_flash(
                    Page::html(
                        200,
                        html::event_list(chrome, &filters, &list, now_ms, flash),
                    ),
                    flash,
                ),
                Err(e) => failed(chrome, &e),
            })
        }
        ("/dashboard/", _) => Ok(Page::redirect(301, "/dashboard")),
        ("/dashboard/quota", Method::Get | Method::Head) => {
            let stats = stats(env).await;
            Ok(match stats {
                Ok(stats) => Page::html(200, quota::page(chrome, &stats)),
                Err(e) => failed(chrome, &e),
            })
        }
        ("/dashboard/silences", Method::Get | Method::Head) => {
            silences_page(env, &keys, &session, chrome, now_ms, None).await
        }
        ("/dashboard/silences", Method::Post) => {
            if !keys.check_csrf(&session, "silence", field(&posted, "csrf").unwrap_or("")) {
                return Ok(csrf_refused(chrome));
            }
            create_silence(env, &keys, &session, chrome, &posted, now_ms).await
        }
        (path, method) if path.starts_with("/dashboard/silences/") => {
            let Some(id) = path["/dashboard/silences/".len()..].strip_suffix("/end") else {
                return Ok(Page::html(
                    404,
                    problem(Some(chrome), "Not found", "There is no such page."),
                ));
            };
            if method != Method::Post {
                return Ok(not_allowed("POST"));
            }
            let purpose = format!("end-silence:{id}");
            if !keys.check_csrf(&session, &purpose, field(&posted, "csrf").unwrap_or("")) {
                return Ok(csrf_refused(chrome));
            }
            silences::remove(env, id).await.map_err(to_worker)?;
            console_log!("{}", json!({ "dashboard": "silence ended" }));
            Ok(Page::redirect(303, "/dashboard/silences"))
        }
        ("/dashboard/logout", Method::Post) => {
            if !keys.check_csrf(&session, "logout", field(&posted, "csrf").unwrap_or("")) {
                return Ok(csrf_refused(chrome));
            }
            if field(&posted, "scope") == Some("everywhere") {
                guard::sign_out_everywhere(env).await?;
            } else {
                guard::sign_out(env, &session.id, session.expires_ms).await?;
            }
            Ok(Page::redirect(303, "/dashboard/login")
                .with_header("Set-Cookie", session::clear_cookie()))
        }
        ("/dashboard/logout", _) => Ok(not_allowed("POST")),
        (path, method) if path.starts_with("/dashboard/events/") => {
            let rest = &path["/dashboard/events/".len()..];
            match (rest.strip_suffix("/retry"), method) {
                (Some(segment), Method::Post) => {
                    retry(&posted, env, &keys, &session, chrome, segment).await
                }
                (Some(_), _) => Ok(not_allowed("POST")),
                (None, Method::Get | Method::Head) => {
                    event(env, &keys, &session, chrome, rest, now_ms, flash).await
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

/// 429 with `Retry-After`, showing `body` (HTML unless changed).
fn too_many(retry_after_secs: u64, body: String) -> Page {
    Page::html(429, body).with_header("Retry-After", retry_after_secs.to_string())
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

/// `POST /dashboard/login`: the token, compared in constant time and
/// counted against the client.
async fn sign_in(
    req: &Request,
    env: &Env,
    fields: &[(String, String)],
    keys: &Keys,
    token: &str,
    now_ms: u64,
) -> worker::Result<Page> {
    let next = after_login(field(fields, "next"));
    let presented = field(fields, "token").unwrap_or("");
    match guard::check_token(env, req, token, presented).await? {
        TokenCheck::Right => {}
        TokenCheck::Wrong => {
            console_log!("{}", json!({ "dashboard": "sign-in refused" }));
            return Ok(Page::html(
                401,
                html::login(&next, Some("That is not the status token.")),
            ));
        }
        TokenCheck::Limited { retry_after_secs } => {
            console_log!("{}", json!({ "dashboard": "sign-in limited" }));
            return Ok(too_many(
                retry_after_secs,
                html::login(
                    &next,
                    Some(&format!(
                        "Too many wrong tokens from here: try again in {} minutes.",
                        retry_after_secs.div_ceil(60)
                    )),
                ),
            ));
        }
    }
    let mut random = [0u8; SESSION_ID_BYTES];
    getrandom::fill(&mut random)
        .map_err(|e| worker::Error::RustError(format!("no randomness: {e}")))?;
    let (_, value) = keys.issue(random, now_ms);
    Ok(Page::redirect(303, next).with_header("Set-Cookie", session::set_cookie(&value)))
}

/// The index's stats against the configured quota (the quota page and
/// `/metrics`).
async fn stats(env: &Env) -> Result<Stats, RelayError> {
    operator::stats_of(env, &Config::from_env(env)?).await
}

/// `/dashboard/silences`, with `problem` above the form after a refusal.
async fn silences_page(
    env: &Env,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    now_ms: u64,
    problem_shown: Option<&str>,
) -> worker::Result<Page> {
    let (listed, routes) = match (silences::all(env).await, route_config::routes(env)) {
        (Ok(listed), Ok(routes)) => (listed, routes),
        (Err(e), _) => return Ok(failed(chrome, &e)),
        (_, Err(e)) => return Ok(failed(chrome, &RelayError::from(e))),
    };
    let names: Vec<&str> = routes.iter().map(|(name, _)| name).collect();
    let status = if problem_shown.is_some() { 422 } else { 200 };
    Ok(Page::html(
        status,
        silences_html::page(
            chrome,
            &listed,
            &names,
            &keys.csrf(session, "silence"),
            |id| keys.csrf(session, &format!("end-silence:{id}")),
            now_ms,
            problem_shown,
        ),
    ))
}

/// `POST /dashboard/silences`: the form as the API's body, made and kept
/// the same way (`POST /v1/silences`), or the page again with the problem.
async fn create_silence(
    env: &Env,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    fields: &[(String, String)],
    now_ms: u64,
) -> worker::Result<Page> {
    let minutes: u64 = field(fields, "minutes")
        .and_then(|m| m.parse().ok())
        .filter(|m| silences_html::DURATIONS.iter().any(|(d, _)| d == m))
        .unwrap_or(60);
    let body = json!({
        "route": field(fields, "route").unwrap_or(""),
        "matcher": field(fields, "matcher").unwrap_or(""),
        "ends_at": now_ms / 1000 + minutes * 60,
        "comment": field(fields, "comment").unwrap_or(""),
    });
    match silences::make(env, body.to_string().as_bytes(), now_ms).await {
        Ok(Ok(_)) => {
            console_log!("{}", json!({ "dashboard": "silence made" }));
            Ok(Page::redirect(303, "/dashboard/silences"))
        }
        Ok(Err((_, error))) => {
            let shown = format!(
                "Not silenced: `{}` {}",
                error["field"].as_str().unwrap_or("body"),
                error["message"].as_str().unwrap_or("is refused")
            );
            silences_page(env, keys, session, chrome, now_ms, Some(&shown)).await
        }
        Err(e) => Ok(failed(chrome, &e)),
    }
}

fn to_worker(e: RelayError) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// The page for a Worker error: its status, and its message (which names
/// what is wrong, never a secret).
fn failed(chrome: Chrome<'_>, error: &RelayError) -> Page {
    let title = match error.status() {
        404 => "Not found",
        400..=499 => "Not accepted",
        _ => "The Worker failed",
    };
    Page::html(
        error.status(),
        problem(Some(chrome), title, &error.to_string()),
    )
}

/// The event id of a dashboard path segment.
fn dashboard_event_id(segment: &str) -> Option<EventId> {
    event_id(segment).and_then(|id| EventId::parse(&id).ok())
}

/// `GET /dashboard/events/{id}`.
async fn event(
    env: &Env,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    segment: &str,
    now_ms: u64,
    flash: Option<Flash>,
) -> worker::Result<Page> {
    let Some(id) = dashboard_event_id(segment) else {
        return Ok(Page::html(
            404,
            problem(Some(chrome), "Not found", "That is not an event id."),
        ));
    };
    Ok(match operator::event_detail(env, &id).await {
        Ok(Some(EventView::Sent(detail))) => {
            let csrf = keys.csrf(session, &format!("retry:{id}"));
            with_flash(
                Page::html(200, html::event_page(chrome, &detail, &csrf, now_ms, flash)),
                flash,
            )
        }
        Ok(Some(EventView::Held(held))) => Page::html(200, html::held_page(chrome, &held)),
        Ok(None) => Page::html(
            404,
            problem(Some(chrome), "Not found", "There is no such event."),
        ),
        Err(e) => failed(chrome, &e),
    })
}

/// `POST /dashboard/events/{id}/retry`: checks the CSRF token, has the
/// event's record replay its failures, and sends the browser back to the
/// event with a flash.
async fn retry(
    fields: &[(String, String)],
    env: &Env,
    keys: &Keys,
    session: &Session,
    chrome: Chrome<'_>,
    segment: &str,
) -> worker::Result<Page> {
    let Some(id) = dashboard_event_id(segment) else {
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
    let all = field(fields, "scope") == Some("all");
    let replayed = async { EventClient::new(env, id.as_str())?.replay(all).await };
    let flash = match replayed.await {
        Ok(Some(replay)) if replay.receivers > 0 => Flash::Retried(replay.receivers as u64),
        Ok(Some(_)) => Flash::NothingToRetry,
        Ok(None) => Flash::RetryRefused(404),
        Err(e) => {
            console_log!(
                "{}",
                json!({ "dashboard": "retry", "error": e.to_string() })
            );
            Flash::RetryRefused(500)
        }
    };
    console_log!(
        "{}",
        json!({ "dashboard": "retry", "event_id": id.as_str(), "flash": flash.encode() })
    );
    Ok(Page::redirect(303, event_path(id.as_str()))
        .with_header("Set-Cookie", flash_cookie(&flash.encode(), 60)))
}

/// `GET /metrics`: a bearer of `STATUS_TOKEN`, counted against the client.
async fn metrics(req: &Request, env: &Env, token: Option<&str>) -> worker::Result<Page> {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return Ok(not_allowed("GET"));
    }
    let Some(token) = token else {
        return Ok(Page::text(
            503,
            "STATUS_TOKEN is not set: /metrics is off\n",
        ));
    };
    let refused = || {
        Page::text(401, "/metrics needs Authorization: Bearer <STATUS_TOKEN>\n")
            .with_header("WWW-Authenticate", "Bearer realm=\"yunxin-edge\"".into())
    };
    let Some(bearer) = guard::bearer(req) else {
        return Ok(refused());
    };
    match guard::check_token(env, req, token, &bearer).await? {
        TokenCheck::Right => {}
        TokenCheck::Wrong => return Ok(refused()),
        TokenCheck::Limited { retry_after_secs } => {
            return Ok(too_many(
                retry_after_secs,
                String::from("too many wrong tokens from here\n"),
            )
            .with_content_type(web::TEXT));
        }
    }
    let stats = stats(env).await;
    Ok(match stats {
        Ok(stats) => Page {
            content_type: web::PROMETHEUS,
            ..Page::text(200, metrics::render(&stats))
        },
        Err(e) => Page::text(e.status(), format!("{e}\n")),
    })
}
