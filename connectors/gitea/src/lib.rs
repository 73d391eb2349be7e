//! The `gitea` connector: Gitea or Forgejo (and their Actions), through the API v1, with an
//! access token sent as `Authorization: token …`.
//!
//! `test-connection` steps:
//! - `reachable`, `is-gitea`: `GET /api/v1/version` answers with a `version` (Forgejo's reads
//!   `9.0.0+gitea-1.22.0`) and `GET /api/v1/settings/api` with Gitea's API settings
//!   (`max_response_items`); both are served without a credential, so nothing secret is sent
//!   before the server is known to be Gitea. A Gitea with `REQUIRE_SIGNIN_VIEW` refuses even
//!   these with its own 403 message (`Only signed in user is allowed to call APIs.`): that
//!   identifies it, and the version is asked with the token;
//! - `credential`: `GET /api/v1/user` names the token's user (401 `auth`; 403, a token without
//!   the `read:user` scope, `permission`);
//! - `repository` (when `repository` is configured): `GET /api/v1/repos/{owner}/{name}` is
//!   readable, and `push` is granted when `needsPush` is true.
//!
//! `check-health`: the version and the user (two requests).
//!
//! Configuration keys: `repository` (`owner/name`), `needsPush` (default false),
//! `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct Gitea;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    repository: Option<Value>,
    needs_push: Option<Value>,
}

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    base: String,
    repository: Option<String>,
    needs_push: bool,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?.as_str().to_string();
    let credential = config.credential("Gitea needs an access token")?;
    let repository = match &c.repository {
        None => None,
        Some(Value::String(r)) if r.split('/').count() == 2 && path_of_segments(r, 2) => Some(r.clone()),
        Some(_) => return Err("`repository` must be `owner/name`".into()),
    };
    let needs_push = match &c.needs_push {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`needsPush` must be true or false".into()),
    };
    if needs_push && repository.is_none() {
        return Err("`needsPush` needs a `repository`".into());
    }
    Ok(Settings { credential, base, repository, needs_push })
}

/// What Gitea answers every anonymous API call, `/version` included, when `REQUIRE_SIGNIN_VIEW`
/// is set.
const SIGN_IN_REQUIRED: &str = "Only signed in user is allowed to call APIs.";

/// The `message` of Gitea's error body: `{"message": "…", "url": "https://…/api/swagger"}`.
fn message_of(response: &Response) -> Option<String> {
    response.json().ok().and_then(|b| b.get("message")?.as_str().map(str::to_string))
}

fn version_of(response: &Response) -> Option<String> {
    response.json().ok().and_then(|b| b.get("version")?.as_str().map(str::to_string))
}

fn refusal(step: &'static str, response: &Response) -> Failed {
    let message = message_of(response);
    let detail = message.map(|m| format!(" ({m})")).unwrap_or_default();
    Failed::new(checks::status_failure(response.status), step, format!("{}{detail}", checks::describe_status(response)))
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    let anonymous = |path: &str| http::get(&format!("{}{path}", s.base)).header("Accept", "application/json").send();

    let version = anonymous("/api/v1/version").step_at("reachable", &s.base)?;
    report.pass("reachable", format!("{} answered", s.base));
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&version);
    if version.status >= 500 || version.status == 429 {
        return Err(refusal("is-gitea", &version));
    }
    let token = s.credential.resolve("credential")?;
    let get = |path: &str| {
        http::get(&format!("{}{path}", s.base))
            .header("Accept", "application/json")
            .secret_header("Authorization", Some("token "), &token)
            .send()
    };
    let v = if version.status == 403 && message_of(&version).as_deref() == Some(SIGN_IN_REQUIRED) {
        // `REQUIRE_SIGNIN_VIEW`: Gitea's own refusal identifies it; the version needs the token.
        let signed_in = get("/api/v1/version").step("is-gitea")?;
        match signed_in.status {
            200 => {}
            401 | 403 => return Err(refusal("credential", &signed_in)),
            429 | 500..=599 => return Err(refusal("is-gitea", &signed_in)),
            _ => {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "is-gitea",
                    format!("`/api/v1/version` answered a signed-in caller {}", checks::describe_status(&signed_in)),
                ));
            }
        }
        version_of(&signed_in).ok_or_else(|| {
            Failed::new(
                FailureClass::ProviderMismatch,
                "is-gitea",
                "`/api/v1/version` answered a signed-in caller without a version: this is not Gitea",
            )
        })?
    } else {
        let Some(v) = version_of(&version).filter(|_| version.status == 200) else {
            return Err(Failed::new(
                FailureClass::ProviderMismatch,
                "is-gitea",
                format!(
                    "`/api/v1/version` answered {} without a version: this is not Gitea",
                    checks::describe_status(&version)
                ),
            ));
        };
        if full {
            let api = anonymous("/api/v1/settings/api").step("is-gitea")?;
            if api.status != 200 || !api.json().is_ok_and(|b| b.get("max_response_items").is_some_and(Value::is_u64)) {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "is-gitea",
                    format!(
                        "`/api/v1/settings/api` answered {} without Gitea's API settings",
                        checks::describe_status(&api)
                    ),
                ));
            }
        }
        v
    };
    let product = if v.contains("+gitea-") { "Forgejo" } else { "Gitea" };
    report.facts.provider_version = Some(v.clone());
    report.pass("is-gitea", format!("{product} {v}"));

    let me = get("/api/v1/user").step("credential")?;
    if me.status != 200 {
        return Err(refusal("credential", &me));
    }
    let user = me.json().ok().and_then(|b| b.get("login")?.as_str().map(str::to_string)).unwrap_or_default();
    report.pass("credential", format!("the token of `{user}` is accepted"));

    if let Some(repository) = s.repository.as_deref().filter(|_| full) {
        let repo = get(&format!("/api/v1/repos/{repository}")).step("repository")?;
        if repo.status == 404 {
            return Err(Failed::new(
                FailureClass::NotFound,
                "repository",
                format!("`{repository}` does not exist or `{user}` may not see it"),
            ));
        }
        if repo.status != 200 {
            return Err(refusal("repository", &repo));
        }
        let push = repo.json().ok().and_then(|b| b.get("permissions")?.get("push")?.as_bool()).unwrap_or(false);
        if s.needs_push && !push {
            return Err(Failed::new(
                FailureClass::Permission,
                "repository",
                format!("`{user}` may read `{repository}` but not push to it"),
            ));
        }
        report.pass("repository", format!("`{repository}` is readable{}", if push { " and writable" } else { "" }));
    }
    Ok(user)
}

impl Connector for Gitea {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("Gitea is reachable and the token of `{user}` works"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |_| "Gitea is reachable and the token works")
    }
}

register_connector!(Gitea);
