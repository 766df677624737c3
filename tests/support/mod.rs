//! Helpers shared by the tests that run the real `vowguard` binary (`end_to_end`, `crash`).
#![allow(dead_code, reason = "each test binary uses a subset")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `vowguard run --config CONFIG` with `env` (logs at warn), stdin and stdout closed.
pub(crate) fn spawn_run(config: &Path, env: &[(&str, &str)], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(["run", "--config", config.to_str().unwrap()])
        .envs(env.iter().copied())
        .env("VOWGUARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("vowguard starts")
}

/// Waits (at most 10 s) until `GET /health` answers on `port`.
pub(crate) async fn wait_healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..400 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("vowguard did not start listening on {port}");
}

/// Sends SIGTERM (a graceful shutdown).
pub(crate) fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The Prometheus text of `GET /metrics` on the binary listening on `port`.
pub(crate) async fn scrape_metrics(client: &reqwest::Client, port: u16) -> String {
    client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the /metrics body")
}
