//! The `[scanners.<id>]` table of a `type = "openvas"` scanner.

use std::path::PathBuf;

use serde::Deserialize;

/// Default [`OpenvasConfig::max_file_bytes`]: 2 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Default [`OpenvasConfig::page_size`].
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// Configuration of a Greenbone / OpenVAS report-file scanner.
///
/// ```toml
/// [scanners.greenbone]
/// type = "openvas"
/// report = "/var/lib/vowguard/greenbone/latest-report.xml"
/// # include_log = false
/// # min_qod = 0
/// # max_file_bytes = 2147483648
/// # page_size = 500
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenvasConfig {
    /// The report XML file (GMP `get_reports` / `get_results` answer, or a report exported
    /// in the XML format). A relative path is taken from the config file's directory.
    pub report: PathBuf,
    /// Keep `Log` results (severity 0). Default false.
    #[serde(default)]
    pub include_log: bool,
    /// Drop results with a QoD below this (0..=100). Default 0.
    #[serde(default)]
    pub min_qod: u8,
    /// Refuse a file larger than this many bytes. Default 2 GiB.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Findings per page handed to the store (1..=100000). Default 500.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

fn default_page_size() -> usize {
    DEFAULT_PAGE_SIZE
}

impl OpenvasConfig {
    /// A configuration reading `report` with every default.
    pub fn new(report: impl Into<PathBuf>) -> Self {
        Self {
            report: report.into(),
            include_log: false,
            min_qod: 0,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Checks value ranges; errors name the key under `prefix` (`scanners.<id>`).
    pub fn validate(&self, prefix: &str) -> Result<(), vowguard_core::Error> {
        if self.report.as_os_str().is_empty() {
            return Err(vowguard_core::Error::config(format!(
                "`{prefix}.report`: must name the report XML file"
            )));
        }
        if self.min_qod > 100 {
            return Err(vowguard_core::Error::config(format!(
                "`{prefix}.min_qod`: must be 0..=100, got {}",
                self.min_qod
            )));
        }
        if !(1..=100_000).contains(&self.page_size) {
            return Err(vowguard_core::Error::config(format!(
                "`{prefix}.page_size`: must be 1..=100000, got {}",
                self.page_size
            )));
        }
        if self.max_file_bytes == 0 {
            return Err(vowguard_core::Error::config(format!(
                "`{prefix}.max_file_bytes`: must be above 0"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_named_errors() {
        let c: OpenvasConfig = toml::from_str("report = \"r.xml\"").unwrap();
        assert_eq!(c, OpenvasConfig::new("r.xml"));
        c.validate("scanners.gb").unwrap();
        let err = toml::from_str::<OpenvasConfig>("report = \"r.xml\"\nmin_qd = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("min_qd"), "{err}");
        let mut c = OpenvasConfig::new("r.xml");
        c.min_qod = 101;
        let err = c.validate("scanners.gb").unwrap_err().to_string();
        assert!(err.contains("`scanners.gb.min_qod`"), "{err}");
        let mut c = OpenvasConfig::new("r.xml");
        c.page_size = 0;
        let err = c.validate("scanners.gb").unwrap_err().to_string();
        assert!(err.contains("`scanners.gb.page_size`"), "{err}");
    }
}
