//! The invocation ledger's operations: one invocation's entry, for its tenant (or, platform-wide,
//! for a `plugins.admin` caller). Entries are written with the test or health check they record
//! (`integrations.rs`, `health.rs`) and pruned by the health scheduler.

use uuid::Uuid;

use super::{Catalog, ServiceError};
use crate::identity::Auditor;
use crate::ledger::{EgressReport, InvocationFilter, InvocationPosition, LedgerEntry};
use crate::query::{InvocationQuery, Page, PageRequest};

/// Entries read per page by the egress report.
const REPORT_PAGE: u32 = 500;
/// The most entries one egress report reads (the newest first); beyond, it says it is truncated.
pub const MAX_REPORT_INVOCATIONS: usize = 50_000;

impl Catalog {
    /// One invocation's entry, with its record, within the auditor's scope.
    pub async fn invocation(&self, auditor: &Auditor, id: Uuid) -> Result<LedgerEntry, ServiceError> {
        self.store.invocation(auditor.scope().tenant(), id).await?.ok_or(ServiceError::InvocationNotFound)
    }

    /// A newest-first page of entries (without their records) within the auditor's scope.
    pub async fn invocations(
        &self,
        auditor: &Auditor,
        query: &InvocationQuery,
    ) -> Result<Page<LedgerEntry>, ServiceError> {
        let (filter, page) = (&query.filter, &query.page);
        // One more than the page, to know whether another follows.
        let rows =
            self.store.invocations(auditor.scope().tenant(), filter, page.after.as_ref(), page.limit + 1).await?;
        Ok(Page::of(rows, page.limit, InvocationPosition::of))
    }

    /// How `provider`'s invocations within the auditor's scope since `since_ms` used the network and their
    /// permissions, against what its loaded manifest declares.
    pub async fn egress_report(
        &self,
        auditor: &Auditor,
        provider: &str,
        since_ms: i64,
    ) -> Result<EgressReport, ServiceError> {
        let filter =
            InvocationFilter { provider: Some(provider.to_string()), since_ms: Some(since_ms), ..Default::default() };
        let mut query = InvocationQuery { filter, page: PageRequest::first(REPORT_PAGE) };
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut truncated = false;
        loop {
            let page = self.invocations(auditor, &query).await?;
            query.page.after = page.next();
            entries.extend(page.items);
            if entries.len() >= MAX_REPORT_INVOCATIONS {
                truncated = query.page.after.is_some();
                break;
            }
            if query.page.after.is_none() {
                break;
            }
        }
        let connectors = self.connectors();
        // A provider that is not loaded keeps its history (a connector removed since); one that
        // has neither is not a provider, and an empty report would say it is.
        if entries.is_empty() && connectors.get(provider).is_none() {
            return Err(ServiceError::ProviderNotFound);
        }
        let permissions = connectors.get(provider).map(|c| &c.manifest().permissions);
        let since = crate::domain::from_unix_ms(since_ms);
        Ok(EgressReport::of(provider, since, permissions, &entries, truncated))
    }
}
