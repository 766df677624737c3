//! `[audit]` in the runtime configuration, and opening the log from it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde::Deserialize;
use vowguard_core::{Error, SecretLookup, SecretRef};

use crate::log::{AuditLog, AuditOptions};
use crate::note::NoteSigner;
use crate::witness::{HttpWitness, Witness};

/// Key name (and log origin) of a key generated without `--name`.
pub const DEFAULT_ORIGIN: &str = "vowguard.local/audit";
/// File of the key generated when `audit.key` is not set, inside `<data_dir>/audit`.
pub const AUTO_KEY_FILE: &str = "signing.key";
/// The matching verifier key text.
pub const AUTO_PUB_FILE: &str = "signing.pub";

/// `[audit]`: the tamper-evident audit log in `<data_dir>/audit`.
///
/// On by default. Without `key`, a key pair is generated on first start in
/// `<data_dir>/audit/signing.key` (mode 0600) and `signing.pub`; give `key` (from
/// `vowguard audit keygen`) to keep the private key elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Whether to keep the audit log.
    pub enabled: bool,
    /// The checkpoint signing key (`PRIVATE+KEY+...` text): `{ file = ".." }` or `{ env = ".." }`.
    pub key: Option<SecretRef>,
    /// How often a checkpoint is signed while entries arrive (`checkpoint_interval = "1m"`;
    /// one is also written at shutdown).
    #[serde(with = "vowguard_core::duration")]
    pub checkpoint_interval: Duration,
    /// A file every checkpoint is also appended to (put it on another disk or share).
    pub witness_file: Option<PathBuf>,
    /// An endpoint every checkpoint note is POSTed to.
    pub witness_url: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key: None,
            checkpoint_interval: Duration::from_secs(60),
            witness_file: None,
            witness_url: None,
        }
    }
}

impl AuditConfig {
    /// Checks values that need no I/O; errors name the key.
    pub fn validate(&self) -> Result<(), Error> {
        if self.checkpoint_interval.is_zero() {
            return Err(Error::config(
                "`audit.checkpoint_interval`: must be more than 0s",
            ));
        }
        if let Some(url) = &self.witness_url {
            vowguard_http::parse_url("audit.witness_url", url)?;
        }
        Ok(())
    }

    /// The `audit` directory under `data_dir`.
    pub fn dir(data_dir: &Path) -> PathBuf {
        data_dir.join("audit")
    }

    /// The signing key: `key` resolved, or the generated key in `<data_dir>/audit` (created
    /// on first use when `create` is true).
    pub fn signer(
        &self,
        data_dir: &Path,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
        create: bool,
    ) -> Result<NoteSigner, Error> {
        let text = self.resolve_key(lookup, base_dir)?;
        Self::signer_with_key(data_dir, text.as_ref().map(|t| t.expose_secret()), create)
    }

    /// Resolves `key` (None when not configured: the generated key is used).
    pub fn resolve_key(
        &self,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<Option<secrecy::SecretString>, Error> {
        self.key
            .as_ref()
            .map(|key| key.resolve("audit.key", lookup, base_dir))
            .transpose()
    }

    /// The signing key from the resolved `key` text, or the generated key in
    /// `<data_dir>/audit` (created when missing and `create` is true).
    pub fn signer_with_key(
        data_dir: &Path,
        key_text: Option<&str>,
        create: bool,
    ) -> Result<NoteSigner, Error> {
        if let Some(text) = key_text {
            return NoteSigner::parse(text).map_err(|e| Error::config(format!("`audit.key`: {e}")));
        }
        let dir = Self::dir(data_dir);
        let path = dir.join(AUTO_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => NoteSigner::parse(&text)
                .map_err(|e| Error::config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
                let signer = NoteSigner::generate(DEFAULT_ORIGIN)
                    .map_err(|e| Error::internal(e.to_string()))?;
                write_key_pair(&dir, &signer)?;
                tracing::info!(
                    public_key = %signer.verifier().to_text(),
                    "audit: generated a checkpoint signing key in {}",
                    path.display()
                );
                Ok(signer)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::config(format!(
                "no audit signing key: `audit.key` is not set and {} does not exist",
                path.display()
            ))),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Opens the log (None when disabled). `runtime` runs the HTTP witness's POSTs.
    pub fn open(
        &self,
        data_dir: &Path,
        lookup: &dyn SecretLookup,
        base_dir: &Path,
    ) -> Result<Option<AuditLog>, Error> {
        let key = self.resolve_key(lookup, base_dir)?;
        self.open_with_key(data_dir, key.as_ref().map(|k| k.expose_secret()), base_dir)
    }

    /// [`AuditConfig::open`] with the `key` already resolved.
    pub fn open_with_key(
        &self,
        data_dir: &Path,
        key_text: Option<&str>,
        base_dir: &Path,
    ) -> Result<Option<AuditLog>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        self.validate()?;
        let signer = Self::signer_with_key(data_dir, key_text, true)?;
        let http = match &self.witness_url {
            Some(url) => {
                let url = vowguard_http::parse_url("audit.witness_url", url)?;
                let client = vowguard_http::build_client(&vowguard_http::HttpOptions::default())?;
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| Error::internal("audit.witness_url needs a tokio runtime"))?;
                Some(HttpWitness {
                    client,
                    url,
                    runtime,
                })
            }
            None => None,
        };
        let witness_file = self.witness_file.as_ref().map(|p| base_dir.join(p));
        AuditLog::open(AuditOptions {
            dir: Self::dir(data_dir),
            signer,
            checkpoint_interval: self.checkpoint_interval,
            witness: Witness {
                file: witness_file,
                http,
            },
        })
        .map(Some)
    }
}

/// Writes `signing.key` (mode 0600, refused if it exists) and `signing.pub` into `dir`.
/// Returns the two paths.
pub fn write_key_pair(dir: &Path, signer: &NoteSigner) -> Result<(PathBuf, PathBuf), Error> {
    let key_path = dir.join(AUTO_KEY_FILE);
    let pub_path = dir.join(AUTO_PUB_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| Error::io(format!("cannot create {}", key_path.display()), e))?;
    f.write_all(format!("{}\n", signer.to_private_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", key_path.display()), e))?;
    std::fs::write(&pub_path, format!("{}\n", signer.verifier().to_text()))
        .map_err(|e| Error::io(format!("cannot write {}", pub_path.display()), e))?;
    Ok((key_path, pub_path))
}
