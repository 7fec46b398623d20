//! The HTML page of what the registry holds (`GET /registry`), in Dutch.
//!
//! Every stored value is HTML-escaped (a list of values as a list); the page has no script and no inline
//! style, so it works under `Content-Security-Policy: default-src 'self'`.
//! Its stylesheet ([`STYLESHEET`]) is served by the server itself.
//!
//! Records with a reversible pseudonym (type `R`) get a checkbox; the plain
//! HTML form around the table posts the ticked ones (`record=ID`, repeated,
//! and `question`) to `/registry/validation-requests` ("Validatie vragen"),
//! which answers 303 back here. The section "Validatieverzoeken" lists the
//! requests with their status and answers; a status column shows per record
//! whether it is active or withdrawn and its latest validation state.

use std::fmt::Write as _;

use pseudoform_core::CalendarDate;
use pseudoform_protocol::registry::DataValue;

use crate::store::StoredRecord;
use crate::validation::RequestSummary;

/// Where the page's form posts.
pub const VALIDATION_FORM_PATH: &str = "/registry/validation-requests";

/// The Dutch label of a validation state or answer.
pub fn validation_label(state: &str) -> &'static str {
    match state {
        "open" => "gevraagd, nog geen antwoord",
        "confirm" => "bevestigd",
        "correct" => "correctie gemeld",
        "withdraw" => "ingetrokken door zorgaanbieder",
        _ => "onbekend",
    }
}

/// The Dutch sentence of a refusal of the page's form, by its code (never
/// the submitted values).
fn form_error(code: &str) -> &'static str {
    match code {
        "validation.empty" => "Kies eerst een of meer records met een omkeerbaar pseudoniem.",
        "validation.tooMany" => "Te veel records in één verzoek.",
        "validation.unknownRecord" => "Een gekozen record bestaat niet (meer) of is ingetrokken.",
        "validation.notReversible" => {
            "Een gekozen record heeft geen omkeerbaar pseudoniem: de zorgaanbieder kan het niet terugvinden."
        }
        "validation.questionTooLong" => "De vraag is te lang (hoogstens 500 tekens).",
        _ => "Het validatieverzoek kon niet worden gemaakt.",
    }
}

/// The page's stylesheet, served at [`STYLESHEET_PATH`].
pub const STYLESHEET: &str = include_str!("../assets/registry.css");

/// Where the server serves [`STYLESHEET`].
pub const STYLESHEET_PATH: &str = "/registry/registry.css";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn parts(unix: i64) -> (i64, u32, u32, i64, i64, i64) {
    // Stored times are the registry's own clock: always within years 1..65535.
    let date =
        CalendarDate::from_days_since_epoch(unix.div_euclid(86_400)).unwrap_or(CalendarDate::EPOCH);
    let (y, mo, d) = (
        i64::from(date.year()),
        u32::from(date.month()),
        u32::from(date.day()),
    );
    let secs = unix.rem_euclid(86_400);
    (y, mo, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// RFC 3339 UTC time (`2026-11-23T14:05:09Z`) of a Unix time.
pub fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Readable UTC time (`23-11-2026 14:05:09 UTC`, Dutch date order).
pub fn readable_time(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(unix);
    format!("{d:02}-{mo:02}-{y:04} {h:02}:{mi:02}:{s:02} UTC")
}

/// The page listing `records` and the validation `requests` for the
/// registry `organization` / `scope`, with the refusal `error` (a code) of
/// the last form post, if any.
pub fn registry_page(
    organization: &str,
    scope: &str,
    records: &[StoredRecord],
    requests: &[RequestSummary],
    error: Option<&str>,
) -> String {
    let mut html = String::with_capacity(4096 + records.len() * 1024);
    // `write!` into a String cannot fail; results are ignored deliberately.
    let _ = write!(
        html,
        concat!(
            "<!DOCTYPE html>\n<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            "<title>Registratie: ontvangen records</title>\n",
            "<link rel=\"stylesheet\" href=\"{css}\">\n</head>\n<body>\n",
            "<header>\n<h1>Registratie: ontvangen records</h1>\n",
            "<p>Ontvanger <code>{org}</code>, scope <code>{scope}</code>. ",
            "Deze registratie bewaart alleen definitieve pseudoniemen en klinische gegevens, ",
            "geen identificerende gegevens.</p>\n</header>\n<main>\n"
        ),
        css = STYLESHEET_PATH,
        org = escape(organization),
        scope = escape(scope),
    );
    if let Some(code) = error {
        let _ = writeln!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(form_error(code))
        );
    }
    if records.is_empty() {
        html.push_str("<p class=\"empty\">Nog geen records ontvangen.</p>\n");
    } else {
        let _ = writeln!(
            html,
            "<form method=\"post\" action=\"{VALIDATION_FORM_PATH}\" id=\"validatie\">"
        );
        let _ = writeln!(
            html,
            "<p class=\"summary\">{} {} (nieuwste eerst).</p>",
            records.len(),
            if records.len() == 1 {
                "record"
            } else {
                "records"
            }
        );
        html.push_str(concat!(
            "<table>\n<thead><tr><th scope=\"col\">Kies</th><th scope=\"col\">Record</th>",
            "<th scope=\"col\">Ontvangen</th>",
            "<th scope=\"col\">Pseudoniemen</th><th scope=\"col\">Gegevens</th>",
            "<th scope=\"col\">Status</th></tr></thead>\n<tbody>\n"
        ));
        for record in records {
            let _ = write!(html, "<tr id=\"record-{id}\"><td>", id = record.id);
            if record.reversible.is_some() && !record.withdrawn && record.provider.is_some() {
                let _ = write!(
                    html,
                    "<input type=\"checkbox\" name=\"record\" value=\"{id}\" id=\"kies-{id}\" \
                     aria-label=\"Record {id} voor validatie kiezen\">",
                    id = record.id
                );
            }
            let _ = write!(html, "</td><td>{id}", id = record.id);
            if let Some(jti) = &record.ttp_jti {
                let _ = write!(
                    html,
                    "<br><span class=\"trace\">TTP-jti <code>{}</code></span>",
                    escape(jti)
                );
            }
            if let Some(provider) = &record.provider {
                let _ = write!(
                    html,
                    "<br><span class=\"trace\">zorgaanbieder <code>{}</code></span>",
                    escape(provider)
                );
            }
            let _ = write!(
                html,
                "</td><td><time datetime=\"{iso}\">{time}</time></td><td><ul class=\"labels\">",
                iso = rfc3339(record.received_at),
                time = readable_time(record.received_at),
            );
            for p in &record.pseudonyms {
                let _ = write!(html, "<li><code>{}</code>", escape(&p.label));
                if !p.is_current {
                    html.push_str(" <span class=\"old\">(oudere sleutelversie)</span>");
                }
                html.push_str("</li>");
            }
            html.push_str("</ul></td><td>");
            if record.data.is_empty() {
                html.push_str("<span class=\"empty\">geen gegevens</span>");
            } else {
                html.push_str("<dl class=\"data\">");
                for (key, value) in &record.data {
                    let _ = write!(html, "<dt>{}</dt><dd>", escape(key));
                    match value {
                        DataValue::Text(text) => html.push_str(&escape(text)),
                        DataValue::List(items) if items.is_empty() => {
                            html.push_str("<span class=\"empty\">geen</span>");
                        }
                        DataValue::List(items) => {
                            html.push_str("<ul class=\"values\">");
                            for item in items {
                                let _ = write!(html, "<li>{}</li>", escape(item));
                            }
                            html.push_str("</ul>");
                        }
                    }
                    html.push_str("</dd>");
                }
                html.push_str("</dl>");
            }
            html.push_str("</td><td>");
            html.push_str(if record.withdrawn {
                "<span class=\"withdrawn\">ingetrokken</span>"
            } else {
                "actief"
            });
            if let Some(reversible) = &record.reversible {
                let _ = write!(
                    html,
                    "<br><span class=\"trace\">omkeerbaar pseudoniem (sleutel <code>{}</code>)</span>",
                    escape(&reversible.kid)
                );
            }
            if let Some(state) = &record.validation {
                let _ = write!(
                    html,
                    "<br><span class=\"validation\">validatie: {}</span>",
                    validation_label(state)
                );
            }
            html.push_str("</td></tr>\n");
        }
        html.push_str("</tbody>\n</table>\n");
        html.push_str(concat!(
            "<p class=\"ask\"><label for=\"vraag\">Vraag aan de zorgaanbieder (optioneel)</label><br>",
            "<textarea id=\"vraag\" name=\"question\" maxlength=\"500\" rows=\"2\" cols=\"60\"></textarea><br>",
            "<button type=\"submit\">Validatie vragen</button></p>\n</form>\n"
        ));
    }
    html.push_str("<section id=\"validatieverzoeken\">\n<h2>Validatieverzoeken</h2>\n");
    if requests.is_empty() {
        html.push_str("<p class=\"empty\">Nog geen validatieverzoeken.</p>\n");
    } else {
        html.push_str(concat!(
            "<table>\n<thead><tr><th scope=\"col\">Verzoek</th><th scope=\"col\">Zorgaanbieder</th>",
            "<th scope=\"col\">Gemaakt</th><th scope=\"col\">Records</th>",
            "<th scope=\"col\">Status</th><th scope=\"col\">Antwoorden</th></tr></thead>\n<tbody>\n"
        ));
        for request in requests {
            let _ = write!(
                html,
                "<tr id=\"{id}\"><td><code>{id}</code></td><td><code>{provider}</code></td>\
                 <td><time datetime=\"{iso}\">{time}</time></td><td>",
                id = escape(&request.id),
                provider = escape(&request.provider),
                iso = rfc3339(request.created_at),
                time = readable_time(request.created_at),
            );
            let ids: Vec<String> = request
                .records
                .iter()
                .map(|(id, _)| id.to_string())
                .collect();
            html.push_str(&ids.join(", "));
            let _ = write!(
                html,
                "</td><td>{}</td><td><ul class=\"values\">",
                if request.status == "answered" {
                    "beantwoord"
                } else {
                    "open"
                }
            );
            for (id, answer) in &request.records {
                let _ = write!(
                    html,
                    "<li>record {id}: {}</li>",
                    validation_label(answer.as_deref().unwrap_or("open"))
                );
            }
            html.push_str("</ul></td></tr>\n");
        }
        html.push_str("</tbody>\n</table>\n");
    }
    html.push_str("</section>\n");
    html.push_str(concat!(
        "</main>\n<footer>Een pseudoniem heeft de vorm <code>TYPE:vN:&lt;base64url&gt;</code>: ",
        "het pseudoniemtype, de sleutelversie van de TTP en het definitieve pseudoniem. ",
        "Dezelfde persoon krijgt bij dezelfde registratie en sleutelversie steeds hetzelfde pseudoniem.</footer>\n",
        "</body>\n</html>\n"
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_435_509), "2026-11-23T12:05:09Z");
        assert_eq!(readable_time(951_782_400), "29-02-2000 00:00:00 UTC");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
