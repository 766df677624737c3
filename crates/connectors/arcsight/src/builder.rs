//! [`ArcSightSinkBuilder`]: the one way an [`ArcSightSink`] is made, from code or from config.

use vowguard_core::Error;
use vowguard_syslog::Facility;

use crate::config::ArcSightConfig;
use crate::sink::ArcSightSink;

/// Builds an [`ArcSightSink`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error.
///
/// Start from [`ArcSightSink::builder`] (in code) or [`ArcSightConfig::into_builder`] (from a
/// `[sinks.<id>]` table).
///
/// ```no_run
/// use vowguard_arcsight::ArcSightSink;
/// use vowguard_syslog::{SyslogConfig, TlsConfig, Transport};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let mut syslog = SyslogConfig::new("arcsight.example.org:6514");
/// syslog.transport = Transport::Tls;
/// syslog.tls = Some(TlsConfig::default().with_ca_file("/etc/vowguard/siem-ca.pem"));
/// let sink = ArcSightSink::builder(syslog)
///     .device_product("wedding-security")
///     .hostname("gw1")
///     .id("arcsight")
///     .build()?;
/// # let _ = sink;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ArcSightSinkBuilder {
    config: ArcSightConfig,
    id: Option<String>,
}

impl ArcSightSinkBuilder {
    /// CEF Device Vendor (default `vowguard`).
    pub fn device_vendor(mut self, vendor: impl Into<String>) -> Self {
        self.config.device_vendor = vendor.into();
        self
    }

    /// CEF Device Product (default `wedding-security`).
    pub fn device_product(mut self, product: impl Into<String>) -> Self {
        self.config.device_product = product.into();
        self
    }

    /// CEF Device Version (default: the version of this crate).
    pub fn device_version(mut self, version: impl Into<String>) -> Self {
        self.config.device_version = version.into();
        self
    }

    /// Syslog facility (default `local4`).
    pub fn facility(mut self, facility: Facility) -> Self {
        self.config.facility = facility;
        self
    }

    /// Syslog APP-NAME (default `vowguard`).
    pub fn app_name(mut self, app_name: impl Into<String>) -> Self {
        self.config.app_name = app_name.into();
        self
    }

    /// Syslog HOSTNAME and CEF `dvchost` (default: this machine's host name).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.config.hostname = Some(hostname.into());
        self
    }

    /// The component id (the config table key), named in every error the sink returns.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Checks the transport settings, loads TLS material and builds the sink; does not
    /// connect yet (the first send or healthcheck does).
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error: a bad `syslog` address or
    /// combination of transport settings, unreadable TLS files.
    pub fn build(self) -> Result<ArcSightSink, Error> {
        let id = self.id;
        ArcSightSink::from_config(self.config, id.clone()).map_err(|e| match id {
            Some(id) => e.with_component(id),
            None => e,
        })
    }
}

impl ArcSightConfig {
    /// The builder for this configuration (it holds no secrets): the registry's factory calls
    /// this and [`ArcSightSinkBuilder::build`].
    pub fn into_builder(self) -> ArcSightSinkBuilder {
        ArcSightSinkBuilder {
            config: self,
            id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;
    use vowguard_syslog::SyslogConfig;

    use super::*;

    #[test]
    fn invalid_values_fail_at_build_naming_the_component() {
        let err = ArcSightSink::builder(SyslogConfig::new("no-port"))
            .id("arcsight")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.component(), Some("arcsight"));
        assert!(err.to_string().contains("host:port"), "{err}");
    }

    #[test]
    fn config_and_builder_agree() {
        let mut config = ArcSightConfig::new(SyslogConfig::new("127.0.0.1:514"));
        config.device_product = "guest-portal".into();
        config.hostname = Some("gw1".into());
        let from_config = config.into_builder().build().unwrap();
        let in_code = ArcSightSink::builder(SyslogConfig::new("127.0.0.1:514"))
            .device_product("guest-portal")
            .hostname("gw1")
            .build()
            .unwrap();
        assert_eq!(
            format!("{:?}", from_config.encoder()),
            format!("{:?}", in_code.encoder())
        );
    }
}
