//! [`QRadarSinkBuilder`]: the one way an [`QRadarSink`] is made, from code or from config.

use vowguard_core::Error;
use vowguard_syslog::Facility;

use crate::config::QRadarConfig;
use crate::encode::{Delimiter, LeefVersion};
use crate::sink::QRadarSink;

/// Builds an [`QRadarSink`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error.
///
/// Start from [`QRadarSink::builder`] (in code) or [`QRadarConfig::into_builder`] (from a
/// `[sinks.<id>]` table).
///
/// ```no_run
/// use vowguard_qradar::QRadarSink;
/// use vowguard_syslog::{SyslogConfig, TlsConfig, Transport};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let mut syslog = SyslogConfig::new("qradar.example.org:6514");
/// syslog.transport = Transport::Tls;
/// syslog.tls = Some(TlsConfig::default().with_ca_file("/etc/vowguard/siem-ca.pem"));
/// let sink = QRadarSink::builder(syslog)
///     .product("wedding-security")
///     .hostname("gw1")
///     .id("qradar")
///     .build()?;
/// # let _ = sink;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct QRadarSinkBuilder {
    config: QRadarConfig,
    id: Option<String>,
}

impl QRadarSinkBuilder {
    /// LEEF Vendor header field (default `vowguard`).
    pub fn vendor(mut self, vendor: impl Into<String>) -> Self {
        self.config.vendor = vendor.into();
        self
    }

    /// LEEF Product header field (default `wedding-security`).
    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.config.product = product.into();
        self
    }

    /// LEEF Version header field (default: the version of this crate).
    pub fn product_version(mut self, version: impl Into<String>) -> Self {
        self.config.product_version = version.into();
        self
    }

    /// LEEF format version (default [`LeefVersion::V2`]).
    pub fn leef_version(mut self, version: LeefVersion) -> Self {
        self.config.leef_version = version;
        self
    }

    /// Attribute delimiter for LEEF 2.0 (default `^`); LEEF 1.0 only allows the tab.
    pub fn delimiter(mut self, delimiter: Delimiter) -> Self {
        self.config.delimiter = Some(delimiter);
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

    /// Syslog HOSTNAME (default: this machine's host name).
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
    /// combination of transport settings, unreadable TLS files, a `delimiter` other than the
    /// tab with LEEF 1.0.
    pub fn build(self) -> Result<QRadarSink, Error> {
        let id = self.id;
        QRadarSink::from_config(self.config, id.clone()).map_err(|e| match id {
            Some(id) => e.with_component(id),
            None => e,
        })
    }
}

impl QRadarConfig {
    /// The builder for this configuration (it holds no secrets): the registry's factory calls
    /// this and [`QRadarSinkBuilder::build`].
    pub fn into_builder(self) -> QRadarSinkBuilder {
        QRadarSinkBuilder {
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
        let err = QRadarSink::builder(SyslogConfig::new("no-port"))
            .id("qradar")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.component(), Some("qradar"));
        assert!(err.to_string().contains("host:port"), "{err}");
    }

    #[test]
    fn leef_1_refuses_another_delimiter() {
        let err = QRadarSink::builder(SyslogConfig::new("127.0.0.1:514"))
            .leef_version(LeefVersion::V1)
            .delimiter(Delimiter::caret())
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("`delimiter`"), "{err}");
    }

    #[test]
    fn config_and_builder_agree() {
        let mut config = QRadarConfig::new(SyslogConfig::new("127.0.0.1:514"));
        config.product = "guest-portal".into();
        config.hostname = Some("gw1".into());
        let from_config = config.into_builder().build().unwrap();
        let in_code = QRadarSink::builder(SyslogConfig::new("127.0.0.1:514"))
            .product("guest-portal")
            .hostname("gw1")
            .build()
            .unwrap();
        assert_eq!(
            format!("{:?}", from_config.encoder()),
            format!("{:?}", in_code.encoder())
        );
    }
}
