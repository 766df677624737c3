//! The connector registry.
//!
//! Every connector crate registers one [`ConnectorFactory`] per connector kind:
//!
//! ```ignore
//! vowguard_core::inventory::submit! {
//!     vowguard_core::ConnectorFactory::sink("splunk_hec", "Splunk HTTP Event Collector", build)
//! }
//! ```
//!
//! The runtime looks factories up by role and `type`, and hands each a [`BuildContext`]
//! and the component's [`ComponentConfig`] (with the keys the runtime handles itself
//! removed); the factory reads it into its own serde config with [`BuildContext::parse`].
//! A host registering its own connector needs no TOML type:
//!
//! ```
//! use std::sync::Arc;
//!
//! use serde::Deserialize;
//! use vowguard_core::{BuildContext, ComponentConfig, Error, Notifier};
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct PagerConfig {
//!     number: String,
//! }
//!
//! fn build(ctx: &BuildContext<'_>, config: ComponentConfig) -> Result<Arc<dyn Notifier>, Error> {
//!     let config: PagerConfig = ctx.parse(config)?;
//!     # let _ = config.number;
//!     # unimplemented!()
//!     // ... make the notifier from `config`
//! }
//!
//! vowguard_core::inventory::submit! {
//!     vowguard_core::ConnectorFactory::notifier("house_pager", "the venue's pager system", build)
//! }
//! ```
//! rustc drops crates nothing references, so the runtime names every enabled connector
//! crate under its cargo feature; a test checks they all show up here.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::component_config::ComponentConfig;

use crate::error::Error;
use crate::secret::{SecretLookup, SecretRef};
use crate::ticket::TicketSystem;
use crate::traits::{Enricher, Notifier, Sink};
use crate::vuln::Scanner;

/// The role a connector plays, i.e. which config section it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// Adds context to events (`[enrichers.*]`).
    Enricher,
    /// Receives every event (`[sinks.*]`).
    Sink,
    /// Delivers alerts (`[notifiers.*]`).
    Notifier,
    /// Opens incident tickets and SOAR cases (`[tickets.*]`).
    Ticketing,
    /// Reports vulnerability findings (`[scanners.*]`).
    Scanner,
}

impl Role {
    /// The config section, e.g. `sinks`.
    pub fn section(self) -> &'static str {
        match self {
            Self::Enricher => "enrichers",
            Self::Sink => "sinks",
            Self::Notifier => "notifiers",
            Self::Ticketing => "tickets",
            Self::Scanner => "scanners",
        }
    }

    /// The singular name, e.g. `sink`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enricher => "enricher",
            Self::Sink => "sink",
            Self::Notifier => "notifier",
            Self::Ticketing => "ticket system",
            Self::Scanner => "scanner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds a sink from its config table.
pub type SinkBuildFn = fn(&BuildContext<'_>, ComponentConfig) -> Result<Arc<dyn Sink>, Error>;
/// Builds an enricher from its config table.
pub type EnricherBuildFn =
    fn(&BuildContext<'_>, ComponentConfig) -> Result<Arc<dyn Enricher>, Error>;
/// Builds a notifier from its config table.
pub type NotifierBuildFn =
    fn(&BuildContext<'_>, ComponentConfig) -> Result<Arc<dyn Notifier>, Error>;
/// Builds a ticket system from its config table.
pub type TicketingBuildFn =
    fn(&BuildContext<'_>, ComponentConfig) -> Result<Arc<dyn TicketSystem>, Error>;

/// Builds a vulnerability scanner from its config table.
pub type ScannerBuildFn = fn(&BuildContext<'_>, ComponentConfig) -> Result<Arc<dyn Scanner>, Error>;

/// The build function of a factory, by role.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Builder {
    /// Builds a [`Sink`].
    Sink(SinkBuildFn),
    /// Builds an [`Enricher`].
    Enricher(EnricherBuildFn),
    /// Builds a [`Notifier`].
    Notifier(NotifierBuildFn),
    /// A ticket system builder.
    Ticketing(TicketingBuildFn),
    /// Builds a [`Scanner`].
    Scanner(ScannerBuildFn),
}

/// One registered connector kind.
pub struct ConnectorFactory {
    /// The `type` name in config, e.g. `splunk_hec`.
    pub kind: &'static str,
    /// One line saying what it connects to.
    pub description: &'static str,
    /// How to build it.
    pub builder: Builder,
}

impl ConnectorFactory {
    /// A sink factory.
    pub const fn sink(kind: &'static str, description: &'static str, build: SinkBuildFn) -> Self {
        Self {
            kind,
            description,
            builder: Builder::Sink(build),
        }
    }

    /// An enricher factory.
    pub const fn enricher(
        kind: &'static str,
        description: &'static str,
        build: EnricherBuildFn,
    ) -> Self {
        Self {
            kind,
            description,
            builder: Builder::Enricher(build),
        }
    }

    /// A notifier factory.
    pub const fn notifier(
        kind: &'static str,
        description: &'static str,
        build: NotifierBuildFn,
    ) -> Self {
        Self {
            kind,
            description,
            builder: Builder::Notifier(build),
        }
    }

    /// A ticket-system factory.
    pub const fn ticketing(
        kind: &'static str,
        description: &'static str,
        build: TicketingBuildFn,
    ) -> Self {
        Self {
            kind,
            description,
            builder: Builder::Ticketing(build),
        }
    }

    /// A vulnerability-scanner factory.
    pub const fn scanner(
        kind: &'static str,
        description: &'static str,
        build: ScannerBuildFn,
    ) -> Self {
        Self {
            kind,
            description,
            builder: Builder::Scanner(build),
        }
    }

    /// The role this factory builds.
    pub fn role(&self) -> Role {
        match self.builder {
            Builder::Sink(_) => Role::Sink,
            Builder::Enricher(_) => Role::Enricher,
            Builder::Notifier(_) => Role::Notifier,
            Builder::Ticketing(_) => Role::Ticketing,
            Builder::Scanner(_) => Role::Scanner,
        }
    }
}

impl fmt::Debug for ConnectorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorFactory")
            .field("kind", &self.kind)
            .field("role", &self.role())
            .finish()
    }
}

inventory::collect!(ConnectorFactory);

/// Every registered connector, sorted by role then kind.
pub fn connectors() -> Vec<&'static ConnectorFactory> {
    let mut all: Vec<_> = inventory::iter::<ConnectorFactory>.into_iter().collect();
    all.sort_by_key(|f| (f.role(), f.kind));
    all
}

/// Finds the factory for `kind` in `role`. The error lists the kinds available for that
/// role (and says so when `kind` exists under another role).
pub fn find(role: Role, kind: &str) -> Result<&'static ConnectorFactory, Error> {
    let all = connectors();
    if let Some(found) = all.iter().find(|f| f.role() == role && f.kind == kind) {
        return Ok(found);
    }
    let available: Vec<&str> = all
        .iter()
        .filter(|f| f.role() == role)
        .map(|f| f.kind)
        .collect();
    let available = if available.is_empty() {
        "none compiled in".to_owned()
    } else {
        available.join(", ")
    };
    let elsewhere = all
        .iter()
        .find(|f| f.kind == kind)
        .map(|f| format!(" (`{kind}` is a {}, not a {role})", f.role()))
        .unwrap_or_default();
    Err(Error::config(format!(
        "unknown {role} type `{kind}`{elsewhere}; available: {available}"
    )))
}

/// What a factory gets besides its config table.
pub struct BuildContext<'a> {
    /// The component id the user chose (the table key).
    pub id: &'a str,
    /// The role being built.
    pub role: Role,
    /// The runtime's data directory.
    pub data_dir: &'a Path,
    /// Directory relative secret files are resolved against (the config file's).
    pub config_dir: &'a Path,
    /// Where `{ env = "..." }` secrets are looked up.
    pub secrets: &'a dyn SecretLookup,
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl BuildContext<'_> {
    /// The full config key of `field` in this component, e.g. `sinks.splunk.token`.
    pub fn key(&self, field: &str) -> String {
        format!("{}.{}.{field}", self.role.section(), self.id)
    }

    /// The component's own key, e.g. `sinks.splunk`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.role.section(), self.id)
    }

    /// Deserialises the component's config table; errors name the key at fault (e.g.
    /// `sinks.splunk.token`) and never quote a value from the file.
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming the key.
    pub fn parse<T: DeserializeOwned>(&self, config: ComponentConfig) -> Result<T, Error> {
        config.parse(&self.path())
    }

    /// Resolves a secret reference found at `field` of this component.
    pub fn secret(&self, field: &str, secret: &SecretRef) -> Result<SecretString, Error> {
        secret.resolve(&self.key(field), self.secrets, self.config_dir)
    }

    /// A config error about `field` of this component.
    pub fn config_error(&self, field: &str, message: impl fmt::Display) -> Error {
        Error::config(format!("`{}`: {message}", self.key(field)))
    }

    /// Places an error from a connector's builder in this component: a message naming a
    /// field, ``"`index`: must not be empty"``, names the full key instead
    /// (``"`sinks.splunk.index`: must not be empty"``); any other message is prefixed with the
    /// component (``"`sinks.splunk`: ..."``). The kind is kept.
    pub fn builder_error(&self, error: &Error) -> Error {
        qualify_error(&self.path(), error)
    }
}

/// Places an error from a connector's builder under the component key `path` (e.g.
/// `sinks.splunk`): a message naming a field, ``"`index`: must not be empty"``, names the
/// full key instead (``"`sinks.splunk.index`: must not be empty"``); a message already
/// naming a key under `path` is kept; any other message is prefixed with the component
/// (``"`sinks.splunk`: ..."``). The kind is kept.
pub fn qualify_error(path: &str, error: &Error) -> Error {
    {
        let message = error.message();
        if message
            .strip_prefix('`')
            .and_then(|rest| rest.strip_prefix(path))
            .is_some_and(|rest| rest.starts_with('`') || rest.starts_with('.'))
        {
            return error.clone();
        }
        let field = message
            .strip_prefix('`')
            .and_then(|rest| rest.split_once("`: "))
            .filter(|(field, _)| {
                !field.is_empty()
                    && field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            });
        let text = match field {
            Some((field, rest)) => format!("`{path}.{field}`: {rest}"),
            None => format!("`{path}`: {message}"),
        };
        Error::new(error.kind(), text)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{ErrorKind, SecretMap};

    #[test]
    fn builder_errors_name_the_full_key() {
        let secrets = SecretMap::new();
        let ctx = BuildContext {
            id: "splunk",
            role: Role::Sink,
            data_dir: Path::new("."),
            config_dir: Path::new("."),
            secrets: &secrets,
        };
        let e = ctx.builder_error(&Error::config("`index`: must not be empty"));
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.message(), "`sinks.splunk.index`: must not be empty");
        let e = ctx.builder_error(&Error::config(
            "`acknowledgements.timeout`: must be greater than 0",
        ));
        assert_eq!(
            e.message(),
            "`sinks.splunk.acknowledgements.timeout`: must be greater than 0"
        );
        let e = ctx.builder_error(&Error::new(ErrorKind::Internal, "no TLS roots"));
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(e.message(), "`sinks.splunk`: no TLS roots");
        let e = ctx.builder_error(&Error::config("`a b`: x"));
        assert_eq!(e.message(), "`sinks.splunk`: `a b`: x");
        let e = ctx.builder_error(&Error::config("`sinks.splunk.index`: must not be empty"));
        assert_eq!(e.message(), "`sinks.splunk.index`: must not be empty");
    }
}
