//! The audit trail's reads: an integration's entries, and the verification of every tenant's
//! chain. (Entries are written by [`super::IntegrationStore::apply`], with the change they record.)

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::plugins::decode_plugin_audit;
use super::sql::{map_error, parse_json, parse_uuid, sql_impl};
use crate::audit::{AuditAction, AuditEntry, AuditReport, ChainBreak, ChainCheck, PLATFORM};

/// Reads of the audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// The integration's audit entries after `after_seq`, oldest first.
    async fn audit(&self, tenant_id: &str, id: Uuid, after_seq: i64, limit: u32)
    -> Result<Vec<AuditEntry>, StoreError>;

    /// Re-computes every tenant's chain, and the platform's (reported as the tenant
    /// [`crate::audit::PLATFORM`]).
    async fn verify_audit(&self) -> Result<AuditReport, StoreError>;
}

fn decode_audit<R: Row>(row: &R) -> Result<AuditEntry, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> OffsetDateTime: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let id: String = row.try_get("integration_id").map_err(map_error)?;
    let action: String = row.try_get("action").map_err(map_error)?;
    let details: String = row.try_get("details").map_err(map_error)?;
    Ok(AuditEntry {
        seq: row.try_get("seq").map_err(map_error)?,
        tenant_id: row.try_get("tenant_id").map_err(map_error)?,
        integration_id: parse_uuid(&id)?,
        action: AuditAction::parse(&action)
            .ok_or_else(|| StoreError::Other(format!("unknown stored audit action `{action}`")))?,
        actor: row.try_get("actor").map_err(map_error)?,
        at: row.try_get::<OffsetDateTime, _>("at").map_err(map_error)?,
        details: parse_json(&details)?,
        prev_hash: row.try_get("prev_hash").map_err(map_error)?,
        hash: row.try_get("hash").map_err(map_error)?,
    })
}

sql_impl! {
    #[async_trait]
    impl AuditStore for SqlStore<D> {
        async fn audit(
            &self,
            tenant_id: &str,
            id: Uuid,
            after_seq: i64,
            limit: u32,
        ) -> Result<Vec<AuditEntry>, StoreError> {
            let query = sqlx::query(
                "SELECT * FROM audit_entries WHERE tenant_id = $1 AND integration_id = $2 AND seq > $3 \
                 ORDER BY seq LIMIT $4",
            )
            .bind(tenant_id)
            .bind(id.to_string())
            .bind(after_seq)
            .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(decode_audit).collect()
        }

        async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
            let heads = self
                .read_all(sqlx::query("SELECT tenant_id, audit_seq, audit_hash FROM tenant_heads ORDER BY tenant_id"))
                .await?;
            let mut report = AuditReport::default();
            for head in heads {
                let tenant: String = head.try_get(0).map_err(map_error)?;
                let head_seq: i64 = head.try_get(1).map_err(map_error)?;
                let head_hash: String = head.try_get(2).map_err(map_error)?;
                report.tenants += 1;
                let mut chain = ChainCheck::default();
                'pages: loop {
                    let query = sqlx::query(
                        "SELECT * FROM audit_entries WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
                    )
                    .bind(tenant.clone())
                    .bind(chain.last_seq());
                    let rows = self.read_all(query).await?;
                    if rows.is_empty() {
                        break;
                    }
                    for row in &rows {
                        report.entries += 1;
                        // An action this service never writes was written behind its back: a break
                        // of the chain to report, not an error that ends the verification.
                        let action: String = row.try_get("action").map_err(map_error)?;
                        let checked = match AuditAction::parse(&action) {
                            Some(_) => chain.next(&decode_audit(row)?),
                            None => chain.refuse(
                                row.try_get("seq").map_err(map_error)?,
                                "its action is not one this service writes".into(),
                            ),
                        };
                        if !checked {
                            break 'pages;
                        }
                    }
                }
                report.breaks.extend(chain.finish(tenant, head_seq, &head_hash));
            }
            self.verify_platform_audit(&mut report).await?;
            Ok(report)
        }
    }
}

sql_impl! {
    impl SqlStore<D> {
        /// Walks the platform's chain of connector admissions into `report`.
        async fn verify_platform_audit(&self, report: &mut AuditReport) -> Result<(), StoreError> {
            let head =
                self.read_optional(sqlx::query("SELECT audit_seq, audit_hash FROM platform_head WHERE id = 1")).await?;
            let Some(head) = head else {
                report.breaks.push(ChainBreak {
                    tenant_id: PLATFORM.into(),
                    seq: 0,
                    problem: "the platform head row is missing".into(),
                });
                return Ok(());
            };
            let head_seq: i64 = head.try_get(0).map_err(map_error)?;
            let head_hash: String = head.try_get(1).map_err(map_error)?;
            let mut chain = ChainCheck::default();
            'pages: loop {
                let query = sqlx::query("SELECT * FROM platform_audit WHERE seq > $1 ORDER BY seq LIMIT 1000")
                    .bind(chain.last_seq());
                let rows = self.read_all(query).await?;
                if rows.is_empty() {
                    break;
                }
                for row in &rows {
                    report.entries += 1;
                    let checked = match decode_plugin_audit(row) {
                        Ok(entry) => chain.next(&entry),
                        // An action this service never writes was written behind its back.
                        Err(e) => chain.refuse(row.try_get("seq").map_err(map_error)?, format!("it cannot be read: {e}")),
                    };
                    if !checked {
                        break 'pages;
                    }
                }
            }
            report.breaks.extend(chain.finish(PLATFORM.into(), head_seq, &head_hash));
            Ok(())
        }
    }
}
