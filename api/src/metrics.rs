//! Counters for `GET /metrics`, in the Prometheus text exposition format.
//!
//! Few series, fixed labels (the route *template*, never a raw path, so ids cannot blow up the
//! label space), kept in plain maps behind mutexes: the service records a handful per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use stella_runtime::record::InvocationRecord;

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The service's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    invocations: Mutex<BTreeMap<(String, String, String), u64>>,
    denials: Mutex<BTreeMap<(String, String), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Records one answered HTTP request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests).entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let mut latency = lock(&self.latency);
        let h = latency.entry((method.to_string(), route.to_string())).or_default();
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Records one sandbox invocation: its outcome (`success` or the failure class) and what the
    /// sandbox denied during it.
    pub fn record_invocation(&self, record: Option<&InvocationRecord>, operation: &str, outcome: &str) {
        let provider = record.map(|r| r.provider.as_str()).unwrap_or("none");
        *lock(&self.invocations)
            .entry((operation.to_string(), provider.to_string(), outcome.to_string()))
            .or_default() += 1;
        if let Some(record) = record {
            let mut denials = lock(&self.denials);
            for d in &record.denials {
                let kind = serde_json::to_value(d.kind).ok().and_then(|v| v.as_str().map(str::to_string));
                *denials.entry((provider.to_string(), kind.unwrap_or_default())).or_default() += 1;
            }
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "# HELP stella_http_requests_total HTTP requests answered, by route template and status.");
        let _ = writeln!(out, "# TYPE stella_http_requests_total counter");
        for ((method, route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "stella_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP stella_http_request_duration_seconds HTTP request latency, by route template.");
        let _ = writeln!(out, "# TYPE stella_http_request_duration_seconds histogram");
        for ((method, route), h) in lock(&self.latency).iter() {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(out, "stella_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "stella_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "stella_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "stella_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        let _ = writeln!(
            out,
            "# HELP stella_sandbox_invocations_total Connector invocations, by operation, provider and outcome (success or failure class)."
        );
        let _ = writeln!(out, "# TYPE stella_sandbox_invocations_total counter");
        for ((operation, provider, outcome), n) in lock(&self.invocations).iter() {
            let _ = writeln!(
                out,
                "stella_sandbox_invocations_total{{operation=\"{operation}\",provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(provider)
            );
        }
        let _ =
            writeln!(out, "# HELP stella_sandbox_denials_total Requests the sandbox refused, by provider and kind.");
        let _ = writeln!(out, "# TYPE stella_sandbox_denials_total counter");
        for ((provider, kind), n) in lock(&self.denials).iter() {
            let _ =
                writeln!(out, "stella_sandbox_denials_total{{provider=\"{}\",kind=\"{kind}\"}} {n}", escape(provider));
        }
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
