//! The HTTP API in process (`oneshot` on the real router, over a real SQLite store and the real
//! sandbox with the built-in connectors): routes × scopes × tenants, tokens, the conventions of
//! the API (problem+json, ETags, idempotency, paging), and each endpoint's behaviour.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use stella_integrations::auth::{self, TokenRequest};
use stella_integrations::config::Config;
use stella_integrations::health::{CheckOutcome, FinishedCheck, HealthCheck};
use stella_integrations::http::openapi;
use stella_integrations::http::problem::PROBLEM_BASE;
use stella_integrations::server::{build_state, router};
use stella_integrations::service::Retention;
use tower::ServiceExt;

const KEY: &str = "a-local-test-key-of-at-least-32-bytes!!";
const ISSUER: &str = "https://idp.example.test";

struct App {
    router: Router,
    /// The state the router serves (to act beneath the API: the maintenance task).
    state: stella_integrations::http::AppState,
    config: Config,
    ec_key: EcdsaKeyPair,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("").trim_start_matches(PROBLEM_BASE)
    }
}

async fn app() -> App {
    app_on(None).await
}

/// The app on a database URL (default: SQLite in a temporary directory).
async fn app_on(database_url: Option<String>) -> App {
    app_with(|c| c.storage.database_url = database_url).await
}

/// The app with a configuration changed by `configure`.
async fn app_with(configure: impl FnOnce(&mut Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec_key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = ec_key.public_key().as_ref();
    let mut jwks: Value = serde_json::from_str(include_str!("fixtures/jwt-test-rsa.jwks.json")).unwrap();
    jwks["keys"].as_array_mut().unwrap().push(json!({
        "kty": "EC", "crv": "P-256", "kid": "test-ec", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }));
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();

    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("data");
    config.storage.plugins_dir = None;
    config.auth.hs256_key = Some(KEY.into());
    // A JWKS is configured too, which turns local tokens off unless they are asked for.
    config.auth.local_tokens = Some(true);
    config.auth.jwks_file = Some(jwks_path);
    config.auth.issuer = Some(ISSUER.into());
    config.server.max_body_bytes = 64 * 1024;
    configure(&mut config);
    let state = build_state(&config, None).await.unwrap();
    App { state: state.api.clone(), router: router(state), config, ec_key, _dir: dir }
}

impl App {
    fn token(&self, tenant: &str, scopes: &str) -> String {
        auth::issue_local_token(&self.config.auth, KEY.as_bytes(), &token_request(tenant, scopes))
    }

    fn admin(&self) -> String {
        self.token("acme", "integrations.admin")
    }

    async fn send(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        self.send_with(method, uri, token, body, &[]).await
    }

    async fn send_with(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let has_body = body.is_some();
        if has_body {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        self.raw(request.body(body).unwrap()).await
    }

    async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{status}: {body}");
            assert_eq!(body["status"], status.as_u16(), "{body}");
        }
        Reply { status, headers, body }
    }

    /// An integration that was activated (so it has a test result).
    async fn create_tested(&self, name: &str) -> String {
        let id = self.create(name).await;
        let r =
            self.send(Method::POST, &format!("/api/v1/integrations/{id}/activate"), Some(&self.admin()), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        id
    }

    async fn create(&self, name: &str) -> String {
        let r = self.send(Method::POST, "/api/v1/integrations", Some(&self.admin()), Some(spec(name))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["integrationId"].as_str().unwrap().to_string()
    }
}

fn spec(name: &str) -> Value {
    json!({"name": name, "type": "registry", "provider": "in-memory", "tags": ["demo"], "environment": "dev"})
}

fn jwt(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims(extra: Value) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = json!({
        "sub": "svc", "tenant": "acme", "scope": "integrations.read", "iss": ISSUER,
        "aud": "stella-integrations", "exp": now + 300, "iat": now,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn rsa_sign(input: &[u8]) -> Vec<u8> {
    let key = RsaKeyPair::from_der(include_bytes!("fixtures/jwt-test-rsa.der")).unwrap();
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input, &mut sig).unwrap();
    sig
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Public,
    Read,
    Admin,
    /// `plugins.admin`, platform-wide: no tenant scope (not even `integrations.admin`) reaches it.
    PluginsAdmin,
    /// The ledger: `integrations.audit` (or admin) for a tenant, `plugins.admin` across tenants.
    Audit,
    /// The loaded connectors: a tenant's reader (or admin) or a platform reviewer.
    Connectors,
    /// The console's own session, whatever its scopes (signing out).
    Session,
}

impl Rule {
    /// Whether a token or session carrying exactly `scopes` is let through.
    fn allows(self, scopes: &str) -> bool {
        let has = |s: &str| scopes.split_whitespace().any(|x| x == s);
        let read = has("integrations.read") || has("integrations.admin");
        match self {
            Rule::Public | Rule::Session => true,
            Rule::Read => read,
            Rule::Admin => has("integrations.admin"),
            Rule::PluginsAdmin => has("plugins.admin"),
            Rule::Audit => has("integrations.audit") || has("integrations.admin") || has("plugins.admin"),
            Rule::Connectors => read || has("plugins.admin"),
        }
    }

    /// The scope a refusal names.
    fn scope(self) -> &'static str {
        match self {
            Rule::Public | Rule::Session => "",
            Rule::Read | Rule::Connectors => "integrations.read",
            Rule::Admin => "integrations.admin",
            Rule::PluginsAdmin => "plugins.admin",
            Rule::Audit => "integrations.audit",
        }
    }
}

/// Every route and who may call it. A route the router serves but this table lacks fails
/// `every_route_enforces_its_scope_and_tenant`.
const MATRIX: &[(&str, &str, Rule)] = &[
    ("GET", "/api/v1/integrations", Rule::Read),
    ("POST", "/api/v1/integrations", Rule::Admin),
    ("GET", "/api/v1/integrations/export", Rule::Read),
    ("POST", "/api/v1/integrations/import", Rule::Admin),
    ("GET", "/api/v1/integrations/{id}", Rule::Read),
    ("PUT", "/api/v1/integrations/{id}", Rule::Admin),
    ("DELETE", "/api/v1/integrations/{id}", Rule::Admin),
    ("POST", "/api/v1/integrations/{id}/test", Rule::Admin),
    ("POST", "/api/v1/integrations/{id}/activate", Rule::Admin),
    ("POST", "/api/v1/integrations/{id}/pause", Rule::Admin),
    ("POST", "/api/v1/integrations/{id}/resume", Rule::Admin),
    ("GET", "/api/v1/integrations/{id}/health", Rule::Read),
    ("GET", "/api/v1/integrations/{id}/audit", Rule::Read),
    ("GET", "/api/v1/integrations/{id}/tests/latest", Rule::Read),
    ("GET", "/api/v1/plugins", Rule::Connectors),
    ("POST", "/api/v1/plugins", Rule::PluginsAdmin),
    ("POST", "/api/v1/plugins/pull", Rule::PluginsAdmin),
    ("GET", "/api/v1/plugins/{provider}", Rule::Connectors),
    ("GET", "/api/v1/plugins/{provider}/versions", Rule::PluginsAdmin),
    ("GET", "/api/v1/plugins/{provider}/versions/{version}", Rule::PluginsAdmin),
    ("POST", "/api/v1/plugins/{provider}/versions/{version}/approve", Rule::PluginsAdmin),
    ("POST", "/api/v1/plugins/{provider}/versions/{version}/reject", Rule::PluginsAdmin),
    ("POST", "/api/v1/plugins/{provider}/versions/{version}/activate", Rule::PluginsAdmin),
    ("GET", "/api/v1/plugin-policy", Rule::PluginsAdmin),
    ("GET", "/api/v1/plugin-audit", Rule::PluginsAdmin),
    ("GET", "/api/v1/invocations", Rule::Audit),
    ("GET", "/api/v1/invocations/{id}", Rule::Audit),
    ("GET", "/api/v1/invocations/export", Rule::Audit),
    ("GET", "/api/v1/plugins/{provider}/egress", Rule::Audit),
    ("GET", "/api/v1/events", Rule::Read),
    ("GET", "/healthz", Rule::Public),
    ("GET", "/readyz", Rule::Public),
    ("GET", "/metrics", Rule::Public),
    ("GET", "/api/v1/openapi.json", Rule::Public),
    ("GET", "/api/v1/docs", Rule::Public),
];

fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/integrations") | ("PUT", _) => Some(spec(&format!("m-{}", uuid::Uuid::new_v4()))),
        ("POST", "/api/v1/integrations/import") => Some(json!({"integrations": [spec("imported")]})),
        (_, p) if p.ends_with("/pause") || p.ends_with("/reject") => Some(json!({"reason": "matrix"})),
        (_, p) if p.ends_with("/approve") => Some(json!({"permissionsDigest": "sha256:00"})),
        (_, "/api/v1/plugins/pull") => Some(json!({"reference": "registry.example.com/c:1"})),
        _ => None,
    }
}

#[tokio::test]
async fn every_route_enforces_its_scope_and_tenant() {
    let app = app().await;
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let rule = MATRIX
                .iter()
                .find(|(m, p, _)| *m == method && *p == path)
                .unwrap_or_else(|| panic!("{method} {path} is served but has no rule in MATRIX"))
                .2;
            // The document declares the same scope the route enforces.
            let declared = op["security"][0]["bearer"][0].as_str();
            let expected = Some(rule.scope()).filter(|s| !s.is_empty());
            assert_eq!(declared, expected, "{method} {path}");
            // A route a platform reviewer reaches too says so, as the alternative requirement.
            let alternative = op["security"][1]["bearer"][0].as_str();
            let reviewer = rule == Rule::Connectors;
            assert_eq!(alternative, reviewer.then_some("plugins.admin"), "{method} {path}");
            documented.insert((method, path.clone()));
        }
    }
    let ruled: BTreeSet<_> = MATRIX.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, ruled, "MATRIX names a route the router does not serve");

    let none = app.token("acme", "");
    let read = app.token("acme", "integrations.read");
    let admin = app.admin();
    let other_admin = app.token("globex", "integrations.admin integrations.read");
    let plugins_admin = app.token("platform", "plugins.admin");
    for (method, path, rule) in MATRIX {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let uri = |id: &str| path.replace("{id}", id).replace("{provider}", "in-memory").replace("{version}", "9.9.9");
        let if_match: &[(&str, &str)] = if *method == "PUT" { &[("if-match", "*")] } else { &[] };
        let call = |token: Option<String>, id: String| {
            let m = m.clone();
            let uri = uri(&id);
            let body = body_for(method, path);
            let app = &app;
            async move { app.send_with(m, &uri, token.as_deref(), body, if_match).await }
        };

        let r = call(None, app.create_tested(&format!("n-{}", uuid::Uuid::new_v4())).await).await;
        if *rule == Rule::Public {
            assert!(r.status.is_success(), "{method} {path} without a token: {}", r.status);
            continue;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        assert!(r.header("www-authenticate").starts_with("Bearer"), "{method} {path}");

        let r = call(Some(none.clone()), app.create_tested(&format!("n-{}", uuid::Uuid::new_v4())).await).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} with no scope");
        assert!(r.header("www-authenticate").contains("insufficient_scope"), "{method} {path}");

        let r = call(Some(read.clone()), app.create_tested(&format!("n-{}", uuid::Uuid::new_v4())).await).await;
        match rule {
            Rule::Admin | Rule::PluginsAdmin | Rule::Audit => {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} with read")
            }
            _ => assert!(r.status.is_success(), "{method} {path} with read: {} {}", r.status, r.body),
        }

        if *rule == Rule::Audit {
            // Its tenant's auditor, its admin and the platform reach it (another tenant's
            // invocation is a 404: `the_ledger_is_read_by_auditors_of_its_tenant_only`).
            for token in [app.token("acme", "integrations.audit"), admin.clone(), plugins_admin.clone()] {
                let r = call(Some(token), uuid::Uuid::new_v4().to_string()).await;
                assert!(
                    r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                    "{method} {path}: {} {}",
                    r.status,
                    r.body
                );
            }
            continue;
        }

        if *rule == Rule::Connectors {
            // A platform reviewer reads the connectors it decides on, with no tenant scope.
            let r = call(Some(plugins_admin.clone()), String::new()).await;
            assert_eq!(r.status, StatusCode::OK, "{method} {path} with plugins.admin: {}", r.body);
        }

        if *rule == Rule::PluginsAdmin {
            // A tenant's admin cannot admit code; the platform scope reaches the route (whose
            // answer here is about the request: no such version, not a component).
            let r = call(Some(other_admin.clone()), String::new()).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path} with integrations.admin");
            let r = call(Some(plugins_admin.clone()), String::new()).await;
            assert!(
                ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&r.status) && !r.status.is_server_error(),
                "{method} {path} with plugins.admin: {} {}",
                r.status,
                r.body
            );
            continue;
        }

        let r = call(Some(admin.clone()), app.create_tested(&format!("n-{}", uuid::Uuid::new_v4())).await).await;
        assert!(
            r.status.is_success() || r.status == StatusCode::CONFLICT,
            "{method} {path} with admin: {} {}",
            r.status,
            r.body
        );

        if path.contains("{id}") {
            let acmes = app.create_tested(&format!("n-{}", uuid::Uuid::new_v4())).await;
            let r = call(Some(other_admin.clone()), acmes.clone()).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path} from another tenant: {}", r.body);
            // Whatever else is wrong with the request: no precondition, a bad query.
            let uri = format!("{}?limit=0", uri(&acmes));
            let r = app.send(m.clone(), &uri, Some(&other_admin), body_for(method, path)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path} bare, from another tenant: {}", r.body);
        }
    }
}

#[tokio::test]
async fn lists_and_events_never_show_another_tenants_rows() {
    let app = app().await;
    app.create("ours").await;
    let theirs = app.token("globex", "integrations.admin");
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&theirs), Some(spec("theirs"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The same name in another tenant is not a conflict.
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&theirs), Some(spec("ours"))).await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app.send(Method::GET, "/api/v1/integrations", Some(&app.admin()), None).await;
    let names: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ours"]);
    let r = app.send(Method::GET, "/api/v1/events", Some(&app.admin()), None).await;
    let events = r.body["items"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events.iter().all(|e| e["tenantid"] == "acme"), "{events:?}");
}

#[tokio::test]
async fn hostile_and_invalid_tokens_are_refused_with_a_challenge() {
    let app = app().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let hs = |c: Value| jwt(json!({"alg": "HS256"}), c, |i| auth_hs256(KEY.as_bytes(), i));
    let ec = |c: Value, kid: &str| {
        jwt(json!({"alg": "ES256", "kid": kid}), c, |i| {
            app.ec_key.sign(&ring::rand::SystemRandom::new(), i).unwrap().as_ref().to_vec()
        })
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", hs(claims(json!({"exp": now - 3600})))),
        ("not yet valid", hs(claims(json!({"nbf": now + 3600})))),
        ("no exp", hs(claims(json!({"exp": null})))),
        ("wrong audience", hs(claims(json!({"aud": "someone-else"})))),
        ("wrong issuer", hs(claims(json!({"iss": "https://evil.test"})))),
        ("no tenant", hs(claims(json!({"tenant": null})))),
        ("no subject", hs(claims(json!({"sub": null})))),
        (
            "unsigned",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
            ),
        ),
        (
            "wrong key",
            jwt(json!({"alg": "HS256"}), claims(json!({})), |i| {
                auth_hs256(b"another-key-of-at-least-32-bytes-long", i)
            }),
        ),
        ("HS384", jwt(json!({"alg": "HS384"}), claims(json!({})), |i| auth_hs256(KEY.as_bytes(), i))),
        // Algorithm confusion: an HS256 token keyed with the RSA public key's JWK.
        (
            "alg confusion",
            jwt(json!({"alg": "HS256", "kid": "test-rsa"}), claims(json!({})), |i| {
                auth_hs256(include_bytes!("fixtures/jwt-test-rsa.jwks.json"), i)
            }),
        ),
        ("RS256 under the EC key id", jwt(json!({"alg": "RS256", "kid": "test-ec"}), claims(json!({})), rsa_sign)),
        ("unknown kid", ec(claims(json!({})), "nope")),
        ("garbage", "not.a.jwt".into()),
        ("two parts", "abc.def".into()),
    ];
    for (what, token) in cases {
        let r = app.send(Method::GET, "/api/v1/integrations", Some(&token), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.problem_type(), "unauthenticated", "{what}");
        assert!(r.header("www-authenticate").contains("invalid_token"), "{what}: {}", r.header("www-authenticate"));
    }
    // A tampered payload under a valid signature.
    let good = hs(claims(json!({})));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims(json!({"tenant": "globex"})).to_string()),
        parts[2]
    );
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&forged), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The identity provider's keys work: RS256 and ES256 from the JWKS, with and without kid.
    for (what, token) in [
        ("RS256", jwt(json!({"alg": "RS256", "kid": "test-rsa"}), claims(json!({})), rsa_sign)),
        ("RS256 without kid", jwt(json!({"alg": "RS256"}), claims(json!({})), rsa_sign)),
        ("ES256", ec(claims(json!({})), "test-ec")),
        ("HS256 local", good.clone()),
    ] {
        let r = app.send(Method::GET, "/api/v1/integrations", Some(&token), None).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
    }
    // The good token is now remembered as verified: its signature under other claims still is not.
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&forged), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a forged token after its original was remembered");
    // An algorithm name with a control character is refused, and the challenge still goes out.
    let nasty = jwt(json!({"alg": "HS256\n\"x"}), claims(json!({})), |i| auth_hs256(KEY.as_bytes(), i));
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&nasty), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Bearer"), "{:?}", r.headers);
    // A scheme other than Bearer.
    let r = app.send_with(Method::GET, "/api/v1/integrations", None, None, &[("authorization", "Basic YTpi")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn auth_hs256(key: &[u8], input: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input).as_ref().to_vec()
}

#[tokio::test]
async fn create_get_update_delete_follow_the_http_conventions() {
    let app = app().await;
    let admin = app.admin();
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("registry-1"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["integrationId"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), format!("/api/v1/integrations/{id}"));
    assert_eq!(r.header("etag"), "\"1\"");
    assert_eq!((r.body["status"].as_str(), r.body["tenantId"].as_str()), (Some("draft"), Some("acme")));
    assert!(r.body["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(!r.header("x-request-id").is_empty());

    let uri = format!("/api/v1/integrations/{id}");
    let r = app.send(Method::GET, &uri, Some(&admin), None).await;
    assert_eq!((r.status, r.header("etag")), (StatusCode::OK, "\"1\""));

    let mut changed = spec("registry-1");
    changed["description"] = json!("the main registry");
    let r = app.send(Method::PUT, &uri, Some(&admin), Some(changed.clone())).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::PRECONDITION_REQUIRED, "precondition-required"));
    let r = app.send_with(Method::PUT, &uri, Some(&admin), Some(changed.clone()), &[("if-match", "\"1\"")]).await;
    assert_eq!((r.status, r.header("etag")), (StatusCode::OK, "\"2\""));
    assert_eq!(r.body["description"], "the main registry");
    assert_eq!(r.body["modifiedBy"], "acme-user");
    // The version the client read is no longer current.
    let r = app.send_with(Method::PUT, &uri, Some(&admin), Some(changed.clone()), &[("if-match", "\"1\"")]).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::PRECONDITION_FAILED, "precondition-failed"));
    assert_eq!(r.body["currentVersion"], 2);
    let r = app.send_with(Method::PUT, &uri, Some(&admin), Some(changed.clone()), &[("if-match", "W/\"2\"")]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = app.send_with(Method::PUT, &uri, Some(&admin), Some(changed), &[("if-match", "two")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Names are unique per tenant.
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("registry-1"))).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::CONFLICT, "name-conflict"));

    let r = app.send_with(Method::DELETE, &uri, Some(&admin), None, &[("if-match", "\"1\"")]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = app.send(Method::DELETE, &uri, Some(&admin), None).await;
    assert_eq!((r.status, &r.body), (StatusCode::NO_CONTENT, &Value::Null));
    let r = app.send(Method::GET, &uri, Some(&admin), None).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::NOT_FOUND, "not-found"));
    let r = app.send(Method::GET, "/api/v1/integrations/not-a-uuid", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_a_different_body() {
    let app = app().await;
    let admin = app.admin();
    let key = [("idempotency-key", "create-registry-7")];
    let first = app.send_with(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("r7")), &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app.send_with(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("r7")), &key).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.header("location"), first.header("location"));
    let other = app.send_with(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("r8")), &key).await;
    assert_eq!((other.status, other.problem_type()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused"));
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&admin), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "a replay creates nothing");
    let bad = app
        .send_with(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec("r9")), &[("idempotency-key", "")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_problem_never_a_5xx() {
    let app = app().await;
    let admin = app.admin();
    let post = |body: Body, content_type: &str| {
        Request::post("/api/v1/integrations")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap()
    };
    let r = app.raw(post(Body::from("{\"name\": \"x\","), "application/json")).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::BAD_REQUEST, "bad-request"));
    let r = app.raw(post(Body::from(spec("x").to_string()), "text/plain")).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"));
    let huge = json!({"name": "x", "type": "registry", "provider": "in-memory", "description": "a".repeat(100_000)});
    let r = app.raw(post(Body::from(huge.to_string()), "application/json")).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"));
    let r = app.raw(post(Body::from(spec("x").to_string() + " trailing"), "application/json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let cases = [
        (json!({"name": "x", "type": "registry", "provider": "in-memory", "colour": "red"}), "colour"),
        (json!({"name": "x", "type": "teapot", "provider": "in-memory"}), "type"),
        (json!({"name": 7, "type": "registry", "provider": "in-memory"}), "name"),
        (json!({"type": "registry", "provider": "in-memory"}), "body"),
        (json!({"name": "x".repeat(200), "type": "registry", "provider": "in-memory"}), "name"),
        (json!({"name": "x", "type": "registry", "provider": "nope"}), "provider"),
        (json!({"name": "x", "type": "registry", "provider": "in-memory", "authRef": "vault:secret"}), "authRef"),
        (json!({"name": "x", "type": "registry", "provider": "in-memory", "baseUrl": "ftp://x"}), "baseUrl"),
        (
            json!({"name": "x", "type": "registry", "provider": "in-memory", "healthCheckInterval": 29}),
            "healthCheckInterval",
        ),
        (
            json!({"name": "x", "type": "registry", "provider": "in-memory", "healthCheckInterval": 86_401}),
            "healthCheckInterval",
        ),
        (
            json!({"name": "x", "type": "registry", "provider": "in-memory", "healthCheckInterval": -5}),
            "healthCheckInterval",
        ),
        (
            json!({"name": "x", "type": "registry", "provider": "in-memory", "healthCheckInterval": "5m"}),
            "healthCheckInterval",
        ),
        (
            json!({"name": "x", "type": "registry", "provider": "in-memory",
                   "configuration": {"nested": {"clientSecret": "hunter2"}}}),
            "configuration.nested.clientSecret",
        ),
    ];
    for (body, field) in cases {
        let r = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(body.clone())).await;
        assert_eq!((r.status, r.problem_type()), (StatusCode::UNPROCESSABLE_ENTITY, "validation"), "{body}");
        let fields: Vec<&str> =
            r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
        assert!(!r.body.to_string().contains("hunter2"), "a rejected secret is echoed: {}", r.body);
    }
    let r = app
        .send(
            Method::POST,
            "/api/v1/integrations",
            Some(&admin),
            Some(json!({"name": "x", "type": "registry", "provider": "nope"})),
        )
        .await;
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("in-memory"), "lists the available providers");
    let r = app
        .send(
            Method::POST,
            "/api/v1/integrations",
            Some(&admin),
            Some(json!({"name": "x", "type": "registry", "provider": "in-memory", "configuration": {"apiKey": "s3cr3t"}})),
        )
        .await;
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("authRef"), "{}", r.body);

    // JSON allows U+0000; it is kept as sent (PostgreSQL's JSONB could not hold it).
    let nul = json!({"name": "nul", "type": "registry", "provider": "in-memory", "configuration": {"a\u{0}b": {"c": "d\u{0}"}}});
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(nul.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["configuration"], nul["configuration"]);
    // A forged cursor is only a position: bytes that are no name still answer a page.
    for cursor in ["00.00000000000000000000000000000001", "ff.00000000000000000000000000000001"] {
        let r = app.send(Method::GET, &format!("/api/v1/integrations?cursor={cursor}"), Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{cursor}: {}", r.body);
    }

    let mut queries = ["limit=0", "limit=501", "limit=x", "status=broken", "type=teapot", "cursor=%%%", "paused=maybe"]
        .map(String::from)
        .to_vec();
    queries.push("stauts=active".into());
    for cursor in ["0.00000000000000000000000000000001", "00.0000000000000000000000000000001", "0"] {
        queries.push(format!("cursor={cursor}"));
    }
    for query in queries {
        let r = app.send(Method::GET, &format!("/api/v1/integrations?{query}"), Some(&admin), None).await;
        assert_eq!((r.status, r.problem_type()), (StatusCode::BAD_REQUEST, "bad-request"), "{query}");
    }
    let r = app.send(Method::PATCH, "/api/v1/integrations", Some(&admin), None).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"));
    assert!(r.header("allow").contains("GET"));
    let r = app.send(Method::GET, "/api/v2/nothing", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_lifecycle_runs_through_the_api_with_its_audit_and_events() {
    let app = app().await;
    let admin = app.admin();
    let id = app.create("flow").await;
    let uri = format!("/api/v1/integrations/{id}");

    let r = app.send(Method::POST, &format!("{uri}/pause"), Some(&admin), Some(json!({"reason": "x"}))).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::CONFLICT, "lifecycle-conflict"));
    assert_eq!(r.body["currentStatus"], "draft");
    assert_eq!(r.body["allowedActions"], json!(["activate", "test"]));

    let r = app.send(Method::GET, &format!("{uri}/tests/latest"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "never tested");

    let r = app.send(Method::POST, &format!("{uri}/activate"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["integration"]["status"], "active");
    assert_eq!(r.body["testResult"]["result"]["success"], true);
    assert_eq!(r.header("etag"), format!("\"{}\"", r.body["integration"]["version"]));

    let r = app.send(Method::POST, &format!("{uri}/pause"), Some(&admin), Some(json!({"reason": ""}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .send(
            Method::POST,
            &format!("{uri}/pause"),
            Some(&admin),
            Some(json!({"reason": "maintenance", "ticket": "OPS-42"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["paused"].as_bool()), (Some("paused"), Some(true)));
    assert_eq!((r.body["pauseReason"].as_str(), r.body["pauseTicket"].as_str()), (Some("maintenance"), Some("OPS-42")));
    let r = app.send(Method::POST, &format!("{uri}/resume"), Some(&admin), None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("active")));

    let r = app.send(Method::POST, &format!("{uri}/test"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send(Method::GET, &format!("{uri}/tests/latest"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["record"]["provider"], "in-memory");
    assert_eq!(r.body["record"]["operation"], "test-connection");
    let r = app.send(Method::GET, &format!("{uri}/health"), Some(&admin), None).await;
    assert_eq!((r.body["health"].as_str(), r.body["status"].as_str()), (Some("healthy"), Some("active")));
    assert_eq!((r.body["history"].as_array().map(Vec::len), &r.body["lastCheck"]), (Some(0), &Value::Null));
    assert!(r.body["summary"]["uptime24h"].is_null());
    assert_eq!((&r.body["checkIntervalSeconds"], &r.body["offline"]), (&json!(300), &json!(false)));

    // Three health checks, recorded the way the scheduler records them (through a second store on
    // the same database): newest first, paged by `before`, summarised.
    let store = stella_integrations::store::open(&app.config.storage.database_url()).await.unwrap();
    let id: uuid::Uuid = uri.rsplit('/').next().unwrap().parse().unwrap();
    let now_ms = stella_integrations::domain::unix_ms(stella_integrations::domain::now());
    for (n, (outcome, latency)) in
        [(CheckOutcome::Healthy, 10), (CheckOutcome::Unhealthy, 30), (CheckOutcome::Degraded, 20)]
            .into_iter()
            .enumerate()
    {
        let at = now_ms - 3_000 + n as i64 * 1_000;
        store.schedule_health_checks(at).await.unwrap();
        assert_eq!(store.lease_health_checks("test-replica", at, 60_000, 10).await.unwrap().len(), 1);
        let check = HealthCheck::new(
            stella_integrations::domain::from_unix_ms(at),
            outcome,
            None,
            latency,
            format!("check {n}"),
        );
        let finished = FinishedCheck {
            tenant_id: "acme".into(),
            integration_id: id,
            check,
            next_due_ms: at,
            version: 1,
            invocation: None,
            foldable: false,
        };
        assert!(store.finish_health_check("test-replica", &finished, None).await.unwrap());
    }
    let r = app.send(Method::GET, &format!("{uri}/health?limit=2"), Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let messages: Vec<&str> =
        r.body["history"].as_array().unwrap().iter().map(|c| c["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["check 2", "check 1"]);
    assert_eq!(
        (r.body["lastCheck"]["message"].as_str(), r.body["lastCheck"]["outcome"].as_str()),
        (Some("check 2"), Some("degraded"))
    );
    assert_eq!(r.body["summary"]["uptime24h"].as_f64(), Some(2.0 / 3.0));
    assert_eq!(
        (r.body["summary"]["latencyP50Ms"].as_u64(), r.body["summary"]["latencyP95Ms"].as_u64()),
        (Some(20), Some(30))
    );
    let cursor = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app.send(Method::GET, &format!("{uri}/health?before={cursor}"), Some(&admin), None).await;
    let messages: Vec<&str> =
        r.body["history"].as_array().unwrap().iter().map(|c| c["message"].as_str().unwrap()).collect();
    assert_eq!((messages, &r.body["nextCursor"]), (vec!["check 0"], &Value::Null));
    for bad in ["before=12", "before=1.not-a-uuid", "limit=0", "limit=501", "since=1"] {
        let r = app.send(Method::GET, &format!("{uri}/health?{bad}"), Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    let r = app.send(Method::GET, &format!("{uri}/audit?limit=3"), Some(&admin), None).await;
    let page1: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(page1, ["created", "activated", "tested"]);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app.send(Method::GET, &format!("{uri}/audit?after={cursor}"), Some(&admin), None).await;
    let page2: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = page2.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["paused", "resumed", "tested"]);
    assert_eq!(page2[0]["details"], json!({"reason": "maintenance", "ticket": "OPS-42"}));
    assert_eq!(page2[0]["actor"], "acme-user");
    assert!(r.body["nextCursor"].is_null());

    let r = app.send(Method::GET, "/api/v1/events", Some(&admin), None).await;
    let types: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["integration.created", "integration.healthy", "integration.paused", "integration.resumed"]);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app.send(Method::GET, &format!("/api/v1/events?after={cursor}"), Some(&admin), None).await;
    assert_eq!((r.body["items"].as_array().unwrap().len(), r.body["nextCursor"].as_str()), (0, Some(cursor.as_str())));
    let r = app.send(Method::GET, "/api/v1/events?after=-1", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Once the retention passed, the events are pruned: a poller behind them is told, with the
    // cursor from which the feed is whole again, instead of getting a page with a silent gap.
    let drop_all = Retention {
        ledger: Duration::from_secs(86_400),
        health_checks: Duration::from_secs(86_400),
        health_hours: Duration::from_secs(86_400),
        delivered_events: Duration::ZERO,
        undelivered_events: Some(Duration::ZERO),
    };
    let later = stella_integrations::domain::now() + time::Duration::seconds(1);
    assert_eq!(app.state.catalog.prune_all(&drop_all, later).await.unwrap().events, 4);
    for behind in ["0", "3"] {
        let r = app.send(Method::GET, &format!("/api/v1/events?after={behind}"), Some(&admin), None).await;
        assert_eq!((r.status, r.problem_type()), (StatusCode::GONE, "cursor-gone"), "{}", r.body);
        assert_eq!(r.header("content-type"), "application/problem+json");
        assert_eq!(r.body["oldestCursor"], "4", "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("after=4"), "{}", r.body);
    }
    for start in ["/api/v1/events", "/api/v1/events?after=4"] {
        let r = app.send(Method::GET, start, Some(&admin), None).await;
        assert_eq!((r.status, &r.body), (StatusCode::OK, &json!({"items": [], "nextCursor": "4"})), "{start}");
    }
    let r = app.send(Method::POST, &format!("{uri}/pause"), Some(&admin), Some(json!({"reason": "again"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/events?after=4", Some(&admin), None).await;
    assert_eq!(r.body["items"][0]["type"], "integration.paused", "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/events?after=2", Some(&admin), None).await;
    assert_eq!((r.status, &r.body["oldestCursor"]), (StatusCode::GONE, &json!("4")), "{}", r.body);

    let r = app.send(Method::GET, "/metrics", None, None).await;
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"stella_sandbox_invocations_total{operation="test-connection",provider="in-memory",outcome="success"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="/api/v1/integrations/{id}/pause",status="409"} 1"#), "{text}");
}

#[tokio::test]
async fn paging_with_a_cursor_never_repeats_or_skips_a_row_while_others_come_and_go() {
    let app = app().await;
    let admin = app.admin();
    let mut stable = BTreeSet::new();
    for i in 0..30 {
        let name = format!("stable-{i:02}");
        app.create(&name).await;
        stable.insert(name);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for churn in 0.. {
        assert!(churn < 100, "paging does not end");
        let uri = match &cursor {
            None => "/api/v1/integrations?limit=7".to_string(),
            Some(c) => format!("/api/v1/integrations?limit=7&cursor={c}"),
        };
        let r = app.send(Method::GET, &uri, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK);
        for item in r.body["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        // Between pages, rows appear before, among and after the stable ones, and some vanish.
        for prefix in ["a", "stable-15x", "zz"] {
            app.create(&format!("{prefix}-{churn:03}")).await;
        }
        let victims = app.send(Method::GET, "/api/v1/integrations?q=stable-15x-&limit=1", Some(&admin), None).await;
        if let Some(victim) = victims.body["items"][0]["integrationId"].as_str() {
            let d = app.send(Method::DELETE, &format!("/api/v1/integrations/{victim}"), Some(&admin), None).await;
            assert_eq!(d.status, StatusCode::NO_CONTENT);
        }
        cursor = r.body["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let stable_seen: Vec<&String> = seen.iter().filter(|n| stable.contains(*n)).collect();
    let unique: BTreeSet<&String> = stable_seen.iter().copied().collect();
    assert_eq!(unique.len(), stable_seen.len(), "a row was repeated: {seen:?}");
    assert_eq!(unique.len(), stable.len(), "a row was skipped: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages are in name order");
}

#[tokio::test]
async fn list_filters_select_what_they_name() {
    let app = app().await;
    let admin = app.admin();
    for (name, env, tags, owner) in [
        ("alpha", "prod", vec!["eu"], "team-a"),
        ("beta", "dev", vec!["us"], "team-b"),
        ("Gamma", "prod", vec!["eu", "us"], "team-a"),
    ] {
        let body = json!({"name": name, "type": "registry", "provider": "in-memory", "environment": env, "tags": tags, "ownerId": owner});
        let r = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let scm = json!({"name": "delta", "type": "scm", "provider": "in-memory"});
    let id = app.send(Method::POST, "/api/v1/integrations", Some(&admin), Some(scm)).await.body["integrationId"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(Method::POST, &format!("/api/v1/integrations/{id}/activate"), Some(&admin), None).await;
    app.send(Method::POST, &format!("/api/v1/integrations/{id}/pause"), Some(&admin), Some(json!({"reason": "r"})))
        .await;
    let names = |query: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let r = app.send(Method::GET, &format!("/api/v1/integrations?{query}"), Some(&admin), None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("").await, ["Gamma", "alpha", "beta", "delta"]);
    assert_eq!(names("environment=prod").await, ["Gamma", "alpha"]);
    assert_eq!(names("tag=us").await, ["Gamma", "beta"]);
    assert_eq!(names("owner=team-a&tag=eu").await, ["Gamma", "alpha"]);
    assert_eq!(names("type=scm").await, ["delta"]);
    assert_eq!(names("paused=true").await, ["delta"]);
    assert_eq!(names("paused=false&status=draft").await, ["Gamma", "alpha", "beta"]);
    assert_eq!(names("status=paused").await, ["delta"]);
    assert_eq!(names("provider=in-memory&q=AM").await, ["Gamma"]);
    assert_eq!(names("q=%25").await, Vec::<String>::new(), "a LIKE wildcard is matched literally");
}

#[tokio::test]
async fn plugins_probes_and_documents_are_served() {
    let app = app().await;
    let read = app.token("acme", "integrations.read");
    let r = app.send(Method::GET, "/api/v1/plugins", Some(&read), None).await;
    let items = r.body["items"].as_array().unwrap();
    let providers: Vec<&str> = items.iter().map(|p| p["provider"].as_str().unwrap()).collect();
    let builtins: Vec<&str> = stella_builtin_connectors::BUILTINS.iter().map(|(p, _)| *p).collect();
    let mut sorted = builtins.clone();
    sorted.sort();
    assert_eq!(providers, sorted, "every built-in connector, by provider id");
    let plugin = items.iter().find(|p| p["provider"] == "in-memory").unwrap();
    assert_eq!(plugin["source"].as_str(), Some("built-in"));
    assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    assert!(
        plugin["manifest"]["permissions"].is_object() && plugin["effectiveLimits"]["deadlineMs"].is_u64(),
        "{plugin}"
    );
    // What it may make the host keep, and what loading it cost.
    assert_eq!(plugin["effectiveLimits"]["maxHostCalls"], 256, "{plugin}");
    assert_eq!(plugin["effectiveLimits"]["maxRecordBytes"], 256 << 10, "{plugin}");
    assert!(plugin["compilation"]["compileMs"].is_u64() && plugin["compilation"]["fromCache"].is_boolean(), "{plugin}");
    assert!(r.body["failures"].as_array().unwrap().is_empty());
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory", Some(&read), None).await;
    assert_eq!(r.body["provider"], "in-memory");
    let r = app.send(Method::GET, "/api/v1/plugins/harbour", Some(&read), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    assert_eq!(app.send(Method::GET, "/healthz", None, None).await.body["status"], "ok");
    assert_eq!(app.send(Method::GET, "/readyz", None, None).await.body["status"], "ok");
    let r = app.send(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"), "{}", r.body["openapi"]);
    assert!(r.body["components"]["schemas"]["Integration"].is_object());
    // The served document pairs each provider with the types its connector serves.
    let pairs = r.body["components"]["schemas"]["IntegrationSpec"]["anyOf"].as_array().unwrap().clone();
    let types_of = |provider: &str| {
        let pair = pairs.iter().find(|p| p["properties"]["provider"]["const"] == provider).unwrap();
        pair["properties"]["type"]["enum"].as_array().unwrap().clone()
    };
    assert_eq!(types_of("in-memory").len(), 6);
    assert!(!types_of("http-probe").contains(&serde_json::json!("artifact")));
    let r = app.send(Method::GET, "/api/v1/docs", None, None).await;
    let html = r.body.as_str().unwrap();
    assert!(html.contains("/api/v1/integrations/{id}/pause") && html.contains("precondition-required"));
    assert!(!html.contains("<script"), "the reference page needs no script");
    // Nothing runs or loads but its own inline style (by hash), and no site may frame it.
    let csp = r.header("content-security-policy");
    assert!(csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let style = html.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style))
    };
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert_eq!((r.header("x-frame-options"), r.header("x-content-type-options")), ("DENY", "nosniff"));

    let r = app.send_with(Method::GET, "/healthz", None, None, &[("x-request-id", "req-123")]).await;
    assert_eq!(r.header("x-request-id"), "req-123");
    let r = app.send_with(Method::GET, "/healthz", None, None, &[("x-request-id", "has space")]).await;
    assert_ne!(r.header("x-request-id"), "has space");
}

#[tokio::test]
async fn a_local_key_is_generated_once_and_shared_by_serve_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = stella_integrations::config::AuthConfig::default();
    let first = auth::local_key(&config, dir.path()).unwrap();
    let again = auth::local_key(&config, dir.path()).unwrap();
    assert_eq!(first, again);
    assert!(first.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(auth::LOCAL_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is readable by others: {mode:o}");
    }
    std::fs::write(dir.path().join(auth::LOCAL_KEY_FILE), "short").unwrap();
    assert!(auth::local_key(&config, dir.path()).is_err());
}

/// Kills the service's PostgreSQL connections over and over while clients create and update
/// integrations: the clients get 503 problems (never a 500), the service recovers by itself, and
/// every mutation left its row, audit entry and event all together or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_give_503_and_never_a_partial_change() {
    let Some(db) = common::postgres_database().await else { return };
    let app = Arc::new(app_on(Some(db.url.clone())).await);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (stop, name) = (stop.clone(), db.name.clone());
        tokio::spawn(async move {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&common::postgres_admin_url()).await.unwrap();
            let mut killed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rows = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .fetch_all(&mut admin)
                .await
                .unwrap();
                killed += rows.len() as u64;
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
            killed
        })
    };

    let mut clients = Vec::new();
    for client in 0..4 {
        let app = app.clone();
        clients.push(tokio::spawn(async move {
            let admin = app.admin();
            let mut statuses = BTreeMap::<u16, u32>::new();
            for i in 0..60 {
                let r = app
                    .send(Method::POST, "/api/v1/integrations", Some(&admin), Some(spec(&format!("f-{client}-{i}"))))
                    .await;
                *statuses.entry(r.status.as_u16()).or_default() += 1;
                if r.status == StatusCode::SERVICE_UNAVAILABLE {
                    assert_eq!(r.problem_type(), "unavailable");
                    assert_eq!(r.header("retry-after"), "1");
                }
                if r.status == StatusCode::CREATED {
                    let id = r.body["integrationId"].as_str().unwrap();
                    let mut changed = spec(&format!("f-{client}-{i}"));
                    changed["description"] = json!("changed");
                    let uri = format!("/api/v1/integrations/{id}");
                    let r =
                        app.send_with(Method::PUT, &uri, Some(&admin), Some(changed), &[("if-match", "\"1\"")]).await;
                    *statuses.entry(r.status.as_u16()).or_default() += 1;
                }
            }
            statuses
        }));
    }
    let mut statuses = BTreeMap::<u16, u32>::new();
    for c in clients {
        for (status, n) in c.await.unwrap() {
            *statuses.entry(status).or_default() += n;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.unwrap();
    eprintln!("statuses under fault: {statuses:?}; connections killed: {killed}");
    assert!(statuses.keys().all(|s| matches!(s, 200 | 201 | 412 | 503)), "{statuses:?}");
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "no request met a killed connection: {statuses:?}");
    assert!(statuses.get(&201).copied().unwrap_or(0) > 0, "{statuses:?}");

    // The service recovers by itself.
    let mut recovered = false;
    for attempt in 0..50 {
        let r = app
            .send(Method::POST, "/api/v1/integrations", Some(&app.admin()), Some(spec(&format!("after-{attempt}"))))
            .await;
        if r.status == StatusCode::CREATED {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service did not recover once the connections stopped dying");
    let r = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Row, audit entry and event: all or nothing, for every mutation.
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let rows = names(&mut c, "SELECT name FROM integrations").await;
    let audited = names(&mut c, "SELECT details::json->>'name' FROM audit_entries WHERE action = 'created'").await;
    let evented =
        names(&mut c, "SELECT cloud_event::json->'data'->>'name' FROM events WHERE event_type = 'integration.created'")
            .await;
    assert_eq!(rows, audited, "rows and their audit entries differ");
    assert_eq!(rows, evented, "rows and their events differ");
    let per_row = sqlx::query(
        "SELECT i.version, (SELECT count(*) FROM audit_entries a WHERE a.integration_id = i.integration_id), \
                (SELECT count(*) FROM events e WHERE e.integration_id = i.integration_id) FROM integrations i",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for r in per_row {
        let (version, audits, events): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!((audits, events), (version, version), "each change of a row has one audit entry and one event");
    }
    drop(c);
    let store = stella_integrations::store::PostgresStore::connect(&db.url).await.unwrap();
    let report = stella_integrations::store::AuditStore::verify_audit(&store).await.unwrap();
    assert!(report.breaks.is_empty(), "{report:?}");
    drop(store);
    drop(app);
    db.drop_now().await;
}

async fn names(c: &mut sqlx::PgConnection, sql: &'static str) -> BTreeSet<String> {
    use sqlx::Row;
    sqlx::query(sql).fetch_all(c).await.unwrap().iter().map(|r| r.get::<String, _>(0)).collect()
}

/// A JWKS served over HTTP: fetched at start, and fetched again when a token names a key id the
/// service has not seen (the identity provider rotated its keys).
#[tokio::test]
async fn a_jwks_url_is_fetched_at_start_and_again_for_an_unknown_key_id() {
    let rsa: Value = serde_json::from_str(include_str!("fixtures/jwt-test-rsa.jwks.json")).unwrap();
    let served = Arc::new(std::sync::Mutex::new(json!({"keys": []})));
    let mut old = rsa["keys"][0].clone();
    old["kid"] = json!("old-key");
    *served.lock().unwrap() = json!({"keys": [old]});
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let idp = {
        let (served, fetches) = (served.clone(), fetches.clone());
        Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (served, fetches) = (served.clone(), fetches.clone());
                async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(served.lock().unwrap().clone())
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, idp).await.unwrap() });

    let mut config = stella_integrations::config::AuthConfig { local_tokens: Some(false), ..Default::default() };
    config.jwks_url = Some(format!("http://{address}/jwks.json"));
    let verifier = auth::Verifier::new(&config, None).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start");
    let token = |kid: &str| jwt(json!({"alg": "RS256", "kid": kid}), claims(json!({"iss": null})), rsa_sign);
    let principal = verifier.verify(&token("old-key")).await.unwrap();
    assert_eq!((principal.caller.tenant.as_str(), principal.caller.subject.as_str()), ("acme", "svc"));

    // The provider rotates: the same key under a new id. An unknown kid triggers a fetch, at most
    // once a minute, so a flood of bogus kids cannot turn the service into a JWKS hammer.
    let mut new = rsa["keys"][0].clone();
    new["kid"] = json!("new-key");
    *served.lock().unwrap() = json!({"keys": [new]});
    let refused = verifier.verify(&token("new-key")).await;
    assert!(refused.is_err(), "the last fetch was less than a minute ago");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let eager = auth::Verifier::new(
        &stella_integrations::config::AuthConfig { jwks_refresh_seconds: 0, ..config.clone() },
        None,
    )
    .await
    .unwrap();
    *served.lock().unwrap() = json!({"keys": [rsa["keys"][0].clone()]});
    // The interval has a floor of one second, whatever the configuration says.
    assert!(eager.verify(&token("test-rsa")).await.is_err());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(eager.verify(&token("test-rsa")).await.is_ok(), "an unknown kid fetches the rotated set");
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    assert!(eager.verify(&token("old-key")).await.is_err(), "a retired key no longer verifies");
    // Without local tokens, an HS256 token is refused whatever its signature.
    let hs = auth::sign_hs256(KEY.as_bytes(), &json!({"alg": "HS256"}), &claims(json!({})));
    assert!(eager.verify(&hs).await.is_err());

    let unreachable =
        stella_integrations::config::AuthConfig { jwks_url: Some("http://127.0.0.1:9/jwks.json".into()), ..config };
    let e = auth::Verifier::new(&unreachable, None).await.unwrap_err();
    assert!(e.contains("127.0.0.1:9"), "{e}");
}

#[tokio::test]
async fn a_local_token_must_carry_the_local_issuer_when_none_is_configured() {
    let config = stella_integrations::config::AuthConfig::default();
    let verifier = auth::Verifier::new(&config, Some(KEY.as_bytes().to_vec())).await.unwrap();
    let with_iss =
        |iss: Value| auth::sign_hs256(KEY.as_bytes(), &json!({"alg": "HS256"}), &claims(json!({"iss": iss})));
    assert!(verifier.verify(&with_iss(json!(stella_integrations::config::LOCAL_ISSUER))).await.is_ok());
    assert!(verifier.verify(&with_iss(Value::Null)).await.is_err(), "no iss");
    assert!(verifier.verify(&with_iss(json!(ISSUER))).await.is_err(), "another issuer");
    let minted = auth::issue_local_token(
        &config,
        KEY.as_bytes(),
        &TokenRequest {
            tenant: "t".into(),
            scopes: vec![],
            subject: "s".into(),
            ttl: std::time::Duration::from_secs(60),
        },
    );
    assert!(verifier.verify(&minted).await.is_ok());
    // Extreme times neither overflow nor pass.
    let far = auth::sign_hs256(
        KEY.as_bytes(),
        &json!({"alg": "HS256"}),
        &claims(json!({"iss": stella_integrations::config::LOCAL_ISSUER, "exp": i64::MIN, "nbf": i64::MAX})),
    );
    assert!(verifier.verify(&far).await.is_err());
    // With a JWKS configured, local tokens are off unless asked for.
    let jwks_only = stella_integrations::config::AuthConfig { jwks_file: Some("x".into()), ..Default::default() };
    assert!(!jwks_only.local_tokens_enabled());
    assert!(stella_integrations::config::AuthConfig { local_tokens: Some(true), ..jwks_only }.local_tokens_enabled());
}

/// Sends a raw import body with this content type.
async fn import_raw(app: &App, token: &str, query: &str, content_type: &str, body: String) -> Reply {
    let request = Request::post(format!("/api/v1/integrations/import{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    app.raw(request).await
}

fn results(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap_or("-").to_string(), i["result"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn export_and_import_move_integrations_between_environments_by_name() {
    let app = app().await;
    let acme = app.admin();
    // Source: two integrations, one activated and paused (its state is not exported).
    let full = json!({"name": "b-harbor", "type": "registry", "provider": "in-memory", "description": "prod registry",
        "baseUrl": "https://harbor.example.com", "authRef": "ref://integrations/harbor/robot",
        "configuration": {"project": "library"}, "tags": ["eu", "critical"], "environment": "prod",
        "ownerId": "team-platform", "healthCheckInterval": 600});
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&acme), Some(full.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let paused = app.create_tested("a-feeds").await;
    let pause = json!({"reason": "maintenance"});
    let r = app.send(Method::POST, &format!("/api/v1/integrations/{paused}/pause"), Some(&acme), Some(pause)).await;
    assert_eq!(r.status, StatusCode::OK);

    // Export: name order, what a client sets and nothing else.
    let reader = app.token("acme", "integrations.read");
    let r = app.send(Method::GET, "/api/v1/integrations/export", Some(&reader), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["format"], "stellaops.integrations/v1");
    let exported = r.body["integrations"].as_array().unwrap().clone();
    let names: Vec<&str> = exported.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a-feeds", "b-harbor"]);
    for (key, value) in full.as_object().unwrap() {
        assert_eq!(&exported[1][key], value, "{key}");
    }
    for field in ["integrationId", "tenantId", "status", "paused", "version", "lastTestSuccess", "createdBy"] {
        assert!(exported.iter().all(|i| i.get(field).is_none()), "{field} is exported: {exported:?}");
    }
    let r = app
        .send_with(
            Method::GET,
            "/api/v1/integrations/export",
            Some(&reader),
            None,
            &[("accept", "application/x-ndjson")],
        )
        .await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::OK, "application/x-ndjson"));
    let lines: Vec<Value> = r.body.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, exported);
    let document = json!({"format": "stellaops.integrations/v1", "integrations": exported});

    // Into another environment (here: another tenant). A dry run changes nothing.
    let globex = app.token("globex", "integrations.admin integrations.read");
    let r =
        app.send(Method::POST, "/api/v1/integrations/import?dryRun=true", Some(&globex), Some(document.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(results(&r.body), [("a-feeds".into(), "created".into()), ("b-harbor".into(), "created".into())]);
    assert_eq!((r.body["dryRun"].as_bool(), r.body["created"].as_u64()), (Some(true), Some(2)));
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&globex), None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = app.send(Method::GET, "/api/v1/events", Some(&globex), None).await;
    assert_eq!(r.body["items"], json!([]));

    let r = app.send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(document.clone())).await;
    assert_eq!(results(&r.body), [("a-feeds".into(), "created".into()), ("b-harbor".into(), "created".into())]);
    let r = app.send(Method::GET, "/api/v1/integrations/export", Some(&globex), None).await;
    assert_eq!(r.body["integrations"], document["integrations"], "an import reproduces the export");
    let r = app.send(Method::GET, "/api/v1/integrations?status=draft", Some(&globex), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "imported integrations start as drafts");
    let id = r.body["items"][1]["integrationId"].as_str().unwrap().to_string();
    let r = app.send(Method::GET, &format!("/api/v1/integrations/{id}/audit"), Some(&globex), None).await;
    assert_eq!(
        (r.body["items"][0]["action"].as_str(), r.body["items"][0]["actor"].as_str()),
        (Some("created"), Some("globex-user"))
    );
    let events_after_import =
        app.send(Method::GET, "/api/v1/events", Some(&globex), None).await.body["items"].as_array().unwrap().len();
    assert_eq!(events_after_import, 2);

    // Again: nothing changes, nothing is written.
    let r = app.send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(document.clone())).await;
    assert_eq!(
        (r.body["unchanged"].as_u64(), r.body["created"].as_u64(), r.body["updated"].as_u64()),
        (Some(2), Some(0), Some(0))
    );
    assert_eq!(
        app.send(Method::GET, "/api/v1/events", Some(&globex), None).await.body["items"].as_array().unwrap().len(),
        2
    );

    // A changed item is updated; bad items are refused one by one, and do not stop the others.
    let mut changed = document["integrations"][1].clone();
    changed["description"] = json!("moved");
    changed["tags"] = json!(["eu"]);
    let items = json!([
        {"name": "c-bad-url", "type": "registry", "provider": "in-memory", "baseUrl": "ftp://x"},
        changed,
        {"name": "d-new", "type": "registry", "provider": "in-memory"},
        {"name": "d-new", "type": "scm", "provider": "in-memory"},
        {"name": "e-secret", "type": "registry", "provider": "in-memory", "configuration": {"password": "hunter2"}},
        {"name": "f-unknown", "type": "registry", "provider": "in-memory", "colour": "red"},
        "not an object",
        {"name": "g-provider", "type": "registry", "provider": "nope"},
    ]);
    let r = app
        .send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(json!({"integrations": items})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = results(&r.body);
    let expected: Vec<(String, String)> = [
        ("c-bad-url", "error"),
        ("b-harbor", "updated"),
        ("d-new", "created"),
        ("d-new", "error"),
        ("e-secret", "error"),
        ("f-unknown", "error"),
        ("-", "error"),
        ("g-provider", "error"),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), r.to_string()))
    .collect();
    assert_eq!(got, expected, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[1]["changed"], json!(["description", "tags"]));
    assert_eq!(items[0]["errors"][0]["field"], "baseUrl");
    assert!(items[3]["errors"][0]["message"].as_str().unwrap().contains("earlier item"), "{}", items[3]);
    assert_eq!(items[4]["errors"][0]["field"], "configuration.password");
    assert!(!r.body.to_string().contains("hunter2"), "a refused secret is echoed");
    assert_eq!(items[5]["errors"][0]["field"], "colour");
    assert_eq!(items[6]["errors"][0]["field"], "body");
    assert_eq!(items[7]["errors"][0]["field"], "provider");
    // An item over 256 KiB is refused as a whole, before it is read.
    let huge = json!({"integrations": [{"name": "j-huge", "type": "registry", "provider": "in-memory",
                                        "padding": "x".repeat(300 * 1024)}]});
    let big = app.send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(huge)).await;
    assert_eq!(big.status, StatusCode::OK, "{}", big.body);
    let message = big.body["items"][0]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 262144 bytes"), "{message}");
    assert_eq!(
        (r.body["created"].as_u64(), r.body["updated"].as_u64(), r.body["failed"].as_u64()),
        (Some(1), Some(1), Some(6))
    );
    let r = app.send(Method::GET, "/api/v1/events", Some(&globex), None).await;
    let types: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["integration.created", "integration.created", "integration.updated", "integration.created"]);

    // NDJSON, line by line; a line that is not JSON is that item's error.
    let two = format!(
        "{}{}",
        json!({"name": "i-one", "type": "ci", "provider": "in-memory"}),
        json!({"name": "i-two", "type": "ci", "provider": "in-memory"})
    );
    let h_line = json!({"name": "h-line", "type": "ci", "provider": "in-memory"});
    let ndjson = format!("{h_line}\n\nnot json\n{changed}\n{two}\n");
    let r = import_raw(&app, &globex, "", "application/x-ndjson", ndjson).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        results(&r.body),
        [
            ("h-line".into(), "created".into()),
            ("-".into(), "error".into()),
            ("b-harbor".into(), "unchanged".into()),
            ("-".into(), "error".into())
        ]
    );
    assert!(r.body["items"][1]["errors"][0]["message"].as_str().unwrap().contains("not valid JSON"), "{}", r.body);

    // The request as a whole: wrong media type, not a document, another format, too many items,
    // a bad query; a reader may not import. None of them changes anything.
    let before =
        app.send(Method::GET, "/api/v1/integrations/export", Some(&globex), None).await.body["integrations"].clone();
    let r = import_raw(&app, &globex, "", "text/plain", document.to_string()).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"));
    let r = import_raw(&app, &globex, "", "application/json", "[1, 2]".into()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = import_raw(&app, &globex, "", "application/json", "{\"integrations\": [".into()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app
        .send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(json!({"integrations": [], "extra": 1})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .send(
            Method::POST,
            "/api/v1/integrations/import",
            Some(&globex),
            Some(json!({"format": "v0", "integrations": []})),
        )
        .await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("format")));
    let many: Vec<Value> = (0..10_001).map(|n| json!({"name": format!("x{n}")})).collect();
    let r =
        app.send(Method::POST, "/api/v1/integrations/import", Some(&globex), Some(json!({"integrations": many}))).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("integrations"))
    );
    let r =
        app.send(Method::POST, "/api/v1/integrations/import?dryRun=maybe", Some(&globex), Some(document.clone())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let huge = format!("{{\"integrations\": [\"{}\"]}}", "a".repeat(17 << 20));
    let r = import_raw(&app, &globex, "", "application/json", huge).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"));
    let reader = app.token("globex", "integrations.read");
    let r = app.send(Method::POST, "/api/v1/integrations/import", Some(&reader), Some(document.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let after =
        app.send(Method::GET, "/api/v1/integrations/export", Some(&globex), None).await.body["integrations"].clone();
    assert_eq!(before, after);
    // The source tenant is untouched by all of it.
    let r = app.send(Method::GET, "/api/v1/integrations/export", Some(&reader_of(&app, "acme")), None).await;
    assert_eq!(r.body["integrations"], document["integrations"]);
}

fn reader_of(app: &App, tenant: &str) -> String {
    app.token(tenant, "integrations.read")
}

#[tokio::test]
async fn an_import_the_database_fails_midway_reports_what_was_imported_and_finishes_when_run_again() {
    let Some(db) = common::postgres_database().await else { return };
    let app = app_on(Some(db.url.clone())).await;
    let admin = app.admin();
    // The database refuses one row (as a full disk or a lost connection would, but only there).
    let raw = |sql: &'static str| {
        let url = db.url.clone();
        async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    };
    raw("CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.name = 'b-boom' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_boom BEFORE INSERT ON integrations FOR EACH ROW EXECUTE FUNCTION refuse_boom();")
    .await;
    let file = json!({"integrations": [spec("a-first"), spec("b-boom"), spec("c-last")]});
    let r = app.send(Method::POST, "/api/v1/integrations/import", Some(&admin), Some(file.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        results(&r.body),
        [("a-first".into(), "created".into()), ("b-boom".into(), "error".into()), ("c-last".into(), "error".into())]
    );
    assert!(r.body["items"][2]["message"].as_str().unwrap().contains("import the file again"), "{}", r.body);
    assert!(!r.body.to_string().contains("disk full"), "a database message reached the client: {}", r.body);
    raw("DROP TRIGGER refuse_boom ON integrations").await;
    let r = app.send(Method::POST, "/api/v1/integrations/import", Some(&admin), Some(file)).await;
    assert_eq!(
        results(&r.body),
        [
            ("a-first".into(), "unchanged".into()),
            ("b-boom".into(), "created".into()),
            ("c-last".into(), "created".into())
        ]
    );
    drop(app);
    db.drop_now().await;
}

#[tokio::test]
async fn the_health_endpoint_says_when_the_service_is_offline_and_an_integration_s_own_interval() {
    let app = app_with(|c| {
        c.health.offline = true;
        c.health.interval_seconds = 900;
    })
    .await;
    let id = app.create("offline-one").await;
    let r = app.send(Method::GET, &format!("/api/v1/integrations/{id}/health"), Some(&app.admin()), None).await;
    assert_eq!((&r.body["offline"], &r.body["checkIntervalSeconds"]), (&json!(true), &json!(900)), "{}", r.body);
    let mut body = spec("offline-one");
    body["healthCheckInterval"] = json!(45);
    let r = app
        .send_with(
            Method::PUT,
            &format!("/api/v1/integrations/{id}"),
            Some(&app.admin()),
            Some(body),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!((r.status, &r.body["healthCheckInterval"]), (StatusCode::OK, &json!(45)), "{}", r.body);
    let r = app.send(Method::GET, &format!("/api/v1/integrations/{id}/health"), Some(&app.admin()), None).await;
    assert_eq!(r.body["checkIntervalSeconds"], 45);
}

/// A signer as a third party has one: an ECDSA P-256 key (PEM PKCS#8), whose public key the
/// operator trusts.
struct Signer {
    private_pem: String,
    public_pem: String,
}

impl Signer {
    fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let spki_prefix = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let spki = [&spki_prefix[..], pair.public_key().as_ref()].concat();
        Self {
            private_pem: format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                b64.encode(pkcs8.as_ref())
            ),
            public_pem: format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", b64.encode(spki)),
        }
    }

    /// The public key in a file, as an operator configures it (the directory lives as long as
    /// the returned guard).
    fn trusted(&self) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendor.pub");
        std::fs::write(&path, &self.public_pem).unwrap();
        (dir, path)
    }

    /// The `Stella-Signature` header value for `wasm`: the base64 of the signature file.
    fn header(&self, wasm: &[u8]) -> String {
        let (sig, _) = stella_runtime::signature::sign_cosign(&self.private_pem, wasm).unwrap();
        base64::engine::general_purpose::STANDARD.encode(sig)
    }
}

/// The built-in in-memory connector, repackaged as version `version` with `permissions` (TOML
/// lines of its `[permissions]` table): new bytes a third party could ship.
fn in_memory_as(version: &str, permissions: &str) -> Vec<u8> {
    let (_, wasm) = stella_builtin_connectors::BUILTINS.iter().find(|(p, _)| *p == "in-memory").unwrap();
    let mut manifest = stella_runtime::inspect::describe(wasm).unwrap().manifest;
    manifest.connector.version = version.into();
    let table: toml::Table = toml::from_str(permissions).unwrap();
    manifest.permissions = table.try_into().unwrap();
    stella_runtime::manifest::embed_manifest(wasm, &manifest).unwrap()
}

/// The version and source of the in-memory connector the app serves now.
async fn loaded(app: &App) -> (String, String) {
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory", Some(&app.admin()), None).await;
    (r.body["version"].as_str().unwrap().to_string(), r.body["source"].as_str().unwrap().to_string())
}

impl App {
    async fn submit(&self, token: &str, wasm: &[u8], signatures: &[String]) -> Reply {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/plugins")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/wasm");
        for s in signatures {
            request = request.header("stella-signature", s);
        }
        self.raw(request.body(Body::from(wasm.to_vec())).unwrap()).await
    }
}

#[tokio::test]
async fn connector_code_runs_only_once_its_exact_permissions_are_approved() {
    let signer = Signer::new();
    let (_keys, key_path) = signer.trusted();
    let app = app_with(|c| {
        c.plugins.trusted_keys = vec![key_path];
        c.plugins.auto_approve = stella_integrations::config::AutoApprove::NarrowerSigned;
    })
    .await;
    let reviewer = app.token("platform", "plugins.admin");
    let builtin_sha = app.send(Method::GET, "/api/v1/plugins/in-memory", Some(&app.admin()), None).await.body["sha256"]
        .as_str()
        .unwrap()
        .to_string();

    // A version asking for a host the built-in does not: signed, but it waits for review, and the
    // built-in keeps serving.
    let wider = in_memory_as("2.0.0", "hosts = [\"https://wider.example\"]");
    let r = app.submit(&reviewer, &wider, &[signer.header(&wider)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["active"].as_bool()), (Some("pending"), Some(false)));
    assert_eq!(r.body["signedBy"].as_str().unwrap()[..7].to_string(), "cosign:");
    assert_eq!(r.body["diff"]["against"], "built-in");
    assert_eq!(r.body["diff"]["hostsAdded"], json!(["https://wider.example"]));
    assert_eq!(r.body["diff"]["narrowerOrEqual"], false);
    let digest = r.body["permissionsDigest"].as_str().unwrap().to_string();
    assert_eq!(loaded(&app).await.1, "built-in");
    let again = app.submit(&reviewer, &wider, &[]).await;
    assert_eq!(again.status, StatusCode::OK, "the same bytes again answer the stored version: {}", again.body);

    // A tenant's admin cannot admit code, nor read the store.
    let r = app.submit(&app.admin(), &wider, &[signer.header(&wider)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Approval names exactly the permissions reviewed.
    let approve = |version: &str, digest: &str| {
        let (app, reviewer) = (&app, reviewer.clone());
        let uri = format!("/api/v1/plugins/in-memory/versions/{version}/approve");
        let body = json!({"permissionsDigest": digest});
        async move { app.send(Method::POST, &uri, Some(&reviewer), Some(body)).await }
    };
    let r = approve("2.0.0", "sha256:0000").await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::CONFLICT, "plugin-conflict"), "{}", r.body);
    // The refusal does not hand over the digest: a script reading it could approve unreviewed
    // permissions.
    assert!(!r.body.to_string().contains(&digest), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("review its permissions"), "{}", r.body);
    let r = approve("2.0.0", &digest).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["active"].as_bool()), (Some("approved"), Some(true)));
    assert_eq!(loaded(&app).await, ("2.0.0".to_string(), "stored".to_string()));
    let r = approve("2.0.0", &digest).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "approving twice: {}", r.body);

    // An integration of the provider runs the active version.
    let id = app.create_tested("runs-active").await;
    let r = app.send(Method::POST, &format!("/api/v1/integrations/{id}/test"), Some(&app.admin()), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Narrower and signed by the same key: approved and active at once, by the policy.
    let narrower = in_memory_as("2.0.1", "");
    let r = app.submit(&reviewer, &narrower, &[signer.header(&narrower)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["active"].as_bool()), (Some("approved"), Some(true)), "{}", r.body);
    assert_eq!(r.body["decidedBy"], "auto-approve");
    assert_eq!(loaded(&app).await.0, "2.0.1");

    // Wider again: pending, with its diff against 2.0.1; the active version keeps serving; then
    // rejected, after which it can be neither approved nor activated.
    let widest = in_memory_as("3.0.0", "hosts = [\"https://*.example.com\"]\nreveal-secrets = true");
    let r = app.submit(&reviewer, &widest, &[signer.header(&widest)]).await;
    assert_eq!(r.body["status"], "pending", "{}", r.body);
    assert_eq!(r.body["diff"]["against"], "2.0.1");
    assert_eq!(r.body["diff"]["revealSecrets"], "on");
    assert_eq!(loaded(&app).await.0, "2.0.1");
    let uri = "/api/v1/plugins/in-memory/versions/3.0.0/reject";
    let r = app.send(Method::POST, uri, Some(&reviewer), Some(json!({"reason": ""}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a rejection needs a reason: {}", r.body);
    let r = app.send(Method::POST, uri, Some(&reviewer), Some(json!({"reason": "asks for every host"}))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("rejected")), "{}", r.body);
    let r = app.send(Method::POST, "/api/v1/plugins/in-memory/versions/3.0.0/activate", Some(&reviewer), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // Rollback to an older approved version.
    let r = app.send(Method::POST, "/api/v1/plugins/in-memory/versions/2.0.0/activate", Some(&reviewer), None).await;
    assert_eq!((r.status, r.body["active"].as_bool()), (StatusCode::OK, Some(true)), "{}", r.body);
    assert_eq!(loaded(&app).await.0, "2.0.0");
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory/versions", Some(&reviewer), None).await;
    let versions: Vec<(&str, &str, bool)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_str().unwrap(), v["status"].as_str().unwrap(), v["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(versions, [("3.0.0", "rejected", false), ("2.0.1", "approved", false), ("2.0.0", "approved", true)]);
    assert_ne!(builtin_sha, r.body["items"][2]["sha256"].as_str().unwrap());

    // Refused and stored nowhere: unsigned, signed over other bytes, not a component, not wasm.
    let unsigned = in_memory_as("4.0.0", "");
    let r = app.submit(&reviewer, &unsigned, &[]).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::UNPROCESSABLE_ENTITY, "plugin-refused"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("signature by a trusted key is required"), "{}", r.body);
    let r = app.submit(&reviewer, &unsigned, &[signer.header(&narrower)]).await;
    assert_eq!(r.problem_type(), "plugin-refused", "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("does not verify"), "{}", r.body);
    let r = app.submit(&reviewer, b"\0asm garbage", &[signer.header(b"\0asm garbage")]).await;
    assert_eq!(r.problem_type(), "plugin-refused", "{}", r.body);
    let r = app.submit(&reviewer, &unsigned, &["not base64!".into()]).await;
    assert_eq!(r.problem_type(), "plugin-refused", "{}", r.body);
    let r = app.send(Method::POST, "/api/v1/plugins", Some(&reviewer), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory/versions/4.0.0", Some(&reviewer), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a refused component was stored: {}", r.body);
    let five = vec![signer.header(&unsigned); 5];
    let r = app.submit(&reviewer, &unsigned, &five).await;
    assert_eq!(r.problem_type(), "plugin-refused", "{}", r.body);

    // The platform's audit trail has every step, chained, with who did it.
    let r = app.send(Method::GET, "/api/v1/plugin-audit?limit=500", Some(&reviewer), None).await;
    let steps: Vec<(String, String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["version"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("submitted", "2.0.0", "platform-user"),
        ("approved", "2.0.0", "platform-user"),
        ("activated", "2.0.0", "platform-user"),
        ("submitted", "2.0.1", "platform-user"),
        ("approved", "2.0.1", "auto-approve"),
        ("activated", "2.0.1", "auto-approve"),
        ("submitted", "3.0.0", "platform-user"),
        ("rejected", "3.0.0", "platform-user"),
        ("activated", "2.0.0", "platform-user"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, v, w)| (a.to_string(), v.to_string(), w.to_string())).collect();
    assert_eq!(steps, expected);
    let items = r.body["items"].as_array().unwrap();
    assert!(items.windows(2).all(|w| w[1]["prevHash"] == w[0]["hash"]));
    assert_eq!(r.body["nextCursor"], "9");

    let r = app.send(Method::GET, "/api/v1/plugin-policy", Some(&reviewer), None).await;
    assert_eq!(r.body["requireSignature"], true);
    assert_eq!(r.body["autoApprove"], "narrower-signed");
    assert!(r.body["trustedKeys"][0].as_str().unwrap().starts_with("cosign:"), "{}", r.body);
}

#[tokio::test]
async fn a_new_providers_code_never_runs_while_pending_and_exceptions_are_named() {
    let signer = Signer::new();
    let (_keys, key_path) = signer.trusted();
    let app = app_with(|c| {
        c.plugins.trusted_keys = vec![key_path];
        c.plugins.unsigned_exceptions = vec!["test-program".into()];
    })
    .await;
    let reviewer = app.token("platform", "plugins.admin");
    let wasm = std::fs::read(test_programs_artifacts::WELL_BEHAVED).unwrap();
    let r = app.submit(&reviewer, &wasm, &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["unsignedException"].as_bool()), (Some("pending"), Some(true)));
    assert!(r.body["diff"]["against"].is_null(), "a new provider is compared with nothing: {}", r.body);
    let digest = r.body["permissionsDigest"].as_str().unwrap().to_string();
    let version = r.body["version"].as_str().unwrap().to_string();

    // Pending: no integration of the provider can be created, let alone tested.
    let spec = json!({"name": "new-provider", "type": "registry", "provider": "test-program"});
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&app.admin()), Some(spec.clone())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/plugins/test-program", Some(&app.admin()), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None).await.body;
    let providers = &doc["components"]["schemas"]["IntegrationSpec"]["properties"]["provider"]["enum"];
    assert!(!providers.as_array().unwrap().contains(&json!("test-program")), "{providers}");

    let uri = format!("/api/v1/plugins/test-program/versions/{version}/approve");
    let r = app.send(Method::POST, &uri, Some(&reviewer), Some(json!({"permissionsDigest": digest}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.send(Method::POST, "/api/v1/integrations", Some(&app.admin()), Some(spec)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The served document names the new provider too.
    let doc = app.send(Method::GET, "/api/v1/openapi.json", None, None).await.body;
    let providers = &doc["components"]["schemas"]["IntegrationSpec"]["properties"]["provider"]["enum"];
    assert!(providers.as_array().unwrap().contains(&json!("test-program")), "{providers}");

    let r = app.send(Method::GET, "/api/v1/plugin-policy", Some(&reviewer), None).await;
    assert_eq!(r.body["unsignedExceptions"], json!(["test-program"]));
}

#[tokio::test]
async fn an_admission_policy_that_cannot_hold_is_refused_at_start() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("vendor.pub"), Signer::new().public_pem).unwrap();
    std::fs::write(keys.path().join("junk.pub"), "not a key").unwrap();
    type Configure<'a> = Box<dyn Fn(&mut Config) + 'a>;
    let configs: [(&str, Configure); 4] = [
        (
            "cannot be false",
            Box::new(|c: &mut Config| {
                c.plugins.trusted_keys = vec![keys.path().join("vendor.pub")];
                c.plugins.require_signature = Some(false);
            }),
        ),
        ("junk.pub", Box::new(|c: &mut Config| c.plugins.trusted_keys = vec![keys.path().join("junk.pub")])),
        ("not a provider id", Box::new(|c: &mut Config| c.plugins.unsigned_exceptions = vec!["Bad Id".into()])),
        // The same key twice (a minisign key id is chosen by its maker): signers must be told apart.
        (
            "same key id",
            Box::new(|c: &mut Config| {
                std::fs::copy(keys.path().join("vendor.pub"), keys.path().join("copy.pub")).unwrap();
                c.plugins.trusted_keys = vec![keys.path().join("vendor.pub"), keys.path().join("copy.pub")];
            }),
        ),
    ];
    for (needle, configure) in configs {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        config.storage.plugins_dir = None;
        configure(&mut config);
        let e = build_state(&config, None).await.unwrap_err();
        assert!(e.contains(needle) && e.contains("plugins."), "{needle}: {e}");
    }
}

/// Approves a version as a reviewer who read it (`version` is its answer).
async fn approve(app: &App, reviewer: &str, provider: &str, version: &Value) -> Reply {
    let uri = format!("/api/v1/plugins/{provider}/versions/{}/approve", version["version"].as_str().unwrap());
    let body = json!({"permissionsDigest": version["permissionsDigest"]});
    app.send(Method::POST, &uri, Some(reviewer), Some(body)).await
}

#[tokio::test]
async fn the_policy_in_effect_decides_what_may_be_approved_and_what_runs() {
    // Admitted while no key was trusted: one version approved (active), one pending. Then the
    // operator configures a key (the next start of the same database): the active unsigned
    // version no longer runs, and the pending one can no longer be approved.
    let before = app().await;
    let reviewer = before.token("platform", "plugins.admin");
    let running = before.submit(&reviewer, &std::fs::read(test_programs_artifacts::WELL_BEHAVED).unwrap(), &[]).await;
    assert_eq!((running.status, running.body["signedBy"].is_null()), (StatusCode::CREATED, true), "{}", running.body);
    assert_eq!(approve(&before, &reviewer, "test-program", &running.body).await.status, StatusCode::OK);
    let pending = before.submit(&reviewer, &std::fs::read(test_programs_artifacts::FLOOD).unwrap(), &[]).await;
    assert_eq!(pending.status, StatusCode::CREATED, "{}", pending.body);
    let r = before.send(Method::GET, "/api/v1/plugins/test-program", Some(&before.admin()), None).await;
    assert_eq!(r.status, StatusCode::OK);

    let (_keys, key_path) = Signer::new().trusted();
    let mut config = before.config.clone();
    config.plugins.trusted_keys = vec![key_path];
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let served = build_state(&config, None).await.unwrap();
    let after = App {
        state: served.api.clone(),
        router: router(served),
        config,
        ec_key: EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let r = after.send(Method::GET, "/api/v1/plugins/test-program", Some(&after.admin()), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "unsigned code kept running: {}", r.body);
    let r = after.send(Method::GET, "/api/v1/plugins", Some(&after.admin()), None).await;
    let failures = r.body["failures"].to_string();
    assert!(failures.contains("test-program") && failures.contains("requires a signature"), "{failures}");

    let r = approve(&after, &reviewer, "test-program-flood", &pending.body).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::CONFLICT, "plugin-conflict"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("requires a signature by a trusted key"), "{}", r.body);
    let uri = format!("/api/v1/plugins/test-program-flood/versions/{}", pending.body["version"].as_str().unwrap());
    let r = after.send(Method::GET, &uri, Some(&reviewer), None).await;
    assert_eq!(r.body["status"], "pending", "{}", r.body);
}

#[tokio::test]
async fn unsigned_code_never_reaches_the_compiler_when_signatures_are_required() {
    let cache = tempfile::tempdir().unwrap();
    let signer = Signer::new();
    let (_keys, key_path) = signer.trusted();
    let cache_dir = cache.path().join("compiled");
    let app = app_with(|c| {
        c.plugins.trusted_keys = vec![key_path];
        c.sandbox.cache_dir = Some(cache_dir.clone());
    })
    .await;
    let reviewer = app.token("platform", "plugins.admin");
    let compiled = || std::fs::read_dir(&cache_dir).map(|d| d.count()).unwrap_or(0);
    let before = compiled();
    let wasm = std::fs::read(test_programs_artifacts::WELL_BEHAVED).unwrap();
    let r = app.submit(&reviewer, &wasm, &[]).await;
    assert_eq!(r.problem_type(), "plugin-refused", "{}", r.body);
    assert_eq!(compiled(), before, "an unsigned component was compiled (its code is in the compile cache)");
    // Signed, it is compiled (and so cached): the count above could have changed.
    let r = app.submit(&reviewer, &wasm, &[signer.header(&wasm)]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(compiled() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_is_bounded_by_the_component_limit_before_a_byte_of_it_is_read() {
    use stella_integrations::plugins::oci;
    let registry = stella_test_support::registry::Registry::start(&[("ci-bot", "pw")]);
    let host = registry.url.trim_start_matches("https://").to_string();
    let access = oci::RegistryAccess {
        credentials: Some(("ci-bot".into(), stella_runtime::secrets::SecretValue::new("pw".into()))),
        ca_pem: Some(registry.ca_pem.clone().into_bytes()),
        plain_http: false,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let wasm = std::fs::read(test_programs_artifacts::WELL_BEHAVED).unwrap();
    let reference = oci::parse_reference(&format!("{host}/c/test-program:1")).unwrap();
    oci::push(&reference, wasm.clone(), &[], &access).await.unwrap();

    // The same pull, by a client whose limit is one byte short.
    let e = oci::pull(&reference, &access, wasm.len() as u64 - 1).await.unwrap_err().to_string();
    assert!(e.contains(&format!("declares {} bytes; the limit is", wasm.len())), "{e}");
    let pulled = oci::pull(&reference, &access, wasm.len() as u64).await.unwrap();
    assert_eq!(pulled.component, wasm);

    // A file that is no component is not pushed.
    let e = oci::push(&reference, b"not wasm".to_vec(), &[], &access).await.unwrap_err().to_string();
    assert!(e.contains("not a connector component"), "{e}");

    // An artifact of another kind (a container image's config) is not pulled as a connector.
    let image = oci::parse_reference(&format!("{host}/c/an-image:1")).unwrap();
    let config = oci_client::client::Config {
        data: b"{}".to_vec().into(),
        media_type: oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.to_string(),
        annotations: None,
    };
    let layers = vec![oci_client::client::ImageLayer::new(
        wasm.clone(),
        oci_client::manifest::IMAGE_LAYER_MEDIA_TYPE.to_string(),
        None,
    )];
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        extra_root_certificates: vec![oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: registry.ca_pem.clone().into_bytes(),
        }],
        ..Default::default()
    });
    let auth = oci_client::secrets::RegistryAuth::Basic("ci-bot".into(), "pw".into());
    client.push(&image, &layers, config, &auth, None).await.unwrap();
    let e = oci::pull(&image, &access, 1 << 30).await.unwrap_err().to_string();
    assert!(e.contains("not a Wasm connector artifact") && e.contains(oci::WASM_CONFIG_MEDIA_TYPE), "{e}");
}

/// Pushes `payload` as a cosign image signature (cosign's "simple signing" layer, the signature
/// in its annotation, at cosign's `sha256-<digest>.sig` tag) of the manifest `digest`, as
/// `cosign sign --key` does.
async fn push_cosign_image_signature(
    registry: &stella_test_support::registry::Registry,
    repository: &str,
    digest: &str,
    payload: Vec<u8>,
    signature: String,
) {
    use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, Config, ImageLayer};
    let host = registry.url.trim_start_matches("https://");
    let tag =
        oci_client::Reference::with_tag(host.into(), repository.into(), format!("{}.sig", digest.replace(':', "-")));
    let annotations = BTreeMap::from([("dev.cosignproject.cosign/signature".to_string(), signature)]);
    let layers =
        vec![ImageLayer::new(payload, "application/vnd.dev.cosign.simplesigning.v1+json".into(), Some(annotations))];
    let config = Config {
        data: b"{}".to_vec().into(),
        media_type: oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.into(),
        annotations: None,
    };
    let client = oci_client::Client::new(ClientConfig {
        extra_root_certificates: vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: registry.ca_pem.clone().into_bytes(),
        }],
        ..Default::default()
    });
    let auth = oci_client::secrets::RegistryAuth::Basic("ci-bot".into(), "pw".into());
    client.push(&tag, &layers, config, &auth, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cosign_image_signature_admits_the_component_it_names_and_no_other() {
    use stella_integrations::plugins::oci;
    let registry = stella_test_support::registry::Registry::start(&[("ci-bot", "pw")]);
    let host = registry.url.trim_start_matches("https://").to_string();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let access = oci::RegistryAccess {
        credentials: Some(("ci-bot".into(), stella_runtime::secrets::SecretValue::new("pw".into()))),
        ca_pem: Some(registry.ca_pem.clone().into_bytes()),
        plain_http: false,
    };
    let signer = Signer::new();
    let payload = |digest: &str| {
        json!({"critical": {"identity": {"docker-reference": format!("{host}/c/test-program")},
                            "image": {"docker-manifest-digest": digest},
                            "type": "cosign container image signature"},
               "optional": null})
        .to_string()
        .into_bytes()
    };
    let sign = |payload: &[u8]| stella_runtime::signature::sign_cosign(&signer.private_pem, payload).unwrap().0;

    // The component, signed by `cosign sign --key` over its manifest.
    let wasm = std::fs::read(test_programs_artifacts::WELL_BEHAVED).unwrap();
    let good = oci::parse_reference(&format!("{host}/c/test-program:signed")).unwrap();
    let pinned = oci::push(&good, wasm, &[], &access).await.unwrap();
    let digest = pinned.rsplit('@').next().unwrap().to_string();
    let signed_payload = payload(&digest);
    let signature = sign(&signed_payload);
    push_cosign_image_signature(&registry, "c/test-program", &digest, signed_payload.clone(), signature.clone()).await;

    // Another component, carrying a copy of that signature (over the first manifest).
    let other = std::fs::read(test_programs_artifacts::FLOOD).unwrap();
    let replayed = oci::parse_reference(&format!("{host}/c/test-program-flood:replayed")).unwrap();
    let other_digest = oci::push(&replayed, other, &[], &access).await.unwrap().rsplit('@').next().unwrap().to_string();
    push_cosign_image_signature(&registry, "c/test-program-flood", &other_digest, signed_payload, signature).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &registry.ca_pem).unwrap();
    // The platform's own secrets, which no integration resolves.
    std::fs::create_dir_all(dir.path().join("secrets/.platform/platform/registry")).unwrap();
    std::fs::write(dir.path().join("secrets/.platform/platform/registry/password"), "pw").unwrap();
    let (_keys, key_path) = signer.trusted();
    let app = app_with(|c| {
        c.plugins.trusted_keys = vec![key_path];
        c.secrets.dir = Some(dir.path().join("secrets"));
        c.plugins.registries = vec![stella_integrations::config::RegistryConfig {
            host: host.clone(),
            username: Some("ci-bot".into()),
            password_ref: Some("ref://platform/registry/password".into()),
            ca_file: Some(dir.path().join("ca.pem")),
            plain_http: false,
        }];
    })
    .await;
    let reviewer = app.token("platform", "plugins.admin");
    let pull = |reference: String| {
        let (app, reviewer) = (&app, reviewer.clone());
        async move {
            app.send(Method::POST, "/api/v1/plugins/pull", Some(&reviewer), Some(json!({"reference": reference}))).await
        }
    };
    let r = pull(format!("{host}/c/test-program:signed")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["origin"].as_str().unwrap(), format!("oci:{pinned}"));
    assert!(r.body["signedBy"].as_str().unwrap().starts_with("cosign:"), "{}", r.body);
    assert!(r.body["signatures"][0]["payload"].as_str().unwrap().contains(&digest), "{}", r.body);

    let r = pull(format!("{host}/c/test-program-flood:replayed")).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::UNPROCESSABLE_ENTITY, "plugin-refused"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("not over the manifest"), "{}", r.body);
}

#[tokio::test]
async fn the_ledger_is_read_by_auditors_of_its_tenant_only() {
    let app = app().await;
    let first = app.create_tested("ledgered-one").await;
    let second = app.create_tested("ledgered-two").await;
    let r = app.send(Method::POST, &format!("/api/v1/integrations/{second}/test"), Some(&app.admin()), None).await;
    let tested = r.body["testResult"]["record"]["invocationId"].as_str().unwrap().to_string();

    let auditor = app.token("acme", "integrations.audit");
    let r = app.send(Method::GET, "/api/v1/invocations", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the two activations' tests and the test: {}", r.body);
    assert_eq!(items[0]["invocationId"], tested.as_str(), "newest first");
    assert!(items.iter().all(|i| i["record"].is_null() && i["tenantId"] == "acme"));
    assert!(r.body["nextCursor"].is_null());

    let r = app.send(Method::GET, &format!("/api/v1/invocations/{tested}"), Some(&auditor), None).await;
    assert_eq!((r.status, r.body["record"]["invocationId"].as_str()), (StatusCode::OK, Some(tested.as_str())));
    assert_eq!(r.body["integrationId"], second.as_str());

    // Filters and pages.
    let uri = format!(
        "/api/v1/invocations?integrationId={first}&operation=test-connection&denied=false&outcome=success\
         &outsideBaseUrl=false"
    );
    let r = app.send(Method::GET, &uri, Some(&auditor), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["outsideBaseUrl"], false, "the in-memory connector contacts nothing");
    let r = app.send(Method::GET, "/api/v1/invocations?outsideBaseUrl=true", Some(&auditor), None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = app.send(Method::GET, "/api/v1/invocations?failureClass=auth", Some(&auditor), None).await;
    assert_eq!((r.status, r.body["items"].clone()), (StatusCode::OK, json!([])), "every test passed");
    let r = app.send(Method::GET, "/api/v1/invocations?limit=2", Some(&auditor), None).await;
    let cursor = r.body["nextCursor"].as_str().unwrap().to_string();
    let r = app.send(Method::GET, &format!("/api/v1/invocations?limit=2&after={cursor}"), Some(&auditor), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    let bad = [
        "after=nope",
        "since=yesterday",
        "operation=run",
        "integrationId=1",
        "limit=0",
        "denialKind=%01",
        "outsideBaseUrl=maybe",
        "failureClass=bad",
    ];
    for bad in bad {
        let r = app.send(Method::GET, &format!("/api/v1/invocations?{bad}"), Some(&auditor), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }

    // Another tenant's auditor sees none of it; the platform sees it; a reader is refused.
    let theirs = app.token("globex", "integrations.audit");
    let r = app.send(Method::GET, "/api/v1/invocations", Some(&theirs), None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = app.send(Method::GET, &format!("/api/v1/invocations/{tested}"), Some(&theirs), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let platform = app.token("platform", "plugins.admin");
    let r = app.send(Method::GET, &format!("/api/v1/invocations/{tested}"), Some(&platform), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let reader = app.token("acme", "integrations.read");
    let r = app.send(Method::GET, "/api/v1/invocations", Some(&reader), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("www-authenticate").contains("integrations.audit"), "{}", r.header("www-authenticate"));

    // The NDJSON export: the same filters, one entry per line, streamed.
    let lines = |r: &Reply| -> Vec<Value> {
        match &r.body {
            Value::Null => vec![],
            Value::String(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
            one => vec![one.clone()],
        }
    };
    let r = app.send(Method::GET, "/api/v1/invocations/export", Some(&auditor), None).await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::OK, "application/x-ndjson"));
    let exported = lines(&r);
    assert_eq!(exported.len(), 3, "{}", r.body);
    assert_eq!(exported[0]["invocationId"], tested.as_str());
    let r =
        app.send(Method::GET, &format!("/api/v1/invocations/export?integrationId={first}"), Some(&auditor), None).await;
    assert_eq!(lines(&r).len(), 1);
    let r = app.send(Method::GET, "/api/v1/invocations/export", Some(&theirs), None).await;
    assert!(lines(&r).is_empty());
    let r = app.send(Method::GET, "/api/v1/invocations/export?since=soon", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The egress report of the in-memory connector: three invocations, no network, nothing denied;
    // within the tenant for its auditor, none for another tenant's.
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory/egress", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["invocations"].as_u64(), r.body["truncated"].as_bool()), (Some(3), Some(false)), "{}", r.body);
    assert_eq!((r.body["contacted"].clone(), r.body["denials"].clone()), (json!([]), json!([])));
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory/egress", Some(&theirs), None).await;
    assert_eq!(r.body["invocations"], 0);
    let r = app
        .send(Method::GET, "/api/v1/plugins/in-memory/egress?since=2999-01-01T00:00:00Z", Some(&auditor), None)
        .await;
    assert_eq!(r.body["invocations"], 0);
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory/egress?since=yesterday", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A provider that is not loaded and never ran is no provider: not an empty report.
    let r = app.send(Method::GET, "/api/v1/plugins/no-such-provider/egress", Some(&auditor), None).await;
    assert_eq!((r.status, r.problem_type()), (StatusCode::NOT_FOUND, "not-found"), "{}", r.body);
}

/// A local token's request for `<tenant>-user` of `tenant`, valid ten minutes.
fn token_request(tenant: &str, scopes: &str) -> TokenRequest {
    TokenRequest {
        tenant: tenant.into(),
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        subject: format!("{tenant}-user"),
        ttl: std::time::Duration::from_secs(600),
    }
}

/// A console page as a browser gets it: status, headers, HTML.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: String,
}

impl App {
    fn sign_in_link(&self, tenant: &str, scopes: &str) -> String {
        auth::issue_sign_in_link(&self.config.auth, KEY.as_bytes(), &token_request(tenant, scopes))
    }

    async fn page(&self, method: Method, uri: &str, cookie: Option<&str>, form: Option<&str>) -> Page {
        self.page_with(method, uri, cookie, form, &[]).await
    }

    /// [`App::page`] with more request headers.
    async fn page_with(
        &self,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        headers: &[(header::HeaderName, &str)],
    ) -> Page {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if let Some(c) = cookie {
            request = request.header(header::COOKIE, c);
        }
        let body = match form {
            Some(f) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(f.to_string())
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
    }

    /// Signs in to the console with a one-time link; answers the session cookie.
    async fn console_session(&self, tenant: &str, scopes: &str) -> String {
        let link = self.sign_in_link(tenant, scopes);
        let page = self.page(Method::GET, &format!("/console/sign-in/link?token={link}"), None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }
}

/// Every console route and who may open it: the grant its handler takes, which is the API's
/// rule for the same operation. A route `console/mod.rs` serves but this table lacks fails
/// `every_console_route_enforces_the_apis_rule`.
const CONSOLE_MATRIX: &[(&str, &str, Rule)] = &[
    ("GET", "/console", Rule::Public),
    ("GET", "/console/", Rule::Read),
    ("GET", "/console/integrations/new", Rule::Admin),
    ("POST", "/console/integrations", Rule::Admin),
    ("GET", "/console/integrations/{id}", Rule::Read),
    ("POST", "/console/integrations/{id}/{action}", Rule::Admin),
    ("GET", "/console/connectors", Rule::Connectors),
    ("GET", "/console/connectors/{provider}", Rule::Connectors),
    ("POST", "/console/connectors/{provider}/versions/{version}/{decision}", Rule::PluginsAdmin),
    ("GET", "/console/invocations", Rule::Audit),
    ("GET", "/console/invocations/{id}", Rule::Audit),
    ("GET", "/console/sign-in", Rule::Public),
    ("GET", "/console/sign-in/link", Rule::Public),
    ("GET", "/console/auth/start", Rule::Public),
    ("GET", "CALLBACK_PATH", Rule::Public),
    ("POST", "/console/sign-out", Rule::Session),
    ("GET", "/console/assets/console.css", Rule::Public),
    ("GET", "/console/assets/console.js", Rule::Public),
];

/// The console's routes as `console/mod.rs` declares them: `(method, path)`.
fn console_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/console/mod.rs")).unwrap();
    let mut routes = BTreeSet::new();
    for line in source.lines().map(str::trim).filter(|l| l.starts_with(".route(")) {
        let rest = &line[".route(".len()..];
        let (path, handler) = rest.split_once(", ").unwrap_or_else(|| panic!("cannot read the route `{line}`"));
        let method = handler.split('(').next().unwrap().to_uppercase();
        routes.insert((method, path.trim_matches('"').to_string()));
    }
    routes
}

#[tokio::test]
async fn every_console_route_enforces_the_apis_rule() {
    let ruled: BTreeSet<_> = CONSOLE_MATRIX.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(console_routes(), ruled, "CONSOLE_MATRIX and the console's routes differ");

    let app = app().await;
    let id = app.create_tested("matrix").await;
    let uri = |path: &str| {
        path.replace("{id}", &id)
            .replace("{action}", "test")
            .replace("{provider}", "in-memory")
            .replace("{version}", "9.9.9")
            .replace("{decision}", "approve")
            .replace("CALLBACK_PATH", "/console/auth/callback")
    };
    let scopes = ["", "integrations.read", "integrations.admin", "integrations.audit", "plugins.admin"];
    let mut sessions = Vec::new();
    for scope in scopes {
        sessions.push((scope, app.console_session("acme", scope).await));
    }
    for (method, path, rule) in CONSOLE_MATRIX {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let to_sign_in =
            |page: &Page| page.status == StatusCode::SEE_OTHER && page.headers[header::LOCATION] == "/console/sign-in";
        let page = app.page(m.clone(), &uri(path), None, None).await;
        if *rule == Rule::Public {
            assert!(!to_sign_in(&page) && page.status != StatusCode::FORBIDDEN, "{method} {path}: {}", page.status);
            continue;
        }
        assert!(to_sign_in(&page), "{method} {path} without a session: {}", page.status);
        for (scopes, cookie) in &sessions {
            // A form without its token: refused as a form once the grant passed, as a scope before.
            let page = app.page(m.clone(), &uri(path), Some(cookie), None).await;
            let lacks = page.html.contains("lacks the");
            if rule.allows(scopes) {
                assert!(!lacks && !to_sign_in(&page), "{method} {path} with `{scopes}`: {} {}", page.status, page.html);
            } else {
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{method} {path} with `{scopes}`");
                let named = format!("lacks the `{}` scope", rule.scope());
                assert!(page.html.contains(&named), "{method} {path} with `{scopes}`: {}", page.html);
            }
        }
    }
}

#[tokio::test]
async fn a_console_form_posted_from_another_origin_is_refused_even_with_its_token() {
    let app = app().await;
    let session = app.console_session("acme", "integrations.admin").await;
    let page = app.page(Method::GET, "/console/", Some(&session), None).await;
    let csrf = page.html.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = format!("csrf={csrf}");
    let host = (header::HOST, "catalog.example:8080");
    for (name, value) in [
        (header::ORIGIN, "https://evil.example"),
        (header::ORIGIN, "null"),
        (header::ORIGIN, "http://catalog.example:8081"),
        (header::REFERER, "https://evil.example/console/"),
    ] {
        let headers = [host.clone(), (name.clone(), value)];
        let page = app.page_with(Method::POST, "/console/sign-out", Some(&session), Some(&form), &headers).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{name}: {value}: {}", page.html);
    }
    // Still signed in; from the console's own origin (by Origin, or by Referer), the same form
    // signs out.
    let page = app.page(Method::GET, "/console/", Some(&session), None).await;
    assert_eq!(page.status, StatusCode::OK);
    for (name, value) in
        [(header::ORIGIN, "http://catalog.example:8080"), (header::REFERER, "https://catalog.example:8080/console/")]
    {
        let session = app.console_session("acme", "integrations.admin").await;
        let page = app.page(Method::GET, "/console/", Some(&session), None).await;
        let csrf = page.html.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
        let headers = [host.clone(), (name, value)];
        let form = format!("csrf={csrf}");
        let page = app.page_with(Method::POST, "/console/sign-out", Some(&session), Some(&form), &headers).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{value}: {}", page.html);
        let page = app.page(Method::GET, "/console/", Some(&session), None).await;
        assert_ne!(page.status, StatusCode::OK, "signed out");
    }
}

#[tokio::test]
async fn the_console_signs_in_with_a_one_time_link_and_shows_the_tenants_integrations_only() {
    let app = app().await;
    app.create_tested("registry-<b>bold</b>").await;
    let theirs = app
        .send(
            Method::POST,
            "/api/v1/integrations",
            Some(&app.token("globex", "integrations.admin")),
            Some(spec("globex-secret")),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);

    // Not signed in: to the sign-in page; every answer carries the strict policy.
    let page = app.page(Method::GET, "/console/", None, None).await;
    assert_eq!(
        (page.status, page.headers[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/sign-in")
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    // A link signs in once: the cookie is HttpOnly and SameSite=Strict, and the page moves on
    // from this site (so the Strict cookie goes along).
    let link = app.sign_in_link("acme", "integrations.admin");
    let page = app.page(Method::GET, &format!("/console/sign-in/link?token={link}"), None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let set_cookie = page.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("stella_console=") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict") && set_cookie.contains("Path=/console"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain HTTP without a public https URL: {set_cookie}");
    assert!(page.html.contains(r#"http-equiv="refresh""#), "{}", page.html);
    let again = app.page(Method::GET, &format!("/console/sign-in/link?token={link}"), None, None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.html.contains("used already"), "{}", again.html);
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // The tenant's integrations, escaped; none of another tenant's.
    let page = app.page(Method::GET, "/console/", Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("registry-&lt;b&gt;bold&lt;/b&gt;"), "{}", page.html);
    assert!(!page.html.contains("<b>bold</b>") && !page.html.contains("globex-secret"), "{}", page.html);
    let filtered = app.page(Method::GET, "/console/?status=draft&health=unknown", Some(&cookie), None).await;
    assert!(filtered.html.contains("No integration matches."), "{}", filtered.html);
    let healthy = app.page(Method::GET, "/console/?health=healthy", Some(&cookie), None).await;
    assert!(healthy.html.contains("registry-&lt;b&gt;bold&lt;/b&gt;"), "{}", healthy.html);
    // What the API refuses, the console refuses the same way, and says why (it used to drop a
    // filter it could not read, and list everything).
    for (query, why) in [
        ("status=typo", "`status` must be one of"),
        ("health=sick", "`health` must be one of"),
        ("cursor=zz", "`cursor` is not a cursor this API returned"),
        ("unknown=1", "unknown field `unknown`"),
    ] {
        let page = app.page(Method::GET, &format!("/console/?{query}"), Some(&cookie), None).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.html.contains(why) && !page.html.contains("registry-&lt;b&gt;"), "{query}: {}", page.html);
        let r = app.send(Method::GET, &format!("/api/v1/integrations?{query}"), Some(&app.admin()), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.body["detail"].as_str().unwrap().contains(why), "{query}: {}", r.body);
    }
    // A blank field of the form is no filter.
    let blank = app.page(Method::GET, "/console/?status=&type=&health=", Some(&cookie), None).await;
    assert_eq!(blank.status, StatusCode::OK);
    assert!(blank.html.contains("registry-&lt;b&gt;bold&lt;/b&gt;"), "{}", blank.html);
    let r = app.send(Method::GET, "/api/v1/integrations?health=unhealthy", Some(&app.admin()), None).await;
    assert_eq!((r.status, r.body["items"].clone()), (StatusCode::OK, json!([])), "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/integrations?health=healthy", Some(&app.admin()), None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = app.send(Method::GET, "/api/v1/integrations?health=sick", Some(&app.admin()), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Links and tokens are not interchangeable; a forged or unknown cookie signs nobody in.
    let r = app.send(Method::GET, "/api/v1/integrations", Some(&link), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a link is not a bearer token");
    let page = app.page(Method::GET, &format!("/console/sign-in/link?token={}", app.admin()), None, None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "a bearer token is not a link");
    let forged = format!("stella_console={}", "A".repeat(43));
    let page = app.page(Method::GET, "/console/", Some(&forged), None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    // Signing out needs the session's form token; then the session is gone.
    let page = app.page(Method::POST, "/console/sign-out", Some(&cookie), Some("csrf=wrong")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    let page = app.page(Method::POST, "/console/sign-out", Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "a form without its token is refused");
    let home = app.page(Method::GET, "/console/", Some(&cookie), None).await;
    let csrf = home.html.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let page = app.page(Method::POST, "/console/sign-out", Some(&cookie), Some(&format!("csrf={csrf}"))).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(page.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let page = app.page(Method::GET, "/console/", Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "signed out");

    // A session without the read scope is shown why, not the list; an auditor reads the ledger
    // of its tenant, and a reader without the audit scope does not.
    let auditor = app.console_session("acme", "integrations.audit").await;
    let page = app.page(Method::GET, "/console/", Some(&auditor), None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.html.contains("integrations.read"), "{}", page.html);
    let page = app.page(Method::GET, "/console/invocations", Some(&auditor), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("test-connection"), "the activation's test: {}", page.html);
    // The API's filters, read by the API's code: a blank field is no filter, a wrong one is said.
    let uri = "/console/invocations?provider=&denied=false&operation=test-connection&failureClass=";
    let page = app.page(Method::GET, uri, Some(&auditor), None).await;
    assert!(page.html.contains("test-connection") && page.html.contains(r#"value="false" selected"#), "{}", page.html);
    let page = app.page(Method::GET, "/console/invocations?denied=true", Some(&auditor), None).await;
    assert!(page.html.contains("No invocation matches."), "{}", page.html);
    let page = app.page(Method::GET, "/console/invocations?failureClass=bad", Some(&auditor), None).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("`failureClass` must be one of"), "{}", page.html);
    let page = app.page(Method::GET, "/console/invocations?nosuch=1", Some(&auditor), None).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let reader = app.console_session("acme", "integrations.read").await;
    let page = app.page(Method::GET, "/console/invocations", Some(&reader), None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let theirs = app.console_session("globex", "integrations.audit").await;
    let page = app.page(Method::GET, "/console/invocations", Some(&theirs), None).await;
    assert!(page.html.contains("No invocation matches."), "{}", page.html);
}

#[tokio::test]
async fn the_console_shows_a_pending_connector_with_its_diff_and_approves_what_it_shows() {
    let app = app().await;
    let reviewer = app.token("platform", "plugins.admin");
    let wider = in_memory_as("2.0.0", "hosts = [\"https://wider.example\"]");
    let r = app.submit(&reviewer, &wider, &[]).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::CREATED, Some("pending")), "{}", r.body);

    // The reviewer sees it waiting, and on its page what it would add.
    let session = app.console_session("platform", "plugins.admin").await;
    let page = app.page(Method::GET, "/console/connectors", Some(&session), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Waiting for a decision") && page.html.contains("2.0.0"), "{}", page.html);
    let page = app.page(Method::GET, "/console/connectors/in-memory", Some(&session), None).await;
    assert!(page.html.contains("may reach <code>https://wider.example</code>"), "{}", page.html);
    let csrf = page.html.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let digest = page.html.split(r#"name="digest" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();

    // An approval of other permissions than shown is refused with the API's words.
    let action = "/console/connectors/in-memory/versions/2.0.0/approve";
    let form = format!("csrf={csrf}&digest=sha256%3A0000");
    let page = app.page(Method::POST, action, Some(&session), Some(&form)).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.html);
    // The refusal does not name the digest to approve; the page shows it again beside the
    // permissions it stands for, to be reviewed.
    let alert = page.html.split(r#"role="alert">"#).nth(1).unwrap().split("</p>").next().unwrap();
    assert!(alert.contains("review its permissions") && !alert.contains(&digest), "{alert}");
    assert!(page.html.contains("may reach <code>https://wider.example</code>"), "{}", page.html);
    // Without the form token, nothing is decided.
    let page = app.page(Method::POST, action, Some(&session), Some(&format!("digest={digest}"))).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let form = format!("csrf={csrf}&digest={}", digest.replace(':', "%3A"));
    let page = app.page(Method::POST, action, Some(&session), Some(&form)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let r = app.send(Method::GET, "/api/v1/plugins/in-memory", Some(&app.admin()), None).await;
    assert_eq!(r.body["version"], "2.0.0", "approved and active: {}", r.body);
    let page = app.page(Method::GET, "/console/connectors", Some(&session), None).await;
    assert!(!page.html.contains("Waiting for a decision</h2><table"), "nothing waits now: {}", page.html);
    assert!(page.html.contains("Nothing waits.") && page.html.contains(">unsigned<"), "{}", page.html);

    // A tenant's admin sees what is loaded, not what waits, and cannot decide.
    let tenant = app.console_session("acme", "integrations.admin").await;
    let page = app.page(Method::GET, "/console/connectors", Some(&tenant), None).await;
    assert!(page.html.contains("in-memory") && !page.html.contains("Waiting for a decision"), "{}", page.html);
    let page = app.page(Method::POST, action, Some(&tenant), Some(&format!("csrf={csrf}"))).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn behind_https_the_console_cookie_is_secure() {
    let app = app_with(|c| c.console.public_url = Some("https://catalog.example.com".into())).await;
    let link = app.sign_in_link("acme", "integrations.read");
    let page = app.page(Method::GET, &format!("/console/sign-in/link?token={link}"), None, None).await;
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // A configuration the console cannot work with is refused at start, by name.
    let mut config = Config::default();
    config.console.public_url = Some("catalog.example.com".into());
    assert!(config.console.validate().unwrap_err().contains("console.public-url"));
    config.console.public_url = None;
    config.console.oidc = Some(stella_integrations::config::OidcConfig {
        issuer: "https://idp.example.com".into(),
        client_id: "stella-console".into(),
        client_secret: None,
        scopes: vec![],
    });
    assert!(config.console.validate().unwrap_err().contains("console.public-url"), "OIDC needs the public URL");
    config.console.session_hours = 0;
    assert!(config.console.validate().is_err());
}

/// An identity provider's error answers are its own business: a browser is told that the sign-in
/// failed, in this service's words, and never what the provider's body or a crafted callback
/// link says (the log keeps it).
#[tokio::test]
async fn an_identity_providers_error_body_is_logged_never_shown() {
    use stella_test_support::{Canned, Stub};
    let idp = Stub::start().await;
    let issuer = format!("http://{}", idp.addr());
    // The provider's documented answers (OpenID Connect Discovery 1.0 §4, RFC 6749 §5.2).
    idp.on(
        "GET",
        "/.well-known/openid-configuration",
        Canned::json(
            200,
            json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
                   "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks")}),
        ),
    );
    idp.on("GET", "/jwks", Canned::json(200, json!({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]})));
    let internal = "shard-7 of the user database is down at 10.3.4.5";
    idp.on("POST", "/token", Canned::json(400, json!({"error": "invalid_grant", "error_description": internal})));
    let app = app_with(|c| {
        c.console.public_url = Some("http://catalog.example".into());
        c.console.oidc = Some(stella_integrations::config::OidcConfig {
            issuer: issuer.clone(),
            client_id: "stella-console".into(),
            client_secret: None,
            scopes: vec![],
        });
    })
    .await;

    let start = app.page(Method::GET, "/console/auth/start", None, None).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.html);
    let to = url::Url::parse(start.headers[header::LOCATION].to_str().unwrap()).unwrap();
    let state = to.query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let pending = start.headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();

    // The token endpoint refuses the code: the page says the sign-in failed, not why the
    // provider says it did.
    let callback = format!("/console/auth/callback?code=some-code&state={state}");
    let page = app.page(Method::GET, &callback, Some(&pending), None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("could not complete the sign-in"), "{}", page.html);
    assert!(!page.html.contains("shard-7") && !page.html.contains("invalid_grant"), "{}", page.html);
    assert!(idp.seen().iter().any(|r| r.path == "/token"), "the code was redeemed at the provider");

    // A callback link anyone can craft: an OAuth error code is shown, a description is not.
    let crafted = "/console/auth/callback?error=access_denied&error_description=Call%20+1-555-0100%20to%20unlock";
    let page = app.page(Method::GET, crafted, None, None).await;
    assert!(page.html.contains("(`access_denied`)") && !page.html.contains("555-0100"), "{}", page.html);
    let page = app.page(Method::GET, "/console/auth/callback?error=Your%20account%20is%20locked", None, None).await;
    assert!(page.html.contains("refused the sign-in") && !page.html.contains("locked"), "{}", page.html);
}
