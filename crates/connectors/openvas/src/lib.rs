//! Greenbone / OpenVAS scanner connector for vowguard (connector kind `openvas`, role
//! scanner).
//!
//! Reads a Greenbone report in XML, as gvmd answers GMP `get_reports` (with
//! `details=1 ignore_pagination=1`) or `get_results`, or as exported from the web UI, and
//! normalises every result to a [`vowguard_core::Finding`]: see [`parse`] for the field
//! mapping (QoD → confidence, CVSS score → severity, `nvt/refs` → CVEs, `443/tcp` →
//! port 443, `general/tcp` → the whole host).
//!
//! The parser ([`parse_report`], pure) streams: memory is bounded by one result and one
//! page of findings, whatever the file size. It is built on [`vowguard_xml::XmlReader`], so
//! a hostile file (a DOCTYPE / XML bomb, custom or external entities, another encoding than
//! UTF-8, a file above `max_file_bytes`, a single tag or text above 16 MiB, nesting deeper
//! than 64) is refused with the file and byte position named.
//!
//! [`OpenvasScanner::sync`] reads the configured file when it changed since the last sync
//! (by modification time), on a blocking thread, handing findings on page by page. A file
//! refused part-way (truncated, hostile) ends the sync with that error; pages handed on
//! before it stand, and the next sync reads the file again.
//! Fetching reports from gvmd over GMP (Unix socket or TLS) is not built: export the report
//! to the file with `gvm-cli` or a cron job.
//!
//! ```toml
//! [scanners.greenbone]
//! type = "openvas"
//! report = "/var/lib/vowguard/greenbone/latest-report.xml"
//! ```

mod config;
pub mod parse;
mod scanner;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Scanner};

pub use config::{DEFAULT_MAX_FILE_BYTES, DEFAULT_PAGE_SIZE, OpenvasConfig};
pub use parse::{
    DEFAULT_QOD, ParseOptions, ParseSummary, confidence_from_qod, parse_port, parse_report,
    parse_report_slice, severity_from_score,
};
pub use scanner::OpenvasScanner;

/// The connector kind, as written in `type = "openvas"`.
pub const KIND: &str = "openvas";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::scanner(
        KIND,
        "Greenbone / OpenVAS: vulnerability findings from a GMP report XML file",
        build,
    )
}

fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Scanner>, Error> {
    let config: OpenvasConfig = ctx.parse(table)?;
    let scanner = OpenvasScanner::new(ctx.id, &config, ctx.config_dir)
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(scanner))
}
