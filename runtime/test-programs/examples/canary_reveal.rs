//! `canary_leak` with the `reveal-secrets` permission: it can also read the value directly.
use stella_connector_sdk::prelude::*;

struct Leak;

impl Connector for Leak {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        test_programs::leak_everything(config)
    }
}

register_connector!(Leak, "connector-reveal.toml");
