//! [`OpenvasScanner`]: the [`Scanner`] that reads a Greenbone report file.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use vowguard_core::{Error, Finding, FindingPages, Scanner, SyncSummary};
use vowguard_xml::Limits;

use crate::config::OpenvasConfig;
use crate::parse::{ParseOptions, parse_report};

/// Reads the configured report file on every sync, parsing it on a blocking thread and
/// handing findings on page by page (at most two pages in flight), so memory stays bounded
/// by a page whatever the file's size.
#[derive(Debug, Clone)]
pub struct OpenvasScanner {
    id: String,
    path: PathBuf,
    options: ParseOptions,
    page_size: usize,
}

impl OpenvasScanner {
    /// The scanner for component `id` (`[scanners.<id>]`); a relative `report` path is
    /// taken from `config_dir`.
    pub fn new(id: &str, config: &OpenvasConfig, config_dir: &Path) -> Result<Self, Error> {
        config.validate(&format!("scanners.{id}"))?;
        let mut options = ParseOptions::new(id);
        options.include_log = config.include_log;
        options.min_qod = config.min_qod;
        options.limits = Limits {
            max_bytes: config.max_file_bytes,
            ..Limits::default()
        };
        Ok(Self {
            id: id.to_owned(),
            path: config_dir.join(&config.report),
            options,
            page_size: config.page_size,
        })
    }

    /// The report file read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Scanner for OpenvasScanner {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// A report file is a snapshot: when it has not been modified since `since` nothing is
    /// read; otherwise every result in it is handed on. The checkpoint is the file's
    /// modification time.
    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let path = self.path.clone();
        let shown = path.display().to_string();
        let metadata = tokio::fs::metadata(&path).await.map_err(|e| {
            Error::io(format!("cannot read report {shown}"), e).with_component(&self.id)
        })?;
        let modified: Option<DateTime<Utc>> = metadata.modified().ok().map(DateTime::<Utc>::from);
        if let (Some(since), Some(modified)) = (since, modified)
            && modified <= since
        {
            return Ok(SyncSummary {
                findings: 0,
                pages: 0,
                checkpoint: Some(modified),
                ..SyncSummary::default()
            });
        }
        if metadata.len() > self.options.limits.max_bytes {
            return Err(Error::invalid_input(format!(
                "{shown}: the file is {} bytes, more than max_file_bytes ({})",
                metadata.len(),
                self.options.limits.max_bytes
            ))
            .with_component(&self.id));
        }

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Finding>>(2);
        let options = self.options.clone();
        let page_size = self.page_size;
        let parse = tokio::task::spawn_blocking(move || {
            let file = File::open(&path)
                .map_err(|e| Error::io(format!("cannot open report {shown}"), e))?;
            let input = BufReader::with_capacity(64 * 1024, file);
            let mut page = Vec::with_capacity(page_size.min(1024));
            let send = |page: Vec<Finding>| {
                tx.blocking_send(page)
                    .map_err(|_| Error::internal("the sync stopped taking findings"))
            };
            let summary = parse_report(input, &shown, &options, &mut |finding| {
                page.push(finding);
                if page.len() >= page_size {
                    send(std::mem::take(&mut page))?;
                }
                Ok(())
            })?;
            if !page.is_empty() {
                send(page)?;
            }
            Ok::<_, Error>(summary)
        });

        let mut summary = SyncSummary {
            findings: 0,
            pages: 0,
            checkpoint: modified,
            ..SyncSummary::default()
        };
        while let Some(page) = rx.recv().await {
            summary.findings += page.len() as u64;
            summary.pages += 1;
            out.page(page).await?;
        }
        let parsed = parse
            .await
            .map_err(|e| Error::internal(format!("the report parser stopped: {e}")))?
            .map_err(|e| e.with_component(&self.id))?;
        tracing::info!(
            scanner = %self.id,
            results = parsed.results,
            findings = parsed.findings,
            filtered = parsed.filtered,
            skipped = parsed.skipped,
            "read Greenbone report"
        );
        Ok(summary)
    }
}
