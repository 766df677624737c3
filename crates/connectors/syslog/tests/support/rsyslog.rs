//! A real receiver: Debian's `rsyslogd`, started per test with a private config.
//!
//! [`ensure_rsyslogd`] finds `rsyslogd` with the `gtls` driver of `rsyslog-gnutls`: first a
//! private copy (`$VOWGUARD_RSYSLOG_ROOT`, else `<workspace>/target/test-prereqs/rsyslog`,
//! both unpacked there by `cargo xtask prerequisites` with `apt-get download` + `dpkg -x`),
//! then the machine's. It never installs anything system-wide (apt could remove the
//! machine's syslog daemon to do it): when neither exists the test FAILS saying to run
//! `cargo xtask prerequisites`.
//!
//! [`Rsyslog::start`] writes a config into a temp dir (private work directory and pid file,
//! one `imtcp` listener on a free loopback port, plain or TLS with `gtls`, bound to a ruleset
//! whose only action is `omfile` writing `%rawmsg%` per line), runs
//! `rsyslogd -n -f <conf> -i <pidfile>`, waits until the port accepts connections and kills
//! the daemon on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the listener speaks.
#[derive(Clone, Debug)]
pub enum Listener {
    /// Plain TCP; rsyslog detects octet counting by the leading digit.
    Tcp,
    /// TLS with the `gtls` driver (anonymous client auth) and these PEM files.
    Tls {
        /// CA certificate.
        ca_file: PathBuf,
        /// Server certificate.
        cert_file: PathBuf,
        /// Server key.
        key_file: PathBuf,
    },
}

/// A running rsyslogd.
pub struct Rsyslog {
    child: Option<Child>,
    /// The loopback port of the listener.
    pub port: u16,
    /// Everything rsyslog received, one `%rawmsg%` per line.
    pub output: PathBuf,
    dir: tempfile::TempDir,
    listener: Listener,
    installation: Installation,
}

/// A free loopback TCP port (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn gtls_driver_present() -> bool {
    let roots = ["/usr/lib", "/usr/lib64", "/lib"];
    roots.iter().any(|root| {
        std::fs::read_dir(root).ok().is_some_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("rsyslog/lmnsd_gtls.so").is_file())
                || Path::new(root).join("rsyslog/lmnsd_gtls.so").is_file()
        })
    })
}

/// An rsyslogd to run: the binary and, for a private copy, where its modules and
/// libraries are.
#[derive(Clone, Debug)]
pub struct Installation {
    /// `rsyslogd`.
    pub binary: PathBuf,
    /// `-M`: the module directory (a private copy only).
    module_dir: Option<PathBuf>,
    /// `LD_LIBRARY_PATH`: the libraries unpacked with it (a private copy only).
    lib_dir: Option<PathBuf>,
}

/// The private copy `cargo xtask prerequisites` unpacks, when present.
fn private_installation() -> Option<Installation> {
    let root = std::env::var_os("VOWGUARD_RSYSLOG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/test-prereqs/rsyslog")
        });
    let binary = root.join("usr/sbin/rsyslogd");
    if !binary.is_file() {
        return None;
    }
    let lib_dir = std::fs::read_dir(root.join("usr/lib"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("rsyslog/lmnsd_gtls.so").is_file())?;
    Some(Installation {
        binary,
        module_dir: Some(lib_dir.join("rsyslog")),
        lib_dir: Some(lib_dir),
    })
}

/// The `rsyslogd` to use, with the gtls driver available.
pub fn ensure_rsyslogd() -> Installation {
    static FOUND: OnceLock<Installation> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(private) = private_installation() {
                return private;
            }
            if let Some(binary) = find_in_path("rsyslogd").filter(|_| gtls_driver_present()) {
                return Installation {
                    binary,
                    module_dir: None,
                    lib_dir: None,
                };
            }
            panic!(
                "these tests need rsyslogd with its gtls driver: run `cargo xtask prerequisites` \
                 (unpacks Debian's rsyslog and rsyslog-gnutls into target/test-prereqs without \
                 touching system packages), or set VOWGUARD_RSYSLOG_ROOT to such a directory"
            )
        })
        .clone()
}

impl Rsyslog {
    /// Starts rsyslogd with `listener` on a free loopback port.
    pub fn start(listener: Listener) -> Rsyslog {
        let installation = ensure_rsyslogd();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let mut rsyslog = Rsyslog {
            child: None,
            port: free_port(),
            output: dir.path().join("received.log"),
            dir,
            listener,
            installation,
        };
        rsyslog.write_config();
        rsyslog.spawn();
        rsyslog
    }

    fn write_config(&self) {
        let dir = self.dir.path();
        let mut global = format!(
            "global(workDirectory=\"{}\" parser.escapeControlCharacterTab=\"off\"",
            dir.join("work").display()
        );
        let module = match &self.listener {
            Listener::Tcp => "module(load=\"imtcp\")".to_owned(),
            Listener::Tls {
                ca_file,
                cert_file,
                key_file,
            } => {
                global.push_str(&format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    ca_file.display(),
                    cert_file.display(),
                    key_file.display()
                ));
                "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")".to_owned()
            }
        };
        global.push(')');
        let conf = format!(
            "{global}\n{module}\n\
             template(name=\"vgRaw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"vgRemote\") {{\n  action(type=\"omfile\" file=\"{}\" template=\"vgRaw\")\n}}\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"vgRemote\")\n",
            self.output.display(),
            self.port
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rsyslogd.stderr"))
            .unwrap();
        let mut command = Command::new(&self.installation.binary);
        if let Some(module_dir) = &self.installation.module_dir {
            command.arg("-M").arg(module_dir);
        }
        if let Some(lib_dir) = &self.installation.lib_dir {
            command.env("LD_LIBRARY_PATH", lib_dir);
        }
        let child = command
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.installation.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "rsyslogd exited with {status} before listening:\n{}",
                    self.diagnostics()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen on port {} within 10 s:\n{}",
                self.port,
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// rsyslogd's own output and config, for failure messages.
    pub fn diagnostics(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- rsyslog.conf\n{}--- rsyslogd output\n{}",
            read("rsyslog.conf"),
            read("rsyslogd.stderr")
        )
    }

    /// Stops rsyslogd: `SIGKILL` when `hard` (a crash), else `SIGTERM` (a clean shutdown).
    pub fn stop(&mut self, hard: bool) {
        if let Some(mut child) = self.child.take() {
            if hard {
                let _ = child.kill();
            } else {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
            }
            let _ = child.wait();
        }
    }

    /// Starts rsyslogd again on the same port, appending to the same output file.
    pub fn restart(&mut self) {
        self.stop(false);
        self.spawn();
    }

    /// The lines received so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits (at most `limit`) until `done` holds for the received lines, and returns them.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines();
            if done(&lines) || Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
