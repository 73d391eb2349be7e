//! The `jenkins` connector: a Jenkins controller, through its remote access API, with a user and
//! an API token (HTTP basic).
//!
//! `test-connection` steps:
//! - `reachable`, `is-jenkins`: `GET /api/json`, first without the credential, answers with the
//!   `X-Jenkins` header that every Jenkins response carries (its value is the version); only then
//!   is it asked again with the API token (the health check asks `/me/api/json` instead);
//! - `credential`: the API token is accepted (401 `auth`) and `GET /me/api/json` names the user,
//!   not `anonymous`;
//! - `permission`: `/api/json` answered 200: the user has Overall/Read (403 otherwise);
//! - `crumb` (when `checkCrumb` is true): `GET /crumbIssuer/api/json` hands out a crumb, which
//!   anything that triggers builds will need.
//!
//! `check-health`: `/api/json` without the credential (the proof) and `/me/api/json` with it
//! (two requests).
//!
//! Configuration keys: `username` (required with an AuthRef), `checkCrumb` (default false),
//! `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct Jenkins;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    username: Option<Value>,
    check_crumb: Option<Value>,
}

struct Settings {
    base: String,
    username: Option<String>,
    check_crumb: bool,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?.as_str().to_string();
    let username = match &c.username {
        None => None,
        Some(Value::String(u)) if !u.trim().is_empty() && !u.contains(':') => Some(u.trim().to_string()),
        Some(_) => return Err("`username` must be a non-empty string without `:`".into()),
    };
    if config.auth_ref.is_some() != username.is_some() {
        return Err("`username` and the authRef (the user's API token) go together".into());
    }
    let check_crumb = match &c.check_crumb {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`checkCrumb` must be true or false".into()),
    };
    Ok(Settings { base, username, check_crumb })
}

fn refusal(step: &'static str, response: &Response) -> Failed {
    Failed::new(checks::status_failure(response.status), step, checks::describe_status(response))
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");
    let token = secrets::step_secret(config, "credential")?;
    let get = |path: &str| {
        let request = http::get(&format!("{}{path}", s.base)).header("Accept", "application/json");
        match (&token, &s.username) {
            (Some(token), Some(user)) => request.basic(user, token).send(),
            _ => request.send(),
        }
    };

    // With a credential, the first request is anonymous, in the health check too: every Jenkins
    // answer, even a 403, carries `X-Jenkins`, so the token goes only to a server that is Jenkins.
    let probe_url = format!("{}/api/json?tree=mode,useSecurity", s.base);
    let mut proven = None;
    // Whether `root` is the answer to the credential (else the anonymous proof, in a health check,
    // where `/me/api/json` judges the credential).
    let mut credentialed = true;
    let root = if token.is_some() {
        let anonymous =
            http::get(&probe_url).header("Accept", "application/json").send().step_at("reachable", &s.base)?;
        match anonymous.header("x-jenkins").map(str::to_string) {
            Some(version) if full => {
                proven = Some(version);
                get("/api/json?tree=mode,useSecurity").step_at("reachable", &s.base)?
            }
            Some(_) => {
                credentialed = false;
                anonymous
            }
            None => anonymous,
        }
    } else {
        get("/api/json?tree=mode,useSecurity").step_at("reachable", &s.base)?
    };
    report.pass("reachable", format!("{} answered", s.base));
    // Jenkins rejects a wrong token through its Basic-auth entry point, whose 401 carries no
    // `X-Jenkins`: once the anonymous answer proved Jenkins, the status alone decides.
    let Some(version) = root.header("x-jenkins").map(str::to_string).or(proven) else {
        return Err(if root.status >= 500 || root.status == 429 {
            refusal("is-jenkins", &root)
        } else {
            Failed::new(
                FailureClass::ProviderMismatch,
                "is-jenkins",
                format!(
                    "`/api/json` answered {} without an `X-Jenkins` header: this is not Jenkins",
                    checks::describe_status(&root)
                ),
            )
        });
    };
    report.facts.provider_version = Some(version.clone());
    report.pass("is-jenkins", format!("Jenkins {version}"));
    match root.status {
        _ if !credentialed => {}
        200 => {}
        401 => {
            return Err(Failed::new(
                FailureClass::Auth,
                "credential",
                format!("Jenkins rejected the API token: {}", checks::describe_status(&root)),
            ));
        }
        403 => {
            return Err(Failed::new(
                FailureClass::Permission,
                "permission",
                "the user lacks Overall/Read (Jenkins answered 403 to `/api/json`)",
            ));
        }
        _ => return Err(refusal("is-jenkins", &root)),
    }

    let me = get("/me/api/json").step("credential")?;
    if me.status != 200 {
        return Err(refusal("credential", &me));
    }
    let id = me.json().ok().and_then(|b| b.get("id")?.as_str().map(str::to_string)).unwrap_or_default();
    match (&s.username, id.as_str()) {
        (None, _) => report.pass("credential", "no credential configured: anonymous access"),
        (Some(user), "anonymous") => {
            return Err(Failed::new(FailureClass::Auth, "credential", format!("Jenkins treats `{user}` as anonymous")));
        }
        (Some(_), id) => report.pass("credential", format!("the API token of `{id}` is accepted")),
    }
    report.pass("permission", "Overall/Read is granted");

    if s.check_crumb && full {
        let crumb = get("/crumbIssuer/api/json").step("crumb")?;
        let field = crumb.json().ok().and_then(|b| b.get("crumbRequestField")?.as_str().map(str::to_string));
        match (crumb.status, field) {
            (200, Some(field)) => report.pass("crumb", format!("the crumb issuer answers (`{field}`)")),
            (404, _) => {
                return Err(Failed::new(
                    FailureClass::Misconfigured,
                    "crumb",
                    "CSRF protection is off on this Jenkins (no crumb issuer), but `checkCrumb` expects it",
                ));
            }
            (200, None) => {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "crumb",
                    "the crumb issuer answered without a crumb",
                ));
            }
            _ => return Err(refusal("crumb", &crumb)),
        }
    }
    Ok(if id.is_empty() { "anonymous".into() } else { id })
}

impl Connector for Jenkins {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("Jenkins is reachable and `{user}` may read it"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |_| "Jenkins is reachable and the token works")
    }
}

register_connector!(Jenkins);
