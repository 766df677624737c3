//! Configuration of the `soar_webhook` ticket system (`[tickets.<id>]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;
use vowguard_http::reqwest::header::HeaderName;

/// Which SOAR the webhook belongs to: decides the body, the auth headers and where the
/// case reference is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Flavor {
    /// A Shuffle webhook trigger (`/api/v1/hooks/webhook_<uuid>`): the raw incident JSON;
    /// auth by fixed `headers`; reference = `execution_id`.
    Shuffle,
    /// A Tines webhook action (secret in the URL: use `url_secret`, or in a header):
    /// the raw incident JSON; "No Rules matched" is an error.
    Tines,
    /// StackStorm `POST /api/v1/webhooks/st2` with `{"trigger", "payload"}` and
    /// `St2-Api-Key`.
    Stackstorm,
    /// Cortex XSOAR 6/8 incident API: `url` is the API base (XSOAR 8:
    /// `https://api-<fqdn>/xsoar/public/v1`), `Authorization` (+ `x-xdr-auth-id`).
    Xsoar,
    /// Any webhook: the raw incident JSON and the configured `headers`.
    Generic,
}

impl Flavor {
    /// The name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shuffle => "shuffle",
            Self::Tines => "tines",
            Self::Stackstorm => "stackstorm",
            Self::Xsoar => "xsoar",
            Self::Generic => "generic",
        }
    }

    /// Where the case reference is in the answer to an open, by default (a JSON pointer).
    pub fn default_reference_pointer(self) -> Option<&'static str> {
        match self {
            Self::Shuffle => Some("/execution_id"),
            Self::Xsoar => Some("/id"),
            Self::Tines | Self::Stackstorm | Self::Generic => None,
        }
    }
}

/// The kind of XSOAR API key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum XsoarKeyType {
    /// `Authorization: <key>` (the default).
    #[default]
    Standard,
    /// `Authorization: sha256(key + nonce + timestamp)` with `x-xdr-nonce` (64 random
    /// characters) and `x-xdr-timestamp` (milliseconds).
    Advanced,
}

/// Headers the connector sets itself; `headers` may not name them.
pub const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "idempotency-key",
    "transfer-encoding",
    "connection",
    "x-xdr-nonce",
    "x-xdr-timestamp",
    "x-xdr-auth-id",
    "st2-api-key",
];

/// `[tickets.<id>]` with `type = "soar_webhook"`.
///
/// ```toml
/// [tickets.tines]
/// type = "soar_webhook"
/// flavor = "tines"
/// url_secret = { env = "TINES_WEBHOOK_URL" }
///
/// [tickets.st2]
/// type = "soar_webhook"
/// flavor = "stackstorm"
/// url = "https://st2.example.org/api/v1/webhooks/st2"
/// api_key = { env = "ST2_API_KEY" }
/// trigger = "vowguard.incident"
///
/// [tickets.xsoar]
/// type = "soar_webhook"
/// flavor = "xsoar"
/// url = "https://api-acme.xdr.eu.paloaltonetworks.com/xsoar/public/v1"
/// api_key = { env = "XSOAR_API_KEY" }
/// api_key_id = "7"
/// api_key_type = "advanced"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SoarConfig {
    /// Which SOAR.
    pub flavor: Flavor,
    /// The webhook URL (XSOAR: the API base). Use `url_secret` instead when the URL
    /// carries a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The webhook URL as a secret (Tines, Shuffle webhook ids). Exactly one of `url`,
    /// `url_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<SecretRef>,
    /// Fixed headers sent with every request (Shuffle webhook authentication headers, a
    /// Tines `Authorization`), values as secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, SecretRef>,
    /// StackStorm: the `St2-Api-Key`; XSOAR: the API key. Not used by other flavors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRef>,
    /// XSOAR: the key's id (`x-xdr-auth-id`); required with `api_key_type = "advanced"`
    /// and for XSOAR 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// XSOAR: `standard` (default) or `advanced`.
    #[serde(default)]
    pub api_key_type: XsoarKeyType,
    /// StackStorm: the trigger reference (`pack.trigger`); required for that flavor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// XSOAR: the incident `type`. Default `Unclassified`.
    #[serde(default = "default_incident_type")]
    pub incident_type: String,
    /// XSOAR: a playbook to run instead of the incident type's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_id: Option<String>,
    /// XSOAR: start the investigation (and the type's playbook) at once. Default true.
    #[serde(default = "default_true")]
    pub create_investigation: bool,
    /// XSOAR: the `closeReason` on resolve. Default `Resolved`.
    #[serde(default = "default_close_reason")]
    pub close_reason: String,
    /// A JSON pointer to the case reference in the answer to an open (default:
    /// `/execution_id` for Shuffle, `/id` for XSOAR; others use the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_pointer: Option<String>,
    /// The `source` field of every body. Default `vowguard`.
    #[serde(default = "default_source")]
    pub source: String,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_incident_type() -> String {
    "Unclassified".to_owned()
}

fn default_close_reason() -> String {
    "Resolved".to_owned()
}

fn default_source() -> String {
    "vowguard".to_owned()
}

fn default_true() -> bool {
    true
}

impl SoarConfig {
    /// A configuration for `flavor` posting to `url`, every other value default.
    pub fn new(flavor: Flavor, url: impl Into<String>) -> Self {
        Self {
            flavor,
            url: Some(url.into()),
            url_secret: None,
            headers: BTreeMap::new(),
            api_key: None,
            api_key_id: None,
            api_key_type: XsoarKeyType::default(),
            trigger: None,
            incident_type: default_incident_type(),
            playbook_id: None,
            create_investigation: true,
            close_reason: default_close_reason(),
            reference_pointer: None,
            source: default_source(),
            http: HttpOptions::default(),
        }
    }

    /// The reference pointer in effect.
    pub fn reference_pointer(&self) -> Option<&str> {
        self.reference_pointer
            .as_deref()
            .or(self.flavor.default_reference_pointer())
    }

    /// Checks what serde cannot (before secrets are resolved); errors name the key under
    /// `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        let key = |field: &str| format!("`{prefix}.{field}`");
        match (&self.url, &self.url_secret) {
            (Some(url), None) => {
                check_url(&format!("{prefix}.url"), url)?;
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) => {
                return Err(Error::config(format!(
                    "{} and {}: set only one",
                    key("url"),
                    key("url_secret")
                )));
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "{}: missing (or `url_secret` when the URL carries a secret)",
                    key("url")
                )));
            }
        }
        for name in self.headers.keys() {
            let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::config(format!(
                    "{}: not a valid header name",
                    key(&format!("headers.{name}"))
                ))
            })?;
            if RESERVED_HEADERS.contains(&parsed.as_str()) {
                return Err(Error::config(format!(
                    "{}: set by the connector itself",
                    key(&format!("headers.{name}"))
                )));
            }
            if self.flavor == Flavor::Xsoar && parsed.as_str() == "authorization" {
                return Err(Error::config(format!(
                    "{}: XSOAR's Authorization comes from `api_key`",
                    key(&format!("headers.{name}"))
                )));
            }
        }
        let uses_key = matches!(self.flavor, Flavor::Stackstorm | Flavor::Xsoar);
        match (&self.api_key, uses_key) {
            (None, true) => {
                return Err(Error::config(format!(
                    "{}: required for flavor `{}`",
                    key("api_key"),
                    self.flavor.as_str()
                )));
            }
            (Some(_), false) => {
                return Err(Error::config(format!(
                    "{}: not used by flavor `{}` (put credentials in `headers` or `url_secret`)",
                    key("api_key"),
                    self.flavor.as_str()
                )));
            }
            _ => {}
        }
        if self.flavor == Flavor::Stackstorm {
            let trigger = self.trigger.as_deref().unwrap_or_default();
            if trigger.is_empty()
                || !trigger
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(Error::config(format!(
                    "{}: required for flavor `stackstorm`: a trigger reference like `pack.trigger`",
                    key("trigger")
                )));
            }
        } else if self.trigger.is_some() {
            return Err(Error::config(format!(
                "{}: only used by flavor `stackstorm`",
                key("trigger")
            )));
        }
        if self.flavor == Flavor::Xsoar {
            if let Some(id) = &self.api_key_id
                && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(Error::config(format!(
                    "{}: letters, digits and `-` only",
                    key("api_key_id")
                )));
            }
            if self.api_key_type == XsoarKeyType::Advanced && self.api_key_id.is_none() {
                return Err(Error::config(format!(
                    "{}: required with `api_key_type = \"advanced\"`",
                    key("api_key_id")
                )));
            }
        } else if self.api_key_id.is_some() || self.api_key_type != XsoarKeyType::Standard {
            return Err(Error::config(format!(
                "{}: only used by flavor `xsoar`",
                key(if self.api_key_id.is_some() {
                    "api_key_id"
                } else {
                    "api_key_type"
                })
            )));
        }
        if let Some(pointer) = &self.reference_pointer
            && !pointer.starts_with('/')
        {
            return Err(Error::config(format!(
                "{}: a JSON pointer starting with `/`",
                key("reference_pointer")
            )));
        }
        for (field, value) in [
            ("source", &self.source),
            ("incident_type", &self.incident_type),
            ("close_reason", &self.close_reason),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(Error::config(format!(
                    "{}: must be non-empty text on one line",
                    key(field)
                )));
            }
        }
        Ok(())
    }
}

/// Parses a webhook or API URL; the error names `key` but never quotes the URL.
pub fn check_url(key: &str, url: &str) -> Result<Url, Error> {
    let parsed = vowguard_http::parse_url(key, url)?;
    if parsed.cannot_be_a_base() || parsed.fragment().is_some() {
        return Err(Error::config(format!(
            "`{key}`: must be an absolute http(s) URL without a fragment"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SoarConfig, String> {
        let c: SoarConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate("tickets.s").map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn flavors_parse() {
        let c = parse("flavor = \"tines\"\nurl_secret = { env = \"T\" }").unwrap();
        assert_eq!(c.reference_pointer(), None);
        let c = parse("flavor = \"shuffle\"\nurl = \"https://s/api/v1/hooks/webhook_1\"\nheaders = { X-Shuffle = { env = \"H\" } }").unwrap();
        assert_eq!(c.reference_pointer(), Some("/execution_id"));
        parse("flavor = \"stackstorm\"\nurl = \"https://st2/api/v1/webhooks/st2\"\napi_key = { env = \"K\" }\ntrigger = \"vg.incident\"").unwrap();
        let c = parse("flavor = \"xsoar\"\nurl = \"https://x\"\napi_key = { env = \"K\" }\napi_key_id = \"7\"\napi_key_type = \"advanced\"").unwrap();
        assert_eq!(c.reference_pointer(), Some("/id"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, needle) in [
            ("flavor = \"tines\"", "`tickets.s.url`"),
            (
                "flavor = \"tines\"\nurl = \"https://t\"\nurl_secret = { env = \"T\" }",
                "`tickets.s.url_secret`",
            ),
            (
                "flavor = \"stackstorm\"\nurl = \"https://t\"\napi_key = { env = \"K\" }",
                "`tickets.s.trigger`",
            ),
            (
                "flavor = \"stackstorm\"\nurl = \"https://t\"\ntrigger = \"a.b\"",
                "`tickets.s.api_key`",
            ),
            (
                "flavor = \"generic\"\nurl = \"https://t\"\napi_key = { env = \"K\" }",
                "`tickets.s.api_key`",
            ),
            (
                "flavor = \"xsoar\"\nurl = \"https://t\"\napi_key = { env = \"K\" }\napi_key_type = \"advanced\"",
                "`tickets.s.api_key_id`",
            ),
            (
                "flavor = \"generic\"\nurl = \"https://t\"\nheaders = { Idempotency-Key = { env = \"K\" } }",
                "`tickets.s.headers.Idempotency-Key`",
            ),
            (
                "flavor = \"generic\"\nurl = \"https://t\"\nheaders = { \"bad name\" = { env = \"K\" } }",
                "`tickets.s.headers.bad name`",
            ),
            ("flavor = \"generic\"\nurl = \"ftp://t\"", "`tickets.s.url`"),
            (
                "flavor = \"generic\"\nurl = \"https://t\"\nreference_pointer = \"id\"",
                "`tickets.s.reference_pointer`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = parse("flavor = \"splunk\"\nurl = \"https://t\"").unwrap_err();
        assert!(e.contains("splunk"), "{e}");
    }
}
