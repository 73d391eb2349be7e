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
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench containment` (or
//! `make bench`). PostgreSQL from `STELLA_BENCH_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `STELLA_BENCH_RATE` sets the rate of the API
//! load (default 500 requests/s), `STELLA_BENCH_ROUNDS` the rounds (default 3).
//!
//! The plugins directory's files are submitted as pending versions at start; the benchmark
//! approves each through the API, as a `plugins.admin` reviewer does, before it creates the
//! integrations. Their secrets are the tenant `bench`'s (`STELLA_SECRET__BENCH__…`).
//!
//! Without `--bench` (`cargo test` of the same, as `make test` runs it), a smoke run: every phase,
//! one round (`STELLA_BENCH_ROUNDS` still applies), 0.3 s windows (1 s for the waves) after a
//! 0.2 s warm-up, 40 readable integrations, and a 1 s invocation deadline in the service (10 s by
//! default) so that a wave ends within about a second. It asserts that every phase made its tests,
//! that each hostile integration's last test ran its connector (a record of its provider, its own
//! secret resolved where it asks for it) and that the ledger kept every test; it judges no target.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{
    Figures, Pace, RawClient, Rng, SMOKE_NOTE, env_number, load_until, ms, seconds, start_server, summarize, verdict,
};
use serde_json::{Value, json};
use sqlx::Connection;
use stella_runtime::Manifest;
use stella_runtime::manifest::embed_manifest;
use test_programs_artifacts::*;

const TENANT: &str = "bench";
/// Hostile invocations in flight at any time.
const HOSTILE: usize = 32;
const AUTH_REF: &str = "ref://integrations/bench/token";
const KEY_REF: &str = "ref://integrations/bench/es256-key";
/// The tenant `bench`'s secrets of `AUTH_REF` and `KEY_REF` (`STELLA_SECRET__<TENANT>__<SCOPE>__
/// <PROVIDER>__<KEY>`, as `stella-integrations secret-location --tenant bench REF` prints them).
const AUTH_REF_VARIABLE: &str = "STELLA_SECRET__BENCH__INTEGRATIONS__BENCH__TOKEN";
const KEY_REF_VARIABLE: &str = "STELLA_SECRET__BENCH__INTEGRATIONS__BENCH__ES256_KEY";
/// The provider `flood`'s own manifest names.
const FLOOD_PROVIDER: &str = "test-program-flood";
/// The other hostile programs, each under a provider of its own.
const PROGRAMS: &[(&str, &str)] = &[
    ("bench-oversized", OVERSIZED),
    ("bench-infinite-loop", INFINITE_LOOP),
    ("bench-memory-growth", MEMORY_GROWTH),
    ("bench-deep-recursion", DEEP_RECURSION),
    ("bench-panic", PANIC),
    ("bench-body-flood", BODY_FLOOD),
    ("bench-slow", SLOW),
];
/// The floods that resolve the integration's own secret (every other one never asks for it).
const FLOODS_WITH_SECRET: &[&str] =
    &["send-for-token", "resolve-keep", "resolve-drop", "reveal", "sign-jwt", "sign-jwt-keep", "secret-method"];

/// How much a run measures.
#[derive(Clone, Copy)]
struct Size {
    /// Integrations the API load reads (in-memory connector, never tested during the run).
    readable: u32,
    warm_up: Duration,
    measured: Duration,
    /// A wave lasts as long as its slowest connector: up to the invocation deadline.
    waves_measured: Duration,
    /// The service's invocation deadline (`sandbox.limits.deadline-ms`): its default, or short in
    /// a smoke run.
    deadline_ms: Option<u64>,
    /// How long the stub's `/slow` takes to answer.
    slow: Duration,
}

const REAL: Size = Size {
    readable: 100,
    warm_up: Duration::from_secs(2),
    measured: Duration::from_secs(10),
    waves_measured: Duration::from_secs(20),
    deadline_ms: None,
    slow: Duration::from_secs(1),
};

const SMOKE: Size = Size {
    readable: 40,
    warm_up: Duration::from_millis(200),
    measured: Duration::from_millis(300),
    waves_measured: Duration::from_millis(1000),
    deadline_ms: Some(1000),
    slow: Duration::from_millis(200),
};

/// The 32 hostile integrations: (provider, configuration, AuthRef).
fn hostile_integrations() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    let mut all = Vec::new();
    for &flood in FLOODS {
        let auth_ref = if flood.starts_with("sign-jwt") { KEY_REF } else { AUTH_REF };
        all.push((FLOOD_PROVIDER, json!({ "flood": flood }), auth_ref));
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
    for &(provider, path) in PROGRAMS {
        let manifest = Manifest::from_toml(&format!(
            "[connector]\nprovider = '{provider}'\ntypes = ['registry']\nversion = '0.0.1'\n\
             description = 'A hostile program of the containment benchmark.'"
        ))
        .unwrap();
        let wasm = embed_manifest(&std::fs::read(path).unwrap(), &manifest).unwrap();
        std::fs::write(dir.join(format!("{provider}.wasm")), wasm).unwrap();
    }
}

/// What the hostile programs call: `/ok`, a token endpoint, an endless body, a slow answer (after
/// `slow`).
async fn stub_server(slow: Duration) -> String {
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
            get(move || async move {
                tokio::time::sleep(slow).await;
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

/// A request to the API with a bearer token and an optional JSON body: the status and the JSON
/// answer (`Null` when it is not JSON).
async fn call(method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

/// Approves, through the API as a `plugins.admin` reviewer does, the version of each provider
/// that the plugins directory submitted at start (pending until then: a pending version never
/// runs), and checks that the service then serves it.
async fn approve_plugins(base: &str, reviewer: &str, reader: &str) {
    let providers = std::iter::once(FLOOD_PROVIDER).chain(PROGRAMS.iter().map(|(provider, _)| *provider));
    for provider in providers {
        let (status, versions) =
            call(reqwest::Method::GET, format!("{base}/api/v1/plugins/{provider}/versions"), reviewer, None).await;
        assert_eq!(status, 200, "the versions of `{provider}`: {versions}");
        let pending = versions["items"]
            .as_array()
            .and_then(|items| items.iter().find(|v| v["status"] == "pending"))
            .unwrap_or_else(|| panic!("the plugins directory submitted `{provider}`, pending review: {versions}"));
        let version = pending["version"].as_str().unwrap();
        let (status, approved) = call(
            reqwest::Method::POST,
            format!("{base}/api/v1/plugins/{provider}/versions/{version}/approve"),
            reviewer,
            Some(json!({"permissionsDigest": pending["permissionsDigest"]})),
        )
        .await;
        assert_eq!(status, 200, "approving `{provider}` {version}: {approved}");
        assert_eq!(approved["active"], true, "`{provider}` {version} is active once approved: {approved}");
        let (status, plugin) =
            call(reqwest::Method::GET, format!("{base}/api/v1/plugins/{provider}"), reader, None).await;
        assert_eq!(
            (status, plugin["source"].as_str()),
            (200, Some("stored")),
            "the service serves `{provider}`: {plugin}"
        );
    }
}

/// A smoke run's check that the hostile tests really ran: each hostile integration's last test
/// has a record of its own provider (its connector ran; a test of a provider not loaded has none),
/// the floods that ask for the integration's secret got it, and no secret was missing.
async fn assert_hostile_tests_ran(base: &str, token: &str, hostile: &[String]) {
    for (id, (provider, configuration, _)) in hostile.iter().zip(hostile_integrations()) {
        let (status, latest) =
            call(reqwest::Method::GET, format!("{base}/api/v1/integrations/{id}/tests/latest"), token, None).await;
        assert_eq!(status, 200, "the last test of `{provider}` {configuration} was kept: {latest}");
        let record = &latest["record"];
        assert_eq!(record["provider"], provider, "the last test of `{provider}` {configuration} ran it: {latest}");
        let resolves: Vec<&Value> = record["hostCalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["interface"] == "secrets" && c["operation"] == "resolve")
            .collect();
        assert!(
            resolves.iter().all(|c| c["error"] != "not-found"),
            "`{provider}` {configuration}: a secret of the tenant `{TENANT}` was not found: {resolves:?}"
        );
        if configuration["flood"].as_str().is_some_and(|f| FLOODS_WITH_SECRET.contains(&f)) {
            assert!(
                resolves.iter().any(|c| c.get("error").is_none()),
                "`{provider}` {configuration} resolved its own secret: {record}"
            );
        }
    }
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
    let smoke = common::smoke();
    let size = if smoke { SMOKE } else { REAL };
    let Size { warm_up, measured, waves_measured, .. } = size;
    let rate = env_number("STELLA_BENCH_RATE", 500);
    let rounds = env_number("STELLA_BENCH_ROUNDS", if smoke { 1 } else { 3 }).max(1);
    let pace = Pace { clients: 4, rate: Some(rate), warm_up };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let (_database, url) = common::create_database().await;
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        write_plugins(&plugins);
        let config = dir.path().join("containment.toml");
        let mut config_text = "[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n".to_string();
        if let Some(deadline_ms) = size.deadline_ms {
            config_text += &format!("\n[sandbox.limits]\ndeadline-ms = {deadline_ms}\n");
        }
        std::fs::write(&config, config_text).unwrap();
        let key = es256_key_pem();
        let (server, base) = start_server(
            &url,
            dir.path(),
            &[
                ("STELLA_CONFIG", config.to_str().unwrap()),
                ("STELLA_PLUGINS_DIR", plugins.to_str().unwrap()),
                (AUTH_REF_VARIABLE, "bench-secret-value-0123456789"),
                (KEY_REF_VARIABLE, &key),
            ],
        );
        let pid = server.0.id();
        let admin = common::token(dir.path(), TENANT, "integrations.admin");
        let reviewer = common::token(dir.path(), TENANT, "plugins.admin");
        approve_plugins(&base, &reviewer, &admin).await;
        let stub = stub_server(size.slow).await;

        let mut readable = Vec::new();
        for n in 0..size.readable {
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
        let readable_count = size.readable;
        let get_path = move |client: u64, i: u64| {
            let row = Rng(0x9E37_79B9_7F4A_7C15 ^ (client << 32) ^ i).row(readable_count) as usize;
            format!("/api/v1/integrations/{}", readable[row - 1])
        };
        let (_, rss_at_start) = memory_of(pid);

        if smoke {
            println!("{SMOKE_NOTE}");
            println!("(and an invocation deadline of {} ms, so that a wave ends within about a second)", size.deadline_ms.unwrap_or(0));
        }
        println!("containment benchmark: {HOSTILE} hostile connectors tested through the API, 2-core machine");
        println!(
            "API: GET /{{id}} at {rate} req/s over 4 connections, latency from when each request was due, \
             after a {} warm-up; {rounds} rounds of:\n\
             - idle: nothing else ({})\n\
             - waves: the {HOSTILE} hostile integrations tested at once, the next {HOSTILE} when all have answered ({})\n\
             - stream: each hostile integration tested again as soon as its test answers, {HOSTILE} always running ({})\n\
             - benign stream: the same with {HOSTILE} in-memory integrations, the cost of recording tests this fast ({})\n",
            seconds(warm_up),
            seconds(measured),
            seconds(waves_measured),
            seconds(measured),
            seconds(measured)
        );
        // Every phase tests each of its integrations at least once (a wave is tested whole, a
        // stream's connections each test once before they look whether to stop).
        let made = |what: &str, tests: u64, integrations: usize| {
            if smoke {
                assert!(tests >= integrations as u64, "{what}: {tests} tests of {integrations} integrations");
            }
            tests
        };
        // Not counted: the service and the database settle after the set-up.
        let settle = Fire::start(&base, &admin, &hostile, Mode::Stream).await;
        tokio::time::sleep(measured).await;
        let mut hostile_tests = made("the settling stream", settle.stop().await, hostile.len());
        let mut benign_tests = 0;
        let mut results = Vec::new();
        for _ in 0..rounds {
            let read = |measured: Duration| {
                let stop = Arc::new(AtomicBool::new(false));
                let timer = stop.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(warm_up + measured).await;
                    timer.store(true, Ordering::Relaxed);
                });
                load_until(pace, stop, &base, &admin, get_path.clone(), 100)
            };
            let (latencies, elapsed) = read(measured).await;
            let idle = summarize(latencies, elapsed);
            let fire = Fire::start(&base, &admin, &hostile, Mode::Waves).await;
            let (latencies, elapsed) = read(waves_measured).await;
            let waves = (summarize(latencies, elapsed), made("the waves", fire.stop().await, hostile.len()));
            let fire = Fire::start(&base, &admin, &hostile, Mode::Stream).await;
            let (latencies, elapsed) = read(measured).await;
            let stream = (summarize(latencies, elapsed), made("the hostile stream", fire.stop().await, hostile.len()));
            let fire = Fire::start(&base, &admin, &benign, Mode::Stream).await;
            let (latencies, elapsed) = read(measured).await;
            let benign_stream = (summarize(latencies, elapsed), made("the benign stream", fire.stop().await, benign.len()));
            hostile_tests += waves.1 + stream.1;
            benign_tests += benign_stream.1;
            results.push(Round { idle, waves, stream, benign_stream });
        }
        let (peak, rss_at_end) = memory_of(pid);
        if smoke {
            assert_hostile_tests_ran(&base, &admin, &hostile).await;
            // The ledger kept every test (health checks are off: nothing else invokes a connector).
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let (kept_hostile, kept_benign): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE provider <> 'in-memory'), count(*) FILTER (WHERE provider = 'in-memory') \
                 FROM invocations WHERE tenant_id = $1",
            )
            .bind(TENANT)
            .fetch_one(&mut c)
            .await
            .unwrap();
            assert_eq!(
                (kept_hostile, kept_benign),
                (hostile_tests as i64, benign_tests as i64),
                "the ledger holds every hostile and every benign test"
            );
        }
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
            verdict(smoke, peak < 1 << 30)
        );
        let (best, worst) = spread(|r| &r.waves);
        println!(
            "GET /{{id}} p99, {HOSTILE} hostile at once / median idle = {best:.2}-{worst:.2}  (target <= 2.00: {})",
            verdict(smoke, worst <= 2.0)
        );
        let (best, worst) = spread(|r| &r.stream);
        let (benign_best, benign_worst) = spread(|r| &r.benign_stream);
        println!(
            "GET /{{id}} p99, hostile stream / median idle = {best:.2}-{worst:.2} (benign stream: {benign_best:.2}-{benign_worst:.2})"
        );
    });
}
