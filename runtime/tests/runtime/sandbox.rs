//! The sandbox's boundary tests: real components (built from `test-programs`), the real
//! sandbox, a local stub server. Every hostile program must end in a typed failed result or a
//! load error, the host must stay up, and a well-behaved call right after must still succeed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stella_runtime::egress::NetworkPolicy;
use stella_runtime::limits::{LimitKind, Limits};
use stella_runtime::record::{DenialKind, Interface, RECORD_ENVELOPE_BYTES};
use stella_runtime::secrets::{
    AuthRef, Binding, Secret, SecretNamespace, SecretStore, SecretValue, StaticSecretResolver,
};
use stella_runtime::{
    ConnectionConfig, ConnectorSource, FailureClass, Invocation, LoadError, Sandbox, SandboxConfig, TestOutcome,
};
use test_programs_artifacts::*;

use crate::common::*;
use crate::stub::{ISSUED_TOKEN, OTHER_CREDENTIALS, StubServer};

// A program without a test below fails the build.
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_program!(assert_test_exists);

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
    let call = &run.record.host_calls.iter().find(|c| c.interface == Interface::Http).unwrap();
    assert_eq!(call.status, Some(200));
    assert_eq!(call.operation, "GET");
    assert_eq!(call.target, format!("{}/ok", server.url()));
    assert_eq!(call.auth_ref.as_deref(), Some(AUTH_REF));
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    assert!(run.record.denials.is_empty());
    assert!(run.record.memory_peak_bytes > 0);
    assert!(run.record.trap.is_none());

    // The record keeps the query string (a security team filters on it), never the fragment.
    let run = sandbox
        .test_connection(&c, &integration(Some(&server.url()), None, json!({"path": "/ok?page=2&q=abc#frag"})))
        .await;
    assert!(run.result.success);
    assert_eq!(run.record.host_calls[0].target, format!("{}/ok?page=2&q=abc", server.url()));
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

/// A fresh instance per call: what one invocation wrote to its memory (a static of the memory
/// image, a zero-initialized one) is gone at the next, however the pool resets the slot.
#[tokio::test]
async fn remembers() {
    let sandbox = sandbox();
    let c = load(&sandbox, REMEMBERS);
    for _ in 0..5 {
        let run = sandbox.test_connection(&c, &integration(None, None, json!({}))).await;
        assert!(run.result.success, "{:?}", run.result);
        assert_eq!(run.result.message, "in-image=41 zeroed=0");
    }
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
    let call = run.record.host_calls.iter().find(|c| c.interface == Interface::Http).unwrap();
    assert_eq!(call.error.as_deref(), Some("body-too-large"), "{call:?}");

    // A body that declares itself too large is refused before it is read.
    let declared = load(&sandbox, WELL_BEHAVED);
    let run = sandbox
        .test_connection(&declared, &integration(Some(&server.url()), None, json!({"path": "/big-declared"})))
        .await;
    let call = run.record.host_calls.iter().find(|c| c.interface == Interface::Http).unwrap();
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
    assert_no_secret(&serde_json::to_string(run).unwrap(), CANARY);
}

/// `text` holds `secret` in none of the encodings a server could reflect it in.
#[track_caller]
fn assert_no_secret(text: &str, secret: &str) {
    use base64::Engine as _;
    let (b64, url) =
        (base64::engine::general_purpose::STANDARD_NO_PAD, base64::engine::general_purpose::URL_SAFE_NO_PAD);
    let lower = text.to_ascii_lowercase();
    let mut needles = vec![
        secret.to_string(),
        secret.chars().rev().collect(),
        hex::encode(secret),
        b64.encode(format!("robot:{secret}")),
        secret.bytes().map(|b| format!("%{b:02x}")).collect(),
    ];
    for prefix in ["", "B", "Be", "Bearer "] {
        needles.push(b64.encode(format!("{prefix}{secret}")));
        needles.push(url.encode(format!("{prefix}{secret}")));
    }
    for needle in needles {
        // Base64's last character may hold bits of what follows: compare without it.
        let needle = &needle[..needle.len() - 1];
        let found = if needle.bytes().any(|b| b.is_ascii_uppercase()) && !needle.contains('%') {
            text.contains(needle)
        } else {
            lower.contains(&needle.to_ascii_lowercase())
        };
        assert!(!found, "the secret leaked as {needle}: {text}");
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

/// A server that knows where the tests pin `mirror.stella.test` (the thief's declared host).
fn thief_sandbox(mirror: &StubServer, resolver: Arc<dyn stella_runtime::secrets::SecretResolver>) -> Sandbox {
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    network.pin.insert("mirror.stella.test".into(), format!("127.0.0.1:{}", mirror.port()).parse().unwrap());
    let limits = Limits { max_requests: 64, ..Limits::default() };
    let config = SandboxConfig { limits, network, cache_dir: Some(cache_dir()), ..SandboxConfig::default() };
    Sandbox::new(config, resolver).unwrap()
}

fn bound_resolver(origins: &str) -> Arc<StaticSecretResolver> {
    let mut r = StaticSecretResolver::default();
    let binding = Some(Binding::parse(origins).unwrap());
    let value = SecretValue::new(CANARY.into());
    r.insert_in(SecretNamespace::Unscoped, AuthRef::parse(AUTH_REF).unwrap(), Secret { value, binding });
    Arc::new(r)
}

#[tokio::test]
async fn credential_thief() {
    // A connector without `reveal-secrets` has its credential applied to servers that reflect it
    // every way they can, and guesses at it: it never holds the value, and the record shows
    // every attempt.
    let (server, mirror) = (StubServer::start().await, StubServer::start().await);
    let sandbox = thief_sandbox(&mirror, resolver());
    let c = load(&sandbox, CREDENTIAL_THIEF);
    let settings = json!({"wrong": "wrong-guess-8c1d2e3f90", "right": CANARY});
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), settings.clone())).await;
    assert!(run.result.success, "{:?}", run.result);
    let text = serde_json::to_string(&run).unwrap();
    assert_no_secret(&text, CANARY);
    let step = |name: &str| {
        run.result.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}")).message.clone()
    };
    // Every reflection came back scrubbed, in every encoding.
    for name in ["/echo", "/echo-error", "/echo-json", "redirect"].into_iter().map(String::from).chain(
        ["hex", "HEX", "base64", "base64url", "percent", "lower", "upper", "reversed"].map(|e| format!("encoded-{e}")),
    ) {
        assert!(step(&name).contains("[REDACTED]"), "{name}: {}", step(&name));
    }
    assert!(
        step("/echo-error").starts_with("500 ")
            && step("/echo-error").contains("x-debug-authorization: Bearer [REDACTED]")
    );
    assert!(
        step("redirect").contains("location: http://mirror.stella.test/landing?auth=Bearer+[REDACTED]"),
        "{}",
        step("redirect")
    );
    let scrubbed = run.record.host_calls.iter().filter(|c| c.response_scrubbed).count();
    assert_eq!(scrubbed, 13, "every reflecting answer is marked scrubbed in the record");
    // The redirect was followed to the declared host, credential and all (the secret is unbound).
    assert!(step("followed").starts_with("200 "), "{}", step("followed"));
    assert_eq!(mirror.seen_authorization(), vec![format!("Bearer {CANARY}")]);

    // No error says whether a guess was right: the same words for the right one and a wrong one.
    for what in ["header-name", "header-value", "placement", "origin", "pointer"] {
        let (wrong, right) = (step(&format!("{what}-wrong")), step(&format!("{what}-right")));
        assert_eq!(wrong, right, "{what} tells a right guess from a wrong one");
        // (The result, as operators read it, is redacted of every value held at its end; the
        // server's address is one of them by then, see `hidden` below.)
        assert!(!wrong.contains("wrong-guess"), "{what}: {wrong}");
    }
    // A request carrying the right guess is refused, and says where it carried it; the wrong one
    // went out.
    assert!(step("carried-wrong").starts_with("200 "), "{}", step("carried-wrong"));
    assert!(step("carried-right").contains("Denied") && step("carried-right").contains("reveal-secrets"));
    let carried: Vec<_> = run.record.host_calls.iter().filter(|c| !c.secret_in_request.is_empty()).collect();
    assert_eq!(carried.len(), 2, "{carried:?}");
    assert_eq!(carried[0].secret_in_request, ["url", "header x-leak"]);
    assert_eq!(carried[0].target, format!("{}/collect?q=[REDACTED]", server.url()));
    assert_eq!(carried[0].request_headers, ["x-leak"]);
    // Nothing the server received carried the value outside the Authorization header.
    for head in server.seen_heads().iter().chain(mirror.seen_heads().iter()) {
        let outside: Vec<&str> =
            head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("authorization:")).collect();
        assert!(!outside.join("\n").contains(CANARY), "{head}");
    }
    // Credentials go into headers meant for them only.
    assert!(step("referer").contains("Denied") && step("cookie").contains("Denied"));
    let kinds: Vec<DenialKind> = run.record.denials.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DenialKind::Origin,
            DenialKind::Origin,
            DenialKind::SecretInRequest,
            DenialKind::CredentialPlacement,
            DenialKind::CredentialPlacement,
            DenialKind::SecretInRequest
        ],
        "{:?}",
        run.record.denials
    );
    assert!(run.record.denials[3].target.ends_with("(header referer)"));
    // Part of an answer, or another encoding of it, cannot be asked for; an encoded answer sent
    // unasked is withheld.
    for name in ["accept-encoding", "range"] {
        assert!(step(name).contains("InvalidRequest"), "{name}: {}", step(name));
    }
    assert!(step("gzip").starts_with("200 ") && step("gzip").ends_with("] "), "{}", step("gzip"));
    assert!(run.record.host_calls.iter().any(|c| c.response_withheld && c.target.ends_with("/echo-gzip")));
    // Held strings of the connector's choosing cut no secret in half, and hide no origin.
    assert!(!step("overlap").contains("5ecr3t") && step("overlap").contains("[REDACTED]"), "{}", step("overlap"));
    let hidden = run.record.host_calls.iter().find(|c| c.target.contains("after=hiding")).unwrap();
    assert!(hidden.target.starts_with("http://[REDACTED]:") && hidden.error.as_deref() == Some("denied"), "{hidden:?}");
    assert_eq!(run.record.origins, [server.url(), "http://mirror.stella.test".to_string()]);
    assert!(run.record.secret_in_request);
    let applied: Vec<_> = run.record.host_calls.iter().filter_map(|c| c.credential_header.as_deref()).collect();
    assert!(applied.iter().all(|h| *h == "authorization") && applied.len() >= 13, "{applied:?}");

    // Bound to the integration's own origin, the credential does not follow the redirect to the
    // declared host: a denial naming the binding, and nothing reaches that server.
    let (server, mirror) = (StubServer::start().await, StubServer::start().await);
    let sandbox = thief_sandbox(&mirror, bound_resolver(&server.url()));
    let c = load(&sandbox, CREDENTIAL_THIEF);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), settings)).await;
    assert!(run.result.steps.iter().any(|s| s.name == "followed" && s.message.contains("Denied")), "{:?}", run.result);
    assert_eq!(mirror.hits(), 0);
    let binding = run.record.denials.iter().find(|d| d.kind == DenialKind::SecretBinding).expect("a binding denial");
    assert!(binding.target.starts_with("http://mirror.stella.test/landing"), "{binding:?}");
    assert!(binding.reason.contains(&format!("bound to {}", server.url())), "{binding:?}");
    assert_no_canary(&run);
}

#[tokio::test]
async fn a_bound_secret_goes_to_its_origins_only() {
    let (own, changed) = (StubServer::start().await, StubServer::start().await);
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let config = SandboxConfig { network, cache_dir: Some(cache_dir()), ..SandboxConfig::default() };
    let sandbox = Sandbox::new(config.clone(), bound_resolver(&own.url())).unwrap();
    let c = load(&sandbox, WELL_BEHAVED);
    // Applied to its origin.
    let run = sandbox.test_connection(&c, &integration(Some(&own.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.result.success, "{:?}", run.result);
    assert_eq!(own.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    // The integration's base URL changed to another server after the secret was bound: refused.
    let run = sandbox.test_connection(&c, &integration(Some(&changed.url()), Some(AUTH_REF), json!({}))).await;
    assert!(!run.result.success);
    assert_eq!(changed.hits(), 0, "nothing reaches the new base URL");
    assert_eq!(run.record.denials.iter().map(|d| d.kind).collect::<Vec<_>>(), [DenialKind::SecretBinding]);
    assert!(run.record.denials[0].reason.contains(AUTH_REF), "{:?}", run.record.denials);

    // Revealing it: only when every origin the connector may reach is inside the binding.
    let c = load(&sandbox, CANARY_REVEAL);
    let run = sandbox.test_connection(&c, &integration(Some(&own.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.record.host_calls.iter().any(|c| c.operation == "reveal" && c.error.is_none()));
    // The revealed value went out in a URL to the bound origin: allowed, and the record says so.
    let collect = run.record.host_calls.iter().find(|c| c.target.contains("/collect")).unwrap();
    assert!(collect.secret_in_request.contains(&"url".to_string()) && collect.status == Some(200), "{collect:?}");
    assert_no_canary(&run);
    let run = sandbox.test_connection(&c, &integration(Some(&changed.url()), Some(AUTH_REF), json!({}))).await;
    let reveal = run.record.host_calls.iter().find(|c| c.operation == "reveal").unwrap();
    assert_eq!(reveal.error.as_deref(), Some("denied"));
    assert!(run.record.denials.iter().any(|d| d.kind == DenialKind::SecretBinding && d.reason.contains("bound to")));
    assert_eq!(changed.seen_authorization().len(), 0, "{:?}", changed.seen_heads());

    // A token the host keeps from an answer to a bound credential inherits its binding.
    let c = load(&sandbox, DERIVED_TOKEN);
    let run = sandbox.test_connection(&c, &integration(Some(&own.url()), Some(AUTH_REF), json!({}))).await;
    assert!(run.result.success, "{:?}", run.result);
    assert!(own.seen_authorization().contains(&format!("Bearer {ISSUED_TOKEN}")));

    // An operator who requires bindings: a secret without one resolves to a denial.
    let store = SecretStore::new(None, true)
        .with_variables([("STELLA_SECRET__INTEGRATIONS__TEST__TOKEN".to_string(), CANARY.to_string())].into())
        .requiring_bindings(true);
    let sandbox = Sandbox::new(config, Arc::new(store)).unwrap();
    let c = load(&sandbox, WELL_BEHAVED);
    let run = sandbox.test_connection(&c, &integration(Some(&own.url()), Some(AUTH_REF), json!({}))).await;
    let denial = run.record.denials.iter().find(|d| d.kind == DenialKind::SecretBinding).expect("a denial");
    assert!(denial.reason.contains("requires one"), "{denial:?}");
}

#[tokio::test]
async fn an_invocation_resolves_its_own_namespace_only() {
    let server = StubServer::start().await;
    let store = SecretStore::new(None, true).with_variables(
        [
            ("STELLA_SECRET__ACME__INTEGRATIONS__TEST__TOKEN".to_string(), CANARY.to_string()),
            ("STELLA_PLATFORM_SECRET__INTEGRATIONS__TEST__TOKEN".to_string(), "platform-secret-value".to_string()),
        ]
        .into(),
    );
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let config = SandboxConfig { network, cache_dir: Some(cache_dir()), ..SandboxConfig::default() };
    let sandbox = Sandbox::new(config, Arc::new(store)).unwrap();
    let c = load(&sandbox, WELL_BEHAVED);
    let in_namespace = |name: &str| ConnectionConfig {
        secret_namespace: SecretNamespace::Owner(name.into()),
        ..integration(Some(&server.url()), Some(AUTH_REF), json!({}))
    };
    let run = sandbox.test_connection(&c, &in_namespace("acme")).await;
    assert!(run.result.success);
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);
    // Another namespace: not found, as for a secret that exists nowhere; nothing is sent.
    for namespace in [SecretNamespace::Owner("evil".into()), SecretNamespace::Unscoped] {
        let config = ConnectionConfig { secret_namespace: namespace, ..in_namespace("x") };
        let run = sandbox.test_connection(&c, &config).await;
        let resolve = run.record.host_calls.iter().find(|c| c.interface == Interface::Secrets).unwrap();
        assert_eq!(resolve.error.as_deref(), Some("not-found"));
        assert_eq!(resolve.error_message.as_deref(), Some(AUTH_REF));
    }
    assert_eq!(server.seen_authorization().len(), 1);
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
    assert!(err.to_string().contains("no exported function `check-health`, `test-connection`"), "{err}");
    // One that lacks an export is refused before it is compiled: the compile cache stays empty
    // (a large component would otherwise cost seconds and hundreds of MiB first).
    let half = wat::parse_str(
        r#"(component
             (core module $m (func (export "f") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $f (result u32) (canon lift (core func $i "f")))
             (export "test-connection" (func $f))
           )"#,
    )
    .unwrap();
    let half = stella_runtime::manifest::embed_manifest(&half, &manifest).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cached = Sandbox::new(
        SandboxConfig { cache_dir: Some(cache.path().to_path_buf()), ..SandboxConfig::default() },
        resolver(),
    )
    .unwrap();
    let err = cached.load(&half, ConnectorSource::BuiltIn).unwrap_err();
    assert!(
        err.to_string().contains("no exported function `check-health` (its function exports: test-connection)"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing was compiled");
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
        let err = Sandbox::new(config, resolver()).unwrap_err().to_string();
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

    let run = sandbox
        .test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({"path": "/product"})))
        .await;
    assert!(run.result.success, "{:?} {:?}", run.result, run.record);
    assert_eq!(run.result.facts.provider_version.as_deref(), Some("2.4.1"));
    // First without the credential (the server proves it is the product), then with it.
    let http_calls: Vec<_> = run.record.host_calls.iter().filter(|c| c.interface == Interface::Http).collect();
    assert_eq!(http_calls.len(), 2);
    assert_eq!((http_calls[0].auth_ref.is_none(), http_calls[1].auth_ref.as_deref()), (true, Some(AUTH_REF)));
    assert_eq!(server.seen_authorization(), vec![format!("Bearer {CANARY}")]);

    // A server that does not name itself never gets the credential.
    let before = server.seen_authorization().len();
    let run =
        sandbox.test_connection(&c, &integration(Some(&server.url()), Some(AUTH_REF), json!({"path": "/ok"}))).await;
    assert_eq!(run.result.failure, Some(stella_runtime::FailureClass::ProviderMismatch), "{:?}", run.result);
    assert_eq!(server.seen_authorization().len(), before);
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
    let server = stella_test_support::Stub::start_tls().await;
    server.on("GET", "/ok", stella_test_support::Canned::new(200).body("tls ok"));
    let sandbox = sandbox();
    let c = load(&sandbox, WELL_BEHAVED);
    let base = server.base_url.clone();

    let untrusted = sandbox.test_connection(&c, &integration(Some(&base), None, json!({}))).await;
    assert!(!untrusted.result.success);
    assert_eq!(untrusted.result.failure, Some(FailureClass::Tls), "{:?}", untrusted.record.host_calls);
    assert_eq!(untrusted.record.host_calls[0].error.as_deref(), Some("tls"));

    let ca = server.ca_pem.clone().expect("a TLS stub has its CA");
    let trusted = sandbox.test_connection(&c, &integration(Some(&base), None, json!({ "caCertificates": ca }))).await;
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

// The hostile corpus: every import flooded, results and requests oversized. Each case must end in
// a failed result that names the limit (or a clipped result), with a record within its budget,
// and leave the host able to run a well-behaved connector at once.

/// Checks containment: the run failed on `limit`, named in its result and its record; the record
/// is within its budget; the host still runs a well-behaved connector.
#[track_caller]
fn assert_stopped_by(run: &Invocation<TestOutcome>, limit: LimitKind) {
    assert!(!run.result.success, "{:?}", run.result);
    let trap = run.record.trap.as_ref().unwrap_or_else(|| panic!("no trap: {:?}", run.result));
    assert_eq!(trap.limit, Some(limit), "{trap:?}");
    let class = if limit == LimitKind::Deadline { FailureClass::Timeout } else { FailureClass::Internal };
    assert_eq!(run.result.failure, Some(class));
    assert_eq!(run.result.message, trap.message, "the result says what stopped it");
    assert_record_bounded(run);
}

#[track_caller]
fn assert_record_bounded(run: &Invocation<TestOutcome>) {
    let max = run.record.limits.max_record_bytes + RECORD_ENVELOPE_BYTES;
    let size = run.record.json_size();
    assert!(size <= max, "the record is {size} bytes; the bound is {max}");
}

/// Runs `flood` with `configuration.flood = which` and checks it is stopped by `limit`.
async fn run_flood(
    sandbox: &Sandbox,
    which: &str,
    auth_ref: &str,
    limit: LimitKind,
) -> (Invocation<TestOutcome>, StubServer) {
    let server = StubServer::start().await;
    let c = load(sandbox, FLOOD);
    let run =
        sandbox.test_connection(&c, &integration(Some(&server.url()), Some(auth_ref), json!({ "flood": which }))).await;
    assert_stopped_by(&run, limit);
    assert_host_still_works(sandbox).await;
    (run, server)
}

/// Each case of a program that takes one from its configuration, with its test: a case without
/// a test here fails the `flood` or `oversized` test, and a test named here must exist.
macro_rules! tested_cases {
    ($list:ident: $($case:literal => $test:ident),* $(,)?) => {
        const $list: &[&str] = &[$($case),*];
        $(#[allow(unused_imports)] use self::$test as _;)*
    };
}

tested_cases!(TESTED_FLOODS:
    "send-allowed" => flood_send_allowed,
    "send-refused" => flood_send_refused,
    "send-for-token" => flood_send_for_token,
    "resolve-keep" => flood_resolve_keep,
    "resolve-drop" => flood_resolve_drop,
    "resolve-foreign" => flood_resolve_foreign,
    "reveal" => flood_reveal,
    "sign-jwt" => flood_sign_jwt,
    "sign-jwt-keep" => flood_sign_jwt_keep,
    "log-empty" => flood_log_empty,
    "log-long" => flood_log_long,
    "stdout" => flood_stdout,
    "stderr" => flood_stderr,
    "wasi-socket" => flood_wasi_socket,
    "wasi-pollables" => flood_wasi_pollables,
    "secret-method" => flood_secret_method,
);

tested_cases!(TESTED_OVERSIZED:
    "result-message" => oversized_result_message,
    "result-steps" => oversized_result_steps,
    "result-facts" => oversized_result_facts,
    "result-huge" => oversized_result_huge,
    "request-headers" => oversized_request_headers,
    "request-url" => oversized_request_url,
    "request-body" => oversized_request_body,
    "token-pointers" => oversized_token_pointers,
    "aliased-headers" => oversized_aliased_headers,
    "random-bytes" => oversized_random_bytes,
);

#[tokio::test]
async fn flood() {
    // The program refuses a flood it does not know, listing those it does: the tests below cover
    // exactly that list.
    let sandbox = corpus_sandbox(|_| {});
    let c = load(&sandbox, FLOOD);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({ "flood": "?" }))).await;
    assert_eq!(run.result.failure, Some(FailureClass::Misconfigured));
    let known = run.result.message.split_once("known: ").unwrap().1;
    assert_eq!(known.split(", ").collect::<Vec<_>>(), FLOODS);
    assert_eq!(TESTED_FLOODS, FLOODS, "each flood has its test");
}

/// The default host-call budget.
fn budget() -> usize {
    Limits::default().max_host_calls as usize
}

#[tokio::test]
async fn flood_send_allowed() {
    // Requests to the base URL: 16 are sent, the rest are refused, and refusals count as calls.
    let sandbox = corpus_sandbox(|_| {});
    let (run, server) = run_flood(&sandbox, "send-allowed", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(server.hits(), Limits::default().max_requests as usize);
    assert_eq!(run.record.host_calls.len(), budget());
    assert!(run.record.denials.iter().all(|d| d.kind == DenialKind::RequestBudget));
    assert_eq!(run.record.denials.len(), budget() - Limits::default().max_requests as usize);
    assert!(run.record.dropped.is_empty(), "{:?}", run.record.dropped);
}

#[tokio::test]
async fn flood_send_refused() {
    // The loop of the issue: a request to an origin the manifest does not declare, refused before
    // any DNS lookup, again and again. Before the host-call budget it grew the record without end.
    let sandbox = corpus_sandbox(|_| {});
    let (run, server) = run_flood(&sandbox, "send-refused", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(server.hits(), 0);
    assert_eq!(run.record.host_calls.len(), budget());
    // The first requests are refused for their origin, the rest for the spent request budget.
    let kinds: Vec<DenialKind> = run.record.denials.iter().map(|d| d.kind).collect();
    let requests = Limits::default().max_requests as usize;
    assert_eq!(kinds.len(), budget());
    assert!(kinds[..requests].iter().all(|k| *k == DenialKind::Origin), "{kinds:?}");
    assert!(kinds[requests..].iter().all(|k| *k == DenialKind::RequestBudget), "{kinds:?}");
    assert!(run.record.trap.as_ref().unwrap().message.contains("256 host calls"), "{:?}", run.record.trap);
}

#[tokio::test]
async fn flood_send_for_token() {
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "send-for-token", AUTH_REF, LimitKind::HostCalls).await;
    let kept = run.record.host_calls.iter().filter(|c| c.token_kept).count();
    assert_eq!(kept, Limits::default().max_requests as usize, "one token per request sent");
    assert!(!serde_json::to_string(&run).unwrap().contains(ISSUED_TOKEN));
    assert_no_canary(&run);
}

#[tokio::test]
async fn flood_resolve_keep() {
    // Every resolve is a new handle to the same secret; a guest holding `max-handles` is stopped.
    let sandbox = corpus_sandbox(|c| c.limits.max_handles = 64);
    let (run, _server) = run_flood(&sandbox, "resolve-keep", AUTH_REF, LimitKind::Handles).await;
    assert_eq!(run.record.host_calls.len(), 65, "the 65th handle did not fit");
    assert!(run.record.trap.as_ref().unwrap().message.contains("64 live handles"));
}

#[tokio::test]
async fn flood_resolve_drop() {
    // Handles given back are not counted against `max-handles`, but each resolve is a call.
    let sandbox = corpus_sandbox(|c| c.limits.max_handles = 64);
    let (run, _server) = run_flood(&sandbox, "resolve-drop", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(run.record.host_calls.len(), budget());
    assert!(run.record.host_calls.iter().all(|c| c.operation == "resolve" && c.error.is_none()));
}

#[tokio::test]
async fn flood_resolve_foreign() {
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "resolve-foreign", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(run.record.denials.len(), budget());
    assert!(run.record.denials.iter().all(|d| d.kind == DenialKind::SecretRef));
}

#[tokio::test]
async fn flood_reveal() {
    // The manifest asks for `reveal-secrets`; this operator withholds it.
    let sandbox = corpus_sandbox(|c| c.allow_reveal_secrets = false);
    let (run, _server) = run_flood(&sandbox, "reveal", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(run.record.denials.len(), budget() - 1);
    assert!(run.record.denials.iter().all(|d| d.kind == DenialKind::Reveal));
    assert_no_canary(&run);
}

#[tokio::test]
async fn flood_sign_jwt() {
    let sandbox = corpus_sandbox(|c| c.allow_sign_jwt = false);
    let (run, _server) = run_flood(&sandbox, "sign-jwt", KEY_REF, LimitKind::HostCalls).await;
    assert_eq!(run.record.denials.len(), budget() - 1);
    assert!(run.record.denials.iter().all(|d| d.kind == DenialKind::SignJwt));
}

#[tokio::test]
async fn flood_sign_jwt_keep() {
    // Permitted signing: every token is a secret the host must redact from all the invocation
    // produces, so their number is bounded too.
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "sign-jwt-keep", KEY_REF, LimitKind::SecretValues).await;
    let signed = run.record.host_calls.iter().filter(|c| c.operation == "sign-jwt").count();
    assert!((60..=64).contains(&signed), "{signed} tokens signed");
    assert!(!serde_json::to_string(&run).unwrap().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn flood_log_empty() {
    // An empty line is not free: each costs a fixed overhead against the log budget.
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "log-empty", AUTH_REF, LimitKind::LogBytes).await;
    let lines = Limits::default().max_log_bytes / stella_runtime::limits::LOG_LINE_OVERHEAD;
    assert_eq!(run.record.logs.len() as u64, lines);
    assert_eq!(run.record.dropped.logs, 1, "the line that did not fit is counted");
}

#[tokio::test]
async fn flood_log_long() {
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "log-long", AUTH_REF, LimitKind::LogBytes).await;
    assert!(run.record.logs.is_empty());
    assert_eq!(run.record.dropped.logs, 1);
}

#[tokio::test]
async fn flood_stdout() {
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "stdout", AUTH_REF, LimitKind::LogBytes).await;
    let max = Limits::default().max_log_bytes as usize;
    assert!(run.record.stdout.len() <= max && run.record.stdout.len() > max / 2, "{}", run.record.stdout.len());
    assert!(run.record.stdout.starts_with("line 1 of a flood on stdout\n"));
    assert!(run.record.dropped.stdout_bytes > 0);
}

#[tokio::test]
async fn flood_stderr() {
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "stderr", AUTH_REF, LimitKind::LogBytes).await;
    assert!(run.record.stderr.starts_with("line 1 of a flood on stderr\n"));
    assert!(run.record.stdout.is_empty());
    assert!(run.record.dropped.stderr_bytes > 0);
}

#[tokio::test]
async fn flood_wasi_socket() {
    // Sockets are refused before one is opened in the host, and each attempt is a call.
    let sandbox = corpus_sandbox(|_| {});
    let (run, _server) = run_flood(&sandbox, "wasi-socket", AUTH_REF, LimitKind::HostCalls).await;
    assert_eq!(run.record.denials.len(), budget());
    assert!(run.record.denials.iter().all(|d| d.kind == DenialKind::WasiSocket));
    assert_eq!(run.record.host_calls[0].operation, "create-tcp-socket");
}

#[tokio::test]
async fn flood_wasi_pollables() {
    // WASI's own resources live in the same bounded table as the host's.
    let sandbox = corpus_sandbox(|_| {});
    let (_run, _server) = run_flood(&sandbox, "wasi-pollables", AUTH_REF, LimitKind::Handles).await;
}

#[tokio::test]
async fn flood_secret_method() {
    // A call that leaves nothing behind is as free as a loop: the deadline bounds it.
    let sandbox = corpus_sandbox(|c| c.limits.deadline_ms = 300);
    let (run, _server) = run_flood(&sandbox, "secret-method", AUTH_REF, LimitKind::Deadline).await;
    assert_eq!(run.record.host_calls.len(), 1, "only the resolve is recorded");
}

async fn oversized_case(which: &str) -> Invocation<TestOutcome> {
    let server = StubServer::start().await;
    let sandbox = corpus_sandbox(|_| {});
    let c = load(&sandbox, OVERSIZED);
    let run = sandbox.test_connection(&c, &integration(Some(&server.url()), None, json!({ "oversized": which }))).await;
    assert_record_bounded(&run);
    assert_host_still_works(&sandbox).await;
    assert_eq!(server.hits(), 0, "nothing oversized reached the server");
    run
}

#[tokio::test]
async fn oversized() {
    let sandbox = corpus_sandbox(|_| {});
    let c = load(&sandbox, OVERSIZED);
    let run = sandbox.test_connection(&c, &integration(None, None, json!({ "oversized": "?" }))).await;
    let known = run.result.message.split_once("known: ").unwrap().1;
    assert_eq!(known.split(", ").collect::<Vec<_>>(), OVERSIZED_CASES);
    assert_eq!(TESTED_OVERSIZED, OVERSIZED_CASES, "each case has its test");
}

#[tokio::test]
async fn oversized_result_message() {
    // 1 MiB of message is passed (it is under the transfer limit) and cut to 4 KiB.
    let run = oversized_case("result-message").await;
    assert!(run.result.success);
    assert!(run.result.message.len() <= 4096 + 3 && run.result.message.ends_with('…'));
}

#[tokio::test]
async fn oversized_result_steps() {
    let run = oversized_case("result-steps").await;
    assert!(run.result.success);
    assert_eq!(run.result.steps.len(), 64);
    assert!(run.result.steps.iter().all(|s| s.name.len() <= 128 + 3));
}

#[tokio::test]
async fn oversized_result_facts() {
    let run = oversized_case("result-facts").await;
    let facts = &run.result.facts;
    assert!(facts.provider_version.as_ref().unwrap().len() <= 256 + 3);
    assert!(facts.credential_expires_at.as_ref().unwrap().len() <= 256 + 3);
}

#[tokio::test]
async fn oversized_result_huge() {
    // 8 MiB of result: more than one call may pass to the host.
    let run = oversized_case("result-huge").await;
    assert_stopped_by(&run, LimitKind::TransferBytes);
}

#[track_caller]
fn assert_refused_request(run: &Invocation<TestOutcome>, says: &str) {
    assert!(!run.result.success);
    let call = run.record.host_calls.iter().find(|c| c.interface == Interface::Http).expect("the call is recorded");
    assert_eq!(call.error.as_deref(), Some("invalid-request"), "{call:?}");
    assert!(call.error_message.as_deref().unwrap().contains(says), "{call:?}");
    assert!(call.target.len() <= stella_runtime::record::MAX_ENTRY_TEXT + 3);
}

#[tokio::test]
async fn oversized_request_headers() {
    assert_refused_request(&oversized_case("request-headers").await, "more than 64 headers");
}

#[tokio::test]
async fn oversized_request_url() {
    assert_refused_request(&oversized_case("request-url").await, "longer than 8192");
}

#[tokio::test]
async fn oversized_request_body() {
    assert_refused_request(&oversized_case("request-body").await, "larger than 1048576");
}

#[tokio::test]
async fn oversized_token_pointers() {
    assert_refused_request(&oversized_case("token-pointers").await, "between 1 and 8 token pointers");
}

#[tokio::test]
async fn oversized_aliased_headers() {
    // 100,000 headers whose values all point at the same 1 KiB: 2 MiB of guest memory that a host
    // copying every string would turn into 100 MiB of its own. The copy stops at the transfer limit.
    let run = oversized_case("aliased-headers").await;
    assert_stopped_by(&run, LimitKind::TransferBytes);
    assert!(run.record.host_calls.is_empty(), "the call never reached the import");
}

#[tokio::test]
async fn oversized_random_bytes() {
    let run = oversized_case("random-bytes").await;
    assert_stopped_by(&run, LimitKind::TransferBytes);
}

/// The conformance kit against two connectors it must fail: `well_behaved`, a naive probe (one
/// GET with the bearer token, redirects followed, any 2xx a success), and `canary_reveal`, which
/// reads the secret's value and puts it in a query string, where the host's record cannot see it
/// but the impostor does.
#[tokio::test]
async fn the_conformance_kit_fails_a_naive_probe_and_a_connector_that_leaks_the_value() {
    use stella_runtime::IntegrationType;
    use stella_runtime::conformance::{self, Impostor, Operation, Options};
    let options = |integration_type| Options {
        integration_type,
        configuration: json!({}),
        credential: CANARY.into(),
        sandbox: SandboxConfig {
            limits: Limits { deadline_ms: 2_000, ..Limits::default() },
            ..SandboxConfig::default()
        },
    };
    let naive = std::fs::read(WELL_BEHAVED).unwrap();
    let report = conformance::run(&naive, ConnectorSource::BuiltIn, options(IntegrationType::Host)).await.unwrap();
    assert!(!report.passed && !report.untested, "{report:#?}");
    let case =
        |impostor, operation| report.cases.iter().find(|c| c.impostor == impostor && c.operation == operation).unwrap();
    // `{}` and an HTML page are "success".
    for impostor in [Impostor::EmptyJson, Impostor::HtmlPage] {
        for operation in [Operation::TestConnection, Operation::CheckHealth] {
            let c = case(impostor, operation);
            assert!(c.claimed_success && c.credential_sent, "{c:?}");
        }
    }
    assert_eq!(report.false_greens, 4, "{report:#?}");
    // The token went to every impostor that let a request through; not past a certificate for
    // another host, which the host refused before anything was written.
    let tls = case(Impostor::WrongCertificate, Operation::TestConnection);
    assert_eq!(
        (tls.failure, tls.class_fits, tls.credential_sent, tls.requests),
        (Some(FailureClass::Tls), true, false, 0)
    );
    let silent = case(Impostor::Silent, Operation::TestConnection);
    assert_eq!(
        (silent.failure, silent.within_deadline, silent.credential_sent),
        (Some(FailureClass::Timeout), true, true)
    );
    assert!(silent.duration_ms < 2_000, "{silent:?}");
    assert_eq!(report.credentials_sent, 12, "{report:#?}");
    // A 500 is `provider-down`, which fits; an intranet's 401 is not an outage.
    assert!(case(Impostor::ServerError, Operation::CheckHealth).class_fits);
    assert!(!case(Impostor::BasicPrompt, Operation::TestConnection).class_fits);

    // The value itself in a query string: only the impostor sees it.
    let leaking = std::fs::read(CANARY_REVEAL).unwrap();
    let report =
        conformance::run(&leaking, ConnectorSource::BuiltIn, options(IntegrationType::Registry)).await.unwrap();
    let empty = report.cases.iter().find(|c| c.impostor == Impostor::EmptyJson).unwrap();
    assert!(empty.claimed_success && empty.credential_sent && empty.requests >= 4, "{empty:?}");
    assert!(!report.passed);
}
