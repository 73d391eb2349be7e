//! What a year in production costs on disk: days of health checks of 10,000 integrations written
//! through the service's own write path (the scheduler's lease, then the batched record of the
//! checks: history, ledger, `invocation.denied` events), on PostgreSQL and on SQLite, with the mix
//! of a real fleet: 97 % healthy and unchanged, 2 % failing, 1 % refused something by the sandbox
//! every check. Each kind's check is made once through the real sandbox (`http-probe` against a
//! local stub, which answers 200 or 503, and against the cloud-metadata address, which the
//! sandbox refuses); every simulated check is a copy of its kind's, with its own ids and times.
//!
//! It prints, per database: the write path's checks/s; the bytes on disk per check (heap, TOAST
//! and indexes of every table that grew, per table and in all); the projected 30-day size for
//! 10,000 and for 1,000,000 integrations; the time to apply one day's retention (and on
//! PostgreSQL, the dead tuples it left for VACUUM). Targets (issue 32): ≤ 100 bytes per check on
//! PostgreSQL, one day's retention ≤ 1 s and no dead tuples.
//!
//! `cargo bench --workspace --features stella-integrations/bench-switches --bench storage` (or
//! `make bench`). `STELLA_BENCH_INTEGRATIONS` (default 10,000), `STELLA_BENCH_DAYS` (default 1),
//! `STELLA_BENCH_INTERVAL_SECONDS` (default 300, the service's default). PostgreSQL from
//! `STELLA_BENCH_POSTGRES`; a database is created for the run and dropped after it.
//!
//! Without `--bench` (as `make test` runs it), a smoke run: 200 integrations for one hour; it
//! asserts that every check was recorded, that the tables grew, and that retention emptied them.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{SMOKE_NOTE, create_database, env_number, id_of, smoke, verdict};
use sqlx::Connection;
use stella_integrations::config::Config;
use stella_integrations::domain::{from_unix_ms, now, unix_ms};
use stella_integrations::health::{FinishedCheck, HealthCheck};
use stella_integrations::server::build_state;
use stella_integrations::service::{Catalog, Retention};
use uuid::Uuid;

const TENANT: &str = "bench";
const OWNER: &str = "replica-bench";
/// Checks leased and recorded at a time (the scheduler's default concurrency is 32; a larger batch
/// is what a sweep under load records in one transaction).
const BATCH: u32 = 256;
const DAY_MS: i64 = 86_400_000;

/// What each integration's checks find, by its number: 2 % fail, 1 % are refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Healthy,
    Failing,
    Denied,
}

impl Kind {
    fn of(n: u32) -> Self {
        match n % 100 {
            0 | 1 => Self::Failing,
            2 => Self::Denied,
            _ => Self::Healthy,
        }
    }

    fn of_id(id: Uuid) -> Self {
        Self::of(id.as_u128() as u32)
    }
}

/// A local server for `http-probe`: `/` answers 200, `/down` 503.
async fn stub() -> String {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/down", axum::routing::get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// One row of the integrations insert: id, name, base URL, configuration, status, failures.
fn row(n: u32, stub: &str) -> (String, String, String, String, &'static str, i64, bool) {
    let (base, configuration, status, failures, up) = match Kind::of(n) {
        Kind::Healthy => (stub.to_string(), r#"{"path":"/"}"#, "active", 0, true),
        Kind::Failing => (stub.to_string(), r#"{"path":"/down"}"#, "failed", 5, false),
        Kind::Denied => ("http://169.254.169.254".to_string(), r#"{"path":"/"}"#, "failed", 5, false),
    };
    (id_of(n), format!("integration-{n:06}"), base, configuration.to_string(), status, failures, up)
}

/// Inserts `count` `http-probe` integrations of the tenant, in statements of 500 rows (the same
/// SQL on both databases).
macro_rules! insert_integrations {
    ($connection:expr, $count:expr, $stub:expr) => {{
        let created = now();
        for first in (1..=$count).step_by(500) {
            let last = (first + 499).min($count);
            let values: Vec<String> = (0..=(last - first))
                .map(|i| {
                    let b = 7 * i as usize;
                    format!(
                        "(${}, '{TENANT}', ${}, 'benchmark row', 'host', 'http-probe', ${}, NULL, ${}, 'prod', \
                         '[\"eu\"]', 'team-a', ${}, false, ${}, ${}, ${}, 'bench', 1)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        7 * (last - first + 1) as usize + 1
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO integrations (integration_id, tenant_id, name, description, integration_type, provider, \
                 base_url, auth_ref, configuration, environment, tags, owner_id, status, paused, \
                 consecutive_failures, last_test_success, created_at, created_by, version) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for n in first..=last {
                let (id, name, base, configuration, status, failures, up) = row(n, $stub);
                query = query.bind(id).bind(name).bind(base).bind(configuration).bind(status).bind(failures).bind(up);
            }
            query.bind(created).execute(&mut $connection).await.unwrap();
        }
    }};
}

/// The size on disk of every table (heap, TOAST, indexes; a partitioned table with its
/// partitions), by table.
async fn sizes(url: &str) -> BTreeMap<String, i64> {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap();
        // dbstat names each table and index; an index goes to its table.
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT d.name, COALESCE(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d \
             LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY d.name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        let mut by_table = BTreeMap::new();
        for (_, table, bytes) in rows {
            *by_table.entry(table).or_default() += bytes;
        }
        by_table
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT t.relname::text, CASE WHEN t.relkind = 'p' \
               THEN (SELECT COALESCE(SUM(pg_total_relation_size(p.relid)), 0)::bigint FROM pg_partition_tree(t.oid) p) \
               ELSE pg_total_relation_size(t.oid) END \
             FROM pg_class t JOIN pg_namespace s ON s.oid = t.relnamespace \
             WHERE s.nspname = 'public' AND t.relkind IN ('r', 'p') AND NOT t.relispartition",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.into_iter().collect()
    }
}

/// Dead tuples left in `tables` (and their partitions), counted by scanning them (`pgstattuple`):
/// exact at once, where the statistics collector's count waits for backends to report.
async fn dead_tuples(url: &str, tables: &[&str]) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pgstattuple").execute(&mut c).await.unwrap();
    let mut dead = 0;
    for table in tables {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT SUM((pgstattuple(p.relid)).dead_tuple_count)::bigint FROM pg_partition_tree($1::regclass) p \
             WHERE p.isleaf",
        )
        .bind(*table)
        .fetch_one(&mut c)
        .await
        .unwrap();
        let count = match count {
            Some(n) => n,
            // Not partitioned: the table itself.
            None => sqlx::query_scalar("SELECT (pgstattuple($1::regclass)).dead_tuple_count::bigint")
                .bind(*table)
                .fetch_one(&mut c)
                .await
                .unwrap(),
        };
        dead += count;
    }
    dead
}

/// The tables whose rows a check writes, and which grow with time: what "bytes per check" counts.
/// (The schedule's row of each integration is updated in place; it does not grow with time.)
const CHECK_TABLES: [&str; 4] = ["invocations", "health_checks", "health_hours", "events"];

/// Rows in `tables`.
async fn rows(url: &str, tables: &[&str]) -> i64 {
    let mut total = 0;
    for table in tables {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
        total += if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap()
        };
    }
    total
}

/// The run's shape.
#[derive(Clone, Copy)]
struct Plan {
    integrations: u32,
    rounds: u32,
    interval_ms: i64,
}

impl Plan {
    fn checks(&self) -> u64 {
        u64::from(self.integrations) * u64::from(self.rounds)
    }
}

/// What one database showed.
struct Figures {
    checks: u64,
    write_time: Duration,
    grown: BTreeMap<String, i64>,
    retention_time: Duration,
    removed: u64,
    dead_after_retention: Option<i64>,
    left_after_retention: i64,
    /// Rows of the check tables left after retention (the first day's: all of them).
    rows_left: i64,
}

/// One made check of each kind, through the real sandbox.
async fn templates(catalog: &Catalog, start_ms: i64) -> BTreeMap<Kind, FinishedCheck> {
    // Leased until `start_ms` only: the first round leases them all again.
    let leased = catalog.lease_health_checks(OWNER, start_ms, 0, u32::MAX).await.unwrap();
    let mut templates = BTreeMap::new();
    for subject in leased {
        let kind = Kind::of_id(subject.integration_id);
        if templates.contains_key(&kind) {
            continue;
        }
        let made = catalog.make_health_check(&subject).await.expect("in service");
        let entry = made.finished.invocation.as_ref().expect("a connector ran");
        assert_eq!(entry.denied, kind == Kind::Denied, "{kind:?}: {entry:?}");
        assert_eq!(made.finished.check.outcome.as_str() == "healthy", kind == Kind::Healthy, "{kind:?}");
        templates.insert(kind, made.finished);
    }
    templates
}

/// `template`, made for `subject` at `at_ms`.
fn instance(
    template: &FinishedCheck,
    integration_id: Uuid,
    version: i64,
    at_ms: i64,
    interval_ms: i64,
) -> FinishedCheck {
    let at = from_unix_ms(at_ms);
    let mut f = template.clone();
    f.integration_id = integration_id;
    f.version = version;
    f.next_due_ms = at_ms + interval_ms;
    f.check = HealthCheck { check_id: Uuid::new_v4(), checked_at: at, ..template.check.clone() };
    if let Some(entry) = f.invocation.as_mut() {
        let id = Uuid::new_v4();
        entry.invocation_id = id;
        entry.integration_id = integration_id;
        entry.at = at;
        if let Some(record) = entry.record.as_mut() {
            record.invocation_id = id;
            record.started_at = at;
        }
    }
    f
}

async fn run(database_url: &str, plan: Plan) -> Figures {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.database_url = Some(database_url.to_string());
    config.storage.data_dir = data.path().join("data");
    config.storage.plugins_dir = None;
    config.sandbox.network.allow = vec!["127.0.0.0/8".parse().unwrap()];
    let catalog = build_state(&config, None).await.unwrap().api.catalog.clone();

    let stub = stub().await;
    if database_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        insert_integrations!(c, plan.integrations, &stub);
    } else {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        insert_integrations!(c, plan.integrations, &stub);
        sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    }
    // The checks are written as of days ago, from the start of a day (UTC), so that one day's
    // retention takes the first day's checks, and runs at the time it would.
    let start_ms = (unix_ms(now()) - i64::from(plan.rounds) * plan.interval_ms - DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    if !database_url.starts_with("sqlite:") {
        // A database that has run since before those days: no rows of before the upgrade (the
        // `_before` partitions, empty here, go), and the days' partitions made ahead, as the
        // maintenance task makes them (here at each simulated day).
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        for table in ["invocations", "health_checks", "health_hours"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}_before"))).execute(&mut c).await.unwrap();
        }
    }
    catalog.schedule_health_checks(start_ms).await.unwrap();
    let templates = templates(&catalog, start_ms).await;
    let before = sizes(database_url).await;

    let started = Instant::now();
    let mut checks = 0;
    let mut partitions_made_to = i64::MIN;
    for round in 0..plan.rounds {
        let at_ms = start_ms + i64::from(round) * plan.interval_ms;
        if at_ms >= partitions_made_to {
            catalog.make_partitions(at_ms).await.unwrap();
            partitions_made_to = at_ms + DAY_MS;
        }
        loop {
            let leased = catalog.lease_health_checks(OWNER, at_ms, 600_000, BATCH).await.unwrap();
            if leased.is_empty() {
                break;
            }
            let batch: Vec<FinishedCheck> = leased
                .iter()
                .map(|s| {
                    let kind = Kind::of_id(s.integration_id);
                    instance(&templates[&kind], s.integration_id, s.version, at_ms, plan.interval_ms)
                })
                .collect();
            let recorded = catalog.record_unchanged_checks(OWNER, &batch).await.unwrap();
            assert_eq!(recorded.len(), batch.len(), "every check is recorded");
            checks += recorded.len() as u64;
        }
    }
    let write_time = started.elapsed();
    assert_eq!(checks, plan.checks());
    let after = sizes(database_url).await;
    let grown: BTreeMap<String, i64> = after
        .iter()
        .map(|(table, bytes)| (table.clone(), bytes - before.get(table).copied().unwrap_or(0)))
        .filter(|(table, grew)| *grew > 0 && CHECK_TABLES.contains(&table.as_str()))
        .collect();

    // One day's retention: everything written in the first day goes.
    let day = Duration::from_secs(86_400);
    let keep_a_day = Retention {
        ledger: day,
        health_checks: day,
        health_hours: day,
        delivered_events: day,
        undelivered_events: Some(day),
    };
    let started = Instant::now();
    let pruned = catalog.prune_all(&keep_a_day, from_unix_ms(start_ms + 2 * DAY_MS)).await.unwrap();
    let retention_time = started.elapsed();
    let removed = pruned.by_table().iter().map(|(_, n)| n).sum();
    let rows_left = rows(database_url, &CHECK_TABLES).await;
    let dead_after_retention =
        if database_url.starts_with("sqlite:") { None } else { Some(dead_tuples(database_url, &CHECK_TABLES).await) };
    let left: i64 = sizes(database_url).await.iter().filter(|(t, _)| grown.contains_key(*t)).map(|(_, b)| b).sum();
    let left_after_retention = left - grown.keys().map(|t| before.get(t).copied().unwrap_or(0)).sum::<i64>();
    Figures {
        checks,
        write_time,
        grown,
        retention_time,
        removed,
        dead_after_retention,
        left_after_retention,
        rows_left,
    }
}

fn report(name: &str, f: &Figures, plan: Plan, smoke: bool, judged: bool) -> Vec<bool> {
    let rate = f.checks as f64 / f.write_time.as_secs_f64();
    println!(
        "{name}: wrote {} checks in {:.1} s: {rate:.0} checks/s (the write path: lease, history, ledger, events)",
        f.checks,
        f.write_time.as_secs_f64()
    );
    let per_check = |bytes: i64| bytes as f64 / f.checks as f64;
    let total: i64 = f.grown.values().sum();
    let parts: Vec<String> = f.grown.iter().map(|(t, b)| format!("{t} {:.0}", per_check(*b))).collect();
    let written = per_check(total);
    println!("  bytes written to disk per check: {} → {written:.0}", parts.join(", "));
    // Kept over the ledger's 30 days: a table kept for less (each check itself, 48 hours) holds
    // that share of what it was written.
    let defaults = Config::default();
    let thirty_days = 30.0 * 86_400.0;
    let kept_for = |table: &str| -> f64 {
        let seconds = match table {
            "health_checks" => f64::from(defaults.health.history_hours) * 3600.0,
            "health_hours" => f64::from(defaults.health.retention_days) * 86_400.0,
            "events" => f64::from(defaults.events.retention_days) * 86_400.0,
            _ => f64::from(defaults.ledger.retention_days) * 86_400.0,
        };
        (seconds / thirty_days).min(1.0)
    };
    let bytes: f64 = f.grown.iter().map(|(t, b)| per_check(*b) * kept_for(t)).sum();
    let met_bytes = bytes <= 100.0;
    let target = if judged { format!(" (target ≤ 100: {})", verdict(smoke, met_bytes)) } else { String::new() };
    println!(
        "  bytes on disk per check kept, amortized over 30 days at the default retentions (each check's own row \
         {} h, the rest 30 days, no broker): {bytes:.0}{target}",
        defaults.health.history_hours
    );
    let checks_per_day = 86_400_000.0 / plan.interval_ms as f64;
    let thirty_days = |integrations: f64| bytes * checks_per_day * 30.0 * integrations;
    println!(
        "  projected over 30 days at this interval: {:.1} GB for 10,000 integrations, {:.2} TB for 1,000,000",
        thirty_days(10_000.0) / 1e9,
        thirty_days(1_000_000.0) / 1e12
    );
    let met_time = f.retention_time <= Duration::from_secs(1);
    let target = if judged { format!(" (target ≤ 1 s: {})", verdict(smoke, met_time)) } else { String::new() };
    println!(
        "  one day's retention: {} rows removed in {:.3} s{target}; {} bytes left of what the checks wrote",
        f.removed,
        f.retention_time.as_secs_f64(),
        f.left_after_retention
    );
    let mut met = vec![met_bytes, met_time];
    if let Some(dead) = f.dead_after_retention {
        let clean = dead == 0;
        println!("  dead tuples left for VACUUM: {dead} (target 0: {})", verdict(smoke, clean));
        met.push(clean);
    }
    met
}

fn main() {
    let smoke = smoke();
    let plan = if smoke {
        Plan { integrations: 200, rounds: 12, interval_ms: 300_000 }
    } else {
        let interval_ms = env_number("STELLA_BENCH_INTERVAL_SECONDS", 300) as i64 * 1000;
        let days = env_number("STELLA_BENCH_DAYS", 1);
        Plan {
            integrations: env_number("STELLA_BENCH_INTEGRATIONS", 10_000) as u32,
            rounds: (days as i64 * DAY_MS / interval_ms) as u32,
            interval_ms,
        }
    };
    if smoke {
        println!("{SMOKE_NOTE}");
    }
    println!(
        "storage: {} integrations checked every {} s, {} rounds ({} checks: 97 % healthy and unchanged, 2 % failing, \
         1 % refused something)",
        plan.integrations,
        plan.interval_ms / 1000,
        plan.rounds,
        plan.checks()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (_database, url) = create_database().await;
        let postgres = run(&url, plan).await;
        let dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let sqlite = run(&sqlite_url, plan).await;
        for (name, figures) in [("postgres", &postgres), ("sqlite", &sqlite)] {
            if smoke {
                assert!(!figures.grown.is_empty(), "{name}: the checks wrote nothing");
                assert!(figures.removed > 0, "{name}: retention removed nothing");
                assert_eq!(figures.rows_left, 0, "{name}: retention left rows of its day");
            }
        }
        report("postgres", &postgres, plan, smoke, true);
        report("sqlite", &sqlite, plan, smoke, false);
    });
}
