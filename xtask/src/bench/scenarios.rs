//! `cargo xtask bench scenarios [NAME…] [--events N] [--runs N] [--no-build]
//! [--sink-toml TOML]`: the issue-11 scenarios beyond the stdin → HEC comparison, each
//! against the real release `vowguard` binary and the counting receiver
//! (`benches/compare/src/bin/siem_receiver.rs`, its own process, fresh for every run),
//! several runs, printing every run, then min / median / max and the ratios computed
//! within each run:
//!
//! * `intake`: `POST /v1/events` in batches of 100 from the load client
//!   (`benches/compare/src/bin/load_client.rs`, 4 requests in flight), events
//!   acknowledged durably (202) per second; one Splunk HEC sink;
//! * `five-sinks`: stdin → journal → HEC, Elasticsearch bulk, Datadog, CEF and LEEF over
//!   TCP syslog at once; events/s per sink (events over the time until that sink's
//!   receiver had all of them, from the program's start);
//! * `hec-ack`: stdin → HEC whose every answer takes 50 ms, indexer acknowledgement on;
//!   events/s until the receiver had reported every event's ack id as indexed;
//! * `enrich-blackhole`: intake (as `intake`) with the four threat-intel enrichers
//!   (MISP, AbuseIPDB, VirusTotal, OTX) pointed at a TCP listener that accepts and never
//!   answers, against the same with no enrichers in the same round; the largest
//!   POST → SIEM latency against the enrichment budget (2 s) plus 1 s;
//! * `latency`: p50 / p99 / max from sending `POST /v1/events` to the HEC receiver
//!   having the event, at a steady 10 000 events/s (batches of 100 every 10 ms);
//! * `steady-cpu`: vowguard's CPU seconds per 100 000 events at a steady 1 000 and
//!   5 000 events/s against the bulk figure (as fast as it acknowledges) in the same
//!   round;
//! * `rss`: peak RSS of stdin → HEC at N events (default 1 000 000) and at N/10.
//! * `alert-lag`: intake as fast as acknowledged (as `intake`) with alerting on: a Slack
//!   webhook notifier on the receiver, the platform's default routes (grouping) and
//!   inhibition rule; the Saturday events make about a fifth P0. `/metrics` is read every
//!   50 ms for `vowguard_alert_path_lag_events` (events durable and not yet routed): its
//!   largest value, that value over the intake rate (how far behind in seconds), and how
//!   long after the last acknowledgement the alert path had routed everything; once
//!   without a rate limit and once with Slack's own (1 message/s), which must not hold
//!   routing back (the notifications merged into a waiting one are counted).
//!
//! Method, common to all: warm-up is excluded where the clock starts after the server
//! is up (the HTTP scenarios but `enrich-blackhole` first post 2 000 unstamped, untimed
//! events; `enrich-blackhole` has none, so the first lookups that time out count; the stdin
//! scenarios include startup, stated in their output). Every run checks the receiver's
//! exact counts (every event delivered, none twice). CPU of a running server is read
//! from `/proc/<pid>/stat` (user + system) over the measured span; CPU and peak RSS of a
//! stdin run come from GNU time. The load average is printed at the start and the end
//! of each scenario. The load client and the receiver run on the same machine and take
//! CPU from it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Receiver, http_get, load_average, spread, tail, write_events};
use crate::Result;

/// Every scenario, in the order `cargo xtask bench scenarios` runs them.
const ALL: [&str; 8] = [
    "intake",
    "five-sinks",
    "hec-ack",
    "enrich-blackhole",
    "latency",
    "steady-cpu",
    "rss",
    "alert-lag",
];

/// Warm-up events of the HTTP scenarios (posted first, not timed, not stamped).
const WARMUP: u64 = 2_000;
/// The enrichment budget of `enrich-blackhole`, in milliseconds.
const ENRICHMENT_BUDGET_MS: u64 = 2_000;

struct Options {
    names: Vec<String>,
    events: Option<u64>,
    runs: usize,
    no_build: bool,
    sink_toml: String,
}

fn options(args: &[String]) -> std::result::Result<Options, String> {
    let mut options = Options {
        names: Vec::new(),
        events: None,
        runs: 3,
        no_build: false,
        sink_toml: String::new(),
    };
    let usage = format!(
        "usage: cargo xtask bench scenarios [{}] [--events N] [--runs N] [--no-build] [--sink-toml TOML]",
        ALL.join("|")
    );
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match arg.as_str() {
            "--events" => {
                options.events = Some(
                    value("--events")?
                        .parse()
                        .map_err(|e| format!("`--events`: {e}"))?,
                );
            }
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("`--runs`: {e}"))?;
            }
            "--no-build" => options.no_build = true,
            "--sink-toml" => {
                options.sink_toml = value("--sink-toml")?;
            }
            name if ALL.contains(&name) => options.names.push(name.to_owned()),
            other => return Err(format!("unknown scenario or option `{other}`; {usage}")),
        }
    }
    if options.runs == 0 || options.events == Some(0) {
        return Err("`--runs` and `--events` must be at least 1".into());
    }
    if options.names.is_empty() {
        options.names = ALL.iter().map(|s| (*s).to_owned()).collect();
    }
    Ok(options)
}

/// Where the release binaries are, and a scratch directory.
struct Env {
    target: PathBuf,
    work: PathBuf,
    options: Options,
}

/// Runs the selected scenarios.
pub(super) fn scenarios(args: &[String]) -> Result {
    let options = options(args)?;
    let target = super::release_binaries(options.no_build)?;
    let work = std::env::temp_dir().join(format!("vowguard-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let env = Env {
        target,
        work: work.clone(),
        options,
    };
    println!(
        "\n# cargo xtask bench scenarios: {} run(s) each; machine: {} cores",
        env.options.runs,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    let mut outcome = Ok(());
    for name in &env.options.names {
        println!("\n## {name}\nload average at the start: {}", load_average());
        let result = match name.as_str() {
            "intake" => intake(&env),
            "five-sinks" => five_sinks(&env),
            "hec-ack" => hec_ack(&env),
            "enrich-blackhole" => enrich_blackhole(&env),
            "latency" => latency(&env),
            "steady-cpu" => steady_cpu(&env),
            "rss" => rss(&env),
            "alert-lag" => alert_lag(&env),
            _ => Ok(()),
        };
        println!("load average at the end: {}", load_average());
        if let Err(e) = result {
            println!("{name}: FAILED: {e}");
            outcome = Err(format!("scenario {name} failed: {e}"));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

impl Env {
    fn events(&self, default: u64) -> u64 {
        self.options.events.unwrap_or(default)
    }

    fn receiver(&self, args: &[&str]) -> std::result::Result<Receiver, String> {
        Receiver::start(&self.target.join("siem_receiver"), args)
    }

    fn run_dir(&self, name: &str) -> std::result::Result<PathBuf, String> {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// A sink table's extra keys from `--sink-toml`.
    fn sink_extra(&self) -> String {
        if self.options.sink_toml.is_empty() {
            String::new()
        } else {
            format!("{}\n", self.options.sink_toml)
        }
    }

    fn hec_sink(&self, receiver: &Receiver, extra: &str) -> String {
        format!(
            "[sinks.hec]\ntype = \"splunk_hec\"\nendpoint = \"http://{}\"\ntoken = {{ env = \"BENCH_TOKEN\" }}\n{extra}{}",
            receiver.address,
            self.sink_extra()
        )
    }
}

// ------------------------------------------------------------------ processes

/// A running `vowguard run` with the HTTP source.
struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Server {
    /// Starts vowguard with `[server]` on a free loopback port, an `http` source and
    /// `rest` (sinks, enrichers, pipeline keys), and waits until `/health` answers.
    fn start(env: &Env, dir: &Path, rest: &str) -> std::result::Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let config = dir.join("vowguard.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\n{rest}\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[sources.api]\ntype = \"http\"\n",
                dir.join("data").display()
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = dir.join("output.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(env.target.join("vowguard"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("BENCH_TOKEN", "bench-token")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start vowguard: {e}"))?;
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "vowguard exited at startup with {status}: {}",
                    tail(&log)
                ));
            }
            if http_get(&address, "/health").is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "vowguard's /health did not answer within 60 s: {}",
                    tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url: format!("http://{address}"),
            dir: dir.to_path_buf(),
        })
    }

    /// User + system CPU seconds so far (`/proc/<pid>/stat`).
    fn cpu_seconds(&self) -> std::result::Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|e| format!("cannot read vowguard's /proc stat: {e}"))?;
        // Fields after the `(comm)`: state is field 3; utime and stime are 14 and 15.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or("unexpected /proc stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| -> std::result::Result<f64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .ok_or_else(|| "unexpected /proc stat".to_owned())
        };
        Ok((ticks(11)? + ticks(12)?) / clock_ticks())
    }

    /// Peak resident set size so far, in MB (`VmHWM`).
    fn peak_rss_mb(&self) -> std::result::Result<f64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("cannot read vowguard's /proc status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .ok_or_else(|| "no VmHWM in /proc status".to_owned())
    }

    /// SIGTERM, then waits (SIGKILL after 60 s); an unclean exit is an error.
    fn stop(mut self) -> std::result::Result<(), String> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| format!("cannot wait for vowguard: {e}"))?
            {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "vowguard exited with {status}: {}",
                        tail(&self.dir.join("output.log"))
                    ))
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err("vowguard did not stop within 60 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// What the load client measured.
struct ClientRun {
    accepted: u64,
    seconds: f64,
    rate: f64,
}

/// One load client run: `events` posted in batches of `batch` after the warm-up.
struct Load {
    events: u64,
    batch: u64,
    concurrency: usize,
    /// Events/s; 0 for as fast as the server acknowledges.
    rate: u64,
    stamp: bool,
    /// Warm-up events posted first (not timed, not stamped).
    warmup: u64,
}

impl Load {
    /// `events` in batches of 100, 4 requests in flight, as fast as acknowledged, after
    /// the warm-up, unstamped.
    fn bulk(events: u64) -> Self {
        Self {
            events,
            batch: 100,
            concurrency: 4,
            rate: 0,
            stamp: false,
            warmup: WARMUP,
        }
    }
}

/// Runs the load client; `on_warm` is called when it has finished its warm-up (the
/// measured part starts).
fn run_client(
    env: &Env,
    url: &str,
    load: &Load,
    on_warm: impl FnOnce(),
) -> std::result::Result<ClientRun, String> {
    let mut child = Command::new(env.target.join("load_client"))
        .args(["--url", url])
        .args(["--events", &load.events.to_string()])
        .args(["--batch", &load.batch.to_string()])
        .args(["--concurrency", &load.concurrency.to_string()])
        .args(["--rate", &load.rate.to_string()])
        .args(["--warmup", &load.warmup.to_string()])
        .args(if load.stamp {
            &["--stamp"][..]
        } else {
            &[][..]
        })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the load client: {e}"))?;
    let stdout = child.stdout.take().ok_or("the load client has no stdout")?;
    let mut on_warm = Some(on_warm);
    let mut last = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("cannot read the load client: {e}"))?;
        if line.trim() == "warmed up" {
            if let Some(f) = on_warm.take() {
                f();
            }
        } else {
            last = line;
        }
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for the load client: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the load client failed ({status}): {} {}",
            last.trim(),
            stderr.trim()
        ));
    }
    let fields: HashMap<&str, f64> = last
        .split_whitespace()
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let get = |k: &str| {
        fields
            .get(k)
            .copied()
            .ok_or_else(|| format!("the load client printed {last:?}"))
    };
    Ok(ClientRun {
        accepted: get("accepted")? as u64,
        seconds: get("seconds")?,
        rate: get("rate")?,
    })
}

/// Polls the receiver until every `(key, count)` is reached; returns the time from
/// `since` at which each was first reached. `alive` is checked on the way: an `Err`
/// from it ends the wait.
fn wait_for_counts(
    receiver: &Receiver,
    wanted: &[(&str, u64)],
    since: Instant,
    deadline: Duration,
    mut alive: impl FnMut() -> std::result::Result<(), String>,
) -> std::result::Result<Vec<Duration>, String> {
    let mut reached: Vec<Option<Duration>> = vec![None; wanted.len()];
    loop {
        let stats = receiver.stats()?;
        for (slot, (key, want)) in reached.iter_mut().zip(wanted) {
            if slot.is_none() && stats.get(*key).copied().unwrap_or(0) >= *want {
                *slot = Some(since.elapsed());
            }
        }
        if reached.iter().all(Option::is_some) {
            return Ok(reached.into_iter().flatten().collect());
        }
        let have = || {
            wanted
                .iter()
                .map(|(k, want)| format!("{k} {}/{want}", stats.get(*k).copied().unwrap_or(0)))
                .collect::<Vec<String>>()
                .join(", ")
        };
        if since.elapsed() > deadline {
            return Err(format!(
                "the receiver did not get every event within {} s: {}",
                deadline.as_secs(),
                have()
            ));
        }
        if let Err(e) = alive() {
            return Err(format!("{e} (receiver: {})", have()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks the receiver's final counts are exactly the events sent: none missing, none
/// delivered twice.
fn check_exact(receiver: &Receiver, wanted: &[(&str, u64)]) -> std::result::Result<(), String> {
    let stats = receiver.stats()?;
    for (key, want) in wanted {
        let have = stats.get(*key).copied().unwrap_or(0);
        if have != *want {
            return Err(format!(
                "the receiver counted {have} {key} events, not {want}"
            ));
        }
    }
    Ok(())
}

/// A generous deadline: 500 events/s at least, plus two minutes.
fn deadline_for(events: u64) -> Duration {
    Duration::from_secs(120 + events / 500)
}

/// What a stdin run measured (GNU time's rusage of the child).
struct StdinRun {
    /// Per wanted key, the time from start until the receiver had them all.
    reached: Vec<Duration>,
    wall: Duration,
    cpu_seconds: f64,
    peak_rss_mb: f64,
}

/// Runs `vowguard run` with a stdin source and `rest` on `input` under GNU time and
/// waits until it exits and the receiver has every wanted count.
fn run_stdin(
    env: &Env,
    dir: &Path,
    rest: &str,
    input: &Path,
    receiver: &Receiver,
    wanted: &[(&str, u64)],
    events: u64,
) -> std::result::Result<StdinRun, String> {
    let config = dir.join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n{rest}\n[sources.in]\ntype = \"stdin\"\n",
            dir.join("data").display()
        ),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let rusage = dir.join("rusage");
    let log = dir.join("output.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let stdin =
        std::fs::File::open(input).map_err(|e| format!("cannot open {}: {e}", input.display()))?;
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&rusage)
        .arg(env.target.join("vowguard"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("BENCH_TOKEN", "bench-token")
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start vowguard: {e}"))?;
    let mut exited = None;
    let reached = wait_for_counts(receiver, wanted, started, deadline_for(events), || {
        if let Some(at) = exited {
            // vowguard exits once every sink has delivered; counts still short well after
            // that will not grow any more.
            if started.elapsed() > at + Duration::from_secs(10) {
                return Err("vowguard exited 10 s ago and the receiver is still short".into());
            }
        } else if let Ok(Some(status)) = child.try_wait() {
            if !status.success() {
                return Err(format!("vowguard exited with {status}: {}", tail(&log)));
            }
            exited = Some(started.elapsed());
        }
        Ok(())
    });
    let reached = match reached {
        Ok(reached) => reached,
        Err(e) => {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
            return Err(format!("{e}; vowguard's last output: {}", tail(&log)));
        }
    };
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for vowguard: {e}"))?;
    let wall = exited.unwrap_or_else(|| started.elapsed());
    if !status.success() {
        return Err(format!("vowguard exited with {status}: {}", tail(&log)));
    }
    check_exact(receiver, wanted)?;
    let text = std::fs::read_to_string(&rusage)
        .map_err(|e| format!("cannot read {}: {e}", rusage.display()))?;
    let fields: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [user, system, max_rss_kb] = fields[..] else {
        return Err(format!("unexpected GNU time output {text:?}"));
    };
    Ok(StdinRun {
        reached,
        wall,
        cpu_seconds: user + system,
        peak_rss_mb: max_rss_kb / 1024.0,
    })
}

fn per_100k(cpu_seconds: f64, events: u64) -> f64 {
    cpu_seconds * 100_000.0 / events as f64
}

/// Prints a markdown table: one row per label, min / median / max of the collected
/// values of each column.
fn table(columns: &[&str], rows: &[(String, Vec<Vec<f64>>)], decimals: &[usize]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| | runs ok | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(columns.len()));
    for (label, values) in rows {
        let runs = values.first().map_or(0, Vec::len);
        let cells: Vec<String> = values
            .iter()
            .zip(decimals)
            .map(|(v, d)| {
                if v.is_empty() {
                    "–".to_owned()
                } else {
                    spread(v.iter().copied(), *d)
                }
            })
            .collect();
        let _ = writeln!(out, "| {label} | {runs} | {} |", cells.join(" | "));
    }
    out
}

// ------------------------------------------------------------------ scenarios

/// Intake over HTTP to one HEC sink; returns (acknowledged events/s, delivered events/s,
/// CPU-s per 100k, peak RSS MB, max latency ms when stamped).
fn http_run(
    env: &Env,
    dir: &Path,
    receiver: &Receiver,
    rest: &str,
    load: &Load,
) -> std::result::Result<(ClientRun, f64, f64, f64), String> {
    let server = Server::start(env, dir, rest)?;
    let want = load.warmup + load.events;
    // The measured span starts when the client has had its warm-up acknowledged.
    let mut measure_start = None;
    let mut cpu_before = None;
    let client = run_client(env, &server.url, load, || {
        measure_start = Some(Instant::now());
        cpu_before = server.cpu_seconds().ok();
    })?;
    let (Some(measure_start), Some(cpu_before)) = (measure_start, cpu_before) else {
        return Err("the load client never reported the end of its warm-up".into());
    };
    if client.accepted != load.events {
        return Err(format!(
            "{} of {} events acknowledged",
            client.accepted, load.events
        ));
    }
    let reached = wait_for_counts(
        receiver,
        &[("hec", want)],
        measure_start,
        deadline_for(want),
        || Ok(()),
    )?;
    let cpu_after = server.cpu_seconds()?;
    let rss = server.peak_rss_mb()?;
    server.stop()?;
    check_exact(receiver, &[("hec", want)])?;
    let cpu = cpu_after - cpu_before;
    let delivered_rate = load.events as f64 / reached[0].as_secs_f64();
    Ok((client, delivered_rate, per_100k(cpu, load.events), rss))
}

fn intake(env: &Env) -> Result {
    let events = env.events(200_000);
    println!(
        "POST /v1/events, batches of 100, 4 requests in flight, {events} events after {WARMUP} warm-up events; one HEC sink"
    );
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for round in 1..=env.options.runs {
        let dir = env.run_dir(&format!("intake-{round}"))?;
        let receiver = env.receiver(&[])?;
        let rest = env.hec_sink(&receiver, "");
        let load = Load::bulk(events);
        match http_run(env, &dir, &receiver, &rest, &load) {
            Ok((client, delivered, cpu, rss)) => {
                println!(
                    "round {round}: {:>8.0} events/s acknowledged (202) over {:.2} s, {:>8.0} events/s delivered to HEC, {cpu:.2} CPU-s/100k, {rss:.1} MB peak RSS",
                    client.rate, client.seconds, delivered
                );
                for (column, value) in columns.iter_mut().zip([client.rate, delivered, cpu, rss]) {
                    column.push(value);
                }
            }
            Err(e) => println!("round {round}: FAILED: {e}"),
        }
    }
    println!(
        "\n{}",
        table(
            &[
                "acknowledged events/s",
                "delivered events/s",
                "CPU-s per 100k",
                "peak RSS MB"
            ],
            &[("vowguard http intake".into(), columns)],
            &[0, 0, 2, 1]
        )
    );
    Ok(())
}

/// The value of a Prometheus sample without labels (`name value`) in `text`.
/// The value of metric `name` in Prometheus text, summed over its label sets (`name 3`,
/// `name{notifier="a"} 1`, `name{notifier="b"} 2` give 3); `None` when absent.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| {
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .reduce(|a, b| a + b)
}

fn alert_lag(env: &Env) -> Result {
    let events = env.events(200_000);
    println!(
        "POST /v1/events, batches of 100, 4 requests in flight, {events} events after {WARMUP} warm-up events; one HEC sink; \
         alerts: one Slack webhook notifier (the receiver), default routes, grouping and inhibition; /metrics every 50 ms"
    );
    // Without a rate limit (the receiver is not Slack), and with Slack's own (1 message a
    // second) over 20 times the events: long enough for the P0 groups to flush twice
    // (group_wait 10 s, group_interval 1 m) while Slack is still minutes behind. Routing
    // must not wait for the channel, so the lag should not differ much.
    let variants: [(&str, &str, u64); 2] = [
        (
            "no rate limit",
            "rate_limit = { per_second = 10000.0, burst = 10000 }\n",
            events,
        ),
        (
            "Slack's limit, 1 message/s, 20x the events",
            "",
            events * 20,
        ),
    ];
    let mut rows: Vec<(String, Vec<Vec<f64>>)> = variants
        .iter()
        .map(|(label, _, _)| ((*label).to_owned(), vec![Vec::new(); 7]))
        .collect();
    for round in 1..=env.options.runs {
        for (variant, (label, rate_limit, events)) in variants.iter().enumerate() {
            let columns = &mut rows[variant].1;
            let dir = env.run_dir(&format!("alert-lag-{round}-{variant}"))?;
            let receiver = env.receiver(&[])?;
            // A webhook URL is a secret: read from a file, as a deployment would.
            let webhook = dir.join("slack-webhook-url");
            std::fs::write(
                &webhook,
                format!("http://{}/slack/alerts", receiver.address),
            )
            .map_err(|e| format!("cannot write {}: {e}", webhook.display()))?;
            let rest = format!(
                "{}\n[notifiers.secops]\ntype = \"slack\"\nwebhook_url = {{ file = \"{}\" }}\n{rate_limit}",
                env.hec_sink(&receiver, ""),
                webhook.display()
            );
            let server = Server::start(env, &dir, &rest)?;
            let address = server.url.trim_start_matches("http://").to_owned();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let sampler = {
                let (address, stop) = (address.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut largest = 0.0_f64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Some(lag) = http_get(&address, "/metrics")
                            .ok()
                            .and_then(|t| metric(&t, "vowguard_alert_path_lag_events"))
                        {
                            largest = largest.max(lag);
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    largest
                })
            };
            let load = Load::bulk(*events);
            let client = run_client(env, &server.url, &load, || {});
            let intake_end = Instant::now();
            // Caught up: nothing left to route (read until the lag is 0, at most 120 s).
            let mut caught_up = None;
            let mut last = (None, None);
            let mut coalesced = None;
            let mut waiting = None;
            // A failed client run is reported below; there is nothing to wait for.
            while client.is_ok() && intake_end.elapsed() < Duration::from_secs(120) {
                let text = http_get(&address, "/metrics").unwrap_or_default();
                last = (
                    metric(&text, "vowguard_alert_path_lag_events"),
                    metric(&text, "vowguard_alerts_routed_total"),
                );
                if metric(&text, "vowguard_alert_path_lag_events") == Some(0.0)
                    && metric(&text, "vowguard_events_journaled_total")
                        .is_some_and(|n| n >= (load.warmup + load.events) as f64)
                {
                    caught_up = Some((
                        intake_end.elapsed(),
                        metric(&text, "vowguard_alerts_routed_total"),
                    ));
                    coalesced = metric(&text, "vowguard_notifier_coalesced_total");
                    waiting = metric(&text, "vowguard_notifier_queued");
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let largest = sampler.join().unwrap_or(f64::NAN);
            server.stop()?;
            let client = match client {
                Ok(client) => client,
                Err(e) => {
                    println!("round {round} ({label}): FAILED: {e}");
                    continue;
                }
            };
            let Some((after, routed)) = caught_up else {
                println!(
                    "round {round} ({label}): FAILED: the alert path had not caught up 120 s after intake ended (lag {:?} events, {:?} alerts handed over)",
                    last.0, last.1
                );
                continue;
            };
            let behind = largest / client.rate;
            println!(
                "round {round} ({label}): {:.0} events/s acknowledged; alert path at most {largest:.0} events ({behind:.3} s) behind; \
             everything routed {:.3} s after the last acknowledgement; {} alerts handed to the notifier, {} merged into a waiting one, {} waiting for it",
                client.rate,
                after.as_secs_f64(),
                routed.map_or_else(|| "?".to_owned(), |r| format!("{r:.0}")),
                coalesced.map_or_else(|| "?".to_owned(), |r| format!("{r:.0}")),
                waiting.map_or_else(|| "?".to_owned(), |r| format!("{r:.0}")),
            );
            for (column, value) in columns.iter_mut().zip([
                client.rate,
                largest,
                behind,
                after.as_secs_f64(),
                routed.unwrap_or(f64::NAN),
                coalesced.unwrap_or(f64::NAN),
                waiting.unwrap_or(f64::NAN),
            ]) {
                column.push(value);
            }
        }
    }
    println!(
        "\n{}",
        table(
            &[
                "acknowledged events/s",
                "largest lag, events",
                "largest lag ÷ rate, s",
                "routed everything after, s",
                "alerts handed over",
                "merged into a waiting one",
                "waiting for the channel"
            ],
            &rows,
            &[0, 0, 3, 3, 0, 0, 0]
        )
    );
    Ok(())
}

fn five_sinks(env: &Env) -> Result {
    let events = env.events(200_000);
    let input = env.work.join("five-sinks.ndjson");
    write_events(&input, events as usize)?;
    println!(
        "stdin → journal → five sinks at once, {events} events; per sink: events over the time from vowguard's start (startup included) until that sink's receiver had them all"
    );
    let sinks = [
        ("hec", "splunk_hec"),
        ("bulk", "elasticsearch"),
        ("datadog", "datadog_logs"),
        ("cef", "arcsight"),
        ("leef", "qradar"),
    ];
    let mut per_sink: Vec<Vec<f64>> = vec![Vec::new(); sinks.len()];
    let (mut cpu, mut rss) = (Vec::new(), Vec::new());
    for round in 1..=env.options.runs {
        let dir = env.run_dir(&format!("five-{round}"))?;
        let receiver = env.receiver(&[])?;
        let http = &receiver.address;
        let extra = env.sink_extra();
        let rest = format!(
            "{}\n[sinks.elastic]\ntype = \"elasticsearch\"\nendpoint = \"http://{http}\"\nindex = \"bench\"\n{extra}\n\
             [sinks.datadog]\ntype = \"datadog_logs\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\nendpoint = \"http://{http}\"\napi_endpoint = \"http://{http}\"\n{extra}\n\
             [sinks.arcsight]\ntype = \"arcsight\"\n{extra}[sinks.arcsight.syslog]\naddress = \"{syslog}\"\ntransport = \"tcp\"\n\n\
             [sinks.qradar]\ntype = \"qradar\"\n{extra}[sinks.qradar.syslog]\naddress = \"{syslog}\"\ntransport = \"tcp\"\n",
            env.hec_sink(&receiver, ""),
            syslog = receiver.syslog,
        );
        let wanted: Vec<(&str, u64)> = sinks.iter().map(|(key, _)| (*key, events)).collect();
        match run_stdin(env, &dir, &rest, &input, &receiver, &wanted, events) {
            Ok(run) => {
                let mut line = format!("round {round}:");
                for (i, ((_, kind), at)) in sinks.iter().zip(&run.reached).enumerate() {
                    let rate = events as f64 / at.as_secs_f64();
                    let _ = write!(line, " {kind} {rate:.0}/s;");
                    per_sink[i].push(rate);
                }
                let c = per_100k(run.cpu_seconds, events);
                let _ = write!(
                    line,
                    " exited after {:.2} s, {c:.2} CPU-s/100k, {:.1} MB peak RSS",
                    run.wall.as_secs_f64(),
                    run.peak_rss_mb
                );
                println!("{line}");
                cpu.push(c);
                rss.push(run.peak_rss_mb);
            }
            Err(e) => println!("round {round}: FAILED: {e}"),
        }
    }
    let rows: Vec<(String, Vec<Vec<f64>>)> = sinks
        .iter()
        .zip(per_sink)
        .map(|((_, kind), rates)| ((*kind).to_owned(), vec![rates]))
        .collect();
    println!("\n{}", table(&["events/s"], &rows, &[0]));
    println!(
        "whole process: {} CPU-s per 100k events (all five sinks), {} MB peak RSS (min / median / max)\n",
        if cpu.is_empty() {
            "–".into()
        } else {
            spread(cpu.into_iter(), 2)
        },
        if rss.is_empty() {
            "–".into()
        } else {
            spread(rss.into_iter(), 1)
        }
    );
    let _ = std::fs::remove_file(&input);
    Ok(())
}

fn hec_ack(env: &Env) -> Result {
    let events = env.events(200_000);
    let input = env.work.join("hec-ack.ndjson");
    write_events(&input, events as usize)?;
    println!(
        "stdin → journal → HEC; the receiver holds every answer (events and ack polls) 50 ms; indexer acknowledgement on (the sink's other settings at their defaults{}); {events} events; events/s until every ack id was reported indexed (startup included)",
        if env.options.sink_toml.is_empty() {
            String::new()
        } else {
            format!(", plus `{}`", env.options.sink_toml)
        }
    );
    let (mut rates, mut cpu) = (Vec::new(), Vec::new());
    for round in 1..=env.options.runs {
        let dir = env.run_dir(&format!("ack-{round}"))?;
        let receiver = env.receiver(&["--delay-ms", "50", "--ack"])?;
        let rest = env.hec_sink(&receiver, "acknowledgements = { enabled = true }\n");
        match run_stdin(
            env,
            &dir,
            &rest,
            &input,
            &receiver,
            &[("hec_acked", events), ("hec", events)],
            events,
        ) {
            Ok(run) => {
                let rate = events as f64 / run.reached[0].as_secs_f64();
                let c = per_100k(run.cpu_seconds, events);
                let requests = receiver.stats()?.get("hec_requests").copied().unwrap_or(0);
                println!(
                    "round {round}: {rate:>8.0} events/s acknowledged, {requests} event requests, {c:.2} CPU-s/100k, {:.1} MB peak RSS",
                    run.peak_rss_mb
                );
                rates.push(rate);
                cpu.push(c);
            }
            Err(e) => println!("round {round}: FAILED: {e}"),
        }
    }
    println!(
        "\n{}",
        table(
            &["events/s (acked)", "CPU-s per 100k"],
            &[("HEC, 50 ms, acks on".into(), vec![rates, cpu])],
            &[0, 2]
        )
    );
    let _ = std::fs::remove_file(&input);
    Ok(())
}

fn enrich_blackhole(env: &Env) -> Result {
    let events = env.events(50_000);
    println!(
        "POST /v1/events (batches of 100, 4 in flight, every event stamped), {events} events, no warm-up (the first timeouts count), one HEC sink; \
         run A: no enrichers; run B: misp, abuseipdb, virustotal and otx all pointed at a listener that accepts and never answers; \
         enrichment_budget_ms = {ENRICHMENT_BUDGET_MS}, enricher timeouts and breaker at their defaults. Same round, A then B."
    );
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for round in 1..=env.options.runs {
        let mut round_rates = Vec::new();
        let mut latency_b = None;
        for blackholed in [false, true] {
            let label = if blackholed { "B" } else { "A" };
            let dir = env.run_dir(&format!("blackhole-{round}-{label}"))?;
            let receiver = env.receiver(&["--blackhole"])?;
            let mut rest = format!("[pipeline]\nenrichment_budget_ms = {ENRICHMENT_BUDGET_MS}\n\n");
            if blackholed {
                let hole = receiver
                    .blackhole
                    .clone()
                    .ok_or("the receiver did not open its black hole")?;
                let _ = write!(
                    rest,
                    "[enrichers.misp]\ntype = \"misp\"\nurl = \"http://{hole}\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\n\n\
                     [enrichers.abuseipdb]\ntype = \"abuseipdb\"\nbase_url = \"http://{hole}\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\n\n\
                     [enrichers.virustotal]\ntype = \"virustotal\"\nbase_url = \"http://{hole}\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\n\n\
                     [enrichers.otx]\ntype = \"otx\"\nbase_url = \"http://{hole}\"\napi_key = {{ env = \"BENCH_TOKEN\" }}\n\n"
                );
            }
            rest.push_str(&env.hec_sink(&receiver, ""));
            let load = Load {
                events,
                batch: 100,
                concurrency: 4,
                rate: 0,
                stamp: true,
                // No warm-up: the first lookups that time out (before the enricher
                // breakers open) must be inside the figures.
                warmup: 0,
            };
            match http_run(env, &dir, &receiver, &rest, &load) {
                Ok((client, _, _, _)) => {
                    let stats = receiver.stats()?;
                    let max_ms = stats.get("latency_max_us").copied().unwrap_or(0) as f64 / 1e3;
                    let p99_ms = stats.get("latency_p99_us").copied().unwrap_or(0) as f64 / 1e3;
                    println!(
                        "round {round} {label}: {:>8.0} events/s acknowledged; POST → SIEM p99 {p99_ms:.1} ms, max {max_ms:.1} ms",
                        client.rate
                    );
                    round_rates.push(client.rate);
                    if blackholed {
                        latency_b = Some((p99_ms, max_ms));
                    }
                }
                Err(e) => println!("round {round} {label}: FAILED: {e}"),
            }
        }
        if let (&[a, b], Some((p99, max))) = (&round_rates[..], latency_b) {
            println!(
                "round {round}: B / A intake = {:.2}; max latency {max:.0} ms against a budget + 1 s of {} ms",
                b / a,
                ENRICHMENT_BUDGET_MS + 1_000
            );
            for (column, value) in columns.iter_mut().zip([a, b, b / a, p99, max]) {
                column.push(value);
            }
        }
    }
    println!(
        "\n{}",
        table(
            &[
                "A: no enrichers, events/s",
                "B: black-holed, events/s",
                "B / A",
                "B: p99 ms",
                "B: max ms"
            ],
            &[("intake".into(), columns)],
            &[0, 0, 2, 1, 1]
        )
    );
    Ok(())
}

fn latency(env: &Env) -> Result {
    let events = env.events(100_000);
    println!(
        "POST /v1/events at a steady 10 000 events/s (batches of 100 every 10 ms, up to 8 in flight), {events} stamped events after {WARMUP} warm-up events; \
         latency = the receiver's arrival time − the client's send time of each event's request (same machine clock)"
    );
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for round in 1..=env.options.runs {
        let dir = env.run_dir(&format!("latency-{round}"))?;
        let receiver = env.receiver(&[])?;
        let rest = env.hec_sink(&receiver, "");
        let load = Load {
            events,
            batch: 100,
            concurrency: 8,
            rate: 10_000,
            stamp: true,
            warmup: WARMUP,
        };
        match http_run(env, &dir, &receiver, &rest, &load) {
            Ok((client, _, _, _)) => {
                let stats = receiver.stats()?;
                let ms = |k: &str| stats.get(k).copied().unwrap_or(0) as f64 / 1e3;
                let count = stats.get("latency_count").copied().unwrap_or(0);
                if count != events {
                    println!(
                        "round {round}: FAILED: {count} latencies recorded for {events} events"
                    );
                    continue;
                }
                println!(
                    "round {round}: sent at {:.0} events/s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    client.rate,
                    ms("latency_p50_us"),
                    ms("latency_p99_us"),
                    ms("latency_max_us")
                );
                for (column, value) in columns.iter_mut().zip([
                    client.rate,
                    ms("latency_p50_us"),
                    ms("latency_p99_us"),
                    ms("latency_max_us"),
                ]) {
                    column.push(value);
                }
            }
            Err(e) => println!("round {round}: FAILED: {e}"),
        }
    }
    println!(
        "\n{}",
        table(
            &["achieved events/s", "p50 ms", "p99 ms", "max ms"],
            &[("POST → HEC receiver".into(), columns)],
            &[0, 1, 1, 1]
        )
    );
    Ok(())
}

fn steady_cpu(env: &Env) -> Result {
    let events = env.events(30_000);
    println!(
        "POST /v1/events → one HEC sink, {events} events per run after {WARMUP} warm-up events: bulk (as fast as acknowledged, 4 in flight), then a steady 1 000 and 5 000 events/s (batches of 100); \
         vowguard's CPU (user + system, /proc) from the end of the warm-up until the receiver had every event"
    );
    let modes: [(&str, u64); 3] = [("bulk", 0), ("1k/s", 1_000), ("5k/s", 5_000)];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for round in 1..=env.options.runs {
        let mut figures = Vec::new();
        for (label, rate) in modes {
            let dir = env.run_dir(&format!("steady-{round}-{rate}"))?;
            let receiver = env.receiver(&[])?;
            let rest = env.hec_sink(&receiver, "");
            let load = Load {
                events,
                batch: 100,
                concurrency: 4,
                rate,
                stamp: false,
                warmup: WARMUP,
            };
            match http_run(env, &dir, &receiver, &rest, &load) {
                Ok((client, _, c, _)) => {
                    println!(
                        "round {round} {label}: sent at {:.0} events/s over {:.1} s; {c:.2} CPU-s per 100k events",
                        client.rate, client.seconds
                    );
                    figures.push(Some(c));
                }
                Err(e) => {
                    println!("round {round} {label}: FAILED: {e}");
                    figures.push(None);
                }
            }
        }
        for (i, figure) in figures.iter().enumerate() {
            if let Some(c) = figure {
                cpu[i].push(*c);
            }
        }
        if let [Some(bulk), Some(one), Some(five)] = figures[..] {
            ratios[0].push(one / bulk);
            ratios[1].push(five / bulk);
            println!(
                "round {round}: 1k/s ÷ bulk = {:.2}, 5k/s ÷ bulk = {:.2}",
                one / bulk,
                five / bulk
            );
        }
    }
    let rows: Vec<(String, Vec<Vec<f64>>)> = modes
        .iter()
        .zip(cpu)
        .map(|((label, _), c)| (format!("CPU-s per 100k, {label}"), vec![c]))
        .chain([
            ("ratio 1k/s ÷ bulk".to_owned(), vec![ratios[0].clone()]),
            ("ratio 5k/s ÷ bulk".to_owned(), vec![ratios[1].clone()]),
        ])
        .collect();
    println!("\n{}", table(&["value"], &rows, &[2]));
    Ok(())
}

fn rss(env: &Env) -> Result {
    let events = env.events(1_000_000);
    let small = (events / 10).max(1);
    println!(
        "stdin → journal → HEC, peak RSS (GNU time, ru_maxrss) at {events} and at {small} events, same round"
    );
    let big_input = env.work.join("rss-big.ndjson");
    let small_input = env.work.join("rss-small.ndjson");
    write_events(&big_input, events as usize)?;
    write_events(&small_input, small as usize)?;
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for round in 1..=env.options.runs {
        let mut figures = Vec::new();
        for (label, input, count) in [("small", &small_input, small), ("big", &big_input, events)] {
            let dir = env.run_dir(&format!("rss-{round}-{label}"))?;
            let receiver = env.receiver(&[])?;
            let rest = env.hec_sink(&receiver, "");
            match run_stdin(env, &dir, &rest, input, &receiver, &[("hec", count)], count) {
                Ok(run) => {
                    let rate = count as f64 / run.wall.as_secs_f64();
                    println!(
                        "round {round}: {count} events: {:.1} MB peak RSS, {rate:.0} events/s (start to exit)",
                        run.peak_rss_mb
                    );
                    figures.push((run.peak_rss_mb, rate));
                }
                Err(e) => println!("round {round} {count} events: FAILED: {e}"),
            }
        }
        if let [(small_rss, _), (big_rss, big_rate)] = figures[..] {
            for (column, value) in
                columns
                    .iter_mut()
                    .zip([small_rss, big_rss, big_rss / small_rss, big_rate])
            {
                column.push(value);
            }
        }
    }
    println!(
        "\n{}",
        table(
            &[
                &format!("peak RSS MB at {small}"),
                &format!("peak RSS MB at {events}"),
                "ratio",
                &format!("events/s at {events}")
            ],
            &[("vowguard stdin → HEC".into(), columns)],
            &[1, 1, 2, 0]
        )
    );
    let _ = std::fs::remove_file(&big_input);
    let _ = std::fs::remove_file(&small_input);
    Ok(())
}
