//! The store: connection, migrations, the applied-through watermark, catch-up and rebuild.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use vowguard_core::{AuditRecord, Error};

use crate::config::{StoreLocation, redact_url};
use crate::projection::Batch;
use crate::schema::{MIGRATIONS, PROJECTION_TABLES};
use crate::source::AuditSource;

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Records applied per transaction by [`Store::catch_up`] and [`Store::rebuild`].
pub(crate) const APPLY_CHUNK: usize = 20_000;

/// The report store (cheap to clone: a connection pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where, for messages (a PostgreSQL password is masked).
    display: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("at", &self.display)
            .finish_non_exhaustive()
    }
}

/// What [`Store::rebuild`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RebuildSummary {
    /// Audit records applied.
    pub records: u64,
    /// Index of the last one, if any.
    pub applied_through: Option<u64>,
}

/// Where a catch-up stands, handed to the progress callback of
/// [`Store::catch_up_with_progress`] before each transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpProgress {
    /// The index of the next audit record to apply (everything before it is applied).
    pub next_index: u64,
    /// How many records the audit log holds, if its source can tell.
    pub total: Option<u64>,
    /// Records applied by this call so far.
    pub applied: u64,
}

/// Maps a database error to the one error model, naming the store and what was being done.
pub(crate) fn db_error(store: &str, doing: &str, e: &sqlx::Error) -> Error {
    let unavailable = matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    );
    let message = format!("report store {store}: {doing}: {e}");
    if unavailable {
        Error::unavailable(message)
    } else {
        Error::internal(message)
    }
}

impl Store {
    /// Opens (creating if missing) the SQLite store at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Store, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::io(format!("create the store directory {}", dir.display()), e)
            })?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect_url(&url, Backend::Sqlite, path.display().to_string()).await
    }

    /// Connects to PostgreSQL at `url` and migrates the database.
    pub async fn connect_postgres(url: &str) -> Result<Store, Error> {
        Self::connect_url(url, Backend::Postgres, redact_url(url)).await
    }

    /// Opens the store at `location`.
    pub async fn open(location: &StoreLocation) -> Result<Store, Error> {
        match location {
            StoreLocation::Sqlite(path) => Self::open_sqlite(path).await,
            StoreLocation::Postgres(url) => Self::connect_postgres(url).await,
        }
    }

    async fn connect_url(url: &str, backend: Backend, display: String) -> Result<Store, Error> {
        sqlx::any::install_default_drivers();
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| {
                Error::unavailable(format!("report store {display}: cannot connect: {e}"))
            })?;
        let store = Store {
            pool,
            backend,
            display: display.into(),
        };
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&store.pool)
                .await
                .map_err(|e| store.err("enable WAL", &e))?;
        }
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) fn err(&self, doing: &str, e: &sqlx::Error) -> Error {
        db_error(&self.display, doing, e)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where it is (a PostgreSQL password masked).
    pub fn location_display(&self) -> &str {
        &self.display
    }

    /// Applies the migrations not yet applied; returns the schema version.
    pub async fn migrate(&self) -> Result<i64, Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS store_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(|e| self.err("create the migration table", &e))?;
        let mut version = 0;
        for migration in MIGRATIONS {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(|e| self.err("begin a migration", &e))?;
            let done: Option<AnyRow> =
                sqlx::query("SELECT version FROM store_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.err("read the migration table", &e))?;
            if done.is_none() {
                for statement in migration.statements {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            self.err(
                                &format!("migration {} ({})", migration.version, migration.name),
                                &e,
                            )
                        })?;
                }
                sqlx::query(
                    "INSERT INTO store_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                )
                .bind(migration.version)
                .bind(migration.name)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err("record a migration", &e))?;
            }
            tx.commit()
                .await
                .map_err(|e| self.err("commit a migration", &e))?;
            version = migration.version;
        }
        Ok(version)
    }

    /// The index of the last audit record applied, if any.
    pub async fn applied_through(&self) -> Result<Option<u64>, Error> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT value FROM store_meta WHERE key = 'applied_through'")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err("read the applied index", &e))?;
        Ok(match row {
            Some(row) => parse_watermark(&row.try_get::<String, _>(0).unwrap_or_default()),
            None => None,
        })
    }

    /// The index of the next audit record the store expects.
    pub async fn next_index(&self) -> Result<u64, Error> {
        Ok(self.applied_through().await?.map_or(0, |i| i + 1))
    }

    /// Applies one audit record at `index`. Idempotent: a record at or below the applied
    /// index is skipped (returns `false`). A record beyond the next expected index is refused
    /// (the store never has a silent gap): feed the missing ones first ([`Store::catch_up`]).
    pub async fn apply(&self, index: u64, record: &AuditRecord) -> Result<bool, Error> {
        Ok(self
            .apply_batch(index, std::slice::from_ref(record))
            .await?
            == 1)
    }

    /// Applies consecutive records, the first at `first_index`, in one transaction; returns
    /// how many were new.
    pub async fn apply_batch(
        &self,
        first_index: u64,
        records: &[AuditRecord],
    ) -> Result<u64, Error> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.err("begin applying audit records", &e))?;
        // Take the write lock first (SQLite: the database; PostgreSQL: the row), so
        // concurrent appliers serialise instead of racing on the watermark.
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ('applied_through', '-1')
             ON CONFLICT (key) DO UPDATE SET value = store_meta.value",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err("lock the applied index", &e))?;
        let row: AnyRow = sqlx::query("SELECT value FROM store_meta WHERE key = 'applied_through'")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err("read the applied index", &e))?;
        let applied = parse_watermark(&row.try_get::<String, _>(0).unwrap_or_default());
        let expected = applied.map_or(0, |i| i + 1);
        let skip = expected.saturating_sub(first_index);
        if skip >= records.len() as u64 {
            return Ok(0);
        }
        if first_index > expected {
            return Err(Error::invalid_input(format!(
                "report store {}: audit record {first_index} arrived but the store expects {expected} next: feed the missing records first (catch up from the audit log)",
                self.display
            )));
        }
        let fresh = &records[skip as usize..];
        let start = first_index + skip;
        let mut batch = Batch::default();
        for (offset, record) in fresh.iter().enumerate() {
            batch.add(start + offset as u64, record);
        }
        batch.write(self, &mut tx).await?;
        let last = start + fresh.len() as u64 - 1;
        sqlx::query("UPDATE store_meta SET value = $1 WHERE key = 'applied_through'")
            .bind(last.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err("advance the applied index", &e))?;
        tx.commit()
            .await
            .map_err(|e| self.err("commit applied audit records", &e))?;
        Ok(fresh.len() as u64)
    }

    /// Applies every record `source` has beyond the applied index; returns how many.
    pub async fn catch_up(&self, source: &dyn AuditSource) -> Result<u64, Error> {
        self.catch_up_with_progress(source, &|_| {}).await
    }

    /// Like [`Store::catch_up`], calling `progress` after each transaction of
    /// `APPLY_CHUNK` records with where the store stands (see [`CatchUpProgress`]).
    pub async fn catch_up_with_progress(
        &self,
        source: &dyn AuditSource,
        progress: &(dyn Fn(CatchUpProgress) + Sync),
    ) -> Result<u64, Error> {
        let total = source.record_count().await?;
        let mut applied = 0;
        loop {
            let next = self.next_index().await?;
            progress(CatchUpProgress {
                next_index: next,
                total,
                applied,
            });
            let records = source.records_from(next, APPLY_CHUNK).await?;
            let Some((first, _)) = records.first() else {
                return Ok(applied);
            };
            let first = *first;
            let records: Vec<AuditRecord> = records.into_iter().map(|(_, r)| r).collect();
            let n = self.apply_batch(first, &records).await?;
            if n == 0 {
                return Ok(applied);
            }
            applied += n;
        }
    }

    /// Empties the projection and applies `records` (consecutive, from index 0), in
    /// transactions of `APPLY_CHUNK` records: `vowguard audit rebuild-store`.
    pub async fn rebuild<I>(&self, records: I) -> Result<RebuildSummary, Error>
    where
        I: IntoIterator<Item = Result<(u64, AuditRecord), Error>>,
    {
        self.clear().await?;
        let mut summary = RebuildSummary {
            records: 0,
            applied_through: None,
        };
        let mut chunk = Vec::with_capacity(APPLY_CHUNK);
        let mut first = None;
        for item in records {
            let (index, record) = item?;
            first.get_or_insert(index);
            chunk.push(record);
            if chunk.len() == APPLY_CHUNK {
                let start = first.take().unwrap_or(index);
                summary.records += self.apply_batch(start, &chunk).await?;
                chunk.clear();
            }
            summary.applied_through = Some(index);
        }
        if let Some(start) = first {
            summary.records += self.apply_batch(start, &chunk).await?;
        }
        Ok(summary)
    }

    /// Empties the projection and applies everything `source` holds.
    pub async fn rebuild_from(&self, source: &dyn AuditSource) -> Result<RebuildSummary, Error> {
        self.rebuild_from_with_progress(source, &|_| {}).await
    }

    /// Like [`Store::rebuild_from`], reporting progress as
    /// [`Store::catch_up_with_progress`] does.
    pub async fn rebuild_from_with_progress(
        &self,
        source: &dyn AuditSource,
        progress: &(dyn Fn(CatchUpProgress) + Sync),
    ) -> Result<RebuildSummary, Error> {
        self.clear().await?;
        let records = self.catch_up_with_progress(source, progress).await?;
        Ok(RebuildSummary {
            records,
            applied_through: self.applied_through().await?,
        })
    }

    async fn clear(&self) -> Result<(), Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.err("begin clearing the store", &e))?;
        for table in PROJECTION_TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(&format!("clear {table}"), &e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.err("commit clearing the store", &e))
    }

    /// Keeps the store caught up with `source` until `shutdown` resolves: every `interval`
    /// (and when `wake` is notified) it applies what is new. While the database is down it
    /// logs once and retries; the pipeline never waits for it.
    pub async fn follow(
        &self,
        source: Arc<dyn AuditSource>,
        interval: Duration,
        wake: Arc<tokio::sync::Notify>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            match self.catch_up(source.as_ref()).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!(store = %self.display, "report store caught up again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(store = %self.display, error = %e, "report store unavailable; it will catch up from the audit log");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse_watermark(value: &str) -> Option<u64> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|v| u64::try_from(v).ok())
}
