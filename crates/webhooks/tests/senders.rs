//! Requests signed by the vendors' own libraries (Python `standardwebhooks` 1.1.0,
//! `stripe` 16.1.0, `slack_sdk` 3.48.0; the commands are beside each vector), accepted by
//! a source built from its config table and mapped to events.

use std::path::Path;

use vowguard_core::{Category, SecretMap, Severity};
use vowguard_webhooks::{IncidentChange, Refusal, Rejection, Request, Source, WebhookConfig};

fn source(id: &str, table: &str, secrets: &SecretMap) -> Source {
    let config: WebhookConfig = toml::from_str(table).unwrap();
    config.build(id, secrets, Path::new(".")).unwrap()
}

fn accept(
    source: &Source,
    headers: &[(&str, &str)],
    body: &str,
    now: i64,
) -> Result<vowguard_webhooks::Delivery, Refusal> {
    source.accept(
        &Request {
            headers,
            query: None,
            body: body.as_bytes(),
        },
        now,
    )
}

/// `Webhook("whsec_MfKQ…").sign("msg_venue_1", datetime(1700000000), body)`.
#[test]
fn standard_webhooks_python_sender() {
    let secrets = SecretMap::new().with("VENUE", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let venue = source(
        "venue",
        "type = \"standard_webhooks\"\nsecret = { env = \"VENUE\" }",
        &secrets,
    );
    let body = r#"{"type":"venue.door_forced","timestamp":"2023-11-14T22:13:20Z","data":{"wedding_id":"w-77","severity":"high","message":"Back door forced"}}"#;
    let headers = [
        ("webhook-id", "msg_venue_1"),
        ("webhook-timestamp", "1700000000"),
        (
            "webhook-signature",
            "v1,OSRlkgT1eOZKuGc79NULL5DP6zaZ7njWMWG/gDl43YI=",
        ),
    ];
    let delivery = accept(&venue, &headers, body, 1_700_000_100).unwrap();
    assert_eq!(delivery.replay_key, "id:msg_venue_1");
    let event = &delivery.mapped.events[0];
    assert_eq!(event.action, "webhook.venue.door_forced");
    assert_eq!(event.severity, Severity::High);
    assert_eq!(event.wedding_id.as_deref(), Some("w-77"));
    assert_eq!(event.message.as_deref(), Some("Back door forced"));
    assert_eq!(event.attributes["webhook"]["data"]["wedding_id"], "w-77");
    assert!(event.id.starts_with("wh-"));
    // The same delivery maps to the same event id (a redelivery after a crash).
    let again = accept(&venue, &headers, body, 1_700_000_100).unwrap();
    assert_eq!(again.mapped.events[0].id, event.id);
    assert_eq!(
        accept(&venue, &headers, body, 1_700_000_400).unwrap_err(),
        Refusal::Unverified(Rejection::Stale)
    );
}

/// `stripe.WebhookSignature._compute_signature("1700000000." + payload, secret)`, with a
/// second (old) secret configured: rotation.
#[test]
fn stripe_python_sender_early_fraud_warning() {
    let secrets = SecretMap::new()
        .with("OLD", "whsec_old_secret")
        .with("NEW", "whsec_stripe_test_secret");
    let stripe = source(
        "stripe",
        "type = \"stripe\"\nsecrets = [{ env = \"OLD\" }, { env = \"NEW\" }]",
        &secrets,
    );
    let payload = r#"{"id":"evt_3Nfraud","type":"radar.early_fraud_warning.created","data":{"object":{"id":"issfr_1","object":"radar.early_fraud_warning","fraud_type":"made_with_stolen_card","charge":"ch_1","metadata":{"wedding_id":"w-42","vendor_id":"v-9"}}}}"#;
    let header = "t=1700000000,v1=3540bdfd712105b7829ffa48ae3d31f8e7e0273ed1ccb721ec9f26b1bd3b7988";
    let delivery = accept(
        &stripe,
        &[("Stripe-Signature", header)],
        payload,
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(delivery.replay_key, "id:evt_3Nfraud");
    let event = &delivery.mapped.events[0];
    assert_eq!(event.category, Category::Payment);
    assert_eq!(event.action, "stripe.radar.early_fraud_warning.created");
    assert_eq!(event.severity, Severity::High);
    assert_eq!(event.wedding_id.as_deref(), Some("w-42"));
    assert_eq!(event.labels["vendor_id"], "v-9");
    assert_eq!(event.resource_id.as_deref(), Some("issfr_1"));
    // Verified, but not a Stripe event: a payload error, not an auth error.
    let body = "[1,2]";
    let sig = vowguard_webhooks::verify::hex_encode(&vowguard_webhooks::verify::mac(
        vowguard_webhooks::verify::Algorithm::Sha256,
        b"whsec_stripe_test_secret",
        &[b"1700000000.", body.as_bytes()],
    ));
    let header = format!("t=1700000000,v1={sig}");
    assert!(matches!(
        accept(
            &stripe,
            &[("Stripe-Signature", &header)],
            body,
            1_700_000_000
        ),
        Err(Refusal::Payload(_))
    ));
}

/// `SignatureVerifier("slack_signing_secret_1").generate_signature(timestamp=, body=)`.
#[test]
fn slack_python_sender() {
    let secrets = SecretMap::new().with("SLACK", "slack_signing_secret_1");
    let slack = source(
        "slack",
        "type = \"slack\"\nsecret = { env = \"SLACK\" }",
        &secrets,
    );
    let body =
        r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","user":"U1"}}"#;
    let headers = [
        ("X-Slack-Request-Timestamp", "1700000000"),
        (
            "X-Slack-Signature",
            "v0=9a4fde468da3ecd58b52b5b7262bc6a369d3bb976fcbab8f94fb23d74343a1d3",
        ),
    ];
    let delivery = accept(&slack, &headers, body, 1_700_000_000).unwrap();
    assert_eq!(delivery.replay_key, "id:Ev1");
    assert_eq!(delivery.mapped.events[0].action, "slack.app_mention");
}

fn signed(source: &Source, id: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    vowguard_webhooks::verify::sign(
        &source.scheme,
        &source.keys[0],
        id,
        ts,
        None,
        body.as_bytes(),
    )
    .unwrap()
}

#[test]
fn slack_acknowledge_button_and_url_verification() {
    let secrets = SecretMap::new().with("SLACK", "slack_signing_secret_1");
    let slack = source(
        "slack",
        "type = \"slack\"\nsecret = { env = \"SLACK\" }",
        &secrets,
    );
    let inner = r#"{"type":"block_actions","user":{"id":"U7","username":"ana.ops"},"actions":[{"action_id":"vowguard_ack","value":"inc-123"}]}"#;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", inner)
        .finish();
    let headers = signed(&slack, "", 1_700_000_000, &body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let delivery = accept(&slack, &pairs, &body, 1_700_000_000).unwrap();
    let sync = &delivery.mapped.sync[0];
    assert_eq!(sync.change, IncidentChange::Acknowledge);
    assert_eq!(sync.reference, "inc-123");
    assert_eq!(sync.actor, "slack:ana.ops");
    // No delivery id: the replay key is the digest of what was signed.
    assert!(delivery.replay_key.starts_with("sha256:"));

    let body = r#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let headers = signed(&slack, "", 1_700_000_000, body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let delivery = accept(&slack, &pairs, body, 1_700_000_000).unwrap();
    assert_eq!(
        delivery.mapped.reply.as_deref(),
        Some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    );
    assert!(delivery.mapped.events.is_empty());
}

#[test]
fn pagerduty_resolved_names_the_incident_and_the_person() {
    let secrets = SecretMap::new().with("PD", "pd-secret");
    let pd = source(
        "pagerduty",
        "type = \"pagerduty\"\nsecret = { env = \"PD\" }",
        &secrets,
    );
    let body = r#"{"event":{"id":"01DEN","event_type":"incident.resolved","resource_type":"incident","occurred_at":"2026-06-13T14:00:00Z","agent":{"id":"P1","summary":"Ana Ops","type":"user_reference"},"data":{"id":"Q1","type":"incident","title":"Payment fraud spike","incident_key":"group-key-9","urgency":"high"}}}"#;
    let headers = signed(&pd, "", 0, body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let delivery = accept(&pd, &pairs, body, 0).unwrap();
    assert_eq!(delivery.replay_key, "id:01DEN");
    let sync = &delivery.mapped.sync[0];
    assert_eq!(sync.change, IncidentChange::Resolve);
    assert_eq!(sync.reference, "group-key-9");
    assert_eq!(sync.actor, "pagerduty:Ana_Ops");
    let event = &delivery.mapped.events[0];
    assert_eq!(event.action, "pagerduty.incident.resolved");
    assert_eq!(event.user_name.as_deref(), Some("Ana Ops"));
}

#[test]
fn github_secret_scanning_alert() {
    let secrets = SecretMap::new().with("GH", "It's a Secret to Everybody");
    let gh = source(
        "github",
        "type = \"github\"\nsecret = { env = \"GH\" }",
        &secrets,
    );
    let body = r#"{"action":"created","alert":{"number":3,"secret_type":"stripe_api_key","html_url":"https://github.com/o/r/security/secret-scanning/3"},"repository":{"full_name":"wedding/platform"},"sender":{"login":"octo","id":1}}"#;
    let mut headers = signed(&gh, "d1e2", 0, body);
    headers.push(("X-GitHub-Event".into(), "secret_scanning_alert".into()));
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let delivery = accept(&gh, &pairs, body, 0).unwrap();
    assert_eq!(delivery.replay_key, "id:d1e2");
    let event = &delivery.mapped.events[0];
    assert_eq!(event.action, "github.secret_scanning_alert.created");
    assert_eq!(event.severity, Severity::High);
    assert_eq!(event.resource_id.as_deref(), Some("wedding/platform"));
    assert_eq!(event.user_name.as_deref(), Some("octo"));
}

#[test]
fn generic_source_with_a_mapping_table() {
    let secrets = SecretMap::new().with("CAM", "camera-secret");
    let table = r#"
type = "generic_hmac"
secret = { env = "CAM" }
header = "X-Camera-Signature"
prefix = "sha256="
signed = "{timestamp}.{body}"
timestamp_header = "X-Camera-Time"
[mapping]
events = "/alerts"
action = "/kind"
severity = "/level"
wedding_id = "/booking/wedding"
category = "network"
message = "/text"
"#;
    let cam = source("cameras", table, &secrets);
    let body = r#"{"alerts":[{"kind":"perimeter breach","level":"critical","booking":{"wedding":"w-1"},"text":"gate 2"},{"kind":"tamper","level":"warning"}]}"#;
    let headers = signed(&cam, "", 1_000, body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let delivery = accept(&cam, &pairs, body, 1_000).unwrap();
    let events = &delivery.mapped.events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].action, "perimeter_breach");
    assert_eq!(events[0].severity, Severity::Critical);
    assert_eq!(events[0].category, Category::Network);
    assert_eq!(events[0].wedding_id.as_deref(), Some("w-1"));
    assert_eq!(events[0].message.as_deref(), Some("gate 2"));
    assert_eq!(events[1].severity, Severity::Medium);
    assert_ne!(events[0].id, events[1].id);
}

#[test]
fn config_errors_name_the_key_and_never_the_secret() {
    let secrets = SecretMap::new().with("BAD", "not-base64-!!-Vg5ecretCanary9Z");
    let config: WebhookConfig =
        toml::from_str("type = \"standard_webhooks\"\nsecrets = [{ env = \"BAD\" }]").unwrap();
    let err = config
        .build("venue", &secrets, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`webhooks.venue.secrets[0]`"), "{err}");
    assert!(!err.contains("Vg5ecretCanary9Z"), "{err}");

    let config: WebhookConfig = toml::from_str("type = \"github\"").unwrap();
    let err = config
        .build("gh", &secrets, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`webhooks.gh.secret`"), "{err}");

    let config: WebhookConfig =
        toml::from_str("type = \"twilio\"\nsecret = { env = \"BAD\" }").unwrap();
    let err = config
        .build("sms", &secrets, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`webhooks.sms.url`"), "{err}");

    let config: WebhookConfig = toml::from_str(
        "type = \"generic_hmac\"\nsecret = { env = \"BAD\" }\nheader = \"X-Sig\"\nsigned = \"{timestamp}{body}\"",
    )
    .unwrap();
    let err = config
        .build("g", &secrets, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`webhooks.g.timestamp_header`"), "{err}");

    let config: WebhookConfig = toml::from_str(
        "type = \"generic_hmac\"\nsecret = { env = \"BAD\" }\nheader = \"X-Sig\"\n[mapping]\nseverity = \"apocalyptic\"",
    )
    .unwrap();
    let err = config
        .build("g", &secrets, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`webhooks.g.mapping`") && err.contains("severity"),
        "{err}"
    );
}
