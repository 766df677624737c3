//! Contract tests of each SOAR flavor against wiremock: exact requests, auth headers,
//! references, and the registry build.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::registry::{Role, find};
use vowguard_core::{
    BuildContext, Builder, ErrorKind, Priority, SecretMap, SecretRef, TicketDraft, TicketRef,
    TicketSystem, TicketUpdate,
};
use vowguard_soar::encode::{sha256_hex, xsoar_advanced_signature};
use vowguard_soar::{Flavor, SoarConfig, SoarSecrets, SoarTickets, TicketIndex, XsoarKeyType};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "xsoar-key-0123456789abcdef";

fn draft() -> TicketDraft {
    let mut d = TicketDraft::new(
        "inc-7",
        "vg:fp-7",
        "Wedding Data Security Incident - evt-7",
        Priority::P1High,
    );
    d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
    d.labels = vec!["gdpr".into()];
    d
}

fn update() -> TicketUpdate {
    TicketUpdate {
        at: Utc.with_ymd_and_hms(2026, 6, 20, 12, 5, 0).unwrap(),
        author: "alex".into(),
        text: "Accounts locked".into(),
    }
}

fn xsoar(server: &MockServer, key_type: XsoarKeyType) -> SoarTickets {
    let mut c = SoarConfig::new(Flavor::Xsoar, format!("{}/xsoar/public/v1/", server.uri()));
    c.api_key = Some(SecretRef::Env("K".into()));
    c.api_key_id = Some("17".into());
    c.api_key_type = key_type;
    c.incident_type = "Data Breach".into();
    let secrets = SoarSecrets {
        api_key: Some(SecretString::from(KEY)),
        ..SoarSecrets::default()
    };
    SoarTickets::new("xsoar", &c, secrets, TicketIndex::in_memory("xsoar")).unwrap()
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[tokio::test]
async fn xsoar_standard_key_creates_updates_and_closes_an_incident() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xsoar/public/v1/incident"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "311", "version": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/xsoar/public/v1/entry"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5@311"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/xsoar/public/v1/incident/batchClose"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 1})))
        .expect(1)
        .mount(&server)
        .await;
    let system = xsoar(&server, XsoarKeyType::Standard);
    let ticket = system.open(&draft()).await.unwrap();
    assert_eq!(ticket.key, "311");
    assert_eq!(
        system.open(&draft()).await.unwrap(),
        ticket,
        "no second incident"
    );
    system.update(&ticket, &update()).await.unwrap();
    system.resolve(&ticket, "Contained").await.unwrap();
    system.resolve(&ticket, "Contained").await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let create = &requests[0];
    assert_eq!(header(create, "authorization"), KEY);
    assert_eq!(header(create, "x-xdr-auth-id"), "17");
    assert_eq!(header(create, "idempotency-key"), "vg:fp-7");
    let sent = body(create);
    assert_eq!(sent["name"], "Wedding Data Security Incident - evt-7");
    assert_eq!(sent["type"], "Data Breach");
    assert_eq!(sent["severity"], 3.0);
    assert_eq!(sent["createInvestigation"], true);
    let raw: Value = serde_json::from_str(sent["rawJSON"].as_str().unwrap()).unwrap();
    assert_eq!(raw["fingerprint"], "vg:fp-7");
    assert_eq!(
        body(&requests[1]),
        json!({"investigationId": "311", "data": "[2026-06-20T12:05:00+00:00] alex: Accounts locked", "markdown": false})
    );
    assert_eq!(
        body(&requests[2]),
        json!({"ids": ["311"], "closeReason": "Resolved", "closeNotes": "Contained"})
    );
    assert!(header(&requests[2], "idempotency-key").ends_with(":resolve"));
}

#[tokio::test]
async fn xsoar_advanced_key_signs_each_request_with_a_fresh_nonce() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xsoar/public/v1/incident"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "9"})))
        .mount(&server)
        .await;
    let system = xsoar(&server, XsoarKeyType::Advanced);
    system.open(&draft()).await.unwrap();
    let mut other = draft();
    other.fingerprint = "vg:fp-8".into();
    system.open(&other).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let mut nonces = Vec::new();
    for request in &requests {
        let nonce = header(request, "x-xdr-nonce");
        let timestamp: i64 = header(request, "x-xdr-timestamp").parse().unwrap();
        assert_eq!(nonce.len(), 64);
        assert!(nonce.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(header(request, "x-xdr-auth-id"), "17");
        assert_eq!(
            header(request, "authorization"),
            sha256_hex(format!("{KEY}{nonce}{timestamp}").as_bytes())
        );
        assert_ne!(
            header(request, "authorization"),
            KEY,
            "the key itself is never sent"
        );
        nonces.push(nonce.to_owned());
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per request");
    assert_eq!(
        xsoar_advanced_signature("k", "n", 1),
        sha256_hex(b"kn1"),
        "key + nonce + timestamp"
    );
}

#[tokio::test]
async fn tines_secret_url_never_shows_and_no_rules_matched_is_an_error() {
    let server = MockServer::start().await;
    let secret_path = "/webhook/vowguard-incidents/5e3c0c2b9f1d4a7e8b6c";
    Mock::given(method("POST"))
        .and(path(secret_path))
        .respond_with(ResponseTemplate::new(200).set_body_string("No Rules matched"))
        .mount(&server)
        .await;
    let c: SoarConfig =
        toml::from_str("flavor = \"tines\"\nurl_secret = { env = \"TINES_URL\" }").unwrap();
    let url = format!("{}{secret_path}", server.uri());
    let system = SoarTickets::new(
        "tines",
        &c,
        SoarSecrets {
            url: Some(SecretString::from(url)),
            ..SoarSecrets::default()
        },
        TicketIndex::in_memory("tines"),
    )
    .unwrap();
    let error = system.open(&draft()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(
        error.to_string().contains("no webhook rule matched"),
        "{error}"
    );
    let shown = format!("{error} {error:?} {system:?}");
    assert!(!shown.contains("5e3c0c2b9f1d4a7e8b6c"), "{shown}");
    assert!(
        system.index().is_empty(),
        "a dropped case is not remembered"
    );
    let sent = body(&server.received_requests().await.unwrap()[0]);
    assert_eq!(sent["action"], "open");
    assert_eq!(sent["title"], "Wedding Data Security Incident - evt-7");
}

#[tokio::test]
async fn shuffle_reference_is_the_execution_id_and_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/hooks/webhook_4f1e"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"success": true, "execution_id": "exec-77", "authorization": "a"}),
        ))
        .mount(&server)
        .await;
    let mut c = SoarConfig::new(
        Flavor::Shuffle,
        format!("{}/api/v1/hooks/webhook_4f1e", server.uri()),
    );
    c.headers
        .insert("X-Shuffle-Token".into(), SecretRef::Env("S".into()));
    let mut secrets = SoarSecrets::default();
    secrets.headers.insert(
        "X-Shuffle-Token".into(),
        SecretString::from("shuffle-token-1"),
    );
    let system =
        SoarTickets::new("shuffle", &c, secrets, TicketIndex::in_memory("shuffle")).unwrap();
    let ticket = system.open(&draft()).await.unwrap();
    assert_eq!(ticket.key, "exec-77");
    system.update(&ticket, &update()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(header(&requests[0], "x-shuffle-token"), "shuffle-token-1");
    let follow = body(&requests[1]);
    assert_eq!(follow["action"], "update");
    assert_eq!(follow["reference"], "exec-77");
    assert_eq!(follow["fingerprint"], "vg:fp-7");
    assert_eq!(follow["incident_id"], "inc-7");
    assert_eq!(follow["update"]["text"], "Accounts locked");
}

#[tokio::test]
async fn an_unknown_reference_still_updates_without_a_fingerprint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let system = SoarTickets::new(
        "g",
        &SoarConfig::new(Flavor::Generic, format!("{}/hook", server.uri())),
        SoarSecrets::default(),
        TicketIndex::in_memory("g"),
    )
    .unwrap();
    let ticket = TicketRef {
        system: "g".into(),
        key: "ref\r\nX-Evil: 1".into(),
        url: None,
    };
    system.update(&ticket, &update()).await.unwrap();
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.url.path(), "/hook");
    assert!(header(request, "idempotency-key").starts_with("sha256-"));
    assert!(request.headers.get("x-evil").is_none());
    let sent = body(request);
    assert_eq!(sent["reference"], "ref\r\nX-Evil: 1");
    assert!(sent.get("fingerprint").is_none());
}

fn ctx<'a>(secrets: &'a SecretMap, data_dir: &'a Path) -> BuildContext<'a> {
    BuildContext {
        id: "st2",
        role: Role::Ticketing,
        data_dir,
        config_dir: Path::new("."),
        secrets,
    }
}

#[tokio::test]
async fn registered_as_soar_webhook_and_builds_from_toml() {
    let factory = find(Role::Ticketing, "soar_webhook").unwrap();
    let Builder::Ticketing(build) = factory.builder else {
        panic!("soar_webhook is not registered as a ticket system");
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/webhooks/st2"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"accepted": true})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretMap::new().with("ST2_KEY", "st2-key-abcdef123");
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "flavor = \"stackstorm\"\nurl = \"{}/api/v1/webhooks/st2\"\napi_key = {{ env = \"ST2_KEY\" }}\ntrigger = \"vowguard.incident\"",
        server.uri()
    ))
    .unwrap();
    let system: Arc<dyn TicketSystem> = build(&ctx(&secrets, dir.path()), table).unwrap();
    assert_eq!(system.kind(), "soar_webhook");
    let ticket = system.open(&draft()).await.unwrap();
    assert_eq!(
        ticket.key, "vg:fp-7",
        "no reference in the answer: the fingerprint"
    );
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(header(request, "st2-api-key"), "st2-key-abcdef123");
    let sent = body(request);
    assert_eq!(sent["trigger"], "vowguard.incident");
    assert_eq!(sent["payload"]["fingerprint"], "vg:fp-7");
    assert!(dir.path().join("state/ticket-st2.json").exists());

    // Restart from the same data dir: no second request (`expect(1)`).
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "flavor = \"stackstorm\"\nurl = \"{}/api/v1/webhooks/st2\"\napi_key = {{ env = \"ST2_KEY\" }}\ntrigger = \"vowguard.incident\"",
        server.uri()
    ))
    .unwrap();
    let again = build(&ctx(&secrets, dir.path()), table).unwrap();
    assert_eq!(again.open(&draft()).await.unwrap(), ticket);

    let bad: vowguard_core::ComponentConfig = toml::from_str(
        "flavor = \"stackstorm\"\nurl = \"https://x\"\napi_key = { env = \"ST2_KEY\" }",
    )
    .unwrap();
    let e = build(&ctx(&secrets, dir.path()), bad).unwrap_err();
    assert!(e.to_string().contains("`tickets.st2.trigger`"), "{e}");
    let bad: vowguard_core::ComponentConfig =
        toml::from_str("flavor = \"generic\"\nurl = \"https://x\"\nverb = \"PUT\"").unwrap();
    let e = build(&ctx(&secrets, dir.path()), bad).unwrap_err();
    assert!(e.to_string().contains("verb"), "{e}");
}

#[tokio::test]
async fn concurrent_opens_of_one_fingerprint_send_one_request() {
    let server = MockServer::start().await;
    // A receiver with no idempotency of its own, slow enough that the opens overlap.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "case-1"}))
                .set_delay(std::time::Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut c = SoarConfig::new(Flavor::Generic, format!("{}/hook", server.uri()));
    c.reference_pointer = Some("/id".into());
    let system =
        SoarTickets::new("g", &c, SoarSecrets::default(), TicketIndex::in_memory("g")).unwrap();
    let d = draft();
    let (a, b, c) = tokio::join!(system.open(&d), system.open(&d), system.open(&d));
    for got in [a, b, c] {
        assert_eq!(got.unwrap().key, "case-1");
    }
}

#[tokio::test]
async fn a_retried_open_carries_the_same_explicit_dedup_key_and_a_known_case_is_not_resent() {
    let server = MockServer::start().await;
    // The first answer is lost (a gateway error after the target may have created it).
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .mount(&server)
        .await;
    let c = SoarConfig::new(Flavor::Tines, format!("{}/webhook/abc/def", server.uri()));
    let system = SoarTickets::new(
        "tines",
        &c,
        SoarSecrets::default(),
        TicketIndex::in_memory("tines"),
    )
    .unwrap();
    let mut d = draft();
    // A fingerprint with characters no header may carry: the key is its hash.
    d.fingerprint = "protocol/guest_data_breach|w-7|u-42\r\nX-Evil: 1".into();
    assert!(system.open(&d).await.is_err());
    let ticket = system.open(&d).await.unwrap();
    system.open(&d).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests.len(),
        2,
        "the known case is answered from the index"
    );
    let expected = format!("sha256-{}", sha256_hex(d.fingerprint.as_bytes()));
    for r in &requests {
        assert_eq!(header(r, "x-vowguard-dedup-key"), expected);
        assert_eq!(header(r, "idempotency-key"), expected);
        assert_eq!(body(r)["dedup_key"], expected.as_str());
        assert_eq!(body(r)["fingerprint"], d.fingerprint.as_str());
    }
    // Follow-ups carry their own key, stable for the same entry.
    system.update(&ticket, &update()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let follow = &requests[2];
    assert_eq!(
        body(follow)["dedup_key"],
        header(follow, "x-vowguard-dedup-key")
    );
    assert_ne!(header(follow, "x-vowguard-dedup-key"), expected);
}
