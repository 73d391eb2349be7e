//! Wiring: from a [`Config`] to a running service (store, sandbox, connectors, token verifier,
//! router, event relay, health scheduler), and its graceful shutdown.

use std::sync::Arc;

use stella_runtime::secrets::{ChainResolver, EnvSecretResolver, FileSecretResolver, SecretResolver};
use stella_runtime::{ConnectorCatalog, Sandbox, SandboxConfig};

use crate::auth::{Verifier, local_key};
use crate::config::Config;
use crate::health::{HealthPolicy, Scheduler, SchedulerConfig};
use crate::http::{AppState, router};
use crate::plugins::AdmissionPolicy;
use crate::service::Catalog;
use crate::store;

/// How often a replica looks for a change of the active connectors made by another.
const PLUGIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Builds the service's state: opens (and migrates) the database, loads the built-in connectors
/// and the plugins directory, and sets up token verification. Connectors run on
/// `invocation_runtime` when one is given, else on the caller's runtime.
pub async fn build_state(
    config: &Config,
    invocation_runtime: Option<tokio::runtime::Handle>,
) -> Result<AppState, String> {
    let database_url = config.storage.database_url();
    let store = store::open(&database_url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", store::redact_url(&database_url)))?;

    let mut resolvers: Vec<Arc<dyn SecretResolver>> = vec![];
    if let Some(dir) = &config.secrets.dir {
        resolvers.push(Arc::new(FileSecretResolver::new(dir)));
    }
    if config.secrets.env {
        resolvers.push(Arc::new(EnvSecretResolver::default()));
    }
    let secrets = Arc::new(ChainResolver::new(resolvers));
    let sandbox_config =
        SandboxConfig { cache_dir: config.storage.compile_cache_dir(&config.sandbox), ..config.sandbox.clone() };
    let sandbox = Sandbox::new(sandbox_config, secrets.clone()).map_err(|e| e.to_string())?;
    // Logs each built-in it loads (with its compile time).
    let builtins = ConnectorCatalog::load(&sandbox, stella_builtin_connectors::BUILTINS, None);
    let admission = AdmissionPolicy::from_config(&config.plugins, secrets.as_ref())?;
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
        .with_admission_policy(admission);
    if let Some(runtime) = invocation_runtime {
        catalog = catalog.with_invocation_runtime(runtime);
    }
    // The air-gapped way in: each file is submitted under the same policy as an upload (and
    // answered from the store when it was submitted before). Then the store's active set.
    if let Some(dir) = config.storage.plugins_dir.as_deref().filter(|d| d.is_dir()) {
        catalog.submit_directory(dir).await;
    }
    catalog.refresh_connectors().await.map_err(|e| format!("cannot load the active connectors: {e}"))?;
    let console = crate::console::Console::new(config.console.clone(), &config.auth.tenant_claim);
    Ok(AppState::new(catalog, verifier, config.server.max_body_bytes, console))
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
    let state = build_state(&config, Some(background.handle().clone())).await?;
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
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = if config.health.enabled {
        // Its own pool, opened on its runtime: its connections' I/O is driven by the scheduler's
        // thread, and the API's pool is not shared with (or slowed by) a sweep.
        let database_url = config.storage.database_url();
        let store = background
            .handle()
            .spawn(async move { store::open(&database_url).await })
            .await
            .map_err(|e| format!("the health scheduler did not start: {e}"))?
            .map_err(|e| format!("the health scheduler cannot open the database: {e}"))?;
        let catalog = Arc::new(state.catalog.clone().with_store(store));
        let mut settings = SchedulerConfig::from_settings(&config.health, config.sandbox.limits.deadline_ms);
        settings.ledger_retention = std::time::Duration::from_secs(u64::from(config.ledger.retention_days) * 86_400);
        let scheduler = Scheduler::new(catalog, settings);
        tracing::info!(
            replica = scheduler.replica(),
            interval_seconds = config.health.interval_seconds,
            concurrency = config.health.concurrency,
            offline = config.health.offline,
            "health scheduler started"
        );
        Some(background.handle().spawn(scheduler.run(async move {
            let _ = scheduler_stopped.await;
        })))
    } else {
        None
    };
    tracing::info!(%address, database = %store::redact_url(&config.storage.database_url()), "serving");
    eprintln!("stella-integrations listening on http://{address} (API reference: http://{address}/api/v1/docs)");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| e.to_string())?;
    let _ = stop_scheduler.send(());
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

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
