//! The `harbor` connector: a Harbor registry, through its v2.0 API.
//!
//! `test-connection` steps:
//! - `reachable`: `GET /api/v2.0/ping` answers;
//! - `is-harbor`: it answered `Pong`, and `GET /api/v2.0/systeminfo` is Harbor's system-info
//!   object (with `auth_mode`); the version comes from its `harbor_version`;
//! - `credential`: the AuthRef's secret, as the password of `username`, is accepted: a user
//!   account reads itself at `GET /api/v2.0/users/current`; a robot account (`robot$…`), which
//!   Harbor does not let read a user, asks the registry token service (`GET /service/token`), as
//!   `docker login` does;
//! - `project` (when `project` is configured): `GET /api/v2.0/projects/{project}` is allowed.
//!
//! `check-health`: `GET /api/v2.0/health` (a failing component is `degraded`, Harbor down is
//! `unhealthy`), then the credential, so a revoked robot turns the integration unhealthy.
//!
//! Configuration keys: `username` (required with an AuthRef), `project` (optional),
//! `robotAccount` (default: the username starts with `robot$`), `caCertificates` (read by the
//! host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct Harbor;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    username: Option<Value>,
    project: Option<Value>,
    robot_account: Option<Value>,
}

struct Settings {
    base: String,
    username: Option<String>,
    project: Option<String>,
    robot: bool,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let text = |value: &Option<Value>, key: &str| -> Result<Option<String>, String> {
        match value {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(_) => Err(format!("`{key}` must be a non-empty string")),
        }
    };
    let base = config.base()?.as_str().to_string();
    let username = text(&c.username, "username")?;
    if config.auth_ref.is_some() && username.is_none() {
        return Err("`username` is required with an AuthRef (the secret is its password or robot secret)".into());
    }
    let project = text(&c.project, "project")?;
    if let Some(p) = &project
        && !is_project_name(p)
    {
        return Err(format!(
            "`project` `{p}` is not a Harbor project name (lower-case letters and digits, single `._-` between them)"
        ));
    }
    let robot = match &c.robot_account {
        None => username.as_deref().is_some_and(|u| u.starts_with("robot$")),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`robotAccount` must be true or false".into()),
    };
    Ok(Settings { base, username, project, robot })
}

/// Harbor's project name rule, `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`: it also keeps `.` and `..` (path
/// segments) out of the URL.
fn is_project_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 255
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && bytes.windows(2).all(|w| alnum(&w[0]) || alnum(&w[1]))
        && bytes.iter().all(|b| alnum(b) || b"._-".contains(b))
}

/// Harbor's error body: `{"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}`.
fn harbor_error(response: &Response) -> String {
    let detail = response.json().ok().and_then(|b| {
        let e = b.get("errors")?.get(0)?.clone();
        Some(format!("{}: {}", e.get("code")?.as_str()?, e.get("message")?.as_str()?))
    });
    match detail {
        Some(d) => format!("{} ({d})", checks::describe_status(response)),
        None => checks::describe_status(response),
    }
}

/// A GET with the credential, if there is one.
fn get(url: &str, s: &Settings, secret: Option<&secrets::Secret>) -> Result<Response, http::HttpError> {
    let request = http::get(url).header("Accept", "application/json");
    match (secret, &s.username) {
        (Some(secret), Some(user)) => request.basic(user, secret).send(),
        _ => request.send(),
    }
}

/// Runs the steps up to (and including) `credential` and `project`; `Err` is a finished, failed
/// test.
fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<(), Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    let secret = secrets::step_secret(config, "credential")?;
    let secret = secret.as_ref();

    if full {
        // The ping produces text/plain only: asking for JSON would be answered 406.
        let ping = http::get(&format!("{}/api/v2.0/ping", s.base))
            .header("Accept", "text/plain")
            .send()
            .step_at("reachable", &s.base)?;
        report.pass("reachable", format!("{} answered", s.base));
        if ping.status >= 500 {
            return Err(Failed::new(
                FailureClass::ProviderDown,
                "is-harbor",
                format!("the ping answered {}", harbor_error(&ping)),
            ));
        }
        if ping.status != 200 || ping.text().trim() != "Pong" {
            return Err(Failed::new(
                FailureClass::ProviderMismatch,
                "is-harbor",
                format!(
                    "`/api/v2.0/ping` answered {} without `Pong`: this is not Harbor",
                    checks::describe_status(&ping)
                ),
            ));
        }
        // Anonymously: the credential goes only to a server proven to be Harbor.
        let info_url = format!("{}/api/v2.0/systeminfo", s.base);
        let info = get(&info_url, &s, None).step("is-harbor")?;
        let body = info.json().ok().filter(|b| b.get("auth_mode").is_some_and(Value::is_string));
        let Some(body) = body.filter(|_| info.status == 200) else {
            return Err(Failed::new(
                FailureClass::ProviderMismatch,
                "is-harbor",
                format!("`/api/v2.0/systeminfo` answered {} without Harbor's system info", harbor_error(&info)),
            ));
        };
        let version_of = |b: &Value| b.get("harbor_version").and_then(Value::as_str).map(str::to_string);
        report.facts.provider_version = version_of(&body);
        if report.facts.provider_version.is_none() && secret.is_some() {
            // Recent Harbors tell their version to signed-in callers only.
            let signed_in = get(&info_url, &s, secret).ok().filter(|r| r.status == 200);
            report.facts.provider_version = signed_in.and_then(|r| version_of(&r.json().ok()?));
        }
        report.pass(
            "is-harbor",
            format!("Harbor {}", report.facts.provider_version.as_deref().unwrap_or("(version not disclosed)")),
        );
    }

    let (Some(secret), Some(user)) = (secret, s.username.as_deref()) else {
        report.pass("credential", "no credential configured: anonymous access");
        return Ok(());
    };
    // Harbor's API treats wrong Basic credentials as an anonymous caller, so an API listing would
    // answer 200 to a revoked robot. Its registry token service, which `docker login` uses,
    // answers 401 instead. Its 200 body holds a short-lived pull token: the host keeps it (and
    // redacts it from the body), so it never enters the connector; it is not used further.
    let (url, what) = if s.robot {
        (format!("{}/service/token?service=harbor-registry", s.base), "the robot account")
    } else {
        (format!("{}/api/v2.0/users/current", s.base), "the user")
    };
    let answer = if s.robot {
        let request = http::get(&url).header("Accept", "application/json").basic(user, secret);
        request.send_for_token(&["/token", "/access_token"]).map(|(answer, _token)| answer)
    } else {
        get(&url, &s, Some(secret))
    };
    let answer = answer.step("credential")?;
    match answer.status {
        200 if s.robot => report.pass("credential", format!("{what} `{user}` is accepted")),
        200 => {
            let name = answer.json().ok().and_then(|b| b.get("username")?.as_str().map(str::to_string));
            // LDAP and OIDC sign-ins may differ in case from the account Harbor stores.
            if !name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(user)) {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "credential",
                    "`/api/v2.0/users/current` did not answer with the user's account",
                ));
            }
            report.pass("credential", format!("{what} `{user}` is accepted"));
        }
        401 => {
            return Err(Failed::new(
                FailureClass::Auth,
                "credential",
                format!("{what} `{user}` is rejected: {}", harbor_error(&answer)),
            ));
        }
        status => {
            return Err(Failed::new(
                checks::status_failure(status),
                "credential",
                format!("checking {what}: {}", harbor_error(&answer)),
            ));
        }
    }

    if let Some(project) = s.project.as_deref().filter(|_| full) {
        let answer = http::get(&format!("{}/api/v2.0/projects/{project}", s.base))
            .header("Accept", "application/json")
            .header("X-Is-Resource-Name", "true")
            .basic(user, secret)
            .send()
            .step("project")?;
        match answer.status {
            200 => report.pass("project", format!("project `{project}` is accessible")),
            403 => {
                return Err(Failed::new(
                    FailureClass::Permission,
                    "project",
                    format!("`{user}` may not access project `{project}`: {}", harbor_error(&answer)),
                ));
            }
            404 => {
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "project",
                    format!("project `{project}` does not exist"),
                ));
            }
            status => return Err(Failed::new(checks::status_failure(status), "project", harbor_error(&answer))),
        }
    }
    Ok(())
}

impl Connector for Harbor {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(|report| run(config, report, true), |_| "Harbor is reachable and the credential works")
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        let mut report = Report::new();
        let base = match config.base() {
            Ok(base) => base,
            Err(e) => return checks::health_from_test(report.failed(Failed::configuration(e))),
        };
        let health = http::get(&base.join("/api/v2.0/health")).header("Accept", "application/json").send();
        let health = match health.step_at("health", base.as_str()) {
            Ok(r) => r,
            Err(failed) => return checks::health_from_test(report.failed(failed)),
        };
        let body = health.json().ok().filter(|b| b.get("status").is_some_and(Value::is_string));
        let Some(body) = body.filter(|_| health.status == 200) else {
            let class = if health.status >= 500 { FailureClass::ProviderDown } else { FailureClass::ProviderMismatch };
            let message = format!("`/api/v2.0/health` answered {}", harbor_error(&health));
            return checks::health_from_test(report.fail(class, "health", message));
        };
        let mut failing: Vec<String> = body
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("status").and_then(Value::as_str) != Some("healthy"))
            .map(|c| {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
                match c.get("error").and_then(Value::as_str) {
                    Some(error) => format!("{name} ({error})"),
                    None => name.to_string(),
                }
            })
            .collect();
        let overall = body.get("status").and_then(Value::as_str).unwrap_or_default();
        if overall != "healthy" && failing.is_empty() {
            failing.push(format!("overall status `{overall}`"));
        }
        if failing.is_empty() {
            report.pass("health", "every Harbor component is healthy");
        } else {
            report.pass("health", format!("failing components: {}", failing.join(", ")));
        }
        let outcome = run(config, &mut report, false);
        let test = report.conclude(outcome.map(|_| "Harbor is healthy and the credential works"));
        let mut result = checks::health_from_test(test);
        if !failing.is_empty() && result.status == HealthStatus::Healthy {
            result.status = HealthStatus::Degraded;
            result.failure = Some(FailureClass::ProviderDown);
            result.message = format!("Harbor components failing: {}", failing.join(", "));
        }
        result
    }
}

register_connector!(Harbor);
