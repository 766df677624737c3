//! Event-in → first playbook step started, and event-in → containment done (incident
//! `contained`), with the action hook answering at once. Runs the default
//! `critical-security-incident` playbook for 500 P0 alerts, one after another, on a real
//! record file (every state change fsynced).
//!
//! `cargo run --release -p vowguard-response --example response_latency`
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vowguard_core::{Alert, Category, Event, Priority, RoutedAlert, Severity};
use vowguard_response::{IncidentState, ResponseConfig, ResponseEngine};
use vowguard_router::{ActionHook, RequestedAction};

#[derive(Debug, Default)]
struct InstantHook {
    first: Mutex<HashMap<String, Instant>>,
}

impl ActionHook for InstantHook {
    fn request(&self, action: &RequestedAction) {
        self.first
            .lock()
            .unwrap()
            .entry(action.event_id.clone())
            .or_insert_with(Instant::now);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Arc::new(InstantHook::default());
    let mut config = ResponseConfig::default();
    config.actions = vec![
        "lock_accounts".into(),
        "revoke_tokens".into(),
        "block_ip".into(),
        "enhanced_logging".into(),
        "preserve_evidence".into(),
    ];
    let engine = ResponseEngine::builder(config)
        .action_hook(hook.clone())
        .build(dir.path())
        .unwrap();
    engine.start();
    let n = 500;
    let mut first_step = Vec::with_capacity(n);
    let mut contained = Vec::with_capacity(n);
    for i in 0..n {
        let mut event = Event::new(Category::Authentication, "login", Severity::Critical);
        event.id = format!("bench-{i}");
        event.user_id = Some(format!("u-{i}"));
        event.source_ip = Some("203.0.113.7".parse().unwrap());
        let mut alert = Alert::new(Arc::new(event), Priority::P0Critical, "security/critical");
        alert.dedup_key = format!("bench|{i}");
        let routed = RoutedAlert {
            alert,
            notifiers: Vec::new(),
        };
        let id = format!("bench-{i}");
        let start = Instant::now();
        assert!(engine.on_alert(&routed));
        let done = engine
            .wait_until(Duration::from_secs(30), |e| {
                e.open_incident_for(&format!("bench|{i}"))
                    .is_some_and(|inc| inc.state == IncidentState::Contained)
            })
            .await;
        assert!(done, "alert {i} not contained");
        contained.push(start.elapsed());
        let first = hook.first.lock().unwrap()[&id];
        first_step.push(first - start);
    }
    first_step.sort();
    contained.sort();
    println!(
        "event-in -> first step started: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&first_step, 0.5),
        percentile(&first_step, 0.99),
        first_step[n - 1]
    );
    println!(
        "event-in -> containment done:   p50 {:?}  p99 {:?}  max {:?}",
        percentile(&contained, 0.5),
        percentile(&contained, 0.99),
        contained[n - 1]
    );
}
