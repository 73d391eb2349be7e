//! The invocation ledger's operations: one invocation's entry, for its tenant (or, platform-wide,
//! for a `plugins.admin` caller). Entries are written with the test or health check they record
//! (`integrations.rs`, `health.rs`) and pruned by the health scheduler.

use uuid::Uuid;

use super::{Caller, Catalog, ServiceError};
use crate::ledger::{InvocationFilter, InvocationPosition, LedgerEntry};

/// Whose invocations a caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerScope {
    /// This tenant's only (another tenant's invocation does not exist).
    Tenant(String),
    /// Every tenant's (a `plugins.admin` caller).
    Platform,
}

impl LedgerScope {
    /// The scope of a caller's own tenant.
    pub fn of(caller: &Caller) -> Self {
        Self::Tenant(caller.tenant.clone())
    }

    fn tenant(&self) -> Option<&str> {
        match self {
            Self::Tenant(t) => Some(t),
            Self::Platform => None,
        }
    }
}

impl Catalog {
    /// One invocation's entry, with its record, within `scope`.
    pub async fn invocation(&self, scope: &LedgerScope, id: Uuid) -> Result<LedgerEntry, ServiceError> {
        self.store.invocation(scope.tenant(), id).await?.ok_or(ServiceError::InvocationNotFound)
    }

    /// A newest-first page of entries (without their records) within `scope`.
    pub async fn invocations(
        &self,
        scope: &LedgerScope,
        filter: &InvocationFilter,
        after: Option<&InvocationPosition>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, ServiceError> {
        Ok(self.store.invocations(scope.tenant(), filter, after, limit).await?)
    }
}
