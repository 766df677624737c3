//! The findings on disk: embedded SQLite, one row per active finding.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use vowguard_core::{Error, Finding};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS findings (
        key TEXT PRIMARY KEY,
        scanner TEXT NOT NULL,
        generation INTEGER NOT NULL,
        body TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS findings_by_scanner ON findings (scanner, generation)",
    "CREATE TABLE IF NOT EXISTS scanner_state (
        scanner TEXT PRIMARY KEY,
        generation INTEGER NOT NULL DEFAULT 0,
        last_attempt TEXT,
        last_success TEXT,
        checkpoint TEXT,
        last_error TEXT,
        last_findings INTEGER NOT NULL DEFAULT 0
    )",
];

/// One scanner's sync history, for `vowguard vulns list` and `/health`-style reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScannerStatus {
    /// The scanner's component id.
    pub scanner: String,
    /// When a sync last started.
    pub last_attempt: Option<DateTime<Utc>>,
    /// When a sync last succeeded: the age of the findings kept.
    pub last_success: Option<DateTime<Utc>>,
    /// Where the next incremental sync starts.
    pub checkpoint: Option<DateTime<Utc>>,
    /// Why the last sync failed, when it did (cleared by a success).
    pub last_error: Option<String>,
    /// Findings the last successful sync reported.
    pub last_findings: u64,
    /// Active findings stored now.
    pub active: u64,
}

/// The findings store (`<data_dir>/vulns.db`).
#[derive(Debug, Clone)]
pub struct FindingStore {
    pool: SqlitePool,
    display: String,
}

fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl FindingStore {
    /// Opens (creating it when missing) the store at `path`.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::io(
                    format!("findings store {display}: cannot create its directory"),
                    e,
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| {
                Error::unavailable(format!("findings store {display}: cannot open: {e}"))
            })?;
        let store = Self { pool, display };
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&store.pool)
                .await
                .map_err(|e| store.err("create schema", &e))?;
        }
        Ok(store)
    }

    fn err(&self, doing: &str, e: &sqlx::Error) -> Error {
        Error::unavailable(format!("findings store {}: {doing}: {e}", self.display))
    }

    /// Records the start of a sync of `scanner`; returns its generation (every finding it
    /// reports is stamped with it).
    pub async fn begin_sync(&self, scanner: &str, now: DateTime<Utc>) -> Result<u64, Error> {
        let row = sqlx::query(
            "INSERT INTO scanner_state (scanner, generation, last_attempt) VALUES (?1, 1, ?2)
             ON CONFLICT (scanner) DO UPDATE SET generation = generation + 1, last_attempt = ?2
             RETURNING generation",
        )
        .bind(scanner)
        .bind(now.to_rfc3339())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err("begin sync", &e))?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    /// Stores one page: active findings upserted, fixed and accepted ones retired.
    pub async fn apply_page(&self, generation: u64, findings: &[Finding]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err("begin", &e))?;
        for finding in findings {
            let key = finding.key();
            if finding.state.is_active() {
                let body = serde_json::to_string(finding)
                    .map_err(|e| Error::internal(format!("encode finding: {e}")))?;
                sqlx::query(
                    "INSERT INTO findings (key, scanner, generation, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET generation = ?3, body = ?4",
                )
                .bind(&key)
                .bind(&finding.scanner)
                .bind(generation as i64)
                .bind(body)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err("store finding", &e))?;
            } else {
                sqlx::query("DELETE FROM findings WHERE key = ?1")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err("retire finding", &e))?;
            }
        }
        tx.commit().await.map_err(|e| self.err("commit", &e))
    }

    /// Records a successful sync. After a full sync (`full`), `scanner`'s findings it did
    /// not report are retired; returns how many.
    pub async fn finish_sync(
        &self,
        scanner: &str,
        generation: u64,
        full: bool,
        findings: u64,
        checkpoint: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err("begin", &e))?;
        let retired = if full {
            sqlx::query("DELETE FROM findings WHERE scanner = ?1 AND generation < ?2")
                .bind(scanner)
                .bind(generation as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err("retire unreported findings", &e))?
                .rows_affected()
        } else {
            0
        };
        sqlx::query(
            "UPDATE scanner_state SET last_success = ?2, checkpoint = COALESCE(?3, checkpoint),
             last_error = NULL, last_findings = ?4 WHERE scanner = ?1",
        )
        .bind(scanner)
        .bind(now.to_rfc3339())
        .bind(checkpoint.map(|c| c.to_rfc3339()))
        .bind(findings as i64)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err("record sync", &e))?;
        tx.commit().await.map_err(|e| self.err("commit", &e))?;
        Ok(retired)
    }

    /// Records a failed sync; the findings stored stay as they are.
    pub async fn fail_sync(&self, scanner: &str, error: &str) -> Result<(), Error> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query("UPDATE scanner_state SET last_error = ?2 WHERE scanner = ?1")
            .bind(scanner)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err("record sync failure", &e))?;
        Ok(())
    }

    /// Every scanner's status, by id.
    pub async fn statuses(&self) -> Result<Vec<ScannerStatus>, Error> {
        let rows = sqlx::query(
            "SELECT s.scanner, s.last_attempt, s.last_success, s.checkpoint, s.last_error, s.last_findings,
                    (SELECT COUNT(*) FROM findings f WHERE f.scanner = s.scanner)
             FROM scanner_state s ORDER BY s.scanner",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err("read scanner state", &e))?;
        Ok(rows
            .into_iter()
            .map(|r| ScannerStatus {
                scanner: r.get(0),
                last_attempt: time(r.get(1)),
                last_success: time(r.get(2)),
                checkpoint: time(r.get(3)),
                last_error: r.get(4),
                last_findings: r.get::<i64, _>(5) as u64,
                active: r.get::<i64, _>(6) as u64,
            })
            .collect())
    }

    /// One scanner's status.
    pub async fn status(&self, scanner: &str) -> Result<Option<ScannerStatus>, Error> {
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .find(|s| s.scanner == scanner))
    }

    /// Hands every stored finding (with its generation) to `each`, in pages.
    pub async fn load(&self, mut each: impl FnMut(Finding, u64)) -> Result<u64, Error> {
        let mut after = String::new();
        let mut total = 0;
        loop {
            let rows = sqlx::query(
                "SELECT key, generation, body FROM findings WHERE key > ?1 ORDER BY key LIMIT 5000",
            )
            .bind(&after)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("load findings", &e))?;
            let Some(last) = rows.last() else {
                return Ok(total);
            };
            after = last.get(0);
            for row in rows {
                let body: String = row.get(2);
                match serde_json::from_str::<Finding>(&body) {
                    Ok(finding) => {
                        total += 1;
                        each(finding, row.get::<i64, _>(1) as u64);
                    }
                    Err(e) => {
                        let key: String = row.get(0);
                        tracing::warn!(store = %self.display, %key, error = %e, "skipping an unreadable stored finding");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::{Asset, FindingState, Severity};

    fn finding(plugin: &str, state: FindingState) -> Finding {
        Finding {
            scanner: "tio".into(),
            plugin_id: plugin.into(),
            title: None,
            asset: Asset {
                ip: Some("10.0.0.1".parse().unwrap()),
                ..Asset::default()
            },
            port: 443,
            protocol: "tcp".into(),
            cves: vec!["CVE-2024-3400".into()],
            cvss: Some(9.8),
            cvss_vector: None,
            severity: Severity::Critical,
            state,
            first_seen: None,
            last_seen: None,
            confidence: 1.0,
            details_missing: false,
        }
    }

    #[tokio::test]
    async fn pages_retire_full_syncs_prune_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v/vulns.db");
        let store = FindingStore::open(&path).await.unwrap();
        let t0 = Utc::now();
        let g1 = store.begin_sync("tio", t0).await.unwrap();
        assert_eq!(g1, 1);
        store
            .apply_page(
                g1,
                &[
                    finding("1", FindingState::Open),
                    finding("2", FindingState::Open),
                    finding("3", FindingState::Open),
                ],
            )
            .await
            .unwrap();
        store
            .finish_sync("tio", g1, true, 3, Some(t0), t0)
            .await
            .unwrap();
        // Incremental: 2 fixed, 3 accepted.
        let g2 = store.begin_sync("tio", t0).await.unwrap();
        store
            .apply_page(
                g2,
                &[
                    finding("2", FindingState::Fixed),
                    finding("3", FindingState::Accepted),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .finish_sync("tio", g2, false, 2, None, t0)
                .await
                .unwrap(),
            0
        );
        let mut keys = Vec::new();
        store.load(|f, _| keys.push(f.plugin_id)).await.unwrap();
        assert_eq!(keys, vec!["1"]);
        // A failed sync keeps findings and records why.
        store.begin_sync("tio", t0).await.unwrap();
        store
            .fail_sync("tio", "tenable: export ended ERROR")
            .await
            .unwrap();
        drop(store);
        let store = FindingStore::open(&path).await.unwrap();
        let status = store.status("tio").await.unwrap().unwrap();
        assert_eq!(status.active, 1);
        assert_eq!(
            status.last_error.as_deref(),
            Some("tenable: export ended ERROR")
        );
        assert_eq!(
            status.checkpoint.map(|c| c.timestamp()),
            Some(t0.timestamp())
        );
        assert_eq!(status.last_findings, 2);
        // A full sync that no longer reports 1 retires it.
        let g4 = store.begin_sync("tio", t0).await.unwrap();
        store
            .apply_page(g4, &[finding("9", FindingState::Open)])
            .await
            .unwrap();
        assert_eq!(
            store
                .finish_sync("tio", g4, true, 1, None, t0)
                .await
                .unwrap(),
            1
        );
        let mut keys = Vec::new();
        store
            .load(|f, g| keys.push((f.plugin_id, g)))
            .await
            .unwrap();
        assert_eq!(keys, vec![("9".to_owned(), g4)]);
    }
}
