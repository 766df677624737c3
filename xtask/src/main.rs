//! Project automation (the rust-analyzer xtask convention): `cargo xtask <command>`.
//!
//! * `ci`: everything CI checks, in order: formatting, clippy with `-D warnings`, the test
//!   prerequisites (rsyslog, aiosmtpd, installed privately under `target/test-prereqs`,
//!   never touching system packages), every test of every crate with all features,
//!   doc tests, `cargo doc` with warnings denied, runs of the demo and of the embedding
//!   example, the feature-isolation checks (a Splunk-only runtime; every crate building
//!   alone with the tokio features it asks for), one `base64` in the lock file, packaging
//!   of every publishable crate, and cargo-deny (bans, licenses, sources).
//! * `demo`: the wedding-day demo against local mocks.
//! * `prerequisites`: installs the test prerequisites privately (see [`prerequisites`]).
//! * `bench`: the benchmarks (release build), figures printed for BENCHMARKS.md; `bench
//!   compare` runs vowguard, a bare reference forwarder and syslog-ng side by side; `bench
//!   scenarios` the issue-11 scenarios (HTTP intake, five sinks, HEC acks, black-holed
//!   enrichers, latency, CPU at steady rates, peak RSS).
//! * `fuzz [target] [seconds]`: the cargo-fuzz targets in `fuzz/` (see `fuzz.rs`).
#![allow(clippy::print_stdout)]

mod bench;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => cargo(&["run", "--example", "wedding_day"]),
        Some("prerequisites") => prerequisites().map(|env| {
            println!("export these to run the syslog and email tests with plain `cargo test`:");
            for (name, value) in env {
                println!("export {name}={value}");
            }
        }),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | demo | prerequisites | bench [encoders|pipeline|notify|http|webhooks|journal|compare|scenarios] | fuzz [target] [seconds]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result = std::result::Result<(), String>;

fn run(program: &str, args: &[&str]) -> Result {
    println!("\n==> {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn cargo(args: &[&str]) -> Result {
    run(
        &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        args,
    )
}

/// `cargo` with extra environment variables (the test prerequisites' locations).
fn cargo_with_env(env: &[(String, String)], args: &[&str]) -> Result {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("\n==> {program} {}", args.join(" "));
    let status = Command::new(&program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ci() -> Result {
    let mut stages = Stages::default();
    let result = ci_stages(&mut stages);
    stages.print();
    result?;
    println!("\nxtask ci: all checks passed");
    Ok(())
}

/// Every CI stage in order, each timed (CI has a time budget; the summary printed at the
/// end shows where it goes).
fn ci_stages(stages: &mut Stages) -> Result {
    stages.run("fmt", || cargo(&["fmt", "--all", "--", "--check"]))?;
    stages.run("clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    let env = stages.run("prerequisites", prerequisites)?;
    stages.run("tests", || {
        if succeeds("cargo", &["nextest", "--version"]) {
            cargo_with_env(
                &env,
                &[
                    "nextest",
                    "run",
                    "--workspace",
                    "--all-features",
                    "--locked",
                    "--no-fail-fast",
                ],
            )
        } else {
            cargo_with_env(
                &env,
                &[
                    "test",
                    "--workspace",
                    "--all-features",
                    "--locked",
                    "--no-fail-fast",
                ],
            )
        }
    })?;
    stages.run("doc tests", || {
        cargo_with_env(
            &env,
            &["test", "--workspace", "--all-features", "--locked", "--doc"],
        )
    })?;
    // Docs build clean: broken intra-doc links, bad code blocks and missing docs fail.
    stages.run("docs", || {
        cargo_with_env(
            &[("RUSTDOCFLAGS".to_owned(), "-D warnings".to_owned())],
            &[
                "doc",
                "--workspace",
                "--no-deps",
                "--all-features",
                "--locked",
            ],
        )
    })?;
    // README command 1 must keep working: run the demo end to end (local mocks only).
    stages.run("demo", || {
        cargo(&["run", "--locked", "--example", "wedding_day"])
    })?;
    // A host service embedding the library (Splunk + Slack + router + its own hook).
    stages.run("embed example", || {
        cargo(&["run", "--locked", "--example", "embed"])
    })?;
    stages.run("feature isolation", feature_isolation)?;
    stages.run("each crate alone", each_crate_builds_alone)?;
    stages.run("one base64", one_base64)?;
    stages.run("package", package)?;
    stages.run("fuzz", || {
        fuzz::run(fuzz::TARGETS, fuzz::CI_SECONDS, Some(fuzz::CI_SEED))
    })?;
    stages.run("cargo deny", || {
        if !succeeds("cargo", &["deny", "--version"]) {
            cargo(&["install", "--locked", "cargo-deny"])?;
        }
        // The RustSec advisory database cannot be fetched from CI's network, so the
        // advisories check is left out here; README says how to run it where it can be.
        cargo(&["deny", "check", "bans", "licenses", "sources"])
    })
}

/// The wall-clock time of each CI stage, printed as a table at the end of `xtask ci`.
#[derive(Default)]
struct Stages {
    done: Vec<(&'static str, std::time::Duration, bool)>,
    started: Option<std::time::Instant>,
}

impl Stages {
    fn run<T>(
        &mut self,
        name: &'static str,
        stage: impl FnOnce() -> std::result::Result<T, String>,
    ) -> std::result::Result<T, String> {
        let started = std::time::Instant::now();
        self.started.get_or_insert(started);
        let result = stage();
        self.done.push((name, started.elapsed(), result.is_ok()));
        result
    }

    fn print(&self) {
        println!("\n==> xtask ci stages (wall clock)");
        for (name, took, ok) in &self.done {
            let status = if *ok { "ok" } else { "FAILED" };
            println!("{name:>20}  {:>7.1} s  {status}", took.as_secs_f64());
        }
        if let Some(started) = self.started {
            println!(
                "{:>20}  {:>7.1} s",
                "total",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Where the test prerequisites are installed, privately: `<workspace>/target/test-prereqs`.
/// The syslog and email test helpers look here too, so `cargo test` finds them after one
/// `cargo xtask prerequisites`.
fn prereqs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .join("target")
        .join("test-prereqs")
}

/// What the test suites need from the machine: a real syslog daemon (rsyslog with its gtls
/// driver), a real SMTP server (Python's aiosmtpd) and NATS with JetStream (`nats-server`). Nothing is installed system-wide and
/// no system package is ever removed or replaced:
///
/// * rsyslog: the machine's `rsyslogd` when it has the gtls driver; otherwise Debian's
///   `rsyslog`, `rsyslog-gnutls` and the libraries they need that the machine lacks are
///   fetched with `apt-get download` and unpacked with `dpkg -x` into
///   `target/test-prereqs/rsyslog` (a machine running syslog-ng keeps it).
/// * aiosmtpd: the machine's `python3` when it imports aiosmtpd; otherwise a virtual
///   environment `target/test-prereqs/venv` (works with a Debian-managed, PEP 668 Python).
///
/// Returns the environment that points the tests at them.
fn prerequisites() -> std::result::Result<Vec<(String, String)>, String> {
    let dir = prereqs_dir();
    let mut env = Vec::new();
    if let Some(root) = private_rsyslog(&dir)? {
        env.push((
            "VOWGUARD_RSYSLOG_ROOT".to_owned(),
            root.display().to_string(),
        ));
    }
    if let Some(python) = private_aiosmtpd(&dir)? {
        env.push(("VOWGUARD_PYTHON".to_owned(), python.display().to_string()));
    }
    if let Some(nats) = private_nats_server(&dir)? {
        env.push((
            "VOWGUARD_NATS_SERVER".to_owned(),
            nats.display().to_string(),
        ));
    }
    if let Some(chromium) = private_chromium(&dir)? {
        env.push((
            "VOWGUARD_CHROMIUM".to_owned(),
            chromium.display().to_string(),
        ));
    }
    if !succeeds("pg_isready", &["-q", "-h", "127.0.0.1", "-p", "5432"]) {
        // The store tests need PostgreSQL on 127.0.0.1:5432; start the machine's cluster
        // when it has one (the tests fail with a clear message otherwise).
        let _ = run(
            "sh",
            &[
                "-c",
                "pg_ctlcluster --help >/dev/null 2>&1 && pg_lsclusters -h | awk '{print $1, $2}' | head -1 | xargs -r pg_ctlcluster start",
            ],
        );
    }
    for (name, value) in &env {
        println!("test prerequisite: {name}={value}");
    }
    Ok(env)
}

fn system_rsyslog_with_gtls() -> bool {
    succeeds(
        "sh",
        &["-c", "command -v rsyslogd || test -x /usr/sbin/rsyslogd"],
    ) && succeeds(
        "sh",
        &[
            "-c",
            "ls /usr/lib/*/rsyslog/lmnsd_gtls.so /usr/lib/rsyslog/lmnsd_gtls.so 2>/dev/null | grep -q .",
        ],
    )
}

fn has_private_rsyslog(root: &Path) -> bool {
    root.join("usr/sbin/rsyslogd").is_file()
        && std::fs::read_dir(root.join("usr/lib")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("rsyslog/lmnsd_gtls.so").is_file())
        })
}

/// `None` when the machine's rsyslog will do; else the root of the private copy.
fn private_rsyslog(dir: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let root = dir.join("rsyslog");
    if has_private_rsyslog(&root) {
        return Ok(Some(root));
    }
    if system_rsyslog_with_gtls() {
        return Ok(None);
    }
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    // rsyslog, its TLS driver, and the direct dependencies this machine does not have.
    let mut packages = vec!["rsyslog".to_owned(), "rsyslog-gnutls".to_owned()];
    for package in ["rsyslog", "rsyslog-gnutls"] {
        let output = Command::new("apt-cache")
            .args(["depends", "--no-recommends", "--no-suggests", package])
            .output()
            .map_err(|e| format!("cannot run apt-cache: {e}"))?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(dependency) = line.trim().strip_prefix("Depends: ") else {
                continue;
            };
            let dependency = dependency.trim_matches(|c| c == '<' || c == '>');
            let installed = Command::new("dpkg-query")
                .args(["-W", "-f", "${Status}", dependency])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"));
            if !installed && !packages.iter().any(|p| p == dependency) {
                packages.push(dependency.to_owned());
            }
        }
    }
    let download = |packages: &[String]| {
        println!(
            "\n==> (in {}) apt-get download {}",
            debs.display(),
            packages.join(" ")
        );
        Command::new("apt-get")
            .arg("download")
            .args(packages)
            .current_dir(&debs)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download(&packages) {
        // The package lists may be missing (a fresh container): refreshing them changes no
        // installed package.
        run("apt-get", &["update", "-qq"])?;
        if !download(&packages) {
            return Err(format!(
                "apt-get download {} failed; install rsyslog and rsyslog-gnutls yourself, or \
                 point VOWGUARD_RSYSLOG_ROOT at a directory holding usr/sbin/rsyslogd",
                packages.join(" ")
            ));
        }
    }
    for entry in std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "deb") {
            run(
                "dpkg",
                &[
                    "-x",
                    &path.display().to_string(),
                    &root.display().to_string(),
                ],
            )?;
        }
    }
    if !has_private_rsyslog(&root) {
        return Err(format!(
            "unpacked rsyslog into {} but usr/sbin/rsyslogd or its gtls driver is missing",
            root.display()
        ));
    }
    Ok(Some(root))
}

/// NATS with JetStream for the queue backend tests (`crates/jetstream`), which start their
/// own `nats-server -js` on a free port: `None` when the machine has `nats-server`;
/// otherwise Debian's `nats-server` (a static Go binary, no dependencies) is fetched with
/// `apt-get download` and unpacked with `dpkg -x` into `target/test-prereqs/nats`.
fn private_nats_server(dir: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let root = dir.join("nats");
    let binary = root.join("usr/sbin/nats-server");
    if binary.is_file() {
        return Ok(Some(binary));
    }
    if succeeds(
        "sh",
        &[
            "-c",
            "command -v nats-server || test -x /usr/sbin/nats-server",
        ],
    ) {
        return Ok(None);
    }
    let debs = dir.join("nats-debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    let download = || {
        println!("\n==> (in {}) apt-get download nats-server", debs.display());
        Command::new("apt-get")
            .args(["download", "nats-server"])
            .current_dir(&debs)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        run("apt-get", &["update", "-qq"])?;
        if !download() {
            return Err(
                "apt-get download nats-server failed; install nats-server yourself, or \
                        point VOWGUARD_NATS_SERVER at the binary"
                    .to_owned(),
            );
        }
    }
    for entry in std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "deb") {
            run(
                "dpkg",
                &[
                    "-x",
                    &path.display().to_string(),
                    &root.display().to_string(),
                ],
            )?;
        }
    }
    if !binary.is_file() {
        return Err(format!(
            "unpacked nats-server into {} but usr/sbin/nats-server is missing",
            root.display()
        ));
    }
    Ok(Some(binary))
}

/// Headless Chromium for the report screenshot tests: `None` when the machine has
/// `chromium`; otherwise Debian's `chromium` and `chromium-common` plus the direct
/// dependencies the machine lacks are fetched with `apt-get download`, unpacked with
/// `dpkg -x` into `target/test-prereqs/chromium/root`, and started through a wrapper script
/// `target/test-prereqs/chromium/chromium` that sets the library path.
fn private_chromium(dir: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let home = dir.join("chromium");
    let wrapper = home.join("chromium");
    if wrapper.is_file() {
        return Ok(Some(wrapper));
    }
    if succeeds("sh", &["-c", "command -v chromium"]) {
        return Ok(None);
    }
    let debs = home.join("debs");
    let root = home.join("root");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    // The whole dependency closure (not only direct dependencies: chromium's libraries pull
    // in others, e.g. libogg through libvorbis), minus what the machine already has.
    let output = Command::new("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            "chromium",
            "chromium-common",
        ])
        .output()
        .map_err(|e| format!("cannot run apt-cache: {e}"))?;
    let mut candidates: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // Unindented lines name the packages of the closure; `<virtual>` ones have no deb.
        if line.starts_with(' ') || line.starts_with('<') || line.trim().is_empty() {
            continue;
        }
        let name = line.trim().to_owned();
        // Desktop integration is not needed headless.
        if name.starts_with("xdg-") || candidates.contains(&name) {
            continue;
        }
        candidates.push(name);
    }
    let mut packages = vec!["chromium".to_owned(), "chromium-common".to_owned()];
    for dependency in candidates {
        let installed = Command::new("dpkg-query")
            .args(["-W", "-f", "${Status}", &dependency])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"));
        if !installed && !packages.contains(&dependency) {
            packages.push(dependency);
        }
    }
    let download = |packages: &[String]| {
        println!(
            "\n==> (in {}) apt-get download {}",
            debs.display(),
            packages.join(" ")
        );
        Command::new("apt-get")
            .arg("download")
            .args(packages)
            .current_dir(&debs)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download(&packages) {
        run("apt-get", &["update", "-qq"])?;
        if !download(&packages) {
            return Err(format!(
                "apt-get download {} failed; install chromium yourself or point \
                 VOWGUARD_CHROMIUM at a headless Chromium",
                packages.join(" ")
            ));
        }
    }
    for entry in std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "deb") {
            run(
                "dpkg",
                &[
                    "-x",
                    &path.display().to_string(),
                    &root.display().to_string(),
                ],
            )?;
        }
    }
    let binary = root.join("usr/lib/chromium/chromium");
    if !binary.is_file() {
        return Err(format!(
            "unpacked chromium into {} but {} is missing",
            root.display(),
            binary.display()
        ));
    }
    let libs = root.join("usr/lib/x86_64-linux-gnu");
    let script = format!(
        "#!/bin/sh\nexport LD_LIBRARY_PATH=\"{libs}:{libs}/pulseaudio${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\"\nexec \"{binary}\" \"$@\"\n",
        libs = libs.display(),
        binary = binary.display()
    );
    std::fs::write(&wrapper, script)
        .map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
    run("chmod", &["+x", &wrapper.display().to_string()])?;
    let check = Command::new(&wrapper)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wrapper.display()))?;
    if !check.status.success() {
        let _ = std::fs::remove_file(&wrapper);
        return Err(format!(
            "the private chromium does not start: {}",
            String::from_utf8_lossy(&check.stderr).trim()
        ));
    }
    Ok(Some(wrapper))
}

/// `None` when the machine's `python3` imports aiosmtpd; else the private interpreter.
fn private_aiosmtpd(dir: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let venv = dir.join("venv");
    let python = venv.join("bin").join("python");
    let imports = |python: &str| succeeds(python, &["-c", "import aiosmtpd"]);
    if imports(&python.display().to_string()) {
        return Ok(Some(python));
    }
    if imports("python3") {
        return Ok(None);
    }
    run("python3", &["-m", "venv", &venv.display().to_string()])?;
    run(
        &python.display().to_string(),
        &["-m", "pip", "install", "--quiet", "aiosmtpd"],
    )?;
    if !imports(&python.display().to_string()) {
        return Err(format!(
            "installed aiosmtpd into {} but it does not import",
            venv.display()
        ));
    }
    Ok(Some(python))
}

/// A build with only the Splunk connector must not pull any other connector crate in.
fn feature_isolation() -> Result {
    println!("\n==> feature isolation: vowguard-runtime --no-default-features --features splunk");
    let output = Command::new("cargo")
        .args([
            "tree",
            "-p",
            "vowguard-runtime",
            "--no-default-features",
            "--features",
            "splunk",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--locked",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let others = [
        "vowguard-slack",
        "vowguard-elasticsearch",
        "vowguard-datadog",
        "vowguard-arcsight",
        "vowguard-qradar",
        "vowguard-syslog",
        "vowguard-pagerduty",
        "vowguard-teams",
        "vowguard-sms",
        "vowguard-email",
        "vowguard-misp",
        "vowguard-abuseipdb",
        "vowguard-virustotal",
        "vowguard-otx",
        "vowguard-recorded-future",
        "vowguard-threatconnect",
        "vowguard-jira",
        "vowguard-servicenow",
        "vowguard-thehive",
        "vowguard-soar",
    ];
    let leaked: Vec<&str> = others
        .iter()
        .copied()
        .filter(|c| tree.contains(&format!("{c} ")))
        .collect();
    if !leaked.is_empty() {
        return Err(format!(
            "a splunk-only build pulls in {}",
            leaked.join(", ")
        ));
    }
    if !tree.contains("vowguard-splunk ") {
        return Err("a splunk-only build does not contain vowguard-splunk".into());
    }
    cargo(&[
        "check",
        "-p",
        "vowguard-runtime",
        "--no-default-features",
        "--features",
        "splunk",
        "--locked",
    ])?;
    println!("feature isolation ok: only vowguard-splunk is compiled in");
    Ok(())
}

/// The workspace members' package names (from the manifests: xtask has no dependencies).
fn workspace_packages() -> std::result::Result<Vec<(String, bool)>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .ok_or("Cargo.toml has no `members = [...]`")?
        .0;
    let mut packages = Vec::new();
    for member in members.split('"').skip(1).step_by(2) {
        let path = root.join(member).join("Cargo.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| format!("{} has no package name", path.display()))?;
        let publish = !text.lines().any(|l| l.trim() == "publish = false");
        packages.push((name.to_owned(), publish));
    }
    Ok(packages)
}

/// Every crate builds on its own (`cargo check -p <crate>`), so each one asks for every
/// tokio (and other) feature it uses instead of borrowing one a sibling enabled in a
/// whole-workspace build.
fn each_crate_builds_alone() -> Result {
    for (name, _) in workspace_packages()? {
        if name == "xtask" {
            continue;
        }
        cargo(&["check", "-p", &name, "--locked", "--quiet"])?;
    }
    println!("every crate builds alone");
    Ok(())
}

/// One `base64` in the lock file (issue 17). When the ecosystem moves (reqwest, hyper-util
/// and lettre are on 0.23 from reqwest 0.13.5 / hyper-util 0.1.21 / lettre 0.11.23 on,
/// sqlx, async-nats, metrics-exporter-prometheus and wiremock on 0.22), the lock file
/// keeps the releases that agree; this names the crates pulling in a second one.
fn one_base64() -> Result {
    let output = Command::new("cargo")
        .args([
            "tree",
            "--workspace",
            "--locked",
            "-e",
            "normal,build,dev",
            "-i",
            "base64",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // `-i base64` is ambiguous when two versions are in the lock file.
        let text = Command::new("cargo")
            .args([
                "tree",
                "--workspace",
                "--locked",
                "-d",
                "-e",
                "normal,build,dev",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "more than one base64 in the lock file ({}); `cargo tree -d` says:\n{text}",
            stderr.trim()
        ));
    }
    println!("one base64 in the lock file");
    Ok(())
}

/// Packages every publishable crate (everything but `publish = false`): manifest
/// metadata, path dependencies with versions, the files that go into each `.crate`.
///
/// `--workspace` packages the crates in dependency order and resolves their dependencies
/// on each other against a temporary local registry of the crates just packaged, so crates
/// whose path dependencies are not on crates.io package too (a per-crate
/// `cargo publish --dry-run` fails for every crate that depends on another vowguard crate:
/// it resolves e.g. `vowguard-core 0.1.0` against crates.io). `--no-verify` skips compiling every packaged
/// crate again from scratch (the tests above build the same sources); `--offline` keeps it
/// to the local registry cache, which the builds above filled; `--allow-dirty` packages the
/// working tree as it is (what CI checks is the packaging, not the commit state).
fn package() -> Result {
    let mut args = vec![
        "package",
        "--workspace",
        "--no-verify",
        "--locked",
        "--offline",
        "--allow-dirty",
    ];
    let packages = workspace_packages()?;
    for (name, publish) in &packages {
        if !publish {
            args.extend(["--exclude", name.as_str()]);
        }
    }
    cargo(&args)?;
    println!(
        "packaged {} crates",
        packages.iter().filter(|(_, publish)| *publish).count()
    );
    Ok(())
}
