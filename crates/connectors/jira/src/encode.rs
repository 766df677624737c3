//! Pure encoding of drafts, updates and notes as Jira REST v3 request bodies.
//!
//! * `summary`: one line (control characters become spaces), at most 255 characters.
//! * `labels`: the fingerprint label [`fingerprint_label`] (`vowguard-` + 32 hex digits of
//!   the fingerprint's SHA-256, so any fingerprint is a valid, JQL-safe label), the
//!   configured labels and the draft's labels (spaces become `_`, at most 255 characters,
//!   at most [`MAX_LABELS`]).
//! * `description`: ADF: the draft's text, the tasks as an action-item (or bullet) list,
//!   the incident facts and the fingerprint label, under [`MAX_DESCRIPTION_CHARS`] of JSON.
//! * JQL is built only from the validated project key and a fingerprint label, never from
//!   event text.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vowguard_core::{TicketDraft, TicketUpdate};

use crate::adf::{self, Block, Doc, Inline, Mark};
use crate::config::TaskStyle;

/// Longest summary Jira accepts, in characters.
pub const MAX_SUMMARY_CHARS: usize = 255;
/// Longest description (as ADF JSON) vowguard sends, in characters (Jira's field limit).
pub const MAX_DESCRIPTION_CHARS: usize = 32_767;
/// Longest comment body (as ADF JSON) vowguard sends, in characters.
pub const MAX_COMMENT_CHARS: usize = 32_767;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 255;
/// Most labels on one issue.
pub const MAX_LABELS: usize = 50;
/// Most tasks listed in a description (the rest are counted).
pub const MAX_TASKS: usize = 50;
/// Longest task text, in characters.
pub const MAX_TASK_CHARS: usize = 1_000;
/// Prefix of the fingerprint label.
pub const LABEL_PREFIX: &str = "vowguard-";

/// The parts of an issue that come from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssueTemplate {
    /// Project key.
    pub project: String,
    /// Issue type name.
    pub issue_type: String,
    /// Labels added to every issue.
    pub labels: Vec<String>,
    /// How tasks are written.
    pub task_style: TaskStyle,
}

/// The label carrying `fingerprint`: `vowguard-` and the first 32 hex digits of its
/// SHA-256. Stable, and safe in JQL and label syntax whatever the fingerprint holds.
///
/// ```
/// let label = vowguard_jira::encode::fingerprint_label("brute-force:203.0.113.7");
/// assert!(label.starts_with("vowguard-") && label.len() == 9 + 32);
/// ```
pub fn fingerprint_label(fingerprint: &str) -> String {
    let digest = Sha256::digest(fingerprint.as_bytes());
    let hex = vowguard_core::hex::encode(&digest[..16]);
    format!("{LABEL_PREFIX}{hex}")
}

/// At most `max` characters of `s`; a cut string ends with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The issue summary for `title`: control characters (newlines included) become spaces,
/// surrounding space is trimmed, at most 255 characters; an empty title becomes
/// `vowguard incident <incident id>`.
pub fn summary(title: &str, incident_id: &str) -> String {
    let one_line: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        return summary(&format!("vowguard incident {incident_id}"), "");
    }
    truncate_chars(trimmed, MAX_SUMMARY_CHARS)
}

/// `label` as a Jira label: whitespace and control characters become `_`, at most 255
/// characters; `None` when nothing is left.
pub fn clean_label(label: &str) -> Option<String> {
    let clean: String = label
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(MAX_LABEL_CHARS)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// The issue's labels: the fingerprint label first, then configured and draft labels,
/// cleaned, without duplicates, at most [`MAX_LABELS`].
pub fn labels(draft: &TicketDraft, configured: &[String]) -> Vec<String> {
    let mut out = vec![fingerprint_label(&draft.fingerprint)];
    for label in configured.iter().chain(&draft.labels) {
        if out.len() >= MAX_LABELS {
            break;
        }
        if let Some(clean) = clean_label(label)
            && !out.contains(&clean)
        {
            out.push(clean);
        }
    }
    out
}

fn facts(draft: &TicketDraft) -> Vec<Vec<Inline>> {
    let mut facts = vec![
        adf::text(&format!(
            "Incident: {}",
            truncate_chars(&draft.incident_id, 200)
        )),
        adf::text(&format!("Priority: {}", draft.priority.as_str())),
        adf::text(&format!("Opened: {}", draft.opened_at.to_rfc3339())),
    ];
    if !draft.wedding_ids.is_empty() {
        let weddings: Vec<String> = draft
            .wedding_ids
            .iter()
            .take(20)
            .map(|w| truncate_chars(w, 200))
            .collect();
        facts.push(adf::text(&format!("Weddings: {}", weddings.join(", "))));
    }
    if let Some(event) = &draft.event {
        facts.push(adf::text(&format!(
            "Event: {} ({}.{}) at {}",
            truncate_chars(&event.id, 200),
            event.category,
            truncate_chars(&event.action, 200),
            event.timestamp_rfc3339()
        )));
        if let Some(ip) = event.source_ip {
            facts.push(adf::text(&format!("Source IP: {ip}")));
        }
        if let Some(user) = event.user_name.as_ref().or(event.user_id.as_ref()) {
            facts.push(adf::text(&format!("User: {}", truncate_chars(user, 200))));
        }
    }
    facts
}

fn description_blocks(
    draft: &TicketDraft,
    style: TaskStyle,
    description_chars: usize,
    task_chars: usize,
) -> Vec<Block> {
    let mut blocks = Vec::new();
    let description = truncate_chars(draft.description.trim(), description_chars);
    for paragraph in description.split("\n\n") {
        let inline = adf::text(paragraph.trim_matches('\n'));
        if !inline.is_empty() {
            blocks.push(Block::paragraph(inline));
        }
    }
    if !draft.tasks.is_empty() {
        blocks.push(Block::heading(3, adf::text("Tasks")));
        let mut items: Vec<Vec<Inline>> = draft
            .tasks
            .iter()
            .take(MAX_TASKS)
            .map(|t| adf::text(&truncate_chars(t, task_chars)))
            .filter(|t| !t.is_empty())
            .collect();
        if draft.tasks.len() > MAX_TASKS {
            items.push(adf::text(&format!(
                "… and {} more tasks on the vowguard incident",
                draft.tasks.len() - MAX_TASKS
            )));
        }
        if !items.is_empty() {
            blocks.push(match style {
                TaskStyle::TaskList => Block::task_list("vowguard-tasks", items),
                TaskStyle::BulletList => Block::bullet_list(items),
            });
        }
    }
    blocks.push(Block::heading(3, adf::text("Incident")));
    blocks.push(Block::bullet_list(facts(draft)));
    let mut footer = adf::text("vowguard fingerprint label: ");
    footer.extend(adf::marked(
        &fingerprint_label(&draft.fingerprint),
        &[Mark::Code],
    ));
    blocks.push(Block::paragraph(footer));
    blocks
}

/// The issue description as ADF, at most [`MAX_DESCRIPTION_CHARS`] characters of JSON
/// (the draft's description and tasks are cut, by halves, until it fits).
pub fn description(draft: &TicketDraft, style: TaskStyle) -> Doc {
    let mut shift = 0;
    loop {
        let doc = Doc::new(description_blocks(
            draft,
            style,
            20_000 >> shift,
            MAX_TASK_CHARS >> shift,
        ));
        if shift >= 16 || json_chars(&doc) <= MAX_DESCRIPTION_CHARS {
            return doc;
        }
        shift += 1;
    }
}

fn json_chars(value: &impl serde::Serialize) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.chars().count())
}

/// The `POST /rest/api/3/issue` body for `draft`.
pub fn create_body(draft: &TicketDraft, template: &IssueTemplate, priority: Option<&str>) -> Value {
    let mut fields = json!({
        "project": {"key": template.project},
        "issuetype": {"name": template.issue_type},
        "summary": summary(&draft.title, &draft.incident_id),
        "labels": labels(draft, &template.labels),
        "description": description(draft, template.task_style),
    });
    if let Some(name) = priority {
        fields["priority"] = json!({"name": name});
    }
    json!({"fields": fields})
}

/// A comment as ADF: a bold `[time] author` line, then the text (cut to fit
/// [`MAX_COMMENT_CHARS`]).
pub fn comment_doc(update: &TicketUpdate) -> Doc {
    let header = format!(
        "[{}] {}",
        update.at.to_rfc3339(),
        truncate_chars(&update.author, 200)
    );
    let mut budget = 25_000;
    loop {
        let mut content = adf::marked(&header, &[Mark::Strong]);
        content.push(Inline::HardBreak);
        content.extend(adf::text(&truncate_chars(&update.text, budget)));
        let doc = Doc::new(vec![Block::paragraph(content)]);
        if budget == 0 || json_chars(&doc) <= MAX_COMMENT_CHARS {
            return doc;
        }
        budget /= 2;
    }
}

/// The `POST /rest/api/3/issue/{key}/comment` body.
pub fn comment_body(update: &TicketUpdate) -> Value {
    json!({"body": comment_doc(update)})
}

/// The JQL finding the issues of a fingerprint label in `project`, oldest first. Both
/// parts are validated (project key) or generated (label), so nothing needs escaping.
pub fn search_jql(project: &str, label: &str) -> String {
    format!("project = \"{project}\" AND labels = \"{label}\" ORDER BY created ASC")
}

/// The `POST /rest/api/3/search/jql` body.
pub fn search_body(project: &str, label: &str) -> Value {
    json!({
        "jql": search_jql(project, label),
        "fields": ["created", "status"],
        "maxResults": 10,
    })
}

/// The `POST /rest/api/3/issue/{key}/transitions` body.
pub fn transition_body(transition_id: &str) -> Value {
    json!({"transition": {"id": transition_id}})
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use vowguard_core::Priority;

    use super::*;

    fn draft() -> TicketDraft {
        let mut d = TicketDraft::new(
            "inc-1",
            "fp-1",
            "Wedding Data Security Incident - evt-1",
            Priority::P0Critical,
        );
        d.description = "Guest list exported.\nBy planner.\n\nSecond paragraph.".into();
        d.tasks = vec!["Lock accounts".into()];
        d.labels = vec!["wedding data".into(), "vowguard".into()];
        d.wedding_ids = vec!["w-1".into()];
        d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap();
        d
    }

    fn template() -> IssueTemplate {
        IssueTemplate {
            project: "SEC".into(),
            issue_type: "Task".into(),
            labels: vec!["vowguard".into()],
            task_style: TaskStyle::TaskList,
        }
    }

    #[test]
    fn golden_create_body() {
        let body = create_body(&draft(), &template(), Some("Highest"));
        let label = fingerprint_label("fp-1");
        assert_eq!(
            body,
            json!({"fields": {
                "project": {"key": "SEC"},
                "issuetype": {"name": "Task"},
                "summary": "Wedding Data Security Incident - evt-1",
                "labels": [label, "vowguard", "wedding_data"],
                "priority": {"name": "Highest"},
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Guest list exported."},
                        {"type": "hardBreak"},
                        {"type": "text", "text": "By planner."}]},
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Second paragraph."}]},
                    {"type": "heading", "attrs": {"level": 3}, "content": [
                        {"type": "text", "text": "Tasks"}]},
                    {"type": "taskList", "attrs": {"localId": "vowguard-tasks"}, "content": [
                        {"type": "taskItem", "attrs": {"localId": "vowguard-tasks-1", "state": "TODO"},
                         "content": [{"type": "text", "text": "Lock accounts"}]}]},
                    {"type": "heading", "attrs": {"level": 3}, "content": [
                        {"type": "text", "text": "Incident"}]},
                    {"type": "bulletList", "content": [
                        {"type": "listItem", "content": [{"type": "paragraph", "content": [
                            {"type": "text", "text": "Incident: inc-1"}]}]},
                        {"type": "listItem", "content": [{"type": "paragraph", "content": [
                            {"type": "text", "text": "Priority: P0_CRITICAL"}]}]},
                        {"type": "listItem", "content": [{"type": "paragraph", "content": [
                            {"type": "text", "text": "Opened: 2026-06-20T12:00:00+00:00"}]}]},
                        {"type": "listItem", "content": [{"type": "paragraph", "content": [
                            {"type": "text", "text": "Weddings: w-1"}]}]}]},
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "vowguard fingerprint label: "},
                        {"type": "text", "text": label, "marks": [{"type": "code"}]}]}
                ]}
            }})
        );
    }

    #[test]
    fn summary_is_one_line_and_capped() {
        assert_eq!(summary("a\r\nb\u{0}c ", "i"), "a  b c");
        assert_eq!(summary(" \n ", "inc-9"), "vowguard incident inc-9");
        let long = summary(&"é".repeat(300), "i");
        assert_eq!(long.chars().count(), MAX_SUMMARY_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn fingerprint_labels_are_stable_distinct_and_safe() {
        let a = fingerprint_label("fp\" OR labels is not EMPTY");
        assert_eq!(a, fingerprint_label("fp\" OR labels is not EMPTY"));
        assert_ne!(a, fingerprint_label("fp"));
        assert!(
            a[LABEL_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
        assert_eq!(
            fingerprint_label(""),
            "vowguard-e3b0c44298fc1c149afbf4c8996fb924"
        );
    }

    #[test]
    fn labels_are_cleaned_deduplicated_and_capped() {
        let mut d = draft();
        d.labels = (0..100).map(|i| format!("l {i}")).collect();
        d.labels.push(" \n".into());
        let labels = labels(&d, &[]);
        assert_eq!(labels.len(), MAX_LABELS);
        assert!(labels.iter().all(|l| !l.contains(' ')));
        assert_eq!(clean_label("\t"), None);
    }

    #[test]
    fn huge_drafts_stay_under_the_field_limits() {
        let mut d = draft();
        d.description = "\"}]".repeat(100_000);
        d.tasks = (0..500)
            .map(|i| format!("task {i} {}", "x".repeat(5_000)))
            .collect();
        let doc = description(&d, TaskStyle::TaskList);
        assert!(json_chars(&doc) <= MAX_DESCRIPTION_CHARS);
        let text = serde_json::to_string(&doc).unwrap();
        assert!(
            text.contains("more tasks on the vowguard incident"),
            "tasks counted"
        );
        let update = TicketUpdate {
            at: Utc.with_ymd_and_hms(2026, 6, 20, 12, 0, 0).unwrap(),
            author: "a".into(),
            text: "\n".repeat(100_000),
        };
        assert!(json_chars(&comment_doc(&update)) <= MAX_COMMENT_CHARS);
    }

    #[test]
    fn jql_uses_only_the_project_and_label() {
        assert_eq!(
            search_jql("SEC", &fingerprint_label("x")),
            format!(
                "project = \"SEC\" AND labels = \"{}\" ORDER BY created ASC",
                fingerprint_label("x")
            )
        );
    }
}
