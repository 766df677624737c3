//! The one duration convention of the TOML configuration: every duration is a
//! [humantime](https://docs.rs/humantime) string (`"10s"`, `"250ms"`, `"2m"`, `"1h30m"`,
//! `"7d"`) under a key without a unit suffix (`timeout`, `ack_wait`, `cache_ttl`).
//!
//! Config structs hold [`Duration`]s and use this module with serde:
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Request {
//!     #[serde(with = "vowguard_core::duration")]
//!     timeout: Duration,
//!     #[serde(default, with = "vowguard_core::duration::option")]
//!     connect_timeout: Option<Duration>,
//! }
//!
//! let r: Request = toml::from_str("timeout = \"10s\"").unwrap();
//! assert_eq!(r.timeout, Duration::from_secs(10));
//! assert!(toml::from_str::<Request>("timeout = 10000").is_err());
//! ```
//!
//! The integer keys of earlier releases (`timeout_ms = 10000`, `ack_wait_secs = 30`) are
//! rewritten by [`migrate_deprecated_keys`] before the document is deserialised, each with a
//! warning naming the old key and its replacement.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// What a duration value looks like, for error messages.
pub const ACCEPTED: &str = "a duration string such as \"10s\", \"250ms\", \"2m\" or \"1h30m\"";

/// Parses a humantime duration (`"10s"`, `"250ms"`, `"2m"`, `"1h30m"`, `"1d"`, `"0"`).
/// The error quotes the text and says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}): expected {ACCEPTED}"))
}

/// Renders a duration the way [`parse`] reads it, compactly: `"2h"`, `"1m30s"`, `"250ms"`,
/// `"1500ms"`, `"0s"` (whole milliseconds that are not whole seconds are written in `ms`).
pub fn format(duration: Duration) -> String {
    if duration.subsec_millis() != 0 && duration.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}ms", duration.as_millis());
    }
    humantime::format_duration(duration)
        .to_string()
        .replace(' ', "")
}

/// Serialises a [`Duration`] as a humantime string (`#[serde(with = "vowguard_core::duration")]`).
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format(*duration))
}

/// Deserialises a [`Duration`] from a humantime string; anything else (an integer
/// included) is refused with what is accepted.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ACCEPTED)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }
}

/// `Option<Duration>` fields: `#[serde(default, with = "vowguard_core::duration::option")]`.
pub mod option {
    use super::*;

    /// Serialises `Some` as a humantime string and `None` as nothing.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises a present value as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

/// A [`Duration`] that reads and prints as a humantime string, for places that want a
/// type rather than a `#[serde(with)]` attribute (the router's timings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Self)
    }
}

/// The unit of a deprecated integer duration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `*_ms`.
    Millis,
    /// `*_secs` or `*_seconds`.
    Secs,
}

/// A deprecated integer duration key and where it may appear: a dotted path from the
/// document root in which `*` stands for any key (a component id, a playbook name);
/// arrays of tables on the way are looked through (`playbooks.*.steps.timeout_ms` covers
/// every step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeprecatedKey {
    /// The dotted path, the old key last, e.g. `sinks.*.retry.initial_backoff_ms`.
    pub path: &'static str,
}

impl DeprecatedKey {
    /// The old key (the path's last segment), e.g. `initial_backoff_ms`.
    pub fn old_key(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The unit of the old key, from its suffix.
    pub fn unit(&self) -> Unit {
        if self.old_key().ends_with("_ms") {
            Unit::Millis
        } else {
            Unit::Secs
        }
    }

    /// The key that replaces it: the old key without its unit suffix
    /// (`initial_backoff_ms` -> `initial_backoff`, `deadline_seconds` -> `deadline`).
    pub fn new_key(&self) -> &'static str {
        let old = self.old_key();
        ["_ms", "_secs", "_seconds"]
            .iter()
            .find_map(|suffix| old.strip_suffix(suffix))
            .unwrap_or(old)
    }
}

/// Rewrites every deprecated integer key of `keys` found in `root` into its replacement
/// (`timeout_ms = 10000` -> `timeout = "10s"`) and returns one warning per key rewritten,
/// naming the old key and its replacement with the full path, e.g.
/// `sinks.splunk.request.timeout_ms is deprecated: use sinks.splunk.request.timeout = "10s"`.
///
/// Errors name the full key: both the old and the new key set, or an old key whose value
/// is not a whole non-negative number.
///
/// For the workspace's own config-file loaders (runtime, playbooks); not a stable API: it
/// takes a `toml` table, which the public API does not.
#[doc(hidden)]
pub fn migrate_deprecated_keys(
    root: &mut toml::Table,
    keys: &[DeprecatedKey],
) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    for key in keys {
        let segments: Vec<&str> = key.path.split('.').collect();
        migrate_table(root, &segments, "", key, &mut warnings)?;
    }
    Ok(warnings)
}

/// Upgrades JSON written by an earlier release (a persisted config snapshot, such as a
/// playbook run's): every integer under a key ending in `_ms`, `_secs` or `_seconds` whose
/// unit-less name is absent becomes that name with a humantime string
/// (`"timeout_ms": 30000` -> `"timeout": "30s"`), at any depth. String values are left
/// alone, so user-chosen keys holding text are never touched.
pub fn upgrade_json_durations(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let old: Vec<String> = map
                .iter()
                .filter(|(_, v)| v.is_u64())
                .map(|(k, _)| k.clone())
                .collect();
            for old in old {
                let (new, millis) = if let Some(new) = old.strip_suffix("_ms") {
                    (new, 1)
                } else if let Some(new) = old
                    .strip_suffix("_secs")
                    .or_else(|| old.strip_suffix("_seconds"))
                {
                    (new, 1000)
                } else {
                    continue;
                };
                if new.is_empty() || map.contains_key(new) {
                    continue;
                }
                let amount = map
                    .get(&old)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let duration = Duration::from_millis(amount.saturating_mul(millis));
                map.remove(&old);
                map.insert(new.to_owned(), serde_json::Value::String(format(duration)));
            }
            for child in map.values_mut() {
                upgrade_json_durations(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(upgrade_json_durations),
        _ => {}
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn migrate_value(
    value: &mut toml::Value,
    segments: &[&str],
    path: &str,
    key: &DeprecatedKey,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    match value {
        toml::Value::Table(table) => migrate_table(table, segments, path, key, warnings),
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                migrate_value(item, segments, &format!("{path}[{index}]"), key, warnings)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn migrate_table(
    table: &mut toml::Table,
    segments: &[&str],
    path: &str,
    key: &DeprecatedKey,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    match segments {
        [] => Ok(()),
        [_old] => {
            let (old, new) = (key.old_key(), key.new_key());
            let Some(value) = table.get(old) else {
                return Ok(());
            };
            let (old_path, new_path) = (join(path, old), join(path, new));
            let (unit_name, example) = match key.unit() {
                Unit::Millis => ("milliseconds", "\"250ms\""),
                Unit::Secs => ("seconds", "\"30s\""),
            };
            if table.contains_key(new) {
                return Err(Error::config(format!(
                    "`{old_path}` and `{new_path}` are both set: `{old}` is the deprecated spelling of `{new}`; keep only `{new_path}`"
                )));
            }
            let amount = match value {
                toml::Value::Integer(n) => u64::try_from(*n).ok(),
                _ => None,
            };
            let Some(amount) = amount else {
                return Err(Error::config(format!(
                    "`{old_path}`: must be a whole number of {unit_name} (deprecated: write `{new_path} = {example}`, {ACCEPTED})"
                )));
            };
            let duration = match key.unit() {
                Unit::Millis => Duration::from_millis(amount),
                Unit::Secs => Duration::from_secs(amount),
            };
            let text = format(duration);
            warnings.push(format!(
                "{old_path} is deprecated: use {new_path} = \"{text}\""
            ));
            table.remove(old);
            table.insert(new.to_owned(), toml::Value::String(text));
            Ok(())
        }
        [segment, rest @ ..] => {
            if *segment == "*" {
                for (name, child) in table.iter_mut() {
                    migrate_value(child, rest, &join(path, name), key, warnings)?;
                }
            } else if let Some(child) = table.get_mut(*segment) {
                migrate_value(child, rest, &join(path, segment), key, warnings)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (text, millis) in [
            ("30s", 30_000),
            ("250ms", 250),
            ("2m", 120_000),
            ("4h", 14_400_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("1d", 86_400_000),
            ("0", 0),
            ("0s", 0),
        ] {
            assert_eq!(
                parse(text).unwrap(),
                Duration::from_millis(millis),
                "{text}"
            );
        }
        for bad in ["", "5", "m", "5x", "-1s", "ten seconds"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("\"10s\", \"250ms\", \"2m\""), "{bad}: {err}");
        }
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::ZERO), "0s");
        for millis in [0, 1, 250, 1_000, 90_000, 5_400_250, 86_400_000 * 8] {
            let d = Duration::from_millis(millis);
            assert_eq!(parse(&format(d)).unwrap(), d, "{millis}");
        }
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Sample {
        #[serde(with = "crate::duration")]
        timeout: Duration,
        #[serde(default, with = "crate::duration::option")]
        wait: Option<Duration>,
    }

    #[test]
    fn serde_reads_strings_and_refuses_integers() {
        let s: Sample = toml::from_str("timeout = \"10s\"\nwait = \"2m\"").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.wait, Some(Duration::from_secs(120)));
        let back = toml::to_string(&s).unwrap();
        assert_eq!(toml::from_str::<Sample>(&back).unwrap(), s);
        let err = toml::from_str::<Sample>("timeout = 10000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"250ms\""), "{err}");
        let err = toml::from_str::<Sample>("timeout = \"10 parsecs\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"10 parsecs\""), "{err}");
    }

    const KEYS: &[DeprecatedKey] = &[
        DeprecatedKey {
            path: "sinks.*.request.timeout_ms",
        },
        DeprecatedKey {
            path: "playbooks.*.steps.deadline_seconds",
        },
        DeprecatedKey {
            path: "queue.consumers.ack_wait_secs",
        },
    ];

    #[test]
    fn old_keys_are_rewritten_with_a_warning() {
        let mut doc: toml::Table = toml::from_str(
            "[sinks.splunk.request]\ntimeout_ms = 10000\n[sinks.es.request]\ntimeout = \"1s\"\n\
             [[playbooks.p.steps]]\ndeadline_seconds = 90\n[[playbooks.p.steps]]\n\
             [queue.consumers]\nack_wait_secs = 30\n[matches]\ntimeout_ms = 5\n",
        )
        .unwrap();
        let warnings = migrate_deprecated_keys(&mut doc, KEYS).unwrap();
        assert_eq!(
            warnings,
            [
                "sinks.splunk.request.timeout_ms is deprecated: use sinks.splunk.request.timeout = \"10s\"",
                "playbooks.p.steps[0].deadline_seconds is deprecated: use playbooks.p.steps[0].deadline = \"1m30s\"",
                "queue.consumers.ack_wait_secs is deprecated: use queue.consumers.ack_wait = \"30s\"",
            ]
        );
        assert_eq!(
            doc["sinks"]["splunk"]["request"]["timeout"].as_str(),
            Some("10s")
        );
        assert!(
            doc["sinks"]["splunk"]["request"]
                .get("timeout_ms")
                .is_none()
        );
        assert_eq!(
            doc["sinks"]["es"]["request"]["timeout"].as_str(),
            Some("1s")
        );
        // A key outside the listed paths is left alone.
        assert_eq!(doc["matches"]["timeout_ms"].as_integer(), Some(5));
    }

    #[test]
    fn both_keys_or_a_bad_old_value_are_errors_naming_the_key() {
        for (text, want) in [
            (
                "[sinks.splunk.request]\ntimeout_ms = 10\ntimeout = \"1s\"\n",
                "`sinks.splunk.request.timeout_ms` and `sinks.splunk.request.timeout` are both set",
            ),
            (
                "[sinks.splunk.request]\ntimeout_ms = \"10s\"\n",
                "`sinks.splunk.request.timeout_ms`: must be a whole number of milliseconds",
            ),
            (
                "[queue.consumers]\nack_wait_secs = -1\n",
                "`queue.consumers.ack_wait_secs`: must be a whole number of seconds (deprecated: write `queue.consumers.ack_wait = \"30s\"`",
            ),
        ] {
            let mut doc: toml::Table = toml::from_str(text).unwrap();
            let err = migrate_deprecated_keys(&mut doc, KEYS)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn old_json_snapshots_are_upgraded() {
        let mut snapshot = serde_json::json!({
            "deadline_seconds": 3600,
            "steps": [
                {"id": "a", "timeout_ms": 1500, "retry": {"initial_backoff_ms": 200}},
                {"id": "b", "timeout": "2s", "timeout_ms": 9, "headers": {"x_ms": "5"}},
            ],
        });
        upgrade_json_durations(&mut snapshot);
        assert_eq!(
            snapshot,
            serde_json::json!({
                "deadline": "1h",
                "steps": [
                    {"id": "a", "timeout": "1500ms", "retry": {"initial_backoff": "200ms"}},
                    {"id": "b", "timeout": "2s", "timeout_ms": 9, "headers": {"x_ms": "5"}},
                ],
            })
        );
    }

    #[test]
    fn replacement_keys_drop_the_unit() {
        for (path, new, unit) in [
            ("a.timeout_ms", "timeout", Unit::Millis),
            ("a.*.ack_wait_secs", "ack_wait", Unit::Secs),
            ("deadline_seconds", "deadline", Unit::Secs),
        ] {
            let key = DeprecatedKey { path };
            assert_eq!((key.new_key(), key.unit()), (new, unit), "{path}");
        }
    }
}
