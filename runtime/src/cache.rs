//! The on-disk cache of compiled components.
//!
//! Compiling a large component (an 18 MB Python one) takes seconds to minutes, so compiled
//! artifacts are kept, named by the component's sha256 and a hash of the engine's settings and
//! version. Deserializing an artifact runs its machine code, so only files this runtime wrote
//! are read: the directory must belong to the current user and be closed to everyone else, and
//! files are written atomically under a name only a matching component can produce.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Why the compile cache directory cannot be used: a message naming the directory and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CacheDirError {
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl CacheDirError {
    fn io(what: String, e: std::io::Error) -> Self {
        Self { message: format!("{what}: {e}"), source: Some(e) }
    }
}

/// Creates the cache directory (mode 0700) or checks that an existing one is private.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), CacheDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CacheDirError::io(format!("cannot create the component cache {}", dir.display()), e))?;
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| CacheDirError::io(format!("cannot read {}", dir.display()), e))?;
        // Our own uid, read from a file we create (uniquely named: processes and threads may
        // prepare the same directory at once).
        let (probe, _) = tempfile_in(dir)
            .map_err(|e| CacheDirError::io(format!("the component cache {} is not writable", dir.display()), e))?;
        let me = std::fs::metadata(&probe).map(|m| m.uid());
        let _ = std::fs::remove_file(&probe);
        let me = me.map_err(|e| CacheDirError::io(format!("cannot read {}", probe.display()), e))?;
        if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o022 != 0 {
            return Err(CacheDirError {
                message: format!(
                    "the component cache {} must be a directory owned by this user and not writable by others",
                    dir.display()
                ),
                source: None,
            });
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
        .map_err(|e| CacheDirError::io(format!("cannot create the component cache {}", dir.display()), e))?;
    Ok(())
}

fn artifact_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
}

/// Compiles a component, or loads its compiled form from the cache (then the flag is true).
pub(crate) fn compile(
    engine: &Engine,
    wasm: &[u8],
    sha256: &str,
    cache: Option<&Path>,
) -> Result<(Component, bool), String> {
    let Some(dir) = cache else {
        return Component::new(engine, wasm).map(|c| (c, false)).map_err(|e| format!("{e:#}"));
    };
    let path = artifact_path(engine, dir, sha256);
    if path.is_file() {
        // SAFETY: the file is in a private directory that only this runtime writes, under a name
        // derived from the component's digest and the engine's settings; wasmtime also checks
        // the engine compatibility recorded in the artifact.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached component")
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| format!("{e:#}"))?;
    match component.serialize() {
        Ok(bytes) => {
            if let Err(e) = write_atomically(&path, &bytes) {
                tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled component");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot serialize a compiled component"),
    }
    Ok((component, false))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tmp, mut file) = tempfile_in(dir)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(".tmp-{}", uuid::Uuid::new_v4());
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    Ok((path.clone(), options.open(&path)?))
}
