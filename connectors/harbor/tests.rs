//! The `harbor` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

const UNAUTHORIZED: fn() -> Canned =
    || Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}));

/// A Harbor v2.11 as its API reference documents the answers.
fn serve_harbor(stub: &Stub) {
    stub.on("GET", "/api/v2.0/ping", Canned::new(200).header("Content-Type", "text/plain; charset=utf-8").body("Pong"))
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
        .on("GET", "/api/v2.0/projects/library", Canned::json(200, json!({"project_id": 1, "name": "library"})));
}

fn settings() -> Value {
    json!({"username": "ci-bot", "project": "library"})
}

#[tokio::test]
async fn a_harbor_user_with_project_access_passes_and_reports_the_version() {
    let (h, stub) = Harness::with_stub("harbor").await;
    serve_harbor(&stub);
    let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-harbor", "credential", "project"]);
    assert_eq!(outcome.facts.provider_version.as_deref(), Some("v2.11.1-6b7ecba1"));
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/api/v2.0/ping");
    assert_eq!(seen[0].header("authorization"), None, "the ping needs no credential");
    assert_eq!(seen[0].header("accept"), Some("text/plain"), "the ping produces text/plain only (JSON would be 406)");
    assert_eq!((seen[1].path.as_str(), seen[1].header("authorization")), ("/api/v2.0/systeminfo", None));
    let current = seen.iter().find(|s| s.path == "/api/v2.0/users/current").expect("the user was read");
    assert_eq!(current.header("authorization"), Some(format!("Basic {}", b64(&format!("ci-bot:{SECRET}"))).as_str()));
    let project = seen.iter().find(|s| s.path == "/api/v2.0/projects/library").unwrap();
    assert_eq!(project.header("x-is-resource-name"), Some("true"));

    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
}

#[tokio::test]
async fn a_robot_account_is_checked_without_reading_a_user() {
    let (h, stub) = Harness::with_stub("harbor").await;
    serve_harbor(&stub);
    stub.on("GET", "/api/v2.0/users/current", UNAUTHORIZED());
    let config =
        h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "robot$ci", "project": "library"}));
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
    h.assert_fails(&config, FailureClass::Auth, "credential", "UNAUTHORIZED").await;
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));
}

#[tokio::test]
async fn credential_and_project_failures_are_told_apart() {
    let (h, stub) = Harness::with_stub("harbor").await;
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
    let (h, stub) = Harness::with_stub("harbor").await;
    let config = h.integration(IntegrationType::Registry, &stub.base_url, settings());
    // A generic web server: 404 pages everywhere.
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-harbor");
    assert_eq!(h.health(&config).await.failure, Some(FailureClass::ProviderMismatch));
    // A catch-all that answers 200 to anything, even `Pong`, but has no Harbor system info.
    stub.on("GET", "/api/v2.0/ping", Canned::new(200).body("Pong"));
    stub.on("GET", "/api/v2.0/systeminfo", Canned::new(200).header("Content-Type", "text/html").body("<html></html>"));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-harbor");
    assert!(
        stub.seen().iter().all(|s| s.header("authorization").is_none()),
        "a credential went to a non-Harbor server"
    );
}

#[tokio::test]
async fn outages_and_failing_components_are_down_or_degraded() {
    let (h, stub) = Harness::with_stub("harbor").await;
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
    let (h, stub) = Harness::with_stub("harbor").await;
    serve_harbor(&stub);
    for bad in [
        json!({}),
        json!({"username": "ci-bot", "project": "Lib rary"}),
        json!({"username": "ci-bot", "project": "."}),
        json!({"username": "ci-bot", "project": "a..b"}),
        json!({"username": "ci-bot", "projekt": "x"}),
        json!({"username": 7}),
    ] {
        h.assert_misconfigured(&h.integration(IntegrationType::Registry, &stub.base_url, bad.clone())).await;
    }
    assert!(stub.seen().is_empty());
}

fn b64(text: &str) -> String {
    super::http_probe::base64_encode(text.as_bytes())
}
