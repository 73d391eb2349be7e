//! The built-in connectors, as the service runs them: each component embedded in the binary,
//! loaded into the real sandbox (the service's network policy, with loopback allowed for the
//! stubs), invoked against stub servers that answer as the provider documents, including its
//! failures: wrong credential, missing permission, rate limit, outage, another product at the same
//! URL, a private CA.

mod registry;

// Each connector's tests, from its own folder (`connectors/<name>/tests.rs`), found by the build
// script as the connectors themselves are.
include!(concat!(env!("OUT_DIR"), "/connector_tests.rs"));

use std::sync::Arc;

use serde_json::{Value, json};
use stella_runtime::egress::NetworkPolicy;
use stella_runtime::secrets::{AuthRef, SecretNamespace, SecretValue, StaticSecretResolver};
use stella_runtime::{
    ConnectionConfig, ConnectorSource, FailureClass, HealthOutcome, HealthStatus, IntegrationType, LoadedConnector,
    Sandbox, SandboxConfig, TestOutcome,
};
use stella_test_support::{Canned, PrivateCa, Stub};

const SECRET: &str = "s3cr3t-canary-token-0b8f";
const AUTH_REF: &str = "ref://integrations/test/credential";

struct Harness {
    sandbox: Sandbox,
    connector: LoadedConnector,
    /// The AuthRef's secret, which must never show in a result or a record.
    secret: String,
}

impl Harness {
    fn new(provider: &str) -> Self {
        Self::with_secret(provider, SECRET)
    }

    /// A harness for `provider` and a stand-in server for it to talk to.
    async fn with_stub(provider: &str) -> (Self, Stub) {
        (Self::new(provider), Stub::start().await)
    }

    /// [`Harness::pinned`] to a TLS stand-in whose certificate names `hosts`, and the stand-in.
    async fn pinned_with_stub(provider: &str, hosts: &[&str]) -> (Self, Stub) {
        let stub = Stub::start_tls_for(hosts).await;
        (Self::pinned(provider, hosts, &stub), stub)
    }

    fn with_secret(provider: &str, secret: &str) -> Self {
        Self::build(provider, secret, &[])
    }

    /// A harness whose sandbox sends a provider's fixed public host names (`api.bitbucket.org`)
    /// to a stub, as the operator's `network.pin` does: a TLS stub whose certificate names them
    /// (`Stub::start_tls_for`), trusted through the integration's `caCertificates`.
    fn pinned(provider: &str, hosts: &[&str], stub: &Stub) -> Self {
        let pins: Vec<(&str, std::net::SocketAddr)> = hosts.iter().map(|h| (*h, stub.addr())).collect();
        Self::build(provider, SECRET, &pins)
    }

    fn build(provider: &str, secret: &str, pins: &[(&str, std::net::SocketAddr)]) -> Self {
        let mut secrets = StaticSecretResolver::default();
        secrets.insert(AuthRef::parse(AUTH_REF).unwrap(), SecretValue::new(secret.into()));
        let mut network = NetworkPolicy::default();
        network.allow.push("127.0.0.1/32".parse().unwrap());
        network.pin.extend(pins.iter().map(|(host, addr)| (host.to_string(), *addr)));
        let config = SandboxConfig {
            network,
            cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
            connect_timeout_ms: 2_000,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::new(config, Arc::new(secrets)).unwrap();
        let (_, wasm) = stella_builtin_connectors::BUILTINS
            .iter()
            .find(|(p, _)| *p == provider)
            .unwrap_or_else(|| panic!("`{provider}` is not a built-in connector"));
        let connector = sandbox.load(wasm, ConnectorSource::BuiltIn).unwrap();
        assert_eq!(connector.provider(), provider);
        Self { sandbox, connector, secret: secret.to_string() }
    }

    /// Fails if any line of the secret (a PEM key has many) shows in the printed outcome.
    fn assert_no_secret(&self, printed: &str) {
        for line in self.secret.lines().filter(|l| l.len() >= 16 && !l.starts_with("-----")) {
            assert!(!printed.contains(line), "the secret leaked into the result or the record: {printed}");
        }
    }

    fn integration(&self, kind: IntegrationType, base_url: &str, configuration: Value) -> ConnectionConfig {
        ConnectionConfig {
            integration_id: "5b3f1c8e-0000-4000-8000-000000000001".into(),
            name: "under-test".into(),
            integration_type: kind,
            provider: self.connector.provider().to_string(),
            base_url: Some(base_url.to_string()),
            auth_ref: Some(AUTH_REF.into()),
            secret_namespace: SecretNamespace::Unscoped,
            configuration,
            environment: Some("test".into()),
        }
    }

    async fn test(&self, config: &ConnectionConfig) -> TestOutcome {
        let invocation = self.sandbox.test_connection(&self.connector, config).await;
        self.assert_no_secret(&format!("{:?} {:?}", invocation.result, invocation.record));
        invocation.result
    }

    /// Without an AuthRef, `config` is refused as misconfigured before any request reaches `stub`.
    async fn assert_needs_a_credential(&self, mut config: ConnectionConfig, stub: &Stub) {
        config.auth_ref = None;
        assert_failed(&self.test(&config).await, FailureClass::Misconfigured, "configuration");
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }

    /// Against `stub` (not the product), the test fails `step` as a provider mismatch, every time,
    /// and the last run's requests never carried the credential `header`.
    async fn assert_mismatch_gets_no_credential(
        &self,
        config: &ConnectionConfig,
        stub: &Stub,
        step: &str,
        header: &str,
    ) {
        assert_failed(&self.test(config).await, FailureClass::ProviderMismatch, step);
        let before = stub.seen().len();
        stub.clear();
        assert_failed(&self.test(config).await, FailureClass::ProviderMismatch, step);
        assert!(stub.seen()[before - 1..].iter().all(|s| s.header(header).is_none()));
    }

    /// The test refuses `config` as misconfigured, at its `configuration` step.
    async fn assert_misconfigured(&self, config: &ConnectionConfig) -> TestOutcome {
        let outcome = self.test(config).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        outcome
    }

    /// The test fails `step` with `class`, and its message says `saying`.
    async fn assert_fails(
        &self,
        config: &ConnectionConfig,
        class: FailureClass,
        step: &str,
        saying: &str,
    ) -> TestOutcome {
        let outcome = self.test(config).await;
        assert_failed(&outcome, class, step);
        assert!(outcome.message.contains(saying), "{outcome:?}");
        outcome
    }

    /// The test fails `step` as rate-limited (its message saying `retry`, when given; no request
    /// left, when `none_left`), and the health check calls that degraded, not unhealthy.
    async fn assert_rate_limited(
        &self,
        config: &ConnectionConfig,
        step: &str,
        retry: Option<&str>,
        none_left: bool,
    ) -> TestOutcome {
        let outcome = self.test(config).await;
        assert_failed(&outcome, FailureClass::RateLimited, step);
        if let Some(retry) = retry {
            assert!(outcome.message.contains(retry), "{outcome:?}");
        }
        if none_left {
            assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        }
        let health = self.health(config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
        outcome
    }

    async fn health(&self, config: &ConnectionConfig) -> HealthOutcome {
        let invocation = self.sandbox.check_health(&self.connector, config).await;
        self.assert_no_secret(&format!("{:?} {:?}", invocation.result, invocation.record));
        invocation.result
    }
}

/// A URL where nothing listens (a port just released).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn step_names(outcome: &TestOutcome) -> Vec<&str> {
    step_names_of(&outcome.steps)
}

fn step_names_of(steps: &[stella_runtime::CheckStep]) -> Vec<&str> {
    steps.iter().map(|s| s.name.as_str()).collect()
}

#[track_caller]
fn assert_failed(outcome: &TestOutcome, class: FailureClass, step: &str) {
    assert!(!outcome.success, "{outcome:?}");
    assert_eq!(outcome.failure, Some(class), "{outcome:?}");
    let last = outcome.steps.last().expect("a failed test names its step");
    assert!(!last.passed && last.name == step, "expected step `{step}` to fail: {outcome:?}");
}

/// The UTC date `days` days from now, `YYYY-MM-DD` (Howard Hinnant's civil-from-days).
fn date_in(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let z = now / 86_400 + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
