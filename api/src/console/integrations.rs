//! The integrations: the list with its counts and filters, one integration (health, history,
//! audit, actions), and the form that creates one; the handlers and their markup.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::audit::AuditEntry;
use crate::domain::{Integration, rfc3339};
use crate::health::{CheckOutcome, HealthCheck, HealthReport, HealthState};
use crate::identity::session::ConsoleSession;
use crate::identity::{Admin, Reader};
use crate::lifecycle::Action;
use crate::query::{ListParams, Page, PageRequest};
use crate::service::ServiceError;

use super::layout::{
    AUDIT_ROWS, FormValues, HISTORY_ROWS, layout, next_link, outcome_class, percent, record_view, when,
};
use super::{ConsoleState, PageError, csrf_refused, problem_of, read_form, signed_in, status_of, with_token};

/// The integrations page: the tenant's counts by status and health, the filters, the list with
/// each one's uptime over 24 hours.
pub(super) fn integrations_html(
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
pub(super) struct IntegrationView {
    /// The integration.
    pub integration: Integration,
    /// Its health: state, uptime, last test, recent checks.
    pub report: HealthReport,
    /// Its audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// The latency of the checks over time (oldest left) as inline SVG, each check a point coloured
/// by its outcome with its time, outcome and latency as its title: drawn by the server, so it
/// works offline and prints.
pub(super) fn latency_chart(checks: &[HealthCheck]) -> Markup {
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
pub(super) fn history_strip(checks: &[HealthCheck]) -> Markup {
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
pub(super) fn integration_html(session: &ConsoleSession, view: &IntegrationView, error: Option<&str>) -> String {
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
pub(super) struct NewIntegration {
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
pub(super) fn new_integration_html(
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

pub(super) async fn integrations_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<Reader>(&state, &headers).await?;
    // The API's own reading of the same parameters: what it refuses, the page refuses (and says).
    let (values, query) = read_form::<ListParams>(&fields);
    let query = query.and_then(|mut params| {
        params.limit.get_or_insert(super::layout::PAGE_ROWS);
        params.parse()
    });
    let counts = state.catalog.state_counts(&reader).await?;
    let (page, error) = match query {
        Ok(query) => (state.catalog.list(&reader, &query).await?, None),
        Err(e) => (Page { items: Vec::new(), next_cursor: None }, Some(e.message)),
    };
    let ids: Vec<uuid::Uuid> = page.items.iter().map(|i| i.integration_id).collect();
    let uptime = state.catalog.uptime_24h(&reader, &ids).await?;
    let next = page.next_cursor.as_deref();
    let html = integrations_html(&session, &values, &counts, &page.items, &uptime, next, error.as_deref());
    Ok((status_of(&error), Html(html)).into_response())
}

/// What one integration's page shows (read anew for every answer).
pub(super) async fn integration_view(
    state: &ConsoleState,
    reader: &Reader,
    id: uuid::Uuid,
) -> Result<IntegrationView, PageError> {
    let integration = state.catalog.get(reader, id).await?;
    let report = state.catalog.health_report(reader, id, &PageRequest::first(HISTORY_ROWS)).await?;
    let audit = state.catalog.audit(reader, id, 0, AUDIT_ROWS).await?.items;
    Ok(IntegrationView { integration, report, audit })
}

pub(super) async fn integration_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<Reader>(&state, &headers).await?;
    // Not an id, or another tenant's: the same 404 as the API's.
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::NotFound))?;
    let view = integration_view(&state, &reader, id).await?;
    Ok(Html(integration_html(&session, &view, None)).into_response())
}

/// A lifecycle action's form: the session's token, and a pause's reason and ticket.
#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    reason: Option<String>,
    ticket: Option<String>,
}

/// `activate`, `test`, `pause` or `resume`, as the API does them; then the page again (with the
/// API's error when the action was refused).
pub(super) async fn integration_action(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
    form: Result<axum::Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<Admin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::NotFound))?;
    let catalog = &state.catalog;
    let Some(action) = Action::parse(&action) else { return Err(PageError::Service(ServiceError::NotFound)) };
    let done = match action {
        Action::Activate => catalog.activate(&admin, id).await.map(|_| ()),
        Action::Test => catalog.test(&admin, id).await.map(|_| ()),
        Action::Pause => {
            let reason = form.reason.unwrap_or_default();
            let ticket = form.ticket.filter(|t| !t.trim().is_empty());
            catalog.pause(&admin, id, reason, ticket).await.map(|_| ())
        }
        Action::Resume => catalog.resume(&admin, id).await.map(|_| ()),
    };
    match done {
        // After a change, the page is read again (a reload does not repeat the action).
        Ok(()) => Ok(Redirect::to(&format!("/console/integrations/{id}")).into_response()),
        Err(ServiceError::NotFound) => Err(PageError::Service(ServiceError::NotFound)),
        Err(e) => {
            let (status, text) = problem_of(e);
            let view = integration_view(&state, &admin.reader(), id).await?;
            Ok((status, Html(integration_html(&session, &view, Some(&text)))).into_response())
        }
    }
}

pub(super) async fn new_integration_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (session, _) = signed_in::<Admin>(&state, &headers).await?;
    let providers = providers(&state);
    Ok(Html(new_integration_html(&session, &providers, &NewIntegration::default(), None)).into_response())
}

/// The providers of the connectors loaded now, with their types.
pub(super) fn providers(state: &ConsoleState) -> Vec<(String, Vec<String>)> {
    state
        .catalog
        .connectors()
        .iter()
        .map(|c| {
            let types = c.manifest().connector.types.iter().map(|t| t.as_str().to_string()).collect();
            (c.provider().to_string(), types)
        })
        .collect()
}

/// Creates an integration from the form, as `POST /api/v1/integrations` does from JSON.
pub(super) async fn create_integration(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form: Result<axum::Form<NewIntegration>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<Admin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let refused = |status: StatusCode, text: &str, form: &NewIntegration| {
        (status, Html(new_integration_html(&session, &providers(&state), form, Some(text)))).into_response()
    };
    let configuration: serde_json::Value = match form.configuration.trim() {
        "" => serde_json::json!({}),
        text => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &format!("configuration: {e}"), &form)),
        },
    };
    let optional = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let tags: Vec<String> = form.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let document = serde_json::json!({
        "name": form.name.trim(),
        "type": form.integration_type,
        "provider": form.provider,
        "baseUrl": optional(&form.base_url),
        "authRef": optional(&form.auth_ref),
        "environment": optional(&form.environment),
        "description": optional(&form.description),
        "tags": tags,
        "configuration": configuration,
    });
    // The API's own reading of a body, so the console accepts exactly what the API does.
    let bytes = document.to_string().into_bytes();
    let spec: crate::domain::IntegrationSpec = match crate::domain::read_json(&bytes) {
        Ok(spec) => spec,
        Err(e) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &format!("{}: {}", e.field, e.message), &form)),
    };
    match state.catalog.create(&admin, spec).await {
        Ok(created) => Ok(Redirect::to(&format!("/console/integrations/{}", created.integration_id)).into_response()),
        Err(e) => {
            let (status, text) = problem_of(e);
            Ok(refused(status, &text, &form))
        }
    }
}
