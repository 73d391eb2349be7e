//! Health checks: the schedule (when each integration in service is next due, and which replica
//! holds its lease) and the history.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Row, Type};
use stella_runtime::FailureClass;
use uuid::Uuid;

use super::integrations::COLUMNS;
use super::sql::{Dialect, Query, map_error, parse_uuid, placeholders, sql_impl};
use super::{Change, StoreError};
use crate::domain::{DAY_MS, Integration, from_unix_ms, unix_ms};
use crate::health::{CheckOutcome, FinishedCheck, HealthCheck, HealthHour, HistoryCursor};
use crate::ledger::{LedgerEntry, Level};

/// A recorded check's ledger entry as it is kept (in full, or folded), with what the schedule
/// remembers of it for the next check: its digest, and its id and start when it is kept in full.
struct Kept {
    entry: LedgerEntry,
    digest: String,
    full: Option<(String, i64)>,
}

/// The health schedule and history.
#[async_trait]
pub trait HealthStore: Send + Sync + 'static {
    /// Schedules a first health check, due at `now_ms`, of every integration in service that has
    /// none yet, and drops the schedule of every one that left service (paused, deleted), so that
    /// leasing reads the due-time index alone. One pass over all integrations: the scheduler runs
    /// it once per poll, not per lease. Returns how many it scheduled.
    async fn schedule_health_checks(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Leases up to `limit` health checks due at `now_ms` for `owner` until `now_ms + lease_ms`,
    /// and answers the integrations as they are: scheduled integrations (in service when last
    /// scheduled: the checker looks again) whose next check is due and not held by an unexpired
    /// lease, the longest overdue first. Replicas on one PostgreSQL never lease the same check
    /// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
    async fn lease_health_checks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Integration>, StoreError>;

    /// Records checks that changed nothing of their integrations, many in one transaction: for
    /// each one still leased by `owner` whose integration is still at `version`, its history row
    /// and its next due time (at once instead, if a change of its interval asked for that while it
    /// ran), releasing the lease. The others (lease lost, or the integration changed since: the
    /// check may change it after all) are left out. Returns the integrations recorded.
    async fn finish_health_checks(&self, owner: &str, finished: &[FinishedCheck]) -> Result<Vec<Uuid>, StoreError>;

    /// Records a finished check in the history, applies `change` (what the check changed of the
    /// integration, if anything) and schedules the next check at `next_due_ms` (or at once, if a
    /// change of its interval asked for that while the check ran), releasing `owner`'s lease, all
    /// in one transaction. `false`, with nothing written, when the lease is no longer `owner`'s
    /// (the integration was deleted, or the lease expired and another replica took the check
    /// over). `Stale` when the integration changed since `change` was made from it.
    async fn finish_health_check(
        &self,
        owner: &str,
        finished: &FinishedCheck,
        change: Option<Change>,
    ) -> Result<bool, StoreError>;

    /// The integration's checks, newest first, strictly before the cursor when one is given.
    async fn health_history(
        &self,
        tenant_id: &str,
        id: Uuid,
        before: Option<HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<HealthCheck>, StoreError>;

    /// Deletes the checks older than `before_ms`, a few thousand per statement; returns how many.
    async fn prune_health_checks(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// The integration's hourly rollups of the hours that began at or after `since_ms`, oldest
    /// first.
    async fn health_hours(&self, tenant_id: &str, id: Uuid, since_ms: i64) -> Result<Vec<HealthHour>, StoreError>;

    /// Deletes the hourly rollups of hours that began before `before_ms`; returns how many.
    async fn prune_health_hours(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// For each of these integrations of the tenant with checks in the hours that began at or
    /// after `since_ms`: how many of them found it working (`healthy` or `degraded`), and how many
    /// were made (not `skipped`).
    async fn uptime_counts(
        &self,
        tenant_id: &str,
        ids: &[Uuid],
        since_ms: i64,
    ) -> Result<Vec<(Uuid, u64, u64)>, StoreError>;
}

/// The integrations the health scheduler checks (`Status::in_service`, not paused), as SQL over
/// the integrations' columns.
const IN_SERVICE: &str = "status IN ('active', 'degraded', 'failed') AND NOT paused";

/// Checks per statement of a batch: under every driver's parameter limit.
const BATCH: usize = 100;

const INSERT_CHECK: &str = "INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, \
    failure_class, latency_ms, message, replica) VALUES ";

fn decode_check<R: Row>(row: &R) -> Result<HealthCheck, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let id: String = row.try_get("check_id").map_err(map_error)?;
    let outcome: String = row.try_get("outcome").map_err(map_error)?;
    let failure: Option<String> = row.try_get("failure_class").map_err(map_error)?;
    let latency: i64 = row.try_get("latency_ms").map_err(map_error)?;
    Ok(HealthCheck {
        check_id: parse_uuid(&id)?,
        checked_at: from_unix_ms(row.try_get("checked_ms").map_err(map_error)?),
        outcome: CheckOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Other(format!("unknown stored outcome `{outcome}`")))?,
        failure_class: failure
            .map(|f| {
                FailureClass::parse(&f).ok_or_else(|| StoreError::Other(format!("unknown stored failure class `{f}`")))
            })
            .transpose()?,
        latency_ms: u64::try_from(latency).unwrap_or(0),
        message: row.try_get("message").map_err(map_error)?,
        replica: row.try_get("replica").map_err(map_error)?,
    })
}

fn decode_hour<R: Row>(row: &R) -> Result<HealthHour, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let count = |name: &str| row.try_get::<i64, _>(name).map(|n| u64::try_from(n).unwrap_or(0)).map_err(map_error);
    let latency: String = row.try_get("latency").map_err(map_error)?;
    Ok(HealthHour {
        hour_ms: row.try_get("hour_ms").map_err(map_error)?,
        made: count("made")?,
        working: count("working")?,
        skipped: count("skipped")?,
        latency: serde_json::from_str(&latency)
            .map_err(|e| StoreError::Other(format!("a stored latency histogram does not parse: {e}")))?,
    })
}

/// The first column of each row, as text (the ids a `RETURNING` answers).
fn first_column<R: Row>(rows: &[R]) -> Result<Vec<String>, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    rows.iter().map(|row| row.try_get::<String, _>(0).map_err(map_error)).collect()
}

/// Binds a history row: the values of [`INSERT_CHECK`], in order.
fn bind_check<'q, D: Dialect>(query: Query<'q, D>, f: &FinishedCheck, owner: &str) -> Query<'q, D>
where
    for<'b> String: Encode<'b, D> + Type<D>,
    for<'b> i64: Encode<'b, D> + Type<D>,
    for<'b> &'b str: Encode<'b, D> + Type<D>,
    for<'b> Option<&'b str>: Encode<'b, D>,
{
    let c = &f.check;
    query
        .bind(c.check_id.to_string())
        .bind(f.integration_id.to_string())
        .bind(f.tenant_id.clone())
        .bind(unix_ms(c.checked_at))
        .bind(c.outcome.as_str())
        .bind(c.failure_class.map(FailureClass::as_str))
        .bind(i64::try_from(c.latency_ms).unwrap_or(i64::MAX))
        .bind(c.message.clone())
        .bind(owner.to_string())
}

sql_impl! {
    impl SqlStore<D> {
        /// Counts `checks` into their integrations' hourly rollups, in `tx`. (No other writer
        /// touches an integration's hour meanwhile: one lease at a time records its checks.)
        async fn count_hours_in(
            tx: &mut sqlx::Transaction<'static, D>,
            checks: &[&FinishedCheck],
        ) -> Result<(), StoreError> {
            let mut hours: std::collections::BTreeMap<(String, i64), (String, HealthHour)> =
                std::collections::BTreeMap::new();
            for f in checks {
                let hour = HealthHour::of(&f.check);
                match hours.get_mut(&(f.integration_id.to_string(), hour.hour_ms)) {
                    Some((_, kept)) => kept.merge(&hour),
                    None => {
                        hours.insert((f.integration_id.to_string(), hour.hour_ms), (f.tenant_id.clone(), hour));
                    }
                }
            }
            let hours: Vec<((String, i64), (String, HealthHour))> = hours.into_iter().collect();
            for part in hours.chunks(BATCH) {
                let keys: Vec<String> = (0..part.len()).map(|n| format!("({})", placeholders(2 * n + 1, 2))).collect();
                let read = format!(
                    "SELECT integration_id, hour_ms, made, working, skipped, latency FROM health_hours \
                     WHERE (integration_id, hour_ms) IN ({})",
                    keys.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(read));
                for ((id, hour_ms), _) in part {
                    query = query.bind(id.clone()).bind(*hour_ms);
                }
                let mut kept = std::collections::HashMap::new();
                for row in query.fetch_all(&mut **tx).await.map_err(map_error)? {
                    let id: String = row.try_get("integration_id").map_err(map_error)?;
                    kept.insert((id, row.try_get::<i64, _>("hour_ms").map_err(map_error)?), decode_hour(&row)?);
                }
                let values: Vec<String> = (0..part.len()).map(|n| format!("({})", placeholders(7 * n + 1, 7))).collect();
                let upsert = format!(
                    "INSERT INTO health_hours (integration_id, hour_ms, tenant_id, made, working, skipped, latency) \
                     VALUES {} ON CONFLICT (integration_id, hour_ms) DO UPDATE SET made = excluded.made, \
                     working = excluded.working, skipped = excluded.skipped, latency = excluded.latency",
                    values.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(upsert));
                for ((id, hour_ms), (tenant, hour)) in part {
                    let mut hour = hour.clone();
                    if let Some(earlier) = kept.get(&(id.clone(), *hour_ms)) {
                        hour.merge(earlier);
                    }
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    query = query
                        .bind(id.clone())
                        .bind(*hour_ms)
                        .bind(tenant.clone())
                        .bind(count(hour.made))
                        .bind(count(hour.working))
                        .bind(count(hour.skipped))
                        .bind(serde_json::to_string(&hour.latency).expect("a histogram serializes"));
                }
                query.execute(&mut **tx).await.map_err(map_error)?;
            }
            Ok(())
        }
    }
}

sql_impl! {
    #[async_trait]
    impl HealthStore for SqlStore<D> {
        async fn schedule_health_checks(&self, now_ms: i64) -> Result<u64, StoreError> {
            let mut tx = self.begin_write().await?;
            // Out of service (paused, a draft again, deleted): no schedule, so the lease query never
            // walks past them; back in service, they are due at once.
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
            Ok(D::rows_affected(&done))
        }

        async fn lease_health_checks(
            &self,
            owner: &str,
            now_ms: i64,
            lease_ms: i64,
            limit: u32,
        ) -> Result<Vec<Integration>, StoreError> {
            let mut tx = self.begin_write().await?;
            // The schedule holds only integrations in service (`schedule_health_checks`), and the
            // check itself looks again, so the due-time index alone finds the next ones.
            let lease = format!(
                "UPDATE health_schedule SET lease_owner = $1, lease_until_ms = $2 WHERE integration_id IN ( \
                 SELECT s.integration_id FROM health_schedule s \
                 WHERE s.due_ms <= $3 AND (s.lease_until_ms IS NULL OR s.lease_until_ms <= $3) \
                 ORDER BY s.due_ms LIMIT $4{}) RETURNING integration_id",
                D::SKIP_LOCKED
            );
            let leased = sqlx::query(AssertSqlSafe(lease))
                .bind(owner)
                .bind(now_ms.saturating_add(lease_ms))
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            let leased = first_column(&leased)?;
            if leased.is_empty() {
                tx.commit().await.map_err(map_error)?;
                return Ok(vec![]);
            }
            // The rows just leased, read in the same transaction, so the checker needs no read of its
            // own per check.
            let read =
                format!("SELECT {COLUMNS} FROM integrations WHERE integration_id IN ({})", placeholders(1, leased.len()));
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
            let mut tx = self.begin_write().await?;
            let alerts = finished.iter().filter_map(|f| f.invocation.as_deref()).filter(|e| e.denied);
            // History and ledger rows alone may be lost in a crash (the checks' leases then expire and
            // they run again): their commit does not wait for the disk. Events may not: a consumer
            // may have read one, and its number would be given to another.
            match D::RELAXED_COMMIT {
                Some(relaxed) if alerts.clone().next().is_none() => {
                    sqlx::query(relaxed).execute(&mut *tx).await.map_err(map_error)?;
                }
                _ => {}
            }
            // The heads of the tenants whose checks were denied something, before any integration:
            // their `invocation.denied` events are numbered under them.
            Self::lock_denied_heads_in(&mut tx, alerts).await?;
            let mut recorded = Vec::new();
            for part in finished.chunks(BATCH) {
                // The integrations first, in id order, as every change locks them before their
                // schedule (a delete cascading to it would otherwise deadlock with us); shared, so
                // that none changes between the version check below and the commit.
                if !D::SHARE_ROWS.is_empty() {
                    let lock = format!(
                        "SELECT integration_id FROM integrations WHERE integration_id IN ({}) \
                         ORDER BY integration_id{}",
                        placeholders(1, part.len()),
                        D::SHARE_ROWS
                    );
                    let mut query = sqlx::query(AssertSqlSafe(lock));
                    for f in part {
                        query = query.bind(f.integration_id.to_string());
                    }
                    query.fetch_all(&mut *tx).await.map_err(map_error)?;
                }
                // What each integration's previous check did: a foldable check that did the same is
                // folded into its hour's summary, as a repeat of the last full entry.
                let read = format!(
                    "SELECT integration_id, last_digest, last_full, last_full_ms FROM health_schedule \
                     WHERE integration_id IN ({})",
                    placeholders(1, part.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(read));
                for f in part {
                    query = query.bind(f.integration_id.to_string());
                }
                let mut previous = std::collections::HashMap::new();
                for row in query.fetch_all(&mut *tx).await.map_err(map_error)? {
                    let id: String = row.try_get("integration_id").map_err(map_error)?;
                    let digest: Option<String> = row.try_get("last_digest").map_err(map_error)?;
                    let full: Option<String> = row.try_get("last_full").map_err(map_error)?;
                    let full_ms: Option<i64> = row.try_get("last_full_ms").map_err(map_error)?;
                    if let (Some(digest), Some(full), Some(full_ms)) =
                        (digest, full.and_then(|f| Uuid::parse_str(&f).ok()), full_ms)
                    {
                        previous.insert(id, (digest, full, full_ms.div_euclid(DAY_MS)));
                    }
                }
                let entries: Vec<Option<Kept>> = part
                    .iter()
                    .map(|f| {
                        let entry = f.invocation.as_deref()?;
                        let digest = entry.digest();
                        // The same as the last check, and on the day of the full entry it repeats.
                        let day = unix_ms(entry.at).div_euclid(DAY_MS);
                        let repeats = previous
                            .get(&f.integration_id.to_string())
                            .filter(|(last, _, full_day)| f.foldable && *last == digest && *full_day == day)
                            .map(|(_, full, _)| *full);
                        Some(match repeats {
                            Some(full) => Kept { entry: entry.folded(full, digest.clone()), digest, full: None },
                            None => Kept {
                                entry: entry.clone(),
                                digest,
                                full: Some((entry.invocation_id.to_string(), unix_ms(entry.at))),
                            },
                        })
                    })
                    .collect();
                let rows: Vec<String> = (0..part.len()).map(|n| format!("({})", placeholders(8 * n + 2, 8))).collect();
                // VALUES columns are column1.. in both dialects: id, tenant, next due, checked at,
                // version, digest, full entry and its start.
                let release = format!(
                    "UPDATE health_schedule SET \
                     due_ms = CASE WHEN reschedule THEN d.column4 ELSE d.column3 END, \
                     reschedule = FALSE, lease_owner = NULL, lease_until_ms = NULL, \
                     last_digest = COALESCE(d.column6, health_schedule.last_digest), \
                     last_full = COALESCE(d.column7, health_schedule.last_full), \
                     last_full_ms = COALESCE(d.column8, health_schedule.last_full_ms) \
                     FROM (VALUES {}) AS d \
                     WHERE health_schedule.integration_id = d.column1 AND health_schedule.tenant_id = d.column2 \
                     AND health_schedule.lease_owner = $1 \
                     AND EXISTS (SELECT 1 FROM integrations i \
                                 WHERE i.integration_id = d.column1 AND i.version = d.column5) \
                     RETURNING health_schedule.integration_id",
                    rows.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(release)).bind(owner);
                for (f, kept) in part.iter().zip(&entries) {
                    query = query
                        .bind(f.integration_id.to_string())
                        .bind(f.tenant_id.clone())
                        .bind(f.next_due_ms)
                        .bind(unix_ms(f.check.checked_at))
                        .bind(f.version)
                        .bind(kept.as_ref().map(|k| k.digest.clone()))
                        .bind(kept.as_ref().and_then(|k| k.full.as_ref().map(|(id, _)| id.clone())))
                        .bind(kept.as_ref().and_then(|k| k.full.as_ref().map(|(_, at)| *at)));
                }
                let released = first_column(&query.fetch_all(&mut *tx).await.map_err(map_error)?)?;
                let kept: Vec<&FinishedCheck> =
                    part.iter().filter(|f| released.contains(&f.integration_id.to_string())).collect();
                if kept.is_empty() {
                    continue;
                }
                let values: Vec<String> = (0..kept.len()).map(|n| format!("({})", placeholders(9 * n + 1, 9))).collect();
                let mut query = sqlx::query(AssertSqlSafe(format!("{INSERT_CHECK}{}", values.join(", "))));
                for f in &kept {
                    query = bind_check(query, f, owner);
                }
                query.execute(&mut *tx).await.map_err(map_error)?;
                Self::count_hours_in(&mut tx, &kept).await?;
                // Their records, in the ledger, with them: in full, or folded into their summaries.
                let (folded, full): (Vec<LedgerEntry>, Vec<LedgerEntry>) = part
                    .iter()
                    .zip(entries)
                    .filter(|(f, _)| released.contains(&f.integration_id.to_string()))
                    .filter_map(|(_, k)| k.map(|k| k.entry))
                    .partition(|e| e.level == Level::Summary);
                Self::insert_invocations_in(&mut tx, &full).await?;
                Self::fold_invocations_in(&mut tx, &folded).await?;
                recorded.extend(kept.iter().map(|f| f.integration_id));
            }
            tx.commit().await.map_err(map_error)?;
            Ok(recorded)
        }

        async fn finish_health_check(
            &self,
            owner: &str,
            finished: &FinishedCheck,
            change: Option<Change>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.begin_write().await?;
            // The change first: it locks the tenant's head before the schedule row, in the order
            // every other change takes them.
            let alert = finished.invocation.as_ref().is_some_and(|e| e.denied);
            match (change, D::RELAXED_COMMIT) {
                (Some(change), _) => Self::apply_in(&mut tx, change).await?,
                // A history row alone may be lost in a crash (the check's lease then expires and it
                // runs again): its commit does not wait for the disk. An event may not (see
                // `finish_health_checks`).
                (None, Some(relaxed)) if !alert => {
                    sqlx::query(relaxed).execute(&mut *tx).await.map_err(map_error)?;
                }
                (None, _) => {}
            }
            // The record before the schedule row: an `invocation.denied` event locks the tenant's
            // head, which every change takes before its rows. (A lease lost below rolls it back.)
            if let Some(entry) = &finished.invocation {
                Self::insert_invocations_in(&mut tx, std::slice::from_ref(entry)).await?;
            }
            // Kept in full: the next check is compared with this one.
            let entry = finished.invocation.as_deref();
            let released = sqlx::query(
                "UPDATE health_schedule SET due_ms = CASE WHEN reschedule THEN $1 ELSE $2 END, \
                 reschedule = FALSE, lease_owner = NULL, lease_until_ms = NULL, \
                 last_digest = COALESCE($6, last_digest), last_full = COALESCE($7, last_full), \
                 last_full_ms = COALESCE($8, last_full_ms) \
                 WHERE integration_id = $3 AND tenant_id = $4 AND lease_owner = $5",
            )
            .bind(unix_ms(finished.check.checked_at))
            .bind(finished.next_due_ms)
            .bind(finished.integration_id.to_string())
            .bind(finished.tenant_id.as_str())
            .bind(owner)
            .bind(entry.map(LedgerEntry::digest))
            .bind(entry.map(|e| e.invocation_id.to_string()))
            .bind(entry.map(|e| unix_ms(e.at)))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            if D::rows_affected(&released) != 1 {
                return Ok(false);
            }
            let insert = format!("{INSERT_CHECK}({})", placeholders(1, 9));
            bind_check(sqlx::query(AssertSqlSafe(insert)), finished, owner).execute(&mut *tx).await.map_err(map_error)?;
            Self::count_hours_in(&mut tx, &[finished]).await?;
            tx.commit().await.map_err(map_error)?;
            Ok(true)
        }

        async fn health_history(
            &self,
            tenant_id: &str,
            id: Uuid,
            before: Option<HistoryCursor>,
            limit: u32,
        ) -> Result<Vec<HealthCheck>, StoreError> {
            let (before_ms, before_id) = match before {
                Some(c) => (c.checked_ms, c.check_id.to_string()),
                // Past any stored time; the id then never decides.
                None => (i64::MAX, String::new()),
            };
            let query = sqlx::query(
                "SELECT * FROM health_checks WHERE tenant_id = $1 AND integration_id = $2 \
                 AND (checked_ms < $3 OR (checked_ms = $3 AND check_id < $4)) \
                 ORDER BY checked_ms DESC, check_id DESC LIMIT $5",
            )
            .bind(tenant_id)
            .bind(id.to_string())
            .bind(before_ms)
            .bind(before_id)
            .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(decode_check).collect()
        }

        async fn uptime_counts(
            &self,
            tenant_id: &str,
            ids: &[Uuid],
            since_ms: i64,
        ) -> Result<Vec<(Uuid, u64, u64)>, StoreError> {
            let mut counts = Vec::new();
            for part in ids.chunks(BATCH) {
                let sql = format!(
                    "SELECT integration_id, CAST(SUM(working) AS BIGINT) AS up, CAST(SUM(made) AS BIGINT) AS made \
                     FROM health_hours WHERE tenant_id = $1 AND hour_ms >= $2 AND integration_id IN ({}) \
                     GROUP BY integration_id",
                    placeholders(3, part.len())
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).bind(since_ms);
                for id in part {
                    query = query.bind(id.to_string());
                }
                for row in self.read_all(query).await? {
                    let id: String = row.try_get("integration_id").map_err(map_error)?;
                    let number = |name: &str| {
                        row.try_get::<Option<i64>, _>(name)
                            .map(|n| u64::try_from(n.unwrap_or(0)).unwrap_or(0))
                            .map_err(map_error)
                    };
                    counts.push((parse_uuid(&id)?, number("up")?, number("made")?));
                }
            }
            Ok(counts)
        }

        async fn health_hours(&self, tenant_id: &str, id: Uuid, since_ms: i64) -> Result<Vec<HealthHour>, StoreError> {
            let query = sqlx::query(
                "SELECT hour_ms, made, working, skipped, latency FROM health_hours \
                 WHERE tenant_id = $1 AND integration_id = $2 AND hour_ms >= $3 ORDER BY hour_ms",
            )
            .bind(tenant_id)
            .bind(id.to_string())
            .bind(since_ms);
            self.read_all(query).await?.iter().map(decode_hour).collect()
        }

        async fn prune_health_hours(&self, before_ms: i64) -> Result<u64, StoreError> {
            let delete = "DELETE FROM health_hours WHERE (integration_id, hour_ms) IN \
                          (SELECT integration_id, hour_ms FROM health_hours WHERE hour_ms < $1 LIMIT $2)";
            self.prune_partitioned(super::partitions::PARTITIONED[2], before_ms, delete).await
        }

        async fn prune_health_checks(&self, before_ms: i64) -> Result<u64, StoreError> {
            let delete = "DELETE FROM health_checks WHERE check_id IN \
                          (SELECT check_id FROM health_checks WHERE checked_ms < $1 LIMIT $2)";
            self.prune_partitioned(super::partitions::PARTITIONED[1], before_ms, delete).await
        }
    }
}
