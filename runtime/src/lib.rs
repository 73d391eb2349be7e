//! The StellaOps connector sandbox.
//!
//! Connectors are WebAssembly components targeting the world
//! `stellaops:integrations/integration-connector@0.1.x` (see `wit/`). This crate loads them,
//! validates what they import and what their manifest declares, compiles them once, and runs
//! `test-connection` / `check-health` in a fresh instance per call, under per-invocation limits
//! and a deny-by-default egress policy. Each call returns its result and an
//! [`InvocationRecord`](record::InvocationRecord) of everything the connector did.
//!
//! It knows nothing about tenants, databases or HTTP routes.
//!
//! ```no_run
//! # async fn demo(wasm: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use stella_runtime::{Sandbox, SandboxConfig, ConnectorSource, ConnectionConfig, IntegrationType};
//! use stella_runtime::secrets::{SecretNamespace, SecretStore};
//!
//! // Secrets from the STELLA_SECRET__… variables (see `secrets`).
//! let sandbox = Sandbox::new(SandboxConfig::default(), Arc::new(SecretStore::new(None, true)))?;
//! let connector = sandbox.load(wasm, ConnectorSource::BuiltIn)?;
//! let config = ConnectionConfig {
//!     integration_id: "6f1c…".into(),
//!     name: "harbor-prod".into(),
//!     integration_type: IntegrationType::Registry,
//!     provider: "harbor".into(),
//!     base_url: Some("https://harbor.example.com".into()),
//!     auth_ref: Some("ref://integrations/harbor/robot".into()),
//!     // Resolved as STELLA_SECRET__ACME__INTEGRATIONS__HARBOR__ROBOT, and nowhere else.
//!     secret_namespace: SecretNamespace::Owner("acme".into()),
//!     configuration: serde_json::json!({}),
//!     environment: Some("prod".into()),
//! };
//! let run = sandbox.test_connection(&connector, &config).await;
//! println!("{} ({} host calls)", run.result.message, run.record.host_calls.len());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod bindings;
mod cache;
pub mod catalog;
pub mod conformance;
pub mod egress;
mod host;
pub mod http_client;
pub mod inspect;
pub mod limits;
pub mod manifest;
pub mod outcome;
pub mod record;
mod sandbox;
pub mod secrets;
pub mod signature;

pub use cache::CacheDirError;
pub use catalog::{ConnectorCatalog, LoadFailure};
pub use manifest::{IntegrationType, Manifest};
pub use outcome::{CheckStep, Facts, FailureClass, HealthOutcome, HealthStatus, Invocation, TestOutcome};
pub use sandbox::{
    CA_CERTIFICATES_KEY, Compilation, ConnectionConfig, ConnectorSource, DEFAULT_PLUGINS_DIR, LoadError,
    LoadedConnector, MAX_TRANSFER_BYTES, Sandbox, SandboxConfig, SetupError,
};
