//! `/dashboard/silences`: the routes' silences, a form to make one, and a
//! button to end each, every form with its CSRF token.

use std::fmt::Write;

use yunxin_edge_routes::storm::silence::Silence;

use crate::html::{Chrome, E, Section, layout, w};
use crate::web::{age, utc};

/// How long a silence made on the page lasts: the form's choices, minutes.
pub const DURATIONS: [(u64, &str); 5] = [
    (30, "30 minutes"),
    (60, "1 hour"),
    (240, "4 hours"),
    (1440, "1 day"),
    (10080, "1 week"),
];

/// The page: `silences` (newest first), a form over `routes` protected by
/// `create_csrf`, and an end button per silence with `end_csrf(id)`;
/// `problem` is the last form's refusal, shown above it.
pub fn page(
    chrome: Chrome<'_>,
    silences: &[Silence],
    routes: &[&str],
    create_csrf: &str,
    end_csrf: impl Fn(&str) -> String,
    now_ms: u64,
    problem: Option<&str>,
) -> String {
    let chrome = Chrome {
        section: Section::Silences,
        ..chrome
    };
    let mut main = String::from(
        "<h1>Silences</h1><p>An event of a route whose matcher is true while a silence lasts is \
         accepted and recorded as silenced: nothing is sent. A silence stops matching when it \
         ends, without a deploy.</p>",
    );
    if silences.is_empty() {
        main.push_str("<p class=\"panel\">No silence is active.</p>");
    } else {
        main.push_str(
            "<div class=\"wrap\"><table><caption>Active silences, newest first</caption><thead><tr>\
             <th scope=\"col\">Route</th><th scope=\"col\">Matcher</th><th scope=\"col\">Ends</th>\
             <th scope=\"col\">Comment</th><th scope=\"col\">Made</th><th scope=\"col\"><span class=\"muted\">Action</span></th>\
             </tr></thead><tbody>",
        );
        for silence in silences {
            let id = silence.id.as_str();
            w!(
                main,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{} UTC</td><td>{}</td><td>{}</td>\
                 <td><form method=\"post\" action=\"/dashboard/silences/{}/end\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" aria-label=\"End silence {}\">End now</button></form></td></tr>",
                E(&silence.route),
                E(&silence.matcher),
                E(&utc(silence.ends_at_ms).0),
                E(&silence.comment),
                E(&age(silence.created_at_ms, now_ms)),
                E(id),
                E(&end_csrf(id)),
                E(id),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str("<h2 id=\"new\">New silence</h2>");
    if let Some(problem) = problem {
        w!(
            main,
            "<p class=\"flash bad\" role=\"alert\">{}</p>",
            E(problem)
        );
    }
    w!(
        main,
        "<form class=\"panel\" method=\"post\" action=\"/dashboard/silences\" aria-labelledby=\"new\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label for=\"route\">Route</label><br><select id=\"route\" name=\"route\" required>",
        E(create_csrf)
    );
    for route in routes {
        w!(main, "<option value=\"{}\">{}</option>", E(route), E(route));
    }
    main.push_str(
        "</select></p><p><label for=\"matcher\">Matcher</label><br>\
         <input id=\"matcher\" name=\"matcher\" required size=\"60\" maxlength=\"1024\" \
         aria-describedby=\"matcher-hint\" placeholder=\"payload.alerts[0].labels.alertname == 'DiskFull'\">\
         <br><small id=\"matcher-hint\" class=\"muted\">An expression over the event, as a route's \
         <code>filter</code>: <code>payload</code>, <code>headers</code>, <code>route</code>. \
         <code>true</code> silences every event of the route.</small></p>\
         <p><label for=\"minutes\">For</label><br><select id=\"minutes\" name=\"minutes\">",
    );
    for (minutes, label) in DURATIONS {
        let selected = if minutes == 60 { " selected" } else { "" };
        w!(
            main,
            "<option value=\"{minutes}\"{selected}>{label}</option>"
        );
    }
    main.push_str(
        "</select></p><p><label for=\"comment\">Comment</label><br>\
         <input id=\"comment\" name=\"comment\" size=\"60\" maxlength=\"500\"></p>\
         <p><button class=\"primary\" type=\"submit\">Silence</button></p></form>",
    );
    layout("Silences", Some(chrome), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_are_listed_escaped_with_an_end_button_and_the_form_has_its_token() {
        let silence: Silence = serde_json::from_value(serde_json::json!({
            "id": "s1", "route": "alerts", "matcher": "payload.x == '<b>'",
            "ends_at_ms": 1_796_000_000_000u64, "comment": "deploy <now>", "created_at_ms": 1_795_999_000_000u64
        }))
        .unwrap();
        let chrome = Chrome {
            section: Section::Events,
            logout_csrf: "l",
        };
        let html = page(
            chrome,
            &[silence],
            &["alerts", "ci"],
            "create-token",
            |id| format!("end-{id}"),
            1_796_000_000_000 - 3_600_000,
            Some("`matcher` does not parse"),
        );
        assert!(html.contains("<code>payload.x == &#39;&lt;b&gt;&#39;</code>"));
        assert!(html.contains("deploy &lt;now&gt;"));
        assert!(html.contains("action=\"/dashboard/silences/s1/end\""));
        assert!(html.contains("name=\"csrf\" value=\"end-s1\""));
        assert!(html.contains("name=\"csrf\" value=\"create-token\""));
        assert!(html.contains("<option value=\"ci\">ci</option>"));
        assert!(html.contains("role=\"alert\">`matcher` does not parse"));
        assert!(html.contains("aria-current=\"page\">Silences"));
        assert!(!html.contains("<b>"));
    }
}
