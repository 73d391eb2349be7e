//! The `feed-mirror` connector: an HTTP(S) mirror of vulnerability feeds, as air-gapped sites
//! run them. Its index document must be reachable, be a JSON index, and be fresh.
//!
//! `test-connection` steps:
//! - `configuration`: the settings are valid, and the base URL's host is one of `mirrorHosts`
//!   (when the site lists its mirrors, no other host is ever contacted);
//! - `reachable`, `index`: `GET {indexPath}` answers 200 with a JSON object or array (401 `auth`,
//!   403 `permission`, 404 `not-found`, anything else `provider-mismatch`);
//! - `fresh`: the index's age, from the timestamp at `timestampPointer` in it, else from
//!   `Last-Modified`, is at most `maxAgeHours` (a stale mirror fails as `provider-down`; the health
//!   is then `degraded`, since the data is still served).
//!
//! Configuration keys: `indexPath` (default `/index.json`), `maxAgeHours` (default 48),
//! `timestampPointer` (default: the first of `/generated`, `/updated`, `/timestamp`,
//! `/lastModified` present), `mirrorHosts` (host names, default: any), `username` (HTTP basic
//! with the AuthRef's secret; without it the secret is a bearer token), `caCertificates` (read by
//! the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::ResponseExt;
use stella_connector_sdk::prelude::*;

struct FeedMirror;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    index_path: Option<Value>,
    max_age_hours: Option<Value>,
    timestamp_pointer: Option<Value>,
    mirror_hosts: Option<Value>,
    username: Option<Value>,
}
const TIMESTAMP_POINTERS: &[&str] = &["/generated", "/updated", "/timestamp", "/lastModified"];

/// How far ahead of this host's clock an index's date may be.
const MAX_CLOCK_SKEW_SECS: i64 = 3600;

struct Settings {
    index_url: String,
    max_age_hours: u64,
    timestamp_pointer: Option<String>,
    username: Option<String>,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let text = |value: &Option<Value>, key: &str| -> Result<Option<String>, String> {
        match value {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a non-empty string")),
        }
    };
    let base = config.base().map_err(|e| format!("{e} (the mirror)"))?;
    let base = base.as_str();
    let host = stella_connector_sdk::url::host(base).ok_or("the base URL has no host")?;
    if let Some(list) = &c.mirror_hosts {
        let hosts = list
            .as_array()
            .filter(|l| !l.is_empty())
            .and_then(|l| l.iter().map(|h| h.as_str().map(str::to_ascii_lowercase)).collect::<Option<Vec<_>>>())
            .ok_or("`mirrorHosts` must be a non-empty list of host names")?;
        if !hosts.contains(&host) {
            return Err(format!("the mirror `{host}` is not one of the allowed mirror hosts ({})", hosts.join(", ")));
        }
    }
    let path = text(&c.index_path, "indexPath")?.unwrap_or_else(|| "/index.json".into());
    if !path.starts_with('/') || path.starts_with("//") || path.chars().any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(format!("`indexPath` must start with a single `/` and hold no spaces: `{path}`"));
    }
    let max_age_hours = match &c.max_age_hours {
        None => 48,
        Some(v) => v.as_u64().filter(|h| (1..=24 * 365).contains(h)).ok_or("`maxAgeHours` must be 1 to 8760")?,
    };
    let timestamp_pointer = text(&c.timestamp_pointer, "timestampPointer")?;
    if let Some(p) = &timestamp_pointer
        && !p.starts_with('/')
    {
        return Err(format!("`timestampPointer` must start with `/`: `{p}`"));
    }
    let username = text(&c.username, "username")?;
    if username.is_some() && config.auth_ref.is_none() {
        return Err("`username` needs an authRef (its password)".into());
    }
    Ok(Settings { index_url: format!("{base}{path}"), max_age_hours, timestamp_pointer, username })
}

fn run(config: &ConnectionConfig, report: &mut Report) -> Result<(), Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    let secret = secrets::step_secret(config, "credential")?;
    let request = http::get(&s.index_url).header("Accept", "application/json");
    let response = match (&secret, &s.username) {
        (Some(secret), Some(user)) => request.basic(user, secret).send(),
        (Some(secret), None) => request.bearer(secret).send(),
        (None, _) => request.send(),
    }
    .step_at("reachable", &s.index_url)?;
    report.pass("reachable", format!("{} answered", s.index_url));
    if response.status != 200 {
        let class = checks::status_failure(response.status);
        return Err(Failed::new(class, "index", format!("the index answered {}", checks::describe_status(&response))));
    }
    let index = response.json().ok().filter(|i| i.is_object() || i.is_array()).ok_or_else(|| {
        Failed::new(
            FailureClass::ProviderMismatch,
            "index",
            "the index is not a JSON document: this is not a feed mirror",
        )
    })?;
    report.pass("index", "the index is a JSON document");

    let pointers: Vec<&str> = match &s.timestamp_pointer {
        Some(p) => vec![p.as_str()],
        None => TIMESTAMP_POINTERS.to_vec(),
    };
    // The first pointer present (and not null) decides: a number or anything but an RFC 3339
    // string there is an error, not a reason to fall back on Last-Modified.
    let from_index = pointers.iter().find_map(|p| Some((*p, index.pointer(p).filter(|v| !v.is_null())?)));
    let stamped = match from_index {
        Some((pointer, value)) => match value.as_str().and_then(checks::parse_time) {
            Some(t) => Some((t, format!("`{pointer}` = {}", value.as_str().unwrap_or_default()))),
            None => {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "fresh",
                    format!(
                        "`{pointer}` is not an RFC 3339 time: `{}`",
                        value.to_string().chars().take(64).collect::<String>()
                    ),
                ));
            }
        },
        None => response
            .header("last-modified")
            .and_then(|lm| Some((checks::parse_http_date(lm)?, format!("Last-Modified {lm}")))),
    };
    let Some((at, source)) = stamped else {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "fresh",
            "the index has no timestamp and no Last-Modified header: its age cannot be told",
        ));
    };
    // A little skew is normal; an index dated well ahead says a clock is wrong, and its age
    // cannot be trusted.
    if at - checks::now() > MAX_CLOCK_SKEW_SECS {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "fresh",
            format!("the index is dated in the future ({source}): the mirror's clock or this host's is wrong"),
        ));
    }
    let age_hours = (checks::now() - at).max(0) / 3600;
    if age_hours as u64 > s.max_age_hours {
        return Err(Failed::new(
            FailureClass::ProviderDown,
            "fresh",
            format!(
                "the index is {age_hours} h old ({source}); at most {} h is fresh: the mirror is not syncing",
                s.max_age_hours
            ),
        ));
    }
    report.pass("fresh", format!("the index is {age_hours} h old ({source})"));
    Ok(())
}

impl Connector for FeedMirror {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(|report| run(config, report), |_| "the feed mirror is reachable and fresh")
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        let test = Self::test_connection(config);
        // A stale mirror still serves its data: degraded, not unhealthy.
        let stale = test.steps.last().is_some_and(|s| s.name == "fresh" && !s.passed)
            && test.failure == Some(FailureClass::ProviderDown);
        let mut health = checks::health_from_test(test);
        if stale {
            health.status = HealthStatus::Degraded;
        }
        health
    }
}

register_connector!(FeedMirror);
