//! Typed configuration values: receiver parameters of a route (`params`,
//! `receiver_params.<id>`) and the keys of a component table
//! ([`ComponentConfig`](crate::ComponentConfig)), the same in a config file and in code,
//! with no TOML or JSON type in the API.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Receiver parameters by name (e.g. `channel`, `mention`, `severity`, `recipients`).
pub type Params = BTreeMap<String, ParamValue>;

/// One receiver parameter's value: what a notifier reads from an alert's `params`
/// (a Slack `channel`, a PagerDuty `severity`, a list of email `recipients`, ...).
///
/// In a config file it is written as any TOML value (a datetime becomes its RFC 3339
/// text); in code it is made with `From`:
///
/// ```
/// use vowguard_core::ParamValue;
///
/// assert_eq!(ParamValue::from("#security"), ParamValue::String("#security".into()));
/// assert_eq!(ParamValue::from(["a@example.org", "b@example.org"]).as_list().map(<[_]>::len), Some(2));
/// assert_eq!(ParamValue::from(3).as_integer(), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParamValue {
    /// Text, e.g. a channel name.
    String(String),
    /// A whole number.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A list, e.g. several channels.
    List(Vec<ParamValue>),
    /// Named values, for nested settings a notifier reads.
    Table(Params),
}

impl ParamValue {
    /// The text, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when this is an integer.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Self::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, when this is a float or an integer.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Self::Float(f) => Some(*f),
            #[allow(clippy::cast_precision_loss)]
            Self::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The flag, when this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, when this is a list.
    pub fn as_list(&self) -> Option<&[ParamValue]> {
        match self {
            Self::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, when this is a table.
    pub fn as_table(&self) -> Option<&Params> {
        match self {
            Self::Table(table) => Some(table),
            _ => None,
        }
    }
}

impl From<String> for ParamValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<&str> for ParamValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<i64> for ParamValue {
    fn from(i: i64) -> Self {
        Self::Integer(i)
    }
}

impl From<i32> for ParamValue {
    fn from(i: i32) -> Self {
        Self::Integer(i64::from(i))
    }
}

impl From<u32> for ParamValue {
    fn from(i: u32) -> Self {
        Self::Integer(i64::from(i))
    }
}

impl From<f64> for ParamValue {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<bool> for ParamValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl<T: Into<ParamValue>> From<Vec<T>> for ParamValue {
    fn from(items: Vec<T>) -> Self {
        Self::List(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<ParamValue>, const N: usize> From<[T; N]> for ParamValue {
    fn from(items: [T; N]) -> Self {
        Self::List(items.into_iter().map(Into::into).collect())
    }
}

impl From<Params> for ParamValue {
    fn from(table: Params) -> Self {
        Self::Table(table)
    }
}

impl Serialize for ParamValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(s) => serializer.serialize_str(s),
            Self::Integer(i) => serializer.serialize_i64(*i),
            Self::Float(f) => serializer.serialize_f64(*f),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::List(items) => items.serialize(serializer),
            Self::Table(table) => table.serialize(serializer),
        }
    }
}

/// The key under which the `toml` deserializer hands over a datetime (as a one-entry map).
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

struct ParamVisitor;

impl<'de> Visitor<'de> for ParamVisitor {
    type Value = ParamValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean, list or table")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<ParamValue, E> {
        Ok(ParamValue::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<ParamValue, E> {
        Ok(ParamValue::Integer(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<ParamValue, E> {
        i64::try_from(u)
            .map(ParamValue::Integer)
            .map_err(|_| E::custom(format!("integer {u} is too large (at most {})", i64::MAX)))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<ParamValue, E> {
        Ok(ParamValue::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<ParamValue, E> {
        Ok(ParamValue::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<ParamValue, E> {
        Ok(ParamValue::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamValue, A::Error> {
        // The hint comes from the input: cap it so a lying length allocates nothing much.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(ParamValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamValue, A::Error> {
        let mut table = Params::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_KEY && table.is_empty() {
                // A TOML datetime: keep its text (RFC 3339), as the cases file does.
                let text: String = map.next_value()?;
                if map.next_key::<String>()?.is_none() {
                    return Ok(ParamValue::String(text));
                }
                return Err(de::Error::custom("unexpected key after a datetime"));
            }
            let value = map.next_value()?;
            table.insert(key, value);
        }
        Ok(ParamValue::Table(table))
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ParamVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_become_typed_params() {
        let params: Params = toml::from_str(
            r##"
channel = "#security"
channels = ["#a", "#b"]
count = 3
ratio = 0.5
urgent = true
when = 2026-06-20T10:05:00Z
nested = { key = "v", list = [1, 2] }
"##,
        )
        .unwrap();
        assert_eq!(params["channel"], ParamValue::from("#security"));
        assert_eq!(params["channels"], ParamValue::from(["#a", "#b"]));
        assert_eq!(params["count"].as_integer(), Some(3));
        assert_eq!(params["ratio"].as_float(), Some(0.5));
        assert_eq!(params["urgent"].as_bool(), Some(true));
        assert_eq!(params["when"].as_str(), Some("2026-06-20T10:05:00Z"));
        let nested = params["nested"].as_table().unwrap();
        assert_eq!(nested["key"].as_str(), Some("v"));
        assert_eq!(nested["list"], ParamValue::from(vec![1, 2]));
    }

    #[test]
    fn params_round_trip_through_toml_and_json() {
        let mut params = Params::new();
        params.insert("mention".into(), "channel".into());
        params.insert("channels".into(), ParamValue::from(vec!["#x"]));
        params.insert("retries".into(), 2.into());
        let text = toml::to_string(&params).unwrap();
        assert_eq!(toml::from_str::<Params>(&text).unwrap(), params);
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(serde_json::from_str::<Params>(&json).unwrap(), params);
    }

    #[test]
    fn json_null_and_huge_integers_are_refused() {
        let err = serde_json::from_str::<ParamValue>("null").unwrap_err();
        assert!(err.to_string().contains("a string, number"), "{err}");
        let err = serde_json::from_str::<ParamValue>("18446744073709551615").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }
}
