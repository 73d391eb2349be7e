//! The catalog's health operations: the checks the scheduler leases, runs and records, and the
//! health report of one integration. What a check is and what it changes is in
//! [`crate::health`]; this is where it meets the sandbox and the store.

use serde_json::json;
use stella_runtime::FailureClass;
use stella_runtime::record::InvocationRecord;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Catalog, MAX_APPLY_ATTEMPTS, STOPPING, ServiceError};
use crate::audit::{AuditAction, AuditDraft, SCHEDULER};
use crate::domain::{BaseUrl, Integration, now, unix_ms};
use crate::domain::{DAY_MS, HOUR_MS};
use crate::events::{EventDraft, EventType};
use crate::health::check::{lifecycle_after_check, moves_state};
use crate::health::summary::summarize;
use crate::health::{
    CheckOutcome, FinishedCheck, HealthCheck, HealthReport, HealthState, HealthSummary, HistoryCursor, MadeCheck,
};
use crate::identity::{Caller, Reader};
use crate::ledger::LedgerEntry;
use crate::lifecycle;
use crate::query::{Page, PageRequest};
use crate::store::{Change, RowWrite, StoreError};

/// History read per page by the summary.
const SUMMARY_PAGE: u32 = 1000;

impl Catalog {
    /// Runs one scheduled health check of `subject` (as its lease found it) through the sandbox;
    /// `None`, with no check made, when it is no longer in service. In offline mode no network
    /// check is made (the check is `skipped`), except of a feed mirror inside the site
    /// ([`crate::health::HealthPolicy::inside_offline_site`]). The next check is due the
    /// integration's interval ±10% after this one, whatever it found. Record it with
    /// [`Catalog::record_health_check`] when it moves the integration's state; otherwise with
    /// others in one transaction ([`Catalog::record_unchanged_checks`]).
    pub async fn make_health_check(&self, subject: &Integration) -> Option<MadeCheck> {
        if !subject.status.in_service() || subject.paused {
            return None;
        }
        let checked_at = now();
        let next_due_ms = self.health.next_due_ms(subject, checked_at);
        let (check, record) = if self.health.may_check(subject) {
            self.run_check_health(subject, checked_at).await
        } else {
            let message = "offline mode: no network check was made".to_string();
            (HealthCheck::new(checked_at, CheckOutcome::Skipped, None, 0, message), None)
        };
        let invocation = record.map(|record| {
            Box::new(LedgerEntry::of(
                &subject.tenant_id,
                subject.integration_id,
                subject.base_url.as_ref().map(BaseUrl::as_str),
                record,
                check.outcome.as_str(),
                check.failure_class,
            ))
        });
        let moves_state = moves_state(subject, check.outcome);
        // A sample of what could fold is kept in full anyway (`ledger.sample-rate`).
        let draw = f64::from(Uuid::new_v4().as_u128() as u32) / f64::from(u32::MAX);
        let foldable = !moves_state
            && check.outcome == CheckOutcome::Healthy
            && invocation
                .as_deref()
                .is_some_and(|e| !e.denied && !e.revealed_secret && !e.signed_jwt && !e.secret_in_request)
            && self.ledger.folds(draw);
        let finished = FinishedCheck {
            tenant_id: subject.tenant_id.clone(),
            integration_id: subject.integration_id,
            check,
            next_due_ms,
            version: subject.version,
            invocation,
            foldable,
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
        for _ in 0..MAX_APPLY_ATTEMPTS {
            let Some(current) = self.store.get(&finished.tenant_id, finished.integration_id).await? else {
                return Ok(false);
            };
            let change = change_of_check(&current, &finished.check)?;
            match self.store.finish_health_check(owner, finished, change).await {
                Ok(recorded) => return Ok(recorded),
                Err(StoreError::NotFound) => return Ok(false),
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::KeptChanging("its health was recorded"))
    }

    /// Records checks that moved nothing, many in one transaction, while `owner` holds their
    /// leases and their integrations are unchanged; returns the integrations recorded (record the
    /// others with [`Catalog::record_health_check`]).
    pub async fn record_unchanged_checks(
        &self,
        owner: &str,
        finished: &[FinishedCheck],
    ) -> Result<Vec<Uuid>, ServiceError> {
        Ok(self.store.finish_health_checks(owner, finished).await?)
    }

    /// Schedules the integrations that came into service and drops those that left it; returns
    /// how many were scheduled.
    pub async fn schedule_health_checks(&self, now_ms: i64) -> Result<u64, ServiceError> {
        Ok(self.store.schedule_health_checks(now_ms).await?)
    }

    /// Leases up to `limit` due checks for `owner` for `lease_ms`, and answers their integrations.
    pub async fn lease_health_checks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Integration>, ServiceError> {
        Ok(self.store.lease_health_checks(owner, now_ms, lease_ms, limit).await?)
    }

    /// The share of each integration's checks of the last 24 hours that found it working, for
    /// those of `ids` in the caller's tenant that had checks.
    pub async fn uptime_24h(
        &self,
        reader: &Reader,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, f64>, ServiceError> {
        let caller = reader.caller();
        let since = unix_ms(now()) - DAY_MS;
        let counts = self.store.uptime_counts(&caller.tenant, ids, since).await?;
        Ok(counts
            .into_iter()
            .filter(|(_, _, made)| *made > 0)
            .map(|(id, up, made)| (id, up as f64 / made as f64))
            .collect())
    }

    /// The health of an integration: its state, its last test, its summary, and a page of its
    /// history (`page.limit` checks, older than `page.after` when given).
    pub async fn health_report(
        &self,
        reader: &Reader,
        id: Uuid,
        page: &PageRequest<HistoryCursor>,
    ) -> Result<HealthReport, ServiceError> {
        let (before, limit) = (page.after, page.limit);
        let caller = reader.caller();
        let row = self.find(caller, id).await?;
        let last_test = self.kept_test(caller, id).await?;
        let (summary, newest) = self.health_summary(caller, id).await?;
        // One more than the page, to know whether another follows.
        let wanted = limit.saturating_add(1);
        let history = match before {
            // The summary read the first page already (when it holds as many as are wanted).
            None if wanted <= SUMMARY_PAGE || newest.len() < SUMMARY_PAGE as usize => {
                newest.iter().take(wanted as usize).cloned().collect()
            }
            _ => self.store.health_history(&caller.tenant, id, before, wanted).await?,
        };
        let last_check = newest.first().cloned();
        let Page { items: history, next_cursor } = Page::of(history, limit, HistoryCursor::after);
        Ok(HealthReport {
            integration_id: id,
            health: HealthState::of(row.last_test_success),
            status: row.status,
            paused: row.paused,
            consecutive_failures: row.consecutive_failures,
            check_interval_seconds: self.health.check_interval(&row).as_secs(),
            offline: self.health.offline,
            last_tested_at: row.last_tested_at,
            last_test,
            last_check,
            summary,
            history,
            next_cursor,
        })
    }

    /// Uptime and latency from the last 30 days of the integration's hourly rollups, and the
    /// newest page of its history (up to [`SUMMARY_PAGE`] checks).
    async fn health_summary(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<(HealthSummary, Vec<HealthCheck>), ServiceError> {
        let now_ms = unix_ms(now());
        let hours = self.store.health_hours(&caller.tenant, id, now_ms - 30 * DAY_MS - HOUR_MS).await?;
        let newest = self.store.health_history(&caller.tenant, id, None, SUMMARY_PAGE).await?;
        Ok((summarize(&hours, now_ms), newest))
    }

    /// `check-health` in the sandbox, as a history entry, and its record when a connector ran.
    async fn run_check_health(
        &self,
        subject: &Integration,
        checked_at: OffsetDateTime,
    ) -> (HealthCheck, Option<InvocationRecord>) {
        let invocation = match self.connectors().get(&subject.provider) {
            Some(connector) => {
                let (sandbox, connector, config) =
                    (self.sandbox.clone(), connector.clone(), self.connection_config(subject));
                self.in_sandbox(async move { sandbox.check_health(&connector, &config).await })
                    .await
                    .ok_or_else(|| STOPPING.to_string())
            }
            None => Err(format!("no connector `{}` is loaded", subject.provider)),
        };
        match invocation {
            Ok(invocation) => {
                let r = invocation.result;
                let outcome = CheckOutcome::from(r.status);
                let label = r.failure.map_or(outcome.as_str(), FailureClass::as_str);
                self.metrics.record_invocation(Some(&invocation.record), "check-health", label);
                // The sandbox clears control characters (a NUL, which PostgreSQL keeps none of in
                // text, among them) from every message a connector writes.
                (HealthCheck::new(checked_at, outcome, r.failure, r.latency_ms, r.message), Some(invocation.record))
            }
            Err(why) => {
                (HealthCheck::new(checked_at, CheckOutcome::Unhealthy, Some(FailureClass::Misconfigured), 0, why), None)
            }
        }
    }
}

/// What a check changes of the integration as it is now: its lifecycle and health, with an audit
/// entry by [`SCHEDULER`] and `integration.healthy` / `.unhealthy` when the health changes; `None`
/// when it moves nothing.
pub fn change_of_check(current: &Integration, check: &HealthCheck) -> Result<Option<Change>, lifecycle::Conflict> {
    let Some(passed) = check.outcome.passed() else { return Ok(None) };
    let Some(next) = lifecycle_after_check(current, passed)? else { return Ok(None) };
    let health_changed = current.last_test_success != Some(passed);
    let mut row = current.clone();
    row.set_lifecycle(next);
    row.last_test_success = Some(passed);
    row.version = current.version + 1;
    let events = if health_changed { vec![EventDraft::of(EventType::health(passed), &row)] } else { vec![] };
    Ok(Some(Change {
        tenant_id: current.tenant_id.clone(),
        integration_id: current.integration_id,
        write: RowWrite::Update { row: Box::new(row), expected_version: current.version },
        audit: AuditDraft {
            action: AuditAction::HealthChecked,
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
        invocations: vec![],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Status;

    fn failing() -> Integration {
        serde_json::from_value(json!({
            "integrationId": Uuid::new_v4(), "tenantId": "acme", "name": "n", "description": null,
            "type": "registry", "provider": "in-memory", "baseUrl": null, "authRef": null, "configuration": {},
            "environment": null, "tags": [], "ownerId": null, "status": "failed", "paused": false,
            "pauseReason": null, "pauseTicket": null, "lastTestedAt": null, "lastTestSuccess": false,
            "consecutiveFailures": 6, "createdAt": "2026-11-27T10:00:00Z", "createdBy": "alice",
            "modifiedAt": null, "modifiedBy": null, "version": 7
        }))
        .unwrap()
    }

    fn check(outcome: CheckOutcome) -> HealthCheck {
        HealthCheck::new(crate::domain::now(), outcome, None, 5, String::new())
    }

    #[test]
    fn a_skipped_check_changes_nothing_however_it_is_recorded() {
        let subject = failing();
        assert!(!moves_state(&subject, CheckOutcome::Skipped));
        // Recorded on its own (say its batch left it out), it still does not count as a pass.
        assert!(change_of_check(&subject, &check(CheckOutcome::Skipped)).unwrap().is_none());
    }

    #[test]
    fn a_passing_check_of_a_failed_integration_makes_it_active_with_an_audit_entry_and_an_event() {
        let subject = failing();
        assert!(moves_state(&subject, CheckOutcome::Degraded));
        let change = change_of_check(&subject, &check(CheckOutcome::Healthy)).unwrap().unwrap();
        let RowWrite::Update { row, expected_version } = &change.write else { panic!("{:?}", change.write) };
        assert_eq!((row.status, row.consecutive_failures, row.version, *expected_version), (Status::Active, 0, 8, 7));
        assert_eq!((change.audit.action, change.audit.actor.as_str()), (AuditAction::HealthChecked, SCHEDULER));
        assert_eq!(change.events.iter().map(|e| e.event_type).collect::<Vec<_>>(), [EventType::Healthy]);
        // Failing again changes its failure count, not its health: no event.
        let change = change_of_check(&subject, &check(CheckOutcome::Unhealthy)).unwrap().unwrap();
        assert!(change.events.is_empty());
    }
}
