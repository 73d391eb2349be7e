//! When integrations are checked, and whether the network may be used for it: the catalog's part
//! of the `[health]` settings.

use std::time::Duration;

use stella_runtime::IntegrationType;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Integration, duration_ms, unix_ms};

/// How integrations are health-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Time between two checks of an integration without its own `healthCheckInterval`.
    pub default_interval: Duration,
    /// Offline site: no network check is made, except of a feed mirror inside the site.
    pub offline: bool,
    /// In an offline site, the mirror hosts inside it (lower-case): the operator's list, so no
    /// tenant can open a network check by naming a host in its own configuration.
    pub offline_mirror_hosts: Vec<String>,
}

impl HealthPolicy {
    /// The catalog's part of the `[health]` settings.
    pub fn from_settings(settings: &crate::config::HealthConfig) -> Self {
        Self {
            default_interval: Duration::from_secs(settings.interval_seconds),
            offline: settings.offline,
            offline_mirror_hosts: settings.offline_mirror_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    /// The time between two health checks of this integration: its own, else the default.
    pub fn check_interval(&self, integration: &Integration) -> Duration {
        integration.health_check_interval.map_or(self.default_interval, |s| Duration::from_secs(u64::from(s)))
    }

    /// When the check after one made at `checked_at` is due: the integration's interval ±10%,
    /// so that integrations created together do not stay checked together.
    pub fn next_due_ms(&self, integration: &Integration, checked_at: OffsetDateTime) -> i64 {
        unix_ms(checked_at) + jittered(duration_ms(self.check_interval(integration)))
    }

    /// Whether a check of this integration may use the network: always, except in an offline
    /// site, where only a feed mirror inside the site is checked ([`HealthPolicy::inside_offline_site`]).
    pub fn may_check(&self, integration: &Integration) -> bool {
        !self.offline || self.inside_offline_site(integration)
    }

    /// Whether an offline site still checks this integration: a feed whose base URL's host is one
    /// of the site's mirrors (`health.offline-mirror-hosts`, the operator's list) and one of its
    /// own `mirrorHosts` (the allowlist `feed-mirror` also enforces before any request). Both, so
    /// that neither a tenant's configuration nor a connector's word alone opens the network.
    pub fn inside_offline_site(&self, integration: &Integration) -> bool {
        if integration.integration_type != IntegrationType::Feed {
            return false;
        }
        let Some(host) = integration.base_url.as_ref().map(|u| u.host()) else { return false };
        let own = integration.configuration.get("mirrorHosts").and_then(|m| m.as_array());
        let listed = own.is_some_and(|m| m.iter().filter_map(|m| m.as_str()).any(|m| m.eq_ignore_ascii_case(&host)));
        listed && self.offline_mirror_hosts.iter().any(|m| m.eq_ignore_ascii_case(&host))
    }
}

impl Default for HealthPolicy {
    /// The `[health]` defaults.
    fn default() -> Self {
        Self::from_settings(&crate::config::HealthConfig::default())
    }
}

/// The interval ±10%.
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
