//! The shared ticket behaviour suite, against a simulated TheHive 5.

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::{Priority, SecretRef, TicketSystem};
use vowguard_testkit::ticket_suite::{self, Operation, TicketHarness, VendorState, VendorTicket};
use vowguard_thehive::encode::{self, MAX_TITLE_CHARS};
use vowguard_thehive::{TheHiveConfig, TheHiveTickets, TicketIndex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

/// Undoes the connector's Markdown escaping, as TheHive's renderer shows the text.
pub fn unmarkdown(text: &str) -> String {
    let text = text.replace("  \n", "\n");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

fn alert_id(request: &Request) -> String {
    request
        .url
        .path_segments()
        .and_then(|mut s| s.nth(3))
        .map(|s| s.to_owned())
        .unwrap_or_default()
}

struct TheHive;

impl TicketHarness for TheHive {
    fn name(&self) -> &str {
        "thehive"
    }

    fn build(&self, id: &str, base_url: &str, data_dir: &Path) -> Arc<dyn TicketSystem> {
        let mut config = TheHiveConfig::new(base_url, SecretRef::Env("UNUSED".into()));
        config.organisation = Some("wedding-soc".into());
        Arc::new(
            TheHiveTickets::new(
                id,
                &config,
                SecretString::from(self.secret().to_owned()),
                TicketIndex::load(id, data_dir).unwrap(),
            )
            .unwrap(),
        )
    }

    fn vendor_mocks(&self, vendor: &VendorState) -> Vec<Mock> {
        let create = {
            let vendor = vendor.clone();
            move |request: &Request| {
                let body = json_body(request);
                vendor.respond(Operation::Create, |store| {
                    let source_ref = body["sourceRef"].as_str().unwrap_or_default().to_owned();
                    if !store.by_dedup_key(&source_ref).is_empty() {
                        return ResponseTemplate::new(400).set_body_json(json!({
                            "type": "CreateError",
                            "message": format!("Alert {source_ref} already exists"),
                        }));
                    }
                    let key = format!("~{}", 4096 + store.next_number());
                    store.push(VendorTicket {
                        key: key.clone(),
                        dedup_key: source_ref,
                        title: body["title"].as_str().unwrap_or_default().to_owned(),
                        description: unmarkdown(body["description"].as_str().unwrap_or_default()),
                        priority: body["severity"].to_string(),
                        labels: body["tags"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|t| t.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        raw: body.clone(),
                        ..VendorTicket::default()
                    });
                    ResponseTemplate::new(201)
                        .set_body_json(json!({"_id": key, "_type": "Alert", "stage": "New"}))
                })
            }
        };
        let query = {
            let vendor = vendor.clone();
            move |request: &Request| {
                let body = json_body(request);
                vendor.respond(Operation::Lookup, |store| {
                    let wanted = body["query"][1]["_and"]
                        .as_array()
                        .and_then(|a| a.iter().find(|f| f["_field"] == "sourceRef"))
                        .and_then(|f| f["_value"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let found: Vec<Value> = store
                        .by_dedup_key(&wanted)
                        .iter()
                        .map(|t| json!({"_id": t.key, "sourceRef": t.dedup_key}))
                        .collect();
                    ResponseTemplate::new(200).set_body_json(found)
                })
            }
        };
        let read = {
            let vendor = vendor.clone();
            move |request: &Request| {
                let id = alert_id(request);
                vendor.respond(Operation::Resolve, |store| match store.get(&id) {
                    Some(t) => ResponseTemplate::new(200).set_body_json(json!({
                        "_id": t.key,
                        "status": if t.resolved { "Other" } else { "New" },
                        "stage": if t.resolved { "Closed" } else { "New" },
                        "description": t.description,
                    })),
                    None => ResponseTemplate::new(404).set_body_json(
                        json!({"type": "NotFoundError", "message": "Alert not found"}),
                    ),
                })
            }
        };
        let comment = {
            let vendor = vendor.clone();
            move |request: &Request| {
                let id = alert_id(request);
                let body = json_body(request);
                vendor.respond(Operation::Update, |store| match store.get_mut(&id) {
                    Some(t) => {
                        t.comments
                            .push(unmarkdown(body["message"].as_str().unwrap_or_default()));
                        ResponseTemplate::new(201).set_body_json(json!({"_id": "~c1"}))
                    }
                    None => ResponseTemplate::new(404).set_body_json(
                        json!({"type": "NotFoundError", "message": "Alert not found"}),
                    ),
                })
            }
        };
        let patch = {
            let vendor = vendor.clone();
            move |request: &Request| {
                let id = alert_id(request);
                let body = json_body(request);
                vendor.respond(Operation::Resolve, |store| match store.get_mut(&id) {
                    Some(t) => {
                        if body.get("status").is_some() {
                            t.resolved = true;
                            t.resolutions += 1;
                            t.resolution_note = t.comments.last().cloned();
                        }
                        ResponseTemplate::new(204)
                    }
                    None => ResponseTemplate::new(404).set_body_json(
                        json!({"type": "NotFoundError", "message": "Alert not found"}),
                    ),
                })
            }
        };
        vec![
            Mock::given(method("POST"))
                .and(path("/api/v1/alert"))
                .respond_with(create),
            Mock::given(method("POST"))
                .and(path("/api/v1/query"))
                .respond_with(query),
            Mock::given(method("POST"))
                .and(path_regex(r"^/api/v1/alert/[^/]+/comment$"))
                .respond_with(comment),
            Mock::given(method("GET"))
                .and(path_regex(r"^/api/v1/alert/[^/]+$"))
                .respond_with(read),
            Mock::given(method("PATCH"))
                .and(path_regex(r"^/api/v1/alert/[^/]+$"))
                .respond_with(patch),
        ]
    }

    fn expected_title(&self, title: &str) -> String {
        encode::one_line(title, MAX_TITLE_CHARS)
    }

    fn expected_priority(&self, priority: Priority) -> String {
        match priority {
            Priority::P0Critical => "4",
            Priority::P1High => "3",
            Priority::P2Medium => "2",
            Priority::P3Low | Priority::P4Info => "1",
        }
        .to_owned()
    }

    fn rejection(&self) -> (ResponseTemplate, String) {
        (
            ResponseTemplate::new(400).set_body_json(
                json!({"type": "BadRequest", "message": "Invalid value for severity"}),
            ),
            "BadRequest: Invalid value for severity".to_owned(),
        )
    }

    fn check_request(&self, request: &Request) -> Result<(), String> {
        let auth = request
            .headers
            .get("authorization")
            .ok_or("no Authorization header")?;
        if auth.as_bytes() != format!("Bearer {}", self.secret()).as_bytes() {
            return Err("wrong Authorization".into());
        }
        if request.headers.get("x-organisation").map(|v| v.as_bytes()) != Some(b"wedding-soc") {
            return Err("X-Organisation missing".into());
        }
        if !request.body.is_empty() {
            let body: Value = serde_json::from_slice(&request.body)
                .map_err(|e| format!("body is not JSON: {e}"))?;
            if request.url.path() == "/api/v1/alert" {
                let allowed = [
                    "type",
                    "source",
                    "sourceRef",
                    "title",
                    "description",
                    "severity",
                    "date",
                    "tags",
                    "tlp",
                    "pap",
                    "observables",
                ];
                for key in body.as_object().ok_or("alert is not an object")?.keys() {
                    if !allowed.contains(&key.as_str()) {
                        return Err(format!("unexpected alert field {key:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn thehive_passes_the_ticket_behaviour_suite() {
    ticket_suite::run(TheHive).await;
}
