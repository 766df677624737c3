//! Contract tests of the TheHive connector against a wiremock TheHive 5.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    BuildContext, Builder, Category, ErrorKind, Event, Priority, SecretMap, SecretRef, Severity,
    TicketDraft, TicketRef, TicketSystem, TicketUpdate,
};
use vowguard_thehive::{TheHiveConfig, TheHiveTickets, TicketIndex, UpdateMode};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "hive-api-key-0123456789";

fn config(server: &MockServer) -> TheHiveConfig {
    let mut c = TheHiveConfig::new(
        format!("{}/thehive/", server.uri()),
        SecretRef::Env("K".into()),
    );
    c.organisation = Some("wedding-soc".into());
    c.tags = vec!["platform:weddings".into()];
    c
}

fn hive(config: &TheHiveConfig) -> TheHiveTickets {
    TheHiveTickets::new(
        "hive",
        config,
        SecretString::from(KEY),
        TicketIndex::in_memory("hive"),
    )
    .unwrap()
}

fn draft() -> TicketDraft {
    let mut event = Event::new(
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    event.id = "evt-7".into();
    event.source_ip = Some("198.51.100.4".parse().unwrap());
    event.user_id = Some("u-9".into());
    let mut d = TicketDraft::new(
        "inc-7",
        "vg:fp-7",
        "Wedding Data Security Incident - evt-7",
        Priority::P1High,
    );
    d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
    d.event = Some(Arc::new(event));
    d
}

fn update() -> TicketUpdate {
    TicketUpdate {
        at: Utc.with_ymd_and_hms(2026, 6, 20, 12, 5, 0).unwrap(),
        author: "alex".into(),
        text: "Accounts locked".into(),
    }
}

#[tokio::test]
async fn creates_the_exact_alert_with_auth_and_organisation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/thehive/api/v1/alert"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("x-organisation", "wedding-soc"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"_id": "~4104", "stage": "New"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let system = hive(&config(&server));
    let ticket = system.open(&draft()).await.unwrap();
    assert_eq!(
        ticket,
        TicketRef {
            system: "hive".into(),
            key: "~4104".into(),
            url: Some(format!("{}/thehive/alerts/~4104/details", server.uri())),
        }
    );
    assert_eq!(system.open(&draft()).await.unwrap(), ticket);
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({
            "type": "vowguard-incident",
            "source": "vowguard",
            "sourceRef": "vg:fp-7",
            "title": "Wedding Data Security Incident - evt-7",
            "description": "**vowguard incident** inc\\-7  \n**Priority** P1_HIGH  \n**Opened** 2026-06-20T12:00:00+00:00  \n**Event** evt\\-7 (data_export guest\\_list\\.export, critical)  \n",
            "severity": 3,
            "date": 1_781_956_800_000_i64,
            "tags": ["platform:weddings", "vowguard", "priority:P1"],
            "tlp": 2,
            "pap": 2,
            "observables": [
                {"dataType": "ip", "data": "198.51.100.4", "message": "from vowguard event evt-7",
                 "tlp": 2, "pap": 2, "tags": ["vowguard", "source-ip"], "ioc": false},
                {"dataType": "other", "data": "u-9", "message": "from vowguard event evt-7",
                 "tlp": 2, "pap": 2, "tags": ["vowguard", "user-id"], "ioc": false},
            ]
        })
    );
}

#[tokio::test]
async fn a_duplicate_is_found_with_a_query_not_created_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/thehive/api/v1/alert"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"type": "CreateError", "message": "Alert vg:fp-7 already exists"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/thehive/api/v1/query"))
        .and(query_param("name", "vowguard-find-alert"))
        .and(body_json(json!({"query": [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": [
                {"_field": "type", "_value": "vowguard-incident"},
                {"_field": "source", "_value": "vowguard"},
                {"_field": "sourceRef", "_value": "vg:fp-7"},
            ]},
            {"_name": "page", "from": 0, "to": 1},
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"_id": "~77"}])))
        .expect(1)
        .mount(&server)
        .await;
    let system = hive(&config(&server));
    assert_eq!(system.open(&draft()).await.unwrap().key, "~77");
    assert_eq!(
        system.open(&draft()).await.unwrap().key,
        "~77",
        "remembered"
    );
}

#[tokio::test]
async fn description_mode_appends_once_and_resolve_sets_the_status() {
    let server = MockServer::start().await;
    let entry = "**2026-06-20T12:05:00+00:00** alex: Accounts locked";
    Mock::given(method("GET"))
        .and(path("/thehive/api/v1/alert/~5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"_id": "~5", "stage": "New", "status": "New", "description": "first"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/thehive/api/v1/alert/~5"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.update_mode = UpdateMode::Description;
    c.resolve_status = "TruePositive".into();
    let system = hive(&c);
    let ticket = TicketRef {
        system: "hive".into(),
        key: "~5".into(),
        url: None,
    };
    system.update(&ticket, &update()).await.unwrap();
    system.resolve(&ticket, "done").await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let patches: Vec<Value> = requests
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        patches[0],
        json!({"description": format!("first\n\n---\n\n{entry}")})
    );
    assert_eq!(
        patches[1],
        json!({"description": "first\n\n---\n\n**Resolved by vowguard**: done"})
    );
    assert_eq!(patches[2], json!({"status": "TruePositive"}));
}

#[tokio::test]
async fn an_entry_already_in_the_description_is_not_added_twice() {
    let server = MockServer::start().await;
    let entry = "**2026-06-20T12:05:00+00:00** alex: Accounts locked";
    Mock::given(method("GET"))
        .and(path("/thehive/api/v1/alert/~5"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"_id": "~5", "description": format!("first\n\n---\n\n{entry}")}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.update_mode = UpdateMode::Description;
    let system = hive(&c);
    let ticket = TicketRef {
        system: "hive".into(),
        key: "~5".into(),
        url: None,
    };
    system.update(&ticket, &update()).await.unwrap();
}

#[tokio::test]
async fn a_hostile_key_stays_one_path_segment_and_404_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"type": "NotFoundError", "message": "Alert not found"})),
        )
        .mount(&server)
        .await;
    let system = hive(&config(&server));
    let ticket = TicketRef {
        system: "hive".into(),
        key: "../../case/~1?x=y#z".into(),
        url: None,
    };
    let error = system.update(&ticket, &update()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(
        error.to_string().contains("NotFoundError: Alert not found"),
        "{error}"
    );
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        request.url.path(),
        "/thehive/api/v1/alert/..%2F..%2Fcase%2F~1%3Fx=y%23z/comment"
    );
    assert_eq!(request.url.query(), None);
}

#[tokio::test]
async fn healthcheck_reads_the_current_user_and_hides_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/thehive/api/v1/user/current"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"type": "AuthenticationError", "message": format!("key {KEY} is not valid")}),
        ))
        .mount(&server)
        .await;
    let system = hive(&config(&server));
    let error = system.healthcheck().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    let shown = format!("{error} {error:?} {system:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("AuthenticationError"), "{shown}");
}

fn ctx<'a>(secrets: &'a SecretMap, data_dir: &'a Path) -> BuildContext<'a> {
    BuildContext {
        id: "hive",
        role: Role::Ticketing,
        data_dir,
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_as_thehive_and_builds_from_toml() {
    let factory = find(Role::Ticketing, "thehive").unwrap();
    let Builder::Ticketing(build) = factory.builder else {
        panic!("thehive is not registered as a ticket system");
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/alert"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"_id": "~1"})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretMap::new().with("HIVE_KEY", KEY);
    let text = format!(
        "url = \"{}\"\napi_key = {{ env = \"HIVE_KEY\" }}\ntlp = \"green\"\nseverity_by_priority = [4, 4, 3, 2, 1]",
        server.uri()
    );
    let system: Arc<dyn TicketSystem> =
        build(&ctx(&secrets, dir.path()), toml::from_str(&text).unwrap()).unwrap();
    assert_eq!(system.kind(), "thehive");
    system.open(&draft()).await.unwrap();
    let again = build(&ctx(&secrets, dir.path()), toml::from_str(&text).unwrap()).unwrap();
    assert_eq!(
        again.open(&draft()).await.unwrap().key,
        "~1",
        "restart: remembered"
    );
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        (sent["tlp"].as_u64(), sent["severity"].as_u64()),
        (Some(1), Some(4))
    );
    let state = std::fs::read_to_string(dir.path().join("state/ticket-hive.json")).unwrap();
    assert!(!state.contains(KEY));

    let bad = format!(
        "url = \"{}\"\napi_key = {{ env = \"HIVE_KEY\" }}\ntlp = \"purple\"",
        server.uri()
    );
    let e = build(&ctx(&secrets, dir.path()), toml::from_str(&bad).unwrap()).unwrap_err();
    assert!(e.to_string().contains("`tickets.hive.tlp`"), "{e}");
    let missing = format!("url = \"{}\"\napi_key = {{ env = \"NOPE\" }}", server.uri());
    let e = build(
        &ctx(&secrets, dir.path()),
        toml::from_str(&missing).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("tickets.hive.api_key"), "{e}");
}
