//! The console's sessions and spent sign-in links: kept by the hash of their secret, dropped
//! when they expire (and a subject's oldest sessions when it signs in once too often).

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::StoreError;
use super::sql::{map_error, sql_impl};
use crate::domain::{from_unix_ms, unix_ms};
use crate::identity::{Caller, ConsoleSession, Principal};

/// The console's sessions and spent links.
#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// Keeps a session under the hash of its secret, and drops its subject's oldest sessions
    /// past `keep_per_subject`.
    async fn create_session(
        &self,
        secret_hash: &str,
        session: &ConsoleSession,
        keep_per_subject: u32,
    ) -> Result<(), StoreError>;

    /// The session whose secret hashes to `secret_hash`, unless it ended before `now_ms`.
    async fn session(&self, secret_hash: &str, now_ms: i64) -> Result<Option<ConsoleSession>, StoreError>;

    /// Ends a session (signing out); nothing when there is none.
    async fn delete_session(&self, secret_hash: &str) -> Result<(), StoreError>;

    /// Spends a one-time link: `false` when it was spent already.
    async fn spend_link(&self, link_id: &str, expires_ms: i64) -> Result<bool, StoreError>;

    /// Drops the sessions and spent links that ended before `now_ms`; returns how many.
    async fn prune_console(&self, now_ms: i64) -> Result<u64, StoreError>;
}

fn decode_session<R: Row>(row: &R) -> Result<ConsoleSession, StoreError>
where
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'n> &'n str: ColumnIndex<R>,
{
    let text = |name: &str| row.try_get::<String, _>(name).map_err(map_error);
    let ms = |name: &str| row.try_get::<i64, _>(name).map_err(map_error);
    Ok(ConsoleSession {
        principal: Principal {
            caller: Caller { tenant: text("tenant_id")?, subject: text("subject")? },
            scopes: text("scopes")?.split_whitespace().map(str::to_string).collect(),
        },
        csrf_token: text("csrf_token")?,
        created_at: from_unix_ms(ms("created_ms")?),
        expires_at: from_unix_ms(ms("expires_ms")?),
    })
}

sql_impl! {
    #[async_trait]
    impl ConsoleStore for SqlStore<D> {
        async fn create_session(
            &self,
            secret_hash: &str,
            session: &ConsoleSession,
            keep_per_subject: u32,
        ) -> Result<(), StoreError> {
            let caller = &session.principal.caller;
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO console_sessions (session_hash, tenant_id, subject, scopes, csrf_token, created_ms, \
                 expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(secret_hash)
            .bind(caller.tenant.as_str())
            .bind(caller.subject.as_str())
            .bind(session.principal.scopes.join(" "))
            .bind(session.csrf_token.as_str())
            .bind(unix_ms(session.created_at))
            .bind(unix_ms(session.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            // The subject's newest sessions stay; a session signed in more often than that ends the
            // oldest, so no one can make the host keep sessions without end.
            sqlx::query(
                "DELETE FROM console_sessions WHERE tenant_id = $1 AND subject = $2 AND session_hash NOT IN \
                 (SELECT session_hash FROM console_sessions WHERE tenant_id = $1 AND subject = $2 \
                  ORDER BY created_ms DESC, session_hash LIMIT $3)",
            )
            .bind(caller.tenant.as_str())
            .bind(caller.subject.as_str())
            .bind(i64::from(keep_per_subject))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            tx.commit().await.map_err(map_error)
        }

        async fn session(&self, secret_hash: &str, now_ms: i64) -> Result<Option<ConsoleSession>, StoreError> {
            let query = sqlx::query("SELECT * FROM console_sessions WHERE session_hash = $1 AND expires_ms > $2")
                .bind(secret_hash)
                .bind(now_ms);
            self.read_optional(query).await?.as_ref().map(decode_session).transpose()
        }

        async fn delete_session(&self, secret_hash: &str) -> Result<(), StoreError> {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
                .bind(secret_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            tx.commit().await.map_err(map_error)
        }

        async fn spend_link(&self, link_id: &str, expires_ms: i64) -> Result<bool, StoreError> {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "INSERT INTO console_used_links (link_id, expires_ms) VALUES ($1, $2) ON CONFLICT (link_id) DO NOTHING",
            )
            .bind(link_id)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            tx.commit().await.map_err(map_error)?;
            Ok(D::rows_affected(&done) == 1)
        }

        async fn prune_console(&self, now_ms: i64) -> Result<u64, StoreError> {
            let mut tx = self.begin_write().await?;
            let sessions = sqlx::query("DELETE FROM console_sessions WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            // A link is refused by its own `exp` once it expires, so its row is no longer needed.
            let links = sqlx::query("DELETE FROM console_used_links WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            tx.commit().await.map_err(map_error)?;
            Ok(D::rows_affected(&sessions) + D::rows_affected(&links))
        }
    }
}
