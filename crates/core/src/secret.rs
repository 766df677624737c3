//! Secret references in configuration, resolved after parsing.
//!
//! A secret is written `{ env = "NAME" }` or `{ file = "path" }`, never inline, so config
//! files can be committed and shared. Resolution goes through a [`SecretLookup`] so hosts
//! and tests can supply secrets without touching the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// Where a secret comes from. `Debug` shows the variable name or path, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file; surrounding whitespace (a trailing newline) is trimmed.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        const EXPECTED: &str = "a secret reference: { env = \"NAME\" } or { file = \"path\" } (inline secrets are not accepted)";

        impl<'de> Visitor<'de> for RefVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(format!("expected {EXPECTED}, got a string")))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let key: String = map.next_key()?.ok_or_else(|| {
                    de::Error::custom(format!("expected {EXPECTED}, got an empty table"))
                })?;
                let value: String = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "expected {EXPECTED}, got several keys"
                    )));
                }
                match key.as_str() {
                    "env" => Ok(SecretRef::Env(value)),
                    "file" => Ok(SecretRef::File(value.into())),
                    other => Err(de::Error::custom(format!(
                        "unknown secret source `{other}`: expected `env` or `file`"
                    ))),
                }
            }
        }

        deserializer.deserialize_any(RefVisitor)
    }
}

/// Looks up environment-style secrets. The runtime uses [`ProcessEnv`]; tests and embedded
/// hosts can use [`SecretMap`].
pub trait SecretLookup: Send + Sync {
    /// The value of variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// Reads the process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl SecretLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An in-memory set of variables, for tests and embedded use.
#[derive(Clone, Default)]
pub struct SecretMap(HashMap<String, String>);

impl SecretMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a variable.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.0.keys().collect();
        names.sort();
        f.debug_struct("SecretMap")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl SecretLookup for SecretMap {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

impl SecretRef {
    /// Resolves the secret. `key` is the config key (e.g. `sinks.splunk.token`) named in errors;
    /// relative file paths are taken from `base_dir`.
    pub fn resolve(
        &self,
        key: &str,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<SecretString, Error> {
        let value = match self {
            SecretRef::Env(name) => lookup.var(name).ok_or_else(|| {
                Error::config(format!("`{key}`: environment variable {name} is not set"))
            })?,
            SecretRef::File(path) => {
                let full = base_dir.join(path);
                std::fs::read_to_string(&full)
                    .map_err(|e| {
                        Error::config(format!(
                            "`{key}`: cannot read secret file {}: {e}",
                            full.display()
                        ))
                    })?
                    .trim()
                    .to_owned()
            }
        };
        if value.is_empty() {
            return Err(Error::config(format!("`{key}`: the secret is empty")));
        }
        Ok(SecretString::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[derive(Deserialize)]
    struct Holder {
        token: SecretRef,
    }

    #[test]
    fn parses_env_and_file_and_refuses_inline() {
        let h: Holder = toml::from_str("token = { env = \"TOK\" }").unwrap();
        assert_eq!(h.token, SecretRef::Env("TOK".into()));
        let h: Holder = toml::from_str("token = { file = \"/run/tok\" }").unwrap();
        assert_eq!(h.token, SecretRef::File("/run/tok".into()));
        let err = toml::from_str::<Holder>("token = \"abc\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("inline secrets are not accepted"), "{err}");
        let err = toml::from_str::<Holder>("token = { vault = \"x\" }")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown secret source `vault`"), "{err}");
    }

    #[test]
    fn resolves_and_names_key() {
        let lookup = SecretMap::new().with("TOK", "s3cr3t");
        let s = SecretRef::Env("TOK".into())
            .resolve("sinks.x.token", &lookup, Path::new("."))
            .unwrap();
        assert_eq!(s.expose_secret(), "s3cr3t");
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let err = SecretRef::Env("NOPE".into())
            .resolve("sinks.x.token", &lookup, Path::new("."))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sinks.x.token`: environment variable NOPE is not set"
        );
    }
}
