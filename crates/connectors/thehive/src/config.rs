//! Configuration of the `thehive` ticket system (`[tickets.<id>]`).

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, Priority, SecretRef};
use vowguard_http::HttpOptions;
use vowguard_http::reqwest::Url;

/// Traffic Light Protocol level (TheHive 5 numbering: TLP 2.0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Tlp {
    /// `0`. `white` is accepted as the TLP 1.0 name.
    #[serde(alias = "white")]
    Clear,
    /// `1`.
    Green,
    /// `2` (the default).
    #[default]
    Amber,
    /// `3`.
    #[serde(rename = "amber+strict")]
    AmberStrict,
    /// `4`.
    Red,
}

impl Tlp {
    /// The number TheHive 5 stores.
    pub fn number(self) -> u8 {
        match self {
            Self::Clear => 0,
            Self::Green => 1,
            Self::Amber => 2,
            Self::AmberStrict => 3,
            Self::Red => 4,
        }
    }
}

/// Permissible Actions Protocol level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Pap {
    /// `0`. `white` is accepted too.
    #[serde(alias = "white")]
    Clear,
    /// `1`.
    Green,
    /// `2` (the default).
    #[default]
    Amber,
    /// `3`.
    Red,
}

impl Pap {
    /// The number TheHive stores.
    pub fn number(self) -> u8 {
        match self {
            Self::Clear => 0,
            Self::Green => 1,
            Self::Amber => 2,
            Self::Red => 3,
        }
    }
}

/// How [`update`](vowguard_core::TicketSystem::update) records a timeline entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpdateMode {
    /// `POST /api/v1/alert/{id}/comment` (TheHive 5.1 and later; the default).
    #[default]
    Comment,
    /// Read the alert and `PATCH` its description with the entry appended (TheHive 5.0,
    /// which has no alert comments).
    Description,
}

/// `[tickets.<id>]` with `type = "thehive"`.
///
/// ```toml
/// [tickets.hive]
/// type = "thehive"
/// url = "https://thehive.example.org"
/// api_key = { env = "THEHIVE_API_KEY" }
/// organisation = "wedding-soc"
/// tags = ["platform:weddings"]
/// tlp = "amber"
/// pap = "amber"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TheHiveConfig {
    /// Base URL of TheHive (`/api/v1/...` is appended).
    pub url: String,
    /// An API key (sent as `Authorization: Bearer <key>`). A secret.
    pub api_key: SecretRef,
    /// Sent as `X-Organisation` when the key's user belongs to several organisations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The alert `type`; part of the dedup key. Default `vowguard-incident`.
    #[serde(default = "default_alert_type")]
    pub alert_type: String,
    /// The alert `source`; part of the dedup key. Default `vowguard`.
    #[serde(default = "default_source")]
    pub source: String,
    /// Tags added to every alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// TLP of the alert and its observables. Default `amber`.
    #[serde(default)]
    pub tlp: Tlp,
    /// PAP of the alert and its observables. Default `amber`.
    #[serde(default)]
    pub pap: Pap,
    /// Alert severity (1 low .. 4 critical) for P0, P1, P2, P3, P4. Default `[4, 3, 2, 1, 1]`.
    #[serde(default = "default_severities")]
    pub severity_by_priority: [u8; 5],
    /// A case template applied when the alert is promoted to a case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_template: Option<String>,
    /// How timeline entries are recorded. Default `comment`.
    #[serde(default)]
    pub update_mode: UpdateMode,
    /// The alert status set on resolve (a status of TheHive's *Closed* stage). Default
    /// `Other`; `TruePositive`, `FalsePositive`, `Duplicated` or a custom status also work.
    #[serde(default = "default_resolve_status")]
    pub resolve_status: String,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_alert_type() -> String {
    "vowguard-incident".to_owned()
}

fn default_source() -> String {
    "vowguard".to_owned()
}

fn default_severities() -> [u8; 5] {
    [4, 3, 2, 1, 1]
}

fn default_resolve_status() -> String {
    "Other".to_owned()
}

impl TheHiveConfig {
    /// A configuration with every default.
    pub fn new(url: impl Into<String>, api_key: SecretRef) -> Self {
        Self {
            url: url.into(),
            api_key,
            organisation: None,
            alert_type: default_alert_type(),
            source: default_source(),
            tags: Vec::new(),
            tlp: Tlp::default(),
            pap: Pap::default(),
            severity_by_priority: default_severities(),
            case_template: None,
            update_mode: UpdateMode::default(),
            resolve_status: default_resolve_status(),
            http: HttpOptions::default(),
        }
    }

    /// The base URL, parsed. `prefix` is the component's key (`tickets.hive`).
    pub fn base_url(&self, prefix: &str) -> Result<Url, Error> {
        let url = vowguard_http::parse_url(&format!("{prefix}.url"), &self.url)?;
        if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "`{prefix}.url`: must be a base URL without query or fragment"
            )));
        }
        Ok(url)
    }

    /// The alert severity for `priority`.
    pub fn severity(&self, priority: Priority) -> u8 {
        self.severity_by_priority[usize::from(priority.level())]
    }

    /// Checks what serde cannot; errors name the key under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        self.base_url(prefix)?;
        for (field, value) in [
            ("alert_type", &self.alert_type),
            ("source", &self.source),
            ("resolve_status", &self.resolve_status),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(Error::config(format!(
                    "`{prefix}.{field}`: must be non-empty text on one line"
                )));
            }
        }
        if let Some(org) = &self.organisation
            && (org.trim().is_empty()
                || vowguard_http::reqwest::header::HeaderValue::from_str(org).is_err())
        {
            return Err(Error::config(format!(
                "`{prefix}.organisation`: must be a non-empty organisation name usable in a header"
            )));
        }
        for (i, severity) in self.severity_by_priority.iter().enumerate() {
            if !(1..=4).contains(severity) {
                return Err(Error::config(format!(
                    "`{prefix}.severity_by_priority[{i}]`: {severity} is not a TheHive severity (1 low .. 4 critical)"
                )));
            }
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.chars().any(char::is_control) {
                return Err(Error::config(format!(
                    "`{prefix}.tags[{i}]`: must be non-empty text on one line"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let c: TheHiveConfig =
            toml::from_str("url = \"https://hive.example.org\"\napi_key = { env = \"K\" }")
                .unwrap();
        assert_eq!(
            c,
            TheHiveConfig::new("https://hive.example.org", SecretRef::Env("K".into()))
        );
        assert_eq!(c.tlp.number(), 2);
        assert_eq!(c.severity(Priority::P0Critical), 4);
        assert_eq!(c.severity(Priority::P4Info), 1);
        let c: TheHiveConfig = toml::from_str(
            "url = \"https://h\"\napi_key = { env = \"K\" }\ntlp = \"amber+strict\"\npap = \"white\"",
        )
        .unwrap();
        assert_eq!((c.tlp.number(), c.pap.number()), (3, 0));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = toml::from_str::<TheHiveConfig>(
            "url = \"https://h\"\napi_key = { env = \"K\" }\ncolour = 1",
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let mut c = TheHiveConfig::new("https://h", SecretRef::Env("K".into()));
        c.severity_by_priority = [4, 3, 2, 1, 0];
        let e = c.validate("tickets.hive").unwrap_err().to_string();
        assert!(e.contains("`tickets.hive.severity_by_priority[4]`"), "{e}");
        let mut c = TheHiveConfig::new("ftp://h", SecretRef::Env("K".into()));
        assert!(
            c.validate("tickets.hive")
                .unwrap_err()
                .to_string()
                .contains("`tickets.hive.url`")
        );
        c.url = "https://h".into();
        c.organisation = Some("soc\nX-Evil: 1".into());
        assert!(
            c.validate("tickets.hive")
                .unwrap_err()
                .to_string()
                .contains("`tickets.hive.organisation`")
        );
    }
}
