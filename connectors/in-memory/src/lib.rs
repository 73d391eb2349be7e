//! The `in-memory` connector: makes no network call at all. Its configuration scripts the
//! outcome, so the service, demos and tests have a deterministic connector.
//!
//! Configuration keys (all optional):
//! - `outcome`: `"success"` (default) or `"failure"`;
//! - `failureClass`: the failure class of a failure (default `internal`), e.g. `"auth"`;
//! - `message`: the result's message;
//! - `health`: `"healthy"`, `"degraded"` or `"unhealthy"` (default: from `outcome`);
//! - `latencyMs`: how long each call takes (at most 60000), to exercise timeouts and latency
//!   figures;
//! - `providerVersion`: reported as the provider version.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use stella_connector_sdk::prelude::*;

struct InMemory;

/// The configuration keys. Any other key is accepted and ignored: the service's demos and tests
/// give in-memory integrations configurations of every shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    outcome: Option<Value>,
    failure_class: Option<Value>,
    message: Option<Value>,
    health: Option<Value>,
    /// `null` is refused like any value that is not a number of milliseconds.
    #[serde(default, deserialize_with = "stella_connector_sdk::keep_null")]
    latency_ms: Option<Value>,
    provider_version: Option<Value>,
    #[serde(flatten)]
    _other: Map<String, Value>,
}

struct Script {
    success: bool,
    class: FailureClass,
    message: Option<String>,
    health: Option<HealthStatus>,
    latency: Duration,
    version: Option<String>,
}

fn failure_class(name: &str) -> Option<FailureClass> {
    Some(match name {
        "network" => FailureClass::Network,
        "tls" => FailureClass::Tls,
        "auth" => FailureClass::Auth,
        "permission" => FailureClass::Permission,
        "not-found" => FailureClass::NotFound,
        "rate-limited" => FailureClass::RateLimited,
        "provider-mismatch" => FailureClass::ProviderMismatch,
        "provider-down" => FailureClass::ProviderDown,
        "misconfigured" => FailureClass::Misconfigured,
        "timeout" => FailureClass::Timeout,
        "internal" => FailureClass::Internal,
        _ => return None,
    })
}

fn script(config: &ConnectionConfig) -> Result<Script, String> {
    let c: Keys = config.settings()?;
    // A value that is not a string counts as absent.
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
    let success = match text(&c.outcome).as_deref() {
        None | Some("success") => true,
        Some("failure") => false,
        Some(other) => return Err(format!("outcome `{other}` must be `success` or `failure`")),
    };
    let class = match text(&c.failure_class) {
        None => FailureClass::Internal,
        Some(name) => failure_class(&name).ok_or_else(|| format!("failureClass `{name}` is not a failure class"))?,
    };
    let health = match text(&c.health).as_deref() {
        None => None,
        Some("healthy") => Some(HealthStatus::Healthy),
        Some("degraded") => Some(HealthStatus::Degraded),
        Some("unhealthy") => Some(HealthStatus::Unhealthy),
        Some(other) => {
            return Err(format!("health `{other}` must be healthy, degraded or unhealthy"));
        }
    };
    let latency = match &c.latency_ms {
        None => Duration::ZERO,
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= 60_000 => Duration::from_millis(ms),
            _ => {
                return Err("latencyMs must be a whole number of milliseconds, at most 60000".into());
            }
        },
    };
    Ok(Script { success, class, message: text(&c.message), health, latency, version: text(&c.provider_version) })
}

impl Connector for InMemory {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        let script = match script(config) {
            Ok(s) => s,
            Err(why) => return report.fail(FailureClass::Misconfigured, "configuration", why),
        };
        report.pass("configuration", "the script is valid");
        if !script.latency.is_zero() {
            std::thread::sleep(script.latency);
        }
        report.facts.provider_version = script.version.clone();
        if script.success {
            report.pass("scripted-outcome", "scripted success");
            report.success(
                script.message.unwrap_or_else(|| format!("in-memory integration `{}` is reachable", config.name)),
            )
        } else {
            let message = script.message.unwrap_or_else(|| "scripted failure".to_string());
            report.fail(script.class, "scripted-outcome", message)
        }
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        let mut report = Report::new();
        let script = match script(config) {
            Ok(s) => s,
            Err(why) => {
                report.pass("configuration", "");
                return Report::new().health(HealthStatus::Unhealthy, Some(FailureClass::Misconfigured), why);
            }
        };
        if !script.latency.is_zero() {
            std::thread::sleep(script.latency);
        }
        report.facts.provider_version = script.version.clone();
        let status =
            script.health.unwrap_or(if script.success { HealthStatus::Healthy } else { HealthStatus::Unhealthy });
        let (failure, default_message) = match status {
            HealthStatus::Healthy => (None, "scripted healthy"),
            HealthStatus::Degraded => (Some(script.class).filter(|_| !script.success), "scripted degraded"),
            HealthStatus::Unhealthy => (Some(script.class), "scripted unhealthy"),
        };
        report.pass("scripted-health", default_message);
        report.health(status, failure, script.message.unwrap_or_else(|| default_message.to_string()))
    }
}

register_connector!(InMemory);
