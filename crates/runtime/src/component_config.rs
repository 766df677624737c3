//! [`ComponentConfig`]: one `[enrichers.<id>]`, `[sinks.<id>]`, `[notifiers.<id>]`,
//! `[tickets.<id>]` or `[scanners.<id>]` table, kept opaque so the file format is not part of
//! the API.

use std::fmt;

use serde::Deserialize;
use vowguard_core::Error;
use vowguard_router::ParamValue;

/// One component's settings: `type` (the connector) plus the connector's own keys, and the
/// keys the runtime takes for every component (`batch`, `retry`, `breaker`, `request`,
/// `rate_limit`). The connector's factory checks the rest when the configuration is
/// assembled, naming any bad key in full (e.g. `sinks.splunk.index`).
///
/// Read from a config file, or made in code:
///
/// ```
/// use vowguard_runtime::config::ComponentConfig;
///
/// let sink = ComponentConfig::new("splunk_hec")
///     .with("endpoint", "https://splunk.example.org:8088")
///     .with("index", "wedding-security");
/// assert_eq!(sink.kind(), Some("splunk_hec"));
/// assert_eq!(sink.get_str("index"), Some("wedding-security"));
///
/// let same = ComponentConfig::from_toml(
///     "type = \"splunk_hec\"\nendpoint = \"https://splunk.example.org:8088\"\nindex = \"wedding-security\"",
/// )?;
/// assert_eq!(sink, same);
/// # Ok::<(), vowguard_core::Error>(())
/// ```
///
/// `Debug` shows the type and the key names only, never a value (a table may hold an
/// inline credential).
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ComponentConfig(toml::Table);

impl ComponentConfig {
    /// A component of connector type `kind` (its `type` key) with no other key set.
    pub fn new(kind: impl Into<String>) -> Self {
        let mut table = toml::Table::new();
        table.insert("type".to_owned(), toml::Value::String(kind.into()));
        Self(table)
    }

    /// Parses the body of one component table, as written under `[sinks.<id>]`.
    ///
    /// # Errors
    ///
    /// A [`Config`](vowguard_core::ErrorKind::Config) error naming the key, without
    /// quoting the text (it may hold a credential).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let (key, message) = vowguard_core::toml_error_parts(&e);
            Error::config(match key {
                Some(key) => format!("component table: `{key}`: {message}"),
                None => format!("component table: {message}"),
            })
        })
    }

    /// Sets `key` (replacing an earlier value), e.g. `.with("index", "wedding-security")`,
    /// `.with("token", secret_ref_table)` where the table is `{ env = "NAME" }`.
    ///
    /// A float that is not finite is stored as given; the connector's factory decides
    /// whether it accepts it.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.0.insert(key.into(), to_toml(&value.into()));
        self
    }

    /// The connector type (`type`), when it is set and a string.
    pub fn kind(&self) -> Option<&str> {
        self.get_str("type")
    }

    /// The value of `key`, when it is set and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(toml::Value::as_str)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The keys that are set, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The table, for the runtime's own key handling and the connector factories.
    pub(crate) fn into_table(self) -> toml::Table {
        self.0
    }
}

/// A typed value as the factories read it.
fn to_toml(value: &ParamValue) -> toml::Value {
    // Strings, i64, f64, booleans, lists and string-keyed tables: each has a TOML form.
    toml::Value::try_from(value).expect("every ParamValue has a TOML form")
}

impl fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("type", &self.kind())
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use vowguard_router::Params;

    use super::*;

    #[test]
    fn built_in_code_equals_parsed() {
        let mut secret = Params::new();
        secret.insert("env".into(), "HEC_TOKEN".into());
        let built = ComponentConfig::new("splunk_hec")
            .with("endpoint", "https://h:8088")
            .with("token", secret)
            .with("batch", {
                let mut batch = Params::new();
                batch.insert("max_events".into(), 50.into());
                batch
            })
            .with("tags", ["a", "b"])
            .with("enabled", true);
        let parsed = ComponentConfig::from_toml(
            r#"
type = "splunk_hec"
endpoint = "https://h:8088"
token = { env = "HEC_TOKEN" }
batch = { max_events = 50 }
tags = ["a", "b"]
enabled = true
"#,
        )
        .unwrap();
        assert_eq!(built, parsed);
        assert_eq!(
            built.keys().collect::<Vec<_>>(),
            ["batch", "enabled", "endpoint", "tags", "token", "type"]
        );
        assert!(built.contains_key("token"));
        assert_eq!(built.get_str("token"), None, "a table is not a string");
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let c = ComponentConfig::new("slack").with("webhook_url", "https://hooks/SECRET-1");
        let debug = format!("{c:?}");
        assert!(!debug.contains("SECRET-1"), "{debug}");
        assert!(
            debug.contains("webhook_url") && debug.contains("slack"),
            "{debug}"
        );
    }

    #[test]
    fn parse_errors_name_the_key_and_hide_the_text() {
        let err = ComponentConfig::from_toml("token = \"SECRET-2\"\ntoken = 1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET-2"), "{err}");
        assert!(err.contains("component table"), "{err}");
    }
}
