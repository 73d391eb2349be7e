//! The commands of an API client: `invocations`, `export`, `import`, each a call to a running
//! service with a bearer token.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::ledger::LedgerEntry;
use crate::query::{InvocationParams, Page};

use super::{CliError, block_on, io};

#[derive(Debug, Args)]
pub(super) struct InvocationsArgs {
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
    /// Only entries kept at this level: `full` or `summary` (healthy checks folded per hour).
    #[arg(long)]
    level: Option<String>,
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
pub(super) struct ServiceArgs {
    /// The service's base URL.
    #[arg(long, env = "STELLA_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A bearer token (prefer the environment variable: arguments show in the process list).
    #[arg(long, env = "STELLA_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// One integration per line (NDJSON) instead of one document.
    #[arg(long)]
    ndjson: bool,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
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

/// Sends one request to the running service; answers its status and body, or why it could not.
pub(super) async fn call_service(
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

pub(super) fn invocations(args: InvocationsArgs) -> Result<ExitCode, CliError> {
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
        level: args.level,
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
pub(super) fn invocation_line(i: &LedgerEntry) -> String {
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(",") };
    let at = i.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    // A summary says how many checks it holds.
    let level = match &i.summary {
        Some(s) => format!("summary×{}", s.checks),
        None => i.level.as_str().to_string(),
    };
    format!(
        "{}  {}  {:<16} {:<15} {:<12} {:<12} denied:{:<14} origins:{}  {}",
        at,
        i.tenant_id,
        i.provider,
        i.operation.as_str(),
        i.outcome,
        level,
        list(&i.denial_kinds),
        list(&i.origins),
        i.invocation_id,
    )
}

pub(super) fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let accept = if args.ndjson { "application/x-ndjson" } else { "application/json" };
    let (_, body) = block_on(call_service(&args.service, |c, base| {
        c.get(format!("{base}/api/v1/integrations/export")).header("accept", accept)
    }))??;
    let mut out = std::io::stdout().lock();
    out.write_all(body.as_bytes()).and_then(|()| out.flush()).map_err(io("cannot write the export"))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn import(args: ImportArgs) -> Result<ExitCode, CliError> {
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
pub(super) fn import_summary(report: &crate::bulk::ImportReport) -> String {
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
