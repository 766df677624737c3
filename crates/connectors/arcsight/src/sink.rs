//! The ArcSight sink: CEF lines as RFC 5424 syslog messages over a
//! [`vowguard_syslog::SyslogSink`].

use async_trait::async_trait;
use vowguard_core::{BatchLimits, EncodedEvent, Error, Event, EventOutcome, Sink};
use vowguard_syslog::{HeaderFields, LineEncoder, SyslogConfig, SyslogSink, resolve_hostname};

use crate::builder::ArcSightSinkBuilder;
use crate::config::ArcSightConfig;
use crate::encode::CefEncoder;

/// The connector kind, as written in `type = "arcsight"`.
pub const KIND: &str = "arcsight";

/// RFC 5424 MSGID of every message.
pub const MSGID: &str = "CEF";

impl LineEncoder for CefEncoder {
    const MSGID: &'static str = MSGID;

    fn encode_line(&self, event: &Event) -> String {
        self.encode(event)
    }
}

/// Sends every event to ArcSight as one CEF line in an RFC 5424 syslog message.
#[derive(Debug)]
pub struct ArcSightSink {
    inner: SyslogSink<CefEncoder>,
    /// The component id, named in every error this sink returns.
    id: Option<String>,
}

impl ArcSightSink {
    /// A builder for a sink sending over `syslog` (address, transport, framing, TLS,
    /// timeouts); every other setting starts at its default.
    ///
    /// ```no_run
    /// use vowguard_syslog::SyslogConfig;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let sink = vowguard_arcsight::ArcSightSink::builder(SyslogConfig::new("siem.example.org:514")).build()?;
    /// # let _ = sink;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(syslog: SyslogConfig) -> ArcSightSinkBuilder {
        ArcSightConfig::new(syslog).into_builder()
    }

    /// The sink `config` describes; validates the transport settings and loads TLS material,
    /// but does not connect yet (the first send or [`Sink::healthcheck`] does).
    pub(crate) fn from_config(config: ArcSightConfig, id: Option<String>) -> Result<Self, Error> {
        let hostname = resolve_hostname(config.hostname);
        let mut encoder = CefEncoder::new(
            config.device_vendor,
            config.device_product,
            config.device_version,
        );
        if hostname != "-" {
            encoder = encoder.with_dvchost(hostname.clone());
        }
        let header = HeaderFields::new(config.facility, config.app_name, hostname);
        let inner = SyslogSink::new(KIND, encoder, config.syslog, header)?;
        Ok(Self { inner, id })
    }

    /// The pure CEF encoder this sink uses.
    pub fn encoder(&self) -> &CefEncoder {
        self.inner.encoder()
    }

    /// The full RFC 5424 message (unframed) for one event.
    pub fn message(&self, event: &Event) -> Vec<u8> {
        self.inner.message(event)
    }
}

#[async_trait]
impl Sink for ArcSightSink {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn batch_limits(&self) -> BatchLimits {
        self.inner.batch_limits()
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.inner.encode(event)
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let outcomes = self.inner.send(batch).await;
        match &self.id {
            Some(id) => outcomes
                .into_iter()
                .map(|o| match o {
                    EventOutcome::Delivered => EventOutcome::Delivered,
                    EventOutcome::Retry(e) => EventOutcome::Retry(e.with_component(id.clone())),
                    EventOutcome::Rejected(e) => {
                        EventOutcome::Rejected(e.with_component(id.clone()))
                    }
                })
                .collect(),
            None => outcomes,
        }
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        self.inner.healthcheck().await.map_err(|e| match &self.id {
            Some(id) => e.with_component(id.clone()),
            None => e,
        })
    }
}
