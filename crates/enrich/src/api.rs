//! [`KeyedApi`]: the HTTP side shared by reputation APIs that authenticate with an API key
//! in a request header and answer `GET`s with JSON.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, Redactor};
use vowguard_http::reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use vowguard_http::reqwest::{self, StatusCode, Url};
use vowguard_http::{
    HttpOptions, build_client, origin, parse_url, sensitive_header, transport_error,
};

/// The answer to one [`KeyedApi::get`]: status, headers and the body as text.
#[derive(Debug)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers (for `Retry-After` and vendor rate-limit headers).
    pub headers: HeaderMap,
    /// The body, decoded as text.
    pub body: String,
}

/// The default cap on one vendor answer: every keyed lookup is bounded in memory whatever
/// the vendor sends (a threat-intel answer about one indicator is kilobytes; VirusTotal's
/// largest file reports stay well under this).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A reqwest client for one API, with its base URL and its key as a sensitive header.
///
/// Built from the provider's config: the `base_url` override (else the vendor's default),
/// the header the vendor expects the key in, the resolved key (trimmed) and the `http`
/// options. The client is [`vowguard_http::build_client`]'s (rustls, timeouts, no
/// redirects); the key is marked sensitive and never appears in `Debug` output, which shows
/// only the API's origin and the header's name.
pub struct KeyedApi {
    client: reqwest::Client,
    base: Url,
    origin: String,
    header: HeaderName,
    key: HeaderValue,
    redactor: Redactor,
    /// Most bytes of a response body read.
    max_response_bytes: usize,
}

impl fmt::Debug for KeyedApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedApi")
            .field("origin", &self.origin)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl KeyedApi {
    /// A client for `base_url` (or `default_base_url` when `None`) sending `key` in
    /// `header`. Errors (all `Config`): `base_url` is not an http(s) URL (the message names
    /// the `base_url` key), the key holds characters not allowed in a header, or the
    /// client cannot be built.
    pub fn new(
        base_url: Option<&str>,
        default_base_url: &str,
        header: HeaderName,
        key: &SecretString,
        http: &HttpOptions,
    ) -> Result<Self, Error> {
        let base = parse_url("base_url", base_url.unwrap_or(default_base_url))?;
        let redactor = Redactor::new().secret(key);
        let key = sensitive_header(key.expose_secret().trim())?;
        Ok(Self {
            redactor,
            client: build_client(http)?,
            origin: origin(&base),
            base,
            header,
            key,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Reads at most `max` bytes of each response body and drops the rest
    /// ([`vowguard_http::read_capped`]), so a vendor cannot make an answer cost unbounded
    /// memory; a cut JSON body then fails to parse and the lookup is an error.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// The API's base URL, to build request URLs from.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Removes the API key from vendor text; the provider's
    /// [`ReputationProvider::redactor`](crate::ReputationProvider::redactor).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// `scheme://host[:port]` of the API: the only part of it errors may show.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// One `GET url` with the key header and `Accept: application/json`. Any status is an
    /// answer; the body is cut at [`Self::with_max_response_bytes`] ([`DEFAULT_MAX_RESPONSE_BYTES`]
    /// unless set); a failure to send or to read the body is an error from
    /// [`vowguard_http::transport_error`] naming `what` (timeouts `Timeout`, the rest
    /// `Unavailable`), never the URL.
    pub async fn get(&self, url: Url, what: &str) -> Result<ApiResponse, Error> {
        let response = self
            .client
            .get(url)
            .header(self.header.clone(), self.key.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_error(e, what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = vowguard_http::read_capped(response, self.max_response_bytes, what).await?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use vowguard_core::ErrorKind;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const KEY: &str = "sekrit-key-42";

    fn api(base: Option<&str>) -> Result<KeyedApi, Error> {
        KeyedApi::new(
            base,
            "https://api.example.com",
            HeaderName::from_static("x-apikey"),
            &SecretString::from(format!("  {KEY}\n")),
            &HttpOptions::default(),
        )
    }

    #[test]
    fn base_url_default_override_and_errors() {
        let a = api(None).unwrap();
        assert_eq!(a.base().as_str(), "https://api.example.com/");
        assert_eq!(a.origin(), "https://api.example.com");
        let a = api(Some("http://127.0.0.1:8080/prefix")).unwrap();
        assert_eq!(a.base().as_str(), "http://127.0.0.1:8080/prefix");
        assert_eq!(a.origin(), "http://127.0.0.1:8080");
        for bad in ["not a url", "ftp://example.com"] {
            let e = api(Some(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("base_url"), "{e}");
        }
        let e = KeyedApi::new(
            None,
            "https://api.example.com",
            HeaderName::from_static("x-apikey"),
            &SecretString::from("bad\u{7f}key"),
            &HttpOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("bad\u{7f}key"), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let text = format!("{:?}", api(None).unwrap());
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("https://api.example.com"), "{text}");
        assert!(text.contains("x-apikey"), "{text}");
    }

    #[tokio::test]
    async fn get_sends_the_trimmed_key_and_accept() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/thing"))
            .and(header("x-apikey", KEY))
            .and(header("accept", "application/json"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "7")
                    .set_body_string(r#"{"detail":"slow down"}"#),
            )
            .expect(1)
            .mount(&server)
            .await;
        let a = api(Some(&server.uri())).unwrap();
        let url = a.base().join("v1/thing").unwrap();
        let answer = a.get(url, "lookup").await.unwrap();
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers.get("retry-after").unwrap(), "7");
        assert_eq!(answer.body, r#"{"detail":"slow down"}"#);
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1);
    }

    #[tokio::test]
    async fn bodies_are_cut_at_the_configured_size() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(10_000)))
            .mount(&server)
            .await;
        let a = api(Some(&server.uri())).unwrap();
        let url = a.base().join("big").unwrap();
        assert_eq!(
            a.get(url.clone(), "lookup").await.unwrap().body.len(),
            10_000
        );
        let a = a.with_max_response_bytes(1_000);
        assert_eq!(a.get(url, "lookup").await.unwrap().body.len(), 1_000);
    }

    /// Every keyed provider is bounded, not only those that set a cap.
    #[tokio::test]
    async fn bodies_are_cut_at_the_default_cap_when_none_is_set() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string("x".repeat(DEFAULT_MAX_RESPONSE_BYTES + 4096)),
            )
            .mount(&server)
            .await;
        let a = api(Some(&server.uri())).unwrap();
        let url = a.base().join("huge").unwrap();
        assert_eq!(
            a.get(url, "lookup").await.unwrap().body.len(),
            DEFAULT_MAX_RESPONSE_BYTES
        );
    }

    #[tokio::test]
    async fn transport_failures_name_what_not_the_url() {
        // A port where connections are refused: bound and kept, never listening (a released
        // port could be taken by another test meanwhile).
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = reserved.local_addr().unwrap();
        let a = api(Some(&format!("http://{addr}"))).unwrap();
        let url = a.base().join("secret/path?token=abc").unwrap();
        let e = a.get(url, "lookup of x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().starts_with("lookup of x"), "{e}");
        assert!(!e.to_string().contains("token=abc"), "{e}");
    }
}
