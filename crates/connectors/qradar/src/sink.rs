//! The QRadar sink: LEEF lines as RFC 5424 syslog messages over [`SyslogClient`].

use std::fmt;

use async_trait::async_trait;
use vowguard_core::traits::clone_error;
use vowguard_core::{BatchLimits, EncodedEvent, Error, Event, EventOutcome, Sink};
use vowguard_syslog::{Facility, Rfc5424Header, SyslogClient, SyslogSeverity, format_rfc5424};

use crate::config::QRadarConfig;
use crate::encode::LeefEncoder;

/// The connector kind, as written in `type = "qradar"`.
pub const KIND: &str = "qradar";

/// RFC 5424 MSGID of every message.
pub const MSGID: &str = "LEEF";

/// Sends every event to QRadar as one LEEF line in an RFC 5424 syslog message.
pub struct QRadarSink {
    encoder: LeefEncoder,
    client: SyslogClient,
    facility: Facility,
    app_name: String,
    hostname: String,
    address: String,
}

impl fmt::Debug for QRadarSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QRadarSink")
            .field("address", &self.address)
            .field("facility", &self.facility)
            .field("app_name", &self.app_name)
            .field("hostname", &self.hostname)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl QRadarSink {
    /// Builds the sink; validates the transport settings and loads TLS material, but does
    /// not connect yet (the first send or [`Sink::healthcheck`] does).
    pub fn new(config: QRadarConfig) -> Result<Self, Error> {
        let encoder = config.encoder()?;
        let hostname = config
            .hostname
            .clone()
            .or_else(machine_hostname)
            .unwrap_or_else(|| "-".to_owned());
        let address = config.syslog.address.clone();
        let client = SyslogClient::new(config.syslog)?;
        Ok(Self {
            encoder,
            client,
            facility: config.facility,
            app_name: config.app_name,
            hostname,
            address,
        })
    }

    /// The pure LEEF encoder this sink uses.
    pub fn encoder(&self) -> &LeefEncoder {
        &self.encoder
    }

    /// The full RFC 5424 message (unframed) for one event.
    pub fn message(&self, event: &Event) -> Vec<u8> {
        let header = Rfc5424Header {
            facility: self.facility,
            severity: SyslogSeverity::from_event(event.severity),
            timestamp: event.timestamp,
            hostname: &self.hostname,
            app_name: &self.app_name,
            procid: "-",
            msgid: MSGID,
        };
        format_rfc5424(&header, &self.encoder.encode(event))
    }
}

/// This machine's host name, if it has one.
fn machine_hostname() -> Option<String> {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    (!name.is_empty()).then_some(name)
}

#[async_trait]
impl Sink for QRadarSink {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_events: 200,
            max_bytes: 256_000,
            max_wait_ms: 500,
        }
    }

    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(self.message(event))
    }

    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        let messages: Vec<&[u8]> = batch.iter().map(|e| e.bytes.as_slice()).collect();
        let results = self.client.send(&messages).await;
        outcomes(batch.len(), results)
    }

    async fn healthcheck(&self) -> Result<(), Error> {
        self.client.healthcheck().await
    }
}

/// Exactly `n` outcomes from the client's per-message results; a missing result (a client
/// bug) counts as retryable, so the event is sent again rather than lost.
fn outcomes(n: usize, results: Vec<Result<(), Error>>) -> Vec<EventOutcome> {
    let mut out: Vec<EventOutcome> = results
        .into_iter()
        .take(n)
        .map(|r| match r {
            Ok(()) => EventOutcome::Delivered,
            Err(e) => EventOutcome::from_error(e),
        })
        .collect();
    let missing = Error::unavailable("syslog client returned no result for this message");
    while out.len() < n {
        out.push(EventOutcome::from_error(clone_error(&missing)));
    }
    out
}
