//! The audit trails: what happened to each integration, who did it and when, chained per tenant by
//! hash; and the platform's trail of which connector code was submitted, approved, rejected and
//! activated, chained the same way. An edit or a deletion in the database is found by
//! `stella-integrations audit verify`. The store numbers and chains the entries as it writes them
//! ([`crate::store::IntegrationStore::apply`], [`crate::store::PluginStore::apply_plugin`]); this
//! module says what an entry is and how its hash is computed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::rfc3339;

/// What happened to an integration: the `action` of its audit entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// Created (`POST /integrations`, or an import).
    Created,
    /// What a client sets was replaced (`PUT /{id}`, or an import).
    Updated,
    /// Deleted.
    Deleted,
    /// Submitted for verification; the details name the approver.
    Activated,
    /// A connection test ran; the details carry its result and invocation id.
    Tested,
    /// Taken out of service, with a reason and maybe a ticket.
    Paused,
    /// Returned to service.
    Resumed,
    /// A scheduled health check moved its lifecycle or its health (by the actor `scheduler`).
    HealthChecked,
}

impl AuditAction {
    /// Every action, in the order of the documentation.
    pub const ALL: [AuditAction; 8] = [
        Self::Created,
        Self::Updated,
        Self::Deleted,
        Self::Activated,
        Self::Tested,
        Self::Paused,
        Self::Resumed,
        Self::HealthChecked,
    ];

    /// The name used in JSON, in the database and in the hash.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Activated => "activated",
            Self::Tested => "tested",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::HealthChecked => "health-checked",
        }
    }

    /// Parses the name used in JSON and in the database.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for PluginAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor of what the health scheduler does.
pub const SCHEDULER: &str = "scheduler";

/// An audit entry before the store numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDraft {
    /// What happened.
    pub action: AuditAction,
    /// Who did it (the token's subject, or [`SCHEDULER`]).
    pub actor: String,
    /// When.
    pub at: OffsetDateTime,
    /// What the spec asks to record for this action; never a secret.
    pub details: serde_json::Value,
}

/// An audit entry as stored: numbered per tenant and chained by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// The tenant.
    pub tenant_id: String,
    /// The integration.
    pub integration_id: Uuid,
    /// What happened.
    pub action: AuditAction,
    /// Who did it.
    pub actor: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Details of the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous entry of the tenant (64 zeros for the first).
    pub prev_hash: String,
    /// sha256 of this entry's canonical form, which includes `prevHash`.
    pub hash: String,
}

/// The hash of the chain before its first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEntry {
    /// The entry that follows `prev_hash` at `seq` in the chain, with its hash.
    pub fn chained(seq: i64, tenant_id: &str, integration_id: Uuid, draft: &AuditDraft, prev_hash: String) -> Self {
        let mut entry = Self {
            seq,
            tenant_id: tenant_id.to_string(),
            integration_id,
            action: draft.action,
            actor: draft.actor.clone(),
            at: draft.at,
            details: draft.details.clone(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// sha256 (hex) over the entry's canonical JSON without its own hash: fields in a fixed order,
    /// the time in RFC 3339, the details with sorted keys.
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Canonical<'a> {
            seq: i64,
            tenant_id: &'a str,
            integration_id: String,
            action: &'a str,
            actor: &'a str,
            at: String,
            details: &'a serde_json::Value,
            prev_hash: &'a str,
        }
        let canonical = Canonical {
            seq: self.seq,
            tenant_id: &self.tenant_id,
            integration_id: self.integration_id.to_string(),
            action: self.action.as_str(),
            actor: &self.actor,
            at: rfc3339(self.at),
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&canonical).expect("the canonical entry serializes");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// An entry of a hash chain, as [`ChainCheck`] walks it.
pub trait ChainLink {
    /// Its position, the hash of the entry before it, and its own stored hash.
    fn link(&self) -> (i64, &str, &str);
    /// Its hash as computed from its content.
    fn compute_hash(&self) -> String;
}

impl ChainLink for AuditEntry {
    fn link(&self) -> (i64, &str, &str) {
        (self.seq, &self.prev_hash, &self.hash)
    }
    fn compute_hash(&self) -> String {
        AuditEntry::compute_hash(self)
    }
}

/// What happened to connector code: the `action` of the platform's audit entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginAction {
    /// A component was submitted (API, `plugins/` directory or registry pull) and stored.
    Submitted,
    /// A pending version was approved, by a reviewer or by the `narrower-signed` policy.
    Approved,
    /// A pending version was rejected.
    Rejected,
    /// A version became the one its provider's integrations run.
    Activated,
}

impl PluginAction {
    /// Every action, in the order of the documentation.
    pub const ALL: [PluginAction; 4] = [Self::Submitted, Self::Approved, Self::Rejected, Self::Activated];

    /// The name used in JSON, in the database and in the hash.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Activated => "activated",
        }
    }

    /// Parses the name used in JSON and in the database.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A platform audit entry before the store numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginAuditDraft {
    /// What happened.
    pub action: PluginAction,
    /// The connector's provider id.
    pub provider: String,
    /// Its version.
    pub version: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Who did it (a token's subject, `plugins-directory`, or `auto-approve`).
    pub actor: String,
    /// When.
    pub at: OffsetDateTime,
    /// What else a reviewer needs (the permissions digest approved, a reason, the signer).
    pub details: serde_json::Value,
}

/// An entry of the platform's audit trail, as stored: numbered and chained by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginAuditEntry {
    /// Position in the platform's chain, from 1.
    pub seq: i64,
    /// What happened.
    pub action: PluginAction,
    /// The connector's provider id.
    pub provider: String,
    /// Its version.
    pub version: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Who did it.
    pub actor: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Details of the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// sha256 of this entry's canonical form, which includes `prevHash`.
    pub hash: String,
}

impl PluginAuditEntry {
    /// The entry that follows `prev_hash` at `seq`, with its hash.
    pub fn chained(seq: i64, draft: &PluginAuditDraft, prev_hash: String) -> Self {
        let mut entry = Self {
            seq,
            action: draft.action,
            provider: draft.provider.clone(),
            version: draft.version.clone(),
            sha256: draft.sha256.clone(),
            actor: draft.actor.clone(),
            at: draft.at,
            details: draft.details.clone(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = ChainLink::compute_hash(&entry);
        entry
    }
}

impl ChainLink for PluginAuditEntry {
    fn link(&self) -> (i64, &str, &str) {
        (self.seq, &self.prev_hash, &self.hash)
    }

    /// sha256 (hex) over the entry's canonical JSON without its own hash, as for tenants' entries.
    fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Canonical<'a> {
            seq: i64,
            action: &'a str,
            provider: &'a str,
            version: &'a str,
            sha256: &'a str,
            actor: &'a str,
            at: String,
            details: &'a serde_json::Value,
            prev_hash: &'a str,
        }
        let canonical = Canonical {
            seq: self.seq,
            action: self.action.as_str(),
            provider: &self.provider,
            version: &self.version,
            sha256: &self.sha256,
            actor: &self.actor,
            at: rfc3339(self.at),
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&canonical).expect("the canonical entry serializes");
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The tenant id under which the platform's chain is reported, and its events are kept in the
/// outbox: empty, which no token's tenant can be.
pub const PLATFORM: &str = "";

/// The first entry of a tenant's chain (or the platform's) that does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreak {
    /// The tenant ([`PLATFORM`], empty, for the platform's chain of connector admissions).
    pub tenant_id: String,
    /// The entry's position.
    pub seq: i64,
    /// What is wrong.
    pub problem: String,
}

/// What `audit verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// Tenants checked.
    pub tenants: usize,
    /// Entries checked (the platform's among them).
    pub entries: usize,
    /// The chains that are broken, one entry per tenant.
    pub breaks: Vec<ChainBreak>,
}

/// Walks one tenant's chain: feed it the entries in order, then `finish` with the tenant's head.
#[derive(Debug)]
pub struct ChainCheck {
    seq: i64,
    prev: String,
    problem: Option<(i64, String)>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self { seq: 0, prev: GENESIS_HASH.to_string(), problem: None }
    }
}

impl ChainCheck {
    /// The seq after which to read the next entries.
    pub fn last_seq(&self) -> i64 {
        self.seq
    }

    /// Checks the next entry; `false` once the chain is found broken (read no further).
    pub fn next(&mut self, entry: &impl ChainLink) -> bool {
        let (seq, prev_hash, hash) = entry.link();
        let found = if seq != self.seq + 1 {
            Some(format!("entry {} is missing", self.seq + 1))
        } else if prev_hash != self.prev {
            Some("its previous hash does not match the entry before it".to_string())
        } else if entry.compute_hash() != hash {
            Some("its content does not match its hash".to_string())
        } else {
            None
        };
        if let Some(p) = found {
            self.problem = Some((seq, p));
            return false;
        }
        self.seq = seq;
        self.prev = hash.to_string();
        true
    }

    /// Records that the entry at `seq` cannot be read as an entry; always `false` (read no
    /// further).
    pub fn refuse(&mut self, seq: i64, problem: String) -> bool {
        self.problem = Some((seq, problem));
        false
    }

    /// The break, if any, given the tenant's head (its last seq and hash).
    pub fn finish(self, tenant_id: String, head_seq: i64, head_hash: &str) -> Option<ChainBreak> {
        let problem = match self.problem {
            Some(problem) => Some(problem),
            None if self.seq != head_seq || self.prev != head_hash => {
                Some((head_seq, format!("the chain ends at {} but the tenant's head is at {head_seq}", self.seq)))
            }
            None => None,
        };
        problem.map(|(seq, problem)| ChainBreak { tenant_id, seq, problem })
    }
}

#[cfg(test)]
mod tests {
    use super::{AuditAction, PluginAction};
    use crate::events::EventType;

    /// The README is where API consumers find these names; it must name every one.
    #[test]
    fn the_readme_lists_every_audit_action_and_event_type() {
        let readme = include_str!("../../README.md");
        for action in PluginAction::ALL {
            assert!(readme.contains(&format!("`{action}`")), "README.md does not list the plugin action `{action}`");
        }
        for action in AuditAction::ALL {
            assert!(readme.contains(&format!("`{action}`")), "README.md does not list the audit action `{action}`");
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
        for event in EventType::ALL {
            let short = event.as_str().trim_start_matches("integration");
            assert!(
                readme.contains(&format!("`{}`", event.as_str())) || readme.contains(&format!("`{short}`")),
                "README.md does not list the event type `{}`",
                event.as_str()
            );
            assert_eq!(serde_json::to_value(event).unwrap(), event.as_str());
        }
    }
}
