//! [`SyslogSink`]: a [`Sink`] that sends every event as one line (CEF, LEEF, ...) in an
//! RFC 5424 message over a [`SyslogClient`]. The ArcSight and QRadar sinks wrap it.

use std::fmt;

use async_trait::async_trait;
use vowguard_core::{BatchLimits, EncodedEvent, Error, Event, EventOutcome, Sink};

use crate::client::SyslogClient;
use crate::config::{Facility, SyslogConfig, SyslogSeverity};
use crate::encode::{Rfc5424Header, format_rfc5424};

/// The pure, per-format part of a [`SyslogSink`]: one event in, the MSG line out.
pub trait LineEncoder: fmt::Debug + Send + Sync {
    /// RFC 5424 MSGID of every message (e.g. `CEF`, `LEEF`).
    const MSGID: &'static str;

    /// The MSG part for one event: one line, without a raw CR or LF.
    fn encode_line(&self, event: &Event) -> String;
}

/// The RFC 5424 header fields that are the same for every message of a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderFields {
    /// Syslog facility.
    pub facility: Facility,
    /// APP-NAME (sanitised and cut to 48 octets when written).
    pub app_name: String,
    /// HOSTNAME (sanitised and cut to 255 octets when written); see [`resolve_hostname`].
    pub hostname: String,
}

impl HeaderFields {
    /// The header fields of every message: `facility`, `app_name`, `hostname`.
    pub fn new(
        facility: Facility,
        app_name: impl Into<String>,
        hostname: impl Into<String>,
    ) -> Self {
        Self {
            facility,
            app_name: app_name.into(),
            hostname: hostname.into(),
        }
    }
}

/// Sends every event as `encoder.encode_line(event)` in an RFC 5424 message
/// (`PROCID` `-`, `MSGID` [`LineEncoder::MSGID`], severity from
/// [`SyslogSeverity::from_event`]) over a [`SyslogClient`], one outcome per event.
pub struct SyslogSink<E> {
    kind: &'static str,
    encoder: E,
    header: HeaderFields,
    client: SyslogClient,
}

impl<E: fmt::Debug> fmt::Debug for SyslogSink<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogSink")
            .field("kind", &self.kind)
            .field("address", &self.client.config().address)
            .field("facility", &self.header.facility)
            .field("app_name", &self.header.app_name)
            .field("hostname", &self.header.hostname)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl<E: LineEncoder> SyslogSink<E> {
    /// Builds the sink of connector `kind`; validates the transport settings and loads TLS
    /// material, but does not connect yet (the first send or [`Sink::healthcheck`] does).
    pub fn new(
        kind: &'static str,
        encoder: E,
        syslog: SyslogConfig,
        header: HeaderFields,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind,
            encoder,
            header,
            client: SyslogClient::new(syslog)?,
        })
    }

    /// The pure line encoder this sink uses.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The full RFC 5424 message (unframed) for one event.
    pub fn message(&self, event: &Event) -> Vec<u8> {
        let header = Rfc5424Header {
            facility: self.header.facility,
            severity: SyslogSeverity::from_event(event.severity),
            timestamp: event.timestamp,
            hostname: &self.header.hostname,
            app_name: &self.header.app_name,
            procid: "-",
            msgid: E::MSGID,
        };
        format_rfc5424(&header, &self.encoder.encode_line(event))
    }
}

/// `configured` if set, else this machine's host name, else the nil value `-`.
pub fn resolve_hostname(configured: Option<String>) -> String {
    configured
        .or_else(machine_hostname)
        .unwrap_or_else(|| "-".to_owned())
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
impl<E: LineEncoder> Sink for SyslogSink<E> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn batch_limits(&self) -> BatchLimits {
        BatchLimits::new(200, 256_000, std::time::Duration::from_millis(500))
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
        out.push(EventOutcome::from_error(missing.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use vowguard_core::{Category, Severity};

    use super::*;

    #[derive(Debug)]
    struct Upper;

    impl LineEncoder for Upper {
        const MSGID: &'static str = "UP";
        fn encode_line(&self, event: &Event) -> String {
            event.action.to_uppercase()
        }
    }

    fn sink(hostname: &str) -> SyslogSink<Upper> {
        let header = HeaderFields {
            facility: Facility::LOCAL4,
            app_name: "app".to_owned(),
            hostname: hostname.to_owned(),
        };
        SyslogSink::new("upper", Upper, SyslogConfig::new("127.0.0.1:514"), header).unwrap()
    }

    #[test]
    fn message_wraps_the_line_in_an_rfc5424_header() {
        let mut event = Event::new(Category::Authentication, "login", Severity::High);
        event.timestamp = "2026-06-20T12:03:07.123Z".parse().unwrap();
        let sink = sink("gw1");
        assert_eq!(sink.kind(), "upper");
        // local4 (20) * 8 + high (3) = 163.
        assert_eq!(
            String::from_utf8(sink.encode(&event).unwrap()).unwrap(),
            "<163>1 2026-06-20T12:03:07.123Z gw1 app - UP - LOGIN"
        );
        let debug = format!("{sink:?}");
        assert!(
            debug.contains("127.0.0.1:514") && debug.contains("Upper"),
            "{debug}"
        );
    }

    #[test]
    fn outcomes_are_exactly_one_per_event() {
        let out = outcomes(3, vec![Ok(()), Err(Error::rejected("bad"))]);
        assert_eq!(out.len(), 3);
        assert!(out[0].is_delivered());
        assert!(matches!(out[1], EventOutcome::Rejected(_)), "{:?}", out[1]);
        assert!(matches!(out[2], EventOutcome::Retry(_)), "{:?}", out[2]);

        let out = outcomes(1, vec![Ok(()), Ok(())]);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn configured_hostname_wins() {
        assert_eq!(resolve_hostname(Some("gw1".to_owned())), "gw1");
        assert!(!resolve_hostname(None).is_empty());
    }
}
