//! The `gitlab` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
        Canned::json(
            200,
            json!({"id": 7, "name": "stella", "revoked": false, "active": true, "scopes": scopes,
                                 "user_id": 42, "expires_at": expires_at, "created_at": "2026-01-05T10:00:00.000Z"}),
        ),
    )
    .on(
        "GET",
        "/api/v4/projects/platform%2Fapi",
        Canned::json(200, json!({"id": 11, "path_with_namespace": "platform/api"})),
    );
}

fn settings() -> Value {
    json!({"project": "platform/api"})
}

#[tokio::test]
async fn a_token_with_its_scopes_passes_and_reports_version_and_expiry() {
    let (h, stub) = Harness::with_stub("gitlab").await;
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
    let (h, stub) = Harness::with_stub("gitlab").await;
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
    let (h, stub) = Harness::with_stub("gitlab").await;
    let config = h.integration(IntegrationType::Scm, &stub.base_url, settings());

    serve_gitlab(&stub, "2027-03-31", json!(["read_api"]));
    stub.on("GET", "/api/v4/version", Canned::json(401, json!({"message": "401 Unauthorized"})));
    let outcome = h.test(&config).await;
    assert_failed(&outcome, FailureClass::Auth, "credential");
    assert!(outcome.steps.iter().any(|s| s.name == "is-gitlab" && s.passed), "GitLab's own 401 still identifies it");
    assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy);

    stub.on(
        "GET",
        "/api/v4/version",
        Canned::json(401, json!({"error": "invalid_token", "error_description": "Token has expired."})).header(
            "WWW-Authenticate",
            r#"Bearer realm="", error="invalid_token", error_description="Token has expired.""#,
        ),
    );
    h.assert_fails(&config, FailureClass::Auth, "credential", "Token has expired.").await;

    // A token GitLab accepts but whose scopes do not reach the API.
    serve_gitlab(&stub, "2027-03-31", json!(["read_repository"]));
    h.assert_fails(&config, FailureClass::Permission, "token", "read_api").await;
    stub.on(
        "GET",
        "/api/v4/user",
        Canned::json(403, json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api read_api read_user"})),
    );
    assert_failed(&h.test(&config).await, FailureClass::Permission, "credential");

    serve_gitlab(&stub, "2027-03-31", json!(["read_api"]));
    stub.on("GET", "/api/v4/projects/platform%2Fapi", Canned::json(404, json!({"message": "404 Project Not Found"})));
    assert_failed(&h.test(&config).await, FailureClass::NotFound, "project");
}

#[tokio::test]
async fn rate_limits_outages_and_other_servers_are_classed() {
    let (h, stub) = Harness::with_stub("gitlab").await;
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
