//! The shared ticket behaviour suite, against a simulated webhook receiver (flavors
//! `generic` and `stackstorm`) that keeps cases and honours `Idempotency-Key`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde_json::{Value, json};
use vowguard_core::{Priority, SecretRef, TicketSystem};
use vowguard_soar::encode::{self, MAX_TITLE_CHARS};
use vowguard_soar::{Flavor, SoarConfig, SoarSecrets, SoarTickets, TicketIndex};
use vowguard_testkit::ticket_suite::{self, Operation, TicketHarness, VendorState, VendorTicket};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

struct Webhook {
    flavor: Flavor,
}

impl Webhook {
    fn hook_path(&self) -> &'static str {
        match self.flavor {
            Flavor::Stackstorm => "/api/v1/webhooks/st2",
            _ => "/hooks/vowguard",
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

impl TicketHarness for Webhook {
    fn name(&self) -> &str {
        self.flavor.as_str()
    }

    fn build(&self, id: &str, base_url: &str, data_dir: &Path) -> Arc<dyn TicketSystem> {
        let mut config = SoarConfig::new(self.flavor, format!("{base_url}{}", self.hook_path()));
        config.reference_pointer = Some("/id".into());
        let mut secrets = SoarSecrets::default();
        match self.flavor {
            Flavor::Stackstorm => {
                config.api_key = Some(SecretRef::Env("UNUSED".into()));
                config.trigger = Some("vowguard.incident".into());
                secrets.api_key = Some(SecretString::from(self.secret().to_owned()));
            }
            _ => {
                config
                    .headers
                    .insert("Authorization".into(), SecretRef::Env("UNUSED".into()));
                secrets.headers.insert(
                    "Authorization".into(),
                    SecretString::from(format!("Bearer {}", self.secret())),
                );
            }
        }
        Arc::new(
            SoarTickets::new(
                id,
                &config,
                secrets,
                TicketIndex::load(id, data_dir).unwrap(),
            )
            .unwrap(),
        )
    }

    fn vendor_mocks(&self, vendor: &VendorState) -> Vec<Mock> {
        // Idempotency-Key -> the answer given the first time.
        let seen: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let stackstorm = self.flavor == Flavor::Stackstorm;
        let vendor = vendor.clone();
        let handle = move |request: &Request| {
            let mut body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            if stackstorm {
                if body["trigger"] != "vowguard.incident" {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"faultstring": "unknown trigger"}));
                }
                body = body["payload"].take();
            }
            let key = request
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let operation = match body["action"].as_str() {
                Some("open") => Operation::Create,
                Some("update") => Operation::Update,
                _ => Operation::Resolve,
            };
            vendor.respond(operation, |store| {
                if let Some(answer) = seen.lock().unwrap().get(&key) {
                    return ResponseTemplate::new(200).set_body_json(answer.clone());
                }
                let answer = match operation {
                    Operation::Create => {
                        let case = format!("case-{}", store.next_number());
                        let tasks: Vec<String> = body["tasks"]
                            .as_array()
                            .map(|a| a.iter().map(text).collect())
                            .unwrap_or_default();
                        store.push(VendorTicket {
                            key: case.clone(),
                            dedup_key: key.clone(),
                            title: text(&body["title"]),
                            description: format!(
                                "{}\n{}",
                                text(&body["description"]),
                                tasks.join("\n")
                            ),
                            priority: text(&body["priority"]),
                            labels: body["labels"]
                                .as_array()
                                .map(|a| a.iter().map(text).collect())
                                .unwrap_or_default(),
                            raw: body.clone(),
                            ..VendorTicket::default()
                        });
                        json!({"id": case, "status": "queued"})
                    }
                    Operation::Update => {
                        let Some(t) = store.get_mut(&text(&body["reference"])) else {
                            return ResponseTemplate::new(404)
                                .set_body_json(json!({"error": "no such case"}));
                        };
                        t.comments.push(format!(
                            "{} {}",
                            text(&body["update"]["author"]),
                            text(&body["update"]["text"])
                        ));
                        json!({"ok": true})
                    }
                    _ => {
                        let Some(t) = store.get_mut(&text(&body["reference"])) else {
                            return ResponseTemplate::new(404)
                                .set_body_json(json!({"error": "no such case"}));
                        };
                        if !t.resolved {
                            t.resolved = true;
                            t.resolutions += 1;
                            t.resolution_note = Some(text(&body["note"]));
                        }
                        json!({"ok": true})
                    }
                };
                seen.lock().unwrap().insert(key.clone(), answer.clone());
                ResponseTemplate::new(200).set_body_json(answer)
            })
        };
        vec![
            Mock::given(method("POST"))
                .and(path(self.hook_path()))
                .respond_with(handle),
        ]
    }

    fn expected_title(&self, title: &str) -> String {
        encode::one_line(title, MAX_TITLE_CHARS)
    }

    fn expected_priority(&self, priority: Priority) -> String {
        priority.as_str().to_owned()
    }

    fn check_request(&self, request: &Request) -> Result<(), String> {
        let mut body: Value =
            serde_json::from_slice(&request.body).map_err(|e| format!("body is not JSON: {e}"))?;
        if self.flavor == Flavor::Stackstorm {
            let st2 = request.headers.get("st2-api-key").ok_or("no St2-Api-Key")?;
            if st2.as_bytes() != self.secret().as_bytes() {
                return Err("wrong St2-Api-Key".into());
            }
            body = body["payload"].take();
        }
        let allowed: &[&str] = match body["action"].as_str() {
            Some("open") => &[
                "source",
                "action",
                "incident_id",
                "fingerprint",
                "title",
                "description",
                "priority",
                "priority_level",
                "wedding_ids",
                "labels",
                "tasks",
                "opened_at",
                "event",
                "truncated",
                "dedup_key",
            ],
            Some("update") => &[
                "source",
                "action",
                "reference",
                "fingerprint",
                "incident_id",
                "update",
                "dedup_key",
            ],
            Some("resolve") => &[
                "source",
                "action",
                "reference",
                "fingerprint",
                "incident_id",
                "note",
                "dedup_key",
            ],
            other => return Err(format!("unexpected action {other:?}")),
        };
        for key in body.as_object().ok_or("not an object")?.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(format!("unexpected field {key:?}"));
            }
        }
        let Some(key) = request.headers.get("idempotency-key") else {
            return Err("no Idempotency-Key".into());
        };
        if request.headers.get("x-vowguard-dedup-key") != Some(key) {
            return Err("X-Vowguard-Dedup-Key differs from Idempotency-Key".into());
        }
        if body["dedup_key"].as_str().map(str::as_bytes) != Some(key.as_bytes()) {
            return Err("the body's dedup_key differs from Idempotency-Key".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn generic_webhook_passes_the_ticket_behaviour_suite() {
    ticket_suite::run(Webhook {
        flavor: Flavor::Generic,
    })
    .await;
}

#[tokio::test]
async fn stackstorm_passes_the_ticket_behaviour_suite() {
    ticket_suite::run(Webhook {
        flavor: Flavor::Stackstorm,
    })
    .await;
}
