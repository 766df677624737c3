//! Fetching a report from gvmd over GMP (the Greenbone Management Protocol): on gvmd's Unix
//! socket or over TLS (rustls, aws-lc-rs, the certificate always verified).
//!
//! GMP is a stream of XML documents, one command and then one answer at a time on one
//! connection. A session here is blocking (it runs on a blocking thread, like the file
//! parser) and every request has a deadline: connecting, authenticating, and each command
//! with its whole answer must be done within `request_timeout`.
//!
//! 1. `<authenticate><credentials><username>…</username><password>…</password>
//!    </credentials></authenticate>` (both XML-escaped), answered by
//!    `<authenticate_response status="200" …>`; any other status is `Unauthorized`, naming
//!    the scanner, never the password;
//! 2. with a `task_id`: `<get_tasks task_id="…"/>`, whose `task/last_report/report` gives
//!    the last finished report's id and time. When that time is not after the sync's
//!    checkpoint, nothing more is asked;
//! 3. `<get_reports report_id="…" details="1" ignore_pagination="1" filter="…"/>`: the
//!    answer is streamed through the report parser with the file mode's limits (never
//!    buffered whole), and its root must be `<get_reports_response status="2xx">`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, ErrorKind, Finding};
use vowguard_xml::{Element, Limits, XmlEvent, XmlReader};

use crate::config::{DEFAULT_FILTER, DEFAULT_GMP_PORT, OpenvasConfig};
use crate::parse::{ParseOptions, ParseSummary, parse_document};

/// Most bytes read of a small answer (`authenticate`, `get_tasks`).
const MAX_SMALL_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

/// Where gvmd listens.
#[derive(Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tls {
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        config: Arc<ClientConfig>,
    },
}

/// Which report a sync fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Report(String),
    TaskLastReport(String),
}

/// A gvmd to fetch reports from; see the [module docs](self).
#[derive(Clone)]
pub(crate) struct GmpClient {
    id: String,
    endpoint: Endpoint,
    username: String,
    password: SecretString,
    target: Target,
    filter: String,
    timeout: Duration,
}

impl std::fmt::Debug for GmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmpClient")
            .field("id", &self.id)
            .field("endpoint", &self.shown())
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What one GMP fetch did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fetched {
    /// The report's parse, or `None` when the task's last report was not newer than the
    /// checkpoint.
    pub parsed: Option<ParseSummary>,
    /// The checkpoint of the sync: the report's time (task mode) or the time the fetch
    /// started.
    pub checkpoint: Option<DateTime<Utc>>,
}

impl GmpClient {
    /// A client for a validated GMP configuration (`socket` or `host` set).
    pub(crate) fn new(
        id: &str,
        config: &OpenvasConfig,
        config_dir: &Path,
        password: &SecretString,
    ) -> Result<Self, Error> {
        let prefix = format!("scanners.{id}");
        let endpoint = match (&config.socket, &config.host) {
            (Some(socket), _) => Endpoint::Unix(config_dir.join(socket)),
            (None, Some(host)) => {
                let host = host.trim().to_owned();
                let server_name = ServerName::try_from(host.clone()).map_err(|_| {
                    Error::config(format!(
                        "`{prefix}.host`: `{}` is not a valid TLS server name",
                        printable(&host, 100)
                    ))
                })?;
                Endpoint::Tls {
                    port: config.port.unwrap_or(DEFAULT_GMP_PORT),
                    server_name,
                    config: tls_config(config, config_dir, &prefix)?,
                    host,
                }
            }
            (None, None) => {
                return Err(Error::internal(format!(
                    "`{prefix}`: not a GMP configuration"
                )));
            }
        };
        let target = match (&config.report_id, &config.task_id) {
            (Some(report), _) => Target::Report(report.clone()),
            (None, Some(task)) => Target::TaskLastReport(task.clone()),
            (None, None) => {
                return Err(Error::config(format!(
                    "`{prefix}.task_id`: set `task_id` or `report_id`"
                )));
            }
        };
        Ok(Self {
            id: id.to_owned(),
            endpoint,
            username: config
                .username
                .clone()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            password: password.clone(),
            target,
            filter: config
                .filter
                .clone()
                .unwrap_or_else(|| DEFAULT_FILTER.to_owned()),
            timeout: config.request_timeout,
        })
    }

    /// `unix:/run/gvmd/gvmd.sock` or `tls:gvm.example:9390`, for messages.
    pub(crate) fn shown(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(path) => format!("unix:{}", path.display()),
            Endpoint::Tls { host, port, .. } => format!("tls:{host}:{port}"),
        }
    }

    /// Connects, authenticates and fetches the report (blocking), handing every finding
    /// to `on_finding`. With `since`, a task's last report not newer than it is not read.
    pub(crate) fn fetch(
        &self,
        since: Option<DateTime<Utc>>,
        options: &ParseOptions,
        on_finding: &mut dyn FnMut(Finding) -> Result<(), Error>,
    ) -> Result<Fetched, Error> {
        let started = Utc::now();
        let shown = self.shown();
        let mut session = BufReader::with_capacity(64 * 1024, self.connect()?);

        // Authenticate.
        session.get_mut().start_request(self.timeout);
        let command = format!(
            "<authenticate><credentials><username>{}</username><password>{}</password></credentials></authenticate>",
            escape(&self.username),
            escape(self.password.expose_secret())
        );
        let command = SecretString::from(command);
        self.send(&mut session, command.expose_secret(), "authenticate")?;
        let answer = self.read_small(&mut session, "authenticate", &[])?;
        if answer.status != "200" {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "gvmd at {shown} refused the credentials of scanner `{}` (user `{}`): status {} {}",
                    self.id,
                    printable(&self.username, 100),
                    printable(&answer.status, 8),
                    printable(&answer.status_text, 200)
                ),
            ));
        }

        // Which report.
        let (report_id, checkpoint) = match &self.target {
            Target::Report(report) => (report.clone(), started),
            Target::TaskLastReport(task) => {
                session.get_mut().start_request(self.timeout);
                self.send(
                    &mut session,
                    &format!("<get_tasks task_id=\"{}\"/>", escape(task)),
                    "get_tasks",
                )?;
                let answer = self.read_small(
                    &mut session,
                    "get_tasks",
                    &[
                        "task/last_report/report/timestamp",
                        "task/last_report/report/scan_end",
                    ],
                )?;
                if !answer.status.starts_with('2') {
                    return Err(answer_error(
                        &answer.status,
                        &format!(
                            "gvmd at {shown}: get_tasks of task {task}: status {} {}",
                            printable(&answer.status, 8),
                            printable(&answer.status_text, 200)
                        ),
                    ));
                }
                let Some(report) = answer.last_report else {
                    return Err(Error::unavailable(format!(
                        "gvmd at {shown}: task {task} has no finished report yet; the findings from the last good sync are kept"
                    )));
                };
                let time = answer
                    .texts
                    .iter()
                    .rev()
                    .filter_map(|t| parse_time(t))
                    .next()
                    .unwrap_or(started);
                if let Some(since) = since
                    && time <= since
                {
                    tracing::debug!(scanner = %self.id, report = %report, "the task's last report is not newer than the checkpoint");
                    return Ok(Fetched {
                        parsed: None,
                        checkpoint: Some(since),
                    });
                }
                (report, time)
            }
        };

        // The report, streamed through the parser.
        session.get_mut().start_request(self.timeout);
        self.send(
            &mut session,
            &format!(
                "<get_reports report_id=\"{}\" details=\"1\" ignore_pagination=\"1\" filter=\"{}\"/>",
                escape(&report_id),
                escape(&self.filter)
            ),
            "get_reports",
        )?;
        let source = format!("gvmd at {shown}: report {report_id}");
        let check_root = |root: &Element, _position: u64| -> Result<(), Error> {
            if root.name != "get_reports_response" {
                return Err(Error::invalid_input(format!(
                    "{source}: byte 0: expected <get_reports_response>, got <{}>",
                    printable(&root.name, 64)
                )));
            }
            let status = root.attr("status").unwrap_or_default();
            if !status.starts_with('2') {
                return Err(answer_error(
                    status,
                    &format!(
                        "{source}: gvmd answered status {} {}",
                        printable(status, 8),
                        printable(root.attr("status_text").unwrap_or_default(), 200)
                    ),
                ));
            }
            Ok(())
        };
        let parsed = parse_document(
            &mut session,
            &source,
            options,
            Some(&check_root),
            on_finding,
        )
        .map_err(|e| session.get_ref().explain(e, &source))?;
        self.logout(&mut session);
        Ok(Fetched {
            parsed: Some(parsed),
            checkpoint: Some(checkpoint),
        })
    }

    /// Ends the session politely; a failure here changes nothing.
    fn logout(&self, session: &mut BufReader<Session>) {
        session.get_mut().start_request(Duration::from_secs(1));
        let _ = session.get_mut().shutdown();
    }

    fn connect(&self) -> Result<Session, Error> {
        let deadline = Instant::now() + self.timeout;
        let shown = self.shown();
        let unreachable = |e: io::Error| {
            let kind = if e.kind() == io::ErrorKind::TimedOut {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            Error::new(kind, format!("cannot connect to gvmd at {shown}")).with_source(e)
        };
        let stream = match &self.endpoint {
            Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(unreachable)?),
            Endpoint::Tls {
                host,
                port,
                server_name,
                config,
            } => {
                let address = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(unreachable)?
                    .next()
                    .ok_or_else(|| {
                        unreachable(io::Error::new(
                            io::ErrorKind::NotFound,
                            "the host name has no address",
                        ))
                    })?;
                let tcp =
                    TcpStream::connect_timeout(&address, self.timeout).map_err(unreachable)?;
                tcp.set_nodelay(true).map_err(unreachable)?;
                let connection = ClientConnection::new(config.clone(), server_name.clone())
                    .map_err(|e| {
                        Error::internal(format!("TLS to gvmd at {shown}")).with_source(e)
                    })?;
                Stream::Tls(Box::new(StreamOwned::new(connection, tcp)))
            }
        };
        let mut session = Session {
            stream,
            deadline,
            failure: None,
        };
        if let Stream::Tls(tls) = &mut session.stream {
            // Complete the handshake now, so a refused certificate is reported as such.
            while tls.conn.is_handshaking() {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Timeout,
                            format!("TLS handshake with gvmd at {shown} timed out"),
                        )
                    })?;
                tls.sock.set_read_timeout(Some(left)).map_err(unreachable)?;
                tls.sock
                    .set_write_timeout(Some(left))
                    .map_err(unreachable)?;
                tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                    let certificate = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
                    if certificate {
                        Error::config(format!(
                            "TLS handshake with gvmd at {shown}: its certificate was not accepted; set `ca_file` to the CA that signed it"
                        ))
                        .with_source(e)
                    } else {
                        Error::new(
                            if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
                                ErrorKind::Timeout
                            } else {
                                ErrorKind::Unavailable
                            },
                            format!("TLS handshake with gvmd at {shown} failed"),
                        )
                        .with_source(e)
                    }
                })?;
            }
        }
        Ok(session)
    }

    fn send(
        &self,
        session: &mut BufReader<Session>,
        command: &str,
        what: &str,
    ) -> Result<(), Error> {
        let shown = self.shown();
        let stream = session.get_mut();
        stream
            .write_all(command.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| stream.io_error(&e, &format!("gvmd at {shown}: sending {what}")))
    }

    /// Reads one small answer `<{command}_response status="…" status_text="…">`: its status
    /// and, for `get_tasks`, the last report's id and the texts at `texts` (paths below the
    /// root).
    fn read_small(
        &self,
        session: &mut BufReader<Session>,
        command: &str,
        texts: &[&str],
    ) -> Result<SmallAnswer, Error> {
        let source = format!("gvmd at {}: {command} answer", self.shown());
        let limits = Limits::default()
            .with_max_bytes(MAX_SMALL_ANSWER_BYTES)
            .with_max_token_bytes(MAX_SMALL_ANSWER_BYTES)
            .with_max_depth(64)
            .with_max_text_chars(1024);
        let result = read_small_answer(&mut *session, &source, limits, command, texts);
        result.map_err(|e| session.get_ref().explain(e, &source))
    }
}

/// A GMP status onto an error kind: 401/403 `Unauthorized`, 404 and other 4xx `Rejected`,
/// 5xx (503 "service temporarily down") `Unavailable`.
fn answer_error(status: &str, message: &str) -> Error {
    let kind = match status {
        "401" | "403" => ErrorKind::Unauthorized,
        s if s.starts_with('5') => ErrorKind::Unavailable,
        _ => ErrorKind::Rejected,
    };
    Error::new(kind, message.to_owned())
}

#[derive(Debug, Default)]
struct SmallAnswer {
    status: String,
    status_text: String,
    last_report: Option<String>,
    texts: Vec<String>,
}

fn read_small_answer<R: BufRead>(
    input: R,
    source: &str,
    limits: Limits,
    command: &str,
    texts: &[&str],
) -> Result<SmallAnswer, Error> {
    let mut reader = XmlReader::new(input, source, limits);
    let mut answer = SmallAnswer::default();
    let mut path: Vec<String> = Vec::new();
    let expected = format!("{command}_response");
    loop {
        let position = reader.position();
        match reader.next_event()? {
            XmlEvent::Start(element) => {
                if path.is_empty() {
                    if element.name != expected {
                        return Err(reader.error_at(
                            position,
                            format!(
                                "expected <{expected}>, got <{}>",
                                printable(&element.name, 64)
                            ),
                        ));
                    }
                    answer.status = element.attr("status").unwrap_or_default().to_owned();
                    answer.status_text = element.attr("status_text").unwrap_or_default().to_owned();
                    path.push(String::new());
                    continue;
                }
                let below = if path.len() == 1 {
                    element.name.clone()
                } else {
                    format!("{}/{}", path[path.len() - 1], element.name)
                };
                if below == "task/last_report/report"
                    && answer.last_report.is_none()
                    && let Some(id) = element.attr("id")
                {
                    answer.last_report = Some(id.trim().to_owned());
                }
                if texts.contains(&below.as_str()) {
                    let text = reader.read_text()?;
                    answer.texts.push(text);
                    continue;
                }
                path.push(below);
            }
            XmlEvent::End(_) => {
                path.pop();
                if path.is_empty() {
                    return Ok(answer);
                }
            }
            XmlEvent::Text(_) => {}
            XmlEvent::Eof => {
                return Err(
                    reader.error_at(position, "gvmd closed the connection without an answer")
                );
            }
        }
    }
}

/// A connection to gvmd with the current request's deadline; remembers the I/O error that
/// ended a read, so a parse error caused by it is reported as what it was.
struct Session {
    stream: Stream,
    deadline: Instant,
    failure: Option<io::ErrorKind>,
}

enum Stream {
    Unix(UnixStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Session {
    fn start_request(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }

    fn arm(&mut self) -> io::Result<()> {
        let left = self
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "request_timeout passed"))?;
        match &self.stream {
            Stream::Unix(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
            Stream::Tls(s) => {
                s.sock.set_read_timeout(Some(left))?;
                s.sock.set_write_timeout(Some(left))
            }
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                s.sock.shutdown(std::net::Shutdown::Both)
            }
        }
    }

    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            self.failure = Some(e.kind());
        }
        result
    }

    fn io_error(&self, e: &io::Error, what: &str) -> Error {
        let kind = if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Unavailable
        };
        Error::new(kind, format!("{what}: {e}"))
    }

    /// A parse error caused by the connection (a timeout, a reset) becomes a timeout or
    /// unavailable error keeping the parser's message (which names the position).
    fn explain(&self, error: Error, source: &str) -> Error {
        match self.failure {
            Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => Error::new(
                ErrorKind::Timeout,
                format!(
                    "{source}: gvmd did not answer within request_timeout ({})",
                    error.message()
                ),
            ),
            Some(kind) => Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{source}: the connection to gvmd failed ({kind}): {}",
                    error.message()
                ),
            ),
            None => error,
        }
    }
}

impl Read for Session {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let armed = self.arm();
        self.note(armed)?;
        let result = match &mut self.stream {
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        };
        self.note(result)
    }
}

impl Write for Session {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        match &mut self.stream {
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm()?;
        match &mut self.stream {
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The rustls client configuration: the system roots plus `ca_file`, an optional client
/// certificate; verification always on.
fn tls_config(
    config: &OpenvasConfig,
    config_dir: &Path,
    prefix: &str,
) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(ca_file) = &config.ca_file {
        let path = config_dir.join(ca_file);
        for cert in load_certs(&path, &format!("{prefix}.ca_file"))? {
            roots.add(cert).map_err(|e| {
                Error::config(format!(
                    "`{prefix}.ca_file`: {}: not a usable CA certificate",
                    path.display()
                ))
                .with_source(e)
            })?;
        }
    }
    if roots.is_empty() {
        return Err(Error::config(format!(
            "`{prefix}.ca_file`: the system has no trusted root certificates; name the CA that signed gvmd's certificate"
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("gvmd TLS protocol versions").with_source(e))?
        .with_root_certificates(roots);
    let tls = match (&config.client_cert_file, &config.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(
                &config_dir.join(cert),
                &format!("{prefix}.client_cert_file"),
            )?;
            let key_path = config_dir.join(key);
            let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                Error::config(format!(
                    "`{prefix}.client_key_file`: {}: no readable PEM private key",
                    key_path.display()
                ))
                .with_source(e)
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::config(format!(
                    "`{prefix}.client_cert_file`: does not go with `client_key_file`"
                ))
                .with_source(e)
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(tls))
}

fn load_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::config(format!(
                "`{key}`: {}: cannot read PEM certificates",
                path.display()
            ))
            .with_source(e)
        })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "`{key}`: {}: holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Text escaped for an XML attribute value or element content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// gvmd's times: `2026-11-30T06:00:00Z` or with an offset.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Text from gvmd, shortened, control characters replaced, for messages.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("a<b>&\"c'</password>"),
            "a&lt;b&gt;&amp;&quot;c&apos;&lt;/password&gt;"
        );
    }

    #[test]
    fn small_answers() {
        let limits = Limits::default();
        let a = read_small_answer(
            &b"<authenticate_response status=\"400\" status_text=\"Authentication failed\"/>"[..],
            "t",
            limits,
            "authenticate",
            &[],
        )
        .unwrap();
        assert_eq!(
            (a.status.as_str(), a.status_text.as_str()),
            ("400", "Authentication failed")
        );
        let tasks = br#"<get_tasks_response status="200" status_text="OK"><task id="t1"><name>weekly</name>
            <current_report><report id="running"/></current_report>
            <last_report><report id="r-9"><timestamp>2026-11-30T02:00:00Z</timestamp><scan_end>2026-11-30T03:00:00Z</scan_end></report></last_report>
            </task></get_tasks_response>"#;
        let a = read_small_answer(
            &tasks[..],
            "t",
            limits,
            "get_tasks",
            &[
                "task/last_report/report/timestamp",
                "task/last_report/report/scan_end",
            ],
        )
        .unwrap();
        assert_eq!(a.last_report.as_deref(), Some("r-9"));
        assert_eq!(a.texts, ["2026-11-30T02:00:00Z", "2026-11-30T03:00:00Z"]);
        let err = read_small_answer(&b"<other/>"[..], "t", limits, "get_tasks", &[]).unwrap_err();
        assert!(
            err.to_string().contains("expected <get_tasks_response>"),
            "{err}"
        );
    }
}
