//! Configuration of the `jira` ticket system.

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, Priority, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;

/// How the draft's tasks are written into the issue description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStyle {
    /// An ADF `taskList` (Jira's action items, each with a checkbox). The default.
    #[default]
    TaskList,
    /// An ADF `bulletList` (for projects whose description field refuses action items).
    BulletList,
}

/// Jira priority names by vowguard priority (`[tickets.<id>.priorities]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PriorityNames {
    /// For P0 (default `Highest`).
    pub p0: String,
    /// For P1 (default `High`).
    pub p1: String,
    /// For P2 (default `Medium`).
    pub p2: String,
    /// For P3 (default `Low`).
    pub p3: String,
    /// For P4 (default `Lowest`).
    pub p4: String,
}

impl Default for PriorityNames {
    fn default() -> Self {
        Self {
            p0: "Highest".into(),
            p1: "High".into(),
            p2: "Medium".into(),
            p3: "Low".into(),
            p4: "Lowest".into(),
        }
    }
}

impl PriorityNames {
    /// The Jira priority name for `priority`.
    pub fn name(&self, priority: Priority) -> &str {
        match priority {
            Priority::P0Critical => &self.p0,
            Priority::P1High => &self.p1,
            Priority::P2Medium => &self.p2,
            Priority::P3Low => &self.p3,
            Priority::P4Info => &self.p4,
        }
    }
}

/// `[tickets.<id>]` with `type = "jira"`.
///
/// ```toml
/// [tickets.jira]
/// type = "jira"
/// url = "https://example.atlassian.net"
/// email = "secops-bot@example.org"
/// api_token = { env = "JIRA_API_TOKEN" }
/// project = "SEC"
/// issue_type = "Task"
/// resolve_transition = "Done"
/// labels = ["vowguard"]
///
/// [tickets.jira.priorities]
/// p0 = "Highest"
/// p1 = "High"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JiraConfig {
    /// The site, e.g. `https://example.atlassian.net` (a path prefix is kept, for proxies).
    pub url: String,
    /// The account the API token belongs to (Basic auth user).
    pub email: String,
    /// The account's API token. A secret.
    pub api_token: SecretRef,
    /// The project key issues are created in (`SEC`).
    pub project: String,
    /// The issue type name; default `Task`.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Priority names by vowguard priority; defaults Highest/High/Medium/Low/Lowest.
    #[serde(default)]
    pub priorities: PriorityNames,
    /// Whether to set `priority` at all (some projects' create screens lack the field);
    /// default true.
    #[serde(default = "default_true")]
    pub set_priority: bool,
    /// Name of the workflow transition that resolves an issue (looked up by name, case
    /// insensitive, since ids differ per workflow); default `Done`.
    #[serde(default = "default_resolve_transition")]
    pub resolve_transition: String,
    /// Labels added to every issue, besides the draft's and the fingerprint label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// How tasks appear in the description; default `task_list`.
    #[serde(default)]
    pub task_style: TaskStyle,
    /// After a create whose outcome is unknown (a 5xx, a timeout), how long Jira's search
    /// is given to show the issue before vowguard concludes it was not created and creates
    /// it; until then `open` fails retryably. Default `"30s"`.
    #[serde(default = "default_search_settle", with = "vowguard_core::duration")]
    pub search_settle: std::time::Duration,
    /// Most fingerprint → issue-key entries kept in the state file (oldest dropped first;
    /// a dropped one is found again by search). Default 50 000.
    #[serde(default = "default_max_remembered")]
    pub max_remembered: usize,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_issue_type() -> String {
    "Task".into()
}
fn default_true() -> bool {
    true
}
fn default_resolve_transition() -> String {
    "Done".into()
}
fn default_search_settle() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}
fn default_max_remembered() -> usize {
    50_000
}

impl JiraConfig {
    /// A configuration with every default.
    pub fn new(
        url: impl Into<String>,
        email: impl Into<String>,
        api_token: SecretRef,
        project: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            email: email.into(),
            api_token,
            project: project.into(),
            issue_type: default_issue_type(),
            priorities: PriorityNames::default(),
            set_priority: true,
            resolve_transition: default_resolve_transition(),
            labels: Vec::new(),
            task_style: TaskStyle::default(),
            search_settle: default_search_settle(),
            max_remembered: default_max_remembered(),
            http: HttpOptions::default(),
        }
    }

    /// The site URL. `prefix` is the component's config path (e.g. `tickets.jira`).
    pub fn base_url(&self, prefix: &str) -> Result<Url, Error> {
        vowguard_http::parse_url(&format!("{prefix}.url"), &self.url)
    }

    /// Checks what serde cannot: the URL, a project key that is safe inside JQL, names
    /// that are not empty, labels Jira accepts.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        let url = self.base_url(prefix)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "`{prefix}.url`: must not have a query or fragment"
            )));
        }
        if !valid_project_key(&self.project) {
            return Err(Error::config(format!(
                "`{prefix}.project`: a Jira project key is an upper-case letter followed by \
                 upper-case letters, digits or `_` (e.g. `SEC`)"
            )));
        }
        let email = self.email.trim();
        if email.is_empty() || !email.contains('@') || email.contains(':') {
            return Err(Error::config(format!(
                "`{prefix}.email`: must be the Atlassian account's e-mail address"
            )));
        }
        let names = [
            ("issue_type", &self.issue_type),
            ("resolve_transition", &self.resolve_transition),
            ("priorities.p0", &self.priorities.p0),
            ("priorities.p1", &self.priorities.p1),
            ("priorities.p2", &self.priorities.p2),
            ("priorities.p3", &self.priorities.p3),
            ("priorities.p4", &self.priorities.p4),
        ];
        for (field, value) in names {
            if value.trim().is_empty() || value.chars().count() > 255 {
                return Err(Error::config(format!(
                    "`{prefix}.{field}`: must be 1 to 255 characters"
                )));
            }
        }
        for (i, label) in self.labels.iter().enumerate() {
            if label.is_empty()
                || label.chars().count() > 255
                || label.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::config(format!(
                    "`{prefix}.labels[{i}]`: a Jira label is 1 to 255 characters without spaces"
                )));
            }
        }
        if self.max_remembered == 0 {
            return Err(Error::config(format!(
                "`{prefix}.max_remembered`: must be at least 1"
            )));
        }
        Ok(())
    }
}

/// Whether `key` is a Jira project key (`[A-Z][A-Z0-9_]{1,254}`), safe to quote in JQL.
pub fn valid_project_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && key.len() <= 255
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
url = "https://example.atlassian.net"
email = "bot@example.org"
api_token = { env = "JIRA_TOKEN" }
project = "SEC"
"#;

    #[test]
    fn defaults() {
        let c: JiraConfig = toml::from_str(MINIMAL).unwrap();
        assert_eq!(
            c,
            JiraConfig::new(
                "https://example.atlassian.net",
                "bot@example.org",
                SecretRef::Env("JIRA_TOKEN".into()),
                "SEC"
            )
        );
        c.validate("tickets.jira").unwrap();
        assert_eq!(c.priorities.name(Priority::P0Critical), "Highest");
        assert_eq!(c.priorities.name(Priority::P4Info), "Lowest");
        assert_eq!(c.resolve_transition, "Done");
        assert_eq!(c.task_style, TaskStyle::TaskList);
    }

    #[test]
    fn partial_priorities_keep_the_other_defaults() {
        let c: JiraConfig =
            toml::from_str(&format!("{MINIMAL}\n[priorities]\np0 = \"Blocker\"\n")).unwrap();
        assert_eq!(c.priorities.name(Priority::P0Critical), "Blocker");
        assert_eq!(c.priorities.name(Priority::P1High), "High");
        let err = toml::from_str::<JiraConfig>(&format!("{MINIMAL}\n[priorities]\np9 = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("p9"), "{err}");
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let mut c: JiraConfig = toml::from_str(MINIMAL).unwrap();
        c.project = "SEC\" OR project is not EMPTY".into();
        let err = c.validate("tickets.jira").unwrap_err().to_string();
        assert!(err.contains("`tickets.jira.project`"), "{err}");
        let mut c: JiraConfig = toml::from_str(MINIMAL).unwrap();
        c.labels = vec!["two words".into()];
        let err = c.validate("tickets.jira").unwrap_err().to_string();
        assert!(err.contains("`tickets.jira.labels[0]`"), "{err}");
        let mut c: JiraConfig = toml::from_str(MINIMAL).unwrap();
        c.url = "ftp://example.org".into();
        let err = c.validate("tickets.jira").unwrap_err().to_string();
        assert!(err.contains("`tickets.jira.url`"), "{err}");
        let mut c: JiraConfig = toml::from_str(MINIMAL).unwrap();
        c.resolve_transition = " ".into();
        let err = c.validate("tickets.jira").unwrap_err().to_string();
        assert!(err.contains("`tickets.jira.resolve_transition`"), "{err}");
        let err = toml::from_str::<JiraConfig>(&format!("{MINIMAL}\ntask_style = \"checklist\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("checklist"), "{err}");
        let err = toml::from_str::<JiraConfig>(&format!("{MINIMAL}\nsumary = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sumary"), "{err}");
    }

    #[test]
    fn project_keys() {
        assert!(valid_project_key("SEC"));
        assert!(valid_project_key("S2_X"));
        for bad in ["", "sec", "1SEC", "SE C", "SEC\"", "SEC-1"] {
            assert!(!valid_project_key(bad), "{bad}");
        }
    }
}
