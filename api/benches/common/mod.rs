//! What the benchmarks share: the database made for a run, the service binary, a minimal HTTP
//! client and the closed-loop load generator, latency figures.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Connection;

pub const BIN: &str = env!("CARGO_BIN_EXE_stella-integrations");

/// Whether this is a smoke run: the arguments do not hold `--bench`. `cargo bench` passes
/// `--bench` to a `harness = false` benchmark, while `cargo test` runs the same binary without
/// it (which is how criterion tells its test mode too). A smoke run goes through every
/// phase of the benchmark with tiny sizes and short windows and asserts that each did what it
/// should (answers with the expected status, counts above zero, the work recorded), so that a
/// benchmark that no longer runs fails CI instead of waiting for someone's `make bench`; its
/// figures mean nothing and no target is judged.
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// What a smoke run prints before its figures.
pub const SMOKE_NOTE: &str = concat!(
    "smoke run (no `--bench`: run by `cargo test`, as `make test` does): every phase at a tiny size; ",
    "the figures mean nothing, no target is judged"
);

/// A target's verdict: `met`, `NOT met`, or in a smoke run, not judged.
pub fn verdict(smoke: bool, met: bool) -> &'static str {
    match (smoke, met) {
        (true, _) => "not judged: smoke run",
        (false, true) => "met",
        (false, false) => "NOT met",
    }
}

/// The id of row `n` (1-based): a UUID made of its number, so SQL (and pgbench) can compute it too.
pub fn id_of(n: u32) -> String {
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// xorshift64*: enough randomness to spread lookups, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A row number from 1 to `rows`.
    pub fn row(&mut self, rows: u32) -> u32 {
        (self.next() % u64::from(rows)) as u32 + 1
    }
}

/// The id of the `i`-th lookup of load-generator client `client` among `rows` rows: spread over
/// the table, the same sequence in every run.
pub fn lookup_id(client: u64, i: u64, rows: u32) -> String {
    id_of(Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(rows))
}

/// Median, min and max of a few measurements.
pub fn spread<T: Copy + PartialOrd>(mut values: Vec<T>) -> (T, T, T) {
    values.sort_by(|a, b| a.partial_cmp(b).expect("measurements are comparable"));
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

pub struct Figures {
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    assert!(!latencies.is_empty(), "no request was measured in {elapsed:?}");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures { rate: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99) }
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A length in seconds (`10`, `0.5`) from the variable `name`, or `default`.
pub fn env_seconds(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(default, Duration::from_secs_f64)
}

/// A length as it is printed beside the figures: `10 s`, `0.3 s`.
pub fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Drops the benchmark's database however the run ends.
pub struct Database {
    pub admin_url: String,
    pub name: String,
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

/// A process the benchmark started, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on the database, with `env` last (health checks are off and there is no plugins
/// directory unless it says otherwise).
pub fn start_server(database_url: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("STELLA_HEALTH_ENABLED", "false")
        .env("DATABASE_URL", database_url)
        .env("STELLA_DATA_DIR", data_dir)
        .env("STELLA_LISTEN", "127.0.0.1:0")
        .env("STELLA_PLUGINS_DIR", data_dir.join("no-plugins"))
        .env("STELLA_LOG", "warn")
        // Plain text, so that the log lines read below can be told apart by their level.
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the service binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut address = None;
    for line in stderr.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("stella-integrations listening on ") {
            address = Some(rest.split_whitespace().next().unwrap().to_string());
            break;
        }
        if !line.contains(" INFO ") {
            eprintln!("{line}");
        }
    }
    // What it logs later is read (so it never fills the pipe: at the `info` level a line per
    // request, as a log shipper would read it), and its warnings and errors are shown.
    std::thread::spawn(move || {
        stderr
            .map_while(Result::ok)
            .filter(|line| !line.contains(" INFO "))
            .for_each(|line| eprintln!("service: {line}"))
    });
    (Server(child), address.expect("the service printed its address"))
}

/// A minimal HTTP/1.1 keep-alive client, as wrk uses: one connection, a request written whole,
/// the response read by its Content-Length. A full client library would spend more of the two
/// cores than the service it measures.
pub struct RawClient {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
    token: String,
}

impl RawClient {
    pub async fn connect(base: &str, token: &str) -> Self {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream: tokio::io::BufReader::new(stream), host, token: token.to_string() }
    }

    /// GETs `path`; returns the status and the body length.
    pub async fn get(&mut self, path: &str) -> (u16, usize) {
        self.send("GET", path).await
    }

    /// Sends a request without a body (`GET`, or an action such as `POST /{id}/test`); returns the
    /// status and the body length.
    pub async fn send(&mut self, method: &str, path: &str) -> (u16, usize) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let length_header = if method == "GET" { "" } else { "Content-Length: 0\r\n" };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{length_header}\r\n",
            self.host, self.token
        );
        self.stream.get_mut().write_all(request.as_bytes()).await.unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: not an HTTP status line: {line:?}"));
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

/// Runs `GET path(client, i)` from `clients` concurrent loops for `measured` (after `warm_up`)
/// and collects each request's latency.
pub async fn load(
    clients: u64,
    warm_up: Duration,
    measured: Duration,
    base: &str,
    token: &str,
    path: impl Fn(u64, u64) -> String + Send + Sync + 'static,
    min_body: usize,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let timer = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(warm_up + measured).await;
        timer.store(true, Ordering::Relaxed);
    });
    let pace = Pace { clients, rate: None, warm_up };
    let (latencies, elapsed) = load_until(pace, stop, base, token, path, min_body).await;
    summarize(latencies, elapsed)
}

/// A token for `tenant`, signed with the local key of `data_dir` (the server's).
pub fn token(data_dir: &std::path::Path, tenant: &str, scopes: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--tenant", tenant, "--scopes", scopes])
        .env("STELLA_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A fresh database on the server of `STELLA_BENCH_POSTGRES`, dropped when the guard is.
pub async fn create_database() -> (Database, String) {
    let admin_url = std::env::var("STELLA_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL is reachable");
    let name = format!("stella_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    (Database { admin_url, name }, url)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// How a load is paced.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Connections.
    pub clients: u64,
    /// Requests per second over all connections (open loop); `None`: each connection sends its
    /// next request as soon as the last is answered (closed loop, as wrk does).
    pub rate: Option<u64>,
    /// How long it runs before it is measured (the service's pools fill, caches warm).
    pub warm_up: Duration,
}

/// Sends `GET path(client, i)` as `pace` says until `stop` is set, and collects the latency of
/// each request started after the warm-up, with the time they were measured over. At a fixed
/// rate, a request's latency counts from when it was due, not from when it was sent: one held up
/// behind a slow one counts the wait too (no coordinated omission, as wrk2 measures).
pub async fn load_until(
    Pace { clients, rate, warm_up }: Pace,
    stop: Arc<AtomicBool>,
    base: &str,
    token: &str,
    path: impl Fn(u64, u64) -> String + Send + Sync + 'static,
    min_body: usize,
) -> (Vec<Duration>, Duration) {
    let path = Arc::new(path);
    let period = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate as f64));
    let started = tokio::time::Instant::now();
    let measured_from = started + warm_up;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (path, stop) = (path.clone(), stop.clone());
        let mut http = RawClient::connect(base, token).await;
        // At a fixed rate the connections take turns, so the requests are evenly spaced.
        let first = period.map(|p| started + p.mul_f64(client as f64 / clients as f64));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = match (first, period) {
                    (Some(first), Some(period)) => {
                        let due = first + period.mul_f64(i as f64);
                        tokio::time::sleep_until(due).await;
                        due
                    }
                    _ => tokio::time::Instant::now(),
                };
                let (status, length) = http.get(&path(client, i)).await;
                assert_eq!(status, 200);
                assert!(length >= min_body, "a short answer: {length} bytes");
                if due >= measured_from {
                    latencies.push(due.elapsed());
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
    (all, measured_from.elapsed())
}
