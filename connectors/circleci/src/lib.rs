//! The `circleci` connector: CircleCI cloud (`https://circleci.com`) or a self-hosted CircleCI
//! server, through the API v2 (`{base}/api/v2`), with a personal API token sent as
//! `Circle-Token`.
//!
//! Project API tokens are accepted by API v1.1 only: API v2 refuses them as it refuses a wrong
//! token, 401 `You must log in first.`, so with one this connector fails `credential` as `auth`
//! and says so.
//!
//! `test-connection` steps:
//! - `configuration`: the base URL, `project`;
//! - `reachable`, `is-circleci`: on a CircleCI server, `GET /api/v2/me` asked without the token
//!   answers CircleCI's own 401 (`{"message": "You must log in first."}`), or else
//!   `GET /api/v2/openapi.json` is CircleCI's API v2 description (`info.title` `CircleCI API`, a
//!   `/me` path), so the token goes only to a server proven to be CircleCI. CircleCI cloud is a fixed host,
//!   `circleci.com` over HTTPS: its certificate proves it, and the first request carries the token;
//! - `credential`: `GET /api/v2/me` names the token's user (401 `auth` with CircleCI's `message`);
//! - `project` (when `project` is configured): `GET /api/v2/project/{slug}` is readable (404
//!   `Project not found` is `not-found`).
//!
//! `check-health`: server: the anonymous and the authenticated `/api/v2/me` (two requests; a third,
//! the API description, when the first is not CircleCI's refusal); cloud: the user.
//! The remaining `X-RateLimit-Remaining` / `RateLimit-Remaining` is reported when sent; 429 is
//! `rate-limited`.
//!
//! Configuration keys: `project` (`gh/org/repo`, `bb/org/repo` or
//! `circleci/{organization id}/{project id}`), `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct CircleCi;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    project: Option<Value>,
}

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    /// `{base}/api/v2`.
    api: String,
    cloud: bool,
    project: Option<String>,
}

/// CircleCI cloud: one base URL; its hosts spelled any other way are refused rather than read as
/// a server of the user's own at that address.
const CLOUD: Cloud = Cloud {
    name: "CircleCI cloud",
    url: "https://circleci.com",
    also: &["https://circleci.com/api/v2"],
    hosts: &["circleci.com", "app.circleci.com", "www.circleci.com"],
};

/// The API v2 root of a base URL (given with or without `/api/v2`), and whether it is CircleCI
/// cloud.
fn api_root(base: &BaseUrl) -> Result<(String, bool), String> {
    let root = base.as_str().strip_suffix("/api/v2").unwrap_or(base.as_str());
    match base.deployment(&CLOUD)? {
        Deployment::Cloud => Ok(("https://circleci.com/api/v2".into(), true)),
        Deployment::SelfHosted => Ok((format!("{root}/api/v2"), false)),
    }
}

/// A project slug: `gh/org/repo`, `bb/org/repo` (or their long forms `github/…`, `bitbucket/…`),
/// or `circleci/{organization id}/{project id}` for projects of a CircleCI (standalone)
/// organization. No segment is `.` or `..`, and none needs escaping.
fn valid_slug(slug: &str) -> bool {
    let name = path_segment;
    let id = |s: &str| {
        s.len() == 36
            && s.bytes()
                .enumerate()
                .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
    };
    match slug.split('/').collect::<Vec<_>>().as_slice() {
        ["gh" | "github" | "bb" | "bitbucket", org, repo] => name(org) && name(repo),
        ["circleci", org, project] => id(org) && id(project),
        _ => false,
    }
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base().map_err(|e| format!("{e} (https://circleci.com, or your server)"))?;
    let (api, cloud) = api_root(&base)?;
    let credential = config.credential("CircleCI needs a personal API token")?;
    let project = match &c.project {
        None => None,
        Some(Value::String(p)) if valid_slug(p) => Some(p.clone()),
        Some(_) => {
            return Err(
                "`project` must be a project slug: `gh/org/repo`, `bb/org/repo` or `circleci/{org id}/{project id}`"
                    .into(),
            );
        }
    };
    Ok(Settings { credential, api, cloud, project })
}

/// CircleCI's error body: `{"message": "…"}`.
fn message_of(response: &Response) -> Option<String> {
    response.json().ok().and_then(|b| b.get("message")?.as_str().map(str::to_string))
}

fn refusal(step: &'static str, response: &Response) -> Failed {
    let detail = message_of(response).map(|m| format!(" ({m})")).unwrap_or_default();
    Failed::new(checks::status_failure(response.status), step, format!("{}{detail}", checks::describe_status(response)))
}

fn note_rate_limit(report: &mut Report, response: &Response) {
    if let Some(left) = checks::rate_limit_remaining(response) {
        report.facts.rate_limit_remaining = Some(left);
    }
}

/// What CircleCI's API v2 answers a caller without a token (401).
const LOG_IN_FIRST: &str = "You must log in first.";

/// Whether a document is CircleCI's API v2 description.
fn is_circleci_openapi(response: &Response) -> bool {
    response.status == 200
        && response.json().is_ok_and(|doc| {
            doc.pointer("/info/title").and_then(Value::as_str) == Some("CircleCI API")
                && doc.pointer("/paths/~1me").is_some_and(Value::is_object)
        })
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");

    if !s.cloud {
        // CircleCI answers an anonymous caller with its own refusal; a server that phrases it
        // otherwise still serves its API description without a token.
        let anonymous = http::get(&format!("{}/me", s.api))
            .header("Accept", "application/json")
            .send()
            .step_at("reachable", &s.api)?;
        report.pass("reachable", format!("{} answered", s.api));
        note_rate_limit(report, &anonymous);
        if anonymous.status >= 500 || anonymous.status == 429 {
            return Err(refusal("is-circleci", &anonymous));
        }
        if anonymous.status == 401 && message_of(&anonymous).as_deref() == Some(LOG_IN_FIRST) {
            report.pass(
                "is-circleci",
                format!("CircleCI server (`/api/v2/me` answers an anonymous caller `{LOG_IN_FIRST}`)"),
            );
        } else {
            let document = http::get(&format!("{}/openapi.json", s.api))
                .header("Accept", "application/json")
                .send()
                .step("is-circleci")?;
            if document.status >= 500 || document.status == 429 {
                return Err(refusal("is-circleci", &document));
            }
            if !is_circleci_openapi(&document) {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "is-circleci",
                    format!(
                        "`/api/v2/me` answered an anonymous caller {} and `/api/v2/openapi.json` {}, neither as CircleCI does: this is not CircleCI",
                        checks::describe_status(&anonymous),
                        checks::describe_status(&document)
                    ),
                ));
            }
            report.pass("is-circleci", "CircleCI server (its API v2 description)");
        }
    }

    let token = s.credential.resolve("credential")?;
    let get = |path: &str| {
        http::get(&format!("{}{path}", s.api))
            .header("Accept", "application/json")
            .secret_header("Circle-Token", None, &token)
            .send()
    };
    let me = if s.cloud {
        let me = get("/me").step_at("reachable", &s.api)?;
        report.pass("reachable", format!("{} answered", s.api));
        report.pass("is-circleci", "CircleCI cloud: `circleci.com` over HTTPS, proven by its certificate");
        me
    } else {
        get("/me").step("credential")?
    };
    note_rate_limit(report, &me);
    match me.status {
        200 => {}
        401 => {
            let mut failed = refusal("credential", &me);
            failed
                .message
                .push_str("; API v2 takes personal API tokens only (a project API token is refused like a wrong one)");
            return Err(failed);
        }
        _ => return Err(refusal("credential", &me)),
    }
    let body = me.json().unwrap_or_default();
    let (Some(_), Some(login)) = (body.get("id").and_then(Value::as_str), body.get("login").and_then(Value::as_str))
    else {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "credential",
            "`/api/v2/me` answered without a user: this is not CircleCI",
        ));
    };
    let user = login.to_string();
    report.pass("credential", format!("the token of `{user}` is accepted"));

    if let Some(project) = s.project.as_deref().filter(|_| full) {
        let answer = get(&format!("/project/{project}")).step("project")?;
        note_rate_limit(report, &answer);
        match answer.status {
            200 => {
                let body = answer.json().unwrap_or_default();
                let Some(name) = body.get("name").and_then(Value::as_str).filter(|_| body.get("slug").is_some()) else {
                    return Err(Failed::new(
                        FailureClass::ProviderMismatch,
                        "project",
                        format!("`/api/v2/project/{project}` answered without a project"),
                    ));
                };
                let org = body.get("organization_name").and_then(Value::as_str).unwrap_or("its organization");
                report.pass("project", format!("project `{project}` ({name} of {org}) is readable"));
            }
            404 => {
                let detail = message_of(&answer).map(|m| format!(" ({m})")).unwrap_or_default();
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "project",
                    format!("project `{project}` does not exist or `{user}` may not see it{detail}"),
                ));
            }
            _ => return Err(refusal("project", &answer)),
        }
    }
    Ok(user)
}

impl Connector for CircleCi {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("CircleCI is reachable and the token of `{user}` works"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |_| "CircleCI is reachable and the token works")
    }
}

register_connector!(CircleCi);

#[cfg(test)]
mod tests {
    use super::*;

    fn api_root_of(url: &str) -> Result<(String, bool), String> {
        api_root(&BaseUrl::parse(url)?)
    }

    #[test]
    fn cloud_and_server_api_roots() {
        assert_eq!(api_root_of("https://circleci.com/"), Ok(("https://circleci.com/api/v2".into(), true)));
        assert_eq!(api_root_of("https://circleci.com/api/v2"), Ok(("https://circleci.com/api/v2".into(), true)));
        let server = ("https://circleci.example.com/api/v2".to_string(), false);
        assert_eq!(api_root_of("https://circleci.example.com"), Ok(server.clone()));
        assert_eq!(api_root_of("https://circleci.example.com/api/v2"), Ok(server));
        for wrong in ["http://circleci.com", "https://app.circleci.com", "https://circleci.com/gh", "ftp://x"] {
            assert!(api_root_of(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn project_slugs() {
        for good in [
            "gh/acme/api",
            "bitbucket/acme/api.v2",
            "circleci/8e0d5b3c-3f0a-4a4f-9d3e-1f2a3b4c5d6e/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        ] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["gh/acme", "gh/acme/..", "gl/acme/api", "gh/acme/api/x", "circleci/acme/api", "gh/a b/c"] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
