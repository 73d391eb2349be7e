//! `stella-integrations`: the Integration Catalog's command line.

use std::process::ExitCode;

use clap::Parser;

use stella_integrations::cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
