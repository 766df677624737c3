//! The QRadar sink: LEEF lines as RFC 5424 syslog messages over a
//! [`vowguard_syslog::SyslogSink`].

use async_trait::async_trait;
use vowguard_core::{BatchLimits, EncodedEvent, Error, Event, EventOutcome, Sink};
use vowguard_syslog::{HeaderFields, LineEncoder, SyslogSink, resolve_hostname};

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
pub struct QRadarSink(SyslogSink<LeefEncoder>);

impl QRadarSink {
    /// Builds the sink; validates the transport settings and loads TLS material, but does
    /// not connect yet (the first send or [`Sink::healthcheck`] does).
    pub fn new(config: QRadarConfig) -> Result<Self, Error> {
        let encoder = config.encoder()?;
        let header = HeaderFields {
            facility: config.facility,
            app_name: config.app_name,
            hostname: resolve_hostname(config.hostname),
        };
        SyslogSink::new(KIND, encoder, config.syslog, header).map(Self)
    }

    /// The pure LEEF encoder this sink uses.
    pub fn encoder(&self) -> &LeefEncoder {
        self.0.encoder()
    }

    /// The full RFC 5424 message (unframed) for one event.
    pub fn message(&self, event: &Event) -> Vec<u8> {
        self.0.message(event)
    }
}

#[async_trait]
impl Sink for QRadarSink {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn batch_limits(&self) -> BatchLimits {
        self.0.batch_limits()
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        self.0.encode(event)
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        self.0.send(batch).await
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        self.0.healthcheck().await
    }
}
