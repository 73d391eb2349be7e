//! The `github` connector: GitHub.com or GitHub Enterprise Server (and GitHub Actions) with a
//! personal access token, classic or fine-grained, sent as `Authorization: Bearer …`.
//!
//! `test-connection` steps:
//! - `configuration`: `requiredScopes`, `repository`, `needsPush`, and the REST API root:
//!   `https://api.github.com` for GitHub.com (a base URL of `https://github.com` means it),
//!   `<base URL>/api/v3` for Enterprise Server;
//! - `reachable`, `is-github`: `GET /meta` without the token answers with GitHub's metadata and
//!   an `X-GitHub-Request-Id` (or, from an Enterprise Server in private mode, GitHub's own 401),
//!   so the token goes only to a server proven to be GitHub;
//! - `credential`: `GET /user` names the token's user (401 `auth`: GitHub answers an expired or
//!   revoked token so too; a 403 with the rate limit exhausted is `rate-limited`);
//! - `token`: a classic token's scopes (`X-OAuth-Scopes`) include every `requiredScopes` entry,
//!   counting the scopes a broader one grants (`repo` grants `public_repo`, …); a fine-grained
//!   token has no scopes (its permissions are per repository). Its expiry
//!   (`GitHub-Authentication-Token-Expiration`) and the rate limit left (`X-RateLimit-Remaining`)
//!   are reported;
//! - `repository` (when configured): `GET /repos/{owner}/{name}` is readable (404 `not-found`:
//!   GitHub hides what a token may not see), and `push` is granted when `needsPush` is set.
//!
//! `check-health`: `GET /user` (one request; two on Enterprise Server, which proves itself with
//! `/meta` first, while GitHub.com's API host is proven by its certificate): a revoked or expired
//! token, an exhausted rate limit and an expiry within 7 days show.
//!
//! Configuration keys: `requiredScopes`, `repository` (`owner/name`), `needsPush`,
//! `caCertificates` (read by the host).

use github_api::{api_root, github, prove_github, refusal};
use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct GitHub;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    required_scopes: Option<Value>,
    repository: Option<Value>,
    needs_push: Option<Value>,
}

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    api: String,
    enterprise: bool,
    required_scopes: Vec<String>,
    repository: Option<String>,
    needs_push: bool,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base().map_err(|e| format!("{e} (https://github.com, or your Enterprise Server)"))?;
    let credential = config.credential("GitHub needs a personal access token")?;
    let (api, enterprise) = api_root(&base)?;
    let required_scopes = match &c.required_scopes {
        None => Vec::new(),
        Some(Value::Array(list)) if list.len() <= 32 => {
            let mut scopes = Vec::new();
            for scope in list {
                match scope.as_str() {
                    Some(s)
                        if !s.is_empty()
                            && s.len() <= 64
                            && s.bytes().all(|b| b.is_ascii_lowercase() || b"_:".contains(&b)) =>
                    {
                        scopes.push(s.to_string())
                    }
                    _ => return Err(format!("`requiredScopes` holds {scope}, which is not a GitHub scope name")),
                }
            }
            scopes
        }
        Some(_) => return Err("`requiredScopes` must be a list of scope names such as [\"repo\"]".into()),
    };
    let repository = match &c.repository {
        None => None,
        Some(v) => Some(github_api::repository(v).ok_or("`repository` must be `owner/name`")?),
    };
    let needs_push = match &c.needs_push {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`needsPush` must be true or false".into()),
    };
    if needs_push && repository.is_none() {
        return Err("`needsPush` needs a `repository`".into());
    }
    Ok(Settings { credential, api, enterprise, required_scopes, repository, needs_push })
}

/// The scopes a classic token's scope grants besides itself, as GitHub documents them.
fn granted_by(scope: &str) -> &'static [&'static str] {
    match scope {
        "repo" => &["repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"],
        "admin:repo_hook" => &["write:repo_hook", "read:repo_hook"],
        "write:repo_hook" => &["read:repo_hook"],
        "admin:org" => &["write:org", "read:org", "manage_runners:org"],
        "write:org" => &["read:org"],
        "admin:public_key" => &["write:public_key", "read:public_key"],
        "write:public_key" => &["read:public_key"],
        "admin:gpg_key" => &["write:gpg_key", "read:gpg_key"],
        "write:gpg_key" => &["read:gpg_key"],
        "admin:ssh_signing_key" => &["write:ssh_signing_key", "read:ssh_signing_key"],
        "write:ssh_signing_key" => &["read:ssh_signing_key"],
        "user" => &["read:user", "user:email", "user:follow"],
        "write:packages" => &["read:packages"],
        "project" => &["read:project"],
        "admin:enterprise" => &["manage_runners:enterprise", "manage_billing:enterprise", "read:enterprise"],
        "codespace" => &["codespace:secrets"],
        _ => &[],
    }
}

/// The required scopes a classic token's `X-OAuth-Scopes` does not grant.
fn missing_scopes(header: &str, required: &[String]) -> Vec<String> {
    let held: Vec<&str> = header.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    required.iter().filter(|r| !held.iter().any(|h| h == r || granted_by(h).contains(&r.as_str()))).cloned().collect()
}

/// `GitHub-Authentication-Token-Expiration` (`2026-12-31 09:00:00 UTC`, or with an offset such as
/// `+0200`) as RFC 3339.
fn expiry(header: &str) -> Option<String> {
    let mut parts = header.split_whitespace();
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let zone = match zone {
        "UTC" | "GMT" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => format!("{}:{}", &z[..3], &z[3..]),
        _ => return None,
    };
    let text = format!("{date}T{time}{zone}");
    (parts.next().is_none() && checks::parse_time(&text).is_some()).then_some(text)
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", format!("the REST API at {}", s.api));
    // GitHub.com's API host is proven by its certificate; any other server proves itself GitHub
    // before the token goes to it, in the health check too.
    if full || s.enterprise {
        prove_github(&s.api, s.enterprise, report)?;
    }
    let token = s.credential.resolve("credential")?;
    let get = |path: &str| github(http::get(&format!("{}{path}", s.api))).bearer(&token).send();

    let me = get("/user").step_at("credential", &s.api)?;
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&me);
    if me.status != 200 {
        // GitHub locks a user out after repeated bad logins: nothing more is tried after a 401.
        return Err(refusal("credential", &me));
    }
    let Some(user) = me.json().ok().and_then(|b| b.get("login")?.as_str().map(str::to_string)) else {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "credential",
            "`/user` answered without a `login`: this is not GitHub's API",
        ));
    };
    report.pass("credential", format!("the token of `{user}` is accepted"));

    let expires = me.header("github-authentication-token-expiration").and_then(expiry);
    report.facts.credential_expires_at = expires.clone();
    let scopes = me.header("x-oauth-scopes").map(str::to_string);
    let kind = match &scopes {
        Some(held) => {
            let missing = missing_scopes(held, &s.required_scopes);
            if !missing.is_empty() {
                return Err(Failed::new(
                    FailureClass::Permission,
                    "token",
                    format!(
                        "the classic token lacks the scopes {} (it has: {})",
                        missing.join(", "),
                        if held.trim().is_empty() { "none" } else { held.trim() }
                    ),
                ));
            }
            format!("a classic token with the scopes `{}`", held.trim())
        }
        None if s.required_scopes.is_empty() => "a fine-grained token".to_string(),
        None => "a fine-grained token: it has no scopes, its permissions are granted per repository".to_string(),
    };
    let expiry_text = match &expires {
        Some(at) => format!(", expires at {at}"),
        None => ", without an expiry".to_string(),
    };
    let left = report.facts.rate_limit_remaining.map(|n| format!("; {n} requests left this hour")).unwrap_or_default();
    report.pass("token", format!("{kind}{expiry_text}{left}"));

    if let Some(repository) = s.repository.as_deref().filter(|_| full) {
        let repo = get(&format!("/repos/{repository}")).step("repository")?;
        check_repository(&repo, repository, &user, s.needs_push, report)?;
    }
    Ok(user)
}

fn check_repository(
    repo: &Response,
    repository: &str,
    user: &str,
    needs_push: bool,
    report: &mut Report,
) -> Result<(), Failed> {
    if repo.status == 404 {
        return Err(Failed::new(
            FailureClass::NotFound,
            "repository",
            format!(
                "`{repository}` does not exist or the token of `{user}` may not see it (a fine-grained token must be granted the repository)"
            ),
        ));
    }
    if repo.status != 200 {
        return Err(refusal("repository", repo));
    }
    let push = repo.json().ok().and_then(|b| b.get("permissions")?.get("push")?.as_bool()).unwrap_or(false);
    if needs_push && !push {
        return Err(Failed::new(
            FailureClass::Permission,
            "repository",
            format!("`{user}` may read `{repository}` but not push to it"),
        ));
    }
    report.pass("repository", format!("`{repository}` is readable{}", if push { " and writable" } else { "" }));
    Ok(())
}

impl Connector for GitHub {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("GitHub is reachable and the token of `{user}` works"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |user| format!("the token of `{user}` works"))
    }
}

register_connector!(GitHub);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broader_classic_scopes_grant_narrower_ones() {
        let required = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(missing_scopes("repo, read:org", &required(&["public_repo", "read:org", "repo"])).is_empty());
        assert!(missing_scopes("admin:org", &required(&["read:org"])).is_empty());
        assert_eq!(missing_scopes("public_repo", &required(&["repo", "workflow"])), ["repo", "workflow"]);
        assert_eq!(missing_scopes("", &required(&["repo"])), ["repo"]);
    }

    #[test]
    fn the_expiry_header_reads_as_rfc_3339() {
        assert_eq!(expiry("2026-12-31 09:00:00 UTC").as_deref(), Some("2026-12-31T09:00:00Z"));
        assert_eq!(expiry("2026-12-31 11:00:00 +0200").as_deref(), Some("2026-12-31T11:00:00+02:00"));
        for bad in ["", "2026-12-31", "2026-12-31 09:00:00", "2026-13-31 09:00:00 UTC", "2026-12-31 09:00:00 UTC x"] {
            assert_eq!(expiry(bad), None, "{bad}");
        }
    }
}
