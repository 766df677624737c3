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
//!
//! **From gvmd over GMP** ([`gmp`]): with `socket` (gvmd's Unix socket) or `host` (TLS,
//! `port` 9390 by default, rustls with the system roots plus `ca_file`, an optional client
//! certificate), `username` and `password` (a secret, `{ env }` or `{ file }`), a sync
//! authenticates (credentials XML-escaped; a refusal is an `Unauthorized` error naming the
//! scanner, never the password), asks for the report (`report_id`, or the last finished
//! report of `task_id` via `get_tasks`) with `get_reports details="1"
//! ignore_pagination="1" filter="…"`, and streams the answer through the same parser with
//! the same limits, never holding the report whole. With a `task_id`, a sync from a
//! checkpoint reads nothing when the task has no newer report; the checkpoint is that
//! report's `scan_end`. Each request (connect, authenticate, each command with its answer)
//! must finish within `request_timeout`. gvmd down, silent, refusing or closing
//! mid-report ends the sync with that error; the findings of the last good sync stay in use.
//! An answer that is an XML bomb is refused like a file, naming the byte.
//!
//! ```toml
//! [scanners.greenbone]
//! type = "openvas"
//! report = "/var/lib/vowguard/greenbone/latest-report.xml"
//!
//! [scanners.gvmd]
//! type = "openvas"
//! socket = "/run/gvmd/gvmd.sock"       # or host = "gvm.example" (+ ca_file) for TLS
//! username = "vowguard"
//! password = { env = "GVMD_PASSWORD" }
//! task_id = "6f1b1cd3-0d4c-4a46-a3d4-4d3d2a54c9b1"
//! ```

mod config;
pub mod gmp;
pub mod parse;
mod scanner;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Scanner};

pub use config::{
    DEFAULT_FILTER, DEFAULT_GMP_PORT, DEFAULT_MAX_FILE_BYTES, DEFAULT_PAGE_SIZE,
    DEFAULT_REQUEST_TIMEOUT, OpenvasConfig,
};
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
        "Greenbone / OpenVAS: vulnerability findings from a GMP report XML file, or fetched from gvmd over GMP (Unix socket or TLS)",
        build,
    )
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Scanner>, Error> {
    let config: OpenvasConfig = ctx.parse(table)?;
    config.validate(&format!("scanners.{}", ctx.id))?;
    let scanner = match &config.password {
        Some(password) if config.is_gmp() => {
            let password = ctx.secret("password", password)?;
            OpenvasScanner::with_password(ctx.id, &config, ctx.config_dir, &password)
        }
        _ => OpenvasScanner::new(ctx.id, &config, ctx.config_dir),
    }
    .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(scanner))
}
