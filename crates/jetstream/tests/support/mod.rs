//! Test helpers: the private nats-server of `vowguard_testkit::nats` and configs for it.

#![allow(dead_code, unreachable_pub)]

use vowguard_jetstream::JetStreamConfig;
pub use vowguard_testkit::nats::NatsServer;

/// A config for `server` with a test-sized stream, plus the TOML fragment `extra`.
pub fn config_with(server: &NatsServer, extra: &str) -> JetStreamConfig {
    let text = format!(
        "servers = [\"{}\"]\nrequest_timeout = \"2s\"\n{extra}",
        server.url()
    );
    toml::from_str(&text).expect("config")
}

/// A config for `server` with a test-sized stream.
pub fn config(server: &NatsServer) -> JetStreamConfig {
    config_with(server, "[stream]\nmax_bytes = 10000000\n")
}
