//! `GET /api/v1/integrations/export` and `POST /api/v1/integrations/import`: see [`crate::bulk`].

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::extract::QueryOf;
use super::extract::{media_type, parse_json};
use super::problem::{Problem, ProblemKind, ProblemResponses};
use crate::bulk::{EXPORT_FORMAT, ExportDocument, ImportDocument, ImportReport, MAX_IMPORT_BYTES, MAX_IMPORT_ITEMS};
use crate::domain::IntegrationSpec;
use crate::identity::{Admin, Reader};

/// NDJSON: one JSON document per line.
const NDJSON: &str = "application/x-ndjson";

/// The media type essences a header lists (`Accept`, `Content-Type`), lower-cased.
fn media_types(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(media_type).collect()
}

/// Export every integration of the tenant.
///
/// What a client sets of each integration (AuthRefs, never secrets), in name order, without ids,
/// status or health: the file to import into another environment. `Accept: application/x-ndjson`
/// gives one integration per line instead of one document.
#[utoipa::path(get, path = "/api/v1/integrations/export", tag = "integrations", operation_id = "exportIntegrations",
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Every integration of the tenant, in name order (NDJSON: one `IntegrationSpec` per line)", content(
            (ExportDocument = "application/json"),
            (Vec<IntegrationSpec> = "application/x-ndjson"),
        )),
        ProblemResponses,
    ))]
pub async fn export_integrations(
    reader: Reader,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let ndjson = media_types(&headers, header::ACCEPT).iter().any(|t| t == NDJSON);
    let body = crate::bulk::export(&state.catalog, &reader, ndjson).await?;
    let content_type = if ndjson { NDJSON } else { "application/json" };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response())
}

/// Options of an import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Report what would change, and change nothing.
    #[serde(rename = "dryRun")]
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// Import integrations: create or update by name.
///
/// The body is an export document (`application/json`) or one integration per line
/// (`application/x-ndjson`), up to 10,000 integrations, 256 KiB each, and 16 MiB in all. A name not in the tenant is
/// created (in `draft`); a known one is updated when it differs and left alone when it does not.
/// Each item is decided on its own: the answer lists every item's result (`created`, `updated`,
/// `unchanged`, or `error` with the reason), and one bad item does not stop the others. Every
/// change is validated, audited and evented like a `POST` or `PUT`. `?dryRun=true` reports the
/// same results and changes nothing.
#[utoipa::path(post, path = "/api/v1/integrations/import", tag = "integrations", operation_id = "importIntegrations",
    params(ImportParams),
    request_body(description = "An export document, or one integration (an `IntegrationSpec`) per line; an item that is not a valid integration is that item's error in the answer", content(
        (ImportDocument = "application/json"),
        (serde_json::Value = "application/x-ndjson"),
    )),
    security(("bearer" = ["integrations.admin"])),
    responses(
        (status = 200, description = "What happened to each item", body = ImportReport),
        ProblemResponses,
    ))]
pub async fn import_integrations(
    admin: Admin,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<ImportParams>,
    request: Request,
) -> Result<Response, Problem> {
    let content_type = media_types(request.headers(), header::CONTENT_TYPE);
    let ndjson = match content_type.first().map(String::as_str) {
        Some("application/json") => false,
        Some(NDJSON) => true,
        _ => {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                format!("send an export document as `application/json`, or one integration per line as `{NDJSON}`"),
            ));
        }
    };
    let too_large = || {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            format!(
                "an import is at most {MAX_IMPORT_BYTES} bytes; split the file (import matches by name, so parts can be imported one after another)"
            ),
        )
    };
    let body = axum::body::to_bytes(request.into_body(), MAX_IMPORT_BYTES).await.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
        if limited { too_large() } else { Problem::bad_request(format!("cannot read the body: {e}")) }
    })?;
    // Items stay text until each is imported: the body is the only large allocation.
    let items: Vec<Result<&str, String>> = if ndjson {
        let text = std::str::from_utf8(&body).map_err(|_| Problem::bad_request("the body is not UTF-8"))?;
        let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
        if lines.len() > MAX_IMPORT_ITEMS {
            return Err(Problem::invalid_field(
                "integrations",
                format!(
                    "an import holds at most {MAX_IMPORT_ITEMS} integrations (got {}); split the file",
                    lines.len()
                ),
            ));
        }
        lines.into_iter().map(Ok).collect()
    } else {
        let document: ImportDocument = parse_json(&body)?;
        if let Some(format) = document.format.as_deref().filter(|f| *f != EXPORT_FORMAT) {
            return Err(Problem::invalid_field("format", format!("must be `{EXPORT_FORMAT}` (got `{format}`)")));
        }
        document.integrations.into_iter().map(|raw| Ok(raw.get())).collect()
    };
    let report = crate::bulk::import(&state.catalog, &admin, items, params.dry_run.unwrap_or(false)).await?;
    Ok(axum::Json(report).into_response())
}
