//! The `oci-registry` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
    h.assert_fails(&wrong, FailureClass::Auth, "credential", "UNAUTHORIZED").await;
    let health = h.health(&wrong).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

    // A repository that does not exist.
    let missing = with(json!({"username": "ci-bot", "repository": "team/nothing-here"}));
    h.assert_fails(&missing, FailureClass::NotFound, "repository", "NAME_UNKNOWN").await;

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
    let (h, stub) = Harness::with_stub("oci-registry").await;
    let token_path = bearer_registry(&stub, "&scope=repository%3Ateam%2Fapp%3Apull");
    stub.on_authorized(
        "GET",
        "/v2/team/app/tags/list?n=1",
        Canned::json(200, json!({"name": "team/app", "tags": ["1.0"]})).header("ratelimit-remaining", "97;w=21600"),
    );
    let config =
        h.integration(IntegrationType::Registry, &stub.base_url, json!({"preset": "ghcr-like-is-not-a-preset"}));
    assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");

    let config =
        h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "octo", "repository": "team/app"}));
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
        Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]})),
    );
    h.assert_fails(&config, FailureClass::Auth, "credential", "incorrect username or password").await;
    // ...or answers without a token.
    stub.on_authorized("GET", &token_path, Canned::json(200, json!({"details": "none"})));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "credential");
}

#[tokio::test]
async fn the_credential_never_goes_to_a_token_service_on_another_origin() {
    let (h, stub) = Harness::with_stub("oci-registry").await;
    let elsewhere = Stub::start().await;
    stub.on(
        "GET",
        "/v2/",
        Canned::json(401, json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}))
            .header("Docker-Distribution-API-Version", "registry/2.0")
            .header("WWW-Authenticate", &format!(r#"Bearer realm="{}/token",service="x""#, elsewhere.base_url)),
    );
    let config = h.integration(IntegrationType::Registry, &stub.base_url, json!({"username": "octo"}));
    h.assert_fails(&config, FailureClass::Misconfigured, "credential", "the credential was not sent").await;
    assert!(elsewhere.seen().is_empty());
    assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()));
}

#[tokio::test]
async fn other_servers_rate_limits_and_outages_are_told_apart() {
    let (h, stub) = Harness::with_stub("oci-registry").await;
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
    let (h, stub) = Harness::with_stub("oci-registry").await;
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
        h.assert_misconfigured(&h.integration(IntegrationType::Registry, &stub.base_url, bad.clone())).await;
    }
    assert!(stub.seen().is_empty());
    // A preset names the hosts it expects.
    let ecr = h.integration(IntegrationType::Registry, &stub.base_url, json!({"preset": "ecr"}));
    assert!(h.test(&ecr).await.message.contains("amazonaws.com"));
}

#[tokio::test]
async fn a_refusal_at_v2_is_about_the_credential() {
    // ECR's Basic challenge, then its documented refusal of an expired password: 403 DENIED.
    let (h, stub) = Harness::with_stub("oci-registry").await;
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
    h.assert_fails(&config, FailureClass::Auth, "credential", "has expired").await;
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));
}
