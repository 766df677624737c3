//! Tenable scanner connector for vowguard (role scanner, `[scanners.<id>]`).
//!
//! Two connector kinds, both normalising to [`vowguard_core::Finding`]:
//!
//! * `tenable` ([`TenableScanner`]): the Tenable Vulnerability Management export API.
//!   A sync starts an export (`POST /vulns/export`, adopting the job already running when
//!   Tenable answers 409 with `active_job_id`), polls `GET /vulns/export/{uuid}/status` with
//!   an exponential backoff (1 s to 30 s by default, bounded overall by `poll.max_wait`),
//!   and fetches every chunk as it becomes available (`GET /vulns/export/{uuid}/chunks/{id}`).
//!   A chunk listed twice is read once; an empty chunk is fine; a chunk that is not valid
//!   JSON (a truncated answer) is fetched again, three attempts in all. An incremental sync
//!   sends `filters.since` (Unix seconds) and asks for open, reopened **and fixed**
//!   findings, so fixed ones can be retired. Records map onto findings in one pure
//!   function, [`parse_record`].
//! * `nessus_file` ([`NessusFileScanner`]): imports `.nessus` v2 files written by Nessus,
//!   through a streaming parser ([`NessusReader`], on the hardened [`vowguard_xml::XmlReader`]
//!   the Greenbone and Qualys parsers share) that refuses DTDs and entity
//!   references other than the five predefined ones and character references, caps the
//!   size of any one XML event ([`MAX_EVENT_BYTES`]), accepts UTF-8 only, and names the file
//!   and byte offset of anything it refuses.
//!
//! The API keys go in the `X-ApiKeys` header (marked sensitive) and never appear in
//! `Debug` output, errors or logs.

mod config;
mod export;
mod nessus;
mod record;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Scanner};

pub use config::{DEFAULT_BASE_URL, NessusFileConfig, PollOptions, TenableConfig};
pub use export::TenableScanner;
pub use nessus::{
    MAX_DEPTH, MAX_EVENT_BYTES, NessusFileScanner, NessusOptions, NessusReader, import_file,
    parse_nessus_time,
};
pub use record::{parse_record, severity_from_tenable, state_from_tenable};

/// The connector kind of the export API scanner, `type = "tenable"`.
pub const KIND: &str = "tenable";
/// The connector kind of the `.nessus` file importer, `type = "nessus_file"`.
pub const NESSUS_FILE_KIND: &str = "nessus_file";

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::scanner(
        KIND,
        "Tenable Vulnerability Management: findings via the vulns export API (chunks, incremental `since`)",
        build_tenable,
    )
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::scanner(
        NESSUS_FILE_KIND,
        "Nessus: findings imported from .nessus v2 files (streaming, no DTD/entities)",
        build_nessus,
    )
}

fn build_tenable(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Scanner>, Error> {
    let config: TenableConfig = ctx.parse(table)?;
    let access = ctx.secret("access_key", &config.access_key)?;
    let secret = ctx.secret("secret_key", &config.secret_key)?;
    let scanner = TenableScanner::new(ctx.id, &config, &access, &secret)
        .map_err(|e| e.with_component(ctx.id))?;
    Ok(Arc::new(scanner))
}

fn build_nessus(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Scanner>, Error> {
    let config: NessusFileConfig = ctx.parse(table)?;
    if config.paths.is_empty() {
        return Err(ctx.config_error("paths", "list at least one .nessus file"));
    }
    let paths = config
        .paths
        .iter()
        .map(|p| ctx.config_dir.join(p))
        .collect();
    Ok(Arc::new(NessusFileScanner::new(
        ctx.id,
        paths,
        NessusOptions::default().with_include_info(config.include_info),
    )))
}
