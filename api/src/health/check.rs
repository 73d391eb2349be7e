//! One health check: what it found, and whether it moves its integration (the change it writes
//! is built by the service: `service/health.rs`).

use serde::{Deserialize, Serialize};
use stella_runtime::{FailureClass, HealthStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Integration;
use crate::lifecycle::{self, Event, Lifecycle};

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
    /// Whether its entry may be folded into its hour's summary, should it repeat the integration's
    /// previous check (the store compares the digests): a healthy check that was refused nothing,
    /// used no secret's value, signed nothing and moves nothing, where `[ledger]` allows it.
    pub foldable: bool,
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
