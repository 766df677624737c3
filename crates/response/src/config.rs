//! Playbook configuration (`[playbooks.<name>]` in the main config, or files it names) and
//! its validation against what is configured (notifiers, ticket systems, actions).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vowguard_core::{Category, Error, Priority, RetryPolicy, SecretRef};
use vowguard_router::Matcher;

use crate::expr::Condition;
use crate::model::IncidentState;
use crate::template::Template;

/// Default playbook deadline (the reaper ends a run still going after it).
pub const DEFAULT_DEADLINE_SECONDS: u64 = 3600;
/// Default per-step timeout.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 30_000;
/// Default approval deadline.
pub const DEFAULT_APPROVAL_SECONDS: u64 = 1800;
/// Most steps in one playbook.
pub const MAX_STEPS: usize = 64;

/// The actions a host [`ActionHook`](vowguard_router::ActionHook) may carry out.
pub const KNOWN_ACTIONS: &[&str] = &[
    "lock_accounts",
    "read_only_mode",
    "revoke_tokens",
    "block_ip",
    "enhanced_logging",
    "preserve_evidence",
    "begin_gdpr_assessment",
    "notify_wedding_coordinator",
];

/// `[response]`: the engine's own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResponseConfig {
    /// Whether the engine runs at all.
    pub enabled: bool,
    /// Alerts at least this urgent open an incident even when no playbook matches.
    pub open_incidents_at: Priority,
    /// Actions the host's action hook carries out (steps naming others are refused, and
    /// default playbook steps naming them are dropped).
    pub actions: Vec<String>,
    /// Ship the three default playbooks (each applying only configured actions/connectors).
    pub default_playbooks: bool,
    /// Record file size that triggers compaction (closed incidents beyond
    /// `keep_closed_incidents` are dropped from it).
    pub max_record_bytes: u64,
    /// Resolved incidents kept in memory (the most recently resolved; older ones leave
    /// memory, their runs with them, while the audit log and the report store keep them)
    /// and in the record file at compaction.
    pub keep_closed_incidents: usize,
    /// Playbook files to load in addition to `[playbooks.*]` (TOML, `[<name>]` tables).
    pub playbook_files: Vec<PathBuf>,
    /// Who may decide the default playbooks' approval steps (empty: those steps are left
    /// out).
    pub default_approvers: Vec<String>,
    /// `[response.action_hook]`: the platform's HTTP endpoint that carries out `action`
    /// steps (instead of the embedding host's [`ActionHook`](vowguard_router::ActionHook)).
    pub action_hook: Option<ActionEndpointConfig>,
}

/// `[response.action_hook]`: `action` steps are POSTed here as JSON, signed with
/// HMAC-SHA256 over `<timestamp>.<body>` (`X-Vowguard-Signature: sha256=<hex>`,
/// `X-Vowguard-Timestamp: <unix seconds>`) and carrying the step's `Idempotency-Key`. A 2xx
/// answer means done; 408, 429 and 5xx are retried under the step's retry policy; any
/// other answer fails the step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ActionEndpointConfig {
    /// The endpoint (`https://...`; `http://` only to a loopback address).
    pub url: String,
    /// The HMAC key, by reference (`{ env = "..." }` or `{ file = "..." }`).
    pub secret: vowguard_core::SecretRef,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            open_incidents_at: Priority::P1High,
            actions: Vec::new(),
            default_playbooks: true,
            max_record_bytes: 64 << 20,
            keep_closed_incidents: 1000,
            playbook_files: Vec::new(),
            default_approvers: vec!["security-lead".into()],
            action_hook: None,
        }
    }
}

/// When a playbook runs. Every criterion given must hold; a list holds when any item does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TriggerConfig {
    /// Route names (`protocol/guest_data_breach`, `security/critical`); a trailing `*`
    /// matches a prefix.
    pub routes: Vec<String>,
    /// Exact priorities (`P0`, `P1_HIGH`).
    pub priorities: Vec<Priority>,
    /// At least this urgent.
    pub min_priority: Option<Priority>,
    /// Wedding-day protocols the alert hit (`guest_data_breach`).
    pub protocols: Vec<String>,
    /// Event categories (`data_export`).
    pub categories: Vec<Category>,
    /// Router matchers (`wedding_phase="day_of"`), all of which must match.
    pub matchers: Vec<String>,
}

/// The kind of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    /// Ask the host's action hook for an action.
    Action,
    /// An HTTP request to an external tool.
    Http,
    /// A notification through a configured notifier.
    Notify,
    /// Open, update or resolve a ticket.
    Ticket,
    /// Wait for a human decision.
    Approval,
    /// Move the incident to a state.
    SetState,
}

/// What a ticket step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TicketOp {
    /// Open (idempotent on the incident fingerprint).
    #[default]
    Open,
    /// Add a timeline entry.
    Update,
    /// Resolve with a note.
    Resolve,
}

/// What an approval step does when its deadline passes without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnTimeout {
    /// Treat as approved.
    Approve,
    /// Treat as rejected (the run ends `rejected` unless `continue_on_error`).
    #[default]
    Reject,
    /// The step fails.
    Fail,
}

/// One step as configured. Which keys apply depends on `kind`; a key given for another
/// kind is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StepConfig {
    /// Unique within the playbook; conditions refer to it (`steps.<id>.ok`).
    pub id: String,
    /// What the step does.
    pub kind: StepKind,
    /// Run only when this condition holds over earlier results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The steps it waits for (a join). Unset: the step before it in the list; `[]`: none
    /// (starts at once, in parallel with other such steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// Per-attempt deadline (`timeout = "30s"`, the default).
    #[serde(default = "default_step_timeout", with = "vowguard_core::duration")]
    pub timeout: Duration,
    /// Retry (the shared policy); default: one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// A failure does not stop the run.
    #[serde(default)]
    pub continue_on_error: bool,
    /// `action`: the action name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `http`: the URL (fixed; not templated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http`: the method (default POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `http`: fixed headers (not templated).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `http`: headers whose values are secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_headers: BTreeMap<String, SecretRef>,
    /// `http`: the JSON body template (values JSON-escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `notify`: the notifier id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifier: Option<String>,
    /// `notify`/`ticket`: the message template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `ticket`: the ticket system id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `ticket`: open, update or resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<TicketOp>,
    /// `ticket` open: the title template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `ticket` open: tasks to track on the ticket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// `approval`: who may decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// `approval`: how long to wait (`deadline = "30m"`, the default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "vowguard_core::duration::option"
    )]
    pub deadline: Option<Duration>,
    /// `approval`: what a missed deadline means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<OnTimeout>,
    /// `set_state`: the incident state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `approval`: the structured fields a decision carries (besides its optional
    /// comment), by name; a decision whose fields do not fit is refused and recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_fields: BTreeMap<String, ResponseField>,
}

/// The type of an approval response field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldType {
    /// A string (at most [`MAX_RESPONSE_TEXT`] characters).
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// Longest comment or string field of an approval decision, in characters.
pub const MAX_RESPONSE_TEXT: usize = 2048;

/// One structured field of an approval decision (`response_fields.<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseField {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether an approval must give it (a rejection never has to).
    #[serde(default)]
    pub required: bool,
    /// For strings: the values allowed (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<String>,
}

impl StepConfig {
    /// Checks an approval decision's comment and fields against `response_fields`: unknown
    /// fields, wrong types, values not allowed and (for an approval) missing required
    /// fields are refused, naming the field.
    pub fn check_response(
        &self,
        approve: bool,
        comment: Option<&str>,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        if comment.is_some_and(|c| c.chars().count() > MAX_RESPONSE_TEXT) {
            return Err(format!(
                "`comment`: longer than {MAX_RESPONSE_TEXT} characters"
            ));
        }
        for (name, value) in fields {
            let Some(spec) = self.response_fields.get(name) else {
                let known: Vec<&str> = self.response_fields.keys().map(String::as_str).collect();
                return Err(format!(
                    "`fields.{name}`: not a field of step `{}` (fields: {})",
                    self.id,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            let ok = match spec.kind {
                FieldType::String => value.as_str().is_some_and(|v| {
                    v.chars().count() <= MAX_RESPONSE_TEXT
                        && (spec.one_of.is_empty() || spec.one_of.iter().any(|o| o == v))
                }),
                FieldType::Number => value.is_number(),
                FieldType::Boolean => value.is_boolean(),
            };
            if !ok {
                let want = match spec.kind {
                    FieldType::String if !spec.one_of.is_empty() => {
                        format!("one of {}", spec.one_of.join(", "))
                    }
                    FieldType::String => {
                        format!("a string of at most {MAX_RESPONSE_TEXT} characters")
                    }
                    FieldType::Number => "a number".into(),
                    FieldType::Boolean => "true or false".into(),
                };
                return Err(format!("`fields.{name}`: must be {want}"));
            }
        }
        if approve {
            for (name, spec) in &self.response_fields {
                if spec.required && !fields.contains_key(name) {
                    return Err(format!("`fields.{name}`: required to approve"));
                }
            }
        }
        Ok(())
    }
}

fn default_step_timeout() -> Duration {
    Duration::from_millis(DEFAULT_STEP_TIMEOUT_MS)
}

fn default_true() -> bool {
    true
}

fn default_deadline() -> Duration {
    Duration::from_secs(DEFAULT_DEADLINE_SECONDS)
}

/// One playbook as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PlaybookConfig {
    /// The playbook's version (runs record it with a snapshot).
    pub version: u32,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Off: never triggered (still runnable by hand).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// When it runs.
    pub trigger: TriggerConfig,
    /// The reaper ends a run still going after this long (`deadline = "1h"`, the default).
    #[serde(default = "default_deadline", with = "vowguard_core::duration")]
    pub deadline: Duration,
    /// Record what would run without running it.
    #[serde(default)]
    pub dry_run: bool,
    /// The steps.
    pub steps: Vec<StepConfig>,
}

/// What playbooks may refer to: the configured components.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Notifier ids.
    pub notifiers: HashSet<String>,
    /// Ticket system ids.
    pub tickets: HashSet<String>,
    /// Actions the host's hook carries out.
    pub actions: HashSet<String>,
}

/// A validated trigger.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) config: TriggerConfig,
    pub(crate) matchers: Vec<Matcher>,
}

/// A validated step.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) config: StepConfig,
    pub(crate) after: Vec<String>,
    pub(crate) when: Option<Condition>,
    pub(crate) body: Option<Template>,
    pub(crate) message: Option<Template>,
    pub(crate) title: Option<Template>,
    pub(crate) state: Option<IncidentState>,
}

/// A validated playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Its name.
    pub name: String,
    /// As configured (the run snapshot).
    pub config: PlaybookConfig,
    pub(crate) trigger: Trigger,
    pub(crate) steps: Vec<Step>,
}

impl Playbook {
    /// Validates `config` against `catalog`; errors name the key
    /// (`playbooks.<name>.steps[2].notifier: unknown notifier "x"`).
    pub fn compile(name: &str, config: PlaybookConfig, catalog: &Catalog) -> Result<Self, Error> {
        let at = |key: &str, msg: String| Error::config(format!("`playbooks.{name}.{key}`: {msg}"));
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::config(format!(
                "`playbooks.{name}`: a playbook name is letters, digits, `-` and `_`"
            )));
        }
        if config.version == 0 {
            return Err(at("version", "must be 1 or more".into()));
        }
        if config.deadline.is_zero() {
            return Err(at("deadline", "must be more than 0s".into()));
        }
        if config.steps.is_empty() {
            return Err(at("steps", "a playbook needs at least one step".into()));
        }
        if config.steps.len() > MAX_STEPS {
            return Err(at("steps", format!("at most {MAX_STEPS} steps")));
        }
        let mut matchers = Vec::new();
        for (i, text) in config.trigger.matchers.iter().enumerate() {
            matchers
                .push(Matcher::parse(text).map_err(|e| at(&format!("trigger.matchers[{i}]"), e))?);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut steps = Vec::new();
        for (i, s) in config.steps.iter().enumerate() {
            let key = |field: &str| format!("steps[{i}].{field}");
            if s.id.is_empty()
                || !s
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(at(
                    &key("id"),
                    "a step id is letters, digits, `-` and `_`".into(),
                ));
            }
            if seen.contains(&s.id) {
                return Err(at(&key("id"), format!("step id `{}` is used twice", s.id)));
            }
            if s.timeout.is_zero() {
                return Err(at(&key("timeout"), "must be more than 0s".into()));
            }
            let after = match &s.after {
                Some(list) => list.clone(),
                None => seen.last().cloned().into_iter().collect(),
            };
            for (j, dep) in after.iter().enumerate() {
                if !seen.contains(dep) {
                    return Err(at(
                        &format!("steps[{i}].after[{j}]"),
                        format!(
                            "unknown step `{dep}` (a step may only wait for steps listed before it)"
                        ),
                    ));
                }
            }
            let when = match &s.when {
                None => None,
                Some(text) => {
                    let c = Condition::parse(text)
                        .map_err(|e| at(&key("when"), format!("bad condition: {e}")))?;
                    for path in c.paths() {
                        check_root(&path, &seen).map_err(|e| at(&key("when"), e))?;
                    }
                    Some(c)
                }
            };
            let template =
                |field: &str, text: &Option<String>| -> Result<Option<Template>, Error> {
                    let Some(text) = text else { return Ok(None) };
                    let t = Template::parse(text).map_err(|e| at(&key(field), e))?;
                    for step in t.step_refs() {
                        if !seen.contains(&step) {
                            return Err(at(
                                &key(field),
                                format!("unknown step `{step}` (only earlier steps can be read)"),
                            ));
                        }
                    }
                    Ok(Some(t))
                };
            let body = template("body", &s.body)?;
            let message = template("message", &s.message)?;
            let title = template("title", &s.title)?;
            // Keys that belong to other kinds are refused.
            let given: Vec<(&str, bool)> = vec![
                ("action", s.action.is_some()),
                ("url", s.url.is_some()),
                ("method", s.method.is_some()),
                ("headers", !s.headers.is_empty()),
                ("secret_headers", !s.secret_headers.is_empty()),
                ("body", s.body.is_some()),
                ("notifier", s.notifier.is_some()),
                ("message", s.message.is_some()),
                ("system", s.system.is_some()),
                ("op", s.op.is_some()),
                ("title", s.title.is_some()),
                ("tasks", !s.tasks.is_empty()),
                ("approvers", !s.approvers.is_empty()),
                ("deadline", s.deadline.is_some()),
                ("on_timeout", s.on_timeout.is_some()),
                ("state", s.state.is_some()),
                ("response_fields", !s.response_fields.is_empty()),
            ];
            let allowed: &[&str] = match s.kind {
                StepKind::Action => &["action"],
                StepKind::Http => &["url", "method", "headers", "secret_headers", "body"],
                StepKind::Notify => &["notifier", "message"],
                StepKind::Ticket => &["system", "op", "title", "message", "tasks"],
                StepKind::Approval => &[
                    "approvers",
                    "deadline",
                    "on_timeout",
                    "message",
                    "response_fields",
                ],
                StepKind::SetState => &["state"],
            };
            for (field, present) in given {
                if present && !allowed.contains(&field) {
                    return Err(at(
                        &key(field),
                        format!("not a key of a `{}` step", kind_name(s.kind)),
                    ));
                }
            }
            let required = |field: &str, v: &Option<String>| -> Result<String, Error> {
                v.clone().ok_or_else(|| {
                    at(
                        &key(field),
                        format!("required for a `{}` step", kind_name(s.kind)),
                    )
                })
            };
            let mut state = None;
            match s.kind {
                StepKind::Action => {
                    let action = required("action", &s.action)?;
                    if !catalog.actions.contains(&action) {
                        return Err(at(
                            &key("action"),
                            format!(
                                "unknown action `{action}` (configured in response.actions: {})",
                                sorted(&catalog.actions)
                            ),
                        ));
                    }
                }
                StepKind::Http => {
                    let url = required("url", &s.url)?;
                    let parsed = reqwest::Url::parse(&url)
                        .map_err(|e| at(&key("url"), format!("not a URL: {e}")))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(at(&key("url"), "must be http or https".into()));
                    }
                    if url.contains("{{") {
                        return Err(at(&key("url"), "a URL cannot be templated".into()));
                    }
                    if let Some(m) = &s.method
                        && !matches!(m.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE")
                    {
                        return Err(at(&key("method"), format!("unsupported method `{m}`")));
                    }
                    for name in s.headers.keys().chain(s.secret_headers.keys()) {
                        reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                            at(&key("headers"), format!("`{name}` is not a header name"))
                        })?;
                    }
                    for (name, value) in &s.headers {
                        if value.contains("{{") {
                            return Err(at(
                                &format!("steps[{i}].headers.{name}"),
                                "headers cannot be templated".into(),
                            ));
                        }
                        reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                            at(
                                &format!("steps[{i}].headers.{name}"),
                                "not a header value".into(),
                            )
                        })?;
                    }
                }
                StepKind::Notify => {
                    let id = required("notifier", &s.notifier)?;
                    if !catalog.notifiers.contains(&id) {
                        return Err(at(
                            &key("notifier"),
                            format!(
                                "unknown notifier `{id}` (configured: {})",
                                sorted(&catalog.notifiers)
                            ),
                        ));
                    }
                }
                StepKind::Ticket => {
                    let id = required("system", &s.system)?;
                    if !catalog.tickets.contains(&id) {
                        return Err(at(
                            &key("system"),
                            format!(
                                "unknown ticket system `{id}` (configured: {})",
                                sorted(&catalog.tickets)
                            ),
                        ));
                    }
                }
                StepKind::Approval => {
                    if s.approvers.is_empty() {
                        return Err(at(&key("approvers"), "name who may approve".into()));
                    }
                    if s.deadline.is_some_and(|d| d.is_zero()) {
                        return Err(at(&key("deadline"), "must be more than 0s".into()));
                    }
                    for (name, field) in &s.response_fields {
                        let field_key = format!("response_fields.{name}");
                        if name.is_empty()
                            || name.len() > 64
                            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            return Err(at(
                                &key(&field_key),
                                "a field name is 1-64 letters, digits or `_`".into(),
                            ));
                        }
                        if !field.one_of.is_empty() && field.kind != FieldType::String {
                            return Err(at(
                                &key(&format!("{field_key}.one_of")),
                                "only string fields have a list of values".into(),
                            ));
                        }
                    }
                }
                StepKind::SetState => {
                    let text = required("state", &s.state)?;
                    state = Some(IncidentState::parse(&text).ok_or_else(|| {
                        at(
                            &key("state"),
                            format!(
                                "unknown state `{text}` (open, acknowledged, contained, resolved)"
                            ),
                        )
                    })?);
                }
            }
            seen.push(s.id.clone());
            steps.push(Step {
                config: s.clone(),
                after,
                when,
                body,
                message,
                title,
                state,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            trigger: Trigger {
                config: config.trigger.clone(),
                matchers,
            },
            config,
            steps,
        })
    }

    /// The run snapshot: the configuration as JSON.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
}

fn check_root(path: &[String], seen: &[String]) -> Result<(), String> {
    match path[0].as_str() {
        "steps" => match path.get(1) {
            Some(id) if seen.contains(id) => Ok(()),
            Some(id) => Err(format!(
                "unknown step `{id}` (a condition may only read steps listed before it)"
            )),
            None => Err("`steps` needs a step id".into()),
        },
        "incident" | "event" | "playbook" | "run" => Ok(()),
        other => Err(format!(
            "`{other}` is not something a condition can read (steps, incident, event)"
        )),
    }
}

fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Action => "action",
        StepKind::Http => "http",
        StepKind::Notify => "notify",
        StepKind::Ticket => "ticket",
        StepKind::Approval => "approval",
        StepKind::SetState => "set_state",
    }
}

fn sorted(set: &HashSet<String>) -> String {
    let mut v: Vec<&String> = set.iter().collect();
    v.sort();
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Parses `[<name>]` playbook tables from TOML text (a playbook file); `origin` names the
/// file in errors.
pub fn parse_playbooks(
    text: &str,
    origin: &str,
) -> Result<BTreeMap<String, PlaybookConfig>, Error> {
    let error = |e: toml::de::Error| {
        let (key, msg) = vowguard_core::toml_error_parts(&e);
        Error::config(format!(
            "{origin}: {}{msg}",
            key.map(|k| format!("`{k}`: ")).unwrap_or_default()
        ))
    };
    // The integer duration keys of earlier releases, rewritten with a warning.
    let mut document: toml::Table = toml::from_str(text).map_err(error)?;
    let warnings =
        vowguard_core::duration::migrate_deprecated_keys(&mut document, DEPRECATED_DURATIONS)
            .map_err(|e| Error::config(format!("{origin}: {}", e.message())))?;
    if warnings.is_empty() {
        return toml::from_str(text).map_err(error);
    }
    for warning in &warnings {
        tracing::warn!("{origin}: {warning}");
    }
    toml::Value::Table(document).try_into().map_err(error)
}

/// The deprecated integer duration keys of a playbook file (`[<name>]` tables).
pub const DEPRECATED_DURATIONS: &[vowguard_core::duration::DeprecatedKey] = &[
    vowguard_core::duration::DeprecatedKey {
        path: "*.deadline_seconds",
    },
    vowguard_core::duration::DeprecatedKey {
        path: "*.steps.timeout_ms",
    },
    vowguard_core::duration::DeprecatedKey {
        path: "*.steps.deadline_seconds",
    },
    vowguard_core::duration::DeprecatedKey {
        path: "*.steps.retry.initial_backoff_ms",
    },
    vowguard_core::duration::DeprecatedKey {
        path: "*.steps.retry.max_backoff_ms",
    },
    vowguard_core::duration::DeprecatedKey {
        path: "*.steps.retry.max_retry_after_ms",
    },
];
