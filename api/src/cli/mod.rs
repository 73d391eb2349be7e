//! The commands of `stella-integrations`.
//!
//! Exit codes: 0 success, 1 a connector test or health check failed (or `connector conformance`
//! found a false green, a credential sent or nothing tested, or `audit verify` found a break, or an
//! import item was refused), 2 a usage, load or connection error.
//!
//! - `operators.rs`: run and look after the service (`serve`, `migrate`, `audit verify`, `token`,
//!   `console-link`, `secret-location`);
//! - `clients.rs`: call a running service's API (`invocations`, `export`, `import`);
//! - `authors.rs`: build, check, sign and ship a connector (`connector …`);
//! - this file: the command line itself, its errors, and which command runs.

mod authors;
mod clients;
mod operators;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use authors::ConnectorCommand;
use clients::{ExportArgs, ImportArgs, InvocationsArgs};
use operators::{AuditCommand, ConsoleLinkArgs, DatabaseArgs, SecretLocationArgs, ServeArgs, TokenArgs};

use crate::config::LogFormat;

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

/// Runs a command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(&cli.command);
    let result = match cli.command {
        Command::Serve(args) => operators::serve(args),
        Command::Token(args) => operators::token(args),
        Command::ConsoleLink(args) => operators::console_link(args),
        Command::Connector(ConnectorCommand::Inspect { file, json }) => authors::inspect(&file, json),
        Command::Connector(ConnectorCommand::Package { input, manifest, output }) => {
            authors::package(&input, &manifest, &output)
        }
        Command::Connector(ConnectorCommand::Test(args)) => authors::test(args),
        Command::Connector(ConnectorCommand::Conformance(args)) => authors::conformance(args),
        Command::Connector(ConnectorCommand::Verify { file, key, signature }) => {
            authors::verify(&file, &key, signature)
        }
        Command::Connector(ConnectorCommand::Sign { file, key, output }) => authors::sign(&file, &key, output),
        Command::Connector(ConnectorCommand::Submit(args)) => authors::submit(args),
        Command::Connector(ConnectorCommand::Push(args)) => authors::push(args),
        Command::Connector(ConnectorCommand::Pull(args)) => authors::pull(args),
        Command::Migrate(database) => operators::migrate(&database),
        Command::Audit(AuditCommand::Verify { database, json }) => operators::audit_verify(&database, json),
        Command::Export(args) => clients::export(args),
        Command::Import(args) => clients::import(args),
        Command::Invocations(args) => clients::invocations(args),
        Command::SecretLocation(args) => operators::secret_location(args),
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

fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    Ok(runtime.block_on(work))
}
