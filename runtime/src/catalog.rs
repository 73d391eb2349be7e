//! The set of connectors a process can run: the built-ins embedded in the binary, overridden
//! by provider by the `*.wasm` files of the plugins directory. A file that fails to load is
//! reported and skipped; it never stops the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::sandbox::{ConnectorSource, LoadedConnector, Sandbox};

/// A component that was refused, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadFailure {
    /// The file (or built-in name) that failed.
    pub source: String,
    /// Why it was refused.
    pub error: String,
}

/// The loaded connectors, by provider id.
#[derive(Debug, Default)]
pub struct ConnectorCatalog {
    connectors: BTreeMap<String, Arc<LoadedConnector>>,
    failures: Vec<LoadFailure>,
}

fn log_loaded(c: &LoadedConnector, source: &str) {
    let compilation = c.compilation();
    tracing::info!(
        provider = c.provider(),
        source,
        sha256 = c.sha256(),
        compile_ms = compilation.compile_ms,
        from_cache = compilation.from_cache,
        "connector loaded"
    );
}

impl ConnectorCatalog {
    /// Loads the built-ins (`(name, bytes)` pairs), then every `*.wasm` file of `plugins_dir`
    /// (sorted by file name). A file replaces a built-in of the same provider; two files with
    /// the same provider: the first by name wins and the second is reported.
    pub fn load(sandbox: &Sandbox, builtins: &[(&str, &[u8])], plugins_dir: Option<&Path>) -> Self {
        let mut catalog = Self::default();
        for (name, bytes) in builtins {
            match sandbox.load(bytes, ConnectorSource::BuiltIn) {
                Ok(c) => {
                    log_loaded(&c, &format!("built-in {name}"));
                    catalog.connectors.insert(c.provider().to_string(), Arc::new(c));
                }
                Err(e) => catalog.fail(format!("built-in {name}"), e.to_string()),
            }
        }
        let Some(dir) = plugins_dir else {
            return catalog;
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                catalog.fail(dir.display().to_string(), format!("cannot read the plugins directory: {e}"));
                Vec::new()
            }
        };
        files.sort();
        let mut from_files = std::collections::BTreeSet::new();
        for path in files {
            match sandbox.load_file(&path) {
                Ok(c) => {
                    let provider = c.provider().to_string();
                    if !from_files.insert(provider.clone()) {
                        catalog.fail(
                            path.display().to_string(),
                            format!("provider `{provider}` is already loaded from another file"),
                        );
                        continue;
                    }
                    log_loaded(&c, &path.display().to_string());
                    catalog.connectors.insert(provider, Arc::new(c));
                }
                Err(e) => catalog.fail(path.display().to_string(), e.to_string()),
            }
        }
        catalog
    }

    /// This catalog with `replacements` serving their providers instead (the active versions of a
    /// plugin store), and `failures` reported besides this catalog's own.
    pub fn with_replaced(&self, replacements: Vec<Arc<LoadedConnector>>, failures: Vec<LoadFailure>) -> Self {
        let mut connectors = self.connectors.clone();
        for c in replacements {
            connectors.insert(c.provider().to_string(), c);
        }
        let mut all = self.failures.clone();
        all.extend(failures);
        Self { connectors, failures: all }
    }

    fn fail(&mut self, source: String, error: String) {
        tracing::warn!(%source, %error, "connector refused");
        self.failures.push(LoadFailure { source, error });
    }

    /// The connector of a provider.
    pub fn get(&self, provider: &str) -> Option<&Arc<LoadedConnector>> {
        self.connectors.get(provider)
    }

    /// Every loaded connector, by provider id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedConnector>> {
        self.connectors.values()
    }

    /// The components that were refused.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }
}
