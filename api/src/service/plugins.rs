//! The plugin store's operations: submit connector code (API, `plugins/` directory), review it
//! (versions, approve, reject, activate) and keep this replica's loaded connectors equal to the
//! store's active set.
//!
//! Platform-wide: a caller here is a `plugins.admin` reviewer, whatever its tenant; the tenant is
//! recorded beside the subject in the platform's audit trail.

use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use stella_runtime::catalog::{ConnectorCatalog, LoadFailure};
use stella_runtime::{ConnectorSource, LoadedConnector};

use super::{Catalog, Logged, ServiceError, Shown};
use crate::audit::{PluginAction, PluginAuditDraft, PluginAuditEntry};
use crate::domain::now;
use crate::events::{EventDraft, EventType};
use crate::identity::{ConnectorsReader, PluginsAdmin};
use crate::plugins::policy::MAX_SIGNATURES;
use crate::plugins::{
    AUTO_APPROVE_ACTOR, DIRECTORY_ACTOR, MAX_VERSIONS_PER_PROVIDER, PermissionDiff, PermissionSet, PluginStatus,
    PluginVersion, Signatures,
};
use crate::store::{Activation, PluginChange, PluginWrite, StoreError};

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

impl Catalog {
    /// Stores a component as a version of its provider, after the sandbox's load-time checks and
    /// the signature policy; it is approved at once only under `narrower-signed`. The same bytes
    /// submitted again answer the version stored (`created: false`).
    pub async fn submit_plugin(
        &self,
        admin: &PluginsAdmin,
        bytes: Vec<u8>,
        signatures: Signatures,
        origin: String,
    ) -> Result<Submitted, ServiceError> {
        let caller = admin.caller();
        self.admit(&caller.subject, Some(&caller.tenant), bytes, signatures, origin).await
    }

    /// [`Catalog::submit_plugin`] for `actor` (a reviewer of `tenant`, or the plugins directory).
    async fn admit(
        &self,
        actor: &str,
        tenant: Option<&str>,
        bytes: Vec<u8>,
        signatures: Signatures,
        origin: String,
    ) -> Result<Submitted, ServiceError> {
        if signatures.files.len() + signatures.images.len() > MAX_SIGNATURES {
            return Err(ServiceError::refused(format!(
                "at most {MAX_SIGNATURES} signatures are read with one component"
            )));
        }
        // The cheap checks first (size, what the component says it is, its signatures), so that
        // nothing unsigned reaches the compiler when signatures are required.
        let limit = self.sandbox.config().max_component_bytes;
        if bytes.len() as u64 > limit {
            return Err(ServiceError::refused(format!("the component is {} bytes; the limit is {limit}", bytes.len())));
        }
        let description =
            stella_runtime::inspect::describe(&bytes).map_err(|e| ServiceError::refused(e.to_string()))?;
        let provider = description.manifest.connector.provider.clone();
        if RESERVED_PROVIDERS.contains(&provider.as_str()) {
            return Err(ServiceError::refused(format!("the provider id `{provider}` is reserved")));
        }
        if let Some(stored) = self.store.plugin_version_by_sha256(&description.sha256).await? {
            return Ok(Submitted { view: self.view(stored).await?, created: false });
        }
        let check = self.admission.check_signatures(&provider, &bytes, &signatures).map_err(ServiceError::refused)?;
        // Then every load-time check, compilation included: off the async threads, and one
        // component at a time per replica (compiling a large one takes seconds and hundreds of MiB).
        let loaded = {
            let _one_at_a_time =
                self.active.compiling.acquire().await.map_err(|e| ServiceError::internal(e.to_string()))?;
            let sandbox = self.sandbox.clone();
            let (loaded, returned) =
                tokio::task::spawn_blocking(move || (sandbox.load(&bytes, ConnectorSource::Stored), bytes))
                    .await
                    .map_err(|e| ServiceError::internal(format!("the load-time checks did not finish: {e}")))?;
            (loaded.map_err(|e| ServiceError::refused(e.to_string()))?, returned)
        };
        let (loaded, bytes) = loaded;
        let manifest = loaded.manifest().clone();
        let version = manifest.connector.version.clone();
        let permissions = PermissionSet::of(&manifest, loaded.imports());
        if check.unsigned_exception {
            tracing::warn!(%provider, %version, sha256 = %loaded.sha256(), "connector admitted unsigned under the policy's named exception");
        }
        // Compared with the active version as it is when the change commits: an activation that
        // lands in between (a rollback) is compared again rather than undone.
        for _ in 0..super::MAX_APPLY_ATTEMPTS {
            let active = self.active_permissions(&provider).await?;
            let diff = permissions.diff(active.as_ref().map(|a| (a.label.as_str(), &a.permissions)));
            let active_signer = active.as_ref().and_then(|a| a.signed_by.as_deref());
            let at_once = self.admission.approves_at_once(check.signed_by.as_deref(), active_signer, &diff);
            let at = now();
            let row = PluginVersion {
                provider: provider.clone(),
                version: version.clone(),
                sha256: loaded.sha256().to_string(),
                size: loaded.size(),
                status: if at_once { PluginStatus::Approved } else { PluginStatus::Pending },
                active: at_once,
                permissions_digest: permissions.digest(),
                manifest: manifest.clone(),
                permissions: permissions.clone(),
                signatures: check.signatures.clone(),
                signed_by: check.signed_by.clone(),
                unsigned_exception: check.unsigned_exception,
                origin: origin.clone(),
                submitted_by: actor.to_string(),
                submitted_at: at,
                decided_by: at_once.then(|| AUTO_APPROVE_ACTOR.to_string()),
                decided_at: at_once.then_some(at),
                decision_reason: None,
            };
            let details = serde_json::json!({
                "tenant": tenant,
                "origin": row.origin,
                "signedBy": row.signed_by,
                "unsignedException": row.unsigned_exception,
                "permissionsDigest": row.permissions_digest,
            });
            let mut audit = vec![draft(&row, PluginAction::Submitted, actor, details)];
            let mut events = vec![event(EventType::PluginSubmitted, &row)];
            if at_once {
                let why = serde_json::json!({
                    "policy": "narrower-signed",
                    "permissionsDigest": row.permissions_digest,
                    "comparedWith": active.as_ref().map(|a| a.label.clone()),
                });
                audit.push(draft(&row, PluginAction::Approved, AUTO_APPROVE_ACTOR, why));
                audit.push(draft(&row, PluginAction::Activated, AUTO_APPROVE_ACTOR, serde_json::json!({})));
                events.push(event(EventType::PluginApproved, &row));
                events.push(event(EventType::PluginActivated, &row));
            }
            let change = PluginChange {
                provider: provider.clone(),
                version: version.clone(),
                activate: at_once.then(|| Activation { by: AUTO_APPROVE_ACTOR.into(), at }),
                expect_active: at_once.then(|| active.as_ref().and_then(|a| a.stored_version.clone())),
                write: PluginWrite::Submit { version: Box::new(row.clone()), bytes: bytes.clone() },
                audit,
                events,
            };
            match self.store.apply_plugin(change).await {
                Ok(()) => {}
                Err(StoreError::StatusChanged) => continue,
                Err(StoreError::TooManyVersions) => {
                    return Err(ServiceError::refused(format!(
                        "provider `{provider}` already has {MAX_VERSIONS_PER_PROVIDER} versions stored, the most kept"
                    )));
                }
                // A concurrent submission of the same bytes, or of the same version: answer as if
                // it had come first.
                Err(StoreError::VersionTaken) => {
                    return match self.store.plugin_version(&provider, &version).await? {
                        Some(stored) if stored.sha256 == row.sha256 => {
                            Ok(Submitted { view: self.view(stored).await?, created: false })
                        }
                        Some(stored) => Err(version_taken(&provider, &version, &stored.sha256)),
                        None => Err(ServiceError::KeptChanging("the version was stored")),
                    };
                }
                Err(e) => return Err(e.into()),
            }
            tracing::info!(%provider, %version, sha256 = %row.sha256, status = row.status.as_str(), %actor, "connector submitted");
            if at_once {
                self.refresh_after_commit().await;
            }
            let view = PluginVersionView { diff: (!at_once).then_some(diff), version: row };
            return Ok(Submitted { view, created: true });
        }
        Err(ServiceError::KeptChanging("the provider's active version was compared"))
    }

    /// Pulls a connector from a registry named in `plugins.registries`, pinned by its manifest
    /// digest, with the signatures beside it, and submits it (origin `oci:<registry>/<repo>@<digest>`).
    pub async fn pull_plugin(&self, admin: &PluginsAdmin, reference: &str) -> Result<Submitted, ServiceError> {
        let caller = admin.caller();
        use crate::plugins::oci;
        let invalid = |message: String| {
            ServiceError::Invalid(vec![crate::domain::FieldError { field: "reference".into(), message }])
        };
        let parsed = oci::parse_reference(reference).map_err(|e| invalid(e.to_string()))?;
        let Some(access) = self.admission.registries.get(parsed.registry()) else {
            return Err(ServiceError::refused(format!(
                "the registry `{}` is not one of plugins.registries; an operator must name it before connectors \
                 are pulled from it",
                parsed.registry()
            )));
        };
        let pulled =
            oci::pull(&parsed, access, self.sandbox.config().max_component_bytes).await.map_err(|e| match e {
                oci::OciError::BadReference(_) => invalid(e.to_string()),
                oci::OciError::Registry { summary, answer } => {
                    let summary = format!("the registry `{}`: {summary}", parsed.registry());
                    ServiceError::Upstream { shown: Shown(summary), logged: Logged(answer) }
                }
                oci::OciError::NotAConnector(_) => ServiceError::refused(e.to_string()),
            })?;
        tracing::info!(
            reference,
            pinned = %pulled.pinned,
            signature_files = pulled.signatures.files.len(),
            image_signatures = pulled.signatures.images.len(),
            "connector pulled"
        );
        self.admit(
            &caller.subject,
            Some(&caller.tenant),
            pulled.component,
            pulled.signatures,
            format!("oci:{}", pulled.pinned),
        )
        .await
    }

    /// Submits every `*.wasm` file of the plugins directory (sorted by name), each with the
    /// signatures beside it (`<file>.minisig`, `<file>.sig`), under the same policy as any other
    /// submission. A file that is refused is logged and listed with the load failures.
    pub async fn submit_directory(&self, dir: &Path) {
        let mut failures = Vec::new();
        let mut files: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(e) => {
                failures.push(LoadFailure {
                    source: dir.display().to_string(),
                    error: format!("cannot read the plugins directory: {e}"),
                });
                Vec::new()
            }
        };
        files.sort();
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let submitted = match read_with_signatures(&path, self.sandbox.config().max_component_bytes) {
                Ok((bytes, files)) => {
                    let signatures = Signatures { files, images: Vec::new() };
                    self.admit(DIRECTORY_ACTOR, None, bytes, signatures, format!("directory:{name}")).await
                }
                Err(e) => Err(ServiceError::refused(e)),
            };
            match submitted {
                Ok(s) => tracing::info!(
                    file = %path.display(),
                    provider = %s.view.version.provider,
                    version = %s.view.version.version,
                    status = s.view.version.status.as_str(),
                    active = s.view.version.active,
                    "plugins directory: file submitted"
                ),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "plugins directory: file refused");
                    failures.push(LoadFailure { source: path.display().to_string(), error: e.to_string() });
                }
            }
        }
        *self.active.directory_failures.write().unwrap_or_else(|e| e.into_inner()) = failures;
    }

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
        let stored = self.store.plugin_version(provider, version).await?.ok_or_else(not_found)?;
        if stored.status != PluginStatus::Pending {
            return Err(ServiceError::plugin_conflict(format!(
                "version {version} of `{provider}` is {}, not pending",
                stored.status.as_str()
            )));
        }
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
        if stored.status != PluginStatus::Pending {
            return Err(ServiceError::plugin_conflict(format!(
                "version {version} of `{provider}` is {}, not pending",
                stored.status.as_str()
            )));
        }
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

    /// Loads the store's active set when it changed since this replica last loaded it; `true`
    /// when it did. An active version that cannot be loaded here (a replica with a smaller
    /// component limit, say) leaves its provider as it was and is listed with the load failures.
    pub async fn refresh_connectors(&self) -> Result<bool, ServiceError> {
        let mut loaded = self.active.loaded.lock().await;
        if *loaded == Some(self.store.plugin_generation().await?) {
            return Ok(false);
        }
        let (generation, active) = self.store.active_plugins().await?;
        let current = self.active.current();
        let mut replacements: Vec<Arc<LoadedConnector>> = Vec::new();
        let mut failures = self.active.directory_failures.read().unwrap_or_else(|e| e.into_inner()).clone();
        for plugin in active {
            let source = format!("{} {} (sha256 {})", plugin.provider, plugin.version, plugin.sha256);
            // The policy in effect decides, also for code already active: a version whose signer
            // is no longer trusted (or that was admitted before signatures were required) does not
            // run; its provider falls back to the built-in, if there is one.
            if let Err(why) = self.admission.admits(&plugin.provider, plugin.signed_by.as_deref()) {
                tracing::error!(%source, reason = %why, "an active connector is refused by the admission policy");
                failures.push(LoadFailure { source, error: why });
                continue;
            }
            if let Some(c) = current.get(&plugin.provider).filter(|c| c.sha256() == plugin.sha256) {
                replacements.push(c.clone());
                continue;
            }
            let Some(bytes) = self.store.component(&plugin.sha256).await? else {
                failures.push(LoadFailure { source, error: "its component is missing from the store".into() });
                continue;
            };
            let sandbox = self.sandbox.clone();
            let result = tokio::task::spawn_blocking(move || sandbox.load(&bytes, ConnectorSource::Stored))
                .await
                .map_err(|e| ServiceError::internal(format!("loading an active connector did not finish: {e}")))?;
            let error = match result {
                Ok(c) if c.sha256() == plugin.sha256 && c.provider() == plugin.provider => {
                    tracing::info!(provider = %plugin.provider, version = %plugin.version, sha256 = %plugin.sha256,
                        compile_ms = c.compilation().compile_ms, "active connector loaded");
                    if plugin.unsigned_exception {
                        tracing::warn!(provider = %plugin.provider, version = %plugin.version,
                            "the active connector is unsigned, admitted under the policy's named exception");
                    }
                    replacements.push(Arc::new(c));
                    continue;
                }
                Ok(_) => "the stored component is not what was approved".to_string(),
                Err(e) => e.to_string(),
            };
            // What this replica served for the provider keeps serving (the load failure is
            // deterministic: a smaller component limit, say), and the failure is listed.
            tracing::warn!(%source, %error, "an active connector cannot be loaded by this replica; the previous one keeps serving");
            if let Some(previous) = current.get(&plugin.provider) {
                replacements.push(previous.clone());
            }
            failures.push(LoadFailure { source, error });
        }
        let next = Arc::new(self.active.builtins.with_replaced(replacements, failures));
        *self.active.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        *loaded = Some(generation);
        Ok(true)
    }

    /// Refreshes the loaded connectors every `interval` until the task is aborted, so that every
    /// replica serves the active set within about that long of a change made on another.
    pub async fn watch_plugins(self, interval: std::time::Duration) {
        loop {
            if let Err(e) = self.refresh_connectors().await {
                tracing::warn!(error = %e, "cannot refresh the active connectors; retrying");
            }
            tokio::time::sleep(interval).await;
        }
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

    /// Refreshes the loaded connectors after a change committed: a failure is logged (the
    /// watcher tries again within a second), never answered for a change that was made.
    async fn refresh_after_commit(&self) {
        if let Err(e) = self.refresh_connectors().await {
            tracing::warn!(error = %e, "the change is committed; this replica loads it on its next refresh");
        }
    }
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

/// A component file and the signatures beside it, each read within its limit.
fn read_with_signatures(path: &Path, max_bytes: u64) -> Result<(Vec<u8>, Vec<String>), String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?.len();
    if size > max_bytes {
        return Err(format!("the component is {size} bytes; the limit is {max_bytes}"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut signatures = Vec::new();
    for suffix in ["minisig", "sig"] {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        let sig = Path::new(&name);
        match std::fs::metadata(sig) {
            Ok(meta) if meta.len() > stella_runtime::signature::MAX_SIGNATURE_TEXT as u64 => {
                return Err(format!("{} is not a signature: it is {} bytes", sig.display(), meta.len()));
            }
            Ok(_) => signatures
                .push(std::fs::read_to_string(sig).map_err(|e| format!("cannot read {}: {e}", sig.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", sig.display())),
        }
    }
    Ok((bytes, signatures))
}
