//! The `gitlab` connector: GitLab.com or a self-managed GitLab, through its REST API v4, with an
//! access token sent as `PRIVATE-TOKEN`.
//!
//! `test-connection` steps:
//! - `reachable`, `is-gitlab`: `GET /api/v4/version` answers with GitLab's `version` and
//!   `revision` (or with GitLab's own error body when it refuses the token);
//! - `credential`: the token is accepted, and `GET /api/v4/user` names its user;
//! - `token`: `GET /api/v4/personal_access_tokens/self` (GitLab 15.5+): active, the
//!   `requiredScopes` granted (`api` grants all), its expiry reported;
//! - `project` (when `project` is configured): `GET /api/v4/projects/{path}` is readable.
//!
//! `check-health`: the version and the token (two requests); a token expiring within 7 days is
//! `degraded`.
//!
//! Configuration keys: `requiredScopes` (default `["read_api"]`), `project` (`group/name`),
//! `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct GitLab;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    required_scopes: Option<Value>,
    project: Option<Value>,
}

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    base: String,
    scopes: Vec<String>,
    project: Option<String>,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?.as_str().to_string();
    let credential = config.credential("GitLab needs an access token")?;
    let scopes = match &c.required_scopes {
        None => vec!["read_api".to_string()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')))
            .map(|s| s.map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("`requiredScopes` must list scope names such as `read_api`")?,
        Some(_) => return Err("`requiredScopes` must be a list of scope names".into()),
    };
    let project = match &c.project {
        None => None,
        Some(Value::String(p)) if path_of_segments(p, 2) => Some(p.clone()),
        Some(_) => return Err("`project` must be a project path such as `group/name`".into()),
    };
    Ok(Settings { credential, base, scopes, project })
}

/// GitLab's error bodies: `{"message": "401 Unauthorized"}` or, for a token it parsed,
/// `{"error": "invalid_token", "error_description": "Token has expired."}`.
fn gitlab_error(response: &Response) -> Option<String> {
    let body = response.json().ok()?;
    match (body.get("error").and_then(Value::as_str), body.get("message")) {
        (Some(error), _) => Some(match body.get("error_description").and_then(Value::as_str) {
            Some(description) => format!("{error}: {description}"),
            None => error.to_string(),
        }),
        (None, Some(Value::String(m))) => Some(m.clone()),
        (None, Some(m @ Value::Object(_))) => Some(m.to_string()),
        _ => None,
    }
}

/// A GitLab refusal: 401 is the token, 403 a scope, 429 the rate limit, 5xx GitLab itself.
fn refusal(step: &'static str, response: &Response) -> Failed {
    let detail = gitlab_error(response).map(|e| format!(" ({e})")).unwrap_or_default();
    let class = checks::status_failure(response.status);
    let step = match class {
        FailureClass::Auth => "credential",
        _ => step,
    };
    Failed::new(class, step, format!("{}{detail}", checks::describe_status(response)))
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    let token = s.credential.resolve("credential")?;
    let get = |path: &str| -> Result<Response, http::HttpError> {
        let response = http::get(&format!("{}{path}", s.base))
            .header("Accept", "application/json")
            .secret_header("PRIVATE-TOKEN", None, &token)
            .send()?;
        Ok(response)
    };

    let version = get("/api/v4/version").step_at("reachable", &s.base)?;
    report.pass("reachable", format!("{} answered", s.base));
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&version);
    if version.status == 200 {
        let body = version.json().unwrap_or_default();
        let (Some(v), Some(_)) = (body.get("version").and_then(Value::as_str), body.get("revision")) else {
            return Err(Failed::new(
                FailureClass::ProviderMismatch,
                "is-gitlab",
                "`/api/v4/version` did not answer with GitLab's version and revision: this is not GitLab",
            ));
        };
        report.facts.provider_version = Some(v.to_string());
        report.pass("is-gitlab", format!("GitLab {v}"));
    } else if [401, 403].contains(&version.status) && gitlab_error(&version).is_some() {
        report.pass("is-gitlab", "GitLab refused the token with its own error body");
        return Err(refusal("credential", &version));
    } else if version.status >= 500 || version.status == 429 {
        return Err(refusal("is-gitlab", &version));
    } else {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "is-gitlab",
            format!("`/api/v4/version` answered {}: this is not GitLab", checks::describe_status(&version)),
        ));
    }

    let mut user = String::from("the token's user");
    if full {
        let me = get("/api/v4/user").step("credential")?;
        if me.status != 200 {
            return Err(refusal("credential", &me));
        }
        if let Some(name) = me.json().ok().and_then(|b| b.get("username")?.as_str().map(str::to_string)) {
            user = format!("`{name}`");
        }
        report.pass("credential", format!("the token of {user} is accepted"));
    } else {
        report.pass("credential", "the token is accepted");
    }

    let token_info = get("/api/v4/personal_access_tokens/self").step("token")?;
    match token_info.status {
        200 => {
            let body = token_info.json().unwrap_or_default();
            if body.get("active").and_then(Value::as_bool) == Some(false)
                || body.get("revoked") == Some(&Value::Bool(true))
            {
                return Err(Failed::new(FailureClass::Auth, "token", "the token is revoked or expired"));
            }
            report.facts.credential_expires_at = body
                .get("expires_at")
                .and_then(Value::as_str)
                .map(|d| if d.len() == 10 { format!("{d}T00:00:00Z") } else { d.to_string() });
            let granted: Vec<&str> =
                body.get("scopes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let missing: Vec<&str> = s
                .scopes
                .iter()
                .map(String::as_str)
                .filter(|wanted| !granted.contains(wanted) && !granted.contains(&"api"))
                .collect();
            if !missing.is_empty() {
                return Err(Failed::new(
                    FailureClass::Permission,
                    "token",
                    format!("the token lacks the scopes {} (it has {})", missing.join(", "), granted.join(", ")),
                ));
            }
            let expiry = report.facts.credential_expires_at.clone().unwrap_or_else(|| "never".into());
            report.pass("token", format!("scopes {}; expires {expiry}", granted.join(", ")));
        }
        // Before GitLab 15.5, and for OAuth tokens, the token cannot describe itself.
        404 => report.pass("token", "this GitLab does not describe the token (scopes and expiry not checked)"),
        _ => return Err(refusal("token", &token_info)),
    }

    if let Some(project) = s.project.as_deref().filter(|_| full) {
        let answer = get(&format!("/api/v4/projects/{}", project.replace('/', "%2F"))).step("project")?;
        match answer.status {
            200 => report.pass("project", format!("project `{project}` is readable")),
            // GitLab answers 404 for a project the user may not see, as for one that does not exist.
            404 => {
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "project",
                    format!("project `{project}` does not exist or {user} may not see it"),
                ));
            }
            _ => return Err(refusal("project", &answer)),
        }
    }
    Ok(user)
}

impl Connector for GitLab {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("GitLab is reachable and the token of {user} works"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |_| "GitLab is reachable and the token works")
    }
}

register_connector!(GitLab);
