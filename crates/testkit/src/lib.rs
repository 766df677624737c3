//! Shared behaviour suites for vowguard connectors, the way OpenDAL runs one suite against
//! every service.
//!
//! * [`sink_suite::run`]: every HTTP sink, driven through the real pipeline (batching, the
//!   shared retry policy, dead letters) against a wiremock server.
//! * [`notifier_suite::run`]: every HTTP notifier, driven through the shared retry policy.
//! * [`enricher_suite::run`]: every HTTP enricher, driven through the real pipeline.
//! * [`nats_sink_suite::run`]: every NATS sink, through the real pipeline against a private
//!   `nats-server -js` (JetStream PubAck and dedup, core NATS, restarts, credentials).
//! * [`ticket_suite::run`]: every ticket connector, against a simulated vendor with
//!   injected faults (idempotent open, restart, hostile text, credential hygiene).
//! * [`storage_suite::dead_letters`] and [`storage_suite::notifications`]: every
//!   dead-letter and notification storage (the file defaults, the in-memory ones, a host's
//!   own), directly and through the real pipeline.
//! * [`storage_suite::incidents`] and [`storage_suite::breaches`]: every incident storage of
//!   the response engine and every breach-register storage (the file and report-store
//!   defaults, the in-memory ones, a host's own), directly, through the engine and through
//!   the register.
//!
//! A connector implements [`sink_suite::HttpSinkHarness`] or
//! [`notifier_suite::HttpNotifierHarness`] (how to build it, what its vendor answers) and calls
//! the suite from one test. [`fixtures`] has events and alerts with hostile text;
//! [`LogCapture`] records every log line so tests can prove secrets never appear.

pub mod enricher_suite;
pub mod fixtures;
pub mod nats;
pub mod nats_sink_suite;
pub mod notifier_suite;
pub mod receivers;
pub mod sink_suite;
pub mod storage_suite;
pub mod stream_sink_suite;
pub mod ticket_suite;

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Captures every `tracing` log line (all levels) on the current thread while alive.
///
/// Use it with `#[tokio::test]` (current-thread runtime) so spawned tasks log through it too.
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Starts capturing at TRACE level.
    pub fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().expect("log buffer poisoned")).into_owned()
    }
}

/// A loopback port where connections are refused, reserved for as long as the value lives.
///
/// The socket is bound but never listens: a connection attempt is refused at once, and no
/// other test can take the port meanwhile. (Binding a listener, reading its port and
/// dropping it races with other tests that ask for a free port: one of them may get it and
/// start listening, and the "unreachable" receiver then answers.)
#[derive(Debug)]
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    address: std::net::SocketAddr,
}

impl RefusedPort {
    /// Reserves a port on 127.0.0.1.
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("create a TCP socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind 127.0.0.1:0");
        let address = socket.local_addr().expect("bound address");
        Self {
            _socket: socket,
            address,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }
}

impl Default for RefusedPort {
    fn default() -> Self {
        Self::new()
    }
}
