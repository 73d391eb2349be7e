//! The `stella-integrations` commands, run as a user runs them: the real binary.

use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella-integrations"))
        .args(args)
        .env_remove("STELLA_LOG")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn inspect_prints_identity_permissions_and_imports() {
    let o = cli(&["connector", "inspect", "builtin:in-memory"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for expected in
        ["provider:        in-memory", "sha256:", "reveal-secrets: false", "wasi:cli/stdout@0.2", "test-connection"]
    {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // Type imports of the world are not capabilities and are not listed.
    assert!(!text.contains("  connection-config\n"), "{text}");
    assert!(!text.contains("credential before proof"), "{text}");
    // A connector that must send its credential before it can prove the server says why.
    let o = cli(&["connector", "inspect", "builtin:gitlab"]);
    assert!(stdout(&o).contains("credential before proof: GitLab answers nothing"), "{}", stdout(&o));

    let o = cli(&["connector", "inspect", "builtin:in-memory", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["manifest"]["connector"]["provider"], "in-memory");
    assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn test_exit_codes_say_what_happened() {
    let ok = cli(&["connector", "test", "builtin:in-memory", "--config", r#"{"providerVersion":"1.0"}"#]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("test: success"));

    let failed =
        cli(&["connector", "test", "builtin:in-memory", "--config", r#"{"outcome":"failure","failureClass":"auth"}"#]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stdout(&failed).contains("failure: auth"), "{}", stdout(&failed));

    let health =
        cli(&["connector", "test", "builtin:in-memory", "--health", "--json", "--config", r#"{"health":"degraded"}"#]);
    assert_eq!(health.status.code(), Some(0), "degraded is not a failure");
    let json: serde_json::Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(json["result"]["status"], "degraded");
    assert!(json["record"]["invocationId"].is_string());

    for bad in [
        vec!["connector", "test", "/nonexistent.wasm"],
        vec!["connector", "test", "builtin:nope"],
        vec!["connector", "test", "builtin:in-memory", "--config", "[1]"],
        vec!["connector", "test", "builtin:in-memory", "--config", "{"],
        vec!["connector", "test", "builtin:in-memory", "--secret", "novalue"],
        vec!["connector", "test", "builtin:in-memory", "--secret", "ref://../x/y=v"],
        vec!["connector", "test", "builtin:in-memory", "--type", "mainframe"],
        vec!["connector", "test", "builtin:in-memory", "--allow-network", "not-a-cidr"],
        vec!["connector", "frobnicate"],
        vec!["connector", "test", "builtin:in-memory", "--sandbox-config", "/nonexistent.toml"],
    ] {
        let o = cli(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}{}", stdout(&o), stderr(&o));
        assert!(!stderr(&o).is_empty(), "{bad:?} must say why");
    }
}

#[test]
fn secret_location_prints_where_serve_reads_a_tenants_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stella.toml");
    std::fs::write(&config, "[secrets]\ndir = \"/run/secrets/stella\"\nlegacy-tenant = \"demo\"\n").unwrap();
    let config = config.to_str().unwrap();
    let where_ = |args: &[&str]| {
        let mut all = vec!["secret-location", "--config", config];
        all.extend(args);
        cli(&all)
    };
    let o = where_(&["--tenant", "acme", "ref://integrations/harbor/acme.robot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for expected in [
        "ref://integrations/harbor/acme.robot of tenant acme",
        "file             /run/secrets/stella/acme/integrations/harbor/acme.robot\n",
        "binding file     /run/secrets/stella/acme/integrations/harbor/acme.robot.origins\n",
        "variable         STELLA_SECRET__ACME__INTEGRATIONS__HARBOR___61636D652E726F626F74\n",
        "binding variable STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__HARBOR___61636D652E726F626F74\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The legacy tenant reads the layout from before tenants; the platform's secrets live apart.
    let o = where_(&["--tenant", "demo", "ref://integrations/harbor/robot"]);
    assert!(stdout(&o).contains("variable         STELLA_SECRET__INTEGRATIONS__HARBOR__ROBOT\n"), "{}", stdout(&o));
    let o = where_(&["--platform", "ref://platform/registry/password"]);
    let text = stdout(&o);
    assert!(text.contains("/run/secrets/stella/.platform/platform/registry/password") && !text.contains("binding"));
    for bad in [
        vec!["--tenant", "", "ref://a/b/c"],
        vec!["--tenant", "acme", "ref://a/b"],
        vec!["--tenant", "acme", "ref://a/b/c.origins"],
        vec!["ref://a/b/c"],
    ] {
        let o = where_(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stdout(&o));
        assert!(!stderr(&o).is_empty(), "{bad:?} must say why");
    }
}

fn package(input: &std::path::Path, manifest: &std::path::Path, output: &std::path::Path) -> Output {
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    cli(&["connector", "package", &path(input), "--manifest", &path(manifest), "-o", &path(output)])
}

#[test]
fn package_embeds_a_manifest_that_inspect_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wasm");
    std::fs::write(&input, stella_builtin_connectors::BUILTINS[0].1).unwrap();
    let manifest = dir.path().join("connector.toml");
    std::fs::write(
        &manifest,
        "[connector]\nprovider = \"renamed\"\ntypes = [\"feed\"]\nversion = \"3.1.4\"\n\n[permissions]\nhosts = [\"https://*.mirror.example\"]\n",
    )
    .unwrap();
    let output = dir.path().join("out.wasm");
    let o = package(&input, &manifest, &output);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(&["connector", "inspect", output.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(text.contains("provider:        renamed") && text.contains("https://*.mirror.example"), "{text}");
    let run = cli(&["connector", "test", output.to_str().unwrap(), "--type", "feed"]);
    assert_eq!(run.status.code(), Some(0), "{}{}", stdout(&run), stderr(&run));

    // A bad manifest is refused and nothing is written.
    std::fs::write(&manifest, "[connector]\nprovider = \"Bad Name\"\ntypes = [\"feed\"]\nversion = \"1.0.0\"\n")
        .unwrap();
    let refused = dir.path().join("refused.wasm");
    let o = package(&input, &manifest, &refused);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("provider"), "{}", stderr(&o));
    assert!(!refused.exists());
}

#[test]
fn the_operator_configuration_sets_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.toml");
    std::fs::write(&config, "[limits]\ndeadline-ms = 200\n").unwrap();
    let o = cli(&[
        "connector",
        "test",
        "builtin:in-memory",
        "--json",
        "--sandbox-config",
        config.to_str().unwrap(),
        "--config",
        r#"{"latencyMs": 2000}"#,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["result"]["failure"], "timeout");
    assert_eq!(json["record"]["limits"]["deadlineMs"], 200);
    assert_eq!(json["record"]["trap"]["limit"], "deadline");

    std::fs::write(&config, "[limits]\ndeadline = 200\n").unwrap();
    let o = cli(&["connector", "test", "builtin:in-memory", "--sandbox-config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown field"), "{}", stderr(&o));
}

#[test]
fn migrate_then_audit_verify_finds_intact_and_tampered_chains() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/catalog.db");
    let url = format!("sqlite://{}", db.display());
    let o = cli(&["migrate", "--database-url", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(db.exists());

    // Write a real chain through the store, then break it behind the store's back.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use stella_integrations::audit::{AuditAction, AuditDraft};
        use stella_integrations::store::{Change, RowWrite, open};
        let store = open(&url).await.unwrap();
        let mut row: stella_integrations::domain::Integration = serde_json::from_value(serde_json::json!({
            "integrationId": uuid::Uuid::new_v4(), "tenantId": "acme", "name": "n", "description": null,
            "type": "registry", "provider": "in-memory", "baseUrl": null, "authRef": null, "configuration": {},
            "environment": null, "tags": [], "ownerId": null, "status": "draft", "paused": false,
            "pauseReason": null, "pauseTicket": null, "lastTestedAt": null, "lastTestSuccess": null,
            "consecutiveFailures": 0, "createdAt": "2026-11-27T10:00:00Z", "createdBy": "alice",
            "modifiedAt": null, "modifiedBy": null, "version": 1
        }))
        .unwrap();
        for (n, action) in [AuditAction::Created, AuditAction::Updated].into_iter().enumerate() {
            let write = if n == 0 {
                RowWrite::Insert(Box::new(row.clone()))
            } else {
                row.version = 2;
                RowWrite::Update { row: Box::new(row.clone()), expected_version: 1 }
            };
            let audit = AuditDraft {
                action,
                actor: "alice".into(),
                at: stella_integrations::domain::now(),
                details: serde_json::json!({}),
            };
            let change = Change {
                tenant_id: "acme".into(),
                integration_id: row.integration_id,
                write,
                audit,
                events: vec![],
                test_result: None,
                idempotency: None,
                reschedule_health: false,
                invocations: vec![],
            };
            store.apply(change).await.unwrap();
        }
    });
    let o = cli(&["audit", "verify", "--database-url", &url]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 tenants and the platform's admissions, 2 audit entries checked"), "{}", stdout(&o));

    runtime.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in ["DROP TRIGGER audit_entries_no_update", "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1"]
        {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    });
    let o = cli(&["audit", "verify", "--database-url", &url, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["breaks"][0]["seq"], 1);
    assert_eq!(report["breaks"][0]["problem"], "its content does not match its hash");

    let o = cli(&["migrate", "--database-url", "mysql://root@localhost/x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use sqlite://<path> or postgres://"), "{}", stderr(&o));
}

#[test]
fn connector_verify_checks_a_cosign_format_signature_offline() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("connector.wasm");
    std::fs::write(&file, b"\0asm\x0d\0\x01\0 a component").unwrap();
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(d).output().expect("openssl runs (make test-tools)");
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "cosign.key"]);
    openssl(&["ec", "-in", "cosign.key", "-pubout", "-out", "cosign.pub"]);
    openssl(&["dgst", "-sha256", "-sign", "cosign.key", "-out", "sig.der", "connector.wasm"]);
    let signature = base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("sig.der")).unwrap());
    // Next to the file, as `connector.wasm.sig`: found without --signature.
    std::fs::write(d.join("connector.wasm.sig"), &signature).unwrap();
    let (file, key) = (file.to_str().unwrap(), d.join("cosign.pub"));
    let key = key.to_str().unwrap();

    let o = cli(&["connector", "verify", file, "--key", key]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("signature verified (ECDSA P-256 key"), "{}", stdout(&o));

    std::fs::write(d.join("connector.wasm"), b"\0asm\x0d\0\x01\0 another component").unwrap();
    let o = cli(&["connector", "verify", file, "--key", key]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("does NOT verify"), "{}", stdout(&o));

    // A key of no format this service reads, and a missing signature, are errors (2) that say so.
    let o = cli(&["connector", "verify", file, "--key", file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a public key this service reads"), "{}", stderr(&o));
    let o = cli(&["connector", "verify", file, "--key", key, "--signature", "/nonexistent.sig"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read /nonexistent.sig"), "{}", stderr(&o));
}

#[test]
fn connector_sign_writes_what_openssl_and_connector_verify_accept() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("connector.wasm"), b"\0asm\x0d\0\x01\0 a component to sign").unwrap();
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(d).output().expect("openssl runs (make test-tools)");
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    // The key as the README makes it.
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "vendor.key"]);
    openssl(&["pkey", "-in", "vendor.key", "-pubout", "-out", "vendor.pub"]);
    let path = |name: &str| d.join(name).to_str().unwrap().to_string();

    let o = cli(&["connector", "sign", &path("connector.wasm"), "--key", &path("vendor.key")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("signed with cosign:"), "{}", stdout(&o));
    let o = cli(&["connector", "verify", &path("connector.wasm"), "--key", &path("vendor.pub")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // openssl reads the signature as cosign does: base64 of a DER ECDSA signature over SHA-256.
    let sig = std::fs::read_to_string(d.join("connector.wasm.sig")).unwrap();
    std::fs::write(d.join("sig.der"), base64::engine::general_purpose::STANDARD.decode(sig.trim()).unwrap()).unwrap();
    openssl(&["dgst", "-sha256", "-verify", "vendor.pub", "-signature", "sig.der", "connector.wasm"]);

    // A key in another form is refused with what to use instead.
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sec1.key"]);
    let o = cli(&["connector", "sign", &path("connector.wasm"), "--key", &path("sec1.key")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("PKCS#8"), "{}", stderr(&o));
}

/// How each built-in connector is run by the conformance kit: its integration type and a
/// configuration a real integration would carry (the kit supplies base URL and credential).
fn conformance_setup(provider: &str) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    match provider {
        "http-probe" => (
            "host",
            json!({"path": "/api/status", "expectedStatus": [200],
                   "expectedHeader": {"name": "x-stella-agent", "value": "runtime-agent"},
                   "jsonPointer": "/status", "expectedValue": "ok"}),
        ),
        "github-app" => ("scm", json!({"appId": 12345, "installationId": 777})),
        "harbor" | "oci-registry" => ("registry", json!({"username": "robot$ci"})),
        "jenkins" => ("ci", json!({"username": "ci-bot"})),
        "bitbucket" => ("scm", json!({"repository": "PROJ/repo"})),
        "feed-mirror" => ("feed", json!({})),
        "circleci" => ("ci", json!({})),
        _ => ("scm", json!({})),
    }
}

/// A throwaway RSA key (PKCS#1 PEM, as GitHub hands apps theirs), for a connector that signs
/// with its credential.
fn throwaway_rsa_key(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("throwaway-key.pem");
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("`openssl` is not installed: `make test` installs it");
    assert!(status.success());
    key
}

#[test]
fn every_built_in_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sandbox.toml");
    // A short deadline keeps the silent impostor's cases short; the cache spares recompiling.
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(&sandbox, format!("cache-dir = {:?}\n[limits]\ndeadline-ms = 4000\n", cache.display().to_string()))
        .unwrap();
    let key = throwaway_rsa_key(dir.path());
    let providers: Vec<&str> = stella_builtin_connectors::BUILTINS
        .iter()
        .map(|(p, _)| *p)
        // `in-memory` scripts its outcome without a network (the next test shows the kit catching
        // it); `artifact` integrations have no server to impersonate.
        .filter(|p| !["in-memory", "artifact"].contains(p))
        .collect();
    assert!(providers.len() >= 8, "{providers:?}");
    let runs: Vec<(&str, std::process::Child)> = providers
        .iter()
        .map(|provider| {
            let (kind, config) = conformance_setup(provider);
            let mut command = Command::new(env!("CARGO_BIN_EXE_stella-integrations"));
            command
                .args(["connector", "conformance", &format!("builtin:{provider}"), "--json", "--type", kind])
                .args(["--config", &config.to_string(), "--sandbox-config", sandbox.to_str().unwrap()])
                .env_remove("STELLA_LOG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if *provider == "github-app" {
                command.args(["--credential-file", key.to_str().unwrap()]);
            }
            (*provider, command.spawn().expect("the binary runs"))
        })
        .collect();
    for (provider, child) in runs {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{provider}: {}{}", stdout(&o), stderr(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["passed"], true, "{provider}: {report:#}");
        assert_eq!(report["cases"].as_array().unwrap().len(), 14, "{provider}");
        // Our own connectors meet the whole standard, not only the exit code's part of it.
        assert_eq!(
            (report["falseGreens"].as_u64(), report["misfits"].as_u64()),
            (Some(0), Some(0)),
            "{provider}: {report:#}"
        );
        assert_eq!(report["overdue"], 0, "{provider}: {report:#}");
        if report.get("credentialBeforeProof").is_none() {
            assert_eq!(report["credentialsSent"], 0, "{provider}: {report:#}");
        }
    }
}

#[test]
fn the_conformance_kit_catches_a_false_green_and_says_why_it_cannot_run() {
    // `in-memory` claims whatever its configuration scripts, without asking any server.
    let o = cli(&["connector", "conformance", "builtin:in-memory", "--type", "host", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["passed"].as_bool(), report["falseGreens"].as_u64()), (Some(false), Some(14)), "{report:#}");
    assert!(report["cases"].as_array().unwrap().iter().all(|c| c["requests"] == 0 && c["claimedSuccess"] == true));
    assert_eq!(report["untested"], true, "it asked for no request: {report:#}");

    let o = cli(&["connector", "conformance", "builtin:in-memory", "--type", "host"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("FALSE GREEN") && text.contains("FAILED: 14 false green(s)"), "{text}");
    assert!(text.contains("UNTESTED: the connector asked for no request"), "{text}");

    // A connector that stops at a configuration it refuses tests nothing, and does not pass.
    let o = cli(&["connector", "conformance", "builtin:jenkins", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["untested"].as_bool(), report["falseGreens"].as_u64()), (Some(true), Some(0)), "{report:#}");

    for (args, why) in [
        (vec!["builtin:artifact", "--type", "artifact"], "nothing to impersonate"),
        (vec!["builtin:gitea", "--type", "feed"], "does not serve"),
        (vec!["builtin:gitea", "--config", "[1]"], "JSON object"),
        (vec!["builtin:gitea", "--config", "{"], "not valid JSON"),
        (vec!["/nonexistent.wasm"], "cannot read"),
    ] {
        let o = cli(&[&["connector", "conformance"][..], &args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
}
