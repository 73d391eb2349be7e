//! `make bench`: what the sandbox costs, measured on this machine in one run.
//!
//! (a) a native reqwest GET to a minimal HTTP/1.1 keep-alive server running in a separate
//!     process; (b) the same GET done by the well-behaved test connector through the sandbox
//!     (fresh instance + call + host http, every limit and policy check on); (c) instantiate +
//!     call of the in-memory connector, no network; (d) the GET of (b) with the integration's
//!     credential applied (resolved, registered with the redactor, the request scanned for its
//!     value and the answer scrubbed of it). (a), (b) and (d) alternate, and the CPU time this
//!     process spends in each is measured beside the wall time: (b) minus (a) is the sandbox's
//!     own CPU per sandboxed GET, which is what the targets judge (wall-clock ratios on a 2-core
//!     machine mostly measure how the processes share the cores). Several rounds on each tokio
//!     runtime flavour; the medians, their spread and the targets are printed.
//!
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench sandbox` (or
//! `make bench`). Without `--bench` (`cargo test` of the same, as `make test` runs it), a smoke
//! run: one round on each runtime of a handful of calls (3 uncounted, 10 measured) of every kind,
//! each asserted to succeed (the sandboxed GET answered 200, the credential applied); the figures
//! are printed, no target judged.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use stella_runtime::egress::NetworkPolicy;
use stella_runtime::record::Interface;
use stella_runtime::secrets::{AuthRef, SecretNamespace, SecretValue, StaticSecretResolver};
use stella_runtime::{ConnectionConfig, ConnectorSource, IntegrationType, LoadedConnector, Sandbox, SandboxConfig};

const SERVER_ENV: &str = "STELLA_BENCH_SERVER";

/// How many calls a run makes: uncounted, then measured, in each of its rounds per runtime.
#[derive(Clone, Copy)]
struct Size {
    warmup: usize,
    samples: usize,
    /// Rounds of (a)/(b)/(c) per runtime flavour, for the spread.
    rounds: usize,
}

const REAL: Size = Size { warmup: 200, samples: 3000, rounds: 5 };
const SMOKE: Size = Size { warmup: 3, samples: 10, rounds: 1 };
/// The sandbox's own CPU per sandboxed GET, (b) minus (a), on the current-thread runtime.
const TARGET_EXTRA_CPU_CURRENT_US: f64 = 20.0;
/// The same on the multi-thread runtime (cross-thread wake-ups cost more there).
const TARGET_EXTRA_CPU_MULTI_US: f64 = 30.0;
const TARGET_INSTANTIATE_US: f64 = 12.0;
/// The credential (d) applies: a token of a typical length.
const AUTH_REF: &str = "ref://integrations/bench/token";

/// `STELLA_BENCH_PROFILE=<seconds>`: only one of (a), (b), (c), on a current-thread runtime, for
/// that long, for a profiler to attach to (`perf record`) or to count under (`valgrind
/// --tool=callgrind`: two runs of different lengths give the instructions per call, the set-up
/// cancelling out); nothing is printed but the count.
const PROFILE_ENV: &str = "STELLA_BENCH_PROFILE";
/// Which one the profile runs: `native` (a), `sandboxed` (b, the default) or `instance` (c).
const PROFILE_OF_ENV: &str = "STELLA_BENCH_PROFILE_OF";

/// Whether this is a smoke run: the arguments do not hold `--bench`, which `cargo bench` passes
/// to a `harness = false` benchmark and `cargo test --benches` does not (criterion tells its test
/// mode the same way). A smoke run makes every kind of call a few times and asserts that each
/// worked, so that a broken benchmark fails CI; its figures mean nothing and no target is judged.
/// (The catalog's benchmarks have the same function in `api/benches/common`, another crate.)
fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        return serve();
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let smoke = smoke();
    let size = if smoke { SMOKE } else { REAL };
    // The server runs in its own process so that its work does not share our runtime.
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the bench server starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("the server prints its port");
    let url = format!("http://127.0.0.1:{port}");
    if let Some(seconds) = std::env::var(PROFILE_ENV).ok().and_then(|s| s.parse::<u64>().ok()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let of = std::env::var(PROFILE_OF_ENV).unwrap_or_else(|_| "sandboxed".into());
        let calls = rt.block_on(profile(&of, &url, Duration::from_secs(seconds), size));
        println!("{calls} calls ({of}) in {seconds} s");
        server.kill().ok();
        server.wait().ok();
        return;
    }

    // Both runtime flavours: the single-threaded one shows the sandbox's own cost; the
    // multi-threaded one (what the service runs) adds cross-thread wake-ups, which on an idle
    // 2-core machine vary a lot from run to run.
    let mut met = true;
    println!();
    if smoke {
        println!(
            "smoke run (no `--bench`: `cargo test --benches`): every kind of call a few times; the figures are not \
             meaningful and the targets are not judged"
        );
    }
    let Size { warmup, samples, rounds } = size;
    println!(
        "sandbox benchmark: {rounds} rounds per runtime, each the median of {samples} calls after {warmup} warm-up calls"
    );
    for (flavour, rt, target) in [
        (
            "current-thread",
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            TARGET_EXTRA_CPU_CURRENT_US,
        ),
        (
            "multi-thread",
            tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap(),
            TARGET_EXTRA_CPU_MULTI_US,
        ),
    ] {
        println!("tokio {flavour} runtime (µs; wall, and this process's CPU):");
        println!(
            "  round   (a) native GET      (b) sandboxed GET    (c) no network      (d) with credential   CPU (b)-(a)"
        );
        let mut rounds = Vec::new();
        for round in 1..=size.rounds {
            let f = rt.block_on(measure(&url, size, smoke));
            println!(
                "  {round:>5}   {:>7.1} ({:>6.1})   {:>7.1} ({:>6.1})    {:>7.1} ({:>6.1})    {:>7.1} ({:>6.1})     {:>7.1}",
                f.a,
                f.a_cpu,
                f.b,
                f.b_cpu,
                f.c,
                f.c_cpu,
                f.d,
                f.d_cpu,
                f.b_cpu - f.a_cpu
            );
            rounds.push(f);
        }
        let (extra, extra_min, extra_max) = spread(rounds.iter().map(|f| f.b_cpu - f.a_cpu).collect());
        let (c, c_min, c_max) = spread(rounds.iter().map(|f| f.c).collect());
        // Where (b)-(a) goes: a fresh instance and a call cost (c)'s CPU with no request at all;
        // the rest is the request's path through the host beyond what a native GET costs.
        let (c_cpu, c_cpu_min, c_cpu_max) = spread(rounds.iter().map(|f| f.c_cpu).collect());
        let (http, http_min, http_max) = spread(rounds.iter().map(|f| f.b_cpu - f.a_cpu - f.c_cpu).collect());
        let (ratio, ratio_min, ratio_max) = spread(rounds.iter().map(|f| f.b / f.a).collect());
        let (credential, credential_min, credential_max) = spread(rounds.iter().map(|f| f.d_cpu - f.b_cpu).collect());
        println!(
            "  sandbox's own CPU per GET, (b)-(a): {extra:.1} µs ({extra_min:.1}–{extra_max:.1})   target <= {target} µs: {}",
            verdict(smoke, extra <= target)
        );
        println!(
            "  (c) instantiate + call:             {c:.1} µs ({c_min:.1}–{c_max:.1})   target <= {TARGET_INSTANTIATE_US} µs: {}",
            verdict(smoke, c <= TARGET_INSTANTIATE_US)
        );
        println!("    of which a fresh instance + call, (c)'s CPU:  {c_cpu:.1} µs ({c_cpu_min:.1}–{c_cpu_max:.1})");
        println!("    and the request through the host, (b)-(a)-(c): {http:.1} µs ({http_min:.1}–{http_max:.1})");
        println!(
            "  a credential's CPU per GET, (d)-(b): {credential:.1} µs ({credential_min:.1}–{credential_max:.1})   \
             (resolve, the redactor, the request's scan, the answer's scrub; no target)"
        );
        println!(
            "  wall-clock ratio b/a:               {ratio:.2} ({ratio_min:.2}–{ratio_max:.2})   (not a target here)"
        );
        met &= extra <= target && c <= TARGET_INSTANTIATE_US;
    }
    server.kill().ok();
    server.wait().ok();
    println!("targets on both runtimes: {}", verdict(smoke, met));
}

/// A target's verdict: `met`, `NOT met`, or in a smoke run, not judged (the catalog's benchmarks
/// have the same function in `api/benches/common`, another crate).
fn verdict(smoke: bool, met: bool) -> &'static str {
    match (smoke, met) {
        (true, _) => "not judged: smoke run",
        (false, true) => "met",
        (false, false) => "NOT met",
    }
}

/// Median, min and max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// Medians in µs: wall time of (a), (b), (c), and the CPU time this process spent in each
/// (the server runs in another process). Wall minus CPU is time spent waiting: for the server, and
/// for the scheduler to wake a thread up.
struct Figures {
    a: f64,
    b: f64,
    c: f64,
    d: f64,
    c_cpu: f64,
    a_cpu: f64,
    b_cpu: f64,
    d_cpu: f64,
}

/// CPU time of this whole process (all threads). std has no CPU clock, hence the one FFI call.
#[allow(unsafe_code)]
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(u64::try_from(ts.tv_sec).unwrap(), u32::try_from(ts.tv_nsec).unwrap())
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// A sandbox that may reach the bench server on loopback, with every other default but the
/// number of invocations at once, which sizes the pooling allocator's reservation of address space.
fn bench_sandbox(max_concurrent_invocations: u32) -> Sandbox {
    let mut network = NetworkPolicy::default();
    network.allow.push("127.0.0.1/32".parse().unwrap());
    let config = SandboxConfig { network, max_concurrent_invocations, ..SandboxConfig::default() };
    let mut secrets = StaticSecretResolver::default();
    secrets.insert(
        AuthRef::parse(AUTH_REF).unwrap(),
        SecretValue::new("ghp_4fQ1bench0Token0Of0Forty0Characters0x".into()),
    );
    Sandbox::new(config, Arc::new(secrets)).unwrap()
}

fn load(sandbox: &Sandbox, path: &str) -> LoadedConnector {
    sandbox.load(&std::fs::read(path).unwrap(), ConnectorSource::BuiltIn).unwrap()
}

/// The integration the connectors are asked to test: the bench server's, or none.
fn integration(base_url: Option<&str>) -> ConnectionConfig {
    ConnectionConfig {
        integration_id: "bench".into(),
        name: "bench".into(),
        integration_type: IntegrationType::Registry,
        provider: "bench".into(),
        base_url: base_url.map(str::to_string),
        auth_ref: None,
        secret_namespace: SecretNamespace::Unscoped,
        configuration: json!({}),
        environment: None,
    }
}

/// The client of (a), the native GET.
fn native_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// (a): one native GET of the bench server's `ok`.
async fn native_get(client: &reqwest::Client, ok_url: &str) {
    let body = client.get(ok_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"ok");
}

/// Only (a) `native`, (b) `sandboxed` or (c) `instance` calls, for `duration` (after a warm-up):
/// what a profile is taken of.
async fn profile(of: &str, url: &str, duration: Duration, size: Size) -> u64 {
    let client = native_client();
    let ok_url = format!("{url}/ok");
    // One call at a time: a pool for one invocation, whose address space valgrind can reserve
    // (the default's 256 need terabytes of it); a call costs the same from either pool.
    let sandbox = bench_sandbox(1);
    let (connector, config) = match of {
        "native" | "sandboxed" => (load(&sandbox, test_programs_artifacts::WELL_BEHAVED), integration(Some(url))),
        "instance" => (load(&sandbox, test_programs_artifacts::IN_MEMORY), integration(None)),
        other => panic!("{PROFILE_OF_ENV}={other}: expected native, sandboxed or instance"),
    };
    let call = || async {
        if of == "native" {
            native_get(&client, &ok_url).await;
        } else {
            assert!(sandbox.test_connection(&connector, &config).await.result.success);
        }
    };
    for _ in 0..size.warmup {
        call().await;
    }
    let (end, mut calls) = (Instant::now() + duration, 0);
    while Instant::now() < end {
        call().await;
        calls += 1;
    }
    calls
}

/// One round: `size.warmup` uncounted calls of each kind, then `size.samples` measured. In a smoke
/// run, each call is also checked for what it should have done (after its time was taken).
async fn measure(url: &str, size: Size, smoke: bool) -> Figures {
    let Size { warmup, samples, .. } = size;
    let client = native_client();
    let ok_url = format!("{url}/ok");

    let sandbox = bench_sandbox(SandboxConfig::default().max_concurrent_invocations);
    let fetcher = load(&sandbox, test_programs_artifacts::WELL_BEHAVED);
    let in_memory = load(&sandbox, test_programs_artifacts::IN_MEMORY);
    let with_url = integration(Some(url));
    let with_credential = ConnectionConfig { auth_ref: Some(AUTH_REF.into()), ..integration(Some(url)) };

    // (a), (b) and (d) alternate, so that all see the same machine state (frequency, other load).
    let mut native = Vec::with_capacity(samples);
    let mut sandboxed = Vec::with_capacity(samples);
    let (mut native_cpu, mut sandboxed_cpu) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let (mut credentialed, mut credentialed_cpu) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..warmup + samples {
        let (t, cpu) = (Instant::now(), process_cpu_time());
        native_get(&client, &ok_url).await;
        let (native_took, native_cpu_took) = (t.elapsed(), process_cpu_time() - cpu);
        let (t, cpu) = (Instant::now(), process_cpu_time());
        let sandboxed_run = sandbox.test_connection(&fetcher, &with_url).await;
        assert!(sandboxed_run.result.success, "{:?}", sandboxed_run.result);
        let (sandboxed_took, sandboxed_cpu_took) = (t.elapsed(), process_cpu_time() - cpu);
        let (t, cpu) = (Instant::now(), process_cpu_time());
        let run = sandbox.test_connection(&fetcher, &with_credential).await;
        assert!(run.result.success && run.record.host_calls.iter().any(|c| c.credential_header.is_some()));
        if i >= warmup {
            native.push(native_took);
            sandboxed.push(sandboxed_took);
            native_cpu.push(native_cpu_took);
            sandboxed_cpu.push(sandboxed_cpu_took);
            credentialed.push(t.elapsed());
            credentialed_cpu.push(process_cpu_time() - cpu);
        }
        // After the times were taken.
        if smoke {
            assert_got_ok(&sandboxed_run.record, url);
            assert_got_ok(&run.record, url);
            assert!(
                run.record.host_calls.iter().any(|c| c.auth_ref.as_deref() == Some(AUTH_REF)),
                "(d) applied the credential of {AUTH_REF}: {:?}",
                run.record.host_calls
            );
        }
    }
    let offline = integration(None);
    let mut instantiate = Vec::with_capacity(samples);
    let mut instantiate_cpu = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let (t, cpu) = (Instant::now(), process_cpu_time());
        let run = sandbox.test_connection(&in_memory, &offline).await;
        assert!(run.result.success);
        if i >= warmup {
            instantiate.push(t.elapsed());
            instantiate_cpu.push(process_cpu_time() - cpu);
        }
        if smoke {
            assert!(run.record.host_calls.is_empty(), "(c) made no host call: {:?}", run.record.host_calls);
        }
    }
    Figures {
        a: median(native),
        b: median(sandboxed),
        c: median(instantiate),
        d: median(credentialed),
        c_cpu: median(instantiate_cpu),
        a_cpu: median(native_cpu),
        b_cpu: median(sandboxed_cpu),
        d_cpu: median(credentialed_cpu),
    }
}

/// A smoke run's check of a sandboxed GET: the connector's one request reached the bench server and
/// was answered 200.
fn assert_got_ok(record: &stella_runtime::record::InvocationRecord, url: &str) {
    assert!(
        record
            .host_calls
            .iter()
            .any(|c| c.interface == Interface::Http && c.target.starts_with(url) && c.status == Some(200)),
        "the sandboxed GET reached {url} and was answered 200: {:?}",
        record.host_calls
    );
}

/// A minimal HTTP/1.1 keep-alive server answering `ok` to every request. It exits when its
/// standard input closes, so it never outlives the benchmark, even one that panicked.
fn serve() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).ok();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut filled = 0;
                loop {
                    match stream.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                    while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
                        if stream.write_all(response).await.is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..filled, 0);
                        filled -= end + 4;
                    }
                }
            });
        }
    });
}
