//! Connectors in OCI registries: the CNCF Wasm OCI artifact layout (config
//! `application/vnd.wasm.config.v0+json`, one layer `application/wasm`), with the component's
//! signature files beside it by cosign's tag convention (`sha256-<manifest digest>.sig` in the same
//! repository, each file one layer of [`SIGNATURE_MEDIA_TYPE`]). A pull also reads the image
//! signatures `cosign sign --key` pushes to that tag ([`COSIGN_SIMPLESIGNING_MEDIA_TYPE`]); the
//! admission policy verifies both kinds. The registry protocol is `oci-client`'s.
//!
//! A pull is pinned by digest: the manifest is resolved once, and the component is fetched by the
//! digest it names (and checked against it). Everything a registry sends is bounded: the
//! component by the sandbox's `max-component-bytes` (declared size checked first, bytes counted as
//! they arrive), each signature by [`MAX_SIGNATURE_TEXT`], their number by [`MAX_SIGNATURES`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use stella_runtime::secrets::SecretValue;
use stella_runtime::signature::MAX_SIGNATURE_TEXT;

use super::policy::{ImageSignature, MAX_PAYLOAD_BYTES, MAX_SIGNATURES, Signatures};

/// The config media type of a Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a Wasm component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// A signature file over the component (a `.minisig`, or cosign's base64 DER `.sig`).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.stellaops.connector.signature.v1";
/// A cosign image signature's layer: its "simple signing" payload, the signature in an annotation.
pub const COSIGN_SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation that carries a cosign image signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The config media type of the signature artifact (its config is `{}`).
const SIGNATURES_CONFIG_MEDIA_TYPE: &str = "application/vnd.stellaops.connector.signatures.v1+json";

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryAccess {
    /// Basic credentials (user, password), when the registry needs them. The password's `Debug`
    /// is masked.
    pub credentials: Option<(String, SecretValue)>,
    /// PEM certificates of a private CA to trust besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Plain HTTP instead of HTTPS (a registry on loopback in development).
    pub plain_http: bool,
}

/// Why a push or a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference cannot be read, or names no registry.
    #[error("`{0}` is not a reference REGISTRY/REPOSITORY[:TAG|@DIGEST] that names its registry")]
    BadReference(String),
    /// The registry answered with an error, or could not be reached: in this service's words (its
    /// status, the error codes of the distribution spec), and the registry's own answer.
    #[error("the registry refused or failed: {summary} ({answer})")]
    Registry {
        /// What happened, in this service's words.
        summary: String,
        /// The registry's answer (or the client's error), for the log and the operator's terminal.
        answer: String,
    },
    /// What the reference names is not a connector artifact.
    #[error("not a Wasm connector artifact: {0}")]
    NotAConnector(String),
}

/// A component pulled from a registry.
#[derive(Debug)]
pub struct Pulled {
    /// The component's bytes, checked against the manifest's digest.
    pub component: Vec<u8>,
    /// The signatures found beside it: signature files, and cosign image signatures.
    pub signatures: Signatures,
    /// The reference pinned by manifest digest (`registry/repository@sha256:…`).
    pub pinned: String,
}

/// Reads a reference that names its registry (a host with a dot or a port, or `localhost`): a
/// connector is never looked up on an implied default registry.
pub fn parse_reference(text: &str) -> Result<Reference, OciError> {
    let bad = || OciError::BadReference(text.to_string());
    let first = text.split('/').next().unwrap_or_default();
    let names_registry = text.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !names_registry || text.len() > 1024 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    text.parse::<Reference>().map_err(|_| bad())
}

fn client(access: &RegistryAccess, registry: &str) -> Client {
    let mut config = ClientConfig {
        protocol: if access.plain_http {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        },
        read_timeout: Some(std::time::Duration::from_secs(60)),
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        user_agent: "stella-integrations",
        ..ClientConfig::default()
    };
    if let Some(pem) = &access.ca_pem {
        config.extra_root_certificates.push(Certificate { encoding: CertificateEncoding::Pem, data: pem.clone() });
    }
    Client::new(config)
}

fn auth(access: &RegistryAccess) -> RegistryAuth {
    match &access.credentials {
        Some((user, password)) => RegistryAuth::Basic(user.clone(), password.expose().to_string()),
        None => RegistryAuth::Anonymous,
    }
}

fn registry_error(e: OciDistributionError) -> OciError {
    let summary = match &e {
        OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. } => {
            "the registry refused the credentials".to_string()
        }
        OciDistributionError::ImageManifestNotFoundError(_) => "the registry has no such manifest".to_string(),
        OciDistributionError::RegistryError { envelope, .. } => {
            // The codes of the distribution spec (`MANIFEST_UNKNOWN`, `DENIED`, …), not its messages.
            let code = |e: &oci_client::errors::OciError| {
                serde_json::to_value(&e.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            };
            let codes: Vec<String> = envelope.errors.iter().map(code).collect();
            format!("the registry answered with the errors {}", codes.join(", "))
        }
        OciDistributionError::ServerError { code, .. } => format!("the registry answered HTTP {code}"),
        OciDistributionError::RequestError(_) => "the registry cannot be reached".to_string(),
        _ => "the registry's answer cannot be used".to_string(),
    };
    OciError::Registry { summary, answer: e.to_string() }
}

/// The tag cosign's convention gives the signatures of the manifest `digest`.
fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Pushes a component as a Wasm OCI artifact to `reference`, and its signature files beside it;
/// answers the reference pinned by the manifest's digest.
pub async fn push(
    reference: &Reference,
    component: Vec<u8>,
    signatures: &[String],
    access: &RegistryAccess,
) -> Result<String, OciError> {
    let description = stella_runtime::inspect::describe(&component)
        .map_err(|e| OciError::NotAConnector(format!("the file is not a connector component: {e}")))?;
    if signatures.len() > MAX_SIGNATURES {
        return Err(OciError::NotAConnector(format!("at most {MAX_SIGNATURES} signatures are pushed")));
    }
    let client = client(access, reference.registry());
    let auth = auth(access);
    let layer_digest = format!("sha256:{}", hex::encode(Sha256::digest(&component)));
    // The CNCF Wasm OCI artifact config: what the component is, readable without pulling it.
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {"imports": description.imports},
    });
    let config = Config {
        data: serde_json::to_vec(&config).expect("a config serializes").into(),
        media_type: WASM_CONFIG_MEDIA_TYPE.to_string(),
        annotations: None,
    };
    let annotations = BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), description.manifest.connector.provider.clone()),
        ("org.opencontainers.image.version".to_string(), description.manifest.connector.version.clone()),
        ("org.opencontainers.image.description".to_string(), description.manifest.connector.description.clone()),
    ]);
    let layers = vec![ImageLayer::new(component, WASM_LAYER_MEDIA_TYPE.to_string(), None)];
    let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
    client.push(reference, &layers, config, &auth, Some(manifest)).await.map_err(registry_error)?;
    let digest = client.fetch_manifest_digest(reference, &auth).await.map_err(registry_error)?;
    if !signatures.is_empty() {
        let tag = Reference::with_tag(
            reference.registry().to_string(),
            reference.repository().to_string(),
            signature_tag(&digest),
        );
        let layers: Vec<ImageLayer> = signatures
            .iter()
            .map(|s| ImageLayer::new(s.as_bytes().to_vec(), SIGNATURE_MEDIA_TYPE.to_string(), None))
            .collect();
        let config = Config {
            data: b"{}".to_vec().into(),
            media_type: SIGNATURES_CONFIG_MEDIA_TYPE.to_string(),
            annotations: None,
        };
        let manifest = OciImageManifest::build(&layers, &config, None);
        client.push(&tag, &layers, config, &auth, Some(manifest)).await.map_err(registry_error)?;
    }
    Ok(format!("{}/{}@{digest}", reference.registry(), reference.repository()))
}

/// The longest a whole pull may take: a registry that drips bytes cannot hold a request (or the
/// service's memory for the manifest, which `oci-client` reads whole) for longer.
pub const PULL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Pulls the connector `reference` names, pinned by its manifest digest, with the signatures
/// beside it; refuses a component larger than `max_bytes` before reading it, and gives up after
/// [`PULL_DEADLINE`].
pub async fn pull(reference: &Reference, access: &RegistryAccess, max_bytes: u64) -> Result<Pulled, OciError> {
    tokio::time::timeout(PULL_DEADLINE, pull_within(reference, access, max_bytes)).await.map_err(|_| {
        let summary = format!("the pull did not finish within {} s", PULL_DEADLINE.as_secs());
        OciError::Registry { answer: "no answer in time".into(), summary }
    })?
}

async fn pull_within(reference: &Reference, access: &RegistryAccess, max_bytes: u64) -> Result<Pulled, OciError> {
    let client = client(access, reference.registry());
    let auth = auth(access);
    let (manifest, digest) = client.pull_image_manifest(reference, &auth).await.map_err(registry_error)?;
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(OciError::NotAConnector(format!(
            "its config is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}`",
            manifest.config.media_type
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(OciError::NotAConnector(format!("it has {} layers; a connector has one", manifest.layers.len())));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(OciError::NotAConnector(format!(
            "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        )));
    }
    let pinned = reference.clone_with_digest(digest.clone());
    let component = pull_bounded(&client, &pinned, layer, max_bytes).await?;

    let tag = Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        signature_tag(&digest),
    );
    let mut signatures = Signatures::default();
    match client.pull_image_manifest(&tag, &auth).await {
        Ok((sig_manifest, _)) => {
            for layer in sig_manifest.layers.iter().take(MAX_SIGNATURES) {
                if layer.media_type == SIGNATURE_MEDIA_TYPE {
                    let bytes = pull_bounded(&client, &tag, layer, MAX_SIGNATURE_TEXT as u64).await?;
                    signatures.files.push(String::from_utf8_lossy(&bytes).into_owned());
                } else if layer.media_type == COSIGN_SIMPLESIGNING_MEDIA_TYPE {
                    let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION))
                    else {
                        continue;
                    };
                    let payload = pull_bounded(&client, &tag, layer, MAX_PAYLOAD_BYTES as u64).await?;
                    signatures.images.push(ImageSignature {
                        manifest_digest: digest.clone(),
                        payload,
                        signature: signature.chars().take(MAX_SIGNATURE_TEXT + 1).collect(),
                    });
                }
            }
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(registry_error(e)),
    }
    Ok(Pulled {
        component,
        signatures,
        pinned: format!("{}/{}@{digest}", reference.registry(), reference.repository()),
    })
}

/// Whether the registry said the manifest does not exist (no signatures were pushed).
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|x| x.code == oci_client::errors::OciErrorCode::ManifestUnknown)
        }
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// A blob, refused when its declared size is over `max_bytes`, and cut off (an error) when more
/// arrives than that; its digest is checked by the client.
async fn pull_bounded(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    max_bytes: u64,
) -> Result<Vec<u8>, OciError> {
    let declared = u64::try_from(layer.size).unwrap_or(u64::MAX);
    if declared > max_bytes {
        return Err(OciError::NotAConnector(format!("a layer declares {declared} bytes; the limit is {max_bytes}")));
    }
    let mut sink = Bounded { bytes: Vec::with_capacity(declared as usize), limit: max_bytes };
    client.pull_blob(reference, layer, &mut sink).await.map_err(|e| match e {
        OciDistributionError::IoError(io) => OciError::NotAConnector(io.to_string()),
        other => registry_error(other),
    })?;
    Ok(sink.bytes)
}

/// A buffer that refuses to grow past its limit.
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        if (self.bytes.len() + data.len()) as u64 > self.limit {
            let limit = self.limit;
            return Poll::Ready(Err(std::io::Error::other(format!("the registry sent more than {limit} bytes"))));
        }
        self.bytes.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_must_name_its_registry() {
        for good in ["registry.example.com/team/connector:1.0", "127.0.0.1:5000/c", "localhost/c:1"] {
            parse_reference(good).unwrap();
        }
        for bad in ["connector:1.0", "team/connector:1.0", "", "registry.example.com/a b", "registry.example.com/UPPER"]
        {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(signature_tag("sha256:abcd"), "sha256-abcd.sig");
    }
}
