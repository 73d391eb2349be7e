//! The event outbox: events are written with the change they describe
//! ([`super::IntegrationStore::apply`]) and read here, by `GET /events` and by the relay.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::StoreError;
use super::sql::{map_error, parse_json, sql_impl};
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
    }
}
