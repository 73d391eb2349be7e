//! Day partitions (PostgreSQL): the ledger, the health history and its hourly rollups are
//! partitioned by day on their Unix-millisecond time (migration 13), so that retention drops whole
//! days instead of deleting rows (which would leave dead tuples for VACUUM at the rate they were
//! written).
//!
//! Each table has daily partitions `<table>_d<yyyymmdd>` ([`PARTITION_DAYS_AHEAD`] days are made
//! ahead by the maintenance task), `<table>_before` (the rows kept before the upgrade, up to the
//! end of its day) and `<table>_default` (a row outside every partition: a clock far off). A day's
//! partition is made standalone, filled with the rows of its day that strayed into the default
//! partition, and then attached, so that making one never fails on strays.
//!
//! Retention drops every partition that ends at or before the cut-off, whole; rows of the default
//! and `_before` partitions are deleted in batches. A day is kept until all of it is older than the
//! retention: rows stay up to a day longer than the retention says. On SQLite (no partitions) the
//! same prunes delete in batches, then give the freed pages back to the file system
//! (`incremental_vacuum`).

use sqlx::Row;

use super::StoreError;
use super::sql::{map_error, sql_impl};
use crate::domain::DAY_MS;

/// Days of partitions made ahead of today.
pub const PARTITION_DAYS_AHEAD: i64 = 3;

/// A partitioned table, the column it is partitioned on, and the storage parameters of its day
/// partitions.
#[derive(Clone, Copy, Debug)]
pub(super) struct Partitioned {
    pub table: &'static str,
    pub key: &'static str,
    pub storage: &'static str,
}

/// Every partitioned table. Rows that are updated in place (a summary counting its checks, an
/// hour counting its own) leave room in each page (`fillfactor`), so that PostgreSQL writes the
/// new version beside the old (a HOT update: no new index entries, the old version reclaimed on
/// the page) instead of growing the table and its indexes with every check. A ledger row longer
/// than 256 bytes is compressed (`toast_tuple_target`; its record is JSON, which halves).
pub(super) const PARTITIONED: [Partitioned; 3] = [
    Partitioned { table: "invocations", key: "at_ms", storage: "fillfactor = 80, toast_tuple_target = 256" },
    Partitioned { table: "health_checks", key: "checked_ms", storage: "fillfactor = 100" },
    Partitioned { table: "health_hours", key: "hour_ms", storage: "fillfactor = 50" },
];

/// One partition: its name and its range's end (`None`: the default partition).
struct Partition {
    name: String,
    end_ms: Option<i64>,
}

/// The end of a partition's range in PostgreSQL's words (`FOR VALUES FROM (…) TO ('123')`), or
/// `None` for `DEFAULT`.
fn range_end(bound: &str) -> Option<i64> {
    let to = bound.split(" TO (").nth(1)?;
    to.trim_end_matches(')').trim_matches('\'').parse().ok()
}

/// `yyyymmdd` of the day starting at `start_ms`.
fn day_name(start_ms: i64) -> String {
    let day = crate::domain::from_unix_ms(start_ms).date();
    format!("{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

sql_impl! {
    impl SqlStore<D> {
        /// The partitions of `table` (none when it is not partitioned: SQLite).
        async fn partitions(&self, table: &str) -> Result<Vec<Partition>, StoreError> {
            if !D::PARTITIONED {
                return Ok(vec![]);
            }
            let rows = sqlx::query(
                "SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound \
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass",
            )
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
            rows.iter()
                .map(|row| {
                    let name: String = row.try_get("name").map_err(map_error)?;
                    let bound: String = row.try_get("bound").map_err(map_error)?;
                    Ok(Partition { end_ms: range_end(&bound), name })
                })
                .collect()
        }

        /// Makes the day partitions of every partitioned table from the day of `now_ms` to
        /// [`PARTITION_DAYS_AHEAD`] days later, each after the last one there is; returns how many
        /// it made.
        pub(super) async fn make_day_partitions(&self, now_ms: i64) -> Result<u64, StoreError> {
            let mut made = 0;
            for p in PARTITIONED {
                let partitions = self.partitions(p.table).await?;
                if partitions.is_empty() {
                    continue;
                }
                let last_end = partitions.iter().filter_map(|p| p.end_ms).max().unwrap_or(i64::MIN);
                let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
                let mut start = today.max(last_end);
                while start < today + (PARTITION_DAYS_AHEAD + 1) * DAY_MS {
                    self.make_partition(p, start).await?;
                    made += 1;
                    start += DAY_MS;
                }
            }
            Ok(made)
        }

        /// Makes `p`'s partition of the day starting at `start`, with the rows of that day that
        /// strayed into the default partition, in one transaction.
        async fn make_partition(&self, p: Partitioned, start: i64) -> Result<(), StoreError> {
            let (table, key) = (p.table, p.key);
            let name = format!("{table}_d{}", day_name(start));
            let end = start + DAY_MS;
            let mut tx = self.pool.begin().await.map_err(map_error)?;
            for sql in [
                format!(
                    "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH ({})",
                    p.storage
                ),
                format!(
                    "WITH strays AS (DELETE FROM {table}_default WHERE {key} >= {start} AND {key} < {end} RETURNING *) \
                     INSERT INTO {name} SELECT * FROM strays"
                ),
                format!("ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(map_error)?;
            }
            tx.commit().await.map_err(map_error)
        }

        /// Removes `p`'s rows older than `before_ms`: drops every day partition that ends at or
        /// before it, whole, and deletes such rows of the `_before` and default partitions in
        /// batches. On SQLite, deletes in batches and gives the freed pages back. Returns how many
        /// rows went (for a dropped partition, PostgreSQL's estimate of its rows).
        pub(super) async fn prune_partitioned(
            &self,
            p: Partitioned,
            before_ms: i64,
            delete: &'static str,
        ) -> Result<u64, StoreError> {
            let (table, key) = (p.table, p.key);
            if !D::PARTITIONED {
                let deleted = self.prune_in_batches(delete, before_ms).await?;
                if deleted > 0 {
                    self.give_back_free_pages().await?;
                }
                return Ok(deleted);
            }
            let mut removed = 0;
            for partition in self.partitions(table).await? {
                let name = partition.name;
                match partition.end_ms {
                    Some(end) if end <= before_ms => {
                        let rows: i64 = sqlx::query_scalar("SELECT reltuples::bigint FROM pg_class WHERE relname = $1")
                            .bind(&name)
                            .fetch_one(&self.pool)
                            .await
                            .map_err(map_error)?;
                        let rows = if rows >= 0 {
                            rows as u64
                        } else {
                            // Never analysed: counted.
                            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}")))
                                .fetch_one(&self.pool)
                                .await
                                .map_err(map_error)?;
                            count as u64
                        };
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                            .execute(&self.pool)
                            .await
                            .map_err(map_error)?;
                        removed += rows;
                    }
                    // The rows of before the upgrade, and strays: deleted.
                    _ if partition.end_ms.is_none() || name.ends_with("_before") => {
                        let delete =
                            format!("DELETE FROM {name} WHERE ctid IN (SELECT ctid FROM {name} WHERE {key} < $1 LIMIT $2)");
                        removed += self.prune_in_batches(&delete, before_ms).await?;
                    }
                    _ => {}
                }
            }
            Ok(removed)
        }
    }
}
