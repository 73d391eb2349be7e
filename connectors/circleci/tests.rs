//! The `circleci` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
    let (h, stub) = Harness::with_stub("circleci").await;
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
    let (h, stub) = Harness::with_stub("circleci").await;
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
    h.assert_fails(&config, FailureClass::NotFound, "project", "Project not found").await;

    serve_circleci(&stub);
    stub.on_authorized(
        "GET",
        "/api/v2/me",
        Canned::json(429, json!({"message": "Rate limit exceeded"}))
            .header("Retry-After", "17")
            .header("X-RateLimit-Remaining", "0"),
    );
    h.assert_rate_limited(&config, "credential", Some("retry after 17"), true).await;

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
    h.assert_mismatch_gets_no_credential(&config, &stub, "is-circleci", "circle-token").await;
}

#[tokio::test]
async fn impostors_get_no_credential() {
    super::bitbucket::impostors::assert_impostors_are_refused("circleci", IntegrationType::Ci, settings()).await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_before_any_request() {
    let (h, stub) = Harness::with_stub("circleci").await;
    for bad in [
        json!({"project": "acme/api"}),
        json!({"project": "gh/acme/.."}),
        json!({"project": "gl/acme/api"}),
        json!({"project": "circleci/acme/api"}),
        json!({"project": "gh/acme/api/../x"}),
        json!({"projectSlug": "gh/acme/api"}),
    ] {
        h.assert_misconfigured(&h.integration(IntegrationType::Ci, &stub.base_url, bad.clone())).await;
    }
    for base in ["http://circleci.com", "https://app.circleci.com"] {
        h.assert_misconfigured(&h.integration(IntegrationType::Ci, base, json!({}))).await;
    }
    h.assert_needs_a_credential(h.integration(IntegrationType::Ci, &stub.base_url, json!({})), &stub).await;
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
    let (h, stub) = Harness::pinned_with_stub("circleci", &CLOUD_HOSTS).await;
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
    let (h, stub) = Harness::pinned_with_stub("circleci", &CLOUD_HOSTS).await;
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
    h.assert_fails(&config, FailureClass::Permission, "project", "Permission denied").await;
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
    h.assert_rate_limited(&config, "credential", Some("retry after 17"), true).await;

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
    let (h, stub) = Harness::pinned_with_stub("circleci", &CLOUD_HOSTS).await;
    for base in [
        "http://circleci.com",
        "http://circleci.com/api/v2",
        "https://app.circleci.com",
        "https://www.circleci.com",
        "https://circleci.com/gh/acme",
        "https://circleci.com:8443",
        "https://circleci.com/api/v1.1",
    ] {
        let outcome = h.assert_misconfigured(&h.integration(IntegrationType::Ci, base, cloud_settings(&stub))).await;
        assert!(outcome.message.contains("`https://circleci.com`"), "{base}: {outcome:?}");
    }
    assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
}
