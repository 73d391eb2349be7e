//! The `artifact` connector's tests: its component, as the service runs it, against stand-ins that
//! answer as the provider documents (the harness is `connectors/builtin/tests/connectors.rs`).

use super::*;

#[tokio::test]
async fn the_settings_are_checked_without_any_network_call() {
    let h = Harness::new("artifact");
    let mut config = h.integration(
        IntegrationType::Artifact,
        "https://unused.example",
        json!({"formats": ["cyclonedx-json", "openvex"], "maxSizeBytes": 10485760}),
    );
    config.base_url = None;
    config.auth_ref = None;
    let invocation = h.sandbox.test_connection(&h.connector, &config).await;
    assert!(invocation.result.success, "{:?}", invocation.result);
    assert_eq!(step_names(&invocation.result), ["formats", "size-limit"]);
    assert!(
        invocation.record.host_calls.iter().all(|c| c.interface != stella_runtime::record::Interface::Http),
        "{:?}",
        invocation.record.host_calls
    );
    assert_eq!(h.health(&config).await.status, HealthStatus::Healthy);

    config.configuration = json!({});
    assert!(h.test(&config).await.success, "the defaults are valid");
    for bad in [
        json!({"formats": []}),
        json!({"formats": ["pdf"]}),
        json!({"maxSizeBytes": 10}),
        json!({"maxSizeBytes": 1u64 << 40}),
        json!({"format": ["spdx-json"]}),
    ] {
        config.configuration = bad.clone();
        assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");
        assert_eq!(h.health(&config).await.status, HealthStatus::Unhealthy, "{bad}");
    }
    config.configuration = json!({});
    config.base_url = Some("https://sbom.example.com".into());
    assert_failed(&h.test(&config).await, FailureClass::Misconfigured, "configuration");
}
