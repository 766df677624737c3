//! Elasticsearch sink for vowguard (`type = "elasticsearch"`).
//!
//! Every event becomes two lines of a bulk request: an action line naming the index
//! (from a time pattern over the event's UTC timestamp, or a data stream) with the event id
//! as `_id`, and an [ECS](https://www.elastic.co/guide/en/ecs/current/index.html) document.
//!
//! * [`config`]: the `[sinks.<id>]` table and the index pattern.
//! * [`encode`]: the pure encoder ([`BulkEncoder`], [`ecs_document`]), used by benchmarks.
//! * [`sink`]: [`ElasticsearchSink`]: `POST /_bulk`, per-item outcomes (an HTTP 200 can
//!   still carry failures), 413 splitting, and the health check.
#![forbid(unsafe_code)]

pub mod config;
pub mod encode;
pub mod sink;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Sink};

pub use config::{
    BulkAction, Compression, DEFAULT_INDEX, ElasticsearchConfig, IndexPattern, Target,
};
pub use encode::{BulkEncoder, ecs_document};
pub use sink::{Credentials, ElasticsearchSink, KIND};

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::sink(KIND, "Elasticsearch bulk API (ECS documents, index pattern or data stream)", build)
}

fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Sink>, Error> {
    let config: ElasticsearchConfig = ctx.parse(table)?;
    let credentials = match (&config.api_key, &config.username, &config.password) {
        (None, None, None) => Credentials::None,
        (Some(key), None, None) => Credentials::ApiKey(ctx.secret("api_key", key)?),
        (None, Some(username), Some(password)) => Credentials::Basic {
            username: username.clone(),
            password: ctx.secret("password", password)?,
        },
        (Some(_), _, _) => {
            return Err(ctx.config_error(
                "api_key",
                "set either `api_key` or `username` + `password`, not both",
            ));
        }
        (None, Some(_), None) => {
            return Err(ctx.config_error("password", "`username` needs a `password`"));
        }
        (None, None, Some(_)) => {
            return Err(ctx.config_error("username", "`password` needs a `username`"));
        }
    };
    let sink = ElasticsearchSink::new(&config, &credentials)
        .map_err(|e| {
            Error::config(format!(
                "`{}.{}`: {}",
                ctx.role.section(),
                ctx.id,
                e.message()
            ))
        })?
        .with_component_id(ctx.id);
    Ok(Arc::new(sink))
}
