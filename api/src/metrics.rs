//! Counters for `GET /metrics`, in the Prometheus text exposition format.
//!
//! Few series, fixed labels (the route *template*, never a raw path, so ids cannot blow up the
//! label space), kept in plain maps behind mutexes: the service records a handful per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use stella_runtime::record::InvocationRecord;

use crate::domain::wire_name;

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Per route template (looked up by `&str`, so a request allocates nothing once its series
/// exist): counts by (method, status) and latency by method.
#[derive(Default)]
struct RouteSeries {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

/// The service's metrics.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteSeries>>,
    invocations: Mutex<BTreeMap<(String, String, String), u64>>,
    denials: Mutex<BTreeMap<(String, String), u64>>,
    maintenance: Mutex<MaintenanceSeries>,
}

/// The maintenance runs this replica made.
#[derive(Default)]
struct MaintenanceSeries {
    done: u64,
    failed: u64,
    /// When the last run finished (Unix seconds), if one did.
    last_finished: Option<f64>,
    /// Per table: rows removed by the last run, and by every run.
    removed: BTreeMap<&'static str, (u64, u64)>,
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
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "PATCH" => "PATCH",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        let mut routes = lock(&self.routes);
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteSeries::default());
        }
        let series = routes.get_mut(route).expect("inserted above");
        *series.requests.entry((method, status)).or_default() += 1;
        let h = series.latency.entry(method).or_default();
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
                *denials.entry((provider.to_string(), wire_name(&d.kind))).or_default() += 1;
            }
        }
    }

    /// Records a maintenance run this replica made: what it removed from each table, and when it
    /// finished.
    pub fn record_maintenance(&self, removed: &[(&'static str, u64)], finished: time::OffsetDateTime) {
        let mut m = lock(&self.maintenance);
        m.done += 1;
        m.last_finished = Some(finished.unix_timestamp_nanos() as f64 / 1e9);
        for (table, n) in removed {
            let entry = m.removed.entry(table).or_default();
            *entry = (*n, entry.1 + n);
        }
    }

    /// Records a maintenance run that failed.
    pub fn record_maintenance_failure(&self) {
        lock(&self.maintenance).failed += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "# HELP stella_http_requests_total HTTP requests answered, by route template and status.");
        let _ = writeln!(out, "# TYPE stella_http_requests_total counter");
        let routes = lock(&self.routes);
        for (route, series) in routes.iter() {
            for ((method, status), n) in &series.requests {
                let _ = writeln!(
                    out,
                    "stella_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(out, "# HELP stella_http_request_duration_seconds HTTP request latency, by route template.");
        let _ = writeln!(out, "# TYPE stella_http_request_duration_seconds histogram");
        for (route, method, h) in routes.iter().flat_map(|(r, s)| s.latency.iter().map(move |(m, h)| (r, m, h))) {
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
        self.render_maintenance(&mut out);
        out
    }

    fn render_maintenance(&self, out: &mut String) {
        let m = lock(&self.maintenance);
        let _ = writeln!(out, "# HELP stella_maintenance_runs_total Maintenance runs this replica made, by result.");
        let _ = writeln!(out, "# TYPE stella_maintenance_runs_total counter");
        let _ = writeln!(out, "stella_maintenance_runs_total{{result=\"done\"}} {}", m.done);
        let _ = writeln!(out, "stella_maintenance_runs_total{{result=\"failed\"}} {}", m.failed);
        if let Some(at) = m.last_finished {
            let _ = writeln!(
                out,
                "# HELP stella_maintenance_last_run_timestamp_seconds When this replica's last maintenance run finished."
            );
            let _ = writeln!(out, "# TYPE stella_maintenance_last_run_timestamp_seconds gauge");
            let _ = writeln!(out, "stella_maintenance_last_run_timestamp_seconds {at:.3}");
        }
        let _ =
            writeln!(out, "# HELP stella_maintenance_last_removed Rows the last maintenance run removed, by table.");
        let _ = writeln!(out, "# TYPE stella_maintenance_last_removed gauge");
        for (table, (last, _)) in &m.removed {
            let _ = writeln!(out, "stella_maintenance_last_removed{{table=\"{table}\"}} {last}");
        }
        let _ = writeln!(out, "# HELP stella_maintenance_removed_total Rows maintenance runs removed, by table.");
        let _ = writeln!(out, "# TYPE stella_maintenance_removed_total counter");
        for (table, (_, total)) in &m.removed {
            let _ = writeln!(out, "stella_maintenance_removed_total{{table=\"{table}\"}} {total}");
        }
    }
}

/// Upper bounds (milliseconds) of a [`LatencyHistogram`]'s buckets: each about twice the last,
/// from 5 ms to a minute; the last bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 14] =
    [5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000];

/// Latencies in buckets, mergeable: hours of checks summed into a day, a week, a month, at the
/// cost of a fixed number of counters. A quantile read from it is the upper bound of the bucket
/// it falls in (clamped to the largest latency seen), so it is at most one bucket high: never
/// below the true value, and at most about twice it.
#[derive(Clone, Debug, Default, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyHistogram {
    /// Latencies counted.
    pub count: u64,
    /// Their sum, in milliseconds.
    pub sum_ms: u64,
    /// The smallest and largest.
    pub min_ms: u64,
    pub max_ms: u64,
    /// Counts per bucket: `buckets[i]` counts latencies up to `LATENCY_BOUNDS_MS[i]` (and above
    /// the bound before it); one more, last, for those above every bound. Trailing empty
    /// buckets may be left out.
    pub buckets: Vec<u64>,
}

impl PartialEq for LatencyHistogram {
    /// The same latencies, whatever empty buckets either lists at its end.
    fn eq(&self, other: &Self) -> bool {
        let counted = |h: &Self| {
            let end = h.buckets.iter().rposition(|n| *n > 0).map_or(0, |i| i + 1);
            h.buckets[..end].to_vec()
        };
        (self.count, self.sum_ms, self.min_ms, self.max_ms) == (other.count, other.sum_ms, other.min_ms, other.max_ms)
            && counted(self) == counted(other)
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&mut self, ms: u64) {
        let bucket = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len());
        if self.buckets.len() <= bucket {
            self.buckets.resize(bucket + 1, 0);
        }
        self.buckets[bucket] += 1;
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Adds `other`'s latencies to these.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.min_ms = if self.count == 0 { other.min_ms } else { self.min_ms.min(other.min_ms) };
        self.max_ms = self.max_ms.max(other.max_ms);
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    /// The `q` quantile (0.5: the median), as the upper bound of its bucket, no more than the
    /// largest latency counted; `None` when none was.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(self.max_ms);
                return Some(bound.min(self.max_ms).max(self.min_ms));
            }
        }
        Some(self.max_ms)
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use stella_runtime::record::{Denial, DenialKind};

    use super::*;

    #[test]
    fn a_latency_histogram_merges_and_reads_quantiles_at_most_one_bucket_high() {
        let mut hour = LatencyHistogram::default();
        assert_eq!(hour.quantile(0.5), None);
        for ms in [3, 7, 8, 9, 40, 41, 45, 180, 900, 70_000] {
            hour.record(ms);
        }
        let mut other = LatencyHistogram::default();
        for ms in [12, 13] {
            other.record(ms);
        }
        hour.merge(&other);
        hour.merge(&LatencyHistogram::default());
        assert_eq!((hour.count, hour.min_ms, hour.max_ms, hour.sum_ms), (12, 3, 70_000, 71_258));
        // Sorted: 3 7 8 9 12 13 40 41 45 180 900 70000; the median (6th) is 13, in the 20 ms bucket.
        assert_eq!(hour.quantile(0.5), Some(20));
        // The 95th percentile (12th) is the slowest, above every bound: its own value.
        assert_eq!(hour.quantile(0.95), Some(70_000));
        assert_eq!(hour.quantile(0.0), Some(5), "the first bucket's bound");
        let mut one = LatencyHistogram::default();
        one.record(42);
        assert_eq!(one.quantile(0.99), Some(42), "never above the largest seen");
        // What is stored reads back; empty buckets at the end change nothing.
        let json = serde_json::to_string(&hour).unwrap();
        assert_eq!(serde_json::from_str::<LatencyHistogram>(&json).unwrap(), hour);
        let mut padded = one.clone();
        padded.buckets.extend([0, 0, 0]);
        assert_eq!(padded, one);
        padded.buckets.push(1);
        assert_ne!(padded, one);
    }

    #[test]
    fn invocations_and_denials_are_counted_by_label() {
        let m = Metrics::default();
        let record = InvocationRecord {
            provider: "harbor".into(),
            denials: vec![
                Denial { kind: DenialKind::Address, target: "169.254.169.254".into(), reason: "blocked".into() },
                Denial { kind: DenialKind::Address, target: "127.0.0.1".into(), reason: "blocked".into() },
                Denial { kind: DenialKind::Origin, target: "https://evil.test".into(), reason: "not allowed".into() },
            ],
            ..Default::default()
        };
        m.record_invocation(Some(&record), "test-connection", "network");
        m.record_invocation(Some(&record), "test-connection", "network");
        m.record_request("GET", "/api/v1/integrations/{id}", 200, Duration::from_millis(3));
        m.record_request("GET", "/api/v1/integrations/{id}", 200, Duration::from_millis(30));
        m.record_request("BREW", "/api/v1/integrations/{id}", 405, Duration::from_millis(1));
        let text = m.render();
        assert!(text.contains(
            r#"stella_sandbox_invocations_total{operation="test-connection",provider="harbor",outcome="network"} 2"#
        ));
        assert!(text.contains(r#"stella_sandbox_denials_total{provider="harbor",kind="address"} 4"#), "{text}");
        assert!(text.contains(r#"stella_sandbox_denials_total{provider="harbor",kind="origin"} 2"#));
        let route = r#"route="/api/v1/integrations/{id}""#;
        assert!(
            text.contains(&format!(r#"stella_http_requests_total{{method="GET",{route},status="200"}} 2"#)),
            "{text}"
        );
        assert!(text.contains(&format!(r#"stella_http_requests_total{{method="other",{route},status="405"}} 1"#)));
        assert!(
            text.contains(&format!(
                r#"stella_http_request_duration_seconds_bucket{{method="GET",{route},le="0.005"}} 1"#
            ))
        );
        assert!(
            text.contains(&format!(
                r#"stella_http_request_duration_seconds_bucket{{method="GET",{route},le="0.05"}} 2"#
            ))
        );
        assert!(text.contains(&format!(r#"stella_http_request_duration_seconds_count{{method="GET",{route}}} 2"#)));
    }
}
