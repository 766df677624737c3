//! A private `nats-server -js` per test: its own free port and store directory in a temp dir,
//! so tests are isolated, can restart or kill it, and never touch a shared server. The
//! binary is `$VOWGUARD_NATS_SERVER`, the private copy `cargo xtask prerequisites` unpacks,
//! or the machine's Debian `nats-server`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server -js`, killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VOWGUARD_NATS_SERVER") {
        return path.into();
    }
    let private = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-prereqs/nats/usr/sbin/nats-server");
    if private.is_file() {
        return private;
    }
    for candidate in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in path.split(':') {
            let p = PathBuf::from(dir).join("nats-server");
            if p.exists() {
                return p;
            }
        }
    }
    panic!("nats-server not found: run `cargo xtask prerequisites` (Debian package nats-server)");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl NatsServer {
    /// Starts a server with JetStream; `args` are extra flags (e.g. `--user u --pass p`).
    pub fn start(args: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        // Ready when it accepts connections (a bounded readiness wait, not a timing assertion).
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no flush beyond what the server already wrote.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
