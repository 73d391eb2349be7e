//! `GET /api/v1/events`: the tenant's events (lifecycle, and `invocation.denied` alerts) from the
//! outbox, for consumers without a broker. Events are numbered per tenant without gaps in commit order, so polling with the last
//! `nextCursor` never misses one; each carries a unique CloudEvents `id` to deduplicate by.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::integrations::{page_limit, parse_seq_cursor, query_problem};
use super::problem::{Problem, ProblemResponses};
use crate::identity::Reader;

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// CloudEvents 1.0 JSON documents, oldest first, with the extension attributes `tenantid` and
    /// `integrationid`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    /// Pass as `after` to get the events that follow; unchanged when there were none yet.
    pub next_cursor: String,
}

/// Paging of events.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// The `nextCursor` of the previous page; absent: from the first event.
    #[param(pattern = r"^[0-9]{1,18}$")]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The tenant's events (lifecycle changes and `invocation.denied` alerts) after a cursor.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "listEvents",
    params(EventParams),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Events, oldest first", body = EventPage),
        ProblemResponses,
    ))]
pub async fn list_events(
    reader: Reader,
    State(state): State<AppState>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(query_problem)?;
    let after = parse_seq_cursor(params.after.as_deref(), "after")?;
    let limit = page_limit(params.limit)?;
    let events = state.catalog.events(&reader, after, limit).await?;
    let next_cursor = events.last().map(|e| e.seq).unwrap_or(after).to_string();
    let items = events.into_iter().map(|e| e.cloud_event).collect();
    Ok(axum::Json(EventPage { items, next_cursor }).into_response())
}
