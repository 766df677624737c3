//! Configuration of the `servicenow` ticket system.

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, Priority, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;

/// How vowguard authenticates to the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ServiceNowAuth {
    /// HTTP Basic with a (preferably integration-only) user.
    Basic {
        /// The user name.
        username: String,
        /// The password. A secret.
        password: SecretRef,
    },
    /// An OAuth access token, sent as `Authorization: Bearer`.
    Bearer {
        /// The token. A secret.
        token: SecretRef,
    },
}

/// Urgency and impact (1 high, 2 medium, 3 low), from which ServiceNow computes priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyImpact {
    /// `urgency`, 1 to 3.
    pub urgency: u8,
    /// `impact`, 1 to 3.
    pub impact: u8,
}

/// Urgency and impact by vowguard priority (`[tickets.<id>.priorities]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PriorityMap {
    /// P0; default urgency 1, impact 1 (ServiceNow priority 1 - Critical).
    pub p0: UrgencyImpact,
    /// P1; default 1/2 (2 - High).
    pub p1: UrgencyImpact,
    /// P2; default 2/2 (3 - Moderate).
    pub p2: UrgencyImpact,
    /// P3; default 2/3 (4 - Low).
    pub p3: UrgencyImpact,
    /// P4; default 3/3 (5 - Planning).
    pub p4: UrgencyImpact,
}

impl Default for PriorityMap {
    fn default() -> Self {
        let ui = |urgency, impact| UrgencyImpact { urgency, impact };
        Self {
            p0: ui(1, 1),
            p1: ui(1, 2),
            p2: ui(2, 2),
            p3: ui(2, 3),
            p4: ui(3, 3),
        }
    }
}

impl PriorityMap {
    /// Urgency and impact for `priority`.
    pub fn get(&self, priority: Priority) -> UrgencyImpact {
        match priority {
            Priority::P0Critical => self.p0,
            Priority::P1High => self.p1,
            Priority::P2Medium => self.p2,
            Priority::P3Low => self.p3,
            Priority::P4Info => self.p4,
        }
    }
}

/// `[tickets.<id>]` with `type = "servicenow"`.
///
/// ```toml
/// [tickets.servicenow]
/// type = "servicenow"
/// url = "https://example.service-now.com"
/// auth = { type = "basic", username = "svc-vowguard", password = { env = "SN_PASSWORD" } }
/// assignment_group = "Security Operations"
/// category = "security"
/// resolve_state = 6
/// close_code = "Closed/Resolved by Caller"
///
/// [tickets.servicenow.priorities]
/// p0 = { urgency = 1, impact = 1 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceNowConfig {
    /// The instance, e.g. `https://example.service-now.com`.
    pub url: String,
    /// Basic or bearer authentication.
    pub auth: ServiceNowAuth,
    /// The table incidents go to; default `incident` (e.g. `sn_si_incident` for Security
    /// Incident Response).
    #[serde(default = "default_table")]
    pub table: String,
    /// `caller_id` (a user sys_id or name), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// `assignment_group`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_group: Option<String>,
    /// `category`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `subcategory`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    /// Urgency/impact by priority.
    #[serde(default)]
    pub priorities: PriorityMap,
    /// The state a resolved incident is set to: 6 (Resolved, the default) or 7 (Closed).
    #[serde(default = "default_resolve_state")]
    pub resolve_state: u8,
    /// `close_code` set when resolving; default `Closed/Resolved by Caller`.
    #[serde(default = "default_close_code")]
    pub close_code: String,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_table() -> String {
    "incident".into()
}
fn default_resolve_state() -> u8 {
    6
}
fn default_close_code() -> String {
    "Closed/Resolved by Caller".into()
}

impl ServiceNowConfig {
    /// A configuration with every default.
    pub fn new(url: impl Into<String>, auth: ServiceNowAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            table: default_table(),
            caller_id: None,
            assignment_group: None,
            category: None,
            subcategory: None,
            priorities: PriorityMap::default(),
            resolve_state: default_resolve_state(),
            close_code: default_close_code(),
            http: HttpOptions::default(),
        }
    }

    /// The instance URL. `prefix` is the component's config path (`tickets.servicenow`).
    pub fn base_url(&self, prefix: &str) -> Result<Url, Error> {
        vowguard_http::parse_url(&format!("{prefix}.url"), &self.url)
    }

    /// Checks what serde cannot: the URL, the table name, urgency/impact ranges, the
    /// resolve state, names that are not empty.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        let url = self.base_url(prefix)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "`{prefix}.url`: must not have a query or fragment"
            )));
        }
        if self.table.is_empty()
            || self.table.len() > 80
            || !self
                .table
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::config(format!(
                "`{prefix}.table`: a ServiceNow table name is lower-case letters, digits and `_`"
            )));
        }
        match &self.auth {
            ServiceNowAuth::Basic { username, .. }
                if username.trim().is_empty() || username.contains(':') =>
            {
                return Err(Error::config(format!(
                    "`{prefix}.auth.username`: must not be empty or contain `:`"
                )));
            }
            _ => {}
        }
        for (name, ui) in [
            ("p0", self.priorities.p0),
            ("p1", self.priorities.p1),
            ("p2", self.priorities.p2),
            ("p3", self.priorities.p3),
            ("p4", self.priorities.p4),
        ] {
            for (field, value) in [("urgency", ui.urgency), ("impact", ui.impact)] {
                if !(1..=3).contains(&value) {
                    return Err(Error::config(format!(
                        "`{prefix}.priorities.{name}.{field}`: must be 1, 2 or 3"
                    )));
                }
            }
        }
        if !matches!(self.resolve_state, 6 | 7) {
            return Err(Error::config(format!(
                "`{prefix}.resolve_state`: must be 6 (Resolved) or 7 (Closed)"
            )));
        }
        let optional = [
            ("caller_id", &self.caller_id),
            ("assignment_group", &self.assignment_group),
            ("category", &self.category),
            ("subcategory", &self.subcategory),
        ];
        for (field, value) in optional {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(Error::config(format!(
                    "`{prefix}.{field}`: must not be empty (leave it out instead)"
                )));
            }
        }
        if self.close_code.trim().is_empty() {
            return Err(Error::config(format!(
                "`{prefix}.close_code`: must not be empty"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
url = "https://example.service-now.com"
auth = { type = "basic", username = "svc", password = { env = "SN_PASSWORD" } }
"#;

    #[test]
    fn defaults() {
        let c: ServiceNowConfig = toml::from_str(MINIMAL).unwrap();
        assert_eq!(
            c,
            ServiceNowConfig::new(
                "https://example.service-now.com",
                ServiceNowAuth::Basic {
                    username: "svc".into(),
                    password: SecretRef::Env("SN_PASSWORD".into())
                }
            )
        );
        c.validate("tickets.sn").unwrap();
        assert_eq!(
            c.priorities.get(Priority::P0Critical),
            UrgencyImpact {
                urgency: 1,
                impact: 1
            }
        );
        let c: ServiceNowConfig = toml::from_str(
            "url = \"https://x.service-now.com\"\nauth = { type = \"bearer\", token = { file = \"t\" } }",
        )
        .unwrap();
        assert!(matches!(c.auth, ServiceNowAuth::Bearer { .. }));
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let err = toml::from_str::<ServiceNowConfig>(
            "url = \"https://x\"\nauth = { type = \"bearer\", token = { env = \"T\" }, user = \"x\" }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("user"), "{err}");
        let err = toml::from_str::<ServiceNowConfig>(
            "url = \"https://x\"\nauth = { type = \"oauth\", token = { env = \"T\" } }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("oauth"), "{err}");
        let mut c: ServiceNowConfig = toml::from_str(MINIMAL).unwrap();
        c.table = "incident^NQ".into();
        let err = c.validate("tickets.sn").unwrap_err().to_string();
        assert!(err.contains("`tickets.sn.table`"), "{err}");
        let mut c: ServiceNowConfig = toml::from_str(MINIMAL).unwrap();
        c.priorities.p2.impact = 4;
        let err = c.validate("tickets.sn").unwrap_err().to_string();
        assert!(err.contains("`tickets.sn.priorities.p2.impact`"), "{err}");
        let mut c: ServiceNowConfig = toml::from_str(MINIMAL).unwrap();
        c.resolve_state = 3;
        let err = c.validate("tickets.sn").unwrap_err().to_string();
        assert!(err.contains("`tickets.sn.resolve_state`"), "{err}");
        let mut c: ServiceNowConfig = toml::from_str(MINIMAL).unwrap();
        c.assignment_group = Some(" ".into());
        let err = c.validate("tickets.sn").unwrap_err().to_string();
        assert!(err.contains("`tickets.sn.assignment_group`"), "{err}");
    }
}
