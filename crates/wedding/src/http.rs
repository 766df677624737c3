//! [`HttpProvider`]: weddings from the platform's API, `GET {base_url}/weddings/{id}`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::Error;
use vowguard_http::reqwest::{StatusCode, Url, header};
use vowguard_http::{HttpOptions, build_client, classify_status, origin, parse_url, snippet};

use crate::context::WeddingRecord;
use crate::provider::WeddingContextProvider;

/// Longest wedding id looked up over HTTP; longer ids are unknown without a request.
pub const MAX_WEDDING_ID_LEN: usize = 256;

/// Most answers kept in the cache; beyond it expired entries, then the oldest, are dropped.
pub const CACHE_MAX_ENTRIES: usize = 10_000;

/// How an [`HttpProvider`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpProviderOptions {
    /// The API base URL; records are at `{base_url}/weddings/{id}`.
    pub base_url: String,
    /// How long an answer (a record, or "unknown" for 404) is reused. 0 disables caching.
    pub cache_ttl: Duration,
    /// HTTP client timeouts.
    pub http: HttpOptions,
}

impl HttpProviderOptions {
    /// Options for the API at `base_url`, answers cached for 5 minutes, default HTTP
    /// options.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            cache_ttl: Duration::from_secs(300),
            http: HttpOptions::default(),
        }
    }

    /// These options with answers cached for `cache_ttl` (0 disables caching).
    #[must_use]
    pub fn with_cache_ttl(mut self, cache_ttl: Duration) -> Self {
        self.cache_ttl = cache_ttl;
        self
    }

    /// These options with `http` as the HTTP client options.
    #[must_use]
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }
}

/// Looks weddings up with `GET {base_url}/weddings/{id}` (the id percent-encoded as one
/// path segment), `Accept: application/json` and, when a token is configured,
/// `Authorization: Bearer <token>`.
///
/// 200 with a [`WeddingRecord`] JSON body is the wedding (a missing `wedding_id` is taken
/// from the request; a different one is an error); 404 is "unknown" (`Ok(None)`); every
/// other status maps through [`vowguard_http::classify_status`] (401/403 unauthorized,
/// 429/5xx retryable, other 4xx rejected). Answers are cached for `cache_ttl`, errors are
/// not. Ids that cannot name a path segment (empty, `.`, `..`, longer than
/// [`MAX_WEDDING_ID_LEN`]) are unknown without a request.
pub struct HttpProvider {
    client: vowguard_http::reqwest::Client,
    base: Url,
    token: Option<SecretString>,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<WeddingRecord>)>>,
}

impl fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProvider")
            .field("base_url", &origin(&self.base))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    /// A provider for `options.base_url`, sending `token` as a bearer token when given.
    pub fn new(options: &HttpProviderOptions, token: Option<SecretString>) -> Result<Self, Error> {
        let mut base = parse_url("base_url", &options.base_url)?;
        if base.cannot_be_a_base() {
            return Err(Error::config("`base_url`: not a base URL"));
        }
        // So that path_segments_mut appends below the configured path.
        if base.path().ends_with('/') && base.path() != "/" {
            let trimmed = base.path().trim_end_matches('/').to_owned();
            base.set_path(&trimmed);
        }
        if let Some(t) = &token {
            vowguard_http::sensitive_header(&format!("Bearer {}", t.expose_secret())).map_err(
                |_| Error::config("`token`: contains characters not allowed in an HTTP header"),
            )?;
        }
        Ok(Self {
            client: build_client(&options.http)?,
            base,
            token,
            cache_ttl: options.cache_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The URL a wedding id is fetched from, or `None` for ids that cannot be one path
    /// segment.
    pub fn url_for(&self, wedding_id: &str) -> Option<Url> {
        if wedding_id.is_empty()
            || wedding_id == "."
            || wedding_id == ".."
            || wedding_id.len() > MAX_WEDDING_ID_LEN
        {
            return None;
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push("weddings")
            .push(wedding_id);
        Some(url)
    }

    fn cached(&self, wedding_id: &str) -> Option<Option<WeddingRecord>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, record) = cache.get(wedding_id)?;
        (at.elapsed() < self.cache_ttl).then(|| record.clone())
    }

    fn remember(&self, wedding_id: &str, record: Option<WeddingRecord>) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX_ENTRIES && !cache.contains_key(wedding_id) {
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            while cache.len() >= CACHE_MAX_ENTRIES {
                let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(wedding_id.to_owned(), (Instant::now(), record));
    }

    /// Entries in the answer cache (for tests and metrics).
    pub fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn fetch(&self, wedding_id: &str, url: Url) -> Result<Option<WeddingRecord>, Error> {
        let what = format!("wedding lookup at {}", origin(&self.base));
        let mut request = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            let value =
                vowguard_http::sensitive_header(&format!("Bearer {}", token.expose_secret()))?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        classify_status(status, &headers, &what, &body)?;
        let mut record: WeddingRecord = serde_json::from_str(&body).map_err(|e| {
            Error::rejected(format!(
                "{what}: invalid wedding record: {e}: {}",
                snippet(&body)
            ))
        })?;
        if record.wedding_id.is_empty() {
            record.wedding_id = wedding_id.to_owned();
        } else if record.wedding_id != wedding_id {
            return Err(Error::rejected(format!(
                "{what}: asked for wedding {:?}, got {:?}",
                snippet(wedding_id),
                snippet(&record.wedding_id)
            )));
        }
        Ok(Some(record))
    }
}

#[async_trait]
impl WeddingContextProvider for HttpProvider {
    async fn wedding(&self, wedding_id: &str) -> Result<Option<WeddingRecord>, Error> {
        let Some(url) = self.url_for(wedding_id) else {
            return Ok(None);
        };
        if let Some(hit) = self.cached(wedding_id) {
            return Ok(hit);
        }
        let record = self.fetch(wedding_id, url).await?;
        self.remember(wedding_id, record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(base: &str) -> HttpProvider {
        HttpProvider::new(
            &HttpProviderOptions {
                base_url: base.to_owned(),
                cache_ttl: Duration::from_secs(60),
                http: HttpOptions::default(),
            },
            Some(SecretString::from("s3cr3t-token")),
        )
        .unwrap()
    }

    #[test]
    fn urls_encode_the_id_as_one_segment() {
        let p = provider("https://api.example.org/v1/");
        assert_eq!(
            p.url_for("w-1").unwrap().as_str(),
            "https://api.example.org/v1/weddings/w-1"
        );
        assert_eq!(
            p.url_for("../admin?x=1#f").unwrap().as_str(),
            "https://api.example.org/v1/weddings/..%2Fadmin%3Fx=1%23f"
        );
        assert_eq!(p.url_for(".."), None);
        assert_eq!(p.url_for("."), None);
        assert_eq!(p.url_for(""), None);
        assert_eq!(p.url_for(&"x".repeat(MAX_WEDDING_ID_LEN + 1)), None);
        let p = provider("https://api.example.org");
        assert_eq!(
            p.url_for("w 1").unwrap().as_str(),
            "https://api.example.org/weddings/w%201"
        );
    }

    #[test]
    fn debug_hides_token_and_path() {
        let p = provider("https://api.example.org/private-path/");
        let text = format!("{p:?}");
        assert!(!text.contains("s3cr3t-token"), "{text}");
        assert!(!text.contains("private-path"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn rejects_bad_base_urls() {
        for bad in ["ftp://x", "not a url"] {
            let e = HttpProvider::new(
                &HttpProviderOptions {
                    base_url: bad.to_owned(),
                    cache_ttl: Duration::ZERO,
                    http: HttpOptions::default(),
                },
                None,
            )
            .unwrap_err();
            assert_eq!(e.kind(), vowguard_core::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn cache_is_bounded() {
        let p = provider("https://api.example.org");
        for i in 0..CACHE_MAX_ENTRIES + 50 {
            p.remember(&format!("w-{i}"), None);
        }
        assert_eq!(p.cache_len(), CACHE_MAX_ENTRIES);
        // The newest is kept.
        assert!(p.cached(&format!("w-{}", CACHE_MAX_ENTRIES + 49)).is_some());
    }
}
