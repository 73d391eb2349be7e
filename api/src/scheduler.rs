//! The health scheduler: checks every integration in service (`active`, `degraded`, `failed`, not
//! paused) every interval, through the sandbox, with bounded concurrency.
//!
//! Due checks are leased from the store, so several replicas on one PostgreSQL never run the same
//! check (`FOR UPDATE SKIP LOCKED`), and a crashed replica's checks are taken over when its lease
//! expires. Whatever a check finds, the next one is due a full interval later (with jitter, so
//! checks spread out): an integration that keeps failing or trapping is never checked more often,
//! and the sandbox's deadline bounds how long one check holds a worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::service::{Catalog, CheckRun};
use crate::store::{LeasedCheck, StoreError, unix_ms};

/// How the scheduler runs. The interval and offline mode are the catalog's
/// [`HealthPolicy`](crate::service::HealthPolicy).
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Checks running at once in this replica.
    pub concurrency: usize,
    /// How long a leased check is this replica's; must outlast the sandbox's deadline.
    pub lease: Duration,
    /// How long the history is kept.
    pub retention: Duration,
    /// How often due checks are looked for.
    pub poll: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(120),
            retention: Duration::from_secs(30 * 86_400),
            poll: Duration::from_secs(1),
        }
    }
}

/// One replica's scheduler.
#[derive(Debug)]
pub struct Scheduler {
    catalog: Arc<Catalog>,
    config: SchedulerConfig,
    /// This replica's name on its leases.
    owner: String,
    slots: Arc<Semaphore>,
}

impl SchedulerConfig {
    /// The scheduler's part of the `[health]` settings.
    pub fn from_settings(settings: &crate::config::HealthConfig) -> Self {
        Self {
            concurrency: settings.concurrency as usize,
            lease: Duration::from_secs(settings.lease_seconds),
            retention: Duration::from_secs(u64::from(settings.retention_days) * 86_400),
            ..Self::default()
        }
    }
}

impl Scheduler {
    /// A scheduler for the catalog's integrations.
    pub fn new(catalog: Arc<Catalog>, config: SchedulerConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self { catalog, config, owner: format!("replica-{}", &Uuid::new_v4().simple().to_string()[..12]), slots }
    }

    /// This replica's name, on its leases and on the checks it records.
    pub fn replica(&self) -> &str {
        &self.owner
    }

    /// Leases the checks due now, as many as there are free workers, and runs them to the end.
    /// Returns how many ran. (`run` does the same without waiting for the batch.)
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let mut running = JoinSet::new();
        let started = self.start_due(&mut running).await?;
        running.join_all().await;
        Ok(started)
    }

    /// Leases up to as many due checks as there are free workers and starts them in `running`,
    /// each holding a worker until it ends. Returns how many it started.
    async fn start_due(&self, running: &mut JoinSet<()>) -> Result<usize, StoreError> {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        if free == 0 {
            return Ok(0);
        }
        let now = unix_ms(crate::domain::now());
        let leased =
            self.catalog.store().lease_health_checks(&self.owner, now, millis(self.config.lease), free).await?;
        let started = leased.len();
        for check in leased {
            // Only this replica's loop takes workers, and it leased no more than were free.
            let permit = self.slots.clone().try_acquire_owned().expect("a free worker per leased check");
            let (catalog, owner) = (self.catalog.clone(), self.owner.clone());
            running.spawn(async move {
                let _permit = permit;
                run_one(&catalog, &owner, check).await;
            });
        }
        Ok(started)
    }

    /// Deletes history older than the retention.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let before = unix_ms(crate::domain::now()) - millis(self.config.retention);
        self.catalog.store().prune_health_checks(before).await
    }

    /// Runs until `shutdown` resolves, then stops the checks in flight (their leases expire and
    /// another replica takes them over).
    ///
    /// While every free worker found a due check, more may be due: the loop leases again as soon
    /// as half the workers are free (one query per batch, not per check). Otherwise it looks again
    /// after the poll interval. History is pruned hourly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut running = JoinSet::new();
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        let refill = self.config.concurrency.max(1).div_ceil(2);
        loop {
            while running.try_join_next().is_some() {}
            let free = self.slots.available_permits();
            let more_due = match self.start_due(&mut running).await {
                Ok(started) => started > 0 && started == free,
                Err(e) => {
                    tracing::warn!(error = %e, "health checks could not be leased");
                    false
                }
            };
            let workers_freed = async {
                while self.slots.available_permits() < refill {
                    if running.join_next().await.is_none() {
                        break;
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                _ = prune.tick() => match self.prune().await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "health history pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "health history could not be pruned"),
                },
                () = workers_freed, if more_due => {}
                () = tokio::time::sleep(self.config.poll), if !more_due => {}
            }
        }
    }
}

/// Runs one leased check and records it with the next due time: its interval (±10%) after the
/// check's recorded time (when it started), whatever it found.
async fn run_one(catalog: &Catalog, owner: &str, leased: LeasedCheck) {
    let LeasedCheck { tenant_id, integration_id } = leased;
    match catalog.health_check(&tenant_id, integration_id).await {
        Ok(Some(CheckRun { check, interval })) => {
            let next_due = unix_ms(check.checked_at) + jittered(millis(interval));
            match catalog.store().finish_health_check(owner, &tenant_id, integration_id, &check, next_due).await {
                Ok(true) => {}
                Ok(false) => tracing::info!(%integration_id, "a health check's lease was lost; not recorded"),
                Err(e) => tracing::warn!(%integration_id, error = %e, "a health check could not be recorded"),
            }
        }
        // Deleted, paused or taken out of service since it was leased: the lease expires and the
        // next lease skips it.
        Ok(None) => {}
        Err(e) => tracing::warn!(%integration_id, error = %e, "a health check failed"),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
}
