//! Shared state across replicas in JetStream KV: "already done" marks and leases, both
//! decided by the server (create-if-absent and compare-and-set), so two replicas never
//! both win.
//!
//! * [`SharedState::mark_once`]: the per-channel "already sent" memory. The first replica to
//!   mark a key sends the notification; every other replica sees `false` and stays quiet.
//!   Marks expire with the bucket's TTL (the memory's length).
//! * [`SharedState::acquire`] / [`SharedState::renew`] / [`SharedState::release`]: an alert group or
//!   a playbook run owned by one replica. The owner renews (CAS on the revision it holds);
//!   a replica that dies stops renewing, its lease expires with the TTL and another
//!   replica acquires it: the group is handed over.
//! * [`SharedState::entry`] / [`SharedState::compare_and_set`]: a record several replicas
//!   may write (a playbook run's shared state), each write conditional on the revision
//!   the writer read, so a writer that lost the record cannot overwrite its new owner.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::stream;
use bytes::Bytes;
use vowguard_core::Error;

use crate::client::JetStream;

/// A KV bucket shared by all replicas.
#[derive(Clone)]
pub struct SharedState {
    store: kv::Store,
    bucket: String,
    owner: String,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("bucket", &self.bucket)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A key held by this replica, at the revision it last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    revision: u64,
}

impl Lease {
    /// The KV revision this replica holds.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

impl JetStream {
    /// Opens (creating it if absent) the KV bucket `bucket`, whose entries expire after
    /// `ttl`. `owner` names this replica in the leases it takes (e.g. hostname and pid).
    pub async fn shared_state(
        &self,
        bucket: &str,
        ttl: Duration,
        owner: &str,
    ) -> Result<SharedState, Error> {
        if !crate::config::valid_name(bucket) {
            return Err(vowguard_core::Error::config(format!(
                "KV bucket `{bucket}`: letters, digits, `-` and `_` only"
            )));
        }
        let ctx = self.context();
        let store = match ctx.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => {
                // The bucket's stream, as `create_key_value` would make it; created directly
                // because that call first reads account limits in a shape NATS 2.9 lacks.
                let config = stream::Config {
                    name: format!("KV_{bucket}"),
                    description: Some("vowguard shared state".into()),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    max_messages_per_subject: 1,
                    max_age: ttl,
                    max_bytes: -1,
                    max_message_size: -1,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: stream::DiscardPolicy::New,
                    num_replicas: self.config().stream.replicas,
                    ..Default::default()
                };
                ctx.create_stream(config)
                    .await
                    .map_err(|e| self.api_error(&format!("KV bucket {bucket} create"), &e))?;
                ctx.get_key_value(bucket)
                    .await
                    .map_err(|e| self.api_error(&format!("KV bucket {bucket} open"), &e))?
            }
        };
        Ok(SharedState {
            store,
            bucket: bucket.to_owned(),
            owner: owner.to_owned(),
        })
    }
}

impl SharedState {
    /// Marks `key` done. `true` for exactly one caller across all replicas until the mark
    /// expires; `false` for everyone else.
    pub async fn mark_once(&self, key: &str) -> Result<bool, Error> {
        match self
            .store
            .create(kv_key(key), Bytes::from(self.owner.clone()))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.error("mark", &e)),
        }
    }

    /// Takes `key` for this replica: `Some` when it was free (or expired, or already ours),
    /// `None` while another replica holds it.
    pub async fn acquire(&self, key: &str) -> Result<Option<Lease>, Error> {
        let k = kv_key(key);
        match self.store.create(&k, Bytes::from(self.owner.clone())).await {
            Ok(revision) => return Ok(Some(Lease { key: k, revision })),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(self.error("acquire", &e)),
        }
        let entry = self
            .store
            .entry(&k)
            .await
            .map_err(|e| self.error("read", &e))?;
        match entry {
            Some(entry) if entry.value.as_ref() == self.owner.as_bytes() => {
                self.cas(&k, entry.revision).await
            }
            _ => Ok(None),
        }
    }

    /// The value stored under `key`, if any (a deleted or expired key has none).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let entry = self
            .store
            .entry(kv_key(key))
            .await
            .map_err(|e| self.error("read", &e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| e.value.to_vec()))
    }

    /// The value stored under `key` with its revision, if any (a deleted or expired key
    /// has none): what a [`compare_and_set`](Self::compare_and_set) expects.
    pub async fn entry(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let entry = self
            .store
            .entry(kv_key(key))
            .await
            .map_err(|e| self.error("read", &e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| (e.value.to_vec(), e.revision)))
    }

    /// Stores `value` under `key` only if the key is still at `revision` (`None`: only if
    /// it holds no value), decided by the server. `Some(new revision)` when written;
    /// `None` when another writer changed the key since.
    pub async fn compare_and_set(
        &self,
        key: &str,
        value: Vec<u8>,
        revision: Option<u64>,
    ) -> Result<Option<u64>, Error> {
        let k = kv_key(key);
        match revision {
            None => match self.store.create(&k, Bytes::from(value)).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(self.error("create", &e)),
            },
            Some(revision) => match self.store.update(&k, Bytes::from(value), revision).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
                Err(e) => Err(self.error("update", &e)),
            },
        }
    }

    /// This replica's name in the leases and marks it writes.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stores `value` under `key`, replacing what was there (last writer wins).
    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.store
            .put(kv_key(key), Bytes::from(value))
            .await
            .map(|_| ())
            .map_err(|e| self.error("write", &e))
    }

    /// Stores `value` under `key` unless a value is there: the value every replica agrees
    /// on, ours when we were first. Decided by the server (create-if-absent), so two
    /// replicas proposing different values both get the same answer.
    pub async fn agree(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, Error> {
        let k = kv_key(key);
        // A value can expire between a failed create and the read: try again (bounded).
        for _ in 0..3 {
            match self.store.create(&k, Bytes::copy_from_slice(value)).await {
                Ok(_) => return Ok(value.to_vec()),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(self.error("create", &e)),
            }
            let entry = self
                .store
                .entry(&k)
                .await
                .map_err(|e| self.error("read", &e))?;
            if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) {
                return Ok(entry.value.to_vec());
            }
        }
        Err(Error::unavailable(format!(
            "KV bucket {}: key kept changing while agreeing on its value",
            self.bucket
        ))
        .with_retry_after(crate::RETRY_AFTER))
    }

    /// Forgets `key` (for everyone), so the next [`agree`](Self::agree) decides anew.
    pub async fn forget(&self, key: &str) -> Result<(), Error> {
        self.store
            .delete(kv_key(key))
            .await
            .map_err(|e| self.error("delete", &e))
    }

    /// Adds one to the counter under `key` unless it already reached `limit`, by
    /// compare-and-set (retried on conflict), so replicas counting at once never exceed it
    /// together. `Some(new count)` when counted, `None` when the limit is reached. The
    /// counter expires with the bucket's TTL: put the window in the key.
    pub async fn count_up_to(&self, key: &str, limit: u64) -> Result<Option<u64>, Error> {
        let k = kv_key(key);
        for _ in 0..64 {
            let entry = self
                .store
                .entry(&k)
                .await
                .map_err(|e| self.error("read", &e))?;
            let (count, revision) = match entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .unwrap_or(0),
                    Some(e.revision),
                ),
                Some(e) => (0, Some(e.revision)),
                None => (0, None),
            };
            if count >= limit {
                return Ok(None);
            }
            let next = Bytes::from((count + 1).to_string());
            let written = match revision {
                None => self.store.create(&k, next).await.map_err(|e| {
                    (e.kind() == CreateErrorKind::AlreadyExists)
                        .then_some(())
                        .ok_or_else(|| self.error("create", &e))
                }),
                Some(r) => self.store.update(&k, next, r).await.map_err(|e| {
                    (e.kind() == UpdateErrorKind::WrongLastRevision)
                        .then_some(())
                        .ok_or_else(|| self.error("update", &e))
                }),
            };
            match written {
                Ok(_) => return Ok(Some(count + 1)),
                // Another replica counted first: read again.
                Err(Ok(())) => continue,
                Err(Err(e)) => return Err(e),
            }
        }
        Err(Error::unavailable(format!(
            "KV bucket {}: counter {key:?} too contended",
            self.bucket
        ))
        .with_retry_after(crate::RETRY_AFTER))
    }

    /// Deletes `key` if it is still at `revision`: false when it was not deleted
    /// (another replica wrote it meanwhile, or the server could not be asked; the
    /// bucket's TTL removes it in the end).
    pub async fn delete_at(&self, key: &str, revision: u64) -> bool {
        match self
            .store
            .delete_expect_revision(kv_key(key), Some(revision))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(bucket = %self.bucket, error = %e, "KV entry not deleted");
                false
            }
        }
    }

    /// Every value of the bucket (the newest per key), then every change as it happens:
    /// `(stored key, Some(value))` for a write, `(stored key, None)` for a delete. The
    /// stored key is the KV key (see [`storage_key`]), not the key given to the writes;
    /// keep what identifies an entry in its value. The stream ends (or yields an error)
    /// when the watch breaks: watch again.
    pub async fn watch(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<(String, Option<Vec<u8>>), Error>> + Send + use<>,
        Error,
    > {
        use futures::StreamExt;
        let bucket = self.bucket.clone();
        let watch = self
            .store
            .watch_with_history(">")
            .await
            .map_err(|e| self.error("watch", &e))?;
        Ok(watch.map(move |entry| match entry {
            Ok(entry) => Ok((
                entry.key,
                (entry.operation == kv::Operation::Put).then(|| entry.value.to_vec()),
            )),
            Err(e) => Err(
                Error::unavailable(format!("KV bucket {bucket}: watch failed: {e}"))
                    .with_retry_after(crate::RETRY_AFTER),
            ),
        }))
    }

    /// Who holds `key`, if anyone.
    pub async fn holder(&self, key: &str) -> Result<Option<String>, Error> {
        let entry = self
            .store
            .entry(kv_key(key))
            .await
            .map_err(|e| self.error("read", &e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
    }

    /// Renews a lease (restarting its TTL). `None` when another replica took it over: stop
    /// working on it.
    pub async fn renew(&self, lease: &Lease) -> Result<Option<Lease>, Error> {
        self.cas(&lease.key, lease.revision).await
    }

    /// Gives a lease up, unless another replica took it over meanwhile.
    pub async fn release(&self, lease: Lease) -> Result<(), Error> {
        match self
            .store
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(bucket = %self.bucket, error = %e, "lease not released (taken over)");
                Ok(())
            }
        }
    }

    async fn cas(&self, key: &str, revision: u64) -> Result<Option<Lease>, Error> {
        match self
            .store
            .update(key, Bytes::from(self.owner.clone()), revision)
            .await
        {
            Ok(revision) => Ok(Some(Lease {
                key: key.to_owned(),
                revision,
            })),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(self.error("update", &e)),
        }
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::unavailable(format!("KV bucket {}: {what} failed: {e}", self.bucket))
            .with_retry_after(crate::RETRY_AFTER)
    }
}

/// The KV key a key given to [`SharedState`] is stored under (as
/// [`SharedState::watch`] reports it).
pub fn storage_key(raw: &str) -> String {
    kv_key(raw)
}

/// KV keys take `[-/_=.a-zA-Z0-9]`; any other key (a dedup key built from event fields) is
/// hex-encoded. The prefixes keep the two forms apart.
pub(crate) fn kv_key(raw: &str) -> String {
    let plain = !raw.is_empty()
        && raw.len() <= 200
        && !raw.starts_with('.')
        && !raw.ends_with('.')
        && !raw.contains("..")
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'));
    if plain {
        format!("k.{raw}")
    } else {
        let mut out = String::from("h.");
        vowguard_core::hex::encode_into(raw.as_bytes(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::kv_key;

    #[test]
    fn keys_are_valid_and_distinct() {
        assert_eq!(kv_key("slack/alert-1"), "k.slack/alert-1");
        assert_eq!(kv_key("a b"), "h.612062");
        assert_ne!(kv_key("ab"), kv_key("h.6162"));
        assert_eq!(kv_key(""), "h.");
        assert!(kv_key(&"x".repeat(300)).starts_with("h."));
    }
}
