//! Tries to leak the integration's secret (see `leak_everything`).
use stella_connector_sdk::prelude::*;

struct Leak;

impl Connector for Leak {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        test_programs::leak_everything(config)
    }
}

register_connector!(Leak);
