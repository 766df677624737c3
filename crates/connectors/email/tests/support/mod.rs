//! A real SMTP server for the integration tests: Python's aiosmtpd running
//! `tests/support/smtp_server.py`, plus a throw-away CA and server certificate made with
//! rcgen.
//!
//! The interpreter is `$VOWGUARD_PYTHON`, else the virtual environment
//! `<workspace>/target/test-prereqs/venv` that `cargo xtask prerequisites` creates, else
//! `python3`. Nothing is pip-installed into a system Python (Debian's is externally
//! managed, PEP 668); without aiosmtpd the tests FAIL (they are never skipped) saying to
//! run `cargo xtask prerequisites`. Each [`SmtpServer`] is killed when dropped, and also exits by itself
//! when its standard input (held by the test process) closes.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde::Deserialize;

/// The AUTH user the servers accept with `auth`.
pub const USER: &str = "vowguard-test";
/// The AUTH password the servers accept with `auth`.
pub const PASSWORD: &str = "correct horse battery staple";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");

/// The Python interpreter with aiosmtpd (see the module docs).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("VOWGUARD_PYTHON") {
        return PathBuf::from(python);
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/test-prereqs/venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Makes sure [`python`] imports aiosmtpd; panics with instructions when it does not.
pub fn ensure_aiosmtpd() {
    static READY: OnceLock<bool> = OnceLock::new();
    if !*READY.get_or_init(imports) {
        panic!(
            "the email integration tests need Python 3 with the aiosmtpd package (a real SMTP \
             server), and {} cannot import it: run `cargo xtask prerequisites` (a virtual \
             environment under target/test-prereqs), or set VOWGUARD_PYTHON to an interpreter \
             that has it",
            python().display()
        );
    }
}

fn imports() -> bool {
    Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A test CA and a server certificate for `localhost` and `127.0.0.1` signed by it, as
/// PEM files in a temporary directory.
pub struct Certs {
    _dir: tempfile::TempDir,
    /// The CA certificate (what `ca_file` points at).
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl Certs {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "vowguard test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = server_params.signed_by(&server_key, &ca).unwrap();

        let write = |name: &str, contents: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        Self {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", server.pem()),
            key: write("server.key", server_key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// How the test server secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS; STARTTLS not offered.
    Plain,
    /// STARTTLS offered and required.
    Starttls,
    /// Implicit TLS.
    Tls,
}

/// One message as the server received and Python's email package parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO`s (the envelope recipients).
    pub rcpt_tos: Vec<String>,
    /// Whether the session was encrypted.
    pub tls: bool,
    /// Whether the client authenticated.
    pub authenticated: bool,
    /// The AUTH login used.
    pub login: Option<String>,
    /// Decoded headers in order.
    pub headers: Vec<(String, String)>,
    /// Top-level content type.
    pub content_type: String,
    /// Whether the message is multipart.
    pub is_multipart: bool,
    /// Parser complaints (should be none).
    pub defects: Vec<String>,
    /// Leaf parts.
    pub parts: Vec<Part>,
    /// The raw message as received (filled in from the `.eml` file).
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// One leaf MIME part.
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// e.g. `text/plain`.
    pub content_type: String,
    /// e.g. `utf-8`.
    pub charset: Option<String>,
    /// The decoded content.
    pub content: String,
}

impl Received {
    /// Every value of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of header `name`; panics when absent or repeated.
    pub fn header(&self, name: &str) -> &str {
        let all = self.header_all(name);
        assert_eq!(all.len(), 1, "header {name}: {:?}", self.headers);
        all[0]
    }

    /// The content of the leaf part with `content_type`.
    pub fn part(&self, content_type: &str) -> &str {
        let found: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| p.content_type == content_type)
            .collect();
        assert_eq!(found.len(), 1, "{content_type} parts: {:?}", self.parts);
        &found[0].content
    }
}

/// A running aiosmtpd server; killed on drop.
pub struct SmtpServer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts a server. `certs` is required for [`Mode::Starttls`] and [`Mode::Tls`];
    /// `auth` makes it require AUTH with [`USER`] / [`PASSWORD`].
    pub fn start(mode: Mode, certs: Option<&Certs>, auth: bool) -> Self {
        ensure_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(SCRIPT)
            .arg("--dir")
            .arg(dir.path())
            .arg("--mode")
            .arg(match mode {
                Mode::Plain => "plain",
                Mode::Starttls => "starttls",
                Mode::Tls => "tls",
            });
        if let Some(certs) = certs {
            cmd.arg("--cert")
                .arg(&certs.cert)
                .arg("--key")
                .arg(&certs.key);
        }
        if auth {
            cmd.arg("--auth").arg(format!("{USER}:{PASSWORD}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("cannot start python3 (needed for the SMTP test server)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Self {
            child,
            port: 0,
            dir,
        };
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        match line.trim().strip_prefix("READY ") {
            Some(port) => server.port = port.parse().unwrap(),
            None => panic!(
                "the SMTP test server did not start (said {line:?}); its log:\n{}",
                server.log()
            ),
        }
        server
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != "json" {
                    return None;
                }
                let n = path.file_stem()?.to_str()?.parse().ok()?;
                Some((n, path))
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .map(|(_, path)| {
                let mut received: Received =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                received.raw = std::fs::read(path.with_extension("eml")).unwrap();
                received
            })
            .collect()
    }

    /// Where the server writes messages.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
