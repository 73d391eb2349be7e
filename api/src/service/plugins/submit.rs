//! Submission: a component from the API, a registry (pulled by digest) or the `plugins/`
//! directory is screened, compiled once, compared with the active version and stored, pending or
//! (under `narrower-signed`) approved at once.

use std::path::Path;

use stella_runtime::catalog::LoadFailure;
use stella_runtime::{ConnectorSource, LoadedConnector};

use crate::audit::PluginAction;
use crate::domain::now;
use crate::events::EventType;
use crate::identity::PluginsAdmin;
use crate::plugins::SignatureCheck;
use crate::plugins::policy::MAX_SIGNATURES;
use crate::plugins::{
    AUTO_APPROVE_ACTOR, DIRECTORY_ACTOR, MAX_VERSIONS_PER_PROVIDER, PermissionSet, PluginStatus, PluginVersion,
    Signatures,
};
use crate::service::{Catalog, Logged, ServiceError, Shown};
use crate::store::{Activation, PluginChange, PluginWrite, StoreError};

use super::{PluginVersionView, RESERVED_PROVIDERS, Submitted, draft, event, version_taken};

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

    /// [`Catalog::submit_plugin`] for `actor` (a reviewer of `tenant`, or the plugins directory):
    /// screened, compiled, then stored.
    async fn admit(
        &self,
        actor: &str,
        tenant: Option<&str>,
        bytes: Vec<u8>,
        signatures: Signatures,
        origin: String,
    ) -> Result<Submitted, ServiceError> {
        let check = match self.screen(&bytes, &signatures).await? {
            Screened::StoredBefore(view) => return Ok(Submitted { view: *view, created: false }),
            Screened::New(check) => check,
        };
        let (loaded, bytes) = self.compile(bytes).await?;
        let submission = Submission { actor, tenant, origin, loaded, bytes, check };
        self.store_submission(submission).await
    }

    /// The cheap checks first (the number of signatures, the size, what the component says it is,
    /// its provider id, its signatures), so that nothing unsigned reaches the compiler when
    /// signatures are required; the same bytes stored before are that version.
    async fn screen(&self, bytes: &[u8], signatures: &Signatures) -> Result<Screened, ServiceError> {
        if signatures.files.len() + signatures.images.len() > MAX_SIGNATURES {
            return Err(ServiceError::refused(format!(
                "at most {MAX_SIGNATURES} signatures are read with one component"
            )));
        }
        let limit = self.sandbox.config().max_component_bytes;
        if bytes.len() as u64 > limit {
            return Err(ServiceError::refused(format!("the component is {} bytes; the limit is {limit}", bytes.len())));
        }
        let description = stella_runtime::inspect::describe(bytes).map_err(|e| ServiceError::refused(e.to_string()))?;
        let provider = &description.manifest.connector.provider;
        if RESERVED_PROVIDERS.contains(&provider.as_str()) {
            return Err(ServiceError::refused(format!("the provider id `{provider}` is reserved")));
        }
        if let Some(stored) = self.store.plugin_version_by_sha256(&description.sha256).await? {
            return Ok(Screened::StoredBefore(Box::new(self.view(stored).await?)));
        }
        let check = self.admission.check_signatures(provider, bytes, signatures).map_err(ServiceError::refused)?;
        Ok(Screened::New(check))
    }

    /// Every load-time check, compilation included: off the async threads, and one component at
    /// a time per replica (compiling a large one takes seconds and hundreds of MiB).
    async fn compile(&self, bytes: Vec<u8>) -> Result<(LoadedConnector, Vec<u8>), ServiceError> {
        let _one_at_a_time =
            self.active.compiling.acquire().await.map_err(|e| ServiceError::internal(e.to_string()))?;
        let sandbox = self.sandbox.clone();
        let (loaded, bytes) =
            tokio::task::spawn_blocking(move || (sandbox.load(&bytes, ConnectorSource::Stored), bytes))
                .await
                .map_err(|e| ServiceError::internal(format!("the load-time checks did not finish: {e}")))?;
        Ok((loaded.map_err(|e| ServiceError::refused(e.to_string()))?, bytes))
    }

    /// Stores a compiled submission, compared with the active version as it is when the change
    /// commits: an activation that lands in between (a rollback) is compared again rather than
    /// undone.
    async fn store_submission(&self, s: Submission<'_>) -> Result<Submitted, ServiceError> {
        let manifest = s.loaded.manifest().clone();
        let (provider, version) = (manifest.connector.provider.clone(), manifest.connector.version.clone());
        let permissions = PermissionSet::of(&manifest, s.loaded.imports());
        if s.check.unsigned_exception {
            tracing::warn!(%provider, %version, sha256 = %s.loaded.sha256(), "connector admitted unsigned under the policy's named exception");
        }
        for _ in 0..crate::service::MAX_APPLY_ATTEMPTS {
            let active = self.active_permissions(&provider).await?;
            let diff = permissions.diff(active.as_ref().map(|a| (a.label.as_str(), &a.permissions)));
            let active_signer = active.as_ref().and_then(|a| a.signed_by.as_deref());
            let at_once = self.admission.approves_at_once(s.check.signed_by.as_deref(), active_signer, &diff);
            let at = now();
            let row = PluginVersion {
                provider: provider.clone(),
                version: version.clone(),
                sha256: s.loaded.sha256().to_string(),
                size: s.loaded.size(),
                status: if at_once { PluginStatus::Approved } else { PluginStatus::Pending },
                active: at_once,
                permissions_digest: permissions.digest(),
                manifest: manifest.clone(),
                permissions: permissions.clone(),
                signatures: s.check.signatures.clone(),
                signed_by: s.check.signed_by.clone(),
                unsigned_exception: s.check.unsigned_exception,
                origin: s.origin.clone(),
                submitted_by: s.actor.to_string(),
                submitted_at: at,
                decided_by: at_once.then(|| AUTO_APPROVE_ACTOR.to_string()),
                decided_at: at_once.then_some(at),
                decision_reason: None,
            };
            let compared_with = active.as_ref().map(|a| a.label.clone());
            let (audit, events) = submission_trail(&row, s.actor, s.tenant, at_once.then_some(compared_with));
            let change = PluginChange {
                provider: provider.clone(),
                version: version.clone(),
                activate: at_once.then(|| Activation { by: AUTO_APPROVE_ACTOR.into(), at }),
                expect_active: at_once.then(|| active.as_ref().and_then(|a| a.stored_version.clone())),
                write: PluginWrite::Submit { version: Box::new(row.clone()), bytes: s.bytes.clone() },
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
            tracing::info!(%provider, %version, sha256 = %row.sha256, status = row.status.as_str(), actor = %s.actor, "connector submitted");
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

/// What screening found.
enum Screened {
    /// The same bytes were stored before: this version.
    StoredBefore(Box<PluginVersionView>),
    /// New bytes, with what their signatures showed.
    New(SignatureCheck),
}

/// A compiled component on its way into the store.
struct Submission<'a> {
    actor: &'a str,
    tenant: Option<&'a str>,
    origin: String,
    loaded: LoadedConnector,
    bytes: Vec<u8>,
    check: SignatureCheck,
}

/// The platform audit entries and events of a submission: submitted, and when `approved_at_once`
/// (with the version it was compared with), approved and activated by the policy.
fn submission_trail(
    row: &PluginVersion,
    actor: &str,
    tenant: Option<&str>,
    approved_at_once: Option<Option<String>>,
) -> (Vec<crate::audit::PluginAuditDraft>, Vec<crate::events::EventDraft>) {
    let details = serde_json::json!({
        "tenant": tenant,
        "origin": row.origin,
        "signedBy": row.signed_by,
        "unsignedException": row.unsigned_exception,
        "permissionsDigest": row.permissions_digest,
    });
    let mut audit = vec![draft(row, PluginAction::Submitted, actor, details)];
    let mut events = vec![event(EventType::PluginSubmitted, row)];
    if let Some(compared_with) = approved_at_once {
        let why = serde_json::json!({
            "policy": "narrower-signed",
            "permissionsDigest": row.permissions_digest,
            "comparedWith": compared_with,
        });
        audit.push(draft(row, PluginAction::Approved, AUTO_APPROVE_ACTOR, why));
        audit.push(draft(row, PluginAction::Activated, AUTO_APPROVE_ACTOR, serde_json::json!({})));
        events.push(event(EventType::PluginApproved, row));
        events.push(event(EventType::PluginActivated, row));
    }
    (audit, events)
}
