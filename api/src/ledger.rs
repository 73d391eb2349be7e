//! The invocation ledger: the record of every connector invocation (connection tests and health
//! checks), kept for `ledger.retention-days`, with the facts a security team filters on drawn out
//! of it once, when it is written: which origins the connector contacted, which AuthRefs it used,
//! what it was denied, whether it revealed a secret or signed a JWT.
//!
//! A record is bounded by the sandbox (`max-record-bytes` plus its envelope), so an entry is too:
//! its lists come from the record's own, deduplicated.
//!
//! # Levels
//!
//! An entry is kept at one of two [`Level`]s, chosen by what happened. `full`: the whole record,
//! every host call; every connection test, every check that failed, was refused anything,
//! revealed a secret, signed a JWT, changed its integration's health, or did anything other than
//! what the integration's previous check did (another component, other origins or AuthRefs,
//! another outcome). `summary`: the healthy checks that repeat the previous one exactly (the same
//! [`LedgerEntry::digest`]) are folded, per integration and hour, into one entry: how many, the
//! first and last, their latencies, and the full entry whose record they repeat (`repeats`). The
//! first check of each day (UTC) is kept in full, so a summary and the entry it repeats are of one
//! day: retention keeps and drops them together. The operator can keep every check in full, or a
//! sample (`[ledger]`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stella_runtime::FailureClass;
use stella_runtime::record::{Interface, InvocationRecord, origin_of};
use time::OffsetDateTime;
use uuid::Uuid;

pub use stella_runtime::record::Operation;

/// How much of an invocation the ledger keeps (see the module's documentation).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The whole record.
    #[default]
    Full,
    /// Healthy checks that repeated their integration's previous check, folded per hour.
    Summary,
}

impl Level {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Summary => "summary",
        }
    }

    /// The level named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Full, Self::Summary].into_iter().find(|l| l.as_str() == s)
    }
}

/// Healthy checks of one integration in one hour that repeated its previous check: what a
/// `summary` entry keeps of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerSummary {
    /// How many checks were folded.
    pub checks: u64,
    /// When the first and the last of them started.
    #[serde(with = "time::serde::rfc3339")]
    pub first_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_at: OffsetDateTime,
    /// How long they took.
    pub latency: crate::metrics::LatencyHistogram,
    /// The digest they share with the entry they repeat ([`LedgerEntry::digest`]).
    pub digest: String,
    /// The full entry whose record they repeat: the same component, origins, AuthRefs and outcome.
    pub repeats: Uuid,
}

impl LedgerSummary {
    /// Adds `other`'s checks (of the same integration, hour and digest) to these.
    pub fn merge(&mut self, other: &LedgerSummary) {
        self.checks += other.checks;
        self.first_at = self.first_at.min(other.first_at);
        self.last_at = self.last_at.max(other.last_at);
        self.latency.merge(&other.latency);
    }
}

/// One invocation in the ledger.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// The invocation's id (the record's); a summary's own id, the same for every check folded
    /// into it.
    pub invocation_id: Uuid,
    /// `full`, or `summary` (healthy checks that repeated the previous one, folded per hour:
    /// `at` is the hour's start, and `summary` says how many and when).
    #[serde(default)]
    pub level: Level,
    /// The tenant of the integration.
    pub tenant_id: String,
    /// The integration (it may since have been deleted: the ledger keeps what happened).
    pub integration_id: Uuid,
    /// The connector's provider id.
    pub provider: String,
    /// sha256 of the component that ran.
    pub sha256: String,
    /// Which export ran.
    pub operation: Operation,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// `success`, or the failure class of a failed test; the outcome of a health check
    /// (`healthy`, `degraded`, `unhealthy`).
    pub outcome: String,
    /// The failure class of a failed test or of a check that was not healthy (`auth`,
    /// `network`, …); absent when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<String>,
    /// Whether the sandbox refused the connector anything.
    pub denied: bool,
    /// The kinds of what was refused (`origin`, `address`, `secret-ref`, `reveal`, …), sorted.
    pub denial_kinds: Vec<String>,
    /// The origins (`scheme://host:port`) the connector sent requests to and got an answer or a
    /// network error from, sorted: not those the sandbox refused.
    pub origins: Vec<String>,
    /// The AuthRefs whose secrets it resolved or had applied, sorted.
    pub auth_refs: Vec<String>,
    /// Whether it contacted an origin other than its integration's base URL's (one its manifest
    /// declares in `permissions.hosts`: the sandbox refuses any other).
    pub outside_base_url: bool,
    /// Whether it read a secret's value (`reveal`).
    pub revealed_secret: bool,
    /// Whether it signed a JWT with a secret.
    pub signed_jwt: bool,
    /// Whether a request of its carried the value of a secret it held outside the credential the
    /// host wrote (in the URL, a header of its own or the body): refused for a connector that may
    /// not reveal secrets, allowed for one that may (see the record's `secretInRequest`).
    #[serde(default)]
    pub secret_in_request: bool,
    /// The sandbox's record of the invocation; absent in lists (read one invocation for it) and
    /// in summaries (read the entry they repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub record: Option<InvocationRecord>,
    /// A summary's checks: how many, when, how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<LedgerSummary>,
}

/// Which invocations a list shows: each field set narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationFilter {
    /// Of this provider.
    pub provider: Option<String>,
    /// Of the component with this sha256.
    pub sha256: Option<String>,
    /// Of this integration.
    pub integration_id: Option<Uuid>,
    /// Of this operation.
    pub operation: Option<Operation>,
    /// With this outcome (`success`, a failure class, a health outcome).
    pub outcome: Option<String>,
    /// With this failure class (a failed test's or a check's).
    pub failure_class: Option<String>,
    /// Denied something (`true`) or nothing (`false`).
    pub denied: Option<bool>,
    /// Contacted an origin other than its integration's base URL's (`true`) or not (`false`).
    pub outside_base_url: Option<bool>,
    /// Read a secret's value (`true`) or not (`false`).
    pub revealed_secret: Option<bool>,
    /// Sent a secret's value outside the credential the host wrote (`true`) or not (`false`).
    pub secret_in_request: Option<bool>,
    /// Denied something of this kind.
    pub denial_kind: Option<String>,
    /// That contacted this origin (`scheme://host[:port]`).
    pub origin: Option<String>,
    /// That used this AuthRef.
    pub auth_ref: Option<String>,
    /// Started at or after this (Unix ms).
    pub since_ms: Option<i64>,
    /// Started before this (Unix ms).
    pub until_ms: Option<i64>,
    /// Kept at this level.
    pub level: Option<Level>,
}

/// Where a newest-first page starts: after this (start, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationPosition {
    /// The start (Unix ms) of the last entry of the previous page.
    pub at_ms: i64,
    /// Its id.
    pub id: Uuid,
}

impl InvocationPosition {
    /// The position of a listed entry.
    pub fn of(entry: &LedgerEntry) -> Self {
        Self { at_ms: crate::domain::unix_ms(entry.at), id: entry.invocation_id }
    }
}

impl LedgerEntry {
    /// The entry of `record`, an invocation for the integration `integration_id` of `tenant_id`
    /// (whose base URL is `base_url`, if it has one) that ended with `outcome` and, when it
    /// failed, `failure_class`.
    pub fn of(
        tenant_id: &str,
        integration_id: Uuid,
        base_url: Option<&str>,
        record: InvocationRecord,
        outcome: &str,
        failure_class: Option<FailureClass>,
    ) -> Self {
        let mut auth_refs = BTreeSet::new();
        let (mut revealed_secret, mut signed_jwt) = (false, false);
        let secret_in_request =
            record.secret_in_request || record.host_calls.iter().any(|c| !c.secret_in_request.is_empty());
        // The record's summary lists every origin contacted, whatever its budget dropped and
        // whatever a string the connector had the host hold redacted from its targets.
        let mut origins: BTreeSet<String> = record.origins.iter().cloned().collect();
        for call in &record.host_calls {
            let refused = call.denied();
            match call.interface {
                Interface::Http if !refused => {
                    if let Some(origin) = origin_of(&call.target) {
                        origins.insert(origin);
                    }
                }
                Interface::Secrets if !refused => {
                    auth_refs.insert(call.target.clone());
                    revealed_secret |= call.revealed_a_secret();
                }
                Interface::Crypto => signed_jwt |= call.signed_a_jwt(),
                _ => {}
            }
            if let Some(auth_ref) = call.auth_ref.as_ref().filter(|r| r.starts_with("ref://")) {
                auth_refs.insert(auth_ref.clone());
            }
        }
        let base_origin = base_url.and_then(origin_of);
        let denial_kinds: BTreeSet<String> = record
            .denials
            .iter()
            .filter_map(|d| serde_json::to_value(d.kind).ok()?.as_str().map(str::to_string))
            .collect();
        Self {
            invocation_id: record.invocation_id,
            tenant_id: tenant_id.to_string(),
            integration_id,
            provider: record.provider.clone(),
            sha256: record.sha256.clone(),
            operation: record.operation,
            at: record.started_at,
            duration_ms: record.duration_ms,
            outcome: outcome.to_string(),
            failure_class: failure_class.map(|f| f.as_str().to_string()),
            denied: !record.denials.is_empty() || record.dropped.denials > 0,
            denial_kinds: denial_kinds.into_iter().collect(),
            outside_base_url: origins.iter().any(|o| Some(o) != base_origin.as_ref()),
            origins: origins.into_iter().collect(),
            auth_refs: auth_refs.into_iter().collect(),
            revealed_secret,
            signed_jwt,
            secret_in_request,
            record: Some(record),
            level: Level::Full,
            summary: None,
        }
    }

    /// What this invocation did, in 32 hex digits: a hash of its component, operation, outcome,
    /// failure class, origins, AuthRefs, denials and uses of secrets. Two checks with the same
    /// digest did the same thing; only the times and the latency differ.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let shape = serde_json::json!([
            self.sha256,
            self.operation.as_str(),
            self.outcome,
            self.failure_class,
            self.origins,
            self.auth_refs,
            self.denial_kinds,
            [self.denied, self.outside_base_url, self.revealed_secret, self.signed_jwt, self.secret_in_request],
        ]);
        let hash = sha2::Sha256::digest(shape.to_string().as_bytes());
        hash[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This check folded into the summary of its integration's hour, as a repeat of the full entry
    /// `repeats`; `digest` is this entry's ([`LedgerEntry::digest`], which the caller compared
    /// already). The summary's id is the same for every check of that integration, hour and digest
    /// (a UUID made of their hash), so folding is a write by id.
    pub fn folded(&self, repeats: Uuid, digest: String) -> LedgerEntry {
        use sha2::Digest as _;
        let hour_ms = crate::domain::unix_ms(self.at).div_euclid(crate::domain::HOUR_MS) * crate::domain::HOUR_MS;
        let key = format!("{}.{hour_ms}.{digest}", self.integration_id);
        let hash = sha2::Sha256::digest(key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash[..16]);
        let mut latency = crate::metrics::LatencyHistogram::default();
        latency.record(self.duration_ms);
        LedgerEntry {
            invocation_id: uuid::Builder::from_custom_bytes(bytes).into_uuid(),
            level: Level::Summary,
            at: crate::domain::from_unix_ms(hour_ms),
            record: None,
            summary: Some(LedgerSummary { checks: 1, first_at: self.at, last_at: self.at, latency, digest, repeats }),
            ..self.clone()
        }
    }
}

/// How a connector used the network and its permissions, from its ledger entries: the evidence
/// a reviewer needs before approving a narrower manifest.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EgressReport {
    /// The provider.
    pub provider: String,
    /// From when its invocations were read.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// How many invocations were read.
    pub invocations: u64,
    /// Whether there were more than the report reads (the newest are read first).
    pub truncated: bool,
    /// The origins its invocations contacted, most used first.
    pub contacted: Vec<OriginUse>,
    /// The origins its manifest declares (`permissions.hosts`) that no invocation contacted.
    pub declared_unused: Vec<String>,
    /// Permissions its manifest declares that no invocation exercised (`reveal-secrets`,
    /// `sign-jwt`).
    pub permissions_unused: Vec<String>,
    /// What it was denied, by kind.
    pub denials: Vec<DenialCount>,
}

/// An origin a connector contacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginUse {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// How many invocations contacted it.
    pub invocations: u64,
    /// When it was last contacted.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Whether the manifest's `permissions.hosts` names it (else it is an integration's base URL).
    pub declared: bool,
}

/// How many invocations were denied something of a kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DenialCount {
    /// The kind (`origin`, `address`, `secret-ref`, …).
    pub kind: String,
    /// How many invocations were denied one.
    pub invocations: u64,
}

impl EgressReport {
    /// The report of `provider`'s `entries` since `since`, against its manifest's permissions
    /// (`None`: no connector of the provider is loaded, so nothing is declared).
    pub fn of<'a>(
        provider: &str,
        since: OffsetDateTime,
        permissions: Option<&stella_runtime::manifest::Permissions>,
        entries: impl IntoIterator<Item = &'a LedgerEntry>,
        truncated: bool,
    ) -> Self {
        use std::collections::BTreeMap;
        let declared: Vec<(String, Option<stella_runtime::egress::OriginPattern>)> = permissions
            .map(|p| {
                p.hosts.iter().map(|h| (h.clone(), stella_runtime::egress::OriginPattern::parse(h).ok())).collect()
            })
            .unwrap_or_default();
        let mut contacted: BTreeMap<String, (u64, OffsetDateTime)> = BTreeMap::new();
        let mut denials: BTreeMap<String, u64> = BTreeMap::new();
        let (mut invocations, mut revealed, mut signed) = (0, false, false);
        for e in entries {
            // A summary stands for its checks, the last of which was seen last.
            let (count, last) = e.summary.as_ref().map_or((1, e.at), |s| (s.checks, s.last_at));
            invocations += count;
            revealed |= e.revealed_secret;
            signed |= e.signed_jwt;
            for origin in &e.origins {
                let seen = contacted.entry(origin.clone()).or_insert((0, last));
                seen.0 += count;
                seen.1 = seen.1.max(last);
            }
            for kind in &e.denial_kinds {
                *denials.entry(kind.clone()).or_default() += count;
            }
        }
        let matches = |pattern: &Option<stella_runtime::egress::OriginPattern>, origin: &str| match (
            pattern,
            url::Url::parse(origin),
        ) {
            (Some(p), Ok(url)) => p.matches(&url),
            _ => false,
        };
        let mut contacted: Vec<OriginUse> = contacted
            .into_iter()
            .map(|(origin, (count, last_seen))| OriginUse {
                declared: declared.iter().any(|(_, p)| matches(p, &origin)),
                origin,
                invocations: count,
                last_seen,
            })
            .collect();
        contacted.sort_by(|a, b| b.invocations.cmp(&a.invocations).then_with(|| a.origin.cmp(&b.origin)));
        let declared_unused = declared
            .iter()
            .filter(|(_, p)| !contacted.iter().any(|c| matches(p, &c.origin)))
            .map(|(h, _)| h.clone())
            .collect();
        let mut permissions_unused = Vec::new();
        if permissions.is_some_and(|p| p.reveal_secrets) && !revealed {
            permissions_unused.push("reveal-secrets".to_string());
        }
        if permissions.is_some_and(|p| p.sign_jwt) && !signed {
            permissions_unused.push("sign-jwt".to_string());
        }
        Self {
            provider: provider.to_string(),
            since,
            invocations,
            truncated,
            contacted,
            declared_unused,
            permissions_unused,
            denials: denials.into_iter().map(|(kind, invocations)| DenialCount { kind, invocations }).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host_calls: serde_json::Value, denials: serde_json::Value) -> InvocationRecord {
        serde_json::from_value(serde_json::json!({
            "invocationId": "6f1c7a34-2d8e-4b1a-9c3e-0d5f8a7b6c21",
            "operation": "test-connection",
            "provider": "harbor",
            "connectorVersion": "1.0.0",
            "sha256": "ab",
            "startedAt": "2026-11-30T07:00:00.123Z",
            "durationMs": 12,
            "memoryPeakBytes": 0,
            "limits": {},
            "hostCalls": host_calls,
            "denials": denials,
            "logs": [],
        }))
        .unwrap()
    }

    fn call(
        interface: &str,
        operation: &str,
        target: &str,
        error: Option<&str>,
        auth_ref: Option<&str>,
    ) -> serde_json::Value {
        serde_json::json!({"interface": interface, "operation": operation, "target": target, "error": error,
                           "bytesSent": 0, "bytesReceived": 0, "durationMs": 1, "authRef": auth_ref})
    }

    #[test]
    fn the_entry_lists_what_was_contacted_used_and_denied() {
        let calls = serde_json::json!([
            call(
                "http",
                "GET",
                "https://harbor.example.com/api/v2.0/ping",
                None,
                Some("ref://integrations/harbor/robot")
            ),
            call("http", "GET", "https://harbor.example.com:443/api/v2.0/projects", None, None),
            call("http", "GET", "http://mirror.example.com:8080/x", Some("timeout"), None),
            call("http", "GET", "https://evil.example.net/steal", Some("denied"), None),
            call("secrets", "resolve", "ref://integrations/harbor/robot", None, None),
            call("secrets", "reveal", "ref://integrations/harbor/robot", None, None),
            call("secrets", "resolve", "ref://other/tenant/key", Some("denied"), None),
        ]);
        let denials = serde_json::json!([
            {"kind": "origin", "target": "https://evil.example.net/steal", "reason": "not allowed"},
            {"kind": "secret-ref", "target": "ref://other/tenant/key", "reason": "not its own"},
            {"kind": "origin", "target": "https://evil2.example.net/", "reason": "not allowed"},
        ]);
        let id = Uuid::new_v4();
        let e = LedgerEntry::of(
            "acme",
            id,
            Some("https://harbor.example.com/"),
            record(calls.clone(), denials.clone()),
            "auth",
            Some(FailureClass::Auth),
        );
        assert_eq!((e.outcome.as_str(), e.failure_class.as_deref()), ("auth", Some("auth")));
        assert_eq!(e.origins, ["http://mirror.example.com:8080", "https://harbor.example.com"]);
        assert!(e.outside_base_url, "the mirror is not its base URL's origin");
        assert_eq!(e.auth_refs, ["ref://integrations/harbor/robot"]);
        assert_eq!(e.denial_kinds, ["origin", "secret-ref"]);
        assert!(e.denied && e.revealed_secret && !e.signed_jwt);
        assert_eq!((e.operation, e.integration_id, e.tenant_id.as_str()), (Operation::TestConnection, id, "acme"));
        assert_eq!(e.at.millisecond(), 123);
        // Every origin it contacted is its base URL's (its default port or not): it stayed inside.
        let inside = serde_json::json!([
            call("http", "GET", "https://harbor.example.com/api/v2.0/ping", None, None),
            call("http", "GET", "https://harbor.example.com:443/api/v2.0/projects", None, None),
            call("http", "GET", "https://evil.example.net/steal", Some("denied"), None),
        ]);
        let e = LedgerEntry::of(
            "acme",
            id,
            Some("https://harbor.example.com:443"),
            record(inside, denials),
            "success",
            None,
        );
        assert!(!e.outside_base_url && e.denied, "a refused request contacted nothing");
    }

    #[test]
    fn the_egress_report_sets_what_was_used_against_what_was_declared() {
        let calls = serde_json::json!([
            call("http", "GET", "https://api.github.com/app", None, None),
            call("http", "GET", "https://ghe.example.com/api/v3/x", None, None),
            call("http", "GET", "https://evil.example.net/steal", Some("denied"), None),
        ]);
        let denials = serde_json::json!([{"kind": "origin", "target": "https://evil.example.net/", "reason": "no"}]);
        let first = LedgerEntry::of(
            "acme",
            Uuid::new_v4(),
            Some("https://ghe.example.com"),
            record(calls, denials),
            "success",
            None,
        );
        let mut second = first.clone();
        second.origins = vec!["https://api.github.com".into()];
        second.denial_kinds = vec![];
        second.at += time::Duration::minutes(5);
        let permissions: stella_runtime::manifest::Permissions = toml::from_str(
            "hosts = [\"https://api.github.com\", \"https://*.githubusercontent.com\"]\nsign-jwt = true\nreveal-secrets = false",
        )
        .unwrap();
        let report = EgressReport::of("github-app", first.at, Some(&permissions), [&first, &second], false);
        assert_eq!(report.invocations, 2);
        let contacted: Vec<(&str, u64, bool)> =
            report.contacted.iter().map(|c| (c.origin.as_str(), c.invocations, c.declared)).collect();
        assert_eq!(contacted, [("https://api.github.com", 2, true), ("https://ghe.example.com", 1, false)]);
        assert_eq!(report.contacted[0].last_seen, second.at);
        assert_eq!(report.declared_unused, ["https://*.githubusercontent.com"]);
        assert_eq!(report.permissions_unused, ["sign-jwt"]);
        assert_eq!(report.denials, [DenialCount { kind: "origin".into(), invocations: 1 }]);

        // A summary stands for the checks folded into it, seen last at the last of them.
        let mut repeats = second.folded(second.invocation_id, second.digest());
        let mut more = second.folded(second.invocation_id, second.digest());
        more.summary.as_mut().unwrap().last_at = second.at + time::Duration::minutes(20);
        repeats.summary.as_mut().unwrap().merge(more.summary.as_ref().unwrap());
        assert_eq!((repeats.level, repeats.summary.as_ref().unwrap().checks), (Level::Summary, 2));
        assert_eq!(repeats.invocation_id, more.invocation_id, "one summary per integration, hour and digest");
        let report = EgressReport::of("github-app", first.at, Some(&permissions), [&first, &second, &repeats], false);
        assert_eq!((report.invocations, report.contacted[0].invocations), (4, 4));
        assert_eq!(report.contacted[0].last_seen, second.at + time::Duration::minutes(20));
        let other = LedgerEntry { origins: vec!["https://other.example.com".into()], ..second.clone() };
        assert_ne!(other.digest(), second.digest(), "another origin, another digest");
        assert_ne!(other.folded(second.invocation_id, other.digest()).invocation_id, repeats.invocation_id);
    }

    #[test]
    fn a_record_that_is_not_one_is_refused_when_read() {
        let mut json = serde_json::to_value(record(serde_json::json!([]), serde_json::json!([]))).unwrap();
        json["operation"] = "something-else".into();
        assert!(serde_json::from_value::<InvocationRecord>(json.clone()).is_err());
        json["operation"] = "check-health".into();
        json["invocationId"] = "not-a-uuid".into();
        assert!(serde_json::from_value::<InvocationRecord>(json).is_err());
        let clean = LedgerEntry::of(
            "acme",
            Uuid::new_v4(),
            None,
            record(serde_json::json!([]), serde_json::json!([])),
            "success",
            None,
        );
        assert!(!clean.denied);
    }
}
