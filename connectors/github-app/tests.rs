//! The `github-app` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use std::process::Command;

use super::*;

const TOKEN: &str = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";

/// A fresh RSA key as GitHub hands apps theirs (PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`), and its
/// public half (PKCS#1 DER) to verify the JWTs the host signs. ring cannot generate RSA keys;
/// openssl can.
fn app_key() -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let public = dir.path().join("public.der");
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("`openssl` is not installed: `make test` installs it");
    assert!(status.success());
    let status = Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (std::fs::read_to_string(key).unwrap(), std::fs::read(public).unwrap())
}

fn installation(suspended_at: Value) -> Value {
    json!({"id": 777, "app_id": 12345, "target_type": "Organization", "account": {"login": "acme", "type": "Organization"},
           "permissions": {"contents": "read", "metadata": "read"}, "suspended_at": suspended_at})
}

/// GitHub Enterprise Server's documented answers, under `/api/v3`.
fn serve_github(stub: &Stub) {
    stub.on(
        "GET",
        "/api/v3/meta",
        Canned::json(200, json!({"verifiable_password_authentication": false, "installed_version": "3.14.2"}))
            .header("X-GitHub-Request-Id", "0F3A:1B2C:3D4E:5F60")
            .header("X-GitHub-Enterprise-Version", "3.14.2"),
    )
    .on_authorized(
        "GET",
        "/api/v3/app",
        Canned::json(
            200,
            json!({"id": 12345, "slug": "stella-scanner", "name": "Stella Scanner", "owner": {"login": "acme"}}),
        ),
    )
    .on_authorized("GET", "/api/v3/app/installations?per_page=2", Canned::json(200, json!([installation(Value::Null)])))
    .on_authorized("GET", "/api/v3/app/installations/777", Canned::json(200, installation(Value::Null)))
    .on_authorized("GET", "/api/v3/orgs/acme/installation", Canned::json(200, installation(Value::Null)))
    .on_authorized(
        "POST",
        "/api/v3/app/installations/777/access_tokens",
        Canned::json(
            201,
            json!({"token": TOKEN, "expires_at": "2026-11-28T10:00:00Z",
                   "permissions": {"contents": "read", "metadata": "read"}, "repository_selection": "selected"}),
        ),
    )
    .on_authorized(
        "GET",
        "/api/v3/installation/repositories?per_page=1",
        Canned::json(200, json!({"total_count": 3, "repositories": [{"full_name": "acme/scanner"}]}))
            .header("X-RateLimit-Limit", "5000")
            .header("X-RateLimit-Remaining", "4987"),
    );
}

fn b64url_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {text}"),
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn the_app_jwt_installation_and_token_prove_the_app_works() {
    let (pem, public) = app_key();
    let h = Harness::with_secret("github-app", &pem);
    let stub = Stub::start().await;
    serve_github(&stub);
    let config = h.integration(
        IntegrationType::Scm,
        &stub.base_url,
        json!({"appId": 12345, "requiredPermissions": {"contents": "read", "metadata": "read"}}),
    );
    let invocation = h.sandbox.test_connection(&h.connector, &config).await;
    let printed = format!("{:?} {:?}", invocation.result, invocation.record);
    h.assert_no_secret(&printed);
    assert!(!printed.contains(TOKEN), "the installation token leaked: {printed}");
    let outcome = invocation.result;
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(
        step_names(&outcome),
        ["configuration", "reachable", "is-github", "app", "installation", "access-token", "api"]
    );
    assert_eq!(outcome.facts.provider_version.as_deref(), Some("3.14.2"));
    assert_eq!(outcome.facts.rate_limit_remaining, Some(4987));
    assert!(outcome.message.contains("stella-scanner") && outcome.message.contains("acme"), "{outcome:?}");

    let seen = stub.seen();
    assert_eq!(seen[0].header("authorization"), None, "nothing is sent before GitHub is proven");
    assert!(seen.iter().all(|s| s.header("user-agent").is_some() && s.header("x-github-api-version").is_some()));
    // The app's requests carry a JWT the host signed with the app's key: RS256, the app id as
    // issuer, ten minutes of validity at most, backdated a minute.
    let jwt = seen[1].header("authorization").unwrap().strip_prefix("Bearer ").unwrap().to_string();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    assert_eq!(claims["iss"], 12345);
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - 90..=now - 30).contains(&iat) && exp - iat <= 600 && exp > now, "{claims}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &b64url_decode(parts[2]))
        .expect("the JWT verifies with the app's public key");
    // The installation token went only to the API call, applied by the host.
    let api = seen.iter().find(|s| s.path.starts_with("/api/v3/installation/repositories")).unwrap();
    assert_eq!(api.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(invocation.record.host_calls.iter().any(|c| c.token_kept && c.target.ends_with("/access_tokens")));

    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    // Enterprise Server proves itself before the app's JWT goes to it, in the health check too.
    assert_eq!(
        step_names_of(&health.steps),
        ["configuration", "reachable", "is-github", "installation", "access-token", "api"]
    );

    // The installation found by its account, then by id; with an id, health is `/meta` (this is
    // Enterprise Server), the token and the API call.
    for how in [json!({"appId": 12345, "account": "acme"}), json!({"appId": 12345, "installationId": 777})] {
        let outcome = h.test(&h.integration(IntegrationType::Scm, &stub.base_url, how)).await;
        assert!(outcome.success, "{outcome:?}");
    }
    let by_id = h.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345, "installationId": 777}));
    let before = stub.seen().len();
    let health = h.health(&by_id).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Healthy, None), "{health:?}");
    assert_eq!(stub.seen().len() - before, 3);
    // A suspended installation answers the token request 403.
    stub.on_authorized(
        "POST",
        "/api/v3/app/installations/777/access_tokens",
        Canned::json(403, json!({"message": "This installation has been suspended"})),
    );
    let health = h.health(&by_id).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Unhealthy, Some(FailureClass::Permission)));
}

#[tokio::test]
async fn missing_permissions_suspension_a_wrong_key_and_rate_limits_are_told_apart() {
    let (pem, _) = app_key();
    let h = Harness::with_secret("github-app", &pem);
    let stub = Stub::start().await;
    serve_github(&stub);
    let integration = |c: Value| h.integration(IntegrationType::Scm, &stub.base_url, c);

    let write = integration(json!({"appId": 12345, "requiredPermissions": {"contents": "write"}}));
    h.assert_fails(&write, FailureClass::Permission, "access-token", "contents: write (granted: read)").await;

    let config = integration(json!({"appId": 12345, "installationId": 9}));
    stub.on_authorized("GET", "/api/v3/app/installations/9", Canned::json(404, json!({"message": "Not Found"})));
    assert_failed(&h.test(&config).await, FailureClass::NotFound, "installation");

    let config = integration(json!({"appId": 12345}));
    stub.on_authorized(
        "GET",
        "/api/v3/app/installations?per_page=2",
        Canned::json(200, json!([installation(json!("2026-11-01T00:00:00Z"))])),
    );
    h.assert_fails(&config, FailureClass::Permission, "installation", "suspended").await;
    serve_github(&stub);

    // GitHub's primary rate limit: 403 with X-RateLimit-Remaining: 0.
    stub.on_authorized(
        "GET",
        "/api/v3/installation/repositories?per_page=1",
        Canned::json(403, json!({"message": "API rate limit exceeded for installation ID 777."}))
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", "1795000000"),
    );
    assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
    let health = h.health(&config).await;
    assert_eq!((health.status, health.failure), (HealthStatus::Degraded, Some(FailureClass::RateLimited)));
    // A secondary limit: 403 with only the message, or 429 with Retry-After.
    stub.on_authorized(
        "GET",
        "/api/v3/installation/repositories?per_page=1",
        Canned::json(403, json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
    );
    assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
    stub.on_authorized(
        "GET",
        "/api/v3/installation/repositories?per_page=1",
        Canned::json(429, json!({"message": "Too many requests"})).header("Retry-After", "60"),
    );
    assert_failed(&h.test(&config).await, FailureClass::RateLimited, "api");
    serve_github(&stub);

    // An app installed on a user account: the organization lookup is 404, the user's is found.
    stub.on_authorized("GET", "/api/v3/orgs/octocat/installation", Canned::json(404, json!({"message": "Not Found"})))
        .on_authorized("GET", "/api/v3/users/octocat/installation", Canned::json(200, installation(Value::Null)));
    let user = integration(json!({"appId": 12345, "account": "octocat"}));
    assert!(h.test(&user).await.success);
    stub.on_authorized("GET", "/api/v3/users/octocat/installation", Canned::json(404, json!({"message": "Not Found"})));
    assert_failed(&h.test(&user).await, FailureClass::NotFound, "installation");

    // GitHub refuses the JWT (another app's key, or a clock far off).
    stub.on_authorized(
        "GET",
        "/api/v3/app",
        Canned::json(401, json!({"message": "A JSON web token could not be decoded", "documentation_url": "https://docs.github.com/rest"})),
    );
    let outcome = h.test(&config).await;
    assert_failed(&outcome, FailureClass::Auth, "app");
    assert!(outcome.message.contains("could not be decoded") && outcome.message.contains("12345"), "{outcome:?}");

    // A secret that is not a private key.
    let plain = Harness::new("github-app");
    let outcome = plain.test(&plain.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345}))).await;
    assert_failed(&outcome, FailureClass::Misconfigured, "app");
}

#[tokio::test]
async fn another_server_gets_no_jwt_and_configuration_is_checked_first() {
    let (pem, _) = app_key();
    let h = Harness::with_secret("github-app", &pem);
    let stub = Stub::start().await;
    stub.on("GET", "/api/v3/meta", Canned::new(200).header("Content-Type", "text/html").body("<html>gitweb</html>"));
    let config = h.integration(IntegrationType::Scm, &stub.base_url, json!({"appId": 12345}));
    assert_failed(&h.test(&config).await, FailureClass::ProviderMismatch, "is-github");
    assert!(stub.seen().iter().all(|s| s.header("authorization").is_none()));
    let requests = stub.seen().len();
    for bad in [
        json!({}),
        json!({"appId": -1}),
        json!({"appId": 12345, "installationId": 1, "account": "acme"}),
        json!({"appId": 12345, "account": "../admin"}),
        json!({"appId": 12345, "requiredPermissions": {"contents": "owner"}}),
        json!({"appId": 12345, "privateKey": "x"}),
    ] {
        h.assert_misconfigured(&h.integration(IntegrationType::Scm, &stub.base_url, bad)).await;
    }
    assert_eq!(stub.seen().len(), requests);
}
