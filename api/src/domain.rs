//! The `Integration` entity of the spec, and the validation of what clients send.

use serde::{Deserialize, Serialize};
use stella_runtime::IntegrationType;
use stella_runtime::secrets::AuthRef;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::lifecycle::{Lifecycle, Status};

/// Longest name, in characters.
pub const MAX_NAME_LEN: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2048;
/// Longest short text field (environment, owner, tag, pause reason, ticket), in characters.
pub const MAX_SHORT_LEN: usize = 256;
/// Longest base URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Most tags on one integration.
pub const MAX_TAGS: usize = 32;
/// Largest configuration document, in bytes of compact JSON.
pub const MAX_CONFIGURATION_BYTES: usize = 64 * 1024;
/// Deepest nesting of the configuration document.
pub const MAX_CONFIGURATION_DEPTH: usize = 16;
/// The shortest and longest time between two health checks of an integration, in seconds.
pub const HEALTH_CHECK_INTERVAL_RANGE: (u64, u64) = (30, 86_400);

/// An integration, as stored and as returned by the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    // Identity
    /// Its id.
    pub integration_id: Uuid,
    /// The tenant that owns it.
    pub tenant_id: String,
    /// Unique per tenant.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    // Classification
    /// What kind of system it connects to.
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    /// The connector that serves it (a loaded connector's provider id).
    pub provider: String,
    // Configuration
    /// The provider's base URL.
    #[schema(value_type = Option<String>)]
    pub base_url: Option<BaseUrl>,
    /// Where its credential lives: `ref://<scope>/<provider>/<key>`; never the secret itself.
    #[serde(with = "auth_ref_text")]
    #[schema(value_type = Option<String>)]
    pub auth_ref: Option<AuthRef>,
    /// Provider-specific settings (a JSON object, never a credential).
    #[schema(value_type = Object)]
    pub configuration: serde_json::Value,
    // Organization
    /// Environment label (prod, staging, dev, …).
    pub environment: Option<String>,
    /// Labels to filter by.
    pub tags: Vec<String>,
    /// Who owns it.
    pub owner_id: Option<String>,
    /// Seconds between two health checks, 30 to 86400; null: the service's default
    /// (`health.interval-seconds`, 300 unless configured).
    #[schema(minimum = 30, maximum = 86400)]
    pub health_check_interval: Option<u32>,
    // Lifecycle
    /// Where it is in its lifecycle.
    pub status: Status,
    /// Whether an operator paused it.
    pub paused: bool,
    /// Why it was paused.
    pub pause_reason: Option<String>,
    /// The ticket tracking the pause.
    pub pause_ticket: Option<String>,
    // Health
    /// When its connection was last tested.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_tested_at: Option<OffsetDateTime>,
    /// Whether that test passed.
    pub last_test_success: Option<bool>,
    /// Checks failed in a row.
    pub consecutive_failures: u32,
    // Audit
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// When it was last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub modified_at: Option<OffsetDateTime>,
    /// Who last changed it.
    pub modified_by: Option<String>,
    /// Incremented by every change; the ETag.
    pub version: i64,
}

impl Integration {
    /// A new integration of `tenant` in `draft`, created by `subject` at `at`, as `valid` says.
    pub fn draft(id: Uuid, tenant: &str, subject: &str, at: OffsetDateTime, valid: ValidSpec) -> Self {
        let ValidSpec { spec, .. } = &valid;
        let mut row = Self {
            integration_id: id,
            tenant_id: tenant.to_string(),
            name: String::new(),
            description: None,
            integration_type: spec.integration_type,
            provider: String::new(),
            base_url: None,
            auth_ref: None,
            configuration: serde_json::Value::Null,
            environment: None,
            tags: Vec::new(),
            owner_id: None,
            health_check_interval: None,
            status: Status::Draft,
            paused: false,
            pause_reason: None,
            pause_ticket: None,
            last_tested_at: None,
            last_test_success: None,
            consecutive_failures: 0,
            created_at: at,
            created_by: subject.to_string(),
            modified_at: None,
            modified_by: None,
            version: 1,
        };
        row.set_spec(valid);
        row.set_lifecycle(Lifecycle::new());
        row
    }

    /// Its lifecycle fields.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            status: self.status,
            paused: self.paused,
            pause_reason: self.pause_reason.clone(),
            pause_ticket: self.pause_ticket.clone(),
            consecutive_failures: self.consecutive_failures,
        }
    }

    /// Replaces every field a client sets, from a spec that passed its checks. The destructuring
    /// names each field of the spec, so a field added to it later cannot be forgotten here.
    pub fn set_spec(&mut self, valid: ValidSpec) {
        let ValidSpec { spec, base_url, auth_ref } = valid;
        let IntegrationSpec {
            name,
            description,
            integration_type,
            provider,
            base_url: _,
            auth_ref: _,
            configuration,
            environment,
            tags,
            owner_id,
            health_check_interval,
        } = spec;
        self.name = name;
        self.description = description;
        self.integration_type = integration_type;
        self.provider = provider;
        self.base_url = base_url;
        self.auth_ref = auth_ref;
        self.configuration = configuration;
        self.environment = environment;
        self.tags = tags;
        self.owner_id = owner_id;
        self.health_check_interval = health_check_interval;
    }

    /// What a client sets of it (the body that would recreate it).
    pub fn into_spec(self) -> IntegrationSpec {
        IntegrationSpec {
            name: self.name,
            description: self.description,
            integration_type: self.integration_type,
            provider: self.provider,
            base_url: self.base_url.map(|u| u.0),
            auth_ref: self.auth_ref.map(|r| r.to_string()),
            configuration: self.configuration,
            environment: self.environment,
            tags: self.tags,
            owner_id: self.owner_id,
            health_check_interval: self.health_check_interval,
        }
    }

    /// Replaces its lifecycle fields.
    pub fn set_lifecycle(&mut self, l: Lifecycle) {
        self.status = l.status;
        self.paused = l.paused;
        self.pause_reason = l.pause_reason;
        self.pause_ticket = l.pause_ticket;
        self.consecutive_failures = l.consecutive_failures;
    }
}

/// An integration's base URL, as checked: http or https, a host that is a DNS name or an IP
/// address, no credentials, query or fragment, at most 2 KiB. Kept as the client wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// The base URL `text` is, or why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        check_base_url(text).map(|()| Self(text.to_string()))
    }

    /// As the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its host, lower-case.
    pub fn host(&self) -> String {
        url::Url::parse(&self.0).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(|e| serde::de::Error::custom(format!("`{text}` {e}")))
    }
}

/// An AuthRef as JSON text (`ref://<scope>/<provider>/<key>`), read by its own checks.
mod auth_ref_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use stella_runtime::secrets::AuthRef;

    pub fn serialize<S: Serializer>(value: &Option<AuthRef>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(r) => serializer.collect_str(r),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<AuthRef>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| AuthRef::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A spec that passed its checks ([`IntegrationSpec::validate`]), with what they parsed kept
/// typed; the only way to set an integration's fields ([`Integration::set_spec`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    spec: IntegrationSpec,
    base_url: Option<BaseUrl>,
    auth_ref: Option<AuthRef>,
}

impl ValidSpec {
    /// The spec as the client sent it.
    pub fn spec(&self) -> &IntegrationSpec {
        &self.spec
    }
}

/// What a client may set: the body of `POST /` and of `PUT /{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationSpec {
    /// Unique per tenant; no leading or trailing whitespace, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?$"
    )]
    pub name: String,
    /// Free text (one line).
    #[serde(default)]
    #[schema(max_length = 2048, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub description: Option<String>,
    /// What kind of system it connects to.
    #[serde(rename = "type")]
    pub integration_type: IntegrationType,
    /// A loaded connector's provider id (the served document lists them).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9-]{1,64}$")]
    pub provider: String,
    /// The provider's base URL (http or https), without credentials, query or fragment.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = r"^https?://(((?!xn--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*(?!xn--)[a-z]([a-z0-9-]{0,61}[a-z0-9])?|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$"
    )]
    pub base_url: Option<String>,
    /// `ref://<scope>/<provider>/<key>`: where the credential lives, never the credential.
    #[serde(default)]
    #[schema(
        max_length = 256,
        pattern = r"^ref://[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
    )]
    pub auth_ref: Option<String>,
    /// Provider-specific settings: a JSON object without credentials.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub configuration: serde_json::Value,
    /// Environment label.
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub environment: Option<String>,
    /// Labels (at most 32, each 1 to 256 characters).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<String>,
    /// Who owns it.
    #[serde(default)]
    #[schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub owner_id: Option<String>,
    /// Seconds between two health checks, 30 to 86400; null or absent: the service's default
    /// (`health.interval-seconds`).
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(minimum = 30, maximum = 86400)]
    pub health_check_interval: Option<u32>,
}

/// A whole number of seconds. JSON does not tell `60` from `60.0` (JSON Schema calls both an
/// integer), so an integral float is taken; a fraction, a negative or a huge number is refused.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => u32::try_from(u).ok(),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => Some(f as u32),
        _ => None,
    };
    whole.map(Some).ok_or_else(|| serde::de::Error::custom(format!("`{n}` is not a whole number of seconds")))
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// One invalid field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// JSON pointer-like path of the field (`name`, `configuration.auth.password`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Why a JSON document could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Where: the path of the offending field, or `body`.
    pub field: String,
    /// What: serde's message (for a shape error, without its " at line …" position).
    pub message: String,
    /// Whether it is not JSON at all (rather than JSON of the wrong shape).
    pub syntax: bool,
}

/// Reads one JSON document of type `T`, with nothing after it, naming the field that is wrong.
pub fn read_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        let inner = e.into_inner();
        let message = inner.to_string();
        match inner.classify() {
            // serde_json ends data errors with " at line 1 column 20": the field says more.
            serde_json::error::Category::Data => {
                let message = message.rfind(" at line ").map_or(message.clone(), |i| message[..i].to_string());
                JsonError { field, message, syntax: false }
            }
            _ => JsonError { field, message, syntax: true },
        }
    })?;
    de.end().map_err(|e| JsonError { field: "body".into(), message: e.to_string(), syntax: true })?;
    Ok(value)
}

/// Validates the body of `POST /{id}/pause`: a reason is required; both are short single-line text.
pub fn validate_pause(reason: &str, ticket: Option<&str>) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", Some(reason), MAX_SHORT_LEN, true);
    check_text(&mut errors, "ticket", ticket, MAX_SHORT_LEN, false);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Configuration keys that hold credentials (compared case-insensitively, ignoring `-` and `_`).
const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "accesstoken",
    "refreshtoken",
    "apitoken",
    "authtoken",
    "bearertoken",
    "secret",
    "clientsecret",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "secretaccesskey",
    "credentials",
    "credential",
    "passphrase",
    "webhooksecret",
];

/// Whether a configuration key names a credential.
pub fn is_credential_key(key: &str) -> bool {
    let folded: String = key.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
    CREDENTIAL_KEYS.contains(&folded.as_str())
}

impl IntegrationSpec {
    /// The spec with its checked values typed, or every problem of every field (not only the
    /// first).
    pub fn validate(self) -> Result<ValidSpec, Vec<FieldError>> {
        self.validate_with(|_| Vec::new())
    }

    /// [`IntegrationSpec::validate`], with `more`: the caller's own findings about a spec whose
    /// provider id is well formed (whether such a connector is loaded), after the spec's own.
    pub fn validate_with(
        self,
        more: impl FnOnce(&IntegrationSpec) -> Vec<FieldError>,
    ) -> Result<ValidSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_text(&mut errors, "name", Some(&self.name), MAX_NAME_LEN, true);
        if self.name.trim() != self.name {
            errors.push(FieldError::new("name", "must not start or end with whitespace"));
        }
        check_text(&mut errors, "description", self.description.as_deref(), MAX_DESCRIPTION_LEN, false);
        check_text(&mut errors, "environment", self.environment.as_deref(), MAX_SHORT_LEN, false);
        check_text(&mut errors, "ownerId", self.owner_id.as_deref(), MAX_SHORT_LEN, false);
        let provider_id = !self.provider.is_empty()
            && self.provider.len() <= 64
            && self.provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !provider_id {
            errors.push(FieldError::new("provider", "must be a provider id: 1 to 64 of a-z, 0-9 and `-`"));
        }
        if self.tags.len() > MAX_TAGS {
            errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            check_text(&mut errors, &format!("tags[{i}]"), Some(tag), MAX_SHORT_LEN, true);
        }
        // Each parsed once, and kept typed.
        let base_url = kept(&mut errors, "baseUrl", self.base_url.as_deref().map(BaseUrl::parse).transpose());
        let auth_ref = kept(&mut errors, "authRef", self.auth_ref.as_deref().map(AuthRef::parse).transpose());
        check_configuration(&mut errors, &self.configuration);
        let (lo, hi) = HEALTH_CHECK_INTERVAL_RANGE;
        if let Some(seconds) = self.health_check_interval
            && !(lo..=hi).contains(&u64::from(seconds))
        {
            errors.push(FieldError::new("healthCheckInterval", format!("must be between {lo} and {hi} seconds")));
        }
        if provider_id {
            errors.extend(more(&self));
        }
        if errors.is_empty() { Ok(ValidSpec { spec: self, base_url, auth_ref }) } else { Err(errors) }
    }
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max: usize, required: bool) {
    let Some(value) = value else { return };
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
}

/// The value `parsed` holds, or `None` with its error among `errors` under `field`.
fn kept<T>(errors: &mut Vec<FieldError>, field: &str, parsed: Result<Option<T>, String>) -> Option<T> {
    parsed.unwrap_or_else(|message| {
        errors.push(FieldError::new(field, message));
        None
    })
}

fn check_base_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} bytes"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err("must be an http or https URL".into());
    }
    match parsed.host() {
        None => return Err("must name a host".into()),
        // The URL standard lets `*`, `!` and the like through in a host; DNS names are letters,
        // digits, dots and hyphens.
        Some(url::Host::Domain(name)) if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') => {
            return Err(format!("the host `{name}` is not a DNS name (letters, digits, `.` and `-`)"));
        }
        Some(_) => {}
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; use authRef".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not carry a query or fragment".into());
    }
    Ok(())
}

fn check_configuration(errors: &mut Vec<FieldError>, configuration: &serde_json::Value) {
    let serde_json::Value::Object(map) = configuration else {
        errors.push(FieldError::new("configuration", "must be a JSON object"));
        return;
    };
    let size = serde_json::to_vec(configuration).map_or(usize::MAX, |v| v.len());
    if size > MAX_CONFIGURATION_BYTES {
        errors.push(FieldError::new("configuration", format!("must be at most {MAX_CONFIGURATION_BYTES} bytes")));
    }
    for (key, value) in map {
        walk_configuration(errors, &format!("configuration.{key}"), key, value, 1);
    }
}

fn walk_configuration(errors: &mut Vec<FieldError>, path: &str, key: &str, value: &serde_json::Value, depth: usize) {
    if depth > MAX_CONFIGURATION_DEPTH {
        errors.push(FieldError::new(path, format!("configuration is nested deeper than {MAX_CONFIGURATION_DEPTH}")));
        return;
    }
    match value {
        serde_json::Value::String(s) if is_credential_key(key) && !s.is_empty() => errors.push(FieldError::new(
            path,
            "looks like a raw credential; store the secret in the secret store and reference it with authRef \
             (ref://<scope>/<provider>/<key>)",
        )),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                walk_configuration(errors, &format!("{path}.{k}"), k, v, depth + 1);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_configuration(errors, &format!("{path}[{i}]"), key, v, depth + 1);
            }
        }
        _ => {}
    }
}

/// A connection test: its result and what the connector did.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRun {
    /// When it ran.
    #[serde(with = "time::serde::rfc3339")]
    pub tested_at: OffsetDateTime,
    /// The connector's answer.
    pub result: stella_runtime::outcome::TestOutcome,
    /// The sandbox's record of the invocation; absent when no connector could run.
    pub record: Option<stella_runtime::record::InvocationRecord>,
}

/// The name an enum value has in JSON (`provider-down`, `degraded`), for logs, metrics and text.
pub fn wire_name(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Now, in UTC, truncated to microseconds (what both databases keep).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).expect("a truncated nanosecond is valid")
}

/// RFC 3339 in UTC with `Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats")
}

/// Milliseconds in an hour: the span of a health rollup and of a ledger summary.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day: the span of a day partition, and of the health summary's windows.
pub const DAY_MS: i64 = 86_400_000;

/// Unix milliseconds of a time (the unit of the health tables).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds.
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Milliseconds of a duration, saturating.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Result<IntegrationSpec, serde_json::Error> {
        serde_json::from_value(v)
    }

    fn fields(v: serde_json::Value) -> Vec<String> {
        spec(v).unwrap().validate().err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_minimal_spec_is_valid_and_defaults_to_an_empty_configuration() {
        let s = spec(json!({"name": "harbor-prod", "type": "registry", "provider": "harbor"})).unwrap();
        assert_eq!(s.configuration, json!({}));
        s.validate().unwrap();
    }

    #[test]
    fn raw_credentials_are_refused_at_any_depth_with_a_pointer_to_authref() {
        let v = json!({"name": "n", "type": "scm", "provider": "gitlab", "configuration": {
            "password": "hunter2",
            "nested": {"api_key": "abc", "list": [{"Client-Secret": "x"}], "token": ""},
            "privateKey": "-----BEGIN",
            "tokenUrl": "https://example.com/token",
            "passwordPolicy": {"minLength": 8},
            "secret": 42
        }});
        assert_eq!(
            fields(v.clone()),
            [
                "configuration.nested.api_key",
                "configuration.nested.list[0].Client-Secret",
                "configuration.password",
                "configuration.privateKey"
            ]
        );
        let errors = spec(v).unwrap().validate().unwrap_err();
        assert!(errors[0].message.contains("authRef"), "{}", errors[0].message);
    }

    #[test]
    fn a_health_check_interval_is_a_whole_number_of_seconds_however_json_writes_it() {
        let with = |v: serde_json::Value| {
            spec(json!({"name": "n", "type": "registry", "provider": "harbor", "healthCheckInterval": v}))
        };
        assert_eq!(with(json!(60)).unwrap().health_check_interval, Some(60));
        assert_eq!(with(json!(60.0)).unwrap().health_check_interval, Some(60));
        assert_eq!(with(json!(null)).unwrap().health_check_interval, None);
        for bad in [json!(60.5), json!(-1), json!(1e12), json!("60"), json!(4_294_967_296_u64)] {
            assert!(with(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let v = json!({"name": " ", "type": "ci", "provider": "Jenkins!", "baseUrl": "ftp://x", "authRef": "vault:abc",
            "configuration": [], "tags": ["ok", ""], "environment": "a\u{7}b"});
        let mut got = fields(v);
        got.sort();
        assert_eq!(got, ["authRef", "baseUrl", "configuration", "environment", "name", "name", "provider", "tags[1]"]);
    }

    #[test]
    fn base_urls_with_credentials_or_queries_are_refused() {
        for bad in [
            "https://user:pw@h.example",
            "https://h.example/?token=1",
            "not a url",
            "https://",
            "https://250.250.250.250*",
            "https://h_x.example",
        ] {
            let v = json!({"name": "n", "type": "registry", "provider": "harbor", "baseUrl": bad});
            assert_eq!(fields(v), ["baseUrl"], "{bad}");
        }
    }

    #[test]
    fn unknown_fields_and_read_only_fields_are_refused() {
        assert!(spec(json!({"name": "n", "type": "registry", "provider": "harbor", "status": "active"})).is_err());
        assert!(spec(json!({"name": "n", "type": "cloud", "provider": "harbor"})).is_err());
    }

    #[test]
    fn timestamps_serialize_as_utc_rfc3339_with_z() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000, 0);
        let s = time::serde::rfc3339::serialize(&t, serde_json::value::Serializer).unwrap();
        assert!(s.as_str().unwrap().ends_with('Z'), "{s}");
    }
}
