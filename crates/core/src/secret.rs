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
#[non_exhaustive]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file; surrounding whitespace (a trailing newline) is trimmed.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretRef {
    // Every refusal describes what was found by its type only: an inline secret (or a secret
    // pasted where a variable name belongs) must never be echoed into an error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        const EXPECTED: &str = "a secret reference: { env = \"NAME\" } or { file = \"path\" } (inline secrets are not accepted)";

        fn refuse<E: de::Error>(got: &str) -> E {
            E::custom(format!("expected {EXPECTED}, got {got}"))
        }

        impl<'de> Visitor<'de> for RefVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(refuse("a string"))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
                Err(refuse("a boolean"))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(refuse("an integer"))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(refuse("an integer"))
            }

            fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretRef, E> {
                Err(refuse("an integer"))
            }

            fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretRef, E> {
                Err(refuse("an integer"))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(refuse("a float"))
            }

            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
                Err(refuse("bytes"))
            }

            fn visit_char<E: de::Error>(self, _: char) -> Result<SecretRef, E> {
                Err(refuse("a character"))
            }

            fn visit_unit<E: de::Error>(self) -> Result<SecretRef, E> {
                Err(refuse("nothing"))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
                Err(refuse("an array"))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let key: String = map
                    .next_key::<Opaque>()?
                    .ok_or_else(|| refuse("an empty table"))?
                    .0;
                let value = map.next_value::<Opaque>()?.0;
                if map.next_key::<Opaque>()?.is_some() {
                    return Err(refuse("several keys"));
                }
                match key.as_str() {
                    "env" if is_variable_name(&value) => Ok(SecretRef::Env(value)),
                    "env" => Err(de::Error::custom(
                        "`env` must name an environment variable (letters, digits and `_`, \
                         not starting with a digit), not hold the secret itself",
                    )),
                    "file" => Ok(SecretRef::File(value.into())),
                    other if is_variable_name(other) && other.len() <= 16 => {
                        Err(de::Error::custom(format!(
                            "unknown secret source `{other}`: expected `env` or `file`"
                        )))
                    }
                    _ => Err(de::Error::custom(
                        "unknown secret source: expected `env` or `file`",
                    )),
                }
            }
        }

        deserializer.deserialize_any(RefVisitor)
    }
}

/// A string read without ever quoting what was found instead (a key or value inside a
/// secret reference may be a pasted secret).
struct Opaque(String);

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OpaqueVisitor;

        impl Visitor<'_> for OpaqueVisitor {
            type Value = Opaque;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Opaque, E> {
                Ok(Opaque(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Opaque, E> {
                Ok(Opaque(value))
            }
        }

        // Anything but a string falls to the default visitor methods, whose messages quote
        // the value: replace them.
        deserializer.deserialize_string(OpaqueVisitor).map_err(|_| {
            de::Error::custom(
                "a secret reference takes a string: { env = \"NAME\" } or { file = \"path\" }",
            )
        })
    }
}

/// Whether `name` looks like an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A TOML deserialisation error split into the dotted key it concerns (when toml knows it)
/// and the message, **without** the source line toml's own rendering quotes: that line can
/// hold an inline secret. Every config error goes through here.
///
/// For the workspace's own config-file loaders (runtime, playbooks); not a stable API: it
/// names a `toml` type, which the public API does not.
#[doc(hidden)]
pub fn toml_error_parts(error: &toml::de::Error) -> (Option<String>, String) {
    let mut bare = error.clone();
    bare.set_input(None);
    let text = bare.to_string();
    let text = text.trim_end();
    if let Some((message, keys)) = text.rsplit_once("\nin `")
        && let Some(keys) = keys.strip_suffix('`')
    {
        return (Some(keys.to_owned()), message.trim_end().to_owned());
    }
    (None, text.to_owned())
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
