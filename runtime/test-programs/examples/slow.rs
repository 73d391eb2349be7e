//! Fetches `<base-url>/slow`; used by the concurrency test.
use stella_connector_sdk::prelude::*;
use test_programs::{fetch, result_of};

struct Slow;

impl Connector for Slow {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        result_of(fetch(config, "/slow"))
    }
}

register_connector!(Slow);
