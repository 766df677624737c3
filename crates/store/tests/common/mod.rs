//! Test support: a store on each backend. PostgreSQL is required: when it is not reachable
//! the test fails with a message saying so (it never skips silently).
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use vowguard_store::Store;

/// The server the tests use (`VOWGUARD_TEST_PG` overrides; trust auth, no password).
pub fn pg_admin_url() -> String {
    std::env::var("VOWGUARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A PostgreSQL database created for one test, dropped by [`PgDatabase::drop_database`].
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a uniquely named database. Panics with a clear message when the server is
    /// not reachable.
    pub async fn create(tag: &str) -> PgDatabase {
        sqlx::any::install_default_drivers();
        let admin = pg_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required by the store tests and is not reachable at {admin}: {e}. \
                 Start it (e.g. `pg_ctlcluster 15 main start`) or set VOWGUARD_TEST_PG."
            )
        });
        let name = format!(
            "vg_store_{tag}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Drops it (closing `store` first).
    pub async fn drop_database(self, store: Option<&Store>) {
        if let Some(store) = store {
            store.close().await;
        }
        let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
            .await
            .expect("reconnect to drop the test database");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop the test database");
    }
}

/// An SQLite store in a temporary directory.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(&dir.path().join("store.db"))
        .await
        .expect("open sqlite");
    (store, dir)
}

/// A PostgreSQL store in a fresh database.
pub async fn pg_store(tag: &str) -> (Store, PgDatabase) {
    let db = PgDatabase::create(tag).await;
    let store = Store::connect_postgres(&db.url).await.expect("connect pg");
    (store, db)
}

pub fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}
