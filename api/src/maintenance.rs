//! The maintenance task: one loop per replica, whether or not the replica runs health checks,
//! that prunes every table that grows with time (the invocation ledger, the health history and its
//! hourly rollups, the event outbox, the console's sessions and spent sign-in links) by the configured retentions
//! ([`crate::service::Retention`]).
//!
//! Replicas share the task through a lease in the store: every replica asks every minute, the one
//! that takes the lease runs it, and the task is next due an hour after it finished, so replicas do
//! not repeat each other's work. A replica that dies while running it holds the lease for at most
//! [`LEASE`]; another then takes the task over. What the last run removed, and when it finished,
//! are in `/metrics` of the replica that ran it (`stella_maintenance_*`).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::service::{Catalog, Retention};

/// How the task runs.
#[derive(Clone, Debug)]
pub struct MaintenanceConfig {
    /// What each table keeps.
    pub retention: Retention,
    /// Time between the end of one run and the start of the next, across replicas.
    pub every: Duration,
    /// How often this replica asks whether the task is due.
    pub poll: Duration,
}

/// How long a run holds the task: far longer than a run takes (batched deletes of an hour's rows).
pub const LEASE: Duration = Duration::from_secs(15 * 60);

impl MaintenanceConfig {
    /// Hourly, polled every minute, with these retentions.
    pub fn hourly(retention: Retention) -> Self {
        Self { retention, every: Duration::from_secs(3600), poll: Duration::from_secs(60) }
    }
}

/// Runs until `shutdown` resolves: polls, and runs the task when this replica takes it.
pub async fn run(catalog: Arc<Catalog>, config: MaintenanceConfig, shutdown: impl std::future::Future<Output = ()>) {
    let owner = format!("replica-{}", &Uuid::new_v4().simple().to_string()[..12]);
    tokio::pin!(shutdown);
    let mut poll = tokio::time::interval(config.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A run stopped at shutdown stops between two statements (each batch is its own); its lease
    // expires and another replica runs the task.
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = async {
                poll.tick().await;
                run_once(&catalog, &owner, &config).await;
            } => {}
        }
    }
}

/// One poll: runs the task if it is due and this replica takes it, and records the run.
pub async fn run_once(catalog: &Catalog, owner: &str, config: &MaintenanceConfig) {
    match catalog.maintain(owner, &config.retention, LEASE, config.every).await {
        Ok(None) => {}
        Ok(Some(pruned)) => {
            catalog.metrics().record_maintenance(&pruned.by_table(), crate::domain::now());
            let total: u64 = pruned.by_table().iter().map(|(_, n)| n).sum();
            tracing::info!(
                invocations = pruned.invocations,
                health_checks = pruned.health_checks,
                health_hours = pruned.health_hours,
                events = pruned.events,
                console = pruned.console,
                idempotency_keys = pruned.idempotency_keys,
                partitions_made = pruned.partitions_made,
                total,
                "maintenance: pruned what the retentions no longer keep"
            );
        }
        Err(e) => {
            catalog.metrics().record_maintenance_failure();
            tracing::warn!(error = %e, "maintenance failed; it runs again when the lease expires");
        }
    }
}
