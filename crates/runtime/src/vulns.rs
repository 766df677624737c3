//! Vulnerability scanners in the runtime: `[scanners.<id>]`, the `vuln_correlation`
//! enricher, scheduled syncs, and `vowguard vulns sync|list`.
//!
//! Findings live in `<data_dir>/vulns.db`. A run loads them into the shared index before
//! the pipeline starts (a local read), then syncs every scanner in the background: at start
//! and every `refresh` (default `"1h"`). Syncs never touch the event path: the enricher
//! only reads the index, and a scanner that is down leaves the last good findings in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Subcommand;
use vowguard_core::{BuildContext, Error};
use vowguard_pipeline::{EnricherSpec, PipelineSpec};
use vowguard_vuln::{
    CORRELATION_KIND, FindingStore, HostKey, ScannerEntry, SharedIndex, VulnCorrelation,
    VulnService,
};

/// How often a scanner is synced unless `refresh` says otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// The configured scanners and the index the enricher reads.
#[derive(Debug, Clone)]
pub struct VulnSetup {
    /// The index shared with the `vuln_correlation` enricher.
    pub index: SharedIndex,
    /// The scanners, with their refresh intervals.
    pub scanners: Vec<ScannerEntry>,
}

/// Takes `refresh` (`"1s"` to `"7d"`) off a scanner table.
pub(crate) fn take_refresh(
    ctx: &BuildContext<'_>,
    table: &mut vowguard_core::ComponentConfig,
) -> Result<Duration, Error> {
    const LONGEST: Duration = Duration::from_secs(7 * 86_400);
    let refresh = match table.remove("refresh") {
        None => return Ok(DEFAULT_REFRESH),
        Some(vowguard_core::ParamValue::String(text)) => {
            vowguard_core::duration::parse(&text).map_err(|e| ctx.config_error("refresh", e))?
        }
        Some(_) => {
            return Err(ctx.config_error(
                "refresh",
                format!("expected {}", vowguard_core::duration::ACCEPTED),
            ));
        }
    };
    if refresh < Duration::from_secs(1) || refresh > LONGEST {
        return Err(ctx.config_error("refresh", "must be between \"1s\" and \"7d\""));
    }
    Ok(refresh)
}

/// With scanners configured: the shared index, and the `vuln_correlation` enricher added to
/// the pipeline.
pub fn setup(
    scanners: Vec<ScannerEntry>,
    spec: &mut PipelineSpec,
    errors: &mut Vec<Error>,
) -> Option<VulnSetup> {
    if scanners.is_empty() {
        return None;
    }
    if spec.enrichers.iter().any(|e| e.id == CORRELATION_KIND) {
        errors.push(Error::config(format!(
            "`enrichers.{CORRELATION_KIND}`: this id is taken by the correlation enricher scanners add; choose another"
        )));
    }
    let index = SharedIndex::new();
    spec.enrichers.push(EnricherSpec {
        id: CORRELATION_KIND.to_owned(),
        enricher: Arc::new(VulnCorrelation::new(index.clone())),
    });
    Some(VulnSetup { index, scanners })
}

/// The findings store's file.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("vulns.db")
}

/// The running findings service; dropping it stops the scheduled syncs.
#[derive(Debug)]
pub struct Running {
    /// The service.
    pub service: Arc<VulnService>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How often a running instance checks `vulns.db` for syncs made by another process.
const STORE_RELOAD_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the store, loads its findings into the shared index and starts the schedule and
/// the store reloader (a `vowguard vulns sync` from another process takes effect within
/// 30 seconds, `STORE_RELOAD_CHECK`). A store that cannot be opened is logged: events flow on
/// without correlation.
pub async fn start(setup: Option<&VulnSetup>, data_dir: &Path) -> Option<Running> {
    let setup = setup?;
    let path = store_path(data_dir);
    let opened = async {
        let store = FindingStore::open(&path).await?;
        VulnService::open_with_index(store, setup.scanners.clone(), setup.index.clone()).await
    }
    .await;
    match opened {
        Ok(service) => {
            let service = Arc::new(service);
            tracing::info!(
                findings = setup.index.read().len(),
                scanners = setup.scanners.len(),
                "vulnerability findings loaded; scanner syncs scheduled"
            );
            let mut tasks = service.spawn();
            tasks.push(service.spawn_reloader(STORE_RELOAD_CHECK));
            Some(Running { service, tasks })
        }
        Err(e) => {
            tracing::warn!(error = %e, "findings store unavailable; events are not correlated with vulnerabilities");
            None
        }
    }
}

/// `vowguard vulns ...`.
#[derive(Debug, Subcommand)]
pub enum VulnsAction {
    /// Sync scanners now (all, or one) into `<data_dir>/vulns.db`.
    Sync {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this scanner (its `[scanners.<id>]` id).
        #[arg(long)]
        scanner: Option<String>,
        /// A full sync (retires findings the scanner no longer reports) instead of an
        /// incremental one.
        #[arg(long)]
        full: bool,
    },
    /// List the open findings on one asset (IP address or host name), and each scanner's
    /// last sync.
    List {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The asset: an IP address, FQDN or host name.
        #[arg(long)]
        asset: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn load(path: &Path) -> Result<crate::Assembly, Error> {
    let config = crate::Config::load(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    crate::assemble(
        &config,
        &crate::Environment {
            config_dir: &dir,
            secrets: &vowguard_core::ProcessEnv,
        },
    )
}

async fn open_service(config: &Path) -> Result<VulnService, Error> {
    let assembly = load(config)?;
    let setup = assembly.vulns.clone().ok_or_else(|| {
        Error::config(
            "no `[scanners.<id>]` configured; add one (see README, Vulnerability correlation)",
        )
    })?;
    let store = FindingStore::open(&store_path(&assembly.data_dir)).await?;
    VulnService::open_with_index(store, setup.scanners, setup.index).await
}

/// Control characters replaced: scanner text (titles, hosts) is printed on a terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn write_out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to standard output", e))
}

/// Runs `vowguard vulns ...`.
pub async fn vulns(action: VulnsAction) -> Result<(), Error> {
    match action {
        VulnsAction::Sync {
            config,
            scanner,
            full,
        } => {
            let service = open_service(&config).await?;
            let ids: Vec<String> = match scanner {
                Some(id) => vec![id],
                None => service
                    .scanner_ids()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            };
            let mut failed = 0;
            for id in ids {
                match service.sync(&id, full).await {
                    Ok(r) => {
                        let mut line = format!(
                            "{}: {} sync, {} finding(s) in {} page(s), {} retired",
                            r.scanner,
                            if r.full { "full" } else { "incremental" },
                            r.findings,
                            r.pages,
                            r.retired
                        );
                        if r.details_missing > 0 {
                            line.push_str(&format!(
                                "; {} finding(s) stored without CVE/CVSS details ({}), filled in by the next sync",
                                r.details_missing,
                                clean(r.details_missing_reason.as_deref().unwrap_or("reason unknown"))
                            ));
                        }
                        line.push('\n');
                        write_out(&line)?;
                    }
                    Err(e) if e.kind() == vowguard_core::ErrorKind::Config => return Err(e),
                    Err(e) => {
                        failed += 1;
                        write_out(&format!(
                            "{id}: FAILED: {} (the findings from the last good sync are kept)\n",
                            clean(&e.to_string())
                        ))?;
                    }
                }
            }
            if failed > 0 {
                return Err(Error::unavailable(format!(
                    "{failed} scanner sync(s) failed"
                )));
            }
            Ok(())
        }
        VulnsAction::List {
            config,
            asset,
            json,
        } => {
            let service = open_service(&config).await?;
            let key =
                HostKey::name(&asset).ok_or_else(|| Error::invalid_input("`--asset` is empty"))?;
            let index = service.index();
            let mut findings: Vec<vowguard_core::Finding> = index
                .read()
                .on_host(&key)
                .iter()
                .map(|f| (**f).clone())
                .collect();
            findings.sort_by(|a, b| {
                b.cvss
                    .unwrap_or(0.0)
                    .total_cmp(&a.cvss.unwrap_or(0.0))
                    .then(a.port.cmp(&b.port))
                    .then(a.plugin_id.cmp(&b.plugin_id))
            });
            let statuses = service.store().statuses().await?;
            if json {
                let value = serde_json::json!({ "asset": asset, "findings": findings, "scanners": statuses });
                let text = serde_json::to_string_pretty(&value)
                    .map_err(|e| Error::internal(format!("encode output: {e}")))?;
                return write_out(&format!("{text}\n"));
            }
            let mut out = format!(
                "{:<10} {:<10} {:<10} {:<5} {:<9} {:<30} {:<20} TITLE\n",
                "SCANNER", "PLUGIN", "PORT", "CVSS", "SEVERITY", "CVES", "FIRST SEEN"
            );
            for f in &findings {
                let port = if f.port == 0 {
                    "host".to_owned()
                } else {
                    format!("{}/{}", f.port, f.protocol)
                };
                out.push_str(&format!(
                    "{:<10} {:<10} {:<10} {:<5} {:<9} {:<30} {:<20} {}\n",
                    clean(&f.scanner),
                    clean(&f.plugin_id),
                    clean(&port),
                    f.cvss.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}")),
                    f.severity.as_str(),
                    clean(&f.cves.join(",")),
                    f.first_seen.map_or_else(
                        || "-".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M").to_string()
                    ),
                    clean(f.title.as_deref().unwrap_or("")),
                ));
            }
            out.push_str(&format!(
                "{} open finding(s) on {}\n",
                findings.len(),
                clean(&asset)
            ));
            let now = Utc::now();
            for s in &statuses {
                let age = s.last_success.map_or_else(
                    || "never synced successfully".to_owned(),
                    |t| {
                        let minutes = (now - t).num_minutes().max(0);
                        format!(
                            "last good sync {} ({}h{:02}m ago)",
                            t.format("%Y-%m-%d %H:%M:%S UTC"),
                            minutes / 60,
                            minutes % 60
                        )
                    },
                );
                out.push_str(&format!(
                    "scanner {}: {age}, {} active finding(s)",
                    clean(&s.scanner),
                    s.active
                ));
                if let Some(error) = &s.last_error {
                    out.push_str(&format!("; last sync failed: {}", clean(error)));
                }
                out.push('\n');
            }
            write_out(&out)
        }
    }
}

/// For `vowguard route explain`: an event that names a target and carries no
/// vulnerability matches is matched against the stored findings, as the running enricher
/// would. Without scanners, or without a store yet, the event is returned as it is.
pub fn correlate_for_explain(
    assembly: &crate::Assembly,
    event: Arc<vowguard_core::Event>,
) -> Result<Arc<vowguard_core::Event>, Error> {
    let Some(setup) = &assembly.vulns else {
        return Ok(event);
    };
    let path = store_path(&assembly.data_dir);
    if !event.enrichment.vulnerabilities.is_empty() || !path.exists() {
        return Ok(event);
    }
    let Some(target) = vowguard_vuln::EventTarget::of(&event) else {
        return Ok(event);
    };
    let index = setup.index.clone();
    let load = async move {
        let store = FindingStore::open(&path).await?;
        VulnService::open_with_index(store, Vec::new(), index).await
    };
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(load))?;
    let mut event = Arc::unwrap_or_clone(event);
    event.enrichment.vulnerabilities = vowguard_vuln::correlate(
        &setup.index.read(),
        &target,
        &vowguard_vuln::CorrelationOptions::default(),
    );
    Ok(Arc::new(event))
}
