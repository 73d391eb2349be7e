//! The host side of one invocation: the store's data, the resource limiter, and the
//! implementations of the world's imports (one module per interface).
//!
//! Every import follows the same rule: a policy refusal or an I/O failure is a typed error the
//! guest can handle, and is written to the invocation's [`Journal`]; only an exhausted limit (or a
//! host bug) traps.

mod crypto;
mod http;
mod log;
mod secrets;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::egress::OriginAllowlist;
use crate::http_client::EgressClients;
use crate::limits::{LimitKind, Limits};
use crate::manifest::Permissions;
use crate::record::{Denial, DenialKind, HostCall, LogLine};
use crate::secrets::{AuthRef, Redactor, SecretResolver, SecretValue};

/// A credential held by the host on behalf of a guest (the WIT `secret` resource).
#[derive(Debug)]
pub struct SecretHandle {
    /// What the handle came from, for the audit: an AuthRef, or a JWT signed with one.
    pub(crate) origin: String,
    pub(crate) value: SecretValue,
}

/// What an invocation did, shared with the dispatcher so that it survives a guest that is
/// cancelled at its deadline.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub host_calls: Vec<HostCall>,
    pub denials: Vec<Denial>,
    pub logs: Vec<LogLine>,
    pub log_bytes: u64,
    pub limit_hit: Option<LimitKind>,
    pub memory_peak: u64,
    pub redactor: Redactor,
}

/// Locks the journal; a poisoned lock means a host bug already panicked, so keep what is there.
pub(crate) fn lock(journal: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(|p| p.into_inner())
}

impl Journal {
    pub fn deny(&mut self, kind: DenialKind, target: impl Into<String>, reason: impl Into<String>) {
        let target = self.redactor.redact(&target.into());
        let reason = self.redactor.redact(&reason.into());
        tracing::info!(kind = ?kind, %target, %reason, "connector request denied");
        self.denials.push(Denial { kind, target, reason });
    }
}

/// Everything an invocation's imports need, fixed when the invocation starts.
pub(crate) struct InvocationContext {
    pub started: Instant,
    pub deadline: Instant,
    pub limits: Limits,
    /// The only AuthRef this invocation may resolve.
    pub bound_auth_ref: Option<AuthRef>,
    pub origins: OriginAllowlist,
    pub permissions: Permissions,
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
            j.limit_hit.get_or_insert(LimitKind::Memory);
            return Ok(false);
        }
        j.memory_peak = j.memory_peak.max(desired as u64);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            lock(&self.journal).limit_hit.get_or_insert(LimitKind::TableElements);
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

/// The `types` interface has no functions.
impl crate::bindings::types::Host for HostState {}

/// Milliseconds since `start`, saturated.
pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
