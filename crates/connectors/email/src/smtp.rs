//! The SMTP connections: connected here (TCP with `TCP_NODELAY`, then implicit TLS,
//! STARTTLS and AUTH), driven by lettre's [`AsyncSmtpConnection`], kept in a small pool.
//!
//! lettre's own pooled transport connects the socket itself and leaves Nagle's algorithm
//! on. lettre writes the message and the closing `.` in two writes, so the second waited
//! for the server's delayed ACK: about 40 ms on every message. Here every socket has
//! `TCP_NODELAY`, for all three `tls` modes (implicit TLS is set up over our socket with
//! the same rustls verifier lettre uses: the platform's roots plus `ca_file`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use vowguard_core::{Error, ErrorKind};

/// A pooled connection idle longer than this is closed instead of reused (lettre's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A pooled connection idle longer than this is checked with NOOP before it is reused; one
/// used more recently goes straight to MAIL FROM (no extra round trip per message).
const CHECK_AFTER: Duration = Duration::from_secs(1);

/// How a connection is secured (the `tls` setting, resolved).
#[derive(Clone)]
pub(crate) enum Security {
    /// Plain text (loopback relays only; checked by the config).
    None,
    /// STARTTLS required after the greeting (lettre upgrades the connection).
    Starttls(TlsParameters),
    /// TLS from the first byte (SMTPS), with this rustls configuration.
    Implicit(Arc<rustls::ClientConfig>),
}

/// What went wrong talking to the server: lettre's error (classified by
/// [`crate::classify`]) or one of ours from the TCP / implicit-TLS set-up.
#[derive(Debug)]
pub(crate) enum SmtpFailure {
    Lettre(lettre::transport::smtp::Error),
    Vowguard(Error),
}

impl From<Error> for SmtpFailure {
    fn from(e: Error) -> Self {
        Self::Vowguard(e)
    }
}

impl From<lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Lettre(e)
    }
}

/// Connects, authenticates and pools SMTP connections to one server.
pub(crate) struct SmtpClient {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Per-operation timeout (connect; lettre applies none per command on a stream we pass).
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    pub(crate) fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        timeout: Duration,
        max_idle: usize,
    ) -> Self {
        Self {
            host,
            port,
            security,
            credentials,
            hello: ClientId::default(),
            timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one message (`email` is the formatted message) over a pooled or new connection.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        email: &[u8],
    ) -> Result<Response, SmtpFailure> {
        let mut connection = self.checkout().await?;
        let sent = connection.send(envelope, email).await;
        // lettre already sent QUIT and closed a connection whose command failed.
        if sent.is_ok() && !connection.has_broken() {
            self.checkin(connection);
        }
        Ok(sent?)
    }

    /// Checks that a connection (pooled, else new) answers NOOP.
    pub(crate) async fn check(&self) -> Result<bool, SmtpFailure> {
        let mut connection = self.checkout().await?;
        let alive = connection.test_connected().await;
        if alive {
            self.checkin(connection);
        }
        Ok(alive)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A live connection: the most recently used pooled one (checked with NOOP when it sat
    /// idle for a while), else a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        loop {
            let Some(idle) = self.lock().pop() else {
                return self.connect().await;
            };
            let idle_for = idle.since.elapsed();
            let mut connection = idle.connection;
            // A stale connection is dropped (the server sees it close), never sent QUIT: a
            // peer that vanished would make QUIT wait.
            if idle_for >= IDLE_TIMEOUT {
                continue;
            }
            if idle_for < CHECK_AFTER || connection.test_connected().await {
                return Ok(connection);
            }
        }
    }

    fn checkin(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
        // Otherwise dropped: the server sees the connection close.
    }

    /// A new connection: TCP with `TCP_NODELAY`, TLS as configured, EHLO, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let server = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((&*self.host, self.port)))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "connecting to {server}: no answer within {:?}",
                        self.timeout
                    ),
                )
            })?
            .map_err(|e| Error::unavailable(format!("connecting to {server}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| Error::unavailable(format!("setting TCP_NODELAY on {server}: {e}")))?;
        let mut connection = match &self.security {
            Security::None | Security::Starttls(_) => {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
            Security::Implicit(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|_| {
                    Error::config(format!(
                        "`host`: {:?} is not a valid name for TLS",
                        self.host
                    ))
                })?;
                let tls = tokio::time::timeout(
                    self.timeout,
                    tokio_rustls::TlsConnector::from(Arc::clone(config)).connect(name, tcp),
                )
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "TLS handshake with {server}: no answer within {:?}",
                            self.timeout
                        ),
                    )
                })?
                .map_err(|e| tls_handshake_error(&server, &e))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsOverTcp(tls)), &self.hello)
                    .await?
            }
        };
        if let Security::Starttls(parameters) = &self.security {
            connection.starttls(parameters.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }
}

/// A failed implicit-TLS handshake: a configuration problem (certificate, name, protocol),
/// or the connection dropping (retryable).
fn tls_handshake_error(server: &str, e: &io::Error) -> Error {
    // Same text as `classify` gives a failed STARTTLS upgrade (prefixed with the attempt).
    let rustls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(tls) => Error::config(format!(
            "TLS handshake failed ({tls}); the server \
             certificate must be valid for the configured `host` and signed by a trusted root \
             (add a private CA with `ca_file`), and `tls` must match the port (\"starttls\" on \
             587, \"tls\" on 465)"
        )),
        None => Error::unavailable(format!("TLS handshake with {server}: {e}")),
    }
}

/// The rustls configuration for implicit TLS: the platform's verifier (system roots) plus
/// `extra_roots` (from `ca_file`), the aws-lc-rs provider: what lettre builds for STARTTLS.
pub(crate) fn implicit_tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots,
        Arc::clone(&provider),
    )?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client stream over our TCP socket, handed to lettre as its transport.
#[derive(Debug)]
struct TlsOverTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsOverTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsOverTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsOverTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
