//! The commands of `stella-integrations`.
//!
//! Exit codes: 0 success, 1 a connector test or health check failed (or `connector conformance`
//! found a false green, a credential sent or nothing tested, or `audit verify` found a break, or an
//! import item was refused), 2 a usage, load or connection error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use stella_runtime::inspect::describe;
use stella_runtime::manifest::{Manifest, embed_manifest};
use stella_runtime::secrets::{
    AuthRef, ChainResolver, SecretNamespace, SecretStore, SecretValue, StaticSecretResolver,
};
use stella_runtime::{ConnectionConfig, ConnectorSource, IntegrationType, Sandbox, SandboxConfig};

use crate::auth;
use crate::config::{Config, LogFormat};
use crate::domain::wire_name;
use crate::ledger::LedgerEntry;
use crate::query::{InvocationParams, Page};

/// Why a command failed: printed as one line (`error: …`), exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line, the configuration or an input is wrong; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// A file or stream could not be read or written, or a thread could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was being done (`cannot read plugins/x.wasm`).
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox could not be built.
    #[error(transparent)]
    Setup(#[from] stella_runtime::SetupError),
    /// A component was refused.
    #[error("{file}: {source}")]
    Load {
        /// The component's file (or `builtin:<provider>`).
        file: String,
        /// Why it was refused.
        #[source]
        source: stella_runtime::LoadError,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The running service could not be reached, or its answer read.
    #[error("{what}: {source}")]
    Service {
        /// What was being done (`cannot reach the service at …`).
        what: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The running service refused the request: its status, detail and field errors.
    #[error("{0}")]
    Refused(String),
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<crate::query::QueryError> for CliError {
    fn from(e: crate::query::QueryError) -> Self {
        Self::Invalid(format!("the filters are not valid: {e}"))
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_string())
    }
}

/// Maps an I/O error to [`CliError::Io`], saying what was being done.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

/// The StellaOps Integration Catalog.
#[derive(Debug, Parser)]
#[command(name = "stella-integrations", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTP API, connectors, event relay).
    Serve(ServeArgs),
    /// Print a bearer token signed with the local key, for calling the API of a `serve` that
    /// runs in the same directory (or with the same configuration).
    Token(TokenArgs),
    /// Print a one-time link that signs a browser in to the console of a `serve` that runs in the
    /// same directory (or with the same configuration); it is spent on first use.
    ConsoleLink(ConsoleLinkArgs),
    /// Work with connector components (.wasm): inspect, package, test.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Create or upgrade the database schema (the service also does this when it starts).
    Migrate(DatabaseArgs),
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print every integration of the token's tenant, from a running service, as an export
    /// document (the file `import` reads).
    Export(ExportArgs),
    /// Create or update integrations by name from an export file, on a running service.
    Import(ImportArgs),
    /// List connector invocations from a running service's ledger, newest first (a token with
    /// `integrations.audit` for its tenant, or `plugins.admin` for every tenant).
    Invocations(InvocationsArgs),
    /// Print where `serve`, with the same configuration, reads a tenant's secret and its binding
    /// (the variable and the file), or one of the platform's own secrets.
    SecretLocation(SecretLocationArgs),
}

#[derive(Debug, Args)]
struct SecretLocationArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The tenant whose integrations name the AuthRef.
    #[arg(long, required_unless_present = "platform", conflicts_with = "platform")]
    tenant: Option<String>,
    /// A secret of the platform's own (a registry's `password-ref`), which no integration resolves.
    #[arg(long)]
    platform: bool,
    /// The AuthRef, `ref://<scope>/<provider>/<key>`.
    auth_ref: String,
}

#[derive(Debug, Args)]
struct InvocationsArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Of this connector provider.
    #[arg(long)]
    provider: Option<String>,
    /// Of the component with this sha256.
    #[arg(long)]
    sha256: Option<String>,
    /// Of this integration (id).
    #[arg(long)]
    integration: Option<String>,
    /// `test-connection` or `check-health`.
    #[arg(long)]
    operation: Option<String>,
    /// `success`, a failure class, or a health outcome.
    #[arg(long)]
    outcome: Option<String>,
    /// Only those that failed with this class (`auth`, `network`, …), tests and checks alike.
    #[arg(long)]
    failure_class: Option<String>,
    /// Only those denied something (`true`) or nothing (`false`).
    #[arg(long)]
    denied: Option<bool>,
    /// Only those denied something of this kind (`origin`, `secret-ref`, `reveal`, …).
    #[arg(long)]
    denial_kind: Option<String>,
    /// Only those that read a secret's value (`true`) or did not (`false`).
    #[arg(long)]
    revealed_secret: Option<bool>,
    /// Only those that sent a secret's value outside the credential the host wrote (in a URL, a
    /// header or a body: `true`), or did not (`false`).
    #[arg(long)]
    secret_in_request: Option<bool>,
    /// Only those that contacted an origin other than their integration's base URL's (`true`),
    /// or did not (`false`).
    #[arg(long)]
    outside_base_url: Option<bool>,
    /// Only those that contacted this origin (`https://host[:port]`).
    #[arg(long)]
    origin: Option<String>,
    /// Only those that used this AuthRef.
    #[arg(long)]
    auth_ref: Option<String>,
    /// Started at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Started before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// At most this many, following the pages.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print one JSON array.
    #[arg(long, conflicts_with = "ndjson")]
    json: bool,
    /// Print one JSON object per line.
    #[arg(long)]
    ndjson: bool,
}

/// Where the running service is, and the token to call it with.
#[derive(Debug, Args)]
struct ServiceArgs {
    /// The service's base URL.
    #[arg(long, env = "STELLA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A bearer token (prefer the environment variable: arguments show in the process list).
    #[arg(long, env = "STELLA_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// One integration per line (NDJSON) instead of one document.
    #[arg(long)]
    ndjson: bool,
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The export file: a document, or NDJSON when it ends in `.ndjson` or `.jsonl`; `-` reads
    /// a document from standard input.
    file: PathBuf,
    /// Report what would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the service's report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The configuration file (TOML); environment variables override it.
    #[arg(long, short = 'c', env = "STELLA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, String> {
        Config::load(self.config.as_deref(), |name| std::env::var(name).ok())
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The tenant the token acts in.
    #[arg(long)]
    tenant: String,
    /// The scopes, separated by spaces or commas: integrations.read, integrations.admin,
    /// plugins.admin (platform-wide: submit, review and activate connector code).
    #[arg(long, default_value = "integrations.admin")]
    scopes: String,
    /// The subject (recorded as the actor of changes).
    #[arg(long, default_value = "local-admin")]
    subject: String,
    /// How long the token is valid: 30m, 12h, 7d…
    #[arg(long, default_value = "12h")]
    ttl: String,
}

#[derive(Debug, Args)]
struct ConsoleLinkArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The tenant the browser signs in to.
    #[arg(long)]
    tenant: String,
    /// The scopes of the sign-in, separated by spaces or commas.
    #[arg(long, default_value = "integrations.admin integrations.audit")]
    scopes: String,
    /// The subject (recorded as the actor of changes made in the console).
    #[arg(long, default_value = "local-admin")]
    subject: String,
    /// How long the link may wait to be used: at most 1h.
    #[arg(long, default_value = "15m")]
    ttl: String,
    /// The service's URL as the browser reaches it (default: `console.public-url`, else the
    /// listen address).
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// `sqlite://<path>` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = crate::store::DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Re-compute every tenant's hash chain; exit 1 if any chain is broken.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectorCommand {
    /// Print a component's provider, type, version, sha256, imports, permissions and limits.
    Inspect {
        /// The component file, or `builtin:<provider>` for a built-in connector.
        file: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Embed (or replace) a manifest in any component.
    Package {
        /// The component to package.
        input: PathBuf,
        /// The manifest (TOML).
        #[arg(long)]
        manifest: PathBuf,
        /// Where to write the packaged component.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a connector's test (or health check) in the same sandbox the service uses.
    Test(TestArgs),
    /// Run a connector's test and health check against impostor servers on loopback (an empty
    /// JSON object, an HTML page, an intranet Basic prompt, a 500, silence, a certificate for
    /// another host, a redirect to a login page), with a throwaway credential. Exit 1 when it
    /// claims success against one (a false green) or sends the credential to one (unless its
    /// manifest declares `credential-before-proof`).
    Conformance(ConformanceArgs),
    /// Check a component's signature against a public key, offline: a minisign key (`.pub`) with a
    /// `.minisig`, or a PEM ECDSA P-256 key with a `cosign sign-blob --key` signature. Exit 0 when
    /// it verifies, 1 when it does not.
    Verify {
        /// The component file.
        file: PathBuf,
        /// The public key file.
        #[arg(long)]
        key: PathBuf,
        /// The signature file (default: the file's name with `.minisig` or `.sig` added, after the
        /// key's format).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// Sign a component as `cosign sign-blob --key` does, with an ECDSA P-256 private key (PEM
    /// PKCS#8, e.g. from `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`); writes
    /// the signature beside it (`<file>.sig`). For minisign signatures, use `minisign -S`.
    Sign {
        /// The component file.
        file: PathBuf,
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signature (default: the file's name with `.sig` added).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Submit a component to a running service's plugin store (needs `plugins.admin`), with its
    /// signatures; it is stored pending review unless the policy approves it at once.
    Submit(SubmitArgs),
    /// Push a component to an OCI registry as a Wasm artifact (CNCF layout), with its signatures
    /// beside it (cosign's `sha256-<digest>.sig` tag); prints the reference pinned by digest.
    Push(PushArgs),
    /// Pull a connector artifact from an OCI registry, with its signatures (written beside it as
    /// `<output>.sig` / `<output>.minisig`); prints the reference pinned by digest.
    Pull(PullArgs),
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// The registry user (Basic authentication); the password is read from
    /// STELLA_REGISTRY_PASSWORD.
    #[arg(long, env = "STELLA_REGISTRY_USERNAME")]
    username: Option<String>,
    /// PEM certificates of a private CA to trust for the registry.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Plain HTTP instead of HTTPS (a development registry on loopback).
    #[arg(long)]
    plain_http: bool,
}

#[derive(Debug, Args)]
struct PushArgs {
    /// The component file.
    file: PathBuf,
    /// Where to push it: REGISTRY/REPOSITORY:TAG.
    reference: String,
    /// A signature file (repeatable; default: `<file>.minisig` and `<file>.sig` when present).
    #[arg(long = "signature")]
    signatures: Vec<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Args)]
struct PullArgs {
    /// What to pull: REGISTRY/REPOSITORY[:TAG|@DIGEST].
    reference: String,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Args)]
struct SubmitArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The component file.
    file: PathBuf,
    /// A signature file (repeatable; default: `<file>.minisig` and `<file>.sig` when present).
    #[arg(long = "signature")]
    signatures: Vec<PathBuf>,
    /// Print the stored version as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The component file, or `builtin:<provider>` for a built-in connector.
    file: String,
    /// The integration's base URL.
    #[arg(long)]
    base_url: Option<String>,
    /// The integration's configuration (a JSON object).
    #[arg(long, default_value = "{}")]
    config: String,
    /// The integration's AuthRef (`ref://<scope>/<provider>/<key>`).
    #[arg(long)]
    auth_ref: Option<String>,
    /// A secret for the test, `REF=VALUE` (repeatable). Secrets are also read from
    /// `STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY>` variables.
    #[arg(long = "secret", value_name = "REF=VALUE")]
    secrets: Vec<String>,
    /// The operator's sandbox configuration (TOML: limits, network, timeouts), as the service
    /// would use it. Defaults apply to what it leaves out.
    #[arg(long, value_name = "FILE")]
    sandbox_config: Option<PathBuf>,
    /// Allow connections to this network although the policy blocks it (repeatable),
    /// e.g. 127.0.0.1/32 for a local server.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<IpNet>,
    /// The integration type (default: the connector's first type).
    #[arg(long = "type")]
    integration_type: Option<String>,
    /// The integration's name.
    #[arg(long, default_value = "cli-test")]
    name: String,
    /// Run the health check instead of the connection test.
    #[arg(long)]
    health: bool,
    /// Print JSON (result and invocation record).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConformanceArgs {
    /// The component file, or `builtin:<provider>` for a built-in connector.
    file: String,
    /// The integration type to run as (default: the connector's first type).
    #[arg(long = "type")]
    integration_type: Option<String>,
    /// The integration's configuration (a JSON object), as a real integration would carry it.
    #[arg(long, default_value = "{}")]
    config: String,
    /// A file holding the throwaway credential, for a connector that needs one of a given shape
    /// (a test private key for one that signs with it). Never a real credential: the impostors
    /// are where it would go. Default: a random value.
    #[arg(long, value_name = "FILE")]
    credential_file: Option<PathBuf>,
    /// The operator's sandbox configuration (TOML: limits, timeouts), as the service would use it.
    #[arg(long, value_name = "FILE")]
    sandbox_config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(&cli.command);
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
        Command::ConsoleLink(args) => console_link(args),
        Command::Connector(ConnectorCommand::Inspect { file, json }) => inspect(&file, json),
        Command::Connector(ConnectorCommand::Package { input, manifest, output }) => {
            package(&input, &manifest, &output)
        }
        Command::Connector(ConnectorCommand::Test(args)) => test(args),
        Command::Connector(ConnectorCommand::Conformance(args)) => conformance(args),
        Command::Connector(ConnectorCommand::Verify { file, key, signature }) => verify(&file, &key, signature),
        Command::Connector(ConnectorCommand::Sign { file, key, output }) => sign(&file, &key, output),
        Command::Connector(ConnectorCommand::Submit(args)) => submit(args),
        Command::Connector(ConnectorCommand::Push(args)) => push(args),
        Command::Connector(ConnectorCommand::Pull(args)) => pull(args),
        Command::Migrate(database) => migrate(&database),
        Command::Audit(AuditCommand::Verify { database, json }) => audit_verify(&database, json),
        Command::Export(args) => export(args),
        Command::Import(args) => import(args),
        Command::Invocations(args) => invocations(args),
        Command::SecretLocation(args) => secret_location(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: `info` and up for `serve` (text, or JSON with `log-format = "json"`), warnings
/// only for the other commands. `STELLA_LOG` sets the filter (`debug`, `stella_integrations=trace`).
fn init_logging(command: &Command) {
    let (default, json) = match command {
        Command::Serve(args) => {
            let json = args.config.load().map(|c| c.server.log_format == LogFormat::Json).unwrap_or(false);
            ("info", json)
        }
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STELLA_LOG").unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        builder.init();
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    if args.print_config {
        print!("{}", config.to_masked_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    runtime.block_on(crate::server::serve(config))?;
    Ok(ExitCode::SUCCESS)
}

fn token(args: TokenArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    let request = local_token_request(&config, args.tenant, &args.scopes, args.subject, &args.ttl)?;
    let key = auth::local_key(&config.auth, &config.storage.data_dir)?;
    println!("{}", auth::issue_local_token(&config.auth, &key, &request));
    Ok(ExitCode::SUCCESS)
}

fn secret_location(args: SecretLocationArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    let auth_ref = AuthRef::parse(&args.auth_ref).map_err(|e| format!("{}: {e}", args.auth_ref))?;
    let store = config.secrets.store();
    let (whose, locations) = match &args.tenant {
        None => ("the platform".to_string(), store.platform_locations(&auth_ref)?),
        Some(tenant) => {
            if !crate::identity::is_tenant_id(tenant) {
                return Err("--tenant must be 1 to 128 characters without control characters".into());
            }
            let namespace = config.secrets.namespace_of(tenant);
            let whose = match namespace {
                SecretNamespace::Unscoped => {
                    format!("tenant {tenant} (secrets.legacy-tenant: the layout from before tenants)")
                }
                SecretNamespace::Owner(_) => format!("tenant {tenant}"),
            };
            (whose, store.locations(&namespace, &auth_ref)?)
        }
    };
    let places = [
        ("file", locations.file.map(|f| f.display().to_string())),
        ("binding file", locations.binding_file.map(|f| f.display().to_string())),
        ("variable", locations.variable),
        ("binding variable", locations.binding_variable),
    ];
    if places.iter().all(|(_, place)| place.is_none()) {
        return Err("neither secrets.dir nor secrets.env is configured: serve reads no secret".into());
    }
    println!("{auth_ref} of {whose}");
    for (what, place) in places {
        if let Some(place) = place {
            println!("  {what:<16} {place}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn console_link(args: ConsoleLinkArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    if !config.console.enabled {
        return Err("the console is disabled (console.enabled = false)".into());
    }
    let request = local_token_request(&config, args.tenant, &args.scopes, args.subject, &args.ttl)?;
    if request.ttl > auth::MAX_SIGN_IN_LINK_TTL {
        return Err("--ttl must be at most 1h: a sign-in link is for signing in now".into());
    }
    let base = match args.url.or_else(|| config.console.public_url.clone()) {
        Some(url) => url,
        None => format!("http://{}", config.server.listen),
    };
    let key = auth::local_key(&config.auth, &config.storage.data_dir)?;
    let token = auth::issue_sign_in_link(&config.auth, &key, &request);
    println!("{}/console/sign-in/link?token={token}", base.trim_end_matches('/'));
    Ok(ExitCode::SUCCESS)
}

/// A local token's request, from the command line's arguments, refused when local tokens are
/// disabled or an argument is not one a token may carry.
fn local_token_request(
    config: &Config,
    tenant: String,
    scopes: &str,
    subject: String,
    ttl: &str,
) -> Result<auth::TokenRequest, CliError> {
    if !config.auth.local_tokens_enabled() {
        return Err("local tokens are disabled (auth.local-tokens = false, or a JWKS is configured without \
                    local-tokens = true): get a token from your identity provider"
            .into());
    }
    let scopes: Vec<String> = scopes.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect();
    for s in &scopes {
        if !crate::identity::SCOPES.contains(&s.as_str()) {
            return Err(format!("unknown scope `{s}`: use any of {}", crate::identity::SCOPES.join(", ")).into());
        }
    }
    if !crate::identity::is_tenant_id(&tenant) {
        return Err("--tenant must be 1 to 128 characters without control characters".into());
    }
    Ok(auth::TokenRequest { tenant, scopes, subject, ttl: auth::parse_ttl(ttl)? })
}

fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    Ok(runtime.block_on(work))
}

fn migrate(database: &DatabaseArgs) -> Result<ExitCode, CliError> {
    block_on(crate::store::open(&database.database_url))??;
    println!("the database at {} is migrated", crate::config::redact_url(&database.database_url));
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(database: &DatabaseArgs, json: bool) -> Result<ExitCode, CliError> {
    // An operator's check of every tenant's chain, on the database directly: no service runs.
    let report = block_on(async {
        let store = crate::store::open(&database.database_url).await?;
        store.verify_audit().await
    })??;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        println!("{} tenants and the platform's admissions, {} audit entries checked", report.tenants, report.entries);
        for b in &report.breaks {
            let chain = if b.tenant_id == crate::audit::PLATFORM {
                "the platform (connector admissions)".to_string()
            } else {
                format!("tenant {}", b.tenant_id)
            };
            println!("BROKEN: {chain} at entry {}: {}", b.seq, b.problem);
        }
        if report.breaks.is_empty() {
            println!("every chain is intact");
        }
    }
    Ok(if report.breaks.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Sends one request to the running service; answers its status and body, or why it could not.
async fn call_service(
    service: &ServiceArgs,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, String), CliError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|source| CliError::Service { what: "cannot build the HTTP client".into(), source })?;
    let base = service.url.trim_end_matches('/');
    let response = request(&client, base)
        .bearer_auth(&service.token)
        .send()
        .await
        .map_err(|source| CliError::Service { what: format!("cannot reach the service at {base}"), source })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|source| CliError::Service { what: format!("cannot read the answer of {base}"), source })?;
    if !status.is_success() {
        // A problem document: its detail and field errors say what to fix.
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut message = format!("the service answered {status}");
        if let Some(detail) = problem["detail"].as_str() {
            message += &format!(": {detail}");
        }
        for e in problem["errors"].as_array().into_iter().flatten() {
            message += &format!("\n  {}: {}", e["field"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("?"));
        }
        return Err(CliError::Refused(message));
    }
    Ok((status, body))
}

fn invocations(args: InvocationsArgs) -> Result<ExitCode, CliError> {
    // The API's own parameters, named once (`crate::query`): what is sent is what it reads.
    let mut params = InvocationParams {
        provider: args.provider,
        sha256: args.sha256,
        integration_id: args.integration,
        operation: args.operation,
        outcome: args.outcome,
        failure_class: args.failure_class,
        denied: args.denied,
        outside_base_url: args.outside_base_url,
        revealed_secret: args.revealed_secret,
        secret_in_request: args.secret_in_request,
        denial_kind: args.denial_kind,
        origin: args.origin,
        auth_ref: args.auth_ref,
        since: args.since,
        until: args.until,
        after: None,
        limit: None,
    };
    // Refused here, as the service would refuse it, before anything is sent.
    crate::query::read::<InvocationParams>(&serde_urlencoded::to_string(&params).expect("parameters encode"))?
        .parse()?;
    // Printed page by page, so that a long window (`--limit 100000`) is never held whole.
    let mut out = std::io::stdout().lock();
    let mut write = |text: &str| writeln!(out, "{text}").map_err(io("cannot write the invocations"));
    let mut printed = 0;
    if args.json {
        write("[")?;
    }
    while printed < args.limit {
        params.limit = Some((args.limit - printed).min(crate::query::MAX_LIMIT as usize) as u32);
        let query = serde_urlencoded::to_string(&params).expect("parameters encode");
        let (_, body) =
            block_on(call_service(&args.service, |c, base| c.get(format!("{base}/api/v1/invocations?{query}"))))??;
        let page: Page<LedgerEntry> = serde_json::from_str(&body)
            .map_err(|e| format!("the service's answer is not a page of the ledger: {e}"))?;
        for item in &page.items {
            if args.json {
                let item = serde_json::to_string_pretty(item).expect("an invocation serializes");
                write(&format!("{}{}", if printed > 0 { "," } else { "" }, item))?;
            } else if args.ndjson {
                write(&serde_json::to_string(item).expect("an invocation serializes"))?;
            } else {
                write(&invocation_line(item))?;
            }
            printed += 1;
        }
        match page.next_cursor {
            Some(next) => params.after = Some(next),
            None => break,
        }
    }
    if args.json {
        write("]")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One invocation as a line: when, tenant, provider (the third column, for `awk`), operation,
/// outcome, denial kinds, origins contacted, id.
fn invocation_line(i: &LedgerEntry) -> String {
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(",") };
    let at = i.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    format!(
        "{}  {}  {:<16} {:<15} {:<12} denied:{:<14} origins:{}  {}",
        at,
        i.tenant_id,
        i.provider,
        i.operation.as_str(),
        i.outcome,
        list(&i.denial_kinds),
        list(&i.origins),
        i.invocation_id,
    )
}

fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let accept = if args.ndjson { "application/x-ndjson" } else { "application/json" };
    let (_, body) = block_on(call_service(&args.service, |c, base| {
        c.get(format!("{base}/api/v1/integrations/export")).header("accept", accept)
    }))??;
    let mut out = std::io::stdout().lock();
    out.write_all(body.as_bytes()).and_then(|()| out.flush()).map_err(io("cannot write the export"))?;
    Ok(ExitCode::SUCCESS)
}

fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
    let stdin = args.file.as_os_str() == "-";
    let body = if stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(io("cannot read standard input"))?;
        text
    } else {
        std::fs::read_to_string(&args.file).map_err(io(format!("cannot read {}", args.file.display())))?
    };
    let ndjson = !stdin && matches!(args.file.extension().and_then(|e| e.to_str()), Some("ndjson" | "jsonl"));
    let content_type = if ndjson { "application/x-ndjson" } else { "application/json" };
    let (_, answer) = block_on(call_service(&args.service, |c, base| {
        c.post(format!("{base}/api/v1/integrations/import?dryRun={}", args.dry_run))
            .header("content-type", content_type)
            .body(body)
    }))??;
    let report: crate::bulk::ImportReport =
        serde_json::from_str(&answer).map_err(|e| format!("the service's report does not parse: {e}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        print!("{}", import_summary(&report));
    }
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One line per item, then the totals.
fn import_summary(report: &crate::bulk::ImportReport) -> String {
    use crate::bulk::ImportResult;
    let mut out = String::new();
    for item in &report.items {
        let name = item.name.as_deref().unwrap_or("(no name)");
        let line = match item.result {
            ImportResult::Created => format!("created    {name}"),
            ImportResult::Unchanged => format!("unchanged  {name}"),
            ImportResult::Updated => format!("updated    {name}: {}", item.changed.join(", ")),
            ImportResult::Error => {
                let mut why: Vec<String> = item.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                why.extend(item.message.clone());
                format!("error      {name} (item {}): {}", item.index, why.join("; "))
            }
        };
        out += &line;
        out.push('\n');
    }
    out += &format!(
        "{} created, {} updated, {} unchanged, {} failed{}\n",
        report.created,
        report.updated,
        report.unchanged,
        report.failed,
        if report.dry_run { " (dry run: nothing was changed)" } else { "" }
    );
    out
}

fn read_component(file: &str) -> Result<(Vec<u8>, ConnectorSource), CliError> {
    if let Some(provider) = file.strip_prefix("builtin:") {
        let (_, bytes) = stella_builtin_connectors::BUILTINS.iter().find(|(p, _)| *p == provider).ok_or_else(|| {
            let names: Vec<&str> = stella_builtin_connectors::BUILTINS.iter().map(|(p, _)| *p).collect();
            format!("no built-in connector `{provider}` (built-ins: {})", names.join(", "))
        })?;
        return Ok((bytes.to_vec(), ConnectorSource::BuiltIn));
    }
    let bytes = std::fs::read(file).map_err(io(format!("cannot read {file}")))?;
    Ok((bytes, ConnectorSource::File(PathBuf::from(file))))
}

fn verify(file: &Path, key: &Path, signature: Option<PathBuf>) -> Result<ExitCode, CliError> {
    use stella_runtime::signature::{SignatureError, TrustedKey};
    let key_text = std::fs::read_to_string(key).map_err(io(format!("cannot read {}", key.display())))?;
    let trusted = TrustedKey::parse(&key_text).map_err(|e| format!("{}: {e}", key.display()))?;
    let signature = signature.unwrap_or_else(|| {
        let suffix = match trusted {
            TrustedKey::Minisign { .. } => "minisig",
            TrustedKey::EcdsaP256 { .. } => "sig",
        };
        PathBuf::from(format!("{}.{suffix}", file.display()))
    });
    let bytes = std::fs::read(file).map_err(io(format!("cannot read {}", file.display())))?;
    let text = std::fs::read_to_string(&signature).map_err(io(format!("cannot read {}", signature.display())))?;
    match trusted.verify(&bytes, &text) {
        Ok(()) => {
            println!("{}: signature verified ({trusted:?})", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(SignatureError::Mismatch) => {
            println!("{}: the signature does NOT verify with {trusted:?}", file.display());
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(format!("{}: {e}", signature.display()).into()),
    }
}

fn sign(file: &Path, key: &Path, output: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let key_text = std::fs::read_to_string(key).map_err(io(format!("cannot read {}", key.display())))?;
    let bytes = std::fs::read(file).map_err(io(format!("cannot read {}", file.display())))?;
    let (signature, key_id) =
        stella_runtime::signature::sign_cosign(&key_text, &bytes).map_err(|e| format!("{}: {e}", key.display()))?;
    let output = output.unwrap_or_else(|| PathBuf::from(format!("{}.sig", file.display())));
    std::fs::write(&output, format!("{signature}\n")).map_err(io(format!("cannot write {}", output.display())))?;
    println!("{}: signed with {key_id}; signature in {}", file.display(), output.display());
    Ok(ExitCode::SUCCESS)
}

/// The signature files given, or else those beside `file` (`<file>.minisig`, `<file>.sig`), read.
fn signature_files(file: &Path, given: &[PathBuf]) -> Result<Vec<String>, CliError> {
    let mut files = given.to_vec();
    if files.is_empty() {
        for suffix in ["minisig", "sig"] {
            let beside = PathBuf::from(format!("{}.{suffix}", file.display()));
            if beside.is_file() {
                files.push(beside);
            }
        }
    }
    let mut signatures = Vec::new();
    for path in &files {
        let size = std::fs::metadata(path).map_err(io(format!("cannot read {}", path.display())))?.len();
        if size > stella_runtime::signature::MAX_SIGNATURE_TEXT as u64 {
            return Err(format!("{} is not a signature: it is {size} bytes", path.display()).into());
        }
        signatures.push(std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?);
    }
    Ok(signatures)
}

fn registry_access(args: &RegistryArgs) -> Result<crate::plugins::oci::RegistryAccess, CliError> {
    let credentials = match &args.username {
        Some(user) => {
            let password = std::env::var("STELLA_REGISTRY_PASSWORD")
                .map_err(|_| "--username needs the password in STELLA_REGISTRY_PASSWORD")?;
            Some((user.clone(), stella_runtime::secrets::SecretValue::new(password)))
        }
        None => None,
    };
    let ca_pem = match &args.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(io(format!("cannot read {}", path.display())))?),
        None => None,
    };
    Ok(crate::plugins::oci::RegistryAccess { credentials, ca_pem, plain_http: args.plain_http })
}

fn push(args: PushArgs) -> Result<ExitCode, CliError> {
    use crate::plugins::oci;
    let reference = oci::parse_reference(&args.reference).map_err(|e| e.to_string())?;
    let component = std::fs::read(&args.file).map_err(io(format!("cannot read {}", args.file.display())))?;
    let signatures = signature_files(&args.file, &args.signatures)?;
    let access = registry_access(&args.registry)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pinned = block_on(oci::push(&reference, component, &signatures, &access))?.map_err(|e| e.to_string())?;
    println!("{pinned}");
    eprintln!("pushed {} with {} signature(s)", args.file.display(), signatures.len());
    Ok(ExitCode::SUCCESS)
}

fn pull(args: PullArgs) -> Result<ExitCode, CliError> {
    use crate::plugins::oci;
    let reference = oci::parse_reference(&args.reference).map_err(|e| e.to_string())?;
    let access = registry_access(&args.registry)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The sandbox's default component limit: what a service with default settings accepts.
    let limit = stella_runtime::SandboxConfig::default().max_component_bytes;
    let pulled = block_on(oci::pull(&reference, &access, limit))?.map_err(|e| e.to_string())?;
    std::fs::write(&args.output, &pulled.component).map_err(io(format!("cannot write {}", args.output.display())))?;
    for signature in &pulled.signatures.files {
        let suffix = if signature.starts_with("untrusted comment:") { "minisig" } else { "sig" };
        let path = PathBuf::from(format!("{}.{suffix}", args.output.display()));
        std::fs::write(&path, signature).map_err(io(format!("cannot write {}", path.display())))?;
    }
    println!("{}", pulled.pinned);
    eprintln!(
        "pulled into {} with {} signature file(s) and {} cosign image signature(s) (the service verifies those on \
         POST /api/v1/plugins/pull)",
        args.output.display(),
        pulled.signatures.files.len(),
        pulled.signatures.images.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn submit(args: SubmitArgs) -> Result<ExitCode, CliError> {
    use base64::Engine as _;
    let bytes = std::fs::read(&args.file).map_err(io(format!("cannot read {}", args.file.display())))?;
    let signatures: Vec<String> = signature_files(&args.file, &args.signatures)?
        .iter()
        .map(|s| base64::engine::general_purpose::STANDARD.encode(s))
        .collect();
    let (status, body) = block_on(call_service(&args.service, |c, base| {
        let mut request =
            c.post(format!("{base}/api/v1/plugins")).header("content-type", "application/wasm").body(bytes);
        for s in &signatures {
            request = request.header(crate::plugins::SIGNATURE_HEADER, s.as_str());
        }
        request
    }))??;
    if args.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let text = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let stored = if status == reqwest::StatusCode::CREATED { "stored" } else { "already stored" };
    println!(
        "{} {}: {stored}, {}{}",
        text("provider"),
        text("version"),
        text("status"),
        if v["active"].as_bool() == Some(true) { ", active" } else { "" }
    );
    println!("sha256:             {}", text("sha256"));
    println!("signed by:          {}", v["signedBy"].as_str().unwrap_or("(no trusted key)"));
    println!("permissions digest: {}", text("permissionsDigest"));
    if v["diff"].is_object() {
        println!("permission diff against {}:", v["diff"]["against"].as_str().unwrap_or("nothing (a new provider)"));
        println!("{}", serde_json::to_string_pretty(&v["diff"]).unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &str, json: bool) -> Result<ExitCode, CliError> {
    let (bytes, _) = read_component(file)?;
    let d = describe(&bytes).map_err(|e| format!("{file}: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d).expect("a description serializes"));
        return Ok(ExitCode::SUCCESS);
    }
    let m = &d.manifest;
    let types: Vec<&str> = m.connector.types.iter().map(|t| t.as_str()).collect();
    let mut out = String::new();
    out += &format!("provider:        {}\n", m.connector.provider);
    out += &format!("types:           {}\n", types.join(", "));
    out += &format!("version:         {}\n", m.connector.version);
    out += &format!("description:     {}\n", m.connector.description);
    if let Some(why) = &m.connector.credential_before_proof {
        out += &format!("credential before proof: {why}\n");
    }
    out += &format!("sha256:          {}\n", d.sha256);
    out += &format!("size:            {} bytes\n", d.size);
    out += "permissions:\n";
    out += "  hosts:          the integration's base URL";
    for h in &m.permissions.hosts {
        out += &format!(", {h}");
    }
    out += "\n";
    out += &format!("  reveal-secrets: {}\n", m.permissions.reveal_secrets);
    out += &format!("  sign-jwt:       {}\n", m.permissions.sign_jwt);
    let limits = toml::to_string(&m.limits).unwrap_or_default();
    if limits.trim().is_empty() {
        out += "limits:          the operator's defaults\n";
    } else {
        out += "limits (asked):\n";
        for line in limits.lines() {
            out += &format!("  {line}\n");
        }
    }
    out += "imports:\n";
    for i in &d.imports {
        out += &format!("  {i}\n");
    }
    out += "exports:\n";
    for e in &d.exports {
        out += &format!("  {e}\n");
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn package(input: &Path, manifest_path: &Path, output: &Path) -> Result<ExitCode, CliError> {
    let bytes = std::fs::read(input).map_err(io(format!("cannot read {}", input.display())))?;
    let text =
        std::fs::read_to_string(manifest_path).map_err(io(format!("cannot read {}", manifest_path.display())))?;
    let manifest = Manifest::from_toml(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let packaged = embed_manifest(&bytes, &manifest).map_err(|e| format!("{}: {e}", input.display()))?;
    // Check the result reads back before writing it anywhere.
    let d = describe(&packaged).map_err(|e| format!("the packaged component does not read back: {e}"))?;
    let tmp = output.with_extension("wasm.tmp");
    std::fs::write(&tmp, &packaged).map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, output).map_err(io(format!("cannot write {}", output.display())))?;
    println!(
        "packaged {} {} as {} (sha256 {})",
        d.manifest.connector.provider,
        d.manifest.connector.version,
        output.display(),
        d.sha256
    );
    Ok(ExitCode::SUCCESS)
}

/// The operator's sandbox configuration from a TOML file, or the defaults.
fn sandbox_config(path: Option<&Path>) -> Result<SandboxConfig, CliError> {
    let Some(path) = path else { return Ok(SandboxConfig::default()) };
    let text = std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?;
    Ok(toml::from_str::<SandboxConfig>(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?)
}

fn conformance(args: ConformanceArgs) -> Result<ExitCode, CliError> {
    use stella_runtime::conformance::{self, ConformanceError, Options};
    let (bytes, source) = read_component(&args.file)?;
    let configuration: serde_json::Value =
        serde_json::from_str(&args.config).map_err(|e| format!("--config is not valid JSON: {e}"))?;
    let credential = match &args.credential_file {
        Some(path) => std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?,
        None => format!("conformance-canary-{}", uuid::Uuid::new_v4().simple()),
    };
    let sandbox = sandbox_config(args.sandbox_config.as_deref())?;
    let integration_type = match &args.integration_type {
        Some(t) => t.parse::<IntegrationType>()?,
        None => {
            stella_runtime::manifest::read_manifest(&bytes).map_err(|e| format!("{}: {e}", args.file))?.connector.types
                [0]
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    let options = Options { integration_type, configuration, credential, sandbox };
    let report = runtime.block_on(conformance::run(&bytes, source, options)).map_err(|e| match e {
        ConformanceError::Load(source) => CliError::Load { file: args.file.clone(), source },
        ConformanceError::Setup(e) => CliError::Setup(e),
        other => CliError::Invalid(other.to_string()),
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).expect("a report serializes")).ok();
    } else {
        print_conformance(&mut out, &report);
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_conformance(out: &mut impl Write, r: &stella_runtime::conformance::ConformanceReport) {
    let sha = r.sha256.get(..12).unwrap_or(&r.sha256);
    writeln!(out, "conformance of {} {} as {} (sha256 {sha}…)", r.provider, r.version, wire_name(&r.integration_type))
        .ok();
    if let Some(why) = &r.credential_before_proof {
        writeln!(out, "declared credential-before-proof: {why}").ok();
    }
    writeln!(
        out,
        "{:<18} {:<16} {:<12} {:<60} {:<16} time",
        "impostor", "operation", "claimed", "failure class", "credential"
    )
    .ok();
    for c in &r.cases {
        let claimed = if c.claimed_success { "FALSE GREEN" } else { "no" };
        let class = match (c.failure, c.claimed_success, c.class_fits) {
            (_, true, _) => "-".to_string(),
            (Some(f), false, true) => format!("{} (fits)", wire_name(&f)),
            (f, false, _) => {
                let expected: Vec<String> = c.fitting.iter().map(wire_name).collect();
                let chosen = f.map(|f| wire_name(&f)).unwrap_or_else(|| "none".into());
                format!("{chosen} (expected {})", expected.join(" or "))
            }
        };
        let credential = match (c.credential_sent, r.credential_before_proof.is_some()) {
            (false, _) => "not sent",
            (true, true) => "sent (declared)",
            (true, false) => "SENT",
        };
        let time = if c.within_deadline {
            format!("{} ms", c.duration_ms)
        } else {
            format!("{} ms, OVER its {} ms deadline", c.duration_ms, c.deadline_ms)
        };
        writeln!(
            out,
            "{:<18} {:<16} {claimed:<12} {class:<60} {credential:<16} {time}",
            wire_name(&c.impostor),
            c.operation.as_str()
        )
        .ok();
    }
    if r.untested {
        let said = r.cases.first().map(|c| c.message.as_str()).unwrap_or_default();
        writeln!(
            out,
            "UNTESTED: the connector asked for no request in any case (it said: {said}); give --config as a real integration would carry it"
        )
        .ok();
    }
    let verdict = if r.passed { "passed" } else { "FAILED" };
    writeln!(
        out,
        "{verdict}: {} false green(s), {} credential(s) sent{}, {} class misfit(s), {} overdue, of {} cases",
        r.false_greens,
        r.credentials_sent,
        if r.credential_before_proof.is_some() && r.credentials_sent > 0 { " (declared)" } else { "" },
        r.misfits,
        r.overdue,
        r.cases.len()
    )
    .ok();
}

fn test(args: TestArgs) -> Result<ExitCode, CliError> {
    let (bytes, source) = read_component(&args.file)?;
    let configuration: serde_json::Value =
        serde_json::from_str(&args.config).map_err(|e| format!("--config is not valid JSON: {e}"))?;
    if !configuration.is_object() {
        return Err("--config must be a JSON object".into());
    }
    let mut given = StaticSecretResolver::default();
    for pair in &args.secrets {
        let (r, value) = pair.split_once('=').ok_or("--secret takes REF=VALUE")?;
        let r = AuthRef::parse(r).map_err(|e| format!("--secret {r}: {e}"))?;
        given.insert(r, SecretValue::new(value.to_string()));
    }
    // The command line runs one connector for its user: secrets given here, else the unscoped
    // STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY> variables.
    let resolver = ChainResolver::new(vec![Arc::new(given), Arc::new(SecretStore::new(None, true))]);
    let mut config = sandbox_config(args.sandbox_config.as_deref())?;
    config.network.allow.extend(args.allow_networks.iter().copied());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    runtime.block_on(async move {
        let sandbox = Sandbox::new(config, Arc::new(resolver))?;
        let connector =
            sandbox.load(&bytes, source).map_err(|source| CliError::Load { file: args.file.clone(), source })?;
        let integration_type = match &args.integration_type {
            Some(t) => t.parse::<IntegrationType>()?,
            None => connector.manifest().connector.types[0],
        };
        if !connector.manifest().serves(integration_type) {
            return Err(format!("the connector does not serve integration type `{integration_type}`").into());
        }
        let cc = ConnectionConfig {
            integration_id: uuid::Uuid::new_v4().to_string(),
            name: args.name.clone(),
            integration_type,
            provider: connector.provider().to_string(),
            base_url: args.base_url.clone(),
            auth_ref: args.auth_ref.clone(),
            secret_namespace: SecretNamespace::Unscoped,
            configuration,
            environment: None,
        };
        let mut stdout = std::io::stdout().lock();
        let ok = if args.health {
            let run = sandbox.check_health(&connector, &cc).await;
            if args.json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&run).expect("serializes")).ok();
            } else {
                writeln!(stdout, "health: {} ({} ms)", wire_name(&run.result.status), run.result.latency_ms).ok();
                print_common(&mut stdout, &run.result.message, run.result.failure, &run.result.steps, &run.record);
            }
            run.result.status != stella_runtime::HealthStatus::Unhealthy
        } else {
            let run = sandbox.test_connection(&connector, &cc).await;
            if args.json {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&run).expect("serializes")).ok();
            } else {
                writeln!(stdout, "test: {}", if run.result.success { "success" } else { "failed" }).ok();
                print_common(&mut stdout, &run.result.message, run.result.failure, &run.result.steps, &run.record);
            }
            run.result.success
        };
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

fn print_common(
    out: &mut impl Write,
    message: &str,
    failure: Option<stella_runtime::FailureClass>,
    steps: &[stella_runtime::CheckStep],
    record: &stella_runtime::record::InvocationRecord,
) {
    writeln!(out, "message: {message}").ok();
    if let Some(f) = failure {
        writeln!(out, "failure: {}", wire_name(&f)).ok();
    }
    for s in steps {
        writeln!(out, "  [{}] {}: {}", if s.passed { "pass" } else { "FAIL" }, s.name, s.message).ok();
    }
    writeln!(out, "invocation: {} ms, memory peak {} bytes", record.duration_ms, record.memory_peak_bytes).ok();
    for c in &record.host_calls {
        let outcome = match (&c.status, &c.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => e.clone(),
            _ => "ok".into(),
        };
        writeln!(out, "  call {} {} {} -> {} ({} ms)", c.interface, c.operation, c.target, outcome, c.duration_ms).ok();
    }
    for d in &record.denials {
        writeln!(out, "  denied {} {}: {}", wire_name(&d.kind), d.target, d.reason).ok();
    }
    for l in &record.logs {
        writeln!(out, "  log {} {}", l.level, l.message).ok();
    }
    if let Some(t) = &record.trap {
        writeln!(out, "  trap: {}", t.message).ok();
    }
}
