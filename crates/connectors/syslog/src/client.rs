//! [`SyslogClient`]: one lazily opened, reconnecting connection to a syslog receiver.

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vowguard_core::{Error, ErrorKind};

use crate::config::{SyslogConfig, Transport, split_host_port};
use crate::encode::frame;
use crate::tls;

/// The most frame bytes written at once over plain TCP (a single larger frame is written
/// alone).
const WRITE_CHUNK_BYTES: usize = 64 * 1024;

/// A connected (lazily, reconnecting) syslog client.
///
/// It holds at most one connection (a TCP stream, a TLS stream or a connected UDP socket)
/// behind a mutex, so concurrent [`send`](Self::send) calls are written one batch after the
/// other and messages of one batch stay in order.
///
/// # Delivery guarantee
///
/// A message is reported `Ok` once its whole frame has been written (and, for TLS, flushed)
/// to the socket, i.e. accepted by the local kernel. Such a message is never written again
/// by the client. When a write fails or times out, the connection is dropped, that message
/// and every later one of the batch are reported as retryable errors (the pipeline resends
/// exactly those), and the next call reconnects. Over plain TCP consecutive frames are
/// written together (up to 64 KiB at a time) with the bytes taken counted, so this holds per
/// frame as well.
///
/// TCP cannot do better without an application-level acknowledgement, which syslog does not
/// have: bytes accepted by the kernel are lost if the receiver dies before reading them, and
/// the sender only learns about it on a later write. To narrow that window the client checks,
/// before writing a batch on an existing connection, whether the receiver has closed it
/// (a non-blocking read that sees end-of-stream, a reset or a TLS `close_notify`) and
/// reconnects first. UDP gives no guarantee at all: `Ok` means the datagram left this host.
pub struct SyslogClient {
    config: SyslogConfig,
    host: String,
    port: u16,
    tls: Option<TlsSetup>,
    conn: Mutex<Option<Connection>>,
}

struct TlsSetup {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for SyslogClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogClient")
            .field("address", &self.config.address)
            .field("transport", &self.config.transport)
            .field("framing", &self.config.framing)
            .finish_non_exhaustive()
    }
}

impl SyslogClient {
    /// Validates the config and loads the TLS certificates; does not connect yet.
    pub fn new(config: SyslogConfig) -> Result<Self, Error> {
        config.validate()?;
        let (host, port) = split_host_port(&config.address)?;
        let tls = if config.transport == Transport::Tls {
            let settings = config.tls.clone().unwrap_or_default();
            let client_config = tls::client_config(&settings)?;
            let name = settings.server_name.as_deref().unwrap_or(&host);
            Some(TlsSetup {
                connector: TlsConnector::from(client_config),
                server_name: tls::server_name(name)?,
            })
        } else {
            None
        };
        Ok(Self {
            config,
            host,
            port,
            tls,
            conn: Mutex::new(None),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &SyslogConfig {
        &self.config
    }

    /// Frames and writes each message (already a full RFC 5424 message, unframed), in order.
    ///
    /// Returns one result per message: `Ok` = written and flushed to the socket; a retryable
    /// `Err` for messages not written (connection broken / timeout; the next call reconnects).
    /// Over plain TCP consecutive frames are written together, up to 64 KiB at a time; a
    /// frame the socket took whole is `Ok` even when a later one of the same write fails.
    /// Messages that were counted `Ok` are never written again by the client. If connecting
    /// fails, every message gets the connect error (retryable unless the TLS certificate
    /// was refused).
    pub async fn send(&self, messages: &[&[u8]]) -> Vec<Result<(), Error>> {
        if messages.is_empty() {
            return Vec::new();
        }
        let mut guard = self.conn.lock().await;
        if guard.as_mut().is_some_and(Connection::peer_closed) {
            tracing::debug!(address = %self.config.address, "syslog: receiver closed the connection; reconnecting");
            *guard = None;
        }
        let conn = match guard.as_mut() {
            Some(conn) => conn,
            None => match self.connect().await {
                Ok(conn) => guard.insert(conn),
                Err(err) => {
                    let mut results: Vec<Result<(), Error>> = messages
                        .iter()
                        .skip(1)
                        .map(|_| Err(replicate(&err)))
                        .collect();
                    results.insert(0, Err(err));
                    return results;
                }
            },
        };

        let write_timeout = self.config.write_timeout;
        let total = messages.len();
        // Over plain TCP consecutive frames go out together, up to `WRITE_CHUNK_BYTES` (a
        // few syscalls and one timeout per chunk, not per message), and the bytes written are
        // counted, so every frame written whole is still reported `Ok` when a later part of
        // the chunk fails. UDP sends one datagram per message; TLS writes and flushes one
        // message at a time (what it buffered is not on the socket until flushed).
        let coalesce = self.config.transport == Transport::Tcp;
        let mut results = Vec::with_capacity(total);
        let mut chunk = Vec::new();
        // End offset in `chunk` of each message's frame.
        let mut ends = Vec::new();
        let mut first = 0;
        while first < total {
            chunk.clear();
            ends.clear();
            while first + ends.len() < total {
                let bytes = frame(
                    self.config.transport,
                    self.config.framing,
                    messages[first + ends.len()],
                );
                if !ends.is_empty() && chunk.len() + bytes.len() > WRITE_CHUNK_BYTES {
                    break;
                }
                chunk.extend_from_slice(&bytes);
                ends.push(chunk.len());
                if !coalesce {
                    break;
                }
            }
            let mut written = 0;
            let outcome =
                tokio::time::timeout(write_timeout, conn.write_chunk(&chunk, &mut written)).await;
            // Frames written whole are delivered, whatever happened after them.
            let whole = ends.iter().take_while(|&&end| end <= written).count();
            results.extend((0..whole).map(|_| Ok(())));
            let failure = match outcome {
                Ok(Ok(())) => {
                    first += ends.len();
                    continue;
                }
                Ok(Err(e)) => Error::unavailable(format!(
                    "syslog: writing message {} of {total} to {} failed; the connection was dropped and is reopened on the next send",
                    first + whole + 1,
                    self.config.address
                ))
                .with_source(e),
                Err(_) => Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "syslog: writing message {} of {total} to {} timed out after {}; the connection was dropped and is reopened on the next send",
                        first + whole + 1,
                        self.config.address,
                        vowguard_core::duration::format(self.config.write_timeout)
                    ),
                ),
            };
            let failed = first + whole;
            tracing::warn!(address = %self.config.address, error = %failure, "syslog: write failed");
            *guard = None;
            results.extend((failed + 1..total).map(|_| {
                Err(Error::new(
                    failure.kind(),
                    format!(
                        "syslog: not sent because an earlier message of the batch failed: {failure}"
                    ),
                ))
            }));
            results.insert(failed, Err(failure));
            return results;
        }
        results
    }

    /// Connects (TCP/TLS handshake) to check reachability; for UDP resolves the address.
    ///
    /// A working connection is kept for the next [`send`](Self::send).
    pub async fn healthcheck(&self) -> Result<(), Error> {
        if self.config.transport == Transport::Udp {
            return self.with_connect_timeout(self.resolve()).await.map(drop);
        }
        let mut guard = self.conn.lock().await;
        if guard.as_mut().is_some_and(|c| !c.peer_closed()) {
            return Ok(());
        }
        *guard = Some(self.connect().await?);
        Ok(())
    }

    /// Drops the current connection, if any (the next send reconnects).
    pub async fn close(&self) {
        if let Some(Connection::Tls(mut stream)) = self.conn.lock().await.take() {
            let deadline = self.config.write_timeout;
            let _ = tokio::time::timeout(deadline, stream.shutdown()).await;
        }
    }

    async fn with_connect_timeout<T>(
        &self,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "syslog: connecting to {} ({}) timed out after {}",
                    self.config.address,
                    self.config.transport.as_str(),
                    vowguard_core::duration::format(timeout)
                ),
            )),
        }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, Error> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                Error::unavailable(format!("syslog: cannot resolve {}", self.config.address))
                    .with_source(e)
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Error::unavailable(format!(
                "syslog: {} resolves to no address",
                self.config.address
            )));
        }
        Ok(addrs)
    }

    async fn connect(&self) -> Result<Connection, Error> {
        self.with_connect_timeout(self.connect_inner()).await
    }

    async fn connect_inner(&self) -> Result<Connection, Error> {
        let addrs = self.resolve().await?;
        let address = &self.config.address;
        if self.config.transport == Transport::Udp {
            let target = addrs[0];
            let local: SocketAddr = if target.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await.map_err(|e| {
                Error::unavailable(format!("syslog: cannot open a UDP socket for {address}"))
                    .with_source(e)
            })?;
            socket.connect(target).await.map_err(|e| {
                Error::unavailable(format!("syslog: cannot reach {address} over UDP"))
                    .with_source(e)
            })?;
            return Ok(Connection::Udp(socket));
        }
        let mut last_err = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some(stream) = stream else {
            let mut err = Error::unavailable(format!(
                "syslog: cannot connect to {address} over {}",
                self.config.transport.as_str()
            ));
            if let Some(e) = last_err {
                err = err.with_source(e);
            }
            return Err(err);
        };
        match &self.tls {
            None => Ok(Connection::Tcp(stream)),
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(tls.server_name.clone(), stream)
                    .await
                    .map_err(|e| tls::handshake_error(address, e))?;
                Ok(Connection::Tls(Box::new(stream)))
            }
        }
    }
}

/// The same error again (without its source, whose text is kept in the message).
fn replicate(err: &Error) -> Error {
    Error::new(err.kind(), err.to_string())
}

impl Connection {
    /// Writes `bytes` (whole frames), counting in `written` the bytes the socket took, so a
    /// caller that gives up (timeout) still knows which frames went out whole. TLS and UDP
    /// count all or nothing.
    async fn write_chunk(&mut self, bytes: &[u8], written: &mut usize) -> io::Result<()> {
        if let Self::Tcp(stream) = self {
            while *written < bytes.len() {
                let n = stream.write(&bytes[*written..]).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the connection took no more bytes",
                    ));
                }
                *written += n;
            }
            return Ok(());
        }
        self.write_frame(bytes).await?;
        *written = bytes.len();
        Ok(())
    }

    async fn write_frame(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Udp(socket) => {
                let n = socket.send(bytes).await?;
                if n != bytes.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "datagram was sent only in part",
                    ));
                }
                Ok(())
            }
            Self::Tcp(stream) => stream.write_all(bytes).await,
            Self::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    /// Whether the receiver has closed (or reset) the connection, checked without blocking.
    ///
    /// Syslog receivers never send application data, so anything readable is either the end
    /// of the stream, an error, or TLS housekeeping (session tickets, `close_notify`).
    fn peer_closed(&mut self) -> bool {
        match self {
            Self::Udp(_) => false,
            Self::Tcp(stream) => {
                let sock = socket2::SockRef::from(&*stream);
                let mut buf = [0u8; 1024];
                loop {
                    match (&*sock).read(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return true,
                    }
                }
            }
            Self::Tls(stream) => {
                let (tcp, session) = stream.get_mut();
                let sock = socket2::SockRef::from(&*tcp);
                let mut buf = [0u8; 4096];
                loop {
                    let n = match (&*sock).read(&mut buf) {
                        Ok(0) => return true,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return true,
                    };
                    let mut input = &buf[..n];
                    while !input.is_empty() {
                        if session.read_tls(&mut input).is_err()
                            || session.process_new_packets().is_err()
                        {
                            return true;
                        }
                        let mut plain = [0u8; 1024];
                        loop {
                            match session.reader().read(&mut plain) {
                                Ok(0) => return true,
                                Ok(_) => continue,
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(_) => return true,
                            }
                        }
                    }
                }
            }
        }
    }
}
