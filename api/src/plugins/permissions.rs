//! What a reviewer approves: a connector version's permission set, its digest, and its diff
//! against the version that serves meanwhile.
//!
//! The set is everything that widens what the code may do or reach: the integration types it
//! serves, the origins it may call, whether it may read secret values or sign JWTs, the limits it
//! asks for (each only lowers the operator's ceiling; absent means "up to the ceiling"), and the
//! interfaces it imports (a newer WIT minor adds some). Its digest is what `approve` must name, so
//! that what is approved is exactly what was reviewed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stella_runtime::limits::RequestedLimits;
use stella_runtime::{IntegrationType, Manifest};

/// A version's permissions, in a canonical order (hosts, types and imports sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionSet {
    /// The integration types it serves.
    pub types: Vec<IntegrationType>,
    /// Origins it may call besides an integration's base URL.
    pub hosts: Vec<String>,
    /// Whether it may read secret values.
    pub reveal_secrets: bool,
    /// Whether it may sign JWTs with a secret.
    pub sign_jwt: bool,
    /// The limits it asks for (absent: the operator's ceiling).
    pub limits: RequestedLimits,
    /// The interfaces it imports.
    pub imports: Vec<String>,
}

/// One requested limit that differs between two versions (`null`: the operator's ceiling).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitChange {
    /// The limit, as the manifest names it (`deadline-ms`).
    pub limit: String,
    /// What the active version asks for.
    pub from: Option<u64>,
    /// What this version asks for.
    pub to: Option<u64>,
    /// Whether this version may use more than the active one.
    pub raised: bool,
}

/// A switch turned on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Off before, on now.
    On,
    /// On before, off now.
    Off,
}

/// How a version's permissions differ from the active version's (empty lists: no change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionDiff {
    /// The version it is compared with (`built-in`, a version, or none: a new provider).
    pub against: Option<String>,
    /// Origins it may call that the active version may not.
    pub hosts_added: Vec<String>,
    /// Origins the active version may call and it may not.
    pub hosts_removed: Vec<String>,
    /// `reveal-secrets` turned on or off.
    pub reveal_secrets: Option<Switch>,
    /// `sign-jwt` turned on or off.
    pub sign_jwt: Option<Switch>,
    /// Requested limits that differ.
    pub limits: Vec<LimitChange>,
    /// Interfaces it imports that the active version does not.
    pub imports_added: Vec<String>,
    /// Interfaces the active version imports and it does not.
    pub imports_removed: Vec<String>,
    /// Integration types it serves that the active version does not.
    pub types_added: Vec<IntegrationType>,
    /// Integration types the active version serves and it does not.
    pub types_removed: Vec<IntegrationType>,
    /// Whether it may do nothing the active version may not (no host, switch, limit, import or
    /// type added). A new provider is never narrower.
    pub narrower_or_equal: bool,
}

impl PermissionSet {
    /// The permissions of a component: its manifest and its imports.
    pub fn of(manifest: &Manifest, imports: &[String]) -> Self {
        let sorted = |v: &mut Vec<String>| {
            v.sort();
            v.dedup();
        };
        let mut hosts = manifest.permissions.hosts.clone();
        sorted(&mut hosts);
        let mut imports = imports.to_vec();
        sorted(&mut imports);
        let mut types = manifest.connector.types.clone();
        types.sort();
        types.dedup();
        Self {
            types,
            hosts,
            reveal_secrets: manifest.permissions.reveal_secrets,
            sign_jwt: manifest.permissions.sign_jwt,
            limits: manifest.limits.clone(),
            imports,
        }
    }

    /// `sha256:<hex>` of the set's canonical JSON (fields in declaration order, lists sorted).
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a permission set serializes");
        format!("sha256:{}", hex::encode(Sha256::digest(&json)))
    }

    /// How this set differs from `active`'s (`against` names it); against nothing, everything
    /// is added.
    pub fn diff(&self, active: Option<(&str, &PermissionSet)>) -> PermissionDiff {
        let Some((against, old)) = active else {
            return PermissionDiff {
                hosts_added: self.hosts.clone(),
                reveal_secrets: self.reveal_secrets.then_some(Switch::On),
                sign_jwt: self.sign_jwt.then_some(Switch::On),
                limits: limit_changes(&RequestedLimits::default(), &self.limits),
                imports_added: self.imports.clone(),
                types_added: self.types.clone(),
                ..PermissionDiff::default()
            };
        };
        let switch = |was: bool, is: bool| match (was, is) {
            (false, true) => Some(Switch::On),
            (true, false) => Some(Switch::Off),
            _ => None,
        };
        let mut diff = PermissionDiff {
            against: Some(against.to_string()),
            hosts_added: minus(&self.hosts, &old.hosts),
            hosts_removed: minus(&old.hosts, &self.hosts),
            reveal_secrets: switch(old.reveal_secrets, self.reveal_secrets),
            sign_jwt: switch(old.sign_jwt, self.sign_jwt),
            limits: limit_changes(&old.limits, &self.limits),
            imports_added: minus(&self.imports, &old.imports),
            imports_removed: minus(&old.imports, &self.imports),
            types_added: minus(&self.types, &old.types),
            types_removed: minus(&old.types, &self.types),
            narrower_or_equal: false,
        };
        diff.narrower_or_equal = diff.hosts_added.is_empty()
            && diff.reveal_secrets != Some(Switch::On)
            && diff.sign_jwt != Some(Switch::On)
            && !diff.limits.iter().any(|l| l.raised)
            && diff.imports_added.is_empty()
            && diff.types_added.is_empty();
        diff
    }
}

/// The items of `a` not in `b` (both sorted), in order. A host pattern is compared as written:
/// `https://*.example.com` replacing `https://api.example.com` is an added host, which is what a
/// reviewer must see.
fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let b: BTreeSet<&T> = b.iter().collect();
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// The requested limits that differ, by their manifest names; absent counts as the ceiling, the
/// most a connector can get.
fn limit_changes(old: &RequestedLimits, new: &RequestedLimits) -> Vec<LimitChange> {
    let named = |l: &RequestedLimits| -> Vec<(&'static str, Option<u64>)> {
        vec![
            ("deadline-ms", l.deadline_ms),
            ("memory-bytes", l.memory_bytes),
            ("max-requests", l.max_requests.map(u64::from)),
            ("max-response-bytes", l.max_response_bytes),
            ("max-log-bytes", l.max_log_bytes),
            ("max-host-calls", l.max_host_calls.map(u64::from)),
            ("max-handles", l.max_handles.map(u64::from)),
            ("max-record-bytes", l.max_record_bytes),
        ]
    };
    named(old)
        .into_iter()
        .zip(named(new))
        .filter(|((_, from), (_, to))| from != to)
        .map(|((limit, from), (_, to))| LimitChange {
            limit: limit.to_string(),
            from,
            to,
            raised: to.unwrap_or(u64::MAX) > from.unwrap_or(u64::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(toml: &str) -> Manifest {
        Manifest::from_toml(&format!(
            "[connector]\nprovider = \"acme\"\ntypes = [\"registry\"]\nversion = \"1.0.0\"\n{toml}"
        ))
        .unwrap()
    }

    fn set(toml: &str, imports: &[&str]) -> PermissionSet {
        PermissionSet::of(&manifest(toml), &imports.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_digest_ignores_order_and_changes_with_any_permission() {
        let a = set("[permissions]\nhosts = [\"https://a.example\", \"https://b.example\"]\n", &["x", "y"]);
        let b = set("[permissions]\nhosts = [\"https://b.example\", \"https://a.example\"]\n", &["y", "x"]);
        assert_eq!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:") && a.digest().len() == 71);
        for other in [
            set("[permissions]\nhosts = [\"https://a.example\"]\n", &["x", "y"]),
            set(
                "[permissions]\nhosts = [\"https://a.example\", \"https://b.example\"]\nreveal-secrets = true\n",
                &["x", "y"],
            ),
            set("[permissions]\nhosts = [\"https://a.example\", \"https://b.example\"]\n", &["x", "y", "z"]),
            set(
                "[permissions]\nhosts = [\"https://a.example\", \"https://b.example\"]\n[limits]\ndeadline-ms = 5\n",
                &["x", "y"],
            ),
        ] {
            assert_ne!(a.digest(), other.digest(), "{other:?}");
        }
    }

    #[test]
    fn the_diff_names_every_widening_and_only_then_is_not_narrower() {
        let active = set("[permissions]\nhosts = [\"https://a.example\"]\n[limits]\ndeadline-ms = 5000\n", &["x"]);
        let same = active.clone();
        assert!(same.diff(Some(("1.0.0", &active))).narrower_or_equal);

        let narrower = set("[limits]\ndeadline-ms = 1000\n", &["x"]);
        let d = narrower.diff(Some(("1.0.0", &active)));
        assert!(d.narrower_or_equal, "{d:?}");
        assert_eq!(d.hosts_removed, vec!["https://a.example"]);
        assert_eq!(d.limits[0].limit, "deadline-ms");
        assert!(!d.limits[0].raised);

        let wider = set(
            "[permissions]\nhosts = [\"https://*.example.com\"]\nreveal-secrets = true\n[limits]\nmemory-bytes = 1024\n",
            &["x", "y"],
        );
        let d = wider.diff(Some(("1.0.0", &active)));
        assert!(!d.narrower_or_equal);
        assert_eq!(d.hosts_added, vec!["https://*.example.com"]);
        assert_eq!(d.reveal_secrets, Some(Switch::On));
        assert_eq!(d.imports_added, vec!["y"]);
        // Dropping the deadline asks for the ceiling: raised. Asking for memory lowers it.
        let deadline = d.limits.iter().find(|l| l.limit == "deadline-ms").unwrap();
        assert!(deadline.raised && deadline.to.is_none());
        assert!(!d.limits.iter().find(|l| l.limit == "memory-bytes").unwrap().raised);

        for widening in [
            set(
                "[permissions]\nhosts = [\"https://a.example\"]\nsign-jwt = true\n[limits]\ndeadline-ms = 5000\n",
                &["x"],
            ),
            set("[permissions]\nhosts = [\"https://a.example\"]\n[limits]\ndeadline-ms = 5001\n", &["x"]),
        ] {
            assert!(!widening.diff(Some(("1.0.0", &active))).narrower_or_equal, "{widening:?}");
        }
        let mut more_types = active.clone();
        more_types.types.push(IntegrationType::Scm);
        assert_eq!(more_types.diff(Some(("1.0.0", &active))).types_added, vec![IntegrationType::Scm]);
        assert!(!more_types.diff(Some(("1.0.0", &active))).narrower_or_equal);
    }

    #[test]
    fn a_new_provider_adds_everything_and_is_never_narrower() {
        let first = set("[permissions]\nhosts = [\"https://a.example\"]\nsign-jwt = true\n", &["x"]);
        let d = first.diff(None);
        assert!(!d.narrower_or_equal && d.against.is_none());
        assert_eq!((d.hosts_added.len(), d.sign_jwt, d.imports_added.len()), (1, Some(Switch::On), 1));
    }
}
