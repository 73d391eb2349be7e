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

use super::FinishedCheck;
use crate::domain::{Integration, duration_ms, now, unix_ms};
use crate::service::{Catalog, ServiceError};

/// How the scheduler runs. The interval and offline mode are the catalog's
/// [`HealthPolicy`](super::HealthPolicy).
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Checks running at once in this replica.
    pub concurrency: usize,
    /// How long a leased check is this replica's; must outlast the sandbox's deadline.
    pub lease: Duration,
    /// How often due checks are looked for.
    pub poll: Duration,
    /// How long running checks may finish at shutdown (the sandbox deadline and a margin).
    pub drain: Duration,
}

impl Default for SchedulerConfig {
    /// The `[health]` defaults, under the default sandbox deadline.
    fn default() -> Self {
        let deadline_ms = stella_runtime::SandboxConfig::default().limits.deadline_ms;
        Self::from_settings(&crate::config::HealthConfig::default(), deadline_ms)
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
    /// The scheduler's part of the `[health]` settings, with the sandbox's deadline.
    pub fn from_settings(settings: &crate::config::HealthConfig, deadline_ms: u64) -> Self {
        Self {
            concurrency: settings.concurrency as usize,
            lease: Duration::from_secs(settings.lease_seconds),
            poll: Duration::from_secs(1),
            drain: Duration::from_millis(deadline_ms) + Duration::from_secs(5),
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
    pub async fn run_due(&self) -> Result<usize, ServiceError> {
        self.catalog.schedule_health_checks(unix_ms(now())).await?;
        let mut running = JoinSet::new();
        let started = self.start_due(&mut running).await?;
        let mut finished: Vec<FinishedCheck> = running.join_all().await.into_iter().flatten().collect();
        self.record(&mut finished).await;
        Ok(started)
    }

    /// Records the checks that moved nothing, in one transaction. One whose integration changed
    /// since it was leased is recorded on its own, against the integration as it is now (the
    /// check may move it after all).
    async fn record(&self, finished: &mut Vec<FinishedCheck>) {
        if finished.is_empty() {
            return;
        }
        let recorded = match self.catalog.record_unchanged_checks(&self.owner, finished).await {
            Ok(recorded) => recorded,
            // One at a time instead: one check the database refuses must not take the batch
            // with it.
            Err(e) => {
                tracing::warn!(error = %e, checks = finished.len(), "a batch of health checks failed; recording them one by one");
                vec![]
            }
        };
        for f in finished.iter().filter(|f| !recorded.contains(&f.integration_id)) {
            record_one(&self.catalog, &self.owner, f).await;
        }
        finished.clear();
    }

    /// Leases up to as many due checks as there are free workers and starts them in `running`,
    /// each holding a worker until it ends. Returns how many it started.
    async fn start_due(&self, running: &mut JoinSet<Option<FinishedCheck>>) -> Result<usize, ServiceError> {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        if free == 0 {
            return Ok(0);
        }
        let leased =
            self.catalog.lease_health_checks(&self.owner, unix_ms(now()), duration_ms(self.config.lease), free).await?;
        let started = leased.len();
        for subject in leased {
            // Only this replica's loop takes workers, and it leased no more than were free; should
            // that ever change, the check waits for a worker (its lease covers the wait).
            let permit = match self.slots.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => self.slots.clone().acquire_owned().await.expect("the semaphore is never closed"),
            };
            let (catalog, owner) = (self.catalog.clone(), self.owner.clone());
            running.spawn(async move {
                let _permit = permit;
                run_one(&catalog, &owner, subject).await
            });
        }
        Ok(started)
    }

    /// Runs until `shutdown` resolves, then stops leasing and lets the checks in flight finish
    /// (the sandbox deadline bounds them; after the lease time they are dropped unrecorded, and
    /// another replica takes them over when their leases expire).
    ///
    /// While every free worker found a due check, more may be due: the loop leases again as soon
    /// as half the workers are free (one query per batch, not per check). Otherwise it looks again
    /// after the poll interval. (What the checks leave behind is pruned by [`crate::maintenance`],
    /// which runs whether or not a replica checks.)
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut running = JoinSet::new();
        let mut finished = Vec::new();
        let refill = self.config.concurrency.max(1).div_ceil(2);
        let mut scheduled_at: Option<tokio::time::Instant> = None;
        loop {
            while let Some(done) = running.try_join_next() {
                finished.extend(checked(done));
            }
            // Whatever finished since the last turn, in one transaction: many under load, one at
            // a time when quiet.
            self.record(&mut finished).await;
            if scheduled_at.is_none_or(|at| at.elapsed() >= self.config.poll) {
                scheduled_at = Some(tokio::time::Instant::now());
                if let Err(e) = self.catalog.schedule_health_checks(unix_ms(now())).await {
                    tracing::warn!(error = %e, "new integrations could not be scheduled for health checks");
                }
            }
            let free = self.slots.available_permits();
            let more_due = match self.start_due(&mut running).await {
                Ok(started) => started > 0 && started == free,
                Err(e) => {
                    tracing::warn!(error = %e, "health checks could not be leased");
                    false
                }
            };
            // While every free worker found a due check, more may be due: lease again once half
            // the workers are free. Otherwise wake for the next finished check or the next poll.
            let next_turn = async {
                if more_due {
                    while self.slots.available_permits() < refill {
                        match running.join_next().await {
                            Some(done) => finished.extend(checked(done)),
                            None => break,
                        }
                    }
                } else {
                    tokio::select! {
                        Some(done) = running.join_next() => finished.extend(checked(done)),
                        () = tokio::time::sleep(poll_wait(self.config.poll)) => {}
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = next_turn => {}
            }
        }
        let drain = async {
            while let Some(done) = running.join_next().await {
                finished.extend(checked(done));
            }
        };
        if tokio::time::timeout(self.config.drain.min(self.config.lease), drain).await.is_err() {
            tracing::warn!("health checks still running at shutdown were stopped; their leases will expire");
        }
        self.record(&mut finished).await;
    }
}

/// Runs one leased check. A check that moves its integration's state is recorded here, with its
/// change; the others are answered, to be recorded together.
async fn run_one(catalog: &Catalog, owner: &str, subject: Integration) -> Option<FinishedCheck> {
    let made = catalog.make_health_check(&subject).await?;
    if !made.moves_state {
        return Some(made.finished);
    }
    record_one(catalog, owner, &made.finished).await;
    None
}

/// Records one check on its own (it moves its integration, or missed its batch), logging a
/// lease lost meanwhile or a failure.
async fn record_one(catalog: &Catalog, owner: &str, finished: &FinishedCheck) {
    let integration_id = finished.integration_id;
    match catalog.record_health_check(owner, finished).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(%integration_id, "a health check's lease was lost; not recorded"),
        Err(e) => tracing::warn!(%integration_id, error = %e, "a health check could not be recorded"),
    }
}

/// The poll interval, anywhere from half to one and a half of it: replicas started together do
/// not stay in step, where the first to poll would take every check that comes due.
fn poll_wait(poll: Duration) -> Duration {
    poll.mul_f64(0.5 + f64::from(Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX))
}

/// A check task's answer; a panic is logged (its lease expires and the check runs again).
fn checked(done: Result<Option<FinishedCheck>, tokio::task::JoinError>) -> Option<FinishedCheck> {
    match done {
        Ok(finished) => finished,
        Err(e) => {
            if e.is_panic() {
                tracing::error!("a health check panicked");
            }
            None
        }
    }
}
