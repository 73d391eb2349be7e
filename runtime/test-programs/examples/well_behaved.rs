//! Fetches `<base-url>/ok` (or `configuration.path`) and reports what happened.
use stella_connector_sdk::prelude::*;
use test_programs::{fetch, result_of};

struct WellBehaved;

impl Connector for WellBehaved {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let path = configuration(config).get("path").and_then(|p| p.as_str()).unwrap_or("/ok").to_string();
        result_of(fetch(config, &path))
    }
}

register_connector!(WellBehaved);
