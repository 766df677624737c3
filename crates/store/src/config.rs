//! `[store]`: where the report store lives and the GDPR contact it prints.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde::Deserialize;
use vowguard_core::{Error, SecretLookup, SecretRef};

/// The `[store]` config section.
///
/// ```toml
/// [store]
/// # absent: embedded SQLite at <data_dir>/store.db
/// url = { env = "VOWGUARD_STORE_URL" }     # or "postgres://vowguard@127.0.0.1/vowguard"
/// dpo_contact = "dpo@example.org, +49 30 1234567"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The database. Absent: SQLite at `<data_dir>/store.db`.
    #[serde(default)]
    pub url: Option<StoreUrl>,
    /// The data protection officer (or contact point) named in Art. 33 notices.
    #[serde(default)]
    pub dpo_contact: Option<String>,
}

/// A database URL: plain (only without a password) or a secret reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum StoreUrl {
    /// A URL in the config file; refused when it carries a password.
    Plain(String),
    /// `{ env = "NAME" }` or `{ file = "path" }`, for URLs with credentials.
    Secret(SecretRef),
}

/// A resolved store location.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (may hold a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
        }
    }
}

impl StoreConfig {
    /// Where the store is: `url` resolved (errors name `store.url`), or
    /// `<data_dir>/store.db`.
    pub fn location(
        &self,
        data_dir: &Path,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<StoreLocation, Error> {
        let url = match &self.url {
            None => return Ok(StoreLocation::Sqlite(data_dir.join("store.db"))),
            Some(StoreUrl::Plain(url)) => {
                if has_password(url) {
                    return Err(Error::config(
                        "`store.url`: a URL with a password must not be written in the config file; use `url = { env = \"NAME\" }` or `url = { file = \"path\" }`",
                    ));
                }
                url.clone()
            }
            Some(StoreUrl::Secret(secret)) => secret
                .resolve("store.url", lookup, base_dir)?
                .expose_secret()
                .to_owned(),
        };
        parse_location(&url, base_dir).map_err(|e| Error::config(format!("`store.url`: {e}")))
    }
}

/// Parses `sqlite:PATH`, `sqlite://PATH` or `postgres://...`/`postgresql://...`.
pub fn parse_location(url: &str, base_dir: &Path) -> Result<StoreLocation, String> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err("an sqlite URL needs a file path (sqlite://PATH)".into());
        }
        return Ok(StoreLocation::Sqlite(base_dir.join(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(StoreLocation::Postgres(url.to_owned()));
    }
    Err(format!(
        "unsupported database URL scheme in {}: expected sqlite:// or postgres://",
        redact_url(url)
    ))
}

/// True when `url`'s user info carries a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<url>".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?..."),
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vowguard_core::SecretMap;

    #[test]
    fn plain_urls_with_a_password_are_refused_and_secret_urls_resolve() {
        let cfg: StoreConfig =
            toml::from_str(r#"url = "postgres://u:hunter2@db/x""#).expect("parses");
        let err = cfg
            .location(Path::new("/d"), &SecretMap::new(), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`store.url`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let cfg: StoreConfig = toml::from_str(r#"url = { env = "DB" }"#).expect("parses");
        let loc = cfg
            .location(
                Path::new("/d"),
                &SecretMap::new().with("DB", "postgres://u:hunter2@db/x"),
                Path::new("/"),
            )
            .expect("resolves");
        assert!(matches!(loc, StoreLocation::Postgres(_)));
        assert!(!format!("{loc:?}").contains("hunter2"));

        let cfg = StoreConfig::default();
        assert_eq!(
            cfg.location(Path::new("/d"), &SecretMap::new(), Path::new("/"))
                .expect("default"),
            StoreLocation::Sqlite(PathBuf::from("/d/store.db"))
        );
        let cfg: StoreConfig = toml::from_str(r#"url = "mysql://db/x""#).expect("parses");
        let err = cfg
            .location(Path::new("/d"), &SecretMap::new(), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported database URL scheme"), "{err}");
    }
}
