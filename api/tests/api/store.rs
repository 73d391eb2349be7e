//! The store conformance suite: every test runs against SQLite (a fresh file) and PostgreSQL (a
//! fresh database on the server of `STELLA_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without a reachable PostgreSQL the PostgreSQL
//! half is skipped with a message, except under `CI=true`, where it fails.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use sqlx::Connection;
use stella_integrations::audit::{AuditAction, AuditDraft, PluginAction, PluginAuditDraft};
use stella_integrations::domain::from_unix_ms;
use stella_integrations::domain::{BaseUrl, Integration, now, unix_ms};
use stella_integrations::events::{EventDraft, EventType};
use stella_integrations::health::{CheckOutcome, FinishedCheck, HealthCheck};
use stella_integrations::ledger::LedgerEntry;
use stella_integrations::lifecycle::{Lifecycle, Status};
use stella_integrations::plugins::{PermissionSet, PluginStatus, PluginVersion, StoredSignature};
use stella_integrations::query::{ListFilter, ListPosition};
use stella_integrations::store::{
    Activation, Change, IdempotentResponse, IntegrationStore, PluginChange, PluginWrite, PostgresStore, RowWrite,
    SqliteStore, Store, StoreError,
};
use stella_runtime::FailureClass;
use stella_runtime::IntegrationType;
use stella_runtime::secrets::AuthRef;
use uuid::Uuid;

/// A store under test and a way to run raw SQL against its database (to play the attacker).
struct Backend {
    store: Arc<dyn Store>,
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database made for the test, dropped by `finish`.
    database: Option<common::TestDatabase>,
}

impl Backend {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/catalog.db");
        let store = SqliteStore::open(&path).await.unwrap();
        Self { store: Arc::new(store), url: format!("sqlite://{}", path.display()), _dir: Some(dir), database: None }
    }

    async fn postgres() -> Option<Self> {
        let db = common::postgres_database().await?;
        let store = PostgresStore::connect(&db.url).await.unwrap();
        Some(Self { store: Arc::new(store), url: db.url.clone(), _dir: None, database: Some(db) })
    }

    /// Drops a PostgreSQL test database (its pool's connections are terminated).
    async fn finish(self) {
        drop(self.store);
        if let Some(db) = self.database {
            db.drop_now().await;
        }
    }

    /// Runs one statement as the database owner, outside the store.
    async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
            Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await?;
            Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected())
        }
    }
}

fn integration(tenant: &str, name: &str) -> Integration {
    let mut i = Integration {
        integration_id: Uuid::new_v4(),
        tenant_id: tenant.to_string(),
        name: name.to_string(),
        description: Some("Harbor in the prod cluster — «ünïcödé»".into()),
        integration_type: IntegrationType::Registry,
        provider: "harbor".into(),
        base_url: Some(BaseUrl::parse("https://harbor.example.com").unwrap()),
        auth_ref: Some(AuthRef::parse("ref://integrations/harbor/robot").unwrap()),
        configuration: json!({"project": "library", "nested": {"n": 1, "list": [true, null, 2.5], "nul\u{0}": "a\u{0}b"}}),
        environment: Some("prod".into()),
        tags: vec!["eu".into(), "critical".into()],
        owner_id: Some("team-platform".into()),
        health_check_interval: Some(600),
        status: Status::Draft,
        paused: false,
        pause_reason: None,
        pause_ticket: None,
        last_tested_at: None,
        last_test_success: None,
        consecutive_failures: 0,
        created_at: now(),
        created_by: "alice".into(),
        modified_at: None,
        modified_by: None,
        version: 1,
    };
    i.set_lifecycle(Lifecycle::new());
    i
}

fn audit(action: AuditAction) -> AuditDraft {
    AuditDraft { action, actor: "alice".into(), at: now(), details: json!({"why": action.as_str()}) }
}

fn created(i: &Integration) -> Change {
    Change {
        tenant_id: i.tenant_id.clone(),
        integration_id: i.integration_id,
        write: RowWrite::Insert(Box::new(i.clone())),
        audit: audit(AuditAction::Created),
        events: vec![EventDraft { event_type: EventType::Created, data: json!({"name": i.name}) }],
        test_result: None,
        idempotency: None,
        reschedule_health: false,
        invocations: vec![],
    }
}

fn updated(i: &Integration, expected_version: i64) -> Change {
    Change {
        write: RowWrite::Update { row: Box::new(i.clone()), expected_version },
        audit: audit(AuditAction::Updated),
        events: vec![EventDraft { event_type: EventType::Updated, data: json!({}) }],
        ..created(i)
    }
}

fn deleted(i: &Integration, expected_version: i64) -> Change {
    Change {
        write: RowWrite::Delete { expected_version },
        audit: audit(AuditAction::Deleted),
        events: vec![EventDraft { event_type: EventType::Deleted, data: json!({}) }],
        ..created(i)
    }
}

async fn insert(store: &dyn Store, tenant: &str, name: &str) -> Integration {
    let i = integration(tenant, name);
    store.apply(created(&i)).await.unwrap();
    i
}

async fn a_row_reads_back_exactly_as_written(b: &Backend) {
    let s = &*b.store;
    let mut i = integration("t1", "harbor-prod");
    i.last_tested_at = Some(now());
    i.last_test_success = Some(false);
    i.consecutive_failures = 4;
    i.status = Status::Degraded;
    s.apply(created(&i)).await.unwrap();
    assert_eq!(s.get("t1", i.integration_id).await.unwrap(), Some(i.clone()));
    // Another tenant does not see it.
    assert_eq!(s.get("t2", i.integration_id).await.unwrap(), None);
    assert_eq!(s.get("t1", Uuid::new_v4()).await.unwrap(), None);
}

async fn names_are_unique_per_tenant(b: &Backend) {
    let s = &*b.store;
    insert(s, "t1", "gitlab").await;
    insert(s, "t2", "gitlab").await;
    let dup = integration("t1", "gitlab");
    assert!(matches!(s.apply(created(&dup)).await, Err(StoreError::NameTaken(n)) if n == "gitlab"));
    let mut other = insert(s, "t1", "gitea").await;
    other.name = "gitlab".into();
    assert!(matches!(s.apply(updated(&other, 1)).await, Err(StoreError::NameTaken(_))));
    // A refused change writes nothing: no audit entry, no event.
    assert_eq!(s.audit("t1", dup.integration_id, 0, 10).await.unwrap(), []);
    let events = s.events("t1", 0, 100).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
}

async fn updates_and_deletes_need_the_current_version(b: &Backend) {
    let s = &*b.store;
    let mut i = insert(s, "t1", "jenkins").await;
    i.description = Some("v2".into());
    s.apply(updated(&i, 1)).await.unwrap();
    let stored = s.get("t1", i.integration_id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.description.as_deref()), (2, Some("v2")));

    i.description = Some("lost update".into());
    assert!(matches!(s.apply(updated(&i, 1)).await, Err(StoreError::Stale { current: 2 })));
    assert!(matches!(s.apply(deleted(&i, 1)).await, Err(StoreError::Stale { current: 2 })));
    let mut foreign = i.clone();
    foreign.tenant_id = "t2".into();
    assert!(matches!(s.apply(updated(&foreign, 2)).await, Err(StoreError::NotFound)));
    assert!(matches!(s.apply(deleted(&foreign, 2)).await, Err(StoreError::NotFound)));
    assert_eq!(s.get("t1", i.integration_id).await.unwrap().unwrap().description.as_deref(), Some("v2"));

    s.apply(deleted(&i, 2)).await.unwrap();
    assert_eq!(s.get("t1", i.integration_id).await.unwrap(), None);
    assert!(matches!(s.apply(deleted(&i, 3)).await, Err(StoreError::NotFound)));
    // The audit trail outlives the row.
    let actions: Vec<String> =
        s.audit("t1", i.integration_id, 0, 10).await.unwrap().into_iter().map(|e| e.action.to_string()).collect();
    assert_eq!(actions, ["created", "updated", "deleted"]);
}

async fn lists_filter_and_order_by_name_then_id(b: &Backend) {
    let s = &*b.store;
    let mut names = vec![];
    for (n, (env, tag, provider, paused)) in [
        ("prod", "eu", "harbor", false),
        ("dev", "us", "harbor", true),
        ("prod", "us", "gitlab", false),
        ("dev", "eu", "gitlab", false),
    ]
    .into_iter()
    .enumerate()
    {
        let mut i = integration("t1", &format!("int-{n}_{env}%"));
        // Healthy, unhealthy, never tested, healthy.
        i.last_test_success = [Some(true), Some(false), None, Some(true)][n];
        i.environment = Some(env.into());
        i.tags = vec![tag.into(), format!("n{n}")];
        i.provider = provider.into();
        if paused {
            i.status = Status::Paused;
            i.paused = true;
        }
        s.apply(created(&i)).await.unwrap();
        names.push(i.name);
    }
    insert(s, "t2", "int-other-tenant").await;
    let list = |f: ListFilter| async move {
        s.list("t1", &f, None, 100).await.unwrap().into_iter().map(|i| i.name).collect::<Vec<_>>()
    };
    assert_eq!(list(ListFilter::default()).await, names);
    assert_eq!(
        list(ListFilter { environment: Some("dev".into()), ..Default::default() }).await,
        [names[1].as_str(), names[3].as_str()]
    );
    assert_eq!(
        list(ListFilter { tag: Some("eu".into()), ..Default::default() }).await,
        [names[0].as_str(), names[3].as_str()]
    );
    assert_eq!(list(ListFilter { tag: Some("e".into()), ..Default::default() }).await, Vec::<String>::new());
    assert_eq!(list(ListFilter { paused: Some(true), ..Default::default() }).await, [names[1].as_str()]);
    assert_eq!(list(ListFilter { status: Some(Status::Paused), ..Default::default() }).await, [names[1].as_str()]);
    assert_eq!(
        list(ListFilter { provider: Some("gitlab".into()), paused: Some(false), ..Default::default() }).await,
        [names[2].as_str(), names[3].as_str()]
    );
    assert_eq!(list(ListFilter { integration_type: Some(IntegrationType::Scm), ..Default::default() }).await.len(), 0);
    assert_eq!(list(ListFilter { owner: Some("team-platform".into()), ..Default::default() }).await.len(), 4);
    use stella_integrations::health::HealthState;
    let health = |h: HealthState| ListFilter { health: Some(h), ..Default::default() };
    assert_eq!(list(health(HealthState::Healthy)).await, [names[0].as_str(), names[3].as_str()]);
    assert_eq!(list(health(HealthState::Unhealthy)).await, [names[1].as_str()]);
    assert_eq!(list(health(HealthState::Unknown)).await, [names[2].as_str()]);
    // `q` is a case-insensitive substring; `%` and `_` match only themselves.
    assert_eq!(
        list(ListFilter { name_contains: Some("INT-2".into()), ..Default::default() }).await,
        [names[2].as_str()]
    );
    assert_eq!(
        list(ListFilter { name_contains: Some("d%".into()), ..Default::default() }).await,
        [names[0].as_str(), names[2].as_str()]
    );
    assert_eq!(list(ListFilter { name_contains: Some("t-_".into()), ..Default::default() }).await.len(), 0);

    // Equal names cannot exist, but equal-prefix names order bytewise: "a" < "a-b" < "aB" < "b".
    for n in ["b", "aB", "a", "a-b", "Z"] {
        insert(s, "t3", n).await;
    }
    let order: Vec<String> =
        s.list("t3", &ListFilter::default(), None, 10).await.unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(order, ["Z", "a", "a-b", "aB", "b"]);
}

async fn paging_under_concurrent_writes_never_repeats_or_skips_a_stable_row(b: &Backend) {
    let s = &*b.store;
    let mut stable = BTreeSet::new();
    for n in 0..30 {
        stable.insert(insert(s, "t1", &format!("stable-{n:02}")).await.name);
    }
    let mut volatile = vec![];
    for n in 0..10 {
        volatile.push(insert(s, "t1", &format!("stable-{n:02}-volatile")).await);
    }
    let mut seen = vec![];
    let mut after: Option<ListPosition> = None;
    let mut page_no = 0;
    loop {
        let page = s.list("t1", &ListFilter::default(), after.as_ref(), 7).await.unwrap();
        // Between pages: delete a volatile row and insert new ones before and after the cursor.
        if let Some(v) = volatile.pop() {
            s.apply(deleted(&v, 1)).await.unwrap();
        }
        insert(s, "t1", &format!("stable-00-new-{page_no}")).await;
        insert(s, "t1", &format!("zz-new-{page_no}")).await;
        page_no += 1;
        let Some(last) = page.last() else { break };
        after = Some(ListPosition { name: last.name.clone(), id: last.integration_id });
        seen.extend(page.into_iter().map(|i| i.name));
        assert!(page_no < 100, "paging does not end");
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a row was repeated: {seen:?}");
    assert!(stable.is_subset(&unique), "a stable row was skipped");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages are not in order");
}

async fn the_audit_chain_verifies_and_detects_tampering(b: &Backend) {
    let s = &*b.store;
    let mut i = insert(s, "t1", "chain").await;
    for v in 1..4 {
        i.description = Some(format!("v{v}"));
        s.apply(updated(&i, v)).await.unwrap();
    }
    insert(s, "t2", "chain").await;
    let entries = s.audit("t1", i.integration_id, 0, 100).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert!(entries.iter().all(|e| e.compute_hash() == e.hash));
    assert_eq!(s.audit("t1", i.integration_id, 2, 1).await.unwrap()[0].seq, 3);
    let report = s.verify_audit().await.unwrap();
    assert_eq!((report.tenants, report.entries, report.breaks.len()), (2, 5, 0), "{report:?}");

    // The database itself refuses to change or remove audit entries.
    for sql in ["UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2", "DELETE FROM audit_entries WHERE seq = 4"] {
        let err = b.raw(sql).await.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if !b.url.starts_with("sqlite:") {
        let err = b.raw("TRUNCATE audit_entries").await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{err}");
    }

    // Someone with the power to drop the triggers can edit a row, but the chain shows it.
    if b.url.starts_with("sqlite:") {
        b.raw("DROP TRIGGER audit_entries_no_update").await.unwrap();
    } else {
        b.raw("ALTER TABLE audit_entries DISABLE TRIGGER USER").await.unwrap();
    }
    b.raw("UPDATE audit_entries SET actor = 'mallory' WHERE tenant_id = 't1' AND seq = 2").await.unwrap();
    let report = s.verify_audit().await.unwrap();
    assert_eq!(report.breaks.len(), 1, "{report:?}");
    assert_eq!((report.breaks[0].tenant_id.as_str(), report.breaks[0].seq), ("t1", 2));

    // An action this service never writes is one more break, not the end of the verification:
    // the other tenants are still checked.
    b.raw("UPDATE audit_entries SET action = 'approved-by-mallory' WHERE tenant_id = 't2' AND seq = 1").await.unwrap();
    let report = s.verify_audit().await.unwrap();
    let breaks: Vec<(&str, i64, &str)> =
        report.breaks.iter().map(|b| (b.tenant_id.as_str(), b.seq, b.problem.as_str())).collect();
    assert_eq!(
        breaks,
        [("t1", 2, "its content does not match its hash"), ("t2", 1, "its action is not one this service writes")],
        "{report:?}"
    );
}

async fn events_are_numbered_per_tenant_and_shaped_as_cloudevents(b: &Backend) {
    let s = &*b.store;
    let i = insert(s, "t1", "ev").await;
    insert(s, "t2", "ev").await;
    let mut change = updated(&i, 1);
    change.events.push(EventDraft { event_type: EventType::Healthy, data: json!({"x": 1}) });
    s.apply(change).await.unwrap();

    let events = s.events("t1", 0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let e = &events[2].cloud_event;
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "integration.healthy");
    assert_eq!(e["tenantid"], "t1");
    assert_eq!(e["subject"], i.integration_id.to_string());
    assert_eq!(e["data"], json!({"x": 1}));
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    Uuid::parse_str(e["id"].as_str().unwrap()).unwrap();
    assert_eq!(s.events("t1", 1, 1).await.unwrap()[0].seq, 2);
    assert_eq!(s.events("t2", 0, 10).await.unwrap().len(), 1);

    let pending = s.undelivered_events(100).await.unwrap();
    assert_eq!(pending.len(), 4);
    s.mark_delivered(&[("t1".into(), 1), ("t2".into(), 1)]).await.unwrap();
    let pending: Vec<(String, i64)> =
        s.undelivered_events(100).await.unwrap().into_iter().map(|e| (e.tenant_id, e.seq)).collect();
    assert_eq!(pending, [("t1".to_string(), 2), ("t1".to_string(), 3)]);
}

async fn the_outbox_is_pruned_from_the_start_of_each_stream(b: &Backend) {
    let s = &*b.store;
    let epoch = time::OffsetDateTime::UNIX_EPOCH;
    let later = now() + time::Duration::seconds(5);
    assert_eq!(s.oldest_event_cursor("t1").await.unwrap(), 0, "no stream yet");
    let i = insert(s, "t1", "ev").await;
    for version in 1..=3 {
        s.apply(updated(&i, version)).await.unwrap();
    }
    insert(s, "t2", "ev").await;
    assert_eq!(s.oldest_event_cursor("t1").await.unwrap(), 0, "nothing pruned yet");

    // Delivered: t1's 1, 2 and 4, t2's 1. Event 3 of t1 is not, so 4 stays behind it: a stream
    // is pruned only from its start, never with a hole a cursor could fall into.
    s.mark_delivered(&[("t1".into(), 1), ("t1".into(), 2), ("t1".into(), 4), ("t2".into(), 1)]).await.unwrap();
    assert_eq!(s.prune_events(epoch, epoch).await.unwrap(), 0, "nothing delivered before the epoch");
    assert_eq!(s.prune_events(later, epoch).await.unwrap(), 3);
    let seqs = |tenant: &'static str| async move {
        s.events(tenant, 0, 100).await.unwrap().into_iter().map(|e| e.seq).collect::<Vec<_>>()
    };
    assert_eq!(seqs("t1").await, [3, 4]);
    assert_eq!(seqs("t2").await, Vec::<i64>::new());
    assert_eq!(s.oldest_event_cursor("t1").await.unwrap(), 2, "from 2 on, t1's stream is whole");
    assert_eq!(s.oldest_event_cursor("t2").await.unwrap(), 1, "all pruned: its last event");
    assert_eq!(s.events("t1", 2, 100).await.unwrap().len(), 2);

    // Without a broker, age alone decides; events written since stay.
    assert_eq!(s.prune_events(epoch, later).await.unwrap(), 2);
    assert_eq!(s.oldest_event_cursor("t1").await.unwrap(), 4);
    s.apply(updated(&i, 4)).await.unwrap();
    assert_eq!(seqs("t1").await, [5], "numbering goes on after a prune");
    assert_eq!(s.oldest_event_cursor("t1").await.unwrap(), 4);
    assert_eq!(s.prune_events(later, now() - time::Duration::hours(1)).await.unwrap(), 0, "younger than kept");
}

async fn the_maintenance_lease_is_held_by_one_replica_at_a_time(b: &Backend) {
    let s = b.store.clone();
    // Due from the start: of replicas racing for it, exactly one takes it.
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.take_maintenance("prune", &format!("r{n}"), 1_000, 2_000).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for r in racers {
        taken += usize::from(r.await.unwrap());
    }
    assert_eq!(taken, 1);
    assert!(!s.take_maintenance("prune", "late", 1_999, 3_000).await.unwrap(), "held until its lease ends");
    // A lease that expired (its replica died) is taken over; the old owner's finish then changes
    // nothing.
    assert!(s.take_maintenance("prune", "b", 2_000, 3_000).await.unwrap());
    for n in 0..8 {
        assert!(!s.finish_maintenance("prune", &format!("r{n}"), 2_500, 9_000).await.unwrap());
    }
    assert!(s.finish_maintenance("prune", "b", 2_500, 6_000).await.unwrap());
    // Not due again until the interval after the run has passed, whoever asks.
    assert!(!s.take_maintenance("prune", "b", 5_999, 7_000).await.unwrap());
    assert!(!s.take_maintenance("prune", "c", 5_999, 7_000).await.unwrap());
    assert!(s.take_maintenance("prune", "c", 6_000, 7_000).await.unwrap());
    assert!(!s.take_maintenance("no-such-task", "c", 6_000, 7_000).await.unwrap());
}

async fn the_latest_test_result_is_kept_and_goes_with_the_row(b: &Backend) {
    let s = &*b.store;
    let i = insert(s, "t1", "tested").await;
    assert_eq!(s.latest_test("t1", i.integration_id).await.unwrap(), None);
    for n in 1..3 {
        let mut change = updated(&i, n);
        change.test_result = Some(json!({"run": n}).to_string());
        s.apply(change).await.unwrap();
    }
    assert_eq!(s.latest_test("t1", i.integration_id).await.unwrap(), Some(json!({"run": 2})));
    assert_eq!(s.latest_test("t2", i.integration_id).await.unwrap(), None);
    s.apply(deleted(&i, 3)).await.unwrap();
    assert_eq!(s.latest_test("t1", i.integration_id).await.unwrap(), None);
}

async fn an_idempotency_key_is_kept_with_its_change_or_not_at_all(b: &Backend) {
    let s = &*b.store;
    let response =
        |n: &str| IdempotentResponse { key: "k1".into(), request_hash: n.into(), status: 201, body: "{}".into() };
    let first = integration("t1", "idem");
    s.apply(Change { idempotency: Some(response("h1")), ..created(&first) }).await.unwrap();
    assert_eq!(s.idempotent_response("t1", "k1").await.unwrap(), Some(response("h1")));
    assert_eq!(s.idempotent_response("t2", "k1").await.unwrap(), None);
    // A concurrent request that stored the key first wins; this change is rolled back whole.
    let second = integration("t1", "idem-2");
    assert!(matches!(
        s.apply(Change { idempotency: Some(response("h2")), ..created(&second) }).await,
        Err(StoreError::KeyInFlight)
    ));
    assert_eq!(s.get("t1", second.integration_id).await.unwrap(), None);
    assert_eq!(s.events("t1", 0, 10).await.unwrap().len(), 1);
    assert_eq!(s.verify_audit().await.unwrap().entries, 1);
    // Keys are remembered for a while, then forgotten.
    assert_eq!(s.prune_idempotency_keys(now() - time::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(s.prune_idempotency_keys(now() + time::Duration::seconds(1)).await.unwrap(), 1);
    assert_eq!(s.idempotent_response("t1", "k1").await.unwrap(), None);
}

async fn concurrent_writers_keep_one_unbroken_chain(b: &Backend) {
    let mut tasks = vec![];
    for n in 0..24 {
        let store = b.store.clone();
        tasks.push(tokio::spawn(async move {
            let i = integration(if n % 2 == 0 { "even" } else { "odd" }, &format!("c{n}"));
            store.apply(created(&i)).await.unwrap();
            let mut j = i.clone();
            j.description = Some("again".into());
            store.apply(updated(&j, 1)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = b.store.verify_audit().await.unwrap();
    assert_eq!((report.tenants, report.entries, report.breaks.len()), (2, 48, 0), "{report:?}");
    for tenant in ["even", "odd"] {
        let seqs: Vec<i64> = b.store.events(tenant, 0, 100).await.unwrap().into_iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=24).collect::<Vec<_>>());
    }
}

/// Reads reuse their connections (the store's read pool): a read cancelled half-way must not leave
/// a connection behind that answers the next read with the rest of the old one, and connections the
/// server dropped cost at most one failed read each (503 to that client), never a stuck pool.
async fn reads_survive_cancellation_and_dropped_connections(b: &Backend) {
    let rows = [insert(&*b.store, "t1", "first").await, insert(&*b.store, "t1", "second").await];
    let check_reads = |rounds: usize| {
        let store = b.store.clone();
        let rows = rows.clone();
        async move {
            let mut tasks = vec![];
            for n in 0..rounds {
                let (store, row) = (store.clone(), rows[n % 2].clone());
                tasks.push(tokio::spawn(async move {
                    let got = store.get("t1", row.integration_id).await?;
                    assert_eq!(got.map(|g| g.name), Some(row.name.clone()), "a read answered with another row");
                    let page = store.list("t1", &ListFilter::default(), None, 10).await?;
                    assert_eq!(page.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["first", "second"]);
                    Ok::<_, StoreError>(())
                }));
            }
            let mut failures = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(()) => {}
                    Err(StoreError::Unavailable(_)) => failures += 1,
                    Err(e) => panic!("a read failed with {e:?}"),
                }
            }
            failures
        }
    };
    // Reads cut off at every point of their exchange with the database.
    for step in 0..200u64 {
        let (store, id) = (b.store.clone(), rows[(step % 2) as usize].integration_id);
        let _ = tokio::time::timeout(std::time::Duration::from_micros(step * 5), async move {
            store.get("t1", id).await.unwrap();
            store.list("t1", &ListFilter::default(), None, 10).await.unwrap();
        })
        .await;
    }
    assert_eq!(check_reads(64).await, 0, "reads after cancelled reads failed");
    if b.url.starts_with("postgres") {
        let killed = b
            .raw(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
            .unwrap();
        assert!(killed > 0, "the store had no open connection to kill");
        // Each killed idle connection fails one read at most; the ones after it are fresh.
        let failures = check_reads(64).await;
        assert!(failures <= 16, "{failures} reads failed after the connections were dropped");
        assert_eq!(check_reads(64).await, 0, "reads did not recover after the connections were dropped");
    }
}

/// An integration in `status` (paused when `paused`), inserted.
async fn insert_in(store: &dyn Store, tenant: &str, name: &str, status: Status, paused: bool) -> Integration {
    let mut i = integration(tenant, name);
    i.set_lifecycle(Lifecycle {
        status,
        paused,
        pause_reason: paused.then(|| "maintenance".to_string()),
        ..Lifecycle::new()
    });
    store.apply(created(&i)).await.unwrap();
    i
}

fn check(at_ms: i64, outcome: CheckOutcome) -> HealthCheck {
    HealthCheck {
        check_id: Uuid::new_v4(),
        checked_at: from_unix_ms(at_ms),
        outcome,
        failure_class: (outcome == CheckOutcome::Unhealthy).then_some(FailureClass::Network),
        latency_ms: 42,
        message: format!("{outcome:?} at {at_ms}"),
        replica: None,
    }
}

/// Records one check under `owner`'s lease: (tenant, integration, check, next due, change).
async fn finish(
    s: &dyn Store,
    owner: &str,
    tenant: &str,
    integration_id: Uuid,
    check: &HealthCheck,
    next_due_ms: i64,
    change: Option<Change>,
) -> Result<bool, StoreError> {
    let finished = FinishedCheck {
        tenant_id: tenant.into(),
        integration_id,
        check: check.clone(),
        next_due_ms,
        version: 0,
        invocation: None,
        foldable: false,
    };
    s.finish_health_check(owner, &finished, change).await
}

fn leased_ids(leased: &[Integration]) -> BTreeSet<Uuid> {
    leased.iter().map(|l| l.integration_id).collect()
}

async fn health_checks_are_leased_when_due_and_recorded_once(b: &Backend) {
    let s = &*b.store;
    let active = insert_in(s, "t1", "active", Status::Active, false).await;
    let degraded = insert_in(s, "t1", "degraded", Status::Degraded, false).await;
    insert_in(s, "t1", "paused", Status::Paused, true).await;
    insert_in(s, "t1", "draft", Status::Draft, false).await;
    insert_in(s, "t2", "pending", Status::PendingVerification, false).await;
    const LEASE: i64 = 60_000;
    let t0 = 1_800_000_000_000;

    // Only integrations in service and not paused are checked; a new one is due at once, once
    // scheduled (and only once).
    assert!(s.lease_health_checks("replica-1", t0, LEASE, 10).await.unwrap().is_empty());
    assert_eq!(s.schedule_health_checks(t0).await.unwrap(), 2);
    assert_eq!(s.schedule_health_checks(t0).await.unwrap(), 0);
    let first = s.lease_health_checks("replica-1", t0, LEASE, 10).await.unwrap();
    assert_eq!(leased_ids(&first), BTreeSet::from([active.integration_id, degraded.integration_id]));
    assert!(first.iter().all(|l| l.tenant_id == "t1"));
    // Leased checks are nobody else's until the lease expires...
    assert!(s.lease_health_checks("replica-2", t0 + 1, LEASE, 10).await.unwrap().is_empty());
    // ...then another replica takes them over (the first one crashed, say).
    let taken = s.lease_health_checks("replica-2", t0 + LEASE, LEASE, 10).await.unwrap();
    assert_eq!(leased_ids(&taken), leased_ids(&first));

    // The replica that lost its lease cannot record; the one holding it can, once.
    let id = active.integration_id;
    assert!(
        !finish(s, "replica-1", "t1", id, &check(t0 + 5, CheckOutcome::Healthy), t0 + 300_000, None).await.unwrap()
    );
    assert!(
        finish(s, "replica-2", "t1", id, &check(t0 + LEASE + 5, CheckOutcome::Healthy), t0 + 300_000, None)
            .await
            .unwrap()
    );
    assert!(
        !finish(s, "replica-2", "t1", id, &check(t0 + LEASE + 6, CheckOutcome::Healthy), t0 + 300_000, None)
            .await
            .unwrap()
    );
    // Another tenant's id does not match the lease.
    assert!(
        !finish(s, "replica-2", "t2", degraded.integration_id, &check(t0, CheckOutcome::Healthy), t0, None)
            .await
            .unwrap()
    );
    let history = s.health_history("t1", id, None, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].checked_at, from_unix_ms(t0 + LEASE + 5));
    assert_eq!((history[0].latency_ms, history[0].replica.as_deref()), (42, Some("replica-2")));

    // Not due again before its next time; the degraded one's lease has expired by then.
    let later = s.lease_health_checks("replica-3", t0 + 2 * LEASE + 1, LEASE, 10).await.unwrap();
    assert_eq!(leased_ids(&later), BTreeSet::from([degraded.integration_id]));
    let due = s.lease_health_checks("replica-3", t0 + 300_000, LEASE, 10).await.unwrap();
    assert!(leased_ids(&due).contains(&id));

    // History: newest first, paged by (time, id), never another tenant's; pruned by age.
    for (n, outcome) in [CheckOutcome::Unhealthy, CheckOutcome::Degraded, CheckOutcome::Skipped].into_iter().enumerate()
    {
        let at = t0 + 300_000 + n as i64 * 1_000;
        assert!(finish(s, "replica-3", "t1", id, &check(at, outcome), at + 300_000, None).await.unwrap());
        s.lease_health_checks("replica-3", at + 300_000, LEASE, 10).await.unwrap();
    }
    let page = s.health_history("t1", id, None, 2).await.unwrap();
    let outcomes: Vec<CheckOutcome> = page.iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, [CheckOutcome::Skipped, CheckOutcome::Degraded]);
    let cursor = stella_integrations::health::HistoryCursor::after(&page[1]);
    let rest = s.health_history("t1", id, Some(cursor), 10).await.unwrap();
    let outcomes: Vec<CheckOutcome> = rest.iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, [CheckOutcome::Unhealthy, CheckOutcome::Healthy]);
    assert_eq!(rest[0].failure_class, Some(FailureClass::Network));
    assert!(s.health_history("t2", id, None, 10).await.unwrap().is_empty());
    assert_eq!(s.prune_health_checks(t0 + 300_000).await.unwrap(), 1);
    assert_eq!(s.health_history("t1", id, None, 10).await.unwrap().len(), 3);

    // A change that reschedules (a new interval) makes the next check due at once, whatever the
    // schedule said; a check running under a lease is not run twice, its end makes the next due.
    let reschedule = |seconds: u32| async move {
        let current = s.get("t1", id).await.unwrap().unwrap();
        let next =
            Integration { health_check_interval: Some(seconds), version: current.version + 1, ..current.clone() };
        s.apply(Change { reschedule_health: true, ..updated(&next, current.version) }).await.unwrap();
    };
    let t1 = t0 + 602_500;
    assert!(finish(s, "replica-3", "t1", id, &check(t1, CheckOutcome::Healthy), t0 + 900_000, None).await.unwrap());
    assert!(!leased_ids(&s.lease_health_checks("replica-5", t1 + 1, LEASE, 10).await.unwrap()).contains(&id));
    reschedule(30).await;
    assert!(leased_ids(&s.lease_health_checks("replica-5", t1 + 1, LEASE, 10).await.unwrap()).contains(&id));
    reschedule(60).await;
    assert!(!leased_ids(&s.lease_health_checks("replica-6", t1 + 2, LEASE, 10).await.unwrap()).contains(&id));
    assert!(
        finish(s, "replica-5", "t1", id, &check(t1 + 100, CheckOutcome::Healthy), t0 + 900_000, None).await.unwrap()
    );
    assert!(leased_ids(&s.lease_health_checks("replica-6", t1 + 101, LEASE, 10).await.unwrap()).contains(&id));

    // A check's change of the integration is written with its history row, under the lease, or
    // not at all.
    let current = s.get("t1", id).await.unwrap().unwrap();
    let failed = Integration { consecutive_failures: 1, version: current.version + 1, ..current.clone() };
    let lost = finish(
        s,
        "replica-5",
        "t1",
        id,
        &check(t1 + 200, CheckOutcome::Unhealthy),
        t0 + 900_000,
        Some(updated(&failed, current.version)),
    )
    .await
    .unwrap();
    assert!(!lost);
    assert_eq!(s.get("t1", id).await.unwrap().unwrap().version, current.version, "a lost lease writes nothing");
    let stale = Integration { version: current.version, ..failed.clone() };
    let e = finish(
        s,
        "replica-6",
        "t1",
        id,
        &check(t1 + 200, CheckOutcome::Unhealthy),
        t0 + 900_000,
        Some(updated(&stale, current.version - 1)),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Stale { .. }), "{e:?}");
    let before = s.health_history("t1", id, None, 100).await.unwrap().len();
    assert!(
        finish(
            s,
            "replica-6",
            "t1",
            id,
            &check(t1 + 200, CheckOutcome::Unhealthy),
            t0 + 900_000,
            Some(updated(&failed, current.version))
        )
        .await
        .unwrap()
    );
    assert_eq!(s.get("t1", id).await.unwrap().unwrap().consecutive_failures, 1);
    assert_eq!(s.health_history("t1", id, None, 100).await.unwrap().len(), before + 1);

    // Checks that changed nothing are recorded many at once, each only under its own lease.
    let t2 = t0 + 700_000;
    let other = insert_in(s, "t1", "other", Status::Active, false).await;
    s.schedule_health_checks(t2).await.unwrap();
    let both = s.lease_health_checks("replica-7", t2, LEASE, 10).await.unwrap();
    assert_eq!(leased_ids(&both), BTreeSet::from([other.integration_id, degraded.integration_id]));
    let leased_row = both.iter().find(|i| i.integration_id == other.integration_id).unwrap();
    assert_eq!((leased_row.name.as_str(), leased_row.status), ("other", Status::Active), "the lease answers the rows");
    let finished = |i: &Integration, at: i64| FinishedCheck {
        tenant_id: "t1".into(),
        integration_id: i.integration_id,
        check: check(at, CheckOutcome::Healthy),
        next_due_ms: at + 300_000,
        version: i.version,
        invocation: None,
        foldable: false,
    };
    let current = s.get("t1", id).await.unwrap().unwrap();
    let batch = [finished(&both[0], t2 + 150), finished(&both[1], t2 + 151), finished(&current, t2 + 152)];
    // `id` is not leased (replica-6 recorded it): left out.
    let recorded = s.finish_health_checks("replica-7", &batch).await.unwrap();
    assert_eq!(BTreeSet::from_iter(recorded), BTreeSet::from([other.integration_id, degraded.integration_id]));
    assert!(
        s.finish_health_checks("replica-7", &batch).await.unwrap().is_empty(),
        "released leases record nothing more"
    );
    let recorded = s.health_history("t1", other.integration_id, None, 10).await.unwrap();
    assert_eq!((recorded.len(), recorded[0].replica.as_deref()), (1, Some("replica-7")));
    assert!(s.lease_health_checks("replica-7", t2 + 152, LEASE, 10).await.unwrap().is_empty());
    // An integration changed since its lease is left out: the check may change it after all.
    let due = t2 + 152 + 300_000;
    let leased = s.lease_health_checks("replica-8", due, LEASE, 10).await.unwrap();
    assert!(leased_ids(&leased).is_superset(&BTreeSet::from([other.integration_id, degraded.integration_id])));
    let stale = leased.iter().find(|i| i.integration_id == degraded.integration_id).unwrap().clone();
    let paused = Integration { paused: true, version: stale.version + 1, ..stale.clone() };
    s.apply(updated(&paused, stale.version)).await.unwrap();
    let batch = [finished(&stale, due + 1), finished(leased.iter().find(|i| i.name == "other").unwrap(), due + 2)];
    assert_eq!(s.finish_health_checks("replica-8", &batch).await.unwrap(), [other.integration_id]);

    // Deleting the integration takes its schedule and history with it.
    let current = s.get("t1", id).await.unwrap().unwrap();
    s.apply(deleted(&current, current.version)).await.unwrap();
    assert!(s.health_history("t1", id, None, 10).await.unwrap().is_empty());
    s.schedule_health_checks(i64::MAX / 2).await.unwrap();
    let all = s.lease_health_checks("replica-4", i64::MAX / 2, LEASE, 10).await.unwrap();
    assert!(!leased_ids(&all).contains(&id));
}

async fn replicas_never_lease_the_same_check(b: &Backend) {
    let s = &b.store;
    for n in 0..120 {
        insert_in(&**s, "t1", &format!("i{n:03}"), Status::Active, false).await;
    }
    let t0 = 1_800_000_000_000;
    s.schedule_health_checks(t0).await.unwrap();
    let mut replicas = Vec::new();
    for r in 0..4 {
        let s = s.clone();
        replicas.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = s.lease_health_checks(&format!("replica-{r}"), t0, 60_000, 7).await.unwrap();
                if leased.is_empty() {
                    return mine;
                }
                mine.extend(leased.into_iter().map(|l| l.integration_id));
            }
        }));
    }
    let mut all = Vec::new();
    for r in replicas {
        all.extend(r.await.unwrap());
    }
    let distinct: BTreeSet<Uuid> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (120, 120), "a check was leased twice or not at all");
}

async fn pruning_deletes_old_history_in_batches(b: &Backend) {
    let i = insert_in(&*b.store, "t1", "busy", Status::Active, false).await;
    // 12,345 checks, one a millisecond, written the fast way.
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12345) \
         INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, latency_ms, message) \
         SELECT 'check-' || i, '{}', 't1', i, 'healthy', 1, 'ok' FROM n",
        i.integration_id
    );
    assert_eq!(b.raw(&sql).await.unwrap(), 12_345);
    // More than one batch's worth is older than the cut-off; all of it goes, nothing newer.
    assert_eq!(b.store.prune_health_checks(10_001).await.unwrap(), 10_000);
    assert_eq!(b.store.prune_health_checks(10_001).await.unwrap(), 0);
    assert_eq!(b.raw("DELETE FROM health_checks WHERE checked_ms <= 10000").await.unwrap(), 0);
    assert_eq!(b.raw("DELETE FROM health_checks WHERE checked_ms > 10000").await.unwrap(), 2_345);
}

async fn checks_roll_up_into_the_hours_uptime_and_latency_are_read_from(b: &Backend) {
    use stella_integrations::health::HealthHour;
    let s = &*b.store;
    let i = insert_in(s, "t1", "rolled-up", Status::Active, false).await;
    let hour = (now().unix_timestamp() * 1000 / 3_600_000 - 3) * 3_600_000;
    s.schedule_health_checks(hour).await.unwrap();
    let mut expected: Vec<HealthHour> = Vec::new();
    // Two hours of checks, in batches and on their own, of every outcome.
    let plan = [
        (hour + 1, CheckOutcome::Healthy, 12, true),
        (hour + 2, CheckOutcome::Degraded, 300, true),
        (hour + 3, CheckOutcome::Unhealthy, 45, false),
        (hour + 4, CheckOutcome::Skipped, 0, true),
        (hour + 3_600_000, CheckOutcome::Healthy, 7, false),
        (hour + 3_600_001, CheckOutcome::Healthy, 9, true),
    ];
    for (at, outcome, latency, batched) in plan {
        let leased = s.lease_health_checks("r", at, 60_000, 10).await.unwrap();
        assert_eq!(leased.len(), 1);
        let mut c = check(at, outcome);
        c.latency_ms = latency;
        let finished = FinishedCheck {
            tenant_id: "t1".into(),
            integration_id: i.integration_id,
            check: c.clone(),
            next_due_ms: at + 1,
            version: leased[0].version,
            invocation: None,
            foldable: false,
        };
        if batched {
            assert_eq!(s.finish_health_checks("r", &[finished]).await.unwrap().len(), 1);
        } else {
            assert!(s.finish_health_check("r", &finished, None).await.unwrap());
        }
        let counted = HealthHour::of(&c);
        match expected.iter_mut().find(|h| h.hour_ms == counted.hour_ms) {
            Some(h) => h.merge(&counted),
            None => expected.push(counted),
        }
    }
    let hours = s.health_hours("t1", i.integration_id, 0).await.unwrap();
    assert_eq!(hours, expected);
    assert_eq!((hours[0].made, hours[0].working, hours[0].skipped, hours[0].latency.max_ms), (3, 2, 1, 300));
    assert!(s.health_hours("t2", i.integration_id, 0).await.unwrap().is_empty(), "another tenant's are not read");
    assert_eq!(s.health_hours("t1", i.integration_id, hour + 1).await.unwrap().len(), 1, "hours since");
    assert_eq!(s.uptime_counts("t1", &[i.integration_id], hour).await.unwrap(), [(i.integration_id, 4, 5)]);
    assert_eq!(s.uptime_counts("t1", &[i.integration_id], hour + 1).await.unwrap(), [(i.integration_id, 2, 2)]);
    // Pruned by the hour's start.
    assert_eq!(s.prune_health_hours(hour + 3_600_000).await.unwrap(), 1);
    assert_eq!(s.health_hours("t1", i.integration_id, 0).await.unwrap(), expected[1..]);
}

/// A database upgraded from the release before the hourly rollups: they are made from the history
/// it kept, so uptime and latency read the same after the upgrade.
async fn the_upgrade_rolls_up_the_history_kept_before_it(b: &Backend) {
    use stella_integrations::health::HealthHour;
    let i = insert_in(&*b.store, "t1", "upgraded", Status::Active, false).await;
    let rows = [
        (1_000, "healthy", 3),
        (2_000, "degraded", 70_000),
        (3_000, "unhealthy", 12),
        (4_000, "skipped", 0),
        (3_600_000, "healthy", 640),
    ];
    let mut expected: Vec<HealthHour> = Vec::new();
    for (n, (at, outcome, latency)) in rows.into_iter().enumerate() {
        let sql = format!(
            "INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, latency_ms, message) \
             VALUES ('old-{n}', '{}', 't1', {at}, '{outcome}', {latency}, 'kept')",
            i.integration_id
        );
        b.raw(&sql).await.unwrap();
        let counted =
            HealthHour::of(&HealthCheck { latency_ms: latency, ..check(at, CheckOutcome::parse(outcome).unwrap()) });
        match expected.iter_mut().find(|h| h.hour_ms == counted.hour_ms) {
            Some(h) => h.merge(&counted),
            None => expected.push(counted),
        }
    }
    // The schema as the release before left it: no rollups, the migration not yet applied.
    b.raw("DROP TABLE health_hours").await.unwrap();
    b.raw("DELETE FROM _sqlx_migrations WHERE description = 'health_hours'").await.unwrap();
    let upgraded = stella_integrations::store::open(&b.url).await.unwrap();
    assert_eq!(upgraded.health_hours("t1", i.integration_id, 0).await.unwrap(), expected);
    assert_eq!(upgraded.uptime_counts("t1", &[i.integration_id], 0).await.unwrap(), [(i.integration_id, 3, 4)]);
}

/// The size of the database file in pages (SQLite), or the number of day partitions of the
/// tables that grow with time (PostgreSQL).
async fn shape(b: &Backend) -> i64 {
    if b.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap();
        sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE c.relname ~ '^(invocations|health_checks|health_hours)_d[0-9]{8}$'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
    }
}

/// Retention on PostgreSQL drops whole days (no row is deleted, so none is left dead), and day
/// partitions are made ahead, taking in the rows that strayed before them; on SQLite it deletes,
/// and the file shrinks.
async fn retention_drops_whole_days_and_the_file_shrinks(b: &Backend) {
    let s = &*b.store;
    let postgres = !b.url.starts_with("sqlite:");
    let day = 86_400_000;
    let today = now().unix_timestamp() * 1000 / day * day;
    let i = insert_in(s, "t1", "kept-by-day", Status::Active, false).await;
    // A row far ahead of every partition strays into the default one.
    let stray_at = today + 10 * day + 5;
    let insert_checks = |from: i64, count: i64| {
        format!(
            "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < {}) \
             INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, latency_ms, message) \
             SELECT '{:08x}-0000-4000-8000-' || (100000000000 + k), '{}', 't1', {from} + k, 'healthy', 1, '{}' FROM n",
            count - 1,
            (from / 1000) as u32,
            i.integration_id,
            "x".repeat(400)
        )
    };
    assert_eq!(b.raw(&insert_checks(stray_at, 1)).await.unwrap(), 1);

    // Today and the next three days; again, nothing more.
    let made = s.make_partitions(today + 1).await.unwrap();
    assert_eq!(made, if postgres { 9 } else { 0 }, "tomorrow to three days on: today's is the upgrade's");
    assert_eq!(s.make_partitions(today + 2).await.unwrap(), 0);
    // Ten days on (nothing ran meanwhile): that day and three more are made (the days missed
    // are past; a row of theirs stays in the default partition), the stray moves into its own,
    // and reads the same.
    let made = s.make_partitions(today + 10 * day).await.unwrap();
    assert_eq!(made, if postgres { 3 * 4 } else { 0 });
    assert!(shape(b).await > 0);
    let history = s.health_history("t1", i.integration_id, None, 10).await.unwrap();
    assert_eq!(history.iter().map(|c| unix_ms(c.checked_at)).collect::<Vec<_>>(), [stray_at]);
    if postgres {
        assert_eq!(b.raw("DELETE FROM health_checks_default").await.unwrap(), 0, "the stray moved");
    }

    // Two days of checks, tomorrow and the day after.
    let tomorrow = today + day;
    assert_eq!(b.raw(&insert_checks(tomorrow, 3_000)).await.unwrap(), 3_000);
    assert_eq!(b.raw(&insert_checks(tomorrow + day, 3_000)).await.unwrap(), 3_000);
    let before = shape(b).await;
    // Retention at the end of tomorrow: its day goes, whole; the day after stays whole.
    assert_eq!(s.prune_health_checks(tomorrow + day).await.unwrap(), 3_000);
    let left = s.health_history("t1", i.integration_id, None, 10).await.unwrap();
    assert!(left.iter().all(|c| unix_ms(c.checked_at) >= tomorrow + day), "{left:?}");
    assert_eq!(s.prune_health_checks(tomorrow + day).await.unwrap(), 0);
    // Halfway through a day, that day stays whole (kept until all of it is past the retention).
    assert_eq!(s.prune_health_checks(tomorrow + day + day / 2).await.unwrap(), if postgres { 0 } else { 3_000 });
    if postgres {
        assert_eq!(shape(b).await, before - 1, "tomorrow's partition was dropped");
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        let dead: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(n_dead_tup), 0)::bigint FROM pg_stat_user_tables WHERE relname LIKE 'health_checks_d%'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(dead, 0, "nothing was deleted, so nothing is dead");
    } else {
        assert!(shape(b).await < before, "the file gave its freed pages back: {} of {before}", shape(b).await);
    }
}

fn plugin_version(provider: &str, version: &str, bytes: &[u8]) -> PluginVersion {
    use sha2::Digest as _;
    let manifest = stella_runtime::Manifest::from_toml(&format!(
        "[connector]\nprovider = \"{provider}\"\ntypes = [\"registry\"]\nversion = \"{version}\"\n\
         [permissions]\nhosts = [\"https://api.example.com\"]\n"
    ))
    .unwrap();
    let permissions = PermissionSet::of(&manifest, &["wasi:io/streams@0.2.6".to_string()]);
    PluginVersion {
        provider: provider.into(),
        version: version.into(),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        size: bytes.len() as u64,
        status: PluginStatus::Pending,
        active: false,
        permissions_digest: permissions.digest(),
        manifest,
        permissions,
        signatures: vec![StoredSignature {
            key_id: Some("minisign:ABCDEF".into()),
            signature: "sig".into(),
            payload: None,
        }],
        signed_by: Some("minisign:ABCDEF".into()),
        unsigned_exception: false,
        origin: "api".into(),
        submitted_by: "alice".into(),
        submitted_at: from_unix_ms(now().unix_timestamp() * 1000),
        decided_by: None,
        decided_at: None,
        decision_reason: None,
    }
}

fn plugin_audit(action: PluginAction, v: &PluginVersion) -> PluginAuditDraft {
    PluginAuditDraft {
        action,
        provider: v.provider.clone(),
        version: v.version.clone(),
        sha256: v.sha256.clone(),
        actor: "alice".into(),
        at: now(),
        details: json!({"n": 1}),
    }
}

fn submit(v: &PluginVersion, bytes: &[u8]) -> PluginChange {
    PluginChange {
        provider: v.provider.clone(),
        version: v.version.clone(),
        write: PluginWrite::Submit { version: Box::new(v.clone()), bytes: bytes.to_vec() },
        activate: None,
        expect_active: None,
        audit: vec![plugin_audit(PluginAction::Submitted, v)],
        events: vec![EventDraft { event_type: EventType::PluginSubmitted, data: json!({"provider": v.provider}) }],
    }
}

fn approve_and_activate(v: &PluginVersion) -> PluginChange {
    PluginChange {
        provider: v.provider.clone(),
        version: v.version.clone(),
        write: PluginWrite::Decide {
            from: PluginStatus::Pending,
            to: PluginStatus::Approved,
            by: "bob".into(),
            at: now(),
            reason: None,
        },
        activate: Some(Activation { by: "bob".into(), at: now() }),
        expect_active: None,
        audit: vec![plugin_audit(PluginAction::Approved, v), plugin_audit(PluginAction::Activated, v)],
        events: vec![EventDraft { event_type: EventType::PluginActivated, data: json!({}) }],
    }
}

async fn plugin_versions_are_stored_by_content_and_run_only_once_approved(b: &Backend) {
    let s = &*b.store;
    assert_eq!(s.plugin_generation().await.unwrap(), 0);
    let v1 = plugin_version("acme", "1.0.0", b"component one");
    s.apply_plugin(submit(&v1, b"component one")).await.unwrap();
    assert_eq!(s.plugin_version("acme", "1.0.0").await.unwrap().unwrap(), v1);
    assert_eq!(s.plugin_version_by_sha256(&v1.sha256).await.unwrap().unwrap(), v1);
    assert_eq!(s.component(&v1.sha256).await.unwrap().unwrap(), b"component one");
    assert!(s.plugin_version("acme", "9.9.9").await.unwrap().is_none());
    assert!(s.component("00").await.unwrap().is_none());

    // A pending version cannot be made active; nothing changed, so the generation did not move.
    let mut only_activate = approve_and_activate(&v1);
    only_activate.write = PluginWrite::None;
    assert!(matches!(s.apply_plugin(only_activate).await, Err(StoreError::StatusChanged)));
    assert_eq!(s.active_plugins().await.unwrap(), (0, vec![]));
    assert!(s.active_plugin("acme").await.unwrap().is_none());

    // Versions are immutable: the same version with other bytes, or the same bytes again under
    // another version, is refused and nothing of it is kept.
    let other_bytes = plugin_version("acme", "1.0.0", b"other bytes");
    assert!(matches!(s.apply_plugin(submit(&other_bytes, b"other bytes")).await, Err(StoreError::VersionTaken)));
    assert!(s.component(&other_bytes.sha256).await.unwrap().is_none(), "a refused submission kept its bytes");
    let mut same_bytes = plugin_version("acme", "1.0.1", b"component one");
    same_bytes.sha256.clone_from(&v1.sha256);
    assert!(matches!(s.apply_plugin(submit(&same_bytes, b"component one")).await, Err(StoreError::VersionTaken)));

    s.apply_plugin(approve_and_activate(&v1)).await.unwrap();
    let active = s.active_plugin("acme").await.unwrap().unwrap();
    assert_eq!(
        (active.status, active.active, active.decided_by.as_deref()),
        (PluginStatus::Approved, true, Some("bob"))
    );
    let (generation, set) = s.active_plugins().await.unwrap();
    assert_eq!(generation, 1);
    assert_eq!(set.len(), 1);
    assert_eq!(
        (set[0].provider.as_str(), set[0].version.as_str(), set[0].sha256.as_str()),
        ("acme", "1.0.0", &*v1.sha256)
    );
    // A decision from a status the version is no longer in is refused.
    assert!(matches!(s.apply_plugin(approve_and_activate(&v1)).await, Err(StoreError::StatusChanged)));

    // A decision made by comparing with the active version commits only while that version is
    // still the active one.
    let compared = plugin_version("acme", "1.0.5", b"component compared");
    let mut stale = submit(&compared, b"component compared");
    stale.expect_active = Some(None);
    assert!(matches!(s.apply_plugin(stale).await, Err(StoreError::StatusChanged)));
    assert!(s.plugin_version("acme", "1.0.5").await.unwrap().is_none());
    let mut current = submit(&compared, b"component compared");
    current.expect_active = Some(Some("1.0.0".into()));
    s.apply_plugin(current).await.unwrap();

    // A second version, approved: it becomes active, and the first stays for a rollback.
    let mut v2 = plugin_version("acme", "1.1.0", b"component two");
    v2.submitted_at += time::Duration::seconds(1);
    s.apply_plugin(submit(&v2, b"component two")).await.unwrap();
    s.apply_plugin(approve_and_activate(&v2)).await.unwrap();
    let versions = s.plugin_versions("acme", 10).await.unwrap();
    let listed: Vec<(&str, bool)> = versions.iter().map(|v| (v.version.as_str(), v.active)).collect();
    assert_eq!(listed, [("1.1.0", true), ("1.0.5", false), ("1.0.0", false)]);
    assert_eq!(s.plugin_versions("acme", 1).await.unwrap().len(), 1);
    let mut rollback = approve_and_activate(&v1);
    rollback.write = PluginWrite::None;
    rollback.audit.truncate(1);
    s.apply_plugin(rollback).await.unwrap();
    assert_eq!(s.active_plugins().await.unwrap().0, 3);
    assert_eq!(s.active_plugin("acme").await.unwrap().unwrap().version, "1.0.0");

    // A rejection keeps its reason.
    let v3 = plugin_version("acme", "2.0.0", b"component three");
    s.apply_plugin(submit(&v3, b"component three")).await.unwrap();
    let reject = PluginChange {
        write: PluginWrite::Decide {
            from: PluginStatus::Pending,
            to: PluginStatus::Rejected,
            by: "carol".into(),
            at: now(),
            reason: Some("asks for every host".into()),
        },
        activate: None,
        ..submit(&v3, b"")
    };
    s.apply_plugin(reject).await.unwrap();
    let rejected = s.plugin_version("acme", "2.0.0").await.unwrap().unwrap();
    assert_eq!(
        (rejected.status, rejected.decision_reason.as_deref()),
        (PluginStatus::Rejected, Some("asks for every host"))
    );
}

/// A ledger entry of an invocation for `integration` at `at_ms`, with one host call and one denial.
fn ledger_entry(tenant: &str, integration: Uuid, at_ms: i64) -> LedgerEntry {
    let record = serde_json::from_value(json!({
        "invocationId": Uuid::new_v4().to_string(),
        "operation": "check-health",
        "provider": "in-memory",
        "connectorVersion": "0.1.0",
        "sha256": "ab",
        "startedAt": stella_integrations::domain::rfc3339(from_unix_ms(at_ms)),
        "durationMs": 3,
        "memoryPeakBytes": 0,
        "limits": {},
        "hostCalls": [{"interface": "http", "operation": "GET", "target": "https://a.example.com/x",
                       "bytesSent": 0, "bytesReceived": 0, "durationMs": 1}],
        "denials": [{"kind": "origin", "target": "https://b.example.com/", "reason": "not allowed"}],
        "logs": [],
    }))
    .unwrap();
    LedgerEntry::of(tenant, integration, Some("https://a.example.com"), record, "healthy", None)
}

/// A healthy check's entry (no denial) of `integration` at `at_ms` that contacted `origin`.
fn healthy_entry(integration: Uuid, at_ms: i64, origin: &str, duration_ms: u64) -> LedgerEntry {
    let mut e = ledger_entry("t1", integration, at_ms);
    e.invocation_id = Uuid::new_v4();
    (e.denied, e.denial_kinds, e.origins, e.duration_ms) = (false, vec![], vec![origin.to_string()], duration_ms);
    if let Some(r) = e.record.as_mut() {
        r.denials.clear();
    }
    e
}

async fn healthy_repeats_are_folded_into_one_summary_per_hour(b: &Backend) {
    use stella_integrations::ledger::{InvocationFilter, Level};
    let s = &*b.store;
    let i = insert_in(s, "t1", "folded", Status::Active, false).await;
    // At 10:00 yesterday (UTC), so that the first checks share an hour and the next hour is on
    // the same day.
    let hour = (now().unix_timestamp() * 1000 / 86_400_000 - 1) * 86_400_000 + 10 * 3_600_000;
    s.schedule_health_checks(hour).await.unwrap();
    let check_at = |at: i64, entry: LedgerEntry, foldable: bool| async move {
        let leased = s.lease_health_checks("r", at, 60_000, 10).await.unwrap();
        assert_eq!(leased.len(), 1, "due at {at}");
        let finished = FinishedCheck {
            tenant_id: "t1".into(),
            integration_id: i.integration_id,
            check: check(at, CheckOutcome::Healthy),
            next_due_ms: at + 1,
            version: leased[0].version,
            invocation: Some(Box::new(entry)),
            foldable,
        };
        assert_eq!(s.finish_health_checks("r", &[finished]).await.unwrap().len(), 1);
    };
    let a = "https://a.example.com";
    let first = healthy_entry(i.integration_id, hour + 1_000, a, 10);
    // The first check: nothing to repeat, kept in full.
    check_at(hour + 1_000, first.clone(), true).await;
    // Three that repeat it: folded into one summary of the hour.
    for (n, ms) in [(2, 30), (3, 20), (4, 900)] {
        check_at(hour + n * 1_000, healthy_entry(i.integration_id, hour + n * 1_000, a, ms), true).await;
    }
    // One that may not fold (a sample kept, say) is kept in full, though it repeats.
    let sampled = healthy_entry(i.integration_id, hour + 5_000, a, 10);
    check_at(hour + 5_000, sampled.clone(), false).await;
    // One that did something else (another origin): in full; the next that repeats it folds into
    // another summary, which repeats it.
    let other = healthy_entry(i.integration_id, hour + 6_000, "https://c.example.com", 10);
    check_at(hour + 6_000, other.clone(), true).await;
    check_at(hour + 7_000, healthy_entry(i.integration_id, hour + 7_000, "https://c.example.com", 10), true).await;
    // The next hour has a summary of its own.
    let next_hour = hour + 3_600_000;
    check_at(next_hour + 1, healthy_entry(i.integration_id, next_hour + 1, "https://c.example.com", 10), true).await;

    // The next day, the first check is kept in full, though it repeats: a summary and the entry it
    // repeats are of one day, kept and dropped together.
    let next_day = hour + 86_400_000;
    // (Half a second into the hour: a summary sits at the hour's start, so the order is certain.)
    let new_day = healthy_entry(i.integration_id, next_day + 500, "https://c.example.com", 10);
    check_at(next_day + 500, new_day.clone(), true).await;
    check_at(next_day + 1_000, healthy_entry(i.integration_id, next_day + 1_000, "https://c.example.com", 10), true)
        .await;
    let next_day_entries = s
        .invocations(
            Some("t1"),
            &InvocationFilter { since_ms: Some(next_day - 10 * 3_600_000), ..Default::default() },
            None,
            10,
        )
        .await
        .unwrap();
    let kept: Vec<(Level, Option<Uuid>)> =
        next_day_entries.iter().map(|e| (e.level, e.summary.as_ref().map(|s| s.repeats))).collect();
    assert_eq!(kept, [(Level::Full, None), (Level::Summary, Some(new_day.invocation_id))]);
    let everything = s
        .invocations(
            Some("t1"),
            &InvocationFilter { until_ms: Some(next_day - 10 * 3_600_000), ..Default::default() },
            None,
            100,
        )
        .await
        .unwrap();
    let mut levels: Vec<(Level, Option<u64>)> =
        everything.iter().map(|e| (e.level, e.summary.as_ref().map(|s| s.checks))).collect();
    // Newest first; a summary sits at its hour's start (the two of the first hour, in id order).
    levels[4..].sort();
    assert_eq!(
        levels,
        [
            (Level::Summary, Some(1)),
            (Level::Full, None),
            (Level::Full, None),
            (Level::Full, None),
            (Level::Summary, Some(1)),
            (Level::Summary, Some(3)),
        ],
        "{everything:#?}"
    );
    assert!(everything.iter().all(|e| e.record.is_none()), "a list carries no record");
    let summaries = s
        .invocations(
            Some("t1"),
            &InvocationFilter {
                level: Some(Level::Summary),
                until_ms: Some(next_day - 10 * 3_600_000),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(summaries.len(), 3);
    let three = summaries.iter().find(|e| e.summary.as_ref().unwrap().checks == 3).unwrap();
    let read = s.invocation(Some("t1"), three.invocation_id).await.unwrap().unwrap();
    let summary = read.summary.clone().unwrap();
    assert_eq!((read.level, read.at, read.record.is_none()), (Level::Summary, from_unix_ms(hour), true));
    assert_eq!(summary.repeats, first.invocation_id, "the full entry whose record they repeat");
    assert_eq!(summary.digest, first.digest());
    assert_eq!((summary.first_at, summary.last_at), (from_unix_ms(hour + 2_000), from_unix_ms(hour + 4_000)));
    assert_eq!((summary.latency.count, summary.latency.max_ms, read.duration_ms), (3, 900, 316));
    assert_eq!((read.origins.as_slice(), read.outcome.as_str()), (&[a.to_string()][..], "healthy"));
    let other_summary = summaries.iter().find(|e| e.origins == ["https://c.example.com"] && e.at == from_unix_ms(hour));
    assert_eq!(other_summary.unwrap().summary.as_ref().unwrap().repeats, other.invocation_id);
    let full = s
        .invocations(
            Some("t1"),
            &InvocationFilter {
                level: Some(Level::Full),
                until_ms: Some(next_day - 10 * 3_600_000),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    let ids: BTreeSet<Uuid> = full.iter().map(|e| e.invocation_id).collect();
    assert_eq!(ids, BTreeSet::from([first.invocation_id, sampled.invocation_id, other.invocation_id]));
    assert!(s.invocation(Some("t2"), three.invocation_id).await.unwrap().is_none(), "tenancy holds for summaries");
}

async fn the_ledger_keeps_every_invocation_with_what_it_recorded(b: &Backend) {
    let s = &*b.store;
    let i = insert(s, "t1", "ledgered").await;
    let t0 = now().unix_timestamp() * 1000;

    // With a change (a test): kept with it, read back whole, seen by its tenant and the platform.
    let entry = ledger_entry("t1", i.integration_id, t0);
    let mut change = updated(&i, 1);
    change.invocations = vec![entry.clone()];
    s.apply(change).await.unwrap();
    let read = s.invocation(Some("t1"), entry.invocation_id).await.unwrap().unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), serde_json::to_value(&entry).unwrap());
    // It was denied something: its alert is numbered after the change's own event, in the same
    // transaction.
    let alerts = |after: i64| async move {
        let events = s.events("t1", after, 500).await.unwrap();
        let alerts: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| e.cloud_event["type"] == "invocation.denied")
            .map(|e| e.cloud_event["data"].clone())
            .collect();
        (alerts, events.last().map_or(after, |e| e.seq))
    };
    let (first, mut seen) = alerts(0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["invocationId"], entry.invocation_id.to_string());
    assert_eq!(first[0]["denials"], json!([{"kind": "origin", "target": "https://b.example.com/"}]));
    assert_eq!((first[0]["deniedCount"].as_u64(), first[0]["denialKinds"].clone()), (Some(1), json!(["origin"])));
    let all = s.events("t1", 0, 500).await.unwrap();
    assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1), "numbered without gaps");
    assert_eq!(
        (read.origins.as_slice(), read.denial_kinds.as_slice()),
        (&["https://a.example.com".to_string()][..], &["origin".to_string()][..])
    );
    assert!(s.invocation(Some("t2"), entry.invocation_id).await.unwrap().is_none(), "another tenant's is not found");
    assert!(s.invocation(None, entry.invocation_id).await.unwrap().is_some());

    // A change that does not commit keeps no entry.
    let lost = ledger_entry("t1", i.integration_id, t0);
    let mut stale = updated(&i, 1);
    stale.invocations = vec![lost.clone()];
    assert!(matches!(s.apply(stale).await, Err(StoreError::Stale { .. })));
    assert!(s.invocation(None, lost.invocation_id).await.unwrap().is_none());

    // On their own, in a batch; the same entry twice is kept once.
    let old = ledger_entry("t1", i.integration_id, t0 - 40 * 86_400_000);
    let batch: Vec<LedgerEntry> = (0..300).map(|n| ledger_entry("t1", i.integration_id, t0 - n)).collect();
    s.record_invocations(&batch).await.unwrap();
    s.record_invocations(&[old.clone(), batch[0].clone()]).await.unwrap();
    assert!(s.invocation(Some("t1"), batch[299].invocation_id).await.unwrap().is_some());
    // One alert per entry kept: none for the one kept already.
    let (batch_alerts, next) = alerts(seen).await;
    assert_eq!(batch_alerts.len(), 301);
    seen = next;
    // An entry denied nothing raises no alert.
    let mut quiet = ledger_entry("t1", i.integration_id, t0);
    (quiet.denied, quiet.denial_kinds) = (false, vec![]);
    s.record_invocations(&[quiet]).await.unwrap();
    assert!(alerts(seen).await.0.is_empty());

    // With the health checks of a sweep: kept with them, under their leases only.
    let a = insert_in(s, "t1", "checked-a", Status::Active, false).await;
    let c = insert_in(s, "t1", "checked-c", Status::Active, false).await;
    s.schedule_health_checks(t0).await.unwrap();
    let leased = s.lease_health_checks("replica-1", t0, 60_000, 10).await.unwrap();
    assert_eq!(leased_ids(&leased), BTreeSet::from([a.integration_id, c.integration_id]));
    let finished: Vec<FinishedCheck> = leased
        .iter()
        .map(|l| FinishedCheck {
            tenant_id: "t1".into(),
            integration_id: l.integration_id,
            check: check(t0, CheckOutcome::Healthy),
            next_due_ms: t0 + 300_000,
            version: l.version,
            invocation: Some(Box::new(ledger_entry("t1", l.integration_id, t0))),
            foldable: false,
        })
        .collect();
    // One of them not under this replica's lease: its check and its entry are not kept.
    let mut foreign = finished.clone();
    foreign.truncate(1);
    assert!(s.finish_health_checks("replica-2", &foreign).await.unwrap().is_empty());
    assert!(s.invocation(None, foreign[0].invocation.as_ref().unwrap().invocation_id).await.unwrap().is_none());
    assert_eq!(s.finish_health_checks("replica-1", &finished).await.unwrap().len(), 2);
    for f in &finished {
        let id = f.invocation.as_ref().unwrap().invocation_id;
        assert_eq!(s.invocation(Some("t1"), id).await.unwrap().unwrap().integration_id, f.integration_id);
    }
    // The sweep's batch raises their alerts too (and the foreign one's none).
    let (sweep_alerts, next) = alerts(seen).await;
    let alerted: BTreeSet<String> = sweep_alerts.iter().map(|a| a["integrationId"].as_str().unwrap().into()).collect();
    assert_eq!(alerted, BTreeSet::from([a.integration_id.to_string(), c.integration_id.to_string()]));
    seen = next;
    // A check recorded on its own (it moves its integration, or missed its batch): kept and
    // alerted under its lease only.
    let leased = s.lease_health_checks("replica-1", t0 + 300_000, 60_000, 1).await.unwrap();
    let lone = FinishedCheck {
        tenant_id: "t1".into(),
        integration_id: leased[0].integration_id,
        check: check(t0 + 300_000, CheckOutcome::Healthy),
        next_due_ms: t0 + 600_000,
        version: leased[0].version,
        invocation: Some(Box::new(ledger_entry("t1", leased[0].integration_id, t0))),
        foldable: false,
    };
    assert!(!s.finish_health_check("replica-2", &lone, None).await.unwrap());
    assert!(alerts(seen).await.0.is_empty(), "a lost lease keeps no alert");
    assert!(s.invocation(None, lone.invocation.as_ref().unwrap().invocation_id).await.unwrap().is_none());
    assert!(s.finish_health_check("replica-1", &lone, None).await.unwrap());
    assert_eq!(alerts(seen).await.0.len(), 1);

    // Pruned by age, whatever their number.
    assert_eq!(s.prune_invocations(t0 - 30 * 86_400_000).await.unwrap(), 1);
    assert!(s.invocation(None, old.invocation_id).await.unwrap().is_none());
    assert!(s.invocation(None, entry.invocation_id).await.unwrap().is_some());
    assert_eq!(s.prune_invocations(t0 + 1).await.unwrap(), 305);
}

async fn the_ledger_answers_what_security_teams_ask(b: &Backend) {
    use stella_integrations::ledger::{InvocationFilter, InvocationPosition, Operation};
    let s = &*b.store;
    let t0 = now().unix_timestamp() * 1000;
    let (a, other) = (Uuid::new_v4(), Uuid::new_v4());
    // 30 invocations of t1 a second apart (every third denied an origin, contacting nothing),
    // and one of t2.
    let mut entries = Vec::new();
    for n in 0..30 {
        let mut e = ledger_entry("t1", a, t0 - n * 1000);
        if n % 3 == 0 {
            e.origins = vec![];
        } else {
            e.denied = false;
            e.denial_kinds = vec![];
        }
        if n == 7 {
            e.revealed_secret = true;
            e.outside_base_url = true;
            e.provider = "harbor".into();
            e.auth_refs = vec!["ref://integrations/harbor/robot".into()];
            e.operation = Operation::TestConnection;
            e.outcome = "auth".into();
            e.failure_class = Some("auth".into());
        }
        entries.push(e);
    }
    entries.push(ledger_entry("t2", other, t0));
    s.record_invocations(&entries).await.unwrap();

    let list =
        |tenant: Option<&'static str>, filter: InvocationFilter, after: Option<InvocationPosition>, limit: u32| {
            let store = b.store.clone();
            async move { store.invocations(tenant, &filter, after.as_ref(), limit).await.unwrap() }
        };
    // Newest first, without records; a tenant sees its own only; the platform sees every one.
    let all = list(Some("t1"), InvocationFilter::default(), None, 500).await;
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at) && all.iter().all(|e| e.record.is_none()));
    assert!(all.iter().all(|e| e.tenant_id == "t1"));
    assert_eq!(list(None, InvocationFilter::default(), None, 500).await.len(), 31);

    // Pages follow each other without a repeat or a gap.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list(Some("t1"), InvocationFilter::default(), after.clone(), 7).await;
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after =
            Some(InvocationPosition { at_ms: stella_integrations::domain::unix_ms(last.at), id: last.invocation_id });
        seen.extend(page.into_iter().map(|e| e.invocation_id));
    }
    assert_eq!(seen, all.iter().map(|e| e.invocation_id).collect::<Vec<_>>());

    let count = |filter: InvocationFilter| {
        let list = &list;
        async move { list(Some("t1"), filter, None, 500).await.len() }
    };
    assert_eq!(count(InvocationFilter { denied: Some(true), ..Default::default() }).await, 10);
    assert_eq!(count(InvocationFilter { denial_kind: Some("origin".into()), ..Default::default() }).await, 10);
    assert_eq!(count(InvocationFilter { denial_kind: Some("reveal".into()), ..Default::default() }).await, 0);
    assert_eq!(
        count(InvocationFilter { origin: Some("https://a.example.com".into()), ..Default::default() }).await,
        20
    );
    let harbor = InvocationFilter {
        provider: Some("harbor".into()),
        auth_ref: Some("ref://integrations/harbor/robot".into()),
        operation: Some(Operation::TestConnection),
        outcome: Some("auth".into()),
        integration_id: Some(a),
        sha256: Some("ab".into()),
        ..Default::default()
    };
    assert_eq!(count(harbor).await, 1);
    assert_eq!(count(InvocationFilter { revealed_secret: Some(true), ..Default::default() }).await, 1);
    assert_eq!(count(InvocationFilter { outside_base_url: Some(true), ..Default::default() }).await, 1);
    assert_eq!(count(InvocationFilter { failure_class: Some("auth".into()), ..Default::default() }).await, 1);
    assert_eq!(count(InvocationFilter { failure_class: Some("network".into()), ..Default::default() }).await, 0);
    assert_eq!(count(InvocationFilter { outside_base_url: Some(false), ..Default::default() }).await, 29);
    assert_eq!(count(InvocationFilter { revealed_secret: Some(false), ..Default::default() }).await, 29);
    let window = InvocationFilter { since_ms: Some(t0 - 9_000), until_ms: Some(t0 - 4_000), ..Default::default() };
    assert_eq!(count(window).await, 5);
    // A value that means something in SQL is matched as it is.
    assert_eq!(count(InvocationFilter { origin: Some("%' OR '1'='1".into()), ..Default::default() }).await, 0);
}

async fn a_provider_keeps_at_most_its_versions(b: &Backend) {
    let limit = stella_integrations::plugins::MAX_VERSIONS_PER_PROVIDER;
    for n in 0..limit {
        let bytes = format!("component {n}").into_bytes();
        b.store.apply_plugin(submit(&plugin_version("many", &format!("1.0.{n}"), &bytes), &bytes)).await.unwrap();
    }
    let bytes = b"one too many".to_vec();
    let refused = b.store.apply_plugin(submit(&plugin_version("many", "2.0.0", &bytes), &bytes)).await;
    assert!(matches!(refused, Err(StoreError::TooManyVersions)), "{refused:?}");
    assert!(b.store.component(&plugin_version("many", "2.0.0", &bytes).sha256).await.unwrap().is_none());
    // Other providers are not affected.
    b.store.apply_plugin(submit(&plugin_version("few", "1.0.0", &bytes), &bytes)).await.unwrap();
}

async fn the_platform_audit_chain_and_events_verify_and_detect_tampering(b: &Backend) {
    let s = &*b.store;
    insert(s, "t1", "beside").await;
    let v = plugin_version("acme", "1.0.0", b"bytes");
    s.apply_plugin(submit(&v, b"bytes")).await.unwrap();
    s.apply_plugin(approve_and_activate(&v)).await.unwrap();
    let entries = s.plugin_audit(0, 100).await.unwrap();
    let actions: Vec<(i64, PluginAction)> = entries.iter().map(|e| (e.seq, e.action)).collect();
    assert_eq!(actions, [(1, PluginAction::Submitted), (2, PluginAction::Approved), (3, PluginAction::Activated)]);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    assert_eq!(s.plugin_audit(1, 1).await.unwrap()[0].seq, 2);
    let report = s.verify_audit().await.unwrap();
    assert_eq!((report.tenants, report.entries, report.breaks.len()), (1, 4, 0), "{report:?}");

    // Platform events are in the outbox under the platform's (empty) tenant, for the relay; no
    // tenant reads them through its own events.
    let undelivered = s.undelivered_events(100).await.unwrap();
    let platform: Vec<&str> = undelivered
        .iter()
        .filter(|e| e.tenant_id.is_empty())
        .map(|e| e.cloud_event["type"].as_str().unwrap())
        .collect();
    assert_eq!(platform, ["plugin.submitted", "plugin.activated"]);
    let first = undelivered.iter().find(|e| e.tenant_id.is_empty()).unwrap();
    assert_eq!(first.cloud_event["subject"], "plugins/acme/1.0.0");
    assert!(first.cloud_event.get("tenantid").is_none());
    assert!(s.events("t1", 0, 100).await.unwrap().iter().all(|e| e.tenant_id == "t1"));

    for sql in ["UPDATE platform_audit SET actor = 'mallory' WHERE seq = 2", "DELETE FROM platform_audit WHERE seq = 3"]
    {
        let err = b.raw(sql).await.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if b.url.starts_with("sqlite:") {
        b.raw("DROP TRIGGER platform_audit_no_update").await.unwrap();
    } else {
        b.raw("ALTER TABLE platform_audit DISABLE TRIGGER USER").await.unwrap();
    }
    b.raw("UPDATE platform_audit SET actor = 'mallory' WHERE seq = 2").await.unwrap();
    let report = s.verify_audit().await.unwrap();
    let breaks: Vec<(&str, i64, &str)> =
        report.breaks.iter().map(|b| (b.tenant_id.as_str(), b.seq, b.problem.as_str())).collect();
    assert_eq!(breaks, [("", 2, "its content does not match its hash")], "{report:?}");
}

async fn concurrent_platform_writes_keep_one_unbroken_chain(b: &Backend) {
    let mut writers = Vec::new();
    for n in 0..8 {
        let store = b.store.clone();
        writers.push(tokio::spawn(async move {
            let bytes = format!("component {n}").into_bytes();
            let v = plugin_version(&format!("p{n}"), "1.0.0", &bytes);
            store.apply_plugin(submit(&v, &bytes)).await.unwrap();
            store.apply_plugin(approve_and_activate(&v)).await.unwrap();
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let entries = b.store.plugin_audit(0, 100).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=24).collect::<Vec<_>>());
    let report = b.store.verify_audit().await.unwrap();
    assert!(report.breaks.is_empty(), "{report:?}");
    let (generation, active) = b.store.active_plugins().await.unwrap();
    assert_eq!((generation, active.len()), (8, 8));
}

async fn console_sessions_are_found_by_their_secret_bounded_per_subject_and_pruned(b: &Backend) {
    use stella_integrations::identity::{Caller, ConsoleSession, Principal};
    let s = &*b.store;
    // Times are kept to the millisecond.
    let t0 = from_unix_ms(stella_integrations::domain::unix_ms(now()));
    let session = |subject: &str, created: i64| ConsoleSession {
        principal: Principal {
            caller: Caller { tenant: "t1".into(), subject: subject.into() },
            scopes: vec!["integrations.read".into(), "integrations.audit".into()],
        },
        csrf_token: format!("csrf-{subject}-{created}"),
        created_at: t0 + time::Duration::seconds(created),
        expires_at: t0 + time::Duration::hours(1),
    };
    let ms = |at: time::OffsetDateTime| stella_integrations::domain::unix_ms(at);

    // Kept under its hash, read back whole, until it expires.
    let first = session("alice", 0);
    s.create_session("hash-0", &first, 3).await.unwrap();
    assert_eq!(s.session("hash-0", ms(t0)).await.unwrap(), Some(first.clone()));
    assert_eq!(s.session("hash-0", ms(first.expires_at)).await.unwrap(), None, "ended");
    assert_eq!(s.session("no-such-hash", ms(t0)).await.unwrap(), None);

    // A subject keeps its newest sessions only; another subject's are left alone.
    s.create_session("bob-0", &session("bob", 0), 3).await.unwrap();
    for n in 1..=4 {
        s.create_session(&format!("hash-{n}"), &session("alice", n), 3).await.unwrap();
    }
    for (hash, kept) in [("hash-0", false), ("hash-1", false), ("hash-2", true), ("hash-4", true), ("bob-0", true)] {
        assert_eq!(s.session(hash, ms(t0)).await.unwrap().is_some(), kept, "{hash}");
    }

    // Signing out ends one session.
    s.delete_session("hash-4").await.unwrap();
    assert_eq!(s.session("hash-4", ms(t0)).await.unwrap(), None);
    s.delete_session("hash-4").await.unwrap();

    // A link is spent once.
    assert!(s.spend_link("link-1", ms(t0) + 60_000).await.unwrap());
    assert!(!s.spend_link("link-1", ms(t0) + 60_000).await.unwrap());

    // Pruned once ended: the three sessions left and the spent link.
    assert_eq!(s.prune_console(ms(t0) + 30_000).await.unwrap(), 0);
    assert_eq!(s.prune_console(ms(t0 + time::Duration::hours(2))).await.unwrap(), 4);
    assert!(s.spend_link("link-1", ms(t0) + 60_000).await.unwrap(), "a pruned link's own expiry refuses it now");
}

async fn the_console_counts_states_and_uptime_within_the_tenant(b: &Backend) {
    let s = &*b.store;
    let t0 = stella_integrations::domain::unix_ms(now());
    let a = insert_in(s, "t1", "a", Status::Active, false).await;
    let c = insert_in(s, "t1", "c", Status::Active, false).await;
    insert_in(s, "t1", "d", Status::Draft, false).await;
    insert_in(s, "t2", "other", Status::Active, false).await;
    let counts = s.state_counts("t1").await.unwrap();
    let total = |f: &dyn Fn(&stella_integrations::store::StateCount) -> bool| -> u64 {
        counts.iter().filter(|c| f(c)).map(|c| c.count).sum()
    };
    assert_eq!(
        (total(&|_| true), total(&|c| c.status == Status::Active), total(&|c| c.status == Status::Draft)),
        (3, 2, 1)
    );

    // a: three checks in the window, one unhealthy and one skipped (not counted); c: none.
    s.schedule_health_checks(t0 - 3_600_000).await.unwrap();
    for (n, outcome) in [CheckOutcome::Healthy, CheckOutcome::Unhealthy, CheckOutcome::Skipped].into_iter().enumerate()
    {
        let at = t0 - 3_600_000 + n as i64 * 60_000;
        let leased = s.lease_health_checks("r", at + 600_000, 60_000, 10).await.unwrap();
        let mine = leased.iter().find(|l| l.integration_id == a.integration_id).unwrap();
        let finished = FinishedCheck {
            tenant_id: "t1".into(),
            integration_id: a.integration_id,
            check: check(at, outcome),
            next_due_ms: at,
            version: mine.version,
            invocation: None,
            foldable: false,
        };
        assert!(s.finish_health_check("r", &finished, None).await.unwrap());
        for other in leased.iter().filter(|l| l.integration_id != a.integration_id) {
            let f = FinishedCheck {
                integration_id: other.integration_id,
                tenant_id: other.tenant_id.clone(),
                version: other.version,
                next_due_ms: t0 + 9_999_999,
                check: check(0, CheckOutcome::Healthy),
                invocation: None,
                foldable: false,
            };
            s.finish_health_check("r", &f, None).await.unwrap();
        }
    }
    let uptime = s.uptime_counts("t1", &[a.integration_id, c.integration_id], t0 - 86_400_000).await.unwrap();
    assert_eq!(uptime, vec![(a.integration_id, 1, 2)]);
    assert!(s.uptime_counts("t2", &[a.integration_id], t0 - 86_400_000).await.unwrap().is_empty(), "another tenant's");
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Backend::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(backend) = super::Backend::postgres().await {
                        super::$test(&backend).await;
                        backend.finish().await;
                    }
                }
            )*
        }
    };
}

conformance!(
    a_row_reads_back_exactly_as_written,
    names_are_unique_per_tenant,
    updates_and_deletes_need_the_current_version,
    lists_filter_and_order_by_name_then_id,
    paging_under_concurrent_writes_never_repeats_or_skips_a_stable_row,
    the_audit_chain_verifies_and_detects_tampering,
    events_are_numbered_per_tenant_and_shaped_as_cloudevents,
    the_outbox_is_pruned_from_the_start_of_each_stream,
    the_maintenance_lease_is_held_by_one_replica_at_a_time,
    the_latest_test_result_is_kept_and_goes_with_the_row,
    an_idempotency_key_is_kept_with_its_change_or_not_at_all,
    concurrent_writers_keep_one_unbroken_chain,
    reads_survive_cancellation_and_dropped_connections,
    health_checks_are_leased_when_due_and_recorded_once,
    replicas_never_lease_the_same_check,
    pruning_deletes_old_history_in_batches,
    checks_roll_up_into_the_hours_uptime_and_latency_are_read_from,
    the_upgrade_rolls_up_the_history_kept_before_it,
    retention_drops_whole_days_and_the_file_shrinks,
    plugin_versions_are_stored_by_content_and_run_only_once_approved,
    the_platform_audit_chain_and_events_verify_and_detect_tampering,
    concurrent_platform_writes_keep_one_unbroken_chain,
    a_provider_keeps_at_most_its_versions,
    the_ledger_keeps_every_invocation_with_what_it_recorded,
    healthy_repeats_are_folded_into_one_summary_per_hour,
    the_ledger_answers_what_security_teams_ask,
    console_sessions_are_found_by_their_secret_bounded_per_subject_and_pruned,
    the_console_counts_states_and_uptime_within_the_tenant,
);

/// A database created by an earlier release (migration 1 only, configuration as JSONB) is
/// upgraded in place when the store opens it, and its rows read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_first_release_is_upgraded_in_place() {
    let Some(db) = common::postgres_database().await else { return };
    let first = sqlx::migrate::Migrator::with_migrations(vec![sqlx::migrate::Migration::new(
        1,
        "catalog".into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(include_str!("../../../migrations/postgres/0001_catalog.sql")),
        false,
    )]);
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    first.run(&mut c).await.unwrap();
    sqlx::query(
        "INSERT INTO integrations (integration_id, tenant_id, name, integration_type, provider, configuration, tags, \
         status, paused, consecutive_failures, created_at, created_by, version) VALUES \
         ('4f1c2b9e-0000-4000-8000-000000000001', 't1', 'old', 'registry', 'harbor', \
          '{\"project\": \"library\", \"n\": [1, 2]}'::jsonb, '[\"eu\"]'::jsonb, 'active', false, 0, now(), 'a', 1)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    drop(c);
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let id = Uuid::parse_str("4f1c2b9e-0000-4000-8000-000000000001").unwrap();
    let row = store.get("t1", id).await.unwrap().unwrap();
    assert_eq!(row.configuration, json!({"project": "library", "n": [1, 2]}));
    assert_eq!(row.tags, vec!["eu".to_string()]);
    drop(store);
    db.drop_now().await;
}

/// A PostgreSQL database of the release before day partitions (migrations 1 to 12), with rows in
/// the ledger, the history and its rollups, is converted in place: every row reads back, they sit
/// in the `_before` partitions, new rows go to the day partitions once made, and retention drops
/// what is old enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_the_release_before_partitions_is_converted_without_losing_a_row() {
    let Some(db) = common::postgres_database().await else { return };
    let sources: [(i64, &str, &str); 12] = [
        (1, "catalog", include_str!("../../../migrations/postgres/0001_catalog.sql")),
        (2, "configuration_text", include_str!("../../../migrations/postgres/0002_configuration_text.sql")),
        (3, "health", include_str!("../../../migrations/postgres/0003_health.sql")),
        (4, "health_interval_replica", include_str!("../../../migrations/postgres/0004_health_interval_replica.sql")),
        (5, "plugins", include_str!("../../../migrations/postgres/0005_plugins.sql")),
        (6, "ledger", include_str!("../../../migrations/postgres/0006_ledger.sql")),
        (7, "ledger_filters", include_str!("../../../migrations/postgres/0007_ledger_filters.sql")),
        (8, "console", include_str!("../../../migrations/postgres/0008_console.sql")),
        (9, "ledger_secret_in_request", include_str!("../../../migrations/postgres/0009_ledger_secret_in_request.sql")),
        (10, "maintenance", include_str!("../../../migrations/postgres/0010_maintenance.sql")),
        (11, "ledger_levels", include_str!("../../../migrations/postgres/0011_ledger_levels.sql")),
        (12, "health_hours", include_str!("../../../migrations/postgres/0012_health_hours.sql")),
    ];
    let before = sqlx::migrate::Migrator::with_migrations(
        sources
            .iter()
            .map(|(version, name, sql)| {
                sqlx::migrate::Migration::new(
                    *version,
                    (*name).into(),
                    sqlx::migrate::MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*sql),
                    false,
                )
            })
            .collect(),
    );
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    before.run(&mut c).await.unwrap();
    drop(c);
    // Rows as that release wrote them.
    let id = Uuid::new_v4();
    let t0 = now().unix_timestamp() * 1000;
    let raw = |sql: String| {
        let url = db.url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        }
    };
    raw(format!(
        "INSERT INTO integrations (integration_id, tenant_id, name, integration_type, provider, configuration, tags, \
         status, paused, consecutive_failures, created_at, created_by, version) VALUES \
         ('{id}', 't1', 'old', 'registry', 'in-memory', '{{}}', '[]'::jsonb, 'active', false, 0, now(), 'a', 1)"
    ))
    .await;
    let entries: Vec<LedgerEntry> = (0..50).map(|n| ledger_entry("t1", id, t0 - n * 3_600_000)).collect();
    for e in &entries {
        let record = serde_json::to_string(&e.record).unwrap().replace('\'', "''");
        raw(format!(
            "INSERT INTO invocations (invocation_id, tenant_id, integration_id, provider, sha256, operation, at_ms, \
             duration_ms, outcome, denied, denial_kinds, origins, auth_refs, revealed_secret, signed_jwt, record) \
             VALUES ('{}', 't1', '{id}', 'in-memory', 'ab', 'check-health', {}, 3, 'healthy', true, '[\"origin\"]', \
             '[]', '[]', false, false, '{record}')",
            e.invocation_id,
            unix_ms(e.at)
        ))
        .await;
    }
    for n in 0..3 {
        let at = t0 - (3 - n) * 86_400_000;
        let hour = at / 3_600_000 * 3_600_000;
        raw(format!(
            "INSERT INTO health_checks (check_id, integration_id, tenant_id, checked_ms, outcome, latency_ms, message) \
             VALUES ('{}', '{id}', 't1', {at}, 'healthy', 12, 'ok')",
            Uuid::new_v4()
        ))
        .await;
        raw(format!(
            "INSERT INTO health_hours (integration_id, hour_ms, tenant_id, made, working, skipped, latency) VALUES \
             ('{id}', {hour}, 't1', 1, 1, 0, '{{\"count\":1,\"sumMs\":12,\"minMs\":12,\"maxMs\":12,\"buckets\":[0,0,1]}}')"
        ))
        .await;
    }

    // The upgrade.
    let s: Arc<dyn Store> = Arc::new(PostgresStore::connect(&db.url).await.unwrap());
    for e in &entries {
        let read = s.invocation(Some("t1"), e.invocation_id).await.unwrap().unwrap();
        assert_eq!((read.at, read.record.is_some()), (e.at, true));
    }
    assert_eq!(s.health_history("t1", id, None, 10).await.unwrap().len(), 3);
    let hours = s.health_hours("t1", id, 0).await.unwrap();
    assert_eq!(hours.iter().map(|h| (h.made, h.latency.max_ms)).collect::<Vec<_>>(), [(1, 12); 3]);
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for table in ["invocations", "health_checks", "health_hours"] {
        let kind: String = sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE relname = $1")
            .bind(table)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(kind, "p", "{table} is partitioned");
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}_before")))
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert!(rows > 0, "{table}'s rows are in its _before partition");
    }
    // New days get their partitions; a new row lands in its own.
    let tomorrow = (t0 / 86_400_000 + 1) * 86_400_000;
    assert_eq!(s.make_partitions(t0).await.unwrap(), 9);
    let late = ledger_entry("t1", id, tomorrow + 5);
    s.record_invocations(std::slice::from_ref(&late)).await.unwrap();
    let name = format!("invocations_d{}", from_unix_ms(tomorrow).date().to_string().replace('-', ""));
    let in_its_day: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}")))
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(in_its_day, 1, "{name}");
    // Retention: rows of before the upgrade older than the cut-off are deleted from `_before`;
    // once the cut-off passes its end, it goes whole, and so does tomorrow's day.
    assert_eq!(s.prune_invocations(t0 - 24 * 3_600_000 + 1).await.unwrap(), 26);
    assert!(s.prune_invocations(tomorrow + 86_400_000).await.unwrap() > 0);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM invocations").fetch_one(&mut c).await.unwrap();
    assert_eq!(rows, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname = 'invocations_before'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(left, 0, "the _before partition was dropped once past the retention");
    drop(c);
    drop(s);
    db.drop_now().await;
}
