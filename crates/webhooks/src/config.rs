//! `[webhooks.<id>]`: one table per sender, turned into a [`Source`] with its secrets
//! resolved.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use vowguard_core::secrecy::ExposeSecret;
use vowguard_core::{Error, RateLimit, SecretLookup, SecretRef};

use crate::map::{Mapping, StatusMap, TicketVendor, Vendor};
use crate::verify::{Algorithm, Encoding, GenericHmac, Key, Scheme, ServiceNowAuth};

/// The default timestamp tolerance, in seconds (the vendors' libraries use 5 minutes).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// The default body limit per source, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// The default replay window: a little over the longest sender retry schedule (Standard
/// Webhooks retries for about 3 days, PagerDuty for 48 hours).
pub const DEFAULT_REPLAY_WINDOW_SECS: u64 = 4 * 24 * 3600;
/// The default time a sender has to deliver its body, in milliseconds (slow senders get 408).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;

/// The `type` of a webhook source: the signature scheme and the payload mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookKind {
    /// Standard Webhooks (HMAC `v1`, Ed25519 `v1a`).
    StandardWebhooks,
    /// GitHub (`X-Hub-Signature-256`).
    Github,
    /// Stripe (`Stripe-Signature`).
    Stripe,
    /// Slack signing secret.
    Slack,
    /// PagerDuty v3 (`X-PagerDuty-Signature`).
    Pagerduty,
    /// Twilio (`X-Twilio-Signature`).
    Twilio,
    /// A configurable HMAC for suppliers' and venues' systems.
    GenericHmac,
    /// Jira issue webhooks (`X-Hub-Signature`); status changes sync incidents.
    Jira,
    /// ServiceNow records from a business rule (HMAC header or bearer token); state
    /// changes sync incidents.
    Servicenow,
}

/// How a `servicenow` source authenticates its sender (`auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceNowAuthKind {
    /// An HMAC header (`header`, and optionally `algorithm`, `encoding`, `prefix`,
    /// `signed`, `timestamp_header`, `id_header`, as for `generic_hmac`).
    Hmac,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

/// `[webhooks.<id>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The scheme and payload mapping.
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    /// One secret.
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// Several secrets (rotation: any of them verifies).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Timestamp tolerance, where the scheme signs a timestamp (`tolerance = "5m"`;
    /// whole seconds count).
    #[serde(default = "default_tolerance", with = "vowguard_core::duration")]
    pub tolerance: Duration,
    /// Largest accepted body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long the sender has to deliver the body (`body_timeout = "10s"`).
    #[serde(default = "default_body_timeout", with = "vowguard_core::duration")]
    pub body_timeout: Duration,
    /// How long delivery ids are remembered (`replay_window = "1d"`; whole seconds count).
    #[serde(default = "default_replay_window", with = "vowguard_core::duration")]
    pub replay_window: Duration,
    /// Requests per second (and burst) this source may send; more get 429.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Twilio: the exact public URL Twilio calls (without the query).
    #[serde(default)]
    pub url: Option<String>,
    /// generic_hmac: the signature header.
    #[serde(default)]
    pub header: Option<String>,
    /// generic_hmac: `sha256` (default), `sha512` or `sha1`.
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// generic_hmac: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// generic_hmac: a prefix before the signature, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// generic_hmac: what is signed, e.g. `{timestamp}.{body}` (default `{body}`).
    #[serde(default)]
    pub signed: Option<String>,
    /// generic_hmac: the header with the signed unix timestamp.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// generic_hmac: the header with the delivery id.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Field mapping (`field = "/json/pointer"` or a literal); see [`Mapping`].
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, String>>,
    /// servicenow: `hmac` or `bearer`.
    #[serde(default)]
    pub auth: Option<ServiceNowAuthKind>,
    /// jira / servicenow: status (or Jira `category:<key>`) to `acknowledged`, `resolved`
    /// or `ignore`, on top of the defaults (see [`StatusMap::defaults`]).
    #[serde(default)]
    pub statuses: Option<BTreeMap<String, String>>,
    /// jira / servicenow: the `[tickets.<id>]` whose tickets this source updates (default:
    /// every ticket system of the same type).
    #[serde(default)]
    pub ticket_system: Option<String>,
    /// Where the replay guard is kept (`<dir>/<id>.replay`; default `<data_dir>/webhooks`,
    /// relative paths from the config file's directory).
    #[serde(default)]
    pub replay_dir: Option<std::path::PathBuf>,
}

fn default_tolerance() -> Duration {
    Duration::from_secs(DEFAULT_TOLERANCE_SECS)
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_body_timeout() -> Duration {
    Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS)
}
fn default_replay_window() -> Duration {
    Duration::from_secs(DEFAULT_REPLAY_WINDOW_SECS)
}

/// A configured, ready source: scheme, keys, limits and mapping.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Source {
    /// The id in `/v1/webhooks/{id}`.
    pub id: String,
    /// How requests are verified.
    pub scheme: Scheme,
    /// How payloads become events.
    pub vendor: Vendor,
    /// The keys (several during rotation).
    pub keys: Vec<Key>,
    /// Timestamp tolerance in seconds.
    pub tolerance_secs: i64,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// How long the sender has to deliver the body, in milliseconds.
    pub body_timeout_ms: u64,
    /// How long delivery ids are remembered.
    pub replay_window_secs: u64,
    /// Requests per second (and burst).
    pub rate_limit: Option<RateLimit>,
    /// The field mapping, if any.
    pub mapping: Option<Mapping>,
    /// jira / servicenow: what ticket statuses do to the incident.
    pub statuses: Option<StatusMap>,
    /// jira / servicenow: the `[tickets.<id>]` named by `ticket_system`, if any.
    pub ticket_system: Option<String>,
    /// The replay guard's directory when `replay_dir` is set (resolved against the config
    /// file's directory); `None`: `<data_dir>/webhooks`.
    pub replay_dir: Option<std::path::PathBuf>,
}

/// Whether `id` may name a webhook source (it becomes a URL segment and a file name).
pub fn valid_source_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Turns a secret into a key for `kind`. The error never quotes the secret.
pub fn parse_key(kind: WebhookKind, secret: &str) -> Result<Key, String> {
    if kind != WebhookKind::StandardWebhooks {
        return Ok(Key::Hmac(secret.as_bytes().to_vec()));
    }
    let decode = |b64: &str| {
        B64.decode(b64)
            .map_err(|_| "the part after the prefix is not valid base64".to_owned())
    };
    if let Some(rest) = secret.strip_prefix("whpk_") {
        let bytes = decode(rest)?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "a whpk_ key is 32 bytes".to_owned())?;
        let public = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "not an Ed25519 public key".to_owned())?;
        return Ok(Key::Ed25519 {
            public,
            signing: None,
        });
    }
    if let Some(rest) = secret.strip_prefix("whsk_") {
        let bytes = decode(rest)?;
        if bytes.len() != 32 && bytes.len() != 64 {
            return Err("a whsk_ key is 32 (or 64) bytes".into());
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[..32]);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        return Ok(Key::Ed25519 {
            public: signing.verifying_key(),
            signing: Some(Box::new(signing)),
        });
    }
    let bytes = decode(secret.strip_prefix("whsec_").unwrap_or(secret))?;
    if !(24..=64).contains(&bytes.len()) {
        return Err("a whsec_ secret is 24 to 64 bytes".into());
    }
    Ok(Key::Hmac(bytes))
}

impl WebhookConfig {
    /// Builds source `id`, resolving its secrets. Every error names its key
    /// (`webhooks.<id>.<field>`) and none quotes a secret.
    pub fn build(
        &self,
        id: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<Source, Error> {
        let key = |field: &str| format!("webhooks.{id}.{field}");
        let bad = |field: &str, why: &str| Error::config(format!("`{}`: {why}", key(field)));
        if !valid_source_id(id) {
            return Err(Error::config(format!(
                "`webhooks.{id}`: a source id is 1-64 letters, digits, `_` or `-`"
            )));
        }
        let mut refs: Vec<(String, &SecretRef)> = Vec::new();
        if let Some(secret) = &self.secret {
            refs.push((key("secret"), secret));
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            refs.push((format!("{}[{i}]", key("secrets")), secret));
        }
        if refs.is_empty() {
            return Err(bad(
                "secret",
                "missing: give `secret` or `secrets` (a list for rotation)",
            ));
        }
        let mut keys = Vec::with_capacity(refs.len());
        for (name, secret) in refs {
            let value = secret.resolve(&name, lookup, base_dir)?;
            let parsed = parse_key(self.kind, value.expose_secret())
                .map_err(|why| Error::config(format!("`{name}`: {why}")))?;
            keys.push(parsed);
        }
        if self.max_body_bytes == 0 {
            return Err(bad("max_body_bytes", "must be greater than zero"));
        }
        if let Some(limit) = self.rate_limit
            && (limit.per_second.is_nan() || limit.per_second <= 0.0 || limit.burst == 0)
        {
            return Err(bad(
                "rate_limit",
                "per_second and burst must be greater than zero",
            ));
        }
        let generic_only = [
            ("header", self.header.is_some()),
            ("algorithm", self.algorithm.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
            ("signed", self.signed.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("id_header", self.id_header.is_some()),
        ];
        let hmac_servicenow =
            self.kind == WebhookKind::Servicenow && self.auth == Some(ServiceNowAuthKind::Hmac);
        if self.kind != WebhookKind::GenericHmac
            && !hmac_servicenow
            && let Some((field, _)) = generic_only.iter().find(|(_, set)| *set)
        {
            return Err(bad(
                field,
                "only `type = \"generic_hmac\"` (or `servicenow` with `auth = \"hmac\"`) takes this key",
            ));
        }
        let ticket_vendor = match self.kind {
            WebhookKind::Jira => Some(TicketVendor::Jira),
            WebhookKind::Servicenow => Some(TicketVendor::ServiceNow),
            _ => None,
        };
        if ticket_vendor.is_none() {
            for (field, set) in [
                ("statuses", self.statuses.is_some()),
                ("ticket_system", self.ticket_system.is_some()),
            ] {
                if set {
                    return Err(bad(
                        field,
                        "only `type = \"jira\"` or `\"servicenow\"` takes this key",
                    ));
                }
            }
        }
        if self.kind != WebhookKind::Servicenow && self.auth.is_some() {
            return Err(bad("auth", "only `type = \"servicenow\"` takes this key"));
        }
        if self
            .replay_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(bad("replay_dir", "an empty path"));
        }
        let statuses = match ticket_vendor {
            Some(vendor) => Some(
                StatusMap::with_overrides(
                    vendor,
                    self.statuses.as_ref().unwrap_or(&BTreeMap::new()),
                )
                .map_err(|why| bad("statuses", &why))?,
            ),
            None => None,
        };
        if self.kind != WebhookKind::Twilio && self.url.is_some() {
            return Err(bad("url", "only `type = \"twilio\"` takes this key"));
        }
        let (scheme, vendor) = match self.kind {
            WebhookKind::StandardWebhooks => (Scheme::StandardWebhooks, Vendor::StandardWebhooks),
            WebhookKind::Github => (Scheme::GitHub, Vendor::GitHub),
            WebhookKind::Stripe => (Scheme::Stripe, Vendor::Stripe),
            WebhookKind::Slack => (Scheme::Slack, Vendor::Slack),
            WebhookKind::Pagerduty => (Scheme::PagerDuty, Vendor::PagerDuty),
            WebhookKind::Twilio => {
                let url = self.url.clone().ok_or_else(|| {
                    bad(
                        "url",
                        "missing: the exact public URL Twilio calls (it is signed)",
                    )
                })?;
                if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains('?')
                {
                    return Err(bad("url", "an http(s) URL without a query"));
                }
                (Scheme::Twilio { url }, Vendor::Twilio)
            }
            WebhookKind::Jira => (Scheme::Jira, Vendor::Jira),
            WebhookKind::Servicenow => match self.auth {
                None => {
                    return Err(bad(
                        "auth",
                        "missing: `hmac` (a signature header, set like generic_hmac's) or `bearer` (Authorization: Bearer <secret>)",
                    ));
                }
                Some(ServiceNowAuthKind::Bearer) => (
                    Scheme::ServiceNow(ServiceNowAuth::Bearer),
                    Vendor::ServiceNow,
                ),
                Some(ServiceNowAuthKind::Hmac) => (
                    Scheme::ServiceNow(ServiceNowAuth::Hmac(self.generic(&bad)?)),
                    Vendor::ServiceNow,
                ),
            },
            WebhookKind::GenericHmac => (Scheme::GenericHmac(self.generic(&bad)?), Vendor::Generic),
        };
        let mapping = match &self.mapping {
            None => None,
            Some(fields) => Some(
                Mapping::new(fields.clone())
                    .map_err(|why| Error::config(format!("`{}`: {why}", key("mapping"))))?,
            ),
        };
        Ok(Source {
            id: id.to_owned(),
            scheme,
            vendor,
            keys,
            tolerance_secs: i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX / 2),
            max_body_bytes: self.max_body_bytes,
            body_timeout_ms: u64::try_from(self.body_timeout.as_millis()).unwrap_or(u64::MAX),
            replay_window_secs: self.replay_window.as_secs().max(self.tolerance.as_secs()),
            rate_limit: self.rate_limit,
            mapping,
            statuses,
            ticket_system: self.ticket_system.clone(),
            replay_dir: self.replay_dir.as_ref().map(|d| base_dir.join(d)),
        })
    }

    /// The HMAC scheme of `generic_hmac` (and of `servicenow` with `auth = "hmac"`).
    fn generic(&self, bad: &dyn Fn(&str, &str) -> Error) -> Result<GenericHmac, Error> {
        let header = self
            .header
            .clone()
            .ok_or_else(|| bad("header", "missing: the header carrying the signature"))?;
        let signed = GenericHmac::parse_template(self.signed.as_deref().unwrap_or("{body}"))
            .map_err(|why| bad("signed", &why))?;
        let generic = GenericHmac {
            header: header.to_ascii_lowercase(),
            algorithm: self.algorithm.unwrap_or(Algorithm::Sha256),
            encoding: self.encoding.unwrap_or(Encoding::Hex),
            prefix: self.prefix.clone().unwrap_or_default(),
            timestamp_header: self
                .timestamp_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
            id_header: self.id_header.as_ref().map(|h| h.to_ascii_lowercase()),
            signed,
        };
        if generic.signed.contains(&crate::verify::Part::Timestamp)
            && generic.timestamp_header.is_none()
        {
            return Err(bad(
                "timestamp_header",
                "`signed` uses {timestamp}: name its header",
            ));
        }
        if generic.signed.contains(&crate::verify::Part::Id) && generic.id_header.is_none() {
            return Err(bad("id_header", "`signed` uses {id}: name its header"));
        }
        Ok(generic)
    }
}
