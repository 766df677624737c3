//! The audit log in the runtime: opening it for a run (config-load record, final checkpoint
//! at shutdown), admin actions, and the `vowguard audit` commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use vowguard_audit::{AuditConfig, AuditLog, NoteSigner, NoteVerifier};
use vowguard_core::secrecy::{ExposeSecret as _, SecretString};
use vowguard_core::{AuditRecord, AuditTrail, Error};
use vowguard_pipeline::PipelineAudit;

/// What a run needs to open the audit log (resolved when the config is assembled).
#[derive(Debug, Clone, Default)]
pub struct AuditSetup {
    /// `[audit]`.
    pub config: AuditConfig,
    /// `audit.key` resolved (None: the generated key in `<data_dir>/audit`).
    pub key: Option<SecretString>,
    /// Directory of the config file (relative witness paths).
    pub config_dir: PathBuf,
    /// The config file and the hex SHA-256 of its bytes, for the `config_loaded` record.
    pub config_file: Option<(PathBuf, String)>,
}

impl AuditSetup {
    /// Opens the log for a run and records the configuration load. None when disabled.
    pub async fn open(&self, data_dir: &Path) -> Result<Option<AuditLog>, Error> {
        let Some(log) = self.config.open_with_key(
            data_dir,
            self.key.as_ref().map(|k| k.expose_secret()),
            &self.config_dir,
        )?
        else {
            return Ok(None);
        };
        if let Some((path, digest)) = &self.config_file {
            log.append(vec![AuditRecord::ConfigLoaded {
                at: Utc::now(),
                digest: digest.clone(),
                path: path.display().to_string(),
            }])
            .await?;
        }
        Ok(Some(log))
    }

    /// The public key checkpoints verify with (from `audit.key`, or the generated key).
    pub fn verifier(&self, data_dir: &Path) -> Result<NoteVerifier, Error> {
        let signer = AuditConfig::signer_with_key(
            data_dir,
            self.key.as_ref().map(|k| k.expose_secret()),
            false,
        )?;
        Ok(signer.verifier().clone())
    }
}

/// The pipeline's view of an open log.
pub fn pipeline_audit(log: &AuditLog, source: &str) -> PipelineAudit {
    PipelineAudit {
        trail: Arc::new(log.clone()),
        source: source.to_owned(),
    }
}

/// Writes the final checkpoint; failures are logged (the entries are durable already).
pub async fn close(log: Option<AuditLog>) {
    if let Some(log) = log {
        match log.close().await {
            Ok(Some(cp)) => tracing::info!(size = cp.size, "audit log: final checkpoint written"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "audit log: final checkpoint failed"),
        }
    }
}

/// Records a state-changing admin action (after it happened, with its result).
pub async fn admin(
    trail: Option<&Arc<dyn AuditTrail>>,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
) -> Result<(), Error> {
    let Some(trail) = trail else {
        return Ok(());
    };
    trail
        .append(vec![AuditRecord::Admin {
            at: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            result: result.to_owned(),
        }])
        .await
        .map(|_| ())
}

/// `vowguard audit keygen`: writes `signing.key` (0600) and `signing.pub` into `out`.
pub fn keygen(out: &Path, name: &str) -> Result<(PathBuf, PathBuf, String), Error> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("cannot create {}", out.display()), e))?;
    let signer = NoteSigner::generate(name).map_err(|e| Error::config(e.to_string()))?;
    let (key, public) = vowguard_audit::write_key_pair(out, &signer)?;
    Ok((key, public, signer.verifier().to_text()))
}

/// Reads a verifier key: the text itself, or a file holding it.
pub fn read_verifier(key: &str) -> Result<NoteVerifier, Error> {
    let text = if Path::new(key).is_file() {
        std::fs::read_to_string(key)
            .map_err(|e| Error::config(format!("cannot read public key file {key}: {e}")))?
    } else {
        key.to_owned()
    };
    NoteVerifier::parse(&text).map_err(|e| Error::config(format!("--key: {e}")))
}

/// An audit trail bound once a run's audit log is open: components built with the
/// configuration (the response engine) hold it before the log exists.
#[derive(Debug, Default)]
pub struct LateTrail(std::sync::OnceLock<Arc<dyn AuditTrail>>);

impl LateTrail {
    /// Binds the trail (the first binding wins).
    pub fn bind(&self, trail: Arc<dyn AuditTrail>) {
        let _ = self.0.set(trail);
    }

    /// Binds the run's log, or [`vowguard_core::NoAudit`] when auditing is disabled.
    pub fn bind_log(&self, log: &Option<AuditLog>) {
        match log {
            Some(log) => self.bind(Arc::new(log.clone())),
            None => self.bind(Arc::new(vowguard_core::NoAudit)),
        }
    }
}

#[async_trait::async_trait]
impl AuditTrail for LateTrail {
    async fn append(&self, records: Vec<AuditRecord>) -> Result<u64, Error> {
        match self.0.get() {
            Some(trail) => trail.append(records).await,
            None => Err(Error::unavailable(
                "the audit log is not open yet; the record was not written",
            )),
        }
    }
}
