//! Who is calling, and what they may do: the one place access is decided, for every door.
//!
//! A door (the API, the console, the command line) verifies who is calling and holds a
//! [`Principal`]: a tenant, a subject and the scopes its token or sign-in carries. Before it can
//! call a service operation it asks the principal for the *grant* the operation takes: a
//! [`Reader`], an [`Admin`], a [`PluginsAdmin`], an [`Auditor`] or a [`ConnectorsReader`]. A
//! grant is proof that the check passed: its fields are private, and only [`Grant::grant`] (which
//! checks the scopes) makes one. So the service's operations, by their signatures, hold every
//! door to the same rule, and a door cannot forget the check or make up its own.
//!
//! This module imports nothing from the rest of the crate: it is the floor the others stand on.

pub mod session;

pub use session::ConsoleSession;

/// The scope that lets a caller read its tenant's integrations.
pub const READ_SCOPE: &str = "integrations.read";
/// The scope that lets a caller change its tenant's integrations (and read them).
pub const ADMIN_SCOPE: &str = "integrations.admin";
/// The platform-wide scope that lets a caller submit, review and activate connector code. It
/// implies no tenant scope, and no tenant scope implies it.
pub const PLUGINS_ADMIN_SCOPE: &str = "plugins.admin";
/// The read-only scope of a tenant's auditors: the invocation ledger of the tenant.
pub const AUDIT_SCOPE: &str = "integrations.audit";
/// Every scope a token may carry for this service.
pub const SCOPES: [&str; 4] = [READ_SCOPE, ADMIN_SCOPE, AUDIT_SCOPE, PLUGINS_ADMIN_SCOPE];
/// Longest tenant id.
const MAX_TENANT_LEN: usize = 128;

/// Whether `tenant` can be a tenant id: 1 to 128 bytes without control characters (what a token's
/// tenant claim, `token --tenant` and `secrets.legacy-tenant` accept).
pub fn is_tenant_id(tenant: &str) -> bool {
    !tenant.is_empty() && tenant.len() <= MAX_TENANT_LEN && !tenant.chars().any(char::is_control)
}

/// Who is calling: the tenant and subject of a verified token or sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The tenant the caller acts in.
    pub tenant: String,
    /// The token's subject, recorded as the actor.
    pub subject: String,
}

/// A verified token or console sign-in: who, and with which scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The caller's tenant and subject.
    pub caller: Caller,
    /// The scopes the token carries.
    pub scopes: Vec<String>,
}

impl Principal {
    fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The grant `G`, if the principal's scopes allow it.
    pub fn grant<G: Grant>(&self) -> Result<G, AuthError> {
        G::grant(self)
    }

    /// Whether the principal's scopes allow the grant `G` (what a page shows or offers).
    pub fn may<G: Grant>(&self) -> bool {
        G::grant(self).is_ok()
    }
}

/// A verified one-time console sign-in link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInLink {
    /// Who it signs in, with which scopes.
    pub principal: Principal,
    /// Its id (`jti`), spent on first use.
    pub link_id: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// Why a request is not authenticated or not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token (or no sign-in).
    #[error("a bearer token is required")]
    Missing,
    /// The token is not a valid, trusted, current token (401).
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// The token is valid but lacks the scope (403).
    #[error("the token lacks the `{0}` scope")]
    MissingScope(&'static str),
}

/// A check of a principal's scopes, and the proof that it passed.
pub trait Grant: Sized {
    /// The scope a caller is told to get when the check fails (and the one the API's document
    /// declares for the routes that take this grant).
    const SCOPE: &'static str;

    /// The grant, if `principal`'s scopes allow it.
    fn grant(principal: &Principal) -> Result<Self, AuthError>;
}

/// May read its tenant's integrations: `integrations.read`, or `integrations.admin` (which
/// implies it).
#[derive(Clone, Debug)]
pub struct Reader(Caller);

/// May change its tenant's integrations: `integrations.admin`.
#[derive(Clone, Debug)]
pub struct Admin(Caller);

/// May submit, review and activate connector code, platform-wide: `plugins.admin`. Its tenant is
/// only recorded (as the actor's).
#[derive(Clone, Debug)]
pub struct PluginsAdmin(Caller);

/// May read the loaded connectors (what each may do, who signed it): a tenant's reader (who
/// picks a provider) or a platform reviewer (who decides which code runs). Connectors belong to
/// no tenant.
#[derive(Clone, Debug)]
pub struct ConnectorsReader(Caller);

/// May read the invocation ledger: its tenant's with `integrations.audit` (or
/// `integrations.admin`), every tenant's with `plugins.admin`.
#[derive(Clone, Debug)]
pub struct Auditor(LedgerScope);

/// Whose invocations an [`Auditor`] may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerScope {
    /// This tenant's only (another tenant's invocation does not exist).
    Tenant(String),
    /// Every tenant's (a `plugins.admin` caller).
    Platform,
}

impl LedgerScope {
    /// The one tenant the scope is limited to; `None`: every tenant.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Tenant(t) => Some(t),
            Self::Platform => None,
        }
    }
}

/// The grant `make` builds if `allowed`, else the refusal that names `G`'s scope.
fn grant_if<G: Grant>(allowed: bool, make: impl FnOnce() -> G) -> Result<G, AuthError> {
    if allowed { Ok(make()) } else { Err(AuthError::MissingScope(G::SCOPE)) }
}

impl Grant for Reader {
    const SCOPE: &'static str = READ_SCOPE;
    fn grant(p: &Principal) -> Result<Self, AuthError> {
        grant_if(p.has(READ_SCOPE) || p.has(ADMIN_SCOPE), || Self(p.caller.clone()))
    }
}

impl Grant for Admin {
    const SCOPE: &'static str = ADMIN_SCOPE;
    fn grant(p: &Principal) -> Result<Self, AuthError> {
        grant_if(p.has(ADMIN_SCOPE), || Self(p.caller.clone()))
    }
}

impl Grant for PluginsAdmin {
    const SCOPE: &'static str = PLUGINS_ADMIN_SCOPE;
    fn grant(p: &Principal) -> Result<Self, AuthError> {
        grant_if(p.has(PLUGINS_ADMIN_SCOPE), || Self(p.caller.clone()))
    }
}

impl Grant for ConnectorsReader {
    const SCOPE: &'static str = READ_SCOPE;
    fn grant(p: &Principal) -> Result<Self, AuthError> {
        grant_if(p.may::<Reader>() || p.may::<PluginsAdmin>(), || Self(p.caller.clone()))
    }
}

impl Grant for Auditor {
    const SCOPE: &'static str = AUDIT_SCOPE;
    fn grant(p: &Principal) -> Result<Self, AuthError> {
        let scope = if p.has(PLUGINS_ADMIN_SCOPE) {
            Some(LedgerScope::Platform)
        } else if p.has(AUDIT_SCOPE) || p.has(ADMIN_SCOPE) {
            Some(LedgerScope::Tenant(p.caller.tenant.clone()))
        } else {
            None
        };
        scope.map(Self).ok_or(AuthError::MissingScope(Self::SCOPE))
    }
}

impl Reader {
    /// Who is reading.
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

impl Admin {
    /// Who is changing.
    pub fn caller(&self) -> &Caller {
        &self.0
    }

    /// An admin reads what it changes.
    pub fn reader(&self) -> Reader {
        Reader(self.0.clone())
    }
}

impl PluginsAdmin {
    /// Who is deciding (recorded as the actor).
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

impl ConnectorsReader {
    /// Who is reading.
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

impl Auditor {
    /// Whose invocations it reads.
    pub fn scope(&self) -> &LedgerScope {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &str) -> Principal {
        Principal {
            caller: Caller { tenant: "acme".into(), subject: "alice".into() },
            scopes: scopes.split_whitespace().map(str::to_string).collect(),
        }
    }

    /// Every grant against every combination of scopes: the whole rule in one table.
    #[test]
    fn each_grant_follows_from_the_scopes_alone() {
        /// Scopes; may read, administer, review plugins, read connectors; the auditor's scope.
        type Row = (&'static str, bool, bool, bool, bool, Option<LedgerScope>);
        let table: &[Row] = &[
            ("", false, false, false, false, None),
            ("integrations.read", true, false, false, true, None),
            ("integrations.admin", true, true, false, true, Some(LedgerScope::Tenant("acme".into()))),
            ("integrations.audit", false, false, false, false, Some(LedgerScope::Tenant("acme".into()))),
            ("plugins.admin", false, false, true, true, Some(LedgerScope::Platform)),
            ("plugins.admin integrations.audit", false, false, true, true, Some(LedgerScope::Platform)),
            // Near misses are nothing.
            ("integrations.reader Integrations.read plugins", false, false, false, false, None),
        ];
        for (scopes, read, admin, plugins, connectors, ledger) in table {
            let p = principal(scopes);
            assert_eq!(p.may::<Reader>(), *read, "{scopes}: read");
            assert_eq!(p.may::<Admin>(), *admin, "{scopes}: admin");
            assert_eq!(p.may::<PluginsAdmin>(), *plugins, "{scopes}: plugins.admin");
            assert_eq!(p.may::<ConnectorsReader>(), *connectors, "{scopes}: connectors");
            assert_eq!(p.grant::<Auditor>().ok().map(|a| a.scope().clone()), *ledger, "{scopes}: ledger");
        }
        // A refusal names the scope to get.
        assert_eq!(principal("").grant::<Admin>().unwrap_err(), AuthError::MissingScope(ADMIN_SCOPE));
        assert_eq!(principal("").grant::<Auditor>().unwrap_err(), AuthError::MissingScope(AUDIT_SCOPE));
    }
}
