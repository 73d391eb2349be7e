//! The invocation ledger's operations: one invocation's entry, for its tenant (or, platform-wide,
//! for a `plugins.admin` caller). Entries are written with the test or health check they record
//! (`integrations.rs`, `health.rs`) and pruned by the health scheduler.

use uuid::Uuid;

use super::{Caller, Catalog, ServiceError};
use crate::ledger::LedgerEntry;

/// Whose invocations a caller may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerScope<'a> {
    /// The caller's tenant only (another tenant's invocation does not exist).
    Tenant(&'a Caller),
    /// Every tenant's (a `plugins.admin` caller).
    Platform,
}

impl Catalog {
    /// One invocation's entry, within `scope`.
    pub async fn invocation(&self, scope: LedgerScope<'_>, id: Uuid) -> Result<LedgerEntry, ServiceError> {
        let tenant = match scope {
            LedgerScope::Tenant(caller) => Some(caller.tenant.as_str()),
            LedgerScope::Platform => None,
        };
        self.store.invocation(tenant, id).await?.ok_or(ServiceError::InvocationNotFound)
    }
}
