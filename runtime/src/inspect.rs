//! Describes a component without compiling or running it: what `connector inspect` prints and
//! what a security team reads before approving a connector.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{MANIFEST_SECTION, Manifest, ManifestError, choose_manifest};

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
    /// Which of the exports are functions.
    #[serde(skip)]
    pub(crate) function_exports: Vec<String>,
}

/// Reads a component's digest, imports, exports and manifest.
pub fn describe(wasm: &[u8]) -> Result<ComponentDescription, ManifestError> {
    let Walk { imports, exports, function_exports, manifest_sections } = walk(wasm)?;
    Ok(ComponentDescription {
        sha256: hex::encode(Sha256::digest(wasm)),
        size: wasm.len() as u64,
        imports,
        exports,
        manifest: choose_manifest(&manifest_sections)?,
        function_exports,
    })
}

/// What one pass over a component's sections finds.
pub(crate) struct Walk {
    /// Top-level imports, type imports left out, sorted.
    pub imports: Vec<String>,
    /// Top-level exports, sorted.
    pub exports: Vec<String>,
    /// Top-level exports that are functions, sorted.
    pub function_exports: Vec<String>,
    /// Every manifest section with its nesting depth (0 = the component itself).
    pub manifest_sections: Vec<(usize, Vec<u8>)>,
}

/// Walks a component's sections once, without compiling it.
pub(crate) fn walk(wasm: &[u8]) -> Result<Walk, ManifestError> {
    use wasmparser::{Parser, Payload};
    if !Parser::is_component(wasm) {
        return Err(ManifestError::Binary("not a WebAssembly component".into()));
    }
    let binary = |e: wasmparser::BinaryReaderError| ManifestError::Binary(e.to_string());
    let mut found =
        Walk { imports: Vec::new(), exports: Vec::new(), function_exports: Vec::new(), manifest_sections: Vec::new() };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(binary)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                found.manifest_sections.push((depth, section.data().to_vec()));
            }
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(binary)?;
                    // Type imports (`use types.{…}` in a world) are not capabilities; everything
                    // else (instances, functions, ...) is listed.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        found.imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(binary)?;
                    if export.kind == wasmparser::ComponentExternalKind::Func {
                        found.function_exports.push(export.name.name.to_string());
                    }
                    found.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    found.imports.sort();
    found.exports.sort();
    found.function_exports.sort();
    Ok(found)
}
