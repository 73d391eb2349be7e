//! The service's configuration: defaults, then a TOML file, then environment variables.
//!
//! Every key is documented in the README's "Configuration" section; `stella-integrations serve
//! --print-config` prints the effective configuration (with secrets masked).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stella_runtime::SandboxConfig;

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// The HTTP listener and its limits.
    pub server: ServerConfig,
    /// Where state lives.
    pub storage: StorageConfig,
    /// How tokens are verified.
    pub auth: AuthConfig,
    /// Where events go.
    pub events: EventsConfig,
    /// Where connector secrets are read from.
    pub secrets: SecretsConfig,
    /// The sandbox connectors run in (limits, network policy).
    pub sandbox: SandboxConfig,
    /// The health scheduler.
    pub health: HealthConfig,
    /// Which connector code is admitted: trusted keys, signatures, auto-approval.
    pub plugins: PluginsConfig,
    /// The invocation ledger.
    pub ledger: LedgerConfig,
    /// The web console.
    pub console: ConsoleConfig,
}

/// `[ledger]`: the record of every connector invocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LedgerConfig {
    /// Days an invocation's record is kept, 1 to 3650 (pruned hourly by the maintenance task).
    pub retention_days: u32,
    /// What the ledger keeps of a healthy check that repeats its integration's previous check:
    /// `summary` (folded per hour into one entry) or `full` (its whole record, like every other).
    pub healthy_repeats: HealthyRepeats,
    /// The share of such checks kept in full anyway, 0 to 1 (a sample; 0: none).
    pub sample_rate: f64,
}

/// What the ledger keeps of a healthy check that repeats the previous one (`ledger.healthy-repeats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthyRepeats {
    /// Folded per integration and hour into one summary entry.
    #[default]
    Summary,
    /// The whole record, like every other check.
    Full,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { retention_days: 30, healthy_repeats: HealthyRepeats::Summary, sample_rate: 0.0 }
    }
}

impl LedgerConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.retention_days) {
            return Err("ledger.retention-days must be between 1 and 3650".into());
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err("ledger.sample-rate must be between 0 and 1".into());
        }
        Ok(())
    }

    /// Whether a healthy check that repeated the previous one may be folded into a summary: never
    /// with `healthy-repeats = "full"`; with a sample rate, all but that share of them (`draw`, a
    /// number from 0 to 1 drawn for the check, decides).
    pub fn folds(&self, draw: f64) -> bool {
        self.healthy_repeats == HealthyRepeats::Summary && draw >= self.sample_rate
    }
}

/// `[server]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `text` (human-readable) or `json` logs.
    pub log_format: LogFormat,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Text,
            max_body_bytes: 256 * 1024,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[storage]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StorageConfig {
    /// The data directory: the embedded database and the generated local token key.
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…`; unset: `sqlite://<data-dir>/catalog.db`.
    pub database_url: Option<String>,
    /// The directory of third-party connectors (`*.wasm`); unset or missing: none.
    pub plugins_dir: Option<PathBuf>,
    /// Keep compiled connectors in `<data-dir>/compile-cache` (private to this user), so that a
    /// restart, or another replica with the same data directory, reads them instead of compiling
    /// them again. `sandbox.cache-dir` names another directory; false: compile at every start.
    pub compile_cache: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            plugins_dir: Some(PathBuf::from("plugins")),
            compile_cache: true,
        }
    }
}

impl StorageConfig {
    /// Where compiled connectors are cached, if anywhere: `sandbox.cache-dir` when set, else
    /// `<data-dir>/compile-cache` unless `compile-cache` is false.
    pub fn compile_cache_dir(&self, sandbox: &SandboxConfig) -> Option<PathBuf> {
        match &sandbox.cache_dir {
            Some(dir) => Some(dir.clone()),
            None => self.compile_cache.then(|| self.data_dir.join("compile-cache")),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("catalog.db").display()))
    }
}

/// `[events]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct EventsConfig {
    /// The NATS server; unset: events stay in the outbox, readable through `GET /api/v1/events`.
    pub nats_url: Option<String>,
    /// The JetStream stream the relay publishes to (created when missing).
    pub stream: String,
    /// Subjects are `<subject-prefix>.<tenant>.<event type>`.
    pub subject_prefix: String,
    /// Days an event stays in the outbox once the broker acknowledged it, 0 to 3650 (0: removed
    /// at the next maintenance run), for `GET /api/v1/events` pollers beside the broker.
    pub delivered_retention_days: u32,
    /// Without a broker (`nats-url` unset): days an event stays for `GET /api/v1/events` pollers,
    /// 1 to 3650. A poller whose cursor is older is answered `410 Gone`.
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            nats_url: None,
            stream: "STELLA_INTEGRATIONS".into(),
            subject_prefix: "stellaops.integrations".into(),
            delivered_retention_days: 7,
            retention_days: 30,
        }
    }
}

impl EventsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.delivered_retention_days > 3650 {
            return Err("events.delivered-retention-days must be between 0 and 3650".into());
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err("events.retention-days must be between 1 and 3650".into());
        }
        Ok(())
    }
}

/// `[secrets]`: where connector secrets are read from, whose they are, and where they may go (see
/// the README's "Secrets").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SecretsConfig {
    /// A directory laid out `<tenant>/<scope>/<provider>/<key>` (a Kubernetes secret mount), read
    /// first; the platform's own secrets under `.platform/<scope>/<provider>/<key>`.
    pub dir: Option<PathBuf>,
    /// Whether `STELLA_SECRET__<TENANT>__<SCOPE>__<PROVIDER>__<KEY>` variables are read (after the
    /// directory), and the platform's `STELLA_PLATFORM_SECRET__<SCOPE>__<PROVIDER>__<KEY>`.
    pub env: bool,
    /// The one tenant whose secrets keep the layout from before tenants
    /// (`STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY>`, `<dir>/<scope>/<provider>/<key>`): a
    /// single-tenant installation upgrading without moving its secrets.
    pub legacy_tenant: Option<String>,
    /// Whether every secret must have a binding (the origins it may be applied to); one without is
    /// refused. Recommended wherever tenants share the service.
    pub require_binding: bool,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { dir: None, env: true, legacy_tenant: None, require_binding: false }
    }
}

impl SecretsConfig {
    /// Where an integration of `tenant` resolves its AuthRef: the tenant's own namespace (the
    /// layout from before tenants for `legacy-tenant`), and nowhere else. Another tenant's secrets
    /// and the platform's are "not found" for it.
    pub fn namespace_of(&self, tenant: &str) -> stella_runtime::secrets::SecretNamespace {
        use stella_runtime::secrets::SecretNamespace;
        match &self.legacy_tenant {
            Some(legacy) if legacy == tenant => SecretNamespace::Unscoped,
            _ => SecretNamespace::Owner(tenant.to_string()),
        }
    }

    /// The store these settings describe.
    pub fn store(&self) -> stella_runtime::secrets::SecretStore {
        stella_runtime::secrets::SecretStore::new(self.dir.clone(), self.env).requiring_bindings(self.require_binding)
    }

    fn validate(&self) -> Result<(), String> {
        match &self.legacy_tenant {
            Some(t) if !crate::identity::is_tenant_id(t) => {
                Err("secrets.legacy-tenant must be a tenant id: 1 to 128 characters, no control characters".into())
            }
            _ => Ok(()),
        }
    }
}

/// `[health]`: the scheduler that checks every integration in service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HealthConfig {
    /// Whether this replica runs health checks at all (an API-only replica: `false`).
    pub enabled: bool,
    /// Time between two checks of an integration without its own `healthCheckInterval`, 30 to
    /// 86400 seconds.
    pub interval_seconds: u64,
    /// Checks running at once in this replica, 1 to 1024.
    pub concurrency: u32,
    /// How long a replica holds a due check before another may take it over; at least the
    /// sandbox's deadline plus 30 seconds, so a check still running is never taken over.
    pub lease_seconds: u64,
    /// Days the hourly rollups of the health history are kept (uptime and latency over 24 h, 7 d,
    /// 30 d are computed from them), 1 to 3650.
    pub retention_days: u32,
    /// Hours each check itself is kept (the history `GET /{id}/health` pages), 1 to 8760.
    pub history_hours: u32,
    /// No network check is made, except of feed mirrors inside the site; checks are recorded as
    /// skipped.
    pub offline: bool,
    /// In offline mode, the mirror hosts inside the site: a feed integration whose base URL's
    /// host is listed here and in its own `mirrorHosts` is still checked.
    pub offline_mirror_hosts: Vec<String>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 300,
            concurrency: 32,
            lease_seconds: 120,
            retention_days: 30,
            history_hours: 48,
            offline: false,
            offline_mirror_hosts: vec![],
        }
    }
}

impl HealthConfig {
    /// Checks the ranges, and that a lease outlasts a check (`deadline_ms`, the sandbox's).
    pub fn validate(&self, deadline_ms: u64) -> Result<(), String> {
        let (lo, hi) = crate::domain::HEALTH_CHECK_INTERVAL_RANGE;
        if !(lo..=hi).contains(&self.interval_seconds) {
            return Err(format!("health.interval-seconds must be between {lo} and {hi}"));
        }
        if !(1..=1024).contains(&self.concurrency) {
            return Err("health.concurrency must be between 1 and 1024".into());
        }
        let least = deadline_ms.div_ceil(1000) + 30;
        if self.lease_seconds < least || self.lease_seconds > 86_400 {
            return Err(format!(
                "health.lease-seconds must be between {least} (the sandbox deadline plus 30 s) and 86400"
            ));
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err("health.retention-days must be between 1 and 3650".into());
        }
        if !(1..=8760).contains(&self.history_hours) {
            return Err("health.history-hours must be between 1 and 8760".into());
        }
        for host in &self.offline_mirror_hosts {
            // Compared with the host of a base URL, which has no port.
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !valid {
                return Err(format!(
                    "health.offline-mirror-hosts: `{host}` is not a host name or IPv4 address (no scheme, port or path)"
                ));
            }
        }
        Ok(())
    }
}

/// How tokens are verified (the `[auth]` section of the configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AuthConfig {
    /// The local HS256 key (at least 32 bytes). Unset: generated into the data directory.
    pub hs256_key: Option<String>,
    /// Whether HS256 tokens signed with the local key are accepted at all. Unset: yes, unless a
    /// JWKS is configured (a production deployment then trusts only its identity provider).
    pub local_tokens: Option<bool>,
    /// A JWKS file with the identity provider's public keys.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, fetched at start and again for an unknown `kid`.
    pub jwks_url: Option<String>,
    /// The JWKS URL is fetched again at most this often (seconds), however many unknown `kid`s
    /// arrive.
    pub jwks_refresh_seconds: u64,
    /// Required `iss`; unset: not checked.
    pub issuer: Option<String>,
    /// Required `aud` (string or one of an array); unset: not checked.
    pub audience: Option<String>,
    /// The claim that names the tenant.
    pub tenant_claim: String,
}

/// The issuer of local tokens when `issuer` is unset.
pub const LOCAL_ISSUER: &str = "stella-integrations-local";

impl AuthConfig {
    /// Whether local HS256 tokens are accepted.
    pub fn local_tokens_enabled(&self) -> bool {
        self.local_tokens.unwrap_or(self.jwks_file.is_none() && self.jwks_url.is_none())
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_key: None,
            local_tokens: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_seconds: 60,
            issuer: None,
            audience: Some("stella-integrations".into()),
            tenant_claim: "tenant".into(),
        }
    }
}

/// `[console]`: the web console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ConsoleConfig {
    /// Serve the console under `/console/`.
    pub enabled: bool,
    /// The URL browsers reach the service at (`https://catalog.example.com`): with `https`, the
    /// session cookie is `Secure`. Unset: the cookie is not `Secure` (plain HTTP on loopback).
    pub public_url: Option<String>,
    /// How long a sign-in lasts, in hours (1–168).
    pub session_hours: u32,
    /// The OpenID provider users sign in through (needs `public-url`, which its redirect URI is
    /// built from); none: one-time links only.
    pub oidc: Option<OidcConfig>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { enabled: true, public_url: None, session_hours: 8, oidc: None }
    }
}

impl ConsoleConfig {
    /// Refuses what cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=168).contains(&self.session_hours) {
            return Err("console.session-hours must be between 1 and 168".into());
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| format!("console.public-url is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err("console.public-url must be an http or https URL with a host".into());
            }
        }
        if let Some(oidc) = &self.oidc {
            oidc.validate()?;
            if self.public_url.is_none() {
                return Err("console.oidc needs console.public-url: the provider sends browsers back to it".into());
            }
        }
        Ok(())
    }

    /// How long a sign-in lasts.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_hours) * 3600)
    }

    /// Whether the session cookie is `Secure` (browsers reach the console over https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

/// `[console.oidc]`: the identity provider the console signs in through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OidcConfig {
    /// The provider's issuer URL (its discovery document is under it).
    pub issuer: String,
    /// This console's client id at the provider.
    pub client_id: String,
    /// Its client secret (`STELLA_CONSOLE_CLIENT_SECRET`); none for a public client.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// The scopes asked for (`openid` is always asked for).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl OidcConfig {
    /// Refuses what cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let issuer = url::Url::parse(&self.issuer).map_err(|e| format!("console.oidc.issuer is not a URL: {e}"))?;
        if !matches!(issuer.scheme(), "http" | "https") {
            return Err("console.oidc.issuer must be an http or https URL".into());
        }
        if self.client_id.is_empty() {
            return Err("console.oidc.client-id is required".into());
        }
        Ok(())
    }
}

/// When a version is approved without a reviewer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AutoApprove {
    /// Never: every version waits for a reviewer.
    #[default]
    Never,
    /// A version signed by the key that signed the active version, whose permissions are equal or
    /// narrower, is approved and activated at once.
    NarrowerSigned,
}

/// `[plugins]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PluginsConfig {
    /// Files holding the public keys whose signatures are trusted: `minisign.pub` files (or a
    /// minisign key's base64 line), or PEM ECDSA P-256 public keys (cosign's `cosign.pub`).
    pub trusted_keys: Vec<PathBuf>,
    /// Whether a component must be signed by a trusted key. Unset: yes when keys are configured;
    /// it cannot be turned off while they are (name exceptions instead). `true` without keys
    /// admits only the named exceptions.
    pub require_signature: Option<bool>,
    /// Providers whose components are admitted unsigned even though signatures are required;
    /// each admission is logged and shown in the API.
    pub unsigned_exceptions: Vec<String>,
    /// `never` (default) or `narrower-signed`.
    pub auto_approve: AutoApprove,
    /// The registries `POST /api/v1/plugins/pull` may pull from (none: pulls are refused).
    pub registries: Vec<RegistryConfig>,
}

/// `[[plugins.registries]]`: a registry the service may pull connectors from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// `host[:port]`, as references name it.
    pub host: String,
    /// The user of Basic authentication; unset: anonymous.
    pub username: Option<String>,
    /// The AuthRef of the password (`ref://<scope>/<provider>/<key>`), read at start from the
    /// platform's own secrets (`STELLA_PLATFORM_SECRET__…` variables, or `.platform/` in the
    /// secrets directory), which no integration can resolve.
    pub password_ref: Option<String>,
    /// PEM certificates of a private CA to trust for this registry, besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP (a development registry on loopback); never for production.
    #[serde(default)]
    pub plain_http: bool,
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// The environment variables that override the file, and the key each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("STELLA_LISTEN", "server.listen"),
    ("STELLA_LOG_FORMAT", "server.log-format"),
    ("STELLA_DATA_DIR", "storage.data-dir"),
    ("DATABASE_URL", "storage.database-url"),
    ("STELLA_PLUGINS_DIR", "storage.plugins-dir"),
    ("STELLA_JWT_HS256_KEY", "auth.hs256-key"),
    ("STELLA_JWKS_FILE", "auth.jwks-file"),
    ("STELLA_JWKS_URL", "auth.jwks-url"),
    ("STELLA_JWT_ISSUER", "auth.issuer"),
    ("STELLA_JWT_AUDIENCE", "auth.audience"),
    ("NATS_URL", "events.nats-url"),
    ("STELLA_SECRETS_DIR", "secrets.dir"),
    ("STELLA_SECRETS_LEGACY_TENANT", "secrets.legacy-tenant"),
    ("STELLA_SECRETS_REQUIRE_BINDING", "secrets.require-binding"),
    ("STELLA_HEALTH_ENABLED", "health.enabled"),
    ("STELLA_HEALTH_INTERVAL_SECONDS", "health.interval-seconds"),
    ("STELLA_OFFLINE", "health.offline"),
    ("STELLA_CONSOLE_PUBLIC_URL", "console.public-url"),
    ("STELLA_CONSOLE_CLIENT_SECRET", "console.oidc.client-secret"),
];

impl Config {
    /// Loads `file` (if given) over the defaults, then applies `env` (name → value).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e))?
            }
        };
        for (var, key) in ENV_OVERRIDES {
            let Some(value) = env(var).filter(|v| !v.is_empty()) else { continue };
            config.set(key, value).map_err(|e| format!("{var}: {e}"))?;
        }
        config.health.validate(config.sandbox.limits.deadline_ms)?;
        config.ledger.validate()?;
        config.events.validate()?;
        config.console.validate()?;
        config.secrets.validate()?;
        Ok(config)
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        match key {
            "server.listen" => {
                self.server.listen =
                    value.parse().map_err(|_| format!("`{value}` is not an address such as 127.0.0.1:8080"))?
            }
            "server.log-format" => {
                self.server.log_format = match value.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(format!("`{value}` is not `text` or `json`")),
                }
            }
            "storage.data-dir" => self.storage.data_dir = value.into(),
            "storage.database-url" => self.storage.database_url = Some(value),
            "storage.plugins-dir" => self.storage.plugins_dir = Some(value.into()),
            "auth.hs256-key" => self.auth.hs256_key = Some(value),
            "auth.jwks-file" => self.auth.jwks_file = Some(value.into()),
            "auth.jwks-url" => self.auth.jwks_url = Some(value),
            "auth.issuer" => self.auth.issuer = Some(value),
            "auth.audience" => self.auth.audience = Some(value),
            "events.nats-url" => self.events.nats_url = Some(value),
            "secrets.dir" => self.secrets.dir = Some(value.into()),
            "secrets.legacy-tenant" => self.secrets.legacy_tenant = Some(value),
            "secrets.require-binding" => self.secrets.require_binding = parse_bool(&value)?,
            "health.enabled" => self.health.enabled = parse_bool(&value)?,
            "health.offline" => self.health.offline = parse_bool(&value)?,
            "health.interval-seconds" => {
                self.health.interval_seconds =
                    value.parse().map_err(|_| format!("`{value}` is not a number of seconds"))?
            }
            "console.public-url" => self.console.public_url = Some(value),
            "console.oidc.client-secret" => match &mut self.console.oidc {
                Some(oidc) => oidc.client_secret = Some(value),
                None => return Err("a client secret is set but no [console.oidc] provider is configured".into()),
            },
            other => unreachable!("ENV_OVERRIDES names an unknown key {other}"),
        }
        Ok(())
    }

    /// The configuration as TOML, with the local key and URL passwords masked.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.auth.hs256_key.is_some() {
            shown.auth.hs256_key = Some("***".into());
        }
        shown.storage.database_url = shown.storage.database_url.as_deref().map(redact_url);
        shown.events.nats_url = shown.events.nats_url.as_deref().map(redact_url);
        if let Some(oidc) = &mut shown.console.oidc {
            oidc.client_secret = oidc.client_secret.as_ref().map(|_| "***".into());
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print the configuration: {e}"))
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{value}` is not `true` or `false`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:9000\"\n[storage]\ndata-dir = \"/var/lib/stella\"\n")
            .unwrap();
        let env = |k: &str| (k == "DATABASE_URL").then(|| "postgres://u:pw@db/x".to_string());
        let c = Config::load(Some(&path), env).unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.storage.database_url(), "postgres://u:pw@db/x");
        assert!(!c.to_masked_toml().contains("pw@"), "{}", c.to_masked_toml());
        let defaults = Config::load(None, |_| None).unwrap();
        assert_eq!(defaults.storage.database_url(), "sqlite://data/catalog.db");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisen = \"0.0.0.0:9000\"\n").unwrap();
        let e = Config::load(Some(&path), |_| None).unwrap_err();
        assert!(e.contains("lisen"), "{e}");
        let e = Config::load(None, |k| (k == "STELLA_LISTEN").then(|| "localhost".into())).unwrap_err();
        assert!(e.starts_with("STELLA_LISTEN"), "{e}");
    }

    #[test]
    fn health_settings_are_checked_against_their_ranges_and_the_sandbox_deadline() {
        let c = Config::load(None, |k| (k == "STELLA_OFFLINE").then(|| "true".into())).unwrap();
        assert!(c.health.offline && c.health.enabled);
        assert_eq!(c.health.interval_seconds, 300);
        let e = Config::load(None, |k| (k == "STELLA_OFFLINE").then(|| "yes".into())).unwrap_err();
        assert!(e.starts_with("STELLA_OFFLINE"), "{e}");
        let e = Config::load(None, |k| (k == "STELLA_HEALTH_INTERVAL_SECONDS").then(|| "5".into())).unwrap_err();
        assert!(e.contains("health.interval-seconds must be between 30 and 86400"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[health]\nlease-seconds = 60\n[sandbox.limits]\ndeadline-ms = 60000\n").unwrap();
        let e = Config::load(Some(&path), |_| None).unwrap_err();
        assert!(e.contains("health.lease-seconds must be between 90"), "{e}");
        for bad in ["https://mirror", "mirror:8443", ""] {
            std::fs::write(&path, format!("[health]\noffline-mirror-hosts = [\"{bad}\"]\n")).unwrap();
            assert!(Config::load(Some(&path), |_| None).unwrap_err().contains("offline-mirror-hosts"), "{bad}");
        }
        std::fs::write(&path, "[health]\nconcurrency = 0\n").unwrap();
        assert!(Config::load(Some(&path), |_| None).unwrap_err().contains("health.concurrency"));
        std::fs::write(&path, "[ledger]\nretention-days = 0\n").unwrap();
        assert!(Config::load(Some(&path), |_| None).unwrap_err().contains("ledger.retention-days"));
    }
}
