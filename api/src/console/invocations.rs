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
            label { "Level" select name="level" {
                option value="" { "any" }
                option value="full" selected[v("level") == "full"] { "full record" }
                option value="summary" selected[v("level") == "summary"] { "hourly summary" }
            } }
            (text("since", "Since (RFC 3339)", "2026-11-01T00:00:00Z"))
            (text("until", "Until (RFC 3339)", ""))
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() { p.muted { "No invocation matches." } } @else {
            table {
                thead { tr { th { "When" } th { "Provider" } th { "Operation" } th { "Outcome" } th { "Kept" } th { "Denied" } th { "Origins" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td data-label="When" { a href={"/console/invocations/" (e.invocation_id)} { (when(Some(e.at))) } }
                            td data-label="Provider" { (e.provider) }
                            td data-label="Operation" { (e.operation.as_str()) }
                            td data-label="Outcome" { (e.outcome) }
                            td data-label="Kept" { (kept(e)) }
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

/// How much of an entry the ledger keeps: `full`, or how many checks a summary stands for.
fn kept(e: &crate::ledger::LedgerEntry) -> String {
    match &e.summary {
        Some(s) => format!("summary of {}", s.checks),
        None => "full".to_string(),
    }
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
        @match (&e.record, &e.summary) {
            (Some(record), _) => { (record_view(record)) }
            (None, Some(s)) => {
                h2 { "Summary of " (s.checks) " healthy checks" }
                p {
                    "Each repeated exactly what the check before it did, so the ledger keeps their count and "
                    "timing here, and the record once: "
                    a href={"/console/invocations/" (s.repeats)} { "the full entry they repeat" } "."
                }
                dl.facts {
                    dt { "First" } dd { (when(Some(s.first_at))) }
                    dt { "Last" } dd { (when(Some(s.last_at))) }
                    dt { "Latency" } dd {
                        "median ≤ " (s.latency.quantile(0.5).unwrap_or(0)) " ms, 95th percentile ≤ "
                        (s.latency.quantile(0.95).unwrap_or(0)) " ms, slowest " (s.latency.max_ms) " ms"
                    }
                    dt { "Digest" } dd { code { (s.digest) } }
                }
            }
            (None, None) => { p.muted { "No record is kept of it." } }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Caller, Principal};

    #[test]
    fn a_summary_shows_its_checks_and_links_the_entry_it_repeats() {
        let session = ConsoleSession {
            principal: Principal {
                caller: Caller { tenant: "acme".into(), subject: "alice".into() },
                scopes: vec!["integrations.audit".into()],
            },
            csrf_token: "csrf".into(),
            created_at: crate::domain::now(),
            expires_at: crate::domain::now() + time::Duration::hours(1),
        };
        let full: crate::ledger::LedgerEntry = serde_json::from_value(serde_json::json!({
            "invocationId": "6f1c7a34-2d8e-4b1a-9c3e-0d5f8a7b6c21", "tenantId": "acme",
            "integrationId": "0b8e1d2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d", "provider": "http-probe", "sha256": "ab",
            "operation": "check-health", "at": "2026-12-07T10:05:00Z", "durationMs": 40, "outcome": "healthy",
            "denied": false, "denialKinds": [], "origins": ["https://agent.internal"], "authRefs": [],
            "outsideBaseUrl": false, "revealedSecret": false, "signedJwt": false,
        }))
        .unwrap();
        let mut summary = full.folded(full.invocation_id, full.digest());
        let mut next = full.clone();
        next.duration_ms = 900;
        summary
            .summary
            .as_mut()
            .unwrap()
            .merge(next.folded(full.invocation_id, next.digest()).summary.as_ref().unwrap());
        let page = invocation_html(&session, &summary);
        assert!(page.contains("Summary of 2 healthy checks"), "{page}");
        assert!(page.contains("href=\"/console/invocations/6f1c7a34-2d8e-4b1a-9c3e-0d5f8a7b6c21\""), "{page}");
        assert!(page.contains("slowest 900 ms"), "{page}");
        assert_eq!(kept(&summary), "summary of 2");
        assert_eq!(kept(&full), "full");
    }
}
