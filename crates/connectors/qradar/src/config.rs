//! Configuration of the `qradar` sink.

use serde::Deserialize;
use vowguard_core::Error;
use vowguard_syslog::{Facility, SyslogConfig};

use crate::encode::{Delimiter, LeefEncoder, LeefVersion};

/// Default LEEF Vendor.
pub const DEFAULT_VENDOR: &str = "vowguard";
/// Default LEEF Product.
pub const DEFAULT_PRODUCT: &str = "wedding-security";
/// Default syslog APP-NAME.
pub const DEFAULT_APP_NAME: &str = "vowguard";

/// Settings of a QRadar (LEEF over syslog) sink.
///
/// ```toml
/// [sinks.qradar]
/// type = "qradar"
/// vendor = "vowguard"                 # LEEF Vendor (default)
/// product = "wedding-security"        # LEEF Product (default)
/// # product_version = "0.1.0"         # LEEF Version header field; default: this crate's version
/// leef_version = "2.0"                # "2.0" (default) or "1.0" (tab-delimited)
/// delimiter = "^"                     # LEEF 2.0 only: one character or hex ("x09", "0x5E")
/// facility = "local4"                 # syslog facility, name or number (default local4)
/// app_name = "vowguard"               # syslog APP-NAME (default)
/// # hostname = "gw1"                  # syslog HOSTNAME (default: this machine's)
///
/// [sinks.qradar.syslog]               # transport, see vowguard-syslog
/// address = "qradar.example.org:6514"
/// transport = "tls"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QRadarConfig {
    /// Where and how to send: address, transport (udp / tcp / tls), framing, TLS, timeouts.
    pub syslog: SyslogConfig,
    /// LEEF Vendor header field (default `vowguard`).
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// LEEF Product header field (default `wedding-security`).
    #[serde(default = "default_product")]
    pub product: String,
    /// LEEF Version header field (default: the version of this crate).
    #[serde(default = "default_product_version")]
    pub product_version: String,
    /// LEEF format version: `"2.0"` (default) or `"1.0"`.
    #[serde(default)]
    pub leef_version: LeefVersion,
    /// Attribute delimiter for LEEF 2.0 (default `^`); LEEF 1.0 only allows the tab.
    #[serde(default)]
    pub delimiter: Option<Delimiter>,
    /// Syslog facility (default `local4`).
    #[serde(default = "default_facility")]
    pub facility: Facility,
    /// Syslog APP-NAME (default `vowguard`; at most 48 printable ASCII characters are sent).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Syslog HOSTNAME (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
}

impl QRadarConfig {
    /// A config sending over `syslog` with every other setting at its default.
    pub fn new(syslog: SyslogConfig) -> Self {
        Self {
            syslog,
            vendor: default_vendor(),
            product: default_product(),
            product_version: default_product_version(),
            leef_version: LeefVersion::default(),
            delimiter: None,
            facility: default_facility(),
            app_name: default_app_name(),
            hostname: None,
        }
    }

    /// The LEEF encoder these settings describe. Fails when LEEF 1.0 is combined with a
    /// delimiter other than the tab.
    pub fn encoder(&self) -> Result<LeefEncoder, Error> {
        let base = LeefEncoder::new(&*self.vendor, &*self.product, &*self.product_version);
        match (self.leef_version, &self.delimiter) {
            (LeefVersion::V2, delimiter) => Ok(base.v2(delimiter.clone().unwrap_or_default())),
            (LeefVersion::V1, None) => Ok(base.v1()),
            (LeefVersion::V1, Some(d)) if d.char() == '\t' => Ok(base.v1()),
            (LeefVersion::V1, Some(d)) => Err(Error::config(format!(
                "`delimiter` {:?}: LEEF 1.0 always uses the tab; remove `delimiter` or set `leef_version = \"2.0\"`",
                d.as_written()
            ))),
        }
    }
}

fn default_vendor() -> String {
    DEFAULT_VENDOR.to_owned()
}

fn default_product() -> String {
    DEFAULT_PRODUCT.to_owned()
}

fn default_product_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn default_facility() -> Facility {
    Facility::LOCAL4
}

fn default_app_name() -> String {
    DEFAULT_APP_NAME.to_owned()
}
