//! Connections for the single-statement reads of the request path (`GET /{id}`, list pages,
//! audit and event pages).
//!
//! sqlx's pool pings every connection when it is given back (a `Sync` and a wait for the
//! server's answer), so each pooled query costs two round trips to the database and a spawned
//! task. A read that ran to completion leaves its connection in a known state, so this pool takes
//! it back as it is; a read that failed, or that was cancelled half-way (its
//! future dropped), loses its connection instead, and the next read opens a fresh one.
//! Transactions keep using sqlx's pool, whose rollback-on-release they rely on.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::{Connection, Database};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct ReadPool<DB: Database> {
    options: <DB::Connection as Connection>::Options,
    idle: Mutex<Vec<DB::Connection>>,
    /// At most this many connections are open (idle or leased).
    permits: Semaphore,
    acquire_timeout: Duration,
}

impl<DB: Database> std::fmt::Debug for ReadPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool").field("available", &self.permits.available_permits()).finish_non_exhaustive()
    }
}

impl<DB: Database> ReadPool<DB> {
    /// A pool of at most `size` connections, opened on demand.
    pub fn new(options: <DB::Connection as Connection>::Options, size: usize, acquire_timeout: Duration) -> Self {
        Self { options, idle: Mutex::new(Vec::with_capacity(size)), permits: Semaphore::new(size), acquire_timeout }
    }

    /// A connection for one read: an idle one, or a new one when none is idle. Waiting for a
    /// free slot and connecting take at most the acquire timeout together (`PoolTimedOut`), so an
    /// unreachable database answers 503 in seconds, not after the system's connect timeout.
    pub async fn lease(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.lease_now()).await.map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn lease_now(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        let permit = self.permits.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match idle {
            Some(c) => c,
            None => DB::Connection::connect_with(&self.options).await?,
        };
        Ok(Lease { pool: self, connection, _permit: permit })
    }
}

/// One leased connection. Give it back with [`Lease::finish`]; dropped any other way (an early
/// return, a cancelled request) it is closed rather than reused.
pub struct Lease<'p, DB: Database> {
    pool: &'p ReadPool<DB>,
    connection: DB::Connection,
    _permit: SemaphorePermit<'p>,
}

impl<DB: Database> Lease<'_, DB> {
    pub fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    /// Ends the lease with the read's result: the connection goes back to the pool when the read
    /// succeeded, and is closed after any error. (Even an error the server answered may be its
    /// last word: `pg_terminate_backend` sends one, then closes the socket.)
    pub fn finish<T>(self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if result.is_ok() {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(self.connection);
        }
        result
    }
}
