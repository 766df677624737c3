//! The NATS sink passes the shared NATS sink behaviour suite against a real `nats-server`.

use std::path::Path;
use std::sync::Arc;

use vowguard_core::{SecretMap, SecretRef, Sink};
use vowguard_nats::{NatsConnection, NatsSink, PublishMode};
use vowguard_testkit::nats_sink_suite::{self, NatsSinkHarness, USER};

struct Harness;

impl NatsSinkHarness for Harness {
    fn name(&self) -> &str {
        "nats"
    }

    fn build(&self, url: &str, subject: &str, jetstream: bool, password: &str) -> Arc<dyn Sink> {
        let mut connection = NatsConnection::default();
        connection.servers = vec![url.to_owned()];
        connection.user = Some(USER.to_owned());
        connection.password = Some(SecretRef::Env("NATS_PASSWORD".into()));
        connection.request_timeout = std::time::Duration::from_millis(2000);
        let sink = NatsSink::builder(subject)
            .connection(connection)
            .mode(if jetstream {
                PublishMode::Jetstream
            } else {
                PublishMode::Core
            })
            .key("sinks.bus")
            .build_with(
                &SecretMap::new().with("NATS_PASSWORD", password),
                Path::new("."),
            )
            .expect("builds");
        Arc::new(sink.with_id("bus"))
    }
}

#[tokio::test]
async fn nats_sink_passes_the_behaviour_suite() {
    nats_sink_suite::run(Harness).await;
}
