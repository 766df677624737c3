//! Contract tests of the Tenable export API client against a wiremock server.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::{
    Error, ErrorKind, Finding, FindingPages, FindingState, RetryPolicy, Scanner, SecretRef,
};
use vowguard_tenable::{PollOptions, TenableConfig, TenableScanner};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const UUID: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";
const OTHER: &str = "ffffffff-0000-4000-8000-000000000001";

#[derive(Default)]
struct Collect(Vec<Vec<Finding>>);

#[async_trait]
impl FindingPages for Collect {
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error> {
        self.0.push(findings);
        Ok(())
    }
}

fn scanner(server: &MockServer) -> TenableScanner {
    let mut config = TenableConfig::new(SecretRef::Env("A".into()), SecretRef::Env("S".into()))
        .with_base_url(Some(server.uri()))
        .with_num_assets(50)
        .with_max_chunk_bytes(64 * 1024)
        .with_poll(
            PollOptions::default()
                .with_initial(std::time::Duration::from_millis(1))
                .with_max(std::time::Duration::from_millis(4))
                .with_max_wait(std::time::Duration::from_secs(3600)),
        )
        .with_http(Default::default());
    config.http.timeout = std::time::Duration::from_millis(5_000);
    TenableScanner::new(
        "tio",
        &config,
        &SecretString::from("ak-123"),
        &SecretString::from("sk-secret-456"),
    )
    .unwrap()
    .with_retry(
        RetryPolicy::default()
            .with_max_attempts(3)
            .with_initial_backoff(std::time::Duration::from_millis(1))
            .with_max_backoff(std::time::Duration::from_millis(2))
            .with_max_retry_after(std::time::Duration::from_millis(2)),
    )
}

fn record(ip: &str, plugin: u64, port: u16, state: &str) -> Value {
    json!({
        "asset": {"uuid": format!("asset-{ip}"), "ipv4": ip, "fqdn": ["web.example.com"]},
        "plugin": {"id": plugin, "name": "Thing", "cve": ["CVE-2024-3400"], "cvss3_base_score": 9.8},
        "port": {"port": port, "protocol": "TCP"},
        "severity": "critical", "state": state,
        "first_found": "2026-01-01T00:00:00Z", "last_found": "2026-02-01T00:00:00Z"
    })
}

/// Answers the status endpoint with a scripted sequence (the last one repeats).
struct Sequence(Mutex<Vec<Value>>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut steps = self.0.lock().unwrap();
        let body = if steps.len() > 1 {
            steps.remove(0)
        } else {
            steps[0].clone()
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

#[tokio::test]
async fn full_export_polls_fetches_every_chunk_once_and_tolerates_empty_chunks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .and(header(
            "X-ApiKeys",
            "accessKey=ak-123;secretKey=sk-secret-456",
        ))
        .and(body_partial_json(
            json!({"num_assets": 50, "filters": {"state": ["OPEN", "REOPENED", "FIXED"]}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"export_uuid": UUID})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/status")))
        .respond_with(Sequence(Mutex::new(vec![
            json!({"status": "QUEUED", "chunks_available": []}),
            json!({"status": "PROCESSING", "chunks_available": [1]}),
            json!({"status": "PROCESSING", "chunks_available": [1, 2]}),
            json!({"status": "FINISHED", "chunks_available": [1, 2, 3]}),
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/chunks/1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            record("10.0.0.1", 1, 443, "OPEN"),
            record("10.0.0.2", 2, 0, "FIXED"),
            {"asset": {}, "plugin": {"id": 9}}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/chunks/2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/chunks/3")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([record("10.0.0.3", 3, 22, "reopened")])),
        )
        .expect(1)
        .mount(&server)
        .await;

    let mut out = Collect::default();
    let summary = scanner(&server).sync(None, &mut out).await.unwrap();
    assert_eq!(summary.findings, 3);
    assert_eq!(summary.pages, 3);
    assert!(summary.checkpoint.is_some());
    let all: Vec<&Finding> = out.0.iter().flatten().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].state, FindingState::Open);
    assert_eq!(all[1].state, FindingState::Fixed);
    assert_eq!(all[2].state, FindingState::Reopened);
    assert_eq!(all[2].port, 22);
}

#[tokio::test]
async fn conflict_adopts_the_running_job_and_since_is_sent() {
    let server = MockServer::start().await;
    let since = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .and(body_partial_json(
            json!({"filters": {"since": since.timestamp()}}),
        ))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error": "Duplicate export not allowed", "active_job_id": OTHER
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{OTHER}/status")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "FINISHED", "chunks_available": [7]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{OTHER}/chunks/7")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([record("10.0.0.7", 7, 80, "OPEN")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut out = Collect::default();
    let summary = scanner(&server).sync(Some(since), &mut out).await.unwrap();
    assert_eq!(summary.findings, 1);
    assert_eq!(out.0[0][0].asset.ip, Some("10.0.0.7".parse().unwrap()));
}

/// First answer truncated JSON, then a good one.
struct TruncatedOnce(Mutex<u32>);

impl Respond for TruncatedOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        if *n == 1 {
            ResponseTemplate::new(200).set_body_string("[{\"asset\": {\"ipv4\": \"10.")
        } else {
            ResponseTemplate::new(200).set_body_json(json!([record("10.0.0.9", 9, 443, "OPEN")]))
        }
    }
}

#[tokio::test]
async fn a_truncated_chunk_is_fetched_again_and_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"export_uuid": UUID})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/status")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "FINISHED", "chunks_available": [1]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/chunks/1")))
        .respond_with(TruncatedOnce(Mutex::new(0)))
        .expect(2)
        .mount(&server)
        .await;
    let mut out = Collect::default();
    let summary = scanner(&server).sync(None, &mut out).await.unwrap();
    assert_eq!(summary.findings, 1);
}

#[tokio::test]
async fn a_chunk_that_stays_invalid_fails_after_three_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"export_uuid": UUID})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/status")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "FINISHED", "chunks_available": [1]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/chunks/1")))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .expect(3)
        .mount(&server)
        .await;
    let err = scanner(&server)
        .sync(None, &mut Collect::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("chunk 1"), "{err}");
}

#[tokio::test]
async fn an_export_that_errors_is_reported_and_keys_never_leak() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"export_uuid": UUID})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/status")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "ERROR", "chunks_available": []})),
        )
        .mount(&server)
        .await;
    let s = scanner(&server);
    let err = s.sync(None, &mut Collect::default()).await.unwrap_err();
    assert!(err.is_retryable());
    let text = format!("{err} {err:?} {s:?}");
    assert!(text.contains("ERROR"), "{text}");
    assert!(
        !text.contains("sk-secret-456") && !text.contains("ak-123"),
        "{text}"
    );
}

#[tokio::test]
async fn unauthorized_is_permanent_and_an_unfinished_export_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": "Invalid credentials"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = scanner(&server)
        .sync(None, &mut Collect::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vulns/export"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"export_uuid": UUID})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/vulns/export/{UUID}/status")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "PROCESSING", "chunks_available": []})),
        )
        .mount(&server)
        .await;
    let mut config = TenableConfig::new(SecretRef::Env("A".into()), SecretRef::Env("S".into()))
        .with_base_url(Some(server.uri()))
        .with_num_assets(50)
        .with_max_chunk_bytes(1024 * 1024)
        .with_poll(
            PollOptions::default()
                .with_initial(std::time::Duration::from_millis(1))
                .with_max(std::time::Duration::from_millis(2))
                .with_max_wait(std::time::Duration::from_secs(0)),
        )
        .with_http(Default::default());
    config.http.timeout = std::time::Duration::from_millis(5_000);
    let s = TenableScanner::new(
        "tio",
        &config,
        &SecretString::from("a"),
        &SecretString::from("b"),
    )
    .unwrap();
    let err = s.sync(None, &mut Collect::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[test]
fn bad_config_names_the_key() {
    let config = TenableConfig::new(SecretRef::Env("A".into()), SecretRef::Env("S".into()))
        .with_base_url(Some("ftp://x".into()))
        .with_num_assets(500)
        .with_max_chunk_bytes(1024)
        .with_poll(PollOptions::default())
        .with_http(Default::default());
    let err = TenableScanner::new(
        "tio",
        &config,
        &SecretString::from("a"),
        &SecretString::from("b"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("scanners.tio.base_url"), "{err}");
    let config = config.with_base_url(None).with_num_assets(10);
    let err = TenableScanner::new(
        "tio",
        &config,
        &SecretString::from("a"),
        &SecretString::from("b"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("scanners.tio.num_assets"), "{err}");
    let _ = Arc::new(());
}
