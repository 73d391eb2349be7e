//! The active set: this replica's loaded connectors kept equal to the store's active versions.

use std::sync::Arc;

use stella_runtime::catalog::LoadFailure;
use stella_runtime::{ConnectorSource, LoadedConnector};

use crate::service::{Catalog, ServiceError};

impl Catalog {
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

    /// Refreshes the loaded connectors after a change committed: a failure is logged (the
    /// watcher tries again within a second), never answered for a change that was made.
    pub(super) async fn refresh_after_commit(&self) {
        if let Err(e) = self.refresh_connectors().await {
            tracing::warn!(error = %e, "the change is committed; this replica loads it on its next refresh");
        }
    }
}
