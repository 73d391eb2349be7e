//! Integrations: create (at most once per idempotency key), read, list, update, delete, the
//! lifecycle actions and connection tests.

use serde_json::json;
use sha2::{Digest, Sha256};
use stella_runtime::outcome::TestOutcome;
use stella_runtime::{Facts, FailureClass};
use uuid::Uuid;

use super::{Catalog, Created, IfMatch, STOPPING, ServiceError, Tested};
use crate::audit::{AuditAction, AuditDraft};
use crate::domain::{BaseUrl, FieldError, Integration, IntegrationSpec, TestRun, ValidSpec, now};
use crate::events::{EventDraft, EventType};
use crate::identity::{Admin, Caller, Reader};
use crate::ledger::LedgerEntry;
use crate::lifecycle::{self, Event};
use crate::query::{IntegrationQuery, ListPosition, Page};
use crate::store::{Change, IdempotentResponse, RowWrite};

impl Catalog {
    /// Validates a spec, including that its provider is loaded and serves its type.
    pub fn validate(&self, spec: IntegrationSpec) -> Result<ValidSpec, ServiceError> {
        spec.validate_with(|spec| self.provider_errors(spec)).map_err(ServiceError::Invalid)
    }

    /// Why a spec's (well-formed) provider cannot serve it: no such connector is loaded, or it
    /// does not serve the spec's type.
    fn provider_errors(&self, spec: &IntegrationSpec) -> Vec<FieldError> {
        let types = |c: &stella_runtime::LoadedConnector| {
            let names: Vec<&str> = c.manifest().connector.types.iter().map(|t| t.as_str()).collect();
            names.join(", ")
        };
        let connectors = self.connectors();
        let mut available: Vec<String> =
            connectors.iter().map(|c| format!("{} ({})", c.provider(), types(c))).collect();
        available.sort();
        match connectors.get(&spec.provider) {
            None => vec![FieldError {
                field: "provider".into(),
                message: format!("no connector `{}` is loaded; available: {}", spec.provider, available.join(", ")),
            }],
            Some(c) if !c.manifest().connector.types.contains(&spec.integration_type) => vec![FieldError {
                field: "type".into(),
                message: format!(
                    "connector `{}` serves {}, not `{}`; available: {}",
                    spec.provider,
                    types(c),
                    spec.integration_type,
                    available.join(", ")
                ),
            }],
            Some(_) => Vec::new(),
        }
    }

    /// Creates an integration in `draft`.
    pub async fn create(&self, admin: &Admin, spec: IntegrationSpec) -> Result<Integration, ServiceError> {
        let caller = admin.caller();
        self.insert(caller, spec, None).await
    }

    /// Creates an integration at most once per `Idempotency-Key`: a repeat of the same request
    /// returns the first response; the same key with a different request is refused.
    pub async fn create_once(&self, admin: &Admin, spec: IntegrationSpec, key: &str) -> Result<Created, ServiceError> {
        let caller = admin.caller();
        // The hash is over the parsed request, so whitespace and key order do not matter.
        let canonical = serde_json::to_vec(&spec).map_err(|e| ServiceError::internal(e.to_string()))?;
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
            // ours fail on the key, on the name, or on a lock the database gave up waiting for):
            // answer as if it had been first.
            Err(e @ (ServiceError::KeyInFlight | ServiceError::NameTaken(_) | ServiceError::Unavailable(_))) => {
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
        let valid = self.validate(spec)?;
        let at = now();
        let row = Integration::draft(Uuid::new_v4(), &caller.tenant, &caller.subject, at, valid);
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
                audit: AuditDraft { action: AuditAction::Created, actor: caller.subject.clone(), at, details },
                events: vec![EventDraft::of(EventType::Created, &row)],
                test_result: None,
                idempotency,
                reschedule_health: false,
                invocations: vec![],
            })
            .await?;
        Ok(row)
    }

    /// One integration of the reader's tenant; another tenant's is [`ServiceError::NotFound`].
    pub async fn get(&self, reader: &Reader, id: Uuid) -> Result<Integration, ServiceError> {
        self.find(reader.caller(), id).await
    }

    /// One integration of the caller's tenant (whatever the caller may do with it).
    pub(super) async fn find(&self, caller: &Caller, id: Uuid) -> Result<Integration, ServiceError> {
        self.store.get(&caller.tenant, id).await?.ok_or(ServiceError::NotFound)
    }

    /// A page of the reader's integrations, as the query asks.
    pub async fn list(&self, reader: &Reader, query: &IntegrationQuery) -> Result<Page<Integration>, ServiceError> {
        let (filter, page) = (&query.filter, &query.page);
        // One more than the page, to know whether another follows.
        let rows = self.store.list(&reader.caller().tenant, filter, page.after.as_ref(), page.limit + 1).await?;
        Ok(Page::of(rows, page.limit, ListPosition::of))
    }

    /// How many of the caller's integrations are in each status, paused or not, of each health.
    pub async fn state_counts(&self, reader: &Reader) -> Result<Vec<crate::store::StateCount>, ServiceError> {
        let caller = reader.caller();
        Ok(self.store.state_counts(&caller.tenant).await?)
    }

    /// Replaces what a client may set, if the integration is still at the version `if_match`
    /// names (required: a change must say what it is based on).
    pub async fn update(
        &self,
        admin: &Admin,
        id: Uuid,
        if_match: IfMatch,
        spec: IntegrationSpec,
    ) -> Result<Integration, ServiceError> {
        let caller = admin.caller();
        // Another tenant's (or no) integration is a 404 before any precondition or body is
        // looked at.
        let mut current = self.find(caller, id).await?;
        match if_match {
            IfMatch::Absent => Err(ServiceError::PreconditionRequired),
            IfMatch::Version(version) => {
                let valid = self.validate(spec)?;
                self.update_at(caller, current, version, valid).await
            }
            IfMatch::Any => {
                let valid = self.validate(spec)?;
                for _ in 0..super::MAX_APPLY_ATTEMPTS {
                    let version = current.version;
                    match self.update_at(caller, current, version, valid.clone()).await {
                        Err(ServiceError::Stale { .. }) => current = self.find(caller, id).await?,
                        other => return other,
                    }
                }
                Err(ServiceError::KeptChanging("it was updated"))
            }
        }
    }

    /// Replaces what a client may set of `current`, if it is still at `if_match`.
    async fn update_at(
        &self,
        caller: &Caller,
        current: Integration,
        if_match: i64,
        spec: ValidSpec,
    ) -> Result<Integration, ServiceError> {
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
                integration_id: current.integration_id,
                write: RowWrite::Update { row: Box::new(row.clone()), expected_version: if_match },
                audit: AuditDraft { action: AuditAction::Updated, actor: caller.subject.clone(), at, details },
                events: vec![EventDraft::of(EventType::Updated, &row)],
                test_result: None,
                idempotency: None,
                reschedule_health,
                invocations: vec![],
            })
            .await?;
        Ok(row)
    }

    /// Deletes an integration (only at the version `if_match` names, when it names one).
    pub async fn delete(&self, admin: &Admin, id: Uuid, if_match: IfMatch) -> Result<(), ServiceError> {
        let caller = admin.caller();
        let current = self.find(caller, id).await?;
        let expected_version = match if_match {
            IfMatch::Version(version) => version,
            IfMatch::Absent | IfMatch::Any => current.version,
        };
        self.store
            .apply(Change {
                tenant_id: caller.tenant.clone(),
                integration_id: id,
                write: RowWrite::Delete { expected_version },
                audit: AuditDraft {
                    action: AuditAction::Deleted,
                    actor: caller.subject.clone(),
                    at: now(),
                    details: json!({"name": current.name}),
                },
                events: vec![EventDraft::of(EventType::Deleted, &current)],
                test_result: None,
                idempotency: None,
                reschedule_health: false,
                invocations: vec![],
            })
            .await?;
        Ok(())
    }

    /// Submits a draft for verification (the caller is the approver), then tests it.
    pub async fn activate(&self, admin: &Admin, id: Uuid) -> Result<Tested, ServiceError> {
        let caller = admin.caller();
        let details = |_: &Integration| json!({"approver": caller.subject});
        self.transition(caller, id, &Event::Activate, AuditAction::Activated, details, None).await?;
        self.test(admin, id).await
    }

    /// Pauses an integration in service.
    pub async fn pause(
        &self,
        admin: &Admin,
        id: Uuid,
        reason: String,
        ticket: Option<String>,
    ) -> Result<Integration, ServiceError> {
        let caller = admin.caller();
        // Another tenant's (or no) integration is a 404 before its body is looked at.
        self.find(caller, id).await?;
        crate::domain::validate_pause(&reason, ticket.as_deref()).map_err(ServiceError::Invalid)?;
        let details = json!({"reason": reason, "ticket": ticket});
        let event = Event::Pause { reason, ticket };
        self.transition(caller, id, &event, AuditAction::Paused, move |_| details.clone(), Some(EventType::Paused))
            .await
    }

    /// Resumes a paused integration.
    pub async fn resume(&self, admin: &Admin, id: Uuid) -> Result<Integration, ServiceError> {
        let caller = admin.caller();
        let details =
            |current: &Integration| json!({"pauseReason": current.pause_reason, "pauseTicket": current.pause_ticket});
        self.transition(caller, id, &Event::Resume, AuditAction::Resumed, details, Some(EventType::Resumed)).await
    }

    /// Runs the connection test in the sandbox and applies its result.
    pub async fn test(&self, admin: &Admin, id: Uuid) -> Result<Tested, ServiceError> {
        let caller = admin.caller();
        let subject = self.find(caller, id).await?;
        let run = self.run_test(&subject).await;
        let passed = run.result.success;
        // Serialized once: a test's record can be a few hundred KiB, and a retry must not redo it.
        let stored = serde_json::to_string(&run).map_err(|e| ServiceError::internal(e.to_string()))?;
        let details = json!({
            "success": passed,
            "failureClass": run.result.failure,
            "message": run.result.message,
            "invocationId": run.record.as_ref().map(|r| r.invocation_id),
        });
        // The ledger keeps the record too (the latest test's is also kept with the integration).
        let outcome = if passed { "success" } else { run.result.failure.map_or("failure", FailureClass::as_str) };
        let entry = run.record.clone().map(|record| {
            let failure = if passed { None } else { run.result.failure };
            LedgerEntry::of(
                &caller.tenant,
                id,
                subject.base_url.as_ref().map(BaseUrl::as_str),
                record,
                outcome,
                failure,
            )
        });
        let invocations: Vec<LedgerEntry> = entry.into_iter().collect();
        let integration = self
            .apply_to_current(caller, id, "its test result was recorded", |current| {
                let next = lifecycle::apply(&current.lifecycle(), &Event::Checked { passed })?;
                let mut row = current.clone();
                row.set_lifecycle(next);
                row.last_tested_at = Some(run.tested_at);
                row.last_test_success = Some(passed);
                row.version = current.version + 1;
                // healthy / unhealthy only when the health changes.
                let events = if current.last_test_success != Some(passed) {
                    vec![EventDraft::of(EventType::health(passed), &row)]
                } else {
                    vec![]
                };
                let change = Change {
                    tenant_id: caller.tenant.clone(),
                    integration_id: id,
                    write: RowWrite::Update { row: Box::new(row.clone()), expected_version: current.version },
                    audit: AuditDraft {
                        action: AuditAction::Tested,
                        actor: caller.subject.clone(),
                        at: now(),
                        details: details.clone(),
                    },
                    events,
                    test_result: Some(stored.clone()),
                    idempotency: None,
                    reschedule_health: false,
                    invocations: invocations.clone(),
                };
                Ok((change, row))
            })
            .await?;
        Ok(Tested { integration, test_result: run })
    }

    /// The last test's result and invocation record.
    pub async fn latest_test(&self, reader: &Reader, id: Uuid) -> Result<Option<TestRun>, ServiceError> {
        let caller = reader.caller();
        self.find(caller, id).await?;
        self.kept_test(caller, id).await
    }

    /// The last test of an integration the caller is known to see.
    pub(super) async fn kept_test(&self, caller: &Caller, id: Uuid) -> Result<Option<TestRun>, ServiceError> {
        match self.store.latest_test(&caller.tenant, id).await? {
            None => Ok(None),
            Some(kept) => serde_json::from_value(kept)
                .map(Some)
                .map_err(|e| ServiceError::internal(format!("a kept test result does not parse: {e}"))),
        }
    }

    async fn run_test(&self, integration: &Integration) -> TestRun {
        let tested_at = now();
        let config = self.connection_config(integration);
        let invocation = match self.connectors().get(&integration.provider) {
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
                    _ if invocation.result.success => "success",
                    Some(class) => class.as_str(),
                    None => "failure",
                };
                self.metrics.record_invocation(Some(&invocation.record), "test-connection", outcome);
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
        action: AuditAction,
        details: impl Fn(&Integration) -> serde_json::Value,
        event_type: Option<EventType>,
    ) -> Result<Integration, ServiceError> {
        self.apply_to_current(caller, id, "the action was applied", |current| {
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
                audit: AuditDraft { action, actor: caller.subject.clone(), at, details: details(&current) },
                events: event_type.map(|t| EventDraft::of(t, &row)).into_iter().collect(),
                test_result: None,
                idempotency: None,
                reschedule_health: false,
                invocations: vec![],
            };
            Ok((change, row))
        })
        .await
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
