//! Under fire: 32 hostile connectors tested at once, again and again (every import flooded,
//! results and requests oversized, a busy loop, memory filled, the stack overflowed, an endless
//! response body, a slow server), while a client reads `GET /{id}` at a steady rate (open loop:
//! latency counted from when each request was due). The service is the real binary on
//! PostgreSQL, with the hostile programs of `runtime/test-programs` in its plugins directory.
//!
//! It prints, for a few rounds, the API's p99 idle and under fire, the hostile invocations made,
//! and the service's peak resident memory (`VmHWM`), beside the targets: peak below 1 GiB, p99
//! under fire at most 2 x idle.
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
const MEASURED: Duration = Duration::from_secs(6);
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
    fire: Figures,
    invocations: u64,
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
        let readable = Arc::new(readable);
        let get_path = move |client: u64, i: u64| {
            let row = Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(READABLE) as usize;
            format!("/api/v1/integrations/{}", readable[row - 1])
        };
        let (_, rss_at_start) = memory_of(pid);

        println!("containment benchmark: {HOSTILE} hostile connectors tested at once, again and again, 2-core machine");
        println!(
            "API: GET /{{id}} at {rate} req/s over 4 connections, latency from when each request was due; \
             {} s measured after a {} s warm-up, idle then under fire, {rounds} rounds\n",
            MEASURED.as_secs(),
            WARM_UP.as_secs()
        );
        let mut results = Vec::new();
        for _ in 0..rounds {
            let measure = || {
                let stop = Arc::new(AtomicBool::new(false));
                let timer = stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(WARM_UP + MEASURED).await;
                    timer.store(true, Ordering::Relaxed);
                });
                load_until(pace, stop, &base, &admin, get_path.clone(), 100)
            };
            let (latencies, elapsed) = measure().await;
            let idle = summarize(latencies, elapsed);

            // Under fire: each hostile integration is tested again as soon as its last test ends.
            let firing = Arc::new(AtomicBool::new(true));
            let invocations = Arc::new(AtomicU64::new(0));
            let mut attackers = Vec::new();
            for id in &hostile {
                let (firing, invocations) = (firing.clone(), invocations.clone());
                let mut http = RawClient::connect(&base, &admin).await;
                let path = format!("/api/v1/integrations/{id}/test");
                attackers.push(tokio::spawn(async move {
                    while firing.load(Ordering::Relaxed) {
                        let (status, _) = http.send("POST", &path).await;
                        assert_eq!(status, 200, "POST {path}");
                        invocations.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            let (latencies, elapsed) = measure().await;
            let fire = summarize(latencies, elapsed);
            firing.store(false, Ordering::Relaxed);
            for a in attackers {
                a.await.unwrap();
            }
            results.push(Round { idle, fire, invocations: invocations.load(Ordering::Relaxed) });
        }
        let (peak, rss_at_end) = memory_of(pid);
        drop(server);

        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>7} {:>12}",
            "round", "idle p50", "idle p99", "fire p50", "fire p99", "ratio", "invocations"
        );
        for (n, r) in results.iter().enumerate() {
            println!(
                "{:<8} {:>10} {:>10} {:>10} {:>10} {:>7.2} {:>12}",
                n + 1,
                ms(r.idle.p50),
                ms(r.idle.p99),
                ms(r.fire.p50),
                ms(r.fire.p99),
                r.fire.p99.as_secs_f64() / r.idle.p99.as_secs_f64(),
                r.invocations
            );
        }
        println!();
        println!(
            "service resident memory: {} after start-up and set-up, {} at the end, peak {}",
            mib(rss_at_start),
            mib(rss_at_end),
            mib(peak)
        );
        let ratios: Vec<f64> = results.iter().map(|r| r.fire.p99.as_secs_f64() / r.idle.p99.as_secs_f64()).collect();
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        let best = ratios.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "peak resident memory = {}                 (target < 1024 MiB: {})",
            mib(peak),
            if peak < 1 << 30 { "met" } else { "NOT met" }
        );
        println!(
            "GET /{{id}} p99 under fire / idle = {best:.2}-{worst:.2}  (target <= 2.00: {})",
            if worst <= 2.0 { "met" } else { "NOT met" }
        );
    });
}
