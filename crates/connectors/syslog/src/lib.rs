//! The syslog transport shared by the ArcSight (CEF) and QRadar (LEEF) sinks.
//!
//! * [`format_rfc5424`] builds one RFC 5424 message (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME
//!   PROCID MSGID - MSG`) from an [`Rfc5424Header`] and the sink's encoded payload.
//! * [`frame`] (and [`frame_octet_counting`] / [`frame_lf`]) turns it into the bytes for the
//!   wire: RFC 6587 octet counting or LF framing on TCP/TLS, one datagram on UDP.
//! * [`SyslogClient`] delivers framed messages over UDP, TCP or TLS ([`SyslogConfig`]),
//!   reconnecting on broken connections and reporting one result per message so the
//!   pipeline resends exactly the messages that were not written.
//! * [`SyslogSink`] is the [`vowguard_core::Sink`] both connectors wrap: a [`LineEncoder`]
//!   (CEF, LEEF) turns an event into MSG, the sink adds the RFC 5424 header and sends it
//!   through a [`SyslogClient`], one outcome per event.
//!
//! This crate registers no connector itself; the sinks embed a [`SyslogConfig`].
#![forbid(unsafe_code)]

mod client;
mod config;
mod encode;
mod sink;
mod tls;

pub use client::SyslogClient;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_WRITE_TIMEOUT, Facility, Framing, SyslogConfig,
    SyslogSeverity, TlsConfig, Transport,
};
pub use encode::{
    MAX_APP_NAME, MAX_HOSTNAME, MAX_MSGID, MAX_PROCID, MAX_UDP_MESSAGE, Rfc5424Header,
    escape_sd_param, format_rfc5424, frame, frame_lf, frame_octet_counting, pri,
    sanitize_header_field, severity_1_to_10, truncate_chars, truncate_utf8,
};
pub use sink::{HeaderFields, LineEncoder, SyslogSink, resolve_hostname};
