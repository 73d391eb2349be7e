//! The host side of one invocation: the store's data, the resource limiter, and the
//! implementations of the world's imports (one module per interface).
//!
//! Every import follows the same rule: a policy refusal or an I/O failure is a typed error the
//! guest can handle, and is written to the invocation's [`Journal`]; only an exhausted limit (or a
//! host bug) traps.

mod crypto;
mod http;
mod log;
mod output;
mod secrets;
mod sockets;

pub(crate) use output::GuestOutput;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable, ResourceTableError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::egress::OriginAllowlist;
use crate::http_client::EgressClients;
use crate::limits::{LOG_LINE_OVERHEAD, LimitKind, Limits};
use crate::record::{Denial, DenialKind, Dropped, HostCall, LogLine, MAX_ENTRY_TEXT, MAX_LOG_LINE, bounded_text};
use crate::secrets::{AuthRef, Binding, Redactor, SecretNamespace, SecretResolver, SecretValue, Source};

/// A credential held by the host on behalf of a guest (the WIT `secret` resource).
#[derive(Debug)]
pub struct SecretHandle {
    /// What the handle came from, for the audit: an AuthRef, a JWT signed with one, or the URL
    /// whose answer carried it.
    pub(crate) origin: String,
    pub(crate) value: SecretValue,
    /// The origins it may be applied to: the secret's own binding, inherited by what is derived
    /// from it (a JWT it signed, a token an answer to it carried).
    pub(crate) binding: Option<Binding>,
}

/// How many denials of one invocation go to the service's own log; the rest are counted there
/// once, when the invocation ends (they are all in its record).
const DENIALS_LOGGED: u32 = 16;

/// A limit the host enforced stopped the guest: the error an import traps with.
#[derive(Debug, thiserror::Error)]
#[error("the connector exceeded its `{}` limit", .0.as_str())]
pub(crate) struct LimitExceeded(pub LimitKind);

/// Which captured output stream a guest wrote to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Output {
    Stdout,
    Stderr,
}

/// What an invocation did, shared with the dispatcher so that it survives a guest that is
/// cancelled at its deadline.
///
/// Everything a guest's calls leave in the host goes through here, and each kind has a budget:
/// calls (`max-host-calls`), log text (`max-log-bytes`, each line at least
/// [`LOG_LINE_OVERHEAD`]), the record's entries (`max-record-bytes`, measured as the JSON they
/// serialize to) and the secret values the redactor holds. A budget that runs out stops the guest
/// (see [`Journal::stop`]); what could not be kept is counted in `dropped`, never silently lost.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    limits: Limits,
    pub host_calls: Vec<HostCall>,
    pub denials: Vec<Denial>,
    pub logs: Vec<LogLine>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub dropped: Dropped,
    calls: u32,
    log_bytes: u64,
    /// The record's budget spent: its entries' JSON, exactly, and stdout/stderr, estimated.
    record_bytes: u64,
    /// The part of `record_bytes` that stdout and stderr took.
    output_bytes: u64,
    denials_seen: u32,
    /// The first limit noticed, hard or soft (a refused `memory.grow` that the guest may survive):
    /// it explains a trap that follows.
    pub limit_hit: Option<LimitKind>,
    /// The limit that stopped the guest: every later call traps and nothing more is kept.
    pub stopped_by: Option<LimitKind>,
    pub memory_peak: u64,
    pub redactor: Redactor,
    /// The origins requests went out to (an answer or a network error came back), redacted of
    /// the values the host holds itself only: kept outside the record's budget, so that neither a
    /// full record nor a string the connector had the host hold can hide where it sent anything.
    pub origins: std::collections::BTreeSet<String>,
    /// Origins beyond [`MAX_ORIGINS`], not kept.
    pub more_origins: bool,
    /// Whether a request carried a held secret's value outside the credential (kept outside the
    /// record's budget too).
    pub secret_in_request: bool,
}

/// Distinct origins an invocation's summary keeps (each at most [`MAX_ORIGIN_TEXT`] bytes).
pub(crate) const MAX_ORIGINS: usize = 16;
const MAX_ORIGIN_TEXT: usize = 300;

/// Locks the journal; a poisoned lock means a host bug already panicked, so keep what is there.
pub(crate) fn lock(journal: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(|p| p.into_inner())
}

impl Journal {
    pub fn new(limits: &Limits) -> Self {
        Self { limits: limits.clone(), ..Self::default() }
    }

    /// Notes a limit that the guest was refused (and may survive).
    pub fn hit(&mut self, limit: LimitKind) {
        self.limit_hit.get_or_insert(limit);
    }

    /// Stops the guest: the import that calls this traps with the returned error, any later call
    /// traps at once, and a guest that makes none is interrupted at the next epoch tick.
    pub fn stop(&mut self, limit: LimitKind) -> LimitExceeded {
        self.hit(limit);
        let limit = *self.stopped_by.get_or_insert(limit);
        LimitExceeded(limit)
    }

    /// The error to trap with when a limit has stopped the guest.
    pub fn check(&self) -> Result<(), LimitExceeded> {
        self.stopped_by.map_or(Ok(()), |limit| Err(LimitExceeded(limit)))
    }

    /// Counts one call of an import against `max-host-calls`, refused or not: a loop of refused
    /// calls is stopped like any other. The call that would exceed the budget is not made.
    pub fn begin_call(&mut self) -> Result<(), LimitExceeded> {
        self.check()?;
        self.calls += 1;
        if self.calls > self.limits.max_host_calls {
            return Err(self.stop(LimitKind::HostCalls));
        }
        Ok(())
    }

    /// Takes `bytes` of the record's budget; past it the guest is stopped.
    fn take_record_bytes(&mut self, bytes: u64) -> bool {
        if self.stopped_by.is_some() {
            return false;
        }
        if self.record_bytes.saturating_add(bytes) > self.limits.max_record_bytes {
            self.stop(LimitKind::RecordBytes);
            return false;
        }
        self.record_bytes += bytes;
        true
    }

    /// Keeps a finished call's entry, and tells the import to trap when this call (or one of its
    /// denials) ran out of a budget.
    pub fn record_call(&mut self, mut call: HostCall) -> Result<(), LimitExceeded> {
        call.target = bounded_text(&call.target, MAX_ENTRY_TEXT);
        call.error_message = call.error_message.map(|m| bounded_text(&m, MAX_ENTRY_TEXT));
        if self.take_record_bytes(json_size(&call)) {
            self.host_calls.push(call);
        } else {
            self.dropped.host_calls += 1;
        }
        self.check()
    }

    /// Keeps a refusal (redacted). Its call's [`Journal::record_call`] traps if it did not fit.
    pub fn deny(&mut self, kind: DenialKind, target: impl Into<String>, reason: impl Into<String>) {
        let target = bounded_text(&self.redactor.redact(&target.into()), MAX_ENTRY_TEXT);
        let reason = bounded_text(&self.redactor.redact(&reason.into()), MAX_ENTRY_TEXT);
        self.denials_seen += 1;
        if self.denials_seen <= DENIALS_LOGGED {
            tracing::info!(kind = ?kind, %target, %reason, "connector request denied");
        }
        let denial = Denial { kind, target, reason };
        if self.take_record_bytes(json_size(&denial)) {
            self.denials.push(denial);
        } else {
            self.dropped.denials += 1;
        }
    }

    /// The JSON size of the entries kept (host calls, denials, log lines), separators included.
    pub fn entry_bytes(&self) -> u64 {
        self.record_bytes - self.output_bytes
    }

    /// How many denials were not written to the service's log.
    pub fn denials_not_logged(&self) -> u32 {
        self.denials_seen.saturating_sub(DENIALS_LOGGED)
    }

    /// Keeps a log line (redacted, cut to [`MAX_LOG_LINE`]); its text plus
    /// [`LOG_LINE_OVERHEAD`] count against `max-log-bytes`.
    pub fn log(&mut self, level: &str, message: &str, at_ms: u64) -> Result<(), LimitExceeded> {
        self.check()?;
        self.log_bytes = self.log_bytes.saturating_add(message.len() as u64 + LOG_LINE_OVERHEAD);
        if self.log_bytes > self.limits.max_log_bytes {
            self.dropped.logs += 1;
            return Err(self.stop(LimitKind::LogBytes));
        }
        let line = LogLine {
            level: level.to_string(),
            message: bounded_text(&self.redactor.redact(message), MAX_LOG_LINE),
            at_ms,
        };
        if self.take_record_bytes(json_size(&line)) {
            self.logs.push(line);
        } else {
            self.dropped.logs += 1;
        }
        self.check()
    }

    /// Keeps what a guest wrote to stdout or stderr, within `max-log-bytes` (shared with the log
    /// lines) and the record's budget; what does not fit is counted and stops the guest.
    pub fn write_output(&mut self, stream: Output, bytes: &[u8]) -> Result<(), LimitExceeded> {
        self.check()?;
        let room = self.limits.max_log_bytes.saturating_sub(self.log_bytes);
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut kept = &bytes[..take];
        // Charged at the most its JSON form can take, before redaction; the record is measured
        // again when it is finished (see `InvocationRecord::fit`).
        let mut cost = escaped_size(kept);
        while !kept.is_empty() && self.record_bytes.saturating_add(cost) > self.limits.max_record_bytes {
            kept = &kept[..kept.len() / 2];
            cost = escaped_size(kept);
        }
        self.log_bytes += kept.len() as u64;
        self.record_bytes += cost;
        self.output_bytes += cost;
        let (buffer, dropped) = match stream {
            Output::Stdout => (&mut self.stdout, &mut self.dropped.stdout_bytes),
            Output::Stderr => (&mut self.stderr, &mut self.dropped.stderr_bytes),
        };
        buffer.extend_from_slice(kept);
        let lost = (bytes.len() - kept.len()) as u64;
        if lost > 0 {
            *dropped += lost;
            let limit = if kept.len() < take { LimitKind::RecordBytes } else { LimitKind::LogBytes };
            return Err(self.stop(limit));
        }
        Ok(())
    }

    /// Registers a secret value (and its binding, and whether the host made it or an answer
    /// carried it) for redaction; a guest that makes the host hold more than [`MAX_SECRET_VALUES`]
    /// values, or more forms of them than the redactor may hold, is stopped before it gets the
    /// value (or a handle to it).
    pub fn add_secret(
        &mut self,
        value: &SecretValue,
        binding: Option<&Binding>,
        source: Source,
    ) -> Result<(), LimitExceeded> {
        let added = self.redactor.try_add(value, binding, source, MAX_SECRET_VALUES);
        added.map_err(|_| self.stop(LimitKind::SecretValues))
    }

    /// Notes that a request went out to `origin` (its origin as the URL names it, before any
    /// redaction).
    pub fn contacted(&mut self, origin: &str) {
        let origin = bounded_text(&self.redactor.redact_host_values(origin), MAX_ORIGIN_TEXT);
        if self.origins.len() < MAX_ORIGINS || self.origins.contains(&origin) {
            self.origins.insert(origin);
        } else {
            self.more_origins = true;
        }
    }

    /// Registers the base64 `user:secret` pair that basic auth puts on the wire.
    pub fn add_basic_secret(
        &mut self,
        username: &str,
        value: &SecretValue,
        binding: Option<&Binding>,
    ) -> Result<(), LimitExceeded> {
        let added = self.redactor.try_add_basic(username, value, binding, MAX_SECRET_VALUES);
        added.map_err(|_| self.stop(LimitKind::SecretValues))
    }

    /// Registers a JWT the host signed.
    pub fn add_jwt(&mut self, token: &SecretValue, binding: Option<&Binding>) -> Result<(), LimitExceeded> {
        let added = self.redactor.try_add_jwt(token, binding, MAX_SECRET_VALUES);
        added.map_err(|_| self.stop(LimitKind::SecretValues))
    }
}

/// Secret values (resolved, derived, signed, basic-auth pairs) one invocation may make the host
/// hold. A connector needs a handful; each is searched for in every string the invocation
/// produces, so their number is what redaction costs.
pub(crate) const MAX_SECRET_VALUES: usize = 64;

/// The JSON size of a record entry, with the comma that separates it from the next.
fn json_size(entry: &impl serde::Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(1);
    serde_json::to_writer(&mut count, entry).expect("record entries serialize");
    count.0
}

/// The most that raw output bytes can take as a JSON string: escapes take 2 or 6 bytes, and a
/// byte that is not UTF-8 becomes U+FFFD (3 bytes).
fn escaped_size(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0..0x20 | 0x7f => 6,
            0x80.. => 3,
            _ => 1,
        })
        .sum()
}

/// Everything an invocation's imports need, fixed when the invocation starts.
pub(crate) struct InvocationContext {
    pub started: Instant,
    pub deadline: Instant,
    pub limits: Limits,
    /// The only AuthRef this invocation may resolve.
    pub bound_auth_ref: Option<AuthRef>,
    /// Where it is resolved: the integration's namespace, and nowhere else.
    pub secret_namespace: SecretNamespace,
    pub origins: OriginAllowlist,
    /// What the manifest asks for, as far as the operator allows it (its hosts are in `origins`).
    pub may_reveal_secrets: bool,
    pub may_sign_jwt: bool,
    pub egress: Arc<EgressClients>,
    pub client: reqwest::Client,
    pub resolver: Arc<dyn SecretResolver>,
    pub requests_made: u32,
    pub journal: Arc<Mutex<Journal>>,
}

/// The data of one invocation's store.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: InvocationLimiter,
    pub cx: InvocationContext,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Enforces the memory and table limits and remembers the memory peak.
pub(crate) struct InvocationLimiter {
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub instances: usize,
    pub journal: Arc<Mutex<Journal>>,
}

impl wasmtime::ResourceLimiter for InvocationLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let mut j = lock(&self.journal);
        if desired > self.memory_bytes {
            j.hit(LimitKind::Memory);
            return Ok(false);
        }
        j.memory_peak = j.memory_peak.max(desired as u64);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            lock(&self.journal).hit(LimitKind::TableElements);
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}

impl HostState {
    /// Gives the guest a handle to a credential; a guest holding `max-handles` already is stopped.
    pub(crate) fn push_secret(&mut self, handle: SecretHandle) -> wasmtime::Result<Resource<SecretHandle>> {
        match self.table.push(handle) {
            Ok(resource) => Ok(resource),
            Err(ResourceTableError::Full) => Err(wasmtime::Error::new(lock(&self.cx.journal).stop(LimitKind::Handles))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The `types` interface has no functions.
impl crate::bindings::types::Host for HostState {}

/// Milliseconds since `start`, saturated.
pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
