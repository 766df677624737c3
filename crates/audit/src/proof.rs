//! Proof bundles in the C2SP `tlog-proof` layout, verifiable offline with the public key.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the entry's bytes>
//! index <N>
//! <base64 inclusion hash>*
//!
//! <signed checkpoint note>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use vowguard_core::Error;

use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, NoteVerifier};
use crate::reader::AuditReader;

/// First line of a bundle.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Builds the bundle proving entry `index` is in the log at the latest checkpoint.
pub fn export_proof(reader: &AuditReader, index: u64) -> Result<String, Error> {
    let cp_ref = reader.latest_checkpoint()?.ok_or_else(|| {
        Error::invalid_input("the audit log has no checkpoint yet (one is written at shutdown and every checkpoint_interval)")
    })?;
    if index >= cp_ref.size {
        return Err(Error::invalid_input(format!(
            "entry {index} is not covered by the latest checkpoint (size {}); wait for the next checkpoint",
            cp_ref.size
        )));
    }
    let entry = reader.entry(index)?;
    let mut source = reader.leaf_hashes()?;
    source.truncate(cp_ref.size);
    let path = merkle::inclusion_proof(&mut source, index, cp_ref.size)
        .map_err(|e| Error::io("cannot read the audit index", e))?;
    // Never export a proof that does not verify against the checkpoint (a damaged index).
    let text = cp_ref
        .note
        .split_once("\n\n")
        .map(|(t, _)| format!("{t}\n"))
        .unwrap_or_default();
    let cp = Checkpoint::parse_text(&text).map_err(|e| Error::invalid_input(e.0))?;
    if !merkle::verify_inclusion(&merkle::leaf_hash(&entry), index, cp.size, &path, &cp.root) {
        return Err(Error::invalid_input(format!(
            "entry {index} does not verify against the latest checkpoint: the log is damaged; run `vowguard audit verify`"
        )));
    }
    let mut out = format!(
        "{PROOF_HEADER}\nextra {}\nindex {index}\n",
        B64.encode(&entry)
    );
    for h in &path {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&cp_ref.note);
    Ok(out)
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenEntry {
    /// The entry's index.
    pub index: u64,
    /// The entry's bytes.
    pub entry: Vec<u8>,
    /// The signed checkpoint it is included in.
    pub checkpoint: Checkpoint,
}

/// Verifies a bundle with only the public key: the checkpoint's signature, and the
/// inclusion of `entry` (or of the entry carried in the bundle's `extra` line) at the
/// bundle's index. When both are given they must be equal.
pub fn verify_proof(
    bundle: &str,
    verifier: &NoteVerifier,
    entry: Option<&[u8]>,
) -> Result<ProvenEntry, Error> {
    let bad = |m: &str| Error::invalid_input(format!("proof bundle: {m}"));
    let (head, note) = bundle
        .split_once("\n\n")
        .ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let mut lines = head.lines();
    if lines.next() != Some(PROOF_HEADER) {
        return Err(bad(&format!("first line must be `{PROOF_HEADER}`")));
    }
    let mut extra = None;
    let mut line = lines.next();
    if let Some(rest) = line.and_then(|l| l.strip_prefix("extra ")) {
        extra = Some(B64.decode(rest).map_err(|_| bad("`extra` is not base64"))?);
        line = lines.next();
    }
    let index: u64 = line
        .and_then(|l| l.strip_prefix("index "))
        .ok_or_else(|| bad("missing `index N` line"))?
        .parse()
        .map_err(|_| bad("`index` is not a number"))?;
    let path = lines
        .map(|l| {
            B64.decode(l)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| bad("an inclusion hash is not 32 bytes of base64"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = verifier
        .verify(note)
        .map_err(|e| bad(&format!("checkpoint: {e}")))?;
    let checkpoint = Checkpoint::parse_text(text).map_err(|e| bad(&e.0))?;
    let entry = match (entry, extra) {
        (Some(given), Some(carried)) if given != carried.as_slice() => {
            return Err(bad("the entry given differs from the entry in the bundle"));
        }
        (Some(given), _) => given.to_vec(),
        (None, Some(carried)) => carried,
        (None, None) => {
            return Err(bad(
                "no entry: pass --entry FILE (the bundle has no `extra`)",
            ));
        }
    };
    if !merkle::verify_inclusion(
        &merkle::leaf_hash(&entry),
        index,
        checkpoint.size,
        &path,
        &checkpoint.root,
    ) {
        return Err(bad(&format!(
            "entry {index} is not included in the checkpoint of size {} (entry or proof altered)",
            checkpoint.size
        )));
    }
    Ok(ProvenEntry {
        index,
        entry,
        checkpoint,
    })
}
