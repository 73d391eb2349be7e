//! `GET /api/v1/events`: the tenant's events (lifecycle, and `invocation.denied` alerts) from the
//! outbox, for consumers without a broker. Events are numbered per tenant without gaps in commit
//! order, so polling with the last `nextCursor` never misses one; each carries a unique CloudEvents
//! `id` to deduplicate by. The outbox keeps events for a retention (`[events]`): a cursor older
//! than the oldest kept answers `410 Gone` naming the oldest cursor still available, never a page
//! with a silent gap.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::QueryOf;
use super::problem::{Problem, ProblemResponses};
use crate::identity::Reader;
use crate::query::SeqParams;

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

/// The tenant's events (lifecycle changes and `invocation.denied` alerts) after a cursor, or from
/// the oldest kept without one. A cursor older than the oldest kept answers 410 (`cursor-gone`,
/// with `oldestCursor`).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "listEvents",
    params(SeqParams),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Events, oldest first", body = EventPage),
        ProblemResponses,
    ))]
pub async fn list_events(
    reader: Reader,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<SeqParams>,
) -> Result<Response, Problem> {
    let (after, limit) = params.parse_optional()?;
    let (events, next_cursor) = state.catalog.events(&reader, after, limit).await?;
    let items = events.into_iter().map(|e| e.cloud_event).collect();
    Ok(axum::Json(EventPage { items, next_cursor: next_cursor.to_string() }).into_response())
}
