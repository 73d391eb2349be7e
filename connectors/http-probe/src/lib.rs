//! The `http-probe` connector: the generic HTTP health check, for runtime-host agents and for
//! anything without a dedicated connector. One request to a configured path of the base URL,
//! checked against what the operator expects of the product there.
//!
//! Configuration keys (all optional):
//! - `path`: the path (and query) to request, starting with `/` (default `/`);
//! - `method`: `GET` (default) or `HEAD`;
//! - `expectedStatus`: the statuses that count as success, e.g. `[200, 204]` (default: any 2xx);
//! - `expectedHeader`: `{"name": "x-agent", "value": "stella"}`: a header the product sends
//!   (without `value`, its presence is enough);
//! - `jsonPointer` and `expectedValue`: a value in the JSON body (RFC 6901 pointer, e.g.
//!   `/status`; without `expectedValue` the pointer must exist);
//! - `versionHeader` or `versionPointer`: where the product reports its version;
//! - `credential`: how the integration's AuthRef is applied: `"bearer"` (default),
//!   `{"basic": "<username>"}` or `{"header": "<name>", "prefix": "<prefix>"}`;
//! - `caCertificates` (read by the host): extra trusted CAs, PEM.
//!
//! A status that is expected but a header or JSON value that is not is `provider-mismatch`:
//! something answers at that URL, but not the product the integration names.

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::http::{Method, Response, ResponseExt};
use stella_connector_sdk::prelude::*;

struct HttpProbe;

enum Placement {
    Bearer,
    Basic(String),
    Header { name: String, prefix: Option<String> },
}

struct Probe {
    path: String,
    method: Method,
    expected_status: Option<Vec<u16>>,
    expected_header: Option<(String, Option<String>)>,
    json: Option<(String, Option<Value>)>,
    version_header: Option<String>,
    version_pointer: Option<String>,
    placement: Placement,
}

/// The configuration keys (see the crate's documentation), checked by [`probe`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    path: Option<Value>,
    method: Option<Value>,
    expected_status: Option<Value>,
    expected_header: Option<Value>,
    json_pointer: Option<Value>,
    /// `null` is a value to expect, not the absence of one.
    #[serde(default, deserialize_with = "stella_connector_sdk::keep_null")]
    expected_value: Option<Value>,
    version_header: Option<Value>,
    version_pointer: Option<Value>,
    credential: Option<Value>,
}

/// A string setting (`None` when absent or null).
fn text(value: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn probe(config: &ConnectionConfig) -> Result<Probe, String> {
    let c: Keys = config.settings()?;
    let path = text(c.path.as_ref(), "path")?.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.starts_with("//") || path.chars().any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(format!("`path` must start with a single `/` and hold no spaces: `{path}`"));
    }
    let method = match text(c.method.as_ref(), "method")?.as_deref() {
        None | Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some(other) => return Err(format!("`method` must be GET or HEAD, not `{other}`")),
    };
    let expected_status = match &c.expected_status {
        None => None,
        Some(Value::Array(list)) if !list.is_empty() => Some(
            list.iter()
                .map(|v| v.as_u64().filter(|s| (100..=599).contains(s)).map(|s| s as u16))
                .collect::<Option<Vec<u16>>>()
                .ok_or("`expectedStatus` must list HTTP statuses (100–599)")?,
        ),
        Some(_) => return Err("`expectedStatus` must be a non-empty list of HTTP statuses".into()),
    };
    let expected_header = match &c.expected_header {
        None => None,
        Some(h @ Value::Object(_)) => {
            let name =
                text(h.get("name"), "name")?.filter(|n| !n.is_empty()).ok_or("`expectedHeader.name` is required")?;
            Some((name, text(h.get("value"), "value")?))
        }
        Some(_) => return Err("`expectedHeader` must be an object {name, value}".into()),
    };
    let pointer = text(c.json_pointer.as_ref(), "jsonPointer")?;
    if let Some(p) = &pointer
        && !p.is_empty()
        && !p.starts_with('/')
    {
        return Err(format!("`jsonPointer` must be empty or start with `/`: `{p}`"));
    }
    let expected_value = c.expected_value;
    if expected_value.is_some() && pointer.is_none() {
        return Err("`expectedValue` needs a `jsonPointer`".into());
    }
    if method == Method::Head && (pointer.is_some() || text(c.version_pointer.as_ref(), "versionPointer")?.is_some()) {
        return Err("a HEAD request has no body to check: drop `jsonPointer`/`versionPointer` or use GET".into());
    }
    let placement = match &c.credential {
        None => Placement::Bearer,
        Some(Value::String(s)) if s == "bearer" => Placement::Bearer,
        Some(p @ Value::Object(_)) if p.get("basic").is_some() => {
            Placement::Basic(text(p.get("basic"), "basic")?.ok_or("`credential.basic` is the username")?)
        }
        Some(p @ Value::Object(_)) if p.get("header").is_some() => Placement::Header {
            name: text(p.get("header"), "header")?
                .filter(|n| !n.is_empty())
                .ok_or("`credential.header` is the header name")?,
            prefix: text(p.get("prefix"), "prefix")?,
        },
        Some(_) => {
            return Err(r#"`credential` must be "bearer", {"basic": "<username>"} or {"header": "<name>"}"#.into());
        }
    };
    Ok(Probe {
        path,
        method,
        expected_status,
        expected_header,
        json: pointer.map(|p| (p, expected_value)),
        version_header: text(c.version_header.as_ref(), "versionHeader")?,
        version_pointer: text(c.version_pointer.as_ref(), "versionPointer")?,
        placement,
    })
}

fn send(probe: &Probe, url: &str, secret: Option<&secrets::Secret>) -> Result<Response, http::HttpError> {
    let request = http::request(probe.method, url);
    match (secret, &probe.placement) {
        (None, _) => request.send(),
        (Some(s), Placement::Bearer) => request.bearer(s).send(),
        (Some(s), Placement::Basic(user)) => request.basic(user, s).send(),
        (Some(s), Placement::Header { name, prefix }) => request.secret_header(name, prefix.as_deref(), s).send(),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 { format!("{}…", text.chars().take(80).collect::<String>()) } else { text }
}

fn run(config: &ConnectionConfig, report: &mut Report) -> Result<String, Failed> {
    let probe = probe(config).map_err(Failed::configuration)?;
    let base = config.base().map_err(Failed::configuration)?;
    report.pass("configuration", "the probe is valid");
    let secret = secrets::step_secret(config, "credential")?;
    let url = base.join(&probe.path);
    let response = send(&probe, &url, secret.as_ref()).step_at("reachable", &url)?;
    report.pass("reachable", format!("{url} answered"));
    report.facts.rate_limit_remaining = checks::rate_limit_remaining(&response);
    if let Some(name) = &probe.version_header {
        report.facts.provider_version = response.header(name).map(str::to_string);
    }

    let status_ok = match &probe.expected_status {
        Some(list) => list.contains(&response.status),
        None => (200..300).contains(&response.status),
    };
    if !status_ok {
        let wanted = match &probe.expected_status {
            Some(list) => list.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
            None => "2xx".into(),
        };
        let found = checks::describe_status(&response);
        let class = if (200..300).contains(&response.status) {
            FailureClass::ProviderMismatch
        } else {
            checks::status_failure(response.status)
        };
        return Err(Failed::new(class, "status", format!("{found}, expected {wanted}")));
    }
    report.pass("status", format!("status {}", response.status));

    if let Some((name, value)) = &probe.expected_header {
        match (response.header(name), value) {
            (None, _) => {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "header",
                    format!("no `{name}` header: this is not the product the integration expects"),
                ));
            }
            (Some(found), Some(want)) if found.trim() != want => {
                return Err(Failed::new(
                    FailureClass::ProviderMismatch,
                    "header",
                    format!("`{name}` is `{found}`, expected `{want}`"),
                ));
            }
            (Some(found), _) => report.pass("header", format!("`{name}: {found}`")),
        }
    }

    if probe.json.is_some() || probe.version_pointer.is_some() {
        let body = response.json().map_err(|e| Failed::new(FailureClass::ProviderMismatch, "json", e))?;
        if let Some(pointer) = &probe.version_pointer {
            report.facts.provider_version = body.pointer(pointer).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        if let Some((pointer, expected)) = &probe.json {
            match (body.pointer(pointer), expected) {
                (None, _) => {
                    return Err(Failed::new(
                        FailureClass::ProviderMismatch,
                        "json",
                        format!("the body has nothing at `{pointer}`"),
                    ));
                }
                (Some(found), Some(want)) if found != want => {
                    return Err(Failed::new(
                        FailureClass::ProviderMismatch,
                        "json",
                        format!("`{pointer}` is {}, expected {}", short(found), short(want)),
                    ));
                }
                (Some(found), _) => report.pass("json", format!("`{pointer}` is {}", short(found))),
            }
        }
    }
    Ok(format!("{url} answered as expected"))
}

impl Connector for HttpProbe {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        Report::test(|report| run(config, report), |message| message)
    }
}

register_connector!(HttpProbe);
