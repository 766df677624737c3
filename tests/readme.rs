//! The README cannot drift: every ```sh command block is run and every ```toml block is
//! parsed, verbatim, against the real `vowguard` binary.
//!
//! How the commands are run: each command line (with `\` continuations joined) goes to
//! `sh -c` in a scratch copy of the repository's `config/` folder, with
//! `./target/release/vowguard` standing for the binary cargo built for this test. It must
//! exit 0. The documented exceptions, and nothing else:
//!
//! * not run: the two top-level commands (`cargo run --example wedding_day`, `cargo xtask
//!   ci`: CI runs both itself), `cargo deny check advisories` (needs the RustSec database
//!   from the network), `cargo build` (this test's binary is already built) and the two
//!   `cargo xtask fuzz` examples (`cargo xtask ci` runs every fuzz target itself);
//! * `export NAME=...` lines (secrets for the real vendors) are not run: the test supplies
//!   those variables pointing at local mocks, and rewrites `endpoint` in the scratch copy of
//!   `config/stdin.toml` to a local Splunk HEC mock;
//! * the admin API `curl` examples run against a server the test starts with the admin token
//!   set; `127.0.0.1:8686` becomes that server's port, and each answer must be JSON with the
//!   documented top-level shape (the routing answer's details belong to the router).
//!
//! TOML blocks: a configuration block must parse and assemble; a `[[cases]]` block must be
//! exactly what `config/route-cases.toml` holds (which the `route test` command runs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{free_port, spawn_run, terminate, wait_healthy};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADMIN_TOKEN: &str = "readme-admin-token-5c2e";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fenced blocks of `lang` in the README, in order.
fn blocks(lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line.starts_with("```") => out.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```{lang} block");
    out
}

/// The command lines of a sh block: continuations joined, comment lines and trailing
/// `  # comments` dropped.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let command = match pending.find("  #").or_else(|| pending.find("\t#")) {
            Some(at) => pending[..at].trim_end().to_owned(),
            None => pending.trim_end().to_owned(),
        };
        out.push(command);
        pending.clear();
    }
    out
}

const NOT_RUN: &[&str] = &[
    "cargo run --example wedding_day",
    "cargo xtask ci",
    "cargo deny check advisories",
    "cargo build --release -p vowguard-runtime",
    "cargo xtask fuzz",
    "cargo xtask fuzz cef 600",
];

async fn mocks() -> (MockServer, MockServer) {
    let hec = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .mount(&hec)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    (hec, slack)
}

/// A scratch copy of `config/`, with Splunk's endpoint pointed at the mock.
fn scratch(hec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    for entry in std::fs::read_dir(root().join("config")).unwrap().flatten() {
        std::fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
    }
    let stdin = config.join("stdin.toml");
    let text = std::fs::read_to_string(&stdin).unwrap();
    assert!(text.contains("endpoint = \"https://splunk.example.org:8088\""));
    std::fs::write(&stdin, text.replace("https://splunk.example.org:8088", hec)).unwrap();
    dir
}

fn sh(command: &str, cwd: &Path, env: &[(&str, String)]) -> (bool, String, String) {
    let binary = env!("CARGO_BIN_EXE_vowguard");
    let command = command.replace("./target/release/vowguard", binary);
    let output = Command::new("sh")
        .args(["-c", &command])
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_command_runs_as_written() {
    let (hec, slack) = mocks().await;
    let dir = scratch(&hec.uri());
    let slack_url = format!("{}/services/T0/B0/readme", slack.uri());
    let env = [("SLACK_WEBHOOK_URL", slack_url.clone())];

    // The admin API's server, for the curl examples.
    let port = free_port();
    let server_config = dir.path().join("server.toml");
    std::fs::write(
        &server_config,
        format!(
            r#"
data_dir = "server-data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "VOWGUARD_ADMIN_TOKEN" }}
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "2s"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "SPLUNK_HEC_TOKEN" }}
[notifiers.secops]
type = "slack"
webhook_url = {{ env = "SLACK_WEBHOOK_URL" }}
"#,
            hec = hec.uri()
        ),
    )
    .unwrap();
    let server = spawn_run(
        &server_config,
        &[
            ("VOWGUARD_ADMIN_TOKEN", ADMIN_TOKEN),
            ("SPLUNK_HEC_TOKEN", "readme-hec"),
            ("SLACK_WEBHOOK_URL", &slack_url),
        ],
        Stdio::null(),
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, port).await;

    let mut ran = 0;
    let mut curls = 0;
    for block in blocks("sh") {
        for command in commands(&block) {
            if NOT_RUN.contains(&command.as_str()) {
                continue;
            }
            if let Some(assignment) = command.strip_prefix("export ") {
                let name = assignment.split('=').next().unwrap();
                assert!(
                    env.iter().any(|(n, _)| *n == name),
                    "the README exports {name}, which this test does not supply"
                );
                continue;
            }
            let (command, env) = if command.starts_with("curl ") {
                curls += 1;
                (
                    command.replace("127.0.0.1:8686", &format!("127.0.0.1:{port}")),
                    vec![("VOWGUARD_ADMIN_TOKEN", ADMIN_TOKEN.to_owned())],
                )
            } else {
                (command.clone(), env.to_vec())
            };
            assert!(
                command.starts_with("curl ")
                    || command.contains("./target/release/vowguard ")
                    || command.contains(env!("CARGO_BIN_EXE_vowguard")),
                "a README command this test does not know how to run: {command}"
            );
            let (ok, stdout, stderr) = sh(&command, dir.path(), &env);
            assert!(ok, "README command failed: {command}\n{stdout}\n{stderr}");
            ran += 1;
            if command.contains("test-siem-integration") {
                let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                assert!(answer["event_id"].is_string(), "{answer}");
                assert_eq!(answer["sinks"]["splunk"]["status"], "ok", "{answer}");
            }
            if command.contains("test-alert-routing") {
                let answer: serde_json::Value =
                    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
                // What the README's example answer says: a dry run whose decision is the
                // live router's (active wedding protection raises P1 to P0, with its actions).
                assert_eq!(answer["test"], true, "{answer}");
                assert_eq!(answer["requested_priority"], "P1_HIGH", "{answer}");
                assert_eq!(answer["decision"]["priority"], "P0_CRITICAL", "{answer}");
                let actions = answer["decision"]["actions"].to_string();
                for action in [
                    "lock_accounts",
                    "read_only_mode",
                    "notify_wedding_coordinator",
                ] {
                    assert!(actions.contains(action), "{answer}");
                }
                assert!(answer["decision"]["inhibited"].is_null(), "{answer}");
                assert_eq!(answer["routed"], true, "{answer}");
                assert!(answer["alerts"].is_array(), "{answer}");
            }
            if command.contains(" run --config config/stdin.toml") {
                assert!(stderr.is_empty() || !stderr.contains("ERROR"), "{stderr}");
            }
        }
    }
    assert!(ran >= 10 && curls == 2, "ran {ran} commands, {curls} curl");
    let received = hec.received_requests().await.unwrap_or_default();
    let events: usize = received
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            String::from_utf8_lossy(&r.body)
                .matches("\"evt-000")
                .count()
        })
        .sum();
    assert!(events >= 5, "the sample events reached Splunk: {events}");

    terminate(&server);
    let _ = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.wait()
    })
    .await;
}

#[test]
fn every_readme_toml_block_parses() {
    let cases_file = std::fs::read_to_string(root().join("config/route-cases.toml")).unwrap();
    let mut configs = 0;
    for block in blocks("toml") {
        if block.contains("[[cases]]") {
            assert!(
                cases_file.contains(&block),
                "the README's route cases are not config/route-cases.toml's:\n{block}"
            );
            vowguard_router::CasesFile::from_toml(&block).unwrap();
            continue;
        }
        let config = vowguard_runtime::Config::parse(&block)
            .unwrap_or_else(|e| panic!("a README config block does not parse: {e}\n{block}"));
        let secrets = vowguard_core::SecretMap::new()
            .with("MISP_API_KEY", "readme-misp-key-0123456789")
            .with("RF_API_TOKEN", "readme-rf-token-0123456789")
            .with("TC_SECRET_KEY", "readme-tc-secret-0123456789")
            .with("TC_API_TOKEN", "readme-tc-token-0123456789")
            .with("SPLUNK_HEC_TOKEN", "readme-hec-token")
            .with("TENABLE_ACCESS_KEY", "readme-tenable-access")
            .with("TENABLE_SECRET_KEY", "readme-tenable-secret")
            .with("GVMD_PASSWORD", "readme-gvmd-password")
            .with(
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/x",
            )
            .with("STRIPE_WEBHOOK_SECRET", "whsec_readme_new")
            .with("STRIPE_WEBHOOK_SECRET_OLD", "whsec_readme_old")
            .with(
                "VENUE_WEBHOOK_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            )
            .with("FLORIST_WEBHOOK_SECRET", "readme-florist-secret")
            .with("NATS_PASSWORD", "readme-nats-password")
            .with("JIRA_API_TOKEN", "readme-jira-token")
            .with("SN_TOKEN", "readme-servicenow-token")
            .with("JIRA_WEBHOOK_SECRET", "readme-jira-webhook-secret")
            .with(
                "SERVICENOW_WEBHOOK_TOKEN",
                "readme-servicenow-webhook-token",
            );
        vowguard_runtime::assemble(
            &config,
            &vowguard_runtime::Environment {
                config_dir: Path::new("/tmp"),
                secrets: &secrets,
            },
        )
        .unwrap_or_else(|e| panic!("a README config block does not assemble: {e}\n{block}"));
        configs += 1;
    }
    assert!(configs >= 1);
}
