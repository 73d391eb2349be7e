//! Logs without end.
use stella_connector_sdk::prelude::*;

struct Flood;

impl Connector for Flood {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        let line = "x".repeat(1000);
        loop {
            log::info(&line);
        }
    }
}

register_connector!(Flood);
