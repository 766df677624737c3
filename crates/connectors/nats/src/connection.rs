//! The connection keys of the `nats` sink and source. The settings and the connecting are
//! `vowguard_jetstream::connection`, the one NATS connection code of vowguard (the queue
//! backend connects through it too), re-exported here; this module tells a component
//! table's connection keys apart from its own.

use vowguard_core::ComponentConfig;
pub use vowguard_jetstream::connection::{
    MAX_RECONNECT_DELAY, NatsClientSettings, NatsConnection, TlsSettings, reconnect_delay,
};

/// The connection keys, for telling them apart from a component's own keys.
pub(crate) const CONNECTION_KEYS: &[&str] = &[
    "servers",
    "user",
    "password",
    "token",
    "nkey_seed",
    "credentials",
    "tls",
    "request_timeout",
];

/// Splits a component table into its connection keys and the rest.
pub(crate) fn split_connection(mut table: ComponentConfig) -> (ComponentConfig, ComponentConfig) {
    let connection = table.split_off(CONNECTION_KEYS);
    (connection, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_keys_are_split_from_the_components_own() {
        let table = ComponentConfig::from_toml(
            "servers = [\"nats://h:4222\"]\ntoken = { env = \"T\" }\nsubject = \"a.b\"",
        )
        .expect("toml");
        let (connection, own) = split_connection(table);
        assert_eq!(connection.keys().collect::<Vec<_>>(), ["servers", "token"]);
        assert_eq!(own.keys().collect::<Vec<_>>(), ["subject"]);
        let parsed: NatsConnection = connection.parse("sinks.bus").expect("connection keys");
        assert_eq!(parsed.servers, ["nats://h:4222"]);
    }
}
