//! A simulated Jira Cloud (issues, JQL search by label, comments, status, transitions) on
//! top of the ticket suite's vendor store, and the harness for the shared suite.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::{Priority, SecretRef, SnapshotFile, TicketSystem};
use vowguard_jira::{JiraConfig, JiraTickets};
use vowguard_testkit::ticket_suite::{
    Operation, TicketHarness, VendorState, VendorTicket, VendorTickets,
};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

pub const EMAIL: &str = "secops-bot@example.org";
pub const TOKEN: &str = "ATATT3xFfGF0-suite-token-8c1d";
pub const DONE_ID: &str = "31";

pub fn config(base_url: &str) -> JiraConfig {
    let mut c = JiraConfig::new(base_url, EMAIL, SecretRef::Env("UNUSED".into()), "SEC");
    c.http.timeout = std::time::Duration::from_millis(5_000);
    c
}

pub fn build(id: &str, config: &JiraConfig, token: &str, data_dir: &Path) -> Arc<dyn TicketSystem> {
    let state = SnapshotFile::in_data_dir(data_dir, &format!("ticket-{id}"));
    Arc::new(
        JiraTickets::with_id(id, config, &SecretString::from(token.to_owned()))
            .unwrap()
            .with_state_file(state)
            .unwrap(),
    )
}

/// ADF to plain text: text nodes as they are, `hardBreak` and the end of every block a
/// newline. Errors on anything that is not well-formed ADF of the kinds vowguard sends.
pub fn adf_text(node: &Value) -> Result<String, String> {
    let mut out = String::new();
    walk(node, &mut out, 0)?;
    Ok(out)
}

fn walk(node: &Value, out: &mut String, depth: usize) -> Result<(), String> {
    if depth > 20 {
        return Err("ADF nested too deep".into());
    }
    let kind = node
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("ADF node without type: {node}"))?;
    let allowed: &[&str] = match kind {
        "doc" => &["type", "version", "content"],
        "text" => &["type", "text", "marks"],
        "hardBreak" => &["type"],
        "paragraph" | "bulletList" | "listItem" => &["type", "content"],
        "heading" | "taskList" | "taskItem" => &["type", "attrs", "content"],
        other => return Err(format!("unexpected ADF node type {other:?}")),
    };
    if let Some(map) = node.as_object() {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(format!("unexpected key {key:?} in ADF {kind}"));
            }
        }
    }
    match kind {
        "text" => {
            let text = node
                .get("text")
                .and_then(Value::as_str)
                .ok_or("text node without text")?;
            if text.is_empty() {
                return Err("empty ADF text node".into());
            }
            if text.chars().any(|c| c.is_control() && c != '\t') {
                return Err(format!("control character in ADF text {text:?}"));
            }
            out.push_str(text);
        }
        "hardBreak" => out.push('\n'),
        _ => {
            if kind == "doc" && node.get("version") != Some(&json!(1)) {
                return Err("ADF doc without version 1".into());
            }
            let content = node
                .get("content")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("ADF {kind} without content"))?;
            for child in content {
                walk(child, out, depth + 1)?;
            }
            if kind != "doc" {
                out.push('\n');
            }
        }
    }
    Ok(())
}

fn json_body(request: &Request) -> Result<Value, String> {
    serde_json::from_slice(&request.body).map_err(|e| format!("body is not JSON: {e}"))
}

fn key_in_path(request: &Request) -> String {
    request
        .url
        .path_segments()
        .and_then(|mut s| s.nth(4))
        .unwrap_or_default()
        .to_owned()
}

fn bad_request(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"errorMessages": [message], "errors": {}}))
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(
        json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
    )
}

fn create(store: &mut VendorTickets, request: &Request) -> ResponseTemplate {
    let Ok(body) = json_body(request) else {
        return bad_request("body is not JSON");
    };
    let fields = &body["fields"];
    let labels: Vec<String> = fields["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(summary) = fields["summary"].as_str() else {
        return ResponseTemplate::new(400).set_body_json(
            json!({"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}),
        );
    };
    let description = match adf_text(&fields["description"]) {
        Ok(text) => text,
        Err(why) => return bad_request(&format!("description: {why}")),
    };
    let n = store.next_number();
    let key = format!("SEC-{n}");
    store.push(VendorTicket {
        key: key.clone(),
        dedup_key: labels
            .iter()
            .find(|l| l.starts_with("vowguard-") && l.len() == 41)
            .cloned()
            .unwrap_or_default(),
        title: summary.to_owned(),
        description,
        priority: fields["priority"]["name"].as_str().unwrap_or("").to_owned(),
        labels,
        raw: body.clone(),
        ..VendorTicket::default()
    });
    ResponseTemplate::new(201).set_body_json(
        json!({"id": format!("{}", 10_000 + n), "key": key, "self": format!("https://example.atlassian.net/rest/api/3/issue/{}", 10_000 + n)}),
    )
}

/// The label in `labels = "<label>"` of a JQL query.
fn jql_label(jql: &str) -> Option<&str> {
    let start = jql.find("labels = \"")? + "labels = \"".len();
    let end = jql[start..].find('"')? + start;
    Some(&jql[start..end])
}

/// The simulated Jira. `search_lags`: search returns nothing (Cloud's eventual
/// consistency at its worst).
pub fn jira_mocks(vendor: &VendorState, search_lags: Arc<AtomicBool>) -> Vec<Mock> {
    let mut mocks = Vec::new();
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("POST"))
            .and(path("/rest/api/3/issue"))
            .respond_with(move |r: &Request| v.respond(Operation::Create, |s| create(s, r))),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("POST"))
            .and(path("/rest/api/3/search/jql"))
            .respond_with(move |r: &Request| {
                let lag = search_lags.load(Ordering::SeqCst);
                v.respond(Operation::Lookup, |s| {
                    let Ok(body) = json_body(r) else {
                        return bad_request("body is not JSON");
                    };
                    let jql = body["jql"].as_str().unwrap_or_default();
                    let Some(label) = jql_label(jql) else {
                        return bad_request("JQL without a label clause");
                    };
                    let issues: Vec<Value> = if lag {
                        Vec::new()
                    } else {
                        s.all()
                            .iter()
                            .filter(|t| t.labels.iter().any(|l| l == label))
                            .map(|t| json!({"id": t.key.trim_start_matches("SEC-"), "key": t.key}))
                            .collect()
                    };
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"issues": issues, "isLast": true}))
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("POST"))
            .and(path_regex(r"^/rest/api/3/issue/[^/]+/comment$"))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Update, |s| {
                    let key = key_in_path(r);
                    let text = match json_body(r).and_then(|b| adf_text(&b["body"])) {
                        Ok(text) => text,
                        Err(why) => return bad_request(&why),
                    };
                    match s.get_mut(&key) {
                        Some(t) => {
                            t.comments.push(text);
                            ResponseTemplate::new(201).set_body_json(json!({"id": "1"}))
                        }
                        None => not_found(),
                    }
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("GET"))
            .and(path_regex(r"^/rest/api/3/issue/[^/]+$"))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Resolve, |s| match s.get(&key_in_path(r)) {
                    Some(t) => {
                        let (name, category) = if t.resolved {
                            ("Done", "done")
                        } else {
                            ("To Do", "new")
                        };
                        ResponseTemplate::new(200).set_body_json(json!({
                            "key": t.key,
                            "fields": {"status": {"name": name, "statusCategory": {"key": category}}}
                        }))
                    }
                    None => not_found(),
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("GET"))
            .and(path_regex(r"^/rest/api/3/issue/[^/]+/transitions$"))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Resolve, |s| match s.get(&key_in_path(r)) {
                    Some(_) => ResponseTemplate::new(200).set_body_json(json!({"transitions": [
                        {"id": "11", "name": "In Progress", "to": {"name": "In Progress"}},
                        {"id": DONE_ID, "name": "Done", "to": {"name": "Done"}}
                    ]})),
                    None => not_found(),
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("POST"))
            .and(path_regex(r"^/rest/api/3/issue/[^/]+/transitions$"))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Resolve, |s| {
                    let id = json_body(r)
                        .ok()
                        .and_then(|b| b["transition"]["id"].as_str().map(str::to_owned));
                    match s.get_mut(&key_in_path(r)) {
                        Some(t) if id.as_deref() == Some(DONE_ID) => {
                            t.resolved = true;
                            t.resolutions += 1;
                            t.resolution_note = t.comments.last().cloned();
                            ResponseTemplate::new(204)
                        }
                        Some(_) => bad_request("unknown transition"),
                        None => not_found(),
                    }
                })
            }),
    );
    mocks
}

/// The Jira harness for the shared ticket suite.
pub struct JiraHarness;

impl TicketHarness for JiraHarness {
    fn name(&self) -> &str {
        "jira"
    }

    fn secret(&self) -> &str {
        TOKEN
    }

    fn build(&self, id: &str, base_url: &str, data_dir: &Path) -> Arc<dyn TicketSystem> {
        build(id, &config(base_url), TOKEN, data_dir)
    }

    fn vendor_mocks(&self, vendor: &VendorState) -> Vec<Mock> {
        jira_mocks(vendor, Arc::new(AtomicBool::new(false)))
    }

    fn expected_title(&self, title: &str) -> String {
        let line: String = title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = line.trim();
        if line.chars().count() <= 255 {
            line.to_owned()
        } else {
            let mut cut: String = line.chars().take(254).collect();
            cut.push('…');
            cut
        }
    }

    fn expected_priority(&self, priority: Priority) -> String {
        match priority {
            Priority::P0Critical => "Highest",
            Priority::P1High => "High",
            Priority::P2Medium => "Medium",
            Priority::P3Low => "Low",
            Priority::P4Info => "Lowest",
        }
        .to_owned()
    }

    fn rejection(&self) -> (ResponseTemplate, String) {
        (
            ResponseTemplate::new(400).set_body_json(json!({
                "errorMessages": [],
                "errors": {"summary": "You must specify a summary of the issue."}
            })),
            "summary: You must specify a summary of the issue.".to_owned(),
        )
    }

    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_json(json!({
            "errorMessages": [format!("invalid credential: API token {secret} was revoked")]
        }))
    }

    fn check_request(&self, request: &Request) -> Result<(), String> {
        let auth = request
            .headers
            .get("authorization")
            .ok_or("no Authorization header")?;
        if !auth.to_str().unwrap_or_default().starts_with("Basic ") {
            return Err("Authorization is not Basic".into());
        }
        if request.body.is_empty() {
            return Ok(());
        }
        let body = json_body(request)?;
        let p = request.url.path();
        if p == "/rest/api/3/issue" {
            let fields = body["fields"].as_object().ok_or("no fields")?;
            for key in fields.keys() {
                if ![
                    "project",
                    "issuetype",
                    "summary",
                    "labels",
                    "description",
                    "priority",
                ]
                .contains(&key.as_str())
                {
                    return Err(format!("unexpected field {key:?}"));
                }
            }
            if body.as_object().map(|o| o.len()) != Some(1) {
                return Err("create body has more than `fields`".into());
            }
            if body["fields"]["project"] != json!({"key": "SEC"}) {
                return Err("project changed".into());
            }
            for label in body["fields"]["labels"].as_array().ok_or("no labels")? {
                let label = label.as_str().ok_or("label not a string")?;
                if label.is_empty() || label.chars().any(char::is_whitespace) {
                    return Err(format!("invalid Jira label {label:?}"));
                }
            }
            adf_text(&body["fields"]["description"])?;
        } else if p.ends_with("/comment") {
            adf_text(&body["body"])?;
        } else if p == "/rest/api/3/search/jql" {
            let jql = body["jql"].as_str().ok_or("no jql")?;
            let label = jql_label(jql).ok_or("no label in JQL")?;
            let expected =
                format!("project = \"SEC\" AND labels = \"{label}\" ORDER BY created ASC");
            if jql != expected || !label.starts_with("vowguard-") || label.len() != 41 {
                return Err(format!("unexpected JQL {jql:?}"));
            }
        }
        Ok(())
    }
}
