//! `/api/v1/integrations`: the spec's ten endpoints, the audit trail and the latest test.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{JsonBody, QueryOf, etag, if_match, integration_id};
use super::problem::{Problem, ProblemResponses};
use crate::audit::AuditEntry;
use crate::domain::{Integration, IntegrationSpec, TestRun};
use crate::health::HealthReport;
use crate::identity::{Admin, Reader};
use crate::query::{HistoryParams, ListParams, Page, SeqParams};
use crate::service::{Created, Tested};

/// Longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A page of integrations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationPage {
    /// The integrations, ordered by name, then id.
    pub items: Vec<Integration>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An integration with its ETag.
fn with_etag(status: StatusCode, integration: &Integration, body: impl Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(integration.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/v1/integrations/{id}")).expect("an id is a valid header value")
}

/// List integrations with filtering.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", operation_id = "listIntegrations",
    params(ListParams),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "A page of integrations, ordered by name, then id", body = IntegrationPage),
        ProblemResponses,
    ))]
pub async fn list_integrations(
    reader: Reader,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<ListParams>,
) -> Result<Response, Problem> {
    let Page { items, next_cursor } = state.catalog.list(&reader, &params.parse()?).await?;
    Ok(axum::Json(IntegrationPage { items, next_cursor }).into_response())
}

/// Create an integration (in `draft`).
///
/// With an `Idempotency-Key`, a retry of the same request returns the first response (with
/// `Idempotent-Replayed: true`) instead of creating a second integration.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", operation_id = "createIntegration",
    request_body = IntegrationSpec,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = r"^[!-~]{1,255}$", description = "Makes retries safe: 1 to 255 visible ASCII characters")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 201, description = "Created", body = Integration,
            headers(("Location" = String, description = "The integration's URL"), ("ETag" = String, description = "Its version"))),
        ProblemResponses,
    ))]
pub async fn create_integration(
    admin: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<IntegrationSpec>,
) -> Result<Response, Problem> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| {
                !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
            });
            Some(key.ok_or_else(|| Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters"))?)
        }
    };
    let created = match key {
        None => Created::New(Box::new(state.catalog.create(&admin, spec).await?)),
        Some(key) => state.catalog.create_once(&admin, spec, key).await?,
    };
    let (status, row, replayed) = match created {
        Created::New(row) => (StatusCode::CREATED, *row, false),
        Created::Replayed { status, body } => {
            let row: Integration = serde_json::from_str(&body).map_err(|e| {
                Problem::from(crate::service::ServiceError::internal(format!("a kept response does not parse: {e}")))
            })?;
            (StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED), row, true)
        }
    };
    let mut response = with_etag(status, &row, &row);
    response.headers_mut().insert(header::LOCATION, location(&row.integration_id.to_string()));
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Get an integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", operation_id = "getIntegration",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "The integration", body = Integration,
            headers(("ETag" = String, description = "Its version, for If-Match"))),
        ProblemResponses,
    ))]
pub async fn get_integration(
    reader: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = state.catalog.get(&reader, integration_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &row, &row))
}

/// Replace what a client sets on an integration. Requires `If-Match` with its ETag.
#[utoipa::path(put, path = "/api/v1/integrations/{id}", tag = "integrations", operation_id = "updateIntegration",
    request_body = IntegrationSpec,
    params(("id" = uuid::Uuid, Path, description = "The integration's id"),
        ("If-Match" = String, Header, pattern = r#"^(\*|"[1-9][0-9]{0,17}")$"#, description = "The ETag of the version the change is based on, or `*`")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "The updated integration", body = Integration,
            headers(("ETag" = String, description = "Its new version"))),
        ProblemResponses,
    ))]
pub async fn update_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<IntegrationSpec>,
) -> Result<Response, Problem> {
    let id = integration_id(&id)?;
    let if_match = found_first(&state, &admin.reader(), id, if_match(&headers)).await?;
    let row = state.catalog.update(&admin, id, if_match, spec).await?;
    Ok(with_etag(StatusCode::OK, &row, &row))
}

/// Delete an integration.
///
/// `If-Match` is optional: when sent (the ETag of a version, or `*`), the integration is deleted
/// only if that version is current (412 otherwise).
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", operation_id = "deleteIntegration",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 204, description = "Deleted"),
        ProblemResponses,
    ))]
pub async fn delete_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = integration_id(&id)?;
    let if_match = found_first(&state, &admin.reader(), id, if_match(&headers)).await?;
    state.catalog.delete(&admin, id, if_match).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What the handler read of the request (its headers or query), or what is wrong with it, unless
/// the integration is not the caller's to see: then that 404 comes first, whatever else is wrong
/// with the request, so that no answer tells another tenant anything about it. The service
/// decides which it is; a request that reads well costs no lookup here.
async fn found_first<T>(
    state: &AppState,
    reader: &Reader,
    id: uuid::Uuid,
    parsed: Result<T, Problem>,
) -> Result<T, Problem> {
    match parsed {
        Ok(value) => Ok(value),
        Err(problem) => match state.catalog.get(reader, id).await {
            Ok(_) => Err(problem),
            Err(e) => Err(e.into()),
        },
    }
}

/// Test the integration's connection in the sandbox; the result moves its lifecycle.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/test", tag = "lifecycle", operation_id = "testIntegration",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "The integration after the test, and the test", body = Tested),
        ProblemResponses,
    ))]
pub async fn test_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let tested = state.catalog.test(&admin, integration_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &tested.integration, &tested))
}

/// Submit a draft for verification (the caller is the approver); its connection test runs at once.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/activate", tag = "lifecycle", operation_id = "activateIntegration",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "The integration after its test (active if it passed), and the test", body = Tested),
        ProblemResponses,
    ))]
pub async fn activate_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let tested = state.catalog.activate(&admin, integration_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &tested.integration, &tested))
}

/// Why an integration is paused.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why (1 to 256 characters, not blank).
    #[schema(
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub reason: String,
    /// The ticket tracking the pause.
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub ticket: Option<String>,
}

/// Take an active, degraded or failed integration out of service.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/pause", tag = "lifecycle", operation_id = "pauseIntegration",
    request_body = PauseRequest,
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "The paused integration", body = Integration),
        ProblemResponses,
    ))]
pub async fn pause_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PauseRequest>,
) -> Result<Response, Problem> {
    let id = integration_id(&id)?;
    let row = state.catalog.pause(&admin, id, body.reason, body.ticket).await?;
    Ok(with_etag(StatusCode::OK, &row, &row))
}

/// Return a paused integration to service (`active`, failures reset).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/resume", tag = "lifecycle", operation_id = "resumeIntegration",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "The resumed integration", body = Integration),
        ProblemResponses,
    ))]
pub async fn resume_integration(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let row = state.catalog.resume(&admin, integration_id(&id)?).await?;
    Ok(with_etag(StatusCode::OK, &row, &row))
}

/// Get the health of an integration.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/health", tag = "integrations", operation_id = "getIntegrationHealth",
    params(("id" = uuid::Uuid, Path, description = "The integration's id"), HistoryParams),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Its health", body = HealthReport),
        ProblemResponses,
    ))]
pub async fn get_health(
    reader: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<QueryOf<HistoryParams>, Problem>,
) -> Result<Response, Problem> {
    let id = integration_id(&id)?;
    let page = params.and_then(|QueryOf(p)| Ok(p.parse()?));
    let page = found_first(&state, &reader, id, page).await?;
    Ok(axum::Json(state.catalog.health_report(&reader, id, &page).await?).into_response())
}

/// The last connection test of an integration, with the sandbox's invocation record.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/tests/latest", tag = "integrations", operation_id = "getLatestTest",
    params(("id" = uuid::Uuid, Path, description = "The integration's id")),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "The last test", body = TestRun),
        (status = 204, description = "The integration has not been tested yet"),
        ProblemResponses,
    ))]
pub async fn get_latest_test(
    reader: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    match state.catalog.latest_test(&reader, integration_id(&id)?).await? {
        Some(run) => Ok(axum::Json(run).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A page of audit entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Entries, oldest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The audit trail of an integration: who did what, when, with the spec's details.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/audit", tag = "integrations", operation_id = "getIntegrationAudit",
    params(("id" = uuid::Uuid, Path, description = "The integration's id"), SeqParams),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Its audit entries, oldest first", body = AuditPage),
        ProblemResponses,
    ))]
pub async fn get_audit(
    reader: Reader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<QueryOf<SeqParams>, Problem>,
) -> Result<Response, Problem> {
    let id = integration_id(&id)?;
    let page = params.and_then(|QueryOf(p)| Ok(p.parse()?));
    let (after, limit) = found_first(&state, &reader, id, page).await?;
    let Page { items, next_cursor } = state.catalog.audit(&reader, id, after, limit).await?;
    Ok(axum::Json(AuditPage { items, next_cursor }).into_response())
}
