//! Where integrations live: one [`Store`] trait and two implementations, SQLite (the embedded
//! default) and PostgreSQL (production, several replicas), which pass the same conformance suite
//! (`api/tests/store.rs`).
//!
//! Every mutation is one [`Change`]: the entity row, its audit entry and its outbox events are
//! written in one transaction, so the three are all present or all absent. Each tenant has a head
//! row that every mutation of the tenant locks; it chains the tenant's audit entries by hash and
//! numbers its events without gaps in commit order, so an event cursor never skips a late commit.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Integration;

mod read_pool;
mod sql;

pub use sql::{PostgresStore, SqliteStore};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such integration in this tenant.
    #[error("integration not found")]
    NotFound,
    /// Another integration of the tenant has this name.
    #[error("an integration named `{0}` already exists")]
    NameTaken(String),
    /// The row changed since it was read (optimistic concurrency).
    #[error("the integration was changed concurrently (now at version {current})")]
    Stale {
        /// The version now stored.
        current: i64,
    },
    /// The `Idempotency-Key` was stored by a concurrent request.
    #[error("the idempotency key was used by a concurrent request")]
    KeyReused,
    /// The database cannot be reached or refused the operation for a reason that may pass.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused a value (PostgreSQL data exception, class 22): the request's fault.
    #[error("the database refused a value: {0}")]
    InvalidValue(String),
    /// Anything else.
    #[error("database error: {0}")]
    Other(String),
}

/// Filters of a list query; every one that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `type`.
    pub integration_type: Option<String>,
    /// `provider`.
    pub provider: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `environment`.
    pub environment: Option<String>,
    /// One of the tags.
    pub tag: Option<String>,
    /// `paused`.
    pub paused: Option<bool>,
    /// `ownerId`.
    pub owner: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

/// Where a list page starts: after this (name, id), in the list's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPosition {
    /// The last name of the previous page.
    pub name: String,
    /// The last id of the previous page.
    pub id: Uuid,
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

/// An audit entry before the store numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDraft {
    /// What happened (`created`, `updated`, `deleted`, `activated`, `tested`, `paused`, `resumed`).
    pub action: String,
    /// Who did it (the token's subject).
    pub actor: String,
    /// When.
    pub at: OffsetDateTime,
    /// What the spec asks to record for this action; never a secret.
    pub details: serde_json::Value,
}

/// An audit entry as stored: numbered per tenant and chained by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// The tenant.
    pub tenant_id: String,
    /// The integration.
    pub integration_id: Uuid,
    /// What happened.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Details of the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous entry of the tenant (64 zeros for the first).
    pub prev_hash: String,
    /// sha256 of this entry's canonical form, which includes `prevHash`.
    pub hash: String,
}

/// The hash of the chain before its first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEntry {
    /// sha256 (hex) over the entry's canonical JSON without its own hash: fields in a fixed order,
    /// the time in RFC 3339, the details with sorted keys.
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Canonical<'a> {
            seq: i64,
            tenant_id: &'a str,
            integration_id: String,
            action: &'a str,
            actor: &'a str,
            at: String,
            details: &'a serde_json::Value,
            prev_hash: &'a str,
        }
        let canonical = Canonical {
            seq: self.seq,
            tenant_id: &self.tenant_id,
            integration_id: self.integration_id.to_string(),
            action: &self.action,
            actor: &self.actor,
            at: rfc3339(self.at),
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&canonical).expect("the canonical entry serializes");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The first entry of a tenant's chain that does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreak {
    /// The tenant.
    pub tenant_id: String,
    /// The entry's position.
    pub seq: i64,
    /// What is wrong.
    pub problem: String,
}

/// What `audit verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// Tenants checked.
    pub tenants: usize,
    /// Entries checked.
    pub entries: usize,
    /// The chains that are broken, one entry per tenant.
    pub breaks: Vec<ChainBreak>,
}

/// An event before the store numbers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    /// `integration.created`, …
    pub event_type: String,
    /// The event's payload (the `data` of the CloudEvent).
    pub data: serde_json::Value,
}

/// An event of the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// The tenant.
    pub tenant_id: String,
    /// Position in the tenant's event stream, from 1 (the cursor of `GET /events`).
    pub seq: i64,
    /// The CloudEvents 1.0 JSON document.
    pub cloud_event: serde_json::Value,
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

/// A health check made under a lease, to record with the next due time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedCheck {
    /// The tenant.
    pub tenant_id: String,
    /// The integration.
    pub integration_id: Uuid,
    /// What it found.
    pub check: HealthCheck,
    /// When the next check is due (Unix ms).
    pub next_due_ms: i64,
    /// The integration's version the check was judged against ("changes nothing").
    pub version: i64,
}

/// What a health check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOutcome {
    /// Everything works.
    Healthy,
    /// It works, but something needs attention.
    Degraded,
    /// It does not work.
    Unhealthy,
    /// No check was made (offline mode).
    Skipped,
}

impl CheckOutcome {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
            Self::Skipped => "skipped",
        }
    }

    /// Parses the name used in JSON and in the database.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Healthy, Self::Degraded, Self::Unhealthy, Self::Skipped].into_iter().find(|o| o.as_str() == s)
    }
}

/// One health check, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The check's id.
    pub check_id: Uuid,
    /// When it ran (UTC, millisecond precision).
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// What it found.
    pub outcome: CheckOutcome,
    /// Why it was not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<String>,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
    /// What the connector said.
    pub message: String,
    /// The replica that made it (its scheduler's name, logged at start); filled in by the store
    /// from the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// Milliseconds of a duration (the unit of the health tables), saturating.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds of a time (the unit of the health tables).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds.
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The embedded default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/catalog.db";

/// Opens the store a database URL names (`sqlite://<path>`, `postgres://…` or `postgresql://…`),
/// applying migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if path.is_empty() {
            return Err(StoreError::Other("the SQLite URL names no file (sqlite://<path>)".into()));
        }
        Ok(std::sync::Arc::new(SqliteStore::open(std::path::Path::new(path)).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL `{}`: use sqlite://<path> or postgres://…",
            redact_url(url)
        )))
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// The source attribute of every event this service emits.
pub const EVENT_SOURCE: &str = "/stellaops/integrations";

/// Builds the CloudEvents 1.0 JSON of an event.
pub fn cloud_event(
    tenant_id: &str,
    integration_id: Uuid,
    event_id: Uuid,
    at: OffsetDateTime,
    draft: &EventDraft,
) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": event_id.to_string(),
        "source": EVENT_SOURCE,
        "type": draft.event_type,
        "subject": integration_id.to_string(),
        "time": rfc3339(at),
        "datacontenttype": "application/json",
        "tenantid": tenant_id,
        "integrationid": integration_id.to_string(),
        "data": draft.data,
    })
}

/// RFC 3339 in UTC with `Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats")
}

/// The persistence the service needs; see the module documentation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers (`/readyz`).
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

    /// Applies a mutation: row, audit entry and events in one transaction.
    async fn apply(&self, change: Change) -> Result<(), StoreError>;

    /// The integration's audit entries after `after_seq`, oldest first.
    async fn audit(&self, tenant_id: &str, id: Uuid, after_seq: i64, limit: u32)
    -> Result<Vec<AuditEntry>, StoreError>;

    /// Re-computes every tenant's chain.
    async fn verify_audit(&self) -> Result<AuditReport, StoreError>;

    /// The tenant's events after `after_seq`, oldest first.
    async fn events(&self, tenant_id: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events not yet delivered to the broker, oldest first.
    async fn undelivered_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError>;

    /// Marks events delivered.
    async fn mark_delivered(&self, events: &[(String, i64)]) -> Result<(), StoreError>;

    /// The latest test result kept for the integration.
    async fn latest_test(&self, tenant_id: &str, id: Uuid) -> Result<Option<serde_json::Value>, StoreError>;

    /// The response kept for an `Idempotency-Key`: (request hash, status, body).
    async fn idempotent_response(&self, tenant_id: &str, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;

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
        tenant_id: &str,
        integration_id: Uuid,
        check: &HealthCheck,
        next_due_ms: i64,
        change: Option<Change>,
    ) -> Result<bool, StoreError>;

    /// The integration's checks, newest first, strictly before the `(checked ms, check id)`
    /// cursor when one is given.
    async fn health_history(
        &self,
        tenant_id: &str,
        id: Uuid,
        before: Option<(i64, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HealthCheck>, StoreError>;

    /// Deletes the checks older than `before_ms`, a few thousand per statement; returns how many.
    async fn prune_health_checks(&self, before_ms: i64) -> Result<u64, StoreError>;
}
