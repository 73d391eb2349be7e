//! The console's sign-ins: a session opened for a verified principal (an OpenID Connect sign-in
//! or a one-time link), found again by its cookie, ended by signing out or by time. What a
//! session may see and do is what a bearer token with the same tenant and scopes may: the console
//! calls the same operations as the API.

use std::time::Duration;

use super::{Catalog, ServiceError};
use crate::domain::{from_unix_ms, now, unix_ms};
use crate::identity::session::{self, ConsoleSession, MAX_SESSIONS_PER_SUBJECT};
use crate::identity::{Principal, SignInLink};

/// A link is remembered as spent this long past its `exp` (beyond the leeway tokens are given).
const SPENT_LINK_MARGIN_MS: i64 = 5 * 60 * 1000;

impl Catalog {
    /// Opens a session of `ttl` for `principal`; answers the cookie's secret (to give the browser
    /// only) and the session.
    pub async fn open_console_session(
        &self,
        principal: Principal,
        ttl: Duration,
    ) -> Result<(String, ConsoleSession), ServiceError> {
        // To the millisecond, as the store keeps it.
        let created_at = from_unix_ms(unix_ms(now()));
        let session =
            ConsoleSession { principal, csrf_token: session::new_secret(), created_at, expires_at: created_at + ttl };
        let secret = session::new_secret();
        self.store.create_session(&session::secret_hash(&secret), &session, MAX_SESSIONS_PER_SUBJECT).await?;
        Ok((secret, session))
    }

    /// Opens a session for a one-time link, spending it: `None` when it was spent already.
    pub async fn open_console_session_with_link(
        &self,
        link: SignInLink,
        ttl: Duration,
    ) -> Result<Option<(String, ConsoleSession)>, ServiceError> {
        let spent_until = link.expires_at.saturating_mul(1000).saturating_add(SPENT_LINK_MARGIN_MS);
        if !self.store.spend_link(&link.link_id, spent_until).await? {
            return Ok(None);
        }
        Ok(Some(self.open_console_session(link.principal, ttl).await?))
    }

    /// The session a cookie's secret belongs to, if it has not ended.
    pub async fn console_session(&self, secret: &str) -> Result<Option<ConsoleSession>, ServiceError> {
        if !session::plausible_secret(secret) {
            return Ok(None);
        }
        Ok(self.store.session(&session::secret_hash(secret), unix_ms(now())).await?)
    }

    /// Ends the session a cookie's secret belongs to.
    pub async fn close_console_session(&self, secret: &str) -> Result<(), ServiceError> {
        if session::plausible_secret(secret) {
            self.store.delete_session(&session::secret_hash(secret)).await?;
        }
        Ok(())
    }
}
