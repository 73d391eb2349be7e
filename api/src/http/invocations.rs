//! `/api/v1/invocations`: the invocation ledger, for a tenant's auditors (`integrations.audit`)
//! and, across tenants, for `plugins.admin`. Another tenant's invocation is a 404.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use stella_runtime::FailureClass;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::integrations::{page_limit, query_problem};
use super::problem::{Problem, ProblemResponses};
use crate::domain::unix_ms;
use crate::identity::Auditor;
use crate::ledger::{InvocationFilter, InvocationPosition, LedgerEntry, Operation};

/// Longest value of a text filter.
const MAX_FILTER_LEN: usize = 2048;

/// A page of the ledger.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvocationPage {
    /// Entries, newest first, without their records (`GET /api/v1/invocations/{id}` has it).
    pub items: Vec<LedgerEntry>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /api/v1/invocations`; each filter given narrows the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct InvocationParams {
    /// Of this connector provider.
    provider: Option<String>,
    /// Of the component with this sha256 (hex).
    sha256: Option<String>,
    /// Of this integration.
    #[param(format = Uuid)]
    integration_id: Option<String>,
    /// `test-connection` or `check-health`.
    #[param(value_type = Option<Operation>)]
    operation: Option<String>,
    /// `success`, a failure class (`auth`, `network`, …) or a health outcome (`healthy`, …).
    outcome: Option<String>,
    /// With this failure class (`auth`, `network`, `tls`, …): a failed test's or a check's.
    #[param(value_type = Option<FailureClass>)]
    failure_class: Option<String>,
    /// Denied something (`true`) or nothing (`false`).
    denied: Option<bool>,
    /// Contacted an origin other than its integration's base URL's (`true`) or not (`false`).
    outside_base_url: Option<bool>,
    /// Read a secret's value (`true`) or not (`false`).
    revealed_secret: Option<bool>,
    /// Sent a secret's value outside the credential the host wrote, in a URL, a header or a body
    /// (`true`) or not (`false`).
    secret_in_request: Option<bool>,
    /// Denied something of this kind (`origin`, `address`, `secret-ref`, `reveal`, …).
    denial_kind: Option<String>,
    /// Contacted this origin (`https://host[:port]`).
    origin: Option<String>,
    /// Used this AuthRef (`ref://…`).
    auth_ref: Option<String>,
    /// Started at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Started before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// The `nextCursor` of the previous page.
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

fn text(name: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_FILTER_LEN || v.chars().any(char::is_control) => Err(
            Problem::bad_request(format!("`{name}` must be 1 to {MAX_FILTER_LEN} bytes without control characters")),
        ),
        other => Ok(other),
    }
}

fn time_ms(name: &str, value: Option<String>) -> Result<Option<i64>, Problem> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map(unix_ms)
                .map_err(|_| Problem::bad_request(format!("`{name}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// The opaque cursor of a position: base64url of `<start ms>.<id>`.
pub(crate) fn cursor(position: &InvocationPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", position.at_ms, position.id))
}

fn parse_cursor(value: &str) -> Result<InvocationPosition, Problem> {
    let bad = || Problem::bad_request("`after` is not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok(InvocationPosition { at_ms: at.parse().map_err(|_| bad())?, id: Uuid::parse_str(id).map_err(|_| bad())? })
}

impl InvocationParams {
    pub(crate) fn into_query(self) -> Result<(InvocationFilter, Option<InvocationPosition>, u32), Problem> {
        let limit = page_limit(self.limit)?;
        let after = self.after.as_deref().map(parse_cursor).transpose()?;
        let operation = match self.operation.as_deref() {
            None => None,
            Some(op) => Some(
                Operation::parse(op)
                    .ok_or_else(|| Problem::bad_request("`operation` must be `test-connection` or `check-health`"))?,
            ),
        };
        let integration_id = match self.integration_id.as_deref() {
            None => None,
            Some(id) => Some(Uuid::parse_str(id).map_err(|_| Problem::bad_request("`integrationId` is not a UUID"))?),
        };
        let failure_class = match self.failure_class.as_deref() {
            None => None,
            Some(class) => Some(FailureClass::parse(class).map(|c| c.as_str().to_string()).ok_or_else(|| {
                let classes: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
                Problem::bad_request(format!("`failureClass` must be one of: {}", classes.join(", ")))
            })?),
        };
        let filter = InvocationFilter {
            provider: text("provider", self.provider)?,
            sha256: text("sha256", self.sha256)?,
            integration_id,
            operation,
            outcome: text("outcome", self.outcome)?,
            failure_class,
            denied: self.denied,
            outside_base_url: self.outside_base_url,
            revealed_secret: self.revealed_secret,
            secret_in_request: self.secret_in_request,
            denial_kind: text("denialKind", self.denial_kind)?,
            origin: text("origin", self.origin)?,
            auth_ref: text("authRef", self.auth_ref)?,
            since_ms: time_ms("since", self.since)?,
            until_ms: time_ms("until", self.until)?,
        };
        Ok((filter, after, limit))
    }
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
    params: Result<Query<InvocationParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let (filter, after, limit) = params.into_query()?;
    let items = state.catalog.invocations(&auditor, &filter, after.as_ref(), limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| cursor(&InvocationPosition { at_ms: unix_ms(e.at), id: e.invocation_id })))
        .flatten();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let p = InvocationPosition { at_ms: 1_796_000_000_123, id: Uuid::new_v4() };
        assert_eq!(parse_cursor(&cursor(&p)).unwrap(), p);
        for bad in ["", "x", "MTIz", &URL_SAFE_NO_PAD.encode("12.not-a-uuid")] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}

/// The window of an egress report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EgressParams {
    /// From when (RFC 3339); default: seven days ago.
    #[param(format = DateTime)]
    since: Option<String>,
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
    params: Result<Query<EgressParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let since = match time_ms("since", params.since)? {
        Some(ms) => ms,
        None => unix_ms(crate::domain::now()) - 7 * 86_400_000,
    };
    let provider = text("provider", Some(provider))?.unwrap_or_default();
    Ok(axum::Json(state.catalog.egress_report(&auditor, &provider, since).await?).into_response())
}

/// The paging of an export, as the stream carries it between pages.
struct ExportState {
    state: AppState,
    auditor: Auditor,
    filter: InvocationFilter,
    after: Option<InvocationPosition>,
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
    params: Result<Query<InvocationParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let (filter, after, _) = params.into_query()?;
    let start = ExportState { state, auditor, filter, after, done: false };
    let pages = futures_util::stream::unfold(start, |mut s| async move {
        if s.done {
            return None;
        }
        match s.state.catalog.invocations(&s.auditor, &s.filter, s.after.as_ref(), EXPORT_PAGE).await {
            Ok(page) => {
                s.done = page.len() < EXPORT_PAGE as usize;
                s.after = page.last().map(|e| InvocationPosition { at_ms: unix_ms(e.at), id: e.invocation_id });
                let mut lines = Vec::new();
                for entry in &page {
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
