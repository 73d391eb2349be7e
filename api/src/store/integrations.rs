//! Integrations: their rows, and the one write every mutation is ([`Change`]: the row, its audit
//! entry, its events, the test result kept, the idempotency key, in one transaction).

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};
use stella_runtime::IntegrationType;
use stella_runtime::secrets::AuthRef;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::sql::{
    Bind, Dialect, Query, bind_all, is_unique_violation, map_error, parse_json, parse_uuid, placeholders, sql_impl,
};
use crate::audit::{AuditDraft, AuditEntry, GENESIS_HASH};
use crate::domain::{BaseUrl, Integration, unix_ms};
use crate::events::EventDraft;
use crate::ledger::LedgerEntry;
use crate::lifecycle::Status;
use crate::query::{ListFilter, ListPosition};

/// Integrations and the writes that change them.
#[async_trait]
pub trait IntegrationStore: Send + Sync + 'static {
    /// Whether the database answers, and wrote without a storage fault lately (`/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// One integration of the tenant.
    async fn get(&self, tenant_id: &str, id: Uuid) -> Result<Option<Integration>, StoreError>;

    /// One page of the tenant's integrations in (name, id) order, after `after`.
    async fn list(
        &self,
        tenant_id: &str,
        filter: &ListFilter,
        after: Option<&ListPosition>,
        limit: u32,
    ) -> Result<Vec<Integration>, StoreError>;

    /// How many of the tenant's integrations are in each status, paused or not, and of each
    /// health (the last test or check passed, failed, or never ran).
    async fn state_counts(&self, tenant_id: &str) -> Result<Vec<StateCount>, StoreError>;

    /// Applies a mutation: row, audit entry and events in one transaction.
    async fn apply(&self, change: Change) -> Result<(), StoreError>;

    /// The latest test result kept for the integration, as JSON.
    async fn latest_test(&self, tenant_id: &str, id: Uuid) -> Result<Option<serde_json::Value>, StoreError>;

    /// The response kept for an `Idempotency-Key`.
    async fn idempotent_response(&self, tenant_id: &str, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;

    /// Forgets the `Idempotency-Key`s stored before `before`, a few thousand per statement;
    /// returns how many.
    async fn prune_idempotency_keys(&self, before: time::OffsetDateTime) -> Result<u64, StoreError>;

    /// Up to `limit` tenants that have integrations, in order (the start-up check of a secret
    /// layout meant for one tenant).
    async fn tenants(&self, limit: u32) -> Result<Vec<String>, StoreError>;
}

/// How many integrations share a status, a paused flag and a health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateCount {
    /// The status.
    pub status: Status,
    /// Paused or not.
    pub paused: bool,
    /// The last test or check passed, failed, or never ran.
    pub last_test_success: Option<bool>,
    /// How many.
    pub count: u64,
}

/// A stored value read back through the checks it was written after; one that no longer passes
/// them names its row and column.
fn checked<T>(
    id: &str,
    column: &str,
    text: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| parse(&t).map_err(|e| StoreError::Other(format!("integration {id}: the stored {column} `{t}`: {e}"))))
        .transpose()
}

/// A mutation of one integration, with what it must write beside the row.
#[derive(Clone, Debug)]
pub struct Change {
    /// The tenant.
    pub tenant_id: String,
    /// The integration.
    pub integration_id: Uuid,
    /// What happens to the row.
    pub write: RowWrite,
    /// The audit entry (exactly one per mutation).
    pub audit: AuditDraft,
    /// The events to publish.
    pub events: Vec<EventDraft>,
    /// The latest test result to keep for the integration (`GET /{id}/tests/latest`), as JSON.
    pub test_result: Option<String>,
    /// The response to keep for an `Idempotency-Key`.
    pub idempotency: Option<IdempotentResponse>,
    /// Make the integration's next health check due at once (after the one running, if any), so
    /// the ones after it follow its (new) interval.
    pub reschedule_health: bool,
    /// The ledger entries of the invocations this change records (a test's).
    pub invocations: Vec<LedgerEntry>,
}

/// What a [`Change`] does to the integration's row.
#[derive(Clone, Debug)]
pub enum RowWrite {
    /// Insert a new row (fails with `NameTaken` on a duplicate name).
    Insert(Box<Integration>),
    /// Replace the row, if it is still at `expected_version`; the new row carries the next version.
    Update {
        /// The new row.
        row: Box<Integration>,
        /// The version it was derived from.
        expected_version: i64,
    },
    /// Delete the row, if it is still at `expected_version`.
    Delete {
        /// The version the caller saw.
        expected_version: i64,
    },
}

/// The first response to a request with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// The key.
    pub key: String,
    /// sha256 of the request body, to tell a replay from a reuse of the key.
    pub request_hash: String,
    /// HTTP status of the first response.
    pub status: u16,
    /// Its body.
    pub body: String,
}

/// The integration columns, in the order [`SqlStore::bind_row`] binds them.
pub(super) const COLUMNS: &str = "integration_id, tenant_id, name, description, integration_type, provider, base_url, \
    auth_ref, configuration, environment, tags, owner_id, status, paused, pause_reason, pause_ticket, last_tested_at, \
    last_test_success, consecutive_failures, created_at, created_by, modified_at, modified_by, version, \
    health_check_interval_s";
const COLUMN_COUNT: usize = 25;

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

/// The list query and its binds.
fn list_query<D: Dialect>(
    tenant_id: &str,
    filter: &ListFilter,
    after: Option<&ListPosition>,
    limit: u32,
) -> (String, Vec<Bind>) {
    let mut sql = format!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1");
    let mut binds = vec![Bind::Text(tenant_id.to_string())];
    let mut eq = |sql: &mut String, column: &str, value: Option<&str>| {
        if let Some(v) = value {
            binds.push(Bind::Text(v.to_string()));
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    };
    eq(&mut sql, "integration_type", filter.integration_type.map(|t| t.as_str()));
    eq(&mut sql, "provider", filter.provider.as_deref());
    eq(&mut sql, "status", filter.status.map(Status::as_str));
    eq(&mut sql, "environment", filter.environment.as_deref());
    eq(&mut sql, "owner_id", filter.owner.as_deref());
    if let Some(tag) = &filter.tag {
        binds.push(Bind::Text(tag.clone()));
        sql.push_str(&format!(" AND {}", D::tag_filter(binds.len())));
    }
    if let Some(paused) = filter.paused {
        binds.push(Bind::Flag(paused));
        sql.push_str(&format!(" AND paused = ${}", binds.len()));
    }
    match filter.health {
        None => {}
        Some(crate::health::HealthState::Unknown) => sql.push_str(" AND last_test_success IS NULL"),
        Some(health) => {
            binds.push(Bind::Flag(health == crate::health::HealthState::Healthy));
            sql.push_str(&format!(" AND last_test_success = ${}", binds.len()));
        }
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

/// A tenant's head, as locked: where its audit chain and its event stream end.
pub(super) struct TenantHead {
    /// The last audit entry's number.
    pub audit_seq: i64,
    /// The last audit entry's hash.
    pub audit_hash: String,
    /// The last event's number.
    pub event_seq: i64,
}

sql_impl! {
    impl SqlStore<D> {
        /// Locks the tenant's head in `tx` (creating it for the tenant's first write) and answers it.
        /// Every write that numbers a tenant's audit entries or events takes the head before any
        /// other row, so that writers of one tenant queue in one order and never deadlock.
        pub(super) async fn lock_head_in(
            tx: &mut sqlx::Transaction<'static, D>,
            tenant: &str,
        ) -> Result<TenantHead, StoreError> {
            sqlx::query(
                "INSERT INTO tenant_heads (tenant_id, audit_seq, audit_hash, event_seq) VALUES ($1, 0, $2, 0) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(GENESIS_HASH)
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
            let lock_head =
                format!("SELECT audit_seq, audit_hash, event_seq FROM tenant_heads WHERE tenant_id = $1{}", D::LOCK_HEAD);
            let head = sqlx::query(AssertSqlSafe(lock_head)).bind(tenant).fetch_one(&mut **tx).await.map_err(map_error)?;
            Ok(TenantHead {
                audit_seq: head.try_get(0).map_err(map_error)?,
                audit_hash: head.try_get(1).map_err(map_error)?,
                event_seq: head.try_get(2).map_err(map_error)?,
            })
        }

        /// Writes the tenant's event number `seq` to the outbox in `tx`, under the head the caller
        /// locked; the caller then moves the head's `event_seq` to the last number it wrote. `subject`
        /// fills the outbox's subject column (an integration's id; for a platform event, the
        /// connector version), and `document` makes the CloudEvent of the event's new id.
        pub(super) async fn insert_event_in(
            tx: &mut sqlx::Transaction<'static, D>,
            tenant: &str,
            seq: i64,
            subject: &str,
            draft: &EventDraft,
            at: OffsetDateTime,
            document: impl FnOnce(Uuid) -> serde_json::Value + Send,
        ) -> Result<(), StoreError> {
            let event_id = Uuid::new_v4();
            let document = document(event_id);
            sqlx::query(
                "INSERT INTO events (tenant_id, seq, event_id, event_type, integration_id, at, cloud_event) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant)
            .bind(seq)
            .bind(event_id.to_string())
            .bind(draft.event_type.as_str())
            .bind(subject)
            .bind(at)
            .bind(document.to_string())
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
            Ok(())
        }
    }
}

sql_impl! {
    impl SqlStore<D> {
        /// An integration from its row.
        pub(super) fn decode(row: &D::Row) -> Result<Integration, StoreError> {
            let get_err = |e: sqlx::Error| StoreError::Other(format!("cannot read an integration row: {e}"));
            let id: String = row.try_get("integration_id").map_err(get_err)?;
            let kind: String = row.try_get("integration_type").map_err(get_err)?;
            let status: String = row.try_get("status").map_err(get_err)?;
            let failures: i64 = row.try_get("consecutive_failures").map_err(get_err)?;
            let interval: Option<i64> = row.try_get("health_check_interval_s").map_err(get_err)?;
            let Json(tags): Json<Vec<String>> = row.try_get("tags").map_err(get_err)?;
            let configuration: String = row.try_get("configuration").map_err(get_err)?;
            Ok(Integration {
                integration_id: parse_uuid(&id)?,
                tenant_id: row.try_get("tenant_id").map_err(get_err)?,
                name: row.try_get("name").map_err(get_err)?,
                description: row.try_get("description").map_err(get_err)?,
                integration_type: kind
                    .parse::<IntegrationType>()
                    .map_err(|_| StoreError::Other(format!("unknown stored type `{kind}`")))?,
                provider: row.try_get("provider").map_err(get_err)?,
                base_url: checked(&id, "base_url", row.try_get("base_url").map_err(get_err)?, BaseUrl::parse)?,
                auth_ref: checked(&id, "auth_ref", row.try_get("auth_ref").map_err(get_err)?, AuthRef::parse)?,
                configuration: parse_json(&configuration)?,
                environment: row.try_get("environment").map_err(get_err)?,
                tags,
                owner_id: row.try_get("owner_id").map_err(get_err)?,
                health_check_interval: interval
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| StoreError::Other("a stored health check interval is out of range".into()))?,
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
        fn bind_row<'q>(query: Query<'q, D>, row: &Integration, version: i64) -> Query<'q, D> {
            query
                .bind(row.integration_id.to_string())
                .bind(row.tenant_id.clone())
                .bind(row.name.clone())
                .bind(row.description.clone())
                .bind(row.integration_type.as_str())
                .bind(row.provider.clone())
                .bind(row.base_url.as_ref().map(|u| u.as_str().to_string()))
                .bind(row.auth_ref.as_ref().map(|r| r.to_string()))
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
        async fn missing_or_stale(tx: &mut sqlx::Transaction<'static, D>, tenant_id: &str, id: Uuid) -> StoreError {
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

        /// Writes a [`Change`] in the transaction `tx`: the row, then the audit entry chained after
        /// the tenant's head and the events numbered after it, then what else the change keeps.
        pub(super) async fn apply_in(tx: &mut sqlx::Transaction<'static, D>, change: Change) -> Result<(), StoreError> {
            let tenant = change.tenant_id.as_str();
            let TenantHead { audit_seq, audit_hash: prev_hash, mut event_seq } = Self::lock_head_in(tx, tenant).await?;

            match &change.write {
                RowWrite::Insert(row) => {
                    let sql = format!("INSERT INTO integrations ({COLUMNS}) VALUES ({})", placeholders(1, COLUMN_COUNT));
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
                        "UPDATE integrations SET ({COLUMNS}) = ({}) \
                         WHERE tenant_id = ${} AND integration_id = ${} AND version = ${}",
                        placeholders(1, COLUMN_COUNT),
                        COLUMN_COUNT + 1,
                        COLUMN_COUNT + 2,
                        COLUMN_COUNT + 3
                    );
                    let query = Self::bind_row(sqlx::query(AssertSqlSafe(sql)), row, expected_version + 1)
                        .bind(tenant)
                        .bind(change.integration_id.to_string())
                        .bind(*expected_version);
                    match query.execute(&mut **tx).await {
                        Ok(done) if D::rows_affected(&done) == 1 => {}
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
                    if D::rows_affected(&done) != 1 {
                        return Err(Self::missing_or_stale(tx, tenant, change.integration_id).await);
                    }
                }
            }

            let entry = AuditEntry::chained(audit_seq + 1, tenant, change.integration_id, &change.audit, prev_hash);
            sqlx::query(
                "INSERT INTO audit_entries (tenant_id, seq, integration_id, action, actor, at, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(tenant)
            .bind(entry.seq)
            .bind(entry.integration_id.to_string())
            .bind(entry.action.as_str())
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
                let (id, at) = (change.integration_id, change.audit.at);
                let document = |event_id| draft.cloud_event(tenant, id, event_id, at);
                Self::insert_event_in(tx, tenant, event_seq, &id.to_string(), draft, at, document).await?;
            }

            sqlx::query("UPDATE tenant_heads SET audit_seq = $2, audit_hash = $3, event_seq = $4 WHERE tenant_id = $1")
                .bind(tenant)
                .bind(entry.seq)
                .bind(entry.hash.clone())
                .bind(event_seq)
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;

            Self::insert_invocations_in(tx, &change.invocations).await?;
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
                // Due now; a check running under a lease is left alone, and its end schedules the next
                // one at once instead of an interval later.
                sqlx::query(
                    "UPDATE health_schedule SET \
                     due_ms = CASE WHEN lease_owner IS NULL THEN $1 ELSE due_ms END, \
                     reschedule = (lease_owner IS NOT NULL) \
                     WHERE integration_id = $2 AND tenant_id = $3",
                )
                .bind(unix_ms(change.audit.at))
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
                if D::rows_affected(&done) != 1 {
                    return Err(StoreError::KeyInFlight);
                }
            }
            Ok(())
        }
    }
}

sql_impl! {
    #[async_trait]
    impl IntegrationStore for SqlStore<D> {
        async fn ping(&self) -> Result<(), StoreError> {
            sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error)?;
            // A database that answers but cannot write (a full disk) is not ready either.
            match super::recent_storage_fault() {
                Some(why) => Err(StoreError::Storage(why)),
                None => Ok(()),
            }
        }

        async fn get(&self, tenant_id: &str, id: Uuid) -> Result<Option<Integration>, StoreError> {
            let sql = format!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND integration_id = $2");
            let row = self.read_optional(sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).bind(id.to_string())).await?;
            row.as_ref().map(Self::decode).transpose()
        }

        async fn list(
            &self,
            tenant_id: &str,
            filter: &ListFilter,
            after: Option<&ListPosition>,
            limit: u32,
        ) -> Result<Vec<Integration>, StoreError> {
            let (sql, binds) = list_query::<D>(tenant_id, filter, after, limit);
            let query = bind_all(sqlx::query(AssertSqlSafe(sql)), binds);
            self.read_all(query).await?.iter().map(Self::decode).collect()
        }

        async fn state_counts(&self, tenant_id: &str) -> Result<Vec<StateCount>, StoreError> {
            let query = sqlx::query(
                "SELECT status, paused, last_test_success, count(*) AS n FROM integrations WHERE tenant_id = $1 \
                 GROUP BY status, paused, last_test_success",
            )
            .bind(tenant_id);
            let rows = self.read_all(query).await?;
            rows.iter()
                .map(|row| {
                    let status: String = row.try_get("status").map_err(map_error)?;
                    Ok(StateCount {
                        status: Status::parse(&status)
                            .ok_or_else(|| StoreError::Other(format!("unknown stored status `{status}`")))?,
                        paused: row.try_get("paused").map_err(map_error)?,
                        last_test_success: row.try_get("last_test_success").map_err(map_error)?,
                        count: u64::try_from(row.try_get::<i64, _>("n").map_err(map_error)?).unwrap_or(0),
                    })
                })
                .collect()
        }

        async fn apply(&self, change: Change) -> Result<(), StoreError> {
            let mut tx = self.begin_write().await?;
            Self::apply_in(&mut tx, change).await?;
            tx.commit().await.map_err(map_error)
        }

        async fn tenants(&self, limit: u32) -> Result<Vec<String>, StoreError> {
            let query = sqlx::query("SELECT DISTINCT tenant_id FROM integrations ORDER BY tenant_id LIMIT $1")
                .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(|row| row.try_get::<String, _>(0).map_err(map_error)).collect()
        }

        async fn latest_test(&self, tenant_id: &str, id: Uuid) -> Result<Option<serde_json::Value>, StoreError> {
            let query = sqlx::query("SELECT result FROM test_results WHERE tenant_id = $1 AND integration_id = $2")
                .bind(tenant_id)
                .bind(id.to_string());
            match self.read_optional(query).await? {
                None => Ok(None),
                Some(row) => Ok(Some(parse_json(&row.try_get::<String, _>(0).map_err(map_error)?)?)),
            }
        }

        async fn prune_idempotency_keys(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
            let delete = "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN \
                          (SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)";
            self.prune_in_batches(delete, before).await
        }

        async fn idempotent_response(&self, tenant_id: &str, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
            let query = sqlx::query(
                "SELECT key, request_hash, status, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            )
            .bind(tenant_id)
            .bind(key);
            let Some(row) = self.read_optional(query).await? else { return Ok(None) };
            let status: i64 = row.try_get(2).map_err(map_error)?;
            Ok(Some(IdempotentResponse {
                key: row.try_get(0).map_err(map_error)?,
                request_hash: row.try_get(1).map_err(map_error)?,
                status: u16::try_from(status).unwrap_or(500),
                body: row.try_get(3).map_err(map_error)?,
            }))
        }
    }
}
