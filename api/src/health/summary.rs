//! What `GET /api/v1/integrations/{id}/health` answers: the integration's health as its last test
//! or check left it, uptime and latency from its hourly rollups ([`HealthHour`]), and a page of
//! its history (the checks of the last `health.history-hours`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::check::{CheckOutcome, HealthCheck};
use crate::domain::TestRun;
use crate::domain::{DAY_MS, HOUR_MS, unix_ms};
use crate::lifecycle::Status;

/// One integration's checks in one hour, as uptime and latency are computed from them: kept for
/// `health.retention-days`, when the checks themselves are kept only `health.history-hours`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthHour {
    /// The hour's start (Unix ms).
    pub hour_ms: i64,
    /// Checks made (not `skipped`).
    pub made: u64,
    /// Of those, how many found it working (`healthy` or `degraded`).
    pub working: u64,
    /// Checks skipped (offline mode).
    pub skipped: u64,
    /// The latencies of the checks made.
    pub latency: crate::metrics::LatencyHistogram,
}

impl HealthHour {
    /// The hour of one check, counting it.
    pub fn of(check: &HealthCheck) -> Self {
        let mut hour = Self { hour_ms: unix_ms(check.checked_at).div_euclid(HOUR_MS) * HOUR_MS, ..Self::default() };
        if check.outcome == CheckOutcome::Skipped {
            hour.skipped = 1;
        } else {
            hour.made = 1;
            hour.working = u64::from(check.outcome != CheckOutcome::Unhealthy);
            hour.latency.record(check.latency_ms);
        }
        hour
    }

    /// Adds `other`'s checks (of the same integration and hour) to these.
    pub fn merge(&mut self, other: &HealthHour) {
        self.made += other.made;
        self.working += other.working;
        self.skipped += other.skipped;
        self.latency.merge(&other.latency);
    }
}

/// Whether an integration works, as its last test or check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HealthState {
    /// The last test or check passed.
    Healthy,
    /// It failed.
    Unhealthy,
    /// Never tested.
    Unknown,
}

impl HealthState {
    /// The health of an integration whose last test or check passed (or not, or never ran).
    pub fn of(last_test_success: Option<bool>) -> Self {
        match last_test_success {
            Some(true) => Self::Healthy,
            Some(false) => Self::Unhealthy,
            None => Self::Unknown,
        }
    }

    /// Every health.
    pub const ALL: [HealthState; 3] = [Self::Healthy, Self::Unhealthy, Self::Unknown];

    /// The name used in JSON and in query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a name [`Self::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// The health of an integration: as its last test or check left it, its uptime and latency, and
/// its recent health checks. (`Health` in the OpenAPI document, as it has always been named.)
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Health)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// The integration.
    pub integration_id: Uuid,
    /// `healthy` (the last test or check passed), `unhealthy` (it failed) or `unknown` (never
    /// tested).
    pub health: HealthState,
    /// Its lifecycle status.
    pub status: Status,
    /// Whether an operator paused it.
    pub paused: bool,
    /// Checks failed in a row.
    pub consecutive_failures: u32,
    /// Seconds between two scheduled health checks: its `healthCheckInterval`, else the service's
    /// default.
    pub check_interval_seconds: u64,
    /// Whether the service runs in offline mode, where scheduled checks make no network request
    /// and are recorded as `skipped` (except of a feed whose `mirrorHosts` names its base URL's
    /// host: that mirror is inside the site, and is checked).
    pub offline: bool,
    /// When it was last tested.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_tested_at: Option<time::OffsetDateTime>,
    /// The last test, with the sandbox's record of it.
    pub last_test: Option<TestRun>,
    /// The last scheduled health check.
    pub last_check: Option<HealthCheck>,
    /// Uptime over 24 h, 7 d and 30 d and latency percentiles over 24 h, from the checks.
    pub summary: HealthSummary,
    /// Health checks, newest first (a page: `limit`, then `before`).
    pub history: Vec<HealthCheck>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A position in an integration's health history, newest first: the page starts strictly after
/// (older than) this check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryCursor {
    /// When the check ran (Unix ms).
    pub checked_ms: i64,
    /// The check.
    pub check_id: Uuid,
}

impl HistoryCursor {
    /// The cursor after this check.
    pub fn after(check: &HealthCheck) -> Self {
        Self { checked_ms: unix_ms(check.checked_at), check_id: check.check_id }
    }
}

/// Uptime and latency of an integration, from its health history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    /// Share of the checks of the last 24 hours that found it working (`healthy` or `degraded`),
    /// 0 to 1; skipped checks do not count; null without checks. Counted by the hour: the window
    /// is every hour that overlaps the last 24 hours (so up to 25 hours of checks).
    pub uptime_24h: Option<f64>,
    /// The same over 7 days.
    pub uptime_7d: Option<f64>,
    /// The same over 30 days.
    pub uptime_30d: Option<f64>,
    /// Median latency of the checks of the last 24 hours, in milliseconds: the upper bound of the
    /// histogram bucket it falls in (buckets about twice the last, from 5 ms), so never below the
    /// true value and at most about twice it.
    pub latency_p50_ms: Option<u64>,
    /// 95th percentile latency of the checks of the last 24 hours, in milliseconds (as the median).
    pub latency_p95_ms: Option<u64>,
}

/// Uptime over 24 h, 7 d and 30 d before `now_ms`, latency percentiles over 24 h, from the
/// integration's hours (each counted whole when it overlaps the window).
pub fn summarize(hours: &[HealthHour], now_ms: i64) -> HealthSummary {
    let within = |days: i64| hours.iter().filter(move |h| h.hour_ms > now_ms - days * DAY_MS - HOUR_MS);
    let uptime = |days: i64| {
        let (up, made) = within(days).fold((0, 0), |(up, made), h| (up + h.working, made + h.made));
        (made > 0).then(|| up as f64 / made as f64)
    };
    let mut day = crate::metrics::LatencyHistogram::default();
    for h in within(1) {
        day.merge(&h.latency);
    }
    HealthSummary {
        uptime_24h: uptime(1),
        uptime_7d: uptime(7),
        uptime_30d: uptime(30),
        latency_p50_ms: day.quantile(0.50),
        latency_p95_ms: day.quantile(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_unix_ms;

    fn check(hours_ago: i64, outcome: CheckOutcome, latency_ms: u64, now_ms: i64) -> HealthCheck {
        HealthCheck::new(from_unix_ms(now_ms - hours_ago * 3_600_000), outcome, None, latency_ms, String::new())
    }

    #[test]
    fn uptime_counts_working_checks_per_window_and_latency_uses_the_last_day() {
        let now = 1_800_000_000_000;
        let checks = vec![
            check(1, CheckOutcome::Healthy, 10, now),
            check(2, CheckOutcome::Degraded, 30, now),
            check(3, CheckOutcome::Unhealthy, 20, now),
            check(4, CheckOutcome::Skipped, 999, now),
            check(48, CheckOutcome::Unhealthy, 500, now),
            check(24 * 20, CheckOutcome::Healthy, 700, now),
            check(24 * 40, CheckOutcome::Unhealthy, 900, now),
        ];
        // Rolled up by the hour, as the store keeps them.
        let mut hours: Vec<HealthHour> = Vec::new();
        for c in &checks {
            let hour = HealthHour::of(c);
            match hours.iter_mut().find(|h| h.hour_ms == hour.hour_ms) {
                Some(h) => h.merge(&hour),
                None => hours.push(hour),
            }
        }
        let s = summarize(&hours, now);
        assert_eq!(s.uptime_24h, Some(2.0 / 3.0));
        assert_eq!(s.uptime_7d, Some(2.0 / 4.0));
        assert_eq!(s.uptime_30d, Some(3.0 / 5.0));
        // 10, 20 and 30 ms: the median in the 20 ms bucket, the 95th percentile in the 50 ms one,
        // clamped to the slowest seen.
        assert_eq!((s.latency_p50_ms, s.latency_p95_ms), (Some(20), Some(30)));
        assert_eq!(summarize(&[], now), HealthSummary::default());
        let skipped = HealthHour::of(&checks[3]);
        assert_eq!((skipped.made, skipped.skipped, skipped.latency.count), (0, 1, 0));
    }
}
