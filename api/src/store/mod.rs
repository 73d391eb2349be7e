//! Where integrations live: the [`Store`] traits, one per concern, and one SQL implementation
//! ([`SqlStore`]) over two databases, SQLite (the embedded default) and PostgreSQL (production,
//! several replicas), which pass the same conformance suite (`api/tests/api/store.rs`).
//!
//! Every mutation is one [`Change`]: the entity row, its audit entry and its outbox events are
//! written in one transaction, so the three are all present or all absent. Each tenant has a head
//! row that every mutation of the tenant locks; it chains the tenant's audit entries by hash and
//! numbers its events without gaps in commit order, so an event cursor never skips a late commit.
//!
//! While the service runs, only [`crate::service::Catalog`] holds a store: handlers, the scheduler
//! and the relay reach the data through it. (The operator's `migrate` and `audit verify` commands
//! open one of their own.)
//!
//! - `integrations.rs`: rows, list filters, the [`Change`] write, test results, idempotency keys;
//! - `audit.rs`: the audit trail's reads and its verification;
//! - `outbox.rs`: the event outbox;
//! - `health.rs`: the health schedule (leases) and history;
//! - `ledger.rs`: the invocation ledger (every invocation's record, pruned by age);
//! - `console.rs`: the console's sessions and spent sign-in links;
//! - `maintenance.rs`: the lease of the maintenance task that prunes all of the above;
//! - `partitions.rs`: the day partitions of the ledger and the health history (PostgreSQL), and
//!   giving freed pages back (SQLite);
//! - `plugins.rs`: the plugin store (components, versions, the active set, the platform's audit
//!   chain and events);
//! - `sql.rs`: the [`Dialect`] differences, connecting, migrations, errors;
//! - `read_pool.rs`: the connections of single-statement reads.

mod audit;
mod console;
mod health;
mod integrations;
mod ledger;
mod maintenance;
mod outbox;
mod partitions;
mod plugins;
mod read_pool;
mod sql;

pub use audit::AuditStore;
pub use console::ConsoleStore;
pub use health::HealthStore;
pub use integrations::{Change, IdempotentResponse, IntegrationStore, RowWrite, StateCount};
pub use ledger::LedgerStore;
pub use maintenance::MaintenanceStore;
pub use outbox::OutboxStore;
pub use partitions::PARTITION_DAYS_AHEAD;
pub use plugins::{Activation, PluginChange, PluginStore, PluginWrite};
pub use sql::{Dialect, PostgresStore, STORAGE_FAULT_REPORTED, SqlStore, SqliteStore, recent_storage_fault};

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
    /// The `Idempotency-Key` was stored by a concurrent request while this one ran.
    #[error("the idempotency key was used by a concurrent request")]
    KeyInFlight,
    /// A provider's version is already stored, with other bytes (versions are immutable).
    #[error("this version of the provider is already stored, with other bytes")]
    VersionTaken,
    /// A plugin version's status, or its provider's active version, changed since it was read (a
    /// concurrent decision).
    #[error("the plugin version's status changed concurrently")]
    StatusChanged,
    /// The provider has as many versions stored as are kept.
    #[error("the provider has as many versions stored as are kept")]
    TooManyVersions,
    /// The database cannot be reached or refused the operation for a reason that may pass.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database could not write for its storage: a full disk or an I/O error (SQLite's
    /// `SQLITE_FULL` and `SQLITE_IOERR`, PostgreSQL's `disk_full` and `io_error`). Nothing of the
    /// operation was kept; writes resume once the storage is back.
    #[error("the database cannot write: {0}")]
    Storage(String),
    /// The database refused a value (PostgreSQL data exception, class 22): the request's fault.
    #[error("the database refused a value: {0}")]
    InvalidValue(String),
    /// Anything else.
    #[error("database error: {0}")]
    Other(String),
}

/// The persistence the service needs: every concern's store (see the module documentation).
pub trait Store:
    IntegrationStore + AuditStore + OutboxStore + HealthStore + PluginStore + LedgerStore + ConsoleStore + MaintenanceStore
{
}

impl<
    S: IntegrationStore
        + AuditStore
        + OutboxStore
        + HealthStore
        + PluginStore
        + LedgerStore
        + ConsoleStore
        + MaintenanceStore,
> Store for S
{
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
            crate::config::redact_url(url)
        )))
    }
}
