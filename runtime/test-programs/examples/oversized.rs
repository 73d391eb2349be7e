//! Passes the host more than it takes: results, requests, and lists of strings that all point at
//! the same bytes (so that a host copying them would allocate far more than the guest's memory).
//! `configuration.oversized` says which (see `CASES`); the sandbox tests run each.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;

use stella_connector_sdk::prelude::*;
use stella_connector_sdk::wit::stellaops::integrations::http as raw;
use test_programs::OVERSIZED_CASES;

struct Oversized;

/// `count` headers whose values all point at the same `len` bytes of guest memory.
fn aliased_headers(count: usize, len: usize) -> ManuallyDrop<Vec<raw::Header>> {
    let shared = ManuallyDrop::new("v".repeat(len));
    let name = ManuallyDrop::new(String::from("x-aliased"));
    let alias = |s: &String| {
        // The same buffer behind many `String`s: never dropped (they are in a `ManuallyDrop`),
        // so never freed twice. This is what a hostile guest does by hand in any language.
        ManuallyDrop::new(unsafe { String::from_raw_parts(s.as_ptr().cast_mut(), s.len(), s.capacity()) })
    };
    let headers = (0..count)
        .map(|_| raw::Header {
            name: ManuallyDrop::into_inner(alias(&name)),
            value: ManuallyDrop::into_inner(alias(&shared)),
        })
        .collect();
    ManuallyDrop::new(headers)
}

impl Connector for Oversized {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let base = config.base_url.clone().unwrap_or_default();
        let which = configuration(config).get("oversized").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let mut report = Report::new();
        let request = |url: String, headers: Vec<raw::Header>, body: Option<Vec<u8>>| raw::Request {
            method: raw::Method::Get,
            url,
            headers,
            body,
            timeout_ms: None,
        };
        let sent = match which.as_str() {
            "result-message" => return report.success("m".repeat(1 << 20)),
            "result-steps" => {
                for i in 0..2_000 {
                    report.pass(&format!("step-{i}-{}", "n".repeat(200)), "s".repeat(20));
                }
                return report.success("many steps");
            }
            "result-facts" => {
                report.facts.provider_version = Some("v".repeat(512 << 10));
                report.facts.credential_expires_at = Some("e".repeat(512 << 10));
                return report.success("large facts");
            }
            "result-huge" => return report.success("h".repeat(8 << 20)),
            "request-headers" => {
                let headers = (0..10_000).map(|i| raw::Header { name: format!("x-h{i}"), value: "v".into() }).collect();
                raw::send(&request(format!("{base}/ok"), headers, None), None)
            }
            "request-url" => raw::send(&request(format!("{base}/{}", "u".repeat(1 << 20)), vec![], None), None),
            "request-body" => raw::send(&request(format!("{base}/ok"), vec![], Some(vec![b'b'; 3 << 19])), None),
            "token-pointers" => {
                let pointers: Vec<String> = (0..1000).map(|i| format!("/p{i}")).collect();
                raw::send_for_token(&request(format!("{base}/token"), vec![], None), None, &pointers)
                    .map(|r| raw::Response { status: r.status, headers: r.headers, body: r.body })
            }
            "aliased-headers" => {
                let headers = aliased_headers(100_000, 1024);
                // Lowered as they are: 100,000 headers of 1 KiB each, in 2 MiB of guest memory.
                let r = request(format!("{base}/ok"), Vec::new(), None);
                let r = ManuallyDrop::new(raw::Request { headers: unsafe { std::ptr::read(&*headers) }, ..r });
                raw::send(&r, None)
            }
            "random-bytes" => {
                let bytes = wasip2::random::random::get_random_bytes(8 << 20);
                return report.success(format!("{} random bytes", bytes.len()));
            }
            other => {
                return report.fail(
                    FailureClass::Misconfigured,
                    "oversized",
                    format!("unknown case `{other}`; known: {}", OVERSIZED_CASES.join(", ")),
                );
            }
        };
        match sent {
            Ok(r) => report.fail(FailureClass::Internal, "sent", format!("the host sent it: status {}", r.status)),
            Err(e) => report.fail(e.failure_class(), "refused", e.to_string()),
        }
    }
}

register_connector!(Oversized, "connector-flood.toml");
