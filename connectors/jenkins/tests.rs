//! The `jenkins` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

/// A Jenkins 2.462 controller: every answer carries `X-Jenkins`, as Jenkins sends it.
fn jenkins(status: u16, body: Value) -> Canned {
    Canned::json(status, body).header("X-Jenkins", "2.462.3").header("X-Hudson", "1.395")
}

fn serve_jenkins(stub: &Stub) {
    stub.on(
        "GET",
        "/api/json?tree=mode,useSecurity",
        jenkins(200, json!({"_class": "hudson.model.Hudson", "mode": "NORMAL", "useSecurity": true})),
    )
    .on("GET", "/me/api/json", jenkins(200, json!({"_class": "hudson.model.User", "id": "ci-bot", "fullName": "CI Bot"})))
    .on(
        "GET",
        "/crumbIssuer/api/json",
        jenkins(200, json!({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": "0f3c", "crumbRequestField": "Jenkins-Crumb"})),
    );
}

#[tokio::test]
async fn a_user_with_an_api_token_passes_with_the_version_and_crumb() {
    let (h, stub) = Harness::with_stub("jenkins").await;
    serve_jenkins(&stub);
    let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot", "checkCrumb": true}));
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-jenkins", "credential", "permission", "crumb"]);
    assert_eq!(outcome.facts.provider_version.as_deref(), Some("2.462.3"));
    let basic = format!("Basic {}", super::http_probe::base64_encode(format!("ci-bot:{SECRET}").as_bytes()));
    let seen = stub.seen();
    assert_eq!(seen[0].header("authorization"), None, "the first request proves it is Jenkins without the token");
    assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(basic.as_str())));
    assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
}

#[tokio::test]
async fn rejected_tokens_missing_read_and_missing_crumbs_are_told_apart() {
    let (h, stub) = Harness::with_stub("jenkins").await;
    let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot", "checkCrumb": true}));

    serve_jenkins(&stub);
    stub.on(
        "GET",
        "/api/json?tree=mode,useSecurity",
        jenkins(401, json!({})).header("WWW-Authenticate", r#"Basic realm="Jenkins""#),
    );
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
    // The health check proves Jenkins anonymously, then asks `/me/api/json` with the token.
    stub.on("GET", "/me/api/json", jenkins(401, json!({})).header("WWW-Authenticate", r#"Basic realm="Jenkins""#));
    let before = stub.seen().len();
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)), "{health:?}");
    let seen = stub.seen();
    assert_eq!(seen.len() - before, 2, "two requests");
    assert_eq!(seen[before].header("authorization"), None, "the proof goes without the token");
    serve_jenkins(&stub);
    // Jenkins's Basic-auth entry point answers a wrong token without `X-Jenkins`; the
    // anonymous answer has already proven Jenkins, so it is still `auth`.
    stub.on("GET", "/api/json?tree=mode,useSecurity", jenkins(403, json!({})));
    stub.on_authorized(
        "GET",
        "/api/json?tree=mode,useSecurity",
        Canned::new(401).header("WWW-Authenticate", r#"Basic realm="Jenkins""#),
    );
    let outcome = h.test(&config).await;
    assert_failed(&outcome, FailureClass::Auth, "credential");
    assert_eq!(outcome.facts.provider_version.as_deref(), Some("2.462.3"));
    stub.clear();

    stub.on("GET", "/api/json?tree=mode,useSecurity", jenkins(403, json!({})));
    assert_failed(&h.test(&config).await, FailureClass::Permission, "permission");

    serve_jenkins(&stub);
    stub.on("GET", "/me/api/json", jenkins(200, json!({"id": "anonymous", "fullName": "anonymous"})));
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

    serve_jenkins(&stub);
    stub.on("GET", "/crumbIssuer/api/json", jenkins(404, json!({})));
    assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "crumb");
}

#[tokio::test]
async fn other_servers_and_outages_are_classed() {
    let (h, stub) = Harness::with_stub("jenkins").await;
    let config = h.integration(IntegrationType::Ci, &stub.base_url, json!({"username": "ci-bot"}));
    // A web server that answers JSON but is not Jenkins.
    stub.on("GET", "/api/json?tree=mode,useSecurity", Canned::json(200, json!({"mode": "NORMAL"})));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-jenkins");
    assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()), "the token went to a non-Jenkins server");
    stub.on("GET", "/api/json?tree=mode,useSecurity", Canned::new(503).body("Jenkins is getting ready to work"));
    assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-jenkins");
    assert_eq!(h.health(&config).await.failure, Some(FailureClass::ProviderDown));

    for bad in [json!({}), json!({"username": "a:b"}), json!({"username": "ci", "checkCrumb": "yes"})] {
        h.assert_misconfigured(&h.integration(IntegrationType::Ci, &stub.base_url, bad)).await;
    }
}
