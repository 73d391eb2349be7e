//! Operations endpoints (no token): liveness, readiness, metrics, the OpenAPI document and the
//! API reference page rendered from it.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::problem::{Problem, ProblemKind};

/// Liveness and readiness.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Probe {
    /// `ok`.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process is alive", body = Probe)))]
pub async fn healthz() -> Response {
    axum::Json(Probe { status: "ok".into() }).into_response()
}

/// Readiness: the database answers, and has not failed to write for its storage (a full disk, an
/// I/O error) in the last 10 seconds.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve", body = Probe),
        (status = 503, description = "The database is unreachable, or cannot write (its storage is full or failing)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Response, Problem> {
    state.catalog.ready().await?;
    Ok(axum::Json(Probe { status: "ok".into() }).into_response())
}

/// Prometheus metrics: requests and latencies by route, sandbox invocations by outcome, denials
/// by kind.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.catalog.metrics().render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let mut response = state.documents().0.as_str().to_owned().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The API reference, a page rendered from the OpenAPI document (no script, no external asset,
/// so it works on air-gapped sites).
#[utoipa::path(get, path = "/api/v1/docs", tag = "operations", operation_id = "apiReference",
    responses((status = 200, description = "The API reference page", body = String, content_type = "text/html")))]
pub async fn reference_page(State(state): State<AppState>) -> Response {
    let mut response = Html(state.documents().1.as_str().to_owned()).into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(super::reference::content_security_policy()));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Anything no route matches.
pub async fn not_found() -> Problem {
    Problem::new(ProblemKind::NotFound, "no such resource; the API reference is at /api/v1/docs")
}
