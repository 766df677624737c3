//! [`DatadogLogsSinkBuilder`]: the one way a [`DatadogLogsSink`] is made, from code or from
//! config.

use std::fmt;

use vowguard_core::Error;
use vowguard_core::secrecy::SecretString;
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{Compression, DEFAULT_SITE, DatadogConfig, api_base, intake_base};
use crate::sink::DatadogLogsSink;

/// Builds a [`DatadogLogsSink`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`sinks.<id>.site`, with `<id>` from [`id`](HttpSinkBuilder::id), default
/// `datadog_logs`). The component id and HTTP client options are set through
/// [`HttpSinkBuilder`] (`.id(..)`, `.http(..)`), re-exported by this crate.
///
/// Start from [`DatadogLogsSink::builder`] (in code) or [`DatadogConfig::into_builder`]
/// (from a `[sinks.<id>]` table, once its secret is resolved). `Debug` never shows the key.
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_datadog::{DatadogLogsSink, HttpSinkBuilder};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let sink = DatadogLogsSink::builder()
///     .api_key(SecretString::from("dd-api-key"))
///     .site("datadoghq.eu")
///     .service("wedding-platform")
///     .tags(["env:prod", "team:secops"])
///     .id("datadog")
///     .build()?;
/// # let _ = sink;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct DatadogLogsSinkBuilder {
    pub(crate) api_key: Option<SecretString>,
    pub(crate) site: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) api_endpoint: Option<String>,
    pub(crate) service: String,
    pub(crate) ddsource: String,
    pub(crate) tags: Vec<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) compression: Compression,
    pub(crate) options: HttpSinkOptions,
}

impl fmt::Debug for DatadogLogsSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatadogLogsSinkBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("site", &self.site)
            .field("endpoint", &self.endpoint)
            .field("api_endpoint", &self.api_endpoint)
            .field("service", &self.service)
            .field("ddsource", &self.ddsource)
            .field("tags", &self.tags)
            .field("hostname", &self.hostname)
            .field("compression", &self.compression)
            .field("options", &self.options)
            .finish()
    }
}

impl DatadogLogsSinkBuilder {
    pub(crate) fn new() -> Self {
        Self {
            api_key: None,
            site: DEFAULT_SITE.to_owned(),
            endpoint: None,
            api_endpoint: None,
            service: "vowguard".to_owned(),
            ddsource: "vowguard".to_owned(),
            tags: Vec::new(),
            hostname: None,
            compression: Compression::Gzip,
            options: HttpSinkOptions::new(),
        }
    }

    /// The API key (required), sent as `DD-API-KEY`.
    pub fn api_key(mut self, api_key: SecretString) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// The Datadog site (default `datadoghq.com`; see [`SITES`](crate::SITES)): logs go to
    /// `https://http-intake.logs.<site>`, the key check to `https://api.<site>`.
    pub fn site(mut self, site: impl Into<String>) -> Self {
        self.site = site.into();
        self
    }

    /// Overrides the logs intake base URL (tests, proxies).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Overrides the API base URL used by the health check (`/api/v1/validate`).
    pub fn api_endpoint(mut self, api_endpoint: impl Into<String>) -> Self {
        self.api_endpoint = Some(api_endpoint.into());
        self
    }

    /// The `service` of every log. Default `vowguard`.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The `ddsource` of every log. Default `vowguard`.
    pub fn ddsource(mut self, ddsource: impl Into<String>) -> Self {
        self.ddsource = ddsource.into();
        self
    }

    /// Tags added to every log (empty ones are dropped). Default: none.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags = tags
            .into_iter()
            .map(Into::into)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        self
    }

    /// The `hostname` of every log. Default: this machine's host name.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Request body compression. Default [`Compression::Gzip`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Checks every value and builds the sink. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: a missing
    /// `api_key` or one that cannot be a header value, an unknown `site`, an `endpoint` or
    /// `api_endpoint` that is not an http(s) URL.
    pub fn build(self) -> Result<DatadogLogsSink, Error> {
        let prefix = self.options.key_prefix("sinks", crate::KIND);
        DatadogLogsSink::from_builder(self).map_err(|e| vowguard_core::qualify_error(&prefix, &e))
    }

    /// The logs intake base URL and the API base URL.
    pub(crate) fn bases(&self) -> Result<(String, String), Error> {
        Ok((
            intake_base(&self.site, self.endpoint.as_deref())?,
            api_base(&self.site, self.api_endpoint.as_deref())?,
        ))
    }
}

impl DatadogConfig {
    /// The builder for this configuration, with `api_key` the resolved `self.api_key`: the
    /// registry's factory resolves the secret reference, then calls this and
    /// [`DatadogLogsSinkBuilder::build`].
    pub fn into_builder(self, api_key: SecretString) -> DatadogLogsSinkBuilder {
        let tags = self.ddtags.to_vec();
        let DatadogConfig {
            api_key: _,
            site,
            endpoint,
            api_endpoint,
            service,
            ddsource,
            ddtags: _,
            hostname,
            compression,
            http,
        } = self;
        DatadogLogsSinkBuilder {
            api_key: Some(api_key),
            site,
            endpoint,
            api_endpoint,
            service,
            ddsource,
            tags,
            hostname,
            compression,
            options: HttpSinkOptions::new().with_http(http),
        }
    }
}

/// `.id(..)` (default `datadog_logs`, named in config errors and every error the sink
/// returns), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for DatadogLogsSinkBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::{ErrorKind, SecretRef};

    use super::*;
    use crate::Tags;

    fn error(builder: DatadogLogsSinkBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_field() {
        let b = || DatadogLogsSink::builder().api_key("k".into());
        assert!(error(DatadogLogsSink::builder()).contains("`sinks.datadog_logs.api_key`"));
        assert!(error(b().site("datadoghq.evil")).contains("`sinks.datadog_logs.site`"));
        assert!(error(b().id("dd").endpoint("ftp://x")).contains("`sinks.dd.endpoint`"));
        let err = error(DatadogLogsSink::builder().api_key("bad\nKEY-VALUE".into()));
        assert!(
            err.contains("`sinks.datadog_logs.api_key`") && !err.contains("KEY-VALUE"),
            "{err}"
        );
        b().build().unwrap();
    }

    #[test]
    fn config_and_builder_agree() {
        let mut config = DatadogConfig::new(SecretRef::Env("DD".into()));
        config.ddtags = Tags::Joined("env:prod, team:secops,".into());
        config.hostname = Some("gw1".into());
        let from_config = config.into_builder("k".into());
        let in_code = DatadogLogsSink::builder()
            .api_key("k".into())
            .tags(["env:prod", "team:secops"])
            .hostname("gw1");
        assert_eq!(format!("{from_config:?}"), format!("{in_code:?}"));
        let debug = format!("{:?}", in_code.api_key("KEY-SECRET".into()));
        assert!(!debug.contains("KEY-SECRET"), "{debug}");
    }
}
