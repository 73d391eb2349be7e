//! The results of an invocation, as the host reports them (serializable, camelCase), and their
//! conversion from the generated WIT types.

use serde::{Deserialize, Serialize};

use crate::bindings::types as wit;
use crate::record::InvocationRecord;
use crate::secrets::Redactor;

/// Why a test or health check failed (the WIT `failure-class`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum FailureClass {
    Network,
    Tls,
    Auth,
    Permission,
    NotFound,
    RateLimited,
    ProviderMismatch,
    ProviderDown,
    Misconfigured,
    Timeout,
    Internal,
}

impl FailureClass {
    /// Every class, in the WIT's order.
    pub const ALL: [FailureClass; 11] = [
        Self::Network,
        Self::Tls,
        Self::Auth,
        Self::Permission,
        Self::NotFound,
        Self::RateLimited,
        Self::ProviderMismatch,
        Self::ProviderDown,
        Self::Misconfigured,
        Self::Timeout,
        Self::Internal,
    ];

    /// The name used in JSON, in metrics and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::Permission => "permission",
            Self::NotFound => "not-found",
            Self::RateLimited => "rate-limited",
            Self::ProviderMismatch => "provider-mismatch",
            Self::ProviderDown => "provider-down",
            Self::Misconfigured => "misconfigured",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    /// Parses the name used in JSON and in the database.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The health found by a health check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// One named step of a test.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CheckStep {
    pub name: String,
    pub passed: bool,
    pub message: String,
}

/// Facts the remote system reported about itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<u64>,
}

/// The result of `test-connection`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TestOutcome {
    pub success: bool,
    pub message: String,
    pub failure: Option<FailureClass>,
    pub steps: Vec<CheckStep>,
    pub facts: Facts,
}

/// The result of `check-health`, with the latency the host measured.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct HealthOutcome {
    pub status: HealthStatus,
    pub message: String,
    pub failure: Option<FailureClass>,
    pub steps: Vec<CheckStep>,
    pub facts: Facts,
    /// Wall-clock time of the whole invocation, measured by the host.
    pub latency_ms: u64,
}

/// A result together with the record of how it was produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation<T> {
    /// What the connector answered (or the failure the sandbox substituted).
    pub result: T,
    /// What the connector did, for the audit.
    pub record: InvocationRecord,
}

impl TestOutcome {
    /// A failed result produced by the sandbox itself (trap, limit, load error).
    pub fn sandbox_failure(failure: FailureClass, message: String) -> Self {
        Self { success: false, message, failure: Some(failure), steps: Vec::new(), facts: Facts::default() }
    }

    pub(crate) fn from_wit(r: wit::TestResult, redactor: &Redactor) -> Self {
        // A success with a failure class, or a failure without one, is a connector bug; report
        // it honestly rather than guessing.
        let failure = match (r.success, r.failure) {
            (true, _) => None,
            (false, Some(f)) => Some(f.into()),
            (false, None) => Some(FailureClass::Internal),
        };
        Self {
            success: r.success,
            message: clip(&redactor.redact(&r.message), MAX_MESSAGE),
            failure,
            steps: steps(r.steps, redactor),
            facts: facts(r.facts, redactor),
        }
    }
}

impl HealthOutcome {
    /// An unhealthy result produced by the sandbox itself.
    pub fn sandbox_failure(failure: FailureClass, message: String, latency_ms: u64) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            message,
            failure: Some(failure),
            steps: Vec::new(),
            facts: Facts::default(),
            latency_ms,
        }
    }

    pub(crate) fn from_wit(r: wit::HealthResult, redactor: &Redactor, latency_ms: u64) -> Self {
        let status = match r.status {
            wit::HealthStatus::Healthy => HealthStatus::Healthy,
            wit::HealthStatus::Degraded => HealthStatus::Degraded,
            wit::HealthStatus::Unhealthy => HealthStatus::Unhealthy,
        };
        let failure = match (status, r.failure) {
            (HealthStatus::Healthy, _) => None,
            (_, Some(f)) => Some(f.into()),
            (HealthStatus::Unhealthy, None) => Some(FailureClass::Internal),
            (HealthStatus::Degraded, None) => None,
        };
        Self {
            status,
            message: clip(&redactor.redact(&r.message), MAX_MESSAGE),
            failure,
            steps: steps(r.steps, redactor),
            facts: facts(r.facts, redactor),
            latency_ms,
        }
    }
}

/// Connector-provided strings are bounded (and cleared of control characters) so that a result
/// always fits an audit row and shows safely on a terminal: at most about 90 KiB of text.
const MAX_MESSAGE: usize = 4096;
const MAX_STEPS: usize = 64;
const MAX_STEP_NAME: usize = 128;
const MAX_STEP_MESSAGE: usize = 1024;
const MAX_FACT: usize = 256;

fn clip(s: &str, max: usize) -> String {
    crate::record::bounded_text(s, max)
}

fn steps(steps: Vec<wit::CheckStep>, redactor: &Redactor) -> Vec<CheckStep> {
    steps
        .into_iter()
        .take(MAX_STEPS)
        .map(|s| CheckStep {
            name: clip(&redactor.redact(&s.name), MAX_STEP_NAME),
            passed: s.passed,
            message: clip(&redactor.redact(&s.message), MAX_STEP_MESSAGE),
        })
        .collect()
}

fn facts(f: wit::Facts, redactor: &Redactor) -> Facts {
    Facts {
        provider_version: f.provider_version.map(|v| clip(&redactor.redact(&v), MAX_FACT)),
        credential_expires_at: f.credential_expires_at.map(|v| clip(&redactor.redact(&v), MAX_FACT)),
        rate_limit_remaining: f.rate_limit_remaining,
    }
}

impl From<wit::FailureClass> for FailureClass {
    fn from(f: wit::FailureClass) -> Self {
        use wit::FailureClass as W;
        match f {
            W::Network => Self::Network,
            W::Tls => Self::Tls,
            W::Auth => Self::Auth,
            W::Permission => Self::Permission,
            W::NotFound => Self::NotFound,
            W::RateLimited => Self::RateLimited,
            W::ProviderMismatch => Self::ProviderMismatch,
            W::ProviderDown => Self::ProviderDown,
            W::Misconfigured => Self::Misconfigured,
            W::Timeout => Self::Timeout,
            W::Internal => Self::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FailureClass;

    #[test]
    fn failure_class_names_are_its_json_names() {
        for class in FailureClass::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
            assert_eq!(FailureClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(FailureClass::parse("Network"), None);
    }
}
