//! Fetches `<base-url>/flood`, an endless response body.
use stella_connector_sdk::prelude::*;
use test_programs::{fetch, result_of};

struct Flooded;

impl Connector for Flooded {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        result_of(fetch(config, "/flood"))
    }
}

register_connector!(Flooded);
