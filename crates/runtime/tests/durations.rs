//! One duration convention across the configuration: every duration is a humantime string
//! under a key without a unit (`timeout = "10s"`); the integer keys of earlier releases
//! (`timeout_ms = 10000`) load for one release with a warning; both spellings at once, or a
//! bad value, are errors naming the full key.
//!
//! `KITCHEN_SINK` holds every duration key of [`DURATION_KEYS`] in its new spelling: a key
//! added to that list without a sample here fails
//! `every_old_spelling_loads_with_a_warning_and_gives_the_same_config`, and a config struct
//! that grows a `*_ms`/`*_secs` field fails `no_config_struct_has_a_unit_suffixed_field`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vowguard_core::SecretMap;
use vowguard_core::duration::{DeprecatedKey, Unit};
use vowguard_runtime::deprecated::DURATION_KEYS;
use vowguard_runtime::{Config, Environment, assemble};

const KITCHEN_SINK: &str = r#"
data_dir = "vg-durations"

[pipeline]
enrichment_budget = "8s"
shutdown_timeout = "45s"
enricher_breaker = { failure_threshold = 3, cooldown = "20s" }

[telemetry.otlp]
endpoint = "http://127.0.0.1:4318"
timeout = "7s"

[queue]
type = "jetstream"
request_timeout = "4s"
[queue.stream]
max_age = "3d"
duplicate_window = "90s"
[queue.consumers]
ack_wait = "40s"

[sources.bus_in]
type = "nats"
servers = ["nats://127.0.0.1:4222"]
stream = "PLATFORM"
consumer = "vowguard"
ack_wait = "50s"
request_timeout = "3s"

[audit]
checkpoint_interval = "2m"

[enrichers.intel]
type = "misp"
url = "https://misp.example.org"
api_key = { env = "KEY" }
cache = { ttl = "2h", negative_ttl = "5m" }
limits = { timeout = "1500ms" }
http = { timeout = "9s", connect_timeout = "2s" }

[enrichers.wedding]
type = "wedding_context"
provider = "http"
base_url = "https://platform.example.org/internal"
cache_ttl = "4m"
timeout = "1200ms"

[enrichers.wedding_file]
type = "wedding_context"
provider = "file"
path = "weddings.json"
check_interval = "3s"

[enrichers.patterns]
type = "attack_patterns"
rules.failed_login_brute_force = { threshold = 10, window = "10m" }

[sinks.splunk]
type = "splunk_hec"
endpoint = "https://splunk.example.org:8088"
token = { env = "KEY" }
acknowledgements = { enabled = true, poll_interval = "250ms", timeout = "20s" }
batch = { max_wait = "750ms" }
retry = { initial_backoff = "100ms", max_backoff = "20s", max_retry_after = "2m" }
breaker = { initial_cooldown = "2s", max_cooldown = "2m" }
http = { timeout = "11s", connect_timeout = "3s" }

[sinks.arcsight]
type = "arcsight"
[sinks.arcsight.syslog]
address = "arcsight.example.org:6514"
connect_timeout = "4s"
write_timeout = "6s"

[sinks.bus]
type = "nats"
servers = ["nats://127.0.0.1:4222"]
subject = "vowguard.events"
request_timeout = "2s"

[notifiers.mail]
type = "email"
host = "smtp.example.org"
from = "vowguard@example.org"
to = ["security@example.org"]
timeout = "12s"
retry = { initial_backoff = "300ms", max_backoff = "10s", max_retry_after = "1m" }

[notifiers.pager]
type = "pagerduty"
routing_key = { env = "KEY" }
http = { timeout = "8s", connect_timeout = "1s" }

[tickets.jira]
type = "jira"
url = "https://example.atlassian.net"
email = "secops-bot@example.org"
api_token = { env = "KEY" }
project = "SEC"
search_settle = "20s"
retry = { initial_backoff = "400ms", max_backoff = "15s", max_retry_after = "3m" }
http = { timeout = "13s", connect_timeout = "4s" }

[scanners.qualys]
type = "qualys"
url = "https://qualysapi.qualys.eu"
username = "vowguard"
password = { env = "KEY" }
refresh = "2h"
max_quota_wait = "4m"
kb_cache_ttl = "12h"
retry = { initial_backoff = "500ms", max_backoff = "25s", max_retry_after = "4m" }
http = { timeout = "4m", connect_timeout = "6s" }

[scanners.tenable]
type = "tenable"
access_key = { env = "KEY" }
secret_key = { env = "KEY" }
poll = { initial = "2s", max = "20s", max_wait = "30m" }

[playbooks.lockdown]
version = 1
deadline = "2h"
trigger = { min_priority = "P1" }

[[playbooks.lockdown.steps]]
id = "tell"
kind = "notify"
notifier = "mail"
message = "incident {{ incident.id }}"
timeout = "45s"
retry = { max_attempts = 2, initial_backoff = "150ms", max_backoff = "5s", max_retry_after = "30s" }

[[playbooks.lockdown.steps]]
id = "approve"
kind = "approval"
approvers = ["lead"]
deadline = "20m"

[webhooks.stripe]
type = "stripe"
secret = { env = "KEY" }
tolerance = "4m"
body_timeout = "8s"
replay_window = "2d"
"#;

/// Removes what `assemble` cannot take together with the rest (a JetStream queue refuses
/// scanners at load) or needs a server for.
fn assemblable(text: &str) -> String {
    let mut doc: toml::Table = toml::from_str(text).unwrap();
    doc.remove("queue");
    doc.remove("telemetry");
    doc.remove("sources");
    doc.remove("webhooks");
    doc.insert(
        "sources".into(),
        toml::from_str("in = { type = \"stdin\" }").unwrap(),
    );
    toml::to_string(&doc).unwrap()
}

/// The key at the end of `path` (a `DeprecatedKey` pattern) rewritten back into the old
/// integer spelling wherever it occurs; returns how many were rewritten.
fn downgrade(table: &mut toml::Table, segments: &[&str], key: &DeprecatedKey) -> usize {
    match segments {
        [] => 0,
        [_] => {
            let Some(value) = table.remove(key.new_key()) else {
                return 0;
            };
            let text = value.as_str().expect("a duration is a string");
            let d = vowguard_core::duration::parse(text).unwrap();
            let amount = match key.unit() {
                Unit::Millis => d.as_millis() as u64,
                Unit::Secs => {
                    assert_eq!(d.subsec_nanos(), 0, "{}: whole seconds", key.path);
                    d.as_secs()
                }
            };
            table.insert(
                key.old_key().into(),
                toml::Value::Integer(i64::try_from(amount).unwrap()),
            );
            1
        }
        [segment, rest @ ..] => {
            let mut n = 0;
            for (name, child) in table.iter_mut() {
                if *segment != "*" && segment != name {
                    continue;
                }
                n += match child {
                    toml::Value::Table(t) => downgrade(t, rest, key),
                    toml::Value::Array(items) => items
                        .iter_mut()
                        .filter_map(toml::Value::as_table_mut)
                        .map(|t| downgrade(t, rest, key))
                        .sum(),
                    _ => 0,
                };
            }
            n
        }
    }
}

fn parsed_without_warnings(text: &str) -> (String, Vec<String>) {
    let mut config = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let warnings = std::mem::take(&mut config.deprecation_warnings);
    (format!("{config:?}"), warnings)
}

#[test]
fn every_old_spelling_loads_with_a_warning_and_gives_the_same_config() {
    let (want, warnings) = parsed_without_warnings(KITCHEN_SINK);
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut all_old: toml::Table = toml::from_str(KITCHEN_SINK).unwrap();
    let mut total = 0;
    for key in DURATION_KEYS {
        let segments: Vec<&str> = key.path.split('.').collect();
        let mut doc: toml::Table = toml::from_str(KITCHEN_SINK).unwrap();
        let rewritten = downgrade(&mut doc, &segments, key);
        assert!(
            rewritten > 0,
            "`{}` has no sample in KITCHEN_SINK: add its new spelling `{}`",
            key.path,
            key.new_key()
        );
        total += downgrade(&mut all_old, &segments, key);
        let text = toml::to_string(&doc).unwrap();
        let (got, warnings) = parsed_without_warnings(&text);
        assert_eq!(got, want, "{}", key.path);
        assert_eq!(warnings.len(), rewritten, "{}: {warnings:?}", key.path);
        for warning in &warnings {
            assert!(
                warning.contains(&format!(".{} is deprecated: use ", key.old_key()))
                    && warning.contains(&format!(".{} = \"", key.new_key())),
                "{}: {warning}",
                key.path
            );
        }
    }
    // Everything old at once: the same config, one warning per key.
    let text = toml::to_string(&all_old).unwrap();
    assert!(!text.contains("timeout = \""), "{text}");
    let (got, warnings) = parsed_without_warnings(&text);
    assert_eq!(got, want);
    assert_eq!(warnings.len(), total, "{warnings:?}");
    assert!(
        warnings.contains(
            &"sinks.splunk.acknowledgements.poll_interval_ms is deprecated: use sinks.splunk.acknowledgements.poll_interval = \"250ms\"".to_owned()
        ),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(
            &"playbooks.lockdown.steps[1].deadline_seconds is deprecated: use playbooks.lockdown.steps[1].deadline = \"20m\"".to_owned()
        ),
        "{warnings:?}"
    );
}

fn secrets() -> SecretMap {
    SecretMap::new().with("KEY", "k3y-0123456789abcdef0123456789abcdef")
}

fn assemble_text(
    text: &str,
    dir: &Path,
) -> Result<vowguard_runtime::Assembly, vowguard_core::Error> {
    let config = Config::parse(text)?;
    assemble(
        &config,
        &Environment {
            config_dir: dir,
            secrets: &secrets(),
        },
    )
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weddings.json"), "[]").unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Every connector takes its new keys: the kitchen sink assembles, old spelling or new,
/// and the values arrive where they are used.
#[test]
fn the_kitchen_sink_assembles_in_both_spellings() {
    let (_keep, dir) = scratch();
    let text = assemblable(KITCHEN_SINK);
    let assembly = assemble_text(&text, &dir).unwrap_or_else(|e| panic!("{e}"));
    let splunk = assembly
        .spec
        .sinks
        .iter()
        .find(|s| s.id == "splunk")
        .unwrap();
    assert_eq!(splunk.batch.max_wait, Duration::from_millis(750));
    assert_eq!(splunk.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(splunk.retry.max_retry_after, Duration::from_secs(120));
    assert_eq!(splunk.breaker.max_cooldown, Duration::from_secs(120));
    assert_eq!(
        assembly.spec.options.enrichment_budget,
        Duration::from_secs(8)
    );
    assert_eq!(
        assembly.spec.options.enricher_breaker.cooldown,
        Duration::from_secs(20)
    );

    let mut old: toml::Table = toml::from_str(&text).unwrap();
    for key in DURATION_KEYS {
        let segments: Vec<&str> = key.path.split('.').collect();
        downgrade(&mut old, &segments, key);
    }
    let old = toml::to_string(&old).unwrap();
    assert!(old.contains("poll_interval_ms = 250"), "{old}");
    let assembly = assemble_text(&old, &dir).unwrap_or_else(|e| panic!("{e}"));
    let splunk = assembly
        .spec
        .sinks
        .iter()
        .find(|s| s.id == "splunk")
        .unwrap();
    assert_eq!(splunk.batch.max_wait, Duration::from_millis(750));
    assert_eq!(splunk.retry.max_backoff, Duration::from_secs(20));
}

#[test]
fn both_spellings_at_once_are_an_error_naming_both_keys() {
    for (text, old, new) in [
        (
            "[pipeline]\nshutdown_timeout = \"5s\"\nshutdown_timeout_ms = 5000\n",
            "pipeline.shutdown_timeout_ms",
            "pipeline.shutdown_timeout",
        ),
        (
            "[sinks.splunk]\ntype = \"splunk_hec\"\nretry = { initial_backoff_ms = 5, initial_backoff = \"5ms\" }\n",
            "sinks.splunk.retry.initial_backoff_ms",
            "sinks.splunk.retry.initial_backoff",
        ),
        (
            "[queue]\ntype = \"jetstream\"\n[queue.consumers]\nack_wait_secs = 30\nack_wait = \"30s\"\n",
            "queue.consumers.ack_wait_secs",
            "queue.consumers.ack_wait",
        ),
    ] {
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(
            e.contains(&format!("`{old}` and `{new}` are both set")),
            "{text}: {e}"
        );
    }
}

#[test]
fn a_bad_duration_is_an_error_naming_the_full_key_and_what_is_accepted() {
    let accepted = "\"10s\", \"250ms\", \"2m\"";
    // Typed sections: with the line. (`[queue]` is a tagged enum, whose errors serde
    // reports at `queue`, the value quoted.)
    for (text, key) in [
        (
            "[pipeline]\nshutdown_timeout = 30\n",
            "pipeline.shutdown_timeout",
        ),
        (
            "[pipeline]\nshutdown_timeout = \"30\"\n",
            "pipeline.shutdown_timeout",
        ),
        (
            "[audit]\ncheckpoint_interval = \"soon\"\n",
            "audit.checkpoint_interval",
        ),
    ] {
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
        assert!(e.contains(accepted), "{text}: {e}");
        assert!(e.contains("line "), "{text}: {e}");
    }
    // An old key whose value is not a whole number.
    let e = Config::parse("[pipeline]\nshutdown_timeout_ms = \"30s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`pipeline.shutdown_timeout_ms`: must be a whole number of milliseconds"),
        "{e}"
    );
    assert!(e.contains("`pipeline.shutdown_timeout = \"250ms\"`"), "{e}");
    // Connector tables: the connector names its key under the component.
    let (_keep, dir) = scratch();
    for (from, to, key) in [
        (
            "poll_interval = \"250ms\"",
            "poll_interval = 250",
            "sinks.splunk.acknowledgements.poll_interval",
        ),
        (
            "write_timeout = \"6s\"",
            "write_timeout = \"6 s please\"",
            "sinks.arcsight.syslog.write_timeout",
        ),
        (
            "search_settle = \"20s\"",
            "search_settle = 20",
            "tickets.jira.search_settle",
        ),
        (
            "refresh = \"2h\"",
            "refresh = 7200",
            "scanners.qualys.refresh",
        ),
        (
            "retry = { initial_backoff = \"300ms\"",
            "retry = { initial_backoff = 300",
            "notifiers.mail.retry.initial_backoff",
        ),
    ] {
        assert!(KITCHEN_SINK.contains(from), "{from}");
        let text = assemblable(&KITCHEN_SINK.replacen(from, to, 1));
        let e = assemble_text(&text, &dir).err().unwrap().to_string();
        assert!(e.contains(&format!("`{key}`")), "{to}: {e}");
        assert!(
            e.contains("\"250ms\"") || e.contains("\"10s\""),
            "{to}: {e}"
        );
    }
}

#[test]
fn zero_where_meaningless_is_refused_naming_the_key() {
    let (_keep, dir) = scratch();
    for (from, to, key) in [
        (
            "timeout = \"20s\" }",
            "timeout = \"0s\" }",
            "sinks.splunk.acknowledgements.timeout",
        ),
        (
            "timeout = \"12s\"",
            "timeout = \"0s\"",
            "notifiers.mail.timeout",
        ),
        (
            "checkpoint_interval = \"2m\"",
            "checkpoint_interval = \"0s\"",
            "audit.checkpoint_interval",
        ),
        (
            "timeout = \"1200ms\"",
            "timeout = \"0ms\"",
            "enrichers.wedding.timeout",
        ),
        (
            "refresh = \"2h\"",
            "refresh = \"0s\"",
            "scanners.qualys.refresh",
        ),
    ] {
        assert!(KITCHEN_SINK.contains(from), "{from}");
        let text = assemblable(&KITCHEN_SINK.replacen(from, to, 1));
        let e = assemble_text(&text, &dir)
            .err()
            .unwrap_or_else(|| panic!("{to}: accepted"))
            .to_string();
        assert!(e.contains(key), "{to}: {e}");
    }
    for (text, key) in [
        (
            "[queue]\ntype = \"jetstream\"\n[queue.consumers]\nack_wait = \"0s\"\n",
            "queue.consumers.ack_wait",
        ),
        (
            "[queue]\ntype = \"jetstream\"\nrequest_timeout = \"0s\"\n",
            "queue.request_timeout",
        ),
    ] {
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

/// The grep test: no struct that deserialises configuration has a field with a unit suffix
/// (`_ms`, `_secs`, `_seconds`); a duration is a `Duration` read by
/// `vowguard_core::duration`. The exceptions are records and reports, not configuration.
#[test]
fn no_config_struct_has_a_unit_suffixed_field() {
    // Deserialised, but not from the config file: audit records, delivery outcomes, vendor
    // answers, the router's group snapshots (admin API) and the report store's latency
    // objectives (constants, shown in reports).
    const NOT_CONFIG: &[&str] = &[
        "AuditRecord",
        "DeliveryOutcome",
        "ErrorBody",
        "GroupSnapshot",
        "Objective",
        "SharedGroup",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    let mut dirs = vec![root.join("crates")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "tests" | "examples" | "benches" | "target") {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 100, "{} files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut deserialized: Option<String> = None;
        let mut derive_deserialize = false;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            if line.starts_with("#[derive(") {
                derive_deserialize = line.contains("Deserialize");
                continue;
            }
            if let Some(rest) = line
                .strip_prefix("pub struct ")
                .or_else(|| line.strip_prefix("pub(crate) struct "))
                .or_else(|| line.strip_prefix("struct "))
                .or_else(|| line.strip_prefix("pub enum "))
                .or_else(|| line.strip_prefix("enum "))
            {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                deserialized =
                    (derive_deserialize && !NOT_CONFIG.contains(&name.as_str())).then_some(name);
                derive_deserialize = false;
                continue;
            }
            if line == "}" {
                deserialized = None;
            }
            let Some(owner) = &deserialized else {
                continue;
            };
            let field = line
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            let Some((name, _)) = field.split_once(':') else {
                continue;
            };
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                continue;
            }
            if ["_ms", "_secs", "_seconds"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                found.push(format!("{}:{}: {owner}.{name}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "config fields with a unit suffix (make them `Duration` with \
         #[serde(with = \"vowguard_core::duration\")] under a unit-less key, and add the old \
         key to vowguard_runtime::deprecated::DURATION_KEYS):\n{}",
        found.join("\n")
    );
}

/// A playbook's zero durations are refused naming the key (playbooks compile when the
/// response engine starts, not at assembly).
#[test]
fn zero_playbook_durations_are_refused_naming_the_key() {
    let config = Config::parse(KITCHEN_SINK).unwrap();
    let catalog = vowguard_response::Catalog {
        notifiers: ["mail".to_owned()].into(),
        tickets: Default::default(),
        actions: Default::default(),
    };
    let playbook = config.playbooks["lockdown"].clone();
    vowguard_response::Playbook::compile("lockdown", playbook.clone(), &catalog).unwrap();
    for (edit, key) in [
        (
            (|p: &mut vowguard_response::PlaybookConfig| p.deadline = Duration::ZERO)
                as fn(&mut vowguard_response::PlaybookConfig),
            "`playbooks.lockdown.deadline`",
        ),
        (
            |p: &mut vowguard_response::PlaybookConfig| p.steps[0].timeout = Duration::ZERO,
            "`playbooks.lockdown.steps[0].timeout`",
        ),
        (
            |p: &mut vowguard_response::PlaybookConfig| {
                p.steps[1].deadline = Some(Duration::ZERO);
            },
            "`playbooks.lockdown.steps[1].deadline`",
        ),
    ] {
        let mut bad = playbook.clone();
        edit(&mut bad);
        let e = vowguard_response::Playbook::compile("lockdown", bad, &catalog)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(key), "{e}");
    }
}

/// Playbook files (`response.playbook_files`) take the old integer keys too.
#[test]
fn playbook_files_take_the_old_keys_too() {
    let new = "[p]\nversion = 1\ndeadline = \"2h\"\ntrigger = { min_priority = \"P1\" }\n\
               [[p.steps]]\nid = \"tell\"\nkind = \"notify\"\nnotifier = \"mail\"\nmessage = \"m\"\n\
               timeout = \"45s\"\nretry = { initial_backoff = \"150ms\" }\n";
    let old = new
        .replace("deadline = \"2h\"", "deadline_seconds = 7200")
        .replace("timeout = \"45s\"", "timeout_ms = 45000")
        .replace("initial_backoff = \"150ms\"", "initial_backoff_ms = 150");
    assert_ne!(old, new);
    let want = vowguard_response::parse_playbooks(new, "new.toml").unwrap();
    let got = vowguard_response::parse_playbooks(&old, "old.toml").unwrap();
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    assert_eq!(want["p"].steps[0].timeout, Duration::from_secs(45));
    let both = old.replace(
        "timeout_ms = 45000",
        "timeout_ms = 45000\ntimeout = \"45s\"",
    );
    let e = vowguard_response::parse_playbooks(&both, "both.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("both.toml: `p.steps[0].timeout_ms` and `p.steps[0].timeout` are both set"),
        "{e}"
    );
}
