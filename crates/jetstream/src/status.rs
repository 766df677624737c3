//! What `vowguard cluster status` shows: the stream and every consumer on it.

use futures::StreamExt;
use vowguard_core::Error;

use crate::client::JetStream;

/// The event stream and its consumers, as the server sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStatus {
    /// Stream name.
    pub name: String,
    /// Events stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Copies kept (cluster replicas).
    pub replicas: usize,
    /// One entry per durable consumer, by name.
    pub consumers: Vec<ConsumerStatus>,
}

/// One consumer (a sink's or the alert path's).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStatus {
    /// Durable name.
    pub name: String,
    /// Events not yet delivered to any replica.
    pub pending: u64,
    /// Delivered, not yet acked.
    pub ack_pending: usize,
    /// Delivered more than once, not yet acked.
    pub redelivered: usize,
    /// Pull requests waiting: roughly the replicas working on this consumer right now.
    pub waiting: usize,
}

impl JetStream {
    /// Reads the stream and consumer state from the server.
    pub async fn status(&self) -> Result<StreamStatus, Error> {
        let name = self.config().stream.name.clone();
        let mut stream = self
            .context()
            .get_stream(&name)
            .await
            .map_err(|e| self.api_error("stream lookup", &e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| self.api_error("stream info", &e))?
            .clone();
        let mut consumers = Vec::new();
        let mut list = stream.consumers();
        while let Some(c) = list.next().await {
            let c = c.map_err(|e| self.api_error("consumer list", &e))?;
            consumers.push(ConsumerStatus {
                name: c.name,
                pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                waiting: c.num_waiting,
            });
        }
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(StreamStatus {
            name,
            messages: info.state.messages,
            bytes: info.state.bytes,
            replicas: info.config.num_replicas,
            consumers,
        })
    }
}
