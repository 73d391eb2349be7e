//! Per-invocation limits: the operator's ceilings, what a manifest asks for, and the
//! effective limits of one invocation (the smaller of the two, for each).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The operator's ceilings. Every invocation runs under these or under less, when the
/// connector's manifest asks for less.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Wall-clock deadline of one invocation, in milliseconds (default 10 s).
    pub deadline_ms: u64,
    /// Linear memory of one instance, in bytes (default 64 MiB).
    pub memory_bytes: u64,
    /// Table elements of one instance (default 100 000; interpreted languages need many).
    pub table_elements: u64,
    /// Core instances a component may create (default 64).
    pub instances: u64,
    /// Outbound HTTP requests per invocation (default 16).
    pub max_requests: u32,
    /// Bytes of one response body (default 4 MiB).
    pub max_response_bytes: u64,
    /// Bytes of guest log lines, stdout and stderr together per invocation (default 64 KiB). A
    /// log line costs its text plus [`LOG_LINE_OVERHEAD`], so a flood of empty lines is bounded
    /// too.
    pub max_log_bytes: u64,
    /// Calls of the world's imports (`http`, `secrets`, `crypto`) and WASI socket attempts per
    /// invocation, refused or not (default 256). Log lines have their own budget.
    pub max_host_calls: u32,
    /// Resource handles a guest may hold at once: secret handles, kept tokens, JWTs, WASI streams
    /// and pollables, and resources of its own (default 256).
    pub max_handles: u32,
    /// Bytes of the invocation record's entries (host calls, denials, logs, stdout and stderr, as
    /// serialized JSON) per invocation (default 256 KiB). The whole record is at most this plus
    /// [`crate::record::RECORD_ENVELOPE_BYTES`].
    pub max_record_bytes: u64,
}

/// A guest's runtime needs a few handles before it runs code of its own (its stdout, stderr,
/// pollables).
const MIN_HANDLES: u32 = 16;
/// Room for a useful record: a few dozen entries.
const MIN_RECORD_BYTES: u64 = 16 << 10;

/// What a log line costs against `max-log-bytes` besides its text: the record keeps a level and
/// a timestamp for it, so even an empty line is not free.
pub const LOG_LINE_OVERHEAD: u64 = 64;

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline_ms: 10_000,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            instances: 64,
            max_requests: 16,
            max_response_bytes: 4 << 20,
            max_log_bytes: 64 << 10,
            max_host_calls: 256,
            max_handles: 256,
            max_record_bytes: 256 << 10,
        }
    }
}

/// Limits a manifest asks for; each, when present, lowers the operator's ceiling.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestedLimits {
    /// See [`Limits::deadline_ms`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// See [`Limits::max_requests`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// See [`Limits::max_response_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// See [`Limits::max_log_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
    /// See [`Limits::max_host_calls`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_host_calls: Option<u32>,
    /// See [`Limits::max_handles`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_handles: Option<u32>,
    /// See [`Limits::max_record_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_record_bytes: Option<u64>,
}

impl RequestedLimits {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: Option<u64>| match v {
            Some(0) => Err(format!("limits.{name} must be greater than 0")),
            _ => Ok(()),
        };
        positive("deadline-ms", self.deadline_ms)?;
        positive("memory-bytes", self.memory_bytes)?;
        positive("max-response-bytes", self.max_response_bytes)?;
        positive("max-log-bytes", self.max_log_bytes)?;
        positive("max-host-calls", self.max_host_calls.map(u64::from))?;
        if self.max_handles.is_some_and(|v| v < MIN_HANDLES) {
            return Err(format!("limits.max-handles must be at least {MIN_HANDLES}"));
        }
        if self.max_record_bytes.is_some_and(|v| v < MIN_RECORD_BYTES) {
            return Err(format!("limits.max-record-bytes must be at least {MIN_RECORD_BYTES}"));
        }
        Ok(())
    }
}

impl Limits {
    /// Checks the operator's configuration.
    pub fn validate(&self) -> Result<(), String> {
        if self.deadline_ms == 0 || self.deadline_ms > 600_000 {
            return Err("deadline-ms must be between 1 and 600000".into());
        }
        if self.memory_bytes < (1 << 16) || self.memory_bytes > (4 << 30) {
            return Err("memory-bytes must be between 64 KiB and 4 GiB".into());
        }
        if self.instances == 0 || self.table_elements == 0 {
            return Err("instances and table-elements must be greater than 0".into());
        }
        if self.max_response_bytes == 0 || self.max_log_bytes == 0 {
            return Err("max-response-bytes and max-log-bytes must be greater than 0".into());
        }
        if self.max_host_calls == 0 || self.max_host_calls > 100_000 {
            return Err("max-host-calls must be between 1 and 100000".into());
        }
        if self.max_handles < MIN_HANDLES || self.max_handles > 100_000 {
            return Err(format!("max-handles must be between {MIN_HANDLES} and 100000"));
        }
        if self.max_record_bytes < MIN_RECORD_BYTES || self.max_record_bytes > (64 << 20) {
            return Err(format!("max-record-bytes must be between {MIN_RECORD_BYTES} and 67108864"));
        }
        Ok(())
    }

    /// The limits of one invocation: the ceiling, lowered where the manifest asks for less.
    pub fn effective(&self, asked: &RequestedLimits) -> Limits {
        Limits {
            deadline_ms: asked.deadline_ms.map_or(self.deadline_ms, |v| v.min(self.deadline_ms)),
            memory_bytes: asked.memory_bytes.map_or(self.memory_bytes, |v| v.min(self.memory_bytes)),
            table_elements: self.table_elements,
            instances: self.instances,
            max_requests: asked.max_requests.map_or(self.max_requests, |v| v.min(self.max_requests)),
            max_response_bytes: asked
                .max_response_bytes
                .map_or(self.max_response_bytes, |v| v.min(self.max_response_bytes)),
            max_log_bytes: asked.max_log_bytes.map_or(self.max_log_bytes, |v| v.min(self.max_log_bytes)),
            max_host_calls: asked.max_host_calls.map_or(self.max_host_calls, |v| v.min(self.max_host_calls)),
            max_handles: asked.max_handles.map_or(self.max_handles, |v| v.min(self.max_handles)),
            max_record_bytes: asked.max_record_bytes.map_or(self.max_record_bytes, |v| v.min(self.max_record_bytes)),
        }
    }

    /// The wall-clock deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// Which limit stopped an invocation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitKind {
    /// The wall-clock deadline.
    Deadline,
    /// Linear memory.
    Memory,
    /// Table elements.
    TableElements,
    /// Instances, memories or tables of the component.
    Instances,
    /// Bytes of guest logs and stdout/stderr.
    LogBytes,
    /// The wasm stack (deep recursion).
    Stack,
    /// Calls of the host's imports.
    HostCalls,
    /// Live resource handles.
    Handles,
    /// Bytes of the invocation record.
    RecordBytes,
    /// Bytes one call passes from the connector to the host (an import's arguments, or the
    /// connector's result).
    TransferBytes,
    /// Secret values one invocation may hold (resolved, derived or signed), each of which is
    /// redacted from everything the invocation produces.
    SecretValues,
}

impl LimitKind {
    /// The limit's name, as JSON and the record spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::TableElements => "table-elements",
            Self::Instances => "instances",
            Self::LogBytes => "log-bytes",
            Self::Stack => "stack",
            Self::HostCalls => "host-calls",
            Self::Handles => "handles",
            Self::RecordBytes => "record-bytes",
            Self::TransferBytes => "transfer-bytes",
            Self::SecretValues => "secret-values",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_can_only_lower_a_ceiling() {
        let ceiling = Limits::default();
        let asked = RequestedLimits {
            deadline_ms: Some(60_000),
            memory_bytes: Some(1 << 20),
            max_requests: Some(100),
            max_response_bytes: None,
            max_log_bytes: Some(1024),
            max_host_calls: Some(10_000),
            max_handles: Some(32),
            max_record_bytes: Some(64 << 10),
        };
        let got = ceiling.effective(&asked);
        assert_eq!(got.deadline_ms, 10_000, "cannot raise the deadline");
        assert_eq!(got.memory_bytes, 1 << 20, "can lower memory");
        assert_eq!(got.max_requests, 16, "cannot raise the request budget");
        assert_eq!(got.max_response_bytes, 4 << 20);
        assert_eq!(got.max_log_bytes, 1024);
        assert_eq!(got.max_host_calls, 256, "cannot raise the host-call budget");
        assert_eq!(got.max_handles, 32);
        assert_eq!(got.max_record_bytes, 64 << 10);
    }

    #[test]
    fn limit_names_are_their_json_names() {
        for kind in [
            LimitKind::Deadline,
            LimitKind::TableElements,
            LimitKind::LogBytes,
            LimitKind::HostCalls,
            LimitKind::RecordBytes,
            LimitKind::TransferBytes,
            LimitKind::SecretValues,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn operator_limits_are_validated() {
        assert!(Limits::default().validate().is_ok());
        let zero = Limits { deadline_ms: 0, ..Limits::default() };
        assert!(zero.validate().is_err());
        let tiny = Limits { memory_bytes: 10, ..Limits::default() };
        assert!(tiny.validate().is_err());
        for bad in [
            Limits { max_host_calls: 0, ..Limits::default() },
            Limits { max_handles: 8, ..Limits::default() },
            Limits { max_record_bytes: 1024, ..Limits::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
