//! Contract tests against a simulated Qualys API (wiremock): paging by WARNING/URL, the
//! KnowledgeBase and its cache, incremental sync, quota headers, 401, 409, 5xx retries,
//! page caps, and a next-page URL on another host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use vowguard_core::{
    BuildContext, Builder, Error, ErrorKind, Finding, FindingPages, RetryPolicy, Role, Scanner,
    SecretMap, SecretRef,
};
use vowguard_qualys::{QualysConfig, QualysScanner};
use wiremock::matchers::{
    body_string_contains, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER: &str = "wedding_api";
const PASSWORD: &str = "Qu4lys-s3cret-pw";
const DETECTION: &str = "/api/2.0/fo/asset/host/vm/detection/";
const KB: &str = "/api/2.0/fo/knowledge_base/vuln/";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn body(name: &str, base: &str) -> String {
    std::fs::read_to_string(data(name))
        .unwrap()
        .replace("{BASE}", base)
}

fn xml(text: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(text.into_bytes(), "text/xml")
}

fn config(server: &MockServer) -> QualysConfig {
    let mut c = QualysConfig::new(server.uri(), USER, SecretRef::Env("UNUSED".into()));
    c.truncation_limit = 2;
    c.http.timeout = std::time::Duration::from_millis(5_000);
    c.retry = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(1))
        .with_max_backoff(std::time::Duration::from_millis(2))
        .with_max_retry_after(std::time::Duration::from_millis(10));
    c
}

fn scanner(config: &QualysConfig) -> QualysScanner {
    QualysScanner::new("qualys", config, &SecretString::from(PASSWORD.to_owned())).unwrap()
}

#[derive(Default)]
struct Pages(Vec<Vec<Finding>>);

#[async_trait]
impl FindingPages for Pages {
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error> {
        self.0.push(findings);
        Ok(())
    }
}

/// Page 1 (two hosts, WARNING/URL to page 2), page 2 (one host), and the KnowledgeBase.
async fn mount_two_pages(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param_is_missing("id_min"))
        .respond_with(xml(body("detections_page1.xml", &server.uri())))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param("id_min", "114303"))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(server)
        .await;
}

#[tokio::test]
async fn pages_follow_the_warning_url_and_qids_map_to_cves_once() {
    let server = MockServer::start().await;
    mount_two_pages(&server).await;
    let scanner = scanner(&config(&server));
    let mut pages = Pages::default();
    let summary = scanner.sync(None, &mut pages).await.unwrap();
    assert_eq!(summary.pages, 2);
    assert_eq!(summary.findings, 5);
    assert_eq!(
        summary.checkpoint.unwrap().to_rfc3339(),
        "2026-11-30T06:00:00+00:00",
        "Qualys' own clock, first page"
    );
    let sizes: Vec<usize> = pages.0.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 1]);
    let second = &pages.0[1][0];
    assert_eq!(
        second.cves,
        ["CVE-2024-5535", "CVE-2024-9143"],
        "KB entry reused from the cache"
    );
    assert_eq!(second.port, 8443);

    let requests = server.received_requests().await.unwrap();
    let kb: Vec<_> = requests.iter().filter(|r| r.url.path() == KB).collect();
    assert_eq!(
        kb.len(),
        1,
        "one KnowledgeBase call for page 1, none for page 2"
    );
    let form = String::from_utf8_lossy(&kb[0].body).to_string();
    assert!(form.contains("action=list"), "{form}");
    assert!(
        form.contains("ids=38909%2C105015%2C91850%2C38170"),
        "{form}"
    );

    let first = &requests[0];
    let query: std::collections::HashMap<_, _> = first.url.query_pairs().into_owned().collect();
    assert_eq!(query["action"], "list");
    assert_eq!(query["status"], "New,Active,Re-Opened,Fixed");
    assert_eq!(query["truncation_limit"], "2");
    assert_eq!(query["show_results"], "0");
    assert!(!query.contains_key("vm_processed_after"));
    for r in &requests {
        assert_eq!(r.headers.get("x-requested-with").unwrap(), "vowguard");
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.starts_with("Basic "), "{auth}");
    }

    // A second sync asks the KnowledgeBase nothing (cached).
    scanner.sync(None, &mut Pages::default()).await.unwrap();
    assert_eq!(scanner.stats().kb_requests, 1);
}

#[tokio::test]
async fn incremental_sync_sends_vm_processed_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param("vm_processed_after", "2026-11-29T06:00:00Z"))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .and(body_string_contains("ids=38909"))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let since = "2026-11-29T06:00:00Z".parse().unwrap();
    let summary = scanner(&config(&server))
        .sync(Some(since), &mut Pages::default())
        .await
        .unwrap();
    assert_eq!(summary.findings, 1);
}

#[tokio::test]
async fn a_next_page_on_another_host_is_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(xml(body("detections_page1.xml", &elsewhere.uri())))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let err = scanner(&config(&server))
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.to_string()
            .contains("not following it with credentials"),
        "{err}"
    );
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "no credentials sent elsewhere"
    );
}

#[tokio::test]
async fn quota_headers_make_the_sync_wait_before_the_next_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param_is_missing("id_min"))
        .respond_with(
            xml(body("detections_page1.xml", &server.uri()))
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Window-Sec", "3600")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-ToWait-Sec", "1")
                .insert_header("X-Concurrency-Limit-Limit", "2")
                .insert_header("X-Concurrency-Limit-Running", "1"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param("id_min", "114303"))
        .respond_with(
            xml(body("detections_page2.xml", &server.uri()))
                .insert_header("X-RateLimit-Remaining", "299")
                .insert_header("X-RateLimit-ToWait-Sec", "0"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(
            xml(body("kb.xml", &server.uri())).insert_header("X-RateLimit-Remaining", "298"),
        )
        .mount(&server)
        .await;
    let scanner = scanner(&config(&server));
    let summary = scanner.sync(None, &mut Pages::default()).await.unwrap();
    assert_eq!(summary.pages, 2);
    let stats = scanner.stats();
    // Page 1 left no call: the KnowledgeBase call after it waited ToWait-Sec (1 s); its own
    // answer left calls, so page 2 went without waiting.
    assert_eq!(stats.quota_waits, 1);
    assert_eq!(stats.quota_waited, Duration::from_secs(1));
    assert_eq!(scanner.quota().remaining, Some(299));
}

#[tokio::test]
async fn a_quota_wait_above_the_limit_ends_the_sync_with_the_wait() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param_is_missing("id_min"))
        .respond_with(
            xml(body("detections_page1.xml", &server.uri()))
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-ToWait-Sec", "3600"),
        )
        .mount(&server)
        .await;
    let scanner = scanner(&config(&server));
    let err = scanner.sync(None, &mut Pages::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(
        err.to_string().contains("more than max_quota_wait (5m)"),
        "{err}"
    );
    assert_eq!(
        scanner.stats().requests,
        1,
        "nothing sent after the quota ran out"
    );
}

#[tokio::test]
async fn a_409_is_retried_with_the_shared_policy_then_reported() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(409)
        .set_body_raw(body("simple_return_409.xml", ""), "text/xml")
        .insert_header("X-Concurrency-Limit-Limit", "1")
        .insert_header("X-Concurrency-Limit-Running", "1");
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(refused.clone())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let s = scanner(&config(&server));
    let summary = s.sync(None, &mut Pages::default()).await.unwrap();
    assert_eq!(summary.findings, 1);
    assert_eq!(
        s.stats().requests,
        3,
        "409, the page again, the KnowledgeBase"
    );

    // Always 409: reported as a rate limit with Qualys' reason after max_attempts.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(refused.insert_header("X-RateLimit-ToWait-Sec", "30"))
        .mount(&server)
        .await;
    let s = scanner(&config(&server));
    let err = s.sync(None, &mut Pages::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(
        err.to_string()
            .contains("code 1960: This API cannot be run again"),
        "{err}"
    );
    assert_eq!(s.stats().requests, 3);
}

#[tokio::test]
async fn server_errors_are_retried_and_401_is_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let s = scanner(&config(&server));
    assert_eq!(
        s.sync(None, &mut Pages::default()).await.unwrap().findings,
        1
    );
    assert_eq!(s.stats().requests, 4);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(header("x-requested-with", "vowguard"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            "<SIMPLE_RETURN><RESPONSE><CODE>2000</CODE><TEXT>Bad Login/Password</TEXT></RESPONSE></SIMPLE_RETURN>",
            "text/xml",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = scanner(&config(&server));
    let err = s.sync(None, &mut Pages::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.component(), Some("qualys"));
    let text = err.to_string();
    assert!(text.contains("code 2000: Bad Login/Password"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{s:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_page_above_max_page_bytes_is_refused() {
    let server = MockServer::start().await;
    mount_two_pages(&server).await;
    let mut c = config(&server);
    c.max_page_bytes = 1024;
    let err = scanner(&c)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.to_string()
            .contains("larger than max_page_bytes (1024)"),
        "{err}"
    );
}

#[test]
fn registered_and_built_from_config() {
    let factory = vowguard_core::registry::find(Role::Scanner, "qualys").unwrap();
    let Builder::Scanner(build) = factory.builder else {
        panic!("qualys is registered as a scanner");
    };
    let secrets = SecretMap::new().with("QUALYS_PASSWORD", PASSWORD);
    let ctx = BuildContext {
        id: "vmdr",
        role: Role::Scanner,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets: &secrets,
    };
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://qualysapi.qualys.eu\"\nusername = \"u\"\npassword = { env = \"QUALYS_PASSWORD\" }",
    )
    .unwrap();
    let scanner = build(&ctx, table).unwrap();
    assert_eq!(scanner.kind(), "qualys");
    assert!(!format!("{scanner:?}").contains(PASSWORD));
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://qualysapi.qualys.eu\"\nusername = \"u\"\npassword = { env = \"MISSING_QUALYS\" }",
    )
    .unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(err.contains("scanners.vmdr.password"), "{err}");
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://qualysapi.qualys.eu\"\nusername = \"u\"\npassword = { env = \"QUALYS_PASSWORD\" }\ntruncation_limit = 0",
    )
    .unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(err.contains("`scanners.vmdr.truncation_limit`"), "{err}");
}

/// The detection pages only; each test mounts its own KnowledgeBase.
async fn mount_detection_pages(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param_is_missing("id_min"))
        .respond_with(xml(body("detections_page1.xml", &server.uri())))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param("id_min", "114303"))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .mount(server)
        .await;
}

/// A KnowledgeBase that answers `failure` `times` times, then its real answer: the first
/// sync stores every finding without its CVE/CVSS details (marked, counted, the reason
/// given, no checkpoint so the next sync lists them again); the second fills them in.
async fn kb_failure_keeps_findings(failure: ResponseTemplate, times: u64, reason: &str) {
    let server = MockServer::start().await;
    mount_detection_pages(&server).await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(failure)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let scanner = scanner(&config(&server));

    let mut pages = Pages::default();
    let summary = scanner.sync(None, &mut pages).await.unwrap();
    assert_eq!((summary.pages, summary.findings), (2, 5), "{reason}");
    assert_eq!(summary.details_missing, 5, "{reason}");
    assert_eq!(
        summary.checkpoint, None,
        "{reason}: the checkpoint stays where it was"
    );
    let why = summary.details_missing_reason.clone().unwrap();
    assert!(why.contains(reason), "{why}");
    assert!(why.contains("KnowledgeBase"), "{why}");
    assert!(!why.contains(PASSWORD), "{why}");
    let found: Vec<&Finding> = pages.0.iter().flatten().collect();
    assert_eq!(found.len(), 5);
    for f in &found {
        assert!(f.details_missing, "{reason}: {f:?}");
        assert!(f.cves.is_empty() && f.cvss.is_none(), "{f:?}");
    }
    let first = found.iter().find(|f| f.plugin_id == "38909").unwrap();
    assert_eq!(first.port, 443, "the detection itself is kept");
    assert_eq!(
        scanner.stats().kb_requests,
        times,
        "{reason}: no further KnowledgeBase call after it failed (page 2 reuses the failure)"
    );

    // The next sync asks again and the findings get their details.
    let mut pages = Pages::default();
    let summary = scanner.sync(None, &mut pages).await.unwrap();
    assert_eq!(summary.details_missing, 0);
    assert_eq!(summary.details_missing_reason, None);
    assert!(summary.checkpoint.is_some());
    let found: Vec<&Finding> = pages.0.iter().flatten().collect();
    assert!(found.iter().all(|f| !f.details_missing));
    let first = found.iter().find(|f| f.plugin_id == "38909").unwrap();
    assert_eq!(first.cves, ["CVE-2024-5535", "CVE-2024-9143"]);
    assert_eq!(first.cvss, Some(9.1));
}

#[tokio::test]
async fn a_knowledge_base_500_keeps_the_findings_without_details() {
    kb_failure_keeps_findings(
        ResponseTemplate::new(500).set_body_string("kb down"),
        3,
        "kb down",
    )
    .await;
}

#[tokio::test]
async fn a_knowledge_base_answer_that_is_not_xml_keeps_the_findings_without_details() {
    kb_failure_keeps_findings(
        ResponseTemplate::new(200).set_body_raw(b"\x00\xffnot xml at all".to_vec(), "text/xml"),
        1,
        "Qualys KnowledgeBase answer",
    )
    .await;
}

#[tokio::test]
async fn a_knowledge_base_over_quota_keeps_the_findings_without_details() {
    kb_failure_keeps_findings(
        ResponseTemplate::new(409).set_body_raw(body("simple_return_409.xml", ""), "text/xml"),
        3,
        "code 1960",
    )
    .await;
}

#[tokio::test]
async fn an_incremental_sync_with_the_knowledge_base_down_keeps_its_checkpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DETECTION))
        .and(query_param("vm_processed_after", "2026-11-29T06:00:00Z"))
        .respond_with(xml(body("detections_page2.xml", &server.uri())))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(KB))
        .respond_with(xml(body("kb.xml", &server.uri())))
        .mount(&server)
        .await;
    let since = "2026-11-29T06:00:00Z".parse().unwrap();
    let scanner = scanner(&config(&server));
    let summary = scanner
        .sync(Some(since), &mut Pages::default())
        .await
        .unwrap();
    assert_eq!((summary.findings, summary.details_missing), (1, 1));
    assert_eq!(summary.checkpoint, None);
    // The caller syncs from the same point again: the detection is listed once more and
    // gets its details.
    let mut pages = Pages::default();
    let summary = scanner.sync(Some(since), &mut pages).await.unwrap();
    assert_eq!(summary.details_missing, 0);
    assert_eq!(pages.0[0][0].cves, ["CVE-2024-5535", "CVE-2024-9143"]);
}
