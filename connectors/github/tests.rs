//! The `github` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
    let (h, stub) = Harness::with_stub("github").await;
    serve_github(&stub, Some("repo, read:org"), &format!("{} 09:00:00 UTC", date_in(30)));
    let config = h.integration(
        IntegrationType::Scm,
        &stub.base_url,
        json!({"requiredScopes": ["public_repo", "read:org"], "repository": "acme/api"}),
    );
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-github", "credential", "token", "repository"]);
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
    let (h, stub) = Harness::with_stub("github").await;
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
    let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"requiredScopes": ["repo", "workflow"]}));
    h.assert_fails(&config, FailureClass::Permission, "token", "lacks the scopes repo (it has: public_repo, workflow)")
        .await;
}

#[tokio::test]
async fn github_refusals_map_to_failure_classes() {
    let (h, stub) = Harness::with_stub("github").await;
    serve_github(&stub, Some("repo"), "2027-01-01 00:00:00 UTC");
    let config =
        h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "acme/api", "needsPush": true}));
    assert_failed(&h.test(&config).await, FailureClass::Permission, "repository");

    // A bad or expired token: nothing is tried after the 401.
    stub.on("GET", "/api/v3/user", bad_credentials());
    let before = stub.seen().len();
    h.assert_fails(&config, FailureClass::Auth, "credential", "Bad credentials").await;
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
    assert_eq!((outcome.steps[2].message.as_str(), outcome.facts.provider_version.as_deref()), ("GitHub.com", None));
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
    let (h, stub) = Harness::with_stub("github").await;
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
        let outcome = h.assert_misconfigured(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
        assert!(outcome.message.contains(why), "{bad}: {outcome:?}");
    }
}
