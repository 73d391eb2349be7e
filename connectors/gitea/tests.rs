//! The `gitea` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

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
    let (h, stub) = Harness::with_stub("gitea").await;
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
    let (h, stub) = Harness::with_stub("gitea").await;
    serve_gitea(&stub, "1.22.3");
    let config =
        h.integration(IntegrationType::Ci, &stub.base_url, json!({"repository": "platform/api", "needsPush": true}));
    h.assert_fails(&config, FailureClass::Permission, "repository", "push").await;

    stub.on(
        "GET",
        "/api/v1/user",
        Canned::json(
            401,
            json!({"message": "user does not exist [uid: 0, name: ]", "url": "https://gitea.example.com/api/swagger"}),
        ),
    );
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
    assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));
    stub.on(
        "GET",
        "/api/v1/user",
        Canned::json(403, json!({"message": "token does not have at least one of required scope(s): [read:user]", "url": "https://gitea.example.com/api/swagger"})),
    );
    h.assert_fails(&config, FailureClass::Permission, "credential", "read:user").await;

    serve_gitea(&stub, "1.22.3");
    stub.on("GET", "/api/v1/repos/platform/api", Canned::json(404, json!({"errors": null, "message": "The target couldn't be found.", "url": "https://gitea.example.com/api/swagger"})));
    assert_failed(&h.test(&config).await, FailureClass::NotFound, "repository");
}

#[tokio::test]
async fn other_servers_outages_and_rate_limits_are_classed() {
    let (h, stub) = Harness::with_stub("gitea").await;
    let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({}));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitea");
    // Something with a `version` but not Gitea's API settings.
    stub.on("GET", "/api/v1/version", Canned::json(200, json!({"version": "3.1"})));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-gitea");
    assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()), "the token went to a non-Gitea server");

    serve_gitea(&stub, "1.22.3");
    stub.on("GET", "/api/v1/version", Canned::new(429).header("Retry-After", "5").header("X-RateLimit-Remaining", "0"));
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
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, &stub.base_url, bad)).await;
    }
}
