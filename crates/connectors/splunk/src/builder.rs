//! [`SplunkHecSinkBuilder`]: the one way a [`SplunkHecSink`] is made, from code or from config.

use std::fmt;

use secrecy::SecretString;
use vowguard_core::Error;
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{AckConfig, Compression, SplunkHecConfig, default_host};
use crate::sink::SplunkHecSink;

/// Builds a [`SplunkHecSink`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`sinks.<id>.index`, with `<id>` from [`id`](HttpSinkBuilder::id), default
/// `splunk_hec`). The component id and HTTP client options are set through
/// [`HttpSinkBuilder`] (`.id(..)`, `.http(..)`), re-exported by this crate.
///
/// Start from [`SplunkHecSink::builder`] (in code) or [`SplunkHecConfig::into_builder`] (from
/// a `[sinks.<id>]` table, once its secrets are resolved). `Debug` never shows the token.
///
/// ```no_run
/// use secrecy::SecretString;
/// use vowguard_splunk::{Compression, HttpSinkBuilder, SplunkHecSink};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let token = SecretString::from(std::env::var("SPLUNK_HEC_TOKEN").unwrap_or_default());
/// let sink = SplunkHecSink::builder("https://splunk.example.org:8088")
///     .token(token)
///     .index("wedding-security")
///     .compression(Compression::Gzip)
///     .id("splunk")
///     .build()?;
/// # let _ = sink;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SplunkHecSinkBuilder {
    pub(crate) endpoint: String,
    pub(crate) token: Option<SecretString>,
    pub(crate) index: Option<String>,
    pub(crate) host: String,
    pub(crate) source: String,
    pub(crate) sourcetype: String,
    pub(crate) compression: Compression,
    pub(crate) acknowledgements: AckConfig,
    pub(crate) options: HttpSinkOptions,
}

impl fmt::Debug for SplunkHecSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplunkHecSinkBuilder")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("index", &self.index)
            .field("host", &self.host)
            .field("source", &self.source)
            .field("sourcetype", &self.sourcetype)
            .field("compression", &self.compression)
            .field("acknowledgements", &self.acknowledgements)
            .field("options", &self.options)
            .finish()
    }
}

impl SplunkHecSinkBuilder {
    pub(crate) fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: None,
            index: None,
            host: default_host(),
            source: "vowguard".to_owned(),
            sourcetype: "_json".to_owned(),
            compression: Compression::default(),
            acknowledgements: AckConfig::default(),
            options: HttpSinkOptions::new(),
        }
    }

    /// The HEC token (required), sent as `Authorization: Splunk <token>`.
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// The index to write to; when not set the token's default index is used.
    pub fn index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// The `host` of every event. Default: the machine's host name (`HOSTNAME`, else
    /// `/etc/hostname`, else `vowguard`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// The `source` of every event. Default `vowguard`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// The `sourcetype` of every event. Default `_json`.
    pub fn sourcetype(mut self, sourcetype: impl Into<String>) -> Self {
        self.sourcetype = sourcetype.into();
        self
    }

    /// Request body compression. Default [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Indexer acknowledgement. Default: disabled.
    pub fn acknowledgements(mut self, acknowledgements: AckConfig) -> Self {
        self.acknowledgements = acknowledgements;
        self
    }

    /// Checks every value and builds the sink. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: a missing
    /// `token`, an `endpoint` that is not an http(s) base URL, an empty `host`, `source`,
    /// `sourcetype` or `index`, a zero acknowledgement timing.
    pub fn build(self) -> Result<SplunkHecSink, Error> {
        let prefix = self.options.key_prefix("sinks", crate::KIND);
        self.validate()
            .and_then(|()| SplunkHecSink::from_builder(self))
            .map_err(|e| vowguard_core::qualify_error(&prefix, &e))
    }

    /// The checks that need no parsing: non-empty metadata and positive ack timings. The
    /// endpoint and token are checked when the sink is made.
    fn validate(&self) -> Result<(), Error> {
        for (key, value) in [
            ("host", &self.host),
            ("source", &self.source),
            ("sourcetype", &self.sourcetype),
        ] {
            if value.trim().is_empty() {
                return Err(Error::config(format!("`{key}`: must not be empty")));
            }
        }
        if matches!(&self.index, Some(index) if index.trim().is_empty()) {
            return Err(Error::config(
                "`index`: must not be empty (leave it out to use the token's default index)",
            ));
        }
        if self.acknowledgements.enabled {
            if self
                .acknowledgements
                .poll_interval
                .is_some_and(|i| i.is_zero())
            {
                return Err(Error::config(
                    "`acknowledgements.poll_interval`: must be more than 0s",
                ));
            }
            if self.acknowledgements.timeout.is_zero() {
                return Err(Error::config(
                    "`acknowledgements.timeout`: must be more than 0s",
                ));
            }
        }
        if self.token.is_none() {
            return Err(Error::config(
                "`token`: required (the HEC token, set with `.token(..)`)",
            ));
        }
        Ok(())
    }
}

impl SplunkHecConfig {
    /// The builder for this configuration, with `token` the resolved `self.token`: the
    /// registry's factory resolves the secret reference, then calls this and
    /// [`SplunkHecSinkBuilder::build`].
    pub fn into_builder(self, token: SecretString) -> SplunkHecSinkBuilder {
        let SplunkHecConfig {
            endpoint,
            token: _,
            index,
            host,
            source,
            sourcetype,
            compression,
            acknowledgements,
            http,
        } = self;
        SplunkHecSinkBuilder {
            endpoint,
            token: Some(token),
            index,
            host,
            source,
            sourcetype,
            compression,
            acknowledgements,
            options: HttpSinkOptions::new().with_http(http),
        }
    }
}

/// `.id(..)` (default `splunk_hec`, named in config errors and every error the sink
/// returns), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for SplunkHecSinkBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::{ErrorKind, SecretRef};

    use super::*;

    fn builder() -> SplunkHecSinkBuilder {
        SplunkHecSink::builder("https://splunk.example.org:8088").token("t".into())
    }

    fn error(builder: SplunkHecSinkBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_field() {
        assert!(error(builder().index("")).contains("`sinks.splunk_hec.index`"));
        assert!(error(builder().id("hec").index("")).contains("`sinks.hec.index`"));
        assert!(error(builder().sourcetype(" ")).contains("`sinks.splunk_hec.sourcetype`"));
        assert!(error(builder().host("")).contains("`sinks.splunk_hec.host`"));
        assert!(error(builder().source("")).contains("`sinks.splunk_hec.source`"));
        let ack = AckConfig {
            enabled: true,
            timeout: std::time::Duration::ZERO,
            ..AckConfig::default()
        };
        assert!(error(builder().acknowledgements(ack)).contains("acknowledgements.timeout`"));
        let ack = AckConfig {
            enabled: true,
            poll_interval: Some(std::time::Duration::ZERO),
            ..AckConfig::default()
        };
        assert!(error(builder().acknowledgements(ack)).contains("acknowledgements.poll_interval`"));
        let no_token = SplunkHecSink::builder("https://splunk.example.org:8088");
        assert!(error(no_token).contains("`sinks.splunk_hec.token`"));
        assert!(
            error(SplunkHecSink::builder("ftp://x").token("t".into()))
                .contains("`sinks.splunk_hec.endpoint`")
        );
        let err = error(builder().token("bad\ntoken-VALUE".into()));
        assert!(
            err.contains("`sinks.splunk_hec.token`") && !err.contains("token-VALUE"),
            "{err}"
        );
    }

    #[test]
    fn config_and_builder_agree() {
        let mut config = SplunkHecConfig::new(
            "https://splunk.example.org:8088",
            SecretRef::Env("T".into()),
        );
        config.index = Some("wedding-security".into());
        config.compression = Compression::Gzip;
        let from_config = config.into_builder("t".into()).id("splunk");
        let in_code = builder()
            .index("wedding-security")
            .compression(Compression::Gzip)
            .id("splunk");
        assert_eq!(format!("{from_config:?}"), format!("{in_code:?}"));
        let sink = from_config.build().unwrap();
        assert_eq!(sink.encoder(), in_code.build().unwrap().encoder());
    }

    #[test]
    fn debug_hides_the_token() {
        let debug = format!("{:?}", builder().token("hec-SECRET-1".into()));
        assert!(!debug.contains("hec-SECRET-1"), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
    }
}
