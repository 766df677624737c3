//! The QRadar sink: LEEF lines as RFC 5424 syslog messages over a
//! [`vowguard_syslog::SyslogSink`].

use async_trait::async_trait;
use vowguard_core::{BatchLimits, EncodedEvent, Error, Event, EventOutcome, Sink};
use vowguard_syslog::{HeaderFields, LineEncoder, SyslogConfig, SyslogSink, resolve_hostname};

use crate::builder::QRadarSinkBuilder;
use crate::config::QRadarConfig;
use crate::encode::LeefEncoder;

/// The connector kind, as written in `type = "qradar"`.
pub const KIND: &str = "qradar";

/// RFC 5424 MSGID of every message.
pub const MSGID: &str = "LEEF";

impl LineEncoder for LeefEncoder {
    const MSGID: &'static str = MSGID;

    fn encode_line(&self, event: &Event) -> String {
        self.encode(event)
    }
}

/// Sends every event to QRadar as one LEEF line in an RFC 5424 syslog message.
#[derive(Debug)]
pub struct QRadarSink {
    inner: SyslogSink<LeefEncoder>,
    /// The component id, named in every error this sink returns.
    id: Option<String>,
}

impl QRadarSink {
    /// A builder for a sink sending over `syslog` (address, transport, framing, TLS,
    /// timeouts); every other setting starts at its default.
    ///
    /// ```no_run
    /// use vowguard_syslog::SyslogConfig;
    ///
    /// # fn main() -> Result<(), vowguard_core::Error> {
    /// let sink = vowguard_qradar::QRadarSink::builder(SyslogConfig::new("siem.example.org:514")).build()?;
    /// # let _ = sink;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(syslog: SyslogConfig) -> QRadarSinkBuilder {
        QRadarConfig::new(syslog).into_builder()
    }

    /// The sink `config` describes; validates the transport settings and loads TLS material,
    /// but does not connect yet (the first send or [`Sink::healthcheck`] does).
    pub(crate) fn from_config(config: QRadarConfig, id: Option<String>) -> Result<Self, Error> {
        let encoder = config.encoder()?;
        let header = HeaderFields::new(
            config.facility,
            config.app_name,
            resolve_hostname(config.hostname),
        );
        let inner = SyslogSink::new(KIND, encoder, config.syslog, header)?;
        Ok(Self { inner, id })
    }

    /// The pure LEEF encoder this sink uses.
    pub fn encoder(&self) -> &LeefEncoder {
        self.inner.encoder()
    }

    /// The full RFC 5424 message (unframed) for one event.
    pub fn message(&self, event: &Event) -> Vec<u8> {
        self.inner.message(event)
    }
}

#[async_trait]
impl Sink for QRadarSink {
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
