//! Project automation (the rust-analyzer xtask convention): `cargo xtask <command>`.
//!
//! * `ci`: everything CI checks, in order: formatting, clippy with `-D warnings`, the test
//!   prerequisites (rsyslog, aiosmtpd), every test of every crate with all features,
//!   doc tests, a run of the demo, the feature-isolation check, and cargo-deny (bans,
//!   licenses, sources).
//! * `demo`: the wedding-day demo against local mocks.
//! * `bench`: the benchmarks (release build), figures printed for BENCHMARKS.md.
//! * `fuzz [target] [seconds]`: the cargo-fuzz targets in `fuzz/` (see `fuzz.rs`).
#![allow(clippy::print_stdout)]

mod fuzz;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => cargo(&["run", "--example", "wedding_day"]),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | demo | bench [encoders|pipeline|notify|http|journal] | fuzz [target] [seconds]>"
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

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ci() -> Result {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    prerequisites()?;
    if succeeds("cargo", &["nextest", "--version"]) {
        cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ])?;
    } else {
        cargo(&[
            "test",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ])?;
    }
    cargo(&["test", "--workspace", "--all-features", "--locked", "--doc"])?;
    // README command 1 must keep working: run the demo end to end (local mocks only).
    cargo(&["run", "--locked", "--example", "wedding_day"])?;
    feature_isolation()?;
    fuzz::run(fuzz::TARGETS, fuzz::CI_SECONDS)?;
    if !succeeds("cargo", &["deny", "--version"]) {
        cargo(&["install", "--locked", "cargo-deny"])?;
    }
    // The RustSec advisory database cannot be fetched from CI's network, so the
    // advisories check is left out here; README says how to run it where it can be.
    cargo(&["deny", "check", "bans", "licenses", "sources"])?;
    println!("\nxtask ci: all checks passed");
    Ok(())
}

/// What the test suites need from the machine: a real syslog daemon and a real SMTP server.
fn prerequisites() -> Result {
    if !succeeds(
        "sh",
        &[
            "-c",
            "command -v rsyslogd && test -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so -o -e /usr/lib/rsyslog/lmnsd_gtls.so",
        ],
    ) {
        run(
            "sh",
            &[
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog rsyslog-gnutls",
            ],
        )?;
    }
    if !succeeds("python3", &["-c", "import aiosmtpd"]) {
        run("python3", &["-m", "pip", "install", "--quiet", "aiosmtpd"])?;
    }
    Ok(())
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

fn bench(which: &[String]) -> Result {
    let all = ["encoders", "pipeline", "notify", "http", "journal"];
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
            "encoders" | "pipeline" | "notify" | "http" => cargo(&[
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
                    "unknown benchmark `{other}`; expected one of {}",
                    all.join(", ")
                ));
            }
        }
    }
    Ok(())
}
