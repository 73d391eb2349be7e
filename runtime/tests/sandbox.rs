//! The sandbox's boundary tests: real components (built from `test-programs`), the real
//! sandbox, a local stub server. Every hostile program must end in a typed failed result or a
//! load error, the host must stay up, and a well-behaved call right after must still succeed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stella_runtime::egress::NetworkPolicy;
use stella_runtime::limits::{LimitKind, Limits};
use stella_runtime::record::DenialKind;
use stella_runtime::secrets::{AuthRef, SecretValue, StaticSecretResolver};
use stella_runtime::{
    ConnectionConfig, ConnectorSource, FailureClass, IntegrationType, LoadError, LoadedConnector, Sandbox,
    SandboxConfig,
};
use test_programs_artifacts::*;

mod stub;
use stub::{ISSUED_TOKEN, OTHER_CREDENTIALS, StubServer};

const CANARY: &str = "canary-5ecr3t-value-9f8e7d";
const AUTH_REF: &str = "ref://integrations/test/token";

// A program without a test below fails the build.
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_program!(assert_test_exists);

fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

fn resolver() -> Arc<StaticSecretResolver> {
    let mut r = StaticSecretResolver::default();
    r.insert(AuthRef::parse(AUTH_REF).unwrap(), SecretValue::new(CANARY.into()));
    r.insert(AuthRef::parse("ref://integrations/other/token").unwrap(), SecretValue::new("other-secret-value".into()));
    Arc::new(r)
}

/// A sandbox that may reach the stub server on loopback, with the given limits.
fn sandbox_with(limits: Limits, allow_loopback: bool) -> Sandbox {
    let mut network = NetworkPolicy::default();
    if allow_loopback {
        network.allow.push("127.0.0.1/32".parse().unwrap());
    }
    let config = SandboxConfig {
        limits,
        network,
        cache_dir: Some(cache_dir()),
        max_concurrent_invocations: 250,
        ..SandboxConfig::default()
    };
    Sandbox::new(config, resolver()).unwrap()
}

fn sandbox() -> Sandbox {
    sandbox_with(Limits::default(), true)
}

#[track_caller]
fn load(sandbox: &Sandbox, path: &str) -> LoadedConnector {
    let bytes = std::fs::read(path).unwrap();
    sandbox.load(&bytes, ConnectorSource::File(path.into())).unwrap()
}

fn integration(base_url: Option<&str>, auth_ref: Option<&str>, configuration: serde_json::Value) -> ConnectionConfig {
    ConnectionConfig {
        integration_id: "00000000-0000-0000-0000-000000000001".into(),
        name: "test".into(),
        integration_type: IntegrationType::Registry,
        provider: "test-program".into(),
        base_url: base_url.map(str::to_string),
        auth_ref: auth_ref.map(str::to_string),
        configuration,
        environment: None,
    }
}

/// After a hostile call, the same sandbox still runs a well-behaved connector.
async fn assert_host_still_works(sandbox: &Sandbox) {
    let server = StubServer::start().await;
    let good = load(sandbox, WELL_BEHAVED);
    let run = sandbox.test_connection(&good, &integration(Some(&server.url()), None, json!({}))).await;
    assert!(run.result.success, "a well-behaved call after a hostile one failed: {:?}", run.result);
}

#[tokio::test]
async fn well_behaved() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, WELL_BEHAVED);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.result.success, "{:?}", run.result);
    assert_eq!(run.result.failure, None);
    let call = &run.record.host_calls.iter().find(|c| c.interface == "http").unwrap();
    assert_eq!(call.status, Some(200));
    assert_eq!(call.operation, "GET");
    assert_eq!(call.target, format!("{}/ok", server.url()));
    assert_eq!(call.auth_ref.as_deref(), Some(AUTH_REF));
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    assert!(run.record.denials.is_empty());
    assert!(run.record.memory_peak_bytes > 0);
    assert!(run.record.trap.is_none());

    // The query string never reaches the audit.
    let run =
        sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({"path": "/ok?token=abc"}))).await;
    assert!(run.result.success);
    assert!(!serde_json::to_string(&run.record).unwrap().contains("token=abc"));
}

#[tokio::test]
async fn infinite_loop() {
    let sandbox = sandbox_with(Limits { deadline_ms: 300, ..Limits::default() }, true);
    let c = load(&sandbox, INFINITE_LOOP);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.result.failure, Some(FailureClass::Timeout));
    assert_eq!(run.record.trap.as_ref().unwrap().limit, Some(LimitKind::Deadline));
    assert!(run.record.duration_ms < 5_000, "stopped near its deadline: {} ms", run.record.duration_ms);
    let health = sandbox.check_health(&c, &integration(None, None, json!({}))).await;
    assert_eq!(health.result.status, stella_runtime::HealthStatus::Unhealthy);
    assert_eq!(health.result.failure, Some(FailureClass::Timeout));
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn memory_growth() {
    let limit = 16 << 20;
    let sandbox = sandbox_with(Limits { memory_bytes: limit, ..Limits::default() }, true);
    let c = load(&sandbox, MEMORY_GROWTH);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.result.failure, Some(FailureClass::Internal));
    assert_eq!(run.record.trap.as_ref().unwrap().limit, Some(LimitKind::Memory), "{:?}", run.record.trap);
    assert!(run.record.memory_peak_bytes <= limit && run.record.memory_peak_bytes > limit / 2);
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn deep_recursion() {
    let sandbox = sandbox();
    let c = load(&sandbox, DEEP_RECURSION);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.result.failure, Some(FailureClass::Internal));
    assert_eq!(run.record.trap.as_ref().unwrap().limit, Some(LimitKind::Stack), "{:?}", run.record.trap);
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn panic() {
    let sandbox = sandbox();
    let c = load(&sandbox, PANIC);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.result.failure, Some(FailureClass::Internal));
    let trap = run.record.trap.as_ref().unwrap();
    assert_eq!(trap.limit, None);
    assert!(run.result.message.starts_with("the connector failed"), "{}", run.result.message);
    assert!(run.record.stderr.contains("the connector gave up"), "stderr: {:?}", run.record.stderr);
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn log_flood() {
    let sandbox = sandbox();
    let c = load(&sandbox, LOG_FLOOD);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.record.trap.as_ref().unwrap().limit, Some(LimitKind::LogBytes));
    let kept: usize = run.record.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept as u64 <= Limits::default().max_log_bytes && kept > 0);
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn body_flood() {
    let server = StubServer::start().await;
    let sandbox = sandbox_with(Limits { max_response_bytes: 256 << 10, ..Limits::default() }, true);
    let c = load(&sandbox, BODY_FLOOD);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({}))).await;
    assert!(!run.result.success);
    let call = run.record.host_calls.iter().find(|c| c.interface == "http").unwrap();
    assert_eq!(call.error.as_deref(), Some("body-too-large"), "{call:?}");

    // A body that declares itself too large is refused before it is read.
    let declared = load(&sandbox, WELL_BEHAVED);
    let run = sandbox
        .test_connection(&declared, &integration(Some(&server.url()), None, json!({"path": "/big-declared"})))
        .await;
    let call = run.record.host_calls.iter().find(|c| c.interface == "http").unwrap();
    assert_eq!(call.error.as_deref(), Some("body-too-large"));
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn undeclared_host() {
    let sandbox = sandbox();
    let c = load(&sandbox, UNDECLARED_HOST);
    let run = sandbox.test_connection(&c, &integration(Some("https://registry.example.com"), None, json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.record.denials.len(), 1);
    assert_eq!(run.record.denials[0].kind, DenialKind::Origin);
    assert!(run.record.denials[0].reason.contains("https://registry.example.com"));
    assert_eq!(run.record.host_calls[0].error.as_deref(), Some("denied"));
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn blocked_addresses_are_never_contacted() {
    let server = StubServer::start().await;
    let port = server.port();
    // The default policy: loopback and link-local are blocked.
    let sandbox = sandbox_with(Limits::default(), false);
    let c = load(&sandbox, WELL_BEHAVED);
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://2130706433:{port}"),
        format!("http://0x7f.1:{port}"),
        format!("http://0177.0.0.1:{port}"),
        format!("http://127.1:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://[::ffff:7f00:1]:{port}"),
        format!("http://[::1]:{port}"),
        "http://169.254.169.254".to_string(),
        "http://[fe80::1]".to_string(),
        "http://0.0.0.0".to_string(),
    ] {
        let run = sandbox.test_connection(&c, &integration(Some(&base), Some(AUTH_REF), json!({}))).await;
        assert!(!run.result.success, "{base} was reached");
        assert_eq!(run.record.denials.len(), 1, "{base}: {:?}", run.record);
        assert_eq!(run.record.denials[0].kind, DenialKind::Address, "{base}");
    }
    assert_eq!(server.hits(), 0, "a blocked address was contacted");
}

#[tokio::test]
async fn redirect_to_a_blocked_address_is_denied() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, WELL_BEHAVED);
    let run = sandbox
        .test_connection(&c, &integration(Some(&server.url()), None, json!({"path": "/redirect-metadata"})))
        .await;
    assert!(!run.result.success);
    assert_eq!(run.record.host_calls[0].status, Some(302));
    assert_eq!(run.record.denials.len(), 1, "{:?}", run.record.denials);
    assert_eq!(run.record.denials[0].kind, DenialKind::Address);
    assert!(run.record.denials[0].target.contains("169.254.169.254"));

    let run =
        sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({"path": "/redirect-stray"}))).await;
    assert!(!run.result.success);
    assert_eq!(run.record.denials[0].kind, DenialKind::Origin);
}

#[tokio::test]
async fn foreign_secret() {
    let sandbox = sandbox();
    let c = load(&sandbox, FOREIGN_SECRET);
    for auth_ref in [Some(AUTH_REF), None] {
        let run = sandbox.test_connection(&c, &integration(None, auth_ref, json!({}))).await;
        assert!(!run.result.success, "{:?}", run.result);
        assert_eq!(run.record.denials[0].kind, DenialKind::SecretRef);
        assert_eq!(run.record.denials[0].target, "ref://integrations/other/token");
    }
    // A malformed AuthRef is an error, not a path into the store.
    let run = sandbox
        .test_connection(&c, &integration(None, Some(AUTH_REF), json!({"steal": "ref://../../etc/passwd"})))
        .await;
    assert!(run.result.message.contains("InvalidRef"), "{}", run.result.message);
    assert_host_still_works(&sandbox).await;
}

#[tokio::test]
async fn reveal_unpermitted() {
    let sandbox = sandbox();
    let c = load(&sandbox, REVEAL_UNPERMITTED);
    let run = sandbox.test_connection(&c, &integration(None, Some(AUTH_REF), json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(run.result.failure, Some(FailureClass::Permission));
    let kinds: Vec<DenialKind> = run.record.denials.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, vec![DenialKind::SignJwt, DenialKind::Reveal]);
    assert!(!serde_json::to_string(&run).unwrap().contains(CANARY));
}

#[tokio::test]
async fn wasi_escape() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, WASI_ESCAPE);
    let socket = format!("127.0.0.1:{}", server.port());
    let run = sandbox.test_connection(&c, &integration(None, None, json!({ "socket": socket }))).await;
    assert!(run.result.success, "a WASI door was open: {:?}", run.result);
    let names: Vec<&str> = run.result.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["file", "dir", "env", "env-list", "socket", "dns"]);
    assert_eq!(server.hits(), 0, "the guest reached the server through a WASI socket");
}

#[tokio::test]
async fn request_flood() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, REQUEST_FLOOD);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({}))).await;
    assert!(!run.result.success);
    let budget = Limits::default().max_requests as usize;
    assert_eq!(server.hits(), budget);
    assert_eq!(run.record.host_calls.len(), budget + 1);
    assert_eq!(run.record.denials.last().unwrap().kind, DenialKind::RequestBudget);
}

fn assert_no_canary(run: &impl serde::Serialize) {
    use base64::Engine as _;
    let text = serde_json::to_string(run).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for needle in [CANARY.to_string(), b64.encode(CANARY), b64.encode(format!("robot:{CANARY}"))] {
        assert!(!text.contains(&needle), "the secret leaked as {needle}: {text}");
    }
}

#[tokio::test]
async fn canary_leak() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, CANARY_LEAK);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    // The secret did go where it was applied...
    assert!(server.seen_authorization().iter().any(|h| h.contains(CANARY)));
    // ...and nowhere else.
    assert_no_canary(&run);
    assert!(run.result.message.contains("[REDACTED]"), "{}", run.result.message);
    assert!(run.record.stdout.contains("[REDACTED]"));
}

#[tokio::test]
async fn canary_reveal() {
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, CANARY_REVEAL);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.record.host_calls.iter().any(|c| c.operation == "reveal" && c.error.is_none()));
    assert_no_canary(&run);
    let health = sandbox.check_health(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    assert_no_canary(&health);
}

#[tokio::test]
async fn derived_token() {
    // A token from an answer's body is kept by the host: the connector applies it by handle, never
    // holds its value, and every copy that comes back to it (echoed, logged, printed) is redacted.
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, DERIVED_TOKEN);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.result.success, "{:?}", run.result);
    assert!(server.seen_authorization().contains(&format!("Bearer {ISSUED_TOKEN}")));
    let text = serde_json::to_string(&run).unwrap();
    assert!(!text.contains(ISSUED_TOKEN) && !text.contains("opaque-derived-secret"), "{text}");
    assert_no_canary(&run);

    let step = |name: &str| {
        run.result.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}")).message.clone()
    };
    // The rest of the token's answer is intact; both copies of the token are redacted.
    let answer: serde_json::Value = serde_json::from_str(&step("token")).unwrap();
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(answer["token"], "[REDACTED]");
    assert_eq!(answer["access_token"], "[REDACTED]");
    let origin = format!("token from {}/token", server.url());
    assert_eq!(step("origin"), origin);
    assert!(step("reveal-denied").contains("reveal-secrets"));
    assert_eq!(run.record.denials.iter().map(|d| d.kind).collect::<Vec<_>>(), vec![DenialKind::Reveal]);
    assert!(step("echo").contains("Bearer [REDACTED]"), "{}", step("echo"));
    assert!(run.record.stdout.contains("Bearer [REDACTED]"));
    assert!(step("bad-pointer").contains("JSON pointer"));
    // Every credential of an answer is scrubbed, in its body and its headers, not only the token.
    let multi = step("multi");
    assert!(multi.contains("\"expires_in\":300") && multi.contains("x-echo: t=[REDACTED]"), "{multi}");
    for other in OTHER_CREDENTIALS {
        assert!(!text.contains(other), "{other} leaked: {text}");
    }
    assert!(step("short").contains("not taken"));

    // The audit says which call yielded a token and which calls applied it.
    let kept: Vec<&str> = run.record.host_calls.iter().filter(|c| c.token_kept).map(|c| c.target.as_str()).collect();
    assert_eq!(kept, [format!("{}/token", server.url()), format!("{}/token-multi", server.url())]);
    let first = run.record.host_calls.iter().find(|c| c.token_kept).unwrap();
    assert_eq!(first.auth_ref.as_deref(), Some(AUTH_REF));
    let applied = run.record.host_calls.iter().find(|c| c.target.ends_with("/protected")).unwrap();
    assert_eq!(applied.auth_ref.as_deref(), Some(origin.as_str()));
    assert!(!applied.token_kept);
}

#[tokio::test]
async fn released_0_1_0() {
    // Built against the frozen 0.1.0 world, it imports `…/http@0.1.0` and is linked to this
    // host's later 0.1.x release.
    let bytes = std::fs::read(RELEASED_0_1_0).unwrap();
    let imports = |wasm: &[u8], version: &str| {
        let needle = format!("stellaops:integrations/http@{version}");
        wasm.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(imports(&bytes, "0.1.0") && !imports(&bytes, "0.1.1"));
    assert!(imports(&std::fs::read(WELL_BEHAVED).unwrap(), "0.1.1"));
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, RELEASED_0_1_0);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.result.success, "{:?}", run.result);
    assert_eq!(run.result.message, "0.1.0 component: status 200");
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    assert_no_canary(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow() {
    // 200 invocations at once against a server that answers after a second: all finish within
    // their deadlines.
    let server = StubServer::start().await;
    let sandbox = Arc::new(sandbox());
    let c = Arc::new(load(&sandbox, SLOW));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (sandbox, c, url) = (sandbox.clone(), c.clone(), server.url());
        tasks.push(tokio::spawn(async move {
            sandbox.test_connection(&c, &integration(Some(&url), None, json!({}))).await
        }));
    }
    for t in tasks {
        let run = t.await.unwrap();
        assert!(run.result.success, "{:?} {:?}", run.result, run.record.host_calls);
        assert!(run.record.duration_ms < Limits::default().deadline_ms);
    }
    assert_eq!(server.hits(), 200);
}

#[tokio::test]
async fn in_memory_connector_scripts_its_outcome() {
    let sandbox = sandbox();
    let c = load(&sandbox, IN_MEMORY);
    assert_eq!(c.provider(), "in-memory");
    let ok = sandbox.test_connection(&c, &integration(None, None, json!({"providerVersion": "9.9"}))).await;
    assert!(ok.result.success);
    assert_eq!(ok.result.facts.provider_version.as_deref(), Some("9.9"));
    let failed = sandbox
        .test_connection(
            &c,
            &integration(None, None, json!({"outcome": "failure", "failureClass": "auth", "message": "nope"})),
        )
        .await;
    assert!(!failed.result.success);
    assert_eq!(failed.result.failure, Some(FailureClass::Auth));
    assert_eq!(failed.result.message, "nope");
    let degraded =
        sandbox.check_health(&c, &integration(None, None, json!({"health": "degraded", "latencyMs": 50}))).await;
    assert_eq!(degraded.result.status, stella_runtime::HealthStatus::Degraded);
    assert!(degraded.result.latency_ms >= 50, "latency measured by the host: {}", degraded.result.latency_ms);
    let bad = sandbox.test_connection(&c, &integration(None, None, json!({"outcome": "maybe"}))).await;
    assert_eq!(bad.result.failure, Some(FailureClass::Misconfigured));
    assert!(
        sandbox.check_health(&c, &integration(None, None, json!({"latencyMs": "soon"}))).await.result.failure
            == Some(FailureClass::Misconfigured)
    );
}

#[tokio::test]
async fn bad_integration_configuration_is_a_misconfigured_result() {
    let sandbox = sandbox();
    let c = load(&sandbox, WELL_BEHAVED);
    for (base, auth_ref, config) in [
        (Some("not a url"), None, json!({})),
        (Some("ftp://example.com"), None, json!({})),
        (Some("https://user:pw@example.com"), None, json!({})),
        (None, Some("ref://../x/y"), json!({})),
        (None, None, json!({"caCertificates": "not pem"})),
        (None, None, json!({"caCertificates": 42})),
    ] {
        let run = sandbox.test_connection(&c, &integration(base, auth_ref, config.clone())).await;
        assert_eq!(run.result.failure, Some(FailureClass::Misconfigured), "{base:?} {auth_ref:?} {config}");
    }
}

#[test]
fn components_are_validated_at_load() {
    let sandbox = sandbox();
    let manifest =
        stella_runtime::Manifest::from_toml("[connector]\nprovider='evil'\ntypes=['registry']\nversion='1.0.0'")
            .unwrap();
    // A component importing an interface the host does not provide.
    let evil = wat::parse_str(
        r#"(component
             (import "evil:backdoor/exec@1.0.0" (instance))
           )"#,
    )
    .unwrap();
    let evil = stella_runtime::manifest::embed_manifest(&evil, &manifest).unwrap();
    match sandbox.load(&evil, ConnectorSource::BuiltIn) {
        Err(LoadError::ForbiddenImport(name)) => assert_eq!(name, "evil:backdoor/exec@1.0.0"),
        other => panic!("expected a forbidden import, got {other:?}"),
    }
    // A component that imports nothing wrong but exports nothing.
    let empty = stella_runtime::manifest::embed_manifest(&wat::parse_str("(component)").unwrap(), &manifest).unwrap();
    let err = sandbox.load(&empty, ConnectorSource::BuiltIn).unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err}");
    assert!(err.to_string().contains("no export"), "{err}");
    // No manifest.
    let bare = wat::parse_str("(component)").unwrap();
    assert!(matches!(sandbox.load(&bare, ConnectorSource::BuiltIn), Err(LoadError::Manifest(_))));
    // A core module, and garbage.
    let core = wat::parse_str("(module)").unwrap();
    assert!(
        matches!(sandbox.load(&core, ConnectorSource::BuiltIn), Err(LoadError::NotAComponent(m)) if m.contains("core module"))
    );
    assert!(matches!(sandbox.load(b"MZ\x90\x00", ConnectorSource::BuiltIn), Err(LoadError::NotAComponent(_))));
    // Too large.
    let small =
        Sandbox::new(SandboxConfig { max_component_bytes: 1024, ..SandboxConfig::default() }, resolver()).unwrap();
    let bytes = std::fs::read(WELL_BEHAVED).unwrap();
    assert!(matches!(small.load(&bytes, ConnectorSource::BuiltIn), Err(LoadError::TooLarge { .. })));
    // A precompiled artifact is never accepted from outside.
    let engine = wasmtime_engine_for_test();
    let precompiled = engine.precompile_component(&bytes).unwrap();
    assert!(
        matches!(sandbox.load(&precompiled, ConnectorSource::BuiltIn), Err(LoadError::NotAComponent(m)) if m.contains("precompiled"))
    );
}

fn wasmtime_engine_for_test() -> wasmtime::Engine {
    wasmtime::Engine::default()
}

#[test]
fn package_replaces_the_manifest_and_the_component_still_runs() {
    let bytes = std::fs::read(WELL_BEHAVED).unwrap();
    let manifest = stella_runtime::Manifest::from_toml(
        "[connector]\nprovider='repackaged'\ntypes=['ci']\nversion='2.0.0'\n[limits]\ndeadline-ms=1234",
    )
    .unwrap();
    let once = stella_runtime::manifest::embed_manifest(&bytes, &manifest).unwrap();
    let twice = stella_runtime::manifest::embed_manifest(&once, &manifest).unwrap();
    assert_eq!(once, twice, "packaging twice replaces, never stacks");
    let d = stella_runtime::inspect::describe(&twice).unwrap();
    assert_eq!(d.manifest.connector.provider, "repackaged");
    let sandbox = sandbox();
    let c = sandbox.load(&twice, ConnectorSource::BuiltIn).unwrap();
    assert_eq!(c.provider(), "repackaged");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt.block_on(sandbox.test_connection(&c, &integration(None, None, json!({}))));
    assert_eq!(run.record.limits.deadline_ms, 1234, "the manifest's limit applies");
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = SandboxConfig { cache_dir: Some(cache.clone()), ..SandboxConfig::default() };
    let bytes = std::fs::read(IN_MEMORY).unwrap();
    let first = Sandbox::new(config.clone(), resolver()).unwrap();
    first.load(&bytes, ConnectorSource::BuiltIn).unwrap();
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&stella_runtime::inspect::describe(&bytes).unwrap().sha256));
    // A second process loads from the cache; a corrupt artifact is ignored and rebuilt.
    let second = Sandbox::new(config.clone(), resolver()).unwrap();
    second.load(&bytes, ConnectorSource::BuiltIn).unwrap();
    std::fs::write(&files[0], b"garbage").unwrap();
    let third = Sandbox::new(config.clone(), resolver()).unwrap();
    let c = third.load(&bytes, ConnectorSource::BuiltIn).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(third.test_connection(&c, &integration(None, None, json!({})))).result.success);
    assert!(std::fs::read(&files[0]).unwrap().len() > 1000, "the artifact was rewritten");
    // A cache directory others can write to is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Sandbox::new(config, resolver()).unwrap_err();
        assert!(err.contains("not writable by others"), "{err}");
    }
}

#[test]
fn a_bad_plugin_file_never_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(WELL_BEHAVED, dir.path().join("a-good.wasm")).unwrap();
    std::fs::copy(WELL_BEHAVED, dir.path().join("b-duplicate.wasm")).unwrap();
    std::fs::write(dir.path().join("c-garbage.wasm"), b"not wasm").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let in_memory = std::fs::read(IN_MEMORY).unwrap();
    let sandbox = sandbox();
    let catalog = stella_runtime::ConnectorCatalog::load(&sandbox, &[("in-memory", &in_memory)], Some(dir.path()));
    let providers: Vec<&str> = catalog.iter().map(|c| c.provider()).collect();
    assert_eq!(providers, ["in-memory", "test-program"]);
    let failures: Vec<&str> = catalog.failures().iter().map(|f| f.source.as_str()).collect();
    assert_eq!(failures.len(), 2, "{:?}", catalog.failures());
    assert!(failures[0].ends_with("b-duplicate.wasm") && failures[1].ends_with("c-garbage.wasm"));
    assert!(catalog.failures()[1].error.contains("not WebAssembly"));
}

#[tokio::test]
async fn the_deadline_also_bounds_a_guest_blocked_in_a_host_call() {
    let server = StubServer::start().await;
    // The stub's /slow answers after a second; a 300 ms deadline must cut the request.
    let sandbox = sandbox_with(Limits { deadline_ms: 300, ..Limits::default() }, true);
    let c = load(&sandbox, SLOW);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({}))).await;
    assert!(!run.result.success);
    assert!(run.record.duration_ms < 900, "{} ms", run.record.duration_ms);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The Python example connector, built by `make python-connector` (componentize-py) and
/// packaged with `connector package`. Under CI it must be there.
fn python_connector() -> Option<Vec<u8>> {
    match std::env::var("STELLA_PYTHON_CONNECTOR") {
        Ok(path) => Some(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("STELLA_PYTHON_CONNECTOR is not set; run the tests with `make test`")
        }
        Err(_) => {
            eprintln!("SKIPPED: the Python connector test needs STELLA_PYTHON_CONNECTOR (run `make test`)");
            None
        }
    }
}

#[tokio::test]
async fn a_python_connector_runs_in_the_same_sandbox() {
    let Some(bytes) = python_connector() else { return };
    let server = StubServer::start().await;
    let sandbox = sandbox();
    let c = sandbox.load(&bytes, ConnectorSource::BuiltIn).unwrap();
    assert_eq!(c.provider(), "python-example");
    // componentize-py components import WASI filesystem and sockets; they load with those
    // capabilities empty.
    assert!(c.imports().iter().any(|i| i.starts_with("wasi:filesystem/")));
    assert!(c.imports().iter().any(|i| i.starts_with("wasi:sockets/")));

    let run =
        sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({"path": "/ok"}))).await;
    assert!(run.result.success, "{:?} {:?}", run.result, run.record);
    assert_eq!(run.record.host_calls.iter().filter(|c| c.interface == "http").count(), 1);
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    assert!(run.record.logs.iter().any(|l| l.message.contains("python connector calling")));
    assert_no_canary(&run);

    // The same policy applies: a blocked address is denied and never contacted.
    let strict = sandbox_with(Limits::default(), false);
    let c = strict.load(&bytes, ConnectorSource::BuiltIn).unwrap();
    let before = server.hits();
    let run = strict.test_connection(&c, &integration(Some(&server.url()), None, json!({"path": "/ok"}))).await;
    assert!(!run.result.success);
    assert_eq!(run.record.denials[0].kind, DenialKind::Address);
    assert_eq!(server.hits(), before);
    let health = strict.check_health(&c, &integration(Some(&server.url()), None, json!({}))).await;
    assert_eq!(health.result.status, stella_runtime::HealthStatus::Unhealthy);
}

#[tokio::test]
async fn an_integration_can_trust_its_own_ca() {
    let server = stub::TlsStub::start().await;
    let sandbox = sandbox();
    let c = load(&sandbox, WELL_BEHAVED);
    let base = format!("https://127.0.0.1:{}", server.port);

    let untrusted = sandbox.test_connection(&c, &integration(Some(&base), None, json!({}))).await;
    assert!(!untrusted.result.success);
    assert_eq!(untrusted.result.failure, Some(FailureClass::Tls), "{:?}", untrusted.record.host_calls);
    assert_eq!(untrusted.record.host_calls[0].error.as_deref(), Some("tls"));

    let trusted =
        sandbox.test_connection(&c, &integration(Some(&base), None, json!({ "caCertificates": server.ca_pem }))).await;
    assert!(trusted.result.success, "{:?} {:?}", trusted.result, trusted.record.host_calls);
    assert_eq!(trusted.result.message, "tls ok");

    // The CA is the integration's alone: another integration without it still fails.
    let other = sandbox.test_connection(&c, &integration(Some(&base), None, json!({}))).await;
    assert_eq!(other.result.failure, Some(FailureClass::Tls));
}

#[test]
fn a_plain_named_import_is_listed_and_refused() {
    let manifest =
        stella_runtime::Manifest::from_toml("[connector]\nprovider='sly'\ntypes=['ci']\nversion='1.0.0'").unwrap();
    let sly = wat::parse_str(r#"(component (import "backdoor" (func)))"#).unwrap();
    let sly = stella_runtime::manifest::embed_manifest(&sly, &manifest).unwrap();
    let d = stella_runtime::inspect::describe(&sly).unwrap();
    assert_eq!(d.imports, ["backdoor"], "inspect must show every capability import");
    match sandbox().load(&sly, ConnectorSource::BuiltIn) {
        Err(LoadError::ForbiddenImport(name)) => assert_eq!(name, "backdoor"),
        other => panic!("expected a forbidden import, got {other:?}"),
    }
}

#[tokio::test]
async fn the_operator_can_withhold_what_a_manifest_asks_for() {
    let server = StubServer::start().await;
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let config = SandboxConfig { network, allow_reveal_secrets: false, ..SandboxConfig::default() };
    let sandbox = Sandbox::new(config, resolver()).unwrap();
    let c = load(&sandbox, CANARY_REVEAL);
    assert!(c.manifest().permissions.reveal_secrets);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({}))).await;
    let reveal = run.record.host_calls.iter().find(|c| c.operation == "reveal").unwrap();
    assert_eq!(reveal.error.as_deref(), Some("denied"));
    assert_eq!(run.record.denials[0].kind, DenialKind::Reveal);
}
