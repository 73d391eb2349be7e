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

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_stella-integrations");
const ROWS: u32 = 100_000;
const TENANT: &str = "bench";

/// The id of row `n` (1-based): a UUID made of its number, so pgbench can compute it too.
fn id_of(n: u32) -> String {
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn name_of(n: u32) -> String {
    format!("integration-{n:06}")
}

/// A cursor that starts a list page after row `n` (the API's cursor format: hex name, dot, id).
fn cursor_after(n: u32) -> String {
    format!("{}.{n:032x}", hex::encode(name_of(n)))
}

/// xorshift64*: enough randomness to spread lookups, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn row(&mut self) -> u32 {
        (self.next() % u64::from(ROWS)) as u32 + 1
    }
}

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures { rate: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99) }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Drops the benchmark's database however the run ends.
struct Database {
    admin_url: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin_url, sql) = (self.admin_url.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(database_url: &str, data_dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("STELLA_DATA_DIR", data_dir)
        .env("STELLA_LISTEN", "127.0.0.1:0")
        .env("STELLA_PLUGINS_DIR", data_dir.join("no-plugins"))
        .env("STELLA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the service binary starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("stella-integrations listening on ") {
            address = Some(rest.split_whitespace().next().unwrap().to_string());
            break;
        }
        eprintln!("{line}");
    }
    (Server(child), address.expect("the service printed its address"))
}

/// A minimal HTTP/1.1 keep-alive client, as wrk uses: one connection, a request written whole,
/// the response read by its Content-Length. A full client library would spend more of the two
/// cores than the service it measures.
struct RawClient {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
    token: String,
}

impl RawClient {
    async fn connect(base: &str, token: &str) -> Self {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream: tokio::io::BufReader::new(stream), host, token: token.to_string() }
    }

    /// GETs `path`; returns the status and the body length.
    async fn get(&mut self, path: &str) -> (u16, usize) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n", self.host, self.token);
        self.stream.get_mut().write_all(request.as_bytes()).await.unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        (status, length)
    }
}

/// Runs `work` from `clients` concurrent loops for `seconds` (after a 2 s warm-up) and collects
/// each request's latency.
async fn load(
    clients: u64,
    seconds: u64,
    base: &str,
    token: &str,
    path: impl Fn(u64, u64) -> String + Send + Sync + 'static,
    min_body: usize,
) -> Figures {
    let path = Arc::new(path);
    let warm_up = Instant::now() + Duration::from_secs(2);
    let end = warm_up + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let path = path.clone();
        let mut http = RawClient::connect(base, token).await;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let (status, length) = http.get(&path(client, i)).await;
                assert_eq!(status, 200);
                assert!(length >= min_body, "a short answer: {length} bytes");
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
                let id = id_of(Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row());
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

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds = env_number("STELLA_BENCH_SECONDS", 10);
    let clients = env_number("STELLA_BENCH_CONCURRENCY", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let admin_url = std::env::var("STELLA_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL is reachable");
        let db = format!("stella_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await.unwrap();
        let url = format!("{}/{db}", admin_url.rsplit_once('/').unwrap().0);
        let _database = Database { admin_url: admin_url.clone(), name: db.clone() };
        drop(admin);
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

        let (server, base) = start_server(&url, dir.path());
        let token = String::from_utf8(
            Command::new(BIN)
                .args(["token", "--tenant", TENANT, "--scopes", "integrations.read"])
                .env("STELLA_DATA_DIR", dir.path())
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        // The HTTP hop alone (auth, routing, metrics, no database): the floor under every API figure.
        let hop = load(clients, seconds, &base, &token, |_, _| "/healthz".to_string(), 10).await;
        let get = load(
            clients,
            seconds,
            &base,
            &token,
            |client, i| format!("/api/v1/integrations/{}", id_of(Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row())),
            300,
        )
        .await;
        let list = load(
            clients,
            seconds,
            &base,
            &token,
            |client, i| {
                let start = Rng(0xD1B5_4A32_D192_ED03 ^ (client << 32) ^ i).row().min(ROWS - 50);
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
