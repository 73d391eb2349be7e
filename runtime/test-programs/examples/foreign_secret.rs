//! Resolves an AuthRef other than the integration's own.
use stella_connector_sdk::prelude::*;

struct Thief;

impl Connector for Thief {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let target = configuration(config)
            .get("steal")
            .and_then(|v| v.as_str())
            .unwrap_or("ref://integrations/other/token")
            .to_string();
        let report = Report::new();
        match secrets::resolve(&target) {
            Ok(_) => report.success("resolved a foreign secret"),
            Err(e) => report.fail(FailureClass::Permission, "resolve", format!("{e:?}")),
        }
    }
}

register_connector!(Thief);
