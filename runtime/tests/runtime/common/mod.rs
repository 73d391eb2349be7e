//! Set-up shared by the sandbox's test binaries: the secrets they resolve, the integration they
//! test, and the sandbox of the hostile corpus.
#![allow(dead_code)]

use std::sync::Arc;

use stella_runtime::egress::NetworkPolicy;
use stella_runtime::secrets::{AuthRef, SecretNamespace, SecretValue, StaticSecretResolver};
use stella_runtime::{ConnectionConfig, ConnectorSource, IntegrationType, LoadedConnector, Sandbox, SandboxConfig};

pub const CANARY: &str = "canary-5ecr3t-value-9f8e7d";
pub const AUTH_REF: &str = "ref://integrations/test/token";
/// Resolves to a P-256 private key (PKCS#8 PEM), for `sign-jwt`.
pub const KEY_REF: &str = "ref://integrations/test/es256-key";

pub fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

pub fn resolver() -> Arc<StaticSecretResolver> {
    let mut r = StaticSecretResolver::default();
    r.insert(AuthRef::parse(AUTH_REF).unwrap(), SecretValue::new(CANARY.into()));
    r.insert(AuthRef::parse("ref://integrations/other/token").unwrap(), SecretValue::new("other-secret-value".into()));
    r.insert(AuthRef::parse(KEY_REF).unwrap(), SecretValue::new(es256_key_pem()));
    Arc::new(r)
}

pub fn es256_key_pem() -> String {
    use base64::Engine as _;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

#[track_caller]
pub fn load(sandbox: &Sandbox, path: &str) -> LoadedConnector {
    let bytes = std::fs::read(path).unwrap();
    sandbox.load(&bytes, ConnectorSource::File(path.into())).unwrap()
}

pub fn integration(
    base_url: Option<&str>,
    auth_ref: Option<&str>,
    configuration: serde_json::Value,
) -> ConnectionConfig {
    ConnectionConfig {
        integration_id: "00000000-0000-0000-0000-000000000001".into(),
        name: "test".into(),
        integration_type: IntegrationType::Registry,
        provider: "test-program".into(),
        base_url: base_url.map(str::to_string),
        auth_ref: auth_ref.map(str::to_string),
        secret_namespace: SecretNamespace::Unscoped,
        configuration,
        environment: None,
    }
}

/// The sandbox of the corpus: the default limits (what an operator gets) with loopback allowed,
/// and the operator's own overrides.
pub fn corpus_sandbox(change: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let mut config = SandboxConfig { network, cache_dir: Some(cache_dir()), ..SandboxConfig::default() };
    change(&mut config);
    Sandbox::new(config, resolver()).unwrap()
}
