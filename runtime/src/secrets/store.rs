//! The secret store the service reads: a directory (the way Kubernetes mounts secrets) and
//! environment variables, each laid out by namespace, with a secret's binding beside it.
//!
//! | namespace | variable | file |
//! |---|---|---|
//! | a tenant's (`Owner(t)`) | `STELLA_SECRET__<T>__<SCOPE>__<PROVIDER>__<KEY>` | `<dir>/<t>/<scope>/<provider>/<key>` |
//! | unscoped | `STELLA_SECRET__<SCOPE>__<PROVIDER>__<KEY>` | `<dir>/<scope>/<provider>/<key>` |
//! | the platform's own | `STELLA_PLATFORM_SECRET__<SCOPE>__<PROVIDER>__<KEY>` | `<dir>/.platform/<scope>/<provider>/<key>` |
//!
//! A binding is the variable `STELLA_SECRET_ORIGINS__…` (the same segments) or the file
//! `<key>.origins` beside the secret's.
//!
//! Both mappings are injective: two distinct (namespace, AuthRef) pairs never name the same
//! variable or file, and no AuthRef names a platform secret. A variable's segment is the segment
//! upper-cased with `-` written `_` when it is "plain" (lower-case letters, digits and single
//! inner dashes: every AuthRef the examples use), and otherwise `_` followed by the upper-case hex
//! of its UTF-8 bytes; segments are joined by `__`. A plain segment never begins or ends with `_`
//! nor holds `__`, and a hex one holds no `_` after its first, so in a variable name every run of
//! one underscore is inside a plain segment, every run of two separates segments and every run of
//! three begins a hex segment: the name reads back one way only. In the file layout, AuthRef
//! segments are file names as they are; a namespace's directory name keeps ASCII letters, digits,
//! `-`, `_` and every `.` but a leading one, and writes any other byte (`%` included) as `%XX`, so
//! it never begins with a dot and `.platform` is no tenant's.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    AuthRef, BINDING_FILE_SUFFIX, Binding, ResolveError, Secret, SecretNamespace, SecretResolver, SecretValue,
};

/// The largest secret (or binding) a file store reads (a PEM key is a few KiB).
const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The longest namespace name the store accepts (a tenant id is at most 128 characters).
const MAX_NAMESPACE_LEN: usize = 256;
/// The platform's directory below the store's: no namespace's directory name begins with a dot.
const PLATFORM_DIR: &str = ".platform";
const SECRET_VARIABLE: &str = "STELLA_SECRET";
const BINDING_VARIABLE: &str = "STELLA_SECRET_ORIGINS";
const PLATFORM_VARIABLE: &str = "STELLA_PLATFORM_SECRET";

/// Where the process reads variables from.
#[derive(Clone, Debug)]
enum Environment {
    Off,
    Process,
    /// A fixed set instead of the process's (tests).
    Fixed(Arc<HashMap<String, String>>),
}

impl Environment {
    fn get(&self, name: &str) -> Option<Result<String, OsString>> {
        match self {
            Self::Off => None,
            Self::Process => std::env::var_os(name).map(OsString::into_string),
            Self::Fixed(map) => map.get(name).cloned().map(Ok),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            Self::Off => vec![],
            Self::Process => std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect(),
            Self::Fixed(map) => map.keys().cloned().collect(),
        }
    }
}

/// The directory and variables the service reads secrets from (see the module's table).
#[derive(Clone, Debug)]
pub struct SecretStore {
    dir: Option<PathBuf>,
    env: Environment,
    require_binding: bool,
}

/// Where a secret and its binding would be read from, for an operator to put them there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretLocations {
    /// The variable holding the value, when variables are read.
    pub variable: Option<String>,
    /// The variable holding its binding.
    pub binding_variable: Option<String>,
    /// The file holding the value, when a directory is configured.
    pub file: Option<PathBuf>,
    /// The file holding its binding.
    pub binding_file: Option<PathBuf>,
}

impl SecretLocations {
    /// Where the value is read from, for a message: `VARIABLE or /path/to/file` (or `nowhere`).
    pub fn of_value(&self) -> String {
        let places: Vec<String> =
            self.variable.iter().cloned().chain(self.file.iter().map(|f| f.display().to_string())).collect();
        if places.is_empty() { "nowhere".into() } else { places.join(" or ") }
    }
}

/// Which layout: a namespace's, or the platform's own.
#[derive(Clone, Copy)]
enum Layout<'a> {
    Namespace(&'a SecretNamespace),
    Platform,
}

/// A value (and the binding beside it) found in one of the two stores.
struct Found {
    value: String,
    binding: Option<Result<Binding, String>>,
}

impl SecretStore {
    /// A store reading `dir` (if given), then the process's variables (if `env`).
    pub fn new(dir: Option<PathBuf>, env: bool) -> Self {
        Self { dir, env: if env { Environment::Process } else { Environment::Off }, require_binding: false }
    }

    /// The same store reading these variables instead of the process's (tests, and the command
    /// line's `--secret`).
    pub fn with_variables(mut self, variables: HashMap<String, String>) -> Self {
        self.env = Environment::Fixed(Arc::new(variables));
        self
    }

    /// The same store refusing every secret that has no binding ([`ResolveError::Unbound`]).
    pub fn requiring_bindings(mut self, required: bool) -> Self {
        self.require_binding = required;
        self
    }

    /// Whether every secret must have a binding.
    pub fn bindings_required(&self) -> bool {
        self.require_binding
    }

    /// Where `auth_ref` of `namespace` is read from, and its binding.
    pub fn locations(&self, namespace: &SecretNamespace, auth_ref: &AuthRef) -> Result<SecretLocations, String> {
        self.locations_in(Layout::Namespace(namespace), auth_ref)
    }

    /// Where the platform's own secret `auth_ref` is read from.
    pub fn platform_locations(&self, auth_ref: &AuthRef) -> Result<SecretLocations, String> {
        self.locations_in(Layout::Platform, auth_ref)
    }

    fn locations_in(&self, layout: Layout<'_>, auth_ref: &AuthRef) -> Result<SecretLocations, String> {
        let env = !matches!(self.env, Environment::Off);
        let platform = matches!(layout, Layout::Platform);
        let file = match &self.dir {
            Some(dir) => Some(file_path(dir, layout, auth_ref)?.1),
            None => None,
        };
        Ok(SecretLocations {
            variable: env.then(|| variable(layout, SECRET_VARIABLE, auth_ref)).transpose()?,
            binding_variable: (env && !platform).then(|| variable(layout, BINDING_VARIABLE, auth_ref)).transpose()?,
            binding_file: file.as_ref().filter(|_| !platform).map(|f| binding_path(f)),
            file,
        })
    }

    /// The platform's own secret (a registry password): never an integration's.
    pub fn platform_secret(&self, auth_ref: &AuthRef) -> Result<SecretValue, ResolveError> {
        match self.find(Layout::Platform, auth_ref)? {
            Some(found) => Ok(SecretValue::new(found.value)),
            None => Err(ResolveError::NotFound(auth_ref.to_string())),
        }
    }

    /// Up to `max` secrets in the unscoped layout (variables with three segments, files three
    /// levels below the directory), by variable name or path: what a single-tenant installation
    /// from before namespaces holds, which no tenant reads unless one is mapped to it.
    pub fn unscoped_secrets(&self, max: usize) -> Vec<String> {
        let mut found: Vec<String> =
            self.env.names().into_iter().filter(|name| variable_segments(name, SECRET_VARIABLE) == Some(3)).collect();
        found.sort();
        found.truncate(max);
        if let Some(dir) = &self.dir {
            // Bounded: a few hundred entries per level is more than a secret mount holds.
            const PER_LEVEL: usize = 256;
            let entries = |d: &Path| -> Vec<PathBuf> {
                std::fs::read_dir(d)
                    .map(|r| r.filter_map(Result::ok).take(PER_LEVEL).map(|e| e.path()).collect())
                    .unwrap_or_default()
            };
            'scan: for scope in entries(dir).into_iter().filter(|p| !is_hidden(p) && p.is_dir()) {
                for provider in entries(&scope).into_iter().filter(|p| !is_hidden(p) && p.is_dir()) {
                    for key in entries(&provider) {
                        if found.len() >= max {
                            break 'scan;
                        }
                        let name = key.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        if !is_hidden(&key) && key.is_file() && !name.ends_with(BINDING_FILE_SUFFIX) {
                            found.push(key.display().to_string());
                        }
                    }
                }
            }
        }
        found
    }

    /// The value in the directory, else in the variables, with its binding (for a namespace).
    fn find(&self, layout: Layout<'_>, auth_ref: &AuthRef) -> Result<Option<Found>, ResolveError> {
        let mut value = None;
        if let Some(dir) = &self.dir {
            let (root, path) = file_path(dir, layout, auth_ref).map_err(ResolveError::Unavailable)?;
            if let FileText::Text(text) = read_file(&root, &path)?
                && !text.is_empty()
            {
                value = Some(text);
            }
        }
        if value.is_none() && !matches!(self.env, Environment::Off) {
            let name = variable(layout, SECRET_VARIABLE, auth_ref).map_err(ResolveError::Unavailable)?;
            match self.env.get(&name) {
                None => {}
                Some(Ok(text)) => value = Some(text).filter(|t| !t.is_empty()),
                Some(Err(_)) => {
                    return Err(ResolveError::Unavailable(format!("the variable for {auth_ref} is not UTF-8")));
                }
            }
        }
        let Some(value) = value else { return Ok(None) };
        let binding = match layout {
            Layout::Platform => None,
            Layout::Namespace(_) => self.binding(layout, auth_ref)?,
        };
        Ok(Some(Found { value, binding }))
    }

    /// A secret's binding, from either store (whichever holds the value): a file or variable that
    /// is there but empty, or not a regular file, is a binding that does not parse (the secret is
    /// unavailable, never unbound), and so are two bindings, a file and a variable.
    fn binding(&self, layout: Layout<'_>, auth_ref: &AuthRef) -> Result<Option<Result<Binding, String>>, ResolveError> {
        let in_dir = match &self.dir {
            None => None,
            Some(dir) => {
                let (root, path) = file_path(dir, layout, auth_ref).map_err(ResolveError::Unavailable)?;
                match read_file(&root, &binding_path(&path))? {
                    FileText::Missing => None,
                    FileText::NotAFile => Some(Err("the binding file is not a regular file".to_string())),
                    FileText::Text(text) => Some(Ok(text)),
                }
            }
        };
        let in_env = match &self.env {
            Environment::Off => None,
            env => {
                let name = variable(layout, BINDING_VARIABLE, auth_ref).map_err(ResolveError::Unavailable)?;
                env.get(&name).map(|text| text.map_err(|_| "the binding variable is not UTF-8".to_string()))
            }
        };
        Ok(match (in_dir, in_env) {
            (None, None) => None,
            (Some(_), Some(_)) => Some(Err("the secret has two bindings, a file and a variable: keep one".into())),
            (Some(text), None) | (None, Some(text)) => Some(text.and_then(|t| Binding::parse(&t))),
        })
    }
}

impl SecretResolver for SecretStore {
    fn resolve(&self, namespace: &SecretNamespace, auth_ref: &AuthRef) -> Result<Secret, ResolveError> {
        let Some(found) = self.find(Layout::Namespace(namespace), auth_ref)? else {
            return Err(ResolveError::NotFound(auth_ref.to_string()));
        };
        let binding = found
            .binding
            .transpose()
            .map_err(|e| ResolveError::Unavailable(format!("the binding of {auth_ref} is not valid: {e}")))?;
        if binding.is_none() && self.require_binding {
            return Err(ResolveError::Unbound(auth_ref.to_string()));
        }
        Ok(Secret { value: SecretValue::new(found.value), binding })
    }
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The segments a layout puts before the AuthRef's.
fn namespace_segments(layout: Layout<'_>) -> Result<Vec<&str>, String> {
    match layout {
        Layout::Platform | Layout::Namespace(SecretNamespace::Unscoped) => Ok(vec![]),
        Layout::Namespace(SecretNamespace::Owner(name)) => {
            if name.is_empty() || name.len() > MAX_NAMESPACE_LEN || name.chars().any(char::is_control) {
                return Err(format!(
                    "a secret namespace name is 1 to {MAX_NAMESPACE_LEN} bytes without control characters"
                ));
            }
            Ok(vec![name])
        }
    }
}

/// `<base>__<SEG>__<SEG>…` for the namespace's segments, then the AuthRef's.
fn variable(layout: Layout<'_>, base: &str, auth_ref: &AuthRef) -> Result<String, String> {
    let base = match layout {
        Layout::Platform => PLATFORM_VARIABLE,
        Layout::Namespace(_) => base,
    };
    let mut name = base.to_string();
    for segment in namespace_segments(layout)?.into_iter().chain(auth_ref.segments()) {
        name.push_str("__");
        name.push_str(&variable_segment(segment));
    }
    Ok(name)
}

/// One segment of a variable name: see the module's documentation.
fn variable_segment(segment: &str) -> String {
    let plain = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !segment.starts_with('-')
        && !segment.ends_with('-')
        && !segment.contains("--");
    if plain {
        return segment.to_ascii_uppercase().replace('-', "_");
    }
    let mut hex = String::with_capacity(1 + 2 * segment.len());
    hex.push('_');
    for b in segment.bytes() {
        let _ = write!(hex, "{b:02X}");
    }
    hex
}

/// How many segments a variable of `base` names (`None`: not one of its variables): the runs of
/// two or more underscores after the base.
fn variable_segments(name: &str, base: &str) -> Option<usize> {
    let rest = name.strip_prefix(base)?;
    if !rest.starts_with("__") {
        return None;
    }
    let mut count = 0;
    let mut run = 0;
    for b in rest.bytes().chain(std::iter::once(b'.')) {
        if b == b'_' {
            run += 1;
        } else {
            if run >= 2 {
                count += 1;
            }
            run = 0;
        }
    }
    Some(count)
}

/// A namespace's directory name: see the module's documentation.
fn directory_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The root a layout's files must stay inside, and the secret's path.
fn file_path(dir: &Path, layout: Layout<'_>, auth_ref: &AuthRef) -> Result<(PathBuf, PathBuf), String> {
    let root = match layout {
        Layout::Platform => dir.join(PLATFORM_DIR),
        Layout::Namespace(SecretNamespace::Unscoped) => dir.to_path_buf(),
        Layout::Namespace(SecretNamespace::Owner(_)) => {
            let name = directory_name(namespace_segments(layout)?[0]);
            if name.len() > 255 {
                return Err("the namespace's directory name is longer than a file name may be".into());
            }
            dir.join(name)
        }
    };
    let path = root.join(auth_ref.scope()).join(auth_ref.provider()).join(auth_ref.key());
    Ok((root, path))
}

fn binding_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(BINDING_FILE_SUFFIX);
    PathBuf::from(name)
}

/// What a path of the store holds.
enum FileText {
    /// Nothing (a link to nothing included).
    Missing,
    /// Something that is not a regular file (a directory, a device).
    NotAFile,
    /// A file's text, one trailing newline removed.
    Text(String),
}

/// Reads a file of the store. Symbolic links are followed only when they stay inside `root` (the
/// namespace's directory; Kubernetes' `..data` links do).
fn read_file(root: &Path, path: &Path) -> Result<FileText, ResolveError> {
    use std::io::ErrorKind;
    let unavailable = |e: std::io::Error| ResolveError::Unavailable(e.kind().to_string());
    match std::fs::symlink_metadata(path) {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Ok(FileText::Missing),
        Err(e) => return Err(unavailable(e)),
        Ok(_) => {}
    }
    let root = root.canonicalize().map_err(unavailable)?;
    let real = match path.canonicalize() {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(FileText::Missing),
        other => other.map_err(unavailable)?,
    };
    if !real.starts_with(&root) {
        return Err(ResolveError::Unavailable("the secret file points outside its namespace's directory".into()));
    }
    let meta = std::fs::metadata(&real).map_err(unavailable)?;
    if !meta.is_file() {
        return Ok(FileText::NotAFile);
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(ResolveError::Unavailable(format!("the secret file is larger than {MAX_SECRET_BYTES} bytes")));
    }
    let mut text =
        std::fs::read_to_string(&real).map_err(|_| ResolveError::Unavailable("the secret file is not UTF-8".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(FileText::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AuthRef {
        AuthRef::parse(s).unwrap()
    }

    fn owner(s: &str) -> SecretNamespace {
        SecretNamespace::Owner(s.into())
    }

    fn var(ns: &SecretNamespace, auth_ref: &str) -> String {
        variable(Layout::Namespace(ns), SECRET_VARIABLE, &r(auth_ref)).unwrap()
    }

    #[test]
    fn variables_follow_the_documented_layout() {
        let token = "ref://integrations/github/acme-org-token";
        assert_eq!(var(&SecretNamespace::Unscoped, token), "STELLA_SECRET__INTEGRATIONS__GITHUB__ACME_ORG_TOKEN");
        assert_eq!(var(&owner("acme"), token), "STELLA_SECRET__ACME__INTEGRATIONS__GITHUB__ACME_ORG_TOKEN");
        assert_eq!(
            variable(Layout::Namespace(&owner("acme")), BINDING_VARIABLE, &r(token)).unwrap(),
            "STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__GITHUB__ACME_ORG_TOKEN"
        );
        assert_eq!(
            variable(Layout::Platform, SECRET_VARIABLE, &r("ref://platform/registry/password")).unwrap(),
            "STELLA_PLATFORM_SECRET__PLATFORM__REGISTRY__PASSWORD"
        );
        // Anything but a plain segment is written in hex after a `_`.
        assert_eq!(var(&SecretNamespace::Unscoped, "ref://a/b/acme.org"), "STELLA_SECRET__A__B___61636D652E6F7267");
        assert_eq!(var(&owner("Acme Corp"), "ref://a/b/c"), "STELLA_SECRET___41636D6520436F7270__A__B__C");
    }

    #[test]
    fn the_issue_s_colliding_names_are_distinct() {
        let names: Vec<String> = [
            "ref://integrations/github/acme-org",
            "ref://integrations/github/acme.org",
            "ref://integrations/github/acme_org",
            "ref://integrations/github/ACME-ORG",
            "ref://integrations/github/acme--org",
        ]
        .iter()
        .map(|a| var(&owner("acme"), a))
        .collect();
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
    }

    /// Every (namespace, AuthRef) over a small alphabet that covers every kind of character, run
    /// of dashes and position: no two share a variable name or a file, and each variable name
    /// counts its segments right.
    #[test]
    fn the_mappings_are_injective() {
        let alphabet = ["a", "Z", "0", "-", "_", "."];
        let mut segments = vec![];
        for x in alphabet {
            segments.push(x.to_string());
            for y in alphabet {
                segments.push(format!("{x}{y}"));
                for z in ["a", "-", "_"] {
                    segments.push(format!("{x}{y}{z}"));
                }
            }
        }
        let refs: Vec<AuthRef> = segments
            .iter()
            .flat_map(|s| [format!("ref://{s}/p/k"), format!("ref://s/{s}/k"), format!("ref://s/p/{s}")])
            .filter_map(|a| AuthRef::parse(&a).ok())
            .collect();
        let mut namespaces = vec![SecretNamespace::Unscoped];
        namespaces.extend(segments.iter().map(|s| owner(s)));
        namespaces.extend(["s", "p", "S", "a/b", "%41", "A", ".platform", "platform", "é"].map(owner));
        let dir = Path::new("/secrets");
        let mut variables = std::collections::HashMap::new();
        let mut files = std::collections::HashMap::new();
        for ns in &namespaces {
            for auth_ref in &refs {
                let v = var(ns, &auth_ref.to_string());
                let expected = 3 + usize::from(*ns != SecretNamespace::Unscoped);
                assert_eq!(variable_segments(&v, SECRET_VARIABLE), Some(expected), "{v}");
                if let Some(other) = variables.insert(v.clone(), (ns.clone(), auth_ref.clone())) {
                    panic!("{v} is named by {other:?} and by {:?}", (ns, auth_ref));
                }
                let (_, path) = file_path(dir, Layout::Namespace(ns), auth_ref).unwrap();
                assert!(!path.starts_with("/secrets/.platform") || *ns == SecretNamespace::Unscoped);
                if let Some(other) = files.insert(path.clone(), (ns.clone(), auth_ref.clone())) {
                    panic!("{} is named by {other:?} and by {:?}", path.display(), (ns, auth_ref));
                }
            }
        }
        // The platform's variables never collide with a namespace's, nor its files (the unscoped
        // AuthRef whose scope is `.platform` names a directory of the platform's, three levels down,
        // never one of its secrets, four levels down).
        for auth_ref in &refs {
            let v = variable(Layout::Platform, SECRET_VARIABLE, auth_ref).unwrap();
            assert!(!variables.contains_key(&v));
            let (_, path) = file_path(dir, Layout::Platform, auth_ref).unwrap();
            assert!(!files.contains_key(&path), "{}", path.display());
        }
    }

    /// Writes a file of the store, with the directories above it.
    fn put(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn store_with(dir: &Path, variables: &[(&str, &str)]) -> SecretStore {
        SecretStore::new(Some(dir.to_path_buf()), true)
            .with_variables(variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_namespace_reads_its_own_secrets_only() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "acme/integrations/harbor/robot", "acme-robot-secret\n");
        put(dir.path(), ".platform/platform/registry/password", "platform-password");
        put(dir.path(), "integrations/harbor/robot", "unscoped-robot");
        let store = store_with(
            dir.path(),
            &[
                ("STELLA_SECRET__EVIL__INTEGRATIONS__HTTP_PROBE__MINE", "evil-own-secret"),
                ("STELLA_SECRET__PLATFORM__REGISTRY__PASSWORD", "legacy-platform-password"),
            ],
        );
        let robot = r("ref://integrations/harbor/robot");
        assert_eq!(store.resolve(&owner("acme"), &robot).unwrap().value.expose(), "acme-robot-secret");
        assert_eq!(store.resolve(&SecretNamespace::Unscoped, &robot).unwrap().value.expose(), "unscoped-robot");
        let not_found = |ns: &SecretNamespace, a: &str| match store.resolve(ns, &r(a)) {
            Err(ResolveError::NotFound(m)) => m,
            other => panic!("{a} in {ns}: {other:?}"),
        };
        // Another tenant's, the platform's, and one that exists nowhere: the same words.
        assert_eq!(not_found(&owner("evil"), "ref://integrations/harbor/robot"), "ref://integrations/harbor/robot");
        assert_eq!(not_found(&owner("evil"), "ref://platform/registry/password"), "ref://platform/registry/password");
        assert_eq!(not_found(&owner("evil"), "ref://integrations/harbor/nothing"), "ref://integrations/harbor/nothing");
        // A tenant's AuthRef that walks into another tenant's tree names a directory: nothing.
        not_found(&SecretNamespace::Unscoped, "ref://acme/integrations/harbor");
        not_found(&owner("acme"), "ref://harbor/robot/x");
        assert_eq!(
            store.resolve(&owner("evil"), &r("ref://integrations/http-probe/mine")).unwrap().value.expose(),
            "evil-own-secret"
        );
        assert_eq!(
            store.platform_secret(&r("ref://platform/registry/password")).unwrap().expose(),
            "platform-password"
        );
        assert!(store.platform_secret(&robot).is_err());
        assert_eq!(
            store.unscoped_secrets(10),
            vec![
                "STELLA_SECRET__PLATFORM__REGISTRY__PASSWORD".to_string(),
                dir.path().join("integrations/harbor/robot").display().to_string(),
            ]
        );
    }

    #[test]
    fn links_stay_inside_their_namespace() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "acme/integrations/harbor/robot", "acme-robot-secret");
        put(dir.path(), "evil/integrations/harbor/..data/own", "evil-own");
        let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, dir.path().join(at)).unwrap();
        link(&dir.path().join("acme/integrations/harbor/robot"), "evil/integrations/harbor/stolen");
        link(Path::new("..data/own"), "evil/integrations/harbor/own");
        link(Path::new("/nonexistent/target"), "evil/integrations/harbor/dangling");
        let store = SecretStore::new(Some(dir.path().to_path_buf()), false);
        let evil = owner("evil");
        assert_eq!(store.resolve(&evil, &r("ref://integrations/harbor/own")).unwrap().value.expose(), "evil-own");
        let err = store.resolve(&evil, &r("ref://integrations/harbor/stolen")).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(matches!(
            store.resolve(&evil, &r("ref://integrations/harbor/dangling")),
            Err(ResolveError::NotFound(_))
        ));
    }

    #[test]
    fn bindings_are_read_beside_the_secret_and_can_be_required() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "acme/integrations/harbor/robot", "acme-robot-secret");
        put(dir.path(), "acme/integrations/harbor/robot.origins", "https://harbor.acme.example\n");
        put(dir.path(), "acme/integrations/harbor/loose", "acme-loose-secret");
        put(dir.path(), "acme/integrations/harbor/broken", "acme-broken-secret");
        put(dir.path(), "acme/integrations/harbor/broken.origins", "harbor.acme.example");
        let store = store_with(
            dir.path(),
            &[
                ("STELLA_SECRET__ACME__INTEGRATIONS__GITHUB__TOKEN", "acme-github-token"),
                (
                    "STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__GITHUB__TOKEN",
                    "https://api.github.com, https://github.com",
                ),
            ],
        );
        let acme = owner("acme");
        let bound = store.resolve(&acme, &r("ref://integrations/harbor/robot")).unwrap();
        assert_eq!(bound.binding.unwrap().to_string(), "https://harbor.acme.example:443");
        let from_env = store.resolve(&acme, &r("ref://integrations/github/token")).unwrap();
        assert_eq!(from_env.binding.unwrap().to_string(), "https://api.github.com:443, https://github.com:443");
        assert!(store.resolve(&acme, &r("ref://integrations/harbor/loose")).unwrap().binding.is_none());
        let err = store.resolve(&acme, &r("ref://integrations/harbor/broken")).unwrap_err();
        assert!(matches!(err, ResolveError::Unavailable(_)) && err.to_string().contains("binding"), "{err}");
        let strict = store.clone().requiring_bindings(true);
        assert!(strict.resolve(&acme, &r("ref://integrations/harbor/robot")).is_ok());
        assert!(matches!(strict.resolve(&acme, &r("ref://integrations/harbor/loose")), Err(ResolveError::Unbound(_))));
        // A binding file is never a secret.
        assert!(AuthRef::parse("ref://integrations/harbor/robot.origins").is_err());
        // A binding that is there but empty, not a file, or twice (a file and a variable) leaves
        // its secret unavailable, never unbound; one in the other store than the value counts.
        put(dir.path(), "acme/integrations/harbor/empty", "acme-empty-bound");
        put(dir.path(), "acme/integrations/harbor/empty.origins", "\n");
        put(dir.path(), "acme/integrations/harbor/twice", "acme-twice-bound");
        put(dir.path(), "acme/integrations/harbor/twice.origins", "https://a.example");
        put(dir.path(), "acme/integrations/harbor/crossed", "acme-crossed-bound");
        std::fs::create_dir(dir.path().join("acme/integrations/harbor/folder.origins")).unwrap();
        put(dir.path(), "acme/integrations/harbor/folder", "acme-folder-bound");
        let store = store_with(
            dir.path(),
            &[
                ("STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__HARBOR__TWICE", "https://b.example"),
                ("STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__HARBOR__CROSSED", "https://crossed.example"),
            ],
        );
        for key in ["empty", "twice", "folder"] {
            let err = store.resolve(&acme, &r(&format!("ref://integrations/harbor/{key}"))).unwrap_err();
            assert!(matches!(err, ResolveError::Unavailable(_)) && err.to_string().contains("binding"), "{key}: {err}");
        }
        let crossed = store.resolve(&acme, &r("ref://integrations/harbor/crossed")).unwrap();
        assert_eq!(crossed.binding.unwrap().to_string(), "https://crossed.example:443");
    }

    #[test]
    fn locations_name_the_variable_and_the_file() {
        let store = SecretStore::new(Some("/run/secrets".into()), true);
        let l = store.locations(&owner("acme"), &r("ref://integrations/harbor/robot")).unwrap();
        assert_eq!(l.variable.as_deref(), Some("STELLA_SECRET__ACME__INTEGRATIONS__HARBOR__ROBOT"));
        assert_eq!(l.binding_variable.as_deref(), Some("STELLA_SECRET_ORIGINS__ACME__INTEGRATIONS__HARBOR__ROBOT"));
        assert_eq!(l.file, Some(PathBuf::from("/run/secrets/acme/integrations/harbor/robot")));
        assert_eq!(l.binding_file, Some(PathBuf::from("/run/secrets/acme/integrations/harbor/robot.origins")));
        let l = store.locations(&owner(".x/y"), &r("ref://s/p/k")).unwrap();
        assert_eq!(l.file, Some(PathBuf::from("/run/secrets/%2Ex%2Fy/s/p/k")));
        let p = store.platform_locations(&r("ref://platform/registry/password")).unwrap();
        assert_eq!(p.file, Some(PathBuf::from("/run/secrets/.platform/platform/registry/password")));
        assert_eq!(p.binding_variable, None);
        assert!(store.locations(&owner(""), &r("ref://s/p/k")).is_err());
    }
}
