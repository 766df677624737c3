//! One threat-intelligence provider for every vendor: [`IntelProvider`] holds the plumbing
//! (client, base URL, API key, answer cap, secrets redaction, 429 pause, component id) and
//! an [`IntelVendor`] supplies only what differs between vendors: the request for an
//! indicator and how an answer becomes a [`ThreatIntel`]. [`IntelBuilder`] builds the
//! enricher (cache and limits included) from resolved secrets and typed values.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, ErrorKind, Redactor, ThreatIntel};
use vowguard_http::reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use vowguard_http::reqwest::{self, RequestBuilder, StatusCode, Url};
use vowguard_http::{Answer, Exchange, HttpOptions, build_client, origin, parse_url};

use crate::cache::CacheOptions;
use crate::gate::ProviderLimits;
use crate::indicator::{Indicator, IndicatorKind};
use crate::provider::{ReputationProvider, ThreatEnricher};
use crate::quota::QuotaPause;

/// The default cap on one vendor answer: every lookup is bounded in memory whatever the
/// vendor sends (a threat-intel answer about one indicator is kilobytes; VirusTotal's
/// largest file reports stay well under this).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What one threat-intelligence vendor does differently from the others. Everything else
/// (client, key, cap, redaction, 429 pause, cache, limits) is [`IntelProvider`]'s.
pub trait IntelVendor: Send + Sync + fmt::Debug + 'static {
    /// The connector kind (`otx`): the enricher kind and the provider name in verdicts.
    const KIND: &'static str;
    /// The vendor's name in messages (`OTX`).
    const NAME: &'static str;
    /// Where the API lives unless the builder is given a base URL; `None`: the base URL is
    /// required (a self-hosted MISP).
    const DEFAULT_BASE_URL: Option<&'static str>;
    /// The config key of the base URL, named in errors.
    const BASE_URL_FIELD: &'static str = "base_url";
    /// The header the API key goes in, and the config key that holds it; `None`: the vendor
    /// authenticates requests itself in [`Self::request`].
    const API_KEY: Option<(HeaderName, &'static str)>;
    /// Limits unless the builder is given others.
    const DEFAULT_LIMITS: ProviderLimits;
    /// The most bytes of an answer read.
    const MAX_RESPONSE_BYTES: usize = DEFAULT_MAX_RESPONSE_BYTES;
    /// What a 429 without `Retry-After` means: the provider pauses that long.
    const DEFAULT_RETRY_AFTER: Option<Duration> = Some(QuotaPause::DEFAULT_PAUSE);

    /// Checks the vendor's own settings at build time; the error names the field.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The vendor's own secrets (beyond the API key), to keep out of errors.
    fn secrets(&self) -> Vec<SecretString> {
        Vec::new()
    }

    /// Whether the vendor looks up indicators of `kind`. Default: every kind.
    fn supports(&self, kind: &IndicatorKind) -> bool {
        let _ = kind;
        true
    }

    /// What a lookup is called in errors. Default `"{NAME} {kind} lookup of {value} at
    /// {origin}"`; a URL's value is left out (its query may carry tokens).
    fn what(&self, indicator: &Indicator, origin: &str) -> String {
        if indicator.kind == IndicatorKind::Url {
            format!("{} url lookup at {origin}", Self::NAME)
        } else {
            format!(
                "{} {} lookup of {} at {origin}",
                Self::NAME,
                indicator.kind,
                indicator.value
            )
        }
    }

    /// The request for `indicator`, made with [`IntelApi::get`] / [`IntelApi::post`] (which
    /// add the API key) or, for vendors that sign, with [`IntelApi::client`].
    fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error>;

    /// The vendor's own message in an error body, quoted instead of the whole body.
    fn error_reason(&self, body: &str) -> Option<String>;

    /// Whether a non-2xx answer means "the vendor does not know the indicator" (unknown, not
    /// benign). Default: 404.
    fn unknown(&self, answer: &Answer) -> bool {
        answer.status == StatusCode::NOT_FOUND
    }

    /// How long a 429 without `Retry-After` asks to wait, from vendor headers
    /// (AbuseIPDB's `X-RateLimit-Reset`). Default: nothing.
    fn rate_limit_reset(&self, answer: &Answer) -> Option<Duration> {
        let _ = answer;
        None
    }

    /// A 2xx answer's body as intelligence; `Ok(None)`: unknown.
    fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error>;

    /// Runs after a lookup that found something (MISP reports a sighting). Default: nothing.
    fn after_hit(&self, api: &IntelApi, indicator: &Indicator) {
        let _ = (api, indicator);
    }
}

/// The HTTP side of one vendor API: the shared client, the base URL, the API key as a
/// sensitive header and the [`Exchange`] (answer cap, secrets redaction, default
/// `Retry-After`).
pub struct IntelApi {
    client: reqwest::Client,
    base: Url,
    origin: String,
    key: Option<(HeaderName, HeaderValue)>,
    exchange: Exchange,
}

impl fmt::Debug for IntelApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntelApi")
            .field("origin", &self.origin)
            .field("key_header", &self.key.as_ref().map(|(name, _)| name))
            .finish_non_exhaustive()
    }
}

impl IntelApi {
    /// The API's base URL, to build request URLs from.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `scheme://host[:port]` of the API: the only part of it errors may show.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The client, for requests the vendor authenticates itself.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The exchange: cap, redaction of every secret, default `Retry-After`.
    pub fn exchange(&self) -> &Exchange {
        &self.exchange
    }

    /// Removes the API key and the vendor's secrets from text.
    pub fn redactor(&self) -> &Redactor {
        self.exchange.redactor()
    }

    fn keyed(&self, request: RequestBuilder) -> RequestBuilder {
        let request = request.header(ACCEPT, "application/json");
        match &self.key {
            Some((name, value)) => request.header(name.clone(), value.clone()),
            None => request,
        }
    }

    /// `GET url` with the API key and `Accept: application/json`.
    pub fn get(&self, url: Url) -> RequestBuilder {
        self.keyed(self.client.get(url))
    }

    /// `POST url` with the API key and `Accept: application/json`.
    pub fn post(&self, url: Url) -> RequestBuilder {
        self.keyed(self.client.post(url))
    }
}

/// A [`ReputationProvider`] for any [`IntelVendor`]: one attempt per lookup through the
/// vendor's request, answers read up to the vendor's cap, non-2xx answers classified once
/// ([`IntelProvider::answer_error`]), and after a 429 no request until its `Retry-After` (or
/// the vendor's default pause) has passed.
pub struct IntelProvider<V: IntelVendor> {
    vendor: V,
    api: IntelApi,
    component: String,
    quota: QuotaPause,
}

impl<V: IntelVendor> fmt::Debug for IntelProvider<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntelProvider")
            .field("kind", &V::KIND)
            .field("component", &self.component)
            .field("origin", &self.api.origin)
            .field("vendor", &self.vendor)
            .finish_non_exhaustive()
    }
}

impl<V: IntelVendor> IntelProvider<V> {
    /// The vendor's settings.
    pub fn vendor(&self) -> &V {
        &self.vendor
    }

    /// The HTTP side.
    pub fn api(&self) -> &IntelApi {
        &self.api
    }

    /// The component id errors carry ([`IntelVendor::KIND`] unless the builder set one).
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The error for a non-2xx answer that is not "unknown": the shared classification
    /// ([`Exchange::failure`]) with the vendor's reason, and for a 429 without `Retry-After`
    /// the vendor's reset header or its default pause.
    pub fn answer_error(&self, answer: &Answer, what: &str) -> Error {
        answer_error(&self.vendor, &self.api.exchange, answer, what)
    }

    async fn fetch(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        let what = self.vendor.what(indicator, &self.api.origin);
        self.quota
            .check(&what, &format!("{} asked to slow down", V::NAME))?;
        let request = self.vendor.request(&self.api, indicator)?;
        let answer = self.api.exchange.send(request, &what).await?;
        if !answer.is_success() {
            if self.vendor.unknown(&answer) {
                return Ok(None);
            }
            let error = self.answer_error(&answer, &what);
            if let Some(wait) = self.quota.record(&error) {
                tracing::warn!(
                    provider = V::KIND,
                    component = %self.component,
                    pause_secs = wait.as_secs(),
                    "{} rate limit or quota reached; no lookups until the pause ends",
                    V::NAME
                );
            }
            return Err(error);
        }
        let intel = self
            .vendor
            .parse(&answer.body, indicator)
            .map_err(|e| self.api.redactor().error(e))?;
        if intel.is_some() {
            self.vendor.after_hit(&self.api, indicator);
        }
        Ok(intel)
    }
}

/// [`IntelProvider::answer_error`] without a provider: how `vendor` maps a non-2xx answer
/// through `exchange` (for tests of a vendor's mapping).
pub fn answer_error<V: IntelVendor>(
    vendor: &V,
    exchange: &Exchange,
    answer: &Answer,
    what: &str,
) -> Error {
    let error = exchange.failure(answer, what, vendor.error_reason(&answer.body));
    if error.kind() == ErrorKind::RateLimited
        && vowguard_http::retry_after(&answer.headers).is_none()
        && let Some(reset) = vendor.rate_limit_reset(answer)
    {
        return error.with_retry_after(reset);
    }
    error
}

#[async_trait]
impl<V: IntelVendor> ReputationProvider for IntelProvider<V> {
    fn name(&self) -> &'static str {
        V::KIND
    }

    fn supports(&self, kind: &IndicatorKind) -> bool {
        self.vendor.supports(kind)
    }

    fn redactor(&self) -> &Redactor {
        self.api.redactor()
    }

    async fn lookup(&self, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
        if !self.vendor.supports(&indicator.kind) {
            return Err(Error::invalid_input(format!(
                "{} does not look up a {}",
                V::NAME,
                indicator.kind
            ))
            .with_component(self.component.clone()));
        }
        self.fetch(indicator)
            .await
            .map_err(|e| e.with_component(self.component.clone()))
    }
}

/// Builds a threat-intelligence enricher for vendor `V` from resolved secrets and typed
/// values; every mistake is a `Config` error naming the config key, reported by
/// [`IntelBuilder::build`], not at the first lookup.
///
/// Vendor crates expose it as `<Vendor>::builder()`; their serde configs convert into it
/// once their secrets are resolved. `V` carries the vendor's own settings.
pub struct IntelBuilder<V: IntelVendor> {
    vendor: V,
    base_url: Option<String>,
    api_key: Option<SecretString>,
    cache: CacheOptions,
    limits: ProviderLimits,
    http: HttpOptions,
    component: Option<String>,
}

impl<V: IntelVendor> fmt::Debug for IntelBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntelBuilder")
            .field("vendor", &self.vendor)
            .field("base_url", &self.base_url.as_ref().map(|_| "[set]"))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("cache", &self.cache)
            .field("limits", &self.limits)
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl<V: IntelVendor> IntelBuilder<V> {
    /// A builder for `vendor` with every default: the vendor's base URL and limits, the
    /// default cache and HTTP options, component id [`IntelVendor::KIND`], no API key yet.
    pub fn new(vendor: V) -> Self {
        Self {
            vendor,
            base_url: None,
            api_key: None,
            cache: CacheOptions::default(),
            limits: V::DEFAULT_LIMITS,
            http: HttpOptions::default(),
            component: None,
        }
    }

    /// The resolved API key (surrounding white space is trimmed).
    pub fn api_key(mut self, key: SecretString) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The API base URL instead of the vendor's (a private instance, or a mock in tests).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Answer cache options.
    pub fn cache(mut self, cache: CacheOptions) -> Self {
        self.cache = cache;
        self
    }

    /// Per-lookup timeout, concurrency and rate, instead of [`IntelVendor::DEFAULT_LIMITS`].
    pub fn limits(mut self, limits: ProviderLimits) -> Self {
        self.limits = limits;
        self
    }

    /// HTTP client timeouts.
    pub fn http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// The component id errors carry (the config id); [`IntelVendor::KIND`] unless set.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.component = Some(id.into());
        self
    }

    /// Replaces the vendor's settings.
    pub fn vendor(mut self, vendor: V) -> Self {
        self.vendor = vendor;
        self
    }

    /// The provider alone (no cache, no limits). Errors (`Config`, naming the key): a base
    /// URL that is missing (no vendor default) or not http(s), a missing or empty API key,
    /// one with characters not allowed in a header, the vendor's own settings
    /// ([`IntelVendor::validate`]), limits of zero, a client that cannot be built.
    pub fn build_provider(self) -> Result<IntelProvider<V>, Error> {
        self.split().map(|(provider, _, _)| provider)
    }

    /// The enricher: the provider behind its cache and limits (see
    /// [`Self::build_provider`] for the errors).
    pub fn build(self) -> Result<ThreatEnricher<IntelProvider<V>>, Error> {
        let (provider, cache, limits) = self.split()?;
        Ok(ThreatEnricher::new(provider, cache, limits))
    }

    fn split(self) -> Result<(IntelProvider<V>, CacheOptions, ProviderLimits), Error> {
        let field = V::BASE_URL_FIELD;
        let base = match (self.base_url.as_deref(), V::DEFAULT_BASE_URL) {
            (Some(url), _) | (None, Some(url)) => parse_url(field, url.trim())?,
            (None, None) => return Err(Error::config(format!("`{field}`: is required"))),
        };
        self.vendor.validate()?;
        if self.limits.concurrency == 0 {
            return Err(Error::config("`limits.concurrency`: must be at least 1"));
        }
        if self.limits.timeout.is_zero() {
            return Err(Error::config("`limits.timeout`: must be more than 0s"));
        }
        let mut redactor = Redactor::new();
        for secret in self.vendor.secrets() {
            redactor = redactor.secret(&secret);
        }
        let key = match V::API_KEY {
            None => None,
            Some((header, field)) => {
                let key = self
                    .api_key
                    .ok_or_else(|| Error::config(format!("`{field}`: is required")))?;
                let trimmed = key.expose_secret().trim();
                if trimmed.is_empty() {
                    return Err(Error::config(format!("`{field}`: is empty")));
                }
                let value = vowguard_http::sensitive_header(trimmed).map_err(|_| {
                    Error::config(format!(
                        "`{field}`: contains characters not allowed in an HTTP header"
                    ))
                })?;
                redactor = redactor.secret(&key);
                Some((header, value))
            }
        };
        let mut exchange = Exchange::new()
            .with_max_body_bytes(V::MAX_RESPONSE_BYTES)
            .with_redactor(redactor);
        if let Some(after) = V::DEFAULT_RETRY_AFTER {
            exchange = exchange.with_default_retry_after(after);
        }
        let api = IntelApi {
            client: build_client(&self.http)?,
            origin: origin(&base),
            base,
            key,
            exchange,
        };
        let provider = IntelProvider {
            vendor: self.vendor,
            api,
            component: self.component.unwrap_or_else(|| V::KIND.to_owned()),
            quota: QuotaPause::with_limits(QuotaPause::DEFAULT_PAUSE, QuotaPause::MAX_PAUSE),
        };
        Ok((provider, self.cache, self.limits))
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::{Verdict, secrecy::SecretString};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const KEY: &str = "sekrit-key-42";

    /// A vendor answering `GET /v1/{value}` with `{"score": n}`.
    #[derive(Debug, Default)]
    struct Toy;

    impl IntelVendor for Toy {
        const KIND: &'static str = "toy";
        const NAME: &'static str = "Toy";
        const DEFAULT_BASE_URL: Option<&'static str> = Some("https://api.example.com");
        const API_KEY: Option<(HeaderName, &'static str)> =
            Some((HeaderName::from_static("x-apikey"), "api_key"));
        const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(1_000, 2, None);
        const MAX_RESPONSE_BYTES: usize = 1_000;

        fn supports(&self, kind: &IndicatorKind) -> bool {
            *kind == IndicatorKind::Ip
        }

        fn request(&self, api: &IntelApi, indicator: &Indicator) -> Result<RequestBuilder, Error> {
            let url = api
                .base()
                .join(&format!("v1/{}", indicator.value))
                .map_err(|e| Error::internal(e.to_string()))?;
            Ok(api.get(url))
        }

        fn error_reason(&self, body: &str) -> Option<String> {
            body.strip_prefix("error: ").map(str::to_owned)
        }

        fn parse(&self, body: &str, indicator: &Indicator) -> Result<Option<ThreatIntel>, Error> {
            let score: u8 = body
                .trim()
                .parse()
                .map_err(|_| Error::rejected(format!("unreadable Toy answer: {body}")))?;
            let _ = indicator;
            Ok(Some(ThreatIntel {
                verdict: Verdict::Malicious,
                score,
                ..ThreatIntel::default()
            }))
        }
    }

    fn builder(server: &MockServer) -> IntelBuilder<Toy> {
        IntelBuilder::new(Toy)
            .base_url(server.uri())
            .api_key(SecretString::from(format!("  {KEY}\n")))
    }

    fn ip() -> Indicator {
        Indicator::new(IndicatorKind::Ip, "203.0.113.7")
    }

    #[test]
    fn build_errors_name_the_field() {
        let cases: [(IntelBuilder<Toy>, &str); 6] = [
            (IntelBuilder::new(Toy), "`api_key`: is required"),
            (
                IntelBuilder::new(Toy).api_key(SecretString::from(" ")),
                "`api_key`: is empty",
            ),
            (
                IntelBuilder::new(Toy).api_key(SecretString::from("bad\u{7f}key")),
                "`api_key`: contains characters not allowed in an HTTP header",
            ),
            (
                IntelBuilder::new(Toy)
                    .api_key(KEY.into())
                    .base_url("ftp://x"),
                "`base_url`: scheme must be http or https, got ftp",
            ),
            (
                IntelBuilder::new(Toy)
                    .api_key(KEY.into())
                    .limits(ProviderLimits::new(1_000, 0, None)),
                "`limits.concurrency`: must be at least 1",
            ),
            (
                IntelBuilder::new(Toy)
                    .api_key(KEY.into())
                    .limits(ProviderLimits::new(0, 1, None)),
                "`limits.timeout`: must be more than 0s",
            ),
        ];
        for (builder, message) in cases {
            let e = builder.build_provider().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{message}");
            assert_eq!(e.to_string(), message);
            assert!(!e.to_string().contains("bad\u{7f}key"));
        }
    }

    #[test]
    fn defaults_and_debug_without_the_key() {
        let p = IntelBuilder::new(Toy)
            .api_key(KEY.into())
            .build_provider()
            .unwrap();
        assert_eq!(p.api().base().as_str(), "https://api.example.com/");
        assert_eq!(p.api().origin(), "https://api.example.com");
        assert_eq!(p.component(), "toy");
        let text = format!("{p:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("https://api.example.com"), "{text}");
        let builder = format!("{:?}", IntelBuilder::new(Toy).api_key(KEY.into()));
        assert!(!builder.contains(KEY), "{builder}");
    }

    #[tokio::test]
    async fn lookups_send_the_trimmed_key_and_parse_answers() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/203.0.113.7"))
            .and(header("x-apikey", KEY))
            .and(header("accept", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_string("88"))
            .expect(1)
            .mount(&server)
            .await;
        let p = builder(&server).id("intel").build_provider().unwrap();
        let intel = p.lookup(&ip()).await.unwrap().unwrap();
        assert_eq!(intel.score, 88);
        let e = p
            .lookup(&Indicator::new(IndicatorKind::Domain, "evil.example"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.component(), Some("intel"));
    }

    #[tokio::test]
    async fn a_404_is_unknown_and_errors_carry_the_reason_without_the_key() {
        let server = MockServer::start().await;
        Mock::given(path("/v1/203.0.113.7"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(path("/v1/203.0.113.8"))
            .respond_with(
                ResponseTemplate::new(401).set_body_string(format!("error: key {KEY} is wrong")),
            )
            .mount(&server)
            .await;
        let p = builder(&server).build_provider().unwrap();
        assert!(p.lookup(&ip()).await.unwrap().is_none());
        let e = p
            .lookup(&Indicator::new(IndicatorKind::Ip, "203.0.113.8"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.to_string().contains("key [redacted] is wrong"), "{e}");
        assert!(!e.to_string().contains(KEY), "{e}");
        assert!(
            e.to_string().contains("Toy ip lookup of 203.0.113.8"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_429_pauses_lookups_until_its_retry_after() {
        let server = MockServer::start().await;
        Mock::given(path("/v1/203.0.113.7"))
            .respond_with(ResponseTemplate::new(429))
            .expect(1)
            .mount(&server)
            .await;
        let p = builder(&server).build_provider().unwrap();
        let e = p.lookup(&ip()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(QuotaPause::DEFAULT_PAUSE));
        let e = p.lookup(&ip()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "no second request");
    }

    #[tokio::test]
    async fn answers_are_cut_at_the_vendor_cap() {
        let server = MockServer::start().await;
        Mock::given(path("/v1/203.0.113.7"))
            .respond_with(ResponseTemplate::new(200).set_body_string("1".repeat(5_000)))
            .mount(&server)
            .await;
        let p = builder(&server).build_provider().unwrap();
        let e = p.lookup(&ip()).await.unwrap_err();
        assert!(e.to_string().contains("unreadable Toy answer"), "{e}");
        assert!(
            e.to_string().len() < 1_200,
            "the cut body is quoted at most: {e}"
        );
    }

    #[tokio::test]
    async fn transport_failures_name_what_not_the_url() {
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = reserved.local_addr().unwrap();
        let p = IntelBuilder::new(Toy)
            .base_url(format!("http://{addr}/secret/path"))
            .api_key(KEY.into())
            .build_provider()
            .unwrap();
        let e = p.lookup(&ip()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(
            e.to_string()
                .starts_with("toy: Toy ip lookup of 203.0.113.7"),
            "{e}"
        );
        assert!(!e.to_string().contains("secret/path"), "{e}");
    }
}
