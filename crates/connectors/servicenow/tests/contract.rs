//! Contract tests of the ServiceNow connector against a simulated instance: the exact
//! requests, a hibernating instance, resolve skipped when closed, bearer auth, the registry.

mod support;

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    BuildContext, Builder, ErrorKind, SecretMap, TicketRef, TicketSystem, TicketUpdate,
};
use vowguard_servicenow::{Credential, ServiceNowConfig};
use vowguard_testkit::ticket_suite::{self, VendorState};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

struct Instance {
    server: MockServer,
    vendor: VendorState,
}

impl Instance {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let vendor = VendorState::new();
        for mock in support::servicenow_mocks(&vendor) {
            mock.mount(&server).await;
        }
        Self { server, vendor }
    }

    fn build_with(&self, change: impl FnOnce(&mut ServiceNowConfig)) -> Arc<dyn TicketSystem> {
        let mut config = support::config(&self.server.uri());
        change(&mut config);
        support::build("sn", &config, &support::basic(support::PASSWORD))
    }

    async fn requests(&self, verb: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == verb)
            .collect()
    }
}

fn query(request: &Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn looks_up_then_creates_with_the_exact_requests() {
    let sn = Instance::start().await;
    let system = sn.build_with(|c| {
        c.assignment_group = Some("Security Operations".into());
        c.category = Some("security".into());
    });
    let draft = ticket_suite::draft("fp-exact");
    let opened = system.open(&draft).await.unwrap();
    let sys_id = support::sys_id(1);
    assert_eq!(opened.key, sys_id);
    assert_eq!(opened.system, "sn");
    assert_eq!(
        opened.url.as_deref(),
        Some(
            format!(
                "{}/nav_to.do?uri=incident.do%3Fsys_id%3D{sys_id}",
                sn.server.uri()
            )
            .as_str()
        )
    );

    let gets = sn.requests("GET").await;
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].url.path(), "/api/now/table/incident");
    assert_eq!(
        query(&gets[0]),
        pairs(&[
            (
                "sysparm_query",
                "correlation_id=fp-exact^ORDERBYsys_created_on"
            ),
            ("sysparm_fields", "sys_id,number,state"),
            ("sysparm_limit", "1"),
            ("sysparm_exclude_reference_link", "true"),
        ])
    );
    let posts = sn.requests("POST").await;
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            support::USER,
            support::PASSWORD
        ))
    );
    assert_eq!(
        post.headers.get("authorization").unwrap(),
        expected_auth.as_str()
    );
    assert_eq!(
        post.headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(
        query(post),
        pairs(&[
            ("sysparm_fields", "sys_id,number"),
            ("sysparm_exclude_reference_link", "true"),
        ])
    );
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    let description = body["description"].as_str().unwrap().to_owned();
    assert!(description.starts_with("Guest list exported from an unknown device.\nPlanner: alex\n\nTasks:\n[ ] Lock affected accounts\n[ ] Preserve forensic evidence\n"), "{description}");
    assert_eq!(
        body,
        json!({
            "short_description": "Wedding Data Security Incident - evt-0001",
            "description": description,
            "urgency": "1",
            "impact": "1",
            "correlation_id": "fp-exact",
            "correlation_display": "vowguard",
            "assignment_group": "Security Operations",
            "category": "security",
        })
    );
    // Found by correlation_id the second time: no second POST.
    assert_eq!(system.open(&draft).await.unwrap(), opened);
    assert_eq!(sn.requests("POST").await.len(), 1);
}

#[tokio::test]
async fn work_notes_and_resolve_bodies() {
    let sn = Instance::start().await;
    let system = sn.build_with(|c| {
        c.resolve_state = 7;
        c.close_code = "Solved (Permanently)".into();
    });
    let ticket = system.open(&ticket_suite::draft("fp-notes")).await.unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-06-20T14:05:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    system
        .update(
            &ticket,
            &TicketUpdate {
                at,
                author: "alice".into(),
                text: "[code]<img src=x onerror=alert(1)>[/code] locked".into(),
            },
        )
        .await
        .unwrap();
    system.resolve(&ticket, "contained").await.unwrap();
    let patches = sn.requests("PATCH").await;
    assert_eq!(patches.len(), 2);
    assert_eq!(
        patches[0].url.path(),
        format!("/api/now/table/incident/{}", ticket.key)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&patches[0].body).unwrap(),
        json!({"work_notes": "[2026-06-20T14:05:00+00:00] alice\n(code]<img src=x onerror=alert(1)>(/code] locked"})
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&patches[1].body).unwrap(),
        json!({"state": "7", "close_code": "Solved (Permanently)", "close_notes": "contained"})
    );
}

#[tokio::test]
async fn resolve_skips_a_closed_incident() {
    let server = MockServer::start().await;
    let sys_id = support::sys_id(9);
    Mock::given(method("GET"))
        .and(path(format!("/api/now/table/incident/{sys_id}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"result": {"sys_id": sys_id, "state": "7"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let system = support::build(
        "sn",
        &support::config(&server.uri()),
        &support::basic(support::PASSWORD),
    );
    let ticket = TicketRef {
        system: "sn".into(),
        key: sys_id,
        url: None,
    };
    system.resolve(&ticket, "again").await.unwrap();
}

#[tokio::test]
async fn a_hibernating_instance_is_an_error_and_nothing_is_created() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": null})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let system = support::build(
        "sn",
        &support::config(&server.uri()),
        &support::basic(support::PASSWORD),
    );
    let error = system
        .open(&ticket_suite::draft("fp-sleep"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("hibernating"), "{error}");
    let error = system.healthcheck().await.unwrap_err();
    assert!(error.to_string().contains("hibernating"), "{error}");
}

#[tokio::test]
async fn a_create_answered_without_a_result_is_looked_up_on_retry() {
    let sn = Instance::start().await;
    // The instance stores the record but a proxy answers 200 with `result: null`.
    sn.vendor.inject(vowguard_testkit::ticket_suite::Fault {
        operation: vowguard_testkit::ticket_suite::Operation::Create,
        after_commit: true,
        response: ResponseTemplate::new(200).set_body_json(json!({"result": null})),
    });
    let system = sn.build_with(|_| {});
    let draft = ticket_suite::draft("fp-null");
    let error = system.open(&draft).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let opened = system.open(&draft).await.unwrap();
    assert_eq!(opened.key, support::sys_id(1));
    assert_eq!(sn.vendor.tickets().len(), 1);
}

#[tokio::test]
async fn bearer_auth_sends_the_token() {
    let sn = Instance::start().await;
    let system = Arc::new(
        vowguard_servicenow::ServiceNowTickets::with_id(
            "sn",
            &support::config(&sn.server.uri()),
            &Credential::Bearer(SecretString::from("oauth-token-123456")),
        )
        .unwrap(),
    );
    system.healthcheck().await.unwrap();
    let gets = sn.requests("GET").await;
    assert_eq!(
        gets[0].headers.get("authorization").unwrap(),
        "Bearer oauth-token-123456"
    );
    assert!(!format!("{system:?}").contains("oauth-token-123456"));
}

#[tokio::test]
async fn a_foreign_sys_id_is_refused_before_any_request() {
    let sn = Instance::start().await;
    let system = sn.build_with(|_| {});
    let forged = TicketRef {
        system: "sn".into(),
        key: "../sys_user?sysparm_query=".into(),
        url: None,
    };
    let error = system.resolve(&forged, "n").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(sn.server.received_requests().await.unwrap().is_empty());
}

fn ctx(secrets: &SecretMap) -> BuildContext<'_> {
    BuildContext {
        id: "snow",
        role: Role::Ticketing,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_and_built_from_config() {
    let sn = Instance::start().await;
    let Builder::Ticketing(build) = find(Role::Ticketing, "servicenow").unwrap().builder else {
        panic!("servicenow is not a ticket system");
    };
    let secrets = SecretMap::new().with("SN_PASSWORD", support::PASSWORD);
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "url = \"{}\"\nauth = {{ type = \"basic\", username = \"{}\", password = {{ env = \"SN_PASSWORD\" }} }}\n\
         [priorities]\np0 = {{ urgency = 1, impact = 2 }}\n",
        sn.server.uri(),
        support::USER
    ))
    .unwrap();
    let system = build(&ctx(&secrets), table).unwrap();
    assert_eq!(system.kind(), "servicenow");
    let opened = system.open(&ticket_suite::draft("fp-reg")).await.unwrap();
    assert_eq!(opened.system, "snow");
    assert_eq!(sn.vendor.tickets()[0].priority, "1/2");

    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://x.service-now.com\"\nauth = { type = \"basic\", username = \"u\", password = { env = \"MISSING\" } }",
    )
    .unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(e.contains("tickets.snow.auth.password"), "{e}");
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "url = \"https://x.service-now.com\"\nauth = { type = \"bearer\", token = { env = \"SN_PASSWORD\" } }\nresolve_state = 2",
    )
    .unwrap();
    let e = build(&ctx(&secrets), table).unwrap_err().to_string();
    assert!(e.contains("tickets.snow.resolve_state"), "{e}");
}
