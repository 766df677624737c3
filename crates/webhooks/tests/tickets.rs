//! Jira and ServiceNow sources built from their config tables: status changes mapped
//! through the status map (defaults and overrides), the acting person, the replay key,
//! and config errors naming the key.

use std::path::Path;

use vowguard_core::SecretMap;
use vowguard_webhooks::{
    IncidentChange, Refusal, Request, Source, TicketVendor, WebhookConfig, verify,
};

fn source(id: &str, table: &str) -> Result<Source, String> {
    let secrets = SecretMap::new()
        .with("JIRA", "jira-webhook-secret-Vg5")
        .with("SNOW", "snow-token-Vg5");
    let config: WebhookConfig = toml::from_str(table).map_err(|e| e.to_string())?;
    config
        .build(id, &secrets, Path::new("/etc/vowguard"))
        .map_err(|e| e.to_string())
}

fn deliver(source: &Source, id: &str, body: &str) -> Result<vowguard_webhooks::Delivery, Refusal> {
    let headers = verify::sign(
        &source.scheme,
        &source.keys[0],
        id,
        1_764_579_600,
        None,
        body.as_bytes(),
    )
    .unwrap();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    source.accept(
        &Request {
            headers: &pairs,
            query: None,
            body: body.as_bytes(),
        },
        1_764_579_600,
    )
}

fn jira_update(key: &str, changelog: &str, from: &str, to: &str, category: &str) -> String {
    serde_json::json!({
        "timestamp": 1_764_579_600_000_u64,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ana Ops <script>", "emailAddress": "ana@example.org"},
        "issue": {"id": "10042", "key": key, "fields": {"status": {"name": to, "statusCategory": {"key": category}}}},
        "changelog": {"id": changelog, "items": [
            {"field": "assignee", "fieldtype": "jira", "from": null, "to": "ana"},
            {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": from, "to": "2", "toString": to}
        ]}
    })
    .to_string()
}

const JIRA: &str = "type = \"jira\"\nsecret = { env = \"JIRA\" }";

#[test]
fn jira_status_changes_map_through_the_defaults() {
    let jira = source("jira", JIRA).unwrap();
    let cases = [
        (
            "In Progress",
            "indeterminate",
            Some(IncidentChange::Acknowledge),
        ),
        ("Done", "done", Some(IncidentChange::Resolve)),
        // A custom status in the done category resolves too.
        ("Won't Fix", "done", Some(IncidentChange::Resolve)),
        ("Triage", "new", None),
    ];
    for (i, (status, category, change)) in cases.into_iter().enumerate() {
        let body = jira_update("SEC-42", &format!("1015{i}"), "To Do", status, category);
        let delivery = deliver(&jira, "", &body).unwrap();
        let [ticket] = delivery.mapped.tickets.as_slice() else {
            panic!("one status change: {:?}", delivery.mapped.tickets)
        };
        assert_eq!(ticket.vendor, TicketVendor::Jira);
        assert_eq!(ticket.keys, ["SEC-42"]);
        assert_eq!(ticket.status, status);
        assert_eq!(ticket.from.as_deref(), Some("To Do"));
        assert_eq!(ticket.change, change, "{status}");
        // The acting person, with only the characters an actor may hold.
        assert_eq!(ticket.actor, "jira:Ana_Ops_script");
        // Without X-Atlassian-Webhook-Identifier: the issue key and changelog id.
        assert_eq!(delivery.replay_key, format!("id:jira:SEC-42:1015{i}"));
        let event = &delivery.mapped.events[0];
        assert_eq!(event.action, "jira.issue_status_changed");
        assert_eq!(event.resource_id.as_deref(), Some("SEC-42"));
        assert_eq!(event.attributes["webhook"]["issue"]["key"], "SEC-42");
    }
    // With the identifier header, it is the replay key.
    let body = jira_update("SEC-42", "10160", "To Do", "Done", "done");
    let delivery = deliver(&jira, "a5d6b57c-24ac", &body).unwrap();
    assert_eq!(delivery.replay_key, "id:a5d6b57c-24ac");
    // Not a status change (a comment, an assignee change): an event, no ticket status.
    let comment =
        r#"{"webhookEvent":"comment_created","issue":{"key":"SEC-42"},"comment":{"body":"hi"}}"#;
    let delivery = deliver(&jira, "", comment).unwrap();
    assert!(delivery.mapped.tickets.is_empty());
    assert_eq!(delivery.mapped.events[0].action, "jira.comment_created");
    // Not a Jira payload.
    assert!(matches!(
        deliver(&jira, "", r#"{"hello":1}"#),
        Err(Refusal::Payload(_))
    ));
}

#[test]
fn status_overrides_replace_the_defaults() {
    let jira = source(
        "jira",
        &format!("{JIRA}\nstatuses = {{ \"Triage\" = \"acknowledged\", \"category:done\" = \"ignore\", \"Resolved\" = \"resolved\" }}"),
    )
    .unwrap();
    let change = |status: &str, category: &str| {
        let body = jira_update("SEC-1", status, "To Do", status, category);
        deliver(&jira, "", &body).unwrap().mapped.tickets[0].change
    };
    assert_eq!(change("triage", "new"), Some(IncidentChange::Acknowledge));
    assert_eq!(change("Done", "done"), None);
    assert_eq!(change("Resolved", "done"), Some(IncidentChange::Resolve));
    assert_eq!(
        change("In Progress", "indeterminate"),
        Some(IncidentChange::Acknowledge)
    );
}

const SNOW: &str = "type = \"servicenow\"\nsecret = { env = \"SNOW\" }\nauth = \"bearer\"";

#[test]
fn servicenow_states_map_by_value_or_display_value() {
    let snow = source("snow", SNOW).unwrap();
    let cases = [
        (serde_json::json!("2"), Some(IncidentChange::Acknowledge)),
        (serde_json::json!(6), Some(IncidentChange::Resolve)),
        (serde_json::json!("7"), Some(IncidentChange::Resolve)),
        (
            serde_json::json!({"value": "106", "display_value": "Resolved"}),
            Some(IncidentChange::Resolve),
        ),
        (serde_json::json!("3"), None),
    ];
    for (i, (state, change)) in cases.into_iter().enumerate() {
        let body = serde_json::json!({"sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0010042",
            "state": state, "sys_updated_by": "ana.ops", "sys_mod_count": i.to_string()})
        .to_string();
        let delivery = deliver(&snow, "", &body).unwrap();
        let ticket = &delivery.mapped.tickets[0];
        assert_eq!(ticket.vendor, TicketVendor::ServiceNow);
        assert_eq!(
            ticket.keys,
            ["9d385017c611228701d22104cc95c371", "INC0010042"]
        );
        assert_eq!(ticket.change, change, "{body}");
        assert_eq!(ticket.actor, "servicenow:ana.ops");
        assert_eq!(
            delivery.replay_key,
            format!("id:servicenow:9d385017c611228701d22104cc95c371:{i}")
        );
    }
    // `incident_state` when `state` is absent.
    let body = r#"{"sys_id":"abc","incident_state":"6","sys_updated_by":"bo"}"#;
    let ticket = deliver(&snow, "", body).unwrap().mapped.tickets[0].clone();
    assert_eq!(ticket.change, Some(IncidentChange::Resolve));
    // No sys_id: not a ServiceNow record.
    assert!(matches!(
        deliver(&snow, "", r#"{"number":"INC1"}"#),
        Err(Refusal::Payload(_))
    ));
}

#[test]
fn servicenow_hmac_takes_the_generic_keys() {
    let snow = source(
        "snow",
        "type = \"servicenow\"\nsecret = { env = \"SNOW\" }\nauth = \"hmac\"\nheader = \"X-SN-Signature\"\nencoding = \"base64\"\nsigned = \"{timestamp}.{body}\"\ntimestamp_header = \"X-SN-Timestamp\"\nid_header = \"X-SN-Delivery\"",
    )
    .unwrap();
    let body = r#"{"sys_id":"abc","state":"2","sys_updated_by":"bo","sys_mod_count":"3"}"#;
    let delivery = deliver(&snow, "d-1", body).unwrap();
    // sys_id + sys_mod_count, not the header's id: each update of a record once.
    assert_eq!(delivery.replay_key, "id:servicenow:abc:3");
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        (
            format!("{SNOW}\nstatuses = {{ \"6\" = \"closed\" }}"),
            "`webhooks.x.statuses`",
        ),
        (
            format!("{SNOW}\nstatuses = {{ \"category:done\" = \"resolved\" }}"),
            "`webhooks.x.statuses`",
        ),
        (
            "type = \"servicenow\"\nsecret = { env = \"SNOW\" }".to_owned(),
            "`webhooks.x.auth`",
        ),
        (format!("{SNOW}\nheader = \"X-Sig\""), "`webhooks.x.header`"),
        (
            "type = \"servicenow\"\nsecret = { env = \"SNOW\" }\nauth = \"hmac\"".to_owned(),
            "`webhooks.x.header`",
        ),
        (format!("{JIRA}\nauth = \"bearer\""), "`webhooks.x.auth`"),
        (
            "type = \"github\"\nsecret = { env = \"JIRA\" }\nstatuses = { \"a\" = \"resolved\" }"
                .to_owned(),
            "`webhooks.x.statuses`",
        ),
        (
            "type = \"github\"\nsecret = { env = \"JIRA\" }\nticket_system = \"jira\"".to_owned(),
            "`webhooks.x.ticket_system`",
        ),
        (
            format!("{JIRA}\nreplay_dir = \"\""),
            "`webhooks.x.replay_dir`",
        ),
    ];
    for (table, key) in cases {
        let e = source("x", &table).unwrap_err();
        assert!(e.contains(key), "{table}: {e}");
        assert!(!e.contains("Vg5"), "{e}");
    }
    // replay_dir is resolved against the config file's directory.
    let jira = source("x", &format!("{JIRA}\nreplay_dir = \"state/replay\"")).unwrap();
    assert_eq!(
        jira.replay_dir.as_deref(),
        Some(Path::new("/etc/vowguard/state/replay"))
    );
}
