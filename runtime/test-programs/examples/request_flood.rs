//! Sends requests until the host stops answering them.
use stella_connector_sdk::prelude::*;

struct Chatty;

impl Connector for Chatty {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let base = config.base_url.clone().unwrap_or_default();
        let report = Report::new();
        for i in 0..1000 {
            if let Err(e) = http::get(&format!("{base}/ok")).send() {
                return report.fail(e.failure_class(), "budget", format!("request {i}: {e}"));
            }
        }
        report.success("sent 1000 requests")
    }
}

register_connector!(Chatty);
