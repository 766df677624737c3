//! The wedding-day demo: `cargo run --example wedding_day`.
//!
//! Starts a local mock for every connector compiled into this build (wiremock for the HTTP
//! vendors, a TCP syslog receiver for ArcSight/QRadar, a tiny SMTP receiver for email),
//! writes a vowguard config pointing at them, and streams a scripted Saturday through the
//! real runtime (the same stdin source, pipeline, router and connectors `vowguard run`
//! uses): a brute-force run against a wedding planner's account, a guest-list export
//! during a wedding that is happening today, a vendor payout change, and background noise.
//! Then it prints what every endpoint received and which route sent each alert.
//!
//! No credentials and no network: everything listens on 127.0.0.1.
#![allow(clippy::print_stdout, missing_docs)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use vowguard_core::SecretMap;
use vowguard_response::{ResponseEngine, Run, RunState};
use vowguard_runtime::{Config, Environment, assemble, enabled_connector_kinds, run_with_input};
use vowguard_testkit::receivers::{smtp_receiver, syslog_receiver};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEDDING: &str = "w-2026-06-20-smith";

/// The scripted Saturday, as the platform's services would send it (NDJSON).
fn scenario() -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |v: Value| lines.push(v.to_string());
    let noise = |t: &str, action: &str, user: &str| {
        serde_json::json!({"id": format!("evt-{}", action.replace('.', "-")), "timestamp": format!("2026-06-20T{t}Z"), "category": "data_access",
            "action": action, "outcome": "success", "severity": "info", "user_id": user,
            "wedding_id": WEDDING})
    };
    push(noise("08:55:10", "rsvp.view", "guest-204"));
    push(noise("08:58:41", "vendor.portfolio.view", "guest-311"));
    push(
        serde_json::json!({"timestamp": "2026-06-20T09:01:02Z", "category": "authentication",
        "action": "login", "outcome": "success", "severity": "info", "user_id": "couple-smith",
        "source_ip": "198.51.100.20"}),
    );
    // Brute force against the planner's account: twelve failures from one address...
    for i in 0..12 {
        push(
            serde_json::json!({"timestamp": format!("2026-06-20T09:12:{:02}Z", i * 4),
            "category": "authentication", "action": "login", "outcome": "failure",
            "severity": "medium", "risk_score": 40 + i, "user_id": "planner-17",
            "user_name": "alex.planner", "source_ip": "203.0.113.7",
            "user_agent": "python-requests/2.31", "message": "invalid password"}),
        );
    }
    // ... then a success: the account is probably taken over.
    push(
        serde_json::json!({"id": "evt-takeover", "timestamp": "2026-06-20T09:13:02Z",
        "category": "authentication", "action": "login", "outcome": "success", "severity": "high",
        "risk_score": 88, "user_id": "planner-17", "user_name": "alex.planner",
        "source_ip": "203.0.113.7", "message": "login after 12 failures from the same address"}),
    );
    // A line a buggy service sends: reported with its line number, nothing else lost.
    push(serde_json::json!({"action": "guest_list.view", "severity": "urgent"}));
    // The taken-over account exports the guest list of a wedding happening today.
    push(
        serde_json::json!({"id": "evt-guest-export", "timestamp": "2026-06-20T11:30:00Z",
        "category": "data_export", "action": "guest_list.export", "outcome": "success",
        "severity": "critical", "risk_score": 97, "user_id": "planner-17",
        "user_name": "alex.planner", "source_ip": "203.0.113.7", "resource_type": "guest_lists",
        "resource_id": "gl-smith", "wedding_id": WEDDING, "record_count": 212,
        "message": "212 guest records exported as CSV <!channel>",
        "labels": {"wedding_phase": "day_of"}}),
    );
    // A vendor's payout details change an hour before the ceremony.
    push(
        serde_json::json!({"id": "evt-vendor-payout", "timestamp": "2026-06-20T12:05:00Z",
        "category": "account_change", "action": "vendor.payout_details.update",
        "outcome": "success", "severity": "high", "risk_score": 81, "user_id": "vendor-photo-3",
        "source_ip": "192.0.2.55", "wedding_id": WEDDING,
        "message": "bank account changed from a new device"}),
    );
    push(noise("13:00:00", "seating_chart.view", "couple-smith"));
    push(noise("13:20:00", "photo_gallery.view", "guest-118"));
    lines.join("\n") + "\n"
}

async fn mock(answer: ResponseTemplate, verb: &str, route: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path_regex(route))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match flate2::read::GzDecoder::new(bytes).read_to_end(&mut out) {
        Ok(_) => out,
        Err(_) => bytes.to_vec(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_target(false)
        .with_writer(std::io::stdout)
        .init();
    let kinds = enabled_connector_kinds();
    let has = |k: &str| kinds.contains(&k);
    let dir = tempfile::tempdir()?;
    let mut secrets = SecretMap::new();
    let mut config = String::from(
        "data_dir = \"data\"\n\n[pipeline]\nenrichment_budget = \"500ms\"\n\n[sources.in]\ntype = \"stdin\"\n",
    );
    if has("wedding_context") {
        // The platform's wedding records (a file provider; hosts implement the provider trait).
        std::fs::write(
            dir.path().join("weddings.json"),
            format!(
                r#"[{{"wedding_id":"{WEDDING}","date":"2026-06-20","timezone":"Europe/London","guest_count":212,"vendor_count":14,"venue":"Kew Orangery"}}]"#
            ),
        )?;
        config += "\n[enrichers.wedding]\ntype = \"wedding_context\"\nprovider = \"file\"\npath = \"weddings.json\"\n";
        config += "\n[enrichers.patterns]\ntype = \"attack_patterns\"\n";
    }
    let mut http_mocks: Vec<(&str, MockServer)> = Vec::new();
    if has("misp") {
        // A MISP instance that knows the brute-forcing address; everything else is unknown.
        let server = MockServer::start().await;
        let hit = serde_json::json!({"response": {"Attribute": [{
            "id": "48213", "event_id": "1207", "type": "ip-src", "category": "Network activity",
            "value": "203.0.113.7", "to_ids": true, "timestamp": "1781900000",
            "first_seen": "2026-05-02T08:00:00Z", "last_seen": null,
            "Tag": [{"name": "tlp:amber"}, {"name": "misp-galaxy:threat-actor=\"Confetti Spider\"", "inherited": 1}]
        }]}});
        Mock::given(method("POST"))
            .and(path("/attributes/restSearch"))
            .and(wiremock::matchers::body_string_contains("203.0.113.7"))
            .respond_with(ResponseTemplate::new(200).set_body_json(hit))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/attributes/restSearch"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"response": {"Attribute": []}})),
            )
            .mount(&server)
            .await;
        secrets = secrets.with("DEMO_MISP_KEY", "demo-misp-key");
        config += &format!(
            "\n[enrichers.intel]\ntype = \"misp\"\nurl = \"{}\"\napi_key = {{ env = \"DEMO_MISP_KEY\" }}\n",
            server.uri()
        );
        http_mocks.push(("misp", server));
    }
    let mut syslog: Vec<(&str, Arc<Mutex<Vec<String>>>)> = Vec::new();
    let mut p0 = Vec::new();
    let mut p1 = Vec::new();

    if has("splunk_hec") {
        let server = mock(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#),
            "POST",
            "^/services/collector/event$",
        )
        .await;
        secrets = secrets.with("DEMO_SPLUNK_TOKEN", "demo-hec-token");
        config += &format!(
            "\n[sinks.splunk]\ntype = \"splunk_hec\"\nendpoint = \"{}\"\ntoken = {{ env = \"DEMO_SPLUNK_TOKEN\" }}\nindex = \"wedding-security\"\nsource = \"wedsync-security-audit\"\nbatch = {{ max_wait = \"100ms\" }}\n",
            server.uri()
        );
        http_mocks.push(("splunk_hec", server));
    }
    if has("elasticsearch") {
        let server = mock(
            ResponseTemplate::new(200).set_body_string(r#"{"errors":false}"#),
            "POST",
            "^/_bulk$",
        )
        .await;
        secrets = secrets.with("DEMO_ES_API_KEY", "ZGVtbzpkZW1v");
        config += &format!(
            "\n[sinks.elastic]\ntype = \"elasticsearch\"\nendpoint = \"{}\"\napi_key = {{ env = \"DEMO_ES_API_KEY\" }}\nbatch = {{ max_wait = \"100ms\" }}\n",
            server.uri()
        );
        http_mocks.push(("elasticsearch", server));
    }
    if has("datadog_logs") {
        let server = mock(
            ResponseTemplate::new(202).set_body_string("{}"),
            "POST",
            "^/api/v2/logs$",
        )
        .await;
        secrets = secrets.with("DEMO_DD_API_KEY", "demo-dd-key");
        config += &format!(
            "\n[sinks.datadog]\ntype = \"datadog_logs\"\napi_key = {{ env = \"DEMO_DD_API_KEY\" }}\nendpoint = \"{0}\"\napi_endpoint = \"{0}\"\nbatch = {{ max_wait = \"100ms\" }}\n",
            server.uri()
        );
        http_mocks.push(("datadog_logs", server));
    }
    for (kind, id) in [("arcsight", "arcsight"), ("qradar", "qradar")] {
        if has(kind) {
            let (address, received) = syslog_receiver().await;
            config += &format!(
                "\n[sinks.{id}]\ntype = \"{kind}\"\nbatch = {{ max_wait = \"100ms\" }}\n[sinks.{id}.syslog]\naddress = \"{address}\"\n"
            );
            syslog.push((kind, received));
        }
    }
    if has("pagerduty") {
        let server = mock(
            ResponseTemplate::new(202)
                .set_body_string(r#"{"status":"success","message":"Event processed"}"#),
            "POST",
            "^/v2/enqueue$",
        )
        .await;
        secrets = secrets.with("DEMO_PD_KEY", "R0uT1nGKeYdemo000000000000000042");
        config += &format!(
            "\n[notifiers.oncall]\ntype = \"pagerduty\"\nrouting_key = {{ env = \"DEMO_PD_KEY\" }}\nendpoint = \"{}\"\n",
            server.uri()
        );
        http_mocks.push(("pagerduty", server));
        p0.push("oncall");
        p1.push("oncall");
    }
    if has("slack") {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/chat.postMessage"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(r#"{"ok":true,"ts":"1750410000.000100"}"#),
            )
            .mount(&server)
            .await;
        secrets = secrets.with("DEMO_SLACK_BOT_TOKEN", "xoxb-demo-token");
        config += &format!(
            "\n[notifiers.secops]\ntype = \"slack\"\nbot_token = {{ env = \"DEMO_SLACK_BOT_TOKEN\" }}\nchannels = [\"#security-alerts\"]\napi_base_url = \"{}/api\"\n",
            server.uri()
        );
        http_mocks.push(("slack", server));
        p0.push("secops");
        p1.push("secops");
    }
    if has("teams") {
        let server = mock(ResponseTemplate::new(202), "POST", "^/workflows/.*").await;
        secrets = secrets.with(
            "DEMO_TEAMS_URL",
            format!(
                "{}/workflows/demo/triggers/manual/paths/invoke?sig=demo-sig",
                server.uri()
            ),
        );
        config += "\n[notifiers.wedding_ops]\ntype = \"teams\"\nwebhook_url = { env = \"DEMO_TEAMS_URL\" }\n";
        http_mocks.push(("teams", server));
        p0.push("wedding_ops");
    }
    if has("sms") {
        let sid = "AC00000000000000000000000000000042";
        let server = mock(
            ResponseTemplate::new(201).set_body_string(
                r#"{"sid":"SM00000000000000000000000000000042","status":"queued"}"#,
            ),
            "POST",
            "^/2010-04-01/Accounts/.*/Messages.json$",
        )
        .await;
        secrets = secrets.with("DEMO_TWILIO_TOKEN", "demo-twilio-token");
        config += &format!(
            "\n[notifiers.emergency_sms]\ntype = \"sms\"\naccount_sid = \"{sid}\"\nauth_token = {{ env = \"DEMO_TWILIO_TOKEN\" }}\nfrom = \"+15005550006\"\nto = [\"+447700900123\"]\napi_base_url = \"{}\"\n",
            server.uri()
        );
        http_mocks.push(("sms", server));
        p0.push("emergency_sms");
    }
    let mut smtp = None;
    if has("email") {
        let (port, received) = smtp_receiver().await;
        config += &format!(
            "\n[notifiers.security_mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"vowguard@wedsync.example\"\nto = [\"security@wedsync.example\"]\n"
        );
        smtp = Some(received);
        p0.push("security_mail");
        p1.push("security_mail");
    }
    // Legal counsel's Slack workflow: the guest-data-breach protocol and the
    // `wedding-data-breach` playbook notify it.
    if has("slack") {
        let server = mock(
            ResponseTemplate::new(200).set_body_string("ok"),
            "POST",
            "^/services/T0/B0/legal$",
        )
        .await;
        secrets = secrets.with(
            "DEMO_LEGAL_HOOK",
            format!("{}/services/T0/B0/legal", server.uri()),
        );
        config +=
            "\n[notifiers.legal]\ntype = \"slack\"\nwebhook_url = { env = \"DEMO_LEGAL_HOOK\" }\n";
        http_mocks.push(("legal", server));
    }
    let mut jira = None;
    if has("jira") {
        // A Jira Cloud site: search by our fingerprint label finds nothing, each create gets
        // the next key, comments are accepted.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/rest/api/3/search/jql"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"issues": []})),
            )
            .mount(&server)
            .await;
        let next_key = Arc::new(std::sync::atomic::AtomicU32::new(101));
        Mock::given(method("POST"))
            .and(path("/rest/api/3/issue"))
            .respond_with(move |_: &wiremock::Request| {
                let n = next_key.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ResponseTemplate::new(201).set_body_json(
                    serde_json::json!({"id": format!("{}", 10_000 + n), "key": format!("SEC-{n}")}),
                )
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/rest/api/3/issue/[A-Z]+-[0-9]+/comment$"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "1"})))
            .mount(&server)
            .await;
        secrets = secrets.with("DEMO_JIRA_TOKEN", "demo-jira-token");
        config += &format!(
            "\n[tickets.jira]\ntype = \"jira\"\nurl = \"{}\"\nemail = \"secops-bot@wedsync.example\"\napi_token = {{ env = \"DEMO_JIRA_TOKEN\" }}\nproject = \"SEC\"\n",
            server.uri()
        );
        jira = Some(server);
    }
    // Automated response: incidents for P0/P1 alerts and the default playbooks, with the
    // actions this host carries out (the runtime's action hook logs each request).
    config += "\n[response]\nactions = [\"lock_accounts\", \"revoke_tokens\", \"block_ip\", \"enhanced_logging\", \"preserve_evidence\", \"begin_gdpr_assessment\"]\n";
    let list = |ids: &[&str]| {
        ids.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !p0.is_empty() {
        config += &format!(
            "\n[[routes]]\nname = \"p0-wedding-emergency\"\nmatch = {{ priority = [\"P0\"] }}\nnotify = [{}]\nparams = {{ channels = [\"#security-emergency\", \"#wedding-ops-urgent\"], mention = \"channel\", severity = \"critical\", escalation_policy = \"security-emergency\", email_priority = \"urgent\" }}\n",
            list(&p0)
        );
        config += &format!(
            "\n[[routes]]\nname = \"p1-security-standard\"\nmatch = {{ priority = [\"P1\"] }}\nnotify = [{}]\nparams = {{ channels = [\"#security-alerts\", \"#wedding-ops\"], severity = \"error\", escalation_policy = \"security-standard\", email_priority = \"high\" }}\n",
            list(&p1)
        );
    }
    std::fs::write(dir.path().join("vowguard.toml"), &config)?;

    println!("vowguard wedding-day demo: Saturday 2026-06-20, wedding {WEDDING}");
    println!("connectors compiled in: {}", kinds.join(", "));
    println!(
        "config written to {}\n",
        dir.path().join("vowguard.toml").display()
    );

    let parsed = Config::parse(&config)?;
    let assembly = assemble(
        &parsed,
        &Environment {
            config_dir: dir.path(),
            secrets: &secrets,
        },
    )?;
    let engine = assembly.response.clone();
    // The scenario goes in through a pipe that stays open until the response engine has
    // done its part (the breach playbook's approval included), so every timeline entry
    // reaches the audit log before the run ends and closes it.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let feed = async {
        use tokio::io::AsyncWriteExt;
        writer.write_all(scenario().as_bytes()).await?;
        let shown = match &engine {
            Some(engine) => respond(engine).await?,
            None => String::new(),
        };
        writer.shutdown().await?;
        drop(writer);
        Ok::<String, Box<dyn std::error::Error>>(shown)
    };
    let (report, response_shown) = tokio::join!(
        run_with_input(
            assembly,
            tokio::io::BufReader::new(reader),
            std::future::pending()
        ),
        feed
    );
    let (report, response_shown) = (report?, response_shown?);
    println!(
        "\nstreamed {} lines: {} events accepted, {} rejected (the warning above names the line and field)\n",
        report.source.lines, report.source.accepted, report.source.rejected
    );

    println!("SIEM deliveries");
    for (kind, server) in &http_mocks {
        let requests = server.received_requests().await.unwrap_or_default();
        let events: usize = match *kind {
            "splunk_hec" => requests
                .iter()
                .map(|r| {
                    serde_json::Deserializer::from_slice(&r.body)
                        .into_iter::<Value>()
                        .count()
                })
                .sum(),
            "elasticsearch" => requests
                .iter()
                .map(|r| {
                    r.body
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count()
                        / 2
                })
                .sum(),
            "datadog_logs" => requests
                .iter()
                .map(|r| {
                    serde_json::from_slice::<Vec<Value>>(&gunzip(&r.body)).map_or(0, |v| v.len())
                })
                .sum(),
            _ => continue,
        };
        println!(
            "  {kind:<14} {events:>3} events in {} request(s) to {}",
            requests.len(),
            server.uri()
        );
    }
    for (kind, received) in &syslog {
        let lines = received.lock().unwrap().clone();
        println!(
            "  {kind:<14} {:>3} syslog messages over TCP (octet counting)",
            lines.len()
        );
        if let Some(sample) = lines.iter().find(|l| l.contains("guest_list.export")) {
            let payload = sample.split_once(" - ").map_or(sample.as_str(), |(_, m)| m);
            println!("      {}", truncate(payload, 150));
        }
    }
    let m = &report.metrics;
    println!(
        "  pipeline: {} delivered, {} dead-lettered, {} retried",
        m.sinks.values().map(|s| s.delivered).sum::<u64>(),
        m.sinks.values().map(|s| s.dead_lettered).sum::<u64>(),
        m.sinks.values().map(|s| s.retried).sum::<u64>()
    );

    if let Some((_, server)) = http_mocks.iter().find(|(k, _)| *k == "splunk_hec") {
        println!("\nEnrichment (as Splunk received it)");
        let mut shown_pattern = false;
        for request in server.received_requests().await.unwrap_or_default() {
            for envelope in serde_json::Deserializer::from_slice(&request.body)
                .into_iter::<Value>()
                .flatten()
            {
                let event = &envelope["event"];
                let id = event["id"].as_str().unwrap_or("");
                let enrichment = &event["enrichment"];
                if id == "evt-takeover" && enrichment["threat"].is_object() {
                    let t = &enrichment["threat"];
                    println!(
                        "  {id}: threat verdict={} score={} actors={} tlp={} (from MISP)",
                        t["verdict"], t["score"], t["actors"], t["tlp"]
                    );
                }
                if id == "evt-guest-export" {
                    let w = &enrichment["wedding"];
                    println!(
                        "  {id}: wedding {} phase={} days_until={} guests={} weekend={}",
                        w["wedding_id"],
                        w["phase"],
                        w["days_until"],
                        w["guest_count"],
                        w["weekend"]
                    );
                }
                if let Some(patterns) = enrichment["patterns"].as_array().filter(|p| !p.is_empty())
                    && !shown_pattern
                {
                    shown_pattern = true;
                    for p in patterns {
                        println!(
                            "  {} {} by {}: pattern {} confidence {:.2} indicators {}",
                            event["action"].as_str().unwrap_or(""),
                            event["outcome"].as_str().unwrap_or(""),
                            event["user_id"].as_str().unwrap_or("?"),
                            p["pattern"],
                            p["confidence"].as_f64().unwrap_or(0.0),
                            p["indicators"]
                        );
                    }
                }
            }
        }
    }

    println!("\nAlerts (from the notification log in data_dir)");
    let log =
        std::fs::read_to_string(dir.path().join("data/notifications.jsonl")).unwrap_or_default();
    let mut by_alert: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for line in log.lines() {
        let r: Value = serde_json::from_str(line)?;
        let key = (
            r["priority"].as_str().unwrap_or("").to_owned(),
            r["event_id"].as_str().unwrap_or("").to_owned(),
            r["route"].as_str().unwrap_or("").to_owned(),
        );
        let mark = if r["delivered"] == true {
            "delivered"
        } else {
            "FAILED"
        };
        by_alert
            .entry(key)
            .or_default()
            .push(format!("{} {mark}", r["notifier"].as_str().unwrap_or("")));
    }
    for ((priority, event, route), results) in &by_alert {
        println!(
            "  {priority:<12} {event:<18} route {route:<22} -> {}",
            results.join(", ")
        );
    }

    println!("\nWhat the channels received for the guest-list export");
    for (kind, server) in &http_mocks {
        let requests = server.received_requests().await.unwrap_or_default();
        let Some(request) = requests
            .iter()
            .find(|r| String::from_utf8_lossy(&r.body).contains("guest_list.export"))
        else {
            continue;
        };
        let body = String::from_utf8_lossy(&request.body);
        match *kind {
            "slack" => {
                let channels: Vec<String> = requests
                    .iter()
                    .filter(|r| String::from_utf8_lossy(&r.body).contains("guest_list.export"))
                    .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
                    .filter_map(|v| v["channel"].as_str().map(str::to_owned))
                    .collect();
                let json: Value = serde_json::from_str(&body)?;
                println!(
                    "  slack       to {}: {}",
                    channels.join(" and "),
                    truncate(json["text"].as_str().unwrap_or(""), 110)
                );
            }
            "pagerduty" => {
                let json: Value = serde_json::from_str(&body)?;
                println!(
                    "  pagerduty   {} severity={} dedup_key={}",
                    json["event_action"], json["payload"]["severity"], json["dedup_key"]
                );
            }
            "teams" => {
                let json: Value = serde_json::from_str(&body)?;
                let title = &json["attachments"][0]["content"]["body"][0]["text"];
                println!("  teams       Adaptive Card 1.4: {title}");
            }
            "sms" => {
                let text = form_urlencoded::parse(&request.body)
                    .find(|(key, _)| key == "Body")
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default();
                println!("  sms         {}", truncate(&text, 150));
            }
            _ => {}
        }
    }
    let mails = smtp
        .map(|received| received.lock().unwrap().clone())
        .unwrap_or_default();
    if let Some(mail) = mails.iter().find(|m| m.contains("guest_list.export")) {
        let subject = mail
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or("Subject: ?");
        println!("  email       {subject}");
    }
    print!("{response_shown}");
    if let Some(server) = &jira {
        println!(
            "\nJira issues the playbooks opened (one per incident, deduplicated by fingerprint)"
        );
        for r in server.received_requests().await.unwrap_or_default() {
            if r.url.path() == "/rest/api/3/issue" {
                let body: Value = serde_json::from_slice(&r.body)?;
                println!("  {}", body["fields"]["summary"]);
            }
        }
    }
    println!(
        "\nThe export's message carried `<!channel>`: Slack received it escaped (&lt;!channel&gt;), so only the route's configured @channel mention pages anyone."
    );
    Ok(())
}

/// Waits (at most 30 s) until `check` holds on the engine.
async fn wait_for(
    engine: &ResponseEngine,
    what: &str,
    check: impl Fn(&ResponseEngine) -> bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check(engine) {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("the response engine never got there: {what}"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

fn breach_run(engine: &ResponseEngine) -> Option<Run> {
    engine
        .runs(None)
        .into_iter()
        .find(|r| r.playbook == "wedding-data-breach" && r.event["id"] == "evt-guest-export")
}

/// The incidents and playbook runs: the guest-list export's `wedding-data-breach` run
/// waits for the security lead's approval of recovery; the demo approves it through the
/// engine (what `vowguard playbook approve` and `POST /api/playbook-runs/{id}/approve` do),
/// then prints the run's steps and the incident's timeline with times.
async fn respond(engine: &ResponseEngine) -> Result<String, Box<dyn std::error::Error>> {
    use std::fmt::Write as _;
    let mut out = String::new();
    wait_for(engine, "wedding-data-breach waiting for approval", |e| {
        breach_run(e).is_some_and(|r| {
            r.steps
                .get("approve_recovery")
                .is_some_and(|s| !s.status.is_terminal())
                || r.state.is_terminal()
        })
    })
    .await?;
    // Every other run (the P0 playbook for the takeover and the payout change) finishes.
    wait_for(engine, "the other runs finished", |e| {
        e.runs(None)
            .iter()
            .all(|r| r.state.is_terminal() || r.playbook == "wedding-data-breach")
    })
    .await?;
    writeln!(out, "\nIncidents (automated response)")?;
    let mut incidents = engine.incidents();
    incidents.sort_by_key(|i| i.opened.at);
    for i in &incidents {
        let runs: Vec<String> = engine
            .runs(Some(&i.id))
            .iter()
            .map(|r| format!("{} ({})", r.playbook, run_state(r.state)))
            .collect();
        writeln!(
            out,
            "  {} {:<10} {}",
            i.id,
            i.state.as_str(),
            truncate(&i.title, 70)
        )?;
        writeln!(out, "      playbooks: {}", runs.join(", "))?;
    }
    let Some(run) = breach_run(engine) else {
        writeln!(
            out,
            "  (wedding-data-breach did not run: its actions or notifiers are not configured)"
        )?;
        return Ok(out);
    };
    if run
        .steps
        .get("approve_recovery")
        .is_some_and(|s| !s.status.is_terminal())
    {
        writeln!(
            out,
            "\n{} waits for approval of recovery; the demo approves it as security-lead (as `vowguard playbook approve {} approve_recovery --as security-lead` would)",
            run.id, run.id
        )?;
        engine
            .decide(&run.id, "approve_recovery", "security-lead", true)
            .await?;
        wait_for(engine, "wedding-data-breach finished", |e| {
            breach_run(e).is_some_and(|r| r.state.is_terminal())
        })
        .await?;
    }
    let run = breach_run(engine).ok_or("the run vanished")?;
    writeln!(
        out,
        "\nPlaybook run {} (wedding-data-breach v{}): {}, started {}",
        run.id,
        run.version,
        run_state(run.state),
        run.started_at.format("%H:%M:%S%.3f")
    )?;
    let mut steps: Vec<_> = run.steps.values().collect();
    steps.sort_by_key(|s| (s.started_at, s.finished_at));
    let t0 = run.started_at;
    for s in steps {
        let offset = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or_else(
                || "-".to_owned(),
                |t| format!("+{}ms", (t - t0).num_milliseconds()),
            )
        };
        let result = match s.output.get("key").and_then(Value::as_str) {
            Some(key) => format!("ticket {key}"),
            None => truncate(&result_text(&s.output, s.error.as_deref()), 70),
        };
        writeln!(
            out,
            "  {:<22} {:<10} started {:>8} finished {:>8}  {result}",
            s.step_id,
            serde_json::to_value(s.status)?.as_str().unwrap_or(""),
            offset(s.started_at),
            offset(s.finished_at),
        )?;
    }
    let incident = engine
        .incident(&run.incident_id)
        .ok_or("the incident vanished")?;
    writeln!(
        out,
        "\nIncident {} timeline ({} entries, each also an audit-log entry)",
        incident.id,
        incident.timeline.len()
    )?;
    for e in &incident.timeline {
        // What the entry is about: the step, the ticket, or the state it moved to.
        let about = ["step_id", "key", "to", "playbook"]
            .iter()
            .find_map(|k| e.fields.get(*k).and_then(Value::as_str))
            .unwrap_or("");
        writeln!(
            out,
            "  {} {:<30} {:<16} {}",
            e.at.format("%H:%M:%S%.3f"),
            truncate(&e.actor, 30),
            e.action,
            about
        )?;
    }
    Ok(out)
}

fn run_state(state: RunState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn result_text(output: &Value, error: Option<&str>) -> String {
    if let Some(e) = error {
        return format!("error: {e}");
    }
    match output {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max).collect::<String>() + "…"
    }
}
