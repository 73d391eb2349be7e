//! The `github-app` connector: GitHub.com or GitHub Enterprise Server (and GitHub Actions), as a
//! GitHub App whose private key is the AuthRef's secret.
//!
//! `test-connection` steps:
//! - `configuration`: `appId`, how to find the installation, `requiredPermissions`, and the REST
//!   API root: `https://api.github.com` for GitHub.com (a base URL of `https://github.com` means
//!   it), `<base URL>/api/v3` for Enterprise Server;
//! - `reachable`, `is-github`: `GET /meta` without a credential answers with GitHub's metadata
//!   (`verifiable_password_authentication`) and an `X-GitHub-Request-Id`; Enterprise Server's
//!   version comes from `X-GitHub-Enterprise-Version` or `installed_version`;
//! - `app`: the host signs the app's JWT (RS256: `iat` a minute back for clock drift, `exp` nine
//!   minutes on, `iss` the app id) with the private key, which never enters the connector, and
//!   `GET /app` names the app (401: the key or the app id is wrong, or the clock is off);
//! - `installation`: `installationId`, else `account` (`GET /orgs/{account}/installation`, then
//!   `/users/{account}/installation`), else the app's only installation; a suspended one is
//!   `permission`;
//! - `access-token`: `POST /app/installations/{id}/access_tokens`; the token is kept by the host
//!   (`http.send-for-token`); its permissions must include every `requiredPermissions` entry
//!   (`read` < `write` < `admin`);
//! - `api`: `GET /installation/repositories?per_page=1` with the token, which reports the rate
//!   limit left (`X-RateLimit-Remaining`; exhausted is `degraded`).
//!
//! `check-health`: the access token and the API call (two requests; one or two more when the
//! installation is found by account, organization then user, or as the only one), after `/meta`
//! on Enterprise Server (GitHub.com's API host is proven by its certificate): a revoked key,
//! an uninstalled or suspended app, or an exhausted rate limit shows.
//!
//! Configuration keys: `appId`, `installationId`, `account`, `requiredPermissions`,
//! `caCertificates` (read by the host).

use github_api::{api_root, github, prove_github, refusal};
use serde::Deserialize;
use serde_json::{Value, json};
use stella_connector_sdk::crypto::{CryptoError, JwtAlgorithm, sign_jwt};
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;
use stella_connector_sdk::secrets::Secret;

struct GitHubApp;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    app_id: Option<Value>,
    /// `null` is a wrong id, not a missing one.
    #[serde(default, deserialize_with = "stella_connector_sdk::keep_null")]
    installation_id: Option<Value>,
    /// `null` is a wrong account, not a missing one.
    #[serde(default, deserialize_with = "stella_connector_sdk::keep_null")]
    account: Option<Value>,
    required_permissions: Option<Value>,
}

const LEVELS: &[&str] = &["read", "write", "admin"];

enum Installation {
    Id(u64),
    Account(String),
    Only,
}

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    api: String,
    enterprise: bool,
    /// The JWT's `iss`: the numeric app id or the app's client id, as configured.
    app_id: Value,
    installation: Installation,
    required: Vec<(String, &'static str)>,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base().map_err(|e| format!("{e} (https://github.com, or your Enterprise Server)"))?;
    let credential = config.credential("a GitHub App needs its private key")?;
    let (api, enterprise) = api_root(&base)?;
    let app_id = match &c.app_id {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Value::Number(n.clone()),
        // A client id (`Iv23li…`) is accepted as the JWT issuer too.
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
        {
            Value::String(s.clone())
        }
        _ => return Err("`appId` must be the app's numeric id or its client id".into()),
    };
    let installation = match (&c.installation_id, &c.account) {
        (Some(Value::Number(n)), None) if n.as_u64().is_some_and(|n| n > 0) => Installation::Id(n.as_u64().unwrap()),
        (Some(_), None) => return Err("`installationId` must be a positive number".into()),
        (None, Some(Value::String(a)))
            if !a.is_empty()
                && a.len() <= 39
                && !a.starts_with('-')
                && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Installation::Account(a.clone())
        }
        (None, Some(_)) => return Err("`account` must be a GitHub organization or user login".into()),
        (None, None) => Installation::Only,
        (Some(_), Some(_)) => return Err("set `installationId` or `account`, not both".into()),
    };
    let required = match &c.required_permissions {
        None => Vec::new(),
        Some(Value::Object(map)) => {
            let mut required = Vec::new();
            for (name, level) in map {
                let level = level
                    .as_str()
                    .and_then(|l| LEVELS.iter().find(|x| **x == l))
                    .ok_or_else(|| format!("`requiredPermissions.{name}` must be one of {}", LEVELS.join(", ")))?;
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    return Err(format!("`{name}` is not a GitHub App permission name"));
                }
                required.push((name.clone(), *level));
            }
            required
        }
        Some(_) => return Err("`requiredPermissions` must be an object such as {\"contents\": \"read\"}".into()),
    };
    Ok(Settings { credential, api, enterprise, app_id, installation, required })
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", format!("the REST API at {}", s.api));

    // GitHub.com's API host is proven by its certificate; any other server proves itself GitHub
    // before the app's JWT goes to it, in the health check too.
    if full || s.enterprise {
        prove_github(&s.api, s.enterprise, report)?;
    }

    let key = s.credential.resolve("app")?;
    let now = checks::now();
    let claims = json!({"iat": now - 60, "exp": now + 540, "iss": s.app_id});
    let jwt = sign_jwt(&key, JwtAlgorithm::Rs256, &claims.to_string()).map_err(|e| match e {
        CryptoError::InvalidKey(m) => Failed::new(
            FailureClass::Misconfigured,
            "app",
            format!("the AuthRef's secret is not the app's private key (PEM, as GitHub downloads it): {m}"),
        ),
        CryptoError::Denied(m) => Failed::new(FailureClass::Permission, "app", m),
        CryptoError::InvalidClaims(m) => Failed::new(FailureClass::Internal, "app", m),
    })?;
    let as_app = |request: http::RequestBuilder<'_>| -> Result<Response, http::HttpError> {
        github(request).bearer(&jwt).send()
    };
    let mut app_name = None;
    if full {
        let app = as_app(http::get(&format!("{}/app", s.api))).step("app")?;
        if app.status != 200 {
            let mut refused = refusal("app", &app);
            let hint = if app.status == 401 {
                format!(": the private key does not belong to app `{}`, or this host's clock is off", s.app_id)
            } else {
                String::new()
            };
            refused.message.push_str(&hint);
            return Err(refused);
        }
        let body = app.json().unwrap_or_default();
        let name = body.get("slug").or(body.get("name")).and_then(Value::as_str).unwrap_or("?").to_string();
        report.pass("app", format!("the private key signs for app `{name}`"));
        app_name = Some(name);
    }

    let (installation_id, account) = match s.installation {
        // A health check with a known installation goes straight to the token: GitHub answers
        // 404 for an installation that is gone and 403 for a suspended one there too.
        Installation::Id(id) if !full => (id, format!("installation {id}")),
        _ => {
            let (id, account) = find_installation(&s, &as_app)?;
            report.pass("installation", format!("installation {id} on `{account}`"));
            (id, account)
        }
    };

    let (answer, token) = github(http::post(&format!("{}/app/installations/{installation_id}/access_tokens", s.api)))
        .bearer(&jwt)
        .send_for_token(&["/token"])
        .step("access-token")?;
    let token = match (answer.status, token) {
        (201 | 200, Some(token)) => token,
        (201 | 200, None) => {
            return Err(Failed::new(FailureClass::ProviderMismatch, "access-token", "GitHub answered without a token"));
        }
        _ => return Err(refusal("access-token", &answer)),
    };
    let grant = answer.json().unwrap_or_default();
    let expires = grant.get("expires_at").and_then(Value::as_str).unwrap_or("?").to_string();
    if full {
        let granted = grant.get("permissions").cloned().unwrap_or_default();
        let missing: Vec<String> = s
            .required
            .iter()
            .filter(|(name, level)| {
                let have = granted.get(name).and_then(Value::as_str).and_then(|l| LEVELS.iter().position(|x| *x == l));
                have.is_none_or(|have| have < LEVELS.iter().position(|x| x == level).unwrap_or(0))
            })
            .map(|(name, level)| {
                let have = granted.get(name).and_then(Value::as_str).unwrap_or("none");
                format!("{name}: {level} (granted: {have})")
            })
            .collect();
        if !missing.is_empty() {
            return Err(Failed::new(
                FailureClass::Permission,
                "access-token",
                format!("the installation lacks permissions: {}", missing.join(", ")),
            ));
        }
    }
    report.pass("access-token", format!("an installation token, valid until {expires}"));

    let repos = api_call(&s, &token)?;
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&repos);
    let count = repos.json().ok().and_then(|b| b.get("total_count")?.as_u64()).unwrap_or(0);
    let left = report.facts.rate_limit_remaining.map(|n| format!("; {n} requests left this hour")).unwrap_or_default();
    report.pass("api", format!("the token reaches {count} repositories{left}"));
    match app_name {
        Some(name) => Ok(format!("GitHub App `{name}` works on `{account}`")),
        None => Ok(format!("the GitHub App works on `{account}`")),
    }
}

fn find_installation(
    s: &Settings,
    as_app: &dyn Fn(http::RequestBuilder<'_>) -> Result<Response, http::HttpError>,
) -> Result<(u64, String), Failed> {
    let get = |path: &str| as_app(http::get(&format!("{}{path}", s.api))).step("installation");
    let describe = |i: &Value| -> Result<(u64, String), Failed> {
        let id = i
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| Failed::new(FailureClass::ProviderMismatch, "installation", "the installation has no id"))?;
        let account = i.get("account").and_then(|a| a.get("login")).and_then(Value::as_str).unwrap_or("?").to_string();
        if let Some(when) = i.get("suspended_at").and_then(Value::as_str) {
            return Err(Failed::new(
                FailureClass::Permission,
                "installation",
                format!("installation {id} on `{account}` has been suspended since {when}"),
            ));
        }
        Ok((id, account))
    };
    match &s.installation {
        Installation::Id(id) => {
            let answer = get(&format!("/app/installations/{id}"))?;
            if answer.status == 404 {
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "installation",
                    format!("the app has no installation {id}"),
                ));
            }
            if answer.status != 200 {
                return Err(refusal("installation", &answer));
            }
            describe(&answer.json().unwrap_or_default())
        }
        Installation::Account(account) => {
            let mut answer = get(&format!("/orgs/{account}/installation"))?;
            if answer.status == 404 {
                answer = get(&format!("/users/{account}/installation"))?;
            }
            if answer.status == 404 {
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "installation",
                    format!("the app is not installed on `{account}`"),
                ));
            }
            if answer.status != 200 {
                return Err(refusal("installation", &answer));
            }
            describe(&answer.json().unwrap_or_default())
        }
        Installation::Only => {
            let answer = get("/app/installations?per_page=2")?;
            if answer.status != 200 {
                return Err(refusal("installation", &answer));
            }
            let list = answer.json().ok().and_then(|b| b.as_array().cloned()).unwrap_or_default();
            match list.as_slice() {
                [] => Err(Failed::new(FailureClass::NotFound, "installation", "the app is not installed anywhere")),
                [only] => describe(only),
                _ => Err(Failed::new(
                    FailureClass::Misconfigured,
                    "installation",
                    "the app has several installations: set `installationId` or `account`",
                )),
            }
        }
    }
}

fn api_call(s: &Settings, token: &Secret) -> Result<Response, Failed> {
    let answer = github(http::get(&format!("{}/installation/repositories?per_page=1", s.api)))
        .bearer(token)
        .send()
        .step("api")?;
    if answer.status != 200 {
        return Err(refusal("api", &answer));
    }
    Ok(answer)
}

impl Connector for GitHubApp {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(|report| run(config, report, true), |message| message)
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |message| message)
    }
}

register_connector!(GitHubApp);
