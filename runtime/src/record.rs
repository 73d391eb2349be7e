//! The invocation record: what a connector did during one call, for the audit.
//!
//! It lists every host call (never a secret value: each is redacted wherever it turns up, the
//! query string too), every denial, the guest's log lines and stdout/stderr, the effective
//! limits, the memory peak, and the trap or limit that stopped the guest, if any.

use serde::{Deserialize, Serialize};

use crate::limits::{LimitKind, Limits};

/// Which export of a connector ran.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// `test-connection`.
    #[default]
    TestConnection,
    /// `check-health`.
    CheckHealth,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 2] = [Self::TestConnection, Self::CheckHealth];

    /// The export's name: in the record, the ledger and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TestConnection => "test-connection",
            Self::CheckHealth => "check-health",
        }
    }

    /// The operation an export's name names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The host capability a call went to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// An outbound HTTP request.
    #[default]
    Http,
    /// A secret resolved, or revealed.
    Secrets,
    /// A JWT signed with a secret.
    Crypto,
    /// A WASI socket the guest tried to open (always refused).
    #[serde(rename = "wasi:sockets")]
    WasiSockets,
}

impl Interface {
    /// The name in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Secrets => "secrets",
            Self::Crypto => "crypto",
            Self::WasiSockets => "wasi:sockets",
        }
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connector did during one invocation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    /// A unique id for this invocation.
    pub invocation_id: uuid::Uuid,
    /// `test-connection` or `check-health`.
    pub operation: Operation,
    /// The connector's provider id.
    pub provider: String,
    /// The connector's version.
    pub connector_version: String,
    /// The sha256 of the component that ran.
    pub sha256: String,
    /// When the invocation started (UTC, RFC 3339 to the millisecond).
    #[serde(with = "millisecond_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: time::OffsetDateTime,
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
    /// What happened but did not fit the record's budget, by kind; absent when nothing was
    /// dropped. The record keeps the first entries of each kind.
    #[serde(skip_serializing_if = "Dropped::is_empty", default)]
    pub dropped: Dropped,
    /// Every origin (`scheme://host:port`) a request went out to, an answer or a network error
    /// coming back, sorted: kept whatever the record's budget dropped (at most 16; `moreOrigins`
    /// says there were more), and never redacted by a string the connector had the host hold.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub origins: Vec<String>,
    /// The invocation contacted more origins than `origins` lists.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub more_origins: bool,
    /// A request carried the value of a secret the invocation held outside the credential the
    /// host wrote (kept whatever the record's budget dropped; the host calls say where).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub secret_in_request: bool,
}

/// The most a record takes beyond `max-record-bytes`: its fixed fields (ids, times, limits, the
/// trap), the `dropped` counts and the summary kept outside the budget (its origins).
pub const RECORD_ENVELOPE_BYTES: u64 = 10 * 1024;

/// A string of a host call or denial (a URL, a reason, an error message) is cut to this.
pub const MAX_ENTRY_TEXT: usize = 2048;
/// A guest's log line is cut to this (the rest still counts against its log budget).
pub const MAX_LOG_LINE: usize = 4096;
/// The trap's message is cut to this.
const MAX_TRAP_MESSAGE: usize = 1024;

/// Counts of what an invocation did that its record could not keep.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Dropped {
    /// Host calls made but not listed.
    pub host_calls: u64,
    /// Denials made but not listed.
    pub denials: u64,
    /// Log lines written but not kept.
    pub logs: u64,
    /// Bytes written to stdout but not kept.
    pub stdout_bytes: u64,
    /// Bytes written to stderr but not kept.
    pub stderr_bytes: u64,
}

impl Dropped {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for InvocationRecord {
    /// An empty record of a test that started at the Unix epoch.
    fn default() -> Self {
        Self {
            invocation_id: uuid::Uuid::nil(),
            operation: Operation::default(),
            provider: String::new(),
            connector_version: String::new(),
            sha256: String::new(),
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            duration_ms: 0,
            memory_peak_bytes: 0,
            limits: EffectiveLimits::default(),
            host_calls: Vec::new(),
            denials: Vec::new(),
            logs: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            trap: None,
            dropped: Dropped::default(),
            origins: Vec::new(),
            more_origins: false,
            secret_in_request: false,
        }
    }
}

impl InvocationRecord {
    /// The record's size as JSON, in bytes.
    pub fn json_size(&self) -> u64 {
        serde_json::to_vec(self).map_or(u64::MAX, |v| v.len() as u64)
    }

    /// [`InvocationRecord::fit`] for a record whose entries the host measured as they came
    /// (`entry_bytes`: their JSON, separators included): when they and stdout and stderr are
    /// within `max_entry_bytes`, the record fits as it is and is not serialized to check (the
    /// common case, on every invocation's path).
    pub(crate) fn fit_measured(&mut self, max_entry_bytes: u64, entry_bytes: u64) {
        let output = json_string_size(&self.stdout) + json_string_size(&self.stderr);
        if entry_bytes.saturating_add(output) <= max_entry_bytes {
            if let Some(trap) = &mut self.trap {
                trap.message = bounded_text(&trap.message, MAX_TRAP_MESSAGE);
            }
            return;
        }
        self.fit(max_entry_bytes);
    }

    /// Cuts the record to at most `max_entry_bytes` plus [`RECORD_ENVELOPE_BYTES`] of JSON,
    /// counting what it drops: stdout and stderr from their ends first, then entries from the
    /// ends of their lists (logs, denials, host calls), so that the first entries of each kind
    /// stay. The host keeps its entries within budget as they come; this settles what only the
    /// finished record shows (redaction can lengthen text).
    pub fn fit(&mut self, max_entry_bytes: u64) {
        if let Some(trap) = &mut self.trap {
            trap.message = bounded_text(&trap.message, MAX_TRAP_MESSAGE);
        }
        let max = max_entry_bytes.saturating_add(RECORD_ENVELOPE_BYTES);
        let mut size = self.json_size();
        while size > max {
            let excess = usize::try_from(size - max).unwrap_or(usize::MAX);
            if !self.stdout.is_empty() || !self.stderr.is_empty() {
                let (text, dropped) = if self.stdout.len() >= self.stderr.len() {
                    (&mut self.stdout, &mut self.dropped.stdout_bytes)
                } else {
                    (&mut self.stderr, &mut self.dropped.stderr_bytes)
                };
                // Cut at least the excess (a character may take up to 6 bytes of JSON), and
                // at least a little, so the loop always ends.
                let keep = text.len().saturating_sub(excess.max(64));
                let keep = (0..=keep).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                *dropped += (text.len() - keep) as u64;
                text.truncate(keep);
            } else if self.logs.pop().is_some() {
                self.dropped.logs += 1;
            } else if self.denials.pop().is_some() {
                self.dropped.denials += 1;
            } else if self.host_calls.pop().is_some() {
                self.dropped.host_calls += 1;
            } else {
                break;
            }
            size = self.json_size();
        }
    }
}

/// The size of a string as serde_json writes it, quotes included.
fn json_string_size(text: &str) -> u64 {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<u64>()
}

/// Text a connector produced, made safe to keep and show: control characters other than
/// newline and tab become U+FFFD (a terminal showing the record obeys no escape sequence of the
/// connector's), and it is cut to `max` bytes on a character boundary, the cut marked with `…`.
pub fn bounded_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() && c != '\n' && c != '\t' { '\u{FFFD}' } else { c });
    }
    out
}

/// The limits one invocation ran under (the operator's ceilings, lowered by the manifest).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct EffectiveLimits {
    pub deadline_ms: u64,
    pub memory_bytes: u64,
    pub table_elements: u64,
    pub instances: u64,
    pub max_requests: u32,
    pub max_response_bytes: u64,
    pub max_log_bytes: u64,
    pub max_host_calls: u32,
    pub max_handles: u32,
    pub max_record_bytes: u64,
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
            max_host_calls: l.max_host_calls,
            max_handles: l.max_handles,
            max_record_bytes: l.max_record_bytes,
        }
    }
}

/// The operation of a `secrets` call that read a secret's value.
pub const REVEAL: &str = "reveal";
/// The operation of a `crypto` call that signed a JWT.
pub const SIGN_JWT: &str = "sign-jwt";

impl HostCall {
    /// Whether the sandbox refused the call (its policy, not the network or the server).
    pub fn denied(&self) -> bool {
        self.error.as_deref() == Some("denied")
    }

    /// Whether the call read a secret's value (and was not refused).
    pub fn revealed_a_secret(&self) -> bool {
        self.interface == Interface::Secrets && self.operation == REVEAL && !self.denied()
    }

    /// Whether the call signed a JWT with a secret (and was not refused).
    pub fn signed_a_jwt(&self) -> bool {
        self.interface == Interface::Crypto && self.operation == SIGN_JWT && !self.denied()
    }
}

/// One call into a host capability.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCall {
    /// `http`, `secrets`, `crypto` or `wasi:sockets`.
    pub interface: Interface,
    /// The HTTP method, or `resolve`, `reveal`, `sign-jwt`.
    pub operation: String,
    /// For HTTP, the URL the connector asked for without its fragment (scheme, host, port, path
    /// and query string, every secret value in it redacted); for secrets, the AuthRef.
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
    /// The header the host wrote the credential into (`authorization`, `private-token`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_header: Option<String>,
    /// The names of the headers the connector set itself (lower-case, in its order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<String>,
    /// The sha256 of the request body the connector sent, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    /// Where the request carried the value of a secret the invocation holds, outside the
    /// credential the host wrote: `url`, `header <name>`, `body`. Refused unless the connector may
    /// reveal secrets (one that may not never holds a value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_in_request: Vec<String>,
    /// The answer carried the value of a secret the invocation holds (a server echoing a
    /// credential, a redirect quoting it): it was replaced by `[REDACTED]` before the connector
    /// read it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response_scrubbed: bool,
    /// The answer's body could not be searched for the secrets the invocation holds (a content
    /// coding, UTF-16 or UTF-32 text; or a text made to match everywhere) or grew past the response
    /// limit when scrubbed: the connector got it empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response_withheld: bool,
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
    /// A secret applied to, revealed for or found in a request to an origin outside its binding
    /// (or a secret without a binding where the operator requires one).
    SecretBinding,
    /// A request carrying the value of a secret the invocation holds, from a connector that may
    /// not reveal secrets (and so should hold none).
    SecretInRequest,
    /// A credential placed in a header not meant for credentials (`Referer`, `Cookie`, …).
    CredentialPlacement,
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
    /// The URL (redacted), address or AuthRef concerned.
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

/// The origin (`scheme://host:port`) of a recorded request target, if it is a URL.
pub fn origin_of(target: &str) -> Option<String> {
    let url = url::Url::parse(target).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A time as the record writes it: UTC, RFC 3339, to the millisecond (`2026-11-27T10:52:23.123Z`);
/// read in any RFC 3339 form.
mod millisecond_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        let text = at.to_offset(time::UtcOffset::UTC).format(FORMAT).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_text_is_bounded_and_shows_no_control_characters() {
        assert_eq!(bounded_text("a\u{1b}[31mred\r\n\tok", 100), "a\u{FFFD}[31mred\u{FFFD}\n\tok");
        let cut = bounded_text(&"é".repeat(100), 11);
        assert_eq!(cut, format!("{}…", "é".repeat(5)));
        assert_eq!(bounded_text("short", 5), "short");
    }

    fn full_record() -> InvocationRecord {
        let call = HostCall { interface: Interface::Http, target: "x".repeat(500), ..HostCall::default() };
        InvocationRecord {
            invocation_id: uuid::Uuid::new_v4(),
            provider: "p".repeat(64),
            connector_version: "1.0.0".into(),
            sha256: "0".repeat(64),
            host_calls: vec![call; 100],
            denials: vec![Denial { kind: DenialKind::Origin, target: "t".into(), reason: "r".repeat(300) }; 100],
            logs: vec![LogLine { level: "info".into(), message: "m".repeat(200), at_ms: 1 }; 100],
            stdout: "\u{1}".repeat(10_000),
            stderr: "e".repeat(20_000),
            trap: Some(TrapInfo { limit: Some(LimitKind::HostCalls), message: "x".repeat(5000) }),
            ..InvocationRecord::default()
        }
    }

    #[test]
    fn a_record_is_cut_to_its_budget_and_says_what_it_dropped() {
        let mut record = full_record();
        let before = record.json_size();
        record.fit(32 << 10);
        assert!(record.json_size() <= (32 << 10) + RECORD_ENVELOPE_BYTES, "{} of {before}", record.json_size());
        // Output goes first; the first entries of each kind stay.
        assert!(record.stdout.is_empty() && record.stderr.is_empty());
        assert_eq!(record.dropped.stdout_bytes, 10_000);
        assert_eq!(record.dropped.stderr_bytes, 20_000);
        assert_eq!(record.host_calls.len() as u64 + record.dropped.host_calls, 100);
        assert_eq!(record.logs.len() as u64 + record.dropped.logs, 100);
        assert!(record.dropped.logs > 0 && !record.host_calls.is_empty());
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["dropped"]["stdoutBytes"], 10_000);

        // A record within its budget is left alone, and says nothing was dropped.
        let mut small = InvocationRecord::default();
        small.fit(16 << 10);
        assert!(small.dropped.is_empty());
        assert!(serde_json::to_value(&small).unwrap().get("dropped").is_none());
    }

    #[test]
    fn measured_entries_skip_the_check_only_when_the_record_fits() {
        let entries = |r: &InvocationRecord| {
            let lists = [
                serde_json::to_vec(&r.host_calls).unwrap().len(),
                serde_json::to_vec(&r.denials).unwrap().len(),
                serde_json::to_vec(&r.logs).unwrap().len(),
            ];
            lists.iter().sum::<usize>() as u64
        };
        for text in ["plain", "quotes \" and \\ and \n\t\u{8}\u{c}", "\u{1}\u{1f}\u{7f} é ☃"] {
            assert_eq!(json_string_size(text), serde_json::to_string(text).unwrap().len() as u64, "{text:?}");
        }
        let mut small = full_record();
        small.stdout = "\u{1}".repeat(100);
        small.stderr = String::new();
        let measured = entries(&small);
        small.fit_measured(measured + 2_000, measured);
        assert!(small.dropped.is_empty() && small.logs.len() == 100);
        assert!(small.json_size() <= measured + 2_000 + RECORD_ENVELOPE_BYTES);
        let mut large = full_record();
        let measured = entries(&large);
        large.fit_measured(measured, measured);
        assert!(!large.dropped.is_empty(), "stdout and stderr do not fit beside the entries");
        assert!(large.json_size() <= measured + RECORD_ENVELOPE_BYTES);
    }

    #[test]
    fn the_envelope_holds_every_fixed_field_at_its_largest() {
        let mut record = InvocationRecord {
            host_calls: vec![],
            denials: vec![],
            logs: vec![],
            stdout: String::new(),
            stderr: String::new(),
            operation: Operation::TestConnection,
            connector_version: "9".repeat(64),
            started_at: time::OffsetDateTime::now_utc(),
            duration_ms: u64::MAX,
            memory_peak_bytes: u64::MAX,
            limits: EffectiveLimits {
                deadline_ms: u64::MAX,
                memory_bytes: u64::MAX,
                table_elements: u64::MAX,
                instances: u64::MAX,
                max_requests: u32::MAX,
                max_response_bytes: u64::MAX,
                max_log_bytes: u64::MAX,
                max_host_calls: u32::MAX,
                max_handles: u32::MAX,
                max_record_bytes: u64::MAX,
            },
            dropped: Dropped {
                host_calls: u64::MAX,
                denials: u64::MAX,
                logs: u64::MAX,
                stdout_bytes: u64::MAX,
                stderr_bytes: u64::MAX,
            },
            // The summary at its largest: as many origins as are kept, each as long as kept, and
            // each character one JSON escapes.
            origins: (0..crate::host::MAX_ORIGINS)
                .map(|i| format!("{i:02}{}", "\u{1}".repeat(298 / 3)))
                .map(|o| bounded_text(&o, 300))
                .collect(),
            more_origins: true,
            secret_in_request: true,
            ..full_record()
        };
        // The trap's message is the one fixed field a connector can lengthen; `fit` cuts it.
        record.trap.as_mut().unwrap().message = "\u{1}".repeat(10_000);
        record.fit(0);
        assert!(record.json_size() <= RECORD_ENVELOPE_BYTES, "{}", record.json_size());
    }

    #[test]
    fn interfaces_and_operations_are_written_by_their_names() {
        for i in [Interface::Http, Interface::Secrets, Interface::Crypto, Interface::WasiSockets] {
            assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
            assert_eq!(serde_json::from_value::<Interface>(i.as_str().into()).unwrap(), i);
        }
        for o in Operation::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
            assert_eq!(Operation::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn the_start_time_is_written_to_the_millisecond_in_utc_and_read_back() {
        let at = |ms: i128| time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap();
        let record = |t| InvocationRecord { started_at: t, ..InvocationRecord::default() };
        for (t, text) in [
            (at(0), "1970-01-01T00:00:00.000Z"),
            (at(1_795_776_743_123), "2026-11-27T10:52:23.123Z"),
            (at(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        ] {
            let json = serde_json::to_value(record(t)).unwrap();
            assert_eq!(json["startedAt"], text);
            let back: InvocationRecord = serde_json::from_value(json).unwrap();
            assert_eq!(back.started_at, t);
        }
    }
}
