//! One-pass ingest parsing: JSON text (or a [`serde_json::Value`]) straight into an
//! [`Event`], without building a value tree of the whole event first.
//!
//! The parser reads the object once, keeping each known field as a small `Raw` (a
//! borrowed string where the text has no escapes), each unknown top-level field as a
//! [`Value`], and then checks the fields in the fixed order of the ingest contract. Because
//! the checks run only after the whole object is read, a syntax error anywhere wins over
//! a field error, a repeated key keeps its last value, and the error for an event with
//! several bad fields is the same as it was when the event was parsed into a `Value`
//! first. Every nested array or object goes through the deserializer's depth-counted
//! entry point, so the nesting limit is the same too.
//!
//! [`Event::from_json_str`] and [`Event::from_json_value`] both go through
//! [`IngestEvent`], so the text and value entry points agree by construction; the HTTP
//! source deserializes each item of a body as an [`IngestEvent`] directly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::enrichment::Enrichment;
use crate::event::{Event, EventError, MAX_ID_LEN};

/// One ingest item: an accepted [`Event`], or the [`EventError`] naming the field at fault.
///
/// Deserializing it fails only on malformed JSON (the deserializer's own error, with its
/// position); an object that breaks the ingest contract deserializes to `IngestEvent(Err(..))`,
/// so a stream of items goes on after a rejected one.
///
/// ```
/// use vowguard_core::ingest::IngestEvent;
///
/// let item: IngestEvent = serde_json::from_str(r#"{"action":"login","severity":"low"}"#).unwrap();
/// assert_eq!(item.0.unwrap().action, "login");
/// let item: IngestEvent = serde_json::from_str(r#"{"action":"login"}"#).unwrap();
/// assert_eq!(item.0.unwrap_err().to_string(), "field `severity`: is required");
/// ```
#[derive(Debug)]
pub struct IngestEvent(pub Result<Event, EventError>);

impl<'de> Deserialize<'de> for IngestEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let top = deserializer.deserialize_any(TopVisitor)?;
        Ok(IngestEvent(match top {
            Top::Object(raw) => raw.validate(),
            Top::Not(kind) => Err(EventError::whole(format!(
                "expected a JSON object, got {kind}"
            ))),
        }))
    }
}

/// A field value as read, before it is checked. Arrays and objects are only counted as
/// such (their content is read and dropped): no known field but `labels` and
/// `attributes` accepts them.
#[derive(Debug)]
enum Raw<'a> {
    Null,
    Bool,
    Number(Number),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Raw<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool => "a boolean",
            Raw::Number(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::Array => "an array",
            Raw::Object => "an object",
        }
    }
}

/// Reads and drops any value, through `deserialize_any` at every level so that the
/// deserializer's nesting limit applies exactly as it does to a [`Value`].
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Bool)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Raw<'de>, E> {
        Ok(Raw::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Raw<'de>, E> {
        // The same conversion `Value` makes (a non-finite float would be null).
        Ok(Number::from_f64(n).map_or(Raw::Null, Raw::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(s)))
    }
    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw<'de>, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Raw::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Raw::Object)
    }
}

/// `labels` as read: each value kept if it is a string, else its JSON type (checked later,
/// in key order, so the first bad label reported is the same as with a `Value`).
enum RawLabels {
    Map(BTreeMap<String, Result<String, &'static str>>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for RawLabels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = RawLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLabels, A::Error> {
                let mut labels = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, Raw<'de>>()? {
                    let value = match value {
                        Raw::Str(s) => Ok(s.into_owned()),
                        other => Err(other.type_name()),
                    };
                    labels.insert(key, value);
                }
                Ok(RawLabels::Map(labels))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("a number"))
            }
            fn visit_f64<E>(self, n: f64) -> Result<RawLabels, E> {
                Ok(RawLabels::Other(if n.is_finite() {
                    "a number"
                } else {
                    "null"
                }))
            }
            fn visit_str<E>(self, _: &str) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("a string"))
            }
            fn visit_unit<E>(self) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("null"))
            }
            fn visit_none<E>(self) -> Result<RawLabels, E> {
                Ok(RawLabels::Other("null"))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawLabels, D::Error> {
                RawLabels::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawLabels, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(RawLabels::Other("an array"))
            }
        }
        deserializer.deserialize_any(LabelsVisitor)
    }
}

/// `attributes` as read: an object kept whole, or the JSON type of what was there.
enum RawAttributes {
    Map(Map<String, Value>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for RawAttributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Object(map) => RawAttributes::Map(map),
            other => RawAttributes::Other(crate::event::type_name(&other)),
        })
    }
}

/// The known top-level fields (the ingest contract), by position in [`RawEvent::fields`].
#[derive(Clone, Copy)]
enum Field {
    Id,
    Timestamp,
    Category,
    Action,
    Outcome,
    Severity,
    RiskScore,
    Message,
    UserId,
    UserName,
    SourceIp,
    UserAgent,
    Domain,
    Url,
    FileHash,
    ResourceType,
    ResourceId,
    WeddingId,
    DestinationIp,
    DestinationHost,
    DestinationPort,
    RecordCount,
    Labels,
    Attributes,
}

const SCALAR_FIELDS: usize = Field::RecordCount as usize + 1;

impl Field {
    fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "id" => Self::Id,
            "timestamp" => Self::Timestamp,
            "category" => Self::Category,
            "action" => Self::Action,
            "outcome" => Self::Outcome,
            "severity" => Self::Severity,
            "risk_score" => Self::RiskScore,
            "message" => Self::Message,
            "user_id" => Self::UserId,
            "user_name" => Self::UserName,
            "source_ip" => Self::SourceIp,
            "user_agent" => Self::UserAgent,
            "domain" => Self::Domain,
            "url" => Self::Url,
            "file_hash" => Self::FileHash,
            "resource_type" => Self::ResourceType,
            "resource_id" => Self::ResourceId,
            "wedding_id" => Self::WeddingId,
            "destination_ip" => Self::DestinationIp,
            "destination_host" => Self::DestinationHost,
            "destination_port" => Self::DestinationPort,
            "record_count" => Self::RecordCount,
            "labels" => Self::Labels,
            "attributes" => Self::Attributes,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Timestamp => "timestamp",
            Self::Category => "category",
            Self::Action => "action",
            Self::Outcome => "outcome",
            Self::Severity => "severity",
            Self::RiskScore => "risk_score",
            Self::Message => "message",
            Self::UserId => "user_id",
            Self::UserName => "user_name",
            Self::SourceIp => "source_ip",
            Self::UserAgent => "user_agent",
            Self::Domain => "domain",
            Self::Url => "url",
            Self::FileHash => "file_hash",
            Self::ResourceType => "resource_type",
            Self::ResourceId => "resource_id",
            Self::WeddingId => "wedding_id",
            Self::DestinationIp => "destination_ip",
            Self::DestinationHost => "destination_host",
            Self::DestinationPort => "destination_port",
            Self::RecordCount => "record_count",
            Self::Labels => "labels",
            Self::Attributes => "attributes",
        }
    }
}

/// A top-level key: a known field (no allocation) or an unknown one (kept).
enum Key {
    Known(Field),
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(Field::from_key(key).map_or_else(|| Key::Other(key.to_owned()), Key::Known))
            }
            fn visit_string<E>(self, key: String) -> Result<Key, E> {
                Ok(Field::from_key(&key).map_or(Key::Other(key), Key::Known))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The whole object as read, before any check.
struct RawEvent<'a> {
    fields: [Option<Raw<'a>>; SCALAR_FIELDS],
    labels: Option<RawLabels>,
    attributes: Option<RawAttributes>,
    /// Unknown top-level fields (a repeated key keeps its last value).
    stray: Map<String, Value>,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one per parse, on the stack; boxing would add an allocation per event"
)]
enum Top<'a> {
    Object(RawEvent<'a>),
    Not(&'static str),
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut raw = RawEvent {
            fields: Default::default(),
            labels: None,
            attributes: None,
            stray: Map::new(),
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Known(Field::Labels) => raw.labels = Some(map.next_value()?),
                Key::Known(Field::Attributes) => raw.attributes = Some(map.next_value()?),
                Key::Known(field) => raw.fields[field as usize] = Some(map.next_value()?),
                Key::Other(key) => {
                    let value: Value = map.next_value()?;
                    raw.stray.insert(key, value);
                }
            }
        }
        Ok(Top::Object(raw))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Top<'de>, E> {
        Ok(Top::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top<'de>, E> {
        Ok(Top::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top<'de>, E> {
        Ok(Top::Not("a number"))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Top<'de>, E> {
        Ok(Top::Not(if n.is_finite() { "a number" } else { "null" }))
    }
    fn visit_str<E>(self, _: &str) -> Result<Top<'de>, E> {
        Ok(Top::Not("a string"))
    }
    fn visit_unit<E>(self) -> Result<Top<'de>, E> {
        Ok(Top::Not("null"))
    }
    fn visit_none<E>(self) -> Result<Top<'de>, E> {
        Ok(Top::Not("null"))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Top<'de>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Top::Not("an array"))
    }
}

impl<'a> RawEvent<'a> {
    fn take(&mut self, field: Field) -> Option<Raw<'a>> {
        self.fields[field as usize].take()
    }

    /// An optional string field; `null` counts as absent.
    fn string(&mut self, field: Field) -> Result<Option<Cow<'a, str>>, EventError> {
        match self.take(field) {
            None | Some(Raw::Null) => Ok(None),
            Some(Raw::Str(s)) => Ok(Some(s)),
            Some(other) => Err(EventError::field(
                field.name(),
                format!("expected a string, got {}", other.type_name()),
            )),
        }
    }

    fn owned(&mut self, field: Field) -> Result<Option<String>, EventError> {
        Ok(self.string(field)?.map(Cow::into_owned))
    }

    fn enumeration<T: FromStr<Err = String>>(
        &mut self,
        field: Field,
    ) -> Result<Option<T>, EventError> {
        match self.string(field)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|e: String| {
                EventError::field(field.name(), format!("{e}, got {:?}", &*s))
            }),
        }
    }

    fn unsigned(&mut self, field: Field) -> Result<Option<u64>, EventError> {
        match self.take(field) {
            None | Some(Raw::Null) => Ok(None),
            Some(Raw::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                EventError::field(
                    field.name(),
                    format!("expected a non-negative integer, got {n}"),
                )
            }),
            Some(other) => Err(EventError::field(
                field.name(),
                format!("expected an integer, got {}", other.type_name()),
            )),
        }
    }

    /// Checks the fields in the contract's order (the first failing check is reported).
    fn validate(mut self) -> Result<Event, EventError> {
        let id = match self.string(Field::Id)? {
            None => uuid::Uuid::now_v7().to_string(),
            Some(id) => {
                if id.is_empty() {
                    return Err(EventError::field("id", "must not be empty"));
                }
                if id.len() > MAX_ID_LEN {
                    return Err(EventError::field(
                        "id",
                        format!("longer than {MAX_ID_LEN} bytes"),
                    ));
                }
                if !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(EventError::field(
                        "id",
                        "may only contain printable ASCII without spaces",
                    ));
                }
                id.into_owned()
            }
        };
        let timestamp = match self.string(Field::Timestamp)? {
            None => Utc::now(),
            Some(ts) => DateTime::parse_from_rfc3339(&ts)
                .map_err(|e| {
                    EventError::field(
                        "timestamp",
                        format!("expected RFC 3339, got {:?} ({e})", &*ts),
                    )
                })?
                .with_timezone(&Utc),
        };
        let category = self
            .enumeration(Field::Category)?
            .unwrap_or(crate::event::Category::Other);
        let action = self
            .owned(Field::Action)?
            .ok_or_else(|| EventError::field("action", "is required"))?;
        if action.trim().is_empty() {
            return Err(EventError::field("action", "must not be empty"));
        }
        let outcome = self
            .enumeration(Field::Outcome)?
            .unwrap_or(crate::event::Outcome::Unknown);
        let severity = self
            .enumeration(Field::Severity)?
            .ok_or_else(|| EventError::field("severity", "is required"))?;
        let risk_score = match self.unsigned(Field::RiskScore)? {
            None => None,
            Some(n) if n <= 100 => Some(n as u8),
            Some(n) => {
                return Err(EventError::field(
                    "risk_score",
                    format!("must be between 0 and 100, got {n}"),
                ));
            }
        };
        let source_ip = match self.string(Field::SourceIp)? {
            None => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
                EventError::field(
                    "source_ip",
                    format!("expected an IP address, got {:?}", &*ip),
                )
            })?),
        };
        let destination_ip = match self.string(Field::DestinationIp)? {
            None => None,
            Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
                EventError::field(
                    "destination_ip",
                    format!("expected an IP address, got {:?}", &*ip),
                )
            })?),
        };
        let destination_port = match self.unsigned(Field::DestinationPort)? {
            None => None,
            Some(n) => Some(u16::try_from(n).map_err(|_| {
                EventError::field(
                    "destination_port",
                    format!("must be between 0 and 65535, got {n}"),
                )
            })?),
        };
        let labels = match self.labels.take() {
            None => BTreeMap::new(),
            Some(RawLabels::Other("null")) => BTreeMap::new(),
            Some(RawLabels::Map(map)) => {
                let mut labels = BTreeMap::new();
                for (key, value) in map {
                    match value {
                        Ok(s) => {
                            labels.insert(key, s);
                        }
                        Err(kind) => {
                            return Err(EventError::field(
                                &format!("labels.{key}"),
                                format!("expected a string, got {kind}"),
                            ));
                        }
                    }
                }
                labels
            }
            Some(RawLabels::Other(kind)) => {
                return Err(EventError::field(
                    "labels",
                    format!("expected an object of strings, got {kind}"),
                ));
            }
        };
        let mut attributes = match self.attributes.take() {
            None => Map::new(),
            Some(RawAttributes::Other("null")) => Map::new(),
            Some(RawAttributes::Map(map)) => map,
            Some(RawAttributes::Other(kind)) => {
                return Err(EventError::field(
                    "attributes",
                    format!("expected an object, got {kind}"),
                ));
            }
        };
        let event = Event {
            id,
            timestamp,
            category,
            action,
            outcome,
            severity,
            risk_score,
            message: self.owned(Field::Message)?,
            user_id: self.owned(Field::UserId)?,
            user_name: self.owned(Field::UserName)?,
            source_ip,
            user_agent: self.owned(Field::UserAgent)?,
            domain: self.owned(Field::Domain)?,
            url: self.owned(Field::Url)?,
            file_hash: self.owned(Field::FileHash)?,
            resource_type: self.owned(Field::ResourceType)?,
            resource_id: self.owned(Field::ResourceId)?,
            wedding_id: self.owned(Field::WeddingId)?,
            destination_ip,
            destination_host: self.owned(Field::DestinationHost)?,
            destination_port,
            record_count: self.unsigned(Field::RecordCount)?,
            labels,
            attributes: Map::new(),
            enrichment: Enrichment::default(),
        };
        // Unknown top-level fields are kept; an explicit attribute wins over a stray field.
        for (key, value) in self.stray {
            attributes.entry(key).or_insert(value);
        }
        Ok(Event {
            attributes,
            ..event
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the previous implementation, which parsed into a `Value` first and
    /// removed each field from the map. Kept here to check the one-pass parser against.
    fn via_value_tree(text: &str) -> Result<Event, EventError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EventError::whole(e.to_string()))?;
        crate::event::reference_from_value(value)
    }

    fn same(text: &str) {
        let fast = Event::from_json_str(text);
        let slow = via_value_tree(text);
        match (&fast, &slow) {
            (Ok(a), Ok(b)) => {
                let (a, mut b) = (a.clone(), b.clone());
                // Filled-in ids and times differ between two parses; compare the rest.
                if !text.contains("\"id\"") {
                    b.id.clone_from(&a.id);
                }
                if !text.contains("\"timestamp\"") {
                    b.timestamp = a.timestamp;
                }
                assert_eq!(a, b, "{text}");
            }
            (Err(a), Err(b)) if b.field.is_none() && b.reason.contains(" at line ") => {
                // Malformed JSON: both refuse it, at the same column.
                assert!(a.field.is_none(), "{text}: {a}");
                let column = b.reason.rsplit("column ").next().unwrap_or_default();
                assert!(
                    a.reason
                        .starts_with(&format!("invalid JSON at column {column}")),
                    "{text}: {a} vs {b}"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
            _ => panic!("{text}: {fast:?} vs {slow:?}"),
        }
    }

    #[test]
    fn agrees_with_the_value_tree_parser() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let cases = [
            r#"{"action":"x","severity":"low"}"#.to_owned(),
            r#"{"id":"a","timestamp":"2026-06-20T14:03:07.123+02:00","category":"payment","action":"refund","outcome":"failure","severity":"high","risk_score":7,"message":"m\u00e9","user_id":"u","user_name":"n","source_ip":"::1","user_agent":"ua","domain":"d","url":"u","file_hash":"h","resource_type":"t","resource_id":"r","wedding_id":"w","record_count":3,"labels":{"b":"2","a":"1"},"attributes":{"x":[1,{"y":null}]},"stray":1.5}"#.to_owned(),
            // Several bad fields: the first in contract order is reported.
            r#"{"user_id":7,"severity":"severe","action":""}"#.to_owned(),
            r#"{"labels":{"z":1,"a":[]},"action":"x","severity":"low"}"#.to_owned(),
            r#"{"labels":"x","action":"x","severity":"low"}"#.to_owned(),
            r#"{"labels":null,"attributes":null,"action":"x","severity":"low"}"#.to_owned(),
            r#"{"attributes":[1],"action":"x","severity":"low"}"#.to_owned(),
            // Repeated keys keep the last value.
            r#"{"action":7,"action":"x","severity":"low","severity":"bad"}"#.to_owned(),
            r#"{"action":"x","severity":"low","k":1,"k":2,"attributes":{"k":3},"attributes":{"j":4}}"#.to_owned(),
            // An explicit attribute wins over a stray top-level field, in either order.
            r#"{"action":"x","severity":"low","tenant":1,"attributes":{"tenant":2}}"#.to_owned(),
            r#"{"attributes":{"tenant":2},"action":"x","severity":"low","tenant":1}"#.to_owned(),
            r#"{"action":"x","severity":"low","risk_score":-0}"#.to_owned(),
            r#"{"action":"x","severity":"low","risk_score":1e2}"#.to_owned(),
            r#"{"action":"x","severity":"low","risk_score":18446744073709551616}"#.to_owned(),
            r#"{"action":"x","severity":"low","record_count":true}"#.to_owned(),
            r#"{"action":"x","severity":"low","id":"has space"}"#.to_owned(),
            r#"{"action":"x","severity":"low","id":"\u0041"}"#.to_owned(),
            r#"{"action":"x","severity":"low","id":""}"#.to_owned(),
            r#"{"action":"x","severity":"low","timestamp":5}"#.to_owned(),
            r#"{"action":"x","severity":"low","source_ip":{}}"#.to_owned(),
            r#"{"action":"x","severity":"low","enrichment":{"threat":{}}}"#.to_owned(),
            format!(r#"{{"action":"x","severity":"low","user_id":{deep}}}"#),
            format!(r#"{{"action":"x","severity":"low","labels":{{"a":{deep}}}}}"#),
            format!(r#"{{"action":"x","severity":"low","zzz":{deep}}}"#),
            format!(r#"{{"action":"x","severity":"low","user_id":{}}}"#, "[".repeat(126) + &"]".repeat(126)),
            format!(r#"{{"action":"x","severity":"low","user_id":{}}}"#, "[".repeat(127) + &"]".repeat(127)),
            format!(r#"{{"action":"x","severity":"low","user_id":{}}}"#, "[".repeat(128) + &"]".repeat(128)),
            r#"{"action": "x",, }"#.to_owned(),
            r#"{"action":"x","severity":"low"} trailing"#.to_owned(),
            r#"{"action":"x","severity":"low","message":"\ud800"}"#.to_owned(),
            "[1]".to_owned(),
            "[1,,]".to_owned(),
            "null".to_owned(),
            "\"s\"".to_owned(),
            "12".to_owned(),
            "true".to_owned(),
            "".to_owned(),
        ];
        for case in &cases {
            same(case);
        }
    }

    /// Random objects built from the contract's keys (repeated, misspelt, mistyped) and
    /// values of every JSON type: the one-pass parser and the value-tree reference agree on
    /// every one. Seeded, so a run is reproducible.
    mod generated {
        use proptest::prelude::*;
        use proptest::test_runner::RngSeed;

        const KEYS: &[&str] = &[
            "id",
            "timestamp",
            "category",
            "action",
            "outcome",
            "severity",
            "risk_score",
            "message",
            "user_id",
            "source_ip",
            "record_count",
            "labels",
            "attributes",
            "enrichment",
            "tenant",
            "Action",
            "",
        ];

        fn leaf() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                Just("\"login\"".to_owned()),
                Just("\"low\"".to_owned()),
                Just("\"\"".to_owned()),
                Just("\" \"".to_owned()),
                Just("\"a\\u00e9\\n\"".to_owned()),
                Just("\"2026-06-20T14:03:07Z\"".to_owned()),
                Just("\"203.0.113.7\"".to_owned()),
                (-200i64..200).prop_map(|n| n.to_string()),
                Just("1.5".to_owned()),
                Just("1e400".to_owned()),
                Just("18446744073709551616".to_owned()),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            leaf().prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((prop::sample::select(KEYS), inner), 0..3).prop_map(
                        |v| {
                            let members: Vec<String> =
                                v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                            format!("{{{}}}", members.join(","))
                        }
                    ),
                ]
            })
        }

        fn object() -> impl Strategy<Value = String> {
            prop::collection::vec((prop::sample::select(KEYS), value()), 0..10).prop_map(|v| {
                let members: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 2000,
                rng_seed: RngSeed::Fixed(20_261_201),
                ..ProptestConfig::default()
            })]
            #[test]
            fn agrees_on_generated_objects(text in object()) {
                super::same(&text);
            }
        }
    }

    #[test]
    fn value_entry_point_agrees_with_text() {
        let text = r#"{"action":"x","severity":"low","labels":{"a":"b"},"attributes":{"n":4.5e300},"t":[1]}"#;
        let a = Event::from_json_str(text).unwrap();
        let b = Event::from_json_value(serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.attributes, b.attributes);
    }

    #[test]
    fn body_items_go_on_after_a_rejected_one() {
        let items: Vec<IngestEvent> = serde_json::from_str(
            r#"[{"action":"a","severity":"low"},{"action":"b"},{"action":"c","severity":"high"}]"#,
        )
        .unwrap();
        let verdicts: Vec<bool> = items.iter().map(|i| i.0.is_ok()).collect();
        assert_eq!(verdicts, [true, false, true]);
    }
}
