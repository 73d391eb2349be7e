//! The plugin store: components by sha256, their versions, the active version of each provider,
//! and the platform's audit chain and events, all written by one [`PluginChange`] in one
//! transaction that holds the platform head row (so platform writes are serialised, the chain has
//! no fork, and the active set's generation moves with the change that moved it).

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;

use super::StoreError;
use super::sql::{is_unique_violation, map_error, parse_json, sql_impl};
use crate::audit::{PLATFORM, PluginAction, PluginAuditDraft, PluginAuditEntry};
use crate::events::EventDraft;
use crate::plugins::{
    ActivePlugin, MAX_VERSIONS_PER_PROVIDER, PermissionSet, PluginStatus, PluginVersion, StoredSignature,
};

/// What one platform write changes (see the module documentation).
#[derive(Clone, Debug)]
pub struct PluginChange {
    /// The version it is about.
    pub provider: String,
    /// Its version.
    pub version: String,
    /// What happens to the version's row.
    pub write: PluginWrite,
    /// Whether the version becomes its provider's active version (it must then be approved).
    pub activate: Option<Activation>,
    /// When set, the provider's stored active version must still be this one (none: no stored
    /// version is active) when the change commits, or it fails with
    /// [`StoreError::StatusChanged`]: a decision made by comparing with the active version.
    pub expect_active: Option<Option<String>>,
    /// The audit entries, in order (a submission approved at once has three).
    pub audit: Vec<PluginAuditDraft>,
    /// The platform events.
    pub events: Vec<EventDraft>,
}

/// Who made a version active, and when.
#[derive(Clone, Debug)]
pub struct Activation {
    /// The actor.
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
}

/// What happens to a version's row.
#[derive(Clone, Debug)]
pub enum PluginWrite {
    /// Store a new version and, unless stored already, its component's bytes.
    Submit {
        /// The version's row.
        version: Box<PluginVersion>,
        /// The component.
        bytes: Vec<u8>,
    },
    /// Move a version from one status to another (approve, reject).
    Decide {
        /// The status it must be in now.
        from: PluginStatus,
        /// The status it moves to.
        to: PluginStatus,
        /// Who decided.
        by: String,
        /// When.
        at: OffsetDateTime,
        /// Why (a rejection's reason).
        reason: Option<String>,
    },
    /// Nothing (an activation only).
    None,
}

/// The plugin store's reads and its one write.
#[async_trait]
pub trait PluginStore: Send + Sync + 'static {
    /// A version of a provider.
    async fn plugin_version(&self, provider: &str, version: &str) -> Result<Option<PluginVersion>, StoreError>;

    /// The version stored with these bytes.
    async fn plugin_version_by_sha256(&self, sha256: &str) -> Result<Option<PluginVersion>, StoreError>;

    /// A provider's versions, newest submission first, at most `limit`.
    async fn plugin_versions(&self, provider: &str, limit: u32) -> Result<Vec<PluginVersion>, StoreError>;

    /// The versions of every provider waiting for a decision, newest submission first, at most
    /// `limit`.
    async fn pending_plugin_versions(&self, limit: u32) -> Result<Vec<PluginVersion>, StoreError>;

    /// The active version of a provider.
    async fn active_plugin(&self, provider: &str) -> Result<Option<PluginVersion>, StoreError>;

    /// How many times the active set has changed (replicas compare it with what they loaded).
    async fn plugin_generation(&self) -> Result<i64, StoreError>;

    /// The active version of every provider that has one, and the generation they are from.
    async fn active_plugins(&self) -> Result<(i64, Vec<ActivePlugin>), StoreError>;

    /// A component's bytes.
    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes a [`PluginChange`]: the row, the activation, the audit entries, the events.
    async fn apply_plugin(&self, change: PluginChange) -> Result<(), StoreError>;

    /// The platform's audit entries after `after_seq`, oldest first.
    async fn plugin_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<PluginAuditEntry>, StoreError>;
}

const VERSION_COLUMNS: &str = "v.provider, v.version, v.sha256, c.size, v.status, v.manifest, v.permissions, \
     v.permissions_digest, v.signatures, v.signed_by, v.unsigned_exception, v.origin, v.submitted_by, v.submitted_at, \
     v.decided_by, v.decided_at, v.decision_reason, (a.provider IS NOT NULL) AS active";
const VERSION_FROM: &str = "plugin_versions v JOIN plugin_components c ON c.sha256 = v.sha256 \
     LEFT JOIN plugin_active a ON a.provider = v.provider AND a.version = v.version";

fn stored<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("a stored {what} does not parse: {e}")))
}

fn decode_version<R: Row>(row: &R) -> Result<PluginVersion, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> bool: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> OffsetDateTime: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let text = |name: &str| row.try_get::<String, _>(name).map_err(map_error);
    let status = text("status")?;
    Ok(PluginVersion {
        provider: text("provider")?,
        version: text("version")?,
        sha256: text("sha256")?,
        size: u64::try_from(row.try_get::<i64, _>("size").map_err(map_error)?).unwrap_or_default(),
        status: PluginStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown stored plugin status `{status}`")))?,
        active: row.try_get("active").map_err(map_error)?,
        manifest: stored("manifest", &text("manifest")?)?,
        permissions: stored::<PermissionSet>("permission set", &text("permissions")?)?,
        permissions_digest: text("permissions_digest")?,
        signatures: stored::<Vec<StoredSignature>>("signature list", &text("signatures")?)?,
        signed_by: row.try_get("signed_by").map_err(map_error)?,
        unsigned_exception: row.try_get("unsigned_exception").map_err(map_error)?,
        origin: text("origin")?,
        submitted_by: text("submitted_by")?,
        submitted_at: row.try_get("submitted_at").map_err(map_error)?,
        decided_by: row.try_get("decided_by").map_err(map_error)?,
        decided_at: row.try_get("decided_at").map_err(map_error)?,
        decision_reason: row.try_get("decision_reason").map_err(map_error)?,
    })
}

pub(super) fn decode_plugin_audit<R: Row>(row: &R) -> Result<PluginAuditEntry, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> OffsetDateTime: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let text = |name: &str| row.try_get::<String, _>(name).map_err(map_error);
    let action = text("action")?;
    Ok(PluginAuditEntry {
        seq: row.try_get("seq").map_err(map_error)?,
        action: PluginAction::parse(&action)
            .ok_or_else(|| StoreError::Other(format!("unknown stored plugin action `{action}`")))?,
        provider: text("provider")?,
        version: text("version")?,
        sha256: text("sha256")?,
        actor: text("actor")?,
        at: row.try_get("at").map_err(map_error)?,
        details: parse_json(&text("details")?)?,
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

sql_impl! {
    #[async_trait]
    impl PluginStore for SqlStore<D> {
        async fn plugin_version(&self, provider: &str, version: &str) -> Result<Option<PluginVersion>, StoreError> {
            let sql = format!("SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.provider = $1 AND v.version = $2");
            let row = self.read_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider).bind(version)).await?;
            row.as_ref().map(decode_version).transpose()
        }

        async fn plugin_version_by_sha256(&self, sha256: &str) -> Result<Option<PluginVersion>, StoreError> {
            let sql = format!("SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.sha256 = $1");
            let row = self.read_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sha256)).await?;
            row.as_ref().map(decode_version).transpose()
        }

        async fn plugin_versions(&self, provider: &str, limit: u32) -> Result<Vec<PluginVersion>, StoreError> {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.provider = $1 \
                 ORDER BY v.submitted_at DESC, v.version DESC LIMIT $2"
            );
            let rows = self.read_all(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider).bind(i64::from(limit))).await?;
            rows.iter().map(decode_version).collect()
        }

        async fn pending_plugin_versions(&self, limit: u32) -> Result<Vec<PluginVersion>, StoreError> {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.status = 'pending' \
                 ORDER BY v.submitted_at DESC, v.provider, v.version DESC LIMIT $1"
            );
            let rows = self.read_all(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit))).await?;
            rows.iter().map(decode_version).collect()
        }

        async fn active_plugin(&self, provider: &str) -> Result<Option<PluginVersion>, StoreError> {
            let sql = format!("SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE a.provider = $1");
            let row = self.read_optional(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider)).await?;
            row.as_ref().map(decode_version).transpose()
        }

        async fn plugin_generation(&self) -> Result<i64, StoreError> {
            let row = self.read_optional(sqlx::query("SELECT generation FROM platform_head WHERE id = 1")).await?;
            match row {
                Some(row) => row.try_get(0).map_err(map_error),
                None => Err(StoreError::Other("the platform head row is missing".into())),
            }
        }

        async fn active_plugins(&self) -> Result<(i64, Vec<ActivePlugin>), StoreError> {
            // One statement, so the generation and the set are of the same moment.
            let rows = self
                .read_all(sqlx::query(
                    "SELECT h.generation, a.provider, a.version, v.sha256, v.unsigned_exception, v.signed_by \
                     FROM platform_head h \
                     LEFT JOIN plugin_active a ON TRUE \
                     LEFT JOIN plugin_versions v ON v.provider = a.provider AND v.version = a.version \
                     WHERE h.id = 1 ORDER BY a.provider",
                ))
                .await?;
            let mut generation = 0;
            let mut active = Vec::new();
            for row in &rows {
                generation = row.try_get(0).map_err(map_error)?;
                let provider: Option<String> = row.try_get(1).map_err(map_error)?;
                if let Some(provider) = provider {
                    active.push(ActivePlugin {
                        provider,
                        version: row.try_get(2).map_err(map_error)?,
                        sha256: row.try_get(3).map_err(map_error)?,
                        unsigned_exception: row.try_get(4).map_err(map_error)?,
                        signed_by: row.try_get(5).map_err(map_error)?,
                    });
                }
            }
            Ok((generation, active))
        }

        async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
            let row = self
                .read_optional(sqlx::query("SELECT bytes FROM plugin_components WHERE sha256 = $1").bind(sha256))
                .await?;
            row.map(|r| r.try_get(0).map_err(map_error)).transpose()
        }

        async fn apply_plugin(&self, change: PluginChange) -> Result<(), StoreError> {
            let mut tx = self.begin_write().await?;
            let lock = format!(
                "SELECT audit_seq, audit_hash, event_seq, generation FROM platform_head WHERE id = 1{}",
                D::LOCK_HEAD
            );
            let head = sqlx::query(sqlx::AssertSqlSafe(lock)).fetch_one(&mut *tx).await.map_err(map_error)?;
            let mut audit_seq: i64 = head.try_get(0).map_err(map_error)?;
            let mut prev_hash: String = head.try_get(1).map_err(map_error)?;
            let mut event_seq: i64 = head.try_get(2).map_err(map_error)?;
            let mut generation: i64 = head.try_get(3).map_err(map_error)?;
            let (provider, version) = (change.provider.as_str(), change.version.as_str());
            if let Some(expected) = &change.expect_active {
                let row = sqlx::query("SELECT version FROM plugin_active WHERE provider = $1")
                    .bind(provider)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
                let active: Option<String> = row.map(|r| r.try_get(0)).transpose().map_err(map_error)?;
                if &active != expected {
                    return Err(StoreError::StatusChanged);
                }
            }

            match change.write {
                PluginWrite::Submit { version: row, bytes } => {
                    // Counted under the head lock, so concurrent submissions cannot pass the limit.
                    let count = sqlx::query("SELECT COUNT(*) FROM plugin_versions WHERE provider = $1")
                        .bind(provider)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_error)?;
                    if count.try_get::<i64, _>(0).map_err(map_error)? >= MAX_VERSIONS_PER_PROVIDER as i64 {
                        return Err(StoreError::TooManyVersions);
                    }
                    sqlx::query(
                        "INSERT INTO plugin_components (sha256, bytes, size, stored_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (sha256) DO NOTHING",
                    )
                    .bind(row.sha256.clone())
                    .bind(bytes)
                    .bind(i64::try_from(row.size).unwrap_or(i64::MAX))
                    .bind(row.submitted_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                    let inserted = sqlx::query(
                        "INSERT INTO plugin_versions (provider, version, sha256, status, manifest, permissions, \
                         permissions_digest, signatures, signed_by, unsigned_exception, origin, submitted_by, submitted_at, \
                         decided_by, decided_at, decision_reason) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    )
                    .bind(row.provider.clone())
                    .bind(row.version.clone())
                    .bind(row.sha256.clone())
                    .bind(row.status.as_str())
                    .bind(document(&row.manifest))
                    .bind(document(&row.permissions))
                    .bind(row.permissions_digest.clone())
                    .bind(document(&row.signatures))
                    .bind(row.signed_by.clone())
                    .bind(row.unsigned_exception)
                    .bind(row.origin.clone())
                    .bind(row.submitted_by.clone())
                    .bind(row.submitted_at)
                    .bind(row.decided_by.clone())
                    .bind(row.decided_at)
                    .bind(row.decision_reason.clone())
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => return Err(StoreError::VersionTaken),
                        Err(e) => return Err(map_error(e)),
                    }
                }
                PluginWrite::Decide { from, to, by, at, reason } => {
                    let done = sqlx::query(
                        "UPDATE plugin_versions SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4 \
                         WHERE provider = $5 AND version = $6 AND status = $7",
                    )
                    .bind(to.as_str())
                    .bind(by)
                    .bind(at)
                    .bind(reason)
                    .bind(provider)
                    .bind(version)
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                    if D::rows_affected(&done) != 1 {
                        return Err(StoreError::StatusChanged);
                    }
                }
                PluginWrite::None => {}
            }

            if let Some(activation) = change.activate {
                // Only an approved version becomes active; the status is read in this transaction,
                // which holds the platform head, so no decision can slip in between.
                let done = sqlx::query(
                    "INSERT INTO plugin_active (provider, version, activated_by, activated_at) \
                     SELECT provider, version, $3, $4 FROM plugin_versions \
                     WHERE provider = $1 AND version = $2 AND status = 'approved' \
                     ON CONFLICT (provider) DO UPDATE SET version = excluded.version, \
                     activated_by = excluded.activated_by, activated_at = excluded.activated_at",
                )
                .bind(provider)
                .bind(version)
                .bind(activation.by)
                .bind(activation.at)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                if D::rows_affected(&done) != 1 {
                    return Err(StoreError::StatusChanged);
                }
                generation += 1;
            }

            for draft in &change.audit {
                let entry = PluginAuditEntry::chained(audit_seq + 1, draft, prev_hash);
                sqlx::query(
                    "INSERT INTO platform_audit (seq, action, provider, version, sha256, actor, at, details, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(entry.seq)
                .bind(entry.action.as_str())
                .bind(entry.provider.clone())
                .bind(entry.version.clone())
                .bind(entry.sha256.clone())
                .bind(entry.actor.clone())
                .bind(entry.at)
                .bind(entry.details.to_string())
                .bind(entry.prev_hash.clone())
                .bind(entry.hash.clone())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                audit_seq = entry.seq;
                prev_hash = entry.hash;
            }

            let at = change.audit.first().map_or_else(crate::domain::now, |a| a.at);
            let subject = format!("plugins/{provider}/{version}");
            for draft in &change.events {
                event_seq += 1;
                let document = |event_id| draft.platform_cloud_event(provider, version, event_id, at);
                Self::insert_event_in(&mut tx, PLATFORM, event_seq, &subject, draft, at, document).await?;
            }

            sqlx::query(
                "UPDATE platform_head SET audit_seq = $1, audit_hash = $2, event_seq = $3, generation = $4 WHERE id = 1",
            )
            .bind(audit_seq)
            .bind(prev_hash)
            .bind(event_seq)
            .bind(generation)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            tx.commit().await.map_err(map_error)
        }

        async fn plugin_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<PluginAuditEntry>, StoreError> {
            let query = sqlx::query("SELECT * FROM platform_audit WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after_seq)
                .bind(i64::from(limit));
            self.read_all(query).await?.iter().map(decode_plugin_audit).collect()
        }
    }
}

/// The JSON text of a document a version row keeps (manifest, permissions, signatures).
fn document(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("a stored document serializes")
}
