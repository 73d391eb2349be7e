//! AuthRefs, whose secrets they name, where a secret may go, and redaction.
//!
//! An AuthRef (`ref://<scope>/<provider>/<key>`) names a credential *within a namespace*: every
//! invocation runs in one [`SecretNamespace`] (the service gives each tenant its own), and a
//! [`SecretResolver`] looks the AuthRef up there only, so the same AuthRef in two namespaces names
//! two secrets and no namespace can name another's. [`SecretStore`] is the one the service uses
//! (a directory and environment variables, laid out in `store.rs`).
//!
//! A resolved [`Secret`] may carry a [`Binding`]: the origins it may be applied to. The host
//! refuses to apply it, reveal it or sign with it for any other (see `host/`).
//!
//! Values are wrapped in `secrecy` types, which neither print nor serialize, and every string a
//! connector produces passes through a [`Redactor`] before an operator sees it; the same redactor
//! scrubs what a server sends back before the connector sees it.

mod redact;
mod store;

pub use redact::{MAX_FORM_BYTES, REDACTED, Redactor, Refused, Source};
pub use store::{SecretLocations, SecretStore};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::egress::{OriginAllowlist, OriginPattern};

/// The longest AuthRef accepted.
pub const MAX_AUTH_REF_LEN: usize = 256;
const MAX_SEGMENT_LEN: usize = 64;
/// The suffix of the file that holds a secret's binding beside it (`<key>.origins`); no AuthRef
/// key ends with it, so a binding is never read as a secret.
pub const BINDING_FILE_SUFFIX: &str = ".origins";

/// A validated AuthRef: `ref://<scope>/<provider>/<key>`.
///
/// Each segment is 1 to 64 characters of ASCII letters, digits, `-`, `_` and `.`, and is not
/// `.` or `..`; nothing else is accepted, so a segment can be used as a file name. The key may not
/// end in `.origins`: that name holds a secret's binding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthRef {
    scope: String,
    provider: String,
    key: String,
}

impl AuthRef {
    /// Parses and validates an AuthRef.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_AUTH_REF_LEN {
            return Err(format!("an AuthRef is at most {MAX_AUTH_REF_LEN} characters"));
        }
        let rest = s.strip_prefix("ref://").ok_or("an AuthRef has the form ref://<scope>/<provider>/<key>")?;
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() != 3 {
            return Err("an AuthRef has exactly three segments: ref://<scope>/<provider>/<key>".into());
        }
        for seg in &segments {
            if seg.is_empty() || seg.len() > MAX_SEGMENT_LEN {
                return Err(format!("each AuthRef segment is 1 to {MAX_SEGMENT_LEN} characters"));
            }
            if *seg == "." || *seg == ".." {
                return Err("an AuthRef segment may not be `.` or `..`".into());
            }
            if !seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
                return Err("AuthRef segments may contain only ASCII letters, digits, `-`, `_` and `.`".into());
            }
        }
        // Without regard to case: on a case-insensitive file system `robot.ORIGINS` is the binding.
        if segments[2].to_ascii_lowercase().ends_with(BINDING_FILE_SUFFIX) {
            return Err(format!(
                "an AuthRef key may not end in `{BINDING_FILE_SUFFIX}`: that name holds a secret's binding"
            ));
        }
        Ok(Self { scope: segments[0].to_string(), provider: segments[1].to_string(), key: segments[2].to_string() })
    }

    /// The scope segment.
    pub fn scope(&self) -> &str {
        &self.scope
    }
    /// The provider segment.
    pub fn provider(&self) -> &str {
        &self.provider
    }
    /// The key segment.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn segments(&self) -> [&str; 3] {
        [&self.scope, &self.provider, &self.key]
    }
}

impl fmt::Display for AuthRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ref://{}/{}/{}", self.scope, self.provider, self.key)
    }
}

impl fmt::Debug for AuthRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthRef({self})")
    }
}

impl std::str::FromStr for AuthRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whose secrets an invocation may resolve. An AuthRef is looked up in the invocation's namespace
/// only: another namespace's secret, or the platform's own, is "not found" for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretNamespace {
    /// The layout from before namespaces (`STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY>`,
    /// `<dir>/<scope>/<provider>/<key>`): the command line's, and the one tenant a single-tenant
    /// installation maps to it.
    Unscoped,
    /// A namespace of its own (the service names one per tenant):
    /// `STELLA_SECRET__<NAME>__<SCOPE>__<PROVIDER>__<KEY>`, `<dir>/<name>/<scope>/<provider>/<key>`.
    Owner(String),
}

impl fmt::Display for SecretNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unscoped => f.write_str("the unscoped namespace"),
            Self::Owner(name) => write!(f, "namespace `{name}`"),
        }
    }
}

/// A secret's value. It does not print (`Debug` shows `[REDACTED]`) and does not serialize.
#[derive(Clone)]
pub struct SecretValue(Arc<SecretString>);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(Arc::new(SecretString::from(value)))
    }
    /// The value, for the few places that must write it into a request.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

/// The origins a secret may be applied to: `scheme://host[:port]` patterns, `*.` wildcards
/// allowed, as a manifest's hosts are written. A secret without one may go wherever the
/// invocation may send requests (unless the operator requires bindings).
#[derive(Clone, PartialEq, Eq)]
pub struct Binding(Arc<[OriginPattern]>);

/// The most origins one binding may list.
pub const MAX_BINDING_ORIGINS: usize = 64;
/// The longest binding text read.
pub const MAX_BINDING_BYTES: usize = 16 * 1024;

impl Binding {
    /// Parses a binding: origins separated by commas, spaces or newlines; `#` starts a comment
    /// that runs to the end of its line. At least one origin.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_BINDING_BYTES {
            return Err(format!("a binding is at most {MAX_BINDING_BYTES} bytes"));
        }
        let mut origins = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for origin in line.split(|c: char| c == ',' || c.is_whitespace()).filter(|o| !o.is_empty()) {
                if origins.len() == MAX_BINDING_ORIGINS {
                    return Err(format!("a binding lists at most {MAX_BINDING_ORIGINS} origins"));
                }
                origins.push(OriginPattern::parse(origin)?);
            }
        }
        if origins.is_empty() {
            return Err("a binding lists at least one origin (scheme://host[:port])".into());
        }
        Ok(Self(origins.into()))
    }

    /// Whether a request to `url` may carry the secret.
    pub fn permits(&self, url: &Url) -> bool {
        self.0.iter().any(|p| p.matches(url))
    }

    /// Whether every origin an invocation may send requests to is within the binding: only then
    /// may the connector read the value, which it could send to any of them.
    pub fn covers(&self, reachable: &OriginAllowlist) -> bool {
        reachable.patterns().all(|p| self.0.iter().any(|b| b.covers(p)))
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binding({self})")
    }
}

/// A resolved secret: its value, and the origins it is bound to, if any.
#[derive(Clone, Debug)]
pub struct Secret {
    /// The value.
    pub value: SecretValue,
    /// Where it may be applied; `None`: wherever the invocation may send requests.
    pub binding: Option<Binding>,
}

impl Secret {
    /// A secret without a binding.
    pub fn unbound(value: SecretValue) -> Self {
        Self { value, binding: None }
    }
}

/// Why a secret could not be resolved. Messages never contain a secret value, and say the same
/// of a secret that exists in another namespace as of one that exists nowhere.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// Nothing is stored behind the AuthRef in the namespace.
    #[error("no secret is stored for {0}")]
    NotFound(String),
    /// The store could not be read, or what it holds is not usable (a binding that does not parse).
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
    /// The secret has no binding, and the operator requires one for every secret.
    #[error("the secret {0} has no binding, and the operator requires one for every secret")]
    Unbound(String),
}

/// A source of secrets.
pub trait SecretResolver: Send + Sync + fmt::Debug {
    /// Resolves a validated AuthRef in `namespace`, and nowhere else.
    fn resolve(&self, namespace: &SecretNamespace, auth_ref: &AuthRef) -> Result<Secret, ResolveError>;
}

/// Secrets given up front (the CLI's `--secret REF=VALUE`, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticSecretResolver {
    values: HashMap<(SecretNamespace, AuthRef), Secret>,
}

impl StaticSecretResolver {
    /// Adds an unbound secret to the unscoped namespace.
    pub fn insert(&mut self, auth_ref: AuthRef, value: SecretValue) {
        self.insert_in(SecretNamespace::Unscoped, auth_ref, Secret::unbound(value));
    }

    /// Adds a secret to a namespace.
    pub fn insert_in(&mut self, namespace: SecretNamespace, auth_ref: AuthRef, secret: Secret) {
        self.values.insert((namespace, auth_ref), secret);
    }
}

impl SecretResolver for StaticSecretResolver {
    fn resolve(&self, namespace: &SecretNamespace, auth_ref: &AuthRef) -> Result<Secret, ResolveError> {
        self.values
            .get(&(namespace.clone(), auth_ref.clone()))
            .cloned()
            .ok_or_else(|| ResolveError::NotFound(auth_ref.to_string()))
    }
}

/// Tries resolvers in order; the first that has the secret wins.
#[derive(Debug, Clone, Default)]
pub struct ChainResolver {
    resolvers: Vec<Arc<dyn SecretResolver>>,
}

impl ChainResolver {
    /// A chain of resolvers, tried in order.
    pub fn new(resolvers: Vec<Arc<dyn SecretResolver>>) -> Self {
        Self { resolvers }
    }
}

impl SecretResolver for ChainResolver {
    fn resolve(&self, namespace: &SecretNamespace, auth_ref: &AuthRef) -> Result<Secret, ResolveError> {
        let mut last = ResolveError::NotFound(auth_ref.to_string());
        for r in &self.resolvers {
            match r.resolve(namespace, auth_ref) {
                Err(ResolveError::NotFound(_)) => {}
                Err(e @ ResolveError::Unavailable(_)) => last = e,
                found => return found,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_refs_are_strict() {
        let r = AuthRef::parse("ref://integrations/github/acme-org.token_1").unwrap();
        assert_eq!((r.scope(), r.provider(), r.key()), ("integrations", "github", "acme-org.token_1"));
        assert_eq!(r.to_string(), "ref://integrations/github/acme-org.token_1");
        for bad in [
            "",
            "ref://",
            "ref://a/b",
            "ref://a/b/c/d",
            "ref://a//c",
            "ref://../b/c",
            "ref://a/./c",
            "ref://a/b/..",
            "http://a/b/c",
            "ref://a/b/c%2f",
            "ref://a/b/c d",
            "ref://a/b/é",
            "REF://a/b/c",
            "ref://a\\b/c/d",
            "ref://a/b/robot.origins",
            "ref://a/b/robot.ORIGINS",
        ] {
            assert!(AuthRef::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let long = format!("ref://a/b/{}", "k".repeat(65));
        assert!(AuthRef::parse(&long).is_err());
        let too_long = format!("ref://{}/{}/{}", "a".repeat(64), "b".repeat(64), "c".repeat(130));
        assert!(AuthRef::parse(&too_long).is_err());
        // Only the key holds files beside it: a scope or provider may end in `.origins`.
        assert!(AuthRef::parse("ref://a.origins/b.origins/c").is_ok());
    }

    #[test]
    fn secret_values_do_not_print() {
        let v = SecretValue::new("hunter2-canary".into());
        assert!(!format!("{v:?}").contains("hunter2"));
        let s = Secret::unbound(v);
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn bindings_parse_and_judge_urls() {
        let b = Binding::parse("# the registry and its token service\nhttps://harbor.acme.example,\n https://*.auth.acme.example:8443 # tokens\n").unwrap();
        assert!(b.permits(&Url::parse("https://harbor.acme.example/v2/").unwrap()));
        assert!(b.permits(&Url::parse("https://HARBOR.acme.example:443/x?y").unwrap()));
        assert!(b.permits(&Url::parse("https://eu.auth.acme.example:8443/token").unwrap()));
        for refused in [
            "http://harbor.acme.example/",
            "https://harbor.acme.example:8443/",
            "https://evil.example/",
            "https://harbor.acme.example.evil.example/",
            "https://auth.acme.example:8443/",
        ] {
            assert!(!b.permits(&Url::parse(refused).unwrap()), "{refused}");
        }
        assert_eq!(b.to_string(), "https://harbor.acme.example:443, https://*.auth.acme.example:8443");
        for bad in ["", "# nothing\n", "harbor.acme.example", "https://a.example/path", "ftp://a.example"] {
            assert!(Binding::parse(bad).is_err(), "{bad:?}");
        }
        let many = (0..65).map(|i| format!("https://h{i}.example")).collect::<Vec<_>>().join(" ");
        assert!(Binding::parse(&many).is_err());
    }

    #[test]
    fn a_binding_covers_an_allowlist_only_when_it_holds_every_origin() {
        let base = Url::parse("https://harbor.acme.example").unwrap();
        let declared = OriginAllowlist::parse_declared(&["https://eu.auth.acme.example".into()]).unwrap();
        let reachable = OriginAllowlist::new(Some(&base), declared).unwrap();
        assert!(Binding::parse("https://harbor.acme.example https://*.acme.example").unwrap().covers(&reachable));
        assert!(Binding::parse("https://harbor.acme.example https://eu.auth.acme.example").unwrap().covers(&reachable));
        assert!(!Binding::parse("https://harbor.acme.example").unwrap().covers(&reachable));
        let wild = OriginAllowlist::new(
            Some(&base),
            OriginAllowlist::parse_declared(&["https://*.auth.acme.example".into()]).unwrap(),
        )
        .unwrap();
        assert!(Binding::parse("https://harbor.acme.example https://*.acme.example").unwrap().covers(&wild));
        assert!(!Binding::parse("https://harbor.acme.example https://eu.auth.acme.example").unwrap().covers(&wild));
    }

    #[test]
    fn namespaces_keep_secrets_apart_in_the_static_resolver() {
        let r = AuthRef::parse("ref://integrations/harbor/robot").unwrap();
        let mut s = StaticSecretResolver::default();
        s.insert_in(
            SecretNamespace::Owner("acme".into()),
            r.clone(),
            Secret::unbound(SecretValue::new("acme-robot-token".into())),
        );
        assert!(s.resolve(&SecretNamespace::Owner("acme".into()), &r).is_ok());
        let other = s.resolve(&SecretNamespace::Owner("evil".into()), &r).unwrap_err();
        let nowhere = s.resolve(&SecretNamespace::Owner("acme".into()), &AuthRef::parse("ref://x/y/z").unwrap());
        assert!(matches!(other, ResolveError::NotFound(_)));
        assert!(matches!(nowhere, Err(ResolveError::NotFound(_))));
        assert!(s.resolve(&SecretNamespace::Unscoped, &r).is_err());
    }
}
