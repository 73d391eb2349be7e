//! The lifecycle of an integration: one pure function of (state, event), and the only code that
//! changes `status`, `paused`, `pauseReason`, `pauseTicket` or `consecutiveFailures`.
//!
//! ```text
//! draft ──activate──▶ pending-verification ──test passed──▶ active ◀──────────┐
//!                                                            │  ▲             │
//!                                        3 failures in a row │  │ passed      │ resume
//!                                                            ▼  │             │
//!                                                        degraded ──pause──▶ paused
//!                                        5 failures in a row │  ▲             ▲
//!                                                            ▼  │ passed      │
//!                                                          failed ──pause─────┘
//! ```

use serde::{Deserialize, Serialize};

/// Consecutive failures at which an active integration becomes `degraded`.
pub const DEGRADED_AFTER: u32 = 3;
/// Consecutive failures at which it becomes `failed`.
pub const FAILED_AFTER: u32 = 5;

/// Where an integration is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Created, not yet submitted for verification.
    Draft,
    /// Submitted; becomes active on its first passing connection test.
    PendingVerification,
    /// Verified and passing.
    Active,
    /// Active, but its last 3 or 4 checks failed.
    Degraded,
    /// Active, but its last 5 or more checks failed.
    Failed,
    /// Taken out of service by an operator.
    Paused,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] =
        [Self::Draft, Self::PendingVerification, Self::Active, Self::Degraded, Self::Failed, Self::Paused];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingVerification => "pending-verification",
            Self::Active => "active",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Paused => "paused",
        }
    }

    /// Parses the name used in JSON and in the database.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the integration is in service (checked by the scheduler, counted for health).
    pub fn in_service(self) -> bool {
        matches!(self, Self::Active | Self::Degraded | Self::Failed)
    }

    /// What may be done from this status.
    pub fn allowed(self) -> &'static [Action] {
        match self {
            Self::Draft => &[Action::Activate, Action::Test],
            Self::PendingVerification => &[Action::Test],
            Self::Active | Self::Degraded | Self::Failed => &[Action::Test, Action::Pause],
            Self::Paused => &[Action::Test, Action::Resume],
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle actions an operator can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `POST /{id}/activate`.
    Activate,
    /// `POST /{id}/test`.
    Test,
    /// `POST /{id}/pause`.
    Pause,
    /// `POST /{id}/resume`.
    Resume,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 4] = [Self::Activate, Self::Test, Self::Pause, Self::Resume];

    /// The action a path segment names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The action's name as it appears in the API path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Test => "test",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

/// The lifecycle fields of an integration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// Current status.
    pub status: Status,
    /// Whether an operator paused it (true exactly when `status` is `paused`).
    pub paused: bool,
    /// Why it was paused.
    pub pause_reason: Option<String>,
    /// The ticket that tracks the pause.
    pub pause_ticket: Option<String>,
    /// Checks failed in a row while in service.
    pub consecutive_failures: u32,
}

impl Lifecycle {
    /// A new integration: `draft`.
    pub fn new() -> Self {
        Self { status: Status::Draft, paused: false, pause_reason: None, pause_ticket: None, consecutive_failures: 0 }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

/// What happened to an integration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An operator submitted it for verification (the connection test follows).
    Activate,
    /// A connection test or health check finished.
    Checked {
        /// Whether it passed.
        passed: bool,
    },
    /// An operator paused it.
    Pause {
        /// Why.
        reason: String,
        /// The tracking ticket.
        ticket: Option<String>,
    },
    /// An operator resumed it.
    Resume,
}

impl Event {
    /// The operator action this event answers to.
    pub fn action(&self) -> Action {
        match self {
            Self::Activate => Action::Activate,
            Self::Checked { .. } => Action::Test,
            Self::Pause { .. } => Action::Pause,
            Self::Resume => Action::Resume,
        }
    }
}

/// An action the current status does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an integration that is {status}; allowed: {}", action.as_str(), allowed_list(*status))]
pub struct Conflict {
    /// The status the integration is in.
    pub status: Status,
    /// What was asked.
    pub action: Action,
}

impl Conflict {
    /// What the status allows instead.
    pub fn allowed(&self) -> &'static [Action] {
        self.status.allowed()
    }
}

fn allowed_list(status: Status) -> String {
    let names: Vec<&str> = status.allowed().iter().map(|a| a.as_str()).collect();
    names.join(", ")
}

/// The lifecycle after `event`, or the conflict that forbids it.
pub fn apply(current: &Lifecycle, event: &Event) -> Result<Lifecycle, Conflict> {
    let conflict = || Conflict { status: current.status, action: event.action() };
    let mut next = current.clone();
    match (current.status, event) {
        (Status::Draft, Event::Activate) => next.status = Status::PendingVerification,
        (_, Event::Activate) => return Err(conflict()),

        // A test may run in any state; it moves only a verifying or in-service integration.
        (Status::Draft | Status::Paused, Event::Checked { .. }) => {}
        (Status::PendingVerification, Event::Checked { passed }) => {
            if *passed {
                next.status = Status::Active;
                next.consecutive_failures = 0;
            }
        }
        (Status::Active | Status::Degraded | Status::Failed, Event::Checked { passed }) => {
            next.consecutive_failures = if *passed { 0 } else { current.consecutive_failures.saturating_add(1) };
            next.status = match next.consecutive_failures {
                n if n >= FAILED_AFTER => Status::Failed,
                n if n >= DEGRADED_AFTER => Status::Degraded,
                _ => Status::Active,
            };
        }

        (Status::Active | Status::Degraded | Status::Failed, Event::Pause { reason, ticket }) => {
            next.status = Status::Paused;
            next.paused = true;
            next.pause_reason = Some(reason.clone());
            next.pause_ticket = ticket.clone();
        }
        (_, Event::Pause { .. }) => return Err(conflict()),

        (Status::Paused, Event::Resume) => {
            next = Lifecycle::new();
            next.status = Status::Active;
        }
        (_, Event::Resume) => return Err(conflict()),
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: Status, failures: u32) -> Lifecycle {
        let mut l = Lifecycle { status, consecutive_failures: failures, ..Lifecycle::new() };
        if status == Status::Paused {
            l.paused = true;
            l.pause_reason = Some("maintenance".into());
            l.pause_ticket = Some("OPS-1".into());
        }
        l
    }

    fn events() -> Vec<Event> {
        vec![
            Event::Activate,
            Event::Checked { passed: true },
            Event::Checked { passed: false },
            Event::Pause { reason: "upgrade".into(), ticket: Some("CHG-7".into()) },
            Event::Resume,
        ]
    }

    /// The expected outcome of every (status, event) pair, written out by hand from the issue.
    fn expected(from: &Lifecycle, event: &Event) -> Result<(Status, u32), ()> {
        use Status::*;
        let f = from.consecutive_failures;
        let in_service_after = |n: u32| {
            if n >= 5 {
                Failed
            } else if n >= 3 {
                Degraded
            } else {
                Active
            }
        };
        match (from.status, event) {
            (Draft, Event::Activate) => Ok((PendingVerification, f)),
            (_, Event::Activate) => Err(()),
            (Draft, Event::Checked { .. }) => Ok((Draft, f)),
            (Paused, Event::Checked { .. }) => Ok((Paused, f)),
            (PendingVerification, Event::Checked { passed: true }) => Ok((Active, 0)),
            (PendingVerification, Event::Checked { passed: false }) => Ok((PendingVerification, f)),
            (Active | Degraded | Failed, Event::Checked { passed: true }) => Ok((Active, 0)),
            (Active | Degraded | Failed, Event::Checked { passed: false }) => Ok((in_service_after(f + 1), f + 1)),
            (Active | Degraded | Failed, Event::Pause { .. }) => Ok((Paused, f)),
            (_, Event::Pause { .. }) => Err(()),
            (Paused, Event::Resume) => Ok((Active, 0)),
            (_, Event::Resume) => Err(()),
        }
    }

    #[test]
    fn every_status_and_event_pair_behaves_as_specified() {
        let mut pairs = 0;
        for status in Status::ALL {
            for failures in [0, 1, 2, 3, 4, 5, 9] {
                let from = at(status, failures);
                for event in events() {
                    pairs += 1;
                    let got = apply(&from, &event);
                    match expected(&from, &event) {
                        Ok((status, failures)) => {
                            let next = got.unwrap_or_else(|c| panic!("{from:?} + {event:?}: unexpected {c}"));
                            assert_eq!(
                                (next.status, next.consecutive_failures),
                                (status, failures),
                                "{from:?} + {event:?}"
                            );
                            assert_eq!(next.paused, status == Status::Paused, "{from:?} + {event:?}");
                            if status != Status::Paused {
                                assert_eq!(
                                    (next.pause_reason, next.pause_ticket),
                                    (None, None),
                                    "{from:?} + {event:?}"
                                );
                            }
                            assert!(event.action() == Action::Test || from.status.allowed().contains(&event.action()));
                        }
                        Err(()) => {
                            let conflict = got.expect_err("a conflict");
                            assert_eq!(conflict.status, from.status);
                            assert_eq!(conflict.action, event.action());
                            assert!(!from.status.allowed().contains(&event.action()), "{from:?} + {event:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(pairs, 6 * 7 * 5);
    }

    #[test]
    fn a_pause_keeps_its_reason_and_ticket_and_a_resume_clears_them() {
        let paused =
            apply(&at(Status::Degraded, 3), &Event::Pause { reason: "vendor outage".into(), ticket: None }).unwrap();
        assert_eq!(paused.pause_reason.as_deref(), Some("vendor outage"));
        assert_eq!(paused.pause_ticket, None);
        assert_eq!(paused.consecutive_failures, 3);
        let resumed = apply(&paused, &Event::Resume).unwrap();
        assert_eq!(resumed, Lifecycle { status: Status::Active, ..Lifecycle::new() });
    }

    #[test]
    fn failures_walk_active_to_degraded_to_failed_and_one_success_recovers() {
        let mut l = at(Status::Active, 0);
        let mut seen = vec![];
        for _ in 0..6 {
            l = apply(&l, &Event::Checked { passed: false }).unwrap();
            seen.push(l.status);
        }
        use Status::*;
        assert_eq!(seen, [Active, Active, Degraded, Degraded, Failed, Failed]);
        l = apply(&l, &Event::Checked { passed: true }).unwrap();
        assert_eq!((l.status, l.consecutive_failures), (Active, 0));
    }

    #[test]
    fn a_conflict_names_the_state_and_the_allowed_actions() {
        let err = apply(&at(Status::Draft, 0), &Event::Resume).unwrap_err();
        assert_eq!(err.to_string(), "cannot resume an integration that is draft; allowed: activate, test");
        assert_eq!(Status::parse("pending-verification"), Some(Status::PendingVerification));
        assert_eq!(Status::parse("Paused"), None);
    }
}
