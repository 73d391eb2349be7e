//! The host's own memory under every hostile program: what the service keeps on a guest's behalf
//! (record entries, handles, copies of what it passes, queued output) must stay small whatever the
//! guest does, not only the guest's linear memory. The cases run one after another in a process of
//! their own (nothing else runs there) while its peak resident memory is watched (Linux `VmHWM`,
//! reset before each case); the growth beyond the guest's own linear memory must stay under
//! [`HOST_GROWTH_BOUND`].
//!
//! Before the limits of the host-side structures, the refused-request loop alone took a service
//! from 59 MB to 4.3 GB; here every case is a few MiB.

use serde_json::json;
use stella_runtime::SandboxConfig;
use test_programs_artifacts::*;

use crate::common::*;
use crate::stub;

/// What one hostile invocation may add to the host's resident memory beyond the guest's linear
/// memory, under the default limits: its record (256 KiB), its handles, one call's copy of what
/// the guest passes (2 MiB), a response body (4 MiB), the fiber stack, and the allocator's slack.
const HOST_GROWTH_BOUND: u64 = 16 << 20;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak (`VmHWM`) to the current resident size, after giving freed memory back.
fn reset_peak() {
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").expect("writing /proc/self/clear_refs");
}

struct Case {
    name: &'static str,
    program: &'static str,
    configuration: serde_json::Value,
    auth_ref: &'static str,
    operator: fn(&mut SandboxConfig),
}

fn case(name: &'static str, program: &'static str, configuration: serde_json::Value) -> Case {
    Case { name, program, configuration, auth_ref: AUTH_REF, operator: |_| {} }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        case("infinite_loop", INFINITE_LOOP, json!({})),
        case("memory_growth", MEMORY_GROWTH, json!({})),
        case("deep_recursion", DEEP_RECURSION, json!({})),
        case("panic", PANIC, json!({})),
        case("log_flood", LOG_FLOOD, json!({})),
        case("body_flood", BODY_FLOOD, json!({})),
        case("request_flood", REQUEST_FLOOD, json!({})),
    ];
    for &flood in FLOODS {
        let mut case = case(flood, FLOOD, json!({ "flood": flood }));
        match flood {
            "reveal" => case.operator = |c| c.allow_reveal_secrets = false,
            "sign-jwt" => {
                case.auth_ref = KEY_REF;
                case.operator = |c| c.allow_sign_jwt = false;
            }
            "sign-jwt-keep" => case.auth_ref = KEY_REF,
            _ => {}
        }
        cases.push(case);
    }
    for &oversized in OVERSIZED_CASES {
        cases.push(case(oversized, OVERSIZED, json!({ "oversized": oversized })));
    }
    cases
}

/// Set in the child process that measures: the peak resident memory is the whole process's, so
/// the measurement runs alone, in this test binary started again with only this test selected.
const ALONE_ENV: &str = "STELLA_HOST_MEMORY_ALONE";

#[test]
fn host_memory_stays_bounded_under_every_hostile_program() {
    if std::env::var_os(ALONE_ENV).is_none() {
        // The test's name as libtest knows it: its module path without the crate's name.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = format!("{module}::host_memory_stays_bounded_under_every_hostile_program");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(ALONE_ENV, "1")
            .output()
            .expect("the test binary starts again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{stdout}");
        assert!(stdout.contains("1 passed"), "the measurement did not run: {stdout}");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(measure());
}

async fn measure() {
    let server = stub::StubServer::start().await;
    let mut failures = Vec::new();
    println!("{:<16} {:>12} {:>12} {:>12}  stopped by", "case", "rss growth", "guest peak", "host growth");
    for case in cases() {
        // The sandbox and its compiled program are set up first: code and pools are the
        // service's steady state, not what one invocation costs.
        let sandbox = corpus_sandbox(|c| {
            c.limits.deadline_ms = 1_000;
            (case.operator)(c);
        });
        let connector = load(&sandbox, case.program);
        let config = integration(Some(&server.url()), Some(case.auth_ref), case.configuration.clone());
        reset_peak();
        let before = status_kib("VmRSS:") << 10;
        let run = sandbox.test_connection(&connector, &config).await;
        let peak = status_kib("VmHWM:") << 10;
        let growth = peak.saturating_sub(before);
        let host = growth.saturating_sub(run.record.memory_peak_bytes);
        let limit = run.record.trap.as_ref().and_then(|t| t.limit).map_or("-", |l| l.as_str());
        println!(
            "{:<16} {:>9} KiB {:>9} KiB {:>9} KiB  {limit}",
            case.name,
            growth >> 10,
            run.record.memory_peak_bytes >> 10,
            host >> 10
        );
        if host > HOST_GROWTH_BOUND {
            failures.push(format!("{}: the host grew by {} KiB", case.name, host >> 10));
        }
    }
    assert!(failures.is_empty(), "over the bound of {} KiB: {failures:?}", HOST_GROWTH_BOUND >> 10);
}
