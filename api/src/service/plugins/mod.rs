//! The plugin store's operations: submit connector code (API, `plugins/` directory), review it
//! (versions, approve, reject, activate) and keep this replica's loaded connectors equal to the
//! store's active set.
//!
//! - `submit.rs`: submission (API, registry pull, `plugins/` directory);
//! - `review.rs`: approve, reject, activate;
//! - `active.rs`: the loaded connectors kept equal to the store's active set;
//! - this file: what a version looks like to callers, and the reads.
//!
//! Platform-wide: a caller here is a `plugins.admin` reviewer, whatever its tenant; the tenant is
//! recorded beside the subject in the platform's audit trail.

mod active;
mod review;
mod submit;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use stella_runtime::catalog::{ConnectorCatalog, LoadFailure};

use super::{Catalog, ServiceError};
use crate::audit::{PluginAction, PluginAuditDraft, PluginAuditEntry};
use crate::domain::now;
use crate::events::{EventDraft, EventType};
use crate::identity::{ConnectorsReader, PluginsAdmin};
use crate::plugins::{MAX_VERSIONS_PER_PROVIDER, PermissionDiff, PermissionSet, PluginStatus, PluginVersion};

/// Provider ids a connector may not take: they are path segments of the plugin routes.
pub const RESERVED_PROVIDERS: [&str; 1] = ["pull"];
/// Longest rejection reason.
const MAX_REASON_CHARS: usize = 1024;

/// The most pending versions [`Catalog::pending_plugins`] answers.
pub const MAX_PENDING_SHOWN: u32 = 200;

/// A version as the API shows it: with its permission diff against the active version while it
/// is pending.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersionView {
    /// The version.
    #[serde(flatten)]
    pub version: PluginVersion,
    /// For a pending version: how its permissions differ from the active version's (the
    /// built-in, or none for a new provider).
    pub diff: Option<PermissionDiff>,
}

/// What a submission did.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The version stored (or found stored: the same bytes were submitted before).
    pub view: PluginVersionView,
    /// Whether this submission stored it.
    pub created: bool,
}

/// The connectors this replica serves: the built-ins, replaced by provider with the store's active
/// versions, and the generation of the active set they were loaded from.
pub(crate) struct ActiveSet {
    builtins: Arc<ConnectorCatalog>,
    current: RwLock<Arc<ConnectorCatalog>>,
    /// The generation loaded; held while a refresh runs, so refreshes do not overlap.
    loaded: tokio::sync::Mutex<Option<i64>>,
    /// What the plugins directory could not submit at start.
    directory_failures: RwLock<Vec<LoadFailure>>,
    /// Submissions compile one component at a time.
    compiling: tokio::sync::Semaphore,
}

impl ActiveSet {
    pub(crate) fn new(builtins: Arc<ConnectorCatalog>) -> Self {
        Self {
            current: RwLock::new(builtins.clone()),
            builtins,
            loaded: tokio::sync::Mutex::new(None),
            directory_failures: RwLock::new(Vec::new()),
            compiling: tokio::sync::Semaphore::new(1),
        }
    }

    pub(crate) fn current(&self) -> Arc<ConnectorCatalog> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::fmt::Debug for ActiveSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSet").finish_non_exhaustive()
    }
}

fn not_found() -> ServiceError {
    ServiceError::PluginNotFound
}

/// What a new version is compared with.
struct ActivePermissions {
    /// `built-in` or the active version.
    label: String,
    /// The stored active version (none: the built-in serves).
    stored_version: Option<String>,
    permissions: PermissionSet,
    signed_by: Option<String>,
}

fn version_taken(provider: &str, version: &str, sha256: &str) -> ServiceError {
    ServiceError::plugin_conflict(format!(
        "version {version} of `{provider}` is already stored with other bytes (sha256 {sha256}); versions are \
         immutable: give the new build a new version"
    ))
}

fn draft(v: &PluginVersion, action: PluginAction, actor: &str, details: serde_json::Value) -> PluginAuditDraft {
    PluginAuditDraft {
        action,
        provider: v.provider.clone(),
        version: v.version.clone(),
        sha256: v.sha256.clone(),
        actor: actor.to_string(),
        at: now(),
        details,
    }
}

fn event(event_type: EventType, v: &PluginVersion) -> EventDraft {
    EventDraft {
        event_type,
        data: serde_json::json!({
            "provider": v.provider,
            "version": v.version,
            "sha256": v.sha256,
            "permissionsDigest": v.permissions_digest,
            "signedBy": v.signed_by,
        }),
    }
}

impl Catalog {
    /// A provider's versions, newest first.
    pub async fn plugin_versions(
        &self,
        _: &PluginsAdmin,
        provider: &str,
    ) -> Result<Vec<PluginVersionView>, ServiceError> {
        let mut views = Vec::new();
        for v in self.store.plugin_versions(provider, MAX_VERSIONS_PER_PROVIDER as u32).await? {
            views.push(self.view(v).await?);
        }
        Ok(views)
    }

    /// Who signed each provider's active stored version, by provider (`unsigned`, or `unsigned
    /// (allowed by exception)`, when nobody did): what a reader of the loaded connectors is
    /// shown of their signatures.
    pub async fn active_signers(
        &self,
        _: &ConnectorsReader,
    ) -> Result<std::collections::HashMap<String, String>, ServiceError> {
        let (_, active) = self.store.active_plugins().await?;
        Ok(active
            .into_iter()
            .map(|a| {
                let signer = match (a.signed_by, a.unsigned_exception) {
                    (Some(signer), _) => signer,
                    (None, true) => "unsigned (allowed by exception)".to_string(),
                    (None, false) => "unsigned".to_string(),
                };
                (a.provider, signer)
            })
            .collect())
    }

    /// The versions waiting for a decision, of every provider, newest first (at most
    /// [`MAX_PENDING_SHOWN`]), each with its permission diff.
    pub async fn pending_plugins(&self, _: &PluginsAdmin) -> Result<Vec<PluginVersionView>, ServiceError> {
        let mut views = Vec::new();
        for v in self.store.pending_plugin_versions(MAX_PENDING_SHOWN).await? {
            views.push(self.view(v).await?);
        }
        Ok(views)
    }

    /// One version.
    pub async fn plugin_version(
        &self,
        _: &PluginsAdmin,
        provider: &str,
        version: &str,
    ) -> Result<PluginVersionView, ServiceError> {
        self.version_view(provider, version).await
    }

    async fn version_view(&self, provider: &str, version: &str) -> Result<PluginVersionView, ServiceError> {
        let stored = self.store.plugin_version(provider, version).await?.ok_or_else(not_found)?;
        self.view(stored).await
    }

    /// A page of the platform's audit trail, oldest first, after `after_seq`.
    pub async fn plugin_audit(
        &self,
        _: &PluginsAdmin,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<PluginAuditEntry>, ServiceError> {
        Ok(self.store.plugin_audit(after_seq, limit).await?)
    }

    /// The admission policy in effect.
    pub fn admission_policy(&self, _: &PluginsAdmin) -> &crate::plugins::AdmissionPolicy {
        &self.admission
    }

    /// The connectors this replica serves now, as a reader sees them.
    pub fn loaded_connectors(&self, _: &ConnectorsReader) -> Arc<ConnectorCatalog> {
        self.connectors()
    }

    /// The version with its diff, while pending.
    async fn view(&self, version: PluginVersion) -> Result<PluginVersionView, ServiceError> {
        let diff = if version.status == PluginStatus::Pending {
            let active = self.active_permissions(&version.provider).await?;
            Some(version.permissions.diff(active.as_ref().map(|a| (a.label.as_str(), &a.permissions))))
        } else {
            None
        };
        Ok(PluginVersionView { version, diff })
    }

    /// The permissions the provider's active version has: the stored active version's, else the
    /// built-in's, else none (a new provider).
    async fn active_permissions(&self, provider: &str) -> Result<Option<ActivePermissions>, ServiceError> {
        if let Some(active) = self.store.active_plugin(provider).await? {
            return Ok(Some(ActivePermissions {
                label: active.version.clone(),
                stored_version: Some(active.version),
                permissions: active.permissions,
                signed_by: active.signed_by,
            }));
        }
        Ok(self.active.builtins.get(provider).map(|builtin| ActivePermissions {
            label: "built-in".into(),
            stored_version: None,
            permissions: PermissionSet::of(builtin.manifest(), builtin.imports()),
            signed_by: None,
        }))
    }
}
