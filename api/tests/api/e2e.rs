//! End to end: the real `stella-integrations` binary, started the way the README starts it
//! (`token` then `serve` in one directory, no other set-up), called over loopback HTTP, with its
//! event relay publishing to the NATS JetStream server of this machine.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_stella-integrations");

struct Server {
    child: Child,
    base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `serve` in `dir` and waits for its address.
    fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .current_dir(dir)
            .env("STELLA_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("stella-integrations listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the server did not start: {:?}", logs.lock().unwrap());
        });
        Server { child, base, logs }
    }

    /// Stops it with SIGTERM and returns whether it exited cleanly.
    fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn token(dir: &std::path::Path, scopes: &str) -> String {
    let out =
        Command::new(BIN).args(["token", "--tenant", "demo", "--scopes", scopes]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn nats() -> Option<async_nats::Client> {
    match async_nats::connect("127.0.0.1:4222").await {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("NATS at 127.0.0.1:4222 is not reachable ({e}); skipping the relay part");
            None
        }
        Err(e) => panic!("CI=true requires NATS with JetStream at 127.0.0.1:4222: {e}"),
    }
}

/// This run's own JetStream stream and subject prefix (so runs never see each other's events),
/// and the `[events]` section of a configuration file that sets them.
fn own_event_stream() -> (String, String, String) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (stream, prefix) = (format!("STELLA_E2E_{run}"), format!("stellae2e.{run}"));
    let config = format!("[events]\nstream = \"{stream}\"\nsubject-prefix = \"{prefix}\"\n");
    (stream, prefix, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_readme_walkthrough_and_relays_its_events_to_nats() {
    let dir = tempfile::tempdir().unwrap();
    // A token minted before the server ever ran: both use the key generated in ./data.
    let admin = token(dir.path(), "integrations.admin");
    let nats = nats().await;
    let (stream, prefix, events) = own_event_stream();
    std::fs::write(dir.path().join("stella.toml"), events).unwrap();
    let mut env = vec![("STELLA_CONFIG", "stella.toml"), ("STELLA_LOG_FORMAT", "json")];
    if nats.is_some() {
        env.push(("NATS_URL", "nats://127.0.0.1:4222"));
    }
    let mut subscription = match &nats {
        Some(c) => Some(c.subscribe(format!("{prefix}.>")).await.unwrap()),
        None => None,
    };
    let server = Server::start(dir.path(), &env);
    assert!(dir.path().join("data/catalog.db").exists(), "SQLite is created under ./data on first start");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, url(path)).bearer_auth(&admin);
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b.to_string());
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let request_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
            assert!(request_id.is_some(), "every response carries a request id");
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };

    let body = json!({"name": "demo-registry", "type": "registry", "provider": "in-memory",
                      "configuration": {"providerVersion": "2.11.0"}, "tags": ["demo"]});
    let (status, created) = send(reqwest::Method::POST, "/api/v1/integrations", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["integrationId"].as_str().unwrap().to_string();
    let (status, tested) = send(reqwest::Method::POST, &format!("/api/v1/integrations/{id}/activate"), None).await;
    assert_eq!((status, tested["integration"]["status"].as_str()), (200, Some("active")), "{tested}");
    assert_eq!(tested["testResult"]["result"]["facts"]["providerVersion"], "2.11.0");
    let (status, _) = send(reqwest::Method::POST, &format!("/api/v1/integrations/{id}/test"), None).await;
    assert_eq!(status, 200);
    // `serve` runs the health scheduler: an integration in service is checked at once. A passing
    // check of a healthy integration writes history only (no audit entry, no event: checked below).
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let (status, health) = send(reqwest::Method::GET, &format!("/api/v1/integrations/{id}/health"), None).await;
        assert_eq!(status, 200, "{health}");
        if !health["lastCheck"].is_null() {
            break health;
        }
        assert!(Instant::now() < deadline, "no scheduled health check within 20 s: {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health["lastCheck"]["outcome"], "healthy", "{health}");
    assert!(health["lastCheck"]["replica"].as_str().is_some_and(|r| r.starts_with("replica-")), "{health}");
    assert_eq!((&health["checkIntervalSeconds"], &health["offline"]), (&json!(300), &json!(false)));
    let pause = json!({"reason": "registry maintenance", "ticket": "OPS-7"});
    let (status, paused) = send(reqwest::Method::POST, &format!("/api/v1/integrations/{id}/pause"), Some(pause)).await;
    assert_eq!((status, paused["status"].as_str()), (200, Some("paused")));
    let (status, resumed) = send(reqwest::Method::POST, &format!("/api/v1/integrations/{id}/resume"), None).await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("active")));
    let (_, audit) = send(reqwest::Method::GET, &format!("/api/v1/integrations/{id}/audit"), None).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "activated", "tested", "tested", "paused", "resumed"]);
    let (_, events) = send(reqwest::Method::GET, "/api/v1/events", None).await;
    let events = events["items"].as_array().unwrap().clone();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["integration.created", "integration.healthy", "integration.paused", "integration.resumed"]);

    // A read-only token cannot change anything.
    let reader = token(dir.path(), "integrations.read");
    let response = http.delete(url(&format!("/api/v1/integrations/{id}"))).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);

    if let (Some(subscription), Some(nats)) = (subscription.as_mut(), &nats) {
        // Every outbox event reaches JetStream, once, with the CloudEvents id as Nats-Msg-Id.
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while received.len() < events.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, subscription.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {} events reached NATS", received.len(), events.len()))
                .unwrap();
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            let msg_id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string());
            assert_eq!(msg_id.as_deref(), event["id"].as_str());
            assert_eq!(message.subject.as_str(), format!("{prefix}.demo.{}", event["type"].as_str().unwrap()));
            received.push(event);
        }
        assert_eq!(received, events, "NATS carries the same events, in order");
        let js = async_nats::jetstream::new(nats.clone());
        let mut info = js.get_stream(&stream).await.unwrap();
        assert_eq!(info.info().await.unwrap().state.messages, events.len() as u64);
        js.delete_stream(&stream).await.unwrap();
    }

    let logs = server.logs.clone();
    assert!(server.terminate(), "the server exits cleanly on SIGTERM");
    let logs = logs.lock().unwrap();
    let json_lines: Vec<Value> = logs.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        json_lines.iter().any(|l| l["span"]["request_id"].is_string() && l["span"]["route"].is_string()),
        "{logs:?}"
    );
    let signature = admin.rsplit('.').next().unwrap();
    assert!(logs.iter().all(|l| !l.contains(signature)), "a token reached the logs");
}

#[test]
fn serve_refuses_a_bad_configuration_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[server]\nlisten = \"nowhere\"\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--config", "bad.toml"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("listen"), "{stderr}");

    let out = Command::new(BIN)
        .args(["serve", "--print-config"])
        .env("DATABASE_URL", "postgres://app:s3cret@db.internal/catalog")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("db.internal") && !printed.contains("s3cret"), "{printed}");

    let out = Command::new(BIN)
        .args(["token", "--tenant", "t", "--scopes", "root"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `serve` keeps what it compiled in `<data-dir>/compile-cache` (private), so the next start
/// reads every built-in connector from there instead of compiling it again.
#[tokio::test]
async fn a_restart_reads_the_connectors_from_the_compile_cache_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let reader = token(dir.path(), "integrations.read");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut from_cache = Vec::new();
    for _ in 0..2 {
        let server = Server::start(dir.path(), &[]);
        let list: Value = http
            .get(format!("{}/api/v1/plugins", server.base))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap();
        assert!(items.len() >= 10, "{list:#}");
        from_cache.push(items.iter().map(|p| p["compilation"]["fromCache"].as_bool().unwrap()).collect::<Vec<_>>());
        assert!(server.terminate());
    }
    assert!(from_cache[0].iter().all(|c| !c), "the first start compiles: {from_cache:?}");
    assert!(from_cache[1].iter().all(|c| *c), "the second reads the cache: {from_cache:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/compile-cache")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "private to the service's user");
    }
}

/// Two `serve` processes on one PostgreSQL database: every integration is checked once per
/// interval (never by both replicas), and both replicas take their share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_check_each_integration_once_per_interval() {
    let Some(database) = common::postgres_database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let admin = token(dir.path(), "integrations.admin");
    // The shortest interval allowed: two rounds of checks take about 30 s.
    let env = [("DATABASE_URL", database.url.as_str()), ("STELLA_HEALTH_INTERVAL_SECONDS", "30")];
    let first = Server::start(dir.path(), &env);
    let second = Server::start(dir.path(), &env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let call = |base: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{base}{path}")).bearer_auth(&admin);
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b.to_string());
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };

    const INTEGRATIONS: usize = 16;
    let mut ids = Vec::new();
    for n in 0..INTEGRATIONS {
        let body = json!({"name": format!("registry-{n:02}"), "type": "registry", "provider": "in-memory"});
        let (status, created) = call(&first.base, reqwest::Method::POST, "/api/v1/integrations", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["integrationId"].as_str().unwrap().to_string();
        let (status, _) =
            call(&first.base, reqwest::Method::POST, &format!("/api/v1/integrations/{id}/activate"), None).await;
        assert_eq!(status, 200);
        ids.push(id);
        // Spread the activations over both replicas' polls.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // Wait for the second round of checks, reading through the other replica.
    let deadline = Instant::now() + Duration::from_secs(75);
    let histories = loop {
        let mut histories = Vec::new();
        for id in &ids {
            let path = format!("/api/v1/integrations/{id}/health?limit=50");
            let (status, health) = call(&second.base, reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{health}");
            histories.push(health["history"].as_array().unwrap().clone());
        }
        if histories.iter().all(|h| h.len() >= 2) {
            break histories;
        }
        assert!(Instant::now() < deadline, "not every integration was checked twice in 75 s: {histories:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let mut replicas = std::collections::BTreeSet::new();
    for (id, history) in ids.iter().zip(&histories) {
        let times: Vec<time::OffsetDateTime> = history
            .iter()
            .map(|c| {
                time::OffsetDateTime::parse(
                    c["checkedAt"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
            })
            .collect();
        // Newest first; consecutive checks at least the interval less its 10% jitter apart.
        for pair in times.windows(2) {
            let gap = pair[0] - pair[1];
            assert!(gap >= time::Duration::seconds(27), "{id} was checked twice within {gap}: {history:?}");
        }
        assert!(history.iter().all(|c| c["outcome"] == "healthy"), "{history:?}");
        replicas.extend(history.iter().map(|c| c["replica"].as_str().unwrap().to_string()));
    }
    assert_eq!(replicas.len(), 2, "both replicas take checks: {replicas:?}");

    assert!(first.terminate() && second.terminate(), "both replicas stop cleanly on SIGTERM");
    database.drop_now().await;
}

/// Runs a signing tool in `dir`; `false` when it is not installed (a failure under `CI=true`).
fn tool(dir: &std::path::Path, name: &str, args: &[&str]) -> bool {
    match Command::new(name).args(args).current_dir(dir).output() {
        Ok(out) => {
            assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("`{name}` is not installed (make test-tools); skipping");
            false
        }
        Err(e) => panic!("{name}: {e} (make test-tools installs it)"),
    }
}

/// The supply chain through the real binaries: a third party signs with Debian's `minisign`, an
/// operator trusts its key, `connector submit` stores the component through one replica, a
/// reviewer approves it there, and the other replica serves it within seconds without a restart;
/// the platform's events reach NATS and `audit verify` checks the platform's chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_approved_on_one_replica_is_served_by_the_other_within_seconds() {
    let Some(database) = common::postgres_database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !tool(d, "minisign", &["-G", "-W", "-p", "vendor.pub", "-s", "vendor.key"]) {
        return;
    }
    std::fs::copy(test_programs_artifacts::WELL_BEHAVED, d.join("connector.wasm")).unwrap();
    assert!(tool(d, "minisign", &["-S", "-s", "vendor.key", "-m", "connector.wasm"]));
    let (stream, prefix, events) = own_event_stream();
    let plugins = format!("[plugins]\ntrusted-keys = [\"{}\"]\n", d.join("vendor.pub").display());
    std::fs::write(d.join("stella.toml"), plugins + &events).unwrap();
    let nats = nats().await;
    let mut subscription = match &nats {
        Some(c) => Some(c.subscribe(format!("{prefix}._platform.>")).await.unwrap()),
        None => None,
    };
    let mut env = vec![
        ("DATABASE_URL", database.url.as_str()),
        ("STELLA_CONFIG", "stella.toml"),
        ("STELLA_HEALTH_ENABLED", "false"),
    ];
    if nats.is_some() {
        env.push(("NATS_URL", "nats://127.0.0.1:4222"));
    }
    let first = Server::start(d, &env);
    let second = Server::start(d, &env);
    let reviewer = token(d, "plugins.admin");
    let tenant_admin = token(d, "integrations.admin");

    // A tenant's admin cannot submit code; the platform reviewer can.
    let submit = |token: &str| {
        Command::new(BIN)
            .args(["connector", "submit", "connector.wasm", "--url", &first.base])
            .env("STELLA_TOKEN", token)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = submit(&tenant_admin);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugins.admin"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = submit(&reviewer);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test-program 0.0.1: stored, pending"), "{stdout}");
    assert!(stdout.contains("signed by:          minisign:"), "{stdout}");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let get = |base: &str, path: &str, token: &str| {
        let request = http.get(format!("{base}{path}")).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    assert_eq!(get(&second.base, "/api/v1/plugins/test-program", &tenant_admin).await.0, 404, "pending never runs");
    let (_, version) = get(&second.base, "/api/v1/plugins/test-program/versions/0.0.1", &reviewer).await;
    assert_eq!(version["status"], "pending", "{version}");
    let approved = http
        .post(format!("{}/api/v1/plugins/test-program/versions/0.0.1/approve", first.base))
        .bearer_auth(&reviewer)
        .header("content-type", "application/json")
        .body(json!({"permissionsDigest": version["permissionsDigest"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status().as_u16(), 200);

    // The other replica converges on its own (it polls the store's generation every second).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, plugin) = get(&second.base, "/api/v1/plugins/test-program", &tenant_admin).await;
        if status == 200 {
            assert_eq!(plugin["source"], "stored", "{plugin}");
            break;
        }
        assert!(Instant::now() < deadline, "the second replica did not load the approved connector in 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    if let Some(subscription) = subscription.as_mut() {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(15), subscription.next())
                .await
                .expect("the platform's events reach NATS")
                .unwrap();
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            assert_eq!(message.subject.as_str(), format!("{prefix}._platform.{}", event["type"].as_str().unwrap()));
            assert_eq!(event["subject"], "plugins/test-program/0.0.1");
            seen.push(event["type"].as_str().unwrap().to_string());
        }
        assert_eq!(seen, ["plugin.submitted", "plugin.approved", "plugin.activated"]);
    }

    assert!(first.terminate() && second.terminate());
    if let Some(nats) = &nats {
        async_nats::jetstream::new(nats.clone()).delete_stream(&stream).await.unwrap();
    }
    let out = Command::new(BIN).args(["audit", "verify", "--database-url", &database.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 audit entries checked"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    database.drop_now().await;
}

/// OCI distribution through the real binaries and the real CNCF registry (Basic auth, a private
/// CA): `connector push` a signed component, `connector pull` it back with its signature, and the
/// service's `POST /api/v1/plugins/pull`, pinned by digest, from a registry the operator named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_travel_through_an_oci_registry_with_their_signatures() {
    let registry = stella_test_support::registry::Registry::start(&[("ci-bot", "registry-password")]);
    let host = registry.url.trim_start_matches("https://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.pem"), &registry.ca_pem).unwrap();
    std::fs::copy(test_programs_artifacts::WELL_BEHAVED, d.join("connector.wasm")).unwrap();
    assert!(tool(
        d,
        "openssl",
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "vendor.key"]
    ));
    assert!(tool(d, "openssl", &["pkey", "-in", "vendor.key", "-pubout", "-out", "vendor.pub"]));
    let cli = |args: &[&str], password: &str| {
        Command::new(BIN).args(args).env("STELLA_REGISTRY_PASSWORD", password).current_dir(d).output().unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    let out = cli(&["connector", "sign", "connector.wasm", "--key", "vendor.key"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let reference = format!("{host}/connectors/test-program:0.0.1");
    let registry_args = ["--username", "ci-bot", "--ca-file", "ca.pem"];
    let push = |password: &str| {
        let mut args = vec!["connector", "push", "connector.wasm", reference.as_str()];
        args.extend(registry_args);
        cli(&args, password)
    };
    let out = push("wrong-password");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("registry"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("wrong-password"), "{}", text(&out.stderr));
    let out = push("registry-password");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pinned = text(&out.stdout).trim().to_string();
    assert!(pinned.starts_with(&format!("{host}/connectors/test-program@sha256:")), "{pinned}");
    // Standard output is the reference and nothing else, on a line of its own (for `$(…)`), and
    // the message for a person is on standard error.
    assert_eq!(text(&out.stdout), format!("{pinned}\n"));
    assert!(text(&out.stderr).starts_with("pushed connector.wasm with"), "{}", text(&out.stderr));

    // Without the private CA the registry is not trusted.
    let out = cli(&["connector", "pull", &reference, "-o", "pulled.wasm", "--username", "ci-bot"], "registry-password");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let mut args = vec!["connector", "pull", reference.as_str(), "-o", "pulled.wasm"];
    args.extend(registry_args);
    let out = cli(&args, "registry-password");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), pinned, "the pull is pinned to the digest pushed");
    assert_eq!(std::fs::read(d.join("pulled.wasm")).unwrap(), std::fs::read(d.join("connector.wasm")).unwrap());
    assert_eq!(std::fs::read(d.join("pulled.wasm.sig")).unwrap(), std::fs::read(d.join("connector.wasm.sig")).unwrap());
    let out = cli(&["connector", "verify", "pulled.wasm", "--key", "vendor.pub"], "");
    assert!(out.status.success(), "{}", text(&out.stdout));

    // The service pulls from the registry an operator named, with its credentials and CA.
    std::fs::write(
        d.join("stella.toml"),
        format!(
            "[plugins]\ntrusted-keys = [\"vendor.pub\"]\n[[plugins.registries]]\nhost = \"{host}\"\n\
             username = \"ci-bot\"\npassword-ref = \"ref://platform/registry/password\"\nca-file = \"ca.pem\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        d,
        &[
            ("STELLA_CONFIG", "stella.toml"),
            ("STELLA_HEALTH_ENABLED", "false"),
            ("STELLA_PLATFORM_SECRET__PLATFORM__REGISTRY__PASSWORD", "registry-password"),
        ],
    );
    let reviewer = token(d, "plugins.admin");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let pull = |reference: String| {
        let request = http
            .post(format!("{}/api/v1/plugins/pull", server.base))
            .bearer_auth(&reviewer)
            .header("content-type", "application/json")
            .body(json!({"reference": reference}).to_string());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    let (status, version) = pull(reference.clone()).await;
    assert_eq!(status, 201, "{version}");
    assert_eq!(version["origin"].as_str().unwrap(), format!("oci:{pinned}"));
    assert!(version["signedBy"].as_str().unwrap().starts_with("cosign:"), "{version}");
    assert_eq!(version["status"], "pending");
    let (status, again) = pull(pinned.clone()).await;
    assert_eq!((status, again["version"].as_str()), (200, Some("0.0.1")), "{again}");

    // Refused: a registry nobody named, a reference that names none, nothing at the tag.
    let (status, problem) = pull("registry.example.com/connectors/x:1".into()).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("plugins.registries"), "{problem}");
    let (status, _) = pull("connectors/x:1".into()).await;
    assert_eq!(status, 422);
    let (status, problem) = pull(format!("{host}/connectors/missing:1")).await;
    assert_eq!(status, 502, "{problem}");
    assert!(!problem.to_string().contains("registry-password"), "{problem}");
    // In this service's words (the registry, and the spec's error code or what happened), never
    // the registry's own message, which the log keeps.
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("the registry `{host}`")), "{problem}");
    assert!(!detail.to_lowercase().contains("manifest unknown"), "{problem}");
    assert!(server.terminate());
}

/// `stella-integrations export` and `import` against a running service: from one tenant's file
/// into another tenant, with a dry run first; a refused item makes `import` exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exports_and_imports_against_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let demo = token(dir.path(), "integrations.admin");
    let out = Command::new(BIN)
        .args(["token", "--tenant", "staging", "--scopes", "integrations.admin"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let staging = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = Server::start(dir.path(), &[("STELLA_HEALTH_ENABLED", "false")]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    // A replica that runs no health checks still runs the maintenance task: at once on a fresh
    // database (it is due), then hourly.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
        if metrics.contains("stella_maintenance_runs_total{result=\"done\"} 1") {
            assert!(metrics.contains("stella_maintenance_last_removed{table=\"events\"} 0"), "{metrics}");
            assert!(metrics.contains("stella_maintenance_last_run_timestamp_seconds "), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "no maintenance run within 20 s: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in ["zeta-registry", "alpha-ci"] {
        let body = json!({"name": name, "type": "registry", "provider": "in-memory", "tags": ["cli"]});
        create_integration(&http, &server.base, &demo, &body).await;
    }
    let cli = |args: &[&str], token: &str| {
        Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env("STELLA_URL", &server.base)
            .env("STELLA_TOKEN", token)
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();

    let out = cli(&["export"], &demo);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        exported["integrations"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha-ci", "zeta-registry"]);
    std::fs::write(dir.path().join("demo.json"), &out.stdout).unwrap();
    let out = cli(&["export", "--ndjson"], &demo);
    assert_eq!(text(&out.stdout).lines().count(), 2);
    std::fs::write(dir.path().join("demo.ndjson"), &out.stdout).unwrap();

    let out = cli(&["import", "demo.json", "--dry-run"], &staging);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("created    alpha-ci\n") && report.contains("created    zeta-registry\n"), "{report}");
    assert!(
        report.ends_with("2 created, 0 updated, 0 unchanged, 0 failed (dry run: nothing was changed)\n"),
        "{report}"
    );
    let out = cli(&["export"], &staging);
    let nothing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(nothing["integrations"], json!([]));

    let out = cli(&["import", "demo.json"], &staging);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["import", "demo.ndjson", "--json"], &staging);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["unchanged"].as_u64(), report["created"].as_u64()), (Some(2), Some(0)), "{report}");
    let out = cli(&["export"], &staging);
    let copied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(copied["integrations"], exported["integrations"]);

    // A refused item: exit 1, with the reason; the good one is still imported.
    let file = json!({"integrations": [
        {"name": "bad", "type": "registry", "provider": "in-memory", "baseUrl": "ftp://x"},
        {"name": "good", "type": "registry", "provider": "in-memory"},
    ]});
    std::fs::write(dir.path().join("mixed.json"), file.to_string()).unwrap();
    let out = cli(&["import", "mixed.json"], &staging);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("error      bad (item 0): baseUrl:"), "{report}");
    assert!(report.contains("created    good\n"), "{report}");

    // Usage and connection errors: exit 2 with a message (the token never printed).
    let out = cli(&["import", "missing.json"], &staging);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read missing.json"), "{}", text(&out.stderr));
    let out = cli(&["export"], "not-a-token");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let out = Command::new(BIN)
        .args(["export", "--url", "http://127.0.0.1:9"])
        .env("STELLA_TOKEN", &staging)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot reach the service at http://127.0.0.1:9"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(&staging));
    assert!(server.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_plugin_is_contained_by_the_running_service() {
    // The loop of issue 13 through the real binary: a plugin that sends refused requests without
    // end. Before the host-call budget, one test of it took the service to 4.3 GB, wrote a 255 MB
    // record and flooded the log with a line per refusal.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(test_programs_artifacts::FLOOD, dir.path().join("plugins/flood.wasm")).unwrap();
    let admin = token(dir.path(), "integrations.admin");
    // The security team's alert goes through the outbox to NATS.
    let nats = nats().await;
    let (stream, prefix, events) = own_event_stream();
    std::fs::write(dir.path().join("stella.toml"), events).unwrap();
    let mut env = vec![("STELLA_HEALTH_ENABLED", "false"), ("STELLA_CONFIG", "stella.toml")];
    if nats.is_some() {
        env.push(("NATS_URL", "nats://127.0.0.1:4222"));
    }
    let mut alerts = match &nats {
        Some(c) => Some(c.subscribe(format!("{prefix}.demo.invocation.denied")).await.unwrap()),
        None => None,
    };
    let server = Server::start(dir.path(), &env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);

    let json = |text: String| serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    // The file in plugins/ was submitted at start, under the default policy: pending until a
    // `plugins.admin` reviewer approves what it may do.
    let reviewer = token(dir.path(), "plugins.admin");
    let flood = http.get(url("/api/v1/plugins/test-program-flood")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(flood.status().as_u16(), 404, "a pending plugin is not loaded");
    let versions = http.get(url("/api/v1/plugins/test-program-flood/versions")).bearer_auth(&reviewer).send().await;
    let versions = json(versions.unwrap().text().await.unwrap());
    let pending = &versions["items"][0];
    assert_eq!(
        (pending["status"].as_str(), pending["origin"].as_str()),
        (Some("pending"), Some("directory:flood.wasm"))
    );
    let approve = http
        .post(url(&format!(
            "/api/v1/plugins/test-program-flood/versions/{}/approve",
            pending["version"].as_str().unwrap()
        )))
        .bearer_auth(&reviewer)
        .header("content-type", "application/json")
        .body(json!({"permissionsDigest": pending["permissionsDigest"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status().as_u16(), 200);
    let plugin = http.get(url("/api/v1/plugins/test-program-flood")).bearer_auth(&admin).send().await.unwrap();
    let plugin = json(plugin.text().await.unwrap());
    assert!(plugin["compilation"]["compileMs"].is_u64(), "{plugin}");
    let body = json!({"name": "hostile", "type": "registry", "provider": "test-program-flood",
                      "baseUrl": "https://registry.example.com", "configuration": {"flood": "send-refused"}});
    let created = http
        .post(url("/api/v1/integrations"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let created = json(created.text().await.unwrap());
    let id = created["integrationId"].as_str().unwrap();
    let response = http.post(url(&format!("/api/v1/integrations/{id}/test"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let tested = json(response.text().await.unwrap());
    assert_eq!(tested["testResult"]["result"]["failure"], "internal", "{tested}");
    assert_eq!(tested["testResult"]["record"]["trap"]["limit"], "host-calls", "{tested}");

    // The stored record, as the API answers it, is within its budget.
    let latest = http
        .get(url(&format!("/api/v1/integrations/{id}/tests/latest")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&latest).unwrap();
    let record = serde_json::to_vec(&answer["record"]).unwrap();
    assert!(record.len() <= (256 << 10) + 4096, "the record is {} bytes", record.len());
    assert_eq!(answer["record"]["denials"].as_array().unwrap().len(), 256);
    assert!(latest.len() < 512 << 10, "the answer is {} bytes", latest.len());

    // The service's log has the first 16 refusals and one line counting the rest.
    let logs = server.logs.lock().unwrap().clone();
    let denied = logs.iter().filter(|l| l.contains("connector request denied")).count();
    assert_eq!(denied, 16, "{logs:#?}");
    assert!(logs.iter().any(|l| l.contains("denials not logged") && l.contains("240")), "{logs:#?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let rss_kib: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rss_kib < 512 << 10, "the service holds {rss_kib} KiB");

    // A security team finds it in the ledger: the invocations that were denied something.
    let auditor = token(dir.path(), "integrations.audit");
    let out = Command::new(BIN)
        .args(["invocations", "--denied", "true", "--denial-kind", "origin", "--ndjson"])
        .env("STELLA_URL", &server.base)
        .env("STELLA_TOKEN", &auditor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["provider"].as_str(), lines[0]["integrationId"].as_str()),
        (Some("test-program-flood"), Some(id))
    );
    assert!(lines[0]["record"].is_null(), "a list carries no record");
    assert_eq!(lines[0]["failureClass"], "internal", "{}", lines[0]);
    let invocation_id = lines[0]["invocationId"].as_str().unwrap().to_string();
    // It reached nothing beyond its base URL (every request was refused): `--json` prints one array.
    let out = Command::new(BIN)
        .args(["invocations", "--outside-base-url", "false", "--json"])
        .env("STELLA_URL", &server.base)
        .env("STELLA_TOKEN", &auditor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let array: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(array.as_array().map(|a| a.len()), Some(1), "{array}");
    assert_eq!(array[0]["invocationId"], invocation_id.as_str());

    // The alert: one `invocation.denied` event for the test, in the tenant's outbox and on NATS,
    // naming the invocation and its first ten refusals (of 256: the count says so).
    let events = http.get(url("/api/v1/events?after=0")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let events = json(events.text().await.unwrap());
    let denied: Vec<&Value> =
        events["items"].as_array().unwrap().iter().filter(|e| e["type"] == "invocation.denied").collect();
    assert_eq!(denied.len(), 1, "{events}");
    let alert = denied[0];
    assert_eq!(
        (alert["data"]["invocationId"].as_str(), alert["integrationid"].as_str(), alert["tenantid"].as_str()),
        (Some(invocation_id.as_str()), Some(id), Some("demo")),
        "{alert}"
    );
    assert_eq!(alert["data"]["denialKinds"], json!(["origin", "request-budget"]), "{alert}");
    assert_eq!(alert["data"]["denials"].as_array().unwrap().len(), 10, "{alert}");
    assert_eq!(alert["data"]["denials"][0]["kind"], "origin", "{alert}");
    assert_eq!(alert["data"]["deniedCount"], 256, "as many as its record lists: {alert}");
    if let (Some(alerts), Some(nats)) = (alerts.as_mut(), &nats) {
        let message = tokio::time::timeout(Duration::from_secs(20), alerts.next())
            .await
            .expect("the alert reaches NATS")
            .unwrap();
        let published: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(&published, alert, "NATS carries the outbox's event");
        async_nats::jetstream::new(nats.clone()).delete_stream(&stream).await.unwrap();
    }
    let out = Command::new(BIN)
        .args(["invocations", "--denied", "false"])
        .env("STELLA_URL", &server.base)
        .env("STELLA_TOKEN", &auditor)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    // Its egress report: it contacted nothing, was denied origins (then its request budget), and
    // never used the permissions its manifest declares.
    let report = http.get(url("/api/v1/plugins/test-program-flood/egress")).bearer_auth(&auditor).send().await.unwrap();
    let report = json(report.text().await.unwrap());
    assert_eq!(report["contacted"], json!([]), "{report}");
    let denials = json!([{"kind": "origin", "invocations": 1}, {"kind": "request-budget", "invocations": 1}]);
    assert_eq!(report["denials"], denials, "{report}");
    assert_eq!(report["permissionsUnused"], json!(["reveal-secrets", "sign-jwt"]), "{report}");
    assert!(server.terminate(), "the service stops cleanly");
}

/// npm's oidc-provider on a free loopback port (`api/tests/oidc-provider`, installed by
/// `make test-tools`), with the console as its one client.
struct OpenIdProvider {
    child: Child,
    issuer: String,
}

impl OpenIdProvider {
    /// Starts it for a console at `public_url`; `None` (with a message) when it is not installed,
    /// except under `CI=true`, where the test fails.
    async fn start(public_url: &str, client_secret: &str) -> Option<Self> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
        if !dir.join("node_modules/oidc-provider").exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true requires the test OpenID provider (make test-tools runs npm ci in {})", dir.display());
            }
            eprintln!("the test OpenID provider is not installed (make test-tools); skipping the browser test");
            return None;
        }
        let port = free_port();
        let redirect = format!("{public_url}/console/auth/callback");
        let child = Command::new("node")
            .args(["provider.mjs", &port.to_string(), &redirect, client_secret])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the OpenID provider");
        let issuer = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let http = reqwest::Client::new();
        while http.get(format!("{issuer}/.well-known/openid-configuration")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the OpenID provider did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Self { child, issuer })
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where the browser test saves each page's screenshot, for review.
fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

/// The console in a real browser (headless Chromium through WebDriver), signed in through a real
/// OpenID provider with the authorization code flow and PKCE: a user sees their tenant's
/// integrations and no other tenant's, and signs out.
#[tokio::test]
async fn the_console_signs_in_through_openid_connect_in_a_real_browser() {
    let Some(browser) = common::webdriver::Browser::start(1280, 900).await else { return };
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let Some(idp) = OpenIdProvider::start(&public_url, &secret).await else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stella.toml"),
        format!(
            "[console]\npublic-url = \"{public_url}\"\n[console.oidc]\nissuer = \"{}\"\nclient-id = \"stella-console\"\n\
             scopes = [\"catalog\"]\n",
            idp.issuer
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(
        dir.path(),
        &[("STELLA_CONFIG", "stella.toml"), ("STELLA_LISTEN", &listen), ("STELLA_CONSOLE_CLIENT_SECRET", &secret)],
    );
    // An integration of acme, and one of globex.
    let http = reqwest::Client::new();
    for (tenant, name) in [("acme", "acme-registry"), ("globex", "globex-registry")] {
        let admin = token_for(dir.path(), tenant, "integrations.admin");
        let body = json!({"name": name, "type": "registry", "provider": "in-memory", "configuration": {}});
        create_integration(&http, &server.base, &admin, &body).await;
    }
    let shots = screenshot_dir();

    // Not signed in: the sign-in page offers the provider.
    browser.go(&format!("{public_url}/console/")).await;
    browser.wait_for_url("/console/sign-in").await;
    browser.screenshot(&shots.join("sign-in.png")).await;
    let button = browser.find("a.button").await;
    assert!(browser.text(&button).await.contains(&idp.issuer));
    browser.click(&button).await;

    // The provider's sign-in form; back in the console, signed in as alice of acme.
    let sign_in = |login: &'static str| {
        let browser = &browser;
        async move {
            browser.type_into(&browser.find("input[name=login]").await, login).await;
            browser.type_into(&browser.find("input[name=password]").await, "any").await;
            browser.click(&browser.find("button[type=submit]").await).await;
            browser.wait_for_text("<h1>Integrations</h1>").await;
        }
    };
    sign_in("alice@acme").await;
    let page = browser.source().await;
    assert!(page.contains("acme-registry") && !page.contains("globex-registry"), "{page}");
    assert!(page.contains("alice@acme") && page.contains("tenant acme"), "{page}");
    browser.screenshot(&shots.join("integrations.png")).await;

    // Create an integration with the form, activate it, and see its health chart fill in (the
    // scheduler checks an integration as soon as it is in service).
    browser.click(&browser.find("a[href='/console/integrations/new']").await).await;
    browser.type_into(&browser.find("input[name=name]").await, "console-made").await;
    browser.execute("document.querySelector('select[name=provider]').value = 'in-memory'").await;
    browser.type_into(&browser.find("textarea[name=configuration]").await, r#"{"providerVersion": "2.11.0"}"#).await;
    browser.screenshot(&shots.join("new-integration.png")).await;
    browser.click(&browser.find("form.stacked button[type=submit]").await).await;
    browser.wait_for_text("<h1>console-made</h1>").await;
    let page_url = browser.url().await;
    browser.click(&browser.find("form[action$='/activate'] button").await).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = browser.source().await;
        if page.contains("circle class=\"point healthy\"") {
            assert!(page.contains(">active<"), "activated and tested: {page}");
            break;
        }
        assert!(Instant::now() < deadline, "no health check reached the chart: {page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.go(&page_url).await;
    }
    browser.screenshot(&shots.join("integration.png")).await;

    // Pause it with a reason: the audit trail shows who paused it and why.
    browser.type_into(&browser.find("form.pause input[name=reason]").await, "registry maintenance").await;
    browser.type_into(&browser.find("form.pause input[name=ticket]").await, "OPS-7").await;
    browser.click(&browser.find("form.pause button").await).await;
    let page = browser.wait_for_text("registry maintenance (OPS-7)").await;
    assert!(page.contains(">paused<"), "{page}");
    let audit = browser.text(&browser.find("section[aria-labelledby=audit] tbody").await).await;
    assert!(audit.contains("paused") && audit.contains("alice@acme") && audit.contains("OPS-7"), "{audit}");
    browser.screenshot(&shots.join("integration-paused.png")).await;

    // A form without the session's token is refused, and changes nothing.
    browser.execute("document.querySelector('form[action$=\"/resume\"] input[name=csrf]').remove()").await;
    browser.click(&browser.find("form[action$='/resume'] button").await).await;
    browser.wait_for_text("<h1>Form refused</h1>").await;
    browser.go(&page_url).await;
    assert!(browser.source().await.contains(">paused<"), "still paused");

    // The ledger: the activation's test and the checks, each record readable.
    browser.click(&browser.find("nav a[href='/console/invocations']").await).await;
    browser.wait_for_url("/console/invocations").await;
    let ledger = browser.source().await;
    assert!(ledger.contains("test-connection") && ledger.contains("in-memory"), "{ledger}");
    browser.screenshot(&shots.join("invocations.png")).await;
    browser.click(&browser.find("main tbody a").await).await;
    let record = browser.wait_for_text("Origins contacted").await;
    assert!(record.contains("<h1>in-memory · "), "{record}");
    browser.screenshot(&shots.join("invocation.png")).await;

    // The connectors, and one with its egress report (the ledger's evidence).
    browser.click(&browser.find("nav a[href='/console/connectors']").await).await;
    browser.wait_for_text("<h1>Connectors</h1>").await;
    browser.screenshot(&shots.join("connectors.png")).await;
    browser.go(&format!("{public_url}/console/connectors/in-memory")).await;
    let connector = browser.wait_for_text("Egress in the last 7 days").await;
    assert!(connector.contains("It contacted no origin."), "{connector}");
    browser.screenshot(&shots.join("connector.png")).await;

    // Keyboard: Tab from the top reaches "skip to content", then the navigation.
    browser.go(&format!("{public_url}/console/")).await;
    browser.press("\u{E004}").await;
    assert!(browser.focused().await.contains("Skip to content"), "{}", browser.focused().await);
    browser.press("\u{E004}").await;
    assert!(browser.focused().await.contains(r#"href="/console/""#), "{}", browser.focused().await);

    // On a phone's screen: the page fits its width (nothing scrolls sideways).
    browser.resize(390, 844).await;
    browser.go(&page_url).await;
    let overflow = browser.execute("return document.documentElement.scrollWidth - window.innerWidth").await;
    assert!(overflow.as_i64().unwrap_or(i64::MAX) <= 0, "the page is wider than a phone by {overflow} px");
    browser.screenshot(&shots.join("integration-phone.png")).await;
    browser.resize(1280, 900).await;

    // Sign out: the session ends; the console asks to sign in again.
    browser.click(&browser.find("header form button").await).await;
    browser.wait_for_url("/console/sign-in").await;
    browser.go(&format!("{public_url}/console/")).await;
    browser.wait_for_url("/console/sign-in").await;

    // Another tenant's user sees their own integrations only (the provider's session of alice
    // forgotten first: cookies are per host, and both run on 127.0.0.1).
    browser.delete_cookies().await;
    browser.click(&browser.find("a.button").await).await;
    sign_in("bob@globex").await;
    let page = browser.source().await;
    assert!(page.contains("globex-registry") && !page.contains("acme-registry"), "{page}");
    // acme's integration, by its address, does not exist for globex.
    browser.go(&page_url).await;
    let heading = browser.text(&browser.find("main h1").await).await;
    assert_eq!(heading, "Something went wrong", "{}", browser.source().await);
    assert!(browser.source().await.contains("Not Found") && !browser.source().await.contains("console-made"));
    browser.screenshot(&shots.join("other-tenant.png")).await;
    assert!(server.terminate());

    // The browser quits with the test (no Chromium left running after `make test`).
    let profile = browser.profile().to_string();
    assert!(common::webdriver::running(&profile), "the browser is found by its profile {profile}");
    drop(browser);
    assert!(!common::webdriver::running(&profile), "the browser with profile {profile} still runs");
}

/// A local bearer token for `tenant`, minted as an operator would.
fn token_for(dir: &std::path::Path, tenant: &str, scopes: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--tenant", tenant, "--scopes", scopes])
        .current_dir(dir)
        .env("STELLA_CONFIG", "stella.toml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Creates an integration through the API of the service at `base`, which must answer 201; the
/// integration created.
async fn create_integration(http: &reqwest::Client, base: &str, token: &str, body: &Value) -> Value {
    let response = http
        .post(format!("{base}/api/v1/integrations"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A server on loopback that answers every request `200 {"status":"ok"}` and keeps each request's
/// head: where a connector's requests, and the credentials on them, arrive.
struct Listener {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    fn start() -> Listener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = Vec::new();
                    let mut byte = [0u8; 1];
                    loop {
                        while !buf.ends_with(b"\r\n\r\n") {
                            match stream.read(&mut byte) {
                                Ok(1) => buf.push(byte[0]),
                                _ => return,
                            }
                        }
                        seen.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                        buf.clear();
                        let body = r#"{"status":"ok"}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Listener { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// The `Authorization` values it received, in order.
    fn authorizations(&self) -> Vec<String> {
        self.heads()
            .iter()
            .filter_map(|head| {
                head.lines()
                    .find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: ")))
            })
            .map(str::to_string)
            .collect()
    }
}

/// Creates an `http-probe` integration of the token's tenant and activates it: the activation's
/// test result.
async fn activate_probe(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    base_url: &str,
    auth_ref: &str,
) -> Value {
    let body =
        json!({"name": name, "type": "host", "provider": "http-probe", "baseUrl": base_url, "authRef": auth_ref});
    let created = create_integration(http, base, token, &body).await;
    let id = created["integrationId"].as_str().unwrap();
    let tested =
        http.post(format!("{base}/api/v1/integrations/{id}/activate")).bearer_auth(token).send().await.unwrap();
    assert_eq!(tested.status().as_u16(), 200);
    let mut tested: Value = serde_json::from_str(&tested.text().await.unwrap()).unwrap();
    tested["testResult"]["integrationId"] = json!(id);
    tested["testResult"].take()
}

/// Stops a server, which must exit cleanly (its log says why not).
#[track_caller]
fn stop(server: Server) {
    let logs = server.logs.clone();
    assert!(server.terminate(), "the server did not stop cleanly: {:?}", logs.lock().unwrap());
}

/// Writes a secret file below `dir`.
fn secret_file(dir: &std::path::Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_can_take_another_tenants_secret_or_the_platforms() {
    // Issue 29's attack, as a tenant admin would make it: integrations of tenant `evil` whose
    // AuthRefs name tenant `acme`'s secrets and the platform's registry password, pointed at a
    // server `evil` controls.
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    secret_file(&secrets, "acme/integrations/harbor/acme-robot", "acme-robot-token-5d1e9c\n");
    secret_file(&secrets, "evil/integrations/http-probe/mine", "evil-own-token-77aa21");
    secret_file(&secrets, ".platform/platform/registry/password", "platform-registry-password-0c3b");
    let config = "[secrets]\ndir = \"secrets\"\n[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n\
                  [[plugins.registries]]\nhost = \"registry.example:5000\"\nusername = \"ci-bot\"\n\
                  password-ref = \"ref://platform/registry/password\"\n";
    std::fs::write(dir.path().join("stella.toml"), config).unwrap();
    let env = [
        ("STELLA_CONFIG", "stella.toml"),
        ("STELLA_HEALTH_ENABLED", "false"),
        ("STELLA_SECRET__ACME__INTEGRATIONS__GITHUB__TOKEN", "acme-github-token-19f0"),
    ];
    let server = Server::start(dir.path(), &env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let evil = token_for(dir.path(), "evil", "integrations.admin");
    let acme = token_for(dir.path(), "acme", "integrations.admin");
    let attacker = Listener::start();

    let stolen = [
        "ref://integrations/harbor/acme-robot",
        "ref://integrations/github/token",
        "ref://platform/registry/password",
        // One that exists nowhere: what the others must look like.
        "ref://integrations/harbor/nothing-here",
    ];
    let mut answers = vec![];
    for (i, auth_ref) in stolen.iter().enumerate() {
        let result = activate_probe(&http, &server.base, &evil, &format!("steal-{i}"), &attacker.url, auth_ref).await;
        assert_eq!(result["result"]["success"], false, "{result}");
        assert_eq!(result["result"]["failure"], "misconfigured", "{result}");
        let message = result["result"].to_string().replace(auth_ref, "<ref>");
        assert!(message.contains(r#"NotFound(\"<ref>\")"#), "{message}");
        answers.push(message);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "another tenant's secret answers otherwise: {answers:#?}");
    assert!(attacker.heads().is_empty(), "the attacker's server was contacted: {:?}", attacker.heads());

    // Each tenant's own secrets do resolve, each in its own namespace.
    let own =
        activate_probe(&http, &server.base, &evil, "own", &attacker.url, "ref://integrations/http-probe/mine").await;
    assert_eq!(own["result"]["success"], true, "{own}");
    let acme_server = Listener::start();
    for (name, auth_ref) in [("robot", stolen[0]), ("github", stolen[1])] {
        let result = activate_probe(&http, &server.base, &acme, name, &acme_server.url, auth_ref).await;
        assert_eq!(result["result"]["success"], true, "{result}");
    }
    assert_eq!(attacker.authorizations(), ["Bearer evil-own-token-77aa21"]);
    assert_eq!(acme_server.authorizations(), ["Bearer acme-robot-token-5d1e9c", "Bearer acme-github-token-19f0"]);
    let logs = server.logs.lock().unwrap().join("\n");
    for value in ["acme-robot-token", "acme-github-token", "platform-registry-password", "evil-own-token"] {
        assert!(!logs.contains(value), "{value} is in the service's log");
    }
    assert!(server.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_tenant_installation_upgrades_with_one_line_and_is_warned_when_shared() {
    let dir = tempfile::tempdir().unwrap();
    // Secrets laid out as before tenants: a file, and a variable.
    secret_file(&dir.path().join("secrets"), "integrations/http-probe/agent", "legacy-agent-token-42\n");
    let config = "[secrets]\ndir = \"secrets\"\n[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n";
    std::fs::write(dir.path().join("stella.toml"), config).unwrap();
    let mut env = vec![
        ("STELLA_CONFIG", "stella.toml"),
        ("STELLA_HEALTH_ENABLED", "false"),
        ("STELLA_SECRET__INTEGRATIONS__HTTP_PROBE__AGENT_ENV", "legacy-env-token-43"),
    ];
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let agent = Listener::start();
    let demo = token_for(dir.path(), "demo", "integrations.admin");

    // Upgraded without the line: no tenant reads them, and the service says so at start.
    let server = Server::start(dir.path(), &env);
    let result =
        activate_probe(&http, &server.base, &demo, "before", &agent.url, "ref://integrations/http-probe/agent").await;
    assert_eq!(result["result"]["failure"], "misconfigured", "{result}");
    let logs = server.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("secrets.legacy-tenant") && logs.contains("STELLA_SECRET__INTEGRATIONS__HTTP_PROBE__AGENT_ENV"),
        "{logs}"
    );
    stop(server);
    assert!(agent.heads().is_empty());

    // One line: the tenant keeps the old layout.
    env.push(("STELLA_SECRETS_LEGACY_TENANT", "demo"));
    let server = Server::start(dir.path(), &env);
    for (name, auth_ref) in
        [("file", "ref://integrations/http-probe/agent"), ("variable", "ref://integrations/http-probe/agent-env")]
    {
        let result = activate_probe(&http, &server.base, &demo, name, &agent.url, auth_ref).await;
        assert_eq!(result["result"]["success"], true, "{result}");
    }
    assert_eq!(agent.authorizations(), ["Bearer legacy-agent-token-42", "Bearer legacy-env-token-43"]);
    assert!(!server.logs.lock().unwrap().join("\n").contains("other tenants have integrations"));
    // Another tenant does not get the mapped tenant's secrets.
    let other = token_for(dir.path(), "other", "integrations.admin");
    let result =
        activate_probe(&http, &server.base, &other, "other", &agent.url, "ref://integrations/http-probe/agent").await;
    assert_eq!(result["result"]["failure"], "misconfigured", "{result}");
    assert_eq!(agent.authorizations().len(), 2);
    stop(server);
    // With a second tenant in the store, the mapping is named as meant for one tenant only.
    let server = Server::start(dir.path(), &env);
    let logs = server.logs.lock().unwrap().join("\n");
    assert!(logs.contains("other tenants have integrations"), "{logs}");
    stop(server);

    // A registry password left where it was read before tenants is refused while a tenant is
    // mapped to that layout: that tenant could resolve it.
    let config = format!(
        "{config}[[plugins.registries]]\nhost = \"registry.example:5000\"\nusername = \"ci-bot\"\npassword-ref = \"ref://platform/registry/password\"\n"
    );
    std::fs::write(dir.path().join("stella.toml"), config).unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .env("STELLA_LISTEN", "127.0.0.1:0")
        .env("STELLA_SECRET__PLATFORM__REGISTRY__PASSWORD", "registry-password-0c3b")
        .env("STELLA_PLATFORM_SECRET__PLATFORM__REGISTRY__PASSWORD", "registry-password-0c3b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tenant `demo` (secrets.legacy-tenant) can resolve it"), "{stderr}");
    assert!(!stderr.contains("registry-password-0c3b"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_credential_does_not_follow_a_changed_base_url() {
    let dir = tempfile::tempdir().unwrap();
    let (own, elsewhere) = (Listener::start(), Listener::start());
    let secrets = dir.path().join("secrets");
    secret_file(&secrets, "acme/integrations/http-probe/agent", "bound-agent-token-81");
    secret_file(&secrets, "acme/integrations/http-probe/agent.origins", &format!("# the agent only\n{}\n", own.url));
    secret_file(&secrets, "acme/integrations/http-probe/loose", "unbound-agent-token-82");
    let config =
        "[secrets]\ndir = \"secrets\"\nrequire-binding = true\n[sandbox.network]\nallow = [\"127.0.0.1/32\"]\n";
    std::fs::write(dir.path().join("stella.toml"), config).unwrap();
    let server = Server::start(dir.path(), &[("STELLA_CONFIG", "stella.toml"), ("STELLA_HEALTH_ENABLED", "false")]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let acme = token_for(dir.path(), "acme", "integrations.admin");
    let auditor = token_for(dir.path(), "acme", "integrations.audit");

    let result =
        activate_probe(&http, &server.base, &acme, "agent", &own.url, "ref://integrations/http-probe/agent").await;
    assert_eq!(result["result"]["success"], true, "{result}");
    assert_eq!(own.authorizations(), ["Bearer bound-agent-token-81"]);

    // The base URL changes to another server: the credential is refused there, and says why.
    let id = result["integrationId"].as_str().unwrap();
    let body = json!({"name": "agent", "type": "host", "provider": "http-probe", "baseUrl": elsewhere.url,
                      "authRef": "ref://integrations/http-probe/agent"});
    let put = http
        .put(format!("{}/api/v1/integrations/{id}", server.base))
        .bearer_auth(&acme)
        .header("content-type", "application/json")
        .header("if-match", "*")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let tested =
        http.post(format!("{}/api/v1/integrations/{id}/test", server.base)).bearer_auth(&acme).send().await.unwrap();
    let tested: Value = serde_json::from_str(&tested.text().await.unwrap()).unwrap();
    assert_eq!(tested["testResult"]["result"]["success"], false, "{tested}");
    assert!(elsewhere.heads().is_empty(), "{:?}", elsewhere.heads());
    let denials = &tested["testResult"]["record"]["denials"];
    assert_eq!(denials[0]["kind"], "secret-binding", "{denials}");
    assert!(denials[0]["reason"].as_str().unwrap().contains(&format!("bound to {}", own.url)), "{denials}");
    // The security team finds it in the ledger and in the tenant's events.
    let page = http
        .get(format!("{}/api/v1/invocations?denialKind=secret-binding", server.base))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    let page: Value = serde_json::from_str(&page.text().await.unwrap()).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let events = http.get(format!("{}/api/v1/events?after=0", server.base)).bearer_auth(&acme).send().await.unwrap();
    let events = events.text().await.unwrap();
    assert!(events.contains("invocation.denied"), "{events}");

    // With bindings required, a secret without one is applied nowhere.
    let result =
        activate_probe(&http, &server.base, &acme, "loose", &own.url, "ref://integrations/http-probe/loose").await;
    assert_eq!(result["result"]["success"], false, "{result}");
    assert_eq!(result["record"]["denials"][0]["kind"], "secret-binding", "{result}");
    assert_eq!(own.authorizations().len(), 1);
    assert!(server.terminate());
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `size` (`4m`) owned by `owner` (a user name; root when `None`). `None` where this
    /// process may not mount (not root, no CAP_SYS_ADMIN), except under `CI=true` (root there),
    /// where the test fails.
    fn mount(size: &str, owner: Option<&str>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut options = format!("size={size},mode=0700");
        if let Some(user) = owner {
            let id = |flag: &str| {
                let out = Command::new("id").args([flag, user]).output().unwrap();
                String::from_utf8(out.stdout).unwrap().trim().to_string()
            };
            options.push_str(&format!(",uid={},gid={}", id("-u"), id("-g")));
        }
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .output()
            .map_or_else(
                |e| Err(e.to_string()),
                |o| if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).to_string()) },
            );
        match mounted {
            Ok(()) => Some(Self { dir }),
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("cannot mount a tmpfs ({e}); skipping the full-disk test (it runs as root)");
                None
            }
            Err(e) => panic!("CI=true runs as root and must mount a tmpfs: {e}"),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Takes every byte left with a file of its own; [`SmallDisk::free`] gives them back.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while filler.write_all(&chunk).is_ok() {}
        // The last bytes a chunk did not fit in.
        while filler.write_all(&[0u8; 512]).is_ok() {}
        while filler.write_all(&[0u8]).is_ok() {}
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// What the service answered while its database's disk filled up and was freed again: the names
/// of the integrations it acknowledged (201).
async fn fill_and_free(server: &Server, admin: &str, disk: &SmallDisk) -> BTreeSet<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let create = |n: usize| {
        let body = json!({"name": format!("i-{n:05}"), "type": "registry", "provider": "in-memory",
                          "description": "x".repeat(2000), "tags": ["disk"]});
        http.post(format!("{}/api/v1/integrations", server.base))
            .bearer_auth(admin)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let ready = || async { http.get(format!("{}/readyz", server.base)).send().await.unwrap().status().as_u16() };
    let mut acknowledged = BTreeSet::new();
    let mut n = 0;
    for _ in 0..3 {
        n += 1;
        assert_eq!(create(n).await.unwrap().status().as_u16(), 201);
        acknowledged.insert(format!("i-{n:05}"));
    }

    disk.fill();
    let refused = loop {
        n += 1;
        assert!(n < 2000, "the database kept writing on a full disk");
        let response = create(n).await.unwrap();
        match response.status().as_u16() {
            201 => {
                acknowledged.insert(format!("i-{n:05}"));
            }
            _ => break response,
        }
    };
    // A full disk is an outage, said as one: 503, retry later; never 500.
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "10");
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("/unavailable"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("storage is full"), "{problem}");
    assert_eq!(ready().await, 503, "/readyz reports a database that cannot write");
    for _ in 0..3 {
        n += 1;
        assert_eq!(create(n).await.unwrap().status().as_u16(), 503, "still full: still 503");
    }
    let listed = http.get(format!("{}/api/v1/integrations?limit=5", server.base)).bearer_auth(admin).send().await;
    assert_eq!(listed.unwrap().status().as_u16(), 200, "reads go on while the disk is full");

    // Space is back: writes resume on their own, without a restart.
    disk.free();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        n += 1;
        let status = create(n).await.unwrap().status().as_u16();
        if status == 201 {
            acknowledged.insert(format!("i-{n:05}"));
            break;
        }
        assert_eq!(status, 503, "a write after the disk was freed");
        assert!(Instant::now() < deadline, "writes did not resume within 30 s of the disk being freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        n += 1;
        assert_eq!(create(n).await.unwrap().status().as_u16(), 201, "every connection writes again");
        acknowledged.insert(format!("i-{n:05}"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready().await != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    acknowledged
}

/// Every integration's name, as the API lists them.
async fn names(base: &str, token: &str) -> BTreeSet<String> {
    let http = reqwest::Client::new();
    let page: Value = http
        .get(format!("{base}/api/v1/integrations?limit=500&tag=disk"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["nextCursor"].is_null(), "one page holds them all");
    page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

/// On SQLite: a full disk answers 503 (not 500 until a restart, as it did while a connection whose
/// rollback failed stayed in the pool), `/readyz` says so, writes resume by themselves once space
/// is back, and exactly what was acknowledged is kept, across a restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_is_an_outage_that_ends_by_itself() {
    let Some(disk) = SmallDisk::mount("4m", None) else { return };
    let dir = tempfile::tempdir().unwrap();
    let admin = token(dir.path(), "integrations.admin");
    let database = format!("sqlite://{}/catalog.db", disk.path().display());
    let env = [("DATABASE_URL", database.as_str()), ("STELLA_HEALTH_ENABLED", "false")];
    let server = Server::start(dir.path(), &env);
    let acknowledged = fill_and_free(&server, &admin, &disk).await;
    assert_eq!(names(&server.base, &admin).await, acknowledged, "exactly what was acknowledged is kept");
    assert!(server.terminate());
    let server = Server::start(dir.path(), &env);
    assert_eq!(names(&server.base, &admin).await, acknowledged, "and still after a restart");
    let out = Command::new(BIN).args(["audit", "verify", "--database-url", &database]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(server.terminate());
}

/// A PostgreSQL database in a tablespace of its own on a small tmpfs. Dropped in this order,
/// however the test ends: the filler, the database, the tablespace, and only then the tmpfs. A
/// tablespace unmounted under a running server would leave its checkpointer failing on every
/// checkpoint (and with it every later `CREATE DATABASE` of this machine), so should the drop
/// fail, the tmpfs stays mounted.
struct DatabaseOnSmallDisk {
    disk: Option<SmallDisk>,
    name: String,
    url: String,
}

impl DatabaseOnSmallDisk {
    /// `None` where no tmpfs can be mounted or no server reached, except under `CI=true`.
    async fn create(size: &str) -> Option<Self> {
        use sqlx::Connection;
        let disk = SmallDisk::mount(size, Some("postgres"))?;
        let mut admin = match sqlx::PgConnection::connect(&common::postgres_admin_url()).await {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("PostgreSQL is not reachable ({e}); skipping");
                return None;
            }
            Err(e) => panic!("CI=true requires PostgreSQL: {e}"),
        };
        let name = format!("stella_disk_{}", uuid::Uuid::new_v4().simple());
        let url = match common::postgres_admin_url().rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("STELLA_TEST_POSTGRES must end with a database name"),
        };
        let this = Self { disk: Some(disk), name, url };
        let location = this.disk().path().display().to_string();
        for sql in [
            format!("CREATE TABLESPACE {} LOCATION '{location}'", this.name),
            format!("CREATE DATABASE {0} TABLESPACE {0}", this.name),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
        }
        Some(this)
    }

    fn disk(&self) -> &SmallDisk {
        self.disk.as_ref().expect("mounted until dropped")
    }

    /// Drops the database and the tablespace (on a thread of its own: this runs in `Drop`, maybe
    /// inside the test's runtime).
    fn drop_database(&self) -> Result<(), String> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                use sqlx::Connection;
                let mut admin =
                    sqlx::PgConnection::connect(&common::postgres_admin_url()).await.map_err(|e| e.to_string())?;
                for sql in [
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    format!("DROP TABLESPACE IF EXISTS {name}"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .join()
        .map_err(|_| "the drop panicked".to_string())?
    }
}

impl Drop for DatabaseOnSmallDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.disk().path().join("filler"));
        if let Err(e) = self.drop_database() {
            eprintln!("the database {} could not be dropped ({e}): its tmpfs stays mounted", self.name);
            std::mem::forget(self.disk.take());
        }
    }
}

/// On PostgreSQL, with the test database in a tablespace on a small tmpfs: a full disk
/// (`disk_full`, SQLSTATE 53100) answers 503, `/readyz` says so, and writes resume by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_postgres_is_an_outage_that_ends_by_itself() {
    // The database is a copy of template1 (about 8 MB): room for it, and some.
    let Some(database) = DatabaseOnSmallDisk::create("32m").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let admin = token(dir.path(), "integrations.admin");
    let env = [("DATABASE_URL", database.url.as_str()), ("STELLA_HEALTH_ENABLED", "false")];
    let server = Server::start(dir.path(), &env);
    // Alone while the tablespace fills: no other test creates or drops a database meanwhile.
    let ddl = common::DATABASE_DDL.write().await;
    let acknowledged = fill_and_free(&server, &admin, database.disk()).await;
    drop(ddl);
    assert_eq!(names(&server.base, &admin).await, acknowledged, "exactly what was acknowledged is kept");
    assert!(server.terminate());
}
