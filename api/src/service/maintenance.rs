//! The maintenance task's work: every table that grows with time, pruned by its retention, under
//! a lease that replicas share ([`crate::store::MaintenanceStore`]). The loop that runs it, and
//! its metrics, are [`crate::maintenance`].

use std::time::Duration;

use time::OffsetDateTime;

use super::{Catalog, ServiceError};
use crate::config::Config;
use crate::domain::{duration_ms, now, unix_ms};

/// The task's name in the store.
const TASK: &str = "prune";

/// How long each table keeps its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The invocation ledger (`ledger.retention-days`).
    pub ledger: Duration,
    /// Each health check (`health.history-hours`).
    pub health_checks: Duration,
    /// The health history's hourly rollups (`health.retention-days`).
    pub health_hours: Duration,
    /// An event the broker acknowledged (`events.delivered-retention-days`).
    pub delivered_events: Duration,
    /// Any event, delivered or not, when there is no broker (`events.retention-days`); `None`
    /// with a broker: an undelivered event then stays until the broker has it.
    pub undelivered_events: Option<Duration>,
}

/// How long an `Idempotency-Key` is remembered: a client retrying a request after a day makes a
/// new one (as Stripe's keys, which expire after 24 hours).
pub const IDEMPOTENCY_KEYS_KEPT: Duration = Duration::from_secs(24 * 3600);

impl Retention {
    /// The retentions the configuration sets.
    pub fn of(config: &Config) -> Self {
        let days = |d: u32| Duration::from_secs(u64::from(d) * 86_400);
        Self {
            ledger: days(config.ledger.retention_days),
            health_checks: Duration::from_secs(u64::from(config.health.history_hours) * 3600),
            health_hours: days(config.health.retention_days),
            delivered_events: days(config.events.delivered_retention_days),
            undelivered_events: config.events.nats_url.is_none().then(|| days(config.events.retention_days)),
        }
    }
}

/// What one run removed, by table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Invocation ledger entries.
    pub invocations: u64,
    /// Health checks of the history.
    pub health_checks: u64,
    /// Hourly rollups of the health history.
    pub health_hours: u64,
    /// Events of the outbox.
    pub events: u64,
    /// Ended console sessions and expired spent sign-in links.
    pub console: u64,
    /// `Idempotency-Key`s older than [`IDEMPOTENCY_KEYS_KEPT`].
    pub idempotency_keys: u64,
    /// Day partitions made ahead (PostgreSQL).
    pub partitions_made: u64,
}

impl Pruned {
    /// (table, rows removed), as the metrics and the log name them.
    pub fn by_table(&self) -> [(&'static str, u64); 6] {
        [
            ("invocations", self.invocations),
            ("health_checks", self.health_checks),
            ("health_hours", self.health_hours),
            ("events", self.events),
            ("console", self.console),
            ("idempotency_keys", self.idempotency_keys),
        ]
    }
}

impl Catalog {
    /// Runs the maintenance task if it is due and no other replica runs it: takes the lease for
    /// `owner` (held for `lease`), prunes every table, and makes the task due again `every` later.
    /// `None`: not due, or another replica has it.
    pub async fn maintain(
        &self,
        owner: &str,
        retention: &Retention,
        lease: Duration,
        every: Duration,
    ) -> Result<Option<Pruned>, ServiceError> {
        let started = unix_ms(now());
        if !self.store.take_maintenance(TASK, owner, started, started + duration_ms(lease)).await? {
            return Ok(None);
        }
        let pruned = self.prune_all(retention, now()).await?;
        let finished = unix_ms(now());
        if !self.store.finish_maintenance(TASK, owner, finished, finished + duration_ms(every)).await? {
            tracing::warn!(owner, "the maintenance lease expired while the task ran; another replica took it over");
        }
        Ok(Some(pruned))
    }

    /// Makes the day partitions of the tables that grow with time from the day of `at_ms` to
    /// [`crate::store::PARTITION_DAYS_AHEAD`] days later (PostgreSQL); returns how many it made.
    pub async fn make_partitions(&self, at_ms: i64) -> Result<u64, ServiceError> {
        Ok(self.store.make_partitions(at_ms).await?)
    }

    /// Prunes every table as of `at` by `retention`, without the lease (the task's work).
    pub async fn prune_all(&self, retention: &Retention, at: OffsetDateTime) -> Result<Pruned, ServiceError> {
        let at_ms = unix_ms(at);
        // Tomorrow's partitions before anything else: a write never waits for them (a row
        // without its day's partition goes to the default one), but retention is free only for
        // rows in one.
        let partitions_made = self.make_partitions(at_ms).await?;
        let invocations = self.store.prune_invocations(at_ms - duration_ms(retention.ledger)).await?;
        let health_checks = self.store.prune_health_checks(at_ms - duration_ms(retention.health_checks)).await?;
        let health_hours = self.store.prune_health_hours(at_ms - duration_ms(retention.health_hours)).await?;
        let written_before = match retention.undelivered_events {
            Some(kept) => at - kept,
            None => OffsetDateTime::UNIX_EPOCH,
        };
        let events = self.store.prune_events(at - retention.delivered_events, written_before).await?;
        let console = self.store.prune_console(at_ms).await?;
        let idempotency_keys = self.store.prune_idempotency_keys(at - IDEMPOTENCY_KEYS_KEPT).await?;
        Ok(Pruned { invocations, health_checks, health_hours, events, console, idempotency_keys, partitions_made })
    }
}
