//! The loaded connectors, one connector (permissions, versions, egress report), and a
//! reviewer's decision on a pending version.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::identity::session::ConsoleSession;
use crate::identity::{Auditor, ConnectorsReader, Grant, PluginsAdmin};
use crate::service::ServiceError;

use super::layout::{layout, when, yes_no};
use super::{ConsoleState, PageError, csrf_refused, problem_of, session_of, signed_in, with_token};

/// The connectors page: every loaded connector, the files refused at load, and the versions
/// waiting for a decision (shown to `plugins.admin` only).
pub(super) fn connectors_html(
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

pub(super) fn permissions_view(p: &stella_runtime::manifest::Permissions) -> Markup {
    html! {
        dt { "Hosts it may reach" } dd { @if p.hosts.is_empty() { "its integration's base URL only" } @else { (p.hosts.join(", ")) } }
        dt { "May read secrets' values" } dd { (yes_no(p.reveal_secrets)) }
        dt { "May sign JWTs" } dd { (yes_no(p.sign_jwt)) }
    }
}

/// One connector: the loaded version's permissions and limits, the stored versions with the
/// pending ones' permission diff and decisions (for `plugins.admin`), and its egress report.
pub(super) fn connector_html(
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

/// Every loaded connector, and (for `plugins.admin`) every version waiting for a decision.
pub(super) async fn connectors_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<ConnectorsReader>(&state, &headers).await?;
    let connectors = state.catalog.loaded_connectors(&reader);
    let loaded: Vec<_> = connectors.iter().map(|c| crate::http::plugins::describe(&state, c)).collect();
    let pending = match session.principal.grant::<PluginsAdmin>() {
        Ok(admin) => Some(state.catalog.pending_plugins(&admin).await?),
        Err(_) => None,
    };
    let signers = state.catalog.active_signers(&reader).await?;
    Ok(Html(connectors_html(&session, &loaded, &signers, connectors.failures(), pending.as_deref())).into_response())
}

/// One connector: what it may do, its stored versions (for `plugins.admin`, with the decisions
/// to take), and its egress report (for whoever reads the ledger).
pub(super) async fn connector_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(provider): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let session = session_of(&state, &headers).await?;
    render_connector(&state, &session, &provider, None).await
}

pub(super) async fn render_connector(
    state: &ConsoleState,
    session: &ConsoleSession,
    provider: &str,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let principal = &session.principal;
    let reader = principal.grant::<ConnectorsReader>().map_err(|_| PageError::Forbidden(ConnectorsReader::SCOPE))?;
    let connectors = state.catalog.loaded_connectors(&reader);
    let loaded = connectors.get(provider).map(|c| crate::http::plugins::describe(state, c));
    let versions = match principal.grant::<PluginsAdmin>() {
        Ok(admin) => Some(state.catalog.plugin_versions(&admin, provider).await?),
        Err(_) => None,
    };
    if loaded.is_none() && versions.as_ref().is_none_or(|v| v.is_empty()) {
        return Err(PageError::Service(ServiceError::NotFound));
    }
    let report = match principal.grant::<Auditor>() {
        Ok(auditor) => {
            let since = crate::domain::unix_ms(crate::domain::now()) - 7 * 24 * 3600 * 1000;
            Some(state.catalog.egress_report(&auditor, provider, since).await?)
        }
        Err(_) => None,
    };
    let (status, text) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    let html =
        connector_html(session, provider, loaded.as_ref(), versions.as_deref(), report.as_ref(), text.as_deref());
    Ok((status, Html(html)).into_response())
}

/// A reviewer's decision on a pending version.
#[derive(Debug, Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    digest: Option<String>,
    reason: Option<String>,
}

/// Approves (of exactly the permissions shown: their digest) or rejects (with a reason) a
/// version, as the API does; then the connector's page again.
pub(super) async fn decide_version(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path((provider, version, decision)): axum::extract::Path<(String, String, String)>,
    form: Result<axum::Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<PluginsAdmin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let done = match decision.as_str() {
        "approve" => {
            let digest = form.digest.unwrap_or_default();
            state.catalog.approve_plugin(&admin, &provider, &version, &digest).await.map(|_| ())
        }
        "reject" => {
            let reason = form.reason.unwrap_or_default();
            state.catalog.reject_plugin(&admin, &provider, &version, &reason).await.map(|_| ())
        }
        _ => Err(ServiceError::NotFound),
    };
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/console/connectors/{provider}")).into_response()),
        Err(e) => {
            let error = problem_of(e);
            render_connector(&state, &session, &provider, Some(error)).await
        }
    }
}
