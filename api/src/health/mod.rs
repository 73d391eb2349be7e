//! Health: every integration in service is checked every interval through its connector's
//! `check-health`, and its history, uptime and latency are kept.
//!
//! - [`policy`]: when a check is due, and whether it may use the network (offline sites);
//! - [`check`]: one check, what it found and what it changes of its integration (lifecycle,
//!   audit entry, event);
//! - [`summary`]: what `GET /{id}/health` answers (uptime, latency, a page of history);
//! - [`scheduler`]: the loop that leases due checks, runs them through the catalog and records them.
//!
//! One type per concept:
//!
//! | type | what it is |
//! |---|---|
//! | [`stella_runtime::HealthStatus`] | what a connector's `check-health` answered: healthy, degraded, unhealthy |
//! | [`stella_runtime::HealthOutcome`] | the connector's whole answer (status, failure class, latency, message) |
//! | [`CheckOutcome`] | what a scheduled check found: a connector's status, or `skipped` (offline) |
//! | [`HealthCheck`] | one check as the history keeps it |
//! | [`HealthHour`] | one integration's checks in one hour: the rollup uptime and latency are computed from |
//! | [`HealthSummary`] | uptime and latency computed from the hourly rollups |
//! | [`HealthState`] | whether an integration works, as its last test or check found |
//! | [`HealthReport`] | the answer of `GET /{id}/health`: all of the above for one integration |
//!
//! The catalog runs and records checks ([`crate::service::Catalog::make_health_check`] and the
//! other health operations in `service/health.rs`), so that the scheduler, like every other
//! caller, reaches the data only through the service. Their SQL is in `store/health.rs`.

pub mod check;
pub mod policy;
pub mod scheduler;
pub mod summary;

pub use check::{CheckOutcome, FinishedCheck, HealthCheck, MadeCheck};
pub use policy::HealthPolicy;
pub use scheduler::{Scheduler, SchedulerConfig};
pub use summary::{HealthHour, HealthReport, HealthState, HealthSummary, HistoryCursor};
