//! Contract tests of the Jira connector against a simulated Jira Cloud: the exact
//! requests, eventual-consistency handling, resolve by transition name, the registry.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{BuildContext, Builder, ErrorKind, SecretMap, TicketRef, TicketSystem};
use vowguard_jira::encode::fingerprint_label;
use vowguard_testkit::ticket_suite::{self, Fault, Operation, VendorState};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

struct Jira {
    server: MockServer,
    vendor: VendorState,
    search_lags: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

impl Jira {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let vendor = VendorState::new();
        let search_lags = Arc::new(AtomicBool::new(false));
        for mock in support::jira_mocks(&vendor, search_lags.clone()) {
            mock.mount(&server).await;
        }
        Self {
            server,
            vendor,
            search_lags,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn build(&self) -> Arc<dyn TicketSystem> {
        self.build_with(|_| {})
    }

    fn build_with(
        &self,
        change: impl FnOnce(&mut vowguard_jira::JiraConfig),
    ) -> Arc<dyn TicketSystem> {
        let mut config = support::config(&self.server.uri());
        change(&mut config);
        support::build("jira", &config, support::TOKEN, self.dir.path())
    }

    async fn requests(&self, verb: &str, p: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == p)
            .collect()
    }
}

#[tokio::test]
async fn sends_the_exact_create_request() {
    let jira = Jira::start().await;
    let system = jira.build();
    let draft = ticket_suite::draft("fp-exact");
    let opened = system.open(&draft).await.unwrap();
    assert_eq!(
        opened,
        TicketRef {
            system: "jira".into(),
            key: "SEC-1".into(),
            url: Some(format!("{}/browse/SEC-1", jira.server.uri())),
        }
    );

    let searches = jira.requests("POST", "/rest/api/3/search/jql").await;
    assert_eq!(searches.len(), 1, "the map missed, so one search");
    let label = fingerprint_label("fp-exact");
    assert_eq!(
        serde_json::from_slice::<Value>(&searches[0].body).unwrap(),
        json!({
            "jql": format!("project = \"SEC\" AND labels = \"{label}\" ORDER BY created ASC"),
            "fields": ["created", "status"],
            "maxResults": 10,
        })
    );

    let creates = jira.requests("POST", "/rest/api/3/issue").await;
    assert_eq!(creates.len(), 1);
    let request = &creates[0];
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            support::EMAIL,
            support::TOKEN
        ))
    );
    assert_eq!(
        request.headers.get("authorization").unwrap(),
        expected_auth.as_str()
    );
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(request.headers.get("accept").unwrap(), "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let fields = &body["fields"];
    assert_eq!(fields["project"], json!({"key": "SEC"}));
    assert_eq!(fields["issuetype"], json!({"name": "Task"}));
    assert_eq!(
        fields["summary"],
        "Wedding Data Security Incident - evt-0001"
    );
    assert_eq!(fields["priority"], json!({"name": "Highest"}));
    assert_eq!(fields["labels"], json!([label, "wedding-data"]));
    assert_eq!(fields["description"]["type"], "doc");
    let tasks = fields["description"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "taskList")
        .expect("tasks as an action-item list");
    assert_eq!(tasks["content"][0]["attrs"]["state"], "TODO");
    assert_eq!(
        tasks["content"][1]["content"][0]["text"],
        "Preserve forensic evidence"
    );

    // The answer was stored before `open` returned.
    let state_file = jira.dir.path().join("state/ticket-jira.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(stored["issues"][&label]["state"], "created");
    assert_eq!(stored["issues"][&label]["key"], "SEC-1");
    let raw = std::fs::read_to_string(&state_file).unwrap();
    assert!(!raw.contains(support::TOKEN) && !raw.contains("fp-exact"));
}

#[tokio::test]
async fn a_lagging_search_never_causes_a_duplicate() {
    let jira = Jira::start().await;
    jira.search_lags.store(true, Ordering::SeqCst);
    let draft = ticket_suite::draft("fp-lag");
    let first = jira.build().open(&draft).await.unwrap();

    // Restart: search still shows nothing, the map answers without a search or create.
    let restarted = jira.build();
    let searches_before = jira.requests("POST", "/rest/api/3/search/jql").await.len();
    assert_eq!(restarted.open(&draft).await.unwrap(), first);
    assert_eq!(
        jira.requests("POST", "/rest/api/3/search/jql").await.len(),
        searches_before,
        "a remembered issue needs no search"
    );
    assert_eq!(jira.vendor.tickets().len(), 1);
}

#[tokio::test]
async fn an_unknown_create_outcome_waits_for_search_to_settle() {
    let jira = Jira::start().await;
    jira.search_lags.store(true, Ordering::SeqCst);
    jira.vendor.inject(Fault {
        operation: Operation::Create,
        after_commit: true,
        response: ResponseTemplate::new(504).set_body_string("gateway timeout"),
    });
    let system = jira.build();
    let draft = ticket_suite::draft("fp-unknown");
    let error = system.open(&draft).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert_eq!(jira.vendor.tickets().len(), 1, "Jira created it anyway");

    // Search cannot see it yet: the connector refuses to create, retryably, and a restart
    // does not forget the pending create.
    for system in [system, jira.build()] {
        let error = system.open(&draft).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("may have succeeded"), "{error}");
        assert!(error.retry_after().is_some());
        assert_eq!(jira.vendor.tickets().len(), 1, "no second issue");
    }

    // Search catches up: the issue is found and remembered.
    jira.search_lags.store(false, Ordering::SeqCst);
    let system = jira.build();
    let found = system.open(&draft).await.unwrap();
    assert_eq!(found.key, "SEC-1");
    jira.search_lags.store(true, Ordering::SeqCst);
    assert_eq!(jira.build().open(&draft).await.unwrap().key, "SEC-1");
    assert_eq!(jira.vendor.tickets().len(), 1);
}

#[tokio::test]
async fn after_the_settle_window_a_missing_issue_is_created() {
    let jira = Jira::start().await;
    jira.vendor.inject(Fault {
        operation: Operation::Create,
        after_commit: false,
        response: ResponseTemplate::new(503),
    });
    let system = jira.build_with(|c| c.search_settle = std::time::Duration::ZERO);
    let draft = ticket_suite::draft("fp-settled");
    assert!(system.open(&draft).await.unwrap_err().is_retryable());
    assert!(jira.vendor.tickets().is_empty(), "the 503 created nothing");
    let opened = system.open(&draft).await.unwrap();
    assert_eq!(opened.key, "SEC-1");
    assert_eq!(jira.vendor.tickets().len(), 1);
}

#[tokio::test]
async fn a_refused_create_is_forgotten_and_may_be_retried_at_once() {
    let jira = Jira::start().await;
    jira.search_lags.store(true, Ordering::SeqCst);
    jira.vendor.inject(Fault {
        operation: Operation::Create,
        after_commit: false,
        response: ResponseTemplate::new(400).set_body_json(
            json!({"errorMessages": [], "errors": {"priority": "Field 'priority' cannot be set."}}),
        ),
    });
    let system = jira.build();
    let draft = ticket_suite::draft("fp-refused");
    let error = system.open(&draft).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(
        error
            .to_string()
            .contains("priority: Field 'priority' cannot be set."),
        "{error}"
    );
    // Not pending: a 400 certainly created nothing, so the next open creates at once.
    assert_eq!(system.open(&draft).await.unwrap().key, "SEC-1");
}

#[tokio::test]
async fn priority_can_be_left_out_and_mapped() {
    let jira = Jira::start().await;
    jira.build_with(|c| c.set_priority = false)
        .open(&ticket_suite::draft("fp-nopriority"))
        .await
        .unwrap();
    jira.build_with(|c| c.priorities.p0 = "Blocker".into())
        .open(&ticket_suite::draft("fp-blocker"))
        .await
        .unwrap();
    let creates = jira.requests("POST", "/rest/api/3/issue").await;
    let first: Value = serde_json::from_slice(&creates[0].body).unwrap();
    assert!(first["fields"].get("priority").is_none());
    let second: Value = serde_json::from_slice(&creates[1].body).unwrap();
    assert_eq!(second["fields"]["priority"], json!({"name": "Blocker"}));
}

#[tokio::test]
async fn resolve_uses_the_transition_named_in_the_config() {
    let jira = Jira::start().await;
    let system = jira.build_with(|c| c.resolve_transition = "Won't Do".into());
    let ticket = system.open(&ticket_suite::draft("fp-t")).await.unwrap();
    let error = system.resolve(&ticket, "done").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let text = error.to_string();
    assert!(
        text.contains("\"Won't Do\"")
            && text.contains("`tickets.jira.resolve_transition`")
            && text.contains("In Progress, Done"),
        "{text}"
    );
    assert!(!jira.vendor.tickets()[0].resolved);

    // Case-insensitive by name, and the transition id is Jira's, not a guess.
    let system = jira.build_with(|c| c.resolve_transition = "done".into());
    system.resolve(&ticket, "contained").await.unwrap();
    let posts = jira
        .requests("POST", "/rest/api/3/issue/SEC-1/transitions")
        .await;
    assert_eq!(posts.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&posts[0].body).unwrap(),
        json!({"transition": {"id": support::DONE_ID}})
    );
    // Already done: nothing more is sent.
    system.resolve(&ticket, "again").await.unwrap();
    assert_eq!(
        jira.requests("POST", "/rest/api/3/issue/SEC-1/transitions")
            .await
            .len(),
        1
    );
    assert_eq!(
        jira.requests("GET", "/rest/api/3/issue/SEC-1/transitions")
            .await
            .len(),
        2,
        "transitions are not read for a done issue"
    );
}

#[tokio::test]
async fn a_foreign_ticket_key_is_refused_before_any_request() {
    let jira = Jira::start().await;
    let system = jira.build();
    let forged = TicketRef {
        system: "jira".into(),
        key: "SEC-1/../../myself?x=".into(),
        url: None,
    };
    let error = system
        .update(
            &forged,
            &vowguard_core::TicketUpdate {
                at: chrono_now(),
                author: "a".into(),
                text: "t".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let error = system.resolve(&forged, "n").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(jira.server.received_requests().await.unwrap().is_empty());
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test]
async fn the_removed_search_endpoint_is_explained() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(
            ResponseTemplate::new(410)
                .set_body_json(json!({"errorMessages": ["The requested API has been removed."]})),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let system = support::build(
        "jira",
        &support::config(&server.uri()),
        support::TOKEN,
        dir.path(),
    );
    let error = system
        .open(&ticket_suite::draft("fp-410"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(error.to_string().contains("410 Gone"), "{error}");
}

#[tokio::test]
async fn healthcheck_reads_the_account_and_the_project() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/myself"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"accountId": "1"})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/project/SEC"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"key": "SEC"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let system = support::build(
        "jira",
        &support::config(&server.uri()),
        support::TOKEN,
        dir.path(),
    );
    system.healthcheck().await.unwrap();
    let mut config = support::config(&server.uri());
    config.project = "NOPE".into();
    let system = support::build("jira", &config, support::TOKEN, dir.path());
    let error = system.healthcheck().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    assert!(error.to_string().contains("Jira project NOPE"), "{error}");
}

fn ctx<'a>(secrets: &'a SecretMap, data_dir: &'a Path) -> BuildContext<'a> {
    BuildContext {
        id: "secjira",
        role: Role::Ticketing,
        data_dir,
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let jira = Jira::start().await;
    let factory = find(Role::Ticketing, "jira").unwrap();
    let Builder::Ticketing(build) = factory.builder else {
        panic!("jira is not a ticket system");
    };
    let secrets = SecretMap::new().with("JIRA_TOKEN", support::TOKEN);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "url = \"{}\"\nemail = \"bot@example.org\"\napi_token = {{ env = \"JIRA_TOKEN\" }}\nproject = \"SEC\"\n\
         [priorities]\np0 = \"Highest\"\n",
        jira.server.uri()
    ))
    .unwrap();
    let system = build(&ctx(&secrets, jira.dir.path()), table).unwrap();
    assert_eq!(system.kind(), "jira");
    let opened = system.open(&ticket_suite::draft("fp-reg")).await.unwrap();
    assert_eq!(opened.system, "secjira");
    assert!(jira.dir.path().join("state/ticket-secjira.json").exists());

    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://x.atlassian.net\"\nemail = \"b@x\"\napi_token = { env = \"JIRA_TOKEN\" }\nproject = \"SEC\"\nprojct = 1",
    )
    .unwrap();
    let e = build(&ctx(&secrets, jira.dir.path()), table)
        .unwrap_err()
        .to_string();
    assert!(e.contains("projct") && e.contains("tickets.secjira"), "{e}");
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://x.atlassian.net\"\nemail = \"b@x\"\napi_token = { env = \"MISSING\" }\nproject = \"SEC\"",
    )
    .unwrap();
    let e = build(&ctx(&secrets, jira.dir.path()), table)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tickets.secjira.api_token"), "{e}");
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://x.atlassian.net\"\nemail = \"b@x\"\napi_token = { env = \"JIRA_TOKEN\" }\nproject = \"sec\"",
    )
    .unwrap();
    let e = build(&ctx(&secrets, jira.dir.path()), table)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tickets.secjira.project"), "{e}");
}
