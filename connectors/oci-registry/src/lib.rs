//! The `oci-registry` connector: any registry that speaks the OCI Distribution API.
//!
//! `test-connection` steps:
//! - `configuration`: the preset, the base URL's host for that preset, the username, the
//!   repository name (OCI's grammar);
//! - `reachable`: `GET /v2/`, without a credential, answers;
//! - `is-registry`: the answer is the Distribution API's: the `Docker-Distribution-API-Version:
//!   registry/2.0` header, or a 401 whose `WWW-Authenticate` challenge is Basic or Bearer with an
//!   OCI error body (`{"errors": [...]}`); anything else is `provider-mismatch`;
//! - `credential`: the challenge is answered the way `docker login` does. Basic: `GET /v2/` with
//!   `username` and the AuthRef's secret. Bearer: the token service named by the challenge's
//!   `realm` (only the registry's own origin, or Docker Hub's `auth.docker.io` for its preset)
//!   trades the credential for a token, which the host keeps (`http.send-for-token`), and
//!   `GET /v2/` accepts that token. Without an AuthRef the registry must allow anonymous pulls;
//! - `repository` (when configured): `GET /v2/{name}/tags/list?n=1` is allowed (`NAME_UNKNOWN`
//!   is `not-found`, `DENIED`/401/403 `permission`). A `ratelimit-remaining` header on any answer
//!   (Docker Hub's) is reported.
//!
//! `check-health`: the same without the repository: two requests for Basic, three for Bearer; a
//! 429 or an exhausted limit is `degraded`.
//!
//! Configuration keys: `preset`, `username`, `repository`, `caCertificates` (read by the host).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;
use stella_connector_sdk::secrets::Secret;
use stella_connector_sdk::url;

struct OciRegistry;

/// The configuration keys, checked by [`settings`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    preset: Option<Value>,
    username: Option<Value>,
    repository: Option<Value>,
}

/// What choosing a registry by name changes.
struct Preset {
    id: &'static str,
    /// Host patterns the base URL must match (`*` matches any run of characters); empty: any.
    hosts: &'static [&'static str],
    /// Token-service hosts, besides the registry's own origin, that may receive the credential.
    token_hosts: &'static [&'static str],
    /// The username when none is configured (ECR's is always `AWS`).
    default_username: Option<&'static str>,
    /// Docker Hub's official images live under `library/`.
    official_namespace: Option<&'static str>,
    /// A hint when the base URL does not match.
    base_url_hint: &'static str,
}

const PRESETS: &[Preset] = &[
    Preset {
        id: "distribution",
        hosts: &[],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "",
    },
    Preset {
        id: "docker-hub",
        hosts: &["registry-1.docker.io", "index.docker.io"],
        token_hosts: &["auth.docker.io"],
        default_username: None,
        official_namespace: Some("library"),
        base_url_hint: "Docker Hub's registry API is at https://registry-1.docker.io (or https://index.docker.io)",
    },
    Preset {
        id: "ghcr",
        hosts: &["ghcr.io"],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "GitHub's container registry is at https://ghcr.io",
    },
    Preset {
        id: "quay",
        hosts: &[],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "",
    },
    Preset {
        id: "acr",
        hosts: &["*.azurecr.io", "*.azurecr.cn", "*.azurecr.us"],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "an Azure registry is at https://<name>.azurecr.io",
    },
    Preset {
        id: "gcr",
        hosts: &["gcr.io", "*.gcr.io", "*-docker.pkg.dev"],
        token_hosts: &[],
        default_username: Some("_json_key"),
        official_namespace: None,
        base_url_hint: "Google's registries are at https://gcr.io, https://<region>.gcr.io or https://<region>-docker.pkg.dev",
    },
    Preset {
        id: "ecr",
        hosts: &[
            "*.dkr.ecr.*.amazonaws.com",
            "*.dkr.ecr.*.amazonaws.com.cn",
            "*.dkr-ecr.*.on.aws",
            "*.dkr.ecr-fips.*.amazonaws.com",
        ],
        token_hosts: &[],
        default_username: Some("AWS"),
        official_namespace: None,
        base_url_hint: "an ECR registry is at https://<account>.dkr.ecr.<region>.amazonaws.com",
    },
    Preset {
        id: "artifactory",
        hosts: &[],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "",
    },
    Preset {
        id: "zot",
        hosts: &[],
        token_hosts: &[],
        default_username: None,
        official_namespace: None,
        base_url_hint: "",
    },
];

struct Settings {
    base: String,
    preset: &'static Preset,
    username: Option<String>,
    repository: Option<String>,
}

fn settings(config: &ConnectionConfig) -> Result<Settings, String> {
    let c: Keys = config.settings()?;
    let base = config.base()?.as_str().to_string();
    let text = |value: &Option<Value>, key: &str| -> Result<Option<String>, String> {
        match value {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a non-empty string")),
        }
    };
    let preset_id = text(&c.preset, "preset")?.unwrap_or_else(|| "distribution".into());
    let preset = PRESETS.iter().find(|p| p.id == preset_id).ok_or_else(|| {
        let known: Vec<&str> = PRESETS.iter().map(|p| p.id).collect();
        format!("unknown preset `{preset_id}` (known: {})", known.join(", "))
    })?;
    let host = url::host(&base).ok_or("the base URL has no host")?;
    if !preset.hosts.is_empty() && !preset.hosts.iter().any(|p| glob(p, &host)) {
        return Err(format!("`{host}` is not a host of preset `{}`: {}", preset.id, preset.base_url_hint));
    }
    let username = text(&c.username, "username")?.or(preset.default_username.map(str::to_string));
    if let Some(u) = &username
        && (u.contains(':') || u.len() > 256 || !u.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err("`username` must be visible ASCII without `:`, at most 256 characters".into());
    }
    if config.auth_ref.is_some() && username.is_none() {
        return Err(format!("preset `{}` needs a `username` for the AuthRef's secret", preset.id));
    }
    let repository = match text(&c.repository, "repository")? {
        None => None,
        Some(name) if is_repository_name(&name) => match preset.official_namespace {
            Some(ns) if !name.contains('/') => Some(format!("{ns}/{name}")),
            _ => Some(name),
        },
        Some(_) => {
            return Err("`repository` must be an OCI repository name: lowercase path components \
                        such as `team/app`, each of letters and digits joined by `.`, `_`, `__` or `-`"
                .into());
        }
    };
    Ok(Settings { base, preset, username, repository })
}

/// The OCI Distribution grammar for names:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
fn is_repository_name(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let bytes = c.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
                return false;
            }
        }
        true
    }
    name.len() <= 255 && name.split('/').all(component)
}

/// A glob where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else { return false };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

/// One `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, PartialEq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_string();
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => v.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end?..];
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_string();
            rest = &after[end..];
        }
        params.push((key, value));
    }
    Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

/// The first error of an OCI error body, as `CODE: message`.
fn oci_error(response: &Response) -> Option<String> {
    let body = response.json().ok()?;
    let first = body.get("errors")?.as_array()?.first()?.clone();
    let code = first.get("code").and_then(Value::as_str).unwrap_or("UNKNOWN");
    let message = first.get("message").and_then(Value::as_str).unwrap_or("");
    Some(format!("{code}: {message}"))
}

fn describe(response: &Response) -> String {
    match oci_error(response) {
        Some(e) => format!("{} ({e})", checks::describe_status(response)),
        None => checks::describe_status(response),
    }
}

/// How requests to the registry carry the credential once the challenge is answered.
enum Access {
    Anonymous,
    Basic(String, Secret),
    Bearer(Secret),
}

impl Access {
    fn get(&self, url: &str) -> Result<Response, http::HttpError> {
        self.request(http::get(url))
    }

    fn request(&self, request: http::RequestBuilder<'_>) -> Result<Response, http::HttpError> {
        match self {
            Access::Anonymous => request.send(),
            Access::Basic(user, secret) => request.basic(user, secret).send(),
            Access::Bearer(token) => request.bearer(token).send(),
        }
    }
}

fn run(config: &ConnectionConfig, report: &mut Report, full: bool) -> Result<String, Failed> {
    let s = settings(config).map_err(Failed::configuration)?;
    report.pass("configuration", format!("preset `{}`", s.preset.id));

    let v2 = format!("{}/v2/", s.base);
    let probe = http::get(&v2).send().step_at("reachable", &v2)?;
    report.pass("reachable", format!("{v2} answered"));
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&probe);

    let api_version = probe.header("docker-distribution-api-version").map(str::to_string);
    let challenge = probe.header("www-authenticate").and_then(parse_challenge);
    let oci_body = oci_error(&probe).is_some();
    let is_registry = match probe.status {
        200 => api_version.as_deref().is_some_and(|v| v.starts_with("registry/2.")),
        401 => {
            api_version.as_deref().is_some_and(|v| v.starts_with("registry/2."))
                || (oci_body && challenge.as_ref().is_some_and(|c| c.scheme == "basic" || c.scheme == "bearer"))
        }
        429 | 500..=599 => {
            return Err(Failed::new(checks::status_failure(probe.status), "is-registry", describe(&probe)));
        }
        _ => false,
    };
    if !is_registry {
        return Err(Failed::new(
            FailureClass::ProviderMismatch,
            "is-registry",
            format!(
                "`/v2/` answered {} without the Distribution API's header or challenge: this is not an OCI registry",
                checks::describe_status(&probe)
            ),
        ));
    }
    report.pass(
        "is-registry",
        format!("the Distribution API ({})", api_version.as_deref().unwrap_or("an OCI challenge")),
    );

    let secret = secrets::step_secret(config, "credential")?;
    let user = s.username.clone().unwrap_or_default();
    let access = match (probe.status, &challenge, secret) {
        (200, _, None) => {
            report.pass("credential", "no credential configured; the registry allows anonymous access");
            Access::Anonymous
        }
        (_, Some(c), None) if c.scheme == "bearer" => {
            // Public images: the token service hands anonymous pull tokens out.
            let access = Access::Bearer(bearer_token(&s, c, &user, None, full)?);
            let answer = access.get(&v2).step("credential")?;
            if answer.status != 200 {
                return Err(Failed::new(checks::status_failure(answer.status), "credential", describe(&answer)));
            }
            report.pass("credential", "no credential configured; the registry grants anonymous tokens");
            access
        }
        (_, _, None) => {
            return Err(Failed::new(
                FailureClass::Auth,
                "credential",
                "the registry requires a credential: set the integration's authRef and `username`",
            ));
        }
        (200, _, Some(secret)) => {
            // The registry did not challenge, so offer the credential the Basic way and see whether
            // it is refused.
            let access = Access::Basic(user.clone(), secret);
            basic_accepted(&access, &v2, &user)?;
            // A registry that asks for nothing may not check what it is given either.
            report.pass(
                "credential",
                format!("the registry allows anonymous access; `{user}`'s credential was not refused"),
            );
            access
        }
        (_, Some(c), Some(secret)) if c.scheme == "basic" => {
            let access = Access::Basic(user.clone(), secret);
            basic_accepted(&access, &v2, &user)?;
            report.pass("credential", format!("`{user}` is accepted (Basic)"));
            access
        }
        (_, Some(c), Some(secret)) if c.scheme == "bearer" => {
            let token = bearer_token(&s, c, &user, Some(&secret), full)?;
            let access = Access::Bearer(token);
            let answer = access.get(&v2).step("credential")?;
            if answer.status != 200 {
                return Err(Failed::new(
                    checks::status_failure(answer.status),
                    "credential",
                    format!("the registry refused the token its own token service issued: {}", describe(&answer)),
                ));
            }
            report
                .pass("credential", format!("`{user}` is accepted (a token from {})", c.param("realm").unwrap_or("")));
            access
        }
        (_, _, Some(_)) => {
            return Err(Failed::new(
                FailureClass::ProviderMismatch,
                "credential",
                format!(
                    "the registry's challenge `{}` is neither Basic nor Bearer",
                    probe.header("www-authenticate").unwrap_or("(none)")
                ),
            ));
        }
    };

    if let Some(repository) = s.repository.as_deref().filter(|_| full) {
        let tags_url = format!("{}/v2/{repository}/tags/list?n=1", s.base);
        let answer = access.request(http::get(&tags_url)).step("repository")?;
        let who = if user.is_empty() { "an anonymous caller".to_string() } else { format!("`{user}`") };
        match answer.status {
            200 => {
                report.facts.rate_limit_remaining =
                    checks::rate_limit_remaining(&answer).or(report.facts.rate_limit_remaining);
                let tags = answer.json().ok().and_then(|b| b.get("tags")?.as_array().map(Vec::len)).unwrap_or(0);
                let some = if tags == 0 { "it has no tags yet" } else { "it has tags" };
                report.pass("repository", format!("{who} may pull `{repository}`; {some}"));
            }
            404 => {
                return Err(Failed::new(
                    FailureClass::NotFound,
                    "repository",
                    format!("`{repository}` does not exist: {}", describe(&answer)),
                ));
            }
            401 | 403 => {
                return Err(Failed::new(
                    FailureClass::Permission,
                    "repository",
                    format!("{who} may not pull `{repository}` (or it does not exist): {}", describe(&answer)),
                ));
            }
            status => return Err(Failed::new(checks::status_failure(status), "repository", describe(&answer))),
        }
    }

    let who = if user.is_empty() { "anonymous access".to_string() } else { format!("`{user}`") };
    Ok(format!("{} is an OCI registry and {who} is accepted", s.base))
}

/// `GET /v2/` with the Basic credential answers 200. `/v2/` names no repository, so a refusal
/// there is about the credential: ECR answers an expired password 403 and one for another account
/// or region 400.
fn basic_accepted(access: &Access, v2: &str, user: &str) -> Result<(), Failed> {
    let answer = access.get(v2).step("credential")?;
    match answer.status {
        200 => Ok(()),
        400 | 401 | 403 => {
            Err(Failed::new(FailureClass::Auth, "credential", format!("`{user}` is rejected: {}", describe(&answer))))
        }
        status => Err(Failed::new(checks::status_failure(status), "credential", describe(&answer))),
    }
}

/// The origin of a Bearer challenge's realm, when the credential may go there: the registry's own
/// origin, or over HTTPS a token host of the preset. A registry cannot have it sent anywhere else.
/// The realm comes from a response header, so it is compared only when it is a plain URL
/// (`url::origin` refuses anything a URL parser could read as another host).
fn trusted_realm(base: &str, realm: &str, preset: &Preset) -> Result<String, String> {
    let realm_origin = url::origin(realm)
        .filter(|o| o.starts_with("https://") || o.starts_with("http://"))
        .ok_or_else(|| format!("the Bearer challenge names no usable token service (realm `{realm}`)"))?;
    let registry_origin = url::origin(base).unwrap_or_default();
    if realm_origin == registry_origin || preset.token_hosts.iter().any(|h| realm_origin == format!("https://{h}")) {
        return Ok(realm_origin);
    }
    Err(format!(
        "the registry sends credentials to {realm_origin}, which is neither the registry ({registry_origin}) nor a \
         token service of preset `{}`; the credential was not sent. Docker Hub needs preset `docker-hub`; a registry \
         that names itself by another host name (Quay's SERVER_HOSTNAME, Harbor's external URL) must be configured \
         under that name",
        preset.id
    ))
}

/// Answers a Bearer challenge the way `docker login` does: the token service at the challenge's
/// realm trades the credential (Basic) for a token, which the host keeps.
fn bearer_token(
    s: &Settings,
    challenge: &Challenge,
    user: &str,
    secret: Option<&Secret>,
    full: bool,
) -> Result<Secret, Failed> {
    let realm = challenge.param("realm").unwrap_or_default();
    let realm_origin = trusted_realm(&s.base, realm, s.preset)
        .map_err(|why| Failed::new(FailureClass::Misconfigured, "credential", why))?;
    let mut token_url = realm.to_string();
    let mut sep = if token_url.contains('?') { '&' } else { '?' };
    let mut add = |key: &str, value: &str| {
        token_url.push(sep);
        token_url.push_str(key);
        token_url.push('=');
        token_url.push_str(&url::query_escape(value));
        sep = '&';
    };
    if let Some(service) = challenge.param("service") {
        add("service", service);
    }
    // The health check does not look at the repository, so it does not ask for its scope either.
    if let Some(repository) = s.repository.as_ref().filter(|_| full) {
        add("scope", &format!("repository:{repository}:pull"));
    }
    let request = match secret {
        Some(secret) => http::get(&token_url).basic(user, secret),
        None => http::get(&token_url),
    };
    let (answer, token) = request
        .send_for_token(&["/token", "/access_token"])
        .step_at("credential", format_args!("the token service {realm_origin}"))?;
    match (answer.status, token) {
        (200..=299, Some(token)) => Ok(token),
        (200..=299, None) => Err(Failed::new(
            FailureClass::ProviderMismatch,
            "credential",
            format!("the token service {realm_origin} answered {} without a token", answer.status),
        )),
        // A token service answers a scope the caller may not have with a token for less, not an
        // error (the Docker token specification), so a refusal is about the credential itself:
        // 401, or 403 (GHCR's `DENIED` for a bad token).
        (401 | 403, _) => {
            let who = if secret.is_some() { format!("`{user}`") } else { "an anonymous caller".to_string() };
            Err(Failed::new(
                FailureClass::Auth,
                "credential",
                format!("the token service rejected {who}: {}", describe(&answer)),
            ))
        }
        (status, _) => Err(Failed::new(
            checks::status_failure(status),
            "credential",
            format!("the token service {realm_origin}: {}", describe(&answer)),
        )),
    }
}

impl Connector for OciRegistry {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(|report| run(config, report, true), |message| message)
    }

    fn check_health(config: &ConnectionConfig) -> HealthResult {
        Report::health_of(|report| run(config, report, false), |message| message)
    }
}

register_connector!(OciRegistry);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull"));
        let basic = parse_challenge(r#"Basic realm="stella \"test\"""#).unwrap();
        assert_eq!((basic.scheme.as_str(), basic.param("realm")), ("basic", Some(r#"stella "test""#)));
        let bare = parse_challenge("Bearer realm=https://quay.io/v2/auth, service=quay.io").unwrap();
        assert_eq!(bare.param("service"), Some("quay.io"));
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn repository_names_follow_the_oci_grammar() {
        for ok in ["alpine", "library/alpine", "team/app-1", "a/b/c", "my__app", "a.b", "x--y"] {
            assert!(is_repository_name(ok), "{ok}");
        }
        for bad in ["", "Team/app", "team/", "/app", "a/../b", "..", "a_.b", "-a", "a-", "a b", "a/./b", "a:1"] {
            assert!(!is_repository_name(bad), "{bad}");
        }
        assert!(!is_repository_name(&"a".repeat(256)));
    }

    #[test]
    fn the_credential_goes_only_to_the_registry_or_its_presets_token_service() {
        let preset = |id: &str| PRESETS.iter().find(|p| p.id == id).unwrap();
        let base = "https://registry.example.com";
        assert_eq!(
            trusted_realm(base, "https://registry.example.com/token", preset("distribution")).as_deref(),
            Ok(base)
        );
        assert!(trusted_realm(base, "https://auth.docker.io/token", preset("distribution")).is_err());
        assert!(
            trusted_realm("https://registry-1.docker.io", "https://auth.docker.io/token", preset("docker-hub")).is_ok()
        );
        assert!(
            trusted_realm("https://registry-1.docker.io", "http://auth.docker.io/token", preset("docker-hub")).is_err()
        );
        for hostile in [
            r"https://auth.docker.io\@registry.example.com/token",
            "https://auth.docker.io\\registry.example.com/token",
            "https://x@registry.example.com/token",
            "https://registry.example.com.evil.example/token",
            "https://registry.example.com:8443/token",
            "ftp://registry.example.com/token",
            "",
        ] {
            assert!(trusted_realm(base, hostile, preset("docker-hub")).is_err(), "{hostile}");
        }
    }

    #[test]
    fn hosts_match_preset_patterns() {
        assert!(glob("*.azurecr.io", "myreg.azurecr.io"));
        assert!(!glob("*.azurecr.io", "azurecr.io.evil.example"));
        assert!(glob("*-docker.pkg.dev", "europe-west1-docker.pkg.dev"));
        assert!(glob("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
        assert!(!glob("*.dkr.ecr.*.amazonaws.com", "123.dkr.ecr.eu-west-1.amazonaws.com.evil.example"));
    }
}
