//! Configuration of the syslog transport and the RFC 5424 code points (facility, severity).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, Severity};

/// RFC 5424 facility (0..=23).
///
/// In configuration it is written as an RFC 5424 / BSD name (`"local4"`, `"auth"`,
/// `"authpriv"`, `"user"`, `"daemon"`, `"security"` = 13 log audit, ...) or as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Facility(pub u8);

/// Names accepted for each facility code, first name is the canonical one.
const FACILITY_NAMES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("audit", 13),
    ("console", 14),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl Facility {
    /// `user` (1), the RFC 3164 default for unknown senders.
    pub const USER: Facility = Facility(1);
    /// `auth` (4), security/authorization messages.
    pub const AUTH: Facility = Facility(4);
    /// `authpriv` (10), private security/authorization messages.
    pub const AUTHPRIV: Facility = Facility(10);
    /// `local4` (20), a common choice for SIEM feeds.
    pub const LOCAL4: Facility = Facility(20);

    /// Parses a facility name (case-insensitive) or a decimal number 0..=23.
    pub fn parse(s: &str) -> Option<Facility> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u8>() {
            return (n <= 23).then_some(Facility(n));
        }
        FACILITY_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, code)| Facility(code))
    }

    /// The canonical name of this facility, if the code is valid.
    pub fn name(self) -> Option<&'static str> {
        FACILITY_NAMES
            .iter()
            .find(|&&(_, code)| code == self.0)
            .map(|&(name, _)| name)
    }
}

impl Default for Facility {
    fn default() -> Self {
        Facility::LOCAL4
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Facility;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a syslog facility name (e.g. \"local4\", \"auth\") or a number 0..=23")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Facility, E> {
                Facility::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "unknown syslog facility {v:?}: use kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, clock, local0..local7 or 0..=23"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Facility, E> {
                u8::try_from(v)
                    .ok()
                    .filter(|n| *n <= 23)
                    .map(Facility)
                    .ok_or_else(|| E::custom(format!("syslog facility {v} out of range 0..=23")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Facility, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "syslog facility {v} out of range 0..=23"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for Facility {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_u8(self.0),
        }
    }
}

/// RFC 5424 severity 0 (emergency) ..= 7 (debug).
///
/// In configuration it is written as a name (`"emerg"`, `"alert"`, `"crit"`, `"err"`,
/// `"warning"`, `"notice"`, `"info"`, `"debug"`, with the usual long forms) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyslogSeverity(pub u8);

const SEVERITY_NAMES: &[(&str, u8)] = &[
    ("emerg", 0),
    ("emergency", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("critical", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("informational", 6),
    ("debug", 7),
];

impl SyslogSeverity {
    /// Emergency: system is unusable.
    pub const EMERGENCY: SyslogSeverity = SyslogSeverity(0);
    /// Alert: action must be taken immediately.
    pub const ALERT: SyslogSeverity = SyslogSeverity(1);
    /// Critical conditions.
    pub const CRITICAL: SyslogSeverity = SyslogSeverity(2);
    /// Error conditions.
    pub const ERROR: SyslogSeverity = SyslogSeverity(3);
    /// Warning conditions.
    pub const WARNING: SyslogSeverity = SyslogSeverity(4);
    /// Normal but significant condition.
    pub const NOTICE: SyslogSeverity = SyslogSeverity(5);
    /// Informational messages.
    pub const INFO: SyslogSeverity = SyslogSeverity(6);
    /// Debug-level messages.
    pub const DEBUG: SyslogSeverity = SyslogSeverity(7);

    /// Maps a vowguard event severity: critical → 2 crit, high → 3 err, medium → 4 warning,
    /// low → 5 notice, info → 6 info.
    pub fn from_event(severity: Severity) -> Self {
        match severity {
            Severity::Critical => Self::CRITICAL,
            Severity::High => Self::ERROR,
            Severity::Medium => Self::WARNING,
            Severity::Low => Self::NOTICE,
            Severity::Info => Self::INFO,
        }
    }

    /// Parses a severity name (case-insensitive) or a decimal number 0..=7.
    pub fn parse(s: &str) -> Option<SyslogSeverity> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u8>() {
            return (n <= 7).then_some(SyslogSeverity(n));
        }
        SEVERITY_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, code)| SyslogSeverity(code))
    }
}

impl<'de> Deserialize<'de> for SyslogSeverity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SyslogSeverity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a syslog severity name (e.g. \"warning\") or a number 0..=7")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyslogSeverity, E> {
                SyslogSeverity::parse(v)
                    .ok_or_else(|| E::custom(format!("unknown syslog severity {v:?}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SyslogSeverity, E> {
                u8::try_from(v)
                    .ok()
                    .filter(|n| *n <= 7)
                    .map(SyslogSeverity)
                    .ok_or_else(|| E::custom(format!("syslog severity {v} out of range 0..=7")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SyslogSeverity, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("syslog severity {v} out of range 0..=7"))),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// How messages travel to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    /// RFC 5426: one message per datagram, no delivery guarantee, at most 2048 octets.
    Udp,
    /// RFC 6587: a TCP stream of framed messages (default).
    #[default]
    Tcp,
    /// RFC 5425: TCP with TLS (certificate verification always on), octet-counted frames.
    Tls,
}

impl Transport {
    /// The lower-case config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// How messages are delimited on a TCP/TLS stream (ignored for UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Framing {
    /// `LEN SP MSG` (RFC 6587 section 3.4.1; mandatory for TLS). Default.
    #[default]
    OctetCounting,
    /// `MSG LF` (RFC 6587 section 3.4.2). Raw CR/LF inside a message are replaced by spaces.
    Lf,
}

/// Default for [`SyslogConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`SyslogConfig::write_timeout`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}

fn default_write_timeout() -> Duration {
    DEFAULT_WRITE_TIMEOUT
}

/// Transport settings of a syslog destination.
///
/// Sinks embed it as a named field (`[sinks.x.syslog]`), because `#[serde(flatten)]` does
/// not work with `deny_unknown_fields`.
///
/// ```toml
/// address = "siem.example.com:6514"
/// transport = "tls"              # udp | tcp (default) | tls
/// framing = "octet_counting"     # octet_counting (default; required for tls) | lf
/// connect_timeout = "5s"
/// write_timeout = "5s"
/// [tls]
/// ca_file = "/etc/vowguard/siem-ca.pem"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyslogConfig {
    /// The receiver as `host:port` (IPv6 literals in brackets: `[::1]:6514`).
    pub address: String,
    /// `udp`, `tcp` (default) or `tls`.
    #[serde(default)]
    pub transport: Transport,
    /// `octet_counting` (default) or `lf`; `lf` is refused with `tls`. Ignored for UDP.
    #[serde(default)]
    pub framing: Framing,
    /// TLS settings; only allowed with `transport = "tls"`. Defaults: system roots, SNI = host.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Deadline for resolving, connecting and the TLS handshake (default `"5s"`).
    #[serde(default = "default_connect_timeout", with = "vowguard_core::duration")]
    pub connect_timeout: Duration,
    /// Deadline for writing one message (default `"5s"`).
    #[serde(default = "default_write_timeout", with = "vowguard_core::duration")]
    pub write_timeout: Duration,
}

impl SyslogConfig {
    /// A config for `address` with every other setting at its default (TCP, octet counting).
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            transport: Transport::default(),
            framing: Framing::default(),
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// Checks the combination of settings; [`crate::SyslogClient::new`] calls it.
    pub fn validate(&self) -> Result<(), Error> {
        split_host_port(&self.address)?;
        if self.transport == Transport::Tls && self.framing == Framing::Lf {
            return Err(Error::config(
                "syslog: framing = \"lf\" is not allowed with transport = \"tls\"; RFC 5425 requires octet counting (remove `framing` or set it to \"octet_counting\")",
            ));
        }
        if self.tls.is_some() && self.transport != Transport::Tls {
            return Err(Error::config(format!(
                "syslog: a [tls] table is set but transport = \"{}\"; set transport = \"tls\" or remove [tls]",
                self.transport.as_str()
            )));
        }
        if let Some(tls) = &self.tls {
            if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                return Err(Error::config(
                    "syslog: tls.client_cert_file and tls.client_key_file must be set together",
                ));
            }
            if tls
                .server_name
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                return Err(Error::config("syslog: tls.server_name must not be empty"));
            }
        }
        if self.connect_timeout.is_zero() || self.write_timeout.is_zero() {
            return Err(Error::config(
                "syslog: connect_timeout and write_timeout must be more than 0s",
            ));
        }
        Ok(())
    }
}

/// TLS settings of a syslog destination. Certificate verification is always on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Extra CA certificate(s) (PEM) trusted in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1) for mutual TLS.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// The name to send as SNI and verify the certificate against; default: the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
}

impl TlsConfig {
    /// Trusts the CA certificate(s) (PEM) in `path` in addition to the system roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The client certificate chain (PEM) for mutual TLS; needs
    /// [`with_client_key_file`](Self::with_client_key_file).
    pub fn with_client_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_cert_file = Some(path.into());
        self
    }

    /// The client private key (PEM: PKCS#8, PKCS#1 or SEC1) for mutual TLS.
    pub fn with_client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_key_file = Some(path.into());
        self
    }

    /// The name sent as SNI and verified against the certificate (default: the host of
    /// `address`).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

/// Splits `host:port` (or `[v6]:port`) into its parts.
pub(crate) fn split_host_port(address: &str) -> Result<(String, u16), Error> {
    let bad = || {
        Error::config(format!(
            "syslog: address {address:?} must be host:port (IPv6 as [addr]:port)"
        ))
    };
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
        (host, rest.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SyslogConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults() {
        let c = parse(r#"address = "siem:514""#).unwrap();
        assert_eq!(c, SyslogConfig::new("siem:514"));
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.framing, Framing::OctetCounting);
        assert_eq!(c.connect_timeout, std::time::Duration::from_millis(5000));
        assert_eq!(c.write_timeout, std::time::Duration::from_millis(5000));
        c.validate().unwrap();
    }

    #[test]
    fn full_tls_config() {
        let c = parse(
            r#"
            address = "siem.example.com:6514"
            transport = "tls"
            framing = "octet_counting"
            connect_timeout = "1s"
            write_timeout = "2s"
            [tls]
            ca_file = "/etc/ca.pem"
            client_cert_file = "/etc/c.pem"
            client_key_file = "/etc/k.pem"
            server_name = "siem.internal"
            "#,
        )
        .unwrap();
        assert_eq!(c.transport, Transport::Tls);
        assert_eq!(
            c.tls.as_ref().unwrap().server_name.as_deref(),
            Some("siem.internal")
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(parse("address = \"a:1\"\nverify = false").is_err());
        assert!(parse("address = \"a:1\"\ntransport = \"tls\"\n[tls]\ninsecure = true").is_err());
        assert!(parse("address = \"a:1\"\ntransport = \"sctp\"").is_err());
    }

    #[test]
    fn lf_framing_with_tls_is_a_config_error() {
        let c = parse("address = \"a:6514\"\ntransport = \"tls\"\nframing = \"lf\"").unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!(err.kind(), vowguard_core::ErrorKind::Config);
        assert!(err.message().contains("octet"), "{err}");
        parse("address = \"a:514\"\ntransport = \"tcp\"\nframing = \"lf\"")
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn other_invalid_combinations() {
        let tls_on_tcp = parse("address = \"a:514\"\n[tls]\nca_file = \"x\"").unwrap();
        assert!(tls_on_tcp.validate().is_err());
        let half_mtls =
            parse("address = \"a:514\"\ntransport = \"tls\"\n[tls]\nclient_cert_file = \"x\"")
                .unwrap();
        assert!(half_mtls.validate().is_err());
        let zero = parse("address = \"a:514\"\nwrite_timeout = \"0s\"").unwrap();
        assert!(zero.validate().is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(split_host_port("siem:514").unwrap(), ("siem".into(), 514));
        assert_eq!(
            split_host_port("10.0.0.1:6514").unwrap(),
            ("10.0.0.1".into(), 6514)
        );
        assert_eq!(split_host_port("[::1]:6514").unwrap(), ("::1".into(), 6514));
        for bad in [
            "siem",
            "siem:",
            ":514",
            "::1:514",
            "[::1]",
            "siem:0",
            "siem:99999",
            "[::1]514",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn facility_names_and_numbers() {
        #[derive(Deserialize)]
        struct F {
            f: Facility,
        }
        let f = |s: &str| toml::from_str::<F>(&format!("f = {s}")).map(|x| x.f);
        assert_eq!(f("\"local4\"").unwrap(), Facility(20));
        assert_eq!(f("\"LOCAL7\"").unwrap(), Facility(23));
        assert_eq!(f("\"auth\"").unwrap(), Facility(4));
        assert_eq!(f("\"authpriv\"").unwrap(), Facility(10));
        assert_eq!(f("\"security\"").unwrap(), Facility(13));
        assert_eq!(f("\"user\"").unwrap(), Facility(1));
        assert_eq!(f("13").unwrap(), Facility(13));
        assert!(f("24").is_err());
        assert!(f("-1").is_err());
        assert!(f("\"local8\"").is_err());
        assert_eq!(Facility(20).to_string(), "local4");
    }

    #[test]
    fn severity_mapping_and_names() {
        assert_eq!(
            SyslogSeverity::from_event(Severity::Critical),
            SyslogSeverity(2)
        );
        assert_eq!(
            SyslogSeverity::from_event(Severity::High),
            SyslogSeverity(3)
        );
        assert_eq!(
            SyslogSeverity::from_event(Severity::Medium),
            SyslogSeverity(4)
        );
        assert_eq!(SyslogSeverity::from_event(Severity::Low), SyslogSeverity(5));
        assert_eq!(
            SyslogSeverity::from_event(Severity::Info),
            SyslogSeverity(6)
        );
        assert_eq!(SyslogSeverity::parse("warning"), Some(SyslogSeverity(4)));
        assert_eq!(SyslogSeverity::parse("7"), Some(SyslogSeverity(7)));
        assert_eq!(SyslogSeverity::parse("8"), None);
    }
}
