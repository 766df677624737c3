//! End to end through the real binary: a `.nessus` scan imported with `vowguard vulns sync`,
//! then an attack on the host with an open critical CVE on the attacked port is raised and
//! its Slack alert names the CVE, while the same attack on a patched host is not raised.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCAN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<NessusClientData_v2><Report name="weekly">
<ReportHost name="10.20.0.5"><HostProperties>
<tag name="HOST_END">Thu Aug 15 10:12:34 2024</tag><tag name="host-ip">10.20.0.5</tag>
<tag name="host-fqdn">pay.internal.example</tag>
</HostProperties>
<ReportItem port="443" protocol="tcp" severity="4" pluginID="190000" pluginName="PAN-OS GlobalProtect &lt;command injection&gt;">
<cve>CVE-2024-3400</cve><cvss3_base_score>10.0</cvss3_base_score>
</ReportItem>
</ReportHost>
<ReportHost name="10.20.0.6"><HostProperties><tag name="host-ip">10.20.0.6</tag></HostProperties>
<ReportItem port="22" protocol="tcp" severity="2" pluginID="70658" pluginName="SSH weak MACs"/>
</ReportHost>
</Report></NessusClientData_v2>
"#;

fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("scan.nessus"), SCAN).unwrap();
    let text = r#"
data_dir = "data"

[sources.in]
type = "stdin"

[scanners.nessus]
type = "nessus_file"
paths = ["scan.nessus"]
refresh = "1h"

[notifiers.secops]
type = "slack"
webhook_url = { env = "E2E_SLACK_WEBHOOK" }

[[routes]]
name = "urgent"
match = { priority = ["P0", "P1"] }
notify = ["secops"]
"#;
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn vowguard(args: &[&str], stdin: &str, slack_url: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env("E2E_SLACK_WEBHOOK", slack_url)
        .env("VOWGUARD_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vowguard starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A medium-severity IDS alert against `ip:443` on a Wednesday (no Saturday escalation).
fn attack(id: &str, ip: &str) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"2026-06-17T10:00:00Z","category":"network","action":"ids.alert","severity":"medium","message":"exploit attempt against GlobalProtect","source_ip":"198.51.100.9","destination_ip":"{ip}","destination_port":443}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_on_a_host_with_an_open_critical_cve_on_that_port_is_raised_and_named() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T1/B1/vulns"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&slack)
        .await;
    let slack_url = format!("{}/services/T1/B1/vulns", slack.uri());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cfg = config.to_str().unwrap().to_owned();

    // Import the scan, then look at the vulnerable host.
    let sync = ok(&vowguard(
        &["vulns", "sync", "--config", &cfg],
        "",
        &slack_url,
    ));
    assert!(sync.contains("nessus: full sync, 2 finding(s)"), "{sync}");
    let list = ok(&vowguard(
        &[
            "vulns",
            "list",
            "--config",
            &cfg,
            "--asset",
            "pay.internal.example",
        ],
        "",
        &slack_url,
    ));
    assert!(
        list.contains("CVE-2024-3400") && list.contains("443/tcp"),
        "{list}"
    );
    assert!(list.contains("1 open finding(s)"), "{list}");
    assert!(list.contains("scanner nessus: last good sync"), "{list}");

    // route explain shows the match and the raise.
    let event_file = dir.path().join("attack.json");
    std::fs::write(&event_file, attack("explain-1", "10.20.0.5")).unwrap();
    let explain = ok(&vowguard(
        &[
            "route",
            "explain",
            "--config",
            &cfg,
            event_file.to_str().unwrap(),
        ],
        "",
        &slack_url,
    ));
    assert!(
        explain.contains("target has CVE-2024-3400 (CVSS 10.0) open on 443/tcp since 2024-08-15"),
        "{explain}"
    );
    assert!(explain.contains("raised P2_MEDIUM → P1_HIGH"), "{explain}");

    // The run: the vulnerable host's attack is raised to P1 and alerted; the patched
    // host's (its only finding is on port 22) stays P2 and is not.
    let input = format!(
        "{}\n{}\n",
        attack("vuln-1", "10.20.0.5"),
        attack("patched-1", "10.20.0.6")
    );
    let cfg_run = cfg.clone();
    let url = slack_url.clone();
    let output =
        tokio::task::spawn_blocking(move || vowguard(&["run", "--config", &cfg_run], &input, &url))
            .await
            .unwrap();
    ok(&output);
    let requests = slack.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        1,
        "only the vulnerable host's attack alerts"
    );
    let body = String::from_utf8_lossy(&requests[0].body);
    assert!(body.contains("CVE-2024-3400"), "{body}");
    assert!(body.contains("open on 443/tcp since 2024-08-15"), "{body}");
    assert!(
        body.contains("vuln-1") || body.contains("10.20.0.5"),
        "{body}"
    );

    let log = std::fs::read_to_string(dir.path().join("data/notifications.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("vuln-1") && !log.contains("patched-1"),
        "{log}"
    );
}
