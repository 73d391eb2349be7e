//! Helpers shared by the test binaries: a fresh PostgreSQL database per test, and a browser
//! driven through WebDriver (`webdriver.rs`).

#![allow(dead_code)]

pub mod webdriver;

use sqlx::Connection;

/// The administrative URL of the test server (`STELLA_TEST_POSTGRES`).
pub fn postgres_admin_url() -> String {
    std::env::var("STELLA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database created for one test and dropped by [`TestDatabase::drop_now`].
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
}

/// Held (shared) by every `CREATE DATABASE` and `DROP DATABASE` of the tests, and held alone by the
/// full-disk test while its tablespace is full: PostgreSQL asks for an immediate checkpoint to
/// create or drop a database, and a checkpoint fails while a tablespace's disk is full, so a test
/// creating or dropping a database then would fail for a reason not its own.
pub static DATABASE_DDL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Creates a fresh database. Without a reachable server: `None` (with a message), except under
/// `CI=true`, where the test fails.
pub async fn postgres_database() -> Option<TestDatabase> {
    let admin_url = postgres_admin_url();
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("PostgreSQL at {admin_url} is not reachable ({e}); skipping the PostgreSQL part");
            return None;
        }
        Err(e) => panic!("CI=true requires PostgreSQL at {admin_url}: {e}"),
    };
    let name = format!("stella_test_{}", uuid::Uuid::new_v4().simple());
    let ddl = DATABASE_DDL.read().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    drop(ddl);
    let url = match admin_url.rsplit_once('/') {
        // The server part, with our database instead of the administrative one.
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("STELLA_TEST_POSTGRES must end with a database name"),
    };
    Some(TestDatabase { url, name })
}

impl TestDatabase {
    /// Drops the database, terminating its connections.
    pub async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ddl = DATABASE_DDL.read().await;
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
}
