//! The `azure-devops` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

const COLLECTION: &str = "/tfs/DefaultCollection";
const CONNECTION_DATA: &str = "/tfs/DefaultCollection/_apis/connectionData";
const PROJECT: &str = "/tfs/DefaultCollection/_apis/projects/Fabrikam%20Fiber?api-version=7.1";

/// What Azure DevOps Server answers an anonymous caller: 401 from TFS itself, with its
/// process id and its error in headers (an HTML body).
fn anonymous_refusal() -> Canned {
    Canned::new(401)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6")
        .header("ActivityId", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
        .header("X-TFS-Session", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
        .header("X-VSS-E2EID", "c47aad1e-b494-4e03-837f-6ea9576f9c5a")
        .header(
            "X-TFS-ServiceError",
            "TF400813%3a+Resource+not+available+for+anonymous+access.+Client+authentication+required.",
        )
        .header("WWW-Authenticate", "Bearer")
        .header("WWW-Authenticate", r#"Basic realm="tfs.example.com""#)
        .header("WWW-Authenticate", "Negotiate")
        .header("WWW-Authenticate", "NTLM")
        .body("<html><head><title>TF400813: Resource not available for anonymous access.</title></head></html>")
}

fn connection_data(descriptor: &str, name: &str) -> Value {
    json!({
        "authenticatedUser": {"id": "8d1c3e5a-2b4f-4c6d-9e8f-0a1b2c3d4e5f", "descriptor": descriptor,
            "subjectDescriptor": "win.Uy0xLTUtMjEtMTIzNA", "providerDisplayName": name, "isActive": true,
            "properties": {"Account": {"$type": "System.String", "$value": "CONTOSO\\cibot"}},
            "resourceVersion": 2, "metaTypeId": 0},
        "authorizedUser": {"id": "8d1c3e5a-2b4f-4c6d-9e8f-0a1b2c3d4e5f", "descriptor": descriptor,
            "providerDisplayName": name, "isActive": true},
        "instanceId": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        "deploymentId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "deploymentType": "onPremises",
        "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
            "defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 3456, "lastChangeId64": 3456}
    })
}

fn devops_error(status: u16, message: &str, type_key: &str) -> Canned {
    Canned::json(
        status,
        json!({"$id": "1", "innerException": null, "message": message,
               "typeName": format!("Microsoft.TeamFoundation.Framework.Server.{type_key}, Microsoft.TeamFoundation.Framework.Server"),
               "typeKey": type_key, "errorCode": 0, "eventId": 3000}),
    )
}

/// Azure DevOps Server 2022 as its REST API documentation shows the answers.
fn serve_devops(stub: &Stub) {
    stub.on("GET", CONNECTION_DATA, anonymous_refusal())
        .on_authorized(
            "GET",
            CONNECTION_DATA,
            Canned::json(
                200,
                connection_data("System.Security.Principal.WindowsIdentity;S-1-5-21-1234-5678-9012-1105", "CI Bot"),
            )
            .header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6")
            .header("X-RateLimit-Resource", "Core")
            .header("X-RateLimit-Limit", "200")
            .header("X-RateLimit-Remaining", "180"),
        )
        .on(
            "GET",
            PROJECT,
            Canned::json(
                200,
                json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber",
                       "url": "https://tfs.example.com/tfs/DefaultCollection/_apis/projects/eb6e4656-77fc-42a1-9181-4c6d8e9da5d1",
                       "state": "wellFormed", "revision": 411, "visibility": "private",
                       "lastUpdateTime": "2026-03-01T10:00:00.000Z"}),
            ),
        );
}

fn settings() -> Value {
    json!({"project": "Fabrikam Fiber"})
}

#[tokio::test]
async fn a_pat_with_project_access_passes_on_a_server_proven_anonymously() {
    let (h, stub) = Harness::with_stub("azure-devops").await;
    serve_devops(&stub);
    let base = format!("{}{COLLECTION}", stub.base_url);
    let config = h.integration(IntegrationType::Scm, &base, settings());
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential", "project"]);
    assert_eq!(outcome.facts.rate_limit_remaining, Some(180));
    assert!(outcome.steps[3].message.contains("CI Bot"), "{outcome:?}");
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].path.as_str(), seen[0].header("authorization")), (CONNECTION_DATA, None));
    // The PAT goes as HTTP basic with an empty user name.
    let basic = format!("Basic {}", super::http_probe::base64_encode(format!(":{SECRET}").as_bytes()));
    assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(basic.as_str())), "{seen:?}");
    assert!(seen.iter().all(|s| s.header("x-tfs-fedauthredirect") == Some("Suppress")), "{seen:?}");
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    assert_eq!(stub.seen().len(), 3 + 2, "the health check is two requests");

    // A server with anonymous access answers its connection data: that identifies it too.
    stub.on(
        "GET",
        CONNECTION_DATA,
        Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
    );
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn expired_rejected_and_anonymous_tokens_and_missing_projects_are_told_apart() {
    let (h, stub) = Harness::with_stub("azure-devops").await;
    let base = format!("{}{COLLECTION}", stub.base_url);
    let config = h.integration(IntegrationType::Scm, &base, settings());

    serve_devops(&stub);
    let expired = Canned::json(
        401,
        json!({"$id": "1", "customProperties": {"Descriptor": null, "IdentityDisplayName": null, "Token": null,
               "RequestedPermissions": 0, "NamespaceId": "00000000-0000-0000-0000-000000000000"},
               "innerException": null, "message": "Access Denied: The Personal Access Token used has expired.",
               "typeName": "Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi",
               "typeKey": "AccessCheckException", "errorCode": 0, "eventId": 3000}),
    );
    stub.on_authorized("GET", CONNECTION_DATA, expired);
    h.assert_fails(&config, FailureClass::Auth, "credential", "has expired").await;
    assert_eq!(h.health(&config).await.failure, Some(FailureClass::Auth));

    // A token Azure DevOps does not take: 203 and its sign-in page.
    stub.on_authorized(
        "GET",
        CONNECTION_DATA,
        Canned::new(203)
            .header("Content-Type", "text/html; charset=utf-8")
            .body("<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head></html>"),
    );
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");
    // A 401 with TFS's own message in its header.
    stub.on_authorized("GET", CONNECTION_DATA, anonymous_refusal());
    h.assert_fails(&config, FailureClass::Auth, "credential", "TF400813").await;
    // Connection data for the anonymous identity: the token was ignored.
    stub.on_authorized(
        "GET",
        CONNECTION_DATA,
        Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
    );
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

    serve_devops(&stub);
    stub.on(
        "GET",
        PROJECT,
        devops_error(
            404,
            "TF200016: The following project does not exist: Fabrikam Fiber. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.",
            "ProjectDoesNotExistWithNameException",
        ),
    );
    h.assert_fails(&config, FailureClass::NotFound, "project", "TF200016").await;

    // A server older than the API version asked for says so; `apiVersion` picks another.
    stub.on(
        "GET",
        PROJECT,
        devops_error(
            400,
            "The requested REST API version of 7.1 is out of range for this server. The latest REST API version this server supports is 6.0.",
            "VssVersionOutOfRangeException",
        ),
    );
    h.assert_fails(&config, FailureClass::Misconfigured, "project", "out of range").await;
    stub.on(
        "GET",
        "/tfs/DefaultCollection/_apis/projects/Fabrikam%20Fiber?api-version=6.0",
        Canned::json(
            200,
            json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber", "state": "wellFormed"}),
        ),
    );
    let older = h.integration(IntegrationType::Scm, &base, json!({"project": "Fabrikam Fiber", "apiVersion": "6.0"}));
    let outcome = h.test(&older).await;
    assert!(outcome.success, "{outcome:?}");
}

#[tokio::test]
async fn rate_limits_outages_and_other_servers_are_classed() {
    let (h, stub) = Harness::with_stub("azure-devops").await;
    let base = format!("{}{COLLECTION}", stub.base_url);
    let config = h.integration(IntegrationType::Ci, &base, json!({}));
    serve_devops(&stub);
    stub.on_authorized(
        "GET",
        CONNECTION_DATA,
        devops_error(429, "Request was blocked due to exceeding usage of resource 'Core'.", "RequestBlockedException")
            .header("Retry-After", "30")
            .header("X-RateLimit-Resource", "Core")
            .header("X-RateLimit-Remaining", "0"),
    );
    h.assert_rate_limited(&config, "credential", None, true).await;

    stub.on("GET", CONNECTION_DATA, Canned::new(503).header("X-TFS-ProcessId", "96021cb3-66d9-48f2-898f-d5412ff210a6"));
    assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-azure-devops");
    // A 401 without TFS's headers is some other server's login.
    stub.on(
        "GET",
        CONNECTION_DATA,
        Canned::new(401).header("WWW-Authenticate", "Negotiate").header("X-TFS-ProcessId", "not-a-guid"),
    );
    h.assert_mismatch_gets_no_credential(&config, &stub, "is-azure-devops", "authorization").await;
}

#[tokio::test]
async fn impostors_get_no_credential() {
    super::bitbucket::impostors::assert_impostors_are_refused("azure-devops", IntegrationType::Scm, settings()).await;
}

#[tokio::test]
async fn a_bad_configuration_is_refused_before_any_request() {
    let (h, stub) = Harness::with_stub("azure-devops").await;
    for bad in [
        json!({"project": "a/b"}),
        json!({"project": "../x"}),
        json!({"project": ""}),
        json!({"project": "x?api-version=1.0"}),
        json!({"project": 7}),
        json!({"apiVersion": "7.1&x=y"}),
        json!({"projects": "Fabrikam"}),
    ] {
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, &stub.base_url, bad.clone())).await;
    }
    for base in ["https://dev.azure.com", "http://dev.azure.com/fabrikam", "https://dev.azure.com/fabrikam/Fiber"] {
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, base, json!({}))).await;
    }
    h.assert_needs_a_credential(h.integration(IntegrationType::Scm, &stub.base_url, json!({})), &stub).await;
}
// Azure DevOps Services: `https://dev.azure.com/{organization}` (or the legacy
// `https://{organization}.visualstudio.com`), both pinned to a TLS stub whose certificate
// names them.

const SERVICES_HOSTS: [&str; 2] = ["dev.azure.com", "fabrikam.visualstudio.com"];
/// The global resource-area lookup of the organization `fabrikam` (the core area).
const LOOKUP: &str =
    "/_apis/resourceAreas/79134C72-4A58-4B42-976C-04E7115F32BF?accountName=fabrikam&api-version=5.0-preview.1";
const ORG_CONNECTION_DATA: &str = "/fabrikam/_apis/connectionData";
const ORG_PROJECT: &str = "/fabrikam/_apis/projects/Fabrikam%20Fiber?api-version=7.1";

/// The resource-area lookup's answer: the core area at the organization's primary URL.
fn resource_area(location: Value) -> Canned {
    Canned::json(200, json!({"id": "79134C72-4A58-4B42-976C-04E7115F32BF", "name": "Core", "locationUrl": location}))
}

/// Connection data of Azure DevOps Services for a user signed in with a PAT (a Microsoft Entra
/// identity).
fn hosted_connection_data() -> Value {
    json!({
        "authenticatedUser": {"id": "4b6c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4",
            "descriptor": "Microsoft.IdentityModel.Claims.ClaimsIdentity;72f988bf-86f1-41af-91ab-2d7cd011db47\\ci-bot@fabrikam.com",
            "subjectDescriptor": "aad.NGI2YzFkMmUtM2Y0YS03YjVjLThkNmUtN2Y4MDkxYTJiM2M0", "providerDisplayName": "CI Bot",
            "isActive": true, "properties": {"Account": {"$type": "System.String", "$value": "ci-bot@fabrikam.com"}},
            "resourceVersion": 2, "metaTypeId": 0},
        "authorizedUser": {"id": "4b6c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4", "providerDisplayName": "CI Bot", "isActive": true},
        "instanceId": "6b1f0e8a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "deploymentId": "a2b3c4d5-e6f7-4a8b-9c0d-1e2f3a4b5c6d",
        "deploymentType": "hosted",
        "locationServiceData": {"serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
            "defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 86241, "lastChangeId64": 86241}
    })
}

/// Azure DevOps Services as its REST API documentation shows the answers, for the organization
/// `fabrikam` at `connection_data` (on `dev.azure.com` or its legacy host): the anonymous
/// resource-area lookup, TFS's refusal of an anonymous caller, the PAT's user (with the rate
/// limit headers Azure DevOps adds as a user nears its limit) and the project.
fn serve_services(stub: &Stub, location: &str, connection_data: &str, project: &str) {
    stub.on("GET", LOOKUP, resource_area(json!(location)))
        .on("GET", connection_data, anonymous_refusal())
        .on_authorized(
            "GET",
            connection_data,
            Canned::json(200, hosted_connection_data())
                .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
                .header("X-VSS-E2EID", "0c4c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
                .header("X-RateLimit-Resource", "Core")
                .header("X-RateLimit-Delay", "0.312")
                .header("X-RateLimit-Limit", "200")
                .header("X-RateLimit-Remaining", "42")
                .header("X-RateLimit-Reset", "1798675200"),
        )
        .on_authorized(
            "GET",
            project,
            Canned::json(
                200,
                json!({"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": "Fabrikam Fiber",
                       "url": "https://dev.azure.com/fabrikam/_apis/projects/eb6e4656-77fc-42a1-9181-4c6d8e9da5d1",
                       "state": "wellFormed", "revision": 411, "visibility": "private",
                       "lastUpdateTime": "2026-03-01T10:00:00.000Z"}),
            ),
        );
}

fn services_settings(stub: &Stub, settings: Value) -> Value {
    let mut settings = settings;
    settings["caCertificates"] = json!(stub.ca_pem.clone().unwrap());
    settings
}

fn pat() -> String {
    format!("Basic {}", super::http_probe::base64_encode(format!(":{SECRET}").as_bytes()))
}

#[tokio::test]
async fn a_services_organization_is_proven_by_the_anonymous_lookup_then_gets_the_pat() {
    let (h, stub) = Harness::pinned_with_stub("azure-devops", &SERVICES_HOSTS).await;
    serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);
    let config = h.integration(
        IntegrationType::Scm,
        "https://dev.azure.com/fabrikam",
        services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
    );
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential", "project"]);
    assert!(outcome.steps[2].message.contains("organization `fabrikam`"), "{outcome:?}");
    assert!(
        outcome.steps[3].message.contains("`CI Bot` (ci-bot@fabrikam.com)")
            && outcome.steps[3].message.contains("on Azure DevOps Services"),
        "{outcome:?}"
    );
    assert_eq!(outcome.facts.rate_limit_remaining, Some(42));
    let seen = stub.seen();
    assert_eq!(seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), [LOOKUP, ORG_CONNECTION_DATA, ORG_PROJECT]);
    // The lookup carries no credential; the PAT goes as HTTP basic with an empty user name.
    assert_eq!(seen[0].header("authorization"), None, "the lookup is anonymous");
    assert!(seen[1..].iter().all(|s| s.header("authorization") == Some(pat().as_str())), "{seen:?}");
    for s in &seen {
        assert_eq!(s.header("host"), Some("dev.azure.com"), "{s:?}");
        assert_eq!(s.header("x-tfs-fedauthredirect"), Some("Suppress"), "{s:?}");
    }

    // Health: the fixed host's certificate proves it; one request, the signed-in connection data.
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    let seen: Vec<_> = stub.seen().into_iter().skip(3).collect();
    assert_eq!(seen.len(), 1, "one request: {seen:?}");
    assert_eq!((seen[0].path.as_str(), seen[0].header("authorization")), (ORG_CONNECTION_DATA, Some(pat().as_str())));

    // An organization whose primary URL is still the legacy one: the lookup answers that.
    stub.on("GET", LOOKUP, resource_area(json!("https://fabrikam.visualstudio.com/")));
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert!(outcome.steps[2].message.contains("https://fabrikam.visualstudio.com"), "{outcome:?}");
}

#[tokio::test]
async fn a_legacy_visualstudio_com_organization_is_proven_on_dev_azure_com() {
    let (h, stub) = Harness::pinned_with_stub("azure-devops", &SERVICES_HOSTS).await;
    serve_services(
        &stub,
        "https://fabrikam.visualstudio.com/",
        "/_apis/connectionData",
        "/_apis/projects/Fabrikam%20Fiber?api-version=7.1",
    );
    let config =
        h.integration(IntegrationType::Ci, "https://fabrikam.visualstudio.com", services_settings(&stub, json!({})));
    let outcome = h.test(&config).await;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(step_names(&outcome), ["configuration", "reachable", "is-azure-devops", "credential"]);
    // The lookup on dev.azure.com without the PAT, then the PAT on the organization's own host.
    let seen: Vec<_> =
        stub.seen().iter().map(|s| (s.header("host").unwrap_or_default().to_string(), s.path.clone())).collect();
    assert_eq!(
        seen,
        [
            ("dev.azure.com".to_string(), LOOKUP.to_string()),
            ("fabrikam.visualstudio.com".to_string(), "/_apis/connectionData".to_string())
        ]
    );
    let requests = stub.seen();
    assert_eq!(
        (requests[0].header("authorization"), requests[1].header("authorization")),
        (None, Some(pat().as_str()))
    );
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    let last: Vec<_> = stub.seen().into_iter().skip(2).collect();
    assert_eq!(last.len(), 1, "one request: {last:?}");
    assert_eq!(
        (last[0].header("host"), last[0].path.as_str()),
        (Some("fabrikam.visualstudio.com"), "/_apis/connectionData")
    );
}

#[tokio::test]
async fn an_organization_the_lookup_does_not_locate_gets_no_token() {
    let (h, stub) = Harness::pinned_with_stub("azure-devops", &SERVICES_HOSTS).await;
    serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);
    let config = h.integration(
        IntegrationType::Scm,
        "https://dev.azure.com/fabrikam",
        services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
    );
    // No such organization: the lookup answers 404, or no URL.
    for unknown in [Canned::new(404), resource_area(Value::Null)] {
        stub.on("GET", LOOKUP, unknown);
        let outcome = h.test(&config).await;
        assert_failed(&outcome, FailureClass::NotFound, "is-azure-devops");
        assert!(outcome.message.contains("knows no organization `fabrikam`"), "{outcome:?}");
    }
    // Another organization's URL.
    stub.on("GET", LOOKUP, resource_area(json!("https://dev.azure.com/contoso/")));
    h.assert_fails(&config, FailureClass::ProviderMismatch, "is-azure-devops", "https://dev.azure.com/contoso").await;
    // The lookup throttled, or down.
    stub.on(
        "GET",
        LOOKUP,
        devops_error(429, "Request was blocked due to exceeding usage of resource 'Core'.", "RequestBlockedException")
            .header("Retry-After", "30"),
    );
    h.assert_fails(&config, FailureClass::RateLimited, "is-azure-devops", "retry after 30").await;
    stub.on("GET", LOOKUP, Canned::new(503).body("Service Unavailable"));
    assert_failed(&h.test(&config).await, FailureClass::ProviderDown, "is-azure-devops");
    let seen = stub.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.iter().all(|s| s.path == LOOKUP && s.header("authorization").is_none()), "{seen:?}");
}

#[tokio::test]
async fn services_refusals_and_the_sign_in_page_are_classed() {
    let (h, stub) = Harness::pinned_with_stub("azure-devops", &SERVICES_HOSTS).await;
    let config = h.integration(
        IntegrationType::Scm,
        "https://dev.azure.com/fabrikam",
        services_settings(&stub, json!({"project": "Fabrikam Fiber"})),
    );
    let serve = || serve_services(&stub, "https://dev.azure.com/fabrikam/", ORG_CONNECTION_DATA, ORG_PROJECT);

    // A token Azure DevOps did not take: 203 and its sign-in page, though the request asked
    // for no redirect to it.
    serve();
    stub.on_authorized(
        "GET",
        ORG_CONNECTION_DATA,
        Canned::new(203)
            .header("Content-Type", "text/html; charset=utf-8")
            .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
            .body(
                "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>",
            ),
    );
    let before = stub.seen().len();
    h.assert_fails(&config, FailureClass::Auth, "credential", "with a page, not JSON").await;
    let seen: Vec<_> = stub.seen().into_iter().skip(before).collect();
    assert_eq!(seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), [LOOKUP, ORG_CONNECTION_DATA]);
    assert!(seen.iter().all(|s| s.header("x-tfs-fedauthredirect") == Some("Suppress")), "{seen:?}");
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Auth)));

    // An expired PAT, and one the organization refuses with TFS's error in a header.
    stub.on_authorized(
        "GET",
        ORG_CONNECTION_DATA,
        Canned::json(
            401,
            json!({"$id": "1", "innerException": null, "message": "Access Denied: The Personal Access Token used has expired.",
                   "typeName": "Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi",
                   "typeKey": "AccessCheckException", "errorCode": 0, "eventId": 3000}),
        ),
    );
    h.assert_fails(&config, FailureClass::Auth, "credential", "has expired").await;
    stub.on_authorized(
        "GET",
        ORG_CONNECTION_DATA,
        Canned::new(401)
            .header("X-TFS-ProcessId", "2f5e8a1c-7b3d-4e6f-9a0b-1c2d3e4f5a6b")
            .header("X-TFS-ServiceError", "TF400813%3a+The+user+%27%27+is+not+authorized+to+access+this+resource.")
            .header(
                "WWW-Authenticate",
                "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
            )
            .header("WWW-Authenticate", r#"Basic realm="https://tfsprodweu5.visualstudio.com/""#)
            .header("WWW-Authenticate", "TFS-Federated"),
    );
    h.assert_fails(&config, FailureClass::Auth, "credential", "TF400813: The user '' is not authorized").await;
    // Connection data for the anonymous identity: the token was ignored.
    stub.on_authorized(
        "GET",
        ORG_CONNECTION_DATA,
        Canned::json(200, connection_data("Microsoft.TeamFoundation.UnauthenticatedIdentity;S-1-0-0", "Anonymous")),
    );
    assert_failed(&h.test(&config).await, FailureClass::Auth, "credential");

    // Throttled: 429 with Retry-After.
    serve();
    stub.on_authorized(
        "GET",
        ORG_CONNECTION_DATA,
        devops_error(429, "Request was blocked due to exceeding usage of resource 'Core'.", "RequestBlockedException")
            .header("Retry-After", "30")
            .header("X-RateLimit-Resource", "Core")
            .header("X-RateLimit-Remaining", "0"),
    );
    h.assert_rate_limited(&config, "credential", Some("retry after 30"), true).await;

    // The project: missing permission, and missing altogether.
    serve();
    stub.on_authorized(
        "GET",
        ORG_PROJECT,
        devops_error(
            403,
            "Access Denied: CI Bot needs the following permission(s) on the resource Fabrikam Fiber to perform this action: View project-level information",
            "AccessCheckException",
        ),
    );
    h.assert_fails(&config, FailureClass::Permission, "project", "View project-level information").await;
    stub.on_authorized(
        "GET",
        ORG_PROJECT,
        devops_error(
            404,
            "TF200016: The following project does not exist: Fabrikam Fiber. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.",
            "ProjectDoesNotExistWithNameException",
        ),
    );
    let outcome = h.test(&config).await;
    assert_failed(&outcome, FailureClass::NotFound, "project");
    assert!(outcome.message.contains("TF200016") && outcome.steps[3].passed, "{outcome:?}");
    // The health check does not ask for the project.
    assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);
}

#[tokio::test]
async fn services_urls_spelled_otherwise_are_refused_before_any_request() {
    let (h, stub) = Harness::pinned_with_stub("azure-devops", &SERVICES_HOSTS).await;
    for (base, why) in [
        ("https://dev.azure.com", "`https://dev.azure.com/{organization}`"),
        ("http://dev.azure.com/fabrikam", "`https://dev.azure.com/{organization}`"),
        ("https://dev.azure.com/fabrikam/Fabrikam%20Fiber", "`https://dev.azure.com/{organization}`"),
        ("https://dev.azure.com/..", "`https://dev.azure.com/{organization}`"),
        ("http://fabrikam.visualstudio.com", "`https://{organization}.visualstudio.com`"),
        ("https://fabrikam.visualstudio.com/DefaultCollection", "`https://{organization}.visualstudio.com`"),
        ("https://fabrikam.eu.visualstudio.com", "`https://{organization}.visualstudio.com`"),
    ] {
        let outcome = h
            .assert_misconfigured(&h.integration(IntegrationType::Scm, base, services_settings(&stub, json!({}))))
            .await;
        assert!(outcome.message.contains(why), "{base}: {outcome:?}");
    }
    assert!(stub.seen().is_empty(), "a misconfigured integration sent a request");
}
