//! The `http-probe` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
    let (h, stub) = Harness::with_stub("http-probe").await;
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
    let (h, stub) = Harness::with_stub("http-probe").await;
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
    h.assert_fails(&config, FailureClass::ProviderMismatch, "status", "/login").await;
    assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);
}

#[tokio::test]
async fn provider_answers_map_to_failure_classes_and_health() {
    let (h, stub) = Harness::with_stub("http-probe").await;
    let config = h.integration(IntegrationType::Host, &stub.base_url, expectations());
    let path = "/api/status?verbose=1";
    let cases = [
        (
            Canned::json(401, json!({"error": "invalid token"})).header("WWW-Authenticate", "Bearer"),
            FailureClass::Auth,
            HealthStatus::Unhealthy,
        ),
        (Canned::json(403, json!({"error": "insufficient scope"})), FailureClass::Permission, HealthStatus::Unhealthy),
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
    let (h, stub) = Harness::with_stub("http-probe").await;
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
    let (h, stub) = Harness::with_stub("http-probe").await;
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
