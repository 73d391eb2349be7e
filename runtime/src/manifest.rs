//! The connector manifest: what a connector is and what it may do.
//!
//! The manifest travels inside the `.wasm` file as a custom section named
//! [`MANIFEST_SECTION`], in TOML, so that anyone can read it without running the code
//! (`stella-integrations connector inspect`). The SDK embeds it at build time; `connector package`
//! embeds or replaces it in any component.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::RequestedLimits;

/// The name of the custom section that carries the manifest.
pub const MANIFEST_SECTION: &str = "stellaops-connector-manifest";

/// Upper bound on a manifest's size; a manifest is a few hundred bytes.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// The integration types of the catalog, as the WIT `integration-type` enum lists them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationType {
    /// Container image registries.
    Registry,
    /// Source code hosts.
    Scm,
    /// Continuous integration systems.
    Ci,
    /// Runtime host agents.
    Host,
    /// Vulnerability feeds.
    Feed,
    /// SBOM/VEX artifact submission.
    Artifact,
}

impl IntegrationType {
    /// Every type, in declaration order.
    pub const ALL: [IntegrationType; 6] = [Self::Registry, Self::Scm, Self::Ci, Self::Host, Self::Feed, Self::Artifact];

    /// The lower-case name used in JSON, TOML and WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Scm => "scm",
            Self::Ci => "ci",
            Self::Host => "host",
            Self::Feed => "feed",
            Self::Artifact => "artifact",
        }
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IntegrationType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            format!("unknown integration type `{s}` (expected one of registry, scm, ci, host, feed, artifact)")
        })
    }
}

/// A connector's manifest, as written in `connector.toml`.
///
/// ```toml
/// [connector]
/// provider = "harbor"
/// types = ["registry"]
/// version = "0.1.0"
/// description = "Harbor container registry"
///
/// [permissions]
/// hosts = ["https://*.example.com"]   # in addition to the integration's base URL
/// reveal-secrets = false
/// sign-jwt = false
///
/// [limits]                             # asks for less than the operator's ceilings
/// deadline-ms = 5000
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Who the connector is.
    pub connector: ConnectorInfo,
    /// What it may do beyond calling the integration's own base URL.
    #[serde(default)]
    pub permissions: Permissions,
    /// The limits it asks for; each can only lower the operator's ceiling.
    #[serde(default)]
    pub limits: RequestedLimits,
}

/// The identity of a connector.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConnectorInfo {
    /// The provider id integrations name (`harbor`, `github-app`): lower-case letters, digits and
    /// dashes.
    pub provider: String,
    /// The integration types this connector serves.
    pub types: Vec<IntegrationType>,
    /// The connector's own version (semver).
    pub version: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Set by a connector that must send the integration's credential before it can tell the
    /// server is the product (the product answers nothing identifying without one): why. Read by
    /// security reviews and by `connector conformance`, which then reports a credential sent to an
    /// impostor without failing on it. Absent: the connector proves the server first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_before_proof: Option<String>,
}

/// The permissions a connector asks for. Everything not listed is denied.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Permissions {
    /// Origins the connector may call besides the integration's base URL:
    /// `scheme://host[:port]`, where the host may start with `*.` to match any subdomain.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Whether the connector may read a secret's value (`secret.reveal`).
    #[serde(default)]
    pub reveal_secrets: bool,
    /// Whether the connector may sign JWTs with a secret as the key (`crypto.sign-jwt`).
    #[serde(default)]
    pub sign_jwt: bool,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The component carries no manifest section.
    #[error(
        "the component has no `{MANIFEST_SECTION}` custom section (package one with `stella-integrations connector package`)"
    )]
    Missing,
    /// More than one manifest section was found.
    #[error("the component carries {0} `{MANIFEST_SECTION}` sections; it must carry exactly one")]
    Duplicate(usize),
    /// The section is not valid UTF-8 TOML of the expected shape.
    #[error("the manifest is not valid: {0}")]
    Invalid(String),
    /// The wasm binary could not be parsed.
    #[error("the file is not a valid WebAssembly binary: {0}")]
    Binary(String),
}

impl Manifest {
    /// Parses and validates a manifest from its TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::Invalid(format!(
                "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                text.len()
            )));
        }
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Invalid(e.message().to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The manifest as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a manifest always serializes to TOML")
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        let provider = &self.connector.provider;
        if provider.is_empty()
            || provider.len() > 64
            || !provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || provider.starts_with('-')
        {
            return invalid(format!(
                "connector.provider `{provider}` must be 1 to 64 lower-case letters, digits or dashes"
            ));
        }
        if self.connector.types.is_empty() {
            return invalid("connector.types must name at least one integration type".into());
        }
        if !is_semver(&self.connector.version) {
            return invalid(format!(
                "connector.version `{}` is not a semantic version (e.g. 1.2.3)",
                self.connector.version
            ));
        }
        if self.connector.description.len() > 1024 {
            return invalid("connector.description is longer than 1024 bytes".into());
        }
        match self.connector.credential_before_proof.as_deref().map(str::trim) {
            Some("") => return invalid("connector.credential-before-proof must say why, or be left out".into()),
            Some(why) if why.len() > 1024 => {
                return invalid("connector.credential-before-proof is longer than 1024 bytes".into());
            }
            _ => {}
        }
        if self.permissions.hosts.len() > 64 {
            return invalid("permissions.hosts lists more than 64 origins".into());
        }
        crate::egress::OriginAllowlist::parse_declared(&self.permissions.hosts)
            .map_err(|e| ManifestError::Invalid(format!("permissions.hosts: {e}")))?;
        self.limits.validate().map_err(ManifestError::Invalid)?;
        Ok(())
    }

    /// Whether this connector serves the given integration type.
    pub fn serves(&self, integration_type: IntegrationType) -> bool {
        self.connector.types.contains(&integration_type)
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    v.len() <= 64
        && parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

/// Reads the manifest section of a component without compiling or instantiating it.
///
/// A manifest at the top level of the component (written by `connector package`) wins over one
/// inside a nested core module (written by the Rust SDK at build time). Exactly one manifest
/// per level is accepted.
pub fn read_manifest(wasm: &[u8]) -> Result<Manifest, ManifestError> {
    choose_manifest(&crate::inspect::walk(wasm)?.manifest_sections)
}

/// Picks and parses the manifest among the sections found, given as (nesting depth, contents).
pub(crate) fn choose_manifest(sections: &[(usize, Vec<u8>)]) -> Result<Manifest, ManifestError> {
    let top: Vec<&Vec<u8>> = sections.iter().filter(|(d, _)| *d == 0).map(|(_, s)| s).collect();
    let nested: Vec<&Vec<u8>> = sections.iter().filter(|(d, _)| *d > 0).map(|(_, s)| s).collect();
    let chosen = match (top.len(), nested.len()) {
        (1, _) => top[0],
        (0, 1) => nested[0],
        (0, 0) => return Err(ManifestError::Missing),
        (0, n) | (n, _) => return Err(ManifestError::Duplicate(n)),
    };
    let text =
        std::str::from_utf8(chosen).map_err(|_| ManifestError::Invalid("the manifest section is not UTF-8".into()))?;
    Manifest::from_toml(text)
}

/// Returns `wasm` with its top-level manifest section replaced by `manifest` (or added).
///
/// Manifest sections inside nested core modules are left alone: the top-level one takes
/// precedence when the component is loaded.
pub fn embed_manifest(wasm: &[u8], manifest: &Manifest) -> Result<Vec<u8>, ManifestError> {
    use wasmparser::{Parser, Payload};
    if !Parser::is_component(wasm) {
        return Err(ManifestError::Binary(
            "not a WebAssembly component (a core module must be turned into a component first, e.g. with `wasm-tools component new`)".into(),
        ));
    }
    let mut out = Vec::with_capacity(wasm.len() + 512);
    let mut nested = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| ManifestError::Binary(e.to_string()))?;
        match &payload {
            Payload::Version { range, .. } if nested == 0 => {
                out.extend_from_slice(&wasm[range.start..range.end]);
                continue;
            }
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                if nested == 0 {
                    // Copy the whole section (id + size + contents) verbatim.
                    let start = section_start(wasm, unchecked_range.start);
                    out.extend_from_slice(&wasm[start..unchecked_range.end]);
                }
                nested += 1;
                continue;
            }
            Payload::End(_) => {
                nested = nested.saturating_sub(1);
                continue;
            }
            _ => {}
        }
        if nested > 0 {
            continue;
        }
        if let Payload::CustomSection(section) = &payload
            && section.name() == MANIFEST_SECTION
        {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            let start = section_start(wasm, range.start);
            debug_assert_eq!(wasm[start], id);
            out.extend_from_slice(&wasm[start..range.end]);
        }
    }
    let text = manifest.to_toml();
    let section = wasm_encoder::CustomSection { name: MANIFEST_SECTION.into(), data: text.as_bytes().into() };
    use wasm_encoder::{ComponentSection, Encode};
    let mut encoded = Vec::new();
    encoded.push(ComponentSection::id(&section));
    section.encode(&mut encoded);
    out.extend_from_slice(&encoded);
    Ok(out)
}

/// Finds the start of a section (its id byte) from the start of its contents, by walking back
/// over the LEB128 size that precedes the contents.
fn section_start(wasm: &[u8], contents_start: usize) -> usize {
    // The size is 1 to 5 bytes; every byte but the last has the high bit set.
    let mut i = contents_start - 1; // last byte of the size
    while i > 0 && wasm[i - 1] & 0x80 != 0 {
        i -= 1;
    }
    i - 1 // the id byte
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [connector]
        provider = "harbor"
        types = ["registry"]
        version = "0.1.0"
        description = "Harbor"

        [permissions]
        hosts = ["https://*.example.com", "https://auth.example.org:8443"]
    "#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::from_toml(GOOD).unwrap();
        assert_eq!(m.connector.provider, "harbor");
        assert!(m.serves(IntegrationType::Registry));
        assert!(!m.serves(IntegrationType::Scm));
        assert!(!m.permissions.reveal_secrets);
        assert_eq!(m.connector.credential_before_proof, None);
        let again = Manifest::from_toml(&m.to_toml()).unwrap();
        assert_eq!(again, m);

        let declared = Manifest::from_toml(
            "[connector]\nprovider='ci'\ntypes=['ci']\nversion='1.0.0'\ncredential-before-proof='the API answers nothing without a token'",
        )
        .unwrap();
        assert_eq!(
            declared.connector.credential_before_proof.as_deref(),
            Some("the API answers nothing without a token")
        );
        assert_eq!(Manifest::from_toml(&declared.to_toml()).unwrap(), declared);
    }

    #[test]
    fn refuses_bad_manifests() {
        for (bad, why) in [
            ("[connector]\nprovider='Harbor'\ntypes=['registry']\nversion='1.0.0'", "provider"),
            ("[connector]\nprovider='h'\ntypes=[]\nversion='1.0.0'", "types"),
            ("[connector]\nprovider='h'\ntypes=['nope']\nversion='1.0.0'", "unknown variant"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='one'", "semantic"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='1.0.0'\nsurprise=1", "unknown field"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='1.0.0'\n[permissions]\nhosts=['ftp://x']", "scheme"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='1.0.0'\n[permissions]\nhosts=['https://a/b']", "path"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='1.0.0'\n[limits]\ndeadline-ms=0", "deadline"),
            ("[connector]\nprovider='h'\ntypes=['ci']\nversion='1.0.0'\ncredential-before-proof=' '", "say why"),
            ("not toml", ""),
        ] {
            let err = Manifest::from_toml(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
