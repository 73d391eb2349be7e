//! The catalog's operations over the real sandbox (built-in in-memory connector) and a real
//! SQLite store: lifecycle, audit entries and events of each action.

use std::sync::Arc;

use serde_json::json;
use stella_integrations::audit::AuditAction;
use stella_integrations::domain::IntegrationSpec;
use stella_integrations::identity::{Auditor, Caller, Grant, Principal};
use stella_integrations::lifecycle::Status;
use stella_integrations::query::PageRequest;
use stella_integrations::service::{Catalog, IfMatch, ServiceError};
use stella_integrations::store::{SqliteStore, Store};
use stella_runtime::secrets::StaticSecretResolver;
use stella_runtime::{ConnectorCatalog, Sandbox, SandboxConfig};
use uuid::Uuid;

struct Fixture {
    catalog: Catalog,
    /// The catalog's store, to look beneath the service (the audit trail of a deleted integration).
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("catalog.db")).await.unwrap());
    let sandbox = Sandbox::new(SandboxConfig::default(), Arc::new(StaticSecretResolver::default())).unwrap();
    let connectors = ConnectorCatalog::load(&sandbox, stella_builtin_connectors::BUILTINS, None);
    assert!(connectors.failures().is_empty(), "{:?}", connectors.failures());
    Fixture { catalog: Catalog::new(store.clone(), Arc::new(sandbox), Arc::new(connectors)), store, _dir: dir }
}

/// A grant of `subject` in `tenant` with `scopes`: what a door holds after checking a token.
fn grant<G: Grant>(tenant: &str, subject: &str, scopes: &str) -> G {
    let caller = Caller { tenant: tenant.into(), subject: subject.into() };
    Principal { caller, scopes: scopes.split_whitespace().map(str::to_string).collect() }.grant().unwrap()
}

/// Alice, acme's admin: whichever grant an operation takes.
fn alice<G: Grant>() -> G {
    grant("acme", "alice", "integrations.admin")
}

fn spec(name: &str, configuration: serde_json::Value) -> IntegrationSpec {
    serde_json::from_value(json!({
        "name": name, "type": "registry", "provider": "in-memory", "configuration": configuration,
        "authRef": "ref://integrations/in-memory/token", "tags": ["demo"],
    }))
    .unwrap()
}

async fn audit_actions(f: &Fixture, id: Uuid) -> Vec<String> {
    f.store.audit("acme", id, 0, 100).await.unwrap().into_iter().map(|e| e.action.to_string()).collect()
}

async fn event_types(f: &Fixture) -> Vec<String> {
    let (events, _) = f.catalog.events(&alice(), Some(0), 100).await.unwrap();
    events.into_iter().map(|e| e.cloud_event["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn activation_runs_the_test_and_a_pass_makes_it_active() {
    let f = fixture().await;
    let created = f.catalog.create(&alice(), spec("demo", json!({}))).await.unwrap();
    assert_eq!((created.status, created.version, created.created_by.as_str()), (Status::Draft, 1, "alice"));

    let tested = f.catalog.activate(&alice(), created.integration_id).await.unwrap();
    assert!(tested.test_result.result.success, "{:?}", tested.test_result.result);
    let i = tested.integration;
    assert_eq!((i.status, i.last_test_success, i.consecutive_failures, i.version), (Status::Active, Some(true), 0, 3));
    assert_eq!(i.last_tested_at, Some(tested.test_result.tested_at));
    assert_eq!(f.catalog.get(&alice(), i.integration_id).await.unwrap(), i);

    assert_eq!(audit_actions(&f, i.integration_id).await, ["created", "activated", "tested"]);
    let entries = f.catalog.audit(&alice(), i.integration_id, 0, 100).await.unwrap().items;
    assert_eq!(entries[1].details["approver"], "alice");
    assert_eq!(entries[2].details["success"], true);
    assert_eq!(event_types(&f).await, ["integration.created", "integration.healthy"]);

    let latest = f.catalog.latest_test(&alice(), i.integration_id).await.unwrap().unwrap();
    assert!(latest.result.success);
    assert_eq!(latest.record.unwrap().provider, "in-memory");
}

#[tokio::test]
async fn a_failed_activation_stays_pending_and_a_later_pass_activates() {
    let f = fixture().await;
    let failing = json!({"outcome": "failure", "failureClass": "auth", "message": "401 from the registry"});
    let created = f.catalog.create(&alice(), spec("flaky", failing)).await.unwrap();
    let tested = f.catalog.activate(&alice(), created.integration_id).await.unwrap();
    assert_eq!(tested.integration.status, Status::PendingVerification);
    assert_eq!(tested.integration.last_test_success, Some(false));
    let entries = f.catalog.audit(&alice(), created.integration_id, 0, 100).await.unwrap().items;
    assert_eq!(entries[2].details["failureClass"], "auth");

    // Activating twice is a conflict that names the state.
    let err = f.catalog.activate(&alice(), created.integration_id).await.unwrap_err();
    assert!(matches!(&err, ServiceError::Conflict(c) if c.status == Status::PendingVerification), "{err:?}");

    let fixed = f
        .catalog
        .update(&alice(), created.integration_id, IfMatch::Version(3), spec("flaky", json!({})))
        .await
        .unwrap();
    assert_eq!((fixed.status, fixed.version), (Status::PendingVerification, 4));
    let tested = f.catalog.test(&alice(), created.integration_id).await.unwrap();
    assert_eq!(tested.integration.status, Status::Active);
    assert_eq!(
        event_types(&f).await,
        ["integration.created", "integration.unhealthy", "integration.updated", "integration.healthy"]
    );
}

#[tokio::test]
async fn repeated_failures_degrade_then_fail_and_pause_resume_work_from_there() {
    let f = fixture().await;
    let created = f.catalog.create(&alice(), spec("degrading", json!({}))).await.unwrap();
    let id = created.integration_id;
    f.catalog.activate(&alice(), id).await.unwrap();
    let current = f.catalog.get(&alice(), id).await.unwrap();
    f.catalog
        .update(&alice(), id, IfMatch::Version(current.version), spec("degrading", json!({"outcome": "failure"})))
        .await
        .unwrap();
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(f.catalog.test(&alice(), id).await.unwrap().integration.status);
    }
    use Status::*;
    assert_eq!(statuses, [Active, Active, Degraded, Degraded, Failed]);
    // Unhealthy once, on the change, not on every failure.
    assert_eq!(event_types(&f).await.iter().filter(|t| *t == "integration.unhealthy").count(), 1);

    let err = f.catalog.resume(&alice(), id).await.unwrap_err();
    assert_eq!(err.to_string(), "cannot resume an integration that is failed; allowed: test, pause");
    let paused = f.catalog.pause(&alice(), id, "vendor outage".into(), Some("OPS-42".into())).await.unwrap();
    assert_eq!((paused.status, paused.paused), (Paused, true));
    assert_eq!(
        (paused.pause_reason.as_deref(), paused.pause_ticket.as_deref()),
        (Some("vendor outage"), Some("OPS-42"))
    );
    // A test while paused is recorded but does not move the state.
    assert_eq!(f.catalog.test(&alice(), id).await.unwrap().integration.status, Paused);
    let resumed = f.catalog.resume(&alice(), id).await.unwrap();
    assert_eq!((resumed.status, resumed.paused, resumed.consecutive_failures), (Active, false, 0));
    assert_eq!(resumed.pause_reason, None);

    let entries = f.catalog.audit(&alice(), id, 0, 100).await.unwrap().items;
    let paused_entry = entries.iter().find(|e| e.action == AuditAction::Paused).unwrap();
    assert_eq!(paused_entry.details, json!({"reason": "vendor outage", "ticket": "OPS-42"}));
    let resumed_entry = entries.iter().find(|e| e.action == AuditAction::Resumed).unwrap();
    assert_eq!(resumed_entry.details["pauseTicket"], "OPS-42");
    let types = event_types(&f).await;
    assert!(types.ends_with(&["integration.paused".into(), "integration.resumed".into()]), "{types:?}");
}

#[tokio::test]
async fn bad_input_is_refused_with_every_reason() {
    let f = fixture().await;
    let mut bad = spec("x", json!({"auth": {"password": "hunter2"}}));
    bad.provider = "harbour".into();
    let ServiceError::Invalid(errors) = f.catalog.create(&alice(), bad).await.unwrap_err() else {
        panic!("expected Invalid")
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["configuration.auth.password", "provider"]);
    assert!(errors[1].message.contains("in-memory"), "lists the available providers: {}", errors[1].message);
    assert_eq!(f.catalog.events(&alice(), Some(0), 10).await.unwrap(), (vec![], 0));
}

#[tokio::test]
async fn another_tenant_sees_nothing_and_stale_versions_are_refused() {
    let f = fixture().await;
    let created = f.catalog.create(&alice(), spec("mine", json!({}))).await.unwrap();
    let id = created.integration_id;
    fn mallory<G: Grant>() -> G {
        grant("evil", "mallory", "integrations.admin")
    }
    assert!(matches!(f.catalog.get(&mallory(), id).await, Err(ServiceError::NotFound)));
    assert!(matches!(f.catalog.test(&mallory(), id).await, Err(ServiceError::NotFound)));
    assert!(matches!(f.catalog.delete(&mallory(), id, IfMatch::Absent).await, Err(ServiceError::NotFound)));
    assert!(matches!(
        f.catalog.update(&mallory(), id, IfMatch::Version(1), spec("mine", json!({}))).await,
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(f.catalog.pause(&mallory(), id, "x".into(), None).await, Err(ServiceError::NotFound)));

    f.catalog.update(&alice(), id, IfMatch::Version(1), spec("mine-renamed", json!({}))).await.unwrap();
    assert!(matches!(
        f.catalog.update(&alice(), id, IfMatch::Version(1), spec("mine", json!({}))).await,
        Err(ServiceError::Stale { current: 2 })
    ));
    assert!(matches!(
        f.catalog.delete(&alice(), id, IfMatch::Version(1)).await,
        Err(ServiceError::Stale { current: 2 })
    ));
    f.catalog.delete(&alice(), id, IfMatch::Version(2)).await.unwrap();
    assert!(matches!(f.catalog.get(&alice(), id).await, Err(ServiceError::NotFound)));
    let actions = audit_actions(&f, id).await;
    assert_eq!(actions, ["created", "updated", "deleted"]);
    // The trail outlives the row; through the service, a deleted integration has none to show.
    assert!(matches!(f.catalog.audit(&alice(), id, 0, 10).await, Err(ServiceError::NotFound)));
    let entries = f.store.audit("acme", id, 0, 10).await.unwrap();
    assert_eq!(entries[1].details, json!({"changed": ["name"]}));
}

#[tokio::test]
async fn every_test_is_kept_in_the_ledger_for_its_tenant_only() {
    let f = fixture().await;
    let id = f.catalog.create(&alice(), spec("ledgered", json!({}))).await.unwrap().integration_id;
    let first = f.catalog.test(&alice(), id).await.unwrap().test_result.record.unwrap();
    let second = f.catalog.test(&alice(), id).await.unwrap().test_result.record.unwrap();
    for record in [&first, &second] {
        let invocation = record.invocation_id;
        let entry = f.catalog.invocation(&alice::<Auditor>(), invocation).await.unwrap();
        assert_eq!(
            (entry.integration_id, entry.outcome.as_str(), entry.provider.as_str()),
            (id, "success", "in-memory")
        );
        assert_eq!(entry.record.unwrap().invocation_id, record.invocation_id);
        let other: Auditor = grant("globex", "mallory", "integrations.audit");
        let hidden = f.catalog.invocation(&other, invocation).await;
        assert!(matches!(hidden, Err(ServiceError::InvocationNotFound)), "{hidden:?}");
        assert!(f.catalog.invocation(&grant::<Auditor>("platform", "root", "plugins.admin"), invocation).await.is_ok());
    }
}

mod scheduler {
    use std::time::Duration;

    use stella_integrations::domain::unix_ms;
    use stella_integrations::health::{CheckOutcome, HealthPolicy, Scheduler, SchedulerConfig};

    use super::*;

    fn scheduler(f: &Fixture, default_interval: Duration, offline: bool) -> Scheduler {
        let policy = HealthPolicy { default_interval, offline, offline_mirror_hosts: vec!["mirror.internal".into()] };
        let catalog = f.catalog.clone().with_health_policy(policy);
        Scheduler::new(Arc::new(catalog), SchedulerConfig::default())
    }

    async fn active(f: &Fixture, name: &str, configuration: serde_json::Value) -> Uuid {
        let created = f.catalog.create(&alice(), spec(name, configuration)).await.unwrap();
        let tested = f.catalog.activate(&alice(), created.integration_id).await.unwrap();
        assert_eq!(tested.integration.status, Status::Active);
        created.integration_id
    }

    /// What a lease `seconds` from now would take (held only until a millisecond after that).
    async fn due_in(f: &Fixture, seconds: i64) -> Vec<Uuid> {
        let at = unix_ms(stella_integrations::domain::now()) + seconds * 1000;
        let leased = f.catalog.lease_health_checks("probe", at, 1, 10).await.unwrap();
        leased.into_iter().map(|l| l.integration_id).collect()
    }

    async fn outcomes(f: &Fixture, id: Uuid) -> Vec<CheckOutcome> {
        let history = f.catalog.health_report(&alice(), id, &PageRequest::first(100)).await.unwrap().history;
        history.into_iter().rev().map(|c| c.outcome).collect()
    }

    #[tokio::test]
    async fn checks_go_through_the_lifecycle_and_write_only_what_changed() {
        let f = fixture().await;
        let ok = active(&f, "ok", json!({})).await;
        // A control character in a connector's message (a NUL too, which PostgreSQL keeps none of
        // in text) shows as U+FFFD.
        let flaky = active(&f, "flaky", json!({"health": "unhealthy", "message": "registry\u{0} down"})).await;
        let draft = f.catalog.create(&alice(), spec("draft", json!({}))).await.unwrap().integration_id;
        let ok_version = f.catalog.get(&alice(), ok).await.unwrap().version;
        let events_before = event_types(&f).await.len();

        // Every check is due at once with a zero interval. Failures in a row degrade, then fail,
        // the integration; its health changed once.
        let every_time = scheduler(&f, Duration::ZERO, false);
        for _ in 0..5 {
            assert_eq!(every_time.run_due().await.unwrap(), 2);
        }
        assert_eq!(outcomes(&f, ok).await, [CheckOutcome::Healthy; 5]);
        assert_eq!(outcomes(&f, flaky).await, [CheckOutcome::Unhealthy; 5]);
        assert!(outcomes(&f, draft).await.is_empty());
        let history = f.catalog.health_report(&alice(), flaky, &PageRequest::first(1)).await.unwrap().history;
        assert_eq!(
            (history[0].failure_class.map(|c| c.as_str()), history[0].message.as_str()),
            (Some("internal"), "registry\u{FFFD} down")
        );
        let row = f.catalog.get(&alice(), flaky).await.unwrap();
        assert_eq!((row.status, row.consecutive_failures, row.last_test_success), (Status::Failed, 5, Some(false)));
        let new_events = event_types(&f).await.split_off(events_before);
        assert_eq!(new_events, ["integration.unhealthy"]);
        assert_eq!(audit_actions(&f, flaky).await.iter().filter(|a| *a == "health-checked").count(), 5);
        let entries = f.catalog.audit(&alice(), flaky, 0, 100).await.unwrap().items;
        assert_eq!(entries.last().unwrap().actor, "scheduler");
        // A passing check of a healthy integration writes no row, audit entry or event.
        assert_eq!(f.catalog.get(&alice(), ok).await.unwrap().version, ok_version);
        assert_eq!(audit_actions(&f, ok).await, ["created", "activated", "tested"]);

        // A paused integration is not checked; offline mode records skipped checks and moves nothing.
        f.catalog.pause(&alice(), ok, "maintenance".into(), None).await.unwrap();
        let offline = scheduler(&f, Duration::ZERO, true);
        assert_eq!(offline.run_due().await.unwrap(), 1);
        assert_eq!(outcomes(&f, ok).await.len(), 5);
        assert_eq!(outcomes(&f, flaky).await.last(), Some(&CheckOutcome::Skipped));
        let row = f.catalog.get(&alice(), flaky).await.unwrap();
        assert_eq!((row.status, row.consecutive_failures), (Status::Failed, 5));

        // With an interval, a check is not due again before it, whatever it found.
        let hourly = scheduler(&f, Duration::from_secs(3600), false);
        assert_eq!(hourly.run_due().await.unwrap(), 1);
        assert_eq!(hourly.run_due().await.unwrap(), 0);
        assert_eq!(every_time.run_due().await.unwrap(), 0);

        // The ledger kept every invocation: the two activation tests and the eleven checks that
        // ran a connector (not the skipped one, which ran none). In full: the tests, every failed
        // check, and the first healthy one; the four healthy checks that repeated it are folded
        // into a summary of their hour (two, should the hour have turned meanwhile).
        use stella_integrations::ledger::{InvocationFilter, Level, Operation};
        let entries = f.store.invocations(Some("acme"), &InvocationFilter::default(), None, 100).await.unwrap();
        let full: Vec<_> = entries.iter().filter(|e| e.level == Level::Full).collect();
        let summaries: Vec<_> = entries.iter().filter_map(|e| e.summary.as_ref().map(|s| (e, s))).collect();
        assert_eq!(full.len(), 2 + 6 + 1, "{entries:#?}");
        assert_eq!(summaries.iter().map(|(_, s)| s.checks).sum::<u64>(), 4);
        assert!(summaries.iter().all(|(e, _)| e.integration_id == ok && e.outcome == "healthy"));
        let first_of_ok = full
            .iter()
            .filter(|e| e.integration_id == ok && e.operation == Operation::CheckHealth)
            .min_by_key(|e| e.at)
            .unwrap();
        assert!(summaries.iter().all(|(_, s)| s.repeats == first_of_ok.invocation_id), "{summaries:#?}");
        assert_eq!(f.store.prune_invocations(i64::MAX).await.unwrap(), entries.len() as u64);
    }

    /// One task prunes every table that grows, once per interval across replicas: what the
    /// retentions no longer keep goes, and what they keep stays.
    #[tokio::test]
    async fn maintenance_prunes_every_table_once_per_interval_across_replicas() {
        use stella_integrations::service::{Pruned, Retention};
        let f = fixture().await;
        let id = active(&f, "pruned", json!({})).await;
        assert_eq!(scheduler(&f, Duration::ZERO, false).run_due().await.unwrap(), 1);
        let day = Duration::from_secs(86_400);
        let keep = Retention {
            ledger: day,
            health_checks: day,
            health_hours: day,
            delivered_events: day,
            undelivered_events: Some(day),
        };
        let (lease, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(f.catalog.maintain("r1", &keep, lease, hour).await.unwrap(), Some(Pruned::default()));
        assert_eq!(f.catalog.maintain("r2", &keep, lease, hour).await.unwrap(), None, "done for the hour");
        assert_eq!(f.catalog.maintain("r1", &keep, lease, hour).await.unwrap(), None);

        // A day later, everything written now is older than kept.
        let tomorrow = stella_integrations::domain::now() + time::Duration::days(1) + time::Duration::seconds(1);
        let pruned = f.catalog.prune_all(&keep, tomorrow).await.unwrap();
        assert_eq!(pruned.invocations, 2, "the activation's test and the check: {pruned:?}");
        assert_eq!(
            (pruned.health_checks, pruned.health_hours, pruned.events, pruned.console),
            (1, 1, 2, 0),
            "{pruned:?}"
        );
        assert_eq!(f.store.prune_invocations(i64::MAX).await.unwrap(), 0);
        assert_eq!(f.catalog.events(&alice(), None, 10).await.unwrap(), (vec![], 2));
        assert!(outcomes(&f, id).await.is_empty());
        // What is kept is not pruned: the integration itself, its audit trail.
        assert_eq!(audit_actions(&f, id).await, ["created", "activated", "tested"]);
    }

    #[tokio::test]
    async fn an_offline_site_still_checks_feed_mirrors_inside_it() {
        let f = fixture().await;
        let feed = |name: &str, base_url: &str, mirrors: serde_json::Value| {
            let mut s = spec(name, json!({"mirrorHosts": mirrors}));
            s.integration_type = stella_runtime::IntegrationType::Feed;
            s.base_url = Some(base_url.into());
            s
        };
        let mut ids = vec![];
        for s in [
            feed("inside", "https://Mirror.Internal/feeds", json!(["mirror.internal"])),
            feed("elsewhere", "https://nvd.example.com", json!(["mirror.internal"])),
            // Its own list names its host, but the site's does not: a tenant cannot open the network.
            feed("tenant-listed", "https://feeds.example.com", json!(["feeds.example.com"])),
            feed("no-list", "https://mirror.internal", json!(null)),
            spec("registry", json!({"mirrorHosts": ["mirror.internal"]})),
        ] {
            let id = f.catalog.create(&alice(), s).await.unwrap().integration_id;
            f.catalog.activate(&alice(), id).await.unwrap();
            ids.push(id);
        }
        assert_eq!(scheduler(&f, Duration::ZERO, true).run_due().await.unwrap(), 5);
        let found: Vec<Vec<CheckOutcome>> =
            futures_util::future::join_all(ids.iter().map(|id| outcomes(&f, *id))).await;
        assert_eq!(
            found,
            [
                vec![CheckOutcome::Healthy],
                vec![CheckOutcome::Skipped],
                vec![CheckOutcome::Skipped],
                vec![CheckOutcome::Skipped],
                vec![CheckOutcome::Skipped]
            ]
        );
    }

    #[tokio::test]
    async fn an_integration_s_own_interval_overrides_the_default_and_a_new_one_applies_at_once() {
        let f = fixture().await;
        let mut fast = spec("fast", json!({}));
        fast.health_check_interval = Some(30);
        let fast = f.catalog.create(&alice(), fast).await.unwrap().integration_id;
        f.catalog.activate(&alice(), fast).await.unwrap();
        let slow = active(&f, "slow", json!({})).await;
        let hourly = scheduler(&f, Duration::from_secs(3600), false);
        assert_eq!(hourly.run_due().await.unwrap(), 2);
        // Due again 30 s ± 10% later, while the other waits for the default hour.
        assert_eq!(due_in(&f, 26).await, Vec::<Uuid>::new());
        assert_eq!(due_in(&f, 34).await, [fast]);
        // A new interval applies at once: the next check is due now, not in an hour.
        let row = f.catalog.get(&alice(), slow).await.unwrap();
        let mut changed = spec("slow", json!({}));
        changed.health_check_interval = Some(60);
        f.catalog.update(&alice(), slow, IfMatch::Version(row.version), changed).await.unwrap();
        assert_eq!(hourly.run_due().await.unwrap(), 1);
        assert_eq!(outcomes(&f, slow).await.len(), 2);
        let entries = f.catalog.audit(&alice(), slow, 0, 100).await.unwrap().items;
        assert_eq!(entries.last().unwrap().details, json!({"changed": ["healthCheckInterval"]}));
    }

    #[tokio::test]
    async fn a_check_that_runs_past_the_deadline_frees_its_worker_and_waits_a_full_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("catalog.db")).await.unwrap());
        let mut config = SandboxConfig::default();
        config.limits.deadline_ms = 300;
        let sandbox = Sandbox::new(config, Arc::new(StaticSecretResolver::default())).unwrap();
        let connectors = ConnectorCatalog::load(&sandbox, stella_builtin_connectors::BUILTINS, None);
        let f =
            Fixture { catalog: Catalog::new(store.clone(), Arc::new(sandbox), Arc::new(connectors)), store, _dir: dir };
        let id = active(&f, "slow", json!({})).await;
        // From now on its connector sleeps 20 s in every check.
        let row = f.catalog.get(&alice(), id).await.unwrap();
        f.catalog
            .update(&alice(), id, IfMatch::Version(row.version), spec("slow", json!({"latencyMs": 20_000})))
            .await
            .unwrap();

        let hourly = scheduler(&f, Duration::from_secs(3600), false);
        // The deadline ended it: a `timeout`, not the scripted healthy answer 20 s later.
        assert_eq!(hourly.run_due().await.unwrap(), 1);
        let history = f.catalog.health_report(&alice(), id, &PageRequest::first(10)).await.unwrap().history;
        assert_eq!(
            (history.len(), history[0].outcome, history[0].failure_class.map(|c| c.as_str())),
            (1, CheckOutcome::Unhealthy, Some("timeout")),
            "{history:?}"
        );
        // Not checked again before its interval, however it failed.
        assert_eq!(hourly.run_due().await.unwrap(), 0);
        assert_eq!(due_in(&f, 3 * 60).await, Vec::<Uuid>::new());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_running_scheduler_checks_everything_due_in_batches_and_stops_when_told() {
        let f = fixture().await;
        let mut ids = Vec::new();
        for n in 0..40 {
            ids.push(active(&f, &format!("i{n:02}"), json!({})).await);
        }
        let flaky = active(&f, "flaky", json!({"health": "unhealthy"})).await;
        // Fewer workers than due checks: the loop must lease again as workers free up.
        let policy = HealthPolicy { default_interval: Duration::from_secs(3600), ..HealthPolicy::default() };
        let catalog = Arc::new(f.catalog.clone().with_health_policy(policy));
        let config = SchedulerConfig { concurrency: 4, poll: Duration::from_millis(50), ..SchedulerConfig::default() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(Scheduler::new(catalog, config).run(async move {
            let _ = stopped.await;
        }));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut done = 0;
            for id in ids.iter().chain([&flaky]) {
                done += usize::from(!outcomes(&f, *id).await.is_empty());
            }
            if done == ids.len() + 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{done} of {} checked", ids.len() + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), running).await.expect("the scheduler stops").unwrap();
        // Each checked once (the next is an hour away); the failing one through the lifecycle.
        for id in &ids {
            assert_eq!(outcomes(&f, *id).await, [CheckOutcome::Healthy]);
        }
        assert_eq!(outcomes(&f, flaky).await, [CheckOutcome::Unhealthy]);
        let row = f.catalog.get(&alice(), flaky).await.unwrap();
        assert_eq!((row.consecutive_failures, row.last_test_success), (1, Some(false)));
        assert_eq!(audit_actions(&f, flaky).await.last().map(String::as_str), Some("health-checked"));
    }
}
