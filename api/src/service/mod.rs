//! The catalog's operations: what each API call does, independent of HTTP, and the only way to
//! the data while the service runs. The store is private to [`Catalog`]: every handler, the
//! scheduler and the relay call one of its operations, and tenancy (a caller sees its own tenant
//! only) and the 404 rule (another tenant's integration does not exist) are decided here, once.
//! (Only the operator's `migrate` and `audit verify` commands open a store of their own: they run
//! without the service, and belong to no tenant.)
//!
//! - `integrations.rs`: create, read, list, update, delete, the lifecycle actions and tests;
//! - `health.rs`: the health checks the scheduler runs and records, and the health report;
//! - `ledger.rs`: the invocation ledger's reads;
//! - `maintenance.rs`: the prune of every table that grows with time, under a shared lease;
//! - `console.rs`: the console's sessions (opened for a verified principal, found by cookie);
//! - `plugins.rs`: connector code: submission, review (approve, reject, activate), and the
//!   loaded connectors kept equal to the store's active set;
//! - this file: the catalog, its callers and errors, the audit trail, events and readiness.
//!
//! Every mutation reads the integration, asks the lifecycle what follows, and hands the store one
//! [`Change`] (row + audit entry + events). Connection tests run in the sandbox outside any
//! transaction; their result is then applied to the integration as it is *then* (re-read and
//! re-applied if it changed meanwhile), so a slow test never overwrites a concurrent edit.

mod console;
mod health;
mod integrations;
mod ledger;
mod maintenance;
mod plugins;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stella_runtime::catalog::ConnectorCatalog;
use stella_runtime::{ConnectionConfig, Sandbox};
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::domain::{FieldError, Integration, TestRun};
use crate::events::StoredEvent;
use crate::health::HealthPolicy;
use crate::identity::{Caller, Reader};
use crate::lifecycle;
use crate::metrics::Metrics;
use crate::plugins::AdmissionPolicy;
use crate::query::Page;
use crate::store::{Change, Store, StoreError};

pub use integrations::changed_fields;
pub use maintenance::{Pruned, Retention};
pub use plugins::{PluginVersionView, RESERVED_PROVIDERS, Submitted};

/// How often a result is re-applied when the integration keeps changing under it.
const MAX_APPLY_ATTEMPTS: usize = 8;
/// Why an invocation did not run: the service is stopping.
const STOPPING: &str = "the service is stopping; the connector did not run";

/// Words this service wrote for the caller: they quote nothing but the caller's own request, this
/// service's settings and fixed vocabularies (status codes, error codes of a standard), so a door
/// may show them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown(pub String);

/// Words for the log only: a dependency's answer, an internal state. No door shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged(pub String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an operation failed; each maps to one HTTP status and problem type. Its text is either
/// [`Shown`] (a door may show it) or [`Logged`] (a door logs it and shows its own words).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request's fields are invalid (422).
    #[error("the integration is not valid")]
    Invalid(Vec<FieldError>),
    /// No such integration in the caller's tenant (404).
    #[error("integration not found")]
    NotFound,
    /// The name is taken in the tenant (409).
    #[error("an integration named `{0}` already exists")]
    NameTaken(String),
    /// The lifecycle forbids the action (409).
    #[error(transparent)]
    Conflict(#[from] lifecycle::Conflict),
    /// The caller's version is not the current one (412).
    #[error("the integration has changed: it is now at version {current}")]
    Stale {
        /// The current version.
        current: i64,
    },
    /// The operation needs the version the caller read, and none was given (428).
    #[error("the version the change is based on is required")]
    PreconditionRequired,
    /// The `Idempotency-Key` was used before with a different request (422).
    #[error("the idempotency key was already used with a different request")]
    KeyReused,
    /// A concurrent request with the same `Idempotency-Key` is being answered (503: retry).
    #[error("the idempotency key is being used by another request")]
    KeyInFlight,
    /// The integration changed under every attempt to apply the operation (503: retry).
    #[error("the integration kept changing while {0}")]
    KeptChanging(&'static str),
    /// The database is unavailable (503). The message includes the cause (logs print one line).
    #[error("{0}")]
    Unavailable(#[source] StoreError),
    /// A component was refused at submission: it fails the load-time checks or the signature
    /// policy (422). Nothing was stored.
    #[error("the component is refused: {0}")]
    PluginRefused(Shown),
    /// No such invocation in the caller's scope (404).
    #[error("invocation not found")]
    InvocationNotFound,
    /// No such plugin version (404).
    #[error("no such plugin version")]
    PluginNotFound,
    /// No connector of this provider is loaded, and none ran in the caller's view (404).
    #[error("no such provider")]
    ProviderNotFound,
    /// A plugin version's state forbids the action, or the version is taken (409).
    #[error("{0}")]
    PluginConflict(Shown),
    /// A server the operation depends on (a registry) failed or refused (502): what the caller is
    /// told, and the server's own answer for the log.
    #[error("{shown}: {logged}")]
    Upstream {
        /// What the caller is told.
        shown: Shown,
        /// What the server answered.
        logged: Logged,
    },
    /// A feed's cursor is older than what is kept: the entries after it were pruned (410). The
    /// oldest cursor still available.
    #[error("the cursor is older than the oldest kept (cursor {oldest})")]
    CursorGone {
        /// The oldest cursor from which the feed is complete.
        oldest: i64,
    },
    /// Anything else (500): logged, never shown.
    #[error("internal error: {0}")]
    Internal(Logged),
}

impl ServiceError {
    /// [`ServiceError::PluginRefused`], in this service's words.
    pub fn refused(why: impl Into<String>) -> Self {
        Self::PluginRefused(Shown(why.into()))
    }

    /// [`ServiceError::PluginConflict`], in this service's words.
    pub fn plugin_conflict(why: impl Into<String>) -> Self {
        Self::PluginConflict(Shown(why.into()))
    }

    /// [`ServiceError::Internal`]: for the log.
    pub fn internal(why: impl Into<String>) -> Self {
        Self::Internal(Logged(why.into()))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::NameTaken(n) => Self::NameTaken(n),
            StoreError::Stale { current } => Self::Stale { current },
            StoreError::KeyInFlight => Self::KeyInFlight,
            e @ (StoreError::Unavailable(_) | StoreError::Storage(_)) => Self::Unavailable(e),
            StoreError::InvalidValue(m) => Self::Invalid(vec![FieldError {
                field: "body".into(),
                message: format!("a value cannot be stored: {m}"),
            }]),
            StoreError::VersionTaken => {
                Self::plugin_conflict("this version of the provider is already stored with other bytes")
            }
            StoreError::StatusChanged => {
                Self::plugin_conflict("the version's status changed concurrently; read it again")
            }
            StoreError::TooManyVersions => Self::refused("the provider has as many versions stored as are kept"),
            StoreError::Other(m) => Self::internal(m),
        }
    }
}

/// The version a change is based on (HTTP's `If-Match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// None given.
    Absent,
    /// Whatever version is current, even if it changes while the operation runs (`*`).
    Any,
    /// Only this version.
    Version(i64),
}

/// What `create_once` did.
#[derive(Clone, Debug)]
pub enum Created {
    /// It created this integration.
    New(Box<Integration>),
    /// The key was used before with the same request: the first response.
    Replayed {
        /// Its HTTP status.
        status: u16,
        /// Its body.
        body: String,
    },
}

/// The integration after a test, and the test.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tested {
    /// The integration as it is after the test.
    pub integration: Integration,
    /// The test.
    pub test_result: TestRun,
}

/// The catalog: store, sandbox and loaded connectors. Cloning it shares them.
#[derive(Clone)]
pub struct Catalog {
    /// Private: the catalog's operations are the only way to the data.
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    /// The connectors this replica serves (built-ins and the store's active versions).
    active: Arc<plugins::ActiveSet>,
    /// What may be admitted, and how.
    admission: Arc<AdmissionPolicy>,
    metrics: Arc<Metrics>,
    health: HealthPolicy,
    /// What the ledger keeps of each check (`[ledger]`).
    ledger: Arc<crate::config::LedgerConfig>,
    /// Where connectors run; `None`: on the caller's runtime.
    invocations: Option<tokio::runtime::Handle>,
    /// Whose secrets each tenant's integrations resolve (`[secrets]`).
    secrets: Arc<crate::config::SecretsConfig>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// A catalog over these parts, serving the `builtins` until [`Catalog::refresh_connectors`]
    /// loads the store's active versions, and admitting nothing unsigned unless a policy says so
    /// ([`Catalog::with_admission_policy`]; the default requires no signature and approves
    /// nothing at once).
    pub fn new(store: Arc<dyn Store>, sandbox: Arc<Sandbox>, builtins: Arc<ConnectorCatalog>) -> Self {
        Self {
            store,
            sandbox,
            active: Arc::new(plugins::ActiveSet::new(builtins)),
            admission: Arc::new(AdmissionPolicy::default()),
            metrics: Arc::new(Metrics::default()),
            health: HealthPolicy::default(),
            ledger: Arc::default(),
            invocations: None,
            secrets: Arc::default(),
        }
    }

    /// The same catalog resolving each tenant's AuthRefs as `secrets` says (its `legacy-tenant`
    /// keeps the layout from before tenants; every other tenant has its own namespace).
    pub fn with_secrets(mut self, secrets: crate::config::SecretsConfig) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// What a connector is told about an integration, and the namespace its AuthRef resolves in
    /// (its tenant's: see [`crate::config::SecretsConfig::namespace_of`]).
    fn connection_config(&self, integration: &Integration) -> ConnectionConfig {
        ConnectionConfig {
            secret_namespace: self.secrets.namespace_of(&integration.tenant_id),
            integration_id: integration.integration_id.to_string(),
            name: integration.name.clone(),
            integration_type: integration.integration_type,
            provider: integration.provider.clone(),
            base_url: integration.base_url.as_ref().map(|u| u.as_str().to_string()),
            auth_ref: integration.auth_ref.as_ref().map(|r| r.to_string()),
            configuration: integration.configuration.clone(),
            environment: integration.environment.clone(),
        }
    }

    /// Up to `limit` tenants that have integrations (the start-up check of `secrets.legacy-tenant`).
    pub async fn tenants(&self, limit: u32) -> Result<Vec<String>, ServiceError> {
        Ok(self.store.tenants(limit).await?)
    }

    /// The same catalog, running every connector invocation on `runtime` (`serve` gives it the
    /// service's background threads, which run at a lower CPU priority than the API's): a busy or
    /// hostile connector then takes CPU from background work, never from a request that does not
    /// run one.
    pub fn with_invocation_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.invocations = Some(runtime);
        self
    }

    /// The same catalog over another store (the health scheduler's own pool, on its own runtime).
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
    }

    /// The same catalog admitting connector code under this policy.
    pub fn with_admission_policy(mut self, policy: AdmissionPolicy) -> Self {
        self.admission = Arc::new(policy);
        self
    }

    /// The same catalog under this health policy.
    pub fn with_health_policy(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// The same catalog keeping what `ledger` says of each check (levels, sample).
    pub fn with_ledger_policy(mut self, ledger: crate::config::LedgerConfig) -> Self {
        self.ledger = Arc::new(ledger);
        self
    }

    /// How integrations are health-checked.
    pub fn health_policy(&self) -> &HealthPolicy {
        &self.health
    }

    /// The service's metrics (sandbox invocations are counted here; HTTP requests by the router).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The connectors this replica serves now.
    pub fn connectors(&self) -> Arc<ConnectorCatalog> {
        self.active.current()
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    /// A page of an integration's audit trail, oldest first, after `after_seq`.
    pub async fn audit(
        &self,
        reader: &Reader,
        id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> Result<Page<AuditEntry>, ServiceError> {
        let caller = reader.caller();
        self.find(caller, id).await?;
        let rows = self.store.audit(&caller.tenant, id, after_seq, limit + 1).await?;
        Ok(Page::of_seq(rows, limit, |e| e.seq))
    }

    /// A page of the caller's events, oldest first, and the cursor of the next: after `after` (the
    /// previous page's cursor), or from the oldest kept when `None`. The outbox is pruned from the
    /// start of each tenant's stream, so a cursor older than the oldest kept event is refused
    /// ([`ServiceError::CursorGone`]): the events after it are gone, and a poller must know it
    /// missed them rather than skip them silently.
    pub async fn events(
        &self,
        reader: &Reader,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<StoredEvent>, i64), ServiceError> {
        let tenant = &reader.caller().tenant;
        let from = after.unwrap_or(0);
        // Read first, then compare: a prune between a check and the read could not hide a gap.
        let events = self.store.events(tenant, from, limit).await?;
        match (events.first().map(|e| e.seq), events.last().map(|e| e.seq)) {
            // Sequence numbers have no gaps: a first event further on means pruned ones between.
            (Some(first), _) if after.is_some() && first > from + 1 => {
                Err(ServiceError::CursorGone { oldest: first - 1 })
            }
            (_, Some(last)) => Ok((events, last)),
            _ => {
                let oldest = self.store.oldest_event_cursor(tenant).await?;
                match after {
                    Some(after) if after < oldest => Err(ServiceError::CursorGone { oldest }),
                    Some(after) => Ok((events, after)),
                    None => Ok((events, oldest)),
                }
            }
        }
    }

    /// Events of every tenant not yet delivered to the broker, oldest first (the relay's).
    pub async fn undelivered_events(&self, limit: u32) -> Result<Vec<StoredEvent>, ServiceError> {
        Ok(self.store.undelivered_events(limit).await?)
    }

    /// Marks events (tenant, seq) delivered (the relay's).
    pub async fn mark_delivered(&self, events: &[(String, i64)]) -> Result<(), ServiceError> {
        Ok(self.store.mark_delivered(events).await?)
    }

    /// Runs a sandbox invocation where this catalog runs them; `None` when that runtime is
    /// shutting down and dropped it.
    async fn in_sandbox<T: Send + 'static>(
        &self,
        invocation: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let Some(runtime) = &self.invocations else {
            return Some(invocation.await);
        };
        match runtime.spawn(invocation).await {
            Ok(done) => Some(done),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// Applies the change `make` builds from the integration as it is now, again on the row as it
    /// then is when another change came first; `what` names the operation in the error when it
    /// kept losing.
    async fn apply_to_current<T>(
        &self,
        caller: &Caller,
        id: Uuid,
        what: &'static str,
        mut make: impl FnMut(Integration) -> Result<(Change, T), ServiceError>,
    ) -> Result<T, ServiceError> {
        for _ in 0..MAX_APPLY_ATTEMPTS {
            let current = self.find(caller, id).await?;
            let (change, answer) = make(current)?;
            match self.store.apply(change).await {
                Ok(()) => return Ok(answer),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::KeptChanging(what))
    }
}
