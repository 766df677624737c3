//! [`OpenvasScanner`]: the [`Scanner`] that reads a Greenbone report, from a file or from
//! gvmd over GMP.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use vowguard_core::{Error, Finding, FindingPages, Scanner, SyncSummary};
use vowguard_xml::Limits;

use crate::config::OpenvasConfig;
use crate::gmp::GmpClient;
use crate::parse::{ParseOptions, ParseSummary, parse_report};

/// Where the reports come from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Gmp(Box<GmpClient>),
}

/// Reads the configured report on every sync (a file, or a report fetched from gvmd over
/// GMP), parsing it on a blocking thread and handing findings on page by page (at most two
/// pages in flight), so memory stays bounded by a page whatever the report's size.
#[derive(Debug, Clone)]
pub struct OpenvasScanner {
    id: String,
    source: Source,
    options: ParseOptions,
    page_size: usize,
}

impl OpenvasScanner {
    /// The scanner for component `id` (`[scanners.<id>]`) reading a report file; a relative
    /// `report` path is taken from `config_dir`. A GMP configuration (`socket` or `host`)
    /// needs its password: see [`OpenvasScanner::with_password`].
    pub fn new(id: &str, config: &OpenvasConfig, config_dir: &Path) -> Result<Self, Error> {
        Self::build(id, config, config_dir, None)
    }

    /// The scanner for component `id`, with the resolved GMP `password` (ignored for a
    /// report file). Relative paths (`report`, `socket`, `ca_file`…) are taken from
    /// `config_dir`.
    pub fn with_password(
        id: &str,
        config: &OpenvasConfig,
        config_dir: &Path,
        password: &SecretString,
    ) -> Result<Self, Error> {
        Self::build(id, config, config_dir, Some(password))
    }

    fn build(
        id: &str,
        config: &OpenvasConfig,
        config_dir: &Path,
        password: Option<&SecretString>,
    ) -> Result<Self, Error> {
        config.validate(&format!("scanners.{id}"))?;
        let mut options = ParseOptions::new(id);
        options.include_log = config.include_log;
        options.min_qod = config.min_qod;
        options.limits = Limits::default().with_max_bytes(config.max_file_bytes);
        let source = match (&config.report, password) {
            (Some(report), _) => Source::File(config_dir.join(report)),
            (None, Some(password)) => {
                Source::Gmp(Box::new(GmpClient::new(id, config, config_dir, password)?))
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "`scanners.{id}.password`: required to fetch reports from gvmd"
                )));
            }
        };
        Ok(Self {
            id: id.to_owned(),
            source,
            options,
            page_size: config.page_size,
        })
    }

    /// The report file read, when the scanner reads a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File(path) => Some(path),
            Source::Gmp(_) => None,
        }
    }
}

#[async_trait]
impl Scanner for OpenvasScanner {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// A report file is a snapshot: when it has not been modified since `since` nothing is
    /// read; otherwise every result in it is handed on. The checkpoint is the file's
    /// modification time. From gvmd: see [`crate::gmp`]; the checkpoint is the task's last
    /// report's time (or the fetch's start, for a fixed `report_id`).
    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        match &self.source {
            Source::File(path) => self.sync_file(path, since, out).await,
            Source::Gmp(client) => self.sync_gmp(client, since, out).await,
        }
    }
}

impl OpenvasScanner {
    async fn sync_file(
        &self,
        path: &Path,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let path = path.to_path_buf();
        let shown = path.display().to_string();
        let metadata = tokio::fs::metadata(&path).await.map_err(|e| {
            Error::io(format!("cannot read report {shown}"), e).with_component(&self.id)
        })?;
        let modified: Option<DateTime<Utc>> = metadata.modified().ok().map(DateTime::<Utc>::from);
        if let (Some(since), Some(modified)) = (since, modified)
            && modified <= since
        {
            return Ok(SyncSummary {
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
        let (summary, parsed) = self
            .paged(out, move |options, on_finding| {
                let file = File::open(&path)
                    .map_err(|e| Error::io(format!("cannot open report {shown}"), e))?;
                let input = BufReader::with_capacity(64 * 1024, file);
                parse_report(input, &shown, options, on_finding)
            })
            .await?;
        log_parse(&self.id, &parsed, "read Greenbone report");
        Ok(SyncSummary {
            checkpoint: modified,
            ..summary
        })
    }

    async fn sync_gmp(
        &self,
        client: &GmpClient,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let client = client.clone();
        let (summary, fetched) = self
            .paged(out, move |options, on_finding| {
                client.fetch(since, options, on_finding)
            })
            .await?;
        match &fetched.parsed {
            Some(parsed) => log_parse(&self.id, parsed, "read Greenbone report from gvmd"),
            None => {
                tracing::debug!(scanner = %self.id, "gvmd has no report newer than the checkpoint");
            }
        }
        Ok(SyncSummary {
            checkpoint: fetched.checkpoint,
            ..summary
        })
    }

    /// Runs `parse` on a blocking thread, handing its findings to `out` in pages of
    /// `page_size` (two pages in flight at most). Pages handed on before an error stand.
    async fn paged<T: Send + 'static>(
        &self,
        out: &mut dyn FindingPages,
        parse: impl FnOnce(
            &ParseOptions,
            &mut dyn FnMut(Finding) -> Result<(), Error>,
        ) -> Result<T, Error>
        + Send
        + 'static,
    ) -> Result<(SyncSummary, T), Error> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Finding>>(2);
        let options = self.options.clone();
        let page_size = self.page_size;
        let task = tokio::task::spawn_blocking(move || {
            let mut page = Vec::with_capacity(page_size.min(1024));
            let send = |page: Vec<Finding>| {
                tx.blocking_send(page)
                    .map_err(|_| Error::internal("the sync stopped taking findings"))
            };
            let value = parse(&options, &mut |finding| {
                page.push(finding);
                if page.len() >= page_size {
                    send(std::mem::take(&mut page))?;
                }
                Ok(())
            })?;
            if !page.is_empty() {
                send(page)?;
            }
            Ok::<_, Error>(value)
        });
        let mut summary = SyncSummary::default();
        while let Some(page) = rx.recv().await {
            summary.findings += page.len() as u64;
            summary.pages += 1;
            out.page(page).await?;
        }
        let value = task
            .await
            .map_err(|e| Error::internal(format!("the report parser stopped: {e}")))?
            .map_err(|e| e.with_component(&self.id))?;
        Ok((summary, value))
    }
}

fn log_parse(id: &str, parsed: &ParseSummary, what: &str) {
    tracing::info!(
        scanner = %id,
        results = parsed.results,
        findings = parsed.findings,
        filtered = parsed.filtered,
        skipped = parsed.skipped,
        "{what}"
    );
}
