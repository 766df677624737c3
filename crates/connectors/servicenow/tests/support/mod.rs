//! A simulated ServiceNow Table API (incident table: encoded-query lookup by
//! correlation_id, create, PATCH work notes and state) on top of the ticket suite's vendor
//! store, and the harness for the shared suite.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::{Priority, SecretRef, TicketSystem};
use vowguard_servicenow::{Credential, ServiceNowAuth, ServiceNowConfig, ServiceNowTickets};
use vowguard_testkit::ticket_suite::{
    Operation, TicketHarness, VendorState, VendorTicket, VendorTickets,
};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, ResponseTemplate};

pub const USER: &str = "svc-vowguard";
pub const PASSWORD: &str = "sn-suite-password-5e2b9";
pub const TABLE_PATH: &str = "/api/now/table/incident";

pub fn config(base_url: &str) -> ServiceNowConfig {
    let mut c = ServiceNowConfig::new(
        base_url,
        ServiceNowAuth::Basic {
            username: USER.into(),
            password: SecretRef::Env("UNUSED".into()),
        },
    );
    c.http.timeout = std::time::Duration::from_millis(5_000);
    c
}

pub fn basic(password: &str) -> Credential {
    Credential::Basic {
        username: USER.into(),
        password: SecretString::from(password.to_owned()),
    }
}

pub fn build(
    id: &str,
    config: &ServiceNowConfig,
    credential: &Credential,
) -> Arc<dyn TicketSystem> {
    Arc::new(ServiceNowTickets::with_id(id, config, credential).unwrap())
}

pub fn sys_id(n: u64) -> String {
    format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn failure(status: u16, message: &str, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"error": {"message": message, "detail": detail}, "status": "failure"}),
    )
}

fn not_found() -> ResponseTemplate {
    failure(
        404,
        "No Record found",
        "Record doesn't exist or ACL restricts the record retrieval",
    )
}

fn json_body(request: &Request) -> Result<Value, String> {
    serde_json::from_slice(&request.body).map_err(|e| format!("body is not JSON: {e}"))
}

fn query(request: &Request, key: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn sys_id_in_path(request: &Request) -> String {
    request
        .url
        .path_segments()
        .and_then(|mut s| s.nth(4))
        .unwrap_or_default()
        .to_owned()
}

fn state(t: &VendorTicket) -> &'static str {
    if t.resolved { "6" } else { "1" }
}

/// `correlation_id=<id>^ORDERBYsys_created_on` → `<id>`, refusing any other query (so a
/// connector that lets text into the query fails here).
fn correlation_in(query: &str) -> Option<&str> {
    let rest = query.strip_prefix("correlation_id=")?;
    let id = rest.strip_suffix("^ORDERBYsys_created_on")?;
    (!id.contains('^')).then_some(id)
}

fn create(store: &mut VendorTickets, request: &Request) -> ResponseTemplate {
    let Ok(body) = json_body(request) else {
        return failure(400, "Exception while reading request", "body is not JSON");
    };
    let Some(short) = body["short_description"].as_str() else {
        return failure(400, "Operation Failed", "short_description is mandatory");
    };
    let description = body["description"].as_str().unwrap_or_default().to_owned();
    let labels = description
        .lines()
        .find_map(|l| l.strip_prefix("Labels: "))
        .map(|l| l.split(", ").map(str::to_owned).collect())
        .unwrap_or_default();
    let n = store.next_number();
    let id = sys_id(n);
    store.push(VendorTicket {
        key: id.clone(),
        dedup_key: body["correlation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        title: short.to_owned(),
        description,
        priority: format!(
            "{}/{}",
            body["urgency"].as_str().unwrap_or("?"),
            body["impact"].as_str().unwrap_or("?")
        ),
        labels,
        raw: body.clone(),
        ..VendorTicket::default()
    });
    ResponseTemplate::new(201)
        .insert_header(
            "Location",
            format!("https://example.service-now.com{TABLE_PATH}/{id}").as_str(),
        )
        .set_body_json(json!({"result": {"sys_id": id, "number": format!("INC{n:07}")}}))
}

/// The simulated instance.
pub fn servicenow_mocks(vendor: &VendorState) -> Vec<Mock> {
    let mut mocks = Vec::new();
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("GET"))
            .and(path(TABLE_PATH))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Lookup, |s| {
                    let limit: usize = query(r, "sysparm_limit")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(10_000);
                    let records: Vec<Value> = match query(r, "sysparm_query") {
                        None => s.all().iter().take(limit).map(|t| json!({"sys_id": t.key})).collect(),
                        Some(q) => {
                            let Some(id) = correlation_in(&q) else {
                                return failure(400, "Invalid query", "unexpected sysparm_query");
                            };
                            s.by_dedup_key(id)
                                .into_iter()
                                .take(limit)
                                .map(|t| json!({"sys_id": t.key, "number": "INC", "state": state(t)}))
                                .collect()
                        }
                    };
                    ResponseTemplate::new(200).set_body_json(json!({"result": records}))
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("POST"))
            .and(path(TABLE_PATH))
            .respond_with(move |r: &Request| v.respond(Operation::Create, |s| create(s, r))),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/now/table/incident/[^/]+$"))
            .respond_with(move |r: &Request| {
                v.respond(Operation::Resolve, |s| match s.get(&sys_id_in_path(r)) {
                    Some(t) => ResponseTemplate::new(200)
                        .set_body_json(json!({"result": {"sys_id": t.key, "state": state(t)}})),
                    None => not_found(),
                })
            }),
    );
    let v = vendor.clone();
    mocks.push(
        Mock::given(method("PATCH"))
            .and(path_regex(r"^/api/now/table/incident/[^/]+$"))
            .respond_with(move |r: &Request| {
                let body = json_body(r).unwrap_or(Value::Null);
                let operation = if body.get("state").is_some() {
                    Operation::Resolve
                } else {
                    Operation::Update
                };
                v.respond(operation, |s| {
                    let Some(t) = s.get_mut(&sys_id_in_path(r)) else {
                        return not_found();
                    };
                    if let Some(note) = body["work_notes"].as_str() {
                        t.comments.push(note.to_owned());
                    }
                    if let Some(state) = body["state"].as_str() {
                        if !matches!(state, "6" | "7") || body["close_code"].as_str().is_none() {
                            return failure(400, "Operation Failed", "close_code is mandatory");
                        }
                        t.resolved = true;
                        t.resolutions += 1;
                        t.resolution_note = body["close_notes"].as_str().map(str::to_owned);
                    }
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"result": {"sys_id": t.key, "state": state(t)}}))
                })
            }),
    );
    mocks
}

/// The ServiceNow harness for the shared ticket suite.
pub struct ServiceNowHarness;

impl TicketHarness for ServiceNowHarness {
    fn name(&self) -> &str {
        "servicenow"
    }

    fn secret(&self) -> &str {
        PASSWORD
    }

    fn build(&self, id: &str, base_url: &str, _data_dir: &Path) -> Arc<dyn TicketSystem> {
        build(id, &config(base_url), &basic(PASSWORD))
    }

    fn vendor_mocks(&self, vendor: &VendorState) -> Vec<Mock> {
        servicenow_mocks(vendor)
    }

    fn expected_title(&self, title: &str) -> String {
        let line: String = title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = line.trim();
        if line.chars().count() <= 160 {
            line.to_owned()
        } else {
            let mut cut: String = line.chars().take(159).collect();
            cut.push('…');
            cut
        }
    }

    fn expected_priority(&self, priority: Priority) -> String {
        match priority {
            Priority::P0Critical => "1/1",
            Priority::P1High => "1/2",
            Priority::P2Medium => "2/2",
            Priority::P3Low => "2/3",
            Priority::P4Info => "3/3",
        }
        .to_owned()
    }

    fn rejection(&self) -> (ResponseTemplate, String) {
        (
            failure(
                400,
                "Operation Failed",
                "Data Policy Exception: Short description is mandatory",
            ),
            "Operation Failed: Data Policy Exception: Short description is mandatory".to_owned(),
        )
    }

    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        failure(
            401,
            "User Not Authenticated",
            &format!("invalid credential: password {secret} is wrong"),
        )
    }

    fn check_request(&self, request: &Request) -> Result<(), String> {
        let auth = request
            .headers
            .get("authorization")
            .ok_or("no Authorization header")?;
        if !auth.to_str().unwrap_or_default().starts_with("Basic ") {
            return Err("Authorization is not Basic".into());
        }
        if let Some(q) = query(request, "sysparm_query") {
            let id = correlation_in(&q).ok_or_else(|| format!("unexpected query {q:?}"))?;
            if id
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || ".-_:".contains(c)))
            {
                return Err(format!("unsafe correlation id in the query: {id:?}"));
            }
        }
        if request.body.is_empty() {
            return Ok(());
        }
        let body = json_body(request)?;
        let allowed: &[&str] = if request.method.as_str() == "POST" {
            &[
                "short_description",
                "description",
                "urgency",
                "impact",
                "correlation_id",
                "correlation_display",
                "caller_id",
                "assignment_group",
                "category",
                "subcategory",
            ]
        } else {
            &["work_notes", "state", "close_code", "close_notes"]
        };
        for (key, value) in body.as_object().ok_or("body is not an object")? {
            if !allowed.contains(&key.as_str()) {
                return Err(format!("unexpected field {key:?}"));
            }
            let text = value
                .as_str()
                .ok_or_else(|| format!("{key} is not a string"))?;
            if text.to_ascii_lowercase().contains("[code]") {
                return Err(format!("{key} carries a [code] tag"));
            }
        }
        Ok(())
    }
}
