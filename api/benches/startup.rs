//! `make bench` (start-up): how long `serve` takes from its launch until `/readyz` answers 200, with
//! every built-in connector, cold (an empty data directory: each connector is compiled) and warm
//! (the same data directory again: each is read from `<data-dir>/compile-cache`), several runs
//! each; each connector's compile and cache-read time; and the Python example (a componentize-py
//! component of about 18 MB, from `STELLA_PYTHON_CONNECTOR`): its compile time, its load by a
//! second sandbox on the same cache (another replica on this machine), and its invocation cost
//! beside a Rust connector's. Target: a warm start answers `/readyz` within 1 s.
//!
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench startup` (or
//! `make bench`). `STELLA_BENCH_RUNS` sets the number of starts of each kind (default 5).
//!
//! Without `--bench` (`cargo test` of the same, as `make test` runs it), a smoke run: one start of
//! each kind and 5 invocations of each connector; it asserts that both starts served every built-in
//! connector (compiled, then read from the cache) and that the invocations succeeded, and judges no
//! target. The Python example is measured when `STELLA_PYTHON_CONNECTOR` names a file; when it
//! names none, a smoke run under `CI=true` fails (CI must build it: `make python-connector`), and
//! any other run says it was not measured.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SMOKE_NOTE, env_number, spread, start_server, verdict};
use serde_json::{Value, json};
use stella_runtime::egress::NetworkPolicy;
use stella_runtime::secrets::{SecretNamespace, StaticSecretResolver};
use stella_runtime::{ConnectionConfig, ConnectorSource, IntegrationType, Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TARGET_WARM: Duration = Duration::from_secs(1);
/// Invocations measured per connector, after a tenth as many uncounted.
const INVOCATIONS: usize = 200;
const SMOKE_INVOCATIONS: usize = 5;

/// Polls `GET /readyz` until it answers 200.
fn wait_ready(base: &str) {
    let address = base.trim_start_matches("http://");
    loop {
        if let Ok(mut s) = TcpStream::connect(address) {
            let _ =
                s.write_all(format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes());
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One start of `serve` on `dir`: the time from launch to a ready `/readyz`, and what
/// `GET /api/v1/plugins` says of each connector's compilation.
fn start(dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> (Duration, Vec<Value>) {
    let database = format!("sqlite://{}", dir.join("catalog.db").display());
    let launched = Instant::now();
    let (server, base) = start_server(&database, dir, &[]);
    wait_ready(&base);
    let ready = launched.elapsed();
    let token = common::token(dir, "bench", "integrations.read");
    let list: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/plugins"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    drop(server);
    (ready, list["items"].as_array().cloned().unwrap_or_default())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// This process's CPU time (user + system), all threads.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// A product on loopback that names itself in every answer (`X-Version`, a JSON status), for as
/// many keep-alive requests as it is sent.
async fn product_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut have = 0;
                loop {
                    let Ok(n) = stream.read(&mut buf[have..]).await else { return };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        let body = r#"{"status":"ok"}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nX-Version: 2.4.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn sandbox(cache: &std::path::Path) -> Sandbox {
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let config = SandboxConfig { network, cache_dir: Some(cache.to_path_buf()), ..SandboxConfig::default() };
    Sandbox::new(config, Arc::new(StaticSecretResolver::default())).unwrap()
}

/// Median wall time and CPU time per `test-connection` of `wasm` against the product server, over
/// `invocations` calls.
async fn invocation_cost(
    sandbox: &Sandbox,
    wasm: &[u8],
    provider: &str,
    base: &str,
    configuration: Value,
    invocations: usize,
) -> (f64, f64) {
    let connector = sandbox.load(wasm, ConnectorSource::BuiltIn).unwrap();
    let config = ConnectionConfig {
        integration_id: "bench".into(),
        name: "bench".into(),
        integration_type: IntegrationType::Host,
        provider: provider.into(),
        base_url: Some(base.into()),
        auth_ref: None,
        secret_namespace: SecretNamespace::Unscoped,
        configuration,
        environment: None,
    };
    for _ in 0..invocations.div_ceil(10) {
        assert!(sandbox.test_connection(&connector, &config).await.result.success);
    }
    let mut walls = Vec::with_capacity(invocations);
    let cpu_before = cpu_time();
    for _ in 0..invocations {
        let started = Instant::now();
        let run = sandbox.test_connection(&connector, &config).await;
        walls.push(started.elapsed());
        assert!(run.result.success, "{:?}", run.result);
    }
    let cpu = (cpu_time() - cpu_before).as_secs_f64() * 1e6 / invocations as f64;
    let (median, _, _) = spread(walls);
    (median.as_secs_f64() * 1e6, cpu)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let smoke = common::smoke();
    let runs = (env_number("STELLA_BENCH_RUNS", if smoke { 1 } else { 5 }) as usize).max(1);
    let invocations = if smoke { SMOKE_INVOCATIONS } else { INVOCATIONS };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!();
    if smoke {
        println!("{SMOKE_NOTE}");
    }
    println!(
        "start-up benchmark: `serve` with every built-in connector, SQLite, launch to /readyz 200, {runs} runs each"
    );

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut per_connector: Vec<(String, Vec<u64>, Vec<u64>)> = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let (cold_time, cold_list) = start(dir.path(), &runtime);
        let (warm_time, warm_list) = start(dir.path(), &runtime);
        if smoke {
            let builtins = stella_builtin_connectors::BUILTINS.len();
            for (kind, list) in [("cold", &cold_list), ("warm", &warm_list)] {
                assert_eq!(list.len(), builtins, "the {kind} start serves every built-in connector: {list:?}");
                assert!(
                    list.iter().all(|c| c["source"] == "built-in" && c["compilation"]["compileMs"].is_u64()),
                    "the {kind} start loaded every built-in connector: {list:?}"
                );
            }
            assert!(
                cold_list.iter().all(|c| c["compilation"]["fromCache"] == false),
                "the cold start compiled every connector: {cold_list:?}"
            );
        }
        assert!(
            warm_list.iter().all(|c| c["compilation"]["fromCache"] == true),
            "the warm start read every connector from the cache"
        );
        cold.push(cold_time);
        warm.push(warm_time);
        for (c, w) in cold_list.iter().zip(&warm_list) {
            let provider = c["provider"].as_str().unwrap_or("?").to_string();
            let (cm, wm) = (
                c["compilation"]["compileMs"].as_u64().unwrap_or(0),
                w["compilation"]["compileMs"].as_u64().unwrap_or(0),
            );
            match per_connector.iter_mut().find(|(p, _, _)| *p == provider) {
                Some((_, cs, ws)) => {
                    cs.push(cm);
                    ws.push(wm);
                }
                None => per_connector.push((provider, vec![cm], vec![wm])),
            }
        }
    }
    let (cold_median, cold_min, cold_max) = spread(cold);
    let (warm_median, warm_min, warm_max) = spread(warm);
    println!("{:<38} {:>9} {:>9} {:>9}", "", "median", "min", "max");
    println!(
        "{:<38} {:>9} {:>9} {:>9}",
        "cold start (every connector compiled)",
        ms(cold_median),
        ms(cold_min),
        ms(cold_max)
    );
    println!(
        "{:<38} {:>9} {:>9} {:>9}",
        "warm start (read from compile-cache)",
        ms(warm_median),
        ms(warm_min),
        ms(warm_max)
    );
    println!(
        "warm start to /readyz <= {}: {} (median {}, worst {})",
        ms(TARGET_WARM),
        if smoke {
            verdict(smoke, true)
        } else if warm_max <= TARGET_WARM {
            "met"
        } else if warm_median <= TARGET_WARM {
            "met at the median, NOT in every run"
        } else {
            "NOT met"
        },
        ms(warm_median),
        ms(warm_max)
    );
    println!();
    println!("{:<16} {:>16} {:>18}", "connector", "compile (median)", "cache read (median)");
    for (provider, mut c, mut w) in per_connector {
        c.sort();
        w.sort();
        println!("{provider:<16} {:>13} ms {:>15} ms", c[c.len() / 2], w[w.len() / 2]);
    }

    // The Python example: an interpreter in a component, compiled once per machine.
    println!();
    let python = match std::env::var("STELLA_PYTHON_CONNECTOR") {
        Err(_) => Err("set STELLA_PYTHON_CONNECTOR".to_string()),
        Ok(path) => std::fs::read(&path).map_err(|e| format!("STELLA_PYTHON_CONNECTOR={path}: {e}")),
    };
    let python = match python {
        Ok(python) => python,
        Err(why) if smoke && std::env::var("CI").as_deref() == Ok("true") => panic!(
            "the Python example cannot be measured ({why}): a smoke run in CI (CI=true) measures it; build it first \
             with `make python-connector` (it writes target/connectors/python-example.wasm)"
        ),
        Err(why) => {
            println!("the Python example: not measured ({why}; `make bench` builds it)");
            return;
        }
    };
    let cache = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let first = sandbox(cache.path());
        let loaded = first.load(&python, ConnectorSource::BuiltIn).unwrap();
        let compile = started.elapsed();
        assert!(!loaded.compilation().from_cache);
        // Another replica on this machine: a new sandbox on the same cache directory.
        let started = Instant::now();
        let second = sandbox(cache.path());
        let again = second.load(&python, ConnectorSource::BuiltIn).unwrap();
        let reload = started.elapsed();
        assert!(again.compilation().from_cache);
        println!(
            "the Python example ({:.1} MB): compiled in {}; a second sandbox on the same cache loads it in {}",
            python.len() as f64 / 1e6,
            ms(compile),
            ms(reload)
        );
        let base = product_server().await;
        let probe = stella_builtin_connectors::BUILTINS.iter().find(|(p, _)| *p == "http-probe").unwrap().1;
        let (rust_wall, rust_cpu) = invocation_cost(
            &second,
            probe,
            "http-probe",
            &base,
            json!({"path": "/health", "expectedHeader": {"name": "x-version"}}),
            invocations,
        )
        .await;
        let (py_wall, py_cpu) =
            invocation_cost(&second, &python, "python-example", &base, json!({"path": "/health"}), invocations).await;
        println!("{:<44} {:>12} {:>12}", format!("test-connection, {invocations} calls"), "wall (p50)", "CPU / call");
        println!("{:<44} {:>9.0} µs {:>9.0} µs", "http-probe (Rust, 1 request)", rust_wall, rust_cpu);
        println!("{:<44} {:>9.0} µs {:>9.0} µs", "python-example (componentize-py, 1 request)", py_wall, py_cpu);
    });
}
