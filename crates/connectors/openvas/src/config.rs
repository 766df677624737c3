//! The `[scanners.<id>]` table of a `type = "openvas"` scanner.

use std::path::PathBuf;

use serde::Deserialize;
use vowguard_core::SecretRef;

/// Default [`OpenvasConfig::max_file_bytes`]: 2 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Default [`OpenvasConfig::page_size`].
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// Default [`OpenvasConfig::port`] of gvmd's TLS listener.
pub const DEFAULT_GMP_PORT: u16 = 9390;

/// Default [`OpenvasConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Default [`OpenvasConfig::filter`]: every result, overrides applied (`include_log` and
/// `min_qod` filter on vowguard's side).
pub const DEFAULT_FILTER: &str = "apply_overrides=1 min_qod=0 levels=hmlgfd rows=-1";

/// Configuration of a Greenbone / OpenVAS scanner: a report file, or gvmd over GMP (its
/// Unix socket, or TLS). Exactly one of `report`, `socket` and `host` is set.
///
/// ```toml
/// [scanners.greenbone]
/// type = "openvas"
/// report = "/var/lib/vowguard/greenbone/latest-report.xml"
/// # include_log = false
/// # min_qod = 0
/// # max_file_bytes = 2147483648
/// # page_size = 500
///
/// [scanners.gvmd]
/// type = "openvas"
/// socket = "/run/gvmd/gvmd.sock"          # or host = "gvm.example" (TLS, port 9390)
/// username = "vowguard"
/// password = { env = "GVMD_PASSWORD" }
/// task_id = "6f1b1cd3-0d4c-4a46-a3d4-4d3d2a54c9b1"   # or report_id = "…"
/// # filter = "apply_overrides=1 min_qod=0 levels=hmlgfd rows=-1"
/// # request_timeout = "5m"
/// # ca_file = "/etc/vowguard/gvmd-ca.pem"           # TLS only
/// # client_cert_file = "…"; client_key_file = "…"   # TLS only, together
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenvasConfig {
    /// The report XML file (GMP `get_reports` / `get_results` answer, or a report exported
    /// in the XML format). A relative path is taken from the config file's directory.
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// gvmd's Unix socket, e.g. `/run/gvmd/gvmd.sock`: reports are fetched over GMP.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// gvmd's host name or address: reports are fetched over GMP on TLS (rustls; the
    /// certificate is always verified against the system roots and `ca_file`).
    #[serde(default)]
    pub host: Option<String>,
    /// gvmd's TLS port. Default 9390.
    #[serde(default)]
    pub port: Option<u16>,
    /// A PEM file of CA certificates trusted for gvmd's certificate (TLS only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate chain, for gvmd set up to require one (TLS only; with
    /// `client_key_file`).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// The GMP user (GMP only).
    #[serde(default)]
    pub username: Option<String>,
    /// Its password (GMP only). A secret: `{ env = "…" }` or `{ file = "…" }`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// The report to fetch (GMP only; or `task_id`).
    #[serde(default)]
    pub report_id: Option<String>,
    /// The task whose last finished report is fetched (GMP only; or `report_id`). A sync
    /// with a checkpoint reads nothing when that report is not newer than it.
    #[serde(default)]
    pub task_id: Option<String>,
    /// The GMP filter of the report's results. Default [`DEFAULT_FILTER`].
    #[serde(default)]
    pub filter: Option<String>,
    /// The longest one GMP request may take (connect, authenticate, each command and its
    /// whole answer): `request_timeout = "5m"`, the default.
    #[serde(default = "default_request_timeout", with = "vowguard_core::duration")]
    pub request_timeout: std::time::Duration,
    /// Keep `Log` results (severity 0). Default false.
    #[serde(default)]
    pub include_log: bool,
    /// Drop results with a QoD below this (0..=100). Default 0.
    #[serde(default)]
    pub min_qod: u8,
    /// Refuse a report (a file, or a GMP answer) larger than this many bytes. Default 2 GiB.
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

fn default_request_timeout() -> std::time::Duration {
    DEFAULT_REQUEST_TIMEOUT
}

/// A GMP id (report, task): a UUID as gvmd writes them.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

impl OpenvasConfig {
    /// A configuration reading `report` with every default.
    pub fn new(report: impl Into<PathBuf>) -> Self {
        Self {
            report: Some(report.into()),
            ..Self::gmp_none()
        }
    }

    /// A configuration fetching reports from gvmd on its Unix socket `socket` as
    /// `username`, every other key at its default (set `task_id` or `report_id`).
    pub fn unix_socket(
        socket: impl Into<PathBuf>,
        username: impl Into<String>,
        password: SecretRef,
    ) -> Self {
        Self {
            socket: Some(socket.into()),
            username: Some(username.into()),
            password: Some(password),
            ..Self::gmp_none()
        }
    }

    /// A configuration fetching reports from gvmd over TLS at `host`, every other key at
    /// its default (set `task_id` or `report_id`).
    pub fn tls(host: impl Into<String>, username: impl Into<String>, password: SecretRef) -> Self {
        Self {
            host: Some(host.into()),
            username: Some(username.into()),
            password: Some(password),
            ..Self::gmp_none()
        }
    }

    fn gmp_none() -> Self {
        Self {
            report: None,
            socket: None,
            host: None,
            port: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            username: None,
            password: None,
            report_id: None,
            task_id: None,
            filter: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            include_log: false,
            min_qod: 0,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Whether reports come from gvmd over GMP (`socket` or `host`) rather than a file.
    pub fn is_gmp(&self) -> bool {
        self.socket.is_some() || self.host.is_some()
    }

    /// Checks value ranges and which keys go together; errors name the key under `prefix`
    /// (`scanners.<id>`).
    pub fn validate(&self, prefix: &str) -> Result<(), vowguard_core::Error> {
        let err = |key: &str, what: String| {
            vowguard_core::Error::config(format!("`{prefix}.{key}`: {what}"))
        };
        let sources: Vec<&str> = [
            ("report", self.report.is_some()),
            ("socket", self.socket.is_some()),
            ("host", self.host.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        match sources.as_slice() {
            [] => {
                return Err(vowguard_core::Error::config(format!(
                    "`{prefix}`: set one of `report` (a report XML file), `socket` (gvmd's Unix socket) or `host` (gvmd over TLS)"
                )));
            }
            [_] => {}
            [first, second, ..] => {
                return Err(err(
                    second,
                    format!(
                        "cannot be set together with `{prefix}.{first}`; set exactly one of `report`, `socket` or `host`"
                    ),
                ));
            }
        }
        if let Some(report) = &self.report
            && report.as_os_str().is_empty()
        {
            return Err(err("report", "must name the report XML file".into()));
        }
        if let Some(socket) = &self.socket
            && socket.as_os_str().is_empty()
        {
            return Err(err("socket", "must name gvmd's Unix socket".into()));
        }
        if let Some(host) = &self.host
            && (host.trim().is_empty() || host.contains(['/', ' ', '@']))
        {
            return Err(err(
                "host",
                "must be gvmd's host name or IP address (the port goes in `port`)".into(),
            ));
        }
        if self.is_gmp() {
            if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                return Err(err(
                    "username",
                    "the GMP user is required with `socket` or `host`".into(),
                ));
            }
            if self.password.is_none() {
                return Err(err(
                    "password",
                    "required with `socket` or `host` (`{ env = \"…\" }` or `{ file = \"…\" }`)"
                        .into(),
                ));
            }
            match (&self.report_id, &self.task_id) {
                (None, None) => {
                    return Err(err(
                        "task_id",
                        "set `task_id` (its last report is fetched) or `report_id`".into(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(err(
                        "report_id",
                        format!("cannot be set together with `{prefix}.task_id`"),
                    ));
                }
                (Some(id), None) if !valid_id(id) => {
                    return Err(err("report_id", "must be a report's UUID".into()));
                }
                (None, Some(id)) if !valid_id(id) => {
                    return Err(err("task_id", "must be a task's UUID".into()));
                }
                _ => {}
            }
            if self.request_timeout.is_zero() {
                return Err(err("request_timeout", "must be above 0s".into()));
            }
            if self
                .filter
                .as_deref()
                .is_some_and(|f| f.len() > 1000 || f.chars().any(char::is_control))
            {
                return Err(err(
                    "filter",
                    "must be one line of at most 1000 characters".into(),
                ));
            }
        } else {
            for (key, set) in [
                ("username", self.username.is_some()),
                ("password", self.password.is_some()),
                ("report_id", self.report_id.is_some()),
                ("task_id", self.task_id.is_some()),
                ("filter", self.filter.is_some()),
            ] {
                if set {
                    return Err(err(
                        key,
                        "only used with `socket` or `host` (gvmd over GMP)".into(),
                    ));
                }
            }
        }
        if self.host.is_none() {
            for (key, set) in [
                ("port", self.port.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("client_cert_file", self.client_cert_file.is_some()),
                ("client_key_file", self.client_key_file.is_some()),
            ] {
                if set {
                    return Err(err(key, "only used with `host` (gvmd over TLS)".into()));
                }
            }
        }
        if self.port == Some(0) {
            return Err(err("port", "must be 1..=65535".into()));
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            let missing = if self.client_cert_file.is_some() {
                "client_key_file"
            } else {
                "client_cert_file"
            };
            return Err(err(
                missing,
                "`client_cert_file` and `client_key_file` go together".into(),
            ));
        }
        if self.min_qod > 100 {
            return Err(err(
                "min_qod",
                format!("must be 0..=100, got {}", self.min_qod),
            ));
        }
        if !(1..=100_000).contains(&self.page_size) {
            return Err(err(
                "page_size",
                format!("must be 1..=100000, got {}", self.page_size),
            ));
        }
        if self.max_file_bytes == 0 {
            return Err(err("max_file_bytes", "must be above 0".into()));
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

    #[test]
    fn gmp_keys_go_together_and_errors_name_them() {
        let gmp =
            "socket = \"/run/gvmd/gvmd.sock\"\nusername = \"u\"\npassword = { env = \"P\" }\n";
        let c: OpenvasConfig =
            toml::from_str(&format!("{gmp}task_id = \"6f1b1cd3-0d4c\"")).unwrap();
        c.validate("scanners.gb").unwrap();
        assert!(c.is_gmp());
        let c: OpenvasConfig = toml::from_str("host = \"gvm.example\"\nport = 9391\nusername = \"u\"\npassword = { file = \"/run/secrets/gvm\" }\nreport_id = \"abc-123\"\nca_file = \"ca.pem\"").unwrap();
        c.validate("scanners.gb").unwrap();
        for (text, key) in [
            ("min_qod = 1", "scanners.gb"),
            ("report = \"r.xml\"\nsocket = \"/s\"", "scanners.gb.socket"),
            ("report = \"r.xml\"\nhost = \"h\"", "scanners.gb.host"),
            ("socket = \"/s\"\nhost = \"h\"", "scanners.gb.host"),
            (
                "socket = \"/s\"\npassword = { env = \"P\" }\ntask_id = \"ab\"",
                "scanners.gb.username",
            ),
            (
                "socket = \"/s\"\nusername = \"u\"\ntask_id = \"ab\"",
                "scanners.gb.password",
            ),
            (gmp, "scanners.gb.task_id"),
            (
                &format!("{gmp}task_id = \"ab\"\nreport_id = \"cd\""),
                "scanners.gb.report_id",
            ),
            (
                &format!("{gmp}task_id = \"a\\\" x=\\\"1\""),
                "scanners.gb.task_id",
            ),
            (
                &format!("{gmp}task_id = \"ab\"\nrequest_timeout = \"0s\""),
                "scanners.gb.request_timeout",
            ),
            (
                &format!("{gmp}task_id = \"ab\"\nport = 9390"),
                "scanners.gb.port",
            ),
            (
                &format!("{gmp}task_id = \"ab\"\nca_file = \"ca.pem\""),
                "scanners.gb.ca_file",
            ),
            (
                "host = \"h:9390/x\"\nusername = \"u\"\npassword = { env = \"P\" }\ntask_id = \"ab\"",
                "scanners.gb.host",
            ),
            (
                "host = \"h\"\nusername = \"u\"\npassword = { env = \"P\" }\ntask_id = \"ab\"\nclient_cert_file = \"c.pem\"",
                "scanners.gb.client_key_file",
            ),
            (
                "report = \"r.xml\"\nusername = \"u\"",
                "scanners.gb.username",
            ),
            (
                "report = \"r.xml\"\ntask_id = \"ab\"",
                "scanners.gb.task_id",
            ),
        ] {
            let c: OpenvasConfig = toml::from_str(text).unwrap();
            let err = c.validate("scanners.gb").unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
        }
    }
}
