//! Configuration of the `arcsight` sink.

use serde::Deserialize;
use vowguard_syslog::{Facility, SyslogConfig};

/// Default CEF Device Vendor.
pub const DEFAULT_DEVICE_VENDOR: &str = "vowguard";
/// Default CEF Device Product.
pub const DEFAULT_DEVICE_PRODUCT: &str = "wedding-security";
/// Default syslog APP-NAME.
pub const DEFAULT_APP_NAME: &str = "vowguard";

/// Settings of an ArcSight (CEF over syslog) sink.
///
/// ```toml
/// [sinks.arcsight]
/// type = "arcsight"
/// device_vendor = "vowguard"          # CEF Device Vendor (default)
/// device_product = "wedding-security" # CEF Device Product (default)
/// # device_version = "0.1.0"          # default: this crate's version
/// facility = "local4"                 # syslog facility, name or number (default local4)
/// app_name = "vowguard"               # syslog APP-NAME (default)
/// # hostname = "gw1"                  # syslog HOSTNAME and CEF dvchost (default: this machine's)
///
/// [sinks.arcsight.syslog]             # transport, see vowguard-syslog
/// address = "arcsight-connector.example.org:6514"
/// transport = "tls"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ArcSightConfig {
    /// Where and how to send: address, transport (udp / tcp / tls), framing, TLS, timeouts.
    pub syslog: SyslogConfig,
    /// CEF Device Vendor (default `vowguard`).
    #[serde(default = "default_device_vendor")]
    pub device_vendor: String,
    /// CEF Device Product (default `wedding-security`).
    #[serde(default = "default_device_product")]
    pub device_product: String,
    /// CEF Device Version (default: the version of this crate).
    #[serde(default = "default_device_version")]
    pub device_version: String,
    /// Syslog facility (default `local4`).
    #[serde(default = "default_facility")]
    pub facility: Facility,
    /// Syslog APP-NAME (default `vowguard`; at most 48 printable ASCII characters are sent).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Syslog HOSTNAME and CEF `dvchost` (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
}

impl ArcSightConfig {
    /// A config sending over `syslog` with every other setting at its default.
    pub fn new(syslog: SyslogConfig) -> Self {
        Self {
            syslog,
            device_vendor: default_device_vendor(),
            device_product: default_device_product(),
            device_version: default_device_version(),
            facility: default_facility(),
            app_name: default_app_name(),
            hostname: None,
        }
    }
}

fn default_device_vendor() -> String {
    DEFAULT_DEVICE_VENDOR.to_owned()
}

fn default_device_product() -> String {
    DEFAULT_DEVICE_PRODUCT.to_owned()
}

fn default_device_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn default_facility() -> Facility {
    Facility::LOCAL4
}

fn default_app_name() -> String {
    DEFAULT_APP_NAME.to_owned()
}
