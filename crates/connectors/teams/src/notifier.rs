//! The Teams notifier: posts one Adaptive Card message per alert to a Workflows webhook.

use std::fmt;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use vowguard_core::{Alert, Error, Notifier, RateLimit, Receipt, Redactor};
use vowguard_http::reqwest::header::{CONTENT_TYPE, HeaderMap};
use vowguard_http::reqwest::{Client, StatusCode, Url};

use crate::builder::TeamsNotifierBuilder;
use crate::config::{CardLink, validate_links};
use crate::encode;

/// Delivers alerts as Adaptive Cards to a Teams Workflows webhook.
pub struct TeamsNotifier {
    url: Url,
    /// Removes the webhook URL and its parts (the `sig=` signature) from vendor text.
    redactor: Redactor,
    links: Vec<CardLink>,
    client: Client,
    /// The component id, named in every error this notifier returns.
    id: String,
}

impl fmt::Debug for TeamsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsNotifier")
            .field("webhook", &vowguard_http::origin(&self.url))
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl TeamsNotifier {
    /// A builder for a notifier; [`TeamsNotifierBuilder::webhook_url`] is required.
    ///
    /// ```no_run
    /// use secrecy::SecretString;
    /// use vowguard_teams::TeamsNotifier;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let url = std::env::var("TEAMS_WEBHOOK_URL").unwrap_or_default();
    /// let notifier = TeamsNotifier::builder()
    ///     .webhook_url(SecretString::from(url))
    ///     .build()?;
    /// # let _ = notifier;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> TeamsNotifierBuilder {
        TeamsNotifierBuilder::new()
    }

    /// The notifier a builder describes (the builder's checks are here). The URL moves in
    /// and is dropped (zeroized) once parsed.
    pub(crate) fn from_builder(builder: TeamsNotifierBuilder) -> Result<Self, Error> {
        let TeamsNotifierBuilder {
            webhook_url,
            links,
            options,
        } = builder;
        let id = options.id_or("teams").to_owned();
        let prefix = options.key_prefix("notifiers", "teams");
        let Some(webhook_url) = webhook_url else {
            return Err(Error::config(format!(
                "`{prefix}.webhook_url`: required (the Workflows webhook URL, set with `.webhook_url(..)`)"
            )));
        };
        validate_links(&links, &prefix)?;
        let url = vowguard_http::parse_url(
            &format!("{prefix}.webhook_url"),
            webhook_url.expose_secret(),
        )?;
        Ok(Self {
            url,
            redactor: Redactor::new()
                .secret(&webhook_url)
                .url(webhook_url.expose_secret()),
            links,
            client: options.client()?,
            id,
        })
    }

    /// The request body this notifier would send for `alert`.
    pub fn encode(&self, alert: &Alert) -> Vec<u8> {
        encode::encode_message(alert, &self.links)
    }

    async fn post(&self, alert: &Alert) -> Result<Receipt, Error> {
        let what = format!(
            "post Adaptive Card to Teams webhook at {}",
            vowguard_http::origin(&self.url)
        );
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(self.encode(alert))
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| vowguard_http::transport_error(e, &what))?;
        map_response(status, &headers, &text, &what)
    }
}

#[async_trait]
impl Notifier for TeamsNotifier {
    fn kind(&self) -> &'static str {
        "teams"
    }

    /// Posts the card; every error comes back without the webhook URL or its parts.
    async fn notify(&self, alert: &Alert) -> Result<Receipt, Error> {
        self.redactor
            .result(self.post(alert).await)
            .map_err(|e| e.with_component(self.id.clone()))
    }

    /// Refuses retired Office 365 connector URLs (`*.webhook.office.com`); sends nothing,
    /// since Teams has no way to test a webhook without posting a message.
    async fn healthcheck(&self) -> Result<(), Error> {
        let host = self.url.host_str().unwrap_or_default();
        if host == "webhook.office.com" || host.ends_with(".webhook.office.com") {
            return Err(Error::config(
                "the Teams webhook is an Office 365 connector URL, which Microsoft retired; \
                 create a Workflows \"When a Teams webhook request is received\" flow and use its URL",
            )
            .with_component(self.id.clone()));
        }
        Ok(())
    }

    /// Teams throttles webhooks at a few messages per second; stay well below.
    fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: 1.0,
            burst: 4,
        })
    }
}

/// Maps the webhook's answer: 200/202 (any 2xx) delivered; 429 rate limited and 5xx
/// unavailable (retryable, with `Retry-After`); 401/403 unauthorized; 400/404 and other
/// codes rejected. The notifier redacts the error it returns.
pub(crate) fn map_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
) -> Result<Receipt, Error> {
    vowguard_http::classify_status(status, headers, what, body)?;
    Ok(Receipt { delivery_id: None })
}
