//! The built-in connectors, as the service runs them: each component embedded in the binary,
//! loaded into the real sandbox (the service's network policy, with loopback allowed for the
//! stubs), invoked against stub servers that answer as the provider documents, including its
//! failures: wrong credential, missing permission, rate limit, outage, another product at the same
//! URL, a private CA.

mod registry;

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

mod http_probe {
    use super::*;

    fn agent_status() -> Canned {
        Canned::json(200, json!({"status": "ok", "agent": {"version": "1.4.2"}}))
            .header("X-Stella-Agent", "runtime-agent")
            .header("X-RateLimit-Remaining", "57")
    }

    fn expectations() -> Value {
        json!({
            "path": "/api/status?verbose=1",
            "expectedStatus": [200],
            "expectedHeader": {"name": "x-stella-agent", "value": "runtime-agent"},
            "jsonPointer": "/status",
            "expectedValue": "ok",
            "versionPointer": "/agent/version",
        })
    }

    #[tokio::test]
    async fn a_product_that_meets_every_expectation_passes_with_its_version() {
        let h = Harness::new("http-probe");
        let stub = Stub::start().await;
        stub.on("GET", "/api/status?verbose=1", agent_status());
        let config = h.integration(IntegrationType::Host, &stub.base_url, expectations());
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "status", "header", "json"]);
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("1.4.2"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(57));
        // The credential went as a bearer token, applied by the host.
        let seen = stub.seen();
        assert_eq!((seen.len(), seen[0].method.as_str(), seen[0].path.as_str()), (1, "GET", "/api/status?verbose=1"));
        assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    }

    #[tokio::test]
    async fn another_product_at_the_same_url_is_a_provider_mismatch() {
        let h = Harness::new("http-probe");
        let stub = Stub::start().await;
        // A generic web server: 200 with HTML, no agent header.
        stub.on(
            "GET",
            "/api/status?verbose=1",
            Canned::new(200).header("Content-Type", "text/html").body("<html>Welcome to nginx!</html>"),
        );
        let config = h.integration(IntegrationType::Host, &stub.base_url, expectations());
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "header");

        // The header matches but the JSON does not say what the product says.
        stub.on(
            "GET",
            "/api/status?verbose=1",
            Canned::json(200, json!({"status": "starting"})).header("X-Stella-Agent", "runtime-agent"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::ProviderMismatch, "json");
        assert!(outcome.message.contains(r#""starting""#), "{outcome:?}");

        // Not JSON at all.
        stub.on("GET", "/api/status?verbose=1", Canned::new(200).header("X-Stella-Agent", "runtime-agent").body("ok"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "json");

        // A 2xx that is not the expected status, and a redirect to a login page.
        stub.on("GET", "/api/status?verbose=1", Canned::new(204));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "status");
        stub.on("GET", "/api/status?verbose=1", Canned::new(302).header("Location", "/login"));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::ProviderMismatch, "status");
        assert!(outcome.message.contains("/login"), "{outcome:?}");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);
    }

    #[tokio::test]
    async fn provider_answers_map_to_failure_classes_and_health() {
        let h = Harness::new("http-probe");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Host, &stub.base_url, expectations());
        let path = "/api/status?verbose=1";
        let cases = [
            (
                Canned::json(401, json!({"error": "invalid token"})).header("WWW-Authenticate", "Bearer"),
                FailureClass::Auth,
                HealthStatus::Unhealthy,
            ),
            (
                Canned::json(403, json!({"error": "insufficient scope"})),
                FailureClass::Permission,
                HealthStatus::Unhealthy,
            ),
            (
                Canned::json(429, json!({"error": "slow down"}))
                    .header("Retry-After", "30")
                    .header("X-RateLimit-Remaining", "0"),
                FailureClass::RateLimited,
                HealthStatus::Degraded,
            ),
            (Canned::new(503).body("upstream down"), FailureClass::ProviderDown, HealthStatus::Unhealthy),
        ];
        for (canned, class, health) in cases {
            let status = canned.status;
            stub.on("GET", path, canned);
            let outcome = h.test(&config).await;
            assert_failed(&outcome, class, "status");
            assert!(outcome.message.contains(&status.to_string()), "{outcome:?}");
            let checked = h.health(&config).await;
            assert_eq!((checked.status, checked.failure), (health, Some(class)), "{status}: {checked:?}");
        }
        // The retry delay reaches the operator.
        stub.on("GET", path, Canned::new(429).header("Retry-After", "30"));
        assert!(h.test(&config).await.message.contains("retry after 30"));

        // A path the server does not have.
        stub.clear();
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "status");

        // An exhausted rate limit on a success is degraded, not unhealthy.
        let exhausted = Canned::json(200, json!({"status": "ok"}))
            .header("X-Stella-Agent", "runtime-agent")
            .header("X-RateLimit-Remaining", "0");
        stub.on("GET", path, exhausted);
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        let checked = h.health(&config).await;
        assert_eq!(checked.status, HealthStatus::Degraded, "{checked:?}");
    }

    #[tokio::test]
    async fn unreachable_servers_and_private_cas_are_classed_as_network_and_tls() {
        let h = Harness::new("http-probe");
        let config = h.integration(IntegrationType::Host, &closed_port(), json!({}));
        assert_failed(&h.test(&config).await, FailureClass::Network, "reachable");
        let checked = h.health(&config).await;
        assert_eq!((checked.status, checked.failure), (HealthStatus::Unhealthy, Some(FailureClass::Network)));

        let tls = Stub::start_tls().await;
        tls.on("GET", "/", Canned::new(200).body("agent ok"));
        let config = h.integration(IntegrationType::Host, &tls.base_url, json!({}));
        assert_failed(&h.test(&config).await, FailureClass::Tls, "reachable");
        let trusted =
            h.integration(IntegrationType::Host, &tls.base_url, json!({"caCertificates": tls.ca_pem.clone().unwrap()}));
        let outcome = h.test(&trusted).await;
        assert!(outcome.success, "{outcome:?}");
    }

    #[tokio::test]
    async fn the_credential_goes_where_the_configuration_says() {
        let h = Harness::new("http-probe");
        let stub = Stub::start().await;
        stub.on("GET", "/", Canned::new(200)).on("HEAD", "/", Canned::new(200));
        let basic = h.integration(IntegrationType::Ci, &stub.base_url, json!({"credential": {"basic": "probe"}}));
        assert!(h.test(&basic).await.success);
        let header = h.integration(
            IntegrationType::Ci,
            &stub.base_url,
            json!({"credential": {"header": "X-Api-Key", "prefix": "key "}, "method": "HEAD"}),
        );
        let outcome = h.test(&header).await;
        assert!(outcome.success, "{outcome:?}");
        let seen = stub.seen();
        let expected_basic = format!("Basic {}", base64_encode(format!("probe:{SECRET}").as_bytes()));
        assert_eq!(seen[0].header("authorization"), Some(expected_basic.as_str()));
        assert_eq!(
            (seen[1].method.as_str(), seen[1].header("x-api-key")),
            ("HEAD", Some(format!("key {SECRET}").as_str()))
        );
        assert_eq!(seen[1].header("authorization"), None);

        // Without an AuthRef nothing is sent; with one that holds nothing, the test says so.
        let mut anonymous = h.integration(IntegrationType::Host, &stub.base_url, json!({}));
        anonymous.auth_ref = None;
        assert!(h.test(&anonymous).await.success);
        assert_eq!(stub.seen()[2].header("authorization"), None);
        let mut missing = anonymous.clone();
        missing.auth_ref = Some("ref://integrations/test/nothing-here".into());
        let outcome = h.test(&missing).await;
        assert!(!outcome.success && outcome.steps.iter().any(|s| s.name == "credential" && !s.passed), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        let h = Harness::new("http-probe");
        let stub = Stub::start().await;
        for bad in [
            json!({"path": "status"}),
            json!({"path": "//evil.example/x"}),
            json!({"method": "POST"}),
            json!({"expectedStatus": []}),
            json!({"expectedStatus": [700]}),
            json!({"expectedHeader": {"value": "x"}}),
            json!({"expectedValue": "ok"}),
            json!({"jsonPointer": "status"}),
            json!({"method": "HEAD", "jsonPointer": "/status"}),
            json!({"credential": "digest"}),
            json!({"pathh": "/typo"}),
        ] {
            let config = h.integration(IntegrationType::Host, &stub.base_url, bad.clone());
            let outcome = h.test(&config).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
            assert_eq!(h.health(&config).await.failure, Some(FailureClass::Misconfigured), "{bad}");
        }
        assert!(stub.seen().is_empty(), "a misconfigured probe sent a request");
    }

    pub fn base64_encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

mod harbor {
    use super::*;

    const UNAUTHORIZED: fn() -> Canned =
        || Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}));

    /// A Harbor v2.11 as its API reference documents the answers.
    fn serve_harbor(stub: &Stub) {
        stub.on(
            "GET",
            "/api/v2.0/ping",
            Canned::new(200).header("Content-Type", "text/plain; charset=utf-8").body("Pong"),
        )
        .on(
            "GET",
            "/api/v2.0/systeminfo",
            Canned::json(
                200,
                json!({"auth_mode": "db_auth", "harbor_version": "v2.11.1-6b7ecba1", "self_registration": false,
                           "has_ca_root": false, "read_only": false, "external_url": "https://harbor.example.com",
                           "project_creation_restriction": "everyone", "notification_enable": true}),
            ),
        )
        .on(
            "GET",
            "/api/v2.0/health",
            Canned::json(
                200,
                json!({"status": "healthy", "components": [
                {"name": "core", "status": "healthy"}, {"name": "database", "status": "healthy"},
                {"name": "jobservice", "status": "healthy"}, {"name": "registry", "status": "healthy"}]}),
            ),
        )
        .on(
            "GET",
            "/api/v2.0/users/current",
            Canned::json(
                200,
                json!({"user_id": 3, "username": "ci-bot", "email": "ci@example.com", "sysadmin_flag": false}),
            ),
        )
        // Harbor's API answers a wrong Basic credential as it answers an anonymous caller: the
        // public projects, 200. Its registry token service (what `docker login` asks) does not.
        .on(
            "GET",
            "/api/v2.0/projects?page=1&page_size=1",
            Canned::json(200, json!([{"project_id": 1, "name": "library"}])).header("X-Total-Count", "1"),
        )
        .on(
            "GET",
            "/service/token?service=harbor-registry",
            Canned::json(200, json!({"token": "eyJhbGciOiJSUzI1NiJ9.e30.sig", "expires_in": 1800})),
        )
        .on(
            "GET",
            "/api/v2.0/projects/library",
            Canned::json(200, json!({"project_id": 1, "name": "library"})),
        );
    }

    fn settings() -> Value {
        json!({"username": "ci-bot", "project": "library"})
    }

    #[tokio::test]
    async fn a_harbor_user_with_project_access_passes_and_reports_the_version() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        serve_harbor(&stub);
        let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-harbor", "credential", "project"]);
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("v2.11.1-6b7ecba1"));
        let seen = stub.seen();
        assert_eq!(seen[0].path, "/api/v2.0/ping");
        assert_eq!(seen[0].header("authorization"), None, "the ping needs no credential");
        assert_eq!(
            seen[0].header("accept"),
            Some("text/plain"),
            "the ping produces text/plain only (JSON would be 406)"
        );
        assert_eq!((seen[1].path.as_str(), seen[1].header("authorization")), ("/api/v2.0/systeminfo", None));
        let current = seen.iter().find(|s| s.path == "/api/v2.0/users/current").expect("the user was read");
        assert_eq!(
            current.header("authorization"),
            Some(format!("Basic {}", b64(&format!("ci-bot:{SECRET}"))).as_str())
        );
        let project = seen.iter().find(|s| s.path == "/api/v2.0/projects/library").unwrap();
        assert_eq!(project.header("x-is-resource-name"), Some("true"));

        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    }

    #[tokio::test]
    async fn a_robot_account_is_checked_without_reading_a_user() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        serve_harbor(&stub);
        stub.on("GET", "/api/v2.0/users/current", UNAUTHORIZED());
        let config = h.integration(
            IntegrationType::Registry,
            &stub.base_url,
            json!({"username": "robot$ci", "project": "library"}),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert!(stub.seen().iter().all(|s| s.path != "/api/v2.0/users/current"));
        // The pull token in the token service's answer stays in the host.
        let record = h.sandbox.test_connection(&h.connector, &config).await.record;
        assert!(
            record.host_calls.iter().any(|c| c.token_kept && c.target.contains("/service/token?service=")),
            "{record:?}"
        );
        assert!(!format!("{record:?}").contains("eyJhbGciOiJSUzI1NiJ9"));
        let token_request = stub.seen().into_iter().find(|s| s.path.starts_with("/service/token")).unwrap();
        let robot_basic = format!("Basic {}", b64(&format!("robot$ci:{SECRET}")));
        assert_eq!(token_request.header("authorization"), Some(robot_basic.as_str()));
        // A revoked robot: the token service answers 401, though the API's listing still says 200.
        stub.on("GET", "/service/token?service=harbor-registry", UNAUTHORIZED());
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("UNAUTHORIZED"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));
    }

    #[tokio::test]
    async fn credential_and_project_failures_are_told_apart() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        serve_harbor(&stub);
        let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());

        stub.on("GET", "/api/v2.0/users/current", UNAUTHORIZED());
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);

        serve_harbor(&stub);
        stub.on(
            "GET",
            "/api/v2.0/projects/library",
            Canned::json(403, json!({"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]})),
        );
        assert_failed(&h.test(&config).await, FailureClass::Permission, "project");
        stub.on(
            "GET",
            "/api/v2.0/projects/library",
            Canned::json(404, json!({"errors": [{"code": "NOT_FOUND", "message": "project library not found"}]})),
        );
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "project");

        serve_harbor(&stub);
        stub.on(
            "GET",
            "/api/v2.0/users/current",
            Canned::json(429, json!({"errors": [{"code": "TOO_MANY_REQUESTS", "message": "slow down"}]}))
                .header("Retry-After", "10"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "credential");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
    }

    #[tokio::test]
    async fn something_else_at_the_url_is_not_harbor() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
        // A generic web server: 404 pages everywhere.
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-harbor");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::ProviderMismatch));
        // A catch-all that answers 200 to anything, even `Pong`, but has no Harbor system info.
        stub.on("GET", "/api/v2.0/ping", Canned::new(200).body("Pong"));
        stub.on(
            "GET",
            "/api/v2.0/systeminfo",
            Canned::new(200).header("Content-Type", "text/html").body("<html></html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-harbor");
        assert!(
            stub.seen().iter().all(|s| s.header("authorization").is_none()),
            "a credential went to a non-Harbor server"
        );
    }

    #[tokio::test]
    async fn outages_and_failing_components_are_down_or_degraded() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        serve_harbor(&stub);
        let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
        stub.on(
            "GET",
            "/api/v2.0/health",
            Canned::json(200, json!({"status": "unhealthy", "components": [
                {"name": "core", "status": "healthy"},
                {"name": "jobservice", "status": "unhealthy", "error": "dial tcp 10.0.0.7:8080: connect: connection refused"}]})),
        );
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::ProviderDown)));
        assert!(health.message.contains("jobservice"), "{health:?}");

        stub.on("GET", "/api/v2.0/health", Canned::new(503).body("Service Unavailable"));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::ProviderDown)));
        stub.on("GET", "/api/v2.0/ping", Canned::new(502).body("Bad Gateway"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-harbor");

        let config = h.integration(IntegrationType::Registry, &closed_port(), settings());
        assert_failed(&h.test(&config).await, FailureClass::Network, "reachable");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Network));
    }

    #[tokio::test]
    async fn a_harbor_behind_a_private_ca_needs_its_ca() {
        let h = Harness::new("harbor");
        let stub = Stub::start_tls().await;
        serve_harbor(&stub);
        let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
        assert_failed(&h.test(&config).await, FailureClass::Tls, "reachable");
        let mut trusted = settings();
        trusted["caCertificates"] = json!(stub.ca_pem.clone().unwrap());
        let outcome = h.test(&h.integration(IntegrationType::Registry, &stub.base_url, trusted)).await;
        assert!(outcome.success, "{outcome:?}");
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        let h = Harness::new("harbor");
        let stub = Stub::start().await;
        serve_harbor(&stub);
        for bad in [
            json!({}),
            json!({"username": "ci-bot", "project": "Lib rary"}),
            json!({"username": "ci-bot", "project": "."}),
            json!({"username": "ci-bot", "project": "a..b"}),
            json!({"username": "ci-bot", "projekt": "x"}),
            json!({"username": 7}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Registry, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        assert!(stub.seen().is_empty());
    }

    fn b64(text: &str) -> String {
        super::http_probe::base64_encode(text.as_bytes())
    }
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

mod gitlab {
    use super::*;

    /// GitLab 17.5 as its REST API documentation shows the answers.
    fn serve_gitlab(stub: &Stub, expires_at: &str, scopes: Value) {
        stub.on(
            "GET",
            "/api/v4/version",
            Canned::json(200, json!({"version": "17.5.1-ee", "revision": "4b4d7b5f1a1", "kas": {"enabled": true}}))
                .header("RateLimit-Remaining", "1999")
                .header("X-Gitlab-Meta", r#"{"correlation_id":"01J","version":"1"}"#),
        )
        .on("GET", "/api/v4/user", Canned::json(200, json!({"id": 42, "username": "ci-bot", "state": "active"})))
        .on(
            "GET",
            "/api/v4/personal_access_tokens/self",
            Canned::json(200, json!({"id": 7, "name": "stella", "revoked": false, "active": true, "scopes": scopes,
                                     "user_id": 42, "expires_at": expires_at, "created_at": "2026-01-05T10:00:00.000Z"})),
        )
        .on("GET", "/api/v4/projects/platform%2Fapi", Canned::json(200, json!({"id": 11, "path_with_namespace": "platform/api"})));
    }

    fn settings() -> Value {
        json!({"project": "platform/api"})
    }

    #[tokio::test]
    async fn a_token_with_its_scopes_passes_and_reports_version_and_expiry() {
        let h = Harness::new("gitlab");
        let stub = Stub::start().await;
        serve_gitlab(&stub, "2027-03-31", json!(["read_api", "read_repository"]));
        let config = h.integration(IntegrationType::Scm, &stub.base_url, settings());
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-gitlab", "credential", "token", "project"]);
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("17.5.1-ee"));
        assert_eq!(outcome.facts.credential_expires_at.as_deref(), Some("2027-03-31T00:00:00Z"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(1999));
        assert!(outcome.message.contains("ci-bot"), "{outcome:?}");
        for seen in stub.seen() {
            assert_eq!(seen.header("private-token"), Some(SECRET), "{seen:?}");
            assert_eq!(seen.header("authorization"), None);
        }
        let health = h.health(&config).await;
        assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
        assert_eq!(stub.seen().len(), 4 + 2, "the health check is two requests");
    }

    #[tokio::test]
    async fn a_token_that_expires_within_a_week_is_degraded() {
        let h = Harness::new("gitlab");
        let stub = Stub::start().await;
        serve_gitlab(&stub, &date_in(3), json!(["api"]));
        let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({}));
        assert!(h.test(&config).await.success);
        let health = h.health(&config).await;
        assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
        assert!(health.message.contains("expires"), "{health:?}");
        serve_gitlab(&stub, &date_in(30), json!(["api"]));
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
        // Past its expiry the credential is unusable, whatever the server still says.
        serve_gitlab(&stub, &date_in(-1), json!(["api"]));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)), "{health:?}");
    }

    #[tokio::test]
    async fn rejected_expired_and_under_scoped_tokens_are_told_apart() {
        let h = Harness::new("gitlab");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Scm, &stub.base_url, settings());

        serve_gitlab(&stub, "2027-03-31", json!(["read_api"]));
        stub.on("GET", "/api/v4/version", Canned::json(401, json!({"message": "401 Unauthorized"})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(
            outcome.steps.iter().any(|s| s.name == "is-gitlab" && s.passed),
            "GitLab's own 401 still identifies it"
        );
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);

        stub.on(
            "GET",
            "/api/v4/version",
            Canned::json(401, json!({"error": "invalid_token", "error_description": "Token has expired."})).header(
                "WWW-Authenticate",
                r#"Bearer realm="", error="invalid_token", error_description="Token has expired.""#,
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("Token has expired."), "{outcome:?}");

        // A token GitLab accepts but whose scopes do not reach the API.
        serve_gitlab(&stub, "2027-03-31", json!(["read_repository"]));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "token");
        assert!(outcome.message.contains("read_api"), "{outcome:?}");
        stub.on(
            "GET",
            "/api/v4/user",
            Canned::json(403, json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api read_api read_user"})),
        );
        assert_failed(&h.test(&config).await, FailureClass::Permission, "credential");

        serve_gitlab(&stub, "2027-03-31", json!(["read_api"]));
        stub.on(
            "GET",
            "/api/v4/projects/platform%2Fapi",
            Canned::json(404, json!({"message": "404 Project Not Found"})),
        );
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "project");
    }

    #[tokio::test]
    async fn rate_limits_outages_and_other_servers_are_classed() {
        let h = Harness::new("gitlab");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({}));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitlab");
        stub.on("GET", "/api/v4/version", Canned::json(200, json!({"version": "1.0"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitlab");

        serve_gitlab(&stub, "2027-03-31", json!(["read_api"]));
        stub.on(
            "GET",
            "/api/v4/version",
            Canned::new(429)
                .header("RateLimit-Remaining", "0")
                .header("RateLimit-Reset", "1798675200")
                .header("Retry-After", "60")
                .body("Retry later"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "is-gitlab");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
        stub.on("GET", "/api/v4/version", Canned::new(502).body("GitLab is not responding"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-gitlab");

        let mut anonymous = config.clone();
        anonymous.auth_ref = None;
        assert_failed(&h.test(&anonymous).await, FailureClass::Misconfigured, "configuration");
    }
}

mod gitea {
    use super::*;

    /// Gitea 1.22 (or Forgejo 9, by `version`) as its API documentation shows the answers.
    fn serve_gitea(stub: &Stub, version: &str) {
        stub.on("GET", "/api/v1/version", Canned::json(200, json!({"version": version})))
            .on(
                "GET",
                "/api/v1/settings/api",
                Canned::json(
                    200,
                    json!({"max_response_items": 50, "default_paging_num": 30,
                                         "default_git_trees_per_page": 1000, "default_max_blob_size": 10485760}),
                ),
            )
            .on("GET", "/api/v1/user", Canned::json(200, json!({"id": 3, "login": "ci-bot", "is_admin": false})))
            .on(
                "GET",
                "/api/v1/repos/platform/api",
                Canned::json(
                    200,
                    json!({"id": 9, "full_name": "platform/api",
                                         "permissions": {"admin": false, "push": false, "pull": true}}),
                ),
            );
    }

    #[tokio::test]
    async fn gitea_and_forgejo_pass_with_the_token_user() {
        let h = Harness::new("gitea");
        let stub = Stub::start().await;
        serve_gitea(&stub, "1.22.3");
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "platform/api"}));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-gitea", "credential", "repository"]);
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("1.22.3"));
        for seen in stub.seen() {
            let expected = seen.path.starts_with("/api/v1/user") || seen.path.starts_with("/api/v1/repos");
            let token = format!("token {SECRET}");
            assert_eq!(seen.header("authorization"), expected.then_some(token.as_str()), "{seen:?}");
        }
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

        serve_gitea(&stub, "9.0.0+gitea-1.22.0");
        let outcome = h.test(&config).await;
        assert!(outcome.success && outcome.steps[2].message.starts_with("Forgejo"), "{outcome:?}");

        // `REQUIRE_SIGNIN_VIEW`: Gitea refuses anonymous callers, `/version` included, with its
        // own message; the version is then read with the token.
        let refused = json!({"message": "Only signed in user is allowed to call APIs.", "url": "https://git.example.com/api/swagger"});
        stub.on("GET", "/api/v1/version", Canned::json(403, refused.clone()))
            .on("GET", "/api/v1/settings/api", Canned::json(403, refused))
            .on_authorized("GET", "/api/v1/version", Canned::json(200, json!({"version": "1.22.3"})));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("1.22.3"));
        // Any other 403 is still not Gitea, and gets no token.
        let before = stub.seen().len();
        stub.on("GET", "/api/v1/version", Canned::json(403, json!({"message": "Forbidden"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitea");
        assert!(stub.seen()[before..].iter().all(|s| s.header("authorization").is_none()));
    }

    #[tokio::test]
    async fn token_and_repository_failures_are_told_apart() {
        let h = Harness::new("gitea");
        let stub = Stub::start().await;
        serve_gitea(&stub, "1.22.3");
        let config = h.integration(
            IntegrationType::Ci,
            &stub.base_url,
            json!({"repository": "platform/api", "needsPush": true}),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("push"), "{outcome:?}");

        stub.on(
            "GET",
            "/api/v1/user",
            Canned::json(401, json!({"message": "user does not exist [uid: 0, name: ]", "url": "https://gitea.example.com/api/swagger"})),
        );
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));
        stub.on(
            "GET",
            "/api/v1/user",
            Canned::json(403, json!({"message": "token does not have at least one of required scope(s): [read:user]", "url": "https://gitea.example.com/api/swagger"})),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "credential");
        assert!(outcome.message.contains("read:user"), "{outcome:?}");

        serve_gitea(&stub, "1.22.3");
        stub.on("GET", "/api/v1/repos/platform/api", Canned::json(404, json!({"errors": null, "message": "The target couldn't be found.", "url": "https://gitea.example.com/api/swagger"})));
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "repository");
    }

    #[tokio::test]
    async fn other_servers_outages_and_rate_limits_are_classed() {
        let h = Harness::new("gitea");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({}));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitea");
        // Something with a `version` but not Gitea's API settings.
        stub.on("GET", "/api/v1/version", Canned::json(200, json!({"version": "3.1"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitea");
        assert!(
            stub.seen().iter().all(|s| s.header("authorization").is_none()),
            "the token went to a non-Gitea server"
        );

        serve_gitea(&stub, "1.22.3");
        stub.on(
            "GET",
            "/api/v1/version",
            Canned::new(429).header("Retry-After", "5").header("X-RateLimit-Remaining", "0"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "is-gitea");
        assert_eq!(h.health(&config).await.status, HealthStatus::Degraded);
        stub.on("GET", "/api/v1/version", Canned::new(500).body("Internal Server Error"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-gitea");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);

        for bad in [
            json!({"repository": "just-a-name"}),
            json!({"repository": "../user"}),
            json!({"repository": "platform/.."}),
            json!({"needsPush": true}),
            json!({"repo": "a/b"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, bad)).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
    }
}

mod jenkins {
    use super::*;

    /// A Jenkins 2.462 controller: every answer carries `X-Jenkins`, as Jenkins sends it.
    fn jenkins(status: u16, body: Value) -> Canned {
        Canned::json(status, body).header("X-Jenkins", "2.462.3").header("X-Hudson", "1.395")
    }

    fn serve_jenkins(stub: &Stub) {
        stub.on(
            "GET",
            "/api/json?tree=mode,useSecurity",
            jenkins(200, json!({"_class": "hudson.model.Hudson", "mode": "NORMAL", "useSecurity": true})),
        )
        .on("GET", "/me/api/json", jenkins(200, json!({"_class": "hudson.model.User", "id": "ci-bot", "fullName": "CI Bot"})))
        .on(
            "GET",
            "/crumbIssuer/api/json",
            jenkins(200, json!({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": "0f3c", "crumbRequestField": "Jenkins-Crumb"})),
        );
    }

    #[tokio::test]
    async fn a_user_with_an_api_token_passes_with_the_version_and_crumb() {
        let h = Harness::new("jenkins");
        let stub = Stub::start().await;
        serve_jenkins(&stub);
        let config =
            h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot", "checkCrumb": true}));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(
            step_names(&outcome),
            ["configuration", "reachable", "is-jenkins", "credential", "permission", "crumb"]
        );
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("2.462.3"));
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!("ci-bot:{SECRET}").as_bytes()));
        let seen = stub.seen();
        assert_eq!(seen[0].header("authorization"), None, "the first request proves it is Jenkins without the token");
        assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(basic.as_str())));
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
    }

    #[tokio::test]
    async fn rejected_tokens_missing_read_and_missing_crumbs_are_told_apart() {
        let h = Harness::new("jenkins");
        let stub = Stub::start().await;
        let config =
            h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot", "checkCrumb": true}));

        serve_jenkins(&stub);
        stub.on(
            "GET",
            "/api/json?tree=mode,useSecurity",
            jenkins(401, json!({})).header("WWW-Authenticate", r#"Basic realm="Jenkins""#),
        );
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
        // The health check proves Jenkins anonymously, then asks `/me/api/json` with the token.
        stub.on("GET", "/me/api/json", jenkins(401, json!({})).header("WWW-Authenticate", r#"Basic realm="Jenkins""#));
        let before = stub.seen().len();
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)), "{health:?}");
        let seen = stub.seen();
        assert_eq!(seen.len() - before, 2, "two requests");
        assert_eq!(seen[before].header("authorization"), None, "the proof goes without the token");
        serve_jenkins(&stub);
        // Jenkins's Basic-auth entry point answers a wrong token without `X-Jenkins`; the
        // anonymous answer has already proven Jenkins, so it is still `auth`.
        stub.on("GET", "/api/json?tree=mode,useSecurity", jenkins(403, json!({})));
        stub.on_authorized(
            "GET",
            "/api/json?tree=mode,useSecurity",
            Canned::new(401).header("WWW-Authenticate", r#"Basic realm="Jenkins""#),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("2.462.3"));
        stub.clear();

        stub.on("GET", "/api/json?tree=mode,useSecurity", jenkins(403, json!({})));
        assert_failed(&h.test(&config).await, FailureClass::Permission, "permission");

        serve_jenkins(&stub);
        stub.on("GET", "/me/api/json", jenkins(200, json!({"id": "anonymous", "fullName": "anonymous"})));
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

        serve_jenkins(&stub);
        stub.on("GET", "/crumbIssuer/api/json", jenkins(404, json!({})));
        assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "crumb");
    }

    #[tokio::test]
    async fn other_servers_and_outages_are_classed() {
        let h = Harness::new("jenkins");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot"}));
        // A web server that answers JSON but is not Jenkins.
        stub.on("GET", "/api/json?tree=mode,useSecurity", Canned::json(200, json!({"mode": "NORMAL"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-jenkins");
        assert!(
            stub.seen().iter().all(|s| s.header("authorization").is_none()),
            "the token went to a non-Jenkins server"
        );
        stub.on("GET", "/api/json?tree=mode,useSecurity", Canned::new(503).body("Jenkins is getting ready to work"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-jenkins");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::ProviderDown));

        for bad in [json!({}), json!({"username": "a:b"}), json!({"username": "ci", "checkCrumb": "yes"})] {
            let outcome = h.test(&h.integration(IntegrationType::Ci, &stub.base_url, bad)).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
    }
}

mod artifact {
    use super::*;

    #[tokio::test]
    async fn the_settings_are_checked_without_any_network_call() {
        let h = Harness::new("artifact");
        let mut config = h.integration(
            IntegrationType::Artifact,
            "https://unused.example",
            json!({"formats": ["cyclonedx-json", "openvex"], "maxSizeBytes": 10485760}),
        );
        config.base_url = None;
        config.auth_ref = None;
        let invocation = h.sandbox.test_connection(&h.connector, &config).await;
        assert!(invocation.result.success, "{:?}", invocation.result);
        assert_eq!(step_names(&invocation.result), ["formats", "size-limit"]);
        assert!(
            invocation.record.host_calls.iter().all(|c| c.interface != stella_runtime::record::Interface::Http),
            "{:?}",
            invocation.record.host_calls
        );
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

        config.configuration = json!({});
        assert!(h.test(&config).await.success, "the defaults are valid");
        for bad in [
            json!({"formats": []}),
            json!({"formats": ["pdf"]}),
            json!({"maxSizeBytes": 10}),
            json!({"maxSizeBytes": 1u64 << 40}),
            json!({"format": ["spdx-json"]}),
        ] {
            config.configuration = bad.clone();
            assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");
            assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy, "{bad}");
        }
        config.configuration = json!({});
        config.base_url = Some("https://sbom.example.com".into());
        assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");
    }
}

mod feed_mirror {
    use super::*;

    fn http_date(days: i64) -> String {
        let date = date_in(days);
        let (year, month, day) = (&date[0..4], date[5..7].parse::<usize>().unwrap(), &date[8..10]);
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        // The weekday is not checked by anyone; IMF-fixdate needs one.
        format!("Mon, {day} {} {year} 00:00:00 GMT", months[month - 1])
    }

    fn index(generated: &str) -> Canned {
        Canned::json(
            200,
            json!({"generated": generated, "feeds": [{"name": "nvd", "path": "/nvd/"}, {"name": "osv", "path": "/osv/"}]}),
        )
    }

    #[tokio::test]
    async fn a_fresh_index_passes_and_a_stale_one_degrades() {
        let h = Harness::new("feed-mirror");
        let stub = Stub::start().await;
        let config = h.integration(
            IntegrationType::Feed,
            &stub.base_url,
            json!({"mirrorHosts": ["127.0.0.1"], "maxAgeHours": 48}),
        );
        stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(0))));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "index", "fresh"]);
        assert_eq!(stub.seen()[0].header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

        stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(-5))));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::ProviderDown, "fresh");
        assert!(outcome.message.contains("not syncing"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::ProviderDown)));

        // An index dated days ahead says a clock is wrong: its age is not trusted.
        stub.on("GET", "/index.json", index(&format!("{}T00:00:00Z", date_in(3))));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::ProviderMismatch, "fresh");
        assert!(outcome.message.contains("future"), "{outcome:?}");
        // A number where the timestamp belongs is an error, not a fall back on Last-Modified.
        stub.on(
            "GET",
            "/index.json",
            Canned::json(200, json!({"generated": 1795000000})).header("Last-Modified", &http_date(0)),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");

        // Without a timestamp in the index, Last-Modified tells the age.
        stub.on(
            "GET",
            "/index.json",
            Canned::json(200, json!([{"name": "nvd"}])).header("Last-Modified", &http_date(0)),
        );
        assert!(h.test(&config).await.success);
        stub.on(
            "GET",
            "/index.json",
            Canned::json(200, json!([{"name": "nvd"}])).header("Last-Modified", &http_date(-10)),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "fresh");
        stub.on("GET", "/index.json", Canned::json(200, json!([{"name": "nvd"}])));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");
    }

    #[tokio::test]
    async fn only_allowed_mirrors_are_contacted_and_failures_are_classed() {
        let h = Harness::new("feed-mirror");
        let stub = Stub::start().await;
        // An air-gapped site that lists its mirrors: any other host is refused before any request.
        let elsewhere =
            h.integration(IntegrationType::Feed, &stub.base_url, json!({"mirrorHosts": ["mirror.internal"]}));
        let outcome = h.test(&elsewhere).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        assert!(outcome.message.contains("mirror.internal"), "{outcome:?}");
        assert!(stub.seen().is_empty());

        let config = h.integration(
            IntegrationType::Feed,
            &stub.base_url,
            json!({"indexPath": "/feeds/index.json", "username": "mirror"}),
        );
        // A generic web server.
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "index");
        stub.on(
            "GET",
            "/feeds/index.json",
            Canned::new(200).header("Content-Type", "text/html").body("<html>it works</html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "index");
        stub.on("GET", "/feeds/index.json", Canned::new(401).header("WWW-Authenticate", r#"Basic realm="mirror""#));
        assert_failed(&h.test(&config).await, FailureClass::Auth, "index");
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!("mirror:{SECRET}").as_bytes()));
        assert!(stub.seen().iter().all(|s| s.header("authorization") == Some(basic.as_str())));
        stub.on("GET", "/feeds/index.json", Canned::new(503));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "index");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);
        stub.on("GET", "/feeds/index.json", index("yesterday"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "fresh");

        for bad in [
            json!({"maxAgeHours": 0}),
            json!({"indexPath": "index.json"}),
            json!({"mirrorHosts": []}),
            json!({"mirrors": ["a"]}),
        ] {
            assert_failed(
                &h.test(&h.integration(IntegrationType::Feed, &stub.base_url, bad)).await,
                FailureClass::Misconfigured,
                "configuration",
            );
        }
    }
}

mod oci_registry {
    use super::*;
    use crate::registry::{PushImage as _, Registry};

    const OTHER_PASSWORD: &str = "another-users-password";

    fn step<'a>(outcome: &'a TestOutcome, name: &str) -> &'a str {
        &outcome.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}: {outcome:?}")).message
    }

    #[tokio::test]
    async fn the_real_registry_accepts_the_right_password_and_finds_the_repository() {
        let registry = Registry::start(&[("ci-bot", SECRET), ("someone", OTHER_PASSWORD)]);
        registry.push("ci-bot", SECRET, "team/app", "1.0").await;
        let h = Harness::new("oci-registry");
        let with = |configuration: Value| {
            let mut c = configuration;
            c["caCertificates"] = json!(registry.ca_pem);
            h.integration(IntegrationType::Registry, &registry.url, c)
        };

        let config = with(json!({"username": "ci-bot", "repository": "team/app"}));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-registry", "credential", "repository"]);
        assert!(step(&outcome, "is-registry").contains("registry/2.0"), "{outcome:?}");
        assert!(step(&outcome, "credential").contains("Basic"), "{outcome:?}");
        assert!(step(&outcome, "repository").contains("it has tags"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        // Health is cheap: the repository is not listed.
        assert!(!health.steps.iter().any(|s| s.name == "repository"), "{health:?}");

        // The wrong password (the AuthRef's secret is not `someone`'s).
        let wrong = with(json!({"username": "someone", "repository": "team/app"}));
        let outcome = h.test(&wrong).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("UNAUTHORIZED"), "{outcome:?}");
        let health = h.health(&wrong).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

        // A repository that does not exist.
        let missing = with(json!({"username": "ci-bot", "repository": "team/nothing-here"}));
        let outcome = h.test(&missing).await;
        assert_failed(&outcome, FailureClass::NotFound, "repository");
        assert!(outcome.message.contains("NAME_UNKNOWN"), "{outcome:?}");

        // No credential at all: the registry requires one.
        let mut anonymous = with(json!({}));
        anonymous.auth_ref = None;
        assert_failed(&h.test(&anonymous).await, FailureClass::Auth, "credential");
    }

    #[tokio::test]
    async fn the_registry_certificate_needs_its_private_ca() {
        let registry = Registry::start(&[("ci-bot", SECRET)]);
        let h = Harness::new("oci-registry");
        let config = h.integration(IntegrationType::Registry, &registry.url, json!({"username": "ci-bot"}));
        assert_failed(&h.test(&config).await, FailureClass::Tls, "reachable");
        let other_ca = PrivateCa::new().ca_pem;
        let config = h.integration(
            IntegrationType::Registry,
            &registry.url,
            json!({"username": "ci-bot", "caCertificates": other_ca}),
        );
        assert_failed(&h.test(&config).await, FailureClass::Tls, "reachable");
    }

    #[tokio::test]
    async fn a_stopped_registry_is_unreachable_and_unhealthy() {
        let mut registry = Registry::start(&[("ci-bot", SECRET)]);
        let h = Harness::new("oci-registry");
        let config = h.integration(
            IntegrationType::Registry,
            &registry.url,
            json!({"username": "ci-bot", "caCertificates": registry.ca_pem}),
        );
        assert!(h.test(&config).await.success);
        registry.stop();
        assert_failed(&h.test(&config).await, FailureClass::Network, "reachable");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Network)));
    }

    /// A registry with a Bearer challenge whose token service is on its own origin (GHCR, Quay,
    /// ACR, Harbor's registry): the documented `401` with `WWW-Authenticate` and an OCI error body.
    fn bearer_registry(stub: &Stub, scope_query: &str) -> String {
        let realm = format!("{}/token", stub.base_url);
        stub.on(
            "GET",
            "/v2/",
            Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}))
                .header("Docker-Distribution-API-Version", "registry/2.0")
                .header("WWW-Authenticate", &format!(r#"Bearer realm="{realm}",service="stub.registry""#)),
        );
        stub.on_authorized(
            "GET",
            "/v2/",
            Canned::json(200, json!({})).header("Docker-Distribution-API-Version", "registry/2.0"),
        );
        let token_path = format!("/token?service=stub.registry{scope_query}");
        stub.on_authorized(
            "GET",
            &token_path,
            Canned::json(
                200,
                json!({"token": ISSUED, "access_token": ISSUED, "expires_in": 300, "issued_at": "2026-11-27T10:00:00Z"}),
            ),
        );
        token_path
    }

    const ISSUED: &str = "issued-registry-token-5d1e0c";

    #[tokio::test]
    async fn a_bearer_challenge_is_answered_through_the_token_service_and_the_token_stays_in_the_host() {
        let h = Harness::new("oci-registry");
        let stub = Stub::start().await;
        let token_path = bearer_registry(&stub, "&scope=repository%3Ateam%2Fapp%3Apull");
        stub.on_authorized(
            "GET",
            "/v2/team/app/tags/list?n=1",
            Canned::json(200, json!({"name": "team/app", "tags": ["1.0"]})).header("ratelimit-remaining", "97;w=21600"),
        );
        let config =
            h.integration(IntegrationType::Registry, &stub.base_url, json!({"preset": "ghcr-like-is-not-a-preset"}));
        assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");

        let config = h.integration(
            IntegrationType::Registry,
            &stub.base_url,
            json!({"username": "octo", "repository": "team/app"}),
        );
        let invocation = h.sandbox.test_connection(&h.connector, &config).await;
        let printed = format!("{:?} {:?}", invocation.result, invocation.record);
        assert!(!printed.contains(ISSUED) && !printed.contains(SECRET), "{printed}");
        let outcome = invocation.result;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(97));
        assert!(step(&outcome, "credential").contains("a token from"), "{outcome:?}");
        let seen = stub.seen();
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/v2/", token_path.as_str(), "/v2/", "/v2/team/app/tags/list?n=1"]);
        assert_eq!(seen[0].header("authorization"), None, "nothing is sent before the registry is proven");
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!("octo:{SECRET}").as_bytes()));
        assert_eq!(seen[1].header("authorization"), Some(basic.as_str()));
        let bearer = format!("Bearer {ISSUED}");
        assert_eq!(seen[2].header("authorization"), Some(bearer.as_str()));
        assert_eq!(seen[3].header("authorization"), Some(bearer.as_str()));
        // The audit names the call that yielded the token and the calls that applied it.
        let calls = &invocation.record.host_calls;
        // The record keeps the whole URL the connector asked for, query string and all.
        let token_target = format!("{}{token_path}", stub.base_url);
        assert!(calls.iter().any(|c| c.token_kept && c.target == token_target), "{calls:?}");
        let token_origin = format!("token from {}/token", stub.base_url);
        assert_eq!(calls.iter().filter(|c| c.auth_ref.as_deref() == Some(token_origin.as_str())).count(), 2);

        // The token service refuses the credential.
        stub.on_authorized(
            "GET",
            &token_path,
            Canned::json(
                401,
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]}),
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("incorrect username or password"), "{outcome:?}");
        // ...or answers without a token.
        stub.on_authorized("GET", &token_path, Canned::json(200, json!({"details": "none"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "credential");
    }

    #[tokio::test]
    async fn the_credential_never_goes_to_a_token_service_on_another_origin() {
        let h = Harness::new("oci-registry");
        let stub = Stub::start().await;
        let elsewhere = Stub::start().await;
        stub.on(
            "GET",
            "/v2/",
            Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}))
                .header("Docker-Distribution-API-Version", "registry/2.0")
                .header("WWW-Authenticate", &format!(r#"Bearer realm="{}/token",service="x""#, elsewhere.base_url)),
        );
        let config = h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "octo"}));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "credential");
        assert!(outcome.message.contains("the credential was not sent"), "{outcome:?}");
        assert!(elsewhere.seen().is_empty());
        assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()));
    }

    #[tokio::test]
    async fn other_servers_rate_limits_and_outages_are_told_apart() {
        let h = Harness::new("oci-registry");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "octo"}));
        // A generic web server, and a web server behind Basic auth (no Distribution header, an HTML body).
        stub.on("GET", "/v2/", Canned::new(200).header("Content-Type", "text/html").body("<html>it works</html>"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-registry");
        stub.on(
            "GET",
            "/v2/",
            Canned::new(401)
                .header("WWW-Authenticate", r#"Basic realm="intranet""#)
                .header("Content-Type", "text/html")
                .body("<html>401 Authorization Required</html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-registry");
        assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()), "no credential to a stranger");
        // Docker Hub's documented 429.
        stub.on(
            "GET",
            "/v2/",
            Canned::json(
                429,
                json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]}),
            )
            .header("Docker-Distribution-API-Version", "registry/2.0")
            .header("ratelimit-limit", "100;w=21600")
            .header("ratelimit-remaining", "0;w=21600")
            .header("Retry-After", "3600"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "is-registry");
        assert!(outcome.message.contains("TOOMANYREQUESTS") && outcome.message.contains("retry after 3600"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
        stub.on("GET", "/v2/", Canned::new(503));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-registry");
        assert_failed(
            &h.test(&h.integration(IntegrationType::Registry, &closed_port(), json!({"username": "u"}))).await,
            FailureClass::Network,
            "reachable",
        );
    }

    #[tokio::test]
    async fn configuration_is_checked_before_any_request() {
        let h = Harness::new("oci-registry");
        let stub = Stub::start().await;
        for bad in [
            json!({"preset": "docker-hub", "username": "u"}),
            json!({"preset": "acr", "username": "u"}),
            json!({"preset": "nope", "username": "u"}),
            json!({}),
            json!({"username": "a:b"}),
            json!({"username": "u", "repository": "Team/App"}),
            json!({"username": "u", "repository": "team/../app"}),
            json!({"username": "u", "registry": "x"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Registry, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        assert!(stub.seen().is_empty());
        // A preset names the hosts it expects.
        let ecr = h.integration(IntegrationType::Registry, &stub.base_url, json!({"preset": "ecr"}));
        assert!(h.test(&ecr).await.message.contains("amazonaws.com"));
    }

    #[tokio::test]
    async fn a_refusal_at_v2_is_about_the_credential() {
        // ECR's Basic challenge, then its documented refusal of an expired password: 403 DENIED.
        let h = Harness::new("oci-registry");
        let stub = Stub::start().await;
        stub.on(
            "GET",
            "/v2/",
            Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "Not Authorized"}]}))
                .header("Docker-Distribution-API-Version", "registry/2.0")
                .header("WWW-Authenticate", r#"Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com""#),
        )
        .on_authorized(
            "GET",
            "/v2/",
            Canned::json(403, json!({"errors": [{"code": "DENIED", "message": "Your authorization token has expired. Reauthenticate and try again."}]})),
        );
        let config = h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "AWS"}));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("has expired"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));
    }
}

mod github {
    use super::*;

    /// GitHub's answer headers: every answer carries a request id; Enterprise Server names its
    /// version.
    fn github_answer(status: u16, body: Value) -> Canned {
        Canned::json(status, body)
            .header("X-GitHub-Request-Id", "CAFE:1F2E:3D4C:5B6A:7E8F9A0B")
            .header("X-GitHub-Enterprise-Version", "3.14.2")
    }

    /// Enterprise Server 3.14 as its REST API documentation shows the answers, with a classic
    /// token holding `repo, read:org`.
    fn serve_github(stub: &Stub, scopes: Option<&str>, expires: &str) {
        let mut me = github_answer(200, json!({"login": "octocat", "id": 1, "type": "User"}))
            .header("X-RateLimit-Limit", "5000")
            .header("X-RateLimit-Remaining", "4987")
            .header("X-RateLimit-Resource", "core")
            .header("GitHub-Authentication-Token-Expiration", expires);
        if let Some(scopes) = scopes {
            me = me.header("X-OAuth-Scopes", scopes).header("X-Accepted-OAuth-Scopes", "");
        }
        stub.on(
            "GET",
            "/api/v3/meta",
            github_answer(200, json!({"verifiable_password_authentication": true, "installed_version": "3.14.2",
                                     "hooks": ["192.0.2.0/24"]})),
        )
        .on("GET", "/api/v3/user", me)
        .on(
            "GET",
            "/api/v3/repos/acme/api",
            github_answer(200, json!({"id": 42, "full_name": "acme/api", "private": true,
                                     "permissions": {"admin": false, "maintain": false, "push": false, "triage": false, "pull": true}})),
        );
    }

    fn bad_credentials() -> Canned {
        github_answer(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
    }

    #[tokio::test]
    async fn a_classic_token_passes_with_its_user_scopes_expiry_and_rate_limit() {
        let h = Harness::new("github");
        let stub = Stub::start().await;
        serve_github(&stub, Some("repo, read:org"), &format!("{} 09:00:00 UTC", date_in(30)));
        let config = h.integration(
            IntegrationType::Scm,
            &stub.base_url,
            json!({"requiredScopes": ["public_repo", "read:org"], "repository": "acme/api"}),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(
            step_names(&outcome),
            ["configuration", "reachable", "is-github", "credential", "token", "repository"]
        );
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("3.14.2"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(4987));
        assert_eq!(outcome.facts.credential_expires_at, Some(format!("{}T09:00:00Z", date_in(30))));
        assert!(outcome.steps[4].message.contains("classic token with the scopes `repo, read:org`"), "{outcome:?}");
        // The token went only to a server proven to be GitHub, as a bearer token.
        let seen = stub.seen();
        assert_eq!(seen[0].path, "/api/v3/meta");
        for s in &seen {
            let token = format!("Bearer {SECRET}");
            assert_eq!(s.header("authorization"), (s.path != "/api/v3/meta").then_some(token.as_str()), "{s:?}");
            assert_eq!(s.header("x-github-api-version"), Some("2022-11-28"));
        }

        // Health: Enterprise Server proves itself again, then the token (two requests).
        let before = stub.seen().len();
        serve_github(&stub, Some("repo, read:org"), &format!("{} 09:00:00 UTC", date_in(3)));
        let health = h.health(&config).await;
        assert_eq!(health.status, HealthStatus::Degraded, "an expiry within 7 days: {health:?}");
        assert!(health.message.contains("expires"), "{health:?}");
        let paths: Vec<String> = stub.seen().into_iter().skip(before).map(|s| s.path).collect();
        assert_eq!(paths, ["/api/v3/meta", "/api/v3/user"]);
    }

    #[tokio::test]
    async fn a_fine_grained_token_has_no_scopes_and_missing_classic_scopes_are_a_permission() {
        let h = Harness::new("github");
        let stub = Stub::start().await;
        // Fine-grained tokens carry no `X-OAuth-Scopes`; this one never expires.
        stub.on("GET", "/api/v3/meta", github_answer(200, json!({"verifiable_password_authentication": false}))).on(
            "GET",
            "/api/v3/user",
            github_answer(200, json!({"login": "ci-bot"})),
        );
        let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"requiredScopes": ["repo"]}));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert!(outcome.steps[4].message.contains("fine-grained token"), "{outcome:?}");
        assert_eq!(outcome.facts.credential_expires_at, None);

        serve_github(&stub, Some("public_repo, workflow"), "2027-01-01 00:00:00 UTC");
        let config =
            h.integration(IntegrationType::Ci, &stub.base_url, json!({"requiredScopes": ["repo", "workflow"]}));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "token");
        assert!(outcome.message.contains("lacks the scopes repo (it has: public_repo, workflow)"), "{outcome:?}");
    }

    #[tokio::test]
    async fn github_refusals_map_to_failure_classes() {
        let h = Harness::new("github");
        let stub = Stub::start().await;
        serve_github(&stub, Some("repo"), "2027-01-01 00:00:00 UTC");
        let config =
            h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "acme/api", "needsPush": true}));
        assert_failed(&h.test(&config).await, FailureClass::Permission, "repository");

        // A bad or expired token: nothing is tried after the 401.
        stub.on("GET", "/api/v3/user", bad_credentials());
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("Bad credentials"), "{outcome:?}");
        assert_eq!(stub.seen().len() - before, 2, "meta and user only");

        // The primary rate limit exhausted: 403 with `X-RateLimit-Remaining: 0`.
        stub.on(
            "GET",
            "/api/v3/user",
            github_answer(403, json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}))
                .header("X-RateLimit-Remaining", "0")
                .header("X-RateLimit-Reset", "1798675200"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "credential");
        assert_eq!(h.health(&config).await.status, HealthStatus::Degraded);

        // A repository the token may not see.
        serve_github(&stub, Some("repo"), "2027-01-01 00:00:00 UTC");
        stub.on(
            "GET",
            "/api/v3/repos/acme/api",
            github_answer(404, json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository", "status": "404"})),
        );
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "repository");

        // GitHub down.
        stub.on("GET", "/api/v3/meta", Canned::new(503).header("Retry-After", "30"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-github");
    }

    #[tokio::test]
    async fn github_com_is_proven_by_meta_in_the_test_and_by_its_certificate_in_the_health_check() {
        // api.github.com, pinned to a TLS stub whose certificate names it.
        let stub = Stub::start_tls_for(&["api.github.com"]).await;
        let h = Harness::pinned("github", &["api.github.com"], &stub);
        stub.on(
            "GET",
            "/meta",
            Canned::json(200, json!({"verifiable_password_authentication": false, "hooks": ["192.30.252.0/22"]}))
                .header("X-GitHub-Request-Id", "CAFE:1F2E:3D4C:5B6A:7E8F9A0B"),
        )
        .on(
            "GET",
            "/user",
            Canned::json(200, json!({"login": "octocat", "id": 1}))
                .header("X-GitHub-Request-Id", "CAFE:1F2E:3D4C:5B6A:7E8F9A0C")
                .header("X-OAuth-Scopes", "repo, workflow")
                .header("X-RateLimit-Remaining", "4999"),
        );
        let config = h.integration(
            IntegrationType::Ci,
            "https://github.com",
            json!({"requiredScopes": ["workflow"], "caCertificates": stub.ca_pem.clone().unwrap()}),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-github", "credential", "token"]);
        assert_eq!(
            (outcome.steps[2].message.as_str(), outcome.facts.provider_version.as_deref()),
            ("GitHub.com", None)
        );
        assert_eq!(outcome.facts.rate_limit_remaining, Some(4999));

        let before = stub.seen().len();
        let health = h.health(&config).await;
        assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
        let seen: Vec<_> = stub.seen().into_iter().skip(before).collect();
        assert_eq!(seen.len(), 1, "one request: {seen:?}");
        assert_eq!(
            (seen[0].path.as_str(), seen[0].header("authorization")),
            ("/user", Some(format!("Bearer {SECRET}").as_str()))
        );
    }

    #[tokio::test]
    async fn another_server_never_gets_the_token_and_private_mode_identifies_github() {
        let h = Harness::new("github");
        let stub = Stub::start().await;
        // Another product: its `/meta` is JSON, but not GitHub's.
        stub.on("GET", "/api/v3/meta", Canned::json(200, json!({}))).on(
            "GET",
            "/api/v3/user",
            Canned::json(200, json!({"login": "someone"})),
        );
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({}));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-github");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);
        assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()), "{:?}", stub.seen());

        // Enterprise Server in private mode refuses anonymous callers with GitHub's own 401.
        serve_github(&stub, Some("repo"), "2027-01-01 00:00:00 UTC");
        stub.on(
            "GET",
            "/api/v3/meta",
            github_answer(401, json!({"message": "Must authenticate to access this API.", "documentation_url": "https://docs.github.com/enterprise-server@3.14/rest"})),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert!(outcome.steps[2].message.ends_with("in private mode"), "{outcome:?}");

        // Configuration errors name the key.
        for (bad, why) in [
            (json!({"requiredScopes": "repo"}), "requiredScopes"),
            (json!({"requiredScopes": ["Repo!"]}), "not a GitHub scope"),
            (json!({"repository": "acme/../x"}), "owner/name"),
            (json!({"needsPush": true}), "needs a `repository`"),
            (json!({"scopes": ["repo"]}), "unknown configuration key"),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
            assert!(outcome.message.contains(why), "{bad}: {outcome:?}");
        }
    }
}

mod github_app {
    use std::process::Command;

    use super::*;

    const TOKEN: &str = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";

    /// A fresh RSA key as GitHub hands apps theirs (PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`), and its
    /// public half (PKCS#1 DER) to verify the JWTs the host signs. ring cannot generate RSA keys;
    /// openssl can.
    fn app_key() -> (String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let public = dir.path().join("public.der");
        let status = Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("`openssl` is not installed: `make test` installs it");
        assert!(status.success());
        let status = Command::new("openssl")
            .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (std::fs::read_to_string(key).unwrap(), std::fs::read(public).unwrap())
    }

    fn installation(suspended_at: Value) -> Value {
        json!({"id": 777, "app_id": 12345, "target_type": "Organization", "account": {"login": "acme", "type": "Organization"},
               "permissions": {"contents": "read", "metadata": "read"}, "suspended_at": suspended_at})
    }

    /// GitHub Enterprise Server's documented answers, under `/api/v3`.
    fn serve_github(stub: &Stub) {
        stub.on(
            "GET",
            "/api/v3/meta",
            Canned::json(200, json!({"verifiable_password_authentication": false, "installed_version": "3.14.2"}))
                .header("X-GitHub-Request-Id", "0F3A:1B2C:3D4E:5F60")
                .header("X-GitHub-Enterprise-Version", "3.14.2"),
        )
        .on_authorized(
            "GET",
            "/api/v3/app",
            Canned::json(
                200,
                json!({"id": 12345, "slug": "stella-scanner", "name": "Stella Scanner", "owner": {"login": "acme"}}),
            ),
        )
        .on_authorized(
            "GET",
            "/api/v3/app/installations?per_page=2",
            Canned::json(200, json!([installation(Value::Null)])),
        )
        .on_authorized("GET", "/api/v3/app/installations/777", Canned::json(200, installation(Value::Null)))
        .on_authorized("GET", "/api/v3/orgs/acme/installation", Canned::json(200, installation(Value::Null)))
        .on_authorized(
            "POST",
            "/api/v3/app/installations/777/access_tokens",
            Canned::json(
                201,
                json!({"token": TOKEN, "expires_at": "2026-11-28T10:00:00Z",
                       "permissions": {"contents": "read", "metadata": "read"}, "repository_selection": "selected"}),
            ),
        )
        .on_authorized(
            "GET",
            "/api/v3/installation/repositories?per_page=1",
            Canned::json(200, json!({"total_count": 3, "repositories": [{"full_name": "acme/scanner"}]}))
                .header("X-RateLimit-Limit", "5000")
                .header("X-RateLimit-Remaining", "4987"),
        );
    }

    fn b64url_decode(text: &str) -> Vec<u8> {
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut out = Vec::new();
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => panic!("not base64url: {text}"),
            };
            bits = (bits << 6) | u32::from(v);
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        out
    }

    #[tokio::test]
    async fn the_app_jwt_installation_and_token_prove_the_app_works() {
        let (pem, public) = app_key();
        let h = Harness::with_secret("github-app", &pem);
        let stub = Stub::start().await;
        serve_github(&stub);
        let config = h.integration(
            IntegrationType::Scm,
            &stub.base_url,
            json!({"appId": 12345, "requiredPermissions": {"contents": "read", "metadata": "read"}}),
        );
        let invocation = h.sandbox.test_connection(&h.connector, &config).await;
        let printed = format!("{:?} {:?}", invocation.result, invocation.record);
        h.assert_no_secret(&printed);
        assert!(!printed.contains(TOKEN), "the installation token leaked: {printed}");
        let outcome = invocation.result;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(
            step_names(&outcome),
            ["configuration", "reachable", "is-github", "app", "installation", "access-token", "api"]
        );
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("3.14.2"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(4987));
        assert!(outcome.message.contains("stella-scanner") && outcome.message.contains("acme"), "{outcome:?}");

        let seen = stub.seen();
        assert_eq!(seen[0].header("authorization"), None, "nothing is sent before GitHub is proven");
        assert!(seen.iter().all(|s| s.header("user-agent").is_some() && s.header("x-github-api-version").is_some()));
        // The app's requests carry a JWT the host signed with the app's key: RS256, the app id as
        // issuer, ten minutes of validity at most, backdated a minute.
        let jwt = seen[1].header("authorization").unwrap().strip_prefix("Bearer ").unwrap().to_string();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], 12345);
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((now - 90..=now - 30).contains(&iat) && exp - iat <= 600 && exp > now, "{claims}");
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &b64url_decode(parts[2]))
            .expect("the JWT verifies with the app's public key");
        // The installation token went only to the API call, applied by the host.
        let api = seen.iter().find(|s| s.path.starts_with("/api/v3/installation/repositories")).unwrap();
        assert_eq!(api.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(invocation.record.host_calls.iter().any(|c| c.token_kept && c.target.ends_with("/access_tokens")));

        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        // Enterprise Server proves itself before the app's JWT goes to it, in the health check too.
        assert_eq!(
            step_names_of(&health.steps),
            ["configuration", "reachable", "is-github", "installation", "access-token", "api"]
        );

        // The installation found by its account, then by id; with an id, health is `/meta` (this is
        // Enterprise Server), the token and the API call.
        for how in [json!({"appId": 12345, "account": "acme"}), json!({"appId": 12345, "installationId": 777})] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, how)).await;
            assert!(outcome.success, "{outcome:?}");
        }
        let by_id = h.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345, "installationId": 777}));
        let before = stub.seen().len();
        let health = h.health(&by_id).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        assert_eq!(stub.seen().len() - before, 3);
        // A suspended installation answers the token request 403.
        stub.on_authorized(
            "POST",
            "/api/v3/app/installations/777/access_tokens",
            Canned::json(403, json!({"message": "This installation has been suspended"})),
        );
        let health = h.health(&by_id).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Permission)));
    }

    #[tokio::test]
    async fn missing_permissions_suspension_a_wrong_key_and_rate_limits_are_told_apart() {
        let (pem, _) = app_key();
        let h = Harness::with_secret("github-app", &pem);
        let stub = Stub::start().await;
        serve_github(&stub);
        let integration = |c: Value| h.integration(IntegrationType::Scm, &stub.base_url, c);

        let write = integration(json!({"appId": 12345, "requiredPermissions": {"contents": "write"}}));
        let outcome = h.test(&write).await;
        assert_failed(&outcome, FailureClass::Permission, "access-token");
        assert!(outcome.message.contains("contents: write (granted: read)"), "{outcome:?}");

        let config = integration(json!({"appId": 12345, "installationId": 9}));
        stub.on_authorized("GET", "/api/v3/app/installations/9", Canned::json(404, json!({"message": "Not Found"})));
        assert_failed(&h.test(&config).await, FailureClass::NotFound, "installation");

        let config = integration(json!({"appId": 12345}));
        stub.on_authorized(
            "GET",
            "/api/v3/app/installations?per_page=2",
            Canned::json(200, json!([installation(json!("2026-11-01T00:00:00Z"))])),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "installation");
        assert!(outcome.message.contains("suspended"), "{outcome:?}");
        serve_github(&stub);

        // GitHub's primary rate limit: 403 with X-RateLimit-Remaining: 0.
        stub.on_authorized(
            "GET",
            "/api/v3/installation/repositories?per_page=1",
            Canned::json(403, json!({"message": "API rate limit exceeded for installation ID 777."}))
                .header("X-RateLimit-Remaining", "0")
                .header("X-RateLimit-Reset", "1795000000"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
        // A secondary limit: 403 with only the message, or 429 with Retry-After.
        stub.on_authorized(
            "GET",
            "/api/v3/installation/repositories?per_page=1",
            Canned::json(403, json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
        stub.on_authorized(
            "GET",
            "/api/v3/installation/repositories?per_page=1",
            Canned::json(429, json!({"message": "Too many requests"})).header("Retry-After", "60"),
        );
        assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
        serve_github(&stub);

        // An app installed on a user account: the organization lookup is 404, the user's is found.
        stub.on_authorized(
            "GET",
            "/api/v3/orgs/octocat/installation",
            Canned::json(404, json!({"message": "Not Found"})),
        )
        .on_authorized(
            "GET",
            "/api/v3/users/octocat/installation",
            Canned::json(200, installation(Value::Null)),
        );
        let user = integration(json!({"appId": 12345, "account": "octocat"}));
        assert!(h.test(&user).await.success);
        stub.on_authorized(
            "GET",
            "/api/v3/users/octocat/installation",
            Canned::json(404, json!({"message": "Not Found"})),
        );
        assert_failed(&h.test(&user).await, FailureClass::NotFound, "installation");

        // GitHub refuses the JWT (another app's key, or a clock far off).
        stub.on_authorized(
            "GET",
            "/api/v3/app",
            Canned::json(401, json!({"message": "A JSON web token could not be decoded", "documentation_url": "https://docs.github.com/rest"})),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "app");
        assert!(outcome.message.contains("could not be decoded") && outcome.message.contains("12345"), "{outcome:?}");

        // A secret that is not a private key.
        let plain = Harness::new("github-app");
        let outcome =
            plain.test(&plain.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345}))).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "app");
    }

    #[tokio::test]
    async fn another_server_gets_no_jwt_and_configuration_is_checked_first() {
        let (pem, _) = app_key();
        let h = Harness::with_secret("github-app", &pem);
        let stub = Stub::start().await;
        stub.on(
            "GET",
            "/api/v3/meta",
            Canned::new(200).header("Content-Type", "text/html").body("<html>gitweb</html>"),
        );
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345}));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-github");
        assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()));
        let requests = stub.seen().len();
        for bad in [
            json!({}),
            json!({"appId": -1}),
            json!({"appId": 12345, "installationId": 1, "account": "acme"}),
            json!({"appId": 12345, "account": "../admin"}),
            json!({"appId": 12345, "requiredPermissions": {"contents": "owner"}}),
            json!({"appId": 12345, "privateKey": "x"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, bad)).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        assert_eq!(stub.seen().len(), requests);
    }
}

mod bitbucket {
    use super::*;

    /// The impostors a conformance run puts behind an integration's base URL: a server answering
    /// everything with one canned response (or never answering), and what each must be classed
    /// as. Shared by the Bitbucket, Azure DevOps and CircleCI tests.
    pub mod impostors {
        use std::sync::Mutex;

        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        use tokio::net::TcpListener;

        use super::*;

        /// The headers of each request an impostor received.
        type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

        /// A server on loopback that answers every request alike, or never.
        pub struct Impostor {
            pub base_url: String,
            seen: Seen,
            task: tokio::task::JoinHandle<()>,
        }

        impl Drop for Impostor {
            fn drop(&mut self) {
                self.task.abort();
            }
        }

        impl Impostor {
            /// Answers every request with `answer`; with `None`, reads requests and never answers.
            pub async fn start(answer: Option<Canned>) -> Self {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
                let seen: Seen = Arc::default();
                let task = {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        while let Ok((stream, _)) = listener.accept().await {
                            let (seen, answer) = (seen.clone(), answer.clone());
                            tokio::spawn(async move {
                                let mut stream = BufReader::new(stream);
                                loop {
                                    let mut line = String::new();
                                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                        return;
                                    }
                                    let (mut headers, mut length) = (Vec::new(), 0);
                                    loop {
                                        let mut h = String::new();
                                        if stream.read_line(&mut h).await.unwrap_or(0) == 0 {
                                            return;
                                        }
                                        let Some((name, value)) = h.trim_end().split_once(':') else { break };
                                        if name.eq_ignore_ascii_case("content-length") {
                                            length = value.trim().parse().unwrap_or(0);
                                        }
                                        headers.push((name.trim().to_string(), value.trim().to_string()));
                                    }
                                    let mut body = vec![0; length];
                                    if stream.read_exact(&mut body).await.is_err() {
                                        return;
                                    }
                                    seen.lock().unwrap().push(headers);
                                    let Some(canned) = &answer else {
                                        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                                        return;
                                    };
                                    let mut head = format!("HTTP/1.1 {} Impostor\r\n", canned.status);
                                    for (name, value) in &canned.headers {
                                        head.push_str(&format!("{name}: {value}\r\n"));
                                    }
                                    head.push_str(&format!("Content-Length: {}\r\n\r\n", canned.body.len()));
                                    let out = stream.get_mut();
                                    if out.write_all(head.as_bytes()).await.is_err()
                                        || out.write_all(&canned.body).await.is_err()
                                    {
                                        return;
                                    }
                                }
                            });
                        }
                    })
                };
                Self { base_url, seen, task }
            }

            /// Whether any request carried a credential: `Authorization`, CircleCI's
            /// `Circle-Token`, or the secret itself in any header.
            pub fn got_a_credential(&self) -> bool {
                self.seen.lock().unwrap().iter().flatten().any(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization")
                        || name.eq_ignore_ascii_case("circle-token")
                        || value.contains(SECRET)
                })
            }

            pub fn requests(&self) -> usize {
                self.seen.lock().unwrap().len()
            }
        }

        /// A harness whose requests time out after 1.5 s, for the impostor that never answers.
        pub fn impatient(provider: &str) -> Harness {
            let mut secrets = StaticSecretResolver::default();
            secrets.insert(AuthRef::parse(AUTH_REF).unwrap(), SecretValue::new(SECRET.into()));
            let mut network = NetworkPolicy::default();
            network.allow.push("127.0.0.1/32".parse().unwrap());
            let config = SandboxConfig {
                network,
                cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
                connect_timeout_ms: 1_000,
                request_timeout_ms: 1_500,
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::new(config, Arc::new(secrets)).unwrap();
            let (_, wasm) = stella_builtin_connectors::BUILTINS.iter().find(|(p, _)| *p == provider).unwrap();
            let connector = sandbox.load(wasm, ConnectorSource::BuiltIn).unwrap();
            Harness { sandbox, connector, secret: SECRET.to_string() }
        }

        /// Each impostor, and the failure class a connector must report for it.
        pub fn cases() -> Vec<(&'static str, Option<Canned>, FailureClass)> {
            let html = "<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>";
            vec![
                ("200 {}", Some(Canned::json(200, json!({}))), FailureClass::ProviderMismatch),
                (
                    "200 HTML",
                    Some(Canned::new(200).header("Content-Type", "text/html").body(html)),
                    FailureClass::ProviderMismatch,
                ),
                (
                    "intranet Basic prompt",
                    Some(
                        Canned::new(401)
                            .header("WWW-Authenticate", r#"Basic realm="Intranet""#)
                            .header("Content-Type", "text/html")
                            .body("<html><body><h1>401 Authorization Required</h1></body></html>"),
                    ),
                    FailureClass::ProviderMismatch,
                ),
                (
                    "redirect to a login page",
                    Some(Canned::new(302).header("Location", "/login").header("Content-Type", "text/html")),
                    FailureClass::ProviderMismatch,
                ),
                (
                    "500 to everything",
                    Some(Canned::new(500).header("Content-Type", "text/plain").body("Internal Server Error")),
                    FailureClass::ProviderDown,
                ),
                ("never answers", None, FailureClass::Timeout),
            ]
        }

        /// Runs test-connection and check-health against every impostor (and a TLS server whose
        /// certificate this host does not trust): none succeeds, each is classed as it should be,
        /// and the credential never reaches one.
        pub async fn assert_impostors_are_refused(provider: &str, kind: IntegrationType, configuration: Value) {
            let h = impatient(provider);
            for (name, answer, class) in cases() {
                let impostor = Impostor::start(answer).await;
                let config = h.integration(kind, &impostor.base_url, configuration.clone());
                let outcome = h.test(&config).await;
                assert!(!outcome.success, "{provider} vs {name}: {outcome:?}");
                assert_eq!(outcome.failure, Some(class), "{provider} vs {name}: {outcome:?}");
                let health = h.health(&config).await;
                assert_eq!(
                    (health.status, health.failure),
                    (HealthStatus::Unhealthy, Some(class)),
                    "{provider} vs {name}: {health:?}"
                );
                assert!(impostor.requests() >= 2, "{provider} vs {name}: nothing was asked");
                assert!(!impostor.got_a_credential(), "{provider} sent the credential to the impostor `{name}`");
            }
            let tls = Stub::start_tls().await;
            let config = h.integration(kind, &tls.base_url, configuration.clone());
            assert_failed(&h.test(&config).await, FailureClass::Tls, "reachable");
            assert_eq!(h.health(&config).await.failure, Some(FailureClass::Tls));
            assert!(tls.seen().is_empty(), "a request went through an untrusted TLS connection");
        }
    }

    const PROPERTIES: &str = "/rest/api/1.0/application-properties";
    const REPO: &str = "/rest/api/1.0/projects/PLAT/repos/api";
    const WRITABLE: &str = "/rest/api/1.0/repos?name=api&permission=REPO_WRITE&limit=100";

    fn repository() -> Value {
        json!({"slug": "api", "id": 11, "name": "api", "scmId": "git", "state": "AVAILABLE",
               "statusMessage": "Available", "forkable": true, "public": false, "archived": false,
               "project": {"key": "PLAT", "id": 3, "name": "Platform", "public": false, "type": "NORMAL"}})
    }

    /// Bitbucket Data Center 8.19 as its REST API documentation shows the answers; its rate
    /// limiting sends `X-RateLimit-*` on authenticated requests, and every answer to a signed-in
    /// caller names the user in `X-AUSERNAME`.
    fn serve_bitbucket(stub: &Stub) {
        stub.on(
            "GET",
            PROPERTIES,
            Canned::json(
                200,
                json!({"version": "8.19.1", "buildNumber": "8019001", "buildDate": "1712345678901", "displayName": "Bitbucket"}),
            ),
        )
        .on(
            "GET",
            REPO,
            Canned::json(200, repository())
                .header("X-AUSERNAME", "ci-bot")
                .header("X-AUSERID", "5")
                .header("X-RateLimit-Limit", "60")
                .header("X-RateLimit-Remaining", "54")
                .header("X-RateLimit-Interval-Seconds", "1")
                .header("X-RateLimit-FillRate", "5"),
        )
        .on(
            "GET",
            WRITABLE,
            Canned::json(200, json!({"size": 1, "limit": 100, "isLastPage": true, "start": 0, "values": [repository()]}))
                .header("X-AUSERNAME", "ci-bot"),
        );
    }

    fn dc_error(status: u16, message: &str, exception: &str) -> Canned {
        Canned::json(status, json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}))
    }

    #[tokio::test]
    async fn a_data_center_user_with_repository_access_passes_with_the_version() {
        let h = Harness::new("bitbucket");
        let stub = Stub::start().await;
        serve_bitbucket(&stub);
        let config = h.integration(
            IntegrationType::Scm,
            &stub.base_url,
            json!({"repository": "PLAT/api", "username": "ci-bot", "needsWrite": true}),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-bitbucket", "credential", "repository"]);
        assert_eq!(outcome.facts.provider_version.as_deref(), Some("8.19.1"));
        assert_eq!(outcome.facts.rate_limit_remaining, Some(54));
        assert!(outcome.steps[3].message.contains("ci-bot") && outcome.steps[4].message.contains("writable"));
        let seen = stub.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[0].path.as_str(), seen[0].header("authorization")), (PROPERTIES, None), "proven anonymously");
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!("ci-bot:{SECRET}").as_bytes()));
        assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(basic.as_str())), "{seen:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        assert_eq!(stub.seen().len(), 3 + 2, "the health check is two requests");

        // An HTTP access token without a username goes as a bearer token.
        let token = h.integration(IntegrationType::Ci, &stub.base_url, json!({"repository": "PLAT/api"}));
        assert!(h.test(&token).await.success);
        let last = stub.seen().pop().unwrap();
        assert_eq!(last.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }

    #[tokio::test]
    async fn credential_repository_and_write_failures_are_told_apart() {
        let h = Harness::new("bitbucket");
        let stub = Stub::start().await;
        let config = h.integration(
            IntegrationType::Scm,
            &stub.base_url,
            json!({"repository": "PLAT/api", "username": "ci-bot", "needsWrite": true}),
        );

        serve_bitbucket(&stub);
        stub.on(
            "GET",
            REPO,
            dc_error(
                401,
                "Authentication failed. Please check your credentials and try again.",
                "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
            )
            .header("WWW-Authenticate", r#"Basic realm="Atlassian Bitbucket""#),
        );
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(
            outcome.message.contains("Authentication failed.") && outcome.message.contains("CAPTCHA"),
            "{outcome:?}"
        );
        assert!(outcome.message.contains("IncorrectPasswordAuthenticationException"), "{outcome:?}");
        assert_eq!(stub.seen().len() - before, 2, "nothing is sent after the first 401");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));

        serve_bitbucket(&stub);
        stub.on(
            "GET",
            REPO,
            dc_error(
                404,
                "Repository PLAT/api does not exist.",
                "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
            )
            .header("X-AUSERNAME", "ci-bot"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "repository");
        assert!(outcome.message.contains("does not exist") && outcome.steps[3].passed, "{outcome:?}");

        stub.on(
            "GET",
            REPO,
            dc_error(
                403,
                "You are not permitted to access this resource",
                "com.atlassian.bitbucket.AuthorisationException",
            )
            .header("X-AUSERNAME", "ci-bot"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("not permitted"), "{outcome:?}");

        // Readable, but not among the repositories the user may write to.
        serve_bitbucket(&stub);
        stub.on(
            "GET",
            WRITABLE,
            Canned::json(200, json!({"size": 0, "limit": 100, "isLastPage": true, "start": 0, "values": []})),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("REPO_WRITE"), "{outcome:?}");
        // The health check does not ask for write access.
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
    }

    #[tokio::test]
    async fn rate_limits_outages_and_other_servers_are_classed() {
        let h = Harness::new("bitbucket");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "PLAT/api"}));
        serve_bitbucket(&stub);
        stub.on(
            "GET",
            REPO,
            Canned::new(429)
                .header("X-RateLimit-Limit", "60")
                .header("X-RateLimit-Remaining", "0")
                .header("Retry-After", "2")
                .header("X-AUSERNAME", "ci-bot"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "repository");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        assert!(outcome.message.contains("retry after 2"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        let before = stub.seen().len();
        stub.on("GET", PROPERTIES, Canned::new(503).body("Bitbucket is starting up"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-bitbucket");
        // Something that answers JSON, but not Bitbucket's properties (Jira's, say).
        stub.on(
            "GET",
            PROPERTIES,
            Canned::json(200, json!({"version": "9.12.0", "buildNumber": "9120000", "displayName": "Jira"})),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-bitbucket");
        stub.clear();
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-bitbucket");
        assert!(
            stub.seen()[before..].iter().all(|s| s.header("authorization").is_none()),
            "the credential went to a server not proven to be Bitbucket"
        );
    }

    #[tokio::test]
    async fn impostors_get_no_credential() {
        impostors::assert_impostors_are_refused(
            "bitbucket",
            IntegrationType::Scm,
            json!({"repository": "PLAT/api", "username": "ci-bot"}),
        )
        .await;
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        let h = Harness::new("bitbucket");
        let stub = Stub::start().await;
        for bad in [
            json!({}),
            json!({"repository": "just-a-name"}),
            json!({"repository": "../api"}),
            json!({"repository": "PLAT/.."}),
            json!({"repository": "PLAT/api/x"}),
            json!({"repository": "PLAT/a%2Fb"}),
            json!({"repository": "PLAT/api", "username": "ci:bot"}),
            json!({"repository": "PLAT/api", "needsWrite": "yes"}),
            json!({"repo": "PLAT/api"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        // A Bitbucket Cloud host spelled otherwise is not taken for a Data Center.
        for base in ["http://bitbucket.org", "https://bitbucket.org/acme"] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, base, json!({"repository": "acme/api"}))).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        let mut anonymous = h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "PLAT/api"}));
        anonymous.auth_ref = None;
        assert_failed(&h.test(&anonymous).await, FailureClass::Misconfigured, "configuration");
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }
    // Bitbucket Cloud: `https://bitbucket.org` means the REST API 2.0 on `api.bitbucket.org`, here
    // pinned to a TLS stub whose certificate names it.

    const CLOUD_HOSTS: [&str; 1] = ["api.bitbucket.org"];
    const CLOUD_USER: &str = "/2.0/user";
    const CLOUD_REPO: &str = "/2.0/repositories/acme/api";
    /// `GET /2.0/user/permissions/repositories?q=repository.full_name="acme/api"`.
    const CLOUD_PERMISSION: &str = "/2.0/user/permissions/repositories?q=repository.full_name%3D%22acme%2Fapi%22";

    /// Bitbucket Cloud's error body: `{"type": "error", "error": {"message", "detail"}}`.
    fn cloud_error(status: u16, error: Value) -> Canned {
        Canned::json(status, json!({"type": "error", "error": error}))
    }

    /// `GET /2.0/user` for the account behind an API token or app password.
    fn cloud_account() -> Value {
        json!({"type": "user", "uuid": "{d301aafa-d676-4ee0-88be-962be7417567}",
               "account_id": "557058:3f2c8a4e-1b6d-4c8e-9f0a-7b5d2e1c4a9f", "nickname": "ci-bot",
               "display_name": "CI Bot", "account_status": "active", "created_on": "2021-03-04T10:00:00.000000+00:00",
               "links": {"self": {"href": "https://api.bitbucket.org/2.0/users/%7Bd301aafa-d676-4ee0-88be-962be7417567%7D"}}})
    }

    /// `GET /2.0/repositories/acme/api`: a private Git repository of the workspace `acme`.
    fn cloud_repository() -> Value {
        json!({"type": "repository", "full_name": "acme/api", "name": "api", "slug": "api",
               "uuid": "{5137f783-a12b-4958-a614-4a2af63fca20}", "is_private": true, "scm": "git",
               "fork_policy": "no_public_forks", "mainbranch": {"type": "branch", "name": "main"},
               "workspace": {"type": "workspace", "slug": "acme", "name": "Acme", "uuid": "{cc445f42-b2f8-4d69-bfd1-4e0047966e87}"},
               "project": {"type": "project", "key": "PLAT", "name": "Platform", "uuid": "{0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0}"},
               "links": {"html": {"href": "https://bitbucket.org/acme/api"}}})
    }

    /// The user's permission on the repository, as `/2.0/user/permissions/repositories` lists it.
    fn cloud_permission(permission: &str) -> Canned {
        Canned::json(
            200,
            json!({"pagelen": 10, "page": 1, "size": 1, "values": [
                {"type": "repository_permission", "permission": permission,
                 "user": {"type": "user", "display_name": "CI Bot", "nickname": "ci-bot"},
                 "repository": {"type": "repository", "full_name": "acme/api", "name": "api"}}]}),
        )
    }

    /// Bitbucket Cloud as its REST API 2.0 reference shows the answers: an anonymous caller gets
    /// 401 from `/2.0/user` and 404 for a private repository; a signed-in user with write access
    /// gets the account, the repository and the permission.
    fn serve_bitbucket_cloud(stub: &Stub) {
        stub.on("GET", CLOUD_USER, cloud_error(401, json!({"message": "Unauthorized"})))
            .on_authorized("GET", CLOUD_USER, Canned::json(200, cloud_account()))
            .on(
                "GET",
                CLOUD_REPO,
                cloud_error(404, json!({"message": "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated."})),
            )
            .on_authorized("GET", CLOUD_REPO, Canned::json(200, cloud_repository()))
            .on_authorized("GET", CLOUD_PERMISSION, cloud_permission("write"));
    }

    /// A Cloud integration (`https://bitbucket.org`) trusting the stub's private CA.
    fn cloud_settings(stub: &Stub, settings: Value) -> Value {
        let mut settings = settings;
        settings["caCertificates"] = json!(stub.ca_pem.clone().unwrap());
        settings
    }

    fn paths_since(stub: &Stub, before: usize) -> Vec<String> {
        stub.seen().into_iter().skip(before).map(|s| s.path).collect()
    }

    #[tokio::test]
    async fn bitbucket_cloud_api_tokens_and_app_passwords_go_as_basic_to_api_bitbucket_org() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("bitbucket", &CLOUD_HOSTS, &stub);
        serve_bitbucket_cloud(&stub);
        // An Atlassian API token with the account's email, an app password with the username.
        for username in ["ci-bot@acme.example", "ci-bot"] {
            let settings =
                cloud_settings(&stub, json!({"repository": "acme/api", "username": username, "needsWrite": true}));
            let config = h.integration(IntegrationType::Scm, "https://bitbucket.org", settings);
            let before = stub.seen().len();
            let outcome = h.test(&config).await;
            assert!(outcome.success, "{username}: {outcome:?}");
            assert_eq!(
                step_names(&outcome),
                ["configuration", "reachable", "is-bitbucket", "credential", "repository"]
            );
            assert!(outcome.steps[2].message.contains("`api.bitbucket.org` over HTTPS"), "{outcome:?}");
            assert!(outcome.steps[3].message.contains("`CI Bot`"), "{outcome:?}");
            assert!(outcome.steps[4].message.contains("readable and writable"), "{outcome:?}");
            assert_eq!((outcome.facts.provider_version.as_deref(), outcome.facts.rate_limit_remaining), (None, None));
            // Every request, the first included, carries the credential as HTTP basic.
            let basic =
                format!("Basic {}", super::http_probe::base64_encode(format!("{username}:{SECRET}").as_bytes()));
            let seen: Vec<_> = stub.seen().into_iter().skip(before).collect();
            assert_eq!(
                seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
                [CLOUD_USER, CLOUD_REPO, CLOUD_PERMISSION]
            );
            for s in &seen {
                assert_eq!(
                    (s.header("authorization"), s.header("host")),
                    (Some(basic.as_str()), Some("api.bitbucket.org"))
                );
            }

            // Health: the user and the repository, never the write permission.
            let before = stub.seen().len();
            let health = h.health(&config).await;
            assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
            assert_eq!(paths_since(&stub, before), [CLOUD_USER, CLOUD_REPO], "two requests");
            assert!(stub.seen()[before..].iter().all(|s| s.header("authorization") == Some(basic.as_str())));
        }

        // A user who may only read the repository.
        stub.on_authorized("GET", CLOUD_PERMISSION, cloud_permission("read"));
        let settings =
            cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot", "needsWrite": true}));
        let outcome = h.test(&h.integration(IntegrationType::Scm, "https://bitbucket.org", settings)).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("may read `acme/api` but not write to it"), "{outcome:?}");

        // The Cloud's other spellings mean the same API host.
        for base in [
            "https://api.bitbucket.org/2.0",
            "https://www.bitbucket.org",
            "https://Bitbucket.org/",
            "HTTPS://BITBUCKET.ORG",
        ] {
            let settings = cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot"}));
            let outcome = h.test(&h.integration(IntegrationType::Scm, base, settings)).await;
            assert!(outcome.success, "{base}: {outcome:?}");
        }
    }

    #[tokio::test]
    async fn a_bitbucket_cloud_access_token_goes_as_bearer_and_only_the_repository_proves_it() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("bitbucket", &CLOUD_HOSTS, &stub);
        serve_bitbucket_cloud(&stub);
        // Requests by an access token to `/2.0/repositories/*` carry Bitbucket's scaled rate-limit
        // headers: the hourly limit, its resource group and whether it is nearly used up (no
        // remaining count).
        let repository = || {
            Canned::json(200, cloud_repository())
                .header("X-RateLimit-Limit", "1000")
                .header("X-RateLimit-Resource", "api")
                .header("X-RateLimit-NearLimit", "false")
        };
        stub.on_authorized("GET", CLOUD_REPO, repository());
        let config = h.integration(
            IntegrationType::Ci,
            "https://bitbucket.org",
            cloud_settings(&stub, json!({"repository": "acme/api"})),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-bitbucket", "credential", "repository"]);
        assert!(outcome.steps[3].message.contains("access token is not refused"), "{outcome:?}");
        assert_eq!(outcome.facts.rate_limit_remaining, None, "Bitbucket Cloud sends no remaining count");
        // One request, the repository, with the token as a bearer token: `/2.0/user` is skipped.
        let seen = stub.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].path.as_str(), seen[0].header("authorization"), seen[0].header("host")),
            (CLOUD_REPO, Some(format!("Bearer {SECRET}").as_str()), Some("api.bitbucket.org"))
        );
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        assert_eq!(paths_since(&stub, 1), [CLOUD_REPO], "the health check is one request");

        // Write access from the scopes Bitbucket names for the token, when it names them.
        let writable = h.integration(
            IntegrationType::Ci,
            "https://bitbucket.org",
            cloud_settings(&stub, json!({"repository": "acme/api", "needsWrite": true})),
        );
        stub.on_authorized("GET", CLOUD_REPO, repository().header("X-OAuth-Scopes", "pullrequest, repository:write"));
        let outcome = h.test(&writable).await;
        assert!(outcome.success && outcome.steps[4].message.contains("readable and writable"), "{outcome:?}");
        stub.on_authorized("GET", CLOUD_REPO, repository().header("X-OAuth-Scopes", "repository, pullrequest"));
        let outcome = h.test(&writable).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("the access token may read `acme/api` but not write to it"), "{outcome:?}");
        stub.on_authorized("GET", CLOUD_REPO, repository());
        let outcome = h.test(&writable).await;
        assert!(outcome.success && outcome.steps[4].message.contains("write access not checked"), "{outcome:?}");
        assert!(stub.seen().iter().all(|s| s.path == CLOUD_REPO), "{:?}", stub.seen());

        // A token Bitbucket does not take.
        stub.on_authorized(
            "GET",
            CLOUD_REPO,
            cloud_error(401, json!({"message": "Token is invalid, expired, or not supported for this endpoint."})),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("Token is invalid, expired"), "{outcome:?}");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));
    }

    #[tokio::test]
    async fn bitbucket_cloud_refusals_map_to_failure_classes() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("bitbucket", &CLOUD_HOSTS, &stub);
        let config = h.integration(
            IntegrationType::Scm,
            "https://bitbucket.org",
            cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot@acme.example"})),
        );

        // A wrong API token or app password: Bitbucket's Basic challenge; the repository is not asked.
        serve_bitbucket_cloud(&stub);
        stub.on_authorized(
            "GET",
            CLOUD_USER,
            Canned::new(401).header("WWW-Authenticate", r#"Basic realm="Bitbucket.org HTTP""#),
        );
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("status 401"), "{outcome:?}");
        assert_eq!(paths_since(&stub, before), [CLOUD_USER], "nothing is sent after the 401");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

        // A scoped API token without `read:user:bitbucket`: the 403 still proves the credential.
        let lacks_scope = |granted: &str, required: &str| {
            cloud_error(
                403,
                json!({"message": "Your credentials lack one or more required privilege scopes.",
                       "detail": {"granted": [granted], "required": [required]}}),
            )
        };
        serve_bitbucket_cloud(&stub);
        stub.on_authorized("GET", CLOUD_USER, lacks_scope("read:repository:bitbucket", "read:user:bitbucket"));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert!(outcome.steps[3].message.contains("lack one or more required privilege scopes"), "{outcome:?}");

        // Without `read:repository:bitbucket`, the repository is a permission.
        serve_bitbucket_cloud(&stub);
        stub.on_authorized("GET", CLOUD_REPO, lacks_scope("read:user:bitbucket", "read:repository:bitbucket"));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "repository");
        assert!(outcome.message.contains("required privilege scopes") && outcome.steps[3].passed, "{outcome:?}");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Permission));

        // A repository that does not exist, or that the account may not see.
        serve_bitbucket_cloud(&stub);
        stub.on_authorized(
            "GET",
            CLOUD_REPO,
            cloud_error(404, json!({"message": "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated."})),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "repository");
        assert!(
            outcome.message.contains("`acme/api` does not exist") && outcome.message.contains("no longer exists"),
            "{outcome:?}"
        );

        // The rate limit of the user's requests, then of the repository's.
        let rate_limited = || {
            cloud_error(429, json!({"message": "Rate limit for this resource has been exceeded"}))
                .header("Retry-After", "60")
                .header("X-RateLimit-Limit", "1000")
                .header("X-RateLimit-Resource", "api")
        };
        serve_bitbucket_cloud(&stub);
        stub.on_authorized("GET", CLOUD_USER, rate_limited());
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "credential");
        assert!(outcome.message.contains("retry after 60") && outcome.message.contains("Rate limit"), "{outcome:?}");
        serve_bitbucket_cloud(&stub);
        stub.on_authorized("GET", CLOUD_REPO, rate_limited());
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "repository");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        // Bitbucket down, and a 200 that is not a repository.
        stub.on_authorized(
            "GET",
            CLOUD_REPO,
            Canned::new(503).header("Content-Type", "text/html").body("<html>Service Unavailable</html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "repository");
        stub.on_authorized("GET", CLOUD_REPO, Canned::json(200, json!({})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "repository");
        assert!(stub.seen().iter().all(|s| s.header("authorization").is_some()), "every Cloud request is signed in");
    }

    #[tokio::test]
    async fn bitbucket_cloud_spelled_otherwise_is_refused_before_any_request() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("bitbucket", &CLOUD_HOSTS, &stub);
        for base in [
            "http://api.bitbucket.org/2.0",
            "http://www.bitbucket.org",
            "https://api.bitbucket.org/1.0",
            "https://api.bitbucket.org/2.0/repositories",
            "https://bitbucket.org:8443",
            "https://www.bitbucket.org/acme/api",
        ] {
            let settings = cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot"}));
            let outcome = h.test(&h.integration(IntegrationType::Scm, base, settings)).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
            assert!(outcome.message.contains("`https://bitbucket.org`"), "{base}: {outcome:?}");
        }
        // A Data Center personal project (`~user/repo`) is no Cloud workspace.
        let settings = cloud_settings(&stub, json!({"repository": "~jdoe/api", "username": "ci-bot"}));
        let outcome = h.test(&h.integration(IntegrationType::Scm, "https://bitbucket.org", settings)).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        assert!(outcome.message.contains("`workspace/repo`"), "{outcome:?}");
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }
}

mod azure_devops {
    use super::*;

    const COLLECTION: &str = "/tfs/DefaultCollection";
    const CONNECTION_DATA: &str = "/tfs/DefaultCollection/_apis/connectionData";
    const PROJECT: &str = "/tfs/DefaultCollection/_apis/projects/Fabrikam%20Fiber?api-version=7.1";

    /// What Azure DevOps Server answers an anonymous caller: 401 from TFS itself, with its
    /// process id and its error in headers (an HTML body).
    fn anonymous_refusal() -> Canned {
        Canned::new(401)
            .header("Content-Type", "text/html; charset=utf-8")
            .header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6")
            .header("ActivityId", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
            .header("X-TFS-Session", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
            .header("X-VSS-E2EID", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
            .header(
                "X-TFS-ServiceError",
                "TF400813%3a+Resource+not+available+for+anonymous+access.+Client+authentication+required.",
            )
            .header("WWW-Authenticate", "Bearer")
            .header("WWW-Authenticate", r#"Basic realm="tfs.example.com""#)
            .header("WWW-Authenticate", "Negotiate")
            .header("WWW-Authenticate", "NTLM")
            .body("<html><head><title>TF400813: Resource not available for anonymous access.</title></head></html>")
    }

    fn connection_data(descriptor: &str, name: &str) -> Value {
        json!({
            "authenticatedUser": {"id": "8d1c3e5a-2b4f-4c6d-9e8f-0a1b2c3d4e5f", "descriptor": descriptor,
                "subjectDescriptor": "win.Uy0xLTUtMjEtMTIzNA", "providerDisplayName": name, "isActive": true,
                "properties": {"Account": {"$type": "System.String", "$value": "CONTOSO\\cibot"}},
                "resourceVersion": 2, "metaTypeId": 0},
            "authorizedUser": {"id": "8d1c3e5a-2b4f-4c6d-9e8f-0a1b2c3d4e5f", "descriptor": descriptor,
                "providerDisplayName": name, "isActive": true},
            "instanceId": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "deploymentId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "deploymentType": "onPremises",
            "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 3456, "lastChangeId64": 3456}
        })
    }

    fn devops_error(status: u16, message: &str, type_key: &str) -> Canned {
        Canned::json(
            status,
            json!({"$id": "1", "innerException": null, "message": message,
                   "typeName": format!("Microsoft.TeamFoundation.Framework.Server.{type_key}, Microsoft.TeamFoundation.Framework.Server"),
                   "typeKey": type_key, "errorCode": 0, "eventId": 3000}),
        )
    }

    /// Azure DevOps Server 2022 as its REST API documentation shows the answers.
    fn serve_devops(stub: &Stub) {
        stub.on("GET", CONNECTION_DATA, anonymous_refusal())
            .on_authorized(
                "GET",
                CONNECTION_DATA,
                Canned::json(
                    200,
                    connection_data("System.Security.Principal.WindowsIdentity;S-1-5-21-1234-5678-9012-1105", "CI Bot"),
                )
                .header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6")
                .header("X-RateLimit-Resource", "Core")
                .header("X-RateLimit-Limit", "200")
                .header("X-RateLimit-Remaining", "180"),
            )
            .on(
                "GET",
                PROJECT,
                Canned::json(
                    200,
                    json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber",
                           "url": "https://tfs.example.com/tfs/DefaultCollection/_apis/projects/eb6e4656-77fc-42a1-9181-4c6d8e9da5d1",
                           "state": "wellFormed", "revision": 411, "visibility": "private",
                           "lastUpdateTime": "2026-03-01T10:00:00.000Z"}),
                ),
            );
    }

    fn settings() -> Value {
        json!({"project": "Fabrikam Fiber"})
    }

    #[tokio::test]
    async fn a_pat_with_project_access_passes_on_a_server_proven_anonymously() {
        let h = Harness::new("azure-devops");
        let stub = Stub::start().await;
        serve_devops(&stub);
        let base = format!("{}{COLLECTION}", stub.base_url);
        let config = h.integration(IntegrationType::Scm, &base, settings());
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential", "project"]);
        assert_eq!(outcome.facts.rate_limit_remaining, Some(180));
        assert!(outcome.steps[3].message.contains("CI Bot"), "{outcome:?}");
        let seen = stub.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[0].path.as_str(), seen[0].header("authorization")), (CONNECTION_DATA, None));
        // The PAT goes as HTTP basic with an empty user name.
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!(":{SECRET}").as_bytes()));
        assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(basic.as_str())), "{seen:?}");
        assert!(seen.iter().all(|s| s.header("x-tfs-fedauthredirect") == Some("Suppress")), "{seen:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        assert_eq!(stub.seen().len(), 3 + 2, "the health check is two requests");

        // A server with anonymous access answers its connection data: that identifies it too.
        stub.on(
            "GET",
            CONNECTION_DATA,
            Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
    }

    #[tokio::test]
    async fn expired_rejected_and_anonymous_tokens_and_missing_projects_are_told_apart() {
        let h = Harness::new("azure-devops");
        let stub = Stub::start().await;
        let base = format!("{}{COLLECTION}", stub.base_url);
        let config = h.integration(IntegrationType::Scm, &base, settings());

        serve_devops(&stub);
        let expired = Canned::json(
            401,
            json!({"$id": "1", "customProperties": {"Descriptor": null, "IdentityDisplayName": null, "Token": null,
                   "RequestedPermissions": 0, "NamespaceId": "00000000-0000-0000-0000-000000000000"},
                   "innerException": null, "message": "Access Denied: The Personal Access Token used has expired.",
                   "typeName": "Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi",
                   "typeKey": "AccessCheckException", "errorCode": 0, "eventId": 3000}),
        );
        stub.on_authorized("GET", CONNECTION_DATA, expired);
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("has expired"), "{outcome:?}");
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));

        // A token Azure DevOps does not take: 203 and its sign-in page.
        stub.on_authorized(
            "GET",
            CONNECTION_DATA,
            Canned::new(203)
                .header("Content-Type", "text/html; charset=utf-8")
                .body("<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head></html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
        // A 401 with TFS's own message in its header.
        stub.on_authorized("GET", CONNECTION_DATA, anonymous_refusal());
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("TF400813"), "{outcome:?}");
        // Connection data for the anonymous identity: the token was ignored.
        stub.on_authorized(
            "GET",
            CONNECTION_DATA,
            Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
        );
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

        serve_devops(&stub);
        stub.on(
            "GET",
            PROJECT,
            devops_error(
                404,
                "TF200016: The following project does not exist: Fabrikam Fiber. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "project");
        assert!(outcome.message.contains("TF200016"), "{outcome:?}");

        // A server older than the API version asked for says so; `apiVersion` picks another.
        stub.on(
            "GET",
            PROJECT,
            devops_error(
                400,
                "The requested REST API version of 7.1 is out of range for this server. The latest REST API version this server supports is 6.0.",
                "VssVersionOutOfRangeException",
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Misconfigured, "project");
        assert!(outcome.message.contains("out of range"), "{outcome:?}");
        stub.on(
            "GET",
            "/tfs/DefaultCollection/_apis/projects/Fabrikam%20Fiber?api-version=6.0",
            Canned::json(
                200,
                json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber", "state": "wellFormed"}),
            ),
        );
        let older =
            h.integration(IntegrationType::Scm, &base, json!({"project": "Fabrikam Fiber", "apiVersion": "6.0"}));
        let outcome = h.test(&older).await;
        assert!(outcome.success, "{outcome:?}");
    }

    #[tokio::test]
    async fn rate_limits_outages_and_other_servers_are_classed() {
        let h = Harness::new("azure-devops");
        let stub = Stub::start().await;
        let base = format!("{}{COLLECTION}", stub.base_url);
        let config = h.integration(IntegrationType::Ci, &base, json!({}));
        serve_devops(&stub);
        stub.on_authorized(
            "GET",
            CONNECTION_DATA,
            devops_error(
                429,
                "Request was blocked due to exceeding usage of resource 'Core'.",
                "RequestBlockedException",
            )
            .header("Retry-After", "30")
            .header("X-RateLimit-Resource", "Core")
            .header("X-RateLimit-Remaining", "0"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "credential");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        stub.on(
            "GET",
            CONNECTION_DATA,
            Canned::new(503).header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-azure-devops");
        // A 401 without TFS's headers is some other server's login.
        stub.on(
            "GET",
            CONNECTION_DATA,
            Canned::new(401).header("WWW-Authenticate", "Negotiate").header("X-TFS-ProcessId", "not-a-guid"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-azure-devops");
        let before = stub.seen().len();
        stub.clear();
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-azure-devops");
        assert!(stub.seen()[before - 1..].iter().all(|s| s.header("authorization").is_none()));
    }

    #[tokio::test]
    async fn impostors_get_no_credential() {
        super::bitbucket::impostors::assert_impostors_are_refused("azure-devops", IntegrationType::Scm, settings())
            .await;
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        let h = Harness::new("azure-devops");
        let stub = Stub::start().await;
        for bad in [
            json!({"project": "a/b"}),
            json!({"project": "../x"}),
            json!({"project": ""}),
            json!({"project": "x?api-version=1.0"}),
            json!({"project": 7}),
            json!({"apiVersion": "7.1&x=y"}),
            json!({"projects": "Fabrikam"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        for base in ["https://dev.azure.com", "http://dev.azure.com/fabrikam", "https://dev.azure.com/fabrikam/Fiber"] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, base, json!({}))).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        let mut anonymous = h.integration(IntegrationType::Scm, &stub.base_url, json!({}));
        anonymous.auth_ref = None;
        assert_failed(&h.test(&anonymous).await, FailureClass::Misconfigured, "configuration");
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }
    // Azure DevOps Services: `https://dev.azure.com/{organization}` (or the legacy
    // `https://{organization}.visualstudio.com`), both pinned to a TLS stub whose certificate
    // names them.

    const SERVICES_HOSTS: [&str; 2] = ["dev.azure.com", "fabrikam.visualstudio.com"];
    /// The global resource-area lookup of the organization `fabrikam` (the core area).
    const LOOKUP: &str =
        "/_apis/resourceAreas/79134C72-4A58-4B42-976C-04E7115F32BF?accountName=fabrikam&api-version=5.0-preview.1";
    const ORG_CONNECTION_DATA: &str = "/fabrikam/_apis/connectionData";
    const ORG_PROJECT: &str = "/fabrikam/_apis/projects/Fabrikam%20Fiber?api-version=7.1";

    /// The resource-area lookup's answer: the core area at the organization's primary URL.
    fn resource_area(location: Value) -> Canned {
        Canned::json(
            200,
            json!({"id": "79134C72-4A58-4B42-976C-04E7115F32BF", "name": "Core", "locationUrl": location}),
        )
    }

    /// Connection data of Azure DevOps Services for a user signed in with a PAT (a Microsoft Entra
    /// identity).
    fn hosted_connection_data() -> Value {
        json!({
            "authenticatedUser": {"id": "4b6c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4",
                "descriptor": "Microsoft.IdentityModel.Claims.ClaimsIdentity;72f988bf-86f1-41af-91ab-2d7cd011db47\\ci-bot@fabrikam.com",
                "subjectDescriptor": "aad.NGI2YzFkMmUtM2Y0YS03YjVjLThkNmUtN2Y4MDkxYTJiM2M0", "providerDisplayName": "CI Bot",
                "isActive": true, "properties": {"Account": {"$type": "System.String", "$value": "ci-bot@fabrikam.com"}},
                "resourceVersion": 2, "metaTypeId": 0},
            "authorizedUser": {"id": "4b6c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4", "providerDisplayName": "CI Bot", "isActive": true},
            "instanceId": "6b1f0e8a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
            "deploymentId": "a2b3c4d5-e6f7-4a8b-9c0d-1e2f3a4b5c6d",
            "deploymentType": "hosted",
            "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 86241, "lastChangeId64": 86241}
        })
    }

    /// Azure DevOps Services as its REST API documentation shows the answers, for the organization
    /// `fabrikam` at `connection_data` (on `dev.azure.com` or its legacy host): the anonymous
    /// resource-area lookup, TFS's refusal of an anonymous caller, the PAT's user (with the rate
    /// limit headers Azure DevOps adds as a user nears its limit) and the project.
    fn serve_services(stub: &Stub, location: &str, connection_data: &str, project: &str) {
        stub.on("GET", LOOKUP, resource_area(json!(location)))
            .on("GET", connection_data, anonymous_refusal())
            .on_authorized(
                "GET",
                connection_data,
                Canned::json(200, hosted_connection_data())
                    .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
                    .header("X-VSS-E2EID", "0c4c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
                    .header("X-RateLimit-Resource", "Core")
                    .header("X-RateLimit-Delay", "0.312")
                    .header("X-RateLimit-Limit", "200")
                    .header("X-RateLimit-Remaining", "42")
                    .header("X-RateLimit-Reset", "1798675200"),
            )
            .on_authorized(
                "GET",
                project,
                Canned::json(
                    200,
                    json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber",
                           "url": "https://dev.azure.com/fabrikam/_apis/projects/eb6e4656-77fc-42a1-9181-4c6d8e9da5d1",
                           "state": "wellFormed", "revision": 411, "visibility": "private",
                           "lastUpdateTime": "2026-03-01T10:00:00.000Z"}),
                ),
            );
    }

    fn services_settings(stub: &Stub, settings: Value) -> Value {
        let mut settings = settings;
        settings["caCertificates"] = json!(stub.ca_pem.clone().unwrap());
        settings
    }

    fn pat() -> String {
        format!("Basic {}", super::http_probe::base64_encode(format!(":{SECRET}").as_bytes()))
    }

    #[tokio::test]
    async fn a_services_organization_is_proven_by_the_anonymous_lookup_then_gets_the_pat() {
        let stub = Stub::start_tls_for(&SERVICES_HOSTS).await;
        let h = Harness::pinned("azure-devops", &SERVICES_HOSTS, &stub);
        serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);
        let config = h.integration(
            IntegrationType::Scm,
            "https://dev.azure.com/fabrikam",
            services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential", "project"]);
        assert!(outcome.steps[2].message.contains("organization `fabrikam`"), "{outcome:?}");
        assert!(
            outcome.steps[3].message.contains("`CI Bot` (ci-bot@fabrikam.com)")
                && outcome.steps[3].message.contains("on Azure DevOps Services"),
            "{outcome:?}"
        );
        assert_eq!(outcome.facts.rate_limit_remaining, Some(42));
        let seen = stub.seen();
        assert_eq!(
            seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
            [LOOKUP, ORG_CONNECTION_DATA, ORG_PROJECT]
        );
        // The lookup carries no credential; the PAT goes as HTTP basic with an empty user name.
        assert_eq!(seen[0].header("authorization"), None, "the lookup is anonymous");
        assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(pat().as_str())), "{seen:?}");
        for s in &seen {
            assert_eq!(s.header("host"), Some("dev.azure.com"), "{s:?}");
            assert_eq!(s.header("x-tfs-fedauthredirect"), Some("Suppress"), "{s:?}");
        }

        // Health: the fixed host's certificate proves it; one request, the signed-in connection data.
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        let seen: Vec<_> = stub.seen().into_iter().skip(3).collect();
        assert_eq!(seen.len(), 1, "one request: {seen:?}");
        assert_eq!(
            (seen[0].path.as_str(), seen[0].header("authorization")),
            (ORG_CONNECTION_DATA, Some(pat().as_str()))
        );

        // An organization whose primary URL is still the legacy one: the lookup answers that.
        stub.on("GET", LOOKUP, resource_area(json!("https://fabrikam.visualstudio.com/")));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert!(outcome.steps[2].message.contains("https://fabrikam.visualstudio.com"), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_legacy_visualstudio_com_organization_is_proven_on_dev_azure_com() {
        let stub = Stub::start_tls_for(&SERVICES_HOSTS).await;
        let h = Harness::pinned("azure-devops", &SERVICES_HOSTS, &stub);
        serve_services(
            &stub,
            "https://fabrikam.visualstudio.com/",
            "/_apis/connectionData",
            "/_apis/projects/Fabrikam%20Fiber?api-version=7.1",
        );
        let config = h.integration(
            IntegrationType::Ci,
            "https://fabrikam.visualstudio.com",
            services_settings(&stub, json!({})),
        );
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential"]);
        // The lookup on dev.azure.com without the PAT, then the PAT on the organization's own host.
        let seen: Vec<_> =
            stub.seen().iter().map(|s| (s.header("host").unwrap_or_default().to_string(), s.path.clone())).collect();
        assert_eq!(
            seen,
            [
                ("dev.azure.com".to_string(), LOOKUP.to_string()),
                ("fabrikam.visualstudio.com".to_string(), "/_apis/connectionData".to_string())
            ]
        );
        let requests = stub.seen();
        assert_eq!(
            (requests[0].header("authorization"), requests[1].header("authorization")),
            (None, Some(pat().as_str()))
        );
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        let last: Vec<_> = stub.seen().into_iter().skip(2).collect();
        assert_eq!(last.len(), 1, "one request: {last:?}");
        assert_eq!(
            (last[0].header("host"), last[0].path.as_str()),
            (Some("fabrikam.visualstudio.com"), "/_apis/connectionData")
        );
    }

    #[tokio::test]
    async fn an_organization_the_lookup_does_not_locate_gets_no_token() {
        let stub = Stub::start_tls_for(&SERVICES_HOSTS).await;
        let h = Harness::pinned("azure-devops", &SERVICES_HOSTS, &stub);
        serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);
        let config = h.integration(
            IntegrationType::Scm,
            "https://dev.azure.com/fabrikam",
            services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
        );
        // No such organization: the lookup answers 404, or no URL.
        for unknown in [Canned::new(404), resource_area(Value::Null)] {
            stub.on("GET", LOOKUP, unknown);
            let outcome = h.test(&config).await;
            assert_failed(&outcome, FailureClass::NotFound, "is-azure-devops");
            assert!(outcome.message.contains("knows no organization `fabrikam`"), "{outcome:?}");
        }
        // Another organization's URL.
        stub.on("GET", LOOKUP, resource_area(json!("https://dev.azure.com/contoso/")));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::ProviderMismatch, "is-azure-devops");
        assert!(outcome.message.contains("https://dev.azure.com/contoso"), "{outcome:?}");
        // The lookup throttled, or down.
        stub.on(
            "GET",
            LOOKUP,
            devops_error(
                429,
                "Request was blocked due to exceeding usage of resource 'Core'.",
                "RequestBlockedException",
            )
            .header("Retry-After", "30"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "is-azure-devops");
        assert!(outcome.message.contains("retry after 30"), "{outcome:?}");
        stub.on("GET", LOOKUP, Canned::new(503).body("Service Unavailable"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-azure-devops");
        let seen = stub.seen();
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert!(seen.iter().all(|s| s.path == LOOKUP && s.header("authorization").is_none()), "{seen:?}");
    }

    #[tokio::test]
    async fn services_refusals_and_the_sign_in_page_are_classed() {
        let stub = Stub::start_tls_for(&SERVICES_HOSTS).await;
        let h = Harness::pinned("azure-devops", &SERVICES_HOSTS, &stub);
        let config = h.integration(
            IntegrationType::Scm,
            "https://dev.azure.com/fabrikam",
            services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
        );
        let serve = || serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);

        // A token Azure DevOps did not take: 203 and its sign-in page, though the request asked
        // for no redirect to it.
        serve();
        stub.on_authorized(
            "GET",
            ORG_CONNECTION_DATA,
            Canned::new(203)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
                .body("<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>"),
        );
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("with a page, not JSON"), "{outcome:?}");
        let seen: Vec<_> = stub.seen().into_iter().skip(before).collect();
        assert_eq!(seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), [LOOKUP, ORG_CONNECTION_DATA]);
        assert!(seen.iter().all(|s| s.header("x-tfs-fedauthredirect") == Some("Suppress")), "{seen:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

        // An expired PAT, and one the organization refuses with TFS's error in a header.
        stub.on_authorized(
            "GET",
            ORG_CONNECTION_DATA,
            Canned::json(
                401,
                json!({"$id": "1", "innerException": null, "message": "Access Denied: The Personal Access Token used has expired.",
                       "typeName": "Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi",
                       "typeKey": "AccessCheckException", "errorCode": 0, "eventId": 3000}),
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("has expired"), "{outcome:?}");
        stub.on_authorized(
            "GET",
            ORG_CONNECTION_DATA,
            Canned::new(401)
                .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
                .header("X-TFS-ServiceError", "TF400813%3a+The+user+%27%27+is+not+authorized+to+access+this+resource.")
                .header(
                    "WWW-Authenticate",
                    "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
                )
                .header("WWW-Authenticate", r#"Basic realm="https://tfsprodweu5.visualstudio.com/""#)
                .header("WWW-Authenticate", "TFS-Federated"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(outcome.message.contains("TF400813: The user '' is not authorized"), "{outcome:?}");
        // Connection data for the anonymous identity: the token was ignored.
        stub.on_authorized(
            "GET",
            ORG_CONNECTION_DATA,
            Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
        );
        assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

        // Throttled: 429 with Retry-After.
        serve();
        stub.on_authorized(
            "GET",
            ORG_CONNECTION_DATA,
            devops_error(
                429,
                "Request was blocked due to exceeding usage of resource 'Core'.",
                "RequestBlockedException",
            )
            .header("Retry-After", "30")
            .header("X-RateLimit-Resource", "Core")
            .header("X-RateLimit-Remaining", "0"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "credential");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        assert!(outcome.message.contains("retry after 30"), "{outcome:?}");
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        // The project: missing permission, and missing altogether.
        serve();
        stub.on_authorized(
            "GET",
            ORG_PROJECT,
            devops_error(
                403,
                "Access Denied: CI Bot needs the following permission(s) on the resource Fabrikam Fiber to perform this action: View project-level information",
                "AccessCheckException",
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "project");
        assert!(outcome.message.contains("View project-level information"), "{outcome:?}");
        stub.on_authorized(
            "GET",
            ORG_PROJECT,
            devops_error(
                404,
                "TF200016: The following project does not exist: Fabrikam Fiber. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.",
                "ProjectDoesNotExistWithNameException",
            ),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "project");
        assert!(outcome.message.contains("TF200016") && outcome.steps[3].passed, "{outcome:?}");
        // The health check does not ask for the project.
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
    }

    #[tokio::test]
    async fn services_urls_spelled_otherwise_are_refused_before_any_request() {
        let stub = Stub::start_tls_for(&SERVICES_HOSTS).await;
        let h = Harness::pinned("azure-devops", &SERVICES_HOSTS, &stub);
        for (base, why) in [
            ("https://dev.azure.com", "`https://dev.azure.com/{organization}`"),
            ("http://dev.azure.com/fabrikam", "`https://dev.azure.com/{organization}`"),
            ("https://dev.azure.com/fabrikam/Fabrikam%20Fiber", "`https://dev.azure.com/{organization}`"),
            ("https://dev.azure.com/..", "`https://dev.azure.com/{organization}`"),
            ("http://fabrikam.visualstudio.com", "`https://{organization}.visualstudio.com`"),
            ("https://fabrikam.visualstudio.com/DefaultCollection", "`https://{organization}.visualstudio.com`"),
            ("https://fabrikam.eu.visualstudio.com", "`https://{organization}.visualstudio.com`"),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Scm, base, services_settings(&stub, json!({})))).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
            assert!(outcome.message.contains(why), "{base}: {outcome:?}");
        }
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }
}

mod circleci {
    use super::*;

    const OPENAPI: &str = "/api/v2/openapi.json";

    /// A CircleCI server's API v2 as its OpenAPI document and API reference show the answers
    /// (the document trimmed to what identifies it).
    fn serve_circleci(stub: &Stub) {
        stub.on(
            "GET",
            OPENAPI,
            Canned::json(
                200,
                json!({"openapi": "3.0.3",
                       "info": {"version": "v2", "title": "CircleCI API",
                                "description": "This describes the resources that make up the CircleCI API v2.",
                                "license": {"name": "MIT"}},
                       "servers": [{"url": "https://circleci.com/api/v2"}],
                       "security": [{"api_key_header": []}, {"basic_auth": []}, {"api_key_query": []}],
                       "paths": {"/me": {"get": {"summary": "User Information", "operationId": "getCurrentUser"}},
                                 "/project/{project-slug}": {"get": {"summary": "Get a project", "operationId": "getProjectBySlug"}}}}),
            ),
        )
        // Without a token, CircleCI's own refusal; with one, the token's user.
        .on("GET", "/api/v2/me", Canned::json(401, json!({"message": "You must log in first."})))
        .on_authorized(
            "GET",
            "/api/v2/me",
            Canned::json(200, json!({"id": "5e7c1a2b-3d4e-4f5a-8b9c-0d1e2f3a4b5c", "login": "ci-bot", "name": "CI Bot",
                                     "avatar_url": "https://avatars.example.com/u/1"})),
        )
        .on(
            "GET",
            "/api/v2/project/gh/acme/api",
            Canned::json(
                200,
                json!({"slug": "gh/acme/api", "name": "api", "id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
                       "organization_name": "acme", "organization_slug": "gh/acme",
                       "organization_id": "8e0d5b3c-3f0a-4a4f-9d3e-1f2a3b4c5d6e",
                       "vcs_info": {"vcs_url": "https://github.com/acme/api", "provider": "GitHub", "default_branch": "main"}}),
            ),
        );
    }

    fn settings() -> Value {
        json!({"project": "gh/acme/api"})
    }

    #[tokio::test]
    async fn a_personal_token_with_project_access_passes_on_a_server_proven_anonymously() {
        let h = Harness::new("circleci");
        let stub = Stub::start().await;
        serve_circleci(&stub);
        let config = h.integration(IntegrationType::Ci, &stub.base_url, settings());
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-circleci", "credential", "project"]);
        assert!(outcome.message.contains("ci-bot"), "{outcome:?}");
        let seen = stub.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[0].path.as_str(), seen[0].header("circle-token")), ("/api/v2/me", None), "proven anonymously");
        for s in &seen[1..] {
            assert_eq!(s.header("circle-token"), Some(SECRET), "{s:?}");
            assert_eq!(s.header("authorization"), None);
        }
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        assert_eq!(stub.seen().len(), 3 + 2, "the health check is two requests");
        // A base URL given with the API path means the same server.
        let with_path = h.integration(IntegrationType::Ci, &format!("{}/api/v2/", stub.base_url), settings());
        assert!(h.test(&with_path).await.success);

        // A server that words its anonymous refusal otherwise is proven by its API description.
        stub.on("GET", "/api/v2/me", Canned::json(401, json!({"message": "Unauthorized"})));
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert!(outcome.success && outcome.steps[2].message.contains("API v2 description"), "{outcome:?}");
        let seen = stub.seen();
        assert_eq!((seen[before + 1].path.as_str(), seen[before + 1].header("circle-token")), (OPENAPI, None));
    }

    #[tokio::test]
    async fn rejected_and_project_tokens_missing_projects_and_rate_limits_are_told_apart() {
        let h = Harness::new("circleci");
        let stub = Stub::start().await;
        let config = h.integration(IntegrationType::Ci, &stub.base_url, settings());

        // A wrong token, and a project API token (API v1.1 only), are refused alike.
        serve_circleci(&stub);
        stub.on_authorized("GET", "/api/v2/me", Canned::json(401, json!({"message": "You must log in first."})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(
            outcome.message.contains("You must log in first.") && outcome.message.contains("personal API tokens"),
            "{outcome:?}"
        );
        assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));

        serve_circleci(&stub);
        stub.on("GET", "/api/v2/project/gh/acme/api", Canned::json(404, json!({"message": "Project not found"})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "project");
        assert!(outcome.message.contains("Project not found"), "{outcome:?}");

        serve_circleci(&stub);
        stub.on_authorized(
            "GET",
            "/api/v2/me",
            Canned::json(429, json!({"message": "Rate limit exceeded"}))
                .header("Retry-After", "17")
                .header("X-RateLimit-Remaining", "0"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "credential");
        assert!(outcome.message.contains("retry after 17"), "{outcome:?}");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        stub.on("GET", "/api/v2/me", Canned::new(502).body("Bad Gateway"));
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-circleci");
        // Another API: its anonymous refusal is not CircleCI's, nor its OpenAPI document.
        stub.on("GET", "/api/v2/me", Canned::json(401, json!({"error": "unauthorized"})));
        stub.on(
            "GET",
            OPENAPI,
            Canned::json(
                200,
                json!({"openapi": "3.0.0", "info": {"title": "Petstore", "version": "1.0"}, "paths": {"/me": {}}}),
            ),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-circleci");
        let before = stub.seen().len();
        stub.clear();
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-circleci");
        assert!(stub.seen()[before - 1..].iter().all(|s| s.header("circle-token").is_none()));
    }

    #[tokio::test]
    async fn impostors_get_no_credential() {
        super::bitbucket::impostors::assert_impostors_are_refused("circleci", IntegrationType::Ci, settings()).await;
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        let h = Harness::new("circleci");
        let stub = Stub::start().await;
        for bad in [
            json!({"project": "acme/api"}),
            json!({"project": "gh/acme/.."}),
            json!({"project": "gl/acme/api"}),
            json!({"project": "circleci/acme/api"}),
            json!({"project": "gh/acme/api/../x"}),
            json!({"projectSlug": "gh/acme/api"}),
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Ci, &stub.base_url, bad.clone())).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        for base in ["http://circleci.com", "https://app.circleci.com"] {
            let outcome = h.test(&h.integration(IntegrationType::Ci, base, json!({}))).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
        }
        let mut anonymous = h.integration(IntegrationType::Ci, &stub.base_url, json!({}));
        anonymous.auth_ref = None;
        assert_failed(&h.test(&anonymous).await, FailureClass::Misconfigured, "configuration");
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }

    // CircleCI cloud: `https://circleci.com`, pinned to a TLS stub whose certificate names it.

    const CLOUD_HOSTS: [&str; 1] = ["circleci.com"];
    const ME: &str = "/api/v2/me";
    const PROJECT: &str = "/api/v2/project/gh/acme/api";

    /// A cloud integration trusting the stub's private CA.
    fn cloud_settings(stub: &Stub) -> Value {
        json!({"project": "gh/acme/api", "caCertificates": stub.ca_pem.clone().unwrap()})
    }

    #[tokio::test]
    async fn circleci_cloud_gets_the_token_as_circle_token_from_the_first_request() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("circleci", &CLOUD_HOSTS, &stub);
        serve_circleci(&stub);
        let config = h.integration(IntegrationType::Ci, "https://circleci.com", cloud_settings(&stub));
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-circleci", "credential", "project"]);
        assert!(outcome.steps[2].message.contains("`circleci.com` over HTTPS"), "{outcome:?}");
        assert!(outcome.steps[3].message.contains("`ci-bot`") && outcome.steps[4].message.contains("api of acme"));
        assert_eq!(outcome.facts.rate_limit_remaining, None);
        // No anonymous proof and no API description: the user, then the project, both with the token.
        let seen = stub.seen();
        assert_eq!(seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), [ME, PROJECT]);
        for s in &seen {
            assert_eq!((s.header("circle-token"), s.header("host")), (Some(SECRET), Some("circleci.com")), "{s:?}");
            assert_eq!(s.header("authorization"), None);
        }
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
        let seen: Vec<_> = stub.seen().into_iter().skip(2).collect();
        assert_eq!(seen.len(), 1, "one request: {seen:?}");
        assert_eq!((seen[0].path.as_str(), seen[0].header("circle-token")), (ME, Some(SECRET)));

        // The cloud's other spellings mean the same host.
        for base in ["https://circleci.com/", "https://circleci.com/api/v2", "HTTPS://CircleCI.com"] {
            let outcome = h.test(&h.integration(IntegrationType::Ci, base, cloud_settings(&stub))).await;
            assert!(outcome.success, "{base}: {outcome:?}");
        }
        assert!(stub.seen().iter().all(|s| s.path != OPENAPI), "the cloud's API description is never fetched");
    }

    #[tokio::test]
    async fn circleci_cloud_refusals_map_to_failure_classes() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("circleci", &CLOUD_HOSTS, &stub);
        let config = h.integration(IntegrationType::Ci, "https://circleci.com", cloud_settings(&stub));

        // A wrong token, or a project API token: CircleCI's 401; the project is not asked.
        serve_circleci(&stub);
        stub.on_authorized("GET", ME, Canned::json(401, json!({"message": "You must log in first."})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Auth, "credential");
        assert!(
            outcome.message.contains("You must log in first.") && outcome.message.contains("personal API tokens"),
            "{outcome:?}"
        );
        assert_eq!(stub.seen().iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), [ME]);
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

        // A project the user may not see, or that does not exist; one the user may not read.
        serve_circleci(&stub);
        stub.on("GET", PROJECT, Canned::json(404, json!({"message": "Project not found"})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "project");
        assert!(outcome.message.contains("Project not found") && outcome.message.contains("`ci-bot`"), "{outcome:?}");
        stub.on("GET", PROJECT, Canned::json(403, json!({"message": "Permission denied"})));
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::Permission, "project");
        assert!(outcome.message.contains("Permission denied"), "{outcome:?}");
        // The health check does not ask for the project.
        assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

        // Rate limited: 429 with Retry-After.
        serve_circleci(&stub);
        stub.on_authorized(
            "GET",
            ME,
            Canned::json(429, json!({"message": "Rate limit exceeded"}))
                .header("Retry-After", "17")
                .header("X-RateLimit-Remaining", "0"),
        );
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::RateLimited, "credential");
        assert!(outcome.message.contains("retry after 17"), "{outcome:?}");
        assert_eq!(outcome.facts.rate_limit_remaining, Some(0));
        let health = h.health(&config).await;
        assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));

        // CircleCI down, and a 200 without a user.
        stub.on_authorized(
            "GET",
            ME,
            Canned::new(502).header("Content-Type", "text/html").body("<html>502 Bad Gateway</html>"),
        );
        assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "credential");
        stub.on_authorized("GET", ME, Canned::json(200, json!({"message": "ok"})));
        assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "credential");
        assert!(stub.seen().iter().all(|s| s.path != OPENAPI && s.header("circle-token") == Some(SECRET)));
    }

    #[tokio::test]
    async fn circleci_cloud_spelled_otherwise_is_refused_before_any_request() {
        let stub = Stub::start_tls_for(&CLOUD_HOSTS).await;
        let h = Harness::pinned("circleci", &CLOUD_HOSTS, &stub);
        for base in [
            "http://circleci.com",
            "http://circleci.com/api/v2",
            "https://app.circleci.com",
            "https://www.circleci.com",
            "https://circleci.com/gh/acme",
            "https://circleci.com:8443",
            "https://circleci.com/api/v1.1",
        ] {
            let outcome = h.test(&h.integration(IntegrationType::Ci, base, cloud_settings(&stub))).await;
            assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
            assert!(outcome.message.contains("`https://circleci.com`"), "{base}: {outcome:?}");
        }
        assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
    }
}
