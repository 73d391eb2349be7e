//! The SQL store, generic over the two databases it runs on: SQLite (the embedded default) and
//! PostgreSQL (production, several replicas).
//!
//! Both run the same SQL (`$n` placeholders work in both); the few places where they differ are
//! the [`Dialect`] trait: how a write transaction begins, how the tenant's head row is locked,
//! how replicas skip each other's leased rows, and how a string is matched in a JSON list.
//! Each concern's queries are in their own file (`integrations.rs`, `audit.rs`, `outbox.rs`,
//! `health.rs`), as generic `impl`s over `SqlStore<D>`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Database, Executor, IntoArguments, Pool, Postgres, SqlSafeStr, Sqlite};
use uuid::Uuid;

use super::StoreError;
use super::read_pool::ReadPool;

/// An `impl` over every [`Dialect`], with the bounds sqlx needs to run this crate's queries on
/// `D`: one list for every store file instead of one each.
/// `sql_impl! { impl SqlStore<D> { … } }` or `sql_impl! { #[async_trait] impl AStore for SqlStore<D> { … } }`.
macro_rules! sql_impl {
    (#[async_trait] impl $store:ident for SqlStore<D> { $($body:tt)* }) => {
        sql_impl!(@bounded [#[async_trait::async_trait]] [$store for] { $($body)* });
    };
    (impl SqlStore<D> { $($body:tt)* }) => {
        sql_impl!(@bounded [] [] { $($body)* });
    };
    (@bounded [$($attribute:tt)*] [$($trait_for:tt)*] { $($body:tt)* }) => {
        $($attribute)*
        impl<D: $crate::store::sql::Dialect> $($trait_for)* $crate::store::sql::SqlStore<D>
        where
        for<'c> &'c mut D::Connection: sqlx::Executor<'c, Database = D>,
        D::Arguments: sqlx::IntoArguments<D>,
        for<'q> String: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> &'q str: sqlx::Encode<'q, D> + sqlx::Type<D>,
        for<'q> i64: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> bool: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> Vec<u8>: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> time::OffsetDateTime: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> sqlx::types::Json<Vec<String>>: sqlx::Encode<'q, D> + sqlx::Decode<'q, D> + sqlx::Type<D>,
        for<'q> Option<String>: sqlx::Encode<'q, D> + sqlx::Decode<'q, D>,
        for<'q> Option<&'q str>: sqlx::Encode<'q, D>,
        for<'q> Option<i64>: sqlx::Encode<'q, D>,
        for<'q> Option<bool>: sqlx::Encode<'q, D>,
        for<'q> Option<time::OffsetDateTime>: sqlx::Encode<'q, D> + sqlx::Decode<'q, D>,
        usize: sqlx::ColumnIndex<D::Row>,
        for<'n> &'n str: sqlx::ColumnIndex<D::Row>,
        {
            $($body)*
        }
    };
}
pub(super) use sql_impl;

/// What differs between the databases, as the generic store needs it.
///
/// The bounds sqlx needs of a database to bind and read our column types cannot be carried by
/// this trait for its users (Rust implies only supertraits), so every generic `impl` over
/// `SqlStore<D>` states them again: the `where` clause that begins each of the store's files.
pub trait Dialect: Database {
    /// The statement that begins a write transaction.
    const BEGIN_WRITE: &'static str;
    /// Appended to the read of a tenant's head row, to lock it for the transaction.
    const LOCK_HEAD: &'static str;
    /// Appended to the subquery that picks health checks to lease, so that replicas skip each
    /// other's rows instead of waiting for them.
    const SKIP_LOCKED: &'static str;
    /// Appended to a read of integration rows, to keep them from changing until the commit.
    const SHARE_ROWS: &'static str;
    /// A statement that lets a transaction that only records history commit without waiting for
    /// the disk (it may be lost in a crash, and is then redone); `None` when there is none.
    const RELAXED_COMMIT: Option<&'static str>;
    /// Whether the tables that grow with time are partitioned by day (`store/partitions.rs`).
    const PARTITIONED: bool;

    /// The condition "the tag bound as `$n` is in the row's JSON tag list".
    fn tag_filter(n: usize) -> String;

    /// The condition "the string bound as `$n` is in the JSON array of strings kept as text in
    /// `column`" (the ledger's lists).
    fn text_list_contains(column: &str, n: usize) -> String;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

// SQLite: take the write lock at BEGIN, so that two writers queue on the busy timeout instead of
// one failing when it upgrades a read transaction. That lock makes row locks unnecessary.
impl Dialect for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const LOCK_HEAD: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const SHARE_ROWS: &'static str = "";
    const RELAXED_COMMIT: Option<&'static str> = None;
    const PARTITIONED: bool = false;

    fn tag_filter(n: usize) -> String {
        format!("EXISTS (SELECT 1 FROM json_each(integrations.tags) WHERE json_each.value = ${n})")
    }

    fn text_list_contains(column: &str, n: usize) -> String {
        format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ${n})")
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

// PostgreSQL: the tenant's head row is locked for the rest of the transaction, and replicas
// leasing health checks at once skip each other's rows instead of waiting for them.
impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    const LOCK_HEAD: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE OF s SKIP LOCKED";
    const SHARE_ROWS: &'static str = " FOR SHARE";
    const RELAXED_COMMIT: Option<&'static str> = Some("SET LOCAL synchronous_commit = off");
    const PARTITIONED: bool = true;

    fn tag_filter(n: usize) -> String {
        format!("tags @> jsonb_build_array(${n}::text)")
    }

    fn text_list_contains(column: &str, n: usize) -> String {
        format!("{column}::jsonb @> jsonb_build_array(${n}::text)")
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// The store over one database.
#[derive(Clone, Debug)]
pub struct SqlStore<D: Dialect> {
    /// Transactions (every write).
    pub(super) pool: Pool<D>,
    /// Single-statement reads.
    pub(super) reads: Arc<ReadPool<D>>,
}

/// The embedded default: one SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;
/// PostgreSQL, shared by any number of replicas.
pub type PostgresStore = SqlStore<Postgres>;

/// The migrations of each dialect, in order: (version, name, SQL). A released migration is never
/// edited; a change is a new one.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../../../migrations/sqlite/0001_catalog.sql")),
    (2, "health", include_str!("../../../migrations/sqlite/0002_health.sql")),
    (3, "health_interval_replica", include_str!("../../../migrations/sqlite/0003_health_interval_replica.sql")),
    (4, "plugins", include_str!("../../../migrations/sqlite/0004_plugins.sql")),
    (5, "ledger", include_str!("../../../migrations/sqlite/0005_ledger.sql")),
    (6, "ledger_filters", include_str!("../../../migrations/sqlite/0006_ledger_filters.sql")),
    (7, "console", include_str!("../../../migrations/sqlite/0007_console.sql")),
    (8, "ledger_secret_in_request", include_str!("../../../migrations/sqlite/0008_ledger_secret_in_request.sql")),
    (9, "maintenance", include_str!("../../../migrations/sqlite/0009_maintenance.sql")),
    (10, "ledger_levels", include_str!("../../../migrations/sqlite/0010_ledger_levels.sql")),
    (11, "health_hours", include_str!("../../../migrations/sqlite/0011_health_hours.sql")),
    (12, "entry_time_key", include_str!("../../../migrations/sqlite/0012_entry_time_key.sql")),
    (13, "idempotency_retention", include_str!("../../../migrations/sqlite/0013_idempotency_retention.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../../../migrations/postgres/0001_catalog.sql")),
    (2, "configuration_text", include_str!("../../../migrations/postgres/0002_configuration_text.sql")),
    (3, "health", include_str!("../../../migrations/postgres/0003_health.sql")),
    (4, "health_interval_replica", include_str!("../../../migrations/postgres/0004_health_interval_replica.sql")),
    (5, "plugins", include_str!("../../../migrations/postgres/0005_plugins.sql")),
    (6, "ledger", include_str!("../../../migrations/postgres/0006_ledger.sql")),
    (7, "ledger_filters", include_str!("../../../migrations/postgres/0007_ledger_filters.sql")),
    (8, "console", include_str!("../../../migrations/postgres/0008_console.sql")),
    (9, "ledger_secret_in_request", include_str!("../../../migrations/postgres/0009_ledger_secret_in_request.sql")),
    (10, "maintenance", include_str!("../../../migrations/postgres/0010_maintenance.sql")),
    (11, "ledger_levels", include_str!("../../../migrations/postgres/0011_ledger_levels.sql")),
    (12, "health_hours", include_str!("../../../migrations/postgres/0012_health_hours.sql")),
    (13, "day_partitions", include_str!("../../../migrations/postgres/0013_day_partitions.sql")),
    (14, "idempotency_retention", include_str!("../../../migrations/postgres/0014_idempotency_retention.sql")),
];

fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(*version, (*name).into(), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// How long a request waits for a free database connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl SqlStore<Sqlite> {
    /// Opens (creating it and its directory if needed) the database file and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .before_acquire(|c, _| Box::pin(async move { Ok(clean(c)) }))
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        migrator(SQLITE_MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        // Pages freed by retention go back to the file system (`incremental_vacuum` after each
        // prune), so the file shrinks. A file made before this release is converted once, by a
        // VACUUM (which rewrites it: it needs as much free space again, and takes a while on a
        // large file).
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&pool).await.map_err(map_error)?;
        if mode != 2 {
            tracing::info!(file = %path.display(), "converting the SQLite file to incremental vacuum (once)");
            let mut c = pool.acquire().await.map_err(map_error)?;
            sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&mut *c).await.map_err(map_error)?;
            sqlx::query("VACUUM").execute(&mut *c).await.map_err(map_error)?;
        }
        Ok(Self { pool, reads: Arc::new(ReadPool::new(options, 8, ACQUIRE_TIMEOUT)) })
    }
}

impl SqlStore<Postgres> {
    /// Connects to `url` (`postgres://…`) and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each use: it doubles the round trips of every query. A connection the
            // server dropped fails its next query once (503 to that client, which may retry) and
            // is then replaced; the fault test (`api/tests/api/http.rs`) holds the service to that.
            .test_before_acquire(false)
            .before_acquire(|c, _| Box::pin(async move { Ok(clean(c)) }))
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        migrator(POSTGRES_MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(Self { pool, reads: Arc::new(ReadPool::new(options, 16, ACQUIRE_TIMEOUT)) })
    }
}

/// Whether an idle connection may be used again: not when it still counts itself inside a
/// transaction. sqlx lowers its transaction depth only when COMMIT or ROLLBACK succeeds; after a
/// full disk (`SQLITE_FULL`) SQLite has already rolled the transaction back itself, the ROLLBACK
/// that follows fails, and the connection would refuse every later BEGIN ("attempted to call
/// begin_with at non-zero transaction depth") until the service restarted. Such a connection is
/// closed instead, and the pool opens a fresh one.
fn clean<C: sqlx::Connection>(connection: &C) -> bool {
    let clean = !connection.is_in_transaction();
    if !clean {
        tracing::warn!("a database connection whose commit or rollback failed is closed, not reused");
    }
    clean
}

/// A query on `D` with its binds.
pub(super) type Query<'q, D> = sqlx::query::Query<'q, D, <D as Database>::Arguments>;

// Reading and beginning need of `D` only that its connections run queries.
impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
{
    /// Runs a single-statement read on a connection leased from the read pool (see `read_pool`
    /// for why reads do not go through sqlx's pool).
    pub(super) async fn read_all(&self, query: Query<'_, D>) -> Result<Vec<D::Row>, StoreError> {
        let mut lease = self.reads.lease().await.map_err(map_error)?;
        let result = query.fetch_all(lease.connection()).await;
        lease.finish(result).map_err(map_error)
    }

    /// [`SqlStore::read_all`] of at most one row.
    pub(super) async fn read_optional(&self, query: Query<'_, D>) -> Result<Option<D::Row>, StoreError> {
        let mut lease = self.reads.lease().await.map_err(map_error)?;
        let result = query.fetch_optional(lease.connection()).await;
        lease.finish(result).map_err(map_error)
    }

    /// A write transaction.
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, D>, StoreError> {
        self.pool.begin_with(D::BEGIN_WRITE).await.map_err(map_error)
    }
}

/// A value bound to a dynamically built query (list filters).
pub(super) enum Bind {
    Text(String),
    Flag(bool),
    Int(i64),
}

/// `query` with `binds` bound in order.
pub(super) fn bind_all<'q, D: Dialect>(mut query: Query<'q, D>, binds: Vec<Bind>) -> Query<'q, D>
where
    for<'a> String: sqlx::Encode<'a, D> + sqlx::Type<D>,
    for<'a> bool: sqlx::Encode<'a, D> + sqlx::Type<D>,
    for<'a> i64: sqlx::Encode<'a, D> + sqlx::Type<D>,
{
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s),
            Bind::Flag(b) => query.bind(b),
            Bind::Int(i) => query.bind(i),
        };
    }
    query
}

/// Rows deleted per statement when history is pruned.
pub(super) const PRUNE_BATCH: i64 = 5_000;

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'a> i64: sqlx::Encode<'a, D> + sqlx::Type<D>,
{
    /// Gives the pages that deletes freed back to the file system (SQLite, whose file otherwise
    /// keeps its size; nothing elsewhere).
    pub(super) async fn give_back_free_pages(&self) -> Result<(), StoreError> {
        if !D::PARTITIONED {
            sqlx::query("PRAGMA incremental_vacuum").execute(&self.pool).await.map_err(map_error)?;
        }
        Ok(())
    }

    /// Runs `delete` (`$1`: the time before which rows go, `$2`: at most how many) until it
    /// deletes fewer than a batch; returns how many rows went. Each batch is its own short
    /// statement: a month of history is never one long delete holding the writers back.
    pub(super) async fn prune_in_batches<T>(&self, delete: &str, before: T) -> Result<u64, StoreError>
    where
        T: Copy + Send + 'static,
        for<'a> T: sqlx::Encode<'a, D> + sqlx::Type<D>,
    {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(AssertSqlSafe(delete.to_string()))
                .bind(before)
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(map_error)?;
            deleted += D::rows_affected(&done);
            if D::rows_affected(&done) < PRUNE_BATCH as u64 {
                return Ok(deleted);
            }
        }
    }
}

/// How long `/readyz` reports a write that failed for the database's storage.
pub const STORAGE_FAULT_REPORTED: Duration = Duration::from_secs(10);

/// The last write of this process that failed for the database's storage (a full disk, an I/O
/// error), and why. One per process: a process serves one database (its pools all reach the same
/// disk), and every error passes through [`map_error`], the one place that can tell.
static STORAGE_FAULT: std::sync::Mutex<Option<(std::time::Instant, String)>> = std::sync::Mutex::new(None);

/// Why the database could not write, if it failed for its storage within
/// [`STORAGE_FAULT_REPORTED`] (`/readyz`).
pub fn recent_storage_fault() -> Option<String> {
    let fault = STORAGE_FAULT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    fault.as_ref().filter(|(at, _)| at.elapsed() < STORAGE_FAULT_REPORTED).map(|(_, why)| why.clone())
}

fn storage_fault(why: String) -> StoreError {
    tracing::warn!(reason = %why, "the database cannot write: its storage is full or failing");
    *STORAGE_FAULT.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some((std::time::Instant::now(), why.clone()));
    StoreError::Storage(why)
}

/// Maps a database error to what the service can do about it.
pub(super) fn map_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            // SQLite reports extended result codes; the primary code is the low byte.
            let primary = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
            match primary {
                // SQLITE_BUSY, SQLITE_LOCKED: another writer; retry.
                5 | 6 => StoreError::Unavailable(db.message().to_string()),
                // SQLITE_IOERR, SQLITE_FULL: the disk.
                10 | 13 => storage_fault(format!("{} (SQLite result code {primary})", db.message())),
                _ => StoreError::Other(db.message().to_string()),
            }
        }
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if code == "53100" || code == "58030" {
                // disk_full, io_error: the server's storage.
                storage_fault(format!("{} (SQLSTATE {code})", db.message()))
            } else if code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("40")
                || code.starts_with("53")
            {
                // Connection exceptions (08…), operator intervention such as pg_terminate_backend
                // (57P…), serialization failures and deadlocks (40…), insufficient resources
                // (53…: out of memory, too many connections).
                StoreError::Unavailable(db.message().to_string())
            } else if code.starts_with("22") {
                // A data exception (a value the server cannot store): validation should have caught
                // it; answer 422 rather than 500.
                StoreError::InvalidValue(db.message().to_string())
            } else {
                StoreError::Other(db.message().to_string())
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Other(format!("a stored id is not a UUID: {e}")))
}

pub(super) fn parse_json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("a stored JSON document does not parse: {e}")))
}

/// `$from, $from+1, …` for `count` values.
pub(super) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}
