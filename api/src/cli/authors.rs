//! The commands of a connector's author: `connector inspect`, `package`, `test`, `conformance`,
//! `sign`, `verify`, `push`, `pull`, `submit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use ipnet::IpNet;
use stella_runtime::inspect::describe;
use stella_runtime::manifest::{Manifest, embed_manifest};
use stella_runtime::secrets::{
    AuthRef, ChainResolver, SecretNamespace, SecretStore, SecretValue, StaticSecretResolver,
};
use stella_runtime::{ConnectionConfig, ConnectorSource, IntegrationType, Sandbox, SandboxConfig};

use crate::domain::wire_name;

use super::clients::{ServiceArgs, call_service};
use super::{CliError, block_on, io};

#[derive(Debug, Subcommand)]
pub(super) enum ConnectorCommand {
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
pub(super) struct RegistryArgs {
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
pub(super) struct PushArgs {
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
pub(super) struct PullArgs {
    /// What to pull: REGISTRY/REPOSITORY[:TAG|@DIGEST].
    reference: String,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub(super) struct SubmitArgs {
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
pub(super) struct TestArgs {
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
pub(super) struct ConformanceArgs {
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

pub(super) fn read_component(file: &str) -> Result<(Vec<u8>, ConnectorSource), CliError> {
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

pub(super) fn verify(file: &Path, key: &Path, signature: Option<PathBuf>) -> Result<ExitCode, CliError> {
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

pub(super) fn sign(file: &Path, key: &Path, output: Option<PathBuf>) -> Result<ExitCode, CliError> {
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
pub(super) fn signature_files(file: &Path, given: &[PathBuf]) -> Result<Vec<String>, CliError> {
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

pub(super) fn registry_access(args: &RegistryArgs) -> Result<crate::plugins::oci::RegistryAccess, CliError> {
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

pub(super) fn push(args: PushArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn pull(args: PullArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn submit(args: SubmitArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn inspect(file: &str, json: bool) -> Result<ExitCode, CliError> {
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

pub(super) fn package(input: &Path, manifest_path: &Path, output: &Path) -> Result<ExitCode, CliError> {
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
pub(super) fn sandbox_config(path: Option<&Path>) -> Result<SandboxConfig, CliError> {
    let Some(path) = path else { return Ok(SandboxConfig::default()) };
    let text = std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?;
    Ok(toml::from_str::<SandboxConfig>(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?)
}

pub(super) fn conformance(args: ConformanceArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn print_conformance(out: &mut impl Write, r: &stella_runtime::conformance::ConformanceReport) {
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

pub(super) fn test(args: TestArgs) -> Result<ExitCode, CliError> {
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

pub(super) fn print_common(
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
