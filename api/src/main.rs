//! `stella-integrations`: the Integration Catalog's command line.

use std::process::ExitCode;

use clap::Parser;

use stella_integrations::cli;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STELLA_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Cli::parse();
    cli::run(args)
}
