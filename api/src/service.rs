//! The catalog's operations: what each API call does, independent of HTTP.
//!
//! Every mutation reads the integration, asks the lifecycle what follows, and hands the store one
//! [`Change`] (row + audit entry + events). Connection tests run in the sandbox outside any
//! transaction; their result is then applied to the integration as it is *then* (re-read and
//! re-applied if it changed meanwhile), so a slow test never overwrites a concurrent edit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use stella_runtime::catalog::ConnectorCatalog;
use stella_runtime::outcome::TestOutcome;
use stella_runtime::record::InvocationRecord;
use stella_runtime::{ConnectionConfig, Facts, FailureClass, Sandbox};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{FieldError, Integration, IntegrationSpec, now, wire_name};
use crate::lifecycle::{self, Event, Lifecycle};
use crate::metrics::Metrics;
use crate::store::{
    AuditDraft, Change, CheckOutcome, EventDraft, FinishedCheck, HealthCheck, IdempotentResponse, ListFilter,
    ListPosition, RowWrite, Store, StoreError,
};

/// How often a test result is re-applied when the integration keeps changing under it.
const MAX_APPLY_ATTEMPTS: usize = 8;
/// Why an invocation did not run: the service is stopping.
const STOPPING: &str = "the service is stopping; the connector did not run";

/// Who is calling: the tenant and subject of a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The tenant the caller acts in.
    pub tenant: String,
    /// The token's subject, recorded as the actor.
    pub subject: String,
}

/// Why an operation failed; each maps to one HTTP status and problem type.
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
    /// The database is unavailable (503).
    #[error("the database is unavailable")]
    Unavailable(String),
    /// The `Idempotency-Key` was used before with a different request (422).
    #[error("the idempotency key was already used with a different request")]
    KeyReused,
    /// Anything else (500).
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::NameTaken(n) => Self::NameTaken(n),
            StoreError::Stale { current } => Self::Stale { current },
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::KeyReused => Self::Unavailable("the idempotency key is being used by another request".into()),
            StoreError::InvalidValue(m) => Self::Invalid(vec![FieldError {
                field: "body".into(),
                message: format!("a value cannot be stored: {m}"),
            }]),
            StoreError::Other(m) => Self::Internal(m),
        }
    }
}

/// A connection test: its result and what the connector did.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRun {
    /// When it ran.
    #[serde(with = "time::serde::rfc3339")]
    pub tested_at: OffsetDateTime,
    /// The connector's answer.
    pub result: TestOutcome,
    /// The sandbox's record of the invocation; absent when no connector could run.
    pub record: Option<InvocationRecord>,
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

/// A scheduled health check, made and not yet recorded.
#[derive(Clone, Debug)]
pub struct MadeCheck {
    /// The check and the next due time, to record.
    pub finished: FinishedCheck,
    /// Whether it changes the integration's lifecycle or health (then it is recorded with
    /// [`Catalog::record_health_check`], with an audit entry and maybe an event).
    pub moves_state: bool,
}

/// How integrations are health-checked: the `[health]` settings the catalog itself needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Time between two checks of an integration without its own `healthCheckInterval`.
    pub default_interval: std::time::Duration,
    /// Offline site: no network check is made, except of a feed mirror inside the site.
    pub offline: bool,
    /// In an offline site, the mirror hosts inside it (lower-case): the operator's list, so no
    /// tenant can open a network check by naming a host in its own configuration.
    pub offline_mirror_hosts: Vec<String>,
}

impl HealthPolicy {
    /// The catalog's part of the `[health]` settings.
    pub fn from_settings(settings: &crate::config::HealthConfig) -> Self {
        Self {
            default_interval: std::time::Duration::from_secs(settings.interval_seconds),
            offline: settings.offline,
            offline_mirror_hosts: settings.offline_mirror_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }
}

impl Default for HealthPolicy {
    /// The `[health]` defaults.
    fn default() -> Self {
        Self::from_settings(&crate::config::HealthConfig::default())
    }
}

/// The catalog: store, sandbox and loaded connectors. Cloning it shares them.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    connectors: Arc<ConnectorCatalog>,
    metrics: Arc<Metrics>,
    health: HealthPolicy,
    /// Where connectors run; `None`: on the caller's runtime.
    invocations: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// A catalog over these parts.
    pub fn new(store: Arc<dyn Store>, sandbox: Arc<Sandbox>, connectors: Arc<ConnectorCatalog>) -> Self {
        Self {
            store,
            sandbox,
            connectors,
            metrics: Arc::new(Metrics::default()),
            health: HealthPolicy::default(),
            invocations: None,
        }
    }

    /// The same catalog, running every connector invocation on `runtime` (`serve` gives it the
    /// service's background threads, which run at a lower CPU priority than the API's): a busy or
    /// hostile connector then takes CPU from background work, never from a request that does not
    /// run one.
    pub fn with_invocation_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.invocations = Some(runtime);
        self
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

    /// The same catalog over another store (the health scheduler's own pool, on its own runtime).
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
    }

    /// The same catalog under this health policy.
    pub fn with_health_policy(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
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

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The loaded connectors.
    pub fn connectors(&self) -> &Arc<ConnectorCatalog> {
        &self.connectors
    }

    /// Validates a spec, including that its provider is loaded and serves its type.
    pub fn validate(&self, spec: &IntegrationSpec) -> Result<(), ServiceError> {
        let mut errors = spec.validate().err().unwrap_or_default();
        if !errors.iter().any(|e| e.field == "provider") {
            let types = |c: &stella_runtime::LoadedConnector| {
                let names: Vec<&str> = c.manifest().connector.types.iter().map(|t| t.as_str()).collect();
                names.join(", ")
            };
            let mut available: Vec<String> =
                self.connectors.iter().map(|c| format!("{} ({})", c.provider(), types(c))).collect();
            available.sort();
            match self.connectors.get(&spec.provider) {
                None => errors.push(FieldError {
                    field: "provider".into(),
                    message: format!("no connector `{}` is loaded; available: {}", spec.provider, available.join(", ")),
                }),
                Some(c) if !c.manifest().connector.types.contains(&spec.integration_type) => errors.push(FieldError {
                    field: "type".into(),
                    message: format!(
                        "connector `{}` serves {}, not `{}`; available: {}",
                        spec.provider,
                        types(c),
                        spec.integration_type,
                        available.join(", ")
                    ),
                }),
                Some(_) => {}
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(errors)) }
    }

    /// Creates an integration in `draft`.
    pub async fn create(&self, caller: &Caller, spec: IntegrationSpec) -> Result<Integration, ServiceError> {
        self.insert(caller, spec, None).await
    }

    /// Creates an integration at most once per `Idempotency-Key`: a repeat of the same request
    /// returns the first response; the same key with a different request is refused.
    pub async fn create_once(
        &self,
        caller: &Caller,
        spec: IntegrationSpec,
        key: &str,
    ) -> Result<Created, ServiceError> {
        // The hash is over the parsed request, so whitespace and key order do not matter.
        let canonical = serde_json::to_vec(&spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let request_hash = hex::encode(Sha256::digest(&canonical));
        let replay = |kept: IdempotentResponse| {
            if kept.request_hash == request_hash {
                Ok(Created::Replayed { status: kept.status, body: kept.body })
            } else {
                Err(ServiceError::KeyReused)
            }
        };
        if let Some(kept) = self.store.idempotent_response(&caller.tenant, key).await? {
            return replay(kept);
        }
        let pending = IdempotentResponse {
            key: key.to_string(),
            request_hash: request_hash.clone(),
            status: 201,
            body: String::new(),
        };
        match self.insert(caller, spec, Some(pending)).await {
            Ok(row) => Ok(Created::New(Box::new(row))),
            // A concurrent request with the same key may have committed first (its insert makes
            // ours fail on the key or on the name): answer as if it had been first.
            Err(e @ (ServiceError::Unavailable(_) | ServiceError::NameTaken(_))) => {
                match self.store.idempotent_response(&caller.tenant, key).await {
                    Ok(Some(kept)) => replay(kept),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn insert(
        &self,
        caller: &Caller,
        spec: IntegrationSpec,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<Integration, ServiceError> {
        self.validate(&spec)?;
        let at = now();
        let mut row = Integration {
            integration_id: Uuid::new_v4(),
            tenant_id: caller.tenant.clone(),
            name: spec.name,
            description: spec.description,
            integration_type: spec.integration_type,
            provider: spec.provider,
            base_url: spec.base_url,
            auth_ref: spec.auth_ref,
            configuration: spec.configuration,
            environment: spec.environment,
            tags: spec.tags,
            owner_id: spec.owner_id,
            health_check_interval: spec.health_check_interval,
            status: lifecycle::Status::Draft,
            paused: false,
            pause_reason: None,
            pause_ticket: None,
            last_tested_at: None,
            last_test_success: None,
            consecutive_failures: 0,
            created_at: at,
            created_by: caller.subject.clone(),
            modified_at: None,
            modified_by: None,
            version: 1,
        };
        row.set_lifecycle(Lifecycle::new());
        let idempotency = idempotency.map(|kept| IdempotentResponse {
            body: serde_json::to_string(&row).expect("an integration serializes"),
            ..kept
        });
        let details = json!({"name": row.name, "type": row.integration_type, "provider": row.provider});
        self.store
            .apply(Change {
                tenant_id: caller.tenant.clone(),
                integration_id: row.integration_id,
                write: RowWrite::Insert(Box::new(row.clone())),
                audit: AuditDraft { action: "created".into(), actor: caller.subject.clone(), at, details },
                events: vec![event("integration.created", &row)],
                test_result: None,
                idempotency,
                reschedule_health: false,
            })
            .await?;
        Ok(row)
    }

    /// One integration of the caller's tenant.
    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<Integration, ServiceError> {
        self.store.get(&caller.tenant, id).await?.ok_or(ServiceError::NotFound)
    }

    /// A page of the caller's integrations.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: &ListFilter,
        after: Option<&ListPosition>,
        limit: u32,
    ) -> Result<Vec<Integration>, ServiceError> {
        Ok(self.store.list(&caller.tenant, filter, after, limit).await?)
    }

    /// Replaces what a client may set, if the integration is still at `if_match`.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        if_match: i64,
        spec: IntegrationSpec,
    ) -> Result<Integration, ServiceError> {
        self.validate(&spec)?;
        let current = self.get(caller, id).await?;
        if current.version != if_match {
            return Err(ServiceError::Stale { current: current.version });
        }
        let at = now();
        let mut row = Integration {
            modified_at: Some(at),
            modified_by: Some(caller.subject.clone()),
            version: current.version + 1,
            ..current.clone()
        };
        row.set_spec(spec);
        let details = json!({"changed": changed_fields(&current, &row)});
        // A new interval applies now, not after the old one has run out.
        let reschedule_health = current.health_check_interval != row.health_check_interval;
        self.store
            .apply(Change {
                tenant_id: caller.tenant.clone(),
                integration_id: id,
                write: RowWrite::Update { row: Box::new(row.clone()), expected_version: if_match },
                audit: AuditDraft { action: "updated".into(), actor: caller.subject.clone(), at, details },
                events: vec![event("integration.updated", &row)],
                test_result: None,
                idempotency: None,
                reschedule_health,
            })
            .await?;
        Ok(row)
    }

    /// Replaces what a client may set whatever the current version (`If-Match: *`): a concurrent
    /// change is not an error, the update is applied to the version that follows it.
    pub async fn update_current(
        &self,
        caller: &Caller,
        id: Uuid,
        mut version: i64,
        spec: IntegrationSpec,
    ) -> Result<Integration, ServiceError> {
        for _ in 0..MAX_APPLY_ATTEMPTS {
            match self.update(caller, id, version, spec.clone()).await {
                Err(ServiceError::Stale { current }) => version = current,
                other => return other,
            }
        }
        Err(ServiceError::Unavailable("the integration kept changing while it was updated".into()))
    }

    /// Deletes an integration (at `if_match` when given).
    pub async fn delete(&self, caller: &Caller, id: Uuid, if_match: Option<i64>) -> Result<(), ServiceError> {
        let current = self.get(caller, id).await?;
        let expected_version = if_match.unwrap_or(current.version);
        self.store
            .apply(Change {
                tenant_id: caller.tenant.clone(),
                integration_id: id,
                write: RowWrite::Delete { expected_version },
                audit: AuditDraft {
                    action: "deleted".into(),
                    actor: caller.subject.clone(),
                    at: now(),
                    details: json!({"name": current.name}),
                },
                events: vec![event("integration.deleted", &current)],
                test_result: None,
                idempotency: None,
                reschedule_health: false,
            })
            .await?;
        Ok(())
    }

    /// Submits a draft for verification (the caller is the approver), then tests it.
    pub async fn activate(&self, caller: &Caller, id: Uuid) -> Result<Tested, ServiceError> {
        let details = |_: &Integration| json!({"approver": caller.subject});
        self.transition(caller, id, &Event::Activate, "activated", details, None).await?;
        self.test(caller, id).await
    }

    /// Pauses an integration in service.
    pub async fn pause(
        &self,
        caller: &Caller,
        id: Uuid,
        reason: String,
        ticket: Option<String>,
    ) -> Result<Integration, ServiceError> {
        // Another tenant's (or no) integration is a 404 before its body is looked at.
        self.get(caller, id).await?;
        crate::domain::validate_pause(&reason, ticket.as_deref()).map_err(ServiceError::Invalid)?;
        let details = json!({"reason": reason, "ticket": ticket});
        let event = Event::Pause { reason, ticket };
        self.transition(caller, id, &event, "paused", move |_| details.clone(), Some("integration.paused")).await
    }

    /// Resumes a paused integration.
    pub async fn resume(&self, caller: &Caller, id: Uuid) -> Result<Integration, ServiceError> {
        let details =
            |current: &Integration| json!({"pauseReason": current.pause_reason, "pauseTicket": current.pause_ticket});
        self.transition(caller, id, &Event::Resume, "resumed", details, Some("integration.resumed")).await
    }

    /// Runs the connection test in the sandbox and applies its result.
    pub async fn test(&self, caller: &Caller, id: Uuid) -> Result<Tested, ServiceError> {
        let subject = self.get(caller, id).await?;
        let run = self.run_test(&subject).await;
        let passed = run.result.success;
        // Serialized once: a test's record can be a few hundred KiB, and a retry must not redo it.
        let stored = serde_json::to_string(&run).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let details = json!({
            "success": passed,
            "failureClass": run.result.failure,
            "message": run.result.message,
            "invocationId": run.record.as_ref().map(|r| r.invocation_id.clone()),
        });
        for _ in 0..MAX_APPLY_ATTEMPTS {
            let current = self.get(caller, id).await?;
            let next = lifecycle::apply(&current.lifecycle(), &Event::Checked { passed })?;
            let mut row = current.clone();
            row.set_lifecycle(next);
            row.last_tested_at = Some(run.tested_at);
            row.last_test_success = Some(passed);
            row.version = current.version + 1;
            let mut events = vec![];
            // healthy / unhealthy only when the health changes.
            if current.last_test_success != Some(passed) {
                events.push(event(if passed { "integration.healthy" } else { "integration.unhealthy" }, &row));
            }
            let change = Change {
                tenant_id: caller.tenant.clone(),
                integration_id: id,
                write: RowWrite::Update { row: Box::new(row.clone()), expected_version: current.version },
                audit: AuditDraft {
                    action: "tested".into(),
                    actor: caller.subject.clone(),
                    at: now(),
                    details: details.clone(),
                },
                events,
                test_result: Some(stored.clone()),
                idempotency: None,
                reschedule_health: false,
            };
            match self.store.apply(change).await {
                Ok(()) => return Ok(Tested { integration: row, test_result: run }),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable("the integration kept changing while its test result was recorded".into()))
    }

    /// The last test's result and invocation record.
    pub async fn latest_test(&self, caller: &Caller, id: Uuid) -> Result<Option<TestRun>, ServiceError> {
        self.get(caller, id).await?;
        match self.store.latest_test(&caller.tenant, id).await? {
            None => Ok(None),
            Some(kept) => serde_json::from_value(kept)
                .map(Some)
                .map_err(|e| ServiceError::Internal(format!("a kept test result does not parse: {e}"))),
        }
    }

    /// Runs one scheduled health check of `subject` (as its lease found it) through the sandbox;
    /// `None`, with no check made, when it is no longer in service. In offline mode no network
    /// check is made (the check is `skipped`), except of a feed mirror inside the site
    /// ([`Catalog::inside_offline_site`]). The next check is due the integration's interval ±10%
    /// after this one, whatever it found. Record it with [`Catalog::record_health_check`] when it
    /// moves the integration's state; otherwise the store records it with others in one
    /// transaction ([`crate::store::Store::finish_health_checks`]).
    pub async fn make_health_check(&self, subject: &Integration) -> Option<MadeCheck> {
        if !subject.status.in_service() || subject.paused {
            return None;
        }
        let checked_at = now();
        let next_due_ms =
            crate::store::unix_ms(checked_at) + jittered(crate::store::duration_ms(self.check_interval(subject)));
        let check = if self.health.offline && !self.inside_offline_site(subject) {
            HealthCheck {
                check_id: Uuid::new_v4(),
                checked_at,
                outcome: CheckOutcome::Skipped,
                failure_class: None,
                latency_ms: 0,
                message: "offline mode: no network check was made".into(),
                replica: None,
            }
        } else {
            self.run_check_health(subject, checked_at).await
        };
        // healthy and degraded pass, unhealthy fails; skipped moves nothing.
        let moves_state = match check.outcome {
            CheckOutcome::Skipped => false,
            outcome => {
                // A check the lifecycle refuses goes the recording way too, which reports why.
                lifecycle_after_check(subject, outcome != CheckOutcome::Unhealthy).map_or(true, |next| next.is_some())
            }
        };
        let finished = FinishedCheck {
            tenant_id: subject.tenant_id.clone(),
            integration_id: subject.integration_id,
            check,
            next_due_ms,
            version: subject.version,
        };
        Some(MadeCheck { finished, moves_state })
    }

    /// Records a check that moves its integration's state: through the same lifecycle as a test,
    /// the row with an audit entry by `scheduler` and `integration.healthy` / `.unhealthy` when the
    /// health changes, with the history row and the next due time, in one transaction, and only
    /// while `owner` still holds the lease. Applied to the integration as it is when recorded
    /// (read again if it changed meanwhile). `false` when the lease was lost or the integration is
    /// gone: then nothing is written.
    pub async fn record_health_check(&self, owner: &str, finished: &FinishedCheck) -> Result<bool, ServiceError> {
        let FinishedCheck { tenant_id, integration_id, check, next_due_ms, .. } = finished;
        let passed = check.outcome != CheckOutcome::Unhealthy;
        for _ in 0..MAX_APPLY_ATTEMPTS {
            let Some(current) = self.store.get(tenant_id, *integration_id).await? else { return Ok(false) };
            let change = self.health_change(&current, check, passed)?;
            match self.store.finish_health_check(owner, tenant_id, *integration_id, check, *next_due_ms, change).await {
                Ok(recorded) => return Ok(recorded),
                Err(StoreError::NotFound) => return Ok(false),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable("the integration kept changing while its health was recorded".into()))
    }

    /// `check-health` in the sandbox, as a history entry.
    async fn run_check_health(&self, subject: &Integration, checked_at: OffsetDateTime) -> HealthCheck {
        let invocation = match self.connectors.get(&subject.provider) {
            Some(connector) => {
                let (sandbox, connector, config) =
                    (self.sandbox.clone(), connector.clone(), connection_config(subject));
                self.in_sandbox(async move { sandbox.check_health(&connector, &config).await })
                    .await
                    .ok_or_else(|| STOPPING.to_string())
            }
            None => Err(format!("no connector `{}` is loaded", subject.provider)),
        };
        let (outcome, failure, latency_ms, message) = match invocation {
            Ok(invocation) => {
                let r = invocation.result;
                let outcome = match r.status {
                    stella_runtime::HealthStatus::Healthy => CheckOutcome::Healthy,
                    stella_runtime::HealthStatus::Degraded => CheckOutcome::Degraded,
                    stella_runtime::HealthStatus::Unhealthy => CheckOutcome::Unhealthy,
                };
                let label = r.failure.as_ref().map(wire_name).unwrap_or_else(|| outcome.as_str().to_string());
                self.metrics.record_invocation(Some(&invocation.record), "check-health", &label);
                // The sandbox clears control characters (a NUL, which PostgreSQL keeps none of in
                // text, among them) from every message a connector writes.
                (outcome, r.failure.as_ref().map(wire_name), r.latency_ms, r.message)
            }
            Err(why) => (CheckOutcome::Unhealthy, Some(wire_name(&FailureClass::Misconfigured)), 0, why),
        };
        HealthCheck {
            check_id: Uuid::new_v4(),
            checked_at,
            outcome,
            failure_class: failure,
            latency_ms,
            message,
            replica: None,
        }
    }

    /// What a check that `passed` changes of the integration as it is now: `None` when neither its
    /// lifecycle nor its health moves.
    fn health_change(
        &self,
        current: &Integration,
        check: &HealthCheck,
        passed: bool,
    ) -> Result<Option<Change>, ServiceError> {
        let Some(next) = lifecycle_after_check(current, passed)? else { return Ok(None) };
        let health_changed = current.last_test_success != Some(passed);
        let mut row = current.clone();
        row.set_lifecycle(next);
        row.last_test_success = Some(passed);
        row.version = current.version + 1;
        let events = if health_changed {
            vec![event(if passed { "integration.healthy" } else { "integration.unhealthy" }, &row)]
        } else {
            vec![]
        };
        Ok(Some(Change {
            tenant_id: current.tenant_id.clone(),
            integration_id: current.integration_id,
            write: RowWrite::Update { row: Box::new(row), expected_version: current.version },
            audit: AuditDraft {
                action: "health-checked".into(),
                actor: SCHEDULER.into(),
                at: check.checked_at,
                details: json!({
                    "checkId": check.check_id,
                    "outcome": check.outcome,
                    "failureClass": check.failure_class,
                    "message": check.message,
                    "status": current.status,
                }),
            },
            events,
            test_result: None,
            idempotency: None,
            reschedule_health: false,
        }))
    }

    /// Whether an offline site still checks this integration: a feed whose base URL's host is one
    /// of the site's mirrors (`health.offline-mirror-hosts`, the operator's list) and one of its
    /// own `mirrorHosts` (the allowlist `feed-mirror` also enforces before any request). Both, so
    /// that neither a tenant's configuration nor a connector's word alone opens the network.
    pub fn inside_offline_site(&self, integration: &Integration) -> bool {
        if integration.integration_type != stella_runtime::IntegrationType::Feed {
            return false;
        }
        let host = integration
            .base_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let Some(host) = host else { return false };
        let own = integration.configuration.get("mirrorHosts").and_then(|m| m.as_array());
        let listed = own.is_some_and(|m| m.iter().filter_map(|m| m.as_str()).any(|m| m.eq_ignore_ascii_case(&host)));
        listed && self.health.offline_mirror_hosts.iter().any(|m| m.eq_ignore_ascii_case(&host))
    }

    /// The time between two health checks of this integration: its own, else the default.
    pub fn check_interval(&self, integration: &Integration) -> std::time::Duration {
        integration
            .health_check_interval
            .map_or(self.health.default_interval, |s| std::time::Duration::from_secs(u64::from(s)))
    }

    /// Uptime and latency from the last 30 days of the integration's health history.
    pub async fn health_summary(&self, caller: &Caller, id: Uuid) -> Result<HealthSummary, ServiceError> {
        self.get(caller, id).await?;
        let now = now();
        let since = crate::store::unix_ms(now) - 30 * DAY_MS;
        let mut checks = Vec::new();
        let mut before = None;
        // At the default interval 30 days are 8,640 checks; stop at the window or the cap.
        while checks.len() < MAX_SUMMARY_CHECKS {
            let page = self.store.health_history(&caller.tenant, id, before, 1000).await?;
            let Some(last) = page.last() else { break };
            before = Some((crate::store::unix_ms(last.checked_at), last.check_id));
            let full = page.len() == 1000;
            let old = crate::store::unix_ms(last.checked_at) < since;
            checks.extend(page.into_iter().filter(|c| crate::store::unix_ms(c.checked_at) >= since));
            if !full || old {
                break;
            }
        }
        Ok(summarize(&checks, crate::store::unix_ms(now)))
    }

    async fn run_test(&self, integration: &Integration) -> TestRun {
        let tested_at = now();
        let config = connection_config(integration);
        let invocation = match self.connectors.get(&integration.provider) {
            Some(connector) => {
                let (sandbox, connector) = (self.sandbox.clone(), connector.clone());
                self.in_sandbox(async move { sandbox.test_connection(&connector, &config).await })
                    .await
                    .ok_or_else(|| STOPPING.to_string())
            }
            // The connector was removed from plugins/ after the integration was created.
            None => Err(format!("no connector `{}` is loaded", integration.provider)),
        };
        match invocation {
            Ok(invocation) => {
                let outcome = match invocation.result.failure {
                    _ if invocation.result.success => "success".to_string(),
                    Some(class) => wire_name(&class),
                    None => "failure".to_string(),
                };
                self.metrics.record_invocation(Some(&invocation.record), "test-connection", &outcome);
                TestRun { tested_at, result: invocation.result, record: Some(invocation.record) }
            }
            Err(message) => TestRun {
                tested_at,
                result: TestOutcome {
                    success: false,
                    message,
                    failure: Some(FailureClass::Misconfigured),
                    steps: vec![],
                    facts: Facts::default(),
                },
                record: None,
            },
        }
    }

    /// Applies an operator action (not a test) to the current state; the audit details are taken
    /// from the row before the change. The caller sent no precondition, so a concurrent change is
    /// not an error: the action is applied again to the row as it then is (which may now refuse
    /// it with a conflict).
    async fn transition(
        &self,
        caller: &Caller,
        id: Uuid,
        lifecycle_event: &Event,
        action: &str,
        details: impl Fn(&Integration) -> serde_json::Value,
        event_type: Option<&str>,
    ) -> Result<Integration, ServiceError> {
        for _ in 0..MAX_APPLY_ATTEMPTS {
            let current = self.get(caller, id).await?;
            let next = lifecycle::apply(&current.lifecycle(), lifecycle_event)?;
            let at = now();
            let mut row = current.clone();
            row.set_lifecycle(next);
            row.modified_at = Some(at);
            row.modified_by = Some(caller.subject.clone());
            row.version = current.version + 1;
            let change = Change {
                tenant_id: caller.tenant.clone(),
                integration_id: id,
                write: RowWrite::Update { row: Box::new(row.clone()), expected_version: current.version },
                audit: AuditDraft {
                    action: action.into(),
                    actor: caller.subject.clone(),
                    at,
                    details: details(&current),
                },
                events: event_type.map(|t| event(t, &row)).into_iter().collect(),
                test_result: None,
                idempotency: None,
                reschedule_health: false,
            };
            match self.store.apply(change).await {
                Ok(()) => return Ok(row),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable("the integration kept changing while the action was applied".into()))
    }
}

const DAY_MS: i64 = 86_400_000;
const MAX_SUMMARY_CHECKS: usize = 100_000;

/// Uptime and latency of an integration, from its health history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    /// Share of the checks of the last 24 hours that found it working (`healthy` or `degraded`),
    /// 0 to 1; skipped checks do not count; null without checks.
    pub uptime_24h: Option<f64>,
    /// The same over 7 days.
    pub uptime_7d: Option<f64>,
    /// The same over 30 days.
    pub uptime_30d: Option<f64>,
    /// Median latency of the checks of the last 24 hours, in milliseconds.
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile latency of the checks of the last 24 hours, in milliseconds.
    pub latency_p95_ms: Option<u64>,
}

/// The lifecycle after a health check that `passed`, when the check moves the integration (its
/// lifecycle or its health); `None` when it changes nothing.
fn lifecycle_after_check(current: &Integration, passed: bool) -> Result<Option<Lifecycle>, lifecycle::Conflict> {
    let next = lifecycle::apply(&current.lifecycle(), &Event::Checked { passed })?;
    let moves = next != current.lifecycle() || current.last_test_success != Some(passed);
    Ok(moves.then_some(next))
}

/// The interval ±10%, so that integrations created together do not stay checked together.
fn jittered(interval_ms: i64) -> i64 {
    let spread = interval_ms / 10;
    if spread == 0 {
        return interval_ms;
    }
    let r = i64::from(Uuid::new_v4().as_u128() as u32) % (2 * spread + 1);
    interval_ms - spread + r
}

/// Uptime over 24 h, 7 d and 30 d before `now_ms`, latency percentiles over 24 h (nearest rank).
pub fn summarize(checks: &[HealthCheck], now_ms: i64) -> HealthSummary {
    let made = |days: i64| {
        checks.iter().filter(move |c| {
            c.outcome != CheckOutcome::Skipped && crate::store::unix_ms(c.checked_at) >= now_ms - days * DAY_MS
        })
    };
    let uptime = |days: i64| {
        let (up, all) = made(days)
            .fold((0_u64, 0_u64), |(up, all), c| (up + u64::from(c.outcome != CheckOutcome::Unhealthy), all + 1));
        (all > 0).then(|| up as f64 / all as f64)
    };
    let mut latencies: Vec<u64> = made(1).map(|c| c.latency_ms).collect();
    latencies.sort_unstable();
    let rank = |p: f64| {
        (!latencies.is_empty())
            .then(|| latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1])
    };
    HealthSummary {
        uptime_24h: uptime(1),
        uptime_7d: uptime(7),
        uptime_30d: uptime(30),
        latency_p50_ms: rank(0.50),
        latency_p95_ms: rank(0.95),
    }
}

/// The actor of what the health scheduler does.
pub const SCHEDULER: &str = "scheduler";

/// What a connector is told about an integration.
fn connection_config(integration: &Integration) -> ConnectionConfig {
    ConnectionConfig {
        integration_id: integration.integration_id.to_string(),
        name: integration.name.clone(),
        integration_type: integration.integration_type,
        provider: integration.provider.clone(),
        base_url: integration.base_url.clone(),
        auth_ref: integration.auth_ref.clone(),
        configuration: integration.configuration.clone(),
        environment: integration.environment.clone(),
    }
}

/// The event of an integration: its identity and state, never its configuration.
fn event(event_type: &str, i: &Integration) -> EventDraft {
    EventDraft {
        event_type: event_type.into(),
        data: json!({
            "integrationId": i.integration_id,
            "name": i.name,
            "type": i.integration_type,
            "provider": i.provider,
            "status": i.status,
            "version": i.version,
        }),
    }
}

/// The client-settable fields that differ (names only: values may be sensitive to some readers).
pub fn changed_fields(before: &Integration, after: &Integration) -> Vec<&'static str> {
    let mut changed = vec![];
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("name", before.name != after.name);
    check("description", before.description != after.description);
    check("type", before.integration_type != after.integration_type);
    check("provider", before.provider != after.provider);
    check("baseUrl", before.base_url != after.base_url);
    check("authRef", before.auth_ref != after.auth_ref);
    check("configuration", before.configuration != after.configuration);
    check("environment", before.environment != after.environment);
    check("tags", before.tags != after.tags);
    check("ownerId", before.owner_id != after.owner_id);
    check("healthCheckInterval", before.health_check_interval != after.health_check_interval);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jittered(300_000);
            assert!((270_000..=330_000).contains(&j), "{j}");
        }
        assert_eq!(jittered(5), 5);
    }

    fn check(hours_ago: i64, outcome: CheckOutcome, latency_ms: u64, now_ms: i64) -> HealthCheck {
        HealthCheck {
            check_id: Uuid::new_v4(),
            checked_at: crate::store::from_unix_ms(now_ms - hours_ago * 3_600_000),
            outcome,
            failure_class: None,
            latency_ms,
            message: String::new(),
            replica: None,
        }
    }

    #[test]
    fn uptime_counts_working_checks_per_window_and_latency_uses_the_last_day() {
        let now = 1_800_000_000_000;
        let checks = vec![
            check(1, CheckOutcome::Healthy, 10, now),
            check(2, CheckOutcome::Degraded, 30, now),
            check(3, CheckOutcome::Unhealthy, 20, now),
            check(4, CheckOutcome::Skipped, 999, now),
            check(48, CheckOutcome::Unhealthy, 500, now),
            check(24 * 20, CheckOutcome::Healthy, 700, now),
            check(24 * 40, CheckOutcome::Unhealthy, 900, now),
        ];
        let s = summarize(&checks, now);
        assert_eq!(s.uptime_24h, Some(2.0 / 3.0));
        assert_eq!(s.uptime_7d, Some(2.0 / 4.0));
        assert_eq!(s.uptime_30d, Some(3.0 / 5.0));
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (Some(20), Some(30)));
        assert_eq!(summarize(&[], now), HealthSummary::default());
    }
}
