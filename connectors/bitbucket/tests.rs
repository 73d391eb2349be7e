//! The `bitbucket` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

/// The conformance kit's impostors behind the integration's base URL (an empty JSON object,
/// an HTML page, an intranet's Basic prompt, a 500, silence, a certificate for another host, a
/// redirect to a login page), run by the kit itself: none may succeed, each must be classed
/// as it is, and the credential must never reach one. Shared by the Bitbucket, Azure DevOps
/// and CircleCI tests.
pub mod impostors {
    use stella_runtime::conformance::{self, Impostor, Operation, Options};

    use super::*;

    /// The class each impostor must be reported as (one of those the kit lets fit).
    fn expected(impostor: Impostor) -> FailureClass {
        match impostor {
            Impostor::EmptyJson | Impostor::HtmlPage | Impostor::BasicPrompt | Impostor::LoginRedirect => {
                FailureClass::ProviderMismatch
            }
            Impostor::ServerError => FailureClass::ProviderDown,
            Impostor::Silent => FailureClass::Timeout,
            Impostor::WrongCertificate => FailureClass::Tls,
        }
    }

    pub async fn assert_impostors_are_refused(provider: &str, kind: IntegrationType, configuration: Value) {
        let (_, wasm) = stella_builtin_connectors::BUILTINS.iter().find(|(p, _)| *p == provider).unwrap();
        let sandbox = SandboxConfig {
            cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
            connect_timeout_ms: 1_000,
            request_timeout_ms: 1_500,
            ..SandboxConfig::default()
        };
        let options = Options { integration_type: kind, configuration, credential: SECRET.to_string(), sandbox };
        let report = conformance::run(wasm, ConnectorSource::BuiltIn, options).await.unwrap();
        assert!(report.passed && !report.untested, "{provider}: {report:?}");
        assert_eq!(report.cases.len(), Impostor::ALL.len() * 2, "{provider}: both exports against each");
        for case in &report.cases {
            let what = format!("{provider} {} vs {}: {case:?}", case.operation.as_str(), case.impostor.name());
            assert!(!case.claimed_success && !case.credential_sent && case.within_deadline, "{what}");
            assert_eq!(case.failure, Some(expected(case.impostor)), "{what}");
            // The certificate case is refused before a request is made; every other one asked.
            assert!(case.asked || case.impostor == Impostor::WrongCertificate, "{what}");
        }
        let health = report.cases.iter().filter(|c| c.operation == Operation::CheckHealth);
        assert_eq!(health.count(), Impostor::ALL.len());
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
    let (h, stub) = Harness::with_stub("bitbucket").await;
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
    let (h, stub) = Harness::with_stub("bitbucket").await;
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
    assert!(outcome.message.contains("Authentication failed.") && outcome.message.contains("CAPTCHA"), "{outcome:?}");
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
    h.assert_fails(&config, FailureClass::Permission, "repository", "not permitted").await;

    // Readable, but not among the repositories the user may write to.
    serve_bitbucket(&stub);
    stub.on(
        "GET",
        WRITABLE,
        Canned::json(200, json!({"size": 0, "limit": 100, "isLastPage": true, "start": 0, "values": []})),
    );
    h.assert_fails(&config, FailureClass::Permission, "repository", "REPO_WRITE").await;
    // The health check does not ask for write access.
    assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
}

#[tokio::test]
async fn rate_limits_outages_and_other_servers_are_classed() {
    let (h, stub) = Harness::with_stub("bitbucket").await;
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
    h.assert_rate_limited(&config, "repository", Some("retry after 2"), true).await;

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
    let (h, stub) = Harness::with_stub("bitbucket").await;
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
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
    }
    // A Bitbucket Cloud host spelled otherwise is not taken for a Data Center.
    for base in ["http://bitbucket.org", "https://bitbucket.org/acme"] {
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, base, json!({"repository": "acme/api"}))).await;
    }
    h.assert_needs_a_credential(
        h.integration(IntegrationType::Scm, &stub.base_url, json!({"repository": "PLAT/api"})),
        &stub,
    )
    .await;
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
    let (h, stub) = Harness::pinned_with_stub("bitbucket", &CLOUD_HOSTS).await;
    serve_bitbucket_cloud(&stub);
    // An Atlassian API token with the account's email, an app password with the username.
    for username in ["ci-bot@acme.example", "ci-bot"] {
        let settings =
            cloud_settings(&stub, json!({"repository": "acme/api", "username": username, "needsWrite": true}));
        let config = h.integration(IntegrationType::Scm, "https://bitbucket.org", settings);
        let before = stub.seen().len();
        let outcome = h.test(&config).await;
        assert!(outcome.success, "{username}: {outcome:?}");
        assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-bitbucket", "credential", "repository"]);
        assert!(outcome.steps[2].message.contains("`api.bitbucket.org` over HTTPS"), "{outcome:?}");
        assert!(outcome.steps[3].message.contains("`CI Bot`"), "{outcome:?}");
        assert!(outcome.steps[4].message.contains("readable and writable"), "{outcome:?}");
        assert_eq!((outcome.facts.provider_version.as_deref(), outcome.facts.rate_limit_remaining), (None, None));
        // Every request, the first included, carries the credential as HTTP basic.
        let basic = format!("Basic {}", super::http_probe::base64_encode(format!("{username}:{SECRET}").as_bytes()));
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
    let settings = cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot", "needsWrite": true}));
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
    let (h, stub) = Harness::pinned_with_stub("bitbucket", &CLOUD_HOSTS).await;
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
    h.assert_fails(
        &writable,
        FailureClass::Permission,
        "repository",
        "the access token may read `acme/api` but not write to it",
    )
    .await;
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
    h.assert_fails(&config, FailureClass::Auth, "credential", "Token is invalid, expired").await;
    assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));
}

#[tokio::test]
async fn bitbucket_cloud_refusals_map_to_failure_classes() {
    let (h, stub) = Harness::pinned_with_stub("bitbucket", &CLOUD_HOSTS).await;
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
    h.assert_fails(&config, FailureClass::Auth, "credential", "status 401").await;
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
    h.assert_rate_limited(&config, "repository", None, false).await;

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
    let (h, stub) = Harness::pinned_with_stub("bitbucket", &CLOUD_HOSTS).await;
    for base in [
        "http://api.bitbucket.org/2.0",
        "http://www.bitbucket.org",
        "https://api.bitbucket.org/1.0",
        "https://api.bitbucket.org/2.0/repositories",
        "https://bitbucket.org:8443",
        "https://www.bitbucket.org/acme/api",
    ] {
        let settings = cloud_settings(&stub, json!({"repository": "acme/api", "username": "ci-bot"}));
        let outcome = h.assert_misconfigured(&h.integration(IntegrationType::Scm, base, settings)).await;
        assert!(outcome.message.contains("`https://bitbucket.org`"), "{base}: {outcome:?}");
    }
    // A Data Center personal project (`~user/repo`) is no Cloud workspace.
    let settings = cloud_settings(&stub, json!({"repository": "~jdoe/api", "username": "ci-bot"}));
    let outcome = h.test(&h.integration(IntegrationType::Scm, "https://bitbucket.org", settings)).await;
    assert_failed(&outcome, FailureClass::Misconfigured, "configuration");
    assert!(outcome.message.contains("`workspace/repo`"), "{outcome:?}");
    assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
}
