//! The audit log end to end: a real `vowguard run` records what happened; `vowguard audit
//! verify` finds the log intact and then names a changed entry; a proof exported from the
//! run verifies with only the public key after the log itself is gone.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn vowguard(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vowguard"))
        .args(args)
        .env("AUDIT_HEC_TOKEN", "audit-hec-token")
        .env("VOWGUARD_LOG", "warn")
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const EVENTS: &str = concat!(
    r#"{"id":"evt-a1","timestamp":"2026-06-20T11:30:00Z","category":"authentication","action":"login","severity":"medium"}"#,
    "\n",
    r#"{"id":"evt-a2","timestamp":"2026-06-20T11:30:01Z","category":"data_access","action":"export","severity":"high"}"#,
    "\n"
);

fn write_config(dir: &Path, hec: &str) -> String {
    let file = dir.join("vowguard.toml");
    std::fs::write(
        &file,
        format!(
            r#"
data_dir = "data"

[sources.in]
type = "stdin"

[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "AUDIT_HEC_TOKEN" }}
batch = {{ max_events = 10, max_wait = "20ms" }}
"#
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_recorded_verified_and_proven_offline() {
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &hec.uri());
    let cfg = config.clone();
    let output = tokio::task::spawn_blocking(move || vowguard(&["run", "--config", &cfg], EVENTS))
        .await
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let audit_dir = dir.path().join("data/audit");
    // The generated signing key is private to its owner.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(audit_dir.join("signing.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let entries = std::fs::read(audit_dir.join("entries.log")).unwrap();
    let entries = String::from_utf8_lossy(&entries);
    for fact in [
        r#""kind":"config_loaded""#,
        r#""kind":"events_accepted""#,
        r#""kind":"delivered""#,
        "evt-a1",
        "evt-a2",
    ] {
        assert!(entries.contains(fact), "{fact} not recorded");
    }

    let verified = vowguard(&["audit", "verify", "--config", &config], "");
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("audit log ok"),
        "{}",
        text(&verified)
    );

    let bundle = dir.path().join("entry1.tlog-proof");
    let proof = vowguard(
        &[
            "audit",
            "proof",
            "1",
            "--config",
            &config,
            "--out",
            bundle.to_str().unwrap(),
        ],
        "",
    );
    assert!(proof.status.success(), "{}", text(&proof));
    let public = std::fs::read_to_string(audit_dir.join("signing.pub")).unwrap();

    // Change one byte of the first event's id in the log: verify names the entry.
    let log_path = audit_dir.join("entries.log");
    let mut bytes = std::fs::read(&log_path).unwrap();
    let at = bytes.windows(6).position(|w| w == b"evt-a1").unwrap();
    bytes[at + 5] = b'9';
    std::fs::write(&log_path, &bytes).unwrap();
    let tampered = vowguard(&["audit", "verify", "--config", &config], "");
    assert!(!tampered.status.success(), "{}", text(&tampered));
    assert!(
        text(&tampered).contains(": changed (differs from what was written)"),
        "{}",
        text(&tampered)
    );

    // A third party holds only the bundle and the public key.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("entry1.tlog-proof");
    std::fs::copy(&bundle, &copy).unwrap();
    drop(dir);
    let offline = vowguard(
        &[
            "audit",
            "verify-proof",
            copy.to_str().unwrap(),
            "--key",
            public.trim(),
        ],
        "",
    );
    assert!(offline.status.success(), "{}", text(&offline));
    assert!(
        text(&offline).contains("proof ok: entry 1 is in"),
        "{}",
        text(&offline)
    );
    let other_key = vowguard(
        &[
            "audit",
            "keygen",
            "--out",
            elsewhere.path().join("k").to_str().unwrap(),
        ],
        "",
    );
    assert!(other_key.status.success(), "{}", text(&other_key));
    let wrong = std::fs::read_to_string(elsewhere.path().join("k/signing.pub")).unwrap();
    let refused = vowguard(
        &[
            "audit",
            "verify-proof",
            copy.to_str().unwrap(),
            "--key",
            wrong.trim(),
        ],
        "",
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("no signature by key"),
        "{}",
        text(&refused)
    );
}
