//! The catalog's read path on PostgreSQL with 100,000 integrations: `GET /{id}` and a 50-row list
//! page through a cursor, measured with a closed-loop load generator over loopback against the
//! real binary, beside the same lookups through pgbench against the same database. Two more lines
//! locate where the time goes: `GET /healthz` (the HTTP hop alone: no database) and the lookup
//! through sqlx, the service's driver, without HTTP (the driver beside pgbench's libpq).
//!
//! `cargo bench -p stella-integrations --bench catalog` (or `make bench`). PostgreSQL from
//! `STELLA_BENCH_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`); a database is
//! created for the run and dropped after it. `STELLA_BENCH_SECONDS` sets each measurement's length
//! (default 10), `STELLA_BENCH_CONCURRENCY` the number of concurrent clients (default 8).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Figures, Rng, env_number, id_of, load, ms, start_server, summarize};
use sqlx::Connection;

const ROWS: u32 = 100_000;
const TENANT: &str = "bench";

fn name_of(n: u32) -> String {
    format!("integration-{n:06}")
}

/// A cursor that starts a list page after row `n` (the API's cursor format: hex name, dot, id).
fn cursor_after(n: u32) -> String {
    format!("{}.{n:032x}", hex::encode(name_of(n)))
}

/// The lookup of `GET /{id}` through sqlx, the service's driver, from `clients` tasks with a
/// connection each and no HTTP in between: what the driver alone costs beside pgbench's libpq.
async fn sqlx_lookups(url: &str, clients: u64, seconds: u64) -> Figures {
    let warm_up = Instant::now() + Duration::from_secs(2);
    let end = warm_up + Duration::from_secs(seconds);
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
                let id = id_of(Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(ROWS));
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
    summarize(all, Duration::from_secs(seconds))
}

/// pgbench with a custom script; latencies from its per-transaction log.
fn pgbench(database_url: &str, script: &str, clients: u64, seconds: u64, dir: &std::path::Path) -> Figures {
    let script_path = dir.join(format!("script-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&script_path, script).unwrap();
    let prefix = dir.join(format!("pgbench-{}", uuid::Uuid::new_v4().simple()));
    let status = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &(seconds + 2).to_string()])
        .arg("-f")
        .arg(&script_path)
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(database_url)
        .stdout(Stdio::null())
        .status()
        .expect("pgbench runs (it comes with the PostgreSQL client: apt-get install postgresql-client)");
    assert!(status.success(), "pgbench failed");
    // Each line: client transaction latency_us script epoch_s epoch_us. Skip the warm-up seconds.
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
    let first = rows.iter().map(|r| r.0).min().unwrap();
    let measured: Vec<Duration> = rows.iter().filter(|r| r.0 >= first + 2_000_000).map(|r| r.1).collect();
    summarize(measured, Duration::from_secs(seconds))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds = env_number("STELLA_BENCH_SECONDS", 10);
    let clients = env_number("STELLA_BENCH_CONCURRENCY", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let (_database, url) = common::create_database().await;
        let dir = tempfile::tempdir().unwrap();

        // Schema by the service's own migrations, then 100,000 rows in one statement.
        drop(stella_integrations::store::PostgresStore::connect(&url).await.unwrap());
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
        .bind(ROWS as i32)
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query("ANALYZE integrations").execute(&mut c).await.unwrap();
        drop(c);
        println!("catalog benchmark: {ROWS} integrations in PostgreSQL (loaded in {:.1} s)", started.elapsed().as_secs_f64());
        println!("{clients} concurrent clients, {seconds} s per measurement after a 2 s warm-up, loopback, 2-core machine\n");

        let (server, base) = start_server(&url, dir.path(), &[]);
        let token = common::token(dir.path(), TENANT, "integrations.read");
        // The HTTP hop alone (auth, routing, metrics, no database): the floor under every API figure.
        let hop = load(clients, seconds, &base, &token, |_, _| "/healthz".to_string(), 10).await;
        let get = load(
            clients,
            seconds,
            &base,
            &token,
            |client, i| format!("/api/v1/integrations/{}", id_of(Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(ROWS))),
            300,
        )
        .await;
        let list = load(
            clients,
            seconds,
            &base,
            &token,
            |client, i| {
                let start = Rng(0xD1B5_4A32_D192_ED03 ^ (client << 32) ^ i).row(ROWS).min(ROWS - 50);
                format!("/api/v1/integrations?limit=50&cursor={}", cursor_after(start))
            },
            50 * 300,
        )
        .await;
        drop(server);
        let driver = sqlx_lookups(&url, clients, seconds).await;

        let pg_get = pgbench(
            &url,
            "\\set n random(1, 100000)\nSELECT * FROM integrations WHERE tenant_id = 'bench' AND integration_id = lpad(to_hex(:n::bigint), 32, '0')::uuid::text;\n",
            clients,
            seconds,
            dir.path(),
        );
        let pg_list = pgbench(
            &url,
            "\\set n random(1, 99950)\nSELECT * FROM integrations WHERE tenant_id = 'bench' AND (name, integration_id) > ('integration-' || lpad(:n::text, 6, '0'), lpad(to_hex(:n::bigint), 32, '0')::uuid::text) ORDER BY name, integration_id LIMIT 50;\n",
            clients,
            seconds,
            dir.path(),
        );

        println!("{:<34} {:>10} {:>10} {:>10}", "", "req/s", "p50", "p99");
        let row = |what: &str, f: &Figures| println!("{what:<34} {:>10.0} {:>10} {:>10}", f.rate, ms(f.p50), ms(f.p99));
        row("API GET /healthz (no database)", &hop);
        row("API GET /{id}", &get);
        row("sqlx SELECT … WHERE id = … (Rust)", &driver);
        row("pgbench SELECT … WHERE id = …", &pg_get);
        row("API list page (50, cursor)", &list);
        row("pgbench same page (keyset)", &pg_list);
        let ratio = get.rate / pg_get.rate;
        println!();
        println!(
            "GET /{{id}} throughput API/pgbench = {ratio:.2}   (target >= 0.50: {})",
            if ratio >= 0.5 { "met" } else { "NOT met" }
        );
        println!(
            "list page p99 = {}            (target <= 10 ms: {})",
            ms(list.p99),
            if list.p99 <= Duration::from_millis(10) { "met" } else { "NOT met" }
        );
        println!("list page throughput API/pgbench = {:.2}", list.rate / pg_list.rate);
    });
}
