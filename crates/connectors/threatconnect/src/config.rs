//! The `[enrichers.<id>]` table of a `type = "threatconnect"` enricher.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use vowguard_core::{RateLimit, SecretRef};
use vowguard_enrich::{CacheOptions, LimitsConfig, ProviderLimits};
use vowguard_http::HttpOptions;

use crate::client::{ThreatConnect, ThreatConnectBuilder};

/// Where the API lives unless `base_url` says otherwise (a dedicated instance is
/// `https://<instance>/api`).
pub const DEFAULT_BASE_URL: &str = "https://app.threatconnect.com/api";

/// Default limits: 3000 ms per lookup, 4 concurrent lookups, 10 lookups a second with
/// bursts of 20.
///
/// ThreatConnect publishes no rate limit (instances set their own), so this is a moderate
/// choice; a 429 pauses lookups (see the crate docs).
pub const DEFAULT_LIMITS: ProviderLimits = ProviderLimits::new(
    3_000,
    4,
    Some(RateLimit {
        per_second: 10.0,
        burst: 20,
    }),
);

/// Configuration of the ThreatConnect enricher: `api_token`, or `access_id` with
/// `secret_key` (HMAC-signed requests).
///
/// ```toml
/// [enrichers.tc]
/// type = "threatconnect"
/// access_id = "12345678901234567890"
/// secret_key = { env = "TC_SECRET_KEY" }
/// # api_token = { env = "TC_API_TOKEN" }    # instead of access_id + secret_key
/// # base_url = "https://app.threatconnect.com/api"
/// # owner = "Example Organization"         # look indicators up in this owner
/// # cache = { ttl = "1h", negative_ttl = "10m", max_entries = 100000 }
/// # limits = { timeout = "3s", concurrency = 4, rate = { per_second = 10.0, burst = 20 } }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ThreatConnectConfig {
    /// API base URL including `/api`, default [`DEFAULT_BASE_URL`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// An API token, sent as `Authorization: TC-Token <token>`.
    #[serde(default)]
    pub api_token: Option<SecretRef>,
    /// The API user's Access ID (not secret: it is sent in every request).
    #[serde(default)]
    pub access_id: Option<String>,
    /// The API user's Secret Key, which signs requests and is never sent.
    #[serde(default)]
    pub secret_key: Option<SecretRef>,
    /// The owner (organization, community or source) to look indicators up in; the API
    /// user's organization when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Answer cache (known answers 1 h, unknown answers 10 min by default).
    #[serde(default)]
    pub cache: CacheOptions,
    /// Overrides of [`DEFAULT_LIMITS`], key by key.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

/// Which authentication a config asks for (the secrets still unresolved).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum AuthConfig<'a> {
    /// `api_token`.
    Token(&'a SecretRef),
    /// `access_id` and `secret_key`.
    Hmac {
        /// The Access ID.
        access_id: &'a str,
        /// Where the Secret Key is.
        secret_key: &'a SecretRef,
    },
}

/// A config mistake about authentication: the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// The key at fault, e.g. `secret_key`.
    pub field: &'static str,
    /// What is wrong.
    pub message: &'static str,
}

impl ThreatConnectConfig {
    /// A config authenticating with an API token, every other key at its default.
    pub fn with_token(api_token: SecretRef) -> Self {
        Self {
            api_token: Some(api_token),
            ..Self::empty()
        }
    }

    /// A config signing requests with `access_id` and the Secret Key at `secret_key`.
    pub fn with_hmac(access_id: impl Into<String>, secret_key: SecretRef) -> Self {
        Self {
            access_id: Some(access_id.into()),
            secret_key: Some(secret_key),
            ..Self::empty()
        }
    }

    fn empty() -> Self {
        Self {
            base_url: None,
            api_token: None,
            access_id: None,
            secret_key: None,
            owner: None,
            cache: CacheOptions::default(),
            limits: LimitsConfig::default(),
            http: HttpOptions::default(),
        }
    }

    /// The authentication asked for: exactly one of `api_token` or `access_id` +
    /// `secret_key`; otherwise the key at fault.
    pub fn auth(&self) -> Result<AuthConfig<'_>, AuthError> {
        let access_id = self.access_id.as_deref().map(str::trim);
        match (&self.api_token, access_id, &self.secret_key) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(AuthError {
                field: "api_token",
                message: "set either `api_token` or `access_id` with `secret_key`, not both",
            }),
            (Some(token), None, None) => Ok(AuthConfig::Token(token)),
            (None, Some(""), _) => Err(AuthError {
                field: "access_id",
                message: "must not be empty",
            }),
            (None, Some(access_id), Some(secret_key)) => Ok(AuthConfig::Hmac {
                access_id,
                secret_key,
            }),
            (None, Some(_), None) => Err(AuthError {
                field: "secret_key",
                message: "required with `access_id`",
            }),
            (None, None, Some(_)) => Err(AuthError {
                field: "access_id",
                message: "required with `secret_key`",
            }),
            (None, None, None) => Err(AuthError {
                field: "api_token",
                message: "missing: set `api_token`, or `access_id` with `secret_key`",
            }),
        }
    }

    /// The limits in force: [`DEFAULT_LIMITS`] with the configured overrides.
    pub fn limits(&self) -> ProviderLimits {
        self.limits.resolve(DEFAULT_LIMITS)
    }

    /// The builder this table describes, with the resolved `credentials` (see
    /// [`Self::auth`] for which the table asks for).
    pub fn into_builder(self, credentials: Credentials) -> ThreatConnectBuilder {
        let limits = self.limits();
        let mut vendor = ThreatConnect::new(credentials);
        if let Some(owner) = self.owner {
            vendor = vendor.owner(owner);
        }
        let builder = vendor
            .into_builder()
            .cache(self.cache)
            .limits(limits)
            .http(self.http);
        match self.base_url {
            Some(url) => builder.base_url(url),
            None => builder,
        }
    }
}

/// Resolved credentials. `Debug` shows the kind and the Access ID, never a secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// An API token.
    Token(SecretString),
    /// Access ID and Secret Key.
    Hmac {
        /// The Access ID.
        access_id: String,
        /// The Secret Key.
        secret_key: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Credentials::Token(..)"),
            Self::Hmac { access_id, .. } => f
                .debug_struct("Credentials::Hmac")
                .field("access_id", access_id)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ThreatConnectConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_and_auth_choices() {
        let c = parse("api_token = { env = \"T\" }");
        assert_eq!(
            c,
            ThreatConnectConfig::with_token(SecretRef::Env("T".into()))
        );
        assert_eq!(c.limits(), DEFAULT_LIMITS);
        assert_eq!(c.auth(), Ok(AuthConfig::Token(&SecretRef::Env("T".into()))));
        let c = parse("access_id = \" 123 \"\nsecret_key = { env = \"S\" }");
        assert_eq!(
            c.auth(),
            Ok(AuthConfig::Hmac {
                access_id: "123",
                secret_key: &SecretRef::Env("S".into())
            })
        );
    }

    #[test]
    fn auth_mistakes_name_the_key() {
        for (text, field) in [
            ("", "api_token"),
            (
                "api_token = { env = \"T\" }\naccess_id = \"1\"",
                "api_token",
            ),
            (
                "api_token = { env = \"T\" }\nsecret_key = { env = \"S\" }",
                "api_token",
            ),
            ("access_id = \"1\"", "secret_key"),
            ("secret_key = { env = \"S\" }", "access_id"),
            (
                "access_id = \" \"\nsecret_key = { env = \"S\" }",
                "access_id",
            ),
        ] {
            assert_eq!(parse(text).auth().unwrap_err().field, field, "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<ThreatConnectConfig>("api_token = { env = \"T\" }\nsecret = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret"), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!(
            "{:?} {:?}",
            Credentials::Token(SecretString::from("tok-123")),
            Credentials::Hmac {
                access_id: "id-1".into(),
                secret_key: SecretString::from("key-456")
            }
        );
        assert!(
            !text.contains("tok-123") && !text.contains("key-456"),
            "{text}"
        );
        assert!(text.contains("id-1"), "{text}");
    }
}
