//! The sandbox: one wasmtime engine, the linker with the world's imports and capability-free
//! WASI, component loading and validation, and dispatch of `test-connection` / `check-health`
//! with a fresh instance per call.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use url::Url;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use crate::bindings::{IntegrationConnector, IntegrationConnectorPre, types as wit};
use crate::egress::{NetworkPolicy, OriginAllowlist};
use crate::host::{GuestOutput, HostState, InvocationContext, InvocationLimiter, Journal, Output, lock};
use crate::http_client::{EgressClients, HttpTimeouts};
use crate::limits::{LimitKind, Limits};
use crate::manifest::{IntegrationType, Manifest};
use crate::outcome::{FailureClass, HealthOutcome, Invocation, TestOutcome};
use crate::record::{InvocationRecord, Operation, TrapInfo};
use crate::secrets::{AuthRef, SecretNamespace, SecretResolver};

/// How often the epoch advances; also how often a busy guest yields to other tasks.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Extra time the outer timeout allows past the deadline before the guest is dropped.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);
/// The most one call may pass from a guest to the host: an import's arguments (a request with a
/// 1 MiB body and its headers fits), or the guest's result. wasmtime counts this "hostcall fuel"
/// while it copies the data out of the guest, so a list of strings that all point at the same
/// guest bytes cannot make the host allocate more than this either.
pub const MAX_TRANSFER_BYTES: usize = 2 << 20;
/// The most random bytes one `wasi:random` call may ask the host for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The operator's sandbox configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SandboxConfig {
    /// Per-invocation ceilings.
    pub limits: Limits,
    /// Which addresses connectors may reach.
    pub network: NetworkPolicy,
    /// Largest component file accepted, in bytes (default 64 MiB).
    pub max_component_bytes: u64,
    /// How many invocations may run at once (sizes the pooling allocator; default 256).
    pub max_concurrent_invocations: u32,
    /// Where compiled components are cached (none: compile at every start).
    pub cache_dir: Option<PathBuf>,
    /// Connect timeout of outbound requests, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Timeout of one outbound request, in milliseconds (also bounded by the deadline).
    pub request_timeout_ms: u64,
    /// Whether any connector may read secret values, even one whose manifest asks for it.
    pub allow_reveal_secrets: bool,
    /// Whether any connector may sign JWTs, even one whose manifest asks for it.
    pub allow_sign_jwt: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            network: NetworkPolicy::default(),
            max_component_bytes: 64 << 20,
            max_concurrent_invocations: 256,
            cache_dir: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            allow_reveal_secrets: true,
            allow_sign_jwt: true,
        }
    }
}

/// Why a component was refused at load time.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is larger than the operator's cap.
    #[error("the component is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The size found.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Not a component (a core module, a precompiled artifact, or not wasm at all).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The manifest is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// It imports an interface the sandbox does not provide.
    #[error(
        "the component imports `{0}`, which the sandbox does not provide (allowed: WASI 0.2 and stellaops:integrations/*@0.1.x)"
    )]
    ForbiddenImport(String),
    /// It does not implement the world `integration-connector`.
    #[error("the component does not implement the world `stellaops:integrations/integration-connector@0.1.x`: {0}")]
    WrongWorld(String),
    /// Compilation failed.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// Reading the file failed.
    #[error("cannot read the component: {0}")]
    Io(#[source] std::io::Error),
}

/// Why a sandbox could not be built. Each message names what failed and includes its cause (the
/// service prints one line); the cause is also kept as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A limit of the operator's configuration is out of its range.
    #[error("{0}")]
    Limits(String),
    /// wasmtime refused the engine's configuration.
    #[error("cannot create the wasm engine: {0}")]
    Engine(#[source] wasmtime::Error),
    /// The host's imports could not be linked.
    #[error("cannot link {what}: {source}")]
    Link {
        /// What was being linked.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: wasmtime::Error,
    },
    /// The outbound HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The thread that ends invocations at their deadline could not start.
    #[error("cannot start the epoch thread: {0}")]
    EpochThread(#[source] std::io::Error),
    /// The compile cache directory cannot be used.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheDirError),
}

/// Where a connector came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum ConnectorSource {
    /// Embedded in the service binary.
    BuiltIn,
    /// A file given on the command line (or in a plugins directory loaded as it is).
    File(PathBuf),
    /// An approved version from the catalog service's plugin store.
    Stored,
}

/// A loaded, validated and compiled connector, ready to be invoked any number of times.
pub struct LoadedConnector {
    manifest: Manifest,
    sha256: String,
    size: u64,
    imports: Vec<String>,
    source: ConnectorSource,
    compilation: Compilation,
    pre: IntegrationConnectorPre<HostState>,
    /// The manifest's `permissions.hosts`, parsed once here rather than at every invocation.
    declared_origins: Arc<[crate::egress::OriginPattern]>,
}

/// How a connector's machine code was obtained when it was loaded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compilation {
    /// Milliseconds spent compiling it, or reading it from the compile cache.
    pub compile_ms: u64,
    /// Whether it came from the compile cache.
    pub from_cache: bool,
}

impl std::fmt::Debug for LoadedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedConnector")
            .field("provider", &self.manifest.connector.provider)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl LoadedConnector {
    /// The connector's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The provider id.
    pub fn provider(&self) -> &str {
        &self.manifest.connector.provider
    }
    /// Hex sha256 of the component bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The component's imports (interface names).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }
    /// Where it came from.
    pub fn source(&self) -> &ConnectorSource {
        &self.source
    }
    /// How long its compilation took, and whether the cache had it.
    pub fn compilation(&self) -> Compilation {
        self.compilation
    }
}

/// The integration a connector is asked to test, as the host knows it.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The integration's id.
    pub integration_id: String,
    /// Its name.
    pub name: String,
    /// Its type.
    pub integration_type: IntegrationType,
    /// Its provider id.
    pub provider: String,
    /// Its base URL.
    pub base_url: Option<String>,
    /// Its AuthRef: the only one the connector may resolve.
    pub auth_ref: Option<String>,
    /// The namespace its AuthRef is resolved in, and no other (the service gives each tenant its
    /// own; see [`SecretNamespace`]).
    pub secret_namespace: SecretNamespace,
    /// Its configuration object. The key `caCertificates` (PEM) adds trusted CAs for this
    /// integration's requests.
    pub configuration: serde_json::Value,
    /// Its environment label.
    pub environment: Option<String>,
}

/// Where the service looks for connector files unless configured otherwise.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";

/// The configuration key holding an integration's extra CA certificates (PEM).
pub const CA_CERTIFICATES_KEY: &str = "caCertificates";

/// Ticks the engine's epoch while the sandbox lives.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The connector sandbox. Create one per process; it is cheap to share (`Arc`).
pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    egress: Arc<EgressClients>,
    resolver: Arc<dyn SecretResolver>,
    config: SandboxConfig,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("config", &self.config).finish_non_exhaustive()
    }
}

enum GuestAnswer {
    Test(wit::TestResult),
    Health(wit::HealthResult),
}

/// The outcome of running the guest, before it becomes a result.
enum RunEnd {
    Answered(GuestAnswer),
    Trapped(FailureClass, TrapInfo),
}

impl Sandbox {
    /// Builds the engine, the linker and the outbound client.
    pub fn new(config: SandboxConfig, resolver: Arc<dyn SecretResolver>) -> Result<Self, SetupError> {
        config.limits.validate().map_err(SetupError::Limits)?;
        let concurrency = config.max_concurrent_invocations.max(1);
        let instances = u32::try_from(config.limits.instances).unwrap_or(u32::MAX);

        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(concurrency)
            .total_core_instances(concurrency.saturating_mul(16))
            .total_memories(concurrency.saturating_mul(4))
            .total_tables(concurrency.saturating_mul(8))
            .total_stacks(concurrency)
            .max_core_instances_per_component(instances)
            .max_memories_per_component(instances.min(16))
            .max_tables_per_component(instances.min(32))
            .max_memory_size(usize::try_from(config.limits.memory_bytes).unwrap_or(usize::MAX))
            .table_elements(usize::try_from(config.limits.table_elements).unwrap_or(usize::MAX))
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            // Reset small memories and tables with memset instead of madvise: a fresh instance per
            // call must not cost page faults and TLB shootdowns. Everything is still cleared.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(256 << 10)
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), only the pages the guest wrote are
            // reset, instead of the whole kept-resident megabyte (a memset, and a copy of the
            // data segment's image) after every call; elsewhere the memset stays.
            .pagemap_scan(Enabled::Auto)
            .decommit_batch_size(16);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .max_wasm_stack(512 << 10)
            .async_stack_size(2 << 20);
        let engine = Engine::new(&wasm).map_err(SetupError::Engine)?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|source| SetupError::Link { what: "WASI", source })?;
        IntegrationConnector::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|source| SetupError::Link { what: "the host imports", source })?;
        // Socket creation is replaced by a refusal that opens nothing (see `host/sockets.rs`).
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .and_then(|()| {
            wasmtime_wasi::p2::bindings::sockets::udp_create_socket::add_to_linker::<HostState, HasSelf<HostState>>(
                &mut linker,
                |s| s,
            )
        })
        .map_err(|source| SetupError::Link { what: "the socket refusals", source })?;
        linker.allow_shadowing(false);

        let timeouts = HttpTimeouts {
            connect: Duration::from_millis(config.connect_timeout_ms),
            request: Duration::from_millis(config.request_timeout_ms),
        };
        let egress = Arc::new(EgressClients::new(config.network.clone(), timeouts).map_err(SetupError::HttpClient)?);

        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.weak();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("stella-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match engine.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(SetupError::EpochThread)?;
        }

        if let Some(dir) = &config.cache_dir {
            crate::cache::prepare_dir(dir)?;
        }

        Ok(Self { engine, linker, egress, resolver, config, _ticker: EpochTicker { stop } })
    }

    /// The configuration the sandbox runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Validates, compiles (or loads from the cache) and prepares a component.
    pub fn load(&self, wasm: &[u8], source: ConnectorSource) -> Result<LoadedConnector, LoadError> {
        let size = wasm.len() as u64;
        if size > self.config.max_component_bytes {
            return Err(LoadError::TooLarge { size, limit: self.config.max_component_bytes });
        }
        // Precompiled artifacts are never accepted from outside: deserializing one runs
        // whatever machine code it holds.
        if Engine::detect_precompiled(wasm).is_some() {
            return Err(LoadError::NotAComponent(
                "precompiled artifacts are not accepted; ship the .wasm component".into(),
            ));
        }
        if !wasmparser::Parser::is_component(wasm) {
            return Err(LoadError::NotAComponent(if wasmparser::Parser::is_core_wasm(wasm) {
                "this is a core module; build a component (e.g. for the wasm32-wasip2 target)".into()
            } else {
                "the file is not WebAssembly".into()
            }));
        }
        // Everything that can be checked without compiling is checked first: compiling a large
        // component is the expensive step (seconds and hundreds of MiB for 12 MB). The types of
        // the imports and exports are checked by linking, after compilation.
        let crate::inspect::ComponentDescription { sha256, imports, manifest, function_exports, .. } =
            crate::inspect::describe(wasm)?;
        if let Some(bad) = imports.iter().find(|i| !import_allowed(i)) {
            return Err(LoadError::ForbiddenImport(bad.clone()));
        }
        let missing: Vec<&str> =
            WORLD_EXPORTS.iter().copied().filter(|e| !function_exports.iter().any(|f| f == e)).collect();
        if !missing.is_empty() {
            return Err(LoadError::WrongWorld(format!(
                "no exported function `{}` (its function exports: {})",
                missing.join("`, `"),
                if function_exports.is_empty() { "none".to_string() } else { function_exports.join(", ") }
            )));
        }
        let compile_started = Instant::now();
        let (component, from_cache) =
            crate::cache::compile(&self.engine, wasm, &sha256, self.config.cache_dir.as_deref())
                .map_err(LoadError::Compile)?;
        let compilation = Compilation {
            compile_ms: u64::try_from(compile_started.elapsed().as_millis()).unwrap_or(u64::MAX),
            from_cache,
        };
        let instance_pre =
            self.linker.instantiate_pre(&component).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pre = IntegrationConnectorPre::new(instance_pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        // The manifest was validated, its origins with it; this cannot fail but is not assumed to.
        let declared_origins = OriginAllowlist::parse_declared(&manifest.permissions.hosts).map_err(|e| {
            LoadError::Manifest(crate::manifest::ManifestError::Invalid(format!("permissions.hosts: {e}")))
        })?;
        Ok(LoadedConnector { manifest, sha256, size, imports, source, compilation, pre, declared_origins })
    }

    /// Reads and loads a component file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<LoadedConnector, LoadError> {
        let meta = std::fs::metadata(path).map_err(LoadError::Io)?;
        if meta.len() > self.config.max_component_bytes {
            return Err(LoadError::TooLarge { size: meta.len(), limit: self.config.max_component_bytes });
        }
        let bytes = std::fs::read(path).map_err(LoadError::Io)?;
        self.load(&bytes, ConnectorSource::File(path.to_path_buf()))
    }

    /// Runs `test-connection`. Never fails: a trap, a limit or a bad configuration is a failed
    /// result with its failure class.
    pub async fn test_connection(
        &self,
        connector: &LoadedConnector,
        config: &ConnectionConfig,
    ) -> Invocation<TestOutcome> {
        let (end, record, redactor) = self.run(connector, config, Operation::TestConnection).await;
        let result = match end {
            RunEnd::Answered(GuestAnswer::Test(r)) => TestOutcome::from_wit(r, &redactor),
            RunEnd::Answered(GuestAnswer::Health(_)) => {
                unreachable!("test-connection answers with a test result")
            }
            RunEnd::Trapped(class, _) => TestOutcome::sandbox_failure(class, trap_message(&record)),
        };
        Invocation { result, record }
    }

    /// Runs `check-health`; the latency is the invocation's wall-clock time.
    pub async fn check_health(
        &self,
        connector: &LoadedConnector,
        config: &ConnectionConfig,
    ) -> Invocation<HealthOutcome> {
        let (end, record, redactor) = self.run(connector, config, Operation::CheckHealth).await;
        let latency = record.duration_ms;
        let result = match end {
            RunEnd::Answered(GuestAnswer::Health(r)) => HealthOutcome::from_wit(r, &redactor, latency),
            RunEnd::Answered(GuestAnswer::Test(_)) => {
                unreachable!("check-health answers with a health result")
            }
            RunEnd::Trapped(class, _) => HealthOutcome::sandbox_failure(class, trap_message(&record), latency),
        };
        Invocation { result, record }
    }

    async fn run(
        &self,
        connector: &LoadedConnector,
        config: &ConnectionConfig,
        op: Operation,
    ) -> (RunEnd, InvocationRecord, crate::secrets::Redactor) {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let limits = self.config.limits.effective(&connector.manifest.limits);
        let journal = Arc::new(Mutex::new(Journal::new(&limits)));

        let end = match self.prepare(connector, config, &limits, started, &journal) {
            Err(message) => RunEnd::Trapped(FailureClass::Misconfigured, TrapInfo { limit: None, message }),
            Ok(state) => {
                let outer = limits.deadline() + DEADLINE_GRACE;
                match tokio::time::timeout(outer, self.call_guest(connector, state, op)).await {
                    Ok(end) => end,
                    Err(_) => {
                        lock(&journal).hit(LimitKind::Deadline);
                        RunEnd::Trapped(
                            FailureClass::Timeout,
                            TrapInfo {
                                limit: Some(LimitKind::Deadline),
                                message: "it was blocked in a host call".into(),
                            },
                        )
                    }
                }
            }
        };

        let j = std::mem::take(&mut *lock(&journal));
        let end = match end {
            // A limit explains the trap better than the trap itself: the one the host stopped the
            // guest with, else the trap's own, else one the guest was refused before it trapped.
            RunEnd::Trapped(class, trap) => match j.stopped_by.or(trap.limit).or(j.limit_hit) {
                Some(limit) => RunEnd::Trapped(
                    limit_class(limit),
                    TrapInfo { limit: Some(limit), message: limit_message(limit, &limits, &trap.message) },
                ),
                None => RunEnd::Trapped(class, trap),
            },
            answered => answered,
        };
        let trap = match &end {
            RunEnd::Trapped(_, t) => Some(TrapInfo { limit: t.limit, message: j.redactor.redact(&t.message) }),
            RunEnd::Answered(_) => None,
        };
        if j.denials_not_logged() > 0 {
            tracing::info!(
                provider = connector.provider(),
                more = j.denials_not_logged(),
                "connector request denials not logged (each is in the invocation record, or counted there)"
            );
        }
        let text = |bytes: &[u8]| j.redactor.redact(&String::from_utf8_lossy(bytes));
        let entry_bytes = j.entry_bytes();
        let mut record = InvocationRecord {
            invocation_id: invocation_id(),
            operation: op,
            provider: connector.provider().into(),
            connector_version: connector.manifest.connector.version.clone(),
            sha256: connector.sha256.clone(),
            started_at: time::OffsetDateTime::from(started_at),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            memory_peak_bytes: j.memory_peak,
            limits: (&limits).into(),
            host_calls: j.host_calls,
            denials: j.denials,
            logs: j.logs,
            stdout: text(&j.stdout),
            stderr: text(&j.stderr),
            trap,
            dropped: j.dropped,
            origins: j.origins.into_iter().collect(),
            more_origins: j.more_origins,
            secret_in_request: j.secret_in_request,
        };
        record.fit_measured(limits.max_record_bytes, entry_bytes);
        (end, record, j.redactor)
    }

    fn prepare(
        &self,
        connector: &LoadedConnector,
        config: &ConnectionConfig,
        limits: &Limits,
        started: Instant,
        journal: &Arc<Mutex<Journal>>,
    ) -> Result<(HostState, wit::ConnectionConfig), String> {
        let base_url = match &config.base_url {
            None => None,
            Some(u) => Some(Url::parse(u).map_err(|e| format!("the base URL `{u}` is not valid: {e}"))?),
        };
        let bound_auth_ref = match &config.auth_ref {
            None => None,
            Some(r) => Some(AuthRef::parse(r).map_err(|e| format!("the AuthRef is not valid: {e}"))?),
        };
        let origins = OriginAllowlist::new(base_url.as_ref(), connector.declared_origins.clone())?;
        let ca = match config.configuration.get(CA_CERTIFICATES_KEY) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(pem)) => Some(pem.as_str()),
            Some(_) => {
                return Err(format!("configuration.{CA_CERTIFICATES_KEY} must be a PEM string"));
            }
        };
        let client = self.egress.client(ca)?;

        // No capability: sockets cannot even be created (see `host/sockets.rs`; these settings
        // close the door again should that ever be bypassed), names are not resolved, and
        // stdout and stderr go to the journal under the log budget.
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::new(journal.clone(), Output::Stdout))
            .stderr(GuestOutput::new(journal.clone(), Output::Stderr))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles as usize);

        let wit_config = wit::ConnectionConfig {
            integration_id: config.integration_id.clone(),
            name: config.name.clone(),
            integration_type: match config.integration_type {
                IntegrationType::Registry => wit::IntegrationType::Registry,
                IntegrationType::Scm => wit::IntegrationType::Scm,
                IntegrationType::Ci => wit::IntegrationType::Ci,
                IntegrationType::Host => wit::IntegrationType::Host,
                IntegrationType::Feed => wit::IntegrationType::Feed,
                IntegrationType::Artifact => wit::IntegrationType::Artifact,
            },
            provider: config.provider.clone(),
            base_url: config.base_url.clone(),
            auth_ref: config.auth_ref.clone(),
            configuration: config.configuration.to_string(),
            environment: config.environment.clone(),
        };
        let state = HostState {
            wasi,
            table,
            limiter: InvocationLimiter {
                memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                table_elements: usize::try_from(limits.table_elements).unwrap_or(usize::MAX),
                instances: usize::try_from(limits.instances).unwrap_or(usize::MAX),
                journal: journal.clone(),
            },
            cx: InvocationContext {
                started,
                deadline: started + limits.deadline(),
                limits: limits.clone(),
                bound_auth_ref,
                secret_namespace: config.secret_namespace.clone(),
                origins,
                may_reveal_secrets: connector.manifest.permissions.reveal_secrets && self.config.allow_reveal_secrets,
                may_sign_jwt: connector.manifest.permissions.sign_jwt && self.config.allow_sign_jwt,
                egress: self.egress.clone(),
                client,
                resolver: self.resolver.clone(),
                requests_made: 0,
                journal: journal.clone(),
            },
        };
        Ok((state, wit_config))
    }

    async fn call_guest(
        &self,
        connector: &LoadedConnector,
        (state, wit_config): (HostState, wit::ConnectionConfig),
        op: Operation,
    ) -> RunEnd {
        let deadline = state.cx.deadline;
        let max_handles = state.cx.limits.max_handles as usize;
        let journal = state.cx.journal.clone();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(MAX_TRANSFER_BYTES);
        store.set_max_component_handles(max_handles);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |store| {
            let mut j = lock(&store.data().cx.journal);
            // A limit met where the host could not trap (a refused socket) stops a guest that
            // makes no further call.
            j.check()?;
            if Instant::now() >= deadline {
                j.hit(LimitKind::Deadline);
                return Err(wasmtime::Error::new(Trap::Interrupt));
            }
            // Yield at every tick so that a busy guest never starves other invocations.
            Ok(UpdateDeadline::Yield(1))
        });

        let result = async {
            let instance = connector.pre.instantiate_async(&mut store).await?;
            match op {
                Operation::TestConnection => {
                    instance.call_test_connection(&mut store, &wit_config).await.map(GuestAnswer::Test)
                }
                Operation::CheckHealth => {
                    instance.call_check_health(&mut store, &wit_config).await.map(GuestAnswer::Health)
                }
            }
        }
        .await;
        match result {
            Ok(answer) => RunEnd::Answered(answer),
            Err(e) => {
                let j = lock(&journal);
                let limit = j.stopped_by.or_else(|| wasmtime_limit(&e)).or(j.limit_hit);
                drop(j);
                // The trap itself, without the wasm backtrace: the audit wants what happened.
                tracing::debug!(error = format!("{e:?}"), "connector trapped");
                // A trap says "wasm trap: ..."; any other error's own message is its root cause (the
                // outer ones only say where in the guest it happened).
                let root = e.chain().last();
                let detail = match e.downcast_ref::<Trap>() {
                    Some(trap) => trap.to_string(),
                    // A limit the host enforced: the limit's own message says it all.
                    None if root.is_some_and(|r| r.is::<crate::host::LimitExceeded>()) => String::new(),
                    None => root.map_or_else(|| e.to_string(), |root| root.to_string()),
                };
                match limit {
                    // `run` names the limit.
                    Some(limit) => {
                        RunEnd::Trapped(limit_class(limit), TrapInfo { limit: Some(limit), message: detail })
                    }
                    None => RunEnd::Trapped(
                        FailureClass::Internal,
                        TrapInfo { limit: None, message: format!("the connector failed: {detail}") },
                    ),
                }
            }
        }
    }
}

/// A random (version 4) UUID for the record, drawn from the thread's CSPRNG (ChaCha, reseeded from
/// the OS) rather than from a `getrandom` system call per invocation.
fn invocation_id() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The (redacted) message of the trap the record holds.
fn trap_message(record: &InvocationRecord) -> String {
    record.trap.as_ref().map(|t| t.message.clone()).unwrap_or_default()
}

/// The limit a trap of wasmtime's own names, if any: the stack, the epoch deadline, and the
/// store's limits on data copied out of a guest and on handles (whose errors wasmtime gives only
/// as text; a test pins each of them).
fn wasmtime_limit(e: &wasmtime::Error) -> Option<LimitKind> {
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => return Some(LimitKind::Stack),
        Some(Trap::Interrupt) => return Some(LimitKind::Deadline),
        _ => {}
    }
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    }) {
        return Some(LimitKind::Handles);
    }
    let text = format!("{e:#}");
    if text.contains("fuel allocated for hostcalls has been exhausted")
        || (text.contains("requested len") && text.contains("exceeds limit"))
    {
        Some(LimitKind::TransferBytes)
    } else if text.contains("store handle limit exceeded") {
        Some(LimitKind::Handles)
    } else {
        None
    }
}

fn limit_class(limit: LimitKind) -> FailureClass {
    match limit {
        LimitKind::Deadline => FailureClass::Timeout,
        _ => FailureClass::Internal,
    }
}

/// What stopped the guest, for a human, with the trap's own text after it.
fn limit_message(limit: LimitKind, limits: &Limits, detail: &str) -> String {
    let what = match limit {
        LimitKind::Deadline => {
            return format!("the connector did not finish within its deadline of {} ms", limits.deadline_ms);
        }
        LimitKind::Memory => format!("the connector exceeded its memory limit of {} bytes", limits.memory_bytes),
        LimitKind::TableElements => {
            format!("the connector exceeded its table limit of {} elements", limits.table_elements)
        }
        LimitKind::Instances => "the connector exceeded its instance limit".to_string(),
        LimitKind::LogBytes => format!("the connector exceeded its log budget of {} bytes", limits.max_log_bytes),
        LimitKind::Stack => "the connector overflowed its stack".to_string(),
        LimitKind::HostCalls => {
            format!("the connector exceeded its budget of {} host calls", limits.max_host_calls)
        }
        LimitKind::Handles => format!("the connector exceeded its limit of {} live handles", limits.max_handles),
        LimitKind::RecordBytes => {
            format!("the connector exceeded its invocation record's budget of {} bytes", limits.max_record_bytes)
        }
        LimitKind::TransferBytes => {
            format!("the connector passed more than {MAX_TRANSFER_BYTES} bytes to the host in one call")
        }
        LimitKind::SecretValues => {
            format!(
                "the connector made the host hold more than {} secret values, or more than {} KiB of their forms",
                crate::host::MAX_SECRET_VALUES,
                crate::secrets::MAX_FORM_BYTES / 1024
            )
        }
    };
    if detail.is_empty() { what } else { format!("{what} ({detail})") }
}

/// The functions the world `integration-connector` exports.
const WORLD_EXPORTS: [&str; 2] = ["check-health", "test-connection"];

/// WASI 0.2 interfaces and this package's 0.1.x interfaces; nothing else may be imported. Any
/// 0.1.x release links (wasmtime resolves semver-compatible names); a function the host does not
/// have fails at load time with `WrongWorld`.
fn import_allowed(name: &str) -> bool {
    const WASI: &[&str] =
        &["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/"];
    const OURS: &[&str] = &["types", "secrets", "http", "crypto", "log"];
    if let Some(rest) = name.strip_prefix("stellaops:integrations/") {
        return rest.split_once('@').is_some_and(|(iface, version)| {
            OURS.contains(&iface)
                && version.strip_prefix("0.1.").is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
    }
    WASI.iter().any(|p| name.starts_with(p))
        && name
            .split_once('@')
            .is_some_and(|(_, v)| v.starts_with("0.2.") && v[4..].bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_2_and_our_interfaces_are_allowed() {
        for ok in [
            "wasi:cli/environment@0.2.0",
            "wasi:io/streams@0.2.6",
            "wasi:sockets/tcp@0.2.3",
            "wasi:filesystem/preopens@0.2.0",
            "stellaops:integrations/http@0.1.0",
            "stellaops:integrations/types@0.1.0",
            "stellaops:integrations/http@0.1.1",
            "stellaops:integrations/log@0.1.12",
        ] {
            assert!(import_allowed(ok), "{ok}");
        }
        for bad in [
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:cli/environment@0.3.0",
            "wasi:io/streams",
            "wasi:keyvalue/store@0.2.0-draft",
            "stellaops:integrations/http@0.2.0",
            "stellaops:integrations/admin@0.1.0",
            "stellaops:integrations/http@0.1",
            "stellaops:integrations/http@0.1.1-rc",
            "stellaops:integrations/http@0.10.0",
            "evil:backdoor/exec@1.0.0",
            "wasi:cli/environment@0.2.0-rc",
        ] {
            assert!(!import_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn invocation_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<uuid::Uuid> = (0..1000).map(|_| invocation_id()).collect();
        assert_eq!(ids.len(), 1000);
        for parsed in ids.iter().take(10) {
            let id = parsed;
            assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }
}
