//! The operator's commands: `serve`, `migrate`, `audit verify`, `token`, `console-link`,
//! `secret-location`. They run beside the service, with its configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use stella_runtime::secrets::{AuthRef, SecretNamespace};

use crate::auth;
use crate::config::Config;

use super::{CliError, block_on, io};

#[derive(Debug, Args)]
pub(super) struct SecretLocationArgs {
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
pub(super) struct ConfigArgs {
    /// The configuration file (TOML); environment variables override it.
    #[arg(long, short = 'c', env = "STELLA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArgs {
    pub(super) fn load(&self) -> Result<Config, String> {
        Config::load(self.config.as_deref(), |name| std::env::var(name).ok())
    }
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    pub(super) config: ConfigArgs,
    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Debug, Args)]
pub(super) struct TokenArgs {
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
pub(super) struct ConsoleLinkArgs {
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
pub(super) struct DatabaseArgs {
    /// `sqlite://<path>` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = crate::store::DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Re-compute every tenant's hash chain; exit 1 if any chain is broken.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn token(args: TokenArgs) -> Result<ExitCode, CliError> {
    let config = args.config.load()?;
    let request = local_token_request(&config, args.tenant, &args.scopes, args.subject, &args.ttl)?;
    let key = auth::local_key(&config.auth, &config.storage.data_dir)?;
    println!("{}", auth::issue_local_token(&config.auth, &key, &request));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn secret_location(args: SecretLocationArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn console_link(args: ConsoleLinkArgs) -> Result<ExitCode, CliError> {
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
pub(super) fn local_token_request(
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

pub(super) fn migrate(database: &DatabaseArgs) -> Result<ExitCode, CliError> {
    block_on(crate::store::open(&database.database_url))??;
    println!("the database at {} is migrated", crate::config::redact_url(&database.database_url));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn audit_verify(database: &DatabaseArgs, json: bool) -> Result<ExitCode, CliError> {
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
