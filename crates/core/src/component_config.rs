//! [`ComponentConfig`]: one `[enrichers.<id>]`, `[sinks.<id>]`, `[notifiers.<id>]`,
//! `[tickets.<id>]` or `[scanners.<id>]` table, kept opaque so the file format is not part of
//! the API. Connector factories receive one and read it with
//! [`BuildContext::parse`](crate::BuildContext::parse) into their own serde config.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::params::ParamValue;
use crate::secret::toml_error_parts;

/// One component's settings: `type` (the connector) plus the connector's own keys, and the
/// keys the runtime takes for every component (`batch`, `retry`, `breaker`, `request`,
/// `rate_limit`). The connector's factory checks the rest when the configuration is
/// assembled, naming any bad key in full (e.g. `sinks.splunk.index`).
///
/// Read from a config file, or made in code with typed values ([`ParamValue`]):
///
/// ```
/// use vowguard_core::ComponentConfig;
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
/// A factory deserialises it into its own config struct; errors name the full key:
///
/// ```
/// use serde::Deserialize;
/// use vowguard_core::ComponentConfig;
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct MySinkConfig {
///     endpoint: String,
///     #[serde(default)]
///     index: Option<String>,
/// }
///
/// let table = ComponentConfig::default().with("endpoint", "https://h").with("indx", "a");
/// let err = table.parse::<MySinkConfig>("sinks.mine").err().unwrap();
/// assert!(err.message().starts_with("`sinks.mine`: unknown field `indx`"), "{err}");
/// ```
///
/// `Debug` shows the type and the key names only, never a value (a table may hold an
/// inline credential).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComponentConfig(toml::Table);

impl ComponentConfig {
    /// A component of connector type `kind` (its `type` key) with no other key set.
    pub fn new(kind: impl Into<String>) -> Self {
        Self::default().with("type", kind.into())
    }

    /// Parses the body of one component table, as written under `[sinks.<id>]`.
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming the key, without quoting the
    /// text (it may hold a credential).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let (key, message) = toml_error_parts(&e);
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

    /// The value of `key` as a typed value, when it is set (a TOML datetime becomes its
    /// RFC 3339 text).
    pub fn get(&self, key: &str) -> Option<ParamValue> {
        self.0.get(key).cloned().and_then(from_toml)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The keys that are set, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Removes `key` and returns its value as a typed value, when it was set.
    pub fn remove(&mut self, key: &str) -> Option<ParamValue> {
        self.0.remove(key).and_then(from_toml)
    }

    /// Removes `key` and deserialises its value; `None` when it was not set. `path` is the
    /// full key errors name (e.g. `sinks.splunk.batch`), extended by the nested key at
    /// fault (`sinks.splunk.batch.max_events`).
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming the key; no value is quoted.
    pub fn take<T: DeserializeOwned>(&mut self, key: &str, path: &str) -> Result<Option<T>, Error> {
        self.0
            .remove(key)
            .map(|value| deserialize(value, path))
            .transpose()
    }

    /// Moves the given keys (those that are set) into a new config and returns it, e.g. to
    /// read a shared connection table apart from the connector's own keys.
    #[must_use]
    pub fn split_off(&mut self, keys: &[&str]) -> Self {
        let mut taken = toml::Table::new();
        for key in keys {
            if let Some(value) = self.0.remove(*key) {
                taken.insert((*key).to_owned(), value);
            }
        }
        Self(taken)
    }

    /// Deserialises the whole table into a connector's config. `path` is the component's
    /// key (e.g. `sinks.splunk`); errors name the key at fault below it
    /// (`sinks.splunk.token`) and never quote a value from the file.
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming the key.
    pub fn parse<T: DeserializeOwned>(self, path: &str) -> Result<T, Error> {
        deserialize(toml::Value::Table(self.0), path)
    }
}

/// Deserialises `value`, an error naming `path` plus the nested key toml reports.
fn deserialize<T: DeserializeOwned>(value: toml::Value, path: &str) -> Result<T, Error> {
    value.try_into().map_err(|e: toml::de::Error| {
        let (inner, message) = toml_error_parts(&e);
        let key = match inner {
            Some(inner) if path.is_empty() => inner,
            Some(inner) => format!("{path}.{inner}"),
            None => path.to_owned(),
        };
        Error::config(format!("`{key}`: {}", without_quoted_strings(&message)))
    })
}

/// serde's type errors quote a string they refuse (`invalid type: string "..."`); a secret
/// pasted where a number belongs must not come back in the error, so the text goes.
fn without_quoted_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(QUOTED) {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        let after = &rest[at + QUOTED.len()..];
        let mut escaped = false;
        let end = after.char_indices().find_map(|(i, c)| {
            let closes = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            closes.then_some(i + 1)
        });
        rest = end.map_or("", |end| &after[end..]);
    }
    out.push_str(rest);
    out
}

/// A typed value as the factories read it.
fn to_toml(value: &ParamValue) -> toml::Value {
    // Strings, i64, f64, booleans, lists and string-keyed tables: each has a TOML form.
    toml::Value::try_from(value).expect("every ParamValue has a TOML form")
}

/// A TOML value as a typed value (every TOML value has one; a datetime becomes its text).
fn from_toml(value: toml::Value) -> Option<ParamValue> {
    value.try_into().ok()
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
    use super::*;
    use crate::params::Params;

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
        let token = built.get("token").unwrap();
        assert_eq!(
            token.as_table().and_then(|t| t["env"].as_str()),
            Some("HEC_TOKEN")
        );
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

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        max_events: usize,
    }

    #[test]
    fn take_remove_and_split_off() {
        let mut c = ComponentConfig::from_toml(
            "type = \"x\"\nbatch = { max_events = 5 }\nrefresh = \"1h\"\nurl = \"u\"\nuser = \"n\"",
        )
        .unwrap();
        assert_eq!(
            c.take::<Batch>("batch", "sinks.x.batch").unwrap(),
            Some(Batch { max_events: 5 })
        );
        assert_eq!(c.take::<Batch>("batch", "sinks.x.batch").unwrap(), None);
        assert_eq!(c.remove("refresh"), Some(ParamValue::from("1h")));
        let connection = c.split_off(&["url", "user", "absent"]);
        assert_eq!(connection.keys().collect::<Vec<_>>(), ["url", "user"]);
        assert_eq!(c.keys().collect::<Vec<_>>(), ["type"]);

        let mut bad = ComponentConfig::from_toml("batch = { max_events = \"SECRET-3\" }").unwrap();
        let err = bad.take::<Batch>("batch", "sinks.x.batch").unwrap_err();
        assert!(
            err.message().starts_with("`sinks.x.batch.max_events`:"),
            "{err}"
        );
        assert!(!err.message().contains("SECRET-3"), "{err}");
        assert!(
            err.message()
                .ends_with("invalid type: a string, expected usize"),
            "{err}"
        );
        assert_eq!(
            without_quoted_strings(r#"got string "a\"b" and string "c", end"#),
            "got a string and a string, end"
        );
        let err = ComponentConfig::default()
            .with("max_events", 1)
            .with("extra", 2)
            .parse::<Batch>("sinks.x.batch")
            .unwrap_err();
        assert!(err.message().starts_with("`sinks.x.batch`:"), "{err}");
        assert!(err.message().contains("extra"), "{err}");
    }
}
