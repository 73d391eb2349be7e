//! Write a StellaOps Integration Catalog connector.
//!
//! A connector is a WebAssembly component. With this crate it is a type that implements
//! [`Connector`], registered with [`register_connector!`], built for `wasm32-wasip2`:
//!
//! ```no_run
//! use stella_connector_sdk::prelude::*;
//!
//! struct Ping;
//!
//! impl Connector for Ping {
//!     fn test_connection(config: &ConnectionConfig) -> TestResult {
//!         let mut report = Report::new();
//!         let base = match config.base() {
//!             Ok(base) => base,
//!             Err(why) => return report.fail(FailureClass::Misconfigured, "base-url", why),
//!         };
//!         match http::get(&base.join("/ping")).send() {
//!             Ok(r) if r.status == 200 => report.pass("reachable", "the server answered 200"),
//!             Ok(r) => return report.fail(FailureClass::ProviderDown, "reachable", format!("status {}", r.status)),
//!             Err(e) => return report.fail(e.failure_class(), "reachable", e.to_string()),
//!         }
//!         report.success("connected")
//!     }
//! }
//!
//! // In the connector crate (it embeds that crate's `connector.toml`):
//! // register_connector!(Ping);
//! ```
//!
//! `register_connector!` also embeds the manifest `connector.toml` (next to the crate's
//! `Cargo.toml`) into the component, where the host and `stella-integrations connector inspect`
//! read it.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "integration-connector",
        pub_export_macro: true,
        export_macro_name: "__export_integration_connector",
        default_bindings_module: "stella_connector_sdk::wit",
        generate_all,
    });
}

mod base;
pub mod checks;
pub mod http;
mod report;
mod settings;
pub mod url;

pub use base::{BaseUrl, Cloud, Credential, Deployment, path_of_segments, path_segment};
pub use report::{Failed, HostError, Report, StepResult};
pub use settings::{CA_CERTIFICATES, keep_null};
pub use wit::stellaops::integrations::types::{
    CheckStep, ConnectionConfig, Facts, FailureClass, HealthResult, HealthStatus, IntegrationType, TestResult,
};

/// Credentials as opaque handles held by the host.
pub mod secrets {
    pub use crate::wit::stellaops::integrations::secrets::{Secret, SecretError, resolve};

    /// Resolves the integration's own AuthRef, if it has one.
    pub fn integration_secret(config: &crate::ConnectionConfig) -> Option<Result<Secret, SecretError>> {
        config.auth_ref.as_deref().map(resolve)
    }

    /// The integration's secret for a step of a test: `None` without an AuthRef; a secret that
    /// does not resolve fails `step` with the error's class and message.
    pub fn step_secret(config: &crate::ConnectionConfig, step: &'static str) -> Result<Option<Secret>, crate::Failed> {
        use crate::StepResult;
        integration_secret(config).transpose().step_at(step, "the AuthRef")
    }

    impl SecretError {
        /// The failure class a connector should report for this error: nothing stored behind
        /// the AuthRef, or a malformed one, is the integration's configuration; a refusal is a
        /// permission; an unreadable store is internal.
        pub fn failure_class(&self) -> crate::FailureClass {
            match self {
                SecretError::NotFound(_) | SecretError::InvalidRef(_) => crate::FailureClass::Misconfigured,
                SecretError::Denied(_) => crate::FailureClass::Permission,
                SecretError::Unavailable(_) => crate::FailureClass::Internal,
            }
        }
    }
}

/// JWT signing with a key held by the host.
pub mod crypto {
    pub use crate::wit::stellaops::integrations::crypto::{CryptoError, JwtAlgorithm, sign_jwt};
}

/// Log lines the operator sees in the invocation record.
pub mod log {
    use crate::wit::stellaops::integrations::log::{Level, log};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// What most connectors need, in one `use`.
pub mod prelude {
    pub use crate::{
        BaseUrl, CheckStep, Cloud, ConnectionConfig, Connector, Credential, Deployment, Facts, Failed, FailureClass,
        HealthResult, HealthStatus, HostError, IntegrationType, Report, StepResult, TestResult, checks, configuration,
        http, log, path_of_segments, path_segment, register_connector, secrets,
    };
}

/// A connector: how to test an integration, and how to check its health.
pub trait Connector {
    /// Proves, step by step, that the integration works.
    fn test_connection(config: &ConnectionConfig) -> TestResult;

    /// A cheap health check. By default it runs [`Connector::test_connection`] and judges the
    /// result with [`checks::health_from_test`]: a failure is unhealthy, a rate limit, an
    /// exhausted rate limit or a credential expiring within 7 days is degraded.
    fn check_health(config: &ConnectionConfig) -> HealthResult {
        checks::health_from_test(Self::test_connection(config))
    }
}

/// The integration's configuration as JSON (an empty object when it does not parse, which the
/// host never sends). [`ConnectionConfig::settings`] reads it as a typed value and refuses unknown
/// keys.
pub fn configuration(config: &ConnectionConfig) -> serde_json::Value {
    serde_json::from_str(&config.configuration).unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

/// Registers a [`Connector`] as the component's exports and embeds its manifest.
///
/// `register_connector!(MyConnector)` embeds `connector.toml` from next to the crate's
/// `Cargo.toml`; `register_connector!(MyConnector, "path/to/manifest.toml")` embeds another file
/// (relative to the crate's directory).
#[macro_export]
macro_rules! register_connector {
    ($connector:ty) => {
        $crate::register_connector!($connector, "connector.toml");
    };
    ($connector:ty, $manifest:literal) => {
        #[doc(hidden)]
        pub struct __StellaConnectorExports;

        impl $crate::wit::Guest for __StellaConnectorExports {
            fn test_connection(config: $crate::ConnectionConfig) -> $crate::TestResult {
                <$connector as $crate::Connector>::test_connection(&config)
            }
            fn check_health(config: $crate::ConnectionConfig) -> $crate::HealthResult {
                <$connector as $crate::Connector>::check_health(&config)
            }
        }

        $crate::wit::__export_integration_connector!(__StellaConnectorExports with_types_in $crate::wit);

        // The manifest travels in a custom section that the host reads without running code.
        #[allow(unsafe_code)]
        #[unsafe(link_section = "stellaops-connector-manifest")]
        #[used]
        static __STELLA_CONNECTOR_MANIFEST: [u8; include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $manifest)).len()] =
            *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $manifest));
    };
}
