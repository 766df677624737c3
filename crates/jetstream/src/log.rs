//! A log shared by the replicas: a JetStream stream of records (e.g. the notification
//! log of the cluster), bounded by age and count, read back newest last.

use std::time::Duration;

use async_nats::jetstream::stream::{self, RawMessageErrorKind};
use bytes::Bytes;
use vowguard_core::Error;

use crate::client::JetStream;

/// Most records [`SharedLog::recent`] reads in one call.
pub const MAX_RECENT: usize = 10_000;

/// A stream of records every replica appends to.
#[derive(Clone)]
pub struct SharedLog {
    stream: stream::Stream,
    context: async_nats::jetstream::Context,
    name: String,
    subject: String,
}

impl std::fmt::Debug for SharedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLog")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JetStream {
    /// Opens (creating it if absent) the log stream `name` on subject `name`, keeping
    /// records for `max_age` and at most `max_records` (the oldest are dropped first).
    pub async fn shared_log(
        &self,
        name: &str,
        max_age: Duration,
        max_records: i64,
    ) -> Result<SharedLog, Error> {
        if !crate::config::valid_name(name) {
            return Err(Error::config(format!(
                "log stream `{name}`: letters, digits, `-` and `_` only"
            )));
        }
        let ctx = self.context();
        let config = stream::Config {
            name: name.to_owned(),
            description: Some("vowguard shared log".into()),
            subjects: vec![name.to_owned()],
            max_age,
            max_messages: max_records,
            max_bytes: -1,
            discard: stream::DiscardPolicy::Old,
            num_replicas: self.config().stream.replicas,
            ..Default::default()
        };
        let stream = ctx
            .get_or_create_stream(config)
            .await
            .map_err(|e| self.api_error(&format!("log stream {name}"), &e))?;
        Ok(SharedLog {
            stream,
            context: ctx.clone(),
            name: name.to_owned(),
            subject: name.to_owned(),
        })
    }
}

impl SharedLog {
    /// Appends `record`, waiting for the server to store it.
    pub async fn append(&self, record: Vec<u8>) -> Result<(), Error> {
        let ack = self
            .context
            .publish(self.subject.clone(), Bytes::from(record))
            .await
            .map_err(|e| self.error("publish", &e))?;
        ack.await.map_err(|e| self.error("publish", &e))?;
        Ok(())
    }

    /// The newest `limit` records (at most [`MAX_RECENT`]), oldest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Vec<u8>>, Error> {
        let mut stream = self.stream.clone();
        let info = stream.info().await.map_err(|e| self.error("read", &e))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        if info.state.messages == 0 || last == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_RECENT) as u64;
        let from = last.saturating_sub(limit.saturating_sub(1)).max(first);
        let mut records = Vec::new();
        for sequence in from..=last {
            match self.stream.get_raw_message(sequence).await {
                Ok(message) => records.push(message.payload.to_vec()),
                // Aged out or dropped by the count bound since the info was read.
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(self.error("read", &e)),
            }
        }
        Ok(records)
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::unavailable(format!("log stream {}: {what} failed: {e}", self.name))
            .with_retry_after(crate::RETRY_AFTER)
    }
}
