//! The `artifact` connector: direct SBOM and VEX submission. Documents are pushed to the
//! platform, so there is no remote end to reach; the test proves that the integration's
//! configuration is usable and makes no network call at all (its manifest grants no host, and an
//! artifact integration has no base URL).
//!
//! Configuration keys:
//! - `formats`: the accepted document formats, a non-empty list of `cyclonedx-json`,
//!   `cyclonedx-xml`, `spdx-json`, `spdx-tag-value`, `openvex`, `csaf-vex` (default: all);
//! - `maxSizeBytes`: the largest document accepted, 1 KiB to 1 GiB (default 50 MiB).

use serde::Deserialize;
use serde_json::Value;
use stella_connector_sdk::prelude::*;

struct Artifact;

const FORMATS: &[&str] = &["cyclonedx-json", "cyclonedx-xml", "spdx-json", "spdx-tag-value", "openvex", "csaf-vex"];
const DEFAULT_MAX_SIZE: u64 = 50 << 20;

/// The configuration keys, checked by [`check`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    formats: Option<Value>,
    max_size_bytes: Option<Value>,
}

fn check(config: &ConnectionConfig, report: &mut Report) -> Result<(), String> {
    // No request is sent, so there is nothing for `caCertificates` to apply to.
    let c: Keys = config.settings_without_ca()?;
    if let Some(url) = &config.base_url {
        return Err(format!("artifact submission has no remote end: drop the base URL `{url}`"));
    }
    let formats: Vec<&str> = match &c.formats {
        None => FORMATS.to_vec(),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|f| f.as_str().filter(|f| FORMATS.contains(f)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("`formats` may list only {}", FORMATS.join(", ")))?,
        Some(_) => return Err(format!("`formats` must be a non-empty list of {}", FORMATS.join(", "))),
    };
    report.pass("formats", format!("accepts {}", formats.join(", ")));
    let size = match &c.max_size_bytes {
        None => DEFAULT_MAX_SIZE,
        Some(v) => v
            .as_u64()
            .filter(|s| (1 << 10..=1 << 30).contains(s))
            .ok_or("`maxSizeBytes` must be a whole number from 1024 (1 KiB) to 1073741824 (1 GiB)")?,
    };
    report.pass("size-limit", format!("documents up to {size} bytes"));
    Ok(())
}

impl Connector for Artifact {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        match check(config, &mut report) {
            Ok(()) => report.success("the artifact submission settings are valid (no network check is needed)"),
            Err(why) => report.fail(FailureClass::Misconfigured, "configuration", why),
        }
    }
}

register_connector!(Artifact);
