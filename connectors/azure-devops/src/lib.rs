//! The `azure-devops` connector: Azure DevOps Services (`https://dev.azure.com/{organization}`,
//! or the legacy `https://{organization}.visualstudio.com`) or Azure DevOps Server / TFS (a
//! collection URL such as `https://tfs.example.com/tfs/DefaultCollection`), with a personal access
//! token sent as HTTP basic with an empty user name (`base64(":" + PAT)`).
//!
//! Every request carries `X-TFS-FedAuthRedirect: Suppress`, so a rejected token is a 401 rather
//! than a redirect to a sign-in page; redirects are never followed, and a 2xx that is not JSON
//! (Azure DevOps answers a bad token with 203 and an HTML sign-in page) is a failure.
//!
//! `test-connection` steps:
//! - `configuration`: the base URL's form (Services or Server), `project`, `apiVersion`;
//! - `reachable`, `is-azure-devops`, both without the token: on Services,
//!   `GET https://dev.azure.com/_apis/resourceAreas/79134C72-…?accountName={organization}` answers
//!   the organization's own URL (404 or no URL: `not-found`); on Server,
//!   `GET {collection}/_apis/connectionData` answers as Azure DevOps does: a 401 carrying a
//!   `X-TFS-ProcessId` and TFS's error headers (`X-TFS-ServiceError` `TF400813: Resource not
//!   available for anonymous access.`, `X-TFS-SoapException`, `X-VSS-E2EID`), or, with anonymous
//!   access on, its connection data (`instanceId`, `locationServiceData`);
//! - `credential`: `GET {base}/_apis/connectionData` with the token names its user (401 `auth`
//!   with Azure DevOps' message, e.g. `Access Denied: The Personal Access Token used has
//!   expired.`; 203 or any other non-JSON answer `auth`; an anonymous identity `auth`);
//! - `project` (when `project` is configured):
//!   `GET {base}/_apis/projects/{project}?api-version=7.1` is readable (404 `not-found`, with
//!   `TF200016`; a version the server does not support is `misconfigured`).
//!
//! A personal access token cannot read its own expiry (the token API needs a Microsoft Entra
//! token), so none is reported; an expired token fails `credential` as `auth`.
//!
//! `check-health`: Server: the anonymous and the signed-in connection data (two requests);
//! Services: the signed-in connection data (one; the host is fixed and its certificate proves it).
//! The remaining `X-RateLimit-Remaining` is reported when Azure DevOps sends it.
//!
//! Configuration keys: `project`, `apiVersion` (default `7.1`), `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{RequestBuilder, Response, ResponseExt};
use stella_connector_sdk::prelude::*;
use stella_connector_sdk::url;

struct AzureDevOps;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    project: Option<Value>,
    api_version: Option<Value>,
}

/// The resource area of Azure DevOps' core services (projects), as documented for looking up an
/// organization's URL.
const CORE_AREA: &str = "79134C72-4A58-4B42-976C-04E7115F32BF";

struct Settings {
    /// The credential it cannot work without.
    credential: Credential,
    /// The organization (Services) or collection (Server) URL.
    base: String,
    /// The organization, on Azure DevOps Services.
    organization: Option<String>,
    project: Option<String>,
    api_version: String,
}

/// The organization of an Azure DevOps Services base URL, `None` for a Server, and an error for
/// a Services host spelled any other way.
fn organization(base: &str) -> Result<Option<String>, String> {
    let lower = base.to_ascii_lowercase();
    let host = url::host(&lower).ok_or("the base URL must be an http(s) URL")?;
    let path = lower.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or_default();
    let name = |org: &str| {
        !org.is_empty() && org.len() <= 50 && org.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if host == "dev.azure.com" {
        return match path.split('/').collect::<Vec<_>>().as_slice() {
            [org] if lower.starts_with("https://") && name(org) && *org != "." && *org != ".." => {
                // The organization as written (Azure DevOps compares names case-insensitively).
                Ok(Some(base.rsplit('/').next().unwrap_or(org).to_string()))
            }
            _ => Err("Azure DevOps Services' base URL is `https://dev.azure.com/{organization}`".into()),
        };
    }
    if let Some(org) = host.strip_suffix(".visualstudio.com") {
        return if lower.starts_with("https://") && path.is_empty() && name(org) && !org.contains('.') {
            Ok(Some(org.to_string()))
        } else {
            Err("a legacy Azure DevOps Services base URL is `https://{organization}.visualstudio.com`".into())
        };
    }
    Ok(None)
}

/// A project name as Azure DevOps allows it: no path or URL syntax, no leading `_` or `.`, no
/// trailing `.`, at most 64 characters.
fn project_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 64
        && !name.starts_with(['_', '.'])
        && !name.ends_with('.')
        && !name.chars().any(|c| c.is_control() || r#"\/:*?"<>|;#$%&{},+=[]@'`~^"#.contains(c))
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?.as_str().to_string();
    let organization = organization(&base)?;
    let credential = config.credential("Azure DevOps needs a personal access token")?;
    let project = match &c.project {
        None => None,
        Some(Value::String(p)) if project_name(p) => Some(p.clone()),
        Some(_) => return Err("`project` must be a project name (no `/`, `\\`, `?`, `#`, …)".into()),
    };
    let api_version = match &c.api_version {
        None => "7.1".to_string(),
        Some(Value::String(v)) if valid_api_version(v) => v.clone(),
        Some(_) => return Err("`apiVersion` must be an API version such as `7.1` or `6.0`".into()),
    };
    Ok(Settings { credential, base, organization, project, api_version })
}

/// `7.1`, `6.0`, `7.1-preview.1`.
fn valid_api_version(v: &str) -> bool {
    let (number, preview) = match v.split_once("-preview") {
        Some((n, rest)) => (n, Some(rest)),
        None => (v, None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    let number_ok = number.split_once('.').is_some_and(|(major, minor)| digits(major) && digits(minor));
    number_ok && preview.is_none_or(|p| p.is_empty() || p.strip_prefix('.').is_some_and(digits))
}

/// A GUID as `8-4-4-4-12` hex digits.
fn is_guid(text: &str) -> bool {
    let text = text.trim();
    text.len() == 36
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// `%xx` and `+` decoded (TFS's `X-TFS-ServiceError` header is form-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) {
                Some(hex) => {
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Azure DevOps' own error text: the JSON body's `message` (`{"$id", "innerException", "message",
/// "typeName", "typeKey", "errorCode", "eventId"}`), else the `X-TFS-ServiceError` header.
fn devops_error(response: &Response) -> Option<String> {
    let from_body = response.json().ok().and_then(|b| {
        let message = b.get("message")?.as_str()?.to_string();
        Some(match b.get("typeKey").and_then(Value::as_str) {
            Some(key) => format!("{message} [{key}]"),
            None => message,
        })
    });
    from_body.or_else(|| response.header("x-tfs-serviceerror").map(percent_decode))
}

/// A refusal, classed by its status (and as `auth` when Azure DevOps says the token expired),
/// with Azure DevOps' message.
fn refusal(step: &'static str, response: &Response) -> Failed {
    let error = devops_error(response);
    let class = match &error {
        Some(e) if e.contains("Personal Access Token used has expired") => FailureClass::Auth,
        _ => checks::status_failure(response.status),
    };
    let detail = error.map(|e| format!(" ({e})")).unwrap_or_default();
    Failed::new(class, step, format!("{}{detail}", checks::describe_status(response)))
}

/// A 2xx that is not JSON: Azure DevOps' sign-in page (203) for a token it did not take.
fn sign_in_page(step: &'static str, response: &Response) -> Failed {
    Failed::new(
        FailureClass::Auth,
        step,
        format!(
            "Azure DevOps answered {} with a page, not JSON: the personal access token was not accepted",
            checks::describe_status(response)
        ),
    )
}

fn request(url: &str) -> RequestBuilder<'static> {
    http::get(url).header("Accept", "application/json").header("X-TFS-FedAuthRedirect", "Suppress")
}

fn note_rate_limit(report: &mut Report, response: &Response) {
    if let Some(left) = checks::rate_limit_remaining(response) {
        report.facts.rate_limit_remaining = Some(left);
    }
}

/// Whether an anonymous `connectionData` answer is Azure DevOps': TFS's 401 with its process id
/// and error headers, or the connection data itself.
fn anonymous_answer_is_devops(response: &Response) -> bool {
    match response.status {
        401 | 403 => {
            response.header("x-tfs-processid").is_some_and(is_guid)
                && ["x-tfs-serviceerror", "x-tfs-soapexception", "x-vss-e2eid"]
                    .iter()
                    .any(|h| response.header(h).is_some())
        }
        200 => response.json().is_ok_and(|b| {
            b.get("instanceId").and_then(Value::as_str).is_some_and(is_guid)
                && b.get("locationServiceData").is_some_and(Value::is_object)
        }),
        _ => false,
    }
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", "the settings are valid");

    // Proven before the token is sent: the organization by Azure DevOps' own lookup (Services), or
    // the collection by TFS's anonymous answer (Server). A Services health check relies on the
    // fixed host and its certificate instead.
    let mut proven = false;
    match &s.organization {
        Some(org) if full => {
            let lookup = format!(
                "https://dev.azure.com/_apis/resourceAreas/{CORE_AREA}?accountName={}&api-version=5.0-preview.1",
                url::query_escape(org)
            );
            let area = request(&lookup).send().step_at("reachable", "https://dev.azure.com")?;
            report.pass("reachable", "https://dev.azure.com answered");
            note_rate_limit(report, &area);
            if area.status >= 500 || area.status == 429 {
                return Err(refusal("is-azure-devops", &area));
            }
            let location = area
                .json()
                .ok()
                .filter(|_| area.status == 200)
                .and_then(|b| b.get("locationUrl")?.as_str().map(|u| u.trim_end_matches('/').to_ascii_lowercase()));
            let org_lower = org.to_ascii_lowercase();
            let names_org = |u: &str| {
                u == format!("https://dev.azure.com/{org_lower}")
                    || u == format!("https://{org_lower}.visualstudio.com")
            };
            match location {
                Some(u) if names_org(&u) => {
                    report.pass("is-azure-devops", format!("Azure DevOps Services organization `{org}` ({u})"));
                }
                Some(u) => {
                    return Err(Failed::new(
                        FailureClass::ProviderMismatch,
                        "is-azure-devops",
                        format!("Azure DevOps locates `{org}` at {u}, not at {}", s.base),
                    ));
                }
                None => {
                    return Err(Failed::new(
                        FailureClass::NotFound,
                        "is-azure-devops",
                        format!(
                            "Azure DevOps Services knows no organization `{org}` ({})",
                            checks::describe_status(&area)
                        ),
                    ));
                }
            }
            proven = true;
        }
        Some(_) => {}
        None => {
            let url = format!("{}/_apis/connectionData", s.base);
            let anonymous = request(&url).send().step_at("reachable", &s.base)?;
            report.pass("reachable", format!("{} answered", s.base));
            note_rate_limit(report, &anonymous);
            if anonymous.status >= 500 || anonymous.status == 429 {
                return Err(refusal("is-azure-devops", &anonymous));
            }
            if !anonymous_answer_is_devops(&anonymous) {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "is-azure-devops",
                    format!(
                        "`/_apis/connectionData` answered {} without Azure DevOps' `X-TFS-ProcessId` or connection data: \
                         this is not Azure DevOps",
                        checks::describe_status(&anonymous)
                    ),
                ));
            }
            let how = if anonymous.status == 200 { "its anonymous connection data" } else { "TFS's anonymous refusal" };
            report.pass("is-azure-devops", format!("Azure DevOps Server ({how})"));
            proven = true;
        }
    }

    let token = s.credential.resolve("credential")?;
    let get = |url: &str| request(url).basic("", &token).send();
    let me = if proven {
        get(&format!("{}/_apis/connectionData", s.base)).step("credential")?
    } else {
        let me = get(&format!("{}/_apis/connectionData", s.base)).step_at("reachable", &s.base)?;
        report.pass("reachable", format!("{} answered", s.base));
        report.pass("is-azure-devops", "Azure DevOps Services: a fixed host over HTTPS, proven by its certificate");
        me
    };
    note_rate_limit(report, &me);
    if !(200..300).contains(&me.status) {
        return Err(refusal("credential", &me));
    }
    let Ok(data) = me.json() else { return Err(sign_in_page("credential", &me)) };
    let Some(user) = data.get("authenticatedUser").filter(|u| u.is_object()) else {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "credential",
            "`/_apis/connectionData` answered without an authenticated user: this is not Azure DevOps",
        ));
    };
    let descriptor = user.get("descriptor").and_then(Value::as_str).unwrap_or_default();
    let id = user.get("id").and_then(Value::as_str).unwrap_or_default();
    if me.status != 200 || descriptor.contains("UnauthenticatedIdentity") || (descriptor.is_empty() && id.is_empty()) {
        return Err(Failed::new(
            FailureClass::Auth,
            "credential",
            "Azure DevOps took the request as anonymous: the personal access token was not accepted",
        ));
    }
    let name = user.get("providerDisplayName").and_then(Value::as_str).unwrap_or("the token's user").to_string();
    let account = user.pointer("/properties/Account/$value").and_then(Value::as_str);
    let deployment = match data.get("deploymentType").and_then(Value::as_str) {
        Some("hosted") => " on Azure DevOps Services",
        Some("onPremises") => " on Azure DevOps Server",
        _ => "",
    };
    match account {
        Some(a) if a != name => {
            report.pass("credential", format!("the token of `{name}` ({a}) is accepted{deployment}"))
        }
        _ => report.pass("credential", format!("the token of `{name}` is accepted{deployment}")),
    }

    if let Some(project) = s.project.as_deref().filter(|_| full) {
        let url = format!(
            "{}/_apis/projects/{}?api-version={}",
            s.base,
            url::query_escape(project),
            url::query_escape(&s.api_version)
        );
        let answer = get(&url).step("project")?;
        note_rate_limit(report, &answer);
        match answer.status {
            200..=299 => {
                let Ok(body) = answer.json() else { return Err(sign_in_page("project", &answer)) };
                let found = body.get("name").and_then(Value::as_str).unwrap_or(project).to_string();
                let state = body.get("state").and_then(Value::as_str).unwrap_or("unknown");
                if answer.status != 200 || body.get("id").and_then(Value::as_str).is_none_or(|id| !is_guid(id)) {
                    return Err(Failed::new(
                        FailureClass::ProviderMismatch,
                        "project",
                        format!("`/_apis/projects/{project}` answered {} without a project", answer.status),
                    ));
                }
                report.pass("project", format!("project `{found}` is readable (state {state})"));
            }
            404 => {
                let detail = devops_error(&answer).map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "project",
                    format!("project `{project}` does not exist or `{name}` may not see it{detail}"),
                ));
            }
            400 => {
                let detail = devops_error(&answer).unwrap_or_else(|| "status 400".into());
                return Err(Failed::new(
                    FailureClass::Misconfigured,
                    "project",
                    format!("Azure DevOps refused the request with api-version {}: {detail}", s.api_version),
                ));
            }
            _ => return Err(refusal("project", &answer)),
        }
    }
    Ok(name)
}

impl Connector for AzureDevOps {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(
            |report| run(config, report, true),
            |user| format!("Azure DevOps is reachable and the token of `{user}` works"),
        )
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |_| "Azure DevOps is reachable and the token works")
    }
}

register_connector!(AzureDevOps);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_services_or_server() {
        assert_eq!(organization("https://dev.azure.com/Fabrikam"), Ok(Some("Fabrikam".into())));
        assert_eq!(organization("https://fabrikam.visualstudio.com"), Ok(Some("fabrikam".into())));
        assert_eq!(organization("https://tfs.example.com/tfs/DefaultCollection"), Ok(None));
        assert_eq!(organization("http://127.0.0.1:8080"), Ok(None));
        for wrong in [
            "https://dev.azure.com",
            "http://dev.azure.com/fabrikam",
            "https://dev.azure.com/fabrikam/project",
            "https://dev.azure.com/..",
            "https://fabrikam.visualstudio.com/DefaultCollection",
            "http://fabrikam.visualstudio.com",
        ] {
            assert!(organization(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn projects_api_versions_and_headers_are_checked() {
        assert!(project_name("Fabrikam Fiber"));
        for bad in ["", " ", "a/b", "..", "_x", "x.", "a?b", "a#b", "a%2Fb"] {
            assert!(!project_name(bad), "{bad}");
        }
        for good in ["7.1", "6.0", "7.1-preview.1", "5.0-preview"] {
            assert!(valid_api_version(good), "{good}");
        }
        for bad in ["7", "7.1&x=1", "", "v7.1", "7.1-preview.x"] {
            assert!(!valid_api_version(bad), "{bad}");
        }
        assert!(is_guid("96021cb3-66d9-48f2-898f-d5412ff210a6"));
        assert!(!is_guid("96021cb3066d9048f20898f0d5412ff210a6"));
        assert_eq!(
            percent_decode("TF400813%3a+Resource+not+available+for+anonymous+access."),
            "TF400813: Resource not available for anonymous access."
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
