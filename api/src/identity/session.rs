//! A console sign-in: who is signed in (tenant, subject, scopes, as a bearer token would carry
//! them), the form token that guards their changes, and until when.
//!
//! The browser holds a random secret in an HttpOnly, SameSite=Strict cookie; the store keeps only
//! its SHA-256, so neither a copy of the database nor a log line signs anybody in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Principal;

/// A signed-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Who, in which tenant, with which scopes.
    pub principal: Principal,
    /// The token every form of the session carries (CSRF).
    pub csrf_token: String,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it ends.
    pub expires_at: OffsetDateTime,
}

/// How many sessions a subject of a tenant keeps: signing in again drops the oldest past this.
pub const MAX_SESSIONS_PER_SUBJECT: u32 = 16;

/// A new random secret: 32 bytes, base64url (a session's cookie value or a CSRF token).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a cookie value: its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether a form's token is the session's (compared in constant time).
pub fn csrf_matches(session: &ConsoleSession, offered: &str) -> bool {
    csrf_matches_secret(&session.csrf_token, offered)
}

/// Whether `offered` is `secret`, compared in constant time: every byte whatever the first
/// difference, so timing tells nothing of the secret.
pub fn csrf_matches_secret(secret: &str, offered: &str) -> bool {
    let (a, b) = (secret.as_bytes(), offered.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Whether a cookie value could be one this service issued (43 base64url characters), checked
/// before anything is looked up.
pub fn plausible_secret(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Caller;

    #[test]
    fn secrets_are_random_hashed_and_compared_whole() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(plausible_secret(&a) && !plausible_secret("short") && !plausible_secret(&format!("{}%", &a[..42])));
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
        let now = OffsetDateTime::now_utc();
        let session = ConsoleSession {
            principal: Principal { caller: Caller { tenant: "t".into(), subject: "s".into() }, scopes: vec![] },
            csrf_token: a.clone(),
            created_at: now,
            expires_at: now,
        };
        assert!(csrf_matches(&session, &a));
        assert!(!csrf_matches(&session, &b) && !csrf_matches(&session, "") && !csrf_matches(&session, &a[..42]));
    }
}
