//! One health check: what it found, and what it changes of its integration.

use serde::{Deserialize, Serialize};
use serde_json::json;
use stella_runtime::{FailureClass, HealthStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{AuditAction, AuditDraft, SCHEDULER};
use crate::domain::Integration;
use crate::events::{EventDraft, EventType};
use crate::lifecycle::{self, Event, Lifecycle};
use crate::store::{Change, RowWrite};

/// What a health check found: the connector's [`HealthStatus`], or no check at all.
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
    /// Every outcome.
    pub const ALL: [CheckOutcome; 4] = [Self::Healthy, Self::Degraded, Self::Unhealthy, Self::Skipped];

    /// The name used in JSON, in metrics and in the database.
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
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the check passed (healthy and degraded pass, unhealthy fails); `None` when no
    /// check was made, which moves nothing.
    pub fn passed(self) -> Option<bool> {
        match self {
            Self::Healthy | Self::Degraded => Some(true),
            Self::Unhealthy => Some(false),
            Self::Skipped => None,
        }
    }
}

impl From<HealthStatus> for CheckOutcome {
    fn from(status: HealthStatus) -> Self {
        match status {
            HealthStatus::Healthy => Self::Healthy,
            HealthStatus::Degraded => Self::Degraded,
            HealthStatus::Unhealthy => Self::Unhealthy,
        }
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
    #[schema(value_type = Option<String>)]
    pub failure_class: Option<FailureClass>,
    /// How long the check took, in milliseconds.
    pub latency_ms: u64,
    /// What the connector said.
    pub message: String,
    /// The replica that made it (its scheduler's name, logged at start); filled in by the store
    /// from the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

impl HealthCheck {
    /// A check made now (its id new, no replica yet).
    pub fn new(
        checked_at: OffsetDateTime,
        outcome: CheckOutcome,
        failure_class: Option<FailureClass>,
        latency_ms: u64,
        message: String,
    ) -> Self {
        Self { check_id: Uuid::new_v4(), checked_at, outcome, failure_class, latency_ms, message, replica: None }
    }
}

/// A health check made under a lease, to record with the next due time.
#[derive(Clone, Debug)]
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
    /// The check's ledger entry (none when no connector ran), kept with the check.
    pub invocation: Option<Box<crate::ledger::LedgerEntry>>,
}

/// A scheduled health check, made and not yet recorded.
#[derive(Clone, Debug)]
pub struct MadeCheck {
    /// The check and the next due time, to record.
    pub finished: FinishedCheck,
    /// Whether it changes the integration's lifecycle or health (then it is recorded on its own,
    /// with an audit entry and maybe an event; otherwise with others in one transaction).
    pub moves_state: bool,
}

/// The lifecycle after a test or check that `passed`, when it moves the integration (its
/// lifecycle or its health); `None` when it changes nothing.
pub fn lifecycle_after_check(current: &Integration, passed: bool) -> Result<Option<Lifecycle>, lifecycle::Conflict> {
    let next = lifecycle::apply(&current.lifecycle(), &Event::Checked { passed })?;
    let moves = next != current.lifecycle() || current.last_test_success != Some(passed);
    Ok(moves.then_some(next))
}

/// Whether a check moves its integration's state, so that it must be recorded on its own. A
/// check the lifecycle refuses goes that way too, which reports why.
pub fn moves_state(subject: &Integration, outcome: CheckOutcome) -> bool {
    match outcome.passed() {
        None => false,
        Some(passed) => lifecycle_after_check(subject, passed).map_or(true, |next| next.is_some()),
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
