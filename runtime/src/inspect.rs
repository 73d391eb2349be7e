//! Describes a component without compiling or running it: what `connector inspect` prints and
//! what a security team reads before approving a connector.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, ManifestError, read_manifest};

/// What a component is and what it may do, read from its bytes alone.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDescription {
    /// Hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub size: u64,
    /// The component's top-level imports (interface names), type imports left out.
    pub imports: Vec<String>,
    /// The component's top-level exports.
    pub exports: Vec<String>,
    /// The embedded manifest.
    pub manifest: Manifest,
}

/// Reads a component's digest, imports, exports and manifest.
pub fn describe(wasm: &[u8]) -> Result<ComponentDescription, ManifestError> {
    use wasmparser::{Parser, Payload};
    if !Parser::is_component(wasm) {
        return Err(ManifestError::Binary("not a WebAssembly component".into()));
    }
    let manifest = read_manifest(wasm)?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| ManifestError::Binary(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| ManifestError::Binary(e.to_string()))?;
                    // Type imports (`use types.{…}` in a world) are not capabilities; everything
                    // else (instances, functions, ...) is listed.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| ManifestError::Binary(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    imports.sort();
    exports.sort();
    Ok(ComponentDescription {
        sha256: hex::encode(Sha256::digest(wasm)),
        size: wasm.len() as u64,
        imports,
        exports,
        manifest,
    })
}
