//! [`HttpSinkOptions`] and [`HttpSinkBuilder`]: the part every HTTP connector builder shares
//! (the component id its errors name, the HTTP client options), written once.

use vowguard_core::Error;

use crate::{HttpOptions, build_client};

/// The options every HTTP connector builder embeds: the component id (the config table
/// key) named in its errors, and the HTTP client's timeouts and pool.
///
/// Builders expose it through [`HttpSinkBuilder`] (`.id(..)`, `.http(..)`,
/// `.with_options(..)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSinkOptions {
    /// The component id; `None` until set (the builder then uses its connector's default).
    pub id: Option<String>,
    /// HTTP client timeouts and pool. Default [`HttpOptions::default`].
    pub http: HttpOptions,
}

impl HttpSinkOptions {
    /// No id, default HTTP options.
    pub fn new() -> Self {
        Self::default()
    }

    /// These options with `http` as the HTTP client options.
    #[must_use]
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// These options with `id` as the component id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The component id, or `default` when none is set.
    pub fn id_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.id.as_deref().unwrap_or(default)
    }

    /// The config key prefix errors name: `<section>.<id>` (e.g. `notifiers.oncall`), with
    /// `default_id` when no id is set.
    pub fn key_prefix(&self, section: &str, default_id: &str) -> String {
        format!("{section}.{}", self.id_or(default_id))
    }

    /// The reqwest client for these options (see [`build_client`]).
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error when the client cannot be made.
    pub fn client(&self) -> Result<reqwest::Client, Error> {
        build_client(&self.http)
    }
}

/// The setters every HTTP connector builder shares, over the [`HttpSinkOptions`] it embeds.
/// A builder implements [`http_sink_options`](Self::http_sink_options); the rest comes from
/// here. Bring the trait into scope to call them (each connector crate re-exports it).
///
/// ```
/// use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};
///
/// #[derive(Default)]
/// struct MyBuilder {
///     options: HttpSinkOptions,
/// }
///
/// impl HttpSinkBuilder for MyBuilder {
///     fn http_sink_options(&mut self) -> &mut HttpSinkOptions {
///         &mut self.options
///     }
/// }
///
/// let mut b = MyBuilder::default().id("splunk").http(HttpOptions::default());
/// assert_eq!(b.http_sink_options().key_prefix("sinks", "splunk_hec"), "sinks.splunk");
/// ```
pub trait HttpSinkBuilder: Sized {
    /// The embedded options.
    fn http_sink_options(&mut self) -> &mut HttpSinkOptions;

    /// HTTP client timeouts and pool. Default [`HttpOptions::default`].
    #[must_use]
    fn http(mut self, http: HttpOptions) -> Self {
        self.http_sink_options().http = http;
        self
    }

    /// The component id (the config table key), named in every error the connector
    /// returns.
    #[must_use]
    fn id(mut self, id: impl Into<String>) -> Self {
        self.http_sink_options().id = Some(id.into());
        self
    }

    /// Replaces the id and HTTP options at once.
    #[must_use]
    fn with_options(mut self, options: HttpSinkOptions) -> Self {
        *self.http_sink_options() = options;
        self
    }
}
