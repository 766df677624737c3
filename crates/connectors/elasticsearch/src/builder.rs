//! [`ElasticsearchSinkBuilder`]: the one way an [`ElasticsearchSink`] is made, from code or
//! from config.

use std::fmt;

use vowguard_core::Error;
use vowguard_core::secrecy::SecretString;
use vowguard_http::{HttpSinkBuilder, HttpSinkOptions};

use crate::config::{BulkAction, Compression, ElasticsearchConfig};
use crate::sink::{Credentials, ElasticsearchSink};

/// Builds an [`ElasticsearchSink`]; every value is checked at [`build`](Self::build), and an
/// invalid one is a [`Config`](vowguard_core::ErrorKind::Config) error naming the key
/// (`sinks.<id>.index`, with `<id>` from [`id`](HttpSinkBuilder::id), default
/// `elasticsearch`). The component id and HTTP client options are set through
/// [`HttpSinkBuilder`] (`.id(..)`, `.http(..)`), re-exported by this crate.
///
/// Start from [`ElasticsearchSink::builder`] (in code) or
/// [`ElasticsearchConfig::into_builder`] (from a `[sinks.<id>]` table, once its secrets are
/// resolved). `Debug` never shows the API key or the password.
///
/// ```no_run
/// use vowguard_core::secrecy::SecretString;
/// use vowguard_elasticsearch::{BulkAction, ElasticsearchSink, HttpSinkBuilder};
///
/// # fn main() -> Result<(), vowguard_core::Error> {
/// let sink = ElasticsearchSink::builder("https://es.example.org:9200")
///     .api_key(SecretString::from("aWQ6a2V5"))
///     .index("wedding-security-%Y-%m")
///     .action(BulkAction::Create)
///     .id("es")
///     .build()?;
/// # let _ = sink;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ElasticsearchSinkBuilder {
    /// Every non-secret value; its secret references and `http` are unused (the HTTP
    /// options are in `options`).
    config: ElasticsearchConfig,
    api_key: Option<SecretString>,
    password: Option<SecretString>,
    options: HttpSinkOptions,
}

impl fmt::Debug for ElasticsearchSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("ElasticsearchSinkBuilder")
            .field("endpoint", &c.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("username", &c.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("index", &c.index)
            .field("data_stream", &c.data_stream)
            .field("action", &c.action)
            .field("pipeline", &c.pipeline)
            .field("compression", &c.compression)
            .field("options", &self.options)
            .finish()
    }
}

impl ElasticsearchSinkBuilder {
    pub(crate) fn new(endpoint: impl Into<String>) -> Self {
        ElasticsearchConfig::new(endpoint).into_builder(None, None)
    }

    /// Authenticates with an API key: the base64 of `id:key` (what Elasticsearch returns as
    /// `encoded`), sent as `Authorization: ApiKey <value>`. Excludes [`basic_auth`](Self::basic_auth).
    pub fn api_key(mut self, api_key: SecretString) -> Self {
        self.api_key = Some(api_key);
        self
    }

    /// Authenticates with HTTP Basic. Excludes [`api_key`](Self::api_key).
    pub fn basic_auth(mut self, username: impl Into<String>, password: SecretString) -> Self {
        self.config.username = Some(username.into());
        self.password = Some(password);
        self
    }

    /// Index name pattern over the event's timestamp (UTC): `%Y` year, `%m` month, `%d`
    /// day, `%H` hour, `%%` a literal `%`. Default [`DEFAULT_INDEX`](crate::DEFAULT_INDEX).
    /// Excludes [`data_stream`](Self::data_stream).
    pub fn index(mut self, pattern: impl Into<String>) -> Self {
        self.config.index = Some(pattern.into());
        self
    }

    /// Writes to this data stream instead of an index (the action is always `create`).
    pub fn data_stream(mut self, name: impl Into<String>) -> Self {
        self.config.data_stream = Some(name.into());
        self
    }

    /// The bulk action. Default [`BulkAction::Index`] (data streams: `create`).
    pub fn action(mut self, action: BulkAction) -> Self {
        self.config.action = Some(action);
        self
    }

    /// Ingest pipeline to run the documents through (`?pipeline=`).
    pub fn pipeline(mut self, pipeline: impl Into<String>) -> Self {
        self.config.pipeline = Some(pipeline.into());
        self
    }

    /// Request body compression. Default [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Checks every value and builds the sink. Nothing is sent over the network.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key: both an API
    /// key and a user, a user without a password, an `endpoint` that is not an http(s) URL
    /// or carries credentials, a bad `index` pattern or `data_stream` name, `index` together
    /// with `data_stream`, `action = index` with a data stream.
    pub fn build(self) -> Result<ElasticsearchSink, Error> {
        let prefix = self.options.key_prefix("sinks", crate::KIND);
        self.build_unqualified()
            .map_err(|e| vowguard_core::qualify_error(&prefix, &e))
    }

    /// [`build`](Self::build), with errors naming the field only.
    fn build_unqualified(self) -> Result<ElasticsearchSink, Error> {
        let Self {
            mut config,
            api_key,
            password,
            options,
        } = self;
        let credentials = match (api_key, config.username.take(), password) {
            (None, None, None) => Credentials::None,
            (Some(key), None, None) => Credentials::ApiKey(key),
            (None, Some(username), Some(password)) => Credentials::Basic { username, password },
            (Some(_), _, _) => {
                return Err(Error::config(
                    "`api_key`: set either `api_key` or `username` + `password`, not both",
                ));
            }
            (None, Some(_), None) => {
                return Err(Error::config("`password`: `username` needs a `password`"));
            }
            (None, None, Some(_)) => {
                return Err(Error::config("`username`: `password` needs a `username`"));
            }
        };
        ElasticsearchSink::from_parts(&config, &credentials, options)
    }
}

impl ElasticsearchConfig {
    /// The builder for this configuration, with `api_key` and `password` the resolved
    /// `self.api_key` and `self.password` (each `None` when not configured): the registry's
    /// factory resolves the secret references, then calls this and
    /// [`ElasticsearchSinkBuilder::build`].
    pub fn into_builder(
        mut self,
        api_key: Option<SecretString>,
        password: Option<SecretString>,
    ) -> ElasticsearchSinkBuilder {
        self.api_key = None;
        self.password = None;
        let options = HttpSinkOptions::new().with_http(std::mem::take(&mut self.http));
        ElasticsearchSinkBuilder {
            config: self,
            api_key,
            password,
            options,
        }
    }
}

/// `.id(..)` (default `elasticsearch`, named in config errors and every error the sink
/// returns), `.http(..)` and `.with_options(..)`.
impl HttpSinkBuilder for ElasticsearchSinkBuilder {
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
        &mut self.options
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;

    use super::*;

    fn error(builder: ElasticsearchSinkBuilder) -> String {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        err.to_string()
    }

    #[test]
    fn validation_names_the_field() {
        let b = || ElasticsearchSink::builder("http://127.0.0.1:9200");
        let both = b().api_key("k".into()).basic_auth("elastic", "p".into());
        assert!(error(both).contains("`sinks.elasticsearch.api_key`"));
        let mut config = ElasticsearchConfig::new("http://127.0.0.1:9200");
        config.username = Some("elastic".into());
        assert!(
            error(config.clone().into_builder(None, None))
                .contains("`sinks.elasticsearch.password`")
        );
        config.username = None;
        assert!(
            error(config.into_builder(None, Some("p".into())))
                .contains("`sinks.elasticsearch.username`")
        );
        assert!(error(b().index("a").data_stream("logs-x-y")).contains("data_stream`"));
        assert!(error(b().id("es").data_stream("Bad")).contains("`sinks.es.data_stream`"));
        assert!(
            error(b().data_stream("logs-x-y").action(BulkAction::Index))
                .contains("`sinks.elasticsearch.action`")
        );
        assert!(
            error(ElasticsearchSink::builder("ftp://x")).contains("`sinks.elasticsearch.endpoint`")
        );
        let in_url = ElasticsearchSink::builder("http://u:secret-PW@127.0.0.1:9200");
        let err = error(in_url);
        assert!(
            err.contains("`sinks.elasticsearch.endpoint`") && !err.contains("secret-PW"),
            "{err}"
        );
        b().basic_auth("elastic", "p".into()).build().unwrap();
    }

    #[test]
    fn debug_hides_the_secrets() {
        let debug = format!(
            "{:?}",
            ElasticsearchSink::builder("http://127.0.0.1:9200")
                .api_key("KEY-SECRET-1".into())
                .basic_auth("elastic", "PW-SECRET-2".into())
        );
        assert!(!debug.contains("SECRET"), "{debug}");
    }
}
