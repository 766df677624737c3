//! `cargo xtask fuzz [target] [seconds]`: the cargo-fuzz targets in `fuzz/`.
//!
//! Builds every target once (release, debug assertions, AddressSanitizer), then runs the
//! chosen target, or each in turn, for `seconds` (default [`DEFAULT_SECONDS`]) and prints
//! executions, exec/s and the outcome per target. Fails when any target crashes.
//!
//! * cargo-fuzz needs nightly-only flags; the machine has the stable toolchain, so its
//!   commands run with `RUSTC_BOOTSTRAP=1` (set for those commands only).
//! * When `cargo fuzz` is missing it is installed with `cargo install --locked` into a
//!   private directory under the target dir (nothing else on the machine changes).
//! * The committed seeds in `fuzz/corpus/<target>/` are only read; what a run discovers
//!   goes to `<target dir>/fuzz/corpus/<target>/`, crashes to `fuzz/artifacts/<target>/`
//!   (ignored by git), with the command that replays them printed by libFuzzer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Result;

/// Every fuzz target, as named in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: &[&str] = &[
    "event_json",
    "http_body",
    "config_toml",
    "journal_recovery",
    "cef",
    "leef",
    "syslog",
    "splunk_hec",
    "ecs_bulk",
    "datadog",
    "slack",
    "teams",
    "pagerduty",
    "sms",
    "email",
    "greenbone_xml",
    "qualys_xml",
    "nessus_xml",
    "webhook_verify",
];

/// Seconds per target when none is given.
pub(crate) const DEFAULT_SECONDS: u64 = 10;

/// Seconds per target in `cargo xtask ci`.
pub(crate) const CI_SECONDS: u64 = 10;

/// libFuzzer's `-seed` in `cargo xtask ci`: the check a commit gets is the same on every
/// run (as far as a time-bounded run can be), so a red CI points at the change, not at
/// the dice. `cargo xtask fuzz` leaves the seed random to keep exploring; libFuzzer prints
/// the seed it chose (`INFO: Seed: N`), and crashes land in `fuzz/artifacts/`.
pub(crate) const CI_SEED: u32 = 20_261_201;

/// What one target's run did.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    seconds: f64,
    passed: bool,
}

/// `cargo xtask fuzz [target] [seconds]`.
pub(crate) fn command(args: &[String]) -> Result {
    let (target, seconds) = match args {
        [] => (None, DEFAULT_SECONDS),
        [one] => match one.parse::<u64>() {
            Ok(seconds) => (None, seconds),
            Err(_) => (Some(one.as_str()), DEFAULT_SECONDS),
        },
        [target, seconds] => (
            Some(target.as_str()),
            seconds
                .parse()
                .map_err(|_| format!("seconds must be a whole number, got {seconds:?}"))?,
        ),
        _ => return Err("usage: cargo xtask fuzz [target|all] [seconds]".into()),
    };
    let targets: Vec<&'static str> = match target {
        None | Some("all") => TARGETS.to_vec(),
        Some(name) => match TARGETS.iter().find(|t| **t == name) {
            Some(t) => vec![*t],
            None => {
                return Err(format!(
                    "unknown fuzz target `{name}`; expected one of {}",
                    TARGETS.join(", ")
                ));
            }
        },
    };
    run(&targets, seconds, None)
}

/// Builds the targets, then runs each for `seconds` (with libFuzzer's `-seed=seed` when
/// given); fails when any crashes.
pub(crate) fn run(targets: &[&'static str], seconds: u64, seed: Option<u32>) -> Result {
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let target_dir = target_dir(&root).join("fuzz");
    let cargo_fuzz = cargo_fuzz(&root)?;
    let started = Instant::now();
    cargo_fuzz.run(
        &fuzz_dir,
        &[
            "build",
            "--release",
            "--debug-assertions",
            "--target-dir",
            &target_dir.to_string_lossy(),
        ],
    )?;
    println!(
        "fuzz targets built in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let mut outcomes = Vec::new();
    for &target in targets {
        let seeds = fuzz_dir.join("corpus").join(target);
        let scratch = target_dir.join("corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let mut args: Vec<String> = [
            "run",
            "--release",
            "--debug-assertions",
            "--target-dir",
            &target_dir.to_string_lossy(),
            target,
            &scratch.to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if seeds.is_dir() {
            args.push(seeds.to_string_lossy().into_owned());
        }
        args.extend([
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
            "-print_final_stats=1".to_owned(),
            "-timeout=20".to_owned(),
            "-rss_limit_mb=2048".to_owned(),
            "-max_len=65536".to_owned(),
        ]);
        if let Some(seed) = seed {
            args.push(format!("-seed={seed}"));
        }
        println!("\n==> fuzz {target} for {seconds} s");
        let started = Instant::now();
        let (passed, stderr) = cargo_fuzz.run_captured(&fuzz_dir, &args)?;
        let executions = stderr
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .and_then(|n| n.trim().parse().ok());
        outcomes.push(Outcome {
            target,
            executions,
            seconds: started.elapsed().as_secs_f64(),
            passed,
        });
    }

    println!(
        "\n{:<18} {:>12} {:>9} {:>8}  result",
        "target", "executions", "exec/s", "seconds"
    );
    for o in &outcomes {
        let execs = o.executions.map_or("?".to_owned(), |n| n.to_string());
        let rate = o.executions.map_or("?".to_owned(), |n| {
            format!("{:.0}", n as f64 / o.seconds.max(0.001))
        });
        println!(
            "{:<18} {:>12} {:>9} {:>8.0}  {}",
            o.target,
            execs,
            rate,
            o.seconds,
            if o.passed { "ok" } else { "CRASH" }
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.target)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz target(s) failed: {} (inputs in fuzz/artifacts/<target>/)",
            failed.join(", ")
        ))
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// How to invoke cargo-fuzz.
enum CargoFuzz {
    /// `cargo fuzz ...` (installed where cargo finds it).
    Subcommand(String),
    /// A private install: `<dir>/bin/cargo-fuzz fuzz ...`.
    Binary(PathBuf),
}

impl CargoFuzz {
    fn command(&self, dir: &Path) -> Command {
        let mut command = match self {
            Self::Subcommand(cargo) => {
                let mut c = Command::new(cargo);
                c.arg("fuzz");
                c
            }
            Self::Binary(path) => {
                let mut c = Command::new(path);
                c.arg("fuzz");
                c
            }
        };
        command.current_dir(dir).env("RUSTC_BOOTSTRAP", "1");
        command
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Result {
        println!("\n==> cargo fuzz {}", args.join(" "));
        let status = self
            .command(dir)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`cargo fuzz {}` failed ({status})", args.join(" ")))
        }
    }

    /// Runs with stderr captured (libFuzzer reports there) and passed on as it comes,
    /// without the per-input `NEW` / `REDUCE` lines.
    fn run_captured(
        &self,
        dir: &Path,
        args: &[String],
    ) -> std::result::Result<(bool, String), String> {
        use std::io::BufRead as _;
        let mut child = self
            .command(dir)
            .args(args)
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let mut captured = String::new();
        if let Some(stderr) = child.stderr.take() {
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.map_err(|e| format!("reading cargo fuzz output: {e}"))?;
                let noisy =
                    line.starts_with('#') && (line.contains("NEW") || line.contains("REDUCE"));
                if !noisy {
                    eprintln!("{line}");
                }
                captured.push_str(&line);
                captured.push('\n');
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("waiting for cargo fuzz: {e}"))?;
        Ok((status.success(), captured))
    }
}

/// `cargo fuzz` if it works, else a private install under the target dir.
fn cargo_fuzz(root: &Path) -> std::result::Result<CargoFuzz, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if Command::new(&cargo)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Ok(CargoFuzz::Subcommand(cargo));
    }
    let tools = target_dir(root).join("xtask-tools");
    let binary = tools.join("bin").join("cargo-fuzz");
    if !binary.exists() {
        crate::cargo(&[
            "install",
            "--locked",
            "--root",
            &tools.to_string_lossy(),
            "cargo-fuzz",
        ])?;
    }
    Ok(CargoFuzz::Binary(binary))
}
