//! The maintenance task's lease: one row per task, shared by every replica of a database. The
//! replica that takes the lease runs the task; the task is next due an interval after it finished,
//! so replicas do not repeat each other's work, and a replica that died while running it is
//! replaced once its lease expires.

use async_trait::async_trait;

use super::StoreError;
use super::sql::{map_error, sql_impl};

/// The lease of a maintenance task.
#[async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// Takes the task `task` for `owner` until `lease_until_ms`, if it is due at `now_ms` and no
    /// other replica holds it; returns whether it was taken.
    async fn take_maintenance(
        &self,
        task: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Makes the day partitions of the tables that grow with time, from the day of `now_ms` to
    /// [`super::PARTITION_DAYS_AHEAD`] days later (PostgreSQL; nothing on SQLite); returns how
    /// many it made.
    async fn make_partitions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Ends `owner`'s run of `task` at `now_ms`: next due at `next_due_ms`. Returns false when the
    /// lease had passed to another replica meanwhile (its run stands).
    async fn finish_maintenance(
        &self,
        task: &str,
        owner: &str,
        now_ms: i64,
        next_due_ms: i64,
    ) -> Result<bool, StoreError>;
}

sql_impl! {
    #[async_trait]
    impl MaintenanceStore for SqlStore<D> {
        async fn take_maintenance(
            &self,
            task: &str,
            owner: &str,
            now_ms: i64,
            lease_until_ms: i64,
        ) -> Result<bool, StoreError> {
            // One statement: of replicas racing for it, the database lets exactly one match.
            let taken = sqlx::query(
                "UPDATE maintenance SET owner = $2, lease_until_ms = $4 \
                 WHERE task = $1 AND next_due_ms <= $3 AND lease_until_ms <= $3",
            )
            .bind(task)
            .bind(owner)
            .bind(now_ms)
            .bind(lease_until_ms)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
            Ok(D::rows_affected(&taken) == 1)
        }

        async fn make_partitions(&self, now_ms: i64) -> Result<u64, StoreError> {
            self.make_day_partitions(now_ms).await
        }

        async fn finish_maintenance(
            &self,
            task: &str,
            owner: &str,
            now_ms: i64,
            next_due_ms: i64,
        ) -> Result<bool, StoreError> {
            let finished = sqlx::query(
                "UPDATE maintenance SET owner = NULL, lease_until_ms = 0, next_due_ms = $3, last_finished_ms = $4 \
                 WHERE task = $1 AND owner = $2",
            )
            .bind(task)
            .bind(owner)
            .bind(next_due_ms)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
            Ok(D::rows_affected(&finished) == 1)
        }
    }
}
