//! The invocation record: what a connector did during one call, for the audit.
//!
//! It lists every host call (never a secret value, never a query string), every denial, the
//! guest's log lines and stdout/stderr, the effective limits, the memory peak, and the trap or
//! limit that stopped the guest, if any.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::limits::{LimitKind, Limits};

/// What a connector did during one invocation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    /// A unique id for this invocation.
    pub invocation_id: String,
    /// `test-connection` or `check-health`.
    pub operation: String,
    /// The connector's provider id.
    pub provider: String,
    /// The connector's version.
    pub connector_version: String,
    /// The sha256 of the component that ran.
    pub sha256: String,
    /// When the invocation started (UTC, RFC 3339).
    pub started_at: String,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// The largest linear memory the guest reached, in bytes.
    pub memory_peak_bytes: u64,
    /// The limits the invocation ran under.
    pub limits: EffectiveLimits,
    /// Every call the guest made into the host's capabilities, in order.
    pub host_calls: Vec<HostCall>,
    /// Everything the sandbox refused, in order.
    pub denials: Vec<Denial>,
    /// The guest's log lines (redacted).
    pub logs: Vec<LogLine>,
    /// What the guest wrote to stdout (redacted, capped).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub stdout: String,
    /// What the guest wrote to stderr (redacted, capped).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub stderr: String,
    /// The trap or exhausted limit that stopped the guest, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trap: Option<TrapInfo>,
}

/// The limits one invocation ran under (the operator's ceilings, lowered by the manifest).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct EffectiveLimits {
    pub deadline_ms: u64,
    pub memory_bytes: u64,
    pub table_elements: u64,
    pub instances: u64,
    pub max_requests: u32,
    pub max_response_bytes: u64,
    pub max_log_bytes: u64,
}

impl From<&Limits> for EffectiveLimits {
    fn from(l: &Limits) -> Self {
        Self {
            deadline_ms: l.deadline_ms,
            memory_bytes: l.memory_bytes,
            table_elements: l.table_elements,
            instances: l.instances,
            max_requests: l.max_requests,
            max_response_bytes: l.max_response_bytes,
            max_log_bytes: l.max_log_bytes,
        }
    }
}

/// One call into a host capability.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCall {
    /// `http`, `secrets` or `crypto`.
    pub interface: String,
    /// The HTTP method, or `resolve`, `reveal`, `sign-jwt`.
    pub operation: String,
    /// For HTTP, scheme + host + port + path (never the query string); for secrets, the AuthRef.
    pub target: String,
    /// The HTTP status, when a response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The typed error, when the call failed (`denied`, `dns`, `timeout`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's message (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// How long the call took, in milliseconds.
    pub duration_ms: u64,
    /// The AuthRef whose secret was applied to the request (never the value), or for a
    /// credential the host kept from an earlier answer, `token from <that call's target>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<String>,
    /// The answer carried a credential that the host kept as a new secret handle
    /// (`http.send-for-token`); the connector never saw its value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub token_kept: bool,
}

/// What the sandbox refused.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenialKind {
    /// A request to an origin outside the base URL and the manifest's hosts.
    Origin,
    /// A request whose host resolved to an address the network policy blocks.
    Address,
    /// A request past the invocation's request budget.
    RequestBudget,
    /// A request the host refused to build (bad URL, scheme, header).
    InvalidRequest,
    /// An AuthRef other than the integration's own.
    SecretRef,
    /// `reveal` without the `reveal-secrets` permission.
    Reveal,
    /// `sign-jwt` without the `sign-jwt` permission.
    SignJwt,
    /// A WASI socket the guest tried to open.
    WasiSocket,
}

/// One refusal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    /// What was refused.
    pub kind: DenialKind,
    /// The URL (without query), address or AuthRef concerned.
    pub target: String,
    /// Why.
    pub reason: String,
}

/// One guest log line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message (redacted).
    pub message: String,
    /// Milliseconds since the invocation started.
    pub at_ms: u64,
}

/// The trap or limit that stopped a guest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrapInfo {
    /// The limit that was exhausted, when a limit stopped the guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitKind>,
    /// What happened.
    pub message: String,
}

/// Formats a time as UTC RFC 3339 with millisecond precision (`2026-11-27T10:52:23.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_776_743_123);
        assert_eq!(rfc3339(t), "2026-11-27T10:52:23.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
