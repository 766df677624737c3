//! Configuration errors name the key at fault; secrets resolve after parsing; the registry
//! finds what is compiled in.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use vowguard_core::{
    BuildContext, ConnectorFactory, EncodedEvent, Error, Event, EventOutcome, SecretMap, SecretRef,
    Sink, registry,
};
use vowguard_runtime::{Config, Environment, assemble, enabled_connector_kinds};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSinkConfig {
    endpoint: String,
    token: SecretRef,
}

#[derive(Debug)]
struct TestSink;

#[async_trait]
impl Sink for TestSink {
    fn kind(&self) -> &'static str {
        "test_sink"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        Ok(event.id.clone().into_bytes())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn build_test_sink(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Sink>, Error> {
    let config: TestSinkConfig = ctx.parse(table)?;
    let _token = ctx.secret("token", &config.token)?;
    if config.endpoint.is_empty() {
        return Err(ctx.config_error("endpoint", "must not be empty"));
    }
    Ok(Arc::new(TestSink))
}

vowguard_core::inventory::submit! {
    ConnectorFactory::sink("test_sink", "a sink for the runtime's own tests", build_test_sink)
}

fn assemble_text(text: &str, secrets: &SecretMap) -> Result<vowguard_runtime::Assembly, Error> {
    let config = Config::parse(text)?;
    assemble(
        &config,
        &Environment {
            config_dir: Path::new("/tmp"),
            secrets,
        },
    )
}

fn err(text: &str) -> String {
    assemble_text(text, &SecretMap::new().with("TOK", "t0k3n"))
        .unwrap_err()
        .to_string()
}

const GOOD: &str = r#"
data_dir = "vg-test"
[sources.in]
type = "stdin"
[sinks.siem]
type = "test_sink"
endpoint = "http://127.0.0.1:1"
token = { env = "TOK" }
batch = { max_events = 7 }
retry = { max_attempts = 3 }
"#;

#[test]
fn a_good_config_assembles_with_overrides() {
    let assembly = assemble_text(GOOD, &SecretMap::new().with("TOK", "t0k3n")).unwrap();
    assert_eq!(assembly.spec.sinks.len(), 1);
    let sink = &assembly.spec.sinks[0];
    assert_eq!(sink.id, "siem");
    assert_eq!(sink.batch.max_events, 7);
    assert_eq!(
        sink.batch.max_bytes,
        vowguard_core::BatchLimits::default().max_bytes
    );
    assert_eq!(sink.retry.max_attempts, 3);
    assert_eq!(assembly.data_dir, Path::new("/tmp/vg-test"));
}

#[test]
fn unknown_top_level_key_is_named_with_its_line() {
    let e = Config::parse("data_dir = \"x\"\nsinkz = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `sinkz`"), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_connector_key_is_named() {
    let e = err(&GOOD.replace("endpoint =", "endpont ="));
    assert!(e.contains("`sinks.siem`: unknown field `endpont`"), "{e}");
}

#[test]
fn unknown_type_lists_available_ones() {
    let e = err(&GOOD.replace("type = \"test_sink\"", "type = \"splunkk\""));
    assert!(
        e.contains("`sinks.siem.type`: unknown sink type `splunkk`"),
        "{e}"
    );
    assert!(e.contains("available: ") && e.contains("test_sink"), "{e}");
}

#[test]
fn missing_type_says_how_to_list_them() {
    let e = err(&GOOD.replace("type = \"test_sink\"\n", ""));
    assert!(
        e.contains("`sinks.siem.type`: missing; run `vowguard connectors`"),
        "{e}"
    );
}

#[test]
fn unset_secret_names_key_and_variable_but_no_value() {
    let e = assemble_text(GOOD, &SecretMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`sinks.siem.token`: environment variable TOK is not set"),
        "{e}"
    );
}

#[test]
fn inline_secret_is_refused_naming_the_key() {
    let e = err(&GOOD.replace("token = { env = \"TOK\" }", "token = \"plaintext\""));
    assert!(
        e.contains("`sinks.siem.token`: expected a secret reference"),
        "{e}"
    );
    assert!(e.contains("inline secrets are not accepted"), "{e}");
    assert!(!e.contains("plaintext"), "{e}");
}

/// Every way of writing a secret where a reference belongs, with the sentinel value.
const SENTINEL: &str = "Vg5entinel0s3cr3t";
fn inline_variants() -> Vec<String> {
    vec![
        format!("\"{SENTINEL}\""),
        format!("'{SENTINEL}'"),
        format!("\"\"\"{SENTINEL}\"\"\""),
        "12345678901234".to_owned(),
        format!("[\"{SENTINEL}\"]"),
        format!("{{ env = \"{SENTINEL}-with-dash\" }}"),
        format!("{{ env = 12345678901234 }}"),
        format!("{{ value = \"{SENTINEL}\" }}"),
        format!("{{ {SENTINEL}x = \"NAME\" }}"),
        format!("{{ env = \"NAME\", value = \"{SENTINEL}\" }}"),
        format!("{{ env = [\"{SENTINEL}\"] }}"),
    ]
}

fn assert_no_sentinel(e: &str) {
    assert!(
        !e.contains(SENTINEL),
        "the secret leaked into an error:\n{e}"
    );
    assert!(
        !e.contains("12345678901234"),
        "the secret leaked into an error:\n{e}"
    );
}

#[test]
fn admin_token_written_inline_is_named_and_never_echoed() {
    for variant in inline_variants() {
        let text = format!("[server]\nlisten = \"127.0.0.1:8686\"\nadmin_token = {variant}\n");
        let e = Config::parse(&text).unwrap_err().to_string();
        assert_no_sentinel(&e);
        assert!(e.contains("`server.admin_token"), "{variant}: {e}");
        assert!(e.contains("line 3"), "{variant}: {e}");
    }
    // A syntax error on the secret's line: toml's own rendering would quote the line.
    let e = Config::parse(&format!(
        "[server]\nlisten = \"127.0.0.1:8686\"\nadmin_token = \"{SENTINEL}\n"
    ))
    .unwrap_err()
    .to_string();
    assert_no_sentinel(&e);
    assert!(e.contains("line 3"), "{e}");
}

#[cfg(all(
    feature = "splunk",
    feature = "elasticsearch",
    feature = "datadog",
    feature = "arcsight",
    feature = "qradar",
    feature = "pagerduty",
    feature = "slack",
    feature = "teams",
    feature = "sms",
    feature = "email",
    feature = "misp",
    feature = "abuseipdb",
    feature = "virustotal",
    feature = "otx",
    feature = "recorded_future",
    feature = "threatconnect",
    feature = "wedding"
))]
#[test]
fn every_inline_secret_of_every_connector_is_named_by_key_and_never_echoed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vowguard.example.toml");
    let example = std::fs::read_to_string(path).unwrap();
    let mut keys = Vec::new();
    let mut section = String::new();
    for line in example.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            section = name.to_owned();
        }
        if line.contains("{ env = ") {
            let key = line.split('=').next().unwrap().trim();
            keys.push(format!("{section}.{key}"));
        }
    }
    assert!(keys.len() >= 14, "{keys:?}");
    for variant in inline_variants() {
        let mut text = String::new();
        for line in example.lines() {
            match line.find("{ env = ") {
                Some(at) => {
                    let end = at + line[at..].find('}').unwrap() + 1;
                    text.push_str(&format!("{}{variant}{}\n", &line[..at], &line[end..]));
                }
                None => text.push_str(&format!("{line}\n")),
            }
        }
        let e = match Config::parse(&text) {
            // Connector tables are parsed by their factories.
            Ok(config) => assemble(
                &config,
                &Environment {
                    config_dir: Path::new("/tmp"),
                    secrets: &SecretMap::new(),
                },
            )
            .unwrap_err()
            .to_string(),
            // `server.admin_token` is parsed with the file.
            Err(e) => e.to_string(),
        };
        assert_no_sentinel(&e);
        if e.contains("configuration error") {
            for key in keys.iter().filter(|k| !k.starts_with("server.")) {
                assert!(
                    e.contains(&format!("`{key}")),
                    "{variant}: {key} not named:\n{e}"
                );
            }
        } else {
            assert!(e.contains("`server.admin_token"), "{variant}: {e}");
        }
    }
}

#[test]
fn bad_common_keys_are_named() {
    let e = err(&GOOD.replace("max_events = 7", "max_evnts = 7"));
    assert!(
        e.contains("`sinks.siem.batch`: unknown field `max_evnts`"),
        "{e}"
    );
    let e = err(&format!(
        "{GOOD}\n[notifiers.x]\ntype = \"test_sink\"\nbatch = {{ max_events = 1 }}\n"
    ));
    assert!(
        e.contains("`notifiers.x.batch`: only sinks take `batch`"),
        "{e}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = format!(
        "{GOOD}\n[sinks.two]\ntype = \"nope\"\n[[routes]]\nname = \"r\"\nnotify = [\"ghost\"]\n"
    );
    let e = err(&text);
    assert!(e.starts_with("2 configuration errors:"), "{e}");
    assert!(e.contains("unknown sink type `nope`"), "{e}");
    assert!(e.contains("unknown notifier `ghost`"), "{e}");
}

#[test]
fn a_sink_type_used_as_notifier_says_so() {
    let e = err(&format!("{GOOD}\n[notifiers.x]\ntype = \"test_sink\"\n"));
    assert!(e.contains("(`test_sink` is a sink, not a notifier)"), "{e}");
}

#[test]
fn every_enabled_connector_is_registered_once() {
    let all = registry::connectors();
    for kind in enabled_connector_kinds() {
        assert!(
            all.iter().any(|f| f.kind == kind),
            "`{kind}` is enabled but not registered"
        );
    }
    let mut kinds: Vec<_> = all.iter().map(|f| f.kind).collect();
    let count = kinds.len();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds.len(),
        count,
        "connector kinds must be unique: {kinds:?}"
    );
}

#[test]
#[cfg(all(
    feature = "splunk",
    feature = "elasticsearch",
    feature = "datadog",
    feature = "arcsight",
    feature = "qradar",
    feature = "pagerduty",
    feature = "slack",
    feature = "teams",
    feature = "sms",
    feature = "email",
    feature = "misp",
    feature = "abuseipdb",
    feature = "virustotal",
    feature = "otx",
    feature = "recorded_future",
    feature = "threatconnect",
    feature = "wedding"
))]
fn the_example_config_in_the_repository_assembles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/vowguard.example.toml");
    let config = Config::load(&path).unwrap();
    let secrets = [
        "SPLUNK_HEC_TOKEN",
        "ELASTIC_API_KEY",
        "DATADOG_API_KEY",
        "PAGERDUTY_ROUTING_KEY",
        "SLACK_BOT_TOKEN",
        "TEAMS_WORKFLOW_URL",
        "TWILIO_AUTH_TOKEN",
        "SMTP_PASSWORD",
        "VOWGUARD_ADMIN_TOKEN",
        "MISP_API_KEY",
        "ABUSEIPDB_API_KEY",
        "VIRUSTOTAL_API_KEY",
        "OTX_API_KEY",
        "RF_API_TOKEN",
        "TC_SECRET_KEY",
        "PLATFORM_API_TOKEN",
    ]
    .into_iter()
    .fold(SecretMap::new(), |m, name| {
        let value = if name == "TEAMS_WORKFLOW_URL" {
            "https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=abc".to_owned()
        } else {
            format!("value-of-{name}-0123456789abcdef0123")
        };
        m.with(name, value)
    });
    let assembly = assemble(
        &config,
        &Environment {
            config_dir: Path::new("/tmp"),
            secrets: &secrets,
        },
    )
    .unwrap();
    assert_eq!(assembly.spec.sinks.len(), 5);
    assert_eq!(assembly.spec.notifiers.len(), 5);
    assert_eq!(assembly.spec.enrichers.len(), 8);
    assert!(assembly.server.is_some());
}

#[test]
fn request_concurrency_and_the_enricher_breaker_are_configured_by_key() {
    let text = format!(
        "{GOOD}request = {{ concurrency = \"adaptive\", max_concurrency = 9 }}\n\
         [pipeline.enricher_breaker]\nfailure_threshold = 3\ncooldown = \"1s\"\n"
    );
    let assembly = assemble_text(&text, &SecretMap::new().with("TOK", "t0k3n")).unwrap();
    let request = assembly.spec.sinks[0].request;
    assert_eq!(
        request.concurrency,
        vowguard_pipeline::Concurrency::Adaptive
    );
    assert_eq!(request.max_concurrency, 9);
    assert_eq!(assembly.spec.options.enricher_breaker.failure_threshold, 3);
    let e = err(&format!("{GOOD}request = {{ concurrency = 0 }}\n"));
    assert!(e.contains("`sinks.siem.request.concurrency`"), "{e}");
    let e = err(&format!("{GOOD}request = {{ concurrenc = 2 }}\n"));
    assert!(e.contains("`sinks.siem.request`"), "{e}");
}

#[cfg(feature = "splunk")]
#[test]
fn splunk_with_acknowledgement_keeps_more_batches_in_flight_unless_configured() {
    use vowguard_pipeline::{Concurrency, DEFAULT_CONCURRENCY};
    let splunk = |extra: &str| {
        format!(
            "data_dir = \"vg-test\"\n[sources.in]\ntype = \"stdin\"\n[sinks.siem]\ntype = \"splunk_hec\"\n\
             endpoint = \"http://127.0.0.1:1\"\ntoken = {{ env = \"TOK\" }}\n{extra}"
        )
    };
    let concurrency = |text: &str| {
        assemble_text(text, &SecretMap::new().with("TOK", "t0k3n"))
            .unwrap()
            .spec
            .sinks[0]
            .request
            .concurrency
    };
    assert_eq!(
        concurrency(&splunk("")),
        Concurrency::Fixed(DEFAULT_CONCURRENCY)
    );
    assert_eq!(
        concurrency(&splunk("acknowledgements = { enabled = true }\n")),
        Concurrency::Fixed(vowguard_splunk::ACK_CONCURRENCY)
    );
    assert_eq!(
        concurrency(&splunk(
            "acknowledgements = { enabled = true }\nrequest = { max_concurrency = 9 }\n"
        )),
        Concurrency::Fixed(vowguard_splunk::ACK_CONCURRENCY)
    );
    assert_eq!(
        concurrency(&splunk(
            "acknowledgements = { enabled = true }\nrequest = { concurrency = 2 }\n"
        )),
        Concurrency::Fixed(2)
    );
    assert_eq!(
        concurrency(&splunk(
            "acknowledgements = { enabled = true }\nrequest = { concurrency = \"adaptive\" }\n"
        )),
        Concurrency::Adaptive
    );
}
