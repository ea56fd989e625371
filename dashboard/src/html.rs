//! The dashboard's pages, server-rendered: they work without JavaScript
//! (there is none: the Content-Security-Policy forbids it), with real
//! links, buttons and labels, visible focus, and nothing loaded from
//! another origin. Every value from an event or the request goes through
//! [`E`] on its way into the HTML.

use std::fmt::{self, Display, Write};

use crate::web::{age, clock_ms, duration, encode, thousands, utc};
use yunxin_edge::DeliveryState;
use yunxin_edge_index::{AttemptRow, EventDetail, EventStatus, HeldEvent, Listed, Page, Receivers};
use yunxin_edge_routes::storm::Disposition;

/// Writes into a `String` (which cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}
pub(crate) use w;

/// Text escaped for HTML content and quoted attribute values.
pub struct E<'a>(pub &'a str);

impl Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Rows of a receiver list shown on the event page; the JSON API has them
/// all.
pub const MAX_ROWS: usize = 500;

/// The pages' one style sheet, inline.
const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#57606a;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;--accent:#0a58ca;
--ok:#116329;--ok-bg:#dafbe1;--ok-line:#8fd3a0;--bad:#a40e26;--bad-bg:#ffebe9;--bad-line:#f5a8a8;
--warn:#7d4e00;--warn-bg:#fff8c5;--warn-line:#e3c44c;--info:#0a4fa8;--info-bg:#ddf4ff;--info-line:#9cd1fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1f2937;color:#fff}
.bar{max-width:1240px;margin:0 auto;padding:.55rem 1.25rem;display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap}
.brand{font-weight:700;color:#fff;text-decoration:none;letter-spacing:.01em}
nav ul{list-style:none;margin:0;padding:0;display:flex;gap:.25rem}
nav a{color:#e5e7eb;text-decoration:none;padding:.35rem .75rem;border-radius:6px;display:inline-block}
nav a:hover{background:rgba(255,255,255,.12);color:#fff}
nav a[aria-current=page]{background:rgba(255,255,255,.18);color:#fff;font-weight:600}
header form{margin:0 0 0 auto}
header button{background:transparent;color:#fff;border-color:rgba(255,255,255,.45)}
header button:hover{background:rgba(255,255,255,.12)}
main{max-width:1240px;margin:0 auto;padding:1.25rem 1.25rem 3rem}
h1{font-size:1.55rem;margin:.2rem 0 1rem;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:2rem 0 .6rem}
h3{font-size:1rem;margin:1.4rem 0 .5rem}
a{color:var(--accent)}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.skip{position:absolute;left:-9999px;top:.5rem;background:#fff;color:var(--accent);padding:.5rem .75rem;z-index:2}
.skip:focus{left:.5rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);font-size:.85rem;padding:0 0 .35rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
thead th{background:var(--panel);font-size:.8rem;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
tbody tr:hover{background:#fafbfc}
.num{text-align:right}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.86em;overflow-wrap:anywhere}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600;white-space:nowrap;border:1px solid}
.ok{color:var(--ok);background:var(--ok-bg);border-color:var(--ok-line)}
.bad{color:var(--bad);background:var(--bad-bg);border-color:var(--bad-line)}
.warn{color:var(--warn);background:var(--warn-bg);border-color:var(--warn-line)}
.info{color:var(--info);background:var(--info-bg);border-color:var(--info-line)}
.plain{color:var(--muted);background:var(--panel);border-color:var(--line)}
button,.button{font:inherit;font-weight:600;padding:.45rem .95rem;border-radius:6px;border:1px solid var(--line);background:var(--panel);color:var(--fg);cursor:pointer;text-decoration:none;display:inline-block}
button:hover,.button:hover{filter:brightness(.96)}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button:disabled{opacity:.55;cursor:not-allowed}
input,select{font:inherit;padding:.4rem .55rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--fg)}
label{font-weight:600;font-size:.88rem;display:block;margin-bottom:.2rem}
.filters{display:flex;gap:1rem;align-items:flex-start;flex-wrap:wrap;background:var(--panel);border:1px solid var(--line);padding:.8rem 1rem;border-radius:8px;margin:0 0 1rem}
.hint{color:var(--muted);font-size:.85rem;margin:.2rem 0 0}
.filters .actions{padding-top:1.55rem;display:flex;gap:.5rem}
.flash{padding:.7rem 1rem;border-radius:8px;margin:0 0 1rem;border:1px solid}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:.75rem;margin:0 0 1rem}
.facts div{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:.55rem .8rem}
.facts dt{font-size:.78rem;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.facts dd{margin:0;font-size:1.05rem;font-weight:600;overflow-wrap:anywhere}
.facts .badge{white-space:normal}
.facts small{display:block;font-size:.8rem;font-weight:400;color:var(--muted)}
.callout.note{border-left-color:var(--warn-line);background:var(--warn-bg)}
.stack{display:flex;height:.55rem;width:9rem;border-radius:4px;overflow:hidden;background:#eaeef2;margin-top:.3rem}
.stack span{display:block;height:100%}
.s-ok{background:#2da44e}.s-bad{background:#cf222e}.s-warn{background:#d4a72c}.s-info{background:#54aeff}
.counts{display:flex;gap:.35rem;flex-wrap:wrap;align-items:center}
.pager{display:flex;gap:.75rem;margin-top:1rem;align-items:center}
.ids{display:flex;flex-wrap:wrap;gap:.3rem;list-style:none;padding:0;margin:0}
.ids li{background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:0 .4rem;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
.callout{border-left:4px solid var(--bad);background:var(--bad-bg);padding:.7rem 1rem;border-radius:0 8px 8px 0;margin:1rem 0}
.callout p{margin:.2rem 0}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:.9rem 1rem;margin:1rem 0}
.panel form{display:flex;gap:.6rem;flex-wrap:wrap;margin:.6rem 0 0}
.login{max-width:400px;margin:9vh auto;background:var(--panel);padding:1.6rem;border-radius:12px;border:1px solid var(--line)}
.login input{width:100%;margin-bottom:1rem}
.crumbs{margin:0 0 .4rem;font-size:.9rem}
.chart{max-width:900px;border:1px solid var(--line);border-radius:8px;padding:.5rem;background:#fff}
.chart svg{width:100%;height:auto;display:block}
.legend{display:flex;gap:1.25rem;flex-wrap:wrap;font-size:.88rem;margin:.5rem 0 0;padding:0;list-style:none}
.key{display:inline-block;width:.9rem;height:.9rem;border-radius:2px;vertical-align:-2px;margin-right:.35rem}
details{margin:1rem 0}
summary{cursor:pointer;color:var(--accent);font-weight:600}
"#;

/// Which part of the dashboard a page belongs to (its nav entry is marked
/// current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The event list and event pages.
    Events,
    /// The quota chart.
    Quota,
    /// The silences.
    Silences,
    /// Neither.
    Other,
}

/// The frame around a signed-in page: its section and the sign-out
/// form's CSRF token. `None` for the sign-in page.
#[derive(Debug, Clone, Copy)]
pub struct Chrome<'a> {
    /// The nav entry to mark current.
    pub section: Section,
    /// The sign-out form's CSRF token.
    pub logout_csrf: &'a str,
}

/// A whole page around `main`.
pub fn layout(title: &str, chrome: Option<Chrome<'_>>, main: &str) -> String {
    let mut out = String::with_capacity(CSS.len() + main.len() + 1024);
    w!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · yunxin-edge</title><style>{CSS}</style></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a><header><div class=\"bar\">\
         <a class=\"brand\" href=\"/dashboard\">yunxin-edge</a>",
        E(title)
    );
    if let Some(chrome) = chrome {
        let current = |section| {
            if chrome.section == section {
                " aria-current=\"page\""
            } else {
                ""
            }
        };
        w!(
            out,
            "<nav aria-label=\"Dashboard\"><ul>\
             <li><a href=\"/dashboard\"{}>Events</a></li>\
             <li><a href=\"/dashboard/quota\"{}>Quota</a></li>\
             <li><a href=\"/dashboard/silences\"{}>Silences</a></li></ul></nav>\
             <form method=\"post\" action=\"/dashboard/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button> \
             <button type=\"submit\" name=\"scope\" value=\"everywhere\" title=\"Signs out every browser signed in with the status token\">End all sessions</button></form>",
            current(Section::Events),
            current(Section::Quota),
            current(Section::Silences),
            E(chrome.logout_csrf)
        );
    }
    w!(
        out,
        "</div></header><main id=\"main\">{main}</main></body></html>"
    );
    out
}

/// The sign-in form; `error` after a wrong token.
pub fn login(next: &str, error: Option<&str>) -> String {
    let mut main = String::from("<div class=\"login\"><h1>Sign in</h1>");
    if let Some(error) = error {
        w!(
            main,
            "<p class=\"flash bad\" role=\"alert\">{}</p>",
            E(error)
        );
    }
    w!(
        main,
        "<p>Operations dashboard of the yunxin-edge relay. Sign in with the relay's \
         <code>STATUS_TOKEN</code>.</p>\
         <form method=\"post\" action=\"/dashboard/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">Status token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button class=\"primary\" type=\"submit\">Sign in</button></form></div>",
        E(next)
    );
    layout("Sign in", None, &main)
}

/// A page that says what went wrong.
pub fn problem(chrome: Option<Chrome<'_>>, title: &str, message: &str) -> String {
    let main = format!(
        "<h1>{}</h1><p class=\"callout\">{}</p><p><a href=\"/dashboard\">Back to the events</a></p>",
        E(title),
        E(message)
    );
    layout(title, chrome, &main)
}

/// A message shown once after a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// A retry sent this many receivers again.
    Retried(u64),
    /// A retry found nothing to send again.
    NothingToRetry,
    /// The relay refused a retry with this HTTP status.
    RetryRefused(u16),
}

impl Flash {
    /// The flash cookie's value.
    pub fn encode(self) -> String {
        match self {
            Flash::Retried(n) => format!("retried-{n}"),
            Flash::NothingToRetry => "nothing".into(),
            Flash::RetryRefused(status) => format!("refused-{status}"),
        }
    }

    /// A flash cookie's value; anything else is no flash (the text shown is
    /// always the dashboard's own).
    pub fn decode(value: &str) -> Option<Flash> {
        match value.split_once('-') {
            None if value == "nothing" => Some(Flash::NothingToRetry),
            Some(("retried", n)) => n.parse().ok().map(Flash::Retried),
            Some(("refused", status)) => status.parse().ok().map(Flash::RetryRefused),
            _ => None,
        }
    }

    fn render(self, out: &mut String) {
        match self {
            Flash::Retried(n) => w!(
                out,
                "<p class=\"flash ok\" role=\"status\">{} sent again. Their results appear \
                 below as the relay gets them: <a href=\"\">reload</a> to follow.</p>",
                receivers(n)
            ),
            Flash::NothingToRetry => out.push_str(
                "<p class=\"flash info\" role=\"status\">Nothing was sent again: no failed \
                 receiver qualifies. Delivered receivers are never sent twice.</p>",
            ),
            Flash::RetryRefused(status) => w!(
                out,
                "<p class=\"flash bad\" role=\"alert\">The relay refused the retry (HTTP {status}).</p>"
            ),
        }
    }
}

fn receivers(n: u64) -> String {
    if n == 1 {
        "1 receiver".into()
    } else {
        format!("{} receivers", thousands(n))
    }
}

/// A state's badge: text always, colour as a second cue.
fn state_badge(state: DeliveryState) -> String {
    let (class, text) = match state {
        DeliveryState::Delivered => ("ok", "Delivered"),
        DeliveryState::CompletedWithFailures => ("bad", "Completed with failures"),
        DeliveryState::Pending => ("info", "Pending"),
        _ => ("plain", "Other"),
    };
    format!("<span class=\"badge {class}\">{text}</span>")
}

fn route_cell(route: Option<&str>) -> String {
    match route {
        Some(route) => format!("<code>{}</code>", E(route)),
        None => "<span class=\"muted\">/v1/notifications</span>".into(),
    }
}

/// The event page's path for `id`.
pub fn event_path(id: &str) -> String {
    format!("/dashboard/events/{}", encode(id))
}

/// `<time>` of a UNIX ms time, showing `shown`, with the full UTC time on hover.
fn time_tag(ms: u64, shown: &str) -> String {
    let (full, iso) = utc(ms);
    format!(
        "<time datetime=\"{iso}\" title=\"{full} UTC\">{}</time>",
        E(shown)
    )
}

/// Receiver counts: a bar (decoration) and the numbers in words.
fn counts_cell(counts: &Receivers) -> String {
    let mut out = format!(
        "<span>{} of {} delivered</span>",
        thousands(counts.delivered as u64),
        thousands(counts.total as u64)
    );
    for (n, class, word) in [
        (counts.failed, "bad", "failed"),
        (counts.unknown, "warn", "unknown"),
        (counts.pending, "info", "pending"),
    ] {
        if n > 0 {
            w!(
                out,
                " <span class=\"badge {class}\">{} {word}</span>",
                thousands(n as u64)
            );
        }
    }
    if counts.total > 0 {
        out.push_str("<span class=\"stack\" aria-hidden=\"true\">");
        for (n, class) in [
            (counts.delivered, "s-ok"),
            (counts.failed, "s-bad"),
            (counts.unknown, "s-warn"),
            (counts.pending, "s-info"),
        ] {
            if n > 0 {
                let width = crate::web::Fixed(n as f64 * 100.0 / counts.total as f64, 2);
                w!(
                    out,
                    "<span class=\"{class}\" style=\"width:{width}%\"></span>"
                );
            }
        }
        out.push_str("</span>");
    }
    out
}

/// The list's filters, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `state`, empty for any.
    pub state: String,
    /// `route`, empty for any; `-` for `/v1/notifications`.
    pub route: String,
    /// The page's `cursor`, empty for the first.
    pub cursor: String,
}

impl Filters {
    /// The filters of a query string's fields.
    pub fn from_query(fields: &[(String, String)]) -> Filters {
        let get = |name| {
            crate::web::field(fields, name)
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        Filters {
            state: get("state"),
            route: get("route"),
            cursor: get("cursor"),
        }
    }

    /// The query string (with `?`, or empty) of these filters on page `cursor`.
    pub fn query(&self, cursor: &str) -> String {
        let parts: Vec<String> = [
            ("state", self.state.as_str()),
            ("route", self.route.as_str()),
            ("cursor", cursor),
        ]
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// The states an event can be in, as the filter offers them.
const STATES: [(&str, &str); 3] = [
    ("pending", "Pending"),
    ("delivered", "Delivered"),
    ("completed_with_failures", "Completed with failures"),
];

/// `/dashboard`: the recent events.
pub fn event_list(
    chrome: Chrome<'_>,
    filters: &Filters,
    list: &Page,
    now_ms: u64,
    flash: Option<Flash>,
) -> String {
    let mut main = String::from("<h1>Events</h1>");
    if let Some(flash) = flash {
        flash.render(&mut main);
    }
    main.push_str(
        "<form class=\"filters\" method=\"get\" action=\"/dashboard\" role=\"search\" aria-label=\"Filter events\">\
         <div><label for=\"state\">State</label><select id=\"state\" name=\"state\"><option value=\"\">Any state</option>",
    );
    for (value, text) in STATES {
        let selected = if filters.state == value {
            " selected"
        } else {
            ""
        };
        w!(main, "<option value=\"{value}\"{selected}>{text}</option>");
    }
    w!(
        main,
        "</select></div><div><label for=\"route\">Route</label>\
         <input id=\"route\" name=\"route\" value=\"{}\" list=\"routes\" size=\"22\" aria-describedby=\"route-hint\">\
         <p class=\"hint\" id=\"route-hint\">A webhook route, or <code>-</code> for /v1/notifications</p></div>\
         <datalist id=\"routes\"><option value=\"-\">",
        E(&filters.route)
    );
    let mut routes: Vec<&str> = list
        .events
        .iter()
        .filter_map(|e| e.route.as_deref())
        .collect();
    routes.sort_unstable();
    routes.dedup();
    for route in routes {
        w!(main, "<option value=\"{}\">", E(route));
    }
    main.push_str(
        "</datalist><div class=\"actions\"><button class=\"primary\" type=\"submit\">Filter</button>",
    );
    if !filters.state.is_empty() || !filters.route.is_empty() {
        main.push_str("<a class=\"button\" href=\"/dashboard\">Clear</a>");
    }
    main.push_str("</div></form>");

    if list.events.is_empty() {
        let text = if filters == &Filters::default() {
            "No events yet. Events appear here as the relay accepts them."
        } else {
            "No events match these filters."
        };
        w!(main, "<p class=\"panel\">{text}</p>");
    } else {
        main.push_str(
            "<div class=\"wrap\"><table><caption>Newest first</caption><thead><tr>\
             <th scope=\"col\">Event</th><th scope=\"col\">Route</th><th scope=\"col\">State</th>\
             <th scope=\"col\">Receivers</th><th scope=\"col\" class=\"num\">Calls</th>\
             <th scope=\"col\">Received</th></tr></thead><tbody>",
        );
        for event in &list.events {
            event_row(&mut main, event, now_ms);
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
    if !filters.cursor.is_empty() {
        w!(
            main,
            "<a class=\"button\" href=\"/dashboard{}\">First page</a>",
            E(&filters.query(""))
        );
    }
    if let Some(cursor) = list.next_cursor.as_deref().filter(|c| !c.is_empty()) {
        w!(
            main,
            "<a class=\"button\" href=\"/dashboard{}\" rel=\"next\">Older events →</a>",
            E(&filters.query(cursor))
        );
    }
    main.push_str("</nav>");
    layout("Events", Some(chrome), &main)
}

fn event_row(out: &mut String, event: &Listed, now_ms: u64) {
    w!(
        out,
        "<tr><td><a href=\"{}\"><code>{}</code></a></td><td>{}</td><td>{}</td>\
         <td><div class=\"counts\">{}</div></td><td class=\"num\">{}</td><td>{}</td></tr>",
        E(&event_path(&event.event_id)),
        E(&event.event_id),
        route_cell(event.route.as_deref()),
        state_badge(event.state),
        counts_cell(&event.receivers),
        thousands(event.requests as u64),
        time_tag(event.created_at_ms, &age(event.created_at_ms, now_ms)),
    );
}

/// What a route's storm settings did to a sent event: the receivers its
/// throttle held back, or the events a digest carries.
fn storm_facts(out: &mut String, detail: &EventDetail) {
    if let Some(Disposition::Throttled { throttled, .. }) = &detail.disposition {
        w!(
            out,
            "<h2 id=\"throttled\">Throttled ({})</h2><p>Not sent: over the route's throttle.</p>\
             <div class=\"wrap\"><table aria-labelledby=\"throttled\"><thead><tr>\
             <th scope=\"col\">Receiver</th><th scope=\"col\">Throttle opens</th></tr></thead><tbody>",
            thousands(throttled.len() as u64)
        );
        for held in throttled.iter().take(MAX_ROWS) {
            w!(
                out,
                "<tr><td><code>{}</code></td><td>{} UTC</td></tr>",
                E(held.account_id.as_str()),
                time_tag(held.opens_at_ms, &utc(held.opens_at_ms).0)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    if !detail.digest_of.is_empty() {
        w!(
            out,
            "<h2 id=\"digest\">A digest of {} events</h2><ul class=\"ids\" aria-labelledby=\"digest\">",
            thousands(detail.digest_of.len() as u64)
        );
        for id in detail.digest_of.iter().take(MAX_ROWS) {
            w!(
                out,
                "<li><a href=\"{}\">{}</a></li>",
                E(&event_path(id)),
                E(id)
            );
        }
        out.push_str("</ul>");
    }
}

/// In words, what a route's storm settings made of an event.
pub fn disposition_text(disposition: &Disposition) -> String {
    match disposition {
        Disposition::Send => "sent".into(),
        Disposition::Silenced { silence_id, .. } => {
            format!("silenced by silence {}", silence_id.as_str())
        }
        Disposition::Deferred {
            until_ms,
            quiet_hours,
        } => format!(
            "deferred by quiet hours {quiet_hours} until {} UTC",
            utc(*until_ms).0
        ),
        Disposition::Dropped { quiet_hours } => format!("dropped by quiet hours {quiet_hours}"),
        Disposition::Digested(digested) => format!(
            "collected into digest {}, sent by {} UTC",
            digested.digest_id.as_str(),
            utc(digested.closes_at_ms).0
        ),
        Disposition::Throttled { throttled, .. } => {
            format!("{} receivers over the route's throttle", throttled.len())
        }
        _ => disposition.name().into(),
    }
}

/// `/dashboard/events/{id}` of an event the route held: what became of it.
pub fn held_page(chrome: Chrome<'_>, held: &HeldEvent) -> String {
    let id = &held.event_id;
    let mut main = format!(
        "<p class=\"crumbs\"><a href=\"/dashboard\">Events</a> <span aria-hidden=\"true\">›</span> \
         <span class=\"mono\">{}</span></p><h1>Event <code>{}</code></h1>\
         <dl class=\"facts\"><div><dt>State</dt><dd><span class=\"badge plain\">Held</span></dd></div>\
         <div><dt>Route</dt><dd>{}</dd></div></dl>\
         <p class=\"callout note\">Accepted, and nothing was sent for it: {}.</p>",
        E(id),
        E(id),
        route_cell(Some(&held.route)),
        E(&disposition_text(&held.disposition))
    );
    if let Some(url) = &held.digest_status_url
        && let Disposition::Digested(digested) = &held.disposition
    {
        w!(
            main,
            "<p><a class=\"button\" href=\"{}\">Its digest</a> <span class=\"muted\">{}</span></p>",
            E(&event_path(digested.digest_id.as_str())),
            E(url)
        );
    }
    layout(&format!("Event {id}"), Some(chrome), &main)
}

/// `/dashboard/events/{id}`: each receiver's outcome, the attempts, the
/// last error, and the retry form (with `retry_csrf`, its CSRF token).
pub fn event_page(
    chrome: Chrome<'_>,
    detail: &EventDetail,
    retry_csrf: &str,
    now_ms: u64,
    flash: Option<Flash>,
) -> String {
    let event = &detail.event;
    let status = &event.status;
    let id = &event.event_id;
    let mut main = format!(
        "<p class=\"crumbs\"><a href=\"/dashboard\">Events</a> <span aria-hidden=\"true\">›</span> \
         <span class=\"mono\">{}</span></p><h1>Event <code>{}</code></h1>",
        E(id),
        E(id)
    );
    if let Some(flash) = flash {
        flash.render(&mut main);
    }
    let total = status.delivered.len()
        + status.failed.len()
        + status.unknown.len()
        + status.pending.len()
        + status.not_attempted.len();
    w!(
        main,
        "<dl class=\"facts\"><div><dt>State</dt><dd>{}</dd></div>\
         <div><dt>Route</dt><dd>{}</dd></div>",
        state_badge(status.state),
        route_cell(detail.route.as_deref())
    );
    let created = event.created_at_ms;
    let (full, _) = utc(created);
    w!(
        main,
        "<div><dt>Received</dt><dd>{} UTC<small>{} · {}</small></dd></div>",
        time_tag(created, &full[11..]),
        &full[..10],
        age(created, now_ms)
    );
    w!(
        main,
        "<div><dt>Receivers</dt><dd>{}</dd></div><div><dt>Calls</dt><dd>{}</dd></div>\
         <div><dt>Attempts</dt><dd>{}</dd></div></dl>",
        thousands(total as u64),
        thousands(event.requests as u64),
        thousands(detail.attempts.len() as u64)
    );
    let counts = Receivers {
        total,
        delivered: status.delivered.len(),
        failed: status.failed.len(),
        unknown: status.unknown.len(),
        pending: status.pending.len(),
    };
    w!(main, "<div class=\"counts\">{}</div>", counts_cell(&counts));
    if status.state == DeliveryState::Pending {
        w!(
            main,
            "<p><a class=\"button\" href=\"{}\">Reload</a> <span class=\"muted\">The event is \
             still being delivered.</span></p>",
            E(&event_path(id))
        );
    }
    last_error(&mut main, detail);
    retry_panel(&mut main, event, retry_csrf);
    if !event.dead_lettered_requests.is_empty() {
        let calls: Vec<String> = event
            .dead_lettered_requests
            .iter()
            .map(usize::to_string)
            .collect();
        let (noun, verb) = if calls.len() == 1 {
            ("Call", "was")
        } else {
            ("Calls", "were")
        };
        w!(
            main,
            "<p class=\"callout note\">{noun} {} {verb} moved to the dead-letter queue: the relay \
             gave up on {}. Their receivers show as failed or unknown below; a retry sends the \
             failed ones again.</p>",
            calls.join(", "),
            if calls.len() == 1 { "it" } else { "them" }
        );
    }
    storm_facts(&mut main, detail);
    attempts(&mut main, detail);
    receivers_section(&mut main, event);
    layout(&format!("Event {id}"), Some(chrome), &main)
}

/// The most recent error: the last attempt that had one, or a pending
/// receiver's.
fn last_error(out: &mut String, detail: &EventDetail) {
    if let Some(attempt) = detail.attempts.iter().rev().find(|a| a.error.is_some()) {
        w!(
            out,
            "<div class=\"callout\" role=\"note\" aria-label=\"Last error\"><p><strong>Last error</strong> \
             · {} UTC · call {} attempt {} · trace <code>{}</code></p><p><code>{}</code></p></div>",
            time_tag(attempt.started_at_ms, &clock_ms(attempt.started_at_ms)),
            attempt.call,
            attempt.attempt,
            E(&attempt.trace_id),
            E(attempt.error.as_deref().unwrap_or_default())
        );
    } else if let Some((who, error)) = detail
        .event
        .status
        .pending
        .iter()
        .find_map(|p| Some((&p.account_id, p.last_error.as_deref()?)))
    {
        w!(
            out,
            "<div class=\"callout\" role=\"note\" aria-label=\"Last error\"><p><strong>Last error</strong> \
             (receiver <code>{}</code>)</p><p><code>{}</code></p></div>",
            E(who.as_str()),
            E(error)
        );
    }
}

fn retry_panel(out: &mut String, event: &EventStatus, csrf: &str) {
    let failures = &event.status.failed;
    if failures.is_empty() {
        return;
    }
    let retryable = failures.iter().filter(|f| f.retryable).count() as u64;
    let failed = failures.len() as u64;
    w!(
        out,
        "<section class=\"panel\" aria-labelledby=\"retry-title\"><h2 id=\"retry-title\" style=\"margin-top:0\">Retry</h2>\
         <p id=\"retry-hint\">{} failed: {} for a retryable reason (Yunxin asked to try \
         again), {} for good (such as an unknown account). Delivered receivers are never \
         sent again.</p><form method=\"post\" action=\"{}/retry\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button class=\"primary\" type=\"submit\" name=\"scope\" value=\"retryable\" aria-describedby=\"retry-hint\"{}>\
         Retry failed receivers ({})</button>\
         <button type=\"submit\" name=\"scope\" value=\"all\" aria-describedby=\"retry-hint\">Retry all failed ({})</button>\
         </form></section>",
        receivers(failed),
        thousands(retryable),
        thousands(failed - retryable),
        E(&event_path(&event.event_id)),
        E(csrf),
        if retryable == 0 { " disabled" } else { "" },
        thousands(retryable),
        thousands(failed),
    );
}

fn outcome_badge(outcome: &str) -> String {
    let class = match outcome {
        "delivered" => "ok",
        "partial" | "rate_limited" => "warn",
        "failed" | "transport" => "bad",
        "answer_lost" => "warn",
        _ => "plain",
    };
    format!(
        "<span class=\"badge {class}\">{}</span>",
        E(&outcome.replace('_', " "))
    )
}

fn attempts(out: &mut String, detail: &EventDetail) {
    w!(
        out,
        "<h2 id=\"attempts\">Attempts ({})</h2>",
        detail.attempts.len()
    );
    if detail.attempts.is_empty() {
        out.push_str("<p class=\"muted\">No attempt yet.</p>");
        return;
    }
    let start = detail.event.created_at_ms;
    out.push_str(
        "<div class=\"wrap\"><table aria-labelledby=\"attempts\"><caption>In the order made; times in UTC, \
         offsets from the event's arrival</caption><thead><tr>\
         <th scope=\"col\">Time</th><th scope=\"col\">Call · attempt</th><th scope=\"col\">Trace id</th>\
         <th scope=\"col\">Endpoint</th><th scope=\"col\" class=\"num\">HTTP</th>\
         <th scope=\"col\" class=\"num\">Yunxin code</th><th scope=\"col\" class=\"num\">Latency</th>\
         <th scope=\"col\">Outcome</th><th scope=\"col\">Error</th></tr></thead><tbody>",
    );
    for attempt in &detail.attempts {
        attempt_row(out, attempt, start);
    }
    out.push_str("</tbody></table></div>");
}

fn attempt_row(out: &mut String, attempt: &AttemptRow, start: u64) {
    let offset = attempt.started_at_ms.saturating_sub(start);
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "—".into());
    w!(
        out,
        "<tr><td>{} <span class=\"muted\">+{}</span></td><td>{} · {}</td><td><code>{}</code></td>\
         <td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td>{}</td><td>{}</td></tr>",
        time_tag(attempt.started_at_ms, &clock_ms(attempt.started_at_ms)),
        duration(offset),
        attempt.call,
        attempt.attempt,
        E(&attempt.trace_id),
        E(&attempt.endpoint),
        or_dash(attempt.http_status.map(|s| s.to_string())),
        or_dash(attempt.code.map(|c| c.to_string())),
        duration(attempt.latency_ms),
        outcome_badge(&attempt.outcome),
        attempt
            .error
            .as_deref()
            .map_or_else(String::new, |e| format!("<code>{}</code>", E(e))),
    );
}

/// Rows cut at [`MAX_ROWS`], with a note naming where the rest is.
fn more(out: &mut String, shown: usize, total: usize, event_id: &str) {
    if total > shown {
        w!(
            out,
            "<p class=\"muted\">And {} more: the full list is in <code>GET /v1/events/{}</code>.</p>",
            thousands((total - shown) as u64),
            E(&encode(event_id))
        );
    }
}

fn receivers_section(out: &mut String, event: &EventStatus) {
    out.push_str("<h2>Receivers</h2>");
    let id = &event.event_id;
    let event = &event.status;
    let head = |out: &mut String, anchor: &str, title: &str, n: usize| {
        w!(
            out,
            "<h3 id=\"{anchor}\">{title} ({})</h3>",
            thousands(n as u64)
        );
    };

    head(out, "failed", "Failed", event.failed.len());
    if !event.failed.is_empty() {
        out.push_str(
            "<div class=\"wrap\"><table aria-labelledby=\"failed\"><thead><tr><th scope=\"col\">Receiver</th>\
             <th scope=\"col\" class=\"num\">Code</th><th scope=\"col\">Message</th><th scope=\"col\">Retryable</th>\
             </tr></thead><tbody>",
        );
        for f in event.failed.iter().take(MAX_ROWS) {
            w!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                E(f.account_id.as_str()),
                f.error_code,
                E(&f.error_msg),
                if f.retryable {
                    "<span class=\"badge warn\">yes</span>"
                } else {
                    "<span class=\"badge plain\">no</span>"
                }
            );
        }
        out.push_str("</tbody></table></div>");
        more(out, MAX_ROWS, event.failed.len(), id);
    }

    if !event.unknown.is_empty() {
        head(out, "unknown", "Unknown", event.unknown.len());
        let rows = event
            .unknown
            .iter()
            .map(|u| (u.account_id.as_str(), u.reason.as_str()));
        reasoned_table(out, "unknown", rows, id);
    }

    if !event.pending.is_empty() {
        head(out, "pending", "Pending", event.pending.len());
        out.push_str(
            "<div class=\"wrap\"><table aria-labelledby=\"pending\"><thead><tr><th scope=\"col\">Receiver</th>\
             <th scope=\"col\" class=\"num\">Attempts</th><th scope=\"col\">Next attempt</th>\
             <th scope=\"col\">Last error</th></tr></thead><tbody>",
        );
        for p in event.pending.iter().take(MAX_ROWS) {
            w!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                E(p.account_id.as_str()),
                p.attempts,
                p.next_attempt_at_ms.map_or_else(
                    || "in flight".into(),
                    |at| format!("{} UTC", time_tag(at, &clock_ms(at)))
                ),
                p.last_error
                    .as_deref()
                    .map_or_else(String::new, |e| format!("<code>{}</code>", E(e)))
            );
        }
        out.push_str("</tbody></table></div>");
        more(out, MAX_ROWS, event.pending.len(), id);
    }

    head(out, "delivered", "Delivered", event.delivered.len());
    if !event.delivered.is_empty() {
        out.push_str("<ul class=\"ids\" aria-labelledby=\"delivered\">");
        for account in event.delivered.iter().take(MAX_ROWS) {
            w!(out, "<li>{}</li>", E(account.as_str()));
        }
        out.push_str("</ul>");
        more(out, MAX_ROWS, event.delivered.len(), id);
    }

    if !event.not_attempted.is_empty() {
        head(
            out,
            "not-attempted",
            "Not attempted",
            event.not_attempted.len(),
        );
        let rows = event
            .not_attempted
            .iter()
            .map(|n| (n.account_id.as_str(), n.reason.as_str()));
        reasoned_table(out, "not-attempted", rows, id);
    }
}

/// A table of receivers, each with the reason it is where it is.
fn reasoned_table<'a>(
    out: &mut String,
    label: &str,
    rows: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    id: &str,
) {
    let total = rows.len();
    w!(
        out,
        "<div class=\"wrap\"><table aria-labelledby=\"{label}\"><thead><tr><th scope=\"col\">Receiver</th>\
         <th scope=\"col\">Reason</th></tr></thead><tbody>"
    );
    for (account_id, reason) in rows.take(MAX_ROWS) {
        w!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            E(account_id),
            E(reason)
        );
    }
    out.push_str("</tbody></table></div>");
    more(out, MAX_ROWS, total, id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    const CHROME: Chrome<'static> = Chrome {
        section: Section::Events,
        logout_csrf: "tok\"en",
    };
    const NOW: u64 = 1_796_000_060_000;

    #[test]
    fn escaping_covers_the_five_characters() {
        assert_eq!(
            E("<a href=\"x\" title='y'>&</a>").to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(E("plain 中文").to_string(), "plain 中文");
    }

    /// No value from the relay reaches the page unescaped.
    fn assert_no_raw_markup(page: &str) {
        for raw in ["<b>", "tok\"en", "<html>"] {
            assert!(!page.contains(raw), "{raw} unescaped");
        }
    }

    #[test]
    fn the_list_shows_each_event_with_a_link_and_its_counts() {
        let list: Page = serde_json::from_str(samples::LIST).unwrap();
        let filters = Filters {
            state: "completed_with_failures".into(),
            route: String::new(),
            cursor: "c1".into(),
        };
        let page = event_list(CHROME, &filters, &list, NOW, None);
        assert_no_raw_markup(&page);
        assert!(page.contains("href=\"/dashboard/events/evt_%3Cb%3E1\""));
        assert!(page.contains("<code>evt_&lt;b&gt;1</code>"));
        assert!(page.contains("href=\"/dashboard/events/evt%202%2Fx\""));
        assert!(page.contains("7 of 10 delivered"));
        assert!(
            page.contains("2 failed") && page.contains("1 unknown") && page.contains("2 pending")
        );
        assert!(page.contains("Completed with failures</span>"));
        assert!(page.contains("<span class=\"muted\">/v1/notifications</span>"));
        assert!(page.contains("1 min ago"));
        assert!(page.contains("<option value=\"completed_with_failures\" selected>"));
        // Pagination keeps the filters; the next cursor is encoded.
        assert!(
            page.contains("href=\"/dashboard?state=completed_with_failures&amp;cursor=c%262\"")
        );
        assert!(page.contains("href=\"/dashboard?state=completed_with_failures\">First page"));
        assert!(page.contains("aria-current=\"page\">Events"));
        assert!(page.contains("name=\"csrf\" value=\"tok&quot;en\""));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn an_empty_list_says_so() {
        let page = event_list(CHROME, &Filters::default(), &Page::default(), NOW, None);
        assert!(page.contains("No events yet"));
        assert!(!page.contains("Older events"));
        let filtered = Filters {
            route: "x".into(),
            ..Filters::default()
        };
        let page = event_list(CHROME, &filtered, &Page::default(), NOW, None);
        assert!(page.contains("No events match"));
    }

    #[test]
    fn the_event_page_shows_outcomes_attempts_last_error_and_the_retry_form() {
        let event: EventDetail = serde_json::from_str(samples::DETAIL).unwrap();
        let page = event_page(CHROME, &event, "csrf-token", NOW, Some(Flash::Retried(2)));
        assert_no_raw_markup(&page);
        assert!(page.contains("2 receivers sent again"));
        // Outcomes.
        assert!(page.contains("<h3 id=\"failed\">Failed (2)</h3>"));
        assert!(page.contains(
            "<td><code>ghost1</code></td><td class=\"num\">102404</td><td>account not exist</td>"
        ));
        assert!(page.contains("<h3 id=\"delivered\">Delivered (2)</h3>"));
        assert!(page.contains("<h3 id=\"unknown\">Unknown (1)</h3>"));
        assert!(page.contains("<h3 id=\"pending\">Pending (1)</h3>"));
        assert!(page.contains("duplicate of user0"));
        // Attempts: time, trace id, endpoint, HTTP status, code, latency.
        assert!(page.contains("<h2 id=\"attempts\">Attempts (2)</h2>"));
        assert!(page.contains("<code>tr-1-1</code>"));
        assert!(page.contains("<code>http://127.0.0.1:1234</code>"));
        assert!(page.contains(
            "<td class=\"num\">502</td><td class=\"num\">—</td><td class=\"num\">30 s</td>"
        ));
        assert!(page.contains(
            "<td class=\"num\">200</td><td class=\"num\">200</td><td class=\"num\">12 ms</td>"
        ));
        // The last error is the last attempt's, escaped.
        assert!(page.contains("<strong>Last error</strong>"));
        assert!(page.contains("HTTP 502 &lt;html&gt;"));
        // Retry: one retryable, one for good; the CSRF token in the form.
        assert!(page.contains("action=\"/dashboard/events/evt_%3Cb%3E1/retry\""));
        assert!(page.contains("name=\"csrf\" value=\"csrf-token\""));
        assert!(page.contains("Retry failed receivers (1)"));
        assert!(page.contains("Retry all failed (2)"));
        assert!(page.contains("Call 1 was moved to the dead-letter queue"));
    }

    #[test]
    fn no_retry_form_without_failures_and_a_disabled_button_without_retryable_ones() {
        let mut event: EventDetail = serde_json::from_str(samples::DETAIL).unwrap();
        event.event.status.failed.retain(|f| !f.retryable);
        let page = event_page(CHROME, &event, "c", NOW, None);
        assert!(page.contains("value=\"retryable\" aria-describedby=\"retry-hint\" disabled>"));
        event.event.status.failed.clear();
        let page = event_page(CHROME, &event, "c", NOW, None);
        assert!(!page.contains("/retry\""));
    }

    #[test]
    fn long_receiver_lists_are_cut_with_a_pointer_to_the_api() {
        let mut event: EventDetail = serde_json::from_str(samples::DETAIL).unwrap();
        event.event.status.delivered = (0..MAX_ROWS + 7)
            .map(|i| format!("user{i}").into())
            .collect();
        let page = event_page(CHROME, &event, "c", NOW, None);
        assert!(page.contains("And 7 more"));
        assert!(page.contains(&format!("<li>user{}</li>", MAX_ROWS - 1)));
        assert!(!page.contains(&format!("<li>user{MAX_ROWS}</li>")));
    }

    #[test]
    fn flashes_round_trip_and_refuse_anything_else() {
        for flash in [
            Flash::Retried(3),
            Flash::NothingToRetry,
            Flash::RetryRefused(404),
        ] {
            assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        }
        for bad in ["", "retried-x", "<script>", "refused-", "other-1"] {
            assert_eq!(Flash::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_login_page_has_a_labelled_password_field_and_keeps_next() {
        let page = login("/dashboard/events/a\"b", Some("That is not the token."));
        assert!(page.contains("<label for=\"token\">Status token</label>"));
        assert!(page.contains("<input id=\"token\" name=\"token\" type=\"password\""));
        assert!(page.contains("name=\"next\" value=\"/dashboard/events/a&quot;b\""));
        assert!(page.contains("role=\"alert\">That is not the token."));
        assert!(!page.contains("Sign out"));
    }

    #[test]
    fn filters_round_trip_through_the_query() {
        let fields = crate::web::form(b"state=pending&route=git%20hub&cursor=");
        let filters = Filters::from_query(&fields);
        assert_eq!(filters.query(""), "?state=pending&route=git%20hub");
        assert_eq!(Filters::default().query(""), "");
    }
}
