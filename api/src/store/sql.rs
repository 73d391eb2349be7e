//! The SQLite and PostgreSQL stores.
//!
//! Both run the same SQL (`$n` placeholders work in both) through one macro, `sql_store!`, which
//! is instantiated once per database; only the few places where the dialects differ are
//! parameters: how a write transaction begins, how the tenant's head row is locked, and how a tag
//! is matched in the JSON tag list.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};
use stella_runtime::IntegrationType;
use time::OffsetDateTime;
use uuid::Uuid;

use super::read_pool::ReadPool;
use super::{
    AuditEntry, AuditReport, ChainBreak, Change, CheckOutcome, FinishedCheck, GENESIS_HASH, HealthCheck,
    IdempotentResponse, ListFilter, ListPosition, RowWrite, Store, StoreError, StoredEvent, cloud_event, from_unix_ms,
};
use crate::domain::Integration;
use crate::lifecycle::Status;

/// The migrations of each dialect, in order: (version, name, SQL). A released migration is never
/// edited; a change is a new one.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../../../migrations/sqlite/0001_catalog.sql")),
    (2, "health", include_str!("../../../migrations/sqlite/0002_health.sql")),
    (3, "health_interval_replica", include_str!("../../../migrations/sqlite/0003_health_interval_replica.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../../../migrations/postgres/0001_catalog.sql")),
    (2, "configuration_text", include_str!("../../../migrations/postgres/0002_configuration_text.sql")),
    (3, "health", include_str!("../../../migrations/postgres/0003_health.sql")),
    (4, "health_interval_replica", include_str!("../../../migrations/postgres/0004_health_interval_replica.sql")),
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

/// The embedded default: one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Transactions (every write).
    pool: SqlitePool,
    /// Single-statement reads.
    reads: Arc<ReadPool<sqlx::Sqlite>>,
}

impl SqliteStore {
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
        let pool =
            SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await.map_err(map_error)?;
        migrator(SQLITE_MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(Self { pool, reads: Arc::new(ReadPool::new(options, 8, ACQUIRE_TIMEOUT)) })
    }
}

/// PostgreSQL, shared by any number of replicas.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    /// Transactions (every write).
    pool: PgPool,
    /// Single-statement reads.
    reads: Arc<ReadPool<sqlx::Postgres>>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each use: it doubles the round trips of every query. A connection the
            // server dropped fails its next query once (503 to that client, which may retry) and
            // is then replaced; the fault test (`api/tests/http.rs`) holds the service to that.
            .test_before_acquire(false)
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

/// How long a request waits for a free database connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// One single-statement read on a connection leased from the store's read pool (see
/// `read_pool` for why reads do not go through sqlx's pool): `read!(self, query, fetch_all)`.
macro_rules! read {
    ($store:expr, $query:expr, $fetch:ident) => {{
        let mut lease = $store.reads.lease().await.map_err(map_error)?;
        let result = $query.$fetch(lease.connection()).await;
        lease.finish(result).map_err(map_error)
    }};
}

/// Maps a database error to what the service can do about it.
fn map_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), operator intervention such as
            // pg_terminate_backend (57P…), serialization failures and deadlocks (40…).
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6).
            if code.starts_with("08") || code.starts_with("57P") || code.starts_with("40") || code == "5" || code == "6"
            {
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Other(format!("a stored id is not a UUID: {e}")))
}

fn parse_json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("a stored JSON document does not parse: {e}")))
}

const COLUMNS: &str = "integration_id, tenant_id, name, description, integration_type, provider, base_url, auth_ref, \
    configuration, environment, tags, owner_id, status, paused, pause_reason, pause_ticket, last_tested_at, \
    last_test_success, consecutive_failures, created_at, created_by, modified_at, modified_by, version, \
    health_check_interval_s";

/// `%…%` LIKE pattern matching `needle` literally (with `ESCAPE '\'`).
fn contains_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A value bound to a dynamically built query.
enum Bind {
    Text(String),
    Flag(bool),
    Int(i64),
}

fn sqlite_tag_filter(n: usize) -> String {
    format!("EXISTS (SELECT 1 FROM json_each(integrations.tags) WHERE json_each.value = ${n})")
}

fn postgres_tag_filter(n: usize) -> String {
    format!("tags @> jsonb_build_array(${n}::text)")
}

/// The list query and its binds, in the same order for both dialects.
fn list_query(
    tenant_id: &str,
    filter: &ListFilter,
    after: Option<&ListPosition>,
    limit: u32,
    tag_filter: fn(usize) -> String,
) -> (String, Vec<Bind>) {
    let mut sql = format!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1");
    let mut binds = vec![Bind::Text(tenant_id.to_string())];
    let mut eq = |sql: &mut String, column: &str, value: &Option<String>| {
        if let Some(v) = value {
            binds.push(Bind::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    };
    eq(&mut sql, "integration_type", &filter.integration_type);
    eq(&mut sql, "provider", &filter.provider);
    eq(&mut sql, "status", &filter.status);
    eq(&mut sql, "environment", &filter.environment);
    eq(&mut sql, "owner_id", &filter.owner);
    if let Some(tag) = &filter.tag {
        binds.push(Bind::Text(tag.clone()));
        sql.push_str(&format!(" AND {}", tag_filter(binds.len())));
    }
    if let Some(paused) = filter.paused {
        binds.push(Bind::Flag(paused));
        sql.push_str(&format!(" AND paused = ${}", binds.len()));
    }
    if let Some(q) = &filter.name_contains {
        binds.push(Bind::Text(contains_pattern(q)));
        sql.push_str(&format!(" AND lower(name) LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if let Some(pos) = after {
        binds.push(Bind::Text(pos.name.clone()));
        binds.push(Bind::Text(pos.id.to_string()));
        sql.push_str(&format!(" AND (name, integration_id) > (${}, ${})", binds.len() - 1, binds.len()));
    }
    binds.push(Bind::Int(i64::from(limit)));
    sql.push_str(&format!(" ORDER BY name, integration_id LIMIT ${}", binds.len()));
    (sql, binds)
}

/// Health history rows deleted per statement when pruning.
const PRUNE_BATCH: i64 = 5_000;

/// The integrations the health scheduler checks (`Status::in_service`, not paused), as SQL over
/// the integrations' columns.
const IN_SERVICE: &str = "status IN ('active', 'degraded', 'failed') AND NOT paused";

macro_rules! sql_store {
    (
        $store:ident,
        $db:ty,
        begin_write: $begin:literal,
        lock_head: $lock:literal,
        skip_locked: $skip:literal,
        relaxed_commit: $relaxed:literal,
        share_rows: $share:literal,
        tag_filter: $tag:path
    ) => {
        impl $store {
            fn decode(row: &<$db as sqlx::Database>::Row) -> Result<Integration, StoreError> {
                let get_err = |e: sqlx::Error| StoreError::Other(format!("cannot read an integration row: {e}"));
                let id: String = row.try_get("integration_id").map_err(get_err)?;
                let kind: String = row.try_get("integration_type").map_err(get_err)?;
                let status: String = row.try_get("status").map_err(get_err)?;
                let failures: i64 = row.try_get("consecutive_failures").map_err(get_err)?;
                let interval: Option<i64> = row.try_get("health_check_interval_s").map_err(get_err)?;
                let Json(tags): Json<Vec<String>> = row.try_get("tags").map_err(get_err)?;
                let configuration: String = row.try_get("configuration").map_err(get_err)?;
                let configuration = parse_json(&configuration)?;
                Ok(Integration {
                    integration_id: parse_uuid(&id)?,
                    tenant_id: row.try_get("tenant_id").map_err(get_err)?,
                    name: row.try_get("name").map_err(get_err)?,
                    description: row.try_get("description").map_err(get_err)?,
                    integration_type: IntegrationType::from_str(&kind)
                        .map_err(|_| StoreError::Other(format!("unknown stored type `{kind}`")))?,
                    provider: row.try_get("provider").map_err(get_err)?,
                    base_url: row.try_get("base_url").map_err(get_err)?,
                    auth_ref: row.try_get("auth_ref").map_err(get_err)?,
                    configuration,
                    environment: row.try_get("environment").map_err(get_err)?,
                    tags,
                    owner_id: row.try_get("owner_id").map_err(get_err)?,
                    health_check_interval: interval.map(u32::try_from).transpose().map_err(|_| {
                        StoreError::Other("a stored health check interval is out of range".into())
                    })?,
                    status: Status::parse(&status)
                        .ok_or_else(|| StoreError::Other(format!("unknown stored status `{status}`")))?,
                    paused: row.try_get("paused").map_err(get_err)?,
                    pause_reason: row.try_get("pause_reason").map_err(get_err)?,
                    pause_ticket: row.try_get("pause_ticket").map_err(get_err)?,
                    last_tested_at: row.try_get("last_tested_at").map_err(get_err)?,
                    last_test_success: row.try_get("last_test_success").map_err(get_err)?,
                    consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    created_at: row.try_get("created_at").map_err(get_err)?,
                    created_by: row.try_get("created_by").map_err(get_err)?,
                    modified_at: row.try_get("modified_at").map_err(get_err)?,
                    modified_by: row.try_get("modified_by").map_err(get_err)?,
                    version: row.try_get("version").map_err(get_err)?,
                })
            }

            /// Binds the values of `COLUMNS`, in order, with the given version.
            fn bind_row<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                row: &Integration,
                version: i64,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                query
                    .bind(row.integration_id.to_string())
                    .bind(row.tenant_id.clone())
                    .bind(row.name.clone())
                    .bind(row.description.clone())
                    .bind(row.integration_type.as_str())
                    .bind(row.provider.clone())
                    .bind(row.base_url.clone())
                    .bind(row.auth_ref.clone())
                    .bind(row.configuration.to_string())
                    .bind(row.environment.clone())
                    .bind(Json(row.tags.clone()))
                    .bind(row.owner_id.clone())
                    .bind(row.status.as_str())
                    .bind(row.paused)
                    .bind(row.pause_reason.clone())
                    .bind(row.pause_ticket.clone())
                    .bind(row.last_tested_at)
                    .bind(row.last_test_success)
                    .bind(i64::from(row.consecutive_failures))
                    .bind(row.created_at)
                    .bind(row.created_by.clone())
                    .bind(row.modified_at)
                    .bind(row.modified_by.clone())
                    .bind(version)
                    .bind(row.health_check_interval.map(i64::from))
            }

            /// Why an update or delete matched no row: gone, or at another version.
            async fn missing_or_stale(
                tx: &mut sqlx::Transaction<'static, $db>,
                tenant_id: &str,
                id: Uuid,
            ) -> StoreError {
                let current = sqlx::query("SELECT version FROM integrations WHERE tenant_id = $1 AND integration_id = $2")
                    .bind(tenant_id)
                    .bind(id.to_string())
                    .fetch_optional(&mut **tx)
                    .await;
                match current {
                    Ok(None) => StoreError::NotFound,
                    Ok(Some(row)) => match row.try_get::<i64, _>(0) {
                        Ok(current) => StoreError::Stale { current },
                        Err(e) => map_error(e),
                    },
                    Err(e) => map_error(e),
                }
            }

            async fn apply_in(tx: &mut sqlx::Transaction<'static, $db>, change: Change) -> Result<(), StoreError> {
                let tenant = change.tenant_id.as_str();
                sqlx::query(
                    "INSERT INTO tenant_heads (tenant_id, audit_seq, audit_hash, event_seq) VALUES ($1, 0, $2, 0) \
                     ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(tenant)
                .bind(GENESIS_HASH)
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;
                let head = sqlx::query(concat!(
                    "SELECT audit_seq, audit_hash, event_seq FROM tenant_heads WHERE tenant_id = $1",
                    $lock
                ))
                .bind(tenant)
                .fetch_one(&mut **tx)
                .await
                .map_err(map_error)?;
                let audit_seq: i64 = head.try_get(0).map_err(map_error)?;
                let prev_hash: String = head.try_get(1).map_err(map_error)?;
                let mut event_seq: i64 = head.try_get(2).map_err(map_error)?;

                match &change.write {
                    RowWrite::Insert(row) => {
                        let sql = format!(
                            "INSERT INTO integrations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
                        );
                        let query = Self::bind_row(sqlx::query(AssertSqlSafe(sql)), row, 1);
                        if let Err(e) = query.execute(&mut **tx).await {
                            return Err(if is_unique_violation(&e) {
                                StoreError::NameTaken(row.name.clone())
                            } else {
                                map_error(e)
                            });
                        }
                    }
                    RowWrite::Update { row, expected_version } => {
                        let sql = format!(
                            "UPDATE integrations SET ({COLUMNS}) = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
                             WHERE tenant_id = $26 AND integration_id = $27 AND version = $28"
                        );
                        let query = Self::bind_row(sqlx::query(AssertSqlSafe(sql)), row, expected_version + 1)
                            .bind(tenant)
                            .bind(change.integration_id.to_string())
                            .bind(*expected_version);
                        match query.execute(&mut **tx).await {
                            Ok(done) if done.rows_affected() == 1 => {}
                            Ok(_) => return Err(Self::missing_or_stale(tx, tenant, change.integration_id).await),
                            Err(e) if is_unique_violation(&e) => return Err(StoreError::NameTaken(row.name.clone())),
                            Err(e) => return Err(map_error(e)),
                        }
                    }
                    RowWrite::Delete { expected_version } => {
                        let done = sqlx::query(
                            "DELETE FROM integrations WHERE tenant_id = $1 AND integration_id = $2 AND version = $3",
                        )
                        .bind(tenant)
                        .bind(change.integration_id.to_string())
                        .bind(*expected_version)
                        .execute(&mut **tx)
                        .await
                        .map_err(map_error)?;
                        if done.rows_affected() != 1 {
                            return Err(Self::missing_or_stale(tx, tenant, change.integration_id).await);
                        }
                    }
                }

                let mut entry = AuditEntry {
                    seq: audit_seq + 1,
                    tenant_id: tenant.to_string(),
                    integration_id: change.integration_id,
                    action: change.audit.action.clone(),
                    actor: change.audit.actor.clone(),
                    at: change.audit.at,
                    details: change.audit.details.clone(),
                    prev_hash,
                    hash: String::new(),
                };
                entry.hash = entry.compute_hash();
                sqlx::query(
                    "INSERT INTO audit_entries (tenant_id, seq, integration_id, action, actor, at, details, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant)
                .bind(entry.seq)
                .bind(entry.integration_id.to_string())
                .bind(entry.action.clone())
                .bind(entry.actor.clone())
                .bind(entry.at)
                .bind(entry.details.to_string())
                .bind(entry.prev_hash.clone())
                .bind(entry.hash.clone())
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;

                for draft in &change.events {
                    event_seq += 1;
                    let event_id = Uuid::new_v4();
                    let document = cloud_event(tenant, change.integration_id, event_id, change.audit.at, draft);
                    sqlx::query(
                        "INSERT INTO events (tenant_id, seq, event_id, event_type, integration_id, at, cloud_event) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(tenant)
                    .bind(event_seq)
                    .bind(event_id.to_string())
                    .bind(draft.event_type.clone())
                    .bind(change.integration_id.to_string())
                    .bind(change.audit.at)
                    .bind(document.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;
                }

                sqlx::query("UPDATE tenant_heads SET audit_seq = $2, audit_hash = $3, event_seq = $4 WHERE tenant_id = $1")
                    .bind(tenant)
                    .bind(entry.seq)
                    .bind(entry.hash.clone())
                    .bind(event_seq)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;

                if let Some(result) = &change.test_result {
                    sqlx::query(
                        "INSERT INTO test_results (integration_id, tenant_id, at, result) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (integration_id) DO UPDATE SET at = excluded.at, result = excluded.result",
                    )
                    .bind(change.integration_id.to_string())
                    .bind(tenant)
                    .bind(change.audit.at)
                    .bind(result.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;
                }

                if change.reschedule_health {
                    // Due now; a check running under a lease is left alone, and its end schedules
                    // the next one at once instead of an interval later.
                    sqlx::query(
                        "UPDATE health_schedule SET \
                         due_ms = CASE WHEN lease_owner IS NULL THEN $1 ELSE due_ms END, \
                         reschedule = (lease_owner IS NOT NULL) \
                         WHERE integration_id = $2 AND tenant_id = $3",
                    )
                    .bind(super::unix_ms(change.audit.at))
                    .bind(change.integration_id.to_string())
                    .bind(tenant)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;
                }

                if let Some(response) = &change.idempotency {
                    let done = sqlx::query(
                        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, response, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, key) DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(response.key.clone())
                    .bind(response.request_hash.clone())
                    .bind(i64::from(response.status))
                    .bind(response.body.clone())
                    .bind(change.audit.at)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::KeyReused);
                    }
                }
                Ok(())
            }

            fn decode_audit(row: &<$db as sqlx::Database>::Row) -> Result<AuditEntry, StoreError> {
                let id: String = row.try_get("integration_id").map_err(map_error)?;
                let details: String = row.try_get("details").map_err(map_error)?;
                Ok(AuditEntry {
                    seq: row.try_get("seq").map_err(map_error)?,
                    tenant_id: row.try_get("tenant_id").map_err(map_error)?,
                    integration_id: parse_uuid(&id)?,
                    action: row.try_get("action").map_err(map_error)?,
                    actor: row.try_get("actor").map_err(map_error)?,
                    at: row.try_get::<OffsetDateTime, _>("at").map_err(map_error)?,
                    details: parse_json(&details)?,
                    prev_hash: row.try_get("prev_hash").map_err(map_error)?,
                    hash: row.try_get("hash").map_err(map_error)?,
                })
            }

            /// The first column of each row, as text (the ids a `RETURNING` answers).
            fn first_column(rows: &[<$db as sqlx::Database>::Row]) -> Result<Vec<String>, StoreError> {
                rows.iter().map(|row| row.try_get::<String, _>(0).map_err(map_error)).collect()
            }

            fn decode_check(row: &<$db as sqlx::Database>::Row) -> Result<HealthCheck, StoreError> {
                let id: String = row.try_get("check_id").map_err(map_error)?;
                let outcome: String = row.try_get("outcome").map_err(map_error)?;
                let latency: i64 = row.try_get("latency_ms").map_err(map_error)?;
                Ok(HealthCheck {
                    check_id: parse_uuid(&id)?,
                    checked_at: from_unix_ms(row.try_get("checked_ms").map_err(map_error)?),
                    outcome: CheckOutcome::parse(&outcome)
                        .ok_or_else(|| StoreError::Other(format!("unknown stored outcome `{outcome}`")))?,
                    failure_class: row.try_get("failure_class").map_err(map_error)?,
                    latency_ms: u64::try_from(latency).unwrap_or(0),
                    message: row.try_get("message").map_err(map_error)?,
                    replica: row.try_get("replica").map_err(map_error)?,
                })
            }

            fn decode_event(row: &<$db as sqlx::Database>::Row) -> Result<StoredEvent, StoreError> {
                let document: String = row.try_get("cloud_event").map_err(map_error)?;
                Ok(StoredEvent {
                    tenant_id: row.try_get("tenant_id").map_err(map_error)?,
                    seq: row.try_get("seq").map_err(map_error)?,
                    cloud_event: parse_json(&document)?,
                })
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error)?;
                Ok(())
            }

            async fn get(&self, tenant_id: &str, id: Uuid) -> Result<Option<Integration>, StoreError> {
                let sql = format!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND integration_id = $2");
                let row = read!(
                    self,
                    sqlx::query(AssertSqlSafe(sql))
                    .bind(tenant_id)
                    .bind(id.to_string()),
                    fetch_optional
                )?;
                row.as_ref().map(Self::decode).transpose()
            }

            async fn list(
                &self,
                tenant_id: &str,
                filter: &ListFilter,
                after: Option<&ListPosition>,
                limit: u32,
            ) -> Result<Vec<Integration>, StoreError> {
                let (sql, binds) = list_query(tenant_id, filter, after, limit, $tag);
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for bind in binds {
                    query = match bind {
                        Bind::Text(s) => query.bind(s),
                        Bind::Flag(b) => query.bind(b),
                        Bind::Int(i) => query.bind(i),
                    };
                }
                let rows = read!(
                    self,
                    query,
                    fetch_all
                )?;
                rows.iter().map(Self::decode).collect()
            }

            async fn apply(&self, change: Change) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err(map_error)?;
                Self::apply_in(&mut tx, change).await?;
                tx.commit().await.map_err(map_error)
            }

            async fn audit(
                &self,
                tenant_id: &str,
                id: Uuid,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<AuditEntry>, StoreError> {
                let rows = read!(
                    self,
                    sqlx::query(
                    "SELECT * FROM audit_entries WHERE tenant_id = $1 AND integration_id = $2 AND seq > $3 \
                     ORDER BY seq LIMIT $4",
                )
                .bind(tenant_id)
                .bind(id.to_string())
                .bind(after_seq)
                .bind(i64::from(limit)),
                    fetch_all
                )?;
                rows.iter().map(Self::decode_audit).collect()
            }

            async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
                let heads = read!(
                    self,
                    sqlx::query("SELECT tenant_id, audit_seq, audit_hash FROM tenant_heads ORDER BY tenant_id"),
                    fetch_all
                )?;
                let mut report = AuditReport::default();
                for head in heads {
                    let tenant: String = head.try_get(0).map_err(map_error)?;
                    let head_seq: i64 = head.try_get(1).map_err(map_error)?;
                    let head_hash: String = head.try_get(2).map_err(map_error)?;
                    report.tenants += 1;
                    let (mut seq, mut prev) = (0_i64, GENESIS_HASH.to_string());
                    let mut problem = None;
                    'pages: loop {
                        let rows = read!(
                    self,
                    sqlx::query(
                            "SELECT * FROM audit_entries WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
                        )
                        .bind(tenant.clone())
                        .bind(seq),
                    fetch_all
                )?;
                        if rows.is_empty() {
                            break;
                        }
                        for row in &rows {
                            let entry = Self::decode_audit(row)?;
                            report.entries += 1;
                            let found = if entry.seq != seq + 1 {
                                Some(format!("entry {} is missing", seq + 1))
                            } else if entry.prev_hash != prev {
                                Some("its previous hash does not match the entry before it".to_string())
                            } else if entry.compute_hash() != entry.hash {
                                Some("its content does not match its hash".to_string())
                            } else {
                                None
                            };
                            if let Some(p) = found {
                                problem = Some((entry.seq, p));
                                break 'pages;
                            }
                            seq = entry.seq;
                            prev = entry.hash;
                        }
                    }
                    if problem.is_none() && (seq != head_seq || prev != head_hash) {
                        problem = Some((head_seq, format!("the chain ends at {seq} but the tenant's head is at {head_seq}")));
                    }
                    if let Some((seq, problem)) = problem {
                        report.breaks.push(ChainBreak { tenant_id: tenant, seq, problem });
                    }
                }
                Ok(report)
            }

            async fn events(&self, tenant_id: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
                let rows = read!(
                    self,
                    sqlx::query(
                    "SELECT tenant_id, seq, cloud_event FROM events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(tenant_id)
                .bind(after_seq)
                .bind(i64::from(limit)),
                    fetch_all
                )?;
                rows.iter().map(Self::decode_event).collect()
            }

            async fn undelivered_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
                let rows = read!(
                    self,
                    sqlx::query(
                    "SELECT tenant_id, seq, cloud_event FROM events WHERE delivered_at IS NULL \
                     ORDER BY at, tenant_id, seq LIMIT $1",
                )
                .bind(i64::from(limit)),
                    fetch_all
                )?;
                rows.iter().map(Self::decode_event).collect()
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

            async fn latest_test(&self, tenant_id: &str, id: Uuid) -> Result<Option<serde_json::Value>, StoreError> {
                let row = read!(
                    self,
                    sqlx::query("SELECT result FROM test_results WHERE tenant_id = $1 AND integration_id = $2")
                    .bind(tenant_id)
                    .bind(id.to_string()),
                    fetch_optional
                )?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(parse_json(&row.try_get::<String, _>(0).map_err(map_error)?)?)),
                }
            }

            async fn idempotent_response(
                &self,
                tenant_id: &str,
                key: &str,
            ) -> Result<Option<IdempotentResponse>, StoreError> {
                let row = read!(
                    self,
                    sqlx::query(
                    "SELECT key, request_hash, status, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
                )
                .bind(tenant_id)
                .bind(key),
                    fetch_optional
                )?;
                let Some(row) = row else { return Ok(None) };
                let status: i64 = row.try_get(2).map_err(map_error)?;
                Ok(Some(IdempotentResponse {
                    key: row.try_get(0).map_err(map_error)?,
                    request_hash: row.try_get(1).map_err(map_error)?,
                    status: u16::try_from(status).unwrap_or(500),
                    body: row.try_get(3).map_err(map_error)?,
                }))
            }

            async fn schedule_health_checks(&self, now_ms: i64) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err(map_error)?;
                // Out of service (paused, a draft again, deleted): no schedule, so the lease query
                // never walks past them; back in service, they are due at once.
                let unschedule = format!(
                    "DELETE FROM health_schedule WHERE NOT EXISTS (SELECT 1 FROM integrations i \
                     WHERE i.integration_id = health_schedule.integration_id AND {IN_SERVICE})"
                );
                sqlx::query(AssertSqlSafe(unschedule)).execute(&mut *tx).await.map_err(map_error)?;
                let schedule_new = format!(
                    "INSERT INTO health_schedule (integration_id, tenant_id, due_ms) \
                     SELECT integration_id, tenant_id, $1 FROM integrations i WHERE {IN_SERVICE} \
                     AND NOT EXISTS (SELECT 1 FROM health_schedule s WHERE s.integration_id = i.integration_id) \
                     ON CONFLICT (integration_id) DO NOTHING"
                );
                let done = sqlx::query(AssertSqlSafe(schedule_new)).bind(now_ms).execute(&mut *tx).await.map_err(map_error)?;
                tx.commit().await.map_err(map_error)?;
                Ok(done.rows_affected())
            }

            async fn lease_health_checks(
                &self,
                owner: &str,
                now_ms: i64,
                lease_ms: i64,
                limit: u32,
            ) -> Result<Vec<Integration>, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err(map_error)?;
                // The schedule holds only integrations in service (`schedule_health_checks`), and
                // the check itself looks again, so the due-time index alone finds the next ones.
                let lease = format!(
                    "UPDATE health_schedule SET lease_owner = $1, lease_until_ms = $2 WHERE integration_id IN ( \
                     SELECT s.integration_id FROM health_schedule s \
                     WHERE s.due_ms <= $3 AND (s.lease_until_ms IS NULL OR s.lease_until_ms <= $3) \
                     ORDER BY s.due_ms LIMIT $4{}) RETURNING integration_id",
                    $skip
                );
                let leased = sqlx::query(AssertSqlSafe(lease))
                    .bind(owner)
                    .bind(now_ms.saturating_add(lease_ms))
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_error)?;
                let leased = Self::first_column(&leased)?;
                if leased.is_empty() {
                    tx.commit().await.map_err(map_error)?;
                    return Ok(vec![]);
                }
                // The rows just leased, read in the same transaction, so the checker needs no
                // read of its own per check.
                let placeholders: Vec<String> = (1..=leased.len()).map(|n| format!("${n}")).collect();
                let read = format!("SELECT {COLUMNS} FROM integrations WHERE integration_id IN ({})", placeholders.join(", "));
                let mut query = sqlx::query(AssertSqlSafe(read));
                for id in &leased {
                    query = query.bind(id.clone());
                }
                let rows = query.fetch_all(&mut *tx).await.map_err(map_error)?;
                tx.commit().await.map_err(map_error)?;
                rows.iter().map(Self::decode).collect()
            }

            async fn finish_health_checks(&self, owner: &str, finished: &[FinishedCheck]) -> Result<Vec<Uuid>, StoreError> {
                if finished.is_empty() {
                    return Ok(vec![]);
                }
                let mut tx = self.pool.begin_with($begin).await.map_err(map_error)?;
                if !$relaxed.is_empty() {
                    sqlx::query($relaxed).execute(&mut *tx).await.map_err(map_error)?;
                }
                let mut recorded = Vec::new();
                // Statements of at most 100 checks keep under every driver's parameter limit.
                for part in finished.chunks(100) {
                    // The integrations first, in id order, as every change locks them before their
                    // schedule (a delete cascading to it would otherwise deadlock with us); shared,
                    // so that none changes between the version check below and the commit.
                    if !$share.is_empty() {
                        let ids: Vec<String> = (1..=part.len()).map(|n| format!("${n}")).collect();
                        let lock = format!(
                            "SELECT integration_id FROM integrations WHERE integration_id IN ({}) \
                             ORDER BY integration_id{}",
                            ids.join(", "),
                            $share
                        );
                        let mut query = sqlx::query(AssertSqlSafe(lock));
                        for f in part {
                            query = query.bind(f.integration_id.to_string());
                        }
                        query.fetch_all(&mut *tx).await.map_err(map_error)?;
                    }
                    let rows: Vec<String> = (0..part.len())
                        .map(|n| {
                            let p: Vec<String> = (0..5).map(|k| format!("${}", 5 * n + k + 2)).collect();
                            format!("({})", p.join(", "))
                        })
                        .collect();
                    // VALUES columns are column1.. in both dialects: id, tenant, next due, checked
                    // at, version.
                    let release = format!(
                        "UPDATE health_schedule SET \
                         due_ms = CASE WHEN reschedule THEN d.column4 ELSE d.column3 END, \
                         reschedule = FALSE, lease_owner = NULL, lease_until_ms = NULL \
                         FROM (VALUES {}) AS d \
                         WHERE health_schedule.integration_id = d.column1 AND health_schedule.tenant_id = d.column2 \
                         AND health_schedule.lease_owner = $1 \
                         AND EXISTS (SELECT 1 FROM integrations i \
                                     WHERE i.integration_id = d.column1 AND i.version = d.column5) \
                         RETURNING health_schedule.integration_id",
                        rows.join(", ")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(release)).bind(owner);
                    for f in part {
                        query = query
                            .bind(f.integration_id.to_string())
                            .bind(f.tenant_id.clone())
                            .bind(f.next_due_ms)
                            .bind(super::unix_ms(f.check.checked_at))
                            .bind(f.version);
                    }
                    let released = Self::first_column(&query.fetch_all(&mut *tx).await.map_err(map_error)?)?;
                    let kept: Vec<&FinishedCheck> =
                        part.iter().filter(|f| released.contains(&f.integration_id.to_string())).collect();
                    if kept.is_empty() {
                        continue;
                    }
                    let values: Vec<String> = (0..kept.len())
                        .map(|n| {
                            let p: Vec<String> = (1..=9).map(|k| format!("${}", 9 * n + k)).collect();
                            format!("({})", p.join(", "))
                        })
                        .collect();
                    let insert = format!(
                        "INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, \
                         failure_class, latency_ms, message, replica) VALUES {}",
                        values.join(", ")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(insert));
                    for f in &kept {
                        let c = &f.check;
                        query = query
                            .bind(c.check_id.to_string())
                            .bind(f.integration_id.to_string())
                            .bind(f.tenant_id.clone())
                            .bind(super::unix_ms(c.checked_at))
                            .bind(c.outcome.as_str())
                            .bind(c.failure_class.clone())
                            .bind(i64::try_from(c.latency_ms).unwrap_or(i64::MAX))
                            .bind(c.message.clone())
                            .bind(owner);
                    }
                    query.execute(&mut *tx).await.map_err(map_error)?;
                    recorded.extend(kept.iter().map(|f| f.integration_id));
                }
                tx.commit().await.map_err(map_error)?;
                Ok(recorded)
            }

            async fn finish_health_check(
                &self,
                owner: &str,
                tenant_id: &str,
                integration_id: Uuid,
                check: &HealthCheck,
                next_due_ms: i64,
                change: Option<Change>,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin).await.map_err(map_error)?;
                // The change first: it locks the tenant's head before the schedule row, in the
                // order every other change takes them.
                match change {
                    Some(change) => Self::apply_in(&mut tx, change).await?,
                    // A history row alone may be lost in a crash (the check's lease then expires
                    // and it runs again): its commit does not wait for the disk.
                    None if !$relaxed.is_empty() => {
                        sqlx::query($relaxed).execute(&mut *tx).await.map_err(map_error)?;
                    }
                    None => {}
                }
                let released = sqlx::query(
                    "UPDATE health_schedule SET due_ms = CASE WHEN reschedule THEN $1 ELSE $2 END, \
                     reschedule = FALSE, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE integration_id = $3 AND tenant_id = $4 AND lease_owner = $5",
                )
                .bind(super::unix_ms(check.checked_at))
                .bind(next_due_ms)
                .bind(integration_id.to_string())
                .bind(tenant_id)
                .bind(owner)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                if released.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, \
                     failure_class, latency_ms, message, replica) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(check.check_id.to_string())
                .bind(integration_id.to_string())
                .bind(tenant_id)
                .bind(super::unix_ms(check.checked_at))
                .bind(check.outcome.as_str())
                .bind(check.failure_class.clone())
                .bind(i64::try_from(check.latency_ms).unwrap_or(i64::MAX))
                .bind(check.message.clone())
                .bind(owner)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                tx.commit().await.map_err(map_error)?;
                Ok(true)
            }

            async fn health_history(
                &self,
                tenant_id: &str,
                id: Uuid,
                before: Option<(i64, Uuid)>,
                limit: u32,
            ) -> Result<Vec<HealthCheck>, StoreError> {
                let (before_ms, before_id) = match before {
                    Some((ms, id)) => (ms, id.to_string()),
                    // Past any stored time; the id then never decides.
                    None => (i64::MAX, String::new()),
                };
                let rows = read!(
                    self,
                    sqlx::query(
                        "SELECT * FROM health_checks WHERE tenant_id = $1 AND integration_id = $2 \
                         AND (checked_ms < $3 OR (checked_ms = $3 AND check_id < $4)) \
                         ORDER BY checked_ms DESC, check_id DESC LIMIT $5",
                    )
                    .bind(tenant_id)
                    .bind(id.to_string())
                    .bind(before_ms)
                    .bind(before_id)
                    .bind(i64::from(limit)),
                    fetch_all
                )?;
                rows.iter().map(Self::decode_check).collect()
            }

            async fn prune_health_checks(&self, before_ms: i64) -> Result<u64, StoreError> {
                // In batches, each its own short statement: a month of history of many
                // integrations is never one long delete holding the writers back.
                let mut deleted = 0;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM health_checks WHERE check_id IN \
                         (SELECT check_id FROM health_checks WHERE checked_ms < $1 LIMIT $2)",
                    )
                    .bind(before_ms)
                    .bind(PRUNE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(map_error)?;
                    deleted += done.rows_affected();
                    if done.rows_affected() < PRUNE_BATCH as u64 {
                        return Ok(deleted);
                    }
                }
            }
        }
    };
}

// SQLite: take the write lock at BEGIN, so that two writers queue on the busy timeout instead of
// one failing when it upgrades a read transaction. The lock makes FOR UPDATE unnecessary.
sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    lock_head: "",
    skip_locked: "",
    relaxed_commit: "",
    share_rows: "",
    tag_filter: sqlite_tag_filter
);
// PostgreSQL: the tenant's head row is locked for the rest of the transaction, and replicas leasing
// health checks at once skip each other's rows instead of waiting for them.
sql_store!(
    PostgresStore,
    sqlx::Postgres,
    begin_write: "BEGIN",
    lock_head: " FOR UPDATE",
    skip_locked: " FOR UPDATE OF s SKIP LOCKED",
    relaxed_commit: "SET LOCAL synchronous_commit = off",
    share_rows: " FOR SHARE",
    tag_filter: postgres_tag_filter
);
