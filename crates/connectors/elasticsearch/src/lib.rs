//! Elasticsearch sink for vowguard (`type = "elasticsearch"`).
//!
//! Every event becomes two lines of a bulk request: an action line naming the index
//! (from a time pattern over the event's UTC timestamp, or a data stream) with the event id
//! as `_id`, and an [ECS](https://www.elastic.co/guide/en/ecs/current/index.html) document.
//!
//! * [`ElasticsearchSink::builder`] makes a sink in code, taking resolved credentials
//!   directly; [`ElasticsearchConfig`] is the `[sinks.<id>]` table, which
//!   [`ElasticsearchConfig::into_builder`] turns into the same builder once its secrets are
//!   resolved. [`IndexPattern`] compiles the index name pattern.
//! * The pure encoder ([`BulkEncoder`], [`ecs_document`]), used by benchmarks and fuzzing.
//! * [`ElasticsearchSink`]: `POST /_bulk`, per-item outcomes (an HTTP 200 can still carry
//!   failures), 413 splitting, and the health check.
//!
//! ```no_run
//! use vowguard_core::secrecy::SecretString;
//! use vowguard_elasticsearch::ElasticsearchSink;
//!
//! # fn main() -> Result<(), vowguard_core::Error> {
//! let sink = ElasticsearchSink::builder("https://es.example.org:9200")
//!     .api_key(SecretString::from("aWQ6a2V5"))
//!     .index("wedding-security-%Y-%m")
//!     .build()?;
//! # let _ = sink;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod config;
mod encode;
mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

pub use builder::ElasticsearchSinkBuilder;
pub use config::{
    BulkAction, Compression, DEFAULT_INDEX, ElasticsearchConfig, IndexPattern, Target,
};
pub use encode::{BulkEncoder, ecs_document};
pub use sink::{ElasticsearchSink, KIND};
pub use vowguard_http::{HttpOptions, HttpSinkBuilder, HttpSinkOptions};

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Elasticsearch bulk API (ECS documents, index pattern or data stream)", build)
}

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Sink>, Error> {
    let config: ElasticsearchConfig = ctx.parse(table)?;
    let api_key = config
        .api_key
        .as_ref()
        .map(|key| ctx.secret("api_key", key))
        .transpose()?;
    let password = config
        .password
        .as_ref()
        .map(|password| ctx.secret("password", password))
        .transpose()?;
    // The builder's errors already name the full key (`sinks.<id>.index`).
    let sink = config.into_builder(api_key, password).id(ctx.id).build()?;
    Ok(Arc::new(sink))
}
