//! The `[plugins]` configuration and what it decides about a submission: which keys are trusted,
//! whether a signature is required (always, once a key is configured), which providers may be
//! admitted unsigned by name, and whether a narrower version signed by the active version's key is
//! approved at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use stella_runtime::secrets::{AuthRef, SecretStore};
use stella_runtime::signature::{MAX_SIGNATURE_TEXT, TrustedKey};

use super::StoredSignature;
use super::oci::RegistryAccess;
use super::permissions::PermissionDiff;
use crate::config::{AutoApprove, PluginsConfig};

/// Most signatures read with one submission (files and image signatures together).
pub const MAX_SIGNATURES: usize = 4;
/// Longest cosign signature payload read (cosign writes a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
/// The `critical.type` of a cosign image signature's payload.
const COSIGN_PAYLOAD_TYPE: &str = "cosign container image signature";

/// A cosign signature of an image, as `cosign sign --key` pushes it by its tag convention: a
/// "simple signing" payload naming the manifest digest, signed with an ECDSA P-256 key. It signs
/// the component through the manifest, whose digest was verified against the manifest's bytes,
/// and the component's digest against its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSignature {
    /// The digest of the manifest the component was pulled by.
    pub manifest_digest: String,
    /// The payload (JSON) the signature is over.
    pub payload: Vec<u8>,
    /// The base64 DER signature (the layer's `dev.cosignproject.cosign/signature` annotation).
    pub signature: String,
}

/// The signatures that come with a component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures {
    /// Signature files over the component's bytes (a `.minisig`, or cosign's `.sig`).
    pub files: Vec<String>,
    /// cosign signatures of the image it was pulled from.
    pub images: Vec<ImageSignature>,
}

/// A trusted key and its name.
#[derive(Clone, Debug)]
pub struct NamedKey {
    /// Its stable id (`minisign:…`, `cosign:…`).
    pub id: String,
    /// The key.
    pub key: TrustedKey,
    /// The file it was read from.
    pub path: PathBuf,
}

/// The policy in effect, with its keys read.
#[derive(Clone, Debug, Default)]
pub struct AdmissionPolicy {
    /// The trusted keys.
    pub keys: Vec<NamedKey>,
    /// Whether a signature by a trusted key is required.
    pub require_signature: bool,
    /// Providers admitted unsigned by name.
    pub unsigned_exceptions: BTreeSet<String>,
    /// When versions are approved without a reviewer.
    pub auto_approve: AutoApprove,
    /// The registries pulls may reach, by `host[:port]`, with how to reach each.
    pub registries: BTreeMap<String, RegistryAccess>,
}

/// What the signatures of a submission showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The signatures, each with the trusted key that verified it, if any.
    pub signatures: Vec<StoredSignature>,
    /// The first trusted key that verified one.
    pub signed_by: Option<String>,
    /// Admitted unsigned under a named exception.
    pub unsigned_exception: bool,
}

impl AdmissionPolicy {
    /// Reads the keys, the registries' CAs and passwords (the platform's own secrets in `secrets`,
    /// which no integration can resolve), and checks the settings.
    pub fn from_config(config: &PluginsConfig, secrets: &SecretStore) -> Result<Self, String> {
        let mut keys = Vec::new();
        for path in &config.trusted_keys {
            let meta = std::fs::metadata(path).map_err(|e| format!("plugins.trusted-keys: {}: {e}", path.display()))?;
            if meta.len() > MAX_SIGNATURE_TEXT as u64 {
                return Err(format!(
                    "plugins.trusted-keys: {}: longer than {MAX_SIGNATURE_TEXT} bytes",
                    path.display()
                ));
            }
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("plugins.trusted-keys: {}: {e}", path.display()))?;
            let key = TrustedKey::parse(&text).map_err(|e| format!("plugins.trusted-keys: {}: {e}", path.display()))?;
            // A signer is recorded by its key's id, and `narrower-signed` compares ids: two trusted
            // keys must not share one (a minisign id is chosen by whoever makes the key).
            if let Some(same) = keys.iter().find(|k: &&NamedKey| k.id == key.id()) {
                return Err(format!(
                    "plugins.trusted-keys: {} and {} have the same key id {}; keep one",
                    same.path.display(),
                    path.display(),
                    same.id
                ));
            }
            keys.push(NamedKey { id: key.id(), key, path: path.clone() });
        }
        if !keys.is_empty() && config.require_signature == Some(false) {
            return Err("plugins.require-signature cannot be false while trusted keys are configured; name the \
                        providers that may be unsigned in plugins.unsigned-exceptions"
                .into());
        }
        for provider in &config.unsigned_exceptions {
            let valid = !provider.is_empty()
                && provider.len() <= 64
                && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(format!("plugins.unsigned-exceptions: `{provider}` is not a provider id"));
            }
        }
        let mut registries = BTreeMap::new();
        for r in &config.registries {
            let what = |m: String| format!("plugins.registries `{}`: {m}", r.host);
            let valid_host = !r.host.is_empty()
                && r.host.len() <= 255
                && r.host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            if !valid_host {
                return Err(what("host must be host[:port], as a reference names it".into()));
            }
            let credentials = match (&r.username, &r.password_ref) {
                (None, None) => None,
                (Some(user), Some(reference)) => {
                    let auth_ref = AuthRef::parse(reference).map_err(|e| what(format!("password-ref: {e}")))?;
                    let password = secrets.platform_secret(&auth_ref).map_err(|e| {
                        let at = secrets.platform_locations(&auth_ref).map(|l| l.of_value()).unwrap_or_default();
                        what(format!(
                            "password-ref {reference} cannot be read: {e} (a platform secret is read from {at})"
                        ))
                    })?;
                    Some((user.clone(), password))
                }
                _ => return Err(what("username and password-ref go together".into())),
            };
            let ca_pem = match &r.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| what(format!("ca-file {}: {e}", path.display())))?),
                None => None,
            };
            if registries
                .insert(r.host.clone(), RegistryAccess { credentials, ca_pem, plain_http: r.plain_http })
                .is_some()
            {
                return Err(what("is listed twice".into()));
            }
        }
        Ok(Self {
            registries,
            require_signature: config.require_signature.unwrap_or(!keys.is_empty()),
            keys,
            unsigned_exceptions: config.unsigned_exceptions.iter().cloned().collect(),
            auto_approve: config.auto_approve,
        })
    }

    /// Verifies the signatures of `file` (a component of `provider`) against the trusted keys and
    /// decides whether it may be stored: `Err` says why not. A signature no trusted key verifies
    /// is kept as unverified; it is not an error unless a signature is required and none verifies.
    pub fn check_signatures(
        &self,
        provider: &str,
        file: &[u8],
        signatures: &Signatures,
    ) -> Result<SignatureCheck, String> {
        if signatures.files.len() + signatures.images.len() > MAX_SIGNATURES {
            return Err(format!("at most {MAX_SIGNATURES} signatures are read with one component"));
        }
        let mut kept = Vec::with_capacity(MAX_SIGNATURES);
        let mut reasons = Vec::new();
        for text in &signatures.files {
            if text.len() > MAX_SIGNATURE_TEXT {
                return Err(format!("a signature is longer than {MAX_SIGNATURE_TEXT} bytes"));
            }
            let key_id = self.verifying_key(file, text, &mut reasons);
            kept.push(StoredSignature { key_id, signature: text.clone(), payload: None });
        }
        for image in &signatures.images {
            if image.signature.len() > MAX_SIGNATURE_TEXT || image.payload.len() > MAX_PAYLOAD_BYTES {
                return Err("an image signature or its payload is too long to be one".into());
            }
            let key_id = match payload_digest(&image.payload) {
                Some(digest) if digest == image.manifest_digest => {
                    self.verifying_key(&image.payload, &image.signature, &mut reasons)
                }
                _ => {
                    reasons.push(format!("an image signature is not over the manifest {}", image.manifest_digest));
                    None
                }
            };
            kept.push(StoredSignature {
                key_id,
                signature: image.signature.clone(),
                payload: Some(String::from_utf8_lossy(&image.payload).into_owned()),
            });
        }
        let signed_by = kept.iter().find_map(|s| s.key_id.clone());
        let unsigned_exception = signed_by.is_none() && self.unsigned_exceptions.contains(provider);
        if self.require_signature && signed_by.is_none() && !unsigned_exception {
            let why = if kept.is_empty() {
                "no signature was given".to_string()
            } else if self.keys.is_empty() {
                "no trusted keys are configured".to_string()
            } else {
                reasons.join("; ")
            };
            return Err(format!(
                "a signature by a trusted key is required, and none verifies ({why}); sign the component with \
                 `stella-integrations connector sign` or minisign, or name `{provider}` in \
                 plugins.unsigned-exceptions"
            ));
        }
        Ok(SignatureCheck { signatures: kept, signed_by, unsigned_exception })
    }

    /// The first trusted key whose signature `text` is over `signed`; why each other refused it
    /// is added to `reasons`.
    fn verifying_key(&self, signed: &[u8], text: &str, reasons: &mut Vec<String>) -> Option<String> {
        for named in &self.keys {
            match named.key.verify(signed, text) {
                Ok(()) => return Some(named.id.clone()),
                Err(e) => reasons.push(format!("{}: {e}", named.id)),
            }
        }
        None
    }

    /// Whether a stored version may be approved or activated under the policy in effect: when a
    /// signature is required, it must be signed by a key trusted now, or be of a named exception.
    /// (A version stored before keys were configured, or signed by a key since removed, is not.)
    pub fn admits(&self, provider: &str, signed_by: Option<&str>) -> Result<(), String> {
        let trusted = signed_by.is_some_and(|id| self.keys.iter().any(|k| k.id == id));
        if self.require_signature && !trusted && !self.unsigned_exceptions.contains(provider) {
            return Err(format!(
                "the policy requires a signature by a trusted key, and this version has none{}; submit a signed \
                 build, or name `{provider}` in plugins.unsigned-exceptions",
                signed_by.map(|id| format!(" (its signer {id} is no longer trusted)")).unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Whether a version is approved without a reviewer: under `narrower-signed`, when it is
    /// signed by the key that signed the active version (`active_signer`) and its permissions are
    /// equal or narrower.
    pub fn approves_at_once(
        &self,
        signed_by: Option<&str>,
        active_signer: Option<&str>,
        diff: &PermissionDiff,
    ) -> bool {
        self.auto_approve == AutoApprove::NarrowerSigned
            && signed_by.is_some()
            && signed_by == active_signer
            && diff.narrower_or_equal
    }
}

/// The manifest digest a cosign "simple signing" payload names, when it is one.
fn payload_digest(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let critical = &value["critical"];
    (critical["type"] == COSIGN_PAYLOAD_TYPE)
        .then(|| critical["image"]["docker-manifest-digest"].as_str().map(str::to_string))
        .flatten()
}
