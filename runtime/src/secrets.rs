//! AuthRefs, secret stores and redaction.
//!
//! An AuthRef (`ref://<scope>/<provider>/<key>`) names a credential; a [`SecretResolver`] turns
//! it into a [`SecretValue`] held by the host. Values are wrapped in `secrecy` types, which
//! neither print nor serialize, and every string a connector produces passes through a
//! [`Redactor`] before an operator sees it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// The longest AuthRef accepted.
pub const MAX_AUTH_REF_LEN: usize = 256;
const MAX_SEGMENT_LEN: usize = 64;
/// The largest secret a file store reads (a PEM key is a few KiB).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A validated AuthRef: `ref://<scope>/<provider>/<key>`.
///
/// Each segment is 1 to 64 characters of ASCII letters, digits, `-`, `_` and `.`, and is not
/// `.` or `..`; nothing else is accepted, so a segment can be used as a file name.
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

/// Why a secret could not be resolved. Messages never contain a secret value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// Nothing is stored behind the AuthRef.
    #[error("no secret is stored for {0}")]
    NotFound(String),
    /// The store could not be read.
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
}

/// A source of secrets.
pub trait SecretResolver: Send + Sync + fmt::Debug {
    /// Resolves a validated AuthRef to its value.
    fn resolve(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError>;
}

/// Reads secrets from environment variables.
///
/// `ref://<scope>/<provider>/<key>` maps to the variable
/// `<PREFIX><SCOPE>__<PROVIDER>__<KEY>`: upper-cased, with `-` and `.` turned into `_`, and
/// segments joined by a double underscore. With the default prefix `STELLA_SECRET__`,
/// `ref://integrations/github/acme-org-token` is `STELLA_SECRET__INTEGRATIONS__GITHUB__ACME_ORG_TOKEN`.
#[derive(Debug, Clone)]
pub struct EnvSecretResolver {
    prefix: String,
}

impl Default for EnvSecretResolver {
    fn default() -> Self {
        Self { prefix: "STELLA_SECRET__".into() }
    }
}

impl EnvSecretResolver {
    /// A resolver with a custom variable prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The variable an AuthRef maps to.
    pub fn variable_name(&self, auth_ref: &AuthRef) -> String {
        let seg = |s: &str| s.to_ascii_uppercase().replace(['-', '.'], "_");
        format!("{}{}__{}__{}", self.prefix, seg(auth_ref.scope()), seg(auth_ref.provider()), seg(auth_ref.key()))
    }
}

impl SecretResolver for EnvSecretResolver {
    fn resolve(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError> {
        match std::env::var(self.variable_name(auth_ref)) {
            Ok(v) if !v.is_empty() => Ok(SecretValue::new(v)),
            Ok(_) | Err(std::env::VarError::NotPresent) => Err(ResolveError::NotFound(auth_ref.to_string())),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ResolveError::Unavailable(format!("the variable for {auth_ref} is not UTF-8")))
            }
        }
    }
}

/// Reads secrets from files: `<dir>/<scope>/<provider>/<key>`, the way Kubernetes mounts
/// secrets. One trailing newline is removed. Symbolic links are followed only when they stay
/// inside the directory (Kubernetes' `..data` links do).
#[derive(Debug, Clone)]
pub struct FileSecretResolver {
    root: PathBuf,
}

impl FileSecretResolver {
    /// A resolver reading below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn read(&self, path: &Path) -> Result<String, ResolveError> {
        let unavailable = |e: std::io::Error| ResolveError::Unavailable(e.kind().to_string());
        let root = self.root.canonicalize().map_err(unavailable)?;
        let real = path.canonicalize().map_err(unavailable)?;
        if !real.starts_with(&root) {
            return Err(ResolveError::Unavailable("the secret file points outside the secret directory".into()));
        }
        let meta = std::fs::metadata(&real).map_err(unavailable)?;
        if !meta.is_file() || meta.len() > MAX_SECRET_BYTES {
            return Err(ResolveError::Unavailable(format!(
                "the secret is not a regular file of at most {MAX_SECRET_BYTES} bytes"
            )));
        }
        let mut text = std::fs::read_to_string(&real)
            .map_err(|_| ResolveError::Unavailable("the secret file is not UTF-8".into()))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(text)
    }
}

impl SecretResolver for FileSecretResolver {
    fn resolve(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError> {
        let path = self.root.join(auth_ref.scope()).join(auth_ref.provider()).join(auth_ref.key());
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ResolveError::NotFound(auth_ref.to_string())),
            Err(e) => Err(ResolveError::Unavailable(e.kind().to_string())),
            Ok(_) => {
                let text = self.read(&path)?;
                if text.is_empty() {
                    return Err(ResolveError::NotFound(auth_ref.to_string()));
                }
                Ok(SecretValue::new(text))
            }
        }
    }
}

/// Secrets given up front (the CLI's `--secret REF=VALUE`, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticSecretResolver {
    values: HashMap<AuthRef, SecretValue>,
}

impl StaticSecretResolver {
    /// Adds a secret.
    pub fn insert(&mut self, auth_ref: AuthRef, value: SecretValue) {
        self.values.insert(auth_ref, value);
    }
}

impl SecretResolver for StaticSecretResolver {
    fn resolve(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError> {
        self.values.get(auth_ref).cloned().ok_or_else(|| ResolveError::NotFound(auth_ref.to_string()))
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
    fn resolve(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError> {
        let mut last = ResolveError::NotFound(auth_ref.to_string());
        for r in &self.resolvers {
            match r.resolve(auth_ref) {
                Ok(v) => return Ok(v),
                Err(e @ ResolveError::Unavailable(_)) => last = e,
                Err(ResolveError::NotFound(_)) => {}
            }
        }
        Err(last)
    }
}

/// Replaces every known secret value (and the encodings a connector is likely to have sent it
/// in) with `[REDACTED]`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    needles: Vec<String>,
    /// Distinct values and basic-auth pairs added.
    values: usize,
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

impl Redactor {
    /// Adds a secret value to redact, with its base64 form.
    pub fn add(&mut self, value: &SecretValue) {
        self.try_add(value, usize::MAX);
    }

    /// Adds a secret value unless that would make more than `max_values`; false when refused
    /// (a value already known is never refused).
    pub fn try_add(&mut self, value: &SecretValue, max_values: usize) -> bool {
        use base64::Engine as _;
        let v = value.expose();
        // Very short values would redact ordinary text; real credentials are longer.
        if v.len() < 4 || self.needles.iter().any(|n| n == v) {
            return true;
        }
        self.push(vec![v.to_string(), base64::engine::general_purpose::STANDARD.encode(v)], max_values)
    }

    /// Adds a basic-auth pair, whose base64 form is what goes on the wire.
    pub fn add_basic(&mut self, username: &str, value: &SecretValue) {
        self.try_add_basic(username, value, usize::MAX);
    }

    /// [`Redactor::add_basic`] unless that would make more than `max_values`.
    pub fn try_add_basic(&mut self, username: &str, value: &SecretValue, max_values: usize) -> bool {
        use base64::Engine as _;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", value.expose()));
        if self.needles.contains(&pair) {
            return true;
        }
        self.push(vec![pair], max_values)
    }

    fn push(&mut self, needles: Vec<String>, max_values: usize) -> bool {
        if self.values >= max_values {
            return false;
        }
        self.values += 1;
        self.needles.extend(needles);
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        true
    }

    /// The text with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out
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
        ] {
            assert!(AuthRef::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let long = format!("ref://a/b/{}", "k".repeat(65));
        assert!(AuthRef::parse(&long).is_err());
        let too_long = format!("ref://{}/{}/{}", "a".repeat(64), "b".repeat(64), "c".repeat(130));
        assert!(AuthRef::parse(&too_long).is_err());
    }

    #[test]
    fn env_names_follow_the_documented_mapping() {
        let r = AuthRef::parse("ref://integrations/github/acme-org.token").unwrap();
        assert_eq!(
            EnvSecretResolver::default().variable_name(&r),
            "STELLA_SECRET__INTEGRATIONS__GITHUB__ACME_ORG_TOKEN"
        );
    }

    #[test]
    fn file_store_reads_kubernetes_layout_and_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("integrations/harbor")).unwrap();
        std::fs::write(dir.path().join("integrations/harbor/robot"), "s3cr3t-value\n").unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "outside-secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), dir.path().join("integrations/harbor/escape")).unwrap();

        let store = FileSecretResolver::new(dir.path());
        let got = store.resolve(&AuthRef::parse("ref://integrations/harbor/robot").unwrap()).unwrap();
        assert_eq!(got.expose(), "s3cr3t-value");
        assert!(matches!(
            store.resolve(&AuthRef::parse("ref://integrations/harbor/missing").unwrap()),
            Err(ResolveError::NotFound(_))
        ));
        #[cfg(unix)]
        {
            let err = store.resolve(&AuthRef::parse("ref://integrations/harbor/escape").unwrap()).unwrap_err();
            assert!(err.to_string().contains("outside"), "{err}");
        }
    }

    #[test]
    fn secret_values_do_not_print() {
        let v = SecretValue::new("hunter2-canary".into());
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn redactor_replaces_raw_and_encoded_values() {
        let v = SecretValue::new("canary-123456".into());
        let mut r = Redactor::default();
        r.add(&v);
        r.add_basic("robot", &v);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("canary-123456");
        let basic = base64::engine::general_purpose::STANDARD.encode("robot:canary-123456");
        let out = r.redact(&format!("a canary-123456 b {b64} c Basic {basic}"));
        assert!(!out.contains("canary-123456") && !out.contains(&b64) && !out.contains(&basic), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 3);
    }
}
