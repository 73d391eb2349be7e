//! The catalog's read path on PostgreSQL with 100,000 integrations: `GET /{id}` and a 50-row list
//! page through a cursor, measured with a closed-loop load generator over loopback against the
//! real binary.
//!
//! Beside the API runs its **floor**: the same lookup through the same store (its SELECT, its
//! connection pool, its row decoding) and the same JSON encoding of the row, behind a bare axum
//! router with nothing else (no auth, no metrics, no tracing, no middleware), in a process of its
//! own like the service, measured by the same load generator in alternating rounds. Then the API
//! runs once per request-path feature turned off (`bench-switches`: auth, metrics, tracing,
//! problem handling; and all four), and once at `serve`'s default log level, and the service's
//! CPU time per request shows what each feature costs. Last, the same lookups through pgbench and
//! through sqlx without HTTP, and `GET /healthz` (the HTTP hop alone), locate the rest.
//!
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench catalog` (or
//! `make bench`). PostgreSQL from `STELLA_BENCH_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a database is created for the run and dropped
//! after it. `STELLA_BENCH_SECONDS` sets each measurement's length (default 10),
//! `STELLA_BENCH_CONCURRENCY` the number of concurrent clients (default 8), `STELLA_BENCH_ROUNDS`
//! the alternating rounds of floor and API (default 3).
//!
//! Without `--bench` (`cargo test` of the same, as `make test` runs it), a smoke run: every phase
//! on 300 rows, two clients, 0.3 s windows after a 0.1 s warm-up, one round (the same variables
//! override them); every request must answer 200 with a whole body, each `auth off` variant must
//! serve a request the full API refuses, and no target is judged.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::{
    Figures, Rng, SMOKE_NOTE, Server, env_number, env_seconds, load, lookup_id, ms, seconds, spread, start_server,
    summarize, verdict,
};
use sqlx::Connection;
use stella_integrations::store::{IntegrationStore, PostgresStore};

/// Rows in the table: 100,000, or a few hundred in a smoke run.
const ROWS: u32 = 100_000;
const SMOKE_ROWS: u32 = 300;
const TENANT: &str = "bench";
/// Set (to the database URL) in the process that serves the floor.
const FLOOR_ENV: &str = "STELLA_BENCH_FLOOR";
const TARGET_THROUGHPUT: f64 = 0.8;
const TARGET_P99: f64 = 1.25;

/// The floor: the lookup of `GET /{id}` through the service's own store and the same JSON
/// encoding of the row, behind a bare axum router, on a runtime like `serve`'s. It exits when its
/// standard input closes, so it never outlives the benchmark.
fn serve_floor(database_url: &str) {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Arc::new(PostgresStore::connect(database_url).await.unwrap());
        let app =
            axum::Router::new().route("/api/v1/integrations/{id}", axum::routing::get(floor_get)).with_state(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

async fn floor_get(State(store): State<Arc<PostgresStore>>, Path(id): Path<uuid::Uuid>) -> Response {
    match store.get(TENANT, id).await {
        Ok(Some(integration)) => axum::Json(integration).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn start_floor(database_url: &str) -> (Server, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(FLOOR_ENV, database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the floor server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().to_string();
    assert!(base.starts_with("http://"), "the floor printed its address: {line:?}");
    (Server(child), base)
}

/// CPU time (user + system, all threads) a process has used. `/proc/<pid>/stat` counts it in
/// clock ticks of 1/100 s (USER_HZ is 100 on Linux); over a 10 s measurement that is fine enough.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("Linux /proc");
    // The fields after the command name (which may hold spaces) in parentheses; utime and stime
    // are the 14th and 15th fields of the line.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// A measured load and the CPU the server process (`pid`) spent per request meanwhile.
struct Measured {
    figures: Figures,
    cpu_us_per_request: f64,
}

/// How much is measured: the rows, the connections, and each measurement's window after its
/// warm-up.
#[derive(Clone, Copy)]
struct Size {
    rows: u32,
    clients: u64,
    warm_up: Duration,
    measured: Duration,
}

/// `GET /{id}` against `base` from `size.clients` connections for `size.measured` after the
/// warm-up, with the server's CPU sampled over the same window.
async fn lookups(base: &str, token: &str, pid: u32, size: Size) -> Measured {
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(size.warm_up).await;
        let before = process_cpu(pid);
        tokio::time::sleep(size.measured).await;
        process_cpu(pid) - before
    });
    let rows = size.rows;
    let get_path = move |client: u64, i: u64| format!("/api/v1/integrations/{}", lookup_id(client, i, rows));
    let figures = load(size.clients, size.warm_up, size.measured, base, token, get_path, 300).await;
    let cpu = sampler.await.unwrap();
    let requests = figures.rate * size.measured.as_secs_f64();
    Measured { cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests.max(1.0), figures }
}

/// Asserts that the service at `base` refuses a request with a token it did not sign (401), or,
/// when `authenticates` is false (the `auth off` variants), serves it.
async fn assert_authenticates(base: &str, authenticates: bool) {
    let path = format!("/api/v1/integrations/{}", common::id_of(1));
    let (status, _) = common::RawClient::connect(base, "not-a-token").await.get(&path).await;
    assert_eq!(status, if authenticates { 401 } else { 200 }, "GET {path} with a token the service did not sign");
}

fn name_of(n: u32) -> String {
    format!("integration-{n:06}")
}

/// A cursor that starts a list page after row `n` (the API's cursor format: hex name, dot, id).
fn cursor_after(n: u32) -> String {
    format!("{}.{n:032x}", hex::encode(name_of(n)))
}

/// The lookup of `GET /{id}` through sqlx, the service's driver, from `clients` tasks with a
/// connection each and no HTTP in between: what the driver alone costs beside pgbench's libpq.
async fn sqlx_lookups(url: &str, size: Size) -> Figures {
    let Size { rows, clients, .. } = size;
    let warm_up = Instant::now() + size.warm_up;
    let end = warm_up + size.measured;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let id = lookup_id(client, i, rows);
                let row = sqlx::query("SELECT * FROM integrations WHERE tenant_id = $1 AND integration_id = $2")
                    .bind(TENANT)
                    .bind(id)
                    .fetch_optional(&mut c)
                    .await
                    .unwrap();
                assert!(row.is_some());
                if started >= warm_up {
                    latencies.push(started.elapsed());
                }
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    summarize(all, size.measured)
}

/// pgbench with a custom script for the warm-up and the window of `size` (whole seconds: pgbench
/// runs for at least one); latencies from its per-transaction log.
fn pgbench(database_url: &str, script: &str, size: Size, dir: &std::path::Path) -> Figures {
    let clients = size.clients;
    let total = (size.warm_up + size.measured).as_secs_f64().ceil().max(1.0) as u64;
    let warm_up_us = size.warm_up.as_micros() as u64;
    let script_path = dir.join(format!("script-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&script_path, script).unwrap();
    let prefix = dir.join(format!("pgbench-{}", uuid::Uuid::new_v4().simple()));
    let status = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &total.to_string()])
        .arg("-f")
        .arg(&script_path)
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(database_url)
        .stdout(Stdio::null())
        .status()
        .expect("pgbench runs (it comes with the PostgreSQL client: apt-get install postgresql-client)");
    assert!(status.success(), "pgbench failed");
    // Each line: client transaction latency_us script epoch_s epoch_us. Skip the warm-up.
    let mut rows: Vec<(u64, Duration)> = Vec::new();
    let stem = prefix.file_name().unwrap().to_string_lossy().to_string();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().to_string_lossy().starts_with(&stem) {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 6 {
                let epoch_us = f[4].parse::<u64>().unwrap() * 1_000_000 + f[5].parse::<u64>().unwrap();
                rows.push((epoch_us, Duration::from_micros(f[2].parse().unwrap())));
            }
        }
    }
    let first = rows.iter().map(|r| r.0).min().expect("pgbench logged its transactions");
    let measured: Vec<Duration> = rows.iter().filter(|r| r.0 >= first + warm_up_us).map(|r| r.1).collect();
    summarize(measured, Duration::from_secs(total) - size.warm_up)
}

fn main() {
    if let Ok(url) = std::env::var(FLOOR_ENV) {
        return serve_floor(&url);
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !cfg!(feature = "bench-switches") {
        eprintln!(
            "the catalog benchmark turns request-path features off one at a time: run it with \
         `cargo bench --workspace --features stella-integrations/bench-switches --bench catalog` (or `make \
         bench`), or its smoke run with `cargo test` in place of `cargo bench`"
        );
        std::process::exit(2);
    }
    let smoke = common::smoke();
    let size = if smoke {
        Size {
            rows: SMOKE_ROWS,
            clients: env_number("STELLA_BENCH_CONCURRENCY", 2),
            warm_up: Duration::from_millis(100),
            measured: env_seconds("STELLA_BENCH_SECONDS", Duration::from_millis(300)),
        }
    } else {
        Size {
            rows: ROWS,
            clients: env_number("STELLA_BENCH_CONCURRENCY", 8),
            warm_up: Duration::from_secs(2),
            measured: env_seconds("STELLA_BENCH_SECONDS", Duration::from_secs(10)),
        }
    };
    let Size { rows, clients, .. } = size;
    let rounds = env_number("STELLA_BENCH_ROUNDS", if smoke { 1 } else { 3 }).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let (_database, url) = common::create_database().await;
        let dir = tempfile::tempdir().unwrap();

        // Schema by the service's own migrations, then the rows (100,000) in one statement.
        drop(PostgresStore::connect(&url).await.unwrap());
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let started = Instant::now();
        sqlx::query(
            "INSERT INTO integrations (integration_id, tenant_id, name, description, integration_type, provider, \
               base_url, auth_ref, configuration, environment, tags, owner_id, status, paused, consecutive_failures, \
               created_at, created_by, version) \
             SELECT lpad(to_hex(n), 32, '0')::uuid::text, $1, 'integration-' || lpad(n::text, 6, '0'), \
               'benchmark row', 'registry', 'in-memory', 'https://registry-' || n || '.example.com', \
               'ref://integrations/in-memory/r' || n, '{\"project\": \"library\", \"replicas\": 3}'::jsonb, \
               'prod', '[\"eu\", \"critical\"]'::jsonb, 'team-' || (n % 40), 'active', false, 0, now(), 'bench', 1 \
             FROM generate_series(1, $2) AS n",
        )
        .bind(TENANT)
        .bind(rows as i32)
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query("ANALYZE integrations").execute(&mut c).await.unwrap();
        let (loaded,): (i64,) = sqlx::query_as("SELECT count(*) FROM integrations").fetch_one(&mut c).await.unwrap();
        assert_eq!(loaded, i64::from(rows), "the rows were loaded");
        drop(c);
        if smoke {
            println!("{SMOKE_NOTE}");
        }
        println!("catalog benchmark: {rows} integrations in PostgreSQL (loaded in {:.1} s)", started.elapsed().as_secs_f64());
        println!(
            "{clients} concurrent clients, {} per measurement after a {} warm-up, loopback, 2-core machine\n",
            seconds(size.measured),
            seconds(size.warm_up)
        );

        // The floor, the API, and the API with one request-path feature off at a time (a bench
        // build only), then all four, in rounds: each round runs every one of them in turn, so
        // that they all see the same machine, and a feature's price is its difference from the
        // full API of the same round.
        let token = common::token(dir.path(), TENANT, "integrations.read");
        let header = |what: &str| {
            println!("{what:<44} {:>9} {:>10} {:>10} {:>16}", "req/s", "p50", "p99", "server CPU/req")
        };
        let row = |what: &str, m: &Measured| {
            println!(
                "{what:<44} {:>9.0} {:>10} {:>10} {:>13.1} µs",
                m.figures.rate,
                ms(m.figures.p50),
                ms(m.figures.p99),
                m.cpu_us_per_request
            )
        };
        let variants: [(&str, &[(&str, &str)]); 6] = [
            ("serve's default log level (info)", &[("STELLA_LOG", "info")]),
            ("auth off", &[("STELLA_BENCH_OFF", "auth")]),
            ("metrics off", &[("STELLA_BENCH_OFF", "metrics")]),
            ("tracing off", &[("STELLA_BENCH_OFF", "tracing")]),
            ("problem handling off", &[("STELLA_BENCH_OFF", "problems")]),
            ("all four off", &[("STELLA_BENCH_OFF", "auth,metrics,tracing,problems")]),
        ];
        let (mut floors, mut apis) = (Vec::new(), Vec::new());
        let mut prices: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 1..=rounds {
            header(&format!("GET /{{id}}, round {round} of {rounds}"));
            let (floor, floor_base) = start_floor(&url);
            let f = lookups(&floor_base, &token, floor.0.id(), size).await;
            drop(floor);
            row("  floor (axum + the store, nothing else)", &f);
            let (server, base) = start_server(&url, dir.path(), &[]);
            if smoke {
                assert_authenticates(&base, true).await;
            }
            let a = lookups(&base, &token, server.0.id(), size).await;
            drop(server);
            row("  API", &a);
            for (n, (what, env)) in variants.iter().enumerate() {
                let env: Vec<(&str, &str)> = env.iter().copied().chain([("STELLA_BENCH_TENANT", TENANT)]).collect();
                let (server, base) = start_server(&url, dir.path(), &env);
                if smoke {
                    // The variant is the one it says: with auth off, a request without a valid
                    // token is served; otherwise it is refused.
                    let auth_off = env.iter().any(|&(k, v)| k == "STELLA_BENCH_OFF" && v.split(',').any(|f| f == "auth"));
                    assert_authenticates(&base, !auth_off).await;
                }
                let m = lookups(&base, &token, server.0.id(), size).await;
                drop(server);
                row(&format!("  API, {what}"), &m);
                prices[n].push(m.cpu_us_per_request - a.cpu_us_per_request);
            }
            floors.push(f);
            apis.push(a);
        }
        let full = spread(apis.iter().map(|m| m.cpu_us_per_request).collect()).0;
        let (server, base) = start_server(&url, dir.path(), &[]);
        let hop = load(clients, size.warm_up, size.measured, &base, &token, |_, _| "/healthz".to_string(), 10).await;
        let list = load(
            clients,
            size.warm_up,
            size.measured,
            &base,
            &token,
            move |client, i| {
                let start = Rng(0xD1B5_4A32_D192_ED03 ^ (client << 32) ^ i).row(rows).min(rows - 50);
                format!("/api/v1/integrations?limit=50&cursor={}", cursor_after(start))
            },
            50 * 300,
        )
        .await;
        drop(server);
        let driver = sqlx_lookups(&url, size).await;

        let pg_get = pgbench(
            &url,
            &format!("\\set n random(1, {rows})\nSELECT * FROM integrations WHERE tenant_id = 'bench' AND integration_id = lpad(to_hex(:n::bigint), 32, '0')::uuid::text;\n"),
            size,
            dir.path(),
        );
        let pg_list = pgbench(
            &url,
            &format!("\\set n random(1, {})\nSELECT * FROM integrations WHERE tenant_id = 'bench' AND (name, integration_id) > ('integration-' || lpad(:n::text, 6, '0'), lpad(to_hex(:n::bigint), 32, '0')::uuid::text) ORDER BY name, integration_id LIMIT 50;\n", rows - 50),
            size,
            dir.path(),
        );

        println!();
        println!("{:<44} {:>9} {:>10} {:>10}", "where the rest goes", "req/s", "p50", "p99");
        let line = |what: &str, f: &Figures| println!("{what:<44} {:>9.0} {:>10} {:>10}", f.rate, ms(f.p50), ms(f.p99));
        line("API GET /healthz (no database)", &hop);
        line("sqlx SELECT … WHERE id = … (no HTTP)", &driver);
        line("pgbench SELECT … WHERE id = …", &pg_get);
        line("API list page (50, cursor)", &list);
        line("pgbench same page (keyset)", &pg_list);

        let (floor_rate, floor_rate_min, floor_rate_max) = spread(floors.iter().map(|m| m.figures.rate).collect());
        let (api_rate, api_rate_min, api_rate_max) = spread(apis.iter().map(|m| m.figures.rate).collect());
        let p99 = |m: &Measured| m.figures.p99.as_secs_f64() * 1000.0;
        let (floor_p99, floor_p99_min, floor_p99_max) = spread(floors.iter().map(p99).collect());
        let (api_p99, api_p99_min, api_p99_max) = spread(apis.iter().map(p99).collect());
        let (floor_cpu, ..) = spread(floors.iter().map(|m| m.cpu_us_per_request).collect());
        println!();
        println!("medians of {rounds} rounds (min–max):");
        println!(
            "  floor  {floor_rate:>7.0} req/s ({floor_rate_min:.0}–{floor_rate_max:.0})   p99 {floor_p99:.2} ms ({floor_p99_min:.2}–{floor_p99_max:.2})   {floor_cpu:.1} µs CPU/req"
        );
        println!(
            "  API    {api_rate:>7.0} req/s ({api_rate_min:.0}–{api_rate_max:.0})   p99 {api_p99:.2} ms ({api_p99_min:.2}–{api_p99_max:.2})   {full:.1} µs CPU/req"
        );
        println!(
            "price of each feature: server CPU per request beside the full API of the same round (median of the \
             full API: {full:.1} µs), median (min–max) of {rounds} rounds:"
        );
        for ((what, _), deltas) in variants.iter().zip(prices) {
            let (median, min, max) = spread(deltas);
            println!("  {what:<36} {median:>+7.1} µs ({min:+.1} to {max:+.1})");
        }
        let (throughput, tail) = (api_rate / floor_rate, api_p99 / floor_p99);
        let verdict = |ok: bool| verdict(smoke, ok);
        println!();
        println!(
            "GET /{{id}} throughput API/floor = {throughput:.2}   (target >= {TARGET_THROUGHPUT}: {})",
            verdict(throughput >= TARGET_THROUGHPUT)
        );
        println!("GET /{{id}} p99 API/floor        = {tail:.2}   (target <= {TARGET_P99}: {})", verdict(tail <= TARGET_P99));
        println!(
            "list page p99 = {}                (target <= 10 ms: {})",
            ms(list.p99),
            verdict(list.p99 <= Duration::from_millis(10))
        );
        println!("GET /{{id}} throughput API/pgbench = {:.2}, list page API/pgbench = {:.2}", api_rate / pg_get.rate, list.rate / pg_list.rate);
    });
}
