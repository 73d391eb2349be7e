//! The event outbox: events are written with the change they describe
//! ([`super::IntegrationStore::apply`]) and read here, by `GET /events` and by the relay, and
//! pruned by the maintenance task.
//!
//! Pruning removes only a prefix of each tenant's stream: an event goes only when every earlier
//! event of its tenant goes too. A poller's cursor therefore either still has every event after
//! it, or is older than the oldest kept ([`OutboxStore::oldest_event_cursor`]), which `GET
//! /events` answers `410 Gone` instead of skipping silently.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;

use super::StoreError;
use super::sql::{PRUNE_BATCH, map_error, parse_json, sql_impl};
use crate::events::StoredEvent;

/// Reads and delivery marks of the outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// The tenant's events after `after_seq`, oldest first.
    async fn events(&self, tenant_id: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events not yet delivered to the broker, oldest first.
    async fn undelivered_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// Marks events (tenant, seq) delivered.
    async fn mark_delivered(&self, events: &[(String, i64)]) -> Result<(), StoreError>;

    /// The cursor from which the tenant's kept events follow without a gap: the sequence number
    /// before its oldest kept event, or (when none is kept) of its last event; 0 when nothing was
    /// ever pruned.
    async fn oldest_event_cursor(&self, tenant_id: &str) -> Result<i64, StoreError>;

    /// Removes the events no longer kept: delivered before `delivered_before`, and any written
    /// before `written_before`; of each tenant only the prefix of its stream in which every event
    /// may go. Returns how many.
    async fn prune_events(
        &self,
        delivered_before: OffsetDateTime,
        written_before: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

fn decode_event<R: Row>(row: &R) -> Result<StoredEvent, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let document: String = row.try_get("cloud_event").map_err(map_error)?;
    Ok(StoredEvent {
        tenant_id: row.try_get("tenant_id").map_err(map_error)?,
        seq: row.try_get("seq").map_err(map_error)?,
        cloud_event: parse_json(&document)?,
    })
}

sql_impl! {
    #[async_trait]
    impl OutboxStore for SqlStore<D> {
        async fn events(&self, tenant_id: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
            let query = sqlx::query(
                "SELECT tenant_id, seq, cloud_event FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after_seq)
            .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(decode_event).collect()
        }

        async fn undelivered_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
            let query = sqlx::query(
                "SELECT tenant_id, seq, cloud_event FROM events WHERE delivered_at IS NULL \
                 ORDER BY at, tenant_id, seq LIMIT $1",
            )
            .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(decode_event).collect()
        }

        async fn mark_delivered(&self, events: &[(String, i64)]) -> Result<(), StoreError> {
            let now = crate::domain::now();
            let mut tx = self.pool.begin().await.map_err(map_error)?;
            for (tenant, seq) in events {
                sqlx::query("UPDATE events SET delivered_at = $1 WHERE tenant_id = $2 AND seq = $3")
                    .bind(now)
                    .bind(tenant.clone())
                    .bind(*seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
            }
            tx.commit().await.map_err(map_error)
        }

        async fn oldest_event_cursor(&self, tenant_id: &str) -> Result<i64, StoreError> {
            let oldest = self
                .read_optional(sqlx::query("SELECT MIN(seq) AS seq FROM events WHERE tenant_id = $1").bind(tenant_id))
                .await?
                .map(|row| row.try_get::<Option<i64>, _>("seq").map_err(map_error))
                .transpose()?
                .flatten();
            if let Some(seq) = oldest {
                return Ok(seq - 1);
            }
            let head = self
                .read_optional(sqlx::query("SELECT event_seq FROM tenant_heads WHERE tenant_id = $1").bind(tenant_id))
                .await?;
            head.map_or(Ok(0), |row| row.try_get::<i64, _>("event_seq").map_err(map_error))
        }

        async fn prune_events(
            &self,
            delivered_before: OffsetDateTime,
            written_before: OffsetDateTime,
        ) -> Result<u64, StoreError> {
            let streams = self
                .read_all(sqlx::query("SELECT tenant_id, MIN(seq) AS first, MAX(seq) AS last FROM events GROUP BY tenant_id"))
                .await?;
            let mut deleted = 0;
            for stream in streams {
                let tenant: String = stream.try_get("tenant_id").map_err(map_error)?;
                let first: i64 = stream.try_get("first").map_err(map_error)?;
                let last: i64 = stream.try_get("last").map_err(map_error)?;
                // The tenant's first event that stays (an event written since is later still).
                let kept = sqlx::query(
                    "SELECT MIN(seq) AS seq FROM events WHERE tenant_id = $1 AND NOT \
                     ((delivered_at IS NOT NULL AND delivered_at < $2) OR at < $3)",
                )
                .bind(&tenant)
                .bind(delivered_before)
                .bind(written_before);
                let keep_from = match self.read_optional(kept).await? {
                    Some(row) => row.try_get::<Option<i64>, _>("seq").map_err(map_error)?.unwrap_or(last + 1),
                    None => last + 1,
                };
                let mut from = first;
                while from < keep_from {
                    let to = (from + PRUNE_BATCH).min(keep_from);
                    let done = sqlx::query("DELETE FROM events WHERE tenant_id = $1 AND seq < $2")
                        .bind(&tenant)
                        .bind(to)
                        .execute(&self.pool)
                        .await
                        .map_err(map_error)?;
                    deleted += D::rows_affected(&done);
                    from = to;
                }
            }
            Ok(deleted)
        }
    }
}
