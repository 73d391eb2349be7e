//! What the GitHub connectors (`github` with a personal access token, `github-app` as an app)
//! share: where the REST API is, the headers GitHub asks for, how its refusals read, and the
//! anonymous proof that a server is GitHub before any credential goes to it.

use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

/// GitHub.com's REST API.
pub const GITHUB_COM_API: &str = "https://api.github.com";

/// GitHub.com: one base URL (its API host is accepted too); its hosts spelled any other way
/// (`http://`, a path) are refused rather than read as an Enterprise Server at that address.
pub const GITHUB_COM: Cloud = Cloud {
    name: "GitHub.com",
    url: "https://github.com",
    also: &["https://www.github.com", "https://api.github.com"],
    hosts: &["github.com", "www.github.com", "api.github.com"],
};

/// Where the REST API of a base URL is: GitHub.com's for `https://github.com` (or its API host),
/// `<base URL>/api/v3` for Enterprise Server. The flag says Enterprise Server.
pub fn api_root(base: &BaseUrl) -> Result<(String, bool), String> {
    Ok(match base.deployment(&GITHUB_COM)? {
        Deployment::Cloud => (GITHUB_COM_API.to_string(), false),
        Deployment::SelfHosted if base.as_str().to_ascii_lowercase().ends_with("/api/v3") => {
            (base.as_str().to_string(), true)
        }
        Deployment::SelfHosted => (base.join("/api/v3"), true),
    })
}

/// GitHub's documented headers: the JSON media type, the API version, and a User-Agent, without
/// which GitHub refuses a request.
pub fn github(request: http::RequestBuilder<'_>) -> http::RequestBuilder<'_> {
    request
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("User-Agent", "stellaops-integration-catalog")
}

/// GitHub's error `message` (`{"message": "Bad credentials", "documentation_url": "…", "status": "401"}`).
pub fn message_of(response: &Response) -> Option<String> {
    response.json().ok().and_then(|b| b.get("message")?.as_str().map(str::to_string))
}

/// GitHub's refusal: its `message`, and a rate limit told apart from a permission (GitHub answers
/// an exhausted limit with 403 or 429 and `X-RateLimit-Remaining: 0`, a secondary limit with
/// `Retry-After`).
pub fn refusal(step: &'static str, response: &Response) -> Failed {
    let message = message_of(response);
    // Secondary limits may come as a 403 with neither header, only the message saying so.
    let limited = response.status == 429
        || (response.status == 403
            && (response.header("x-ratelimit-remaining") == Some("0")
                || response.header("retry-after").is_some()
                || message.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"))));
    let class = if limited { FailureClass::RateLimited } else { checks::status_failure(response.status) };
    let detail = message.map(|m| format!(" ({m})")).unwrap_or_default();
    Failed::new(class, step, format!("{}{detail}", checks::describe_status(response)))
}

/// Proves, without a credential, that `api` is GitHub's REST API (steps `reachable` and
/// `is-github`): `GET /meta` answers with GitHub's metadata (`verifiable_password_authentication`)
/// and an `X-GitHub-Request-Id`. An Enterprise Server in private mode refuses anonymous callers
/// with a 401 that still carries the request id and GitHub's error body (a `documentation_url` on
/// docs.github.com), which identifies it too. The version of Enterprise Server comes from
/// `X-GitHub-Enterprise-Version` or `installed_version` and is reported.
pub fn prove_github(api: &str, enterprise: bool, report: &mut Report) -> Result<(), Failed> {
    let meta = github(http::get(&format!("{api}/meta"))).send().step_at("reachable", api)?;
    report.pass("reachable", format!("{api} answered"));
    if meta.status >= 500 || meta.status == 429 || meta.status == 403 {
        return Err(refusal("is-github", &meta));
    }
    let request_id = meta.header("x-github-request-id").is_some();
    let body = meta.json().ok();
    let private_mode = meta.status == 401
        && request_id
        && body
            .as_ref()
            .and_then(|b| b.get("documentation_url")?.as_str())
            .is_some_and(|u| u.contains("docs.github.com"));
    let public = meta.status == 200
        && request_id
        && body.as_ref().is_some_and(|b| b.get("verifiable_password_authentication").is_some());
    if !public && !private_mode {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "is-github",
            format!(
                "`/meta` answered {} without GitHub's metadata: this is not GitHub's API",
                checks::describe_status(&meta)
            ),
        ));
    }
    let version = meta
        .header("x-github-enterprise-version")
        .map(str::to_string)
        .or_else(|| body.as_ref().and_then(|b| b.get("installed_version")?.as_str().map(str::to_string)));
    let mut product = match (&version, enterprise) {
        (Some(v), _) => format!("GitHub Enterprise Server {v}"),
        (None, true) => "GitHub Enterprise Server (version not disclosed)".to_string(),
        (None, false) => "GitHub.com".to_string(),
    };
    if private_mode {
        product.push_str(", in private mode");
    }
    report.facts.provider_version = version;
    report.pass("is-github", product);
    Ok(())
}

/// A repository name as GitHub allows it, `owner/name`: letters, digits, `-`, `_`, `.`, never `.`
/// or `..` (path segments, not names).
pub fn repository(value: &Value) -> Option<String> {
    let r = value.as_str()?;
    let valid = r.split('/').count() == 2 && path_of_segments(r, 2) && r.split('/').all(|part| part.len() <= 100);
    valid.then(|| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_root_follows_the_product() {
        let api_root = |url: &str| api_root(&BaseUrl::parse(url)?);
        assert_eq!(api_root("https://github.com"), Ok(("https://api.github.com".into(), false)));
        assert_eq!(api_root("https://api.github.com/"), Ok(("https://api.github.com".into(), false)));
        assert_eq!(api_root("https://ghe.example.com"), Ok(("https://ghe.example.com/api/v3".into(), true)));
        assert_eq!(api_root("https://ghe.example.com/api/v3/"), Ok(("https://ghe.example.com/api/v3".into(), true)));
        // GitHub.com spelled any other way is not an Enterprise Server at that address: a token
        // must never go to `http://github.com`.
        for wrong in ["http://github.com", "https://github.com/acme", "http://api.github.com"] {
            assert!(api_root(wrong).unwrap_err().contains("https://github.com"), "{wrong}");
        }
    }

    #[test]
    fn repository_names_are_owner_slash_name() {
        assert_eq!(repository(&Value::from("acme/api.v2")), Some("acme/api.v2".into()));
        for bad in ["acme", "acme/", "/api", "acme/../x", "acme/..", "a/b/c", "acme/a b", "acme/a%2e"] {
            assert_eq!(repository(&Value::from(bad)), None, "{bad}");
        }
        assert_eq!(repository(&Value::from(1)), None);
    }
}
