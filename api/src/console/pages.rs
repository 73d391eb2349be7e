//! The HTML of each console page (maud: escaped by construction, checked at compile time).

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use super::session::ConsoleSession;
use crate::domain::{Integration, rfc3339};
use crate::health::HealthState;

/// Rows on one page of the integrations list.
pub const PAGE_ROWS: u32 = 200;

/// The integrations page's filters, as the form shows them.
#[derive(Debug, Default)]
pub struct Filters {
    pub status: String,
    pub integration_type: String,
    pub provider: String,
    pub tag: String,
    pub environment: String,
    pub health: String,
}

/// `healthy`, `unhealthy` or `unknown`.
pub fn health_name(state: HealthState) -> &'static str {
    match state {
        HealthState::Healthy => "healthy",
        HealthState::Unhealthy => "unhealthy",
        HealthState::Unknown => "unknown",
    }
}

/// A time: UTC in the page, the viewer's zone once the script runs (UTC then on hover).
fn when(at: Option<OffsetDateTime>) -> Markup {
    match at {
        Some(at) => {
            let text = rfc3339(at);
            html! { time datetime=(text) { (text.replace('T', " ").trim_end_matches('Z')) " UTC" } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// The frame of every page: navigation, who is signed in, sign-out.
fn layout(session: Option<&ConsoleSession>, title: &str, current: &str, body: Markup) -> String {
    let nav = [("/console/", "Integrations")];
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
                main { (body) }
            }
        }
    }
    .into_string()
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> String {
    layout(None, title, "", html! { h1 { (title) } p { (text) } p { a href="/console/" { "Back to the console" } } })
}

/// The sign-in page, with why the last attempt failed.
pub fn sign_in(console: &super::Console, error: Option<&str>) -> String {
    layout(
        None,
        "Sign in",
        "",
        html! {
            h1 { "Sign in" }
            @if let Some(why) = error {
                p.error role="alert" { "Sign-in refused: " (why) }
            }
            @if let Some(issuer) = console.provider() {
                p { a.button href="/console/auth/start" { "Sign in with " (issuer) } }
                p.muted { "Or, on the service's machine, ask for a one-time link:" }
            } @else {
                p { "On the service's machine, ask for a one-time sign-in link:" }
            }
            pre { "stella-integrations console-link --tenant <tenant>" }
        },
    )
}

/// After a sign-in: moves on to `to` from this site, so the SameSite=Strict cookie goes along.
pub fn continue_to(to: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0;url={to}"));
                title { "Signed in · Integration Catalog" }
            }
            body { p { "Signed in. " a href=(to) { "Continue to the console" } } }
        }
    }
    .into_string()
}

/// The integrations page: counts by status and health, the filters, the list.
pub fn integrations(session: &ConsoleSession, filters: &Filters, rows: &[Integration]) -> String {
    let count = |f: &dyn Fn(&Integration) -> bool| rows.iter().filter(|i| f(i)).count();
    let statuses = ["draft", "pending-verification", "active", "degraded", "failed"];
    let body = html! {
        h1 { "Integrations" }
        section.cards aria-label="Counts" {
            @for status in statuses {
                div.card { div.n { (count(&|i: &Integration| i.status.as_str() == status)) } div { (status) } }
            }
            div.card { div.n { (count(&|i: &Integration| i.paused)) } div { "paused" } }
            @for health in [HealthState::Healthy, HealthState::Unhealthy, HealthState::Unknown] {
                div.card {
                    div.n { (count(&|i: &Integration| HealthState::of(i.last_test_success) == health)) }
                    div { (health_name(health)) }
                }
            }
        }
        form.filters method="get" action="/console/" {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in statuses { option value=(s) selected[filters.status == s] { (s) } }
            } }
            label { "Type" input name="type" value=(filters.integration_type); }
            label { "Provider" input name="provider" value=(filters.provider); }
            label { "Tag" input name="tag" value=(filters.tag); }
            label { "Environment" input name="environment" value=(filters.environment); }
            label { "Health" select name="health" {
                option value="" { "any" }
                @for h in ["healthy", "unhealthy", "unknown"] { option value=(h) selected[filters.health == h] { (h) } }
            } }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No integration matches." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Type" } th { "Provider" } th { "Status" } th { "Health" } th { "Last check" } } }
                tbody {
                    @for i in rows {
                        @let health = health_name(HealthState::of(i.last_test_success));
                        tr {
                            td data-label="Name" { (i.name) }
                            td data-label="Type" { (i.integration_type.as_str()) }
                            td data-label="Provider" { (i.provider) }
                            td data-label="Status" {
                                span class={"badge " (i.status.as_str())} { (i.status.as_str()) }
                                @if i.paused { " " span.badge.paused { "paused" } }
                            }
                            td data-label="Health" { span class={"badge " (health)} { (health) } }
                            td data-label="Last check" { (when(i.last_tested_at)) }
                        }
                    }
                }
            }
        }
    };
    layout(Some(session), "Integrations", "Integrations", body)
}
