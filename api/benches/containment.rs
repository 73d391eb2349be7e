//! Under fire: 32 hostile connectors tested at once, again and again (every import flooded,
//! results and requests oversized, a busy loop, memory filled, the stack overflowed, an endless
//! response body, a slow server), while a client reads `GET /{id}` at a steady rate (open loop:
//! latency counted from when each request was due). The service is the real binary on
//! PostgreSQL, with the hostile programs of `runtime/test-programs` in its plugins directory.
//!
//! It prints, for a few rounds (after one uncounted stream while the service settles), the API's
//! p50 and p99 idle and under fire, the tests made, and the service's peak resident memory
//! (`VmHWM`), beside the targets: peak below 1 GiB, and p99 with 32 hostile invocations at once at
//! most 2 x the median idle p99 of the rounds. Two more phases show the harder case and what it is
//! made of: the 32 tested again as fast as they answer (a stream), and the same stream of tests of
//! a benign connector (what recording tests that fast costs the API by itself).
//!
//! `cargo bench -p stella-integrations --bench containment` (or `make bench`). PostgreSQL from
//! `STELLA_BENCH_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `STELLA_BENCH_RATE` sets the rate of the API load (default 500 requests/s), `STELLA_BENCH_ROUNDS`
//! the rounds (default 3).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Figures, Pace, RawClient, Rng, env_number, load_until, ms, start_server, summarize};
use serde_json::json;
use stella_runtime::Manifest;
use stella_runtime::manifest::embed_manifest;
use test_programs_artifacts::*;

const TENANT: &str = "bench";
/// Integrations the API load reads (in-memory connector, never tested during the run).
const READABLE: u32 = 100;
/// Hostile invocations in flight at any time.
const HOSTILE: usize = 32;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURED: Duration = Duration::from_secs(10);
/// A wave lasts as long as its slowest connector: up to the 10 s deadline.
const WAVES_MEASURED: Duration = Duration::from_secs(20);
const AUTH_REF: &str = "ref://integrations/bench/token";
const KEY_REF: &str = "ref://integrations/bench/es256-key";

/// The 32 hostile integrations: (provider, configuration, AuthRef).
fn hostile_integrations() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    let mut all = Vec::new();
    for &flood in FLOODS {
        let auth_ref = if flood.starts_with("sign-jwt") { KEY_REF } else { AUTH_REF };
        all.push(("test-program-flood", json!({ "flood": flood }), auth_ref));
    }
    for &case in OVERSIZED_CASES {
        all.push(("bench-oversized", json!({ "oversized": case }), AUTH_REF));
    }
    for provider in [
        "bench-infinite-loop",
        "bench-memory-growth",
        "bench-deep-recursion",
        "bench-panic",
        "bench-body-flood",
        "bench-slow",
    ] {
        all.push((provider, json!({}), AUTH_REF));
    }
    assert_eq!(all.len(), HOSTILE);
    all
}

/// Writes the hostile programs into `dir`, each under a provider of its own.
fn write_plugins(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(FLOOD, dir.join("flood.wasm")).unwrap();
    for (provider, path) in [
        ("bench-oversized", OVERSIZED),
        ("bench-infinite-loop", INFINITE_LOOP),
        ("bench-memory-growth", MEMORY_GROWTH),
        ("bench-deep-recursion", DEEP_RECURSION),
        ("bench-panic", PANIC),
        ("bench-body-flood", BODY_FLOOD),
        ("bench-slow", SLOW),
    ] {
        let manifest = Manifest::from_toml(&format!(
            "[connector]\nprovider = '{provider}'\ntypes = ['registry']\nversion = '0.0.1'\n\
             description = 'A hostile program of the containment benchmark.'"
        ))
        .unwrap();
        let wasm = embed_manifest(&std::fs::read(path).unwrap(), &manifest).unwrap();
        std::fs::write(dir.join(format!("{provider}.wasm")), wasm).unwrap();
    }
}

/// What the hostile programs call: `/ok`, a token endpoint, an endless body, a slow answer.
async fn stub_server() -> String {
    use axum::routing::get;
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![b'f'; 16 << 10]);
        let chunks = futures_util::stream::iter(std::iter::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone())));
        axum::body::Body::from_stream(chunks)
    };
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/collect", get(|| async { "ok" }))
        .route(
            "/token",
            get(|| async { axum::Json(json!({"token": "bench-derived-token-0123456789", "expires_in": 300})) }),
        )
        .route("/flood", get(endless))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "slow ok"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn es256_key_pem() -> String {
    use base64::Engine as _;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

/// Creates an integration through the API and returns its id.
async fn create(base: &str, token: &str, body: serde_json::Value) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST /api/v1/integrations HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let json: serde_json::Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    json["integrationId"].as_str().unwrap().to_string()
}

/// `VmHWM` and `VmRSS` of a process, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() << 10
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

struct Round {
    idle: Figures,
    /// Each phase's figures and the tests it made.
    waves: (Figures, u64),
    stream: (Figures, u64),
    benign_stream: (Figures, u64),
}

/// How the integrations are tested while the API is read.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// All at once; the next round when all have answered.
    Waves,
    /// Each again as soon as its test answers.
    Stream,
}

/// Tests of integrations through the API, one connection each, until stopped.
struct Fire {
    firing: Arc<AtomicBool>,
    tests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Fire {
    async fn start(base: &str, token: &str, ids: &[String], mode: Mode) -> Fire {
        let (firing, tests) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
        let mut clients = Vec::new();
        for id in ids {
            clients.push((RawClient::connect(base, token).await, format!("/api/v1/integrations/{id}/test")));
        }
        let test = move |(mut http, path): (RawClient, String), firing: Arc<AtomicBool>, tests: Arc<AtomicU64>| async move {
            loop {
                let (status, _) = http.send("POST", &path).await;
                assert_eq!(status, 200, "POST {path}");
                tests.fetch_add(1, Ordering::Relaxed);
                if mode == Mode::Waves || !firing.load(Ordering::Relaxed) {
                    return (http, path);
                }
            }
        };
        let task = {
            let (firing, tests) = (firing.clone(), tests.clone());
            tokio::spawn(async move {
                while firing.load(Ordering::Relaxed) {
                    let running: Vec<_> =
                        clients.drain(..).map(|c| tokio::spawn(test(c, firing.clone(), tests.clone()))).collect();
                    for r in running {
                        clients.push(r.await.unwrap());
                    }
                }
            })
        };
        Fire { firing, tests, task }
    }

    /// Stops testing, waits for the tests in flight, and says how many were made.
    async fn stop(self) -> u64 {
        self.firing.store(false, Ordering::Relaxed);
        self.task.await.unwrap();
        self.tests.load(Ordering::Relaxed)
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rate = env_number("STELLA_BENCH_RATE", 500);
    let rounds = env_number("STELLA_BENCH_ROUNDS", 3);
    let pace = Pace { clients: 4, rate: Some(rate), warm_up: WARM_UP };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let (_database, url) = common::create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        write_plugins(&plugins);
        let config = dir.path().join("containment.toml");
        std::fs::write(&config, "[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n").unwrap();
        let key = es256_key_pem();
        let (server, base) = start_server(
            &url,
            dir.path(),
            &[
                ("STELLA_CONFIG", config.to_str().unwrap()),
                ("STELLA_PLUGINS_DIR", plugins.to_str().unwrap()),
                ("STELLA_SECRET__INTEGRATIONS__BENCH__TOKEN", "bench-secret-value-0123456789"),
                ("STELLA_SECRET__INTEGRATIONS__BENCH__ES256_KEY", &key),
            ],
        );
        let pid = server.0.id();
        let admin = common::token(dir.path(), TENANT, "integrations.admin");
        let stub = stub_server().await;

        let mut readable = Vec::new();
        for n in 0..READABLE {
            let body = json!({"name": format!("readable-{n:03}"), "type": "registry", "provider": "in-memory"});
            readable.push(create(&base, &admin, body).await);
        }
        let mut hostile = Vec::new();
        for (n, (provider, configuration, auth_ref)) in hostile_integrations().into_iter().enumerate() {
            let body = json!({"name": format!("hostile-{n:02}"), "type": "registry", "provider": provider,
                "baseUrl": stub, "authRef": auth_ref, "configuration": configuration});
            hostile.push(create(&base, &admin, body).await);
        }
        let benign: Vec<String> = readable.iter().take(HOSTILE).cloned().collect();
        let readable = Arc::new(readable);
        let get_path = move |client: u64, i: u64| {
            let row = Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(READABLE) as usize;
            format!("/api/v1/integrations/{}", readable[row - 1])
        };
        let (_, rss_at_start) = memory_of(pid);

        println!("containment benchmark: {HOSTILE} hostile connectors tested through the API, 2-core machine");
        println!(
            "API: GET /{{id}} at {rate} req/s over 4 connections, latency from when each request was due, \
             after a {} s warm-up; {rounds} rounds of:\n\
             - idle: nothing else ({} s)\n\
             - waves: the {HOSTILE} hostile integrations tested at once, the next {HOSTILE} when all have answered ({} s)\n\
             - stream: each hostile integration tested again as soon as its test answers, {HOSTILE} always running ({} s)\n\
             - benign stream: the same with {HOSTILE} in-memory integrations, the cost of recording tests this fast ({} s)\n",
            WARM_UP.as_secs(),
            MEASURED.as_secs(),
            WAVES_MEASURED.as_secs(),
            MEASURED.as_secs(),
            MEASURED.as_secs()
        );
        // Not counted: the service and the database settle after the set-up.
        let settle = Fire::start(&base, &admin, &hostile, Mode::Stream).await;
        tokio::time::sleep(MEASURED).await;
        settle.stop().await;
        let mut results = Vec::new();
        for _ in 0..rounds {
            let read = |measured: Duration| {
                let stop = Arc::new(AtomicBool::new(false));
                let timer = stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(WARM_UP + measured).await;
                    timer.store(true, Ordering::Relaxed);
                });
                load_until(pace, stop, &base, &admin, get_path.clone(), 100)
            };
            let (latencies, elapsed) = read(MEASURED).await;
            let idle = summarize(latencies, elapsed);
            let fire = Fire::start(&base, &admin, &hostile, Mode::Waves).await;
            let (latencies, elapsed) = read(WAVES_MEASURED).await;
            let waves = (summarize(latencies, elapsed), fire.stop().await);
            let fire = Fire::start(&base, &admin, &hostile, Mode::Stream).await;
            let (latencies, elapsed) = read(MEASURED).await;
            let stream = (summarize(latencies, elapsed), fire.stop().await);
            let fire = Fire::start(&base, &admin, &benign, Mode::Stream).await;
            let (latencies, elapsed) = read(MEASURED).await;
            let benign_stream = (summarize(latencies, elapsed), fire.stop().await);
            results.push(Round { idle, waves, stream, benign_stream });
        }
        let (peak, rss_at_end) = memory_of(pid);
        drop(server);

        println!(
            "{:<6} {:<14} {:>9} {:>9} {:>7} {:>12}",
            "round", "phase", "p50", "p99", "x idle", "tests"
        );
        for (n, r) in results.iter().enumerate() {
            let row = |phase: &str, (f, invocations): &(Figures, u64)| {
                println!(
                    "{:<6} {phase:<14} {:>9} {:>9} {:>7.2} {invocations:>12}",
                    n + 1,
                    ms(f.p50),
                    ms(f.p99),
                    f.p99.as_secs_f64() / r.idle.p99.as_secs_f64()
                );
            };
            row("idle", &(Figures { ..r.idle }, 0));
            row("waves", &r.waves);
            row("stream", &r.stream);
            row("benign stream", &r.benign_stream);
        }
        println!();
        println!(
            "service resident memory: {} after start-up and set-up, {} at the end, peak {}",
            mib(rss_at_start),
            mib(rss_at_end),
            mib(peak)
        );
        // Against the median idle p99 of the rounds: one round's idle p99 can be an outlier.
        let mut idle: Vec<f64> = results.iter().map(|r| r.idle.p99.as_secs_f64()).collect();
        idle.sort_by(f64::total_cmp);
        let idle = idle[idle.len() / 2];
        println!("median idle p99: {}", ms(Duration::from_secs_f64(idle)));
        let spread = |phase: fn(&Round) -> &(Figures, u64)| {
            let ratios: Vec<f64> = results.iter().map(|r| phase(r).0.p99.as_secs_f64() / idle).collect();
            (ratios.iter().copied().fold(f64::MAX, f64::min), ratios.iter().copied().fold(0.0, f64::max))
        };
        println!(
            "peak resident memory = {}                      (target < 1024 MiB: {})",
            mib(peak),
            if peak < 1 << 30 { "met" } else { "NOT met" }
        );
        let (best, worst) = spread(|r| &r.waves);
        println!(
            "GET /{{id}} p99, {HOSTILE} hostile at once / median idle = {best:.2}-{worst:.2}  (target <= 2.00: {})",
            if worst <= 2.0 { "met" } else { "NOT met" }
        );
        let (best, worst) = spread(|r| &r.stream);
        let (benign_best, benign_worst) = spread(|r| &r.benign_stream);
        println!(
            "GET /{{id}} p99, hostile stream / median idle = {best:.2}-{worst:.2} (benign stream: {benign_best:.2}-{benign_worst:.2})"
        );
    });
}
