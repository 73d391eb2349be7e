//! The ledger: the filtered list of invocations and one invocation with its record.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use crate::identity::Auditor;
use crate::identity::session::ConsoleSession;
use crate::query::{InvocationParams, Page};
use crate::service::ServiceError;

use super::layout::{FormValues, layout, next_link, record_view, when};
use super::{ConsoleState, PageError, read_form, signed_in, status_of};

/// The ledger: the newest invocations the session may read, filtered by the API's filters.
pub(super) fn invocations_html(
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
pub(super) fn invocation_html(session: &ConsoleSession, e: &crate::ledger::LedgerEntry) -> String {
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

pub(super) async fn invocations_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, auditor) = signed_in::<Auditor>(&state, &headers).await?;
    let (values, query) = read_form::<InvocationParams>(&fields);
    let (page, error) = match query.and_then(InvocationParams::parse) {
        Ok(query) => (state.catalog.invocations(&auditor, &query).await?, None),
        Err(e) => (Page { items: Vec::new(), next_cursor: None }, Some(e.message)),
    };
    let html = invocations_html(&session, &values, &page.items, page.next_cursor.as_deref(), error.as_deref());
    Ok((status_of(&error), Html(html)).into_response())
}

pub(super) async fn invocation_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let (session, auditor) = signed_in::<Auditor>(&state, &headers).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::InvocationNotFound))?;
    let entry = state.catalog.invocation(&auditor, id).await?;
    Ok(Html(invocation_html(&session, &entry)).into_response())
}
