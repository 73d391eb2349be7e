//! Review: a reviewer approves exactly the permissions shown, rejects with a reason, or activates
//! an approved version (a rollback); each decision is one `PluginChange`.

use crate::audit::PluginAction;
use crate::domain::now;
use crate::events::EventType;
use crate::identity::PluginsAdmin;
use crate::plugins::{PluginStatus, PluginVersion};
use crate::service::{Catalog, ServiceError};
use crate::store::{Activation, PluginChange, PluginWrite, StoreError};

use super::{MAX_REASON_CHARS, PluginVersionView, draft, event, not_found};

impl Catalog {
    /// Approves a pending version whose permissions digest is `digest` (what the reviewer saw),
    /// and makes it active.
    pub async fn approve_plugin(
        &self,
        admin: &PluginsAdmin,
        provider: &str,
        version: &str,
        digest: &str,
    ) -> Result<PluginVersionView, ServiceError> {
        let caller = admin.caller();
        let stored = pending(self.store.plugin_version(provider, version).await?.ok_or_else(not_found)?)?;
        self.admission.admits(provider, stored.signed_by.as_deref()).map_err(ServiceError::plugin_conflict)?;
        // The refusal does not name the version's digest: a script that read it from here could
        // approve permissions nobody reviewed. The digest is shown beside the permissions only.
        if digest != stored.permissions_digest {
            return Err(ServiceError::plugin_conflict(format!(
                "the permissions digest given is not this version's: read version {version} of `{provider}` again, \
                 review its permissions and their diff, and approve the digest shown with them"
            )));
        }
        let at = now();
        let who = serde_json::json!({"tenant": caller.tenant, "permissionsDigest": digest});
        let change = PluginChange {
            provider: provider.into(),
            version: version.into(),
            write: PluginWrite::Decide {
                from: PluginStatus::Pending,
                to: PluginStatus::Approved,
                by: caller.subject.clone(),
                at,
                reason: None,
            },
            activate: Some(Activation { by: caller.subject.clone(), at }),
            expect_active: None,
            audit: vec![
                draft(&stored, PluginAction::Approved, &caller.subject, who.clone()),
                draft(&stored, PluginAction::Activated, &caller.subject, serde_json::json!({"tenant": caller.tenant})),
            ],
            events: vec![event(EventType::PluginApproved, &stored), event(EventType::PluginActivated, &stored)],
        };
        self.decide(change).await?;
        self.version_view(provider, version).await
    }

    /// Rejects a pending version, with a reason.
    pub async fn reject_plugin(
        &self,
        admin: &PluginsAdmin,
        provider: &str,
        version: &str,
        reason: &str,
    ) -> Result<PluginVersionView, ServiceError> {
        let caller = admin.caller();
        let stored = self.store.plugin_version(provider, version).await?.ok_or_else(not_found)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(vec![crate::domain::FieldError {
                field: "reason".into(),
                message: format!("must be 1 to {MAX_REASON_CHARS} characters, not blank, without control characters"),
            }]));
        }
        let stored = pending(stored)?;
        let change = PluginChange {
            provider: provider.into(),
            version: version.into(),
            write: PluginWrite::Decide {
                from: PluginStatus::Pending,
                to: PluginStatus::Rejected,
                by: caller.subject.clone(),
                at: now(),
                reason: Some(reason.to_string()),
            },
            activate: None,
            expect_active: None,
            audit: vec![draft(
                &stored,
                PluginAction::Rejected,
                &caller.subject,
                serde_json::json!({"tenant": caller.tenant, "reason": reason}),
            )],
            events: vec![event(EventType::PluginRejected, &stored)],
        };
        self.decide(change).await?;
        self.version_view(provider, version).await
    }

    /// Makes an approved version the active one (a rollback, or forward again). Activating the
    /// active version changes nothing.
    pub async fn activate_plugin(
        &self,
        admin: &PluginsAdmin,
        provider: &str,
        version: &str,
    ) -> Result<PluginVersionView, ServiceError> {
        let caller = admin.caller();
        let stored = self.store.plugin_version(provider, version).await?.ok_or_else(not_found)?;
        if stored.status != PluginStatus::Approved {
            return Err(ServiceError::plugin_conflict(format!(
                "version {version} of `{provider}` is {}; only an approved version can be activated",
                stored.status.as_str()
            )));
        }
        if stored.active {
            return self.view(stored).await;
        }
        self.admission.admits(provider, stored.signed_by.as_deref()).map_err(ServiceError::plugin_conflict)?;
        let change = PluginChange {
            provider: provider.into(),
            version: version.into(),
            write: PluginWrite::None,
            activate: Some(Activation { by: caller.subject.clone(), at: now() }),
            expect_active: None,
            audit: vec![draft(
                &stored,
                PluginAction::Activated,
                &caller.subject,
                serde_json::json!({"tenant": caller.tenant}),
            )],
            events: vec![event(EventType::PluginActivated, &stored)],
        };
        self.decide(change).await?;
        self.version_view(provider, version).await
    }

    async fn decide(&self, change: PluginChange) -> Result<(), ServiceError> {
        let activates = change.activate.is_some();
        match self.store.apply_plugin(change).await {
            Ok(()) => {}
            Err(StoreError::StatusChanged) => {
                return Err(ServiceError::plugin_conflict(
                    "the version's status changed while this decision was made; read it again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if activates {
            self.refresh_after_commit().await;
        }
        Ok(())
    }
}

/// The version, if it is pending: a decision on any other is a conflict.
fn pending(stored: PluginVersion) -> Result<PluginVersion, ServiceError> {
    if stored.status == PluginStatus::Pending {
        return Ok(stored);
    }
    Err(ServiceError::plugin_conflict(format!(
        "version {} of `{}` is {}, not pending",
        stored.version,
        stored.provider,
        stored.status.as_str()
    )))
}
