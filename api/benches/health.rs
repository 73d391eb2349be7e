//! One full sweep of health checks over 10,000 active integrations on PostgreSQL, run by the real
//! binary's scheduler: with the in-memory connector (the scheduler, sandbox and store alone), then
//! with the `oci-registry` connector against a local registry stub (a real HTTP check each). Each
//! sweep is reported as checks/s and the time it took, from the history rows it wrote, with the
//! invocation ledger on (as it always is): the entries it kept and their mean size. Then a
//! client reads `GET /{id}` at a steady rate (open loop: latency counted from when each request
//! was due) with the scheduler off, and again through a second in-memory sweep; the two p99s are
//! set side by side. (A closed loop that saturates the two cores would measure how the cores are
//! shared, not how long a request waits.)
//!
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench health` (or `make
//! bench`). PostgreSQL from `STELLA_BENCH_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a database is created for the run and dropped
//! after it. `STELLA_BENCH_RATE` sets the rate of the API load (default 500 requests/s),
//! `STELLA_BENCH_HEALTH_CONCURRENCY` the scheduler's `health.concurrency` (default 32, the
//! service's default).
//!
//! Without `--bench` (`cargo test` of the same, as `make test` runs it), a smoke run: every phase
//! on 200 integrations, one sweep under load, 0.5 s API windows after a 0.2 s warm-up; it asserts
//! that every sweep checked every integration healthy and kept each check in the ledger, and that
//! the API answered, and judges no target.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Figures, Pace, SMOKE_NOTE, env_number, load_until, ms, start_server, summarize, verdict};
use sqlx::Connection;

/// Integrations swept: 10,000, or a few hundred in a smoke run.
const ROWS: u32 = 10_000;
const SMOKE_ROWS: u32 = 200;
const TENANT: &str = "bench";

/// How much a run measures.
#[derive(Clone, Copy)]
struct Size {
    /// Integrations swept.
    rows: u32,
    /// In-memory sweeps made while the API is measured.
    sweeps_under_load: usize,
    /// How long the API load runs before it is measured (connection pools fill, caches warm).
    warm_up: Duration,
    /// How long the API is measured with the scheduler off.
    idle: Duration,
}

/// Replaces every integration with `rows` active ones served by `provider` at `base_url`.
async fn load_integrations(url: &str, rows: u32, provider: &str, base_url: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("DELETE FROM integrations").execute(&mut c).await.unwrap();
    sqlx::query(
        "INSERT INTO integrations (integration_id, tenant_id, name, description, integration_type, provider, \
           base_url, auth_ref, configuration, environment, tags, owner_id, status, paused, consecutive_failures, \
           last_test_success, created_at, created_by, version) \
         SELECT lpad(to_hex(n), 32, '0')::uuid::text, $1, 'integration-' || lpad(n::text, 6, '0'), \
           'benchmark row', 'registry', $2, $3, NULL, '{}', 'prod', '[\"eu\"]'::jsonb, 'team-' || (n % 40), \
           'active', false, 0, true, now(), 'bench', 1 \
         FROM generate_series(1, $4) AS n",
    )
    .bind(TENANT)
    .bind(provider)
    .bind(base_url)
    .bind(rows as i32)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query("ANALYZE integrations").execute(&mut c).await.unwrap();
}

/// What one sweep wrote: checks, the span from the first to the last, the outcomes, and the
/// checks the ledger keeps (a full entry each, or counted in an hourly summary), with the mean
/// size of what the entries hold and the ledger's size on disk per entry (every partition, table
/// and indexes, in bytes).
struct Sweep {
    checks: i64,
    span: Duration,
    outcomes: Vec<(String, i64)>,
    ledger_entries: i64,
    record_bytes: f64,
    disk_bytes: f64,
}

impl Sweep {
    fn rate(&self) -> f64 {
        self.checks as f64 / self.span.as_secs_f64().max(0.001)
    }
}

/// Waits until each of the `rows` integrations has a history row (at most `limit`), then reads
/// the sweep.
async fn wait_for_sweep(url: &str, rows: u32, limit: Duration) -> Sweep {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let deadline = Instant::now() + limit;
    loop {
        let (done,): (i64,) =
            sqlx::query_as("SELECT count(DISTINCT integration_id) FROM health_checks").fetch_one(&mut c).await.unwrap();
        if done >= i64::from(rows) {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep did not finish in {limit:?}: {done} of {rows} checked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (checks, first, last): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), min(checked_ms), max(checked_ms) FROM health_checks")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let outcomes = sqlx::query_as("SELECT outcome, count(*) FROM health_checks GROUP BY outcome ORDER BY outcome")
        .fetch_all(&mut c)
        .await
        .unwrap();
    // The checks the ledger keeps: a full entry is one, a summary as many as it folded. On disk:
    // every day partition of the ledger.
    let (ledger_entries, record_bytes, disk_bytes): (i64, f64, f64) = sqlx::query_as(
        "SELECT coalesce(sum(CASE WHEN level = 'summary' THEN (record::jsonb->>'checks')::bigint ELSE 1 END), 0)::bigint, \
         coalesce(avg(octet_length(record)), 0)::float8, \
         (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree('invocations') p)::float8 \
           / greatest(count(*), 1) FROM invocations",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    Sweep {
        checks,
        span: Duration::from_millis(u64::try_from(last - first).unwrap_or(0)),
        outcomes,
        ledger_entries,
        record_bytes,
        disk_bytes,
    }
}

/// A registry's `/v2/` as the Distribution API answers it anonymously.
async fn registry_stub() -> String {
    let app = axum::Router::new().route(
        "/v2/",
        axum::routing::get(|| async {
            ([("Docker-Distribution-API-Version", "registry/2.0")], axum::Json(serde_json::json!({})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// Clears the history and the ledger, and makes every integration due at once again.
async fn reset_checks(url: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(
        // TRUNCATE, so the ledger's size on disk per entry counts no dead rows of the last sweep.
        "BEGIN; DELETE FROM health_checks; TRUNCATE invocations; UPDATE health_schedule SET due_ms = 0; COMMIT",
    )
    .execute(&mut c)
    .await
    .unwrap();
}

/// A smoke run's assertions on a sweep: every integration checked, every check `healthy` and kept
/// in the ledger.
fn assert_sweep(what: &str, s: &Sweep, rows: u32) {
    assert!(s.checks >= i64::from(rows), "{what}: {} checks of {rows} integrations", s.checks);
    assert!(
        s.outcomes.iter().all(|(outcome, _)| outcome == "healthy"),
        "{what}: every check healthy, but: {:?}",
        s.outcomes
    );
    assert_eq!(s.ledger_entries, s.checks, "{what}: every check kept in the ledger");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let smoke = common::smoke();
    let size = if smoke {
        Size {
            rows: SMOKE_ROWS,
            sweeps_under_load: 1,
            warm_up: Duration::from_millis(200),
            idle: Duration::from_millis(500),
        }
    } else {
        Size { rows: ROWS, sweeps_under_load: 4, warm_up: Duration::from_secs(2), idle: Duration::from_secs(8) }
    };
    let Size { rows, sweeps_under_load, warm_up, .. } = size;
    // A sweep that takes longer has stopped: in a smoke run, fail fast.
    let sweep_limit = |seconds: u64| Duration::from_secs(if smoke { 60 } else { seconds });
    let rate = env_number("STELLA_BENCH_RATE", 500);
    let pace = Pace { clients: 4, rate: Some(rate), warm_up };
    let concurrency = env_number("STELLA_BENCH_HEALTH_CONCURRENCY", 32).to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let (_database, url) = common::create_database().await;
        let dir = tempfile::tempdir().unwrap();
        drop(stella_integrations::store::PostgresStore::connect(&url).await.unwrap());
        let token = common::token(dir.path(), TENANT, "integrations.read");
        let get_path =
            move |client: u64, i: u64| format!("/api/v1/integrations/{}", common::lookup_id(client, i, rows));
        let config = dir.path().join("health.toml");
        let config_env = [("STELLA_HEALTH_ENABLED", "true"), ("STELLA_CONFIG", config.to_str().unwrap())];
        if smoke {
            println!("{SMOKE_NOTE}");
        }
        println!("health sweep benchmark: {rows} active integrations in PostgreSQL, 2-core machine");
        println!(
            "scheduler: health.concurrency = {concurrency}; API: GET /{{id}} at {rate} req/s over 4 connections, \
             latency from when each request was due\n"
        );

        // The in-memory sweep alone: the scheduler, sandbox and store, nothing else running.
        load_integrations(&url, rows, "in-memory", "https://registry.example.com").await;
        std::fs::write(&config, format!("[health]\nconcurrency = {concurrency}\n")).unwrap();
        let (server, _) = start_server(&url, dir.path(), &config_env);
        let memory = wait_for_sweep(&url, rows, sweep_limit(600)).await;
        drop(server);
        if smoke {
            assert_sweep("the in-memory sweep", &memory, rows);
        }

        // GET /{id} at a steady rate: with the scheduler off, then through a second sweep, which
        // starts when the warm-up ends (every check was just made, so nothing is due before).
        let (server, base) = start_server(&url, dir.path(), &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let timer = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(warm_up + size.idle).await;
            timer.store(true, Ordering::Relaxed);
        });
        let (latencies, elapsed) = load_until(pace, stop, &base, &token, get_path, 300).await;
        let idle = summarize(latencies, elapsed);
        drop(server);
        let (server, base) = start_server(&url, dir.path(), &config_env);
        let stop = Arc::new(AtomicBool::new(false));
        let reading = {
            let (stop, base, token) = (stop.clone(), base.clone(), token.clone());
            tokio::spawn(async move { load_until(pace, stop, &base, &token, get_path, 300).await })
        };
        tokio::time::sleep(warm_up).await;
        // Sweeps back to back, so the latency is measured over a few seconds of them.
        let mut loaded = Vec::new();
        for _ in 0..sweeps_under_load {
            reset_checks(&url).await;
            loaded.push(wait_for_sweep(&url, rows, sweep_limit(600)).await);
            if smoke {
                assert_sweep("an in-memory sweep under load", loaded.last().unwrap(), rows);
            }
        }
        let loaded_rates: Vec<String> = loaded.iter().map(|s| format!("{:.0}", s.rate())).collect();
        let loaded = Sweep {
            checks: loaded.iter().map(|s| s.checks).sum(),
            span: loaded.iter().map(|s| s.span).sum(),
            outcomes: vec![],
            ledger_entries: loaded.iter().map(|s| s.ledger_entries).sum(),
            record_bytes: loaded.iter().map(|s| s.record_bytes).sum::<f64>() / loaded.len() as f64,
            disk_bytes: loaded.iter().map(|s| s.disk_bytes).sum::<f64>() / loaded.len() as f64,
        };
        stop.store(true, Ordering::Relaxed);
        let (latencies, elapsed) = reading.await.unwrap();
        let during: Figures = summarize(latencies, elapsed);
        drop(server);

        // The oci-registry sweep alone: one anonymous `GET /v2/` per check, to a stub on loopback
        // (which the sandbox's network policy is told to allow).
        let registry = registry_stub().await;
        load_integrations(&url, rows, "oci-registry", &registry).await;
        reset_checks(&url).await;
        std::fs::write(
            &config,
            format!("[health]\nconcurrency = {concurrency}\n\n[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n"),
        )
        .unwrap();
        let (server, _) = start_server(&url, dir.path(), &config_env);
        let oci = wait_for_sweep(&url, rows, sweep_limit(900)).await;
        drop(server);
        if smoke {
            assert_sweep("the oci-registry sweep", &oci, rows);
        }

        println!(
            "{:<44} {:>8} {:>8} {:>9} {:>14} {:>13} {:>11}",
            "sweep", "checks", "seconds", "checks/s", "ledger checks", "record bytes", "disk/entry"
        );
        let sweep = |what: &str, s: &Sweep| {
            println!(
                "{what:<44} {:>8} {:>8.1} {:>9.0} {:>14} {:>13.0} {:>11.0}",
                s.checks,
                s.span.as_secs_f64(),
                s.rate(),
                s.ledger_entries,
                s.record_bytes,
                s.disk_bytes
            );
        };
        sweep("in-memory connector", &memory);
        sweep(&format!("{sweeps_under_load} in-memory, GET /{{id}} at {rate} req/s"), &loaded);
        println!("{:<44} {}", "  each of them, checks/s", loaded_rates.join(", "));
        sweep("oci-registry connector (stub on loopback)", &oci);
        let outcomes = |s: &Sweep| s.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect::<Vec<_>>().join(", ");
        println!(
            "history rows written: in-memory {} ({}), oci-registry {} ({})",
            memory.checks,
            outcomes(&memory),
            oci.checks,
            outcomes(&oci)
        );
        println!();
        println!("{:<44} {:>8} {:>8} {:>9}", "API GET /{id}", "req/s", "p50", "p99");
        let row = |what: &str, f: &Figures| println!("{what:<44} {:>8.0} {:>8} {:>9}", f.rate, ms(f.p50), ms(f.p99));
        row("scheduler off", &idle);
        row("during the in-memory sweep", &during);
        println!();
        println!(
            "in-memory sweep, ledger on = {:.0} checks/s, {} of {} checks in the ledger (target >= 2000 checks/s, \
             every check kept: {})",
            memory.rate(),
            memory.ledger_entries,
            memory.checks,
            verdict(smoke, memory.rate() >= 2000.0 && memory.ledger_entries == memory.checks)
        );
        let ratio = during.p99.as_secs_f64() / idle.p99.as_secs_f64();
        println!(
            "GET /{{id}} p99 during the sweep / idle = {ratio:.2}    (target <= 2.00: {})",
            verdict(smoke, ratio <= 2.0)
        );
    });
}
