//! What every page shares: the frame, times, messages, the record of an invocation, page sizes.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::domain::rfc3339;
use crate::health::CheckOutcome;
use crate::identity::ConsoleSession;

/// Rows on one page of the integrations list.
pub(super) const PAGE_ROWS: u32 = 200;
/// Health checks an integration's page shows (and charts).
pub(super) const HISTORY_ROWS: u32 = 100;
/// Audit entries an integration's page shows (the oldest first).
pub(super) const AUDIT_ROWS: u32 = 200;

/// A form's fields as it sent them (blank ones left out), to show them again.
pub(super) type FormValues = std::collections::BTreeMap<String, String>;

/// The link to the next page of a list at `path`: the same fields, and the cursor as `cursor_name`.
pub(super) fn next_link(path: &str, values: &FormValues, cursor_name: &str, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in values.iter().filter(|(n, _)| n.as_str() != cursor_name) {
        query.append_pair(name, value);
    }
    query.append_pair(cursor_name, cursor);
    format!("{path}?{}", query.finish())
}

/// A time: UTC in the page, the viewer's zone once the script runs (UTC then on hover).
pub(super) fn when(at: Option<OffsetDateTime>) -> Markup {
    match at {
        Some(at) => {
            let text = rfc3339(at);
            html! { time datetime=(text) { (text.replace('T', " ").trim_end_matches('Z')) " UTC" } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// The frame of every page: navigation, who is signed in, sign-out.
pub(super) fn layout(session: Option<&ConsoleSession>, title: &str, current: &str, body: Markup) -> String {
    let nav =
        [("/console/", "Integrations"), ("/console/connectors", "Connectors"), ("/console/invocations", "Invocations")];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Integration Catalog" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    strong { "Integration Catalog" }
                    @if let Some(s) = session {
                        nav aria-label="Console" {
                            @for (href, label) in nav {
                                @if label == current {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        span.who {
                            (s.principal.caller.subject) " · tenant " (s.principal.caller.tenant)
                            " "
                            form method="post" action="/console/sign-out" {
                                input type="hidden" name="csrf" value=(s.csrf_token);
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
    .into_string()
}

/// A page that only says something.
pub(super) fn message(title: &str, text: &str) -> String {
    layout(None, title, "", html! { h1 { (title) } p { (text) } p { a href="/console/" { "Back to the console" } } })
}

pub(super) fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_string(), |s| format!("{:.1} %", s * 100.0))
}

pub(super) fn outcome_class(outcome: CheckOutcome) -> &'static str {
    match outcome {
        CheckOutcome::Healthy => "healthy",
        CheckOutcome::Degraded => "degraded",
        CheckOutcome::Unhealthy => "unhealthy",
        CheckOutcome::Skipped => "unknown",
    }
}

/// An invocation's record: its host calls, denials and logs.
pub(super) fn record_view(record: &stella_runtime::record::InvocationRecord) -> Markup {
    html! {
        @if !record.host_calls.is_empty() {
            h3 { "Host calls" }
            table {
                thead { tr { th { "Call" } th { "Target" } th { "Result" } th { "Time" } } }
                tbody {
                    @for c in &record.host_calls {
                        tr {
                            td data-label="Call" { (c.interface) " " (c.operation) }
                            td data-label="Target" { code { (c.target) } }
                            td data-label="Result" {
                                (c.status.map(|s| s.to_string()).or_else(|| c.error.clone()).unwrap_or_default())
                                @if let Some(header) = &c.credential_header { " · credential in " code { (header) } }
                                @if !c.secret_in_request.is_empty() { " · a secret's value in " (c.secret_in_request.join(", ")) }
                                @if c.response_scrubbed { " · answer scrubbed of a secret" }
                            }
                            td data-label="Time" { (c.duration_ms) " ms" }
                        }
                    }
                }
            }
        }
        @if !record.denials.is_empty() {
            h3 { "Denials" }
            ul { @for d in &record.denials { li { (serde_json::to_value(d.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) ": " code { (d.target) } " — " (d.reason) } } }
        }
        @if !record.logs.is_empty() {
            h3 { "Logs" }
            pre { @for l in &record.logs { (l.at_ms) " ms " (l.level) " " (l.message) "\n" } }
        }
    }
}

pub(super) fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}
