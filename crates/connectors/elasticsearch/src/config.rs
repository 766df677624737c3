//! Configuration of the `elasticsearch` sink.
//!
//! ```toml
//! [sinks.es]
//! type = "elasticsearch"
//! endpoint = "https://es.example.org:9200"
//! api_key = { env = "ES_API_KEY" }          # base64 of `id:key`; or username + password
//! index = "wedding-security-%Y-%m"          # or data_stream = "logs-vowguard-default"
//! ```

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;

/// The index pattern used when neither `index` nor `data_stream` is set.
pub const DEFAULT_INDEX: &str = "wedding-security-%Y-%m";

/// The `[sinks.<id>]` table of an `elasticsearch` sink (`type`, `batch` and `retry` are
/// handled by the runtime and are not part of it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ElasticsearchConfig {
    /// Base URL of the cluster, e.g. `https://es.example.org:9200` (a path prefix is kept).
    pub endpoint: String,
    /// API key credentials: the base64 of `id:key` (what Elasticsearch returns as
    /// `encoded`), sent as `Authorization: ApiKey <value>`. Excludes `username`/`password`.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// User for HTTP Basic authentication (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for HTTP Basic authentication (with `username`).
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Index name pattern over the event's timestamp (UTC): `%Y` year, `%m` month, `%d` day,
    /// `%H` hour, `%%` a literal `%`. Default [`DEFAULT_INDEX`]. Excludes `data_stream`.
    #[serde(default)]
    pub index: Option<String>,
    /// Write to this data stream instead of an index: the action is always `create`.
    #[serde(default)]
    pub data_stream: Option<String>,
    /// Bulk action: `index` (default; overwrites a resent event with the same `_id`) or
    /// `create` (a resent event answers 409, counted as delivered).
    #[serde(default)]
    pub action: Option<BulkAction>,
    /// Ingest pipeline to run the documents through (`?pipeline=`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Request body compression: `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

impl ElasticsearchConfig {
    /// A config for `endpoint` with every other key at its default.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: None,
            username: None,
            password: None,
            index: None,
            data_stream: None,
            action: None,
            pipeline: None,
            compression: Compression::None,
            http: HttpOptions::default(),
        }
    }

    /// Checks the combination of keys and compiles the target (index pattern or data stream).
    pub fn target(&self) -> Result<Target, Error> {
        match (&self.index, &self.data_stream) {
            (Some(_), Some(_)) => Err(Error::config(
                "`index` and `data_stream` exclude each other: set one",
            )),
            (None, Some(stream)) => {
                if self.action == Some(BulkAction::Index) {
                    return Err(Error::config(
                        "`action`: data streams accept only `create`; remove `action` or set it to \"create\"",
                    ));
                }
                validate_index_name("data_stream", stream)?;
                Ok(Target::DataStream(stream.clone()))
            }
            (index, None) => {
                let pattern = IndexPattern::parse(index.as_deref().unwrap_or(DEFAULT_INDEX))?;
                Ok(Target::Index {
                    pattern,
                    action: self.action.unwrap_or_default(),
                })
            }
        }
    }
}

/// The bulk action written in each action line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BulkAction {
    /// `index`: create or overwrite the document with this `_id`.
    #[default]
    Index,
    /// `create`: create only; an existing `_id` answers 409.
    Create,
}

impl BulkAction {
    /// The action name as written in the bulk body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Create => "create",
        }
    }
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Compression {
    /// Send the body as is.
    #[default]
    None,
    /// Gzip the body (`Content-Encoding: gzip`).
    Gzip,
}

/// Where documents go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A time-based index name with the configured action.
    Index {
        /// The compiled index pattern.
        pattern: IndexPattern,
        /// `index` or `create`.
        action: BulkAction,
    },
    /// A data stream (always `create`).
    DataStream(String),
}

impl Target {
    /// The bulk action used for this target.
    pub fn action(&self) -> BulkAction {
        match self {
            Self::Index { action, .. } => *action,
            Self::DataStream(_) => BulkAction::Create,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Year,
    Month,
    Day,
    Hour,
}

/// A compiled index name pattern: literal text plus `%Y`, `%m`, `%d`, `%H` (UTC) and `%%`.
/// Any other `%` code is refused when the pattern is parsed, so a typo is a config error,
/// not an index named `wedding-%y`.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexPattern {
    source: String,
    pieces: Vec<Piece>,
}

impl fmt::Debug for IndexPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IndexPattern").field(&self.source).finish()
    }
}

impl IndexPattern {
    /// Compiles `pattern`; the error names the unknown code or the invalid character.
    pub fn parse(pattern: &str) -> Result<Self, Error> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let piece = match chars.next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('Y') => Piece::Year,
                Some('m') => Piece::Month,
                Some('d') => Piece::Day,
                Some('H') => Piece::Hour,
                Some(other) => {
                    return Err(Error::config(format!(
                        "`index`: unknown pattern code `%{other}` in {pattern:?}; supported: %Y %m %d %H %%"
                    )));
                }
                None => {
                    return Err(Error::config(format!(
                        "`index`: pattern {pattern:?} ends with a lone `%`; write `%%` for a literal %"
                    )));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let compiled = Self {
            source: pattern.to_owned(),
            pieces,
        };
        // Check the rules on a sample expansion (the codes only produce digits).
        validate_index_name("index", &compiled.expand(&DateTime::UNIX_EPOCH))?;
        Ok(compiled)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The index name for an event at `at` (UTC).
    pub fn expand(&self, at: &DateTime<Utc>) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.source.len() + 8);
        for piece in &self.pieces {
            // Writing to a String cannot fail.
            let _ = match piece {
                Piece::Literal(s) => {
                    out.push_str(s);
                    Ok(())
                }
                Piece::Year => write!(out, "{:04}", at.year()),
                Piece::Month => write!(out, "{:02}", at.month()),
                Piece::Day => write!(out, "{:02}", at.day()),
                Piece::Hour => write!(out, "{:02}", at.hour()),
            };
        }
        out
    }
}

/// Elasticsearch's index / data stream naming rules.
fn validate_index_name(key: &str, name: &str) -> Result<(), Error> {
    let fail = |why: &str| {
        Err(Error::config(format!(
            "`{key}`: {name:?} is not a valid index name: {why}"
        )))
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > 255 {
        return fail("longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return fail("`.` and `..` are reserved");
    }
    if name.starts_with(['-', '_', '+']) {
        return fail("it must not start with -, _ or +");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_uppercase() || c.is_control() || "\\/*?\"<>| ,#:".contains(*c))
    {
        return fail(&format!(
            "it contains {bad:?} (names are lowercase, without \\ / * ? \" < > | space , # :)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn expands_codes_in_utc() {
        let p = IndexPattern::parse("wedding-security-%Y-%m").unwrap();
        assert_eq!(
            p.expand(&at("2026-06-20T14:03:07Z")),
            "wedding-security-2026-06"
        );
        // 00:30 on 1 July in Paris is still June in UTC.
        assert_eq!(
            p.expand(&at("2026-07-01T00:30:00+02:00")),
            "wedding-security-2026-06"
        );
        let p = IndexPattern::parse("ws-%Y.%m.%d-%H-100%%").unwrap();
        assert_eq!(
            p.expand(&at("2026-01-02T03:04:05Z")),
            "ws-2026.01.02-03-100%"
        );
        let p = IndexPattern::parse("static").unwrap();
        assert_eq!(p.expand(&at("2026-01-02T03:04:05Z")), "static");
    }

    #[test]
    fn refuses_unknown_codes_and_bad_names() {
        for (pattern, needle) in [
            ("ws-%y", "unknown pattern code `%y`"),
            ("ws-%M", "unknown pattern code `%M`"),
            ("ws-%", "lone `%`"),
            ("Wedding-%Y", "lowercase"),
            ("ws %Y", "contains ' '"),
            ("_ws", "must not start"),
            ("", "empty"),
        ] {
            let err = IndexPattern::parse(pattern).unwrap_err().to_string();
            assert!(err.contains(needle), "{pattern}: {err}");
            assert!(err.starts_with("`index`"), "{err}");
        }
    }

    #[test]
    fn target_rules() {
        let mut c = ElasticsearchConfig::new("http://x");
        assert_eq!(c.target().unwrap().action(), BulkAction::Index);
        c.data_stream = Some("logs-vowguard-default".into());
        assert_eq!(
            c.target().unwrap(),
            Target::DataStream("logs-vowguard-default".into())
        );
        c.action = Some(BulkAction::Index);
        assert!(
            c.target()
                .unwrap_err()
                .to_string()
                .contains("accept only `create`")
        );
        c.action = None;
        c.index = Some("x".into());
        assert!(
            c.target()
                .unwrap_err()
                .to_string()
                .contains("exclude each other")
        );
    }
}
