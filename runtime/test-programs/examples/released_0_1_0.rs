//! A connector built against the world exactly as released in 0.1.0 (`wit-0.1.0/`), without the
//! SDK: it must still load and run on this host, which serves a later 0.1.x release.
//! Fetches `<base-url>/ok` with the integration's secret as a bearer token.

// wit-bindgen's generated exports are unsafe glue (the SDK allows it the same way).
#![allow(unsafe_code)]

mod bindings {
    wit_bindgen::generate!({ path: "wit-0.1.0", world: "integration-connector", generate_all });
}

use bindings::stellaops::integrations::types::{
    ConnectionConfig, Facts, FailureClass, HealthResult, HealthStatus, TestResult,
};
use bindings::stellaops::integrations::{http, secrets};

struct Released;

fn no_facts() -> Facts {
    Facts { provider_version: None, credential_expires_at: None, rate_limit_remaining: None }
}

impl bindings::Guest for Released {
    fn test_connection(config: ConnectionConfig) -> TestResult {
        let fail = |message: String| TestResult {
            success: false,
            message,
            failure: Some(FailureClass::Internal),
            steps: Vec::new(),
            facts: no_facts(),
        };
        let secret = match config.auth_ref.as_deref().map(secrets::resolve) {
            Some(Ok(s)) => s,
            other => return fail(format!("resolve: {:?}", other.map(|r| r.err()))),
        };
        let request = http::Request {
            method: http::Method::Get,
            url: format!("{}/ok", config.base_url.unwrap_or_default().trim_end_matches('/')),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        };
        let credential = http::Credential { secret: &secret, placement: http::CredentialPlacement::Bearer };
        match http::send(&request, Some(&credential)) {
            Ok(r) if r.status == 200 => TestResult {
                success: true,
                message: format!("0.1.0 component: status {}", r.status),
                failure: None,
                steps: Vec::new(),
                facts: no_facts(),
            },
            Ok(r) => fail(format!("status {}", r.status)),
            Err(e) => fail(format!("{e:?}")),
        }
    }

    fn check_health(_config: ConnectionConfig) -> HealthResult {
        HealthResult {
            status: HealthStatus::Healthy,
            message: "0.1.0 component".into(),
            failure: None,
            steps: Vec::new(),
            facts: no_facts(),
        }
    }
}

bindings::export!(Released with_types_in bindings);

// The manifest, as `register_connector!` would embed it.
#[allow(unsafe_code)]
#[unsafe(link_section = "stellaops-connector-manifest")]
#[used]
static MANIFEST: [u8; include_bytes!("../connector.toml").len()] = *include_bytes!("../connector.toml");
