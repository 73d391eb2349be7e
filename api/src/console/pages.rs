//! The HTML of each console page (maud: escaped by construction, checked at compile time).

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::audit::AuditEntry;
use crate::domain::{Integration, rfc3339};
use crate::health::{CheckOutcome, HealthCheck, HealthReport, HealthState};
use crate::identity::ConsoleSession;
use crate::lifecycle::Action;

/// Rows on one page of the integrations list.
pub const PAGE_ROWS: u32 = 200;
/// Health checks an integration's page shows (and charts).
pub const HISTORY_ROWS: u32 = 100;
/// Audit entries an integration's page shows (the oldest first).
pub const AUDIT_ROWS: u32 = 200;

/// A form's fields as it sent them (blank ones left out), to show them again.
pub type FormValues = std::collections::BTreeMap<String, String>;

/// The link to the next page of a list at `path`: the same fields, and the cursor as `cursor_name`.
fn next_link(path: &str, values: &FormValues, cursor_name: &str, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in values.iter().filter(|(n, _)| n.as_str() != cursor_name) {
        query.append_pair(name, value);
    }
    query.append_pair(cursor_name, cursor);
    format!("{path}?{}", query.finish())
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

/// The integrations page: the tenant's counts by status and health, the filters, the list with
/// each one's uptime over 24 hours.
pub fn integrations(
    session: &ConsoleSession,
    values: &FormValues,
    counts: &[crate::store::StateCount],
    rows: &[Integration],
    uptime: &std::collections::HashMap<uuid::Uuid, f64>,
    next: Option<&str>,
    error: Option<&str>,
) -> String {
    let v = |name: &str| values.get(name).map(String::as_str).unwrap_or("");
    let count = |f: &dyn Fn(&crate::store::StateCount) -> bool| -> u64 {
        counts.iter().filter(|c| f(c)).map(|c| c.count).sum()
    };
    let statuses = ["draft", "pending-verification", "active", "degraded", "failed"];
    let can_create = session.principal.may::<crate::identity::Admin>();
    let body = html! {
        h1 { "Integrations" }
        @if can_create { p { a.button href="/console/integrations/new" { "New integration" } } }
        @if let Some(why) = error { p.error role="alert" { (why) } }
        section.cards aria-label="Counts" {
            @for status in statuses {
                div.card { div.n { (count(&|c| c.status.as_str() == status)) } div { (status) } }
            }
            div.card { div.n { (count(&|c| c.paused)) } div { "paused" } }
            @for health in [HealthState::Healthy, HealthState::Unhealthy, HealthState::Unknown] {
                div.card {
                    div.n { (count(&|c| HealthState::of(c.last_test_success) == health)) }
                    div { (health.as_str()) }
                }
            }
        }
        form.filters method="get" action="/console/" {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in statuses { option value=(s) selected[v("status") == s] { (s) } }
            } }
            label { "Type" input name="type" value=(v("type")); }
            label { "Provider" input name="provider" value=(v("provider")); }
            label { "Tag" input name="tag" value=(v("tag")); }
            label { "Environment" input name="environment" value=(v("environment")); }
            label { "Health" select name="health" {
                option value="" { "any" }
                @for h in ["healthy", "unhealthy", "unknown"] { option value=(h) selected[v("health") == h] { (h) } }
            } }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No integration matches." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Type" } th { "Provider" } th { "Status" } th { "Health" } th { "Last check" } th { "Uptime 24 h" } } }
                tbody {
                    @for i in rows {
                        @let health = HealthState::of(i.last_test_success).as_str();
                        tr {
                            td data-label="Name" { a href={"/console/integrations/" (i.integration_id)} { (i.name) } }
                            td data-label="Type" { (i.integration_type.as_str()) }
                            td data-label="Provider" { (i.provider) }
                            td data-label="Status" {
                                span class={"badge " (i.status.as_str())} { (i.status.as_str()) }
                                @if i.paused { " " span.badge.paused { "paused" } }
                            }
                            td data-label="Health" { span class={"badge " (health)} { (health) } }
                            td data-label="Last check" { (when(i.last_tested_at)) }
                            td data-label="Uptime 24 h" { (percent(uptime.get(&i.integration_id).copied())) }
                        }
                    }
                }
            }
        }
        @if let Some(cursor) = next {
            p { a href=(next_link("/console/", values, "cursor", cursor)) { "Next page →" } }
        }
    };
    layout(Some(session), "Integrations", "Integrations", body)
}

/// What one integration's page shows.
pub struct IntegrationView {
    /// The integration.
    pub integration: Integration,
    /// Its health: state, uptime, last test, recent checks.
    pub report: HealthReport,
    /// Its audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_string(), |s| format!("{:.1} %", s * 100.0))
}

fn outcome_class(outcome: CheckOutcome) -> &'static str {
    match outcome {
        CheckOutcome::Healthy => "healthy",
        CheckOutcome::Degraded => "degraded",
        CheckOutcome::Unhealthy => "unhealthy",
        CheckOutcome::Skipped => "unknown",
    }
}

/// The latency of the checks over time (oldest left) as inline SVG, each check a point coloured
/// by its outcome with its time, outcome and latency as its title: drawn by the server, so it
/// works offline and prints.
fn latency_chart(checks: &[HealthCheck]) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 160.0;
    const PAD: f64 = 28.0;
    let mut points: Vec<&HealthCheck> = checks.iter().collect();
    points.reverse();
    if points.is_empty() {
        return html! { p.muted { "No health check yet." } };
    }
    let max = points.iter().map(|c| c.latency_ms).max().unwrap_or(0).max(1) as f64;
    let step = if points.len() > 1 { (W - 2.0 * PAD) / (points.len() - 1) as f64 } else { 0.0 };
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(n, c)| (PAD + n as f64 * step, H - PAD - (c.latency_ms as f64 / max) * (H - 2.0 * PAD)))
        .collect();
    let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let label = format!(
        "Latency of the last {} health checks, from {} ms to {} ms",
        points.len(),
        points.iter().map(|c| c.latency_ms).min().unwrap_or(0),
        max as u64
    );
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(label) width="100%" {
            title { (label) }
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#d8dde6" {}
            text x="2" y=(PAD - 8.0) font-size="11" fill="#5b6475" { (max as u64) " ms" }
            text x="2" y=(H - PAD + 4.0) font-size="11" fill="#5b6475" { "0" }
            polyline points=(line.join(" ")) fill="none" stroke="#1f5fbf" stroke-width="1.5" {}
            @for ((x, y), c) in xy.iter().zip(&points) {
                circle class={"point " (outcome_class(c.outcome))} cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3.5" {
                    title { (rfc3339(c.checked_at)) " · " (c.outcome.as_str()) " · " (c.latency_ms) " ms" }
                }
            }
        }
    }
}

/// The outcome of each recent check over time (oldest left) as inline SVG: one bar per check,
/// coloured by its outcome, with its time and message as its title.
fn history_strip(checks: &[HealthCheck]) -> Markup {
    const BAR: f64 = 7.0;
    if checks.is_empty() {
        return html! {};
    }
    let count = |o: CheckOutcome| checks.iter().filter(|c| c.outcome == o).count();
    let label = format!(
        "Outcomes of the last {} checks: {} healthy, {} degraded, {} unhealthy, {} skipped",
        checks.len(),
        count(CheckOutcome::Healthy),
        count(CheckOutcome::Degraded),
        count(CheckOutcome::Unhealthy),
        count(CheckOutcome::Skipped)
    );
    html! {
        svg.strip viewBox={"0 0 " (checks.len() as f64 * BAR) " 20"} role="img" aria-label=(label) preserveAspectRatio="none" {
            title { (label) }
            @for (n, c) in checks.iter().rev().enumerate() {
                rect class=(outcome_class(c.outcome)) x=(format!("{:.1}", n as f64 * BAR)) y="0" width="6" height="20" {
                    title { (rfc3339(c.checked_at)) " · " (c.outcome.as_str()) " · " (c.message) }
                }
            }
        }
    }
}

/// The page of one integration: lifecycle and what it allows, uptime, latency chart and check
/// history, the last test with its steps and record, the audit trail, and the actions.
pub fn integration(session: &ConsoleSession, view: &IntegrationView, error: Option<&str>) -> String {
    let i = &view.integration;
    let r = &view.report;
    let health = r.health.as_str();
    let can_change = session.principal.may::<crate::identity::Admin>();
    let allowed = i.status.allowed();
    let action = |action: Action, label: &str| {
        html! {
            form.inline method="post" action={"/console/integrations/" (i.integration_id) "/" (action.as_str())} {
                input type="hidden" name="csrf" value=(session.csrf_token);
                button type="submit" { (label) }
            }
        }
    };
    let body = html! {
        p { a href="/console/" { "← Integrations" } }
        h1 { (i.name) }
        @if let Some(why) = error {
            p.error role="alert" { (why) }
        }
        section.cards aria-label="State" {
            div.card { div { "Status" } div.n { span class={"badge " (i.status.as_str())} { (i.status.as_str()) } } }
            div.card { div { "Health" } div.n { span class={"badge " (health)} { (health) } } }
            div.card { div { "Uptime 24 h" } div.n { (percent(r.summary.uptime_24h)) } }
            div.card { div { "Uptime 7 d" } div.n { (percent(r.summary.uptime_7d)) } }
            div.card { div { "Uptime 30 d" } div.n { (percent(r.summary.uptime_30d)) } }
            div.card { div { "Latency p50 / p95" } div.n {
                (r.summary.latency_p50_ms.map_or("–".into(), |v| format!("{v} ms"))) " / "
                (r.summary.latency_p95_ms.map_or("–".into(), |v| format!("{v} ms")))
            } }
        }
        dl.facts {
            dt { "Type" } dd { (i.integration_type.as_str()) }
            dt { "Provider" } dd { (i.provider) }
            dt { "Base URL" } dd { (i.base_url.as_ref().map_or("–", |u| u.as_str())) }
            dt { "Environment" } dd { (i.environment.as_deref().unwrap_or("–")) }
            dt { "Last test or check" } dd { (when(i.last_tested_at)) }
            dt { "Failures in a row" } dd { (i.consecutive_failures) }
            @if i.paused {
                dt { "Paused because" } dd { (i.pause_reason.as_deref().unwrap_or("")) " " (i.pause_ticket.as_deref().map(|t| format!("({t})")).unwrap_or_default()) }
            }
        }
        section aria-labelledby="actions" {
            h2 #actions { "Actions" }
            p.muted { "Allowed now: " (allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")) }
            @if can_change {
                div.actions {
                    @for a in allowed {
                        @match a {
                            Action::Pause => {
                                form.pause method="post" action={"/console/integrations/" (i.integration_id) "/pause"} {
                                    input type="hidden" name="csrf" value=(session.csrf_token);
                                    label { "Reason" input name="reason" required maxlength="256"; }
                                    label { "Ticket" input name="ticket" maxlength="256"; }
                                    button type="submit" { "Pause" }
                                }
                            }
                            Action::Activate => { (action(*a, "Activate")) }
                            Action::Test => { (action(*a, "Test now")) }
                            Action::Resume => { (action(*a, "Resume")) }
                        }
                    }
                }
            } @else {
                p.muted { "Your sign-in may look, not change (it lacks integrations.admin)." }
            }
        }
        section aria-labelledby="health" {
            h2 #health { "Health checks" }
            (history_strip(&r.history))
            (latency_chart(&r.history))
            @if !r.history.is_empty() {
                table {
                    thead { tr { th { "When" } th { "Outcome" } th { "Latency" } th { "Message" } } }
                    tbody {
                        @for c in r.history.iter().take(20) {
                            tr {
                                td data-label="When" { (when(Some(c.checked_at))) }
                                td data-label="Outcome" { span class={"badge " (outcome_class(c.outcome))} { (c.outcome.as_str()) } }
                                td data-label="Latency" { (c.latency_ms) " ms" }
                                td data-label="Message" { (c.message) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="last-test" {
            h2 #last-test { "Last test" }
            @match &r.last_test {
                None => { p.muted { "Never tested." } }
                Some(t) => {
                    p {
                        (when(Some(t.tested_at))) " · "
                        @if t.result.success { span.badge.healthy { "passed" } } @else { span.badge.unhealthy { "failed" } }
                        @if let Some(f) = t.result.failure { " · " (f.as_str()) }
                        " · " (t.result.message)
                    }
                    @if !t.result.steps.is_empty() {
                        ol.steps {
                            @for step in &t.result.steps {
                                li { span class={"badge " (if step.passed { "healthy" } else { "unhealthy" })} { (if step.passed { "passed" } else { "failed" }) } " " strong { (step.name) } " " (step.message) }
                            }
                        }
                    }
                    @if let Some(record) = &t.record {
                        details {
                            summary { "Invocation record: " (record.host_calls.len()) " host calls, " (record.denials.len()) " denials, " (record.logs.len()) " log lines" }
                            (record_view(record))
                        }
                    }
                }
            }
        }
        section aria-labelledby="audit" {
            h2 #audit { "Audit trail" }
            @if view.audit.is_empty() { p.muted { "No entry." } } @else {
                table {
                    thead { tr { th { "When" } th { "Action" } th { "By" } th { "Details" } } }
                    tbody {
                        @for e in &view.audit {
                            tr {
                                td data-label="When" { (when(Some(e.at))) }
                                td data-label="Action" { (e.action.as_str()) }
                                td data-label="By" { (e.actor) }
                                td data-label="Details" { code { (e.details.to_string()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(Some(session), &i.name, "Integrations", body)
}

/// The form of a new integration, as it was filled in.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct NewIntegration {
    pub csrf: String,
    pub name: String,
    #[serde(rename = "type")]
    pub integration_type: String,
    pub provider: String,
    #[serde(rename = "baseUrl")]
    pub base_url: String,
    #[serde(rename = "authRef")]
    pub auth_ref: String,
    pub environment: String,
    pub description: String,
    pub tags: String,
    pub configuration: String,
}

/// The form that creates an integration (in `draft`, as the API does).
pub fn new_integration(
    session: &ConsoleSession,
    providers: &[(String, Vec<String>)],
    form: &NewIntegration,
    error: Option<&str>,
) -> String {
    let types: std::collections::BTreeSet<&String> = providers.iter().flat_map(|(_, t)| t).collect();
    let body = html! {
        p { a href="/console/" { "← Integrations" } }
        h1 { "New integration" }
        @if let Some(why) = error { p.error role="alert" { (why) } }
        form.stacked method="post" action="/console/integrations" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            label { "Name" input name="name" required maxlength="256" value=(form.name); }
            label { "Type" select name="type" required {
                @for t in &types { option value=(t) selected[form.integration_type == **t] { (t) } }
            } }
            label { "Provider" select name="provider" required {
                @for (p, t) in providers { option value=(p) selected[form.provider == *p] { (p) " (" (t.join(", ")) ")" } }
            } }
            label { "Base URL" input name="baseUrl" type="url" value=(form.base_url); }
            label { "AuthRef (ref://…)" input name="authRef" value=(form.auth_ref); }
            label { "Environment" input name="environment" value=(form.environment); }
            label { "Tags (comma-separated)" input name="tags" value=(form.tags); }
            label { "Description" input name="description" value=(form.description); }
            label { "Configuration (JSON)" textarea name="configuration" rows="5" { (form.configuration) } }
            button type="submit" { "Create (as a draft)" }
        }
    };
    layout(Some(session), "New integration", "Integrations", body)
}

/// An invocation's record: its host calls, denials and logs.
fn record_view(record: &stella_runtime::record::InvocationRecord) -> Markup {
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

/// The ledger: the newest invocations the session may read, filtered by the API's filters.
pub fn invocations(
    session: &ConsoleSession,
    values: &FormValues,
    entries: &[crate::ledger::LedgerEntry],
    next: Option<&str>,
    error: Option<&str>,
) -> String {
    let v = |name: &str| values.get(name).map(String::as_str).unwrap_or("");
    let yes_no_any = |name: &'static str, label: &'static str, yes: &'static str, no: &'static str| {
        html! {
            label { (label) select name=(name) {
                option value="" { "any" }
                option value="true" selected[v(name) == "true"] { (yes) }
                option value="false" selected[v(name) == "false"] { (no) }
            } }
        }
    };
    let text = |name: &'static str, label: &'static str, hint: &'static str| {
        html! { label { (label) input name=(name) value=(v(name)) placeholder=(hint); } }
    };
    let next_link = next.map(|cursor| next_link("/console/invocations", values, "after", cursor));
    let body = html! {
        h1 { "Invocations" }
        @if let Some(why) = error { p.error role="alert" { (why) } }
        form.filters method="get" action="/console/invocations" {
            (text("provider", "Provider", ""))
            label { "Operation" select name="operation" {
                option value="" { "any" }
                @for op in ["test-connection", "check-health"] { option value=(op) selected[v("operation") == op] { (op) } }
            } }
            (text("outcome", "Outcome", "success, healthy…"))
            (text("failureClass", "Failure class", "auth, network…"))
            (yes_no_any("denied", "Denied", "denied something", "denied nothing"))
            (text("denialKind", "Denial kind", "origin, reveal…"))
            (yes_no_any("outsideBaseUrl", "Outside its base URL", "contacted another origin", "its base URL only"))
            (yes_no_any("revealedSecret", "Read a secret", "yes", "no"))
            (yes_no_any("secretInRequest", "Sent a secret's value", "yes", "no"))
            (text("origin", "Origin contacted", "https://host"))
            (text("authRef", "Credential (AuthRef)", "ref://…"))
            (text("integrationId", "Integration id", ""))
            (text("sha256", "Component sha256", ""))
            (text("since", "Since (RFC 3339)", "2026-11-01T00:00:00Z"))
            (text("until", "Until (RFC 3339)", ""))
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() { p.muted { "No invocation matches." } } @else {
            table {
                thead { tr { th { "When" } th { "Provider" } th { "Operation" } th { "Outcome" } th { "Denied" } th { "Origins" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td data-label="When" { a href={"/console/invocations/" (e.invocation_id)} { (when(Some(e.at))) } }
                            td data-label="Provider" { (e.provider) }
                            td data-label="Operation" { (e.operation.as_str()) }
                            td data-label="Outcome" { (e.outcome) }
                            td data-label="Denied" { @if e.denied { span.badge.unhealthy { (e.denial_kinds.join(", ")) } } @else { "–" } }
                            td data-label="Origins" { (e.origins.join(", ")) }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next_link {
            p { a href=(link) { "Older →" } }
        }
    };
    layout(Some(session), "Invocations", "Invocations", body)
}

/// One invocation, with its whole record.
pub fn invocation(session: &ConsoleSession, e: &crate::ledger::LedgerEntry) -> String {
    let body = html! {
        p { a href="/console/invocations" { "← Invocations" } }
        h1 { (e.provider) " · " (e.operation.as_str()) }
        dl.facts {
            dt { "When" } dd { (when(Some(e.at))) " (" (e.duration_ms) " ms)" }
            dt { "Tenant" } dd { (e.tenant_id) }
            dt { "Integration" } dd { code { (e.integration_id) } }
            dt { "Component" } dd { code { (e.sha256) } }
            dt { "Outcome" } dd { (e.outcome) }
            dt { "Denied" } dd { @if e.denied { (e.denial_kinds.join(", ")) } @else { "nothing" } }
            dt { "Origins contacted" } dd { @if e.origins.is_empty() { "none" } @else { (e.origins.join(", ")) } }
            dt { "Credentials used" } dd { @if e.auth_refs.is_empty() { "none" } @else { (e.auth_refs.join(", ")) } }
            dt { "Revealed a secret" } dd { (if e.revealed_secret { "yes" } else { "no" }) }
            dt { "Sent a secret's value in a request" } dd { (if e.secret_in_request { "yes" } else { "no" }) }
        }
        @match &e.record {
            Some(record) => { (record_view(record)) }
            None => { p.muted { "No record is kept of it." } }
        }
    };
    layout(Some(session), "Invocation", "Invocations", body)
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

/// The connectors page: every loaded connector, the files refused at load, and the versions
/// waiting for a decision (shown to `plugins.admin` only).
pub fn connectors(
    session: &ConsoleSession,
    loaded: &[crate::http::plugins::Plugin],
    signers: &std::collections::HashMap<String, String>,
    failures: &[stella_runtime::catalog::LoadFailure],
    pending: Option<&[crate::service::PluginVersionView]>,
) -> String {
    let body = html! {
        h1 { "Connectors" }
        @if let Some(pending) = pending {
            section aria-labelledby="pending" {
                h2 #pending { "Waiting for a decision" }
                @if pending.is_empty() { p.muted { "Nothing waits." } } @else {
                    table {
                        thead { tr { th { "Provider" } th { "Version" } th { "Submitted" } th { "Signed by" } th { "Origin" } } }
                        tbody {
                            @for v in pending {
                                @let p = &v.version;
                                tr {
                                    td data-label="Provider" { a href={"/console/connectors/" (p.provider)} { (p.provider) } }
                                    td data-label="Version" { (p.version) }
                                    td data-label="Submitted" { (when(Some(p.submitted_at))) " by " (p.submitted_by) }
                                    td data-label="Signed by" { (p.signed_by.as_deref().unwrap_or("unsigned")) }
                                    td data-label="Origin" { (p.origin) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="loaded" {
            h2 #loaded { "Loaded" }
            table {
                thead { tr { th { "Provider" } th { "Version" } th { "Types" } th { "Source" } th { "Signed by" } th { "Hosts it may reach" } th { "Digest (sha256)" } } }
                tbody {
                    @for c in loaded {
                        tr {
                            td data-label="Provider" { a href={"/console/connectors/" (c.provider)} { (c.provider) } }
                            td data-label="Version" { (c.version) }
                            td data-label="Types" { (c.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                            td data-label="Source" { (c.source) }
                            td data-label="Signed by" {
                                @match (c.source.as_str(), signers.get(&c.provider)) {
                                    ("built-in", _) => { span.muted { "built into the service" } }
                                    (_, Some(signer)) => { (signer) }
                                    (_, None) => { span.muted { "not from the store" } }
                                }
                            }
                            td data-label="Hosts" { @if c.manifest.permissions.hosts.is_empty() { span.muted { "its base URL only" } } @else { (c.manifest.permissions.hosts.join(", ")) } }
                            td data-label="Digest" { code { (&c.sha256[..c.sha256.len().min(16)]) "…" } }
                        }
                    }
                }
            }
        }
        @if !failures.is_empty() {
            section aria-labelledby="refused" {
                h2 #refused { "Refused at load" }
                ul { @for f in failures { li { code { (f.source) } ": " (f.error) } } }
            }
        }
    };
    layout(Some(session), "Connectors", "Connectors", body)
}

fn permissions_view(p: &stella_runtime::manifest::Permissions) -> Markup {
    html! {
        dt { "Hosts it may reach" } dd { @if p.hosts.is_empty() { "its integration's base URL only" } @else { (p.hosts.join(", ")) } }
        dt { "May read secrets' values" } dd { (yes_no(p.reveal_secrets)) }
        dt { "May sign JWTs" } dd { (yes_no(p.sign_jwt)) }
    }
}

/// One connector: the loaded version's permissions and limits, the stored versions with the
/// pending ones' permission diff and decisions (for `plugins.admin`), and its egress report.
pub fn connector(
    session: &ConsoleSession,
    provider: &str,
    loaded: Option<&crate::http::plugins::Plugin>,
    versions: Option<&[crate::service::PluginVersionView]>,
    report: Option<&crate::ledger::EgressReport>,
    error: Option<&str>,
) -> String {
    let body = html! {
        p { a href="/console/connectors" { "← Connectors" } }
        h1 { (provider) }
        @if let Some(why) = error { p.error role="alert" { (why) } }
        @match loaded {
            None => { p.muted { "No version of it is loaded." } }
            Some(c) => {
                dl.facts {
                    dt { "Version" } dd { (c.version) " (" (c.source) ")" }
                    dt { "Description" } dd { (c.description) }
                    dt { "Digest (sha256)" } dd { code { (c.sha256) } }
                    dt { "Size" } dd { (c.size) " bytes" }
                    (permissions_view(&c.manifest.permissions))
                    dt { "Deadline" } dd { (c.effective_limits.deadline_ms) " ms" }
                    dt { "Memory" } dd { (c.effective_limits.memory_bytes) " bytes" }
                    dt { "Requests" } dd { (c.effective_limits.max_requests) " per invocation" }
                    dt { "Imports" } dd { (c.imports.join(", ")) }
                }
            }
        }
        @if let Some(versions) = versions {
            section aria-labelledby="versions" {
                h2 #versions { "Versions" }
                @for v in versions {
                    @let p = &v.version;
                    article.version {
                        h3 { (p.version) " · " (p.status.as_str()) @if p.active { " · active" } }
                        dl.facts {
                            dt { "Digest (sha256)" } dd { code { (p.sha256) } }
                            dt { "Signed by" } dd { (p.signed_by.as_deref().unwrap_or(if p.unsigned_exception { "unsigned (allowed by exception)" } else { "unsigned" })) }
                            dt { "Submitted" } dd { (when(Some(p.submitted_at))) " by " (p.submitted_by) " from " (p.origin) }
                            (permissions_view(&p.manifest.permissions))
                            dt { "Permissions digest" } dd { code { (p.permissions_digest) } }
                            @if let Some(by) = &p.decided_by { dt { "Decided" } dd { (by) " " (when(p.decided_at)) " " (p.decision_reason.as_deref().unwrap_or("")) } }
                        }
                        @if let Some(diff) = &v.diff {
                            h4 { "Against " (diff.against.as_deref().unwrap_or("nothing (a new provider)")) }
                            ul.diff {
                                @for h in &diff.hosts_added { li.added { "may reach " code { (h) } } }
                                @for h in &diff.hosts_removed { li.removed { "no longer reaches " code { (h) } } }
                                @if let Some(s) = &diff.reveal_secrets { li { "reading secrets' values: " (serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } }
                                @if let Some(s) = &diff.sign_jwt { li { "signing JWTs: " (serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } }
                                @for l in &diff.limits { li class=(if l.raised { "added" } else { "removed" }) { (l.limit) ": " (l.from.map_or("default".into(), |v| v.to_string())) " → " (l.to.map_or("default".into(), |v| v.to_string())) } }
                                @for i in &diff.imports_added { li.added { "imports " code { (i) } } }
                                @for t in &diff.types_added { li.added { "serves " (t.as_str()) } }
                            }
                        }
                        @if p.status.as_str() == "pending" {
                            div.actions {
                                form.inline method="post" action={"/console/connectors/" (p.provider) "/versions/" (p.version) "/approve"} {
                                    input type="hidden" name="csrf" value=(session.csrf_token);
                                    input type="hidden" name="digest" value=(p.permissions_digest);
                                    button type="submit" { "Approve these permissions" }
                                }
                                form.pause method="post" action={"/console/connectors/" (p.provider) "/versions/" (p.version) "/reject"} {
                                    input type="hidden" name="csrf" value=(session.csrf_token);
                                    label { "Reason" input name="reason" required maxlength="1024"; }
                                    button.secondary type="submit" { "Reject" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(r) = report {
            section aria-labelledby="egress" {
                h2 #egress { "Egress in the last 7 days" }
                p.muted { (r.invocations) " invocations read" @if r.truncated { " (the newest; there were more)" } "." }
                @if r.contacted.is_empty() { p { "It contacted no origin." } } @else {
                    table {
                        thead { tr { th { "Origin" } th { "Invocations" } th { "Last seen" } th { "Declared" } } }
                        tbody { @for o in &r.contacted { tr {
                            td data-label="Origin" { code { (o.origin) } }
                            td data-label="Invocations" { (o.invocations) }
                            td data-label="Last seen" { (when(Some(o.last_seen))) }
                            td data-label="Declared" { (if o.declared { "in its manifest" } else { "a base URL" }) }
                        } } }
                    }
                }
                dl.facts {
                    dt { "Declared, never contacted" } dd { @if r.declared_unused.is_empty() { "none" } @else { (r.declared_unused.join(", ")) } }
                    dt { "Permissions never used" } dd { @if r.permissions_unused.is_empty() { "none" } @else { (r.permissions_unused.join(", ")) } }
                    dt { "Denied" } dd { @if r.denials.is_empty() { "nothing" } @else { (r.denials.iter().map(|d| format!("{} ({})", d.kind, d.invocations)).collect::<Vec<_>>().join(", ")) } }
                }
            }
        }
    };
    layout(Some(session), provider, "Connectors", body)
}
