//! Which connector code may run: the plugin store's versions, the admission policy (trusted keys,
//! required signatures and their named exceptions, auto-approval) and the permission review.
//!
//! A submitted component is checked as the sandbox loads it (anything that fails is refused and
//! stored nowhere), its signatures are verified offline against the operator's keys, and it is
//! stored as a version of its provider: `pending` until a `plugins.admin` reviewer approves the
//! exact permissions shown (or the `narrower-signed` policy does), then `approved`; or `rejected`.
//! One approved version per provider is active and runs; a pending or rejected one never runs.
//!
//! - `permissions.rs`: the permission set a reviewer approves, its digest and its diff;
//! - `policy.rs`: the `[plugins]` configuration and what it decides about a submission;
//! - `oci.rs`: push and pull of connectors as Wasm OCI artifacts, with their signatures;
//! - this file: a stored version and its status.
//!
//! The operations are in [`crate::service`] (`plugins.rs`), the storage in
//! [`crate::store::PluginStore`].

pub mod oci;
pub mod permissions;
pub mod policy;

use serde::{Deserialize, Serialize};
use stella_runtime::Manifest;
use time::OffsetDateTime;

/// The header that carries a signature beside an uploaded component: the base64 of the signature
/// file (a `.minisig`, or the `.sig` `cosign sign-blob` writes). Repeat it for several.
pub const SIGNATURE_HEADER: &str = "stella-signature";

pub use permissions::{PermissionDiff, PermissionSet};
pub use policy::{AdmissionPolicy, ImageSignature, SignatureCheck, Signatures};

/// Where a version stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Waiting for a reviewer; never runs.
    Pending,
    /// Approved: may be (or have been) the active version.
    Approved,
    /// Refused by a reviewer; never runs.
    Rejected,
}

impl PluginStatus {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the name used in the database.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected].into_iter().find(|x| x.as_str() == s)
    }
}

/// A signature submitted with a component, as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredSignature {
    /// The trusted key that verified it (`minisign:<id>`, `cosign:<fingerprint>`); absent when no
    /// trusted key did.
    pub key_id: Option<String>,
    /// The signature file's text (a `.minisig`, or cosign's base64 DER).
    pub signature: String,
    /// For a cosign image signature: the payload it signs (JSON naming the manifest digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// A version of a connector in the plugin store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersion {
    /// The provider id.
    pub provider: String,
    /// The version (from its manifest; a provider's versions are immutable).
    pub version: String,
    /// sha256 of the component, hex: where its bytes are stored.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// `pending`, `approved` or `rejected`.
    pub status: PluginStatus,
    /// Whether this is the version its provider's integrations run.
    pub active: bool,
    /// The manifest embedded in the component.
    pub manifest: Manifest,
    /// What it may do: what a reviewer approves.
    pub permissions: PermissionSet,
    /// The digest of `permissions`, which `approve` must name.
    pub permissions_digest: String,
    /// The signatures submitted with it.
    pub signatures: Vec<StoredSignature>,
    /// The trusted key that signed it; absent: unsigned (or signed by no trusted key).
    pub signed_by: Option<String>,
    /// Admitted unsigned under the policy's named exception for its provider.
    pub unsigned_exception: bool,
    /// How it came in: `api`, `directory:<file>` or `oci:<reference>@<digest>`.
    pub origin: String,
    /// Who submitted it.
    pub submitted_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// Who approved or rejected it (`auto-approve` for the policy).
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub decided_at: Option<OffsetDateTime>,
    /// The reviewer's reason, for a rejection.
    pub decision_reason: Option<String>,
}

/// The active version of a provider, as replicas load it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivePlugin {
    /// The provider id.
    pub provider: String,
    /// The active version.
    pub version: String,
    /// Where its bytes are.
    pub sha256: String,
    /// The trusted key that signed it, checked against the policy whenever a replica loads it.
    pub signed_by: Option<String>,
    /// Admitted unsigned under a named exception (logged whenever a replica loads it).
    pub unsigned_exception: bool,
}

/// The actor of submissions from the plugins directory.
pub const DIRECTORY_ACTOR: &str = "plugins-directory";
/// The actor of approvals the `narrower-signed` policy makes.
pub const AUTO_APPROVE_ACTOR: &str = "auto-approve";
/// How many versions of one provider the store keeps; a submission beyond it is refused (reject
/// and keep fewer, or ask the operator to prune).
pub const MAX_VERSIONS_PER_PROVIDER: usize = 256;
