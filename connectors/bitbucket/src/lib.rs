//! The `bitbucket` connector: Bitbucket Cloud (REST API 2.0) or Bitbucket Data Center / Server
//! (REST API 1.0), with the AuthRef's secret sent as HTTP basic (the password of `username`) or,
//! without a `username`, as a bearer token.
//!
//! Bitbucket Cloud is `https://api.bitbucket.org/2.0` (a base URL of `https://bitbucket.org`
//! means it); any other base URL is a Data Center.
//!
//! `test-connection` steps:
//! - `configuration`: the `repository` (`workspace/repo` on Cloud, `PROJECT/repo` on Data Center)
//!   and the other keys are valid, before any request;
//! - `reachable`, `is-bitbucket`: on Data Center, `GET /rest/api/1.0/application-properties`,
//!   asked without the credential, answers Bitbucket's `displayName`, `version` (reported) and
//!   `buildNumber`, so the credential goes only to a server proven to be Bitbucket. On Cloud the
//!   host is fixed, `api.bitbucket.org` over HTTPS: its certificate proves it, and the first
//!   request already carries the credential;
//! - `credential`: on Cloud with a `username` (an Atlassian API token with the account's email,
//!   or an app password with the Bitbucket username), `GET /2.0/user` names the account (401
//!   `auth`; a 403, a token without the user scope, still proves the credential). An access token
//!   (workspace, project or repository; bearer) is refused by `/2.0/user`, so the repository
//!   request proves it. On Data Center the repository request carries the credential and its
//!   `X-AUSERNAME` names the user. Bitbucket Data Center counts failed logins and asks for a
//!   CAPTCHA after a few, so after a 401 nothing more is sent;
//! - `repository`: `GET /2.0/repositories/{workspace}/{repo}` or
//!   `GET /rest/api/1.0/projects/{PROJECT}/repos/{repo}` is readable (404 `not-found`, 403
//!   `permission`); with `needsWrite`, write access: on Cloud the user's permission
//!   (`GET /2.0/user/permissions/repositories`) or an access token's `X-OAuth-Scopes`, on Data
//!   Center `GET /rest/api/1.0/repos?name=…&permission=REPO_WRITE` lists the repository.
//!
//! `check-health`: Data Center: the application properties and the repository (two requests);
//! Cloud: the user (with a `username`) and the repository (one or two).
//!
//! Rate limits: `X-RateLimit-Remaining` (Data Center's rate limiting, Cloud where sent) is
//! reported; 429 is `rate-limited`.
//!
//! Configuration keys: `repository` (required), `username`, `needsWrite` (default false),
//! `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{RequestBuilder, Response, ResponseExt};
use stella_connector_sdk::prelude::*;
use stella_connector_sdk::secrets::Secret;
use stella_connector_sdk::url;

struct Bitbucket;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    repository: Option<Value>,
    username: Option<Value>,
    needs_write: Option<Value>,
}

/// Bitbucket Cloud's REST API root.
const CLOUD_API: &str = "https://api.bitbucket.org/2.0";

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    /// Cloud: [`CLOUD_API`]; Data Center: the base URL.
    api: String,
    cloud: bool,
    /// The workspace (Cloud) or project key (Data Center).
    owner: String,
    /// The repository slug.
    slug: String,
    username: Option<String>,
    needs_write: bool,
}

impl Settings {
    fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.slug)
    }
}

/// Bitbucket Cloud: one base URL (its API root is accepted too); its hosts spelled any other way
/// (`http://`, a path) are refused rather than read as a Data Center at that address.
const CLOUD: Cloud = Cloud {
    name: "Bitbucket Cloud",
    url: "https://bitbucket.org",
    also: &["https://www.bitbucket.org", "https://api.bitbucket.org", CLOUD_API],
    hosts: &["bitbucket.org", "www.bitbucket.org", "api.bitbucket.org"],
};

/// Whether the base URL names Bitbucket Cloud (see [`CLOUD`]).
fn is_cloud(base: &BaseUrl) -> Result<bool, String> {
    Ok(base.deployment(&CLOUD)? == Deployment::Cloud)
}

/// A path segment of a repository ([`path_segment`]), with a leading `~` for a Data Center
/// personal project.
fn segment(part: &str, personal: bool) -> bool {
    path_segment(if personal { part.strip_prefix('~').unwrap_or(part) } else { part })
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?;
    let cloud = is_cloud(&base)?;
    let credential = config.credential("Bitbucket needs a credential")?;
    let (owner, slug) = match &c.repository {
        Some(Value::String(r)) => match r.split_once('/') {
            Some((owner, slug)) if segment(owner, !cloud) && segment(slug, false) => {
                (owner.to_string(), slug.to_string())
            }
            _ => {
                return Err(if cloud {
                    "`repository` must be `workspace/repo`".into()
                } else {
                    "`repository` must be `PROJECT/repo`".into()
                });
            }
        },
        Some(_) => return Err("`repository` must be a string".into()),
        None => {
            return Err(if cloud {
                "`repository` (`workspace/repo`) is required: repository access is what is checked".into()
            } else {
                "`repository` (`PROJECT/repo`) is required: repository access is what is checked".into()
            });
        }
    };
    let username = match &c.username {
        None => None,
        Some(Value::String(u)) if !u.trim().is_empty() && !u.contains(':') && !u.chars().any(char::is_control) => {
            Some(u.trim().to_string())
        }
        Some(_) => return Err("`username` must be a non-empty string without `:`".into()),
    };
    let needs_write = match &c.needs_write {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`needsWrite` must be true or false".into()),
    };
    let api = if cloud { CLOUD_API.to_string() } else { base.as_str().to_string() };
    Ok(Settings { credential, api, cloud, owner, slug, username, needs_write })
}

/// Bitbucket's own error text: Cloud's `{"type": "error", "error": {"message", "detail"}}`, Data
/// Center's `{"errors": [{"context", "message", "exceptionName"}]}`, or Cloud's plain-text login
/// failure.
fn bitbucket_error(response: &Response) -> Option<String> {
    let Ok(body) = response.json() else {
        let text = response.text();
        let first = text.lines().next().unwrap_or_default().trim();
        let plain = !first.is_empty() && !first.starts_with('<') && first.len() <= 200;
        return plain.then(|| first.to_string());
    };
    if let Some(error) = body.get("error").filter(|_| body.get("type").and_then(Value::as_str) == Some("error")) {
        let message = error.get("message").and_then(Value::as_str)?;
        return Some(match error.get("detail") {
            Some(Value::String(d)) if !d.is_empty() => format!("{message}: {d}"),
            Some(d @ Value::Object(_)) => format!("{message}: {d}"),
            _ => message.to_string(),
        });
    }
    let errors: Vec<String> = body
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let message = e.get("message")?.as_str()?;
            Some(match e.get("exceptionName").and_then(Value::as_str) {
                Some(name) => format!("{message} [{}]", name.rsplit('.').next().unwrap_or(name)),
                None => message.to_string(),
            })
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// A refusal, classed by its status, with Bitbucket's message.
fn refusal(step: &'static str, response: &Response) -> Failed {
    let detail = bitbucket_error(response).map(|e| format!(" ({e})")).unwrap_or_default();
    Failed::new(checks::status_failure(response.status), step, format!("{}{detail}", checks::describe_status(response)))
}

fn not_bitbucket(what: &str, response: &Response) -> Failed {
    Failed::new(
        FailureClass::ProviderMismatch,
        "is-bitbucket",
        format!("{what} answered {}: this is not Bitbucket", checks::describe_status(response)),
    )
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    if s.cloud { cloud(&s, report, full) } else { data_center(&s, report, full) }
}

/// A request with the credential: the password of `username`, or a bearer token.
fn authorized<'a>(s: &Settings, token: &'a Secret, path: &str) -> RequestBuilder<'a> {
    let request = http::get(&format!("{}{path}", s.api)).header("Accept", "application/json");
    match &s.username {
        Some(user) => request.basic(user, token),
        None => request.bearer(token),
    }
}

fn note_rate_limit(report: &mut Report, response: &Response) {
    if let Some(left) = checks::rate_limit_remaining(response) {
        report.facts.rate_limit_remaining = Some(left);
    }
}

fn cloud(s: &Settings, report: &mut Report, full: bool) -> Result<String, Failed> {
    let token = s.credential.resolve("credential")?;
    let repository = s.repository();
    let repo_path = format!("/repositories/{repository}");
    let tls = "Bitbucket Cloud: `api.bitbucket.org` over HTTPS, proven by its certificate";
    let (user, repo) = match &s.username {
        Some(username) => {
            let me = authorized(s, &token, "/user").send().step_at("reachable", &s.api)?;
            report.pass("reachable", format!("{} answered", s.api));
            report.pass("is-bitbucket", tls);
            note_rate_limit(report, &me);
            let user = match me.status {
                200 => {
                    let body = me.json().unwrap_or_default();
                    let name = ["display_name", "nickname", "username"]
                        .iter()
                        .find_map(|k| body.get(*k).and_then(Value::as_str))
                        .unwrap_or(username.as_str())
                        .to_string();
                    report.pass("credential", format!("the credential of `{name}` is accepted"));
                    name
                }
                // A scoped API token without `read:user:bitbucket`: authenticated all the same.
                403 => {
                    let why = bitbucket_error(&me).unwrap_or_else(|| "status 403".into());
                    report.pass("credential", format!("the credential of `{username}` is accepted ({why})"));
                    username.clone()
                }
                _ => return Err(refusal("credential", &me)),
            };
            let repo = authorized(s, &token, &repo_path).send().step("repository")?;
            (user, repo)
        }
        None => {
            // Access tokens are refused by `/2.0/user`: the repository proves them.
            let repo = authorized(s, &token, &repo_path).send().step_at("reachable", &s.api)?;
            report.pass("reachable", format!("{} answered", s.api));
            report.pass("is-bitbucket", tls);
            if matches!(repo.status, 401 | 429 | 500..=599) {
                note_rate_limit(report, &repo);
                return Err(refusal("credential", &repo));
            }
            // Bitbucket answers an access token it accepts for another scope with 403 or 404
            // here: the `repository` step says which; the token itself was not refused.
            report.pass("credential", "the access token is not refused (401)");
            (String::from("the access token"), repo)
        }
    };
    note_rate_limit(report, &repo);
    match repo.status {
        200 => {}
        401 => return Err(refusal("credential", &repo)),
        404 => {
            let detail = bitbucket_error(&repo).map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(Failed::new(
                FailureClass::NotFound,
                "repository",
                format!("`{repository}` does not exist or may not be seen with this credential{detail}"),
            ));
        }
        _ => return Err(refusal("repository", &repo)),
    }
    let body = repo.json().unwrap_or_default();
    if body.get("type").and_then(Value::as_str) != Some("repository") {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "repository",
            format!("`{repo_path}` answered without a repository"),
        ));
    }
    if s.needs_write && full {
        let writable = match &s.username {
            Some(_) => {
                let q = url::query_escape(&format!("repository.full_name=\"{repository}\""));
                let answer = authorized(s, &token, &format!("/user/permissions/repositories?q={q}"))
                    .send()
                    .step("repository")?;
                if answer.status != 200 {
                    return Err(refusal("repository", &answer));
                }
                let permission = answer.json().ok().and_then(|b| {
                    b.get("values")?.as_array()?.first()?.get("permission")?.as_str().map(str::to_string)
                });
                Some(matches!(permission.as_deref(), Some("write" | "admin")))
            }
            // An access token's scopes, where Bitbucket names them.
            None => repo.header("x-oauth-scopes").map(|scopes| {
                scopes.split([',', ' ']).map(str::trim).any(|scope| {
                    matches!(
                        scope,
                        "repository:write"
                            | "repository:admin"
                            | "pullrequest:write"
                            | "write:repository:bitbucket"
                            | "admin:repository:bitbucket"
                    )
                })
            }),
        };
        match writable {
            Some(true) => report.pass("repository", format!("`{repository}` is readable and writable")),
            Some(false) => {
                return Err(Failed::new(
                    FailureClass::Permission,
                    "repository",
                    format!("{user} may read `{repository}` but not write to it"),
                ));
            }
            None => report.pass(
                "repository",
                format!(
                    "`{repository}` is readable (write access not checked: Bitbucket did not name the token's scopes)"
                ),
            ),
        }
    } else {
        report.pass("repository", format!("`{repository}` is readable"));
    }
    Ok(user)
}

fn data_center(s: &Settings, report: &mut Report, full: bool) -> Result<String, Failed> {
    let properties = http::get(&format!("{}/rest/api/1.0/application-properties", s.api))
        .header("Accept", "application/json")
        .send()
        .step_at("reachable", &s.api)?;
    report.pass("reachable", format!("{} answered", s.api));
    note_rate_limit(report, &properties);
    if properties.status >= 500 || properties.status == 429 {
        return Err(refusal("is-bitbucket", &properties));
    }
    let body = properties.json().ok().filter(|_| properties.status == 200).unwrap_or_default();
    let text = |key: &str| body.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    let (Some("Bitbucket"), Some(version), Some(build)) = (text("displayName"), text("version"), text("buildNumber"))
    else {
        return Err(not_bitbucket("`/rest/api/1.0/application-properties`", &properties));
    };
    report.facts.provider_version = Some(version.to_string());
    report.pass("is-bitbucket", format!("Bitbucket Data Center {version} (build {build})"));

    let token = s.credential.resolve("credential")?;
    let repository = s.repository();
    let repo_path = format!("/rest/api/1.0/projects/{}/repos/{}", s.owner, s.slug);
    let repo = authorized(s, &token, &repo_path).send().step("credential")?;
    note_rate_limit(report, &repo);
    match repo.status {
        401 => {
            let mut failed = refusal("credential", &repo);
            failed.message.push_str(
                "; nothing more is sent: Bitbucket counts failed logins and asks for a CAPTCHA after a few, \
                 so fix the credential before testing again",
            );
            return Err(failed);
        }
        429 | 500..=599 => return Err(refusal("repository", &repo)),
        _ => {}
    }
    let user = repo.header("x-ausername").map(str::to_string);
    match &user {
        Some(name) => report.pass("credential", format!("the credential of `{name}` is accepted")),
        None => report.pass("credential", "the credential is accepted"),
    }
    let user = user.map(|u| format!("`{u}`")).unwrap_or_else(|| "the credential's user".into());
    match repo.status {
        200 => {}
        404 => {
            let detail = bitbucket_error(&repo).map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(Failed::new(
                FailureClass::NotFound,
                "repository",
                format!("`{repository}` does not exist or {user} may not see it{detail}"),
            ));
        }
        _ => return Err(refusal("repository", &repo)),
    }
    let body = repo.json().unwrap_or_default();
    let same = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    if !same(body.get("slug").and_then(Value::as_str), &s.slug) {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "repository",
            format!("`{repo_path}` answered without the repository `{}`", s.slug),
        ));
    }
    if s.needs_write && full {
        let name = body.get("name").and_then(Value::as_str).unwrap_or(&s.slug);
        let path = format!("/rest/api/1.0/repos?name={}&permission=REPO_WRITE&limit=100", url::query_escape(name));
        let answer = authorized(s, &token, &path).send().step("repository")?;
        if answer.status != 200 {
            return Err(refusal("repository", &answer));
        }
        let listed = answer.json().ok().and_then(|b| b.get("values")?.as_array().cloned()).unwrap_or_default();
        let writable = listed.iter().any(|r| {
            same(r.get("slug").and_then(Value::as_str), &s.slug)
                && same(r.get("project").and_then(|p| p.get("key")).and_then(Value::as_str), &s.owner)
        });
        if !writable {
            return Err(Failed::new(
                FailureClass::Permission,
                "repository",
                format!("{user} may read `{repository}` but not write to it (no REPO_WRITE)"),
            ));
        }
        report.pass("repository", format!("`{repository}` is readable and writable"));
    } else {
        report.pass("repository", format!("`{repository}` is readable"));
    }
    Ok(user)
}

impl Connector for Bitbucket {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("Bitbucket is reachable and {user} may read the repository"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(
            |report| run(config, report, false),
            |_| "Bitbucket is reachable and the credential reads the repository",
        )
    }
}

register_connector!(Bitbucket);

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> BaseUrl {
        BaseUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn cloud_is_only_its_https_hosts() {
        for cloud in [
            "https://bitbucket.org",
            "https://bitbucket.org/",
            "https://api.bitbucket.org/2.0",
            "HTTPS://Bitbucket.org",
        ] {
            assert_eq!(is_cloud(&base(cloud)), Ok(true), "{cloud}");
        }
        for other in ["https://bitbucket.example.com", "http://127.0.0.1:7990", "https://bitbucket.org.evil.example"] {
            assert_eq!(is_cloud(&base(other)), Ok(false), "{other}");
        }
        for wrong in ["http://bitbucket.org", "https://bitbucket.org/acme", "https://api.bitbucket.org/1.0"] {
            assert!(is_cloud(&base(wrong)).is_err(), "{wrong}");
        }
    }

    #[test]
    fn repository_segments_need_no_escaping() {
        assert!(segment("platform-api.v2", false));
        assert!(segment("~jdoe", true));
        for bad in ["", ".", "..", "a b", "a%2F", "~jdoe", "a?b"] {
            assert!(!segment(bad, false), "{bad}");
        }
        assert!(!segment("~", true));
    }
}
