//! The invocation ledger's rows: written in batches (in the transaction of what the invocation
//! changed, or on their own), read by id, pruned by age in batches.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use super::StoreError;
use super::sql::{Bind, Dialect, bind_all, map_error, placeholders, sql_impl};
use crate::domain::{from_unix_ms, unix_ms};
use crate::events::EventDraft;
use crate::ledger::{InvocationFilter, InvocationPosition, LedgerEntry, LedgerSummary, Level, Operation};

/// Rows per INSERT statement (20 values each, well under PostgreSQL's 65,535 binds).
const INSERT_BATCH: usize = 256;

const COLUMNS: &str = "invocation_id, tenant_id, integration_id, provider, sha256, operation, at_ms, duration_ms, \
     outcome, failure_class, denied, denial_kinds, origins, auth_refs, outside_base_url, revealed_secret, signed_jwt, \
     secret_in_request, level, record";
const COLUMN_COUNT: usize = 20;

/// The ledger's reads and writes.
#[async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// Keeps these entries (an entry already kept, by id, is left as it is).
    async fn record_invocations(&self, entries: &[LedgerEntry]) -> Result<(), StoreError>;

    /// One entry: of `tenant_id` only, or of any tenant when `None` (the platform's view).
    async fn invocation(&self, tenant_id: Option<&str>, id: Uuid) -> Result<Option<LedgerEntry>, StoreError>;

    /// Deletes the entries that started before `before_ms`; returns how many.
    async fn prune_invocations(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// A page of entries (without their records), newest first: of `tenant_id` only, or of any
    /// tenant when `None`; those `filter` keeps, after `after` when given.
    async fn invocations(
        &self,
        tenant_id: Option<&str>,
        filter: &InvocationFilter,
        after: Option<&InvocationPosition>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// Adds the condition `column = <value>`.
fn equal(column: &str, value: Bind, conditions: &mut Vec<String>, binds: &mut Vec<Bind>) {
    binds.push(value);
    conditions.push(format!("{column} = ${}", binds.len()));
}

/// The list query: conditions in the order of their binds, newest first.
fn list_query<D: Dialect>(
    tenant_id: Option<&str>,
    filter: &InvocationFilter,
    after: Option<&InvocationPosition>,
    limit: u32,
) -> (String, Vec<Bind>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(t) = tenant_id {
        equal("tenant_id", Bind::Text(t.to_string()), &mut conditions, &mut binds);
    }
    let texts = [
        ("provider", &filter.provider),
        ("sha256", &filter.sha256),
        ("outcome", &filter.outcome),
        ("failure_class", &filter.failure_class),
    ];
    for (column, value) in texts {
        if let Some(v) = value {
            equal(column, Bind::Text(v.clone()), &mut conditions, &mut binds);
        }
    }
    if let Some(id) = filter.integration_id {
        equal("integration_id", Bind::Text(id.to_string()), &mut conditions, &mut binds);
    }
    if let Some(op) = filter.operation {
        equal("operation", Bind::Text(op.as_str().to_string()), &mut conditions, &mut binds);
    }
    if let Some(denied) = filter.denied {
        equal("denied", Bind::Flag(denied), &mut conditions, &mut binds);
    }
    if let Some(outside) = filter.outside_base_url {
        equal("outside_base_url", Bind::Flag(outside), &mut conditions, &mut binds);
    }
    if let Some(revealed) = filter.revealed_secret {
        equal("revealed_secret", Bind::Flag(revealed), &mut conditions, &mut binds);
    }
    if let Some(carried) = filter.secret_in_request {
        equal("secret_in_request", Bind::Flag(carried), &mut conditions, &mut binds);
    }
    if let Some(level) = filter.level {
        equal("level", Bind::Text(level.as_str().to_string()), &mut conditions, &mut binds);
    }
    for (column, value) in [
        ("invocations.denial_kinds", &filter.denial_kind),
        ("invocations.origins", &filter.origin),
        ("invocations.auth_refs", &filter.auth_ref),
    ] {
        if let Some(v) = value {
            binds.push(Bind::Text(v.clone()));
            conditions.push(D::text_list_contains(column, binds.len()));
        }
    }
    if let Some(since) = filter.since_ms {
        binds.push(Bind::Int(since));
        conditions.push(format!("at_ms >= ${}", binds.len()));
    }
    if let Some(until) = filter.until_ms {
        binds.push(Bind::Int(until));
        conditions.push(format!("at_ms < ${}", binds.len()));
    }
    if let Some(p) = after {
        binds.push(Bind::Int(p.at_ms));
        binds.push(Bind::Text(p.id.to_string()));
        let (a, i) = (binds.len() - 1, binds.len());
        conditions.push(format!("(at_ms < ${a} OR (at_ms = ${a} AND invocation_id < ${i}))"));
    }
    binds.push(Bind::Int(i64::from(limit)));
    let filter_sql = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    // A list reads no full record (read one invocation for it), but a summary's few counts.
    let columns = COLUMNS.replace(", record", ", CASE WHEN level = 'summary' THEN record END AS record");
    (
        format!(
            "SELECT {columns} FROM invocations{filter_sql} ORDER BY at_ms DESC, invocation_id DESC LIMIT ${}",
            binds.len()
        ),
        binds,
    )
}

fn text_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("a stored ledger list does not parse: {e}")))
}

fn decode_entry<R: Row>(row: &R) -> Result<LedgerEntry, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> Option<String>: Decode<'q, R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> bool: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let text = |name: &str| row.try_get::<String, _>(name).map_err(map_error);
    let uuid = |name: &str| {
        text(name).and_then(|s| Uuid::parse_str(&s).map_err(|e| StoreError::Other(format!("a stored id: {e}"))))
    };
    let operation = text("operation")?;
    let level = text("level")?;
    let level = Level::parse(&level).ok_or_else(|| StoreError::Other(format!("unknown stored level `{level}`")))?;
    let stored = match row.try_get::<Option<String>, _>("record") {
        Ok(stored) => stored,
        Err(sqlx::Error::ColumnNotFound(_)) => None,
        Err(e) => return Err(map_error(e)),
    };
    Ok(LedgerEntry {
        invocation_id: uuid("invocation_id")?,
        tenant_id: text("tenant_id")?,
        integration_id: uuid("integration_id")?,
        provider: text("provider")?,
        sha256: text("sha256")?,
        operation: Operation::parse(&operation)
            .ok_or_else(|| StoreError::Other(format!("unknown stored operation `{operation}`")))?,
        at: from_unix_ms(row.try_get::<i64, _>("at_ms").map_err(map_error)?),
        duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms").map_err(map_error)?).unwrap_or_default(),
        outcome: text("outcome")?,
        failure_class: row.try_get("failure_class").map_err(map_error)?,
        denied: row.try_get("denied").map_err(map_error)?,
        denial_kinds: text_list(&text("denial_kinds")?)?,
        origins: text_list(&text("origins")?)?,
        auth_refs: text_list(&text("auth_refs")?)?,
        outside_base_url: row.try_get("outside_base_url").map_err(map_error)?,
        revealed_secret: row.try_get("revealed_secret").map_err(map_error)?,
        signed_jwt: row.try_get("signed_jwt").map_err(map_error)?,
        secret_in_request: row.try_get("secret_in_request").map_err(map_error)?,
        level,
        record: match (level, &stored) {
            (Level::Full, Some(record)) => Some(
                serde_json::from_str(record)
                    .map_err(|e| StoreError::Other(format!("a stored invocation record does not parse: {e}")))?,
            ),
            _ => None,
        },
        summary: match (level, &stored) {
            (Level::Summary, Some(summary)) => Some(
                serde_json::from_str(summary)
                    .map_err(|e| StoreError::Other(format!("a stored ledger summary does not parse: {e}")))?,
            ),
            _ => None,
        },
    })
}

/// Binds an entry's row: the values of [`COLUMNS`], in order.
fn bind_entry<'q, D: super::sql::Dialect>(query: super::sql::Query<'q, D>, e: &LedgerEntry) -> super::sql::Query<'q, D>
where
    for<'b> String: sqlx::Encode<'b, D> + Type<D>,
    for<'b> i64: sqlx::Encode<'b, D> + Type<D>,
    for<'b> bool: sqlx::Encode<'b, D> + Type<D>,
    for<'b> &'b str: sqlx::Encode<'b, D> + Type<D>,
    for<'b> Option<String>: sqlx::Encode<'b, D>,
{
    let list = |v: &Vec<String>| serde_json::to_string(v).expect("a list serializes");
    query
        .bind(e.invocation_id.to_string())
        .bind(e.tenant_id.clone())
        .bind(e.integration_id.to_string())
        .bind(e.provider.clone())
        .bind(e.sha256.clone())
        .bind(e.operation.as_str().to_string())
        .bind(unix_ms(e.at))
        .bind(i64::try_from(e.duration_ms).unwrap_or(i64::MAX))
        .bind(e.outcome.clone())
        .bind(e.failure_class.clone())
        .bind(e.denied)
        .bind(list(&e.denial_kinds))
        .bind(list(&e.origins))
        .bind(list(&e.auth_refs))
        .bind(e.outside_base_url)
        .bind(e.revealed_secret)
        .bind(e.signed_jwt)
        .bind(e.secret_in_request)
        .bind(e.level.as_str().to_string())
        .bind(stored_record(e))
}

/// Adds the checks of `other` (of a summary of the same id) to `kept`'s, whose duration is then
/// their mean.
fn merge_summary(kept: &mut LedgerEntry, other: &LedgerSummary) {
    if let Some(mine) = kept.summary.as_mut() {
        mine.merge(other);
        kept.duration_ms = mine.latency.sum_ms / mine.latency.count.max(1);
    }
}

/// What the `record` column holds: an entry's record, or a summary's counts.
fn stored_record(e: &LedgerEntry) -> String {
    match e.level {
        Level::Full => serde_json::to_string(&e.record),
        Level::Summary => serde_json::to_string(&e.summary),
    }
    .expect("a record serializes")
}

sql_impl! {
    impl SqlStore<D> {
        /// Writes `entries` in the transaction `tx` (so an invocation's entry is kept with what it
        /// changed, or not at all), and an `invocation.denied` event for each new one that was
        /// denied something ([`Self::lock_denied_heads_in`] tells the lock this takes).
        pub(super) async fn insert_invocations_in(
            tx: &mut sqlx::Transaction<'static, D>,
            entries: &[LedgerEntry],
        ) -> Result<(), StoreError> {
            let mut inserted = BTreeSet::new();
            for part in entries.chunks(INSERT_BATCH) {
                let rows: Vec<String> =
                    (0..part.len()).map(|n| format!("({})", placeholders(COLUMN_COUNT * n + 1, COLUMN_COUNT))).collect();
                // An entry kept already (the same invocation recorded twice) is neither written nor
                // announced again.
                let sql = format!(
                    "INSERT INTO invocations ({COLUMNS}) VALUES {} ON CONFLICT (invocation_id, at_ms) DO NOTHING \
                     RETURNING invocation_id",
                    rows.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for e in part {
                    query = bind_entry(query, e);
                }
                for row in query.fetch_all(&mut **tx).await.map_err(map_error)? {
                    inserted.insert(row.try_get::<String, _>(0).map_err(map_error)?);
                }
            }
            let denied: Vec<&LedgerEntry> =
                entries.iter().filter(|e| e.denied && inserted.contains(&e.invocation_id.to_string())).collect();
            // Tenant by tenant, in tenant order (the order `lock_denied_heads_in` takes them in).
            let tenants: BTreeSet<&str> = denied.iter().map(|e| e.tenant_id.as_str()).collect();
            for tenant in tenants {
                let mut seq = Self::lock_head_in(tx, tenant).await?.event_seq;
                for e in denied.iter().filter(|e| e.tenant_id == tenant) {
                    seq += 1;
                    let (draft, id) = (EventDraft::invocation_denied(e), e.integration_id);
                    let document = |event_id| draft.cloud_event(tenant, id, event_id, e.at);
                    Self::insert_event_in(tx, tenant, seq, &id.to_string(), &draft, e.at, document).await?;
                }
                sqlx::query("UPDATE tenant_heads SET event_seq = $1 WHERE tenant_id = $2")
                    .bind(seq)
                    .bind(tenant)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_error)?;
            }
            Ok(())
        }

        /// Folds `folded` (each one check's summary entry, [`LedgerEntry::folded`]) into the
        /// summaries kept in `tx`: by id, the checks of an integration's hour with one digest go
        /// into one entry, created by the first and counted on by the others. (No other writer
        /// touches a summary meanwhile: it is of one integration, whose checks one lease at a time
        /// records.)
        pub(super) async fn fold_invocations_in(
            tx: &mut sqlx::Transaction<'static, D>,
            folded: &[LedgerEntry],
        ) -> Result<(), StoreError> {
            let mut merged: std::collections::BTreeMap<Uuid, LedgerEntry> = std::collections::BTreeMap::new();
            for e in folded {
                match merged.get_mut(&e.invocation_id) {
                    Some(kept) => {
                        if let Some(summary) = &e.summary {
                            merge_summary(kept, summary);
                        }
                    }
                    None => {
                        merged.insert(e.invocation_id, e.clone());
                    }
                }
            }
            let entries: Vec<LedgerEntry> = merged.into_values().collect();
            for part in entries.chunks(INSERT_BATCH) {
                let read = format!(
                    "SELECT invocation_id, record FROM invocations WHERE level = 'summary' AND invocation_id IN ({})",
                    placeholders(1, part.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(read));
                for e in part {
                    query = query.bind(e.invocation_id.to_string());
                }
                let mut kept = std::collections::BTreeMap::new();
                for row in query.fetch_all(&mut **tx).await.map_err(map_error)? {
                    let id: String = row.try_get("invocation_id").map_err(map_error)?;
                    let record: String = row.try_get("record").map_err(map_error)?;
                    let summary: LedgerSummary = serde_json::from_str(&record)
                        .map_err(|e| StoreError::Other(format!("a stored ledger summary does not parse: {e}")))?;
                    kept.insert(id, summary);
                }
                let mut part: Vec<LedgerEntry> = part.to_vec();
                for e in &mut part {
                    if let Some(earlier) = kept.get(&e.invocation_id.to_string()) {
                        merge_summary(e, earlier);
                    }
                }
                let rows: Vec<String> =
                    (0..part.len()).map(|n| format!("({})", placeholders(COLUMN_COUNT * n + 1, COLUMN_COUNT))).collect();
                let sql = format!(
                    "INSERT INTO invocations ({COLUMNS}) VALUES {} ON CONFLICT (invocation_id, at_ms) DO UPDATE \
                     SET record = excluded.record, duration_ms = excluded.duration_ms",
                    rows.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for e in &part {
                    query = bind_entry(query, e);
                }
                query.execute(&mut **tx).await.map_err(map_error)?;
            }
            Ok(())
        }

        /// Locks, in tenant order, the heads of the tenants whose `entries` were denied something:
        /// what [`Self::insert_invocations_in`] will lock to number their `invocation.denied` events.
        /// A transaction that locks other rows first (the health sweep's batch) takes these first, as
        /// every change takes its tenant's head before its rows.
        pub(super) async fn lock_denied_heads_in<'e>(
            tx: &mut sqlx::Transaction<'static, D>,
            entries: impl IntoIterator<Item = &'e LedgerEntry>,
        ) -> Result<(), StoreError> {
            let tenants: BTreeSet<&str> = entries.into_iter().filter(|e| e.denied).map(|e| e.tenant_id.as_str()).collect();
            for tenant in tenants {
                Self::lock_head_in(tx, tenant).await?;
            }
            Ok(())
        }
    }
}

sql_impl! {
    #[async_trait]
    impl LedgerStore for SqlStore<D> {
        async fn record_invocations(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
            if entries.is_empty() {
                return Ok(());
            }
            let mut tx = self.begin_write().await?;
            Self::insert_invocations_in(&mut tx, entries).await?;
            tx.commit().await.map_err(map_error)
        }

        async fn invocation(&self, tenant_id: Option<&str>, id: Uuid) -> Result<Option<LedgerEntry>, StoreError> {
            let row = match tenant_id {
                Some(tenant) => {
                    let query = sqlx::query("SELECT * FROM invocations WHERE invocation_id = $1 AND tenant_id = $2")
                        .bind(id.to_string())
                        .bind(tenant);
                    self.read_optional(query).await?
                }
                None => {
                    let query = sqlx::query("SELECT * FROM invocations WHERE invocation_id = $1").bind(id.to_string());
                    self.read_optional(query).await?
                }
            };
            row.as_ref().map(decode_entry).transpose()
        }

        async fn invocations(
            &self,
            tenant_id: Option<&str>,
            filter: &InvocationFilter,
            after: Option<&InvocationPosition>,
            limit: u32,
        ) -> Result<Vec<LedgerEntry>, StoreError> {
            let (sql, binds) = list_query::<D>(tenant_id, filter, after, limit);
            let query = bind_all(sqlx::query(AssertSqlSafe(sql)), binds);
            self.read_all(query).await?.iter().map(decode_entry).collect()
        }

        async fn prune_invocations(&self, before_ms: i64) -> Result<u64, StoreError> {
            let delete = "DELETE FROM invocations WHERE invocation_id IN \
                          (SELECT invocation_id FROM invocations WHERE at_ms < $1 LIMIT $2)";
            self.prune_partitioned(super::partitions::PARTITIONED[0], before_ms, delete).await
        }
    }
}
