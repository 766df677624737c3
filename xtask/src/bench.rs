//! `cargo xtask bench [encoders|pipeline|notify|http|webhooks|journal|compare]`: the benchmarks,
//! built in release mode, printing the figures BENCHMARKS.md quotes.
//!
//! `compare` runs, in one go against the same fast local Splunk HEC receiver
//! (`benches/compare`, its own process), each forwarder several times, interleaved
//! (A B C A B C …) so that load from the rest of the machine hits all of them alike:
//!
//! * the real `vowguard` release binary: `vowguard run --config <stdin source, one
//!   splunk_hec sink>` with the events on standard input (stdin → durable journal → HEC);
//! * the bare reference forwarder (`benches/compare/src/bin/reference_forwarder.rs`:
//!   parse, envelope, batches of 500, no durability);
//! * syslog-ng (`json-parser` + `http()` destination, batches of 500, one worker): the
//!   machine's when `syslog-ng` is on the `PATH`, else Debian's packages unpacked
//!   privately into `target/bench-prereqs/syslog-ng` (see [`find_syslog_ng`]); skipped
//!   with the reason printed when neither works. It reads the same events through a pipe
//!   (it cannot poll a regular file on stdin), held open until the receiver has every
//!   event (at the end of its input syslog-ng exits without draining its queue, losing
//!   what was still queued); the others read the file and exit on their own.
//!
//! `cargo xtask bench scenarios` (module [`scenarios`]) runs the other issue-11
//! scenarios: HTTP intake, five sinks, HEC with acks, black-holed enrichers, latency at
//! a steady rate, CPU at steady rates, peak RSS at 1M events.
//!
//! Each run is wrapped in GNU `time`, which reports the child's user and system CPU
//! seconds and its peak resident set size (`ru_maxrss` from `wait4`). Events/s is the
//! number of events over the wall time from starting the program to its exit (startup,
//! intake, delivery and drain included); the receiver's count is checked to be exactly
//! the number of events sent. The time at which the receiver had every event is printed
//! too, so a program that lingers after delivering shows up.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, cargo};

mod scenarios;

/// Dispatches `cargo xtask bench <which…>`; no argument runs every benchmark but `compare`.
pub(crate) fn bench(which: &[String]) -> Result {
    let all = [
        "encoders", "pipeline", "notify", "http", "webhooks", "journal",
    ];
    match which.first().map(String::as_str) {
        Some("compare") => return compare(&which[1..]),
        Some("scenarios") => return scenarios::scenarios(&which[1..]),
        _ => {}
    }
    let selected: Vec<&str> = if which.is_empty() {
        all.to_vec()
    } else {
        which.iter().map(String::as_str).collect()
    };
    for name in selected {
        match name {
            "journal" => cargo(&[
                "run",
                "--release",
                "--locked",
                "-p",
                "vowguard-journal",
                "--example",
                "journal_bench",
            ])?,
            // Needs a `nats-server` (`cargo xtask prerequisites`); not in the default set.
            "cluster" => cargo(&[
                "run",
                "--release",
                "--locked",
                "-p",
                "vowguard-jetstream",
                "--example",
                "throughput",
            ])?,
            "encoders" | "pipeline" | "notify" | "http" | "webhooks" => cargo(&[
                "run",
                "--release",
                "--locked",
                "-p",
                "vowguard-runtime",
                "--example",
                "bench",
                "--",
                name,
            ])?,
            other => {
                return Err(format!(
                    "unknown benchmark `{other}`; expected one of {}, or cluster, compare, scenarios",
                    all.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The options of `cargo xtask bench compare`.
struct CompareOptions {
    /// Rounds; each round runs every program once.
    runs: usize,
    /// Events per run.
    events: usize,
    /// Further vowguard binaries to run alongside (label, path), e.g. an older build.
    extra: Vec<(String, PathBuf)>,
    /// Use the release binaries already in the target directory instead of building.
    no_build: bool,
}

fn compare_options(args: &[String]) -> std::result::Result<CompareOptions, String> {
    let mut options = CompareOptions {
        runs: 5,
        events: 200_000,
        extra: Vec::new(),
        no_build: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match arg.as_str() {
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("`--runs`: {e}"))?;
            }
            "--events" => {
                options.events = value("--events")?
                    .parse()
                    .map_err(|e| format!("`--events`: {e}"))?;
            }
            "--extra" => {
                let spec = value("--extra")?;
                let (label, path) = spec
                    .split_once('=')
                    .ok_or("`--extra`: expected LABEL=PATH to a vowguard binary")?;
                options.extra.push((label.to_owned(), PathBuf::from(path)));
            }
            "--no-build" => options.no_build = true,
            other => {
                return Err(format!(
                    "unknown option `{other}`; usage: cargo xtask bench compare [--runs N] [--events N] [--extra LABEL=PATH] [--no-build]"
                ));
            }
        }
    }
    if options.runs == 0 || options.events == 0 {
        return Err("`--runs` and `--events` must be at least 1".into());
    }
    Ok(options)
}

/// One program under comparison.
enum Program {
    Vowguard { label: String, binary: PathBuf },
    Reference { binary: PathBuf },
    SyslogNg(SyslogNg),
}

impl Program {
    fn label(&self) -> &str {
        match self {
            Self::Vowguard { label, .. } => label,
            Self::Reference { .. } => "reference",
            Self::SyslogNg(_) => "syslog-ng",
        }
    }
}

/// What one run of one program measured.
#[derive(Clone, Copy)]
struct Measure {
    events_per_second: f64,
    delivered_after: Duration,
    wall: Duration,
    cpu_seconds_per_100k: f64,
    peak_rss_mb: f64,
}

fn compare(args: &[String]) -> Result {
    let options = compare_options(args)?;
    let target = release_binaries(options.no_build)?;
    let work = std::env::temp_dir().join(format!("vowguard-compare-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let outcome = compare_in(&options, &target, &work);
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

/// Builds (unless `no_build`) the release `vowguard` binary and the `vowguard-bench`
/// programs; returns the directory holding them. Checks GNU time is there.
fn release_binaries(no_build: bool) -> std::result::Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask is not inside the workspace")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release");
    if Command::new("/usr/bin/time")
        .args(["-f", "%U", "true"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        return Err("the benchmarks need GNU time at /usr/bin/time (apt-get install time)".into());
    }
    if !no_build {
        cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "vowguard-runtime",
            "--bin",
            "vowguard",
        ])?;
        cargo(&[
            "build",
            "--release",
            "--locked",
            "-p",
            "vowguard-bench",
            "--bins",
        ])?;
    }
    Ok(target)
}

fn compare_in(options: &CompareOptions, target: &Path, work: &Path) -> Result {
    let input = work.join("events.ndjson");
    let input_bytes = write_events(&input, options.events)?;
    let mut programs = vec![
        Program::Vowguard {
            label: "vowguard".into(),
            binary: target.join("vowguard"),
        },
        Program::Reference {
            binary: target.join("reference_forwarder"),
        },
    ];
    let (syslog_ng, syslog_ng_note) = match find_syslog_ng() {
        Ok(found) => {
            let note = found.describe();
            programs.push(Program::SyslogNg(found));
            (true, note)
        }
        Err(why) => (false, why),
    };
    for (label, binary) in &options.extra {
        programs.push(Program::Vowguard {
            label: label.clone(),
            binary: binary.clone(),
        });
    }

    let mut receiver = Receiver::start(&target.join("siem_receiver"), &[])?;
    println!(
        "\n## cargo xtask bench compare: {} events ({:.0} bytes each on average, {:.1} MB of NDJSON), {} runs each, interleaved",
        options.events,
        input_bytes as f64 / options.events as f64,
        input_bytes as f64 / 1e6,
        options.runs
    );
    println!(
        "machine: {} cores; load average at start: {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_average()
    );
    println!("receiver: {} (a separate process)", receiver.address);
    if syslog_ng {
        println!("syslog-ng: {syslog_ng_note}");
    } else {
        println!("syslog-ng: skipped: {syslog_ng_note}");
    }

    let mut results: Vec<Vec<Option<Measure>>> = vec![Vec::new(); programs.len()];
    for round in 1..=options.runs {
        for (index, program) in programs.iter().enumerate() {
            let dir = work.join(format!("run-{round}-{index}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let measure = run_once(program, &dir, &input, options.events, &mut receiver);
            let _ = std::fs::remove_dir_all(&dir);
            match measure {
                Ok(m) => {
                    println!(
                        "round {round} {:<12} {:>9.0} events/s  delivered after {:>6.2} s, exited after {:>6.2} s  {:>5.2} CPU-s/100k  {:>6.1} MB peak RSS",
                        program.label(),
                        m.events_per_second,
                        m.delivered_after.as_secs_f64(),
                        m.wall.as_secs_f64(),
                        m.cpu_seconds_per_100k,
                        m.peak_rss_mb
                    );
                    results[index].push(Some(m));
                }
                Err(e) => {
                    println!("round {round} {:<12} FAILED: {e}", program.label());
                    results[index].push(None);
                }
            }
        }
    }
    receiver.stop();
    println!("load average at the end: {}\n", load_average());
    println!("{}", summary(&programs, &results, options.runs));
    Ok(())
}

/// The summary tables (markdown): each program's min/median/max, then the ratios of
/// vowguard to the others computed within each round.
fn summary(programs: &[Program], results: &[Vec<Option<Measure>>], runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| program | runs ok | events/s min / median / max | CPU-s per 100k events min / median / max | peak RSS MB min / median / max |\n|---|---:|---:|---:|---:|"
    );
    for (program, measures) in programs.iter().zip(results) {
        let ok: Vec<Measure> = measures.iter().flatten().copied().collect();
        if ok.is_empty() {
            let _ = writeln!(out, "| {} | 0/{runs} | – | – | – |", program.label());
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {}/{runs} | {} | {} | {} |",
            program.label(),
            ok.len(),
            spread(ok.iter().map(|m| m.events_per_second), 0),
            spread(ok.iter().map(|m| m.cpu_seconds_per_100k), 2),
            spread(ok.iter().map(|m| m.peak_rss_mb), 1),
        );
    }
    let _ = writeln!(
        out,
        "\nRatios within each round (vowguard / other; events/s higher is better for vowguard, CPU lower is better):\n\n| ratio | events/s min / median / max | CPU per event min / median / max |\n|---|---:|---:|"
    );
    let vowguard = 0;
    for (index, other) in programs.iter().enumerate().skip(1) {
        let pairs: Vec<(Measure, Measure)> = results[vowguard]
            .iter()
            .zip(&results[index])
            .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| vowguard / {} | {} | {} |",
            other.label(),
            spread(
                pairs
                    .iter()
                    .map(|(a, b)| a.events_per_second / b.events_per_second),
                2
            ),
            spread(
                pairs
                    .iter()
                    .map(|(a, b)| a.cpu_seconds_per_100k / b.cpu_seconds_per_100k),
                2
            ),
        );
    }
    out
}

/// `min / median / max` of the values, with `decimals` decimals.
fn spread(values: impl Iterator<Item = f64>, decimals: usize) -> String {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    };
    format!(
        "{:.decimals$} / {median:.decimals$} / {:.decimals$}",
        values[0],
        values[n - 1]
    )
}

/// Writes `count` NDJSON events of about 600 bytes (login failures with a user agent,
/// labels and attributes, as `benches/throughput.rs` uses); returns the bytes written.
fn write_events(path: &Path, count: usize) -> std::result::Result<u64, String> {
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut written = 0u64;
    for i in 0..count {
        let outcome = if i % 7 == 0 { "success" } else { "failure" };
        let line = format!(
            concat!(
                r#"{{"id":"bench-{i:08}","timestamp":"2026-06-20T11:30:00.123Z","category":"authentication","action":"login","#,
                r#""outcome":"{outcome}","severity":"medium","risk_score":{risk},"#,
                r#""message":"invalid password for planner account, attempt {i} from a known proxy network","#,
                r#""user_id":"planner-{user}","user_name":"alex.planner@example.org","source_ip":"203.0.{ip_c}.{ip_d}","#,
                r#""user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","#,
                r#""resource_type":"accounts","resource_id":"acct-{user}","wedding_id":"w-2026-06-20-{wedding}","#,
                r#""labels":{{"env":"prod","service":"auth-gateway"}},"attributes":{{"session_id":"s-{i:x}","mfa":false}}}}"#,
                "\n"
            ),
            i = i,
            outcome = outcome,
            risk = i % 100,
            user = i % 500,
            ip_c = (i / 256) % 256,
            ip_d = i % 256,
            wedding = i % 40,
        );
        out.write_all(line.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written += line.len() as u64;
    }
    out.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(written)
}

/// The counting SIEM receiver (`benches/compare/src/bin/siem_receiver.rs`), a child
/// process.
pub(crate) struct Receiver {
    child: Child,
    /// Its HTTP address (HEC, Elasticsearch, Datadog), `host:port`.
    pub(crate) address: String,
    /// Its TCP syslog address (CEF, LEEF).
    pub(crate) syslog: String,
    /// Its black hole's address, when started with `--blackhole`.
    pub(crate) blackhole: Option<String>,
}

impl Receiver {
    /// Starts the receiver with these options (`--delay-ms N`, `--ack`, `--blackhole`).
    pub(crate) fn start(binary: &Path, args: &[&str]) -> std::result::Result<Self, String> {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("the receiver has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the receiver's address: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let [
            "listening",
            "on",
            http,
            "syslog",
            syslog,
            "blackhole",
            blackhole,
        ] = words[..]
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the receiver printed {line:?}, not its addresses"));
        };
        Ok(Self {
            address: http.to_owned(),
            syslog: syslog.to_owned(),
            blackhole: (blackhole != "-").then(|| blackhole.to_owned()),
            child,
        })
    }

    /// The receiver's counters (`hec`, `bulk`, `datadog`, `cef`, `leef`, `hec_acked`,
    /// `latency_p99_us`, …) since it started.
    pub(crate) fn stats(&self) -> std::result::Result<HashMap<String, u64>, String> {
        let answer = http_get(&self.address, "/bench/stats")?;
        let stats: HashMap<String, u64> = answer
            .split_whitespace()
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect();
        if stats.contains_key("hec") {
            Ok(stats)
        } else {
            Err(format!("unexpected receiver answer {answer:?}"))
        }
    }

    /// Splunk HEC events received since the receiver started.
    pub(crate) fn events(&self) -> std::result::Result<u64, String> {
        Ok(self.stats()?.get("hec").copied().unwrap_or(0))
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET path` on `address` over plain HTTP/1.1; the body of a 200 answer.
pub(crate) fn http_get(address: &str, path: &str) -> std::result::Result<String, String> {
    let mut stream = std::net::TcpStream::connect(address)
        .map_err(|e| format!("cannot reach {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("cannot set a timeout: {e}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("cannot ask {address}: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("cannot read the answer of {address}: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("unexpected answer {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{address}{path} answered {:?}",
            head.lines().next()
        ));
    }
    Ok(body.to_owned())
}

/// How to run syslog-ng: the machine's, or a private copy unpacked from Debian packages.
pub(crate) struct SyslogNg {
    binary: PathBuf,
    /// `--module-path`, for the private copy (its compiled-in path is under /usr).
    module_path: Option<PathBuf>,
    /// `LD_LIBRARY_PATH` for the private copy.
    env: Vec<(String, String)>,
}

impl SyslogNg {
    fn describe(&self) -> String {
        let version = Command::new(&self.binary)
            .arg("--version")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "version unknown".into());
        format!("{} ({version})", self.binary.display())
    }
}

/// syslog-ng for `compare`: the machine's when `syslog-ng` is on the `PATH` with its
/// http() module; otherwise a
/// private copy in `<workspace>/target/bench-prereqs/syslog-ng`: Debian's `syslog-ng-core`
/// and `syslog-ng-mod-http` and the direct dependencies the machine lacks, fetched with
/// `apt-get download` and unpacked with `dpkg -x` (nothing is installed system-wide; the
/// package lists are refreshed with `apt-get update` when the download fails).
/// `Err` says why there is none.
fn find_syslog_ng() -> std::result::Result<SyslogNg, String> {
    if let Ok(output) = Command::new("sh")
        .args(["-c", "command -v syslog-ng"])
        .output()
        && output.status.success()
    {
        // Only with the http() module (`syslog-ng-mod-http`): without it the run would
        // wait for deliveries that never come.
        let binary = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let has_http = Command::new(&binary)
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("Available-Modules:"))
                    .any(|m| m.split(',').any(|m| m.trim() == "http"))
            });
        if has_http {
            return Ok(SyslogNg {
                binary,
                module_path: None,
                env: Vec::new(),
            });
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask is not inside the workspace")?
        .join("target")
        .join("bench-prereqs");
    let root = dir.join("syslog-ng");
    let private = |root: &Path| {
        let lib = |p: &str| root.join(p).display().to_string();
        SyslogNg {
            binary: root.join("usr/sbin/syslog-ng"),
            module_path: Some(
                std::fs::read_dir(root.join("usr/lib/syslog-ng"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.join("libhttp.so").is_file())
                    .unwrap_or_else(|| root.join("usr/lib/syslog-ng/3.38")),
            ),
            env: vec![(
                "LD_LIBRARY_PATH".to_owned(),
                [
                    lib("usr/lib/syslog-ng"),
                    lib("usr/lib/x86_64-linux-gnu"),
                    lib("lib/x86_64-linux-gnu"),
                ]
                .join(":"),
            )],
        }
    };
    let usable = |candidate: &SyslogNg| {
        candidate.binary.is_file()
            && candidate
                .module_path
                .as_ref()
                .is_some_and(|m| m.join("libhttp.so").is_file())
            && Command::new(&candidate.binary)
                .arg("--version")
                .envs(candidate.env.iter().map(|(k, v)| (k, v)))
                .output()
                .is_ok_and(|o| o.status.success())
    };
    let candidate = private(&root);
    if usable(&candidate) {
        return Ok(candidate);
    }
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    let mut packages = vec!["syslog-ng-core".to_owned(), "syslog-ng-mod-http".to_owned()];
    for package in ["syslog-ng-core", "syslog-ng-mod-http"] {
        let output = Command::new("apt-cache")
            .args(["depends", "--no-recommends", "--no-suggests", package])
            .output()
            .map_err(|e| format!("not on the PATH, and apt-cache cannot run: {e}"))?;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            // `|Depends:` alternatives (an init system) are not needed to run it.
            let Some(dependency) = line.trim().strip_prefix("Depends: ") else {
                continue;
            };
            let dependency = dependency.trim_matches(|c| c == '<' || c == '>');
            if matches!(dependency, "lsb-base" | "sysvinit-utils") {
                continue;
            }
            let installed = Command::new("dpkg-query")
                .args(["-W", "-f", "${Status}", dependency])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"));
            if !installed && !packages.iter().any(|p| p == dependency) {
                packages.push(dependency.to_owned());
            }
        }
    }
    let download = || {
        println!(
            "\n==> (in {}) apt-get download {}",
            debs.display(),
            packages.join(" ")
        );
        Command::new("apt-get")
            .arg("download")
            .args(&packages)
            .current_dir(&debs)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        println!("\n==> apt-get update -qq (refreshes the package lists only)");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        if !download() {
            return Err(format!(
                "not on the PATH, and `apt-get download {}` failed (install syslog-ng-core and syslog-ng-mod-http to compare with it)",
                packages.join(" ")
            ));
        }
    }
    for entry in std::fs::read_dir(&debs)
        .map_err(|e| format!("cannot list {}: {e}", debs.display()))?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "deb") {
            let unpacked = Command::new("dpkg")
                .arg("-x")
                .arg(&path)
                .arg(&root)
                .status()
                .is_ok_and(|s| s.success());
            if !unpacked {
                return Err(format!("`dpkg -x {}` failed", path.display()));
            }
        }
    }
    let candidate = private(&root);
    if usable(&candidate) {
        Ok(candidate)
    } else {
        Err(format!(
            "unpacked syslog-ng into {} but it does not run (or lacks the http() module)",
            root.display()
        ))
    }
}

/// Runs one program once on the whole input and measures it.
fn run_once(
    program: &Program,
    dir: &Path,
    input: &Path,
    events: usize,
    receiver: &mut Receiver,
) -> std::result::Result<Measure, String> {
    let url = format!("http://{}", receiver.address);
    let mut command = Command::new("/usr/bin/time");
    let rusage = dir.join("rusage");
    command.arg("-f").arg("%U %S %M").arg("-o").arg(&rusage);
    match program {
        Program::Vowguard { binary, .. } => {
            let config = dir.join("vowguard.toml");
            std::fs::write(
                &config,
                format!(
                    "data_dir = \"{}\"\n[sources.in]\ntype = \"stdin\"\n[sinks.hec]\ntype = \"splunk_hec\"\nendpoint = \"{url}\"\ntoken = {{ env = \"BENCH_HEC_TOKEN\" }}\n",
                    dir.join("data").display()
                ),
            )
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            command
                .arg(binary)
                .arg("run")
                .arg("--config")
                .arg(&config)
                .env("BENCH_HEC_TOKEN", "bench-token");
        }
        Program::Reference { binary } => {
            command.arg(binary).arg(&url);
        }
        Program::SyslogNg(syslog_ng) => {
            let config = dir.join("syslog-ng.conf");
            std::fs::write(&config, syslog_ng_config(&receiver.address))
                .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            command.envs(syslog_ng.env.iter().map(|(k, v)| (k, v)));
            command.arg(&syslog_ng.binary);
            if let Some(modules) = &syslog_ng.module_path {
                command.arg("--module-path").arg(modules);
            }
            command
                .arg("--foreground")
                .arg("--no-caps")
                .arg("--cfgfile")
                .arg(&config)
                .arg("--persist-file")
                .arg(dir.join("syslog-ng.persist"))
                .arg("--pidfile")
                .arg(dir.join("syslog-ng.pid"))
                .arg("--control")
                .arg(dir.join("syslog-ng.ctl"));
        }
    }
    let stdin =
        std::fs::File::open(input).map_err(|e| format!("cannot open {}: {e}", input.display()))?;
    let log = dir.join("output.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let before = receiver.events()?;
    let want = before + events as u64;
    let started = Instant::now();
    // syslog-ng cannot read a regular file on stdin (ivykis has no poll method for one),
    // so it gets the same bytes through a pipe, fed by a thread of this process.
    let piped = matches!(program, Program::SyslogNg(_));
    let mut child = command
        .stdin(if piped {
            Stdio::piped()
        } else {
            Stdio::from(stdin.try_clone().map_err(|e| e.to_string())?)
        })
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.label()))?;
    // syslog-ng ends at the end of its stdin without draining its queues (events still
    // queued for http() are lost), so the pipe is held open until the receiver has every
    // event, then closed: its events/s is then its delivery time plus its exit.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let mut release = Some(release);
    let feeder = if piped {
        let mut pipe = child.stdin.take().ok_or("no stdin pipe")?;
        let mut file = stdin;
        Some(std::thread::spawn(move || {
            let _ = std::io::copy(&mut file, &mut pipe);
            let _ = released.recv();
        }))
    } else {
        None
    };
    // A generous deadline: 2 000 events/s at least, plus a minute.
    let deadline = Duration::from_secs(60 + events as u64 / 2_000);
    let mut delivered_after = None;
    let status = loop {
        if delivered_after.is_none() && receiver.events()? >= want {
            delivered_after = Some(started.elapsed());
            release = None;
        }
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("cannot wait for {}: {e}", program.label()))?
        {
            break status;
        }
        if started.elapsed() > deadline {
            drop(release.take());
            // GNU time forwards the signal to the program it runs.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
            return Err(format!(
                "did not finish within {} s (receiver has {} of {events} events)",
                deadline.as_secs(),
                receiver.events()?.saturating_sub(before)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let received = receiver.events()? - before;
    if !status.success() {
        return Err(format!("exited with {status}; last output: {}", tail(&log)));
    }
    if received != events as u64 {
        return Err(format!(
            "the receiver got {received} events, not {events}; last output: {}",
            tail(&log)
        ));
    }
    let rusage_text = std::fs::read_to_string(&rusage)
        .map_err(|e| format!("cannot read {}: {e}", rusage.display()))?;
    let fields: Vec<f64> = rusage_text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [user, system, max_rss_kb] = fields[..] else {
        return Err(format!("unexpected GNU time output {rusage_text:?}"));
    };
    Ok(Measure {
        events_per_second: events as f64 / wall.as_secs_f64(),
        delivered_after: delivered_after.unwrap_or(wall),
        wall,
        cpu_seconds_per_100k: (user + system) * 100_000.0 / events as f64,
        peak_rss_mb: max_rss_kb / 1024.0,
    })
}

/// The last few hundred bytes of a run's output, for failure messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(600);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].trim().to_owned()
}

/// syslog-ng reading NDJSON on stdin (a pipe), with flow control (without it syslog-ng
/// drops what overflows the destination's queue: vowguard never drops) and a window of
/// 10 000 messages (the default 100 is less than a batch, and every batch would wait for
/// `batch-timeout`), parsing it as JSON and posting HEC envelopes in
/// batches of 500 to the receiver with its `http()` destination (one worker).
fn syslog_ng_config(address: &str) -> String {
    format!(
        r#"@version: current
options {{ stats-freq(0); }};
source s_in {{ stdin(flags(no-parse) log-msg-size(65536) log-iw-size(10000)); }};
parser p_json {{ json-parser(prefix(".json.")); }};
destination d_hec {{
  http(
    url("http://{address}/services/collector/event")
    method("POST")
    headers("Authorization: Splunk bench", "Content-Type: application/json")
    body('{{"host":"bench","source":"syslog-ng","sourcetype":"_json","event":$(format-json --scope dot-nv-pairs --rekey .json.* --shift 6)}}')
    batch-lines(500)
    batch-timeout(100)
    workers(1)
    log-fifo-size(20000)
  );
}};
log {{ source(s_in); parser(p_json); destination(d_hec); flags(flow-control); }};
"#
    )
}

/// `/proc/loadavg`'s three load averages, or a note when it cannot be read.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown (no /proc/loadavg)".into(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}
