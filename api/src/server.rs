//! Wiring: from a [`Config`] to a running service (store, sandbox, connectors, token verifier,
//! router, event relay, health scheduler), and its graceful shutdown.

use std::sync::Arc;

use stella_runtime::secrets::{AuthRef, SecretLocations, SecretNamespace, SecretResolver, SecretStore};
use stella_runtime::{ConnectorCatalog, Sandbox, SandboxConfig};

use crate::auth::{Verifier, local_key};
use crate::config::Config;
use crate::console::Console;
use crate::health::{HealthPolicy, Scheduler, SchedulerConfig};
use crate::http::AppState;
use crate::plugins::AdmissionPolicy;
use crate::service::{Catalog, Retention};
use crate::store;

/// How often a replica looks for a change of the active connectors made by another.
const PLUGIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// What one replica serves: the API's state and the console.
#[derive(Debug)]
pub struct Served {
    /// The API's state (the catalog its handlers and the console's share).
    pub api: AppState,
    /// The console.
    pub console: Console,
}

/// The router of everything a replica serves: the API, with the console's pages beside it.
pub fn router(served: Served) -> axum::Router {
    let pages = crate::console::routes(served.console, served.api.clone());
    crate::http::router(served.api, pages)
}

/// Builds the service's state: opens (and migrates) the database, loads the built-in connectors
/// and the plugins directory, and sets up token verification. Connectors run on
/// `invocation_runtime` when one is given, else on the caller's runtime.
pub async fn build_state(
    config: &Config,
    invocation_runtime: Option<tokio::runtime::Handle>,
) -> Result<Served, String> {
    let database_url = config.storage.database_url();
    let store = store::open(&database_url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", crate::config::redact_url(&database_url)))?;

    let secrets = config.secrets.store();
    check_platform_secrets(config, &secrets)?;
    let sandbox_config =
        SandboxConfig { cache_dir: config.storage.compile_cache_dir(&config.sandbox), ..config.sandbox.clone() };
    let sandbox = Sandbox::new(sandbox_config, Arc::new(secrets.clone())).map_err(|e| e.to_string())?;
    // Logs each built-in it loads (with its compile time).
    let builtins = ConnectorCatalog::load(&sandbox, stella_builtin_connectors::BUILTINS, None);
    let admission = AdmissionPolicy::from_config(&config.plugins, &secrets)?;
    tracing::info!(
        trusted_keys = ?admission.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        require_signature = admission.require_signature,
        unsigned_exceptions = ?admission.unsigned_exceptions,
        auto_approve = ?admission.auto_approve,
        registries = ?admission.registries.keys().collect::<Vec<_>>(),
        "connector admission policy"
    );

    let key = if config.auth.local_tokens_enabled() {
        Some(local_key(&config.auth, &config.storage.data_dir)?)
    } else {
        None
    };
    let verifier = Verifier::new(&config.auth, key).await?;
    let mut catalog = Catalog::new(store, Arc::new(sandbox), Arc::new(builtins))
        .with_health_policy(HealthPolicy::from_settings(&config.health))
        .with_ledger_policy(config.ledger.clone())
        .with_admission_policy(admission)
        .with_secrets(config.secrets.clone());
    warn_of_secret_layout(config, &secrets, &catalog).await;
    if let Some(runtime) = invocation_runtime {
        catalog = catalog.with_invocation_runtime(runtime);
    }
    // The air-gapped way in: each file is submitted under the same policy as an upload (and
    // answered from the store when it was submitted before). Then the store's active set.
    if let Some(dir) = config.storage.plugins_dir.as_deref().filter(|d| d.is_dir()) {
        catalog.submit_directory(dir).await;
    }
    catalog.refresh_connectors().await.map_err(|e| format!("cannot load the active connectors: {e}"))?;
    let console = Console::new(config.console.clone(), &config.auth.tenant_claim);
    Ok(Served { api: AppState::new(catalog, verifier, config.server.max_body_bytes), console })
}

/// Where a secret is read from, for a message.
fn places(locations: Result<SecretLocations, String>) -> String {
    locations.map_or_else(|_| "nowhere".into(), |l| l.of_value())
}

/// The platform's own secrets (registry passwords) live apart from every tenant's. One still in
/// the layout from before tenants is refused while a tenant is mapped to that layout (it could
/// resolve it), and otherwise named so that it is moved.
fn check_platform_secrets(config: &crate::config::Config, secrets: &SecretStore) -> Result<(), String> {
    for registry in &config.plugins.registries {
        let Some(reference) = &registry.password_ref else { continue };
        let Ok(auth_ref) = AuthRef::parse(reference) else { continue };
        let old = secrets.locations(&SecretNamespace::Unscoped, &auth_ref);
        if secrets.resolve(&SecretNamespace::Unscoped, &auth_ref).is_err() {
            continue;
        }
        let new = places(secrets.platform_locations(&auth_ref));
        if let Some(tenant) = &config.secrets.legacy_tenant {
            return Err(format!(
                "plugins.registries `{}`: the platform secret {reference} is at {}, where tenant `{tenant}` \
                 (secrets.legacy-tenant) can resolve it: move it to {new} (the platform's own secrets, which no \
                 integration resolves)",
                registry.host,
                places(old)
            ));
        }
        tracing::warn!(
            registry = %registry.host,
            password_ref = %reference,
            found_at = %places(old),
            read_from = %new,
            "a registry password is still where the platform read it before tenants; it is read from the \
             platform's own secrets now: move it there and remove the old one"
        );
    }
    Ok(())
}

/// Warns of secret layouts that would not do what an operator meant: secrets that no tenant reads
/// (the layout from before tenants, with no tenant mapped to it), a tenant mapped to that layout
/// while other tenants share the service, and shared service without required bindings.
async fn warn_of_secret_layout(config: &crate::config::Config, secrets: &SecretStore, catalog: &Catalog) {
    let unscoped = secrets.unscoped_secrets(5);
    let tenants = catalog.tenants(6).await.unwrap_or_default();
    match &config.secrets.legacy_tenant {
        None if !unscoped.is_empty() => tracing::warn!(
            found = ?unscoped,
            "secrets are laid out as before tenants (STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY>, \
             <dir>/<scope>/<provider>/<key>), which no tenant reads: a single-tenant installation sets \
             secrets.legacy-tenant = \"<its tenant>\"; otherwise move each under its tenant (README: Secrets)"
        ),
        Some(legacy) if tenants.iter().any(|t| t != legacy) => tracing::warn!(
            legacy_tenant = %legacy,
            tenants = ?tenants,
            "secrets.legacy-tenant maps one tenant to the secret layout from before tenants, and other tenants \
             have integrations: give every tenant its own namespace and remove secrets.legacy-tenant (README: \
             Secrets)"
        ),
        _ => {}
    }
    if !config.secrets.require_binding && tenants.len() > 1 {
        tracing::warn!(
            tenants = ?tenants,
            "several tenants share this service and secrets.require-binding is off: a secret without a binding \
             may be sent to any origin its integration's connector may reach (README: Secrets)"
        );
    }
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
pub async fn serve(config: Config) -> Result<(), String> {
    crate::http::switches::announce()?;
    // Background work runs on a thread of its own, at a lower CPU priority than the API's threads:
    // health checks (at most one core of this process, however many are due; one thread sweeps
    // thousands of checks a second, `make bench`) and every connector invocation, so that a sweep,
    // or a busy or hostile connector tested through the API, does not hold up requests.
    let background = Background(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("background")
            .on_thread_start(lower_this_thread_priority)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the background threads: {e}"))?,
    ));
    let served = build_state(&config, Some(background.handle().clone())).await?;
    let state = served.api.clone();
    let relay = config
        .events
        .nats_url
        .as_ref()
        .map(|_| tokio::spawn(crate::relay::run(config.events.clone(), state.catalog.clone())));
    // Every replica converges on the store's active connectors within about this long.
    let watcher = tokio::spawn(state.catalog.clone().watch_plugins(PLUGIN_REFRESH));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // The background work's own pool, opened on its runtime: its connections' I/O is driven by
    // the background thread, and the API's pool is not shared with (or slowed by) a sweep or a
    // prune.
    let database_url = config.storage.database_url();
    let store = background
        .handle()
        .spawn(async move { store::open(&database_url).await })
        .await
        .map_err(|e| format!("the background work did not start: {e}"))?
        .map_err(|e| format!("the background work cannot open the database: {e}"))?;
    let background_catalog = Arc::new(state.catalog.clone().with_store(store));
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = background_stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    // Every replica takes part in maintenance, whether or not it runs health checks.
    let maintenance = background.handle().spawn(crate::maintenance::run(
        background_catalog.clone(),
        crate::maintenance::MaintenanceConfig::hourly(Retention::of(&config)),
        stopped(),
    ));
    let scheduler = if config.health.enabled {
        let settings = SchedulerConfig::from_settings(&config.health, config.sandbox.limits.deadline_ms);
        let scheduler = Scheduler::new(background_catalog, settings);
        tracing::info!(
            replica = scheduler.replica(),
            interval_seconds = config.health.interval_seconds,
            concurrency = config.health.concurrency,
            offline = config.health.offline,
            "health scheduler started"
        );
        Some(background.handle().spawn(scheduler.run(stopped())))
    } else {
        None
    };
    let stop = shutdown_signal();
    tracing::info!(%address, database = %crate::config::redact_url(&config.storage.database_url()), "serving");
    eprintln!("stella-integrations listening on http://{address} (API reference: http://{address}/api/v1/docs)");
    axum::serve(listener, router(served)).with_graceful_shutdown(stop).await.map_err(|e| e.to_string())?;
    let _ = stop_background.send(true);
    let _ = maintenance.await;
    if let Some(Err(e)) = match scheduler {
        Some(s) => Some(s.await),
        None => None,
    } {
        tracing::error!(error = %e, "the health scheduler had stopped: it panicked");
    }
    drop(background);
    watcher.abort();
    if let Some(relay) = relay {
        relay.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The background runtime (health scheduler, connector invocations), shut down without blocking
/// however `serve` returns (a runtime dropped inside another would panic).
struct Background(Option<tokio::runtime::Runtime>);

impl Background {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The idle scheduling class for the calling thread (Linux keeps the policy per thread): it runs
/// only when no other thread of the machine wants the CPU, and gives it up at once when one
/// wakes. Nice 10 was not enough: on Linux's EEVDF scheduler a waking thread of the API still
/// waits for the niced thread's time slice, several times per request, and with 32 hostile
/// connectors tested at once the API's p99 reached 2.7 x idle (1.5 x in the idle class; `make
/// bench`, containment). Where the idle class is refused, nice 19.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` and changes only the calling thread's policy.
        #[allow(unsafe_code)]
        let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
        if !idle && let Err(e) = rustix::process::setpriority_process(None, 19) {
            tracing::warn!(error = %e, "the background threads run at the API's priority");
        }
    }
}

/// SIGINT or SIGTERM, listened for from the call on: the service calls this before it says it is
/// listening, since until a handler is installed a SIGTERM kills the process instead of stopping
/// it gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let (interrupt, terminate) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
        let wait = |s: Option<Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        async move {
            tokio::select! {
                _ = wait(interrupt) => {},
                _ = wait(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
