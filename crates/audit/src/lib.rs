//! The tamper-evident audit log of vowguard.
//!
//! Every [`AuditRecord`](vowguard_core::AuditRecord) is appended (as its JSON bytes) to an
//! append-only file in `<data_dir>/audit/` and becomes a leaf of an RFC 6962 Merkle tree.
//! Appends are group-committed: concurrent callers share one `fdatasync`, and `append`
//! returns only once the records are durable. Periodically and at shutdown the writer signs
//! a checkpoint (C2SP signed note: origin, size, base64 root) with Ed25519, after checking
//! it is consistent with the previous one; checkpoints can also be published to a witness
//! file or HTTP endpoint.
//!
//! - [`AuditLog`]: the writer, an [`AuditTrail`](vowguard_core::AuditTrail).
//! - [`AuditReader`]: records in order with their index, the latest checkpoint.
//! - [`verify_dir`]: recomputes everything and names each changed, deleted, inserted or
//!   reordered entry by index.
//! - [`export_proof`] / [`verify_proof`]: `c2sp.org/tlog-proof@v1` bundles checked offline
//!   with the public key alone.
//!
//! ```
//! use vowguard_audit::{NoteSigner, NoteVerifier};
//! let signer = NoteSigner::generate("example.org/audit").unwrap();
//! let note = signer.sign("example.org/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
//! let verifier = NoteVerifier::parse(&signer.verifier().to_text()).unwrap();
//! assert!(verifier.verify(&note).is_ok());
//! ```

#![forbid(unsafe_code)]

mod config;
mod format;
mod log;
pub mod merkle;
mod note;
mod proof;
mod reader;
mod verify;
mod witness;

pub use config::{AUTO_KEY_FILE, AUTO_PUB_FILE, AuditConfig, DEFAULT_ORIGIN, write_key_pair};
pub use log::{AuditLog, AuditOptions};
pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier, hex, key_id, valid_key_name};
pub use proof::{PROOF_HEADER, ProvenEntry, export_proof, verify_proof};
pub use reader::{AuditReader, Entries, FileLeafHashes, checkpoint_ref};
pub use verify::{Problem, VerifyReport, verify_dir, verify_dir_with_progress};
pub use witness::{HttpWitness, Witness};

#[cfg(test)]
mod tests;
