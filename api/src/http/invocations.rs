//! `/api/v1/invocations`: the invocation ledger, for a tenant's auditors (`integrations.audit`)
//! and, across tenants, for `plugins.admin`. Another tenant's invocation is a 404.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::extract::QueryOf;
use super::problem::{Problem, ProblemResponses};
use crate::identity::Auditor;
use crate::ledger::LedgerEntry;
use crate::query::{EgressParams, InvocationParams, InvocationQuery, Page};

/// A page of the ledger.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvocationPage {
    /// Entries, newest first, without their records (`GET /api/v1/invocations/{id}` has it).
    pub items: Vec<LedgerEntry>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// List invocations of connectors, newest first, with filters.
///
/// Tenant auditors (`integrations.audit`, or `integrations.admin`) see their tenant's;
/// `plugins.admin` sees every tenant's.
#[utoipa::path(get, path = "/api/v1/invocations", tag = "invocations", operation_id = "listInvocations",
    params(InvocationParams),
    security(("bearer" = ["integrations.audit"])),
    responses(
        (status = 200, description = "A page of the ledger, newest first", body = InvocationPage),
        ProblemResponses,
    ))]
pub async fn list_invocations(
    auditor: Auditor,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<InvocationParams>,
) -> Result<Response, Problem> {
    let Page { items, next_cursor } = state.catalog.invocations(&auditor, &params.parse()?).await?;
    Ok(axum::Json(InvocationPage { items, next_cursor }).into_response())
}

/// Get one invocation, with the sandbox's record of it.
#[utoipa::path(get, path = "/api/v1/invocations/{id}", tag = "invocations", operation_id = "getInvocation",
    params(("id" = String, Path, description = "The invocation id (a UUID)")),
    security(("bearer" = ["integrations.audit"])),
    responses(
        (status = 200, description = "The invocation and its record", body = LedgerEntry),
        ProblemResponses,
    ))]
pub async fn get_invocation(
    auditor: Auditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    // An id that is not a UUID names no invocation.
    let id = Uuid::parse_str(&id).map_err(|_| Problem::from(crate::service::ServiceError::InvocationNotFound))?;
    Ok(axum::Json(state.catalog.invocation(&auditor, id).await?).into_response())
}

/// A connector's egress report: the origins its invocations contacted (how often, last seen),
/// the origins its manifest declares that none contacted, the permissions it declares and never
/// exercised, and what it was denied, by kind. Within the caller's tenant for its auditors, across
/// tenants for `plugins.admin`; at most the newest 50,000 invocations are read (`truncated`).
#[utoipa::path(get, path = "/api/v1/plugins/{provider}/egress", tag = "invocations", operation_id = "getEgressReport",
    params(("provider" = String, Path, description = "The provider id"), EgressParams),
    security(("bearer" = ["integrations.audit"])),
    responses(
        (status = 200, description = "The report", body = crate::ledger::EgressReport),
        ProblemResponses,
    ))]
pub async fn get_egress_report(
    auditor: Auditor,
    State(state): State<AppState>,
    Path(provider): Path<String>,
    QueryOf(params): QueryOf<EgressParams>,
) -> Result<Response, Problem> {
    let (provider, since) = params.parse(provider)?;
    Ok(axum::Json(state.catalog.egress_report(&auditor, &provider, since).await?).into_response())
}

/// The paging of an export, as the stream carries it between pages.
struct ExportState {
    state: AppState,
    auditor: Auditor,
    query: InvocationQuery,
    done: bool,
}

/// Entries read per page of an export.
const EXPORT_PAGE: u32 = 500;

/// Export invocations as NDJSON (one entry per line, newest first, without records), with the
/// filters of the list; streamed page by page, never built in memory.
#[utoipa::path(get, path = "/api/v1/invocations/export", tag = "invocations", operation_id = "exportInvocations",
    params(InvocationParams),
    security(("bearer" = ["integrations.audit"])),
    responses(
        (status = 200, description = "One entry per line", content_type = "application/x-ndjson", body = Vec<LedgerEntry>),
        ProblemResponses,
    ))]
pub async fn export_invocations(
    auditor: Auditor,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<InvocationParams>,
) -> Result<Response, Problem> {
    let mut query = params.parse()?;
    query.page.limit = EXPORT_PAGE;
    let start = ExportState { state, auditor, query, done: false };
    let pages = futures_util::stream::unfold(start, |mut s| async move {
        if s.done {
            return None;
        }
        match s.state.catalog.invocations(&s.auditor, &s.query).await {
            Ok(page) => {
                s.query.page.after = page.next();
                s.done = s.query.page.after.is_none();
                let mut lines = Vec::new();
                for entry in &page.items {
                    serde_json::to_writer(&mut lines, entry).expect("an entry serializes");
                    lines.push(b'\n');
                }
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(lines)), s))
            }
            // The status is sent: a failure mid-way ends the body early (the client sees a cut
            // stream), and is logged.
            Err(e) => {
                tracing::warn!(error = %e, "an invocation export stopped");
                s.done = true;
                Some((Err(std::io::Error::other(e.to_string())), s))
            }
        }
    });
    let mut response = axum::body::Body::from_stream(pages).into_response();
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}
