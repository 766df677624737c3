//! C2SP signed notes (`c2sp.org/signed-note`) with Ed25519 signatures, and checkpoints
//! (`c2sp.org/tlog-checkpoint`).
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
//! `— <key name> base64(key id ‖ signature)`. The key id is the first four bytes of
//! SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key) for Ed25519 (signature type 0x01).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Signature type byte of Ed25519 signed-note keys.
const ED25519: u8 = 0x01;
/// The em dash that starts every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteError(pub String);

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoteError {}

fn err<T>(msg: impl Into<String>) -> Result<T, NoteError> {
    Err(NoteError(msg.into()))
}

/// Whether `name` is a valid key name: non-empty, no whitespace, no `+`.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The 4-byte key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A public key that verifies notes: its name and Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !valid_key_name(name) {
            return err(format!(
                "invalid key name {name:?}: must be non-empty, without spaces or `+`"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, &key),
            key,
        })
    }

    /// Parses a verifier key text `name+hex(keyid)+base64(0x01 ‖ public key)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return err("verifier key must be `name+keyid+base64key`");
        };
        let raw = B64
            .decode(key_b64)
            .map_err(|_| NoteError("verifier key: the key part is not base64".into()))?;
        if raw.len() != 33 || raw[0] != ED25519 {
            return err("verifier key: not an Ed25519 key (expected type 0x01 and 32 bytes)");
        }
        let bytes: [u8; 32] = raw[1..].try_into().expect("length checked");
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError("verifier key: not a valid Ed25519 point".into()))?;
        let v = Self::new(name, key)?;
        if hex(&v.id) != id_hex.to_ascii_lowercase() {
            return err(format!(
                "verifier key: key id {id_hex} does not match the name and key (expected {})",
                hex(&v.id)
            ));
        }
        Ok(v)
    }

    /// The verifier key text `name+hex(keyid)+base64(0x01 ‖ public key)`.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex(&self.id), B64.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// Verifies `note` and returns its text (everything before the blank line). Signatures
    /// by other keys are ignored; a signature by this key that does not verify, or no
    /// signature by this key at all, is refused.
    pub fn verify<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let (text, sigs) = split_note(note)?;
        let mut verified = false;
        for line in sigs {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return err(format!("malformed signature line {line:?}"));
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return err(format!("malformed signature line {line:?}"));
            };
            let Ok(raw) = B64.decode(b64) else {
                return err(format!("signature of {name} is not base64"));
            };
            if raw.len() < 4 {
                return err(format!("signature of {name} is too short"));
            }
            if name != self.name || raw[..4] != self.id {
                continue;
            }
            let Ok(sig) = Signature::from_slice(&raw[4..]) else {
                return err(format!("signature of {name} has the wrong length"));
            };
            if self.key.verify(text.as_bytes(), &sig).is_err() {
                return err(format!(
                    "signature of {name} does not verify (note altered or wrong key)"
                ));
            }
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            err(format!(
                "no signature by key {}+{} (signed with another key?)",
                self.name,
                hex(&self.id)
            ))
        }
    }
}

/// Splits a note into its text (ending in `\n`) and its signature lines.
fn split_note(note: &str) -> Result<(&str, Vec<&str>), NoteError> {
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return err("note contains control characters");
    }
    let Some(split) = note.find("\n\n") else {
        return err("note has no blank line before its signatures");
    };
    let text = &note[..=split];
    let sigs: Vec<&str> = note[split + 2..]
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    if sigs.is_empty() {
        return err("note has no signature lines");
    }
    Ok((text, sigs))
}

/// A private key that signs notes.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    verifier: NoteVerifier,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex(&self.verifier.id))
            .finish_non_exhaustive()
    }
}

/// Prefix of the private key file format (like Go's `PRIVATE+KEY+name+id+base64`).
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

impl NoteSigner {
    /// A signer for `key` under `name`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        let verifier = NoteVerifier::new(name, key.verifying_key())?;
        Ok(Self {
            name: name.to_owned(),
            key,
            verifier,
        })
    }

    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| NoteError(format!("no randomness for a new key: {e}")))?;
        Self::new(name, SigningKey::from_bytes(&seed))
    }

    /// Parses the private key text `PRIVATE+KEY+name+hex(keyid)+base64(0x01 ‖ seed)`. Errors
    /// never contain key material.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let Some(rest) = text.trim().strip_prefix(PRIVATE_PREFIX) else {
            return err(
                "signing key: expected `PRIVATE+KEY+name+keyid+base64` (from `vowguard audit keygen`)",
            );
        };
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return err("signing key: expected `PRIVATE+KEY+name+keyid+base64`");
        };
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError("signing key: the key part is not base64".into()))?;
        if raw.len() != 33 || raw[0] != ED25519 {
            return err("signing key: not an Ed25519 key");
        }
        let seed: [u8; 32] = raw[1..].try_into().expect("length checked");
        let signer = Self::new(name, SigningKey::from_bytes(&seed))?;
        if hex(&signer.verifier.id) != id_hex.to_ascii_lowercase() {
            return err("signing key: key id does not match the name and key");
        }
        Ok(signer)
    }

    /// The private key text (secret: write it with mode 0600).
    pub fn to_private_text(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name,
            hex(&self.verifier.id),
            B64.encode(raw)
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `text` (which must end in a newline and contain no blank line) into a note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') || text.contains("\n\n") || text.starts_with('\n') {
            return err("note text must end in a newline and contain no blank line");
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return err("note text contains control characters");
        }
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.verifier.id.to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }
}

/// A checkpoint's body: origin, tree size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint note text (extension lines are refused: this log writes none).
    pub fn parse_text(text: &str) -> Result<Self, NoteError> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        let [origin, size, root] = lines.as_slice() else {
            return err(format!(
                "checkpoint must have 3 lines (origin, size, root), found {}",
                lines.len()
            ));
        };
        if origin.is_empty() {
            return err("checkpoint origin is empty");
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return err(format!(
                "checkpoint size {size:?} is not a decimal without leading zeros"
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| NoteError(format!("checkpoint size {size:?} out of range")))?;
        let raw = B64
            .decode(root)
            .map_err(|_| NoteError("checkpoint root is not base64".into()))?;
        let root: Hash = raw
            .try_into()
            .map_err(|_| NoteError("checkpoint root is not 32 bytes".into()))?;
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
        })
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    vowguard_core::hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verified vector of the C2SP signed-note spec.
    const VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn the_spec_vector_verifies() {
        let v = NoteVerifier::parse(VKEY).unwrap();
        assert_eq!(v.to_text(), VKEY);
        assert_eq!(
            v.verify(SPEC_NOTE).unwrap(),
            "This is an example message.\n"
        );
    }

    #[test]
    fn the_spec_vector_fails_when_altered() {
        let v = NoteVerifier::parse(VKEY).unwrap();
        let altered = SPEC_NOTE.replace("example message", "exemple message");
        assert!(
            v.verify(&altered)
                .unwrap_err()
                .0
                .contains("does not verify")
        );
        // A key id that does not match the key is refused at parse time.
        let bad = VKEY.replace("530d903a", "530d903b");
        assert!(NoteVerifier::parse(&bad).unwrap_err().0.contains("key id"));
    }

    #[test]
    fn sign_then_verify_and_wrong_key_is_named() {
        let signer = NoteSigner::generate("vowguard.test/audit").unwrap();
        let cp = Checkpoint {
            origin: "vowguard.test/audit".into(),
            size: 12,
            root: [7; 32],
        };
        let note = signer.sign(&cp.to_text()).unwrap();
        let text = signer.verifier().verify(&note).unwrap();
        assert_eq!(Checkpoint::parse_text(text).unwrap(), cp);
        let other = NoteSigner::generate("vowguard.test/audit").unwrap();
        let e = other.verifier().verify(&note).unwrap_err();
        assert!(e.0.contains("no signature by key"), "{e}");
        // Private key text round-trips and never appears in Debug.
        let back = NoteSigner::parse(&signer.to_private_text()).unwrap();
        assert_eq!(back.verifier(), signer.verifier());
        let dbg = format!("{signer:?}");
        assert!(!dbg.contains(&signer.to_private_text()[20..]));
    }

    #[test]
    fn checkpoint_text_is_strict() {
        assert!(Checkpoint::parse_text("o\n012\nAAAA\n").is_err());
        assert!(Checkpoint::parse_text("o\n1\n").is_err());
        assert!(
            Checkpoint::parse_text("o\n1\nAAAA\n")
                .unwrap_err()
                .0
                .contains("32 bytes")
        );
    }
}
