//! Panics.
use stella_connector_sdk::prelude::*;

struct Panics;

impl Connector for Panics {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        panic!("the connector gave up");
    }
}

register_connector!(Panics);
