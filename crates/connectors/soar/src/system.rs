//! [`SoarTickets`]: opens, updates and resolves cases through a SOAR webhook or XSOAR's
//! incident API.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use vowguard_core::{Error, Redactor, TicketDraft, TicketRef, TicketSystem, TicketUpdate};
use vowguard_http::reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use vowguard_http::reqwest::{Client, Url};
use vowguard_http::{Answer, Exchange};

use crate::config::{Flavor, SoarConfig, XsoarKeyType, check_url};
use crate::encode::{self, Subject, XsoarTemplate};
use vowguard_core::{TicketIndex, TicketIndexEntry as IndexEntry};

/// Largest response body read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Length of an XSOAR advanced-key nonce.
pub const XSOAR_NONCE_LEN: usize = 64;
/// The header carrying the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The same key under a name of our own, for targets (Shuffle, Tines, XSOAR) that ignore
/// `Idempotency-Key`: a workflow can deduplicate on it (or on the body's `dedup_key`).
pub const DEDUP_KEY_HEADER: &str = "X-Vowguard-Dedup-Key";

/// The secrets of a [`SoarConfig`], resolved.
#[derive(Default)]
pub struct SoarSecrets {
    /// The value of `url_secret`, when the URL is a secret.
    pub url: Option<SecretString>,
    /// The values of `headers`, by header name.
    pub headers: BTreeMap<String, SecretString>,
    /// The value of `api_key`.
    pub api_key: Option<SecretString>,
}

impl fmt::Debug for SoarSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoarSecrets")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A SOAR (Shuffle, Tines, StackStorm, XSOAR or any webhook) as a vowguard ticket system.
pub struct SoarTickets {
    id: String,
    flavor: Flavor,
    url: Url,
    fixed_headers: Vec<(HeaderName, HeaderValue)>,
    api_key: Option<SecretString>,
    api_key_id: Option<HeaderValue>,
    key_type: XsoarKeyType,
    trigger: Option<String>,
    xsoar: XsoarTemplate,
    close_reason: String,
    reference_pointer: Option<String>,
    source: String,
    client: Client,
    /// Send, read (capped at [`MAX_RESPONSE_BYTES`]), classify; holds the redactor of every
    /// secret (URL, headers, API key).
    http: Exchange,
    random: SystemRandom,
    index: TicketIndex,
}

impl fmt::Debug for SoarTickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoarTickets")
            .field("id", &self.id)
            .field("flavor", &self.flavor)
            .field("endpoint", &vowguard_http::origin(&self.url))
            .field(
                "headers",
                &self
                    .fixed_headers
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SoarTickets {
    /// The ticket system `[tickets.<id>]` from `config`, its resolved secrets and the
    /// fingerprint index. Config errors name keys under `tickets.<id>` and never quote a
    /// secret.
    pub fn new(
        id: &str,
        config: &SoarConfig,
        secrets: SoarSecrets,
        index: TicketIndex,
    ) -> Result<Self, Error> {
        let prefix = format!("tickets.{id}");
        config.validate(&prefix)?;
        let mut redactor = Redactor::new();
        let url = match (&config.url, &secrets.url) {
            (Some(url), _) => check_url(&format!("{prefix}.url"), url)?,
            (None, Some(secret)) => {
                redactor = redactor.url(secret.expose_secret());
                check_url(&format!("{prefix}.url_secret"), secret.expose_secret())?
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "`{prefix}.url_secret`: not resolved"
                )));
            }
        };
        let mut fixed_headers = Vec::new();
        for name in config.headers.keys() {
            let key = format!("{prefix}.headers.{name}");
            let value = secrets
                .headers
                .get(name)
                .ok_or_else(|| Error::config(format!("`{key}`: not resolved")))?;
            redactor = redactor.secret(value);
            // `Bearer <token>`: a vendor may echo the token alone.
            for part in value.expose_secret().split_whitespace() {
                if part.len() >= 8 {
                    redactor = redactor.text(part);
                }
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::config(format!("`{key}`: not a valid header name")))?;
            let header_value = vowguard_http::sensitive_header(value.expose_secret())
                .map_err(|_| Error::config(format!("`{key}`: not a valid header value")))?;
            fixed_headers.push((header_name, header_value));
        }
        if config.api_key.is_some() {
            let key = secrets
                .api_key
                .as_ref()
                .ok_or_else(|| Error::config(format!("`{prefix}.api_key`: not resolved")))?;
            vowguard_http::sensitive_header(key.expose_secret()).map_err(|_| {
                Error::config(format!("`{prefix}.api_key`: not a valid header value"))
            })?;
            redactor = redactor.secret(key);
        }
        let api_key_id = config
            .api_key_id
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| Error::config(format!("`{prefix}.api_key_id`: not a header value")))?;
        Ok(Self {
            id: id.to_owned(),
            flavor: config.flavor,
            url,
            fixed_headers,
            api_key: secrets.api_key.filter(|_| config.api_key.is_some()),
            api_key_id,
            key_type: config.api_key_type,
            trigger: config.trigger.clone(),
            xsoar: XsoarTemplate {
                incident_type: config.incident_type.clone(),
                playbook_id: config.playbook_id.clone(),
                create_investigation: config.create_investigation,
                source: config.source.clone(),
            },
            close_reason: config.close_reason.clone(),
            reference_pointer: config.reference_pointer().map(str::to_owned),
            source: config.source.clone(),
            client: vowguard_http::build_client(&config.http)?,
            http: Exchange::new()
                .with_max_body_bytes(MAX_RESPONSE_BYTES)
                .with_redactor(redactor),
            random: SystemRandom::new(),
            index,
        })
    }

    /// The flavor.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The fingerprint index.
    pub fn index(&self) -> &TicketIndex {
        &self.index
    }

    fn what(&self, action: &str) -> String {
        format!(
            "SOAR ({}) `tickets.{}` at {}: {action}",
            self.flavor.as_str(),
            self.id,
            vowguard_http::origin(&self.url)
        )
    }

    /// XSOAR: the API base plus `segments` (each one percent-encoded path segment);
    /// other flavors: the webhook URL itself.
    fn target(&self, segments: &[&str]) -> Url {
        if self.flavor != Flavor::Xsoar {
            return self.url.clone();
        }
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn xsoar_nonce(&self) -> Result<String, Error> {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut bytes = [0u8; XSOAR_NONCE_LEN];
        self.random
            .fill(&mut bytes)
            .map_err(|_| Error::internal("the system random generator failed"))?;
        Ok(bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect())
    }

    fn auth_headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
        let Some(key) = &self.api_key else {
            return Ok(Vec::new());
        };
        let mut headers = Vec::new();
        match self.flavor {
            Flavor::Stackstorm => headers.push((
                HeaderName::from_static("st2-api-key"),
                vowguard_http::sensitive_header(key.expose_secret())?,
            )),
            Flavor::Xsoar => {
                if let Some(id) = &self.api_key_id {
                    headers.push((HeaderName::from_static("x-xdr-auth-id"), id.clone()));
                }
                match self.key_type {
                    XsoarKeyType::Standard => headers.push((
                        AUTHORIZATION,
                        vowguard_http::sensitive_header(key.expose_secret())?,
                    )),
                    XsoarKeyType::Advanced => {
                        let nonce = self.xsoar_nonce()?;
                        let timestamp = Utc::now().timestamp_millis();
                        let signature = encode::xsoar_advanced_signature(
                            key.expose_secret(),
                            &nonce,
                            timestamp,
                        );
                        headers.push((AUTHORIZATION, vowguard_http::sensitive_header(&signature)?));
                        headers.push((
                            HeaderName::from_static("x-xdr-nonce"),
                            HeaderValue::from_str(&nonce).map_err(|_| {
                                Error::internal("the XSOAR nonce is not a header value")
                            })?,
                        ));
                        headers.push((
                            HeaderName::from_static("x-xdr-timestamp"),
                            HeaderValue::from(timestamp),
                        ));
                    }
                }
            }
            Flavor::Shuffle | Flavor::Tines | Flavor::Generic => {}
        }
        Ok(headers)
    }

    async fn post(
        &self,
        url: Url,
        body: &Value,
        idempotency_seed: &str,
        what: &str,
    ) -> Result<Answer, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::encode(format!("{what}: cannot encode the body: {e}")))?;
        let idempotency = HeaderValue::from_str(&encode::idempotency_key(idempotency_seed))
            .map_err(|_| Error::internal("an idempotency key is not a header value"))?;
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, idempotency.clone())
            .header(DEDUP_KEY_HEADER, idempotency);
        for (name, value) in self
            .fixed_headers
            .iter()
            .cloned()
            .chain(self.auth_headers()?)
        {
            request = request.header(name, value);
        }
        let answer = self
            .http
            .send_ok(request.body(bytes), what, vendor_reason)
            .await?;
        if self.flavor == Flavor::Tines && answer.body.contains("No Rules matched") {
            return Err(Error::rejected(format!(
                "{what}: Tines dropped the request: no webhook rule matched it"
            )));
        }
        Ok(answer)
    }

    async fn open_case(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        if draft.fingerprint.trim().is_empty() {
            return Err(Error::invalid_input(
                "the ticket draft has an empty `fingerprint` (the dedup key)",
            ));
        }
        let _one_open_per_fingerprint = self.index.lock(&draft.fingerprint).await;
        if let Some(known) = self.index.get(&draft.fingerprint) {
            return Ok(known);
        }
        let what = self.what("open case");
        let with_key = |mut doc: Value| {
            doc["dedup_key"] = Value::String(encode::idempotency_key(&draft.fingerprint));
            doc
        };
        let body = match self.flavor {
            Flavor::Xsoar => encode::xsoar_incident(draft, &self.xsoar),
            Flavor::Stackstorm => encode::stackstorm_body(
                self.trigger.as_deref().unwrap_or_default(),
                with_key(encode::incident_document(draft, &self.source)),
            ),
            Flavor::Shuffle | Flavor::Tines | Flavor::Generic => {
                with_key(encode::incident_document(draft, &self.source))
            }
        };
        let answer = self
            .post(self.target(&["incident"]), &body, &draft.fingerprint, &what)
            .await?;
        let key = self
            .reference_pointer
            .as_deref()
            .and_then(|pointer| reference_at(&answer.body, pointer))
            .unwrap_or_else(|| draft.fingerprint.clone());
        self.index.remember(IndexEntry {
            fingerprint: draft.fingerprint.clone(),
            incident_id: draft.incident_id.clone(),
            key: key.clone(),
            url: None,
            opened_at: Utc::now(),
            resolved_at: None,
        })?;
        Ok(TicketRef {
            system: self.id.clone(),
            key,
            url: None,
        })
    }

    async fn follow_up(
        &self,
        ticket: &TicketRef,
        update: Option<&TicketUpdate>,
        note: &str,
    ) -> Result<(), Error> {
        let entry = self.index.entry_by_key(&ticket.key);
        if update.is_none() && entry.as_ref().is_some_and(|e| e.resolved_at.is_some()) {
            // Resolved before: a repeated resolve sends nothing.
            return Ok(());
        }
        let subject = Subject {
            reference: &ticket.key,
            fingerprint: entry.as_ref().map(|e| e.fingerprint.as_str()),
            incident_id: entry.as_ref().map(|e| e.incident_id.as_str()),
        };
        let seed_base = subject.fingerprint.unwrap_or(&ticket.key);
        let (what, url, body, seed) = match (self.flavor, update) {
            (Flavor::Xsoar, Some(update)) => (
                self.what("add a war-room entry"),
                self.target(&["entry"]),
                encode::xsoar_entry(&ticket.key, &encode::entry_text(update)),
                encode::update_seed(seed_base, update),
            ),
            (Flavor::Xsoar, None) => (
                self.what("close the incident"),
                self.target(&["incident", "batchClose"]),
                encode::xsoar_close(&ticket.key, &self.close_reason, note),
                format!("{seed_base}:resolve"),
            ),
            (_, Some(update)) => (
                self.what("send an update"),
                self.target(&[]),
                encode::update_document(&self.source, subject, update),
                encode::update_seed(seed_base, update),
            ),
            (_, None) => (
                self.what("send the resolution"),
                self.target(&[]),
                encode::resolve_document(&self.source, subject, note),
                format!("{seed_base}:resolve"),
            ),
        };
        let mut body = body;
        if self.flavor != Flavor::Xsoar {
            body["dedup_key"] = Value::String(encode::idempotency_key(&seed));
        }
        let body = match (self.flavor, &self.trigger) {
            (Flavor::Stackstorm, Some(trigger)) => encode::stackstorm_body(trigger, body),
            _ => body,
        };
        self.post(url, &body, &seed, &what).await?;
        if update.is_none() {
            self.index.mark_resolved(&ticket.key, Utc::now())?;
        }
        Ok(())
    }
}

#[async_trait]
impl TicketSystem for SoarTickets {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// Sends the case once per fingerprint: the connector's map answers repeats, the
    /// `Idempotency-Key` (the fingerprint) covers a retry whose first answer was lost.
    async fn open(&self, draft: &TicketDraft) -> Result<TicketRef, Error> {
        self.http.redactor().result(self.open_case(draft).await)
    }

    /// XSOAR: a war-room entry; webhooks: a call with `action = "update"`.
    async fn update(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), Error> {
        self.http
            .redactor()
            .result(self.follow_up(ticket, Some(update), "").await)
    }

    /// XSOAR: `incident/batchClose`; webhooks: a call with `action = "resolve"`.
    async fn resolve(&self, ticket: &TicketRef, note: &str) -> Result<(), Error> {
        self.http
            .redactor()
            .result(self.follow_up(ticket, None, note).await)
    }

    /// Sends nothing (any call to a webhook starts a workflow); the configuration and
    /// credentials were checked when the connector was built.
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// The string (or number) at `pointer` in a JSON body.
pub fn reference_at(body: &str, pointer: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    match value.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A vendor's error text: `message`, `error`, `faultstring` (StackStorm) or `detail`.
pub fn vendor_reason(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    ["message", "error", "faultstring", "detail"]
        .iter()
        .find_map(|k| value.get(*k)?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_reasons() {
        assert_eq!(
            reference_at(r#"{"success":true,"execution_id":"e-1"}"#, "/execution_id").as_deref(),
            Some("e-1")
        );
        assert_eq!(reference_at(r#"{"id":42}"#, "/id").as_deref(), Some("42"));
        assert_eq!(reference_at("Ok", "/id"), None);
        assert_eq!(
            vendor_reason(r#"{"faultstring":"Trigger not found"}"#).as_deref(),
            Some("Trigger not found")
        );
    }
}
