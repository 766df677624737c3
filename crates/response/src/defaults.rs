//! The three default playbooks the platform named. Each applies only what is configured:
//! a step naming an action the host does not carry out, a notifier or ticket system that is
//! not configured, or approvals with no default approvers, is left out (and steps waiting
//! for it wait for what it waited for instead).

use std::collections::HashMap;

use vowguard_core::{Category, Priority, RetryPolicy};

use crate::config::{
    Catalog, DEFAULT_STEP_TIMEOUT_MS, OnTimeout, PlaybookConfig, StepConfig, StepKind, TicketOp,
    TriggerConfig,
};

/// Names of the default playbooks.
pub const DEFAULT_PLAYBOOKS: [&str; 3] = [
    "critical-security-incident",
    "high-severity-security-event",
    "wedding-data-breach",
];

fn step(id: &str, kind: StepKind) -> StepConfig {
    StepConfig {
        id: id.into(),
        kind,
        when: None,
        after: None,
        timeout: std::time::Duration::from_millis(DEFAULT_STEP_TIMEOUT_MS),
        retry: Some(RetryPolicy::default().with_max_attempts(3)),
        continue_on_error: true,
        action: None,
        url: None,
        method: None,
        headers: Default::default(),
        secret_headers: Default::default(),
        body: None,
        notifier: None,
        message: None,
        system: None,
        op: None,
        title: None,
        tasks: Vec::new(),
        approvers: Vec::new(),
        deadline: None,
        on_timeout: None,
        state: None,
        response_fields: Default::default(),
    }
}

fn action(id: &str, name: &str) -> StepConfig {
    let mut s = step(id, StepKind::Action);
    s.action = Some(name.into());
    s.after = Some(Vec::new());
    s
}

fn notify(id: &str, notifier: &str, message: &str) -> StepConfig {
    let mut s = step(id, StepKind::Notify);
    s.notifier = Some(notifier.into());
    s.message = Some(message.into());
    s.after = Some(Vec::new());
    s
}

fn ticket_open(system: &str, title: &str, tasks: &[&str], after: &[&str]) -> StepConfig {
    let mut s = step(&format!("ticket_{system}"), StepKind::Ticket);
    s.system = Some(system.into());
    s.op = Some(TicketOp::Open);
    s.title = Some(title.into());
    s.message = Some(
        "{{ incident.title }}\nIncident {{ incident.id }}, priority {{ incident.priority }}.\nEvent {{ event.id }}: {{ event.category }} / {{ event.action }} by {{ event.user_id }} from {{ event.source_ip }}."
            .into(),
    );
    s.tasks = tasks.iter().map(|t| (*t).to_owned()).collect();
    s.after = Some(after.iter().map(|a| (*a).to_owned()).collect());
    s
}

fn set_state(id: &str, state: &str, when: Option<&str>, after: &[&str]) -> StepConfig {
    let mut s = step(id, StepKind::SetState);
    s.state = Some(state.into());
    s.when = when.map(str::to_owned);
    s.after = Some(after.iter().map(|a| (*a).to_owned()).collect());
    s.retry = None;
    s
}

/// The default playbooks, pruned to what `catalog` has. Ticket steps are added for every
/// configured ticket system.
pub fn default_playbooks(catalog: &Catalog, approvers: &[String]) -> Vec<(String, PlaybookConfig)> {
    let mut systems: Vec<&String> = catalog.tickets.iter().collect();
    systems.sort();
    let mut out = Vec::new();

    // P0: auto-containment.
    let mut steps = vec![
        action("lock_accounts", "lock_accounts"),
        action("revoke_tokens", "revoke_tokens"),
        {
            let mut s = action("block_ip", "block_ip");
            s.when = Some("event.source_ip != null".into());
            s
        },
        action("enhanced_logging", "enhanced_logging"),
        action("preserve_evidence", "preserve_evidence"),
        notify(
            "page_oncall",
            "oncall",
            "P0 incident {{ incident.id }}: {{ incident.title }}. Containment started by playbook critical-security-incident.",
        ),
    ];
    let immediate = [
        "lock_accounts",
        "revoke_tokens",
        "block_ip",
        "enhanced_logging",
        "preserve_evidence",
    ];
    steps.push(set_state(
        "contained",
        "contained",
        Some("steps.lock_accounts.ok || steps.revoke_tokens.ok || steps.block_ip.ok"),
        &immediate,
    ));
    for s in &systems {
        steps.push(ticket_open(
            s,
            "P0 Security Incident - {{ event.id }}",
            &[
                "Investigate: scope and root cause",
                "Contain: verify accounts locked and tokens revoked",
                "Recover: restore access, review evidence",
            ],
            &["contained"],
        ));
    }
    out.push(("critical-security-incident".to_owned(), PlaybookConfig {
        version: 1,
        description: "P0 auto-containment: lock accounts, revoke tokens, block the source IP, enhanced logging, preserve evidence, mark contained, open tickets (routing already pages on-call).".into(),
        enabled: true,
        trigger: TriggerConfig { priorities: vec![Priority::P0Critical], ..TriggerConfig::default() },
        deadline: std::time::Duration::from_secs(3600),
        dry_run: false,
        steps,
    }));

    // P1: auto-response.
    let mut steps = vec![
        action("enhanced_logging", "enhanced_logging"),
        action("preserve_evidence", "preserve_evidence"),
        notify(
            "notify_secops",
            "secops",
            "P1 security event, incident {{ incident.id }}: {{ incident.title }}.",
        ),
    ];
    for s in &systems {
        steps.push(ticket_open(
            s,
            "P1 Security Event - {{ event.id }}",
            &["Investigate the event", "Decide on containment"],
            &["enhanced_logging", "preserve_evidence"],
        ));
    }
    out.push(("high-severity-security-event".to_owned(), PlaybookConfig {
        version: 1,
        description: "P1 auto-response: enhanced logging, preserve evidence, open tickets (routing already notifies secops).".into(),
        enabled: true,
        trigger: TriggerConfig { priorities: vec![Priority::P1High], ..TriggerConfig::default() },
        deadline: std::time::Duration::from_secs(3600),
        dry_run: false,
        steps,
    }));

    // Guest data breach.
    let mut steps = vec![
        action("lock_accounts", "lock_accounts"),
        action("enhanced_audit", "enhanced_logging"),
        action("preserve_evidence", "preserve_evidence"),
        notify(
            "notify_legal",
            "legal",
            "Possible personal-data breach (GDPR Art. 33: 72 hours) on incident {{ incident.id }}: {{ incident.title }}.",
        ),
        action("gdpr_assessment", "begin_gdpr_assessment"),
    ];
    let immediate = [
        "lock_accounts",
        "enhanced_audit",
        "preserve_evidence",
        "notify_legal",
        "gdpr_assessment",
    ];
    steps.push(set_state(
        "contained",
        "contained",
        Some("steps.lock_accounts.ok"),
        &immediate,
    ));
    for s in &systems {
        steps.push(ticket_open(
            s,
            "Wedding Data Security Incident - {{ event.id }}",
            &[
                "Investigation: determine which guest records were accessed or exported, by whom, from where",
                "Containment: confirm accounts locked, exports revoked, sessions ended",
                "Recovery: restore access after review, notify couples and the authority if confirmed",
            ],
            &immediate,
        ));
    }
    let mut approve = step("approve_recovery", StepKind::Approval);
    approve.approvers = approvers.to_vec();
    approve.deadline = Some(std::time::Duration::from_secs(4 * 3600));
    approve.on_timeout = Some(OnTimeout::Reject);
    approve.message =
        Some("Approve recovery (unlock accounts) for incident {{ incident.id }}?".into());
    approve.retry = None;
    approve.continue_on_error = false;
    approve.after = Some(
        std::iter::once("contained".to_owned())
            .chain(systems.iter().map(|s| format!("ticket_{s}")))
            .collect(),
    );
    steps.push(approve);
    for s in &systems {
        let mut u = step(&format!("ticket_{s}_recovery"), StepKind::Ticket);
        u.system = Some((*s).clone());
        u.op = Some(TicketOp::Update);
        u.message = Some("Recovery approved by {{ steps.approve_recovery.output.by }}.".into());
        u.after = Some(vec!["approve_recovery".into()]);
        u.when = Some("steps.approve_recovery.approved".into());
        steps.push(u);
    }
    out.push(("wedding-data-breach".to_owned(), PlaybookConfig {
        version: 1,
        description: "Guest data breach: lock affected accounts, enhanced audit mode, preserve forensic evidence, notify legal counsel, begin GDPR breach assessment; then investigation, containment and recovery tasks on the incident ticket.".into(),
        enabled: true,
        trigger: TriggerConfig {
            protocols: vec!["guest_data_breach".into()],
            ..TriggerConfig::default()
        },
        deadline: std::time::Duration::from_secs(6 * 3600),
        dry_run: false,
        steps,
    }));
    let _ = Category::DataExport;
    let mut kept: Vec<(String, PlaybookConfig)> = out
        .into_iter()
        .filter_map(|(name, config)| prune(config, catalog).map(|c| (name, c)))
        .collect();
    // The breach playbook is the response to a guest data breach: when it is kept with
    // containment actions of its own, the generic P0/P1 playbooks leave those incidents to
    // it. Otherwise both would run on the one incident, the first ticket step to finish
    // would title the incident's (single, fingerprint-deduplicated) ticket
    // `P0 Security Incident - ...`, and accounts would be locked twice.
    if kept.iter().any(|(name, c)| {
        name == "wedding-data-breach" && c.steps.iter().any(|s| s.kind == StepKind::Action)
    }) {
        for (name, config) in &mut kept {
            if name != "wedding-data-breach" {
                config
                    .trigger
                    .matchers
                    .push(r#"protocol!="guest_data_breach""#.to_owned());
            }
        }
    }
    kept
}

/// Drops steps naming what is not configured; `None` when nothing is left.
fn prune(mut config: PlaybookConfig, catalog: &Catalog) -> Option<PlaybookConfig> {
    let available = |s: &StepConfig| match s.kind {
        StepKind::Action => s
            .action
            .as_ref()
            .is_some_and(|a| catalog.actions.contains(a)),
        StepKind::Notify => s
            .notifier
            .as_ref()
            .is_some_and(|n| catalog.notifiers.contains(n)),
        StepKind::Ticket => s
            .system
            .as_ref()
            .is_some_and(|t| catalog.tickets.contains(t)),
        StepKind::Approval => !s.approvers.is_empty(),
        StepKind::Http | StepKind::SetState => true,
    };
    // What each removed step waited for, so its dependants wait for that instead.
    let mut removed: HashMap<String, Vec<String>> = HashMap::new();
    let mut kept: Vec<StepConfig> = Vec::new();
    for s in config.steps {
        let mut s = s;
        if let Some(after) = &s.after {
            let mut resolved = Vec::new();
            let mut stack: Vec<String> = after.clone();
            while let Some(d) = stack.pop() {
                match removed.get(&d) {
                    Some(up) => stack.extend(up.iter().cloned()),
                    None => {
                        if !resolved.contains(&d) {
                            resolved.push(d);
                        }
                    }
                }
            }
            s.after = Some(resolved);
        }
        // A condition reading a removed step: the condition can never be decided, so the
        // step goes too; unless only some of an `||` chain's steps are gone, the simple
        // rule is kept: a step reads only steps that exist.
        let reads_removed = s.when.as_ref().is_some_and(|w| {
            crate::expr::Condition::parse(w).is_ok_and(|c| {
                c.paths()
                    .iter()
                    .any(|p| p[0] == "steps" && p.get(1).is_some_and(|id| removed.contains_key(id)))
            })
        });
        if reads_removed && let Some(w) = &s.when {
            // Keep the `||` alternatives that still exist.
            let alternatives: Vec<&str> = w
                .split("||")
                .map(str::trim)
                .filter(|alt| {
                    !removed
                        .keys()
                        .any(|id| alt.contains(&format!("steps.{id}.")))
                })
                .collect();
            if !alternatives.is_empty() && !w.contains("&&") {
                s.when = Some(alternatives.join(" || "));
            } else {
                removed.insert(s.id.clone(), s.after.clone().unwrap_or_default());
                continue;
            }
        }
        if available(&s) {
            kept.push(s);
        } else {
            removed.insert(s.id.clone(), s.after.clone().unwrap_or_default());
        }
    }
    // Steps that only set state or wait for approval do nothing useful alone.
    if !kept.iter().any(|s| {
        matches!(
            s.kind,
            StepKind::Action | StepKind::Notify | StepKind::Ticket | StepKind::Http
        )
    }) {
        return None;
    }
    config.steps = kept;
    Some(config)
}
