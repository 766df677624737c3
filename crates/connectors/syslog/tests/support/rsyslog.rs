//! A real receiver: Debian's `rsyslogd`, started per test with a private config.
//!
//! [`ensure_rsyslogd`] finds `rsyslogd` (and the `gtls` driver of `rsyslog-gnutls`); when
//! they are missing and the tests run as root it installs them with
//! `apt-get update && apt-get install -y rsyslog rsyslog-gnutls`, printing what it does.
//! If that is impossible the test FAILS with a message saying what to install.
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
    binary: PathBuf,
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `apt-get update && apt-get install -y rsyslog rsyslog-gnutls`, serialised across
/// test processes (nextest runs each test in its own process) with a lock file.
fn apt_install() -> Result<(), String> {
    let lock = std::env::temp_dir().join("vowguard-rsyslog-install.lock");
    let started = Instant::now();
    loop {
        if find_in_path("rsyslogd").is_some() && gtls_driver_present() {
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(_) if started.elapsed() > Duration::from_secs(600) => {
                let _ = std::fs::remove_file(&lock);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let result = (|| {
        for args in [
            vec!["update"],
            vec![
                "install",
                "-y",
                "--no-install-recommends",
                "rsyslog",
                "rsyslog-gnutls",
            ],
        ] {
            eprintln!("rsyslog test helper: running apt-get {}", args.join(" "));
            let status = Command::new("apt-get")
                .args(&args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run apt-get: {e}"))?;
            if !status.success() {
                return Err(format!("apt-get {} failed with {status}", args.join(" ")));
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&lock);
    result
}

/// The path of `rsyslogd` with the gtls driver available, installing them if needed.
pub fn ensure_rsyslogd() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(bin) = find_in_path("rsyslogd").filter(|_| gtls_driver_present()) {
                return bin;
            }
            if !is_root() {
                panic!(
                    "rsyslogd (with the gtls driver) is not installed and these tests are not running as root, so they cannot install it: run `apt-get install -y rsyslog rsyslog-gnutls`"
                );
            }
            eprintln!("rsyslog test helper: rsyslogd or its gtls driver is missing; installing rsyslog and rsyslog-gnutls");
            if let Err(e) = apt_install() {
                panic!("rsyslogd is needed by this test and could not be installed ({e}); run `apt-get install -y rsyslog rsyslog-gnutls`");
            }
            match find_in_path("rsyslogd").filter(|_| gtls_driver_present()) {
                Some(bin) => bin,
                None => panic!(
                    "apt-get install rsyslog rsyslog-gnutls succeeded but rsyslogd or lmnsd_gtls.so is still missing"
                ),
            }
        })
        .clone()
}

impl Rsyslog {
    /// Starts rsyslogd with `listener` on a free loopback port.
    pub fn start(listener: Listener) -> Rsyslog {
        let binary = ensure_rsyslogd();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let mut rsyslog = Rsyslog {
            child: None,
            port: free_port(),
            output: dir.path().join("received.log"),
            dir,
            listener,
            binary,
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
        let child = Command::new(&self.binary)
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
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
