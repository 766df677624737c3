//! The command line as a user meets it: `validate` refuses what `run` refuses, reports the
//! routes in effect, flags are checked, `--help` says what vowguard is, `connectors` lists
//! the sources.

use std::path::Path;
use std::process::{Command, Output};

fn vowguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env_remove("VOWGUARD_LOG")
        .env("CLI_TOKEN", "cli-token-value")
        .env(
            "CLI_SLACK_WEBHOOK",
            "https://hooks.slack.com/services/T0/B0/x",
        )
        .output()
        .expect("vowguard runs")
}

fn config(dir: &Path, text: &str) -> String {
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_owned()
}

const SINK: &str = r#"
[sinks.splunk]
type = "splunk_hec"
endpoint = "http://127.0.0.1:9"
token = { env = "CLI_TOKEN" }
"#;

const SLACK: &str = r#"
[notifiers.secops]
type = "slack"
webhook_url = { env = "CLI_SLACK_WEBHOOK" }
"#;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn validate_refuses_two_sources_like_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!("[sources.a]\ntype = \"stdin\"\n[sources.b]\ntype = \"stdin\"\n{SINK}"),
    );
    for command in ["validate", "run"] {
        let output = vowguard(
            &[command, "--config", &path, "--skip-healthchecks"]
                [..if command == "run" { 3 } else { 4 }],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(
                "`sources`: exactly one source can be configured, found `sources.a`, `sources.b`"
            ),
            "{command}: {}",
            stderr(&output)
        );
    }
    let path = config(dir.path(), SINK);
    let output = vowguard(&["validate", "--config", &path, "--skip-healthchecks"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no source configured"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_server_table_with_a_stdin_source_is_refused_naming_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!("[server]\nlisten = \"127.0.0.1:0\"\n[sources.in]\ntype = \"stdin\"\n{SINK}"),
    );
    let output = vowguard(&["validate", "--config", &path, "--skip-healthchecks"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`server`: only an http source uses the `[server]` table"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn validate_counts_the_default_routing_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!("[sources.in]\ntype = \"stdin\"\n{SINK}{SLACK}"),
    );
    let output = vowguard(&["validate", "--config", &path, "--skip-healthchecks"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout.contains("source `in` (stdin), 0 enricher(s), 1 sink(s), 1 notifier(s)"),
        "{stdout}"
    );
    let routes: usize = stdout
        .split(" route(s)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(routes > 0, "{stdout}");
    assert!(stdout.contains("(the default routing table"), "{stdout}");
}

#[test]
fn a_bad_log_level_is_an_error_naming_the_flag() {
    for bad in ["warning", "verbose", "info,", "vowguard=loud"] {
        let output = vowguard(&["--log-level", bad, "connectors"]);
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("--log-level"),
            "{bad}: {}",
            stderr(&output)
        );
    }
    for good in [
        "warn",
        "INFO",
        "off",
        "warn,vowguard_pipeline=debug",
        "vowguard_runtime=trace",
    ] {
        let output = vowguard(&["--log-level", good, "connectors"]);
        assert!(output.status.success(), "{good}: {}", stderr(&output));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .arg("connectors")
        .env("VOWGUARD_LOG", "warning")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn help_says_what_vowguard_is_and_connectors_lists_sources() {
    let output = vowguard(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.starts_with("vowguard forwards a wedding platform's security events to SIEMs"),
        "{help}"
    );
    assert!(
        !help.contains("The vowguard runtime: TOML config to components"),
        "{help}"
    );
    let output = vowguard(&["connectors"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for source in ["stdin", "http"] {
        assert!(
            stdout.lines().any(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some("source") && words.next() == Some(source)
            }),
            "{source}:\n{stdout}"
        );
    }
}
