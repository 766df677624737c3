//! The `nats` source against a private `nats-server -js` (testkit starts one per test):
//! JetStream consumer -> pipeline -> Splunk HEC mock; a vowguard that dies before its events
//! are durable loses nothing (the server redelivers them, with the same ids); a poison
//! message is terminated once and counted; core requests are answered after durability;
//! refused credentials end the run naming the key.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use support::{spawn_run, terminate};
use vowguard_core::secrecy::SecretString;
use vowguard_core::{Error, Event, SecretMap};
use vowguard_nats::NatsSourceConfig;
use vowguard_nats::async_nats::{self, jetstream};
use vowguard_pipeline::{EventQueue, Pipeline, PipelineSpec, SinkSpec};
use vowguard_runtime::nats_source::{NatsSource, NatsSourceStats};
use vowguard_splunk::SplunkHecSink;
use vowguard_testkit::fixtures;
use vowguard_testkit::nats::NatsServer;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sources.platform";

fn source(text: &str, url: &str, lookup: &SecretMap) -> NatsSource {
    let table = vowguard_core::ComponentConfig::from_toml(text)
        .expect("toml")
        .with("servers", [url])
        .with("request_timeout", "2s");
    let config = NatsSourceConfig::from_config(table, KEY).expect("config");
    let settings = config
        .resolve(KEY, lookup, Path::new("."))
        .expect("settings");
    NatsSource::new("platform", config, settings).with_retry(
        vowguard_core::RetryPolicy::default()
            .with_max_attempts(8)
            .with_initial_backoff(std::time::Duration::from_millis(50))
            .with_max_backoff(std::time::Duration::from_millis(200))
            .with_max_retry_after(std::time::Duration::from_millis(1000)),
    )
}

async fn platform_stream(server: &NatsServer) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "PLATFORM".into(),
        subjects: vec!["platform.security.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    (client, js)
}

async fn publish(js: &jetstream::Context, payload: Vec<u8>) {
    js.publish("platform.security.events", payload.into())
        .await
        .expect("publish")
        .await
        .expect("puback");
}

/// Waits (at most 30 s) until `done` holds; the assertions after it say what is missing.
async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A queue that stores the first `take` events and then never answers: a vowguard that
/// hangs or dies before the rest are durable.
#[derive(Debug)]
struct StallingQueue {
    take: usize,
    stored: Mutex<Vec<String>>,
    waiting: AtomicUsize,
}

#[async_trait]
impl EventQueue for StallingQueue {
    fn backend(&self) -> &'static str {
        "test"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        {
            let mut stored = self.stored.lock().unwrap();
            if stored.len() < self.take {
                stored.push(event.id);
                return Ok(());
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// A queue that stores everything.
#[derive(Debug, Default)]
struct RecordingQueue {
    stored: Mutex<Vec<Event>>,
}

#[async_trait]
impl EventQueue for RecordingQueue {
    fn backend(&self) -> &'static str {
        "test"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        self.stored.lock().unwrap().push(event);
        Ok(())
    }
}

/// Event ids in one HEC request.
fn ids_in(request: &Request) -> Vec<String> {
    serde_json::Deserializer::from_slice(&request.body)
        .into_iter::<serde_json::Value>()
        .flatten()
        .filter_map(|envelope| envelope["event"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Event ids in the HEC requests the mock received.
async fn hec_ids(hec: &MockServer) -> Vec<String> {
    hec.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .flat_map(ids_in)
        .collect()
}

async fn consumer_info(js: &jetstream::Context) -> jetstream::consumer::Info {
    try_consumer_info(js)
        .await
        .expect("the source's consumer exists")
}

/// `None` until the source has created its consumer.
async fn try_consumer_info(js: &jetstream::Context) -> Option<jetstream::consumer::Info> {
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream("vowguard", "PLATFORM")
        .await
        .ok()?;
    consumer.info().await.ok().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vowguard_dying_before_durability_loses_nothing() {
    let server = NatsServer::start(&[]);
    let (_client, js) = platform_stream(&server).await;
    let all: Vec<Event> = (0..40).map(fixtures::event).collect();
    for event in &all {
        publish(&js, serde_json::to_vec(event).unwrap()).await;
    }
    let config =
        "stream = \"PLATFORM\"\nconsumer = \"vowguard\"\nack_wait = \"1s\"\nmax_in_flight = 8";

    // Round 1: ten events become durable, the rest wait on a queue that never answers; then
    // the process is gone (the task is dropped mid-stream, nothing more is acked).
    let stalling = Arc::new(StallingQueue {
        take: 10,
        stored: Mutex::default(),
        waiting: AtomicUsize::new(0),
    });
    let first = source(config, &server.url(), &SecretMap::new());
    let counters = first.counters();
    let queue: Arc<dyn EventQueue> = stalling.clone();
    let running = tokio::spawn(async move { first.run(queue, std::future::pending()).await });
    wait_until(|| {
        counters.snapshot().accepted == 10 && stalling.waiting.load(Ordering::SeqCst) > 0
    })
    .await;
    running.abort();
    let _ = running.await;
    let durable_first: BTreeSet<String> = stalling.stored.lock().unwrap().iter().cloned().collect();
    assert_eq!(durable_first.len(), 10, "round 1 stored ten events");
    assert!(
        stalling.waiting.load(Ordering::SeqCst) > 0,
        "round 1 was killed with events in flight"
    );

    // Round 2: a real pipeline delivering to a Splunk HEC mock.
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let sink = SplunkHecSink::builder(hec.uri())
        .token(SecretString::from("hec-token"))
        .build()
        .expect("sink");
    let dir = tempfile::tempdir().unwrap();
    let mut spec = SinkSpec::new("splunk", Arc::new(sink));
    spec.batch.max_wait = std::time::Duration::from_millis(20);
    let pipeline = Arc::new(
        Pipeline::start(PipelineSpec {
            data_dir: dir.path().to_owned(),
            sinks: vec![spec],
            ..PipelineSpec::default()
        })
        .await
        .expect("pipeline"),
    );
    let second = source(config, &server.url(), &SecretMap::new());
    let queue: Arc<dyn EventQueue> = pipeline.clone();
    let stats: NatsSourceStats = {
        let hec = &hec;
        let stop = async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while hec_ids(hec).await.len() < 30 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        second.run(queue, stop).await.expect("source runs")
    };
    let pipeline = Arc::try_unwrap(pipeline).expect("the source let go of the pipeline");
    pipeline.shutdown().await;

    let delivered: Vec<String> = hec_ids(&hec).await;
    let delivered_set: BTreeSet<String> = delivered.iter().cloned().collect();
    let expected: BTreeSet<String> = all.iter().map(|e| e.id.clone()).collect();
    let union: BTreeSet<String> = durable_first.union(&delivered_set).cloned().collect();
    assert_eq!(union, expected, "nothing lost across the kill");
    assert!(
        durable_first.is_disjoint(&delivered_set),
        "events acked in round 1 (double ack) were not delivered again"
    );
    assert_eq!(
        delivered.len(),
        30,
        "each redelivered event reached the SIEM once"
    );
    assert_eq!((stats.accepted, stats.terminated), (30, 0), "{stats:?}");
    let info = consumer_info(&js).await;
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (0, 0),
        "every message settled"
    );
}

#[tokio::test]
async fn a_poison_message_is_terminated_once_and_counted() {
    let server = NatsServer::start(&[]);
    let (_client, js) = platform_stream(&server).await;
    let good = |n| serde_json::to_vec(&fixtures::event(n)).unwrap();
    publish(&js, good(1)).await;
    publish(&js, b"not json at all".to_vec()).await;
    publish(&js, br#"{"action":"guest_list.export"}"#.to_vec()).await;
    publish(&js, vec![0xff, 0xfe, b'{']).await;
    publish(
        &js,
        format!(
            r#"{{"action":"x","severity":"low","message":"{}"}}"#,
            "A".repeat(3000)
        )
        .into_bytes(),
    )
    .await;
    publish(&js, br#"{"action":"login","severity":"low"}"#.to_vec()).await;
    publish(&js, good(2)).await;

    let queue = Arc::new(RecordingQueue::default());
    let nats = source(
        "stream = \"PLATFORM\"\nconsumer = \"vowguard\"\nack_wait = \"1s\"\nmax_message_bytes = 2000",
        &server.url(),
        &SecretMap::new(),
    );
    let counters = nats.counters();
    let dyn_queue: Arc<dyn EventQueue> = queue.clone();
    let js_watch = js.clone();
    let stats = nats
        .run(dyn_queue, async move {
            // Until every message is settled on the server: acked or terminated.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let settled = try_consumer_info(&js_watch).await.is_some_and(|info| {
                    info.ack_floor.stream_sequence == 7 && info.num_ack_pending == 0
                });
                if settled || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("source runs");
    assert_eq!(stats, counters.snapshot());
    assert_eq!(
        (stats.received, stats.accepted, stats.terminated),
        (7, 3, 4),
        "each message handled once: {stats:?}"
    );
    assert_eq!(
        (stats.invalid_event, stats.not_utf8, stats.too_large),
        (2, 1, 1),
        "{stats:?}"
    );
    let info = consumer_info(&js).await;
    assert_eq!(info.num_redelivered, 0, "no message was redelivered");
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    let stored = queue.stored.lock().unwrap();
    assert_eq!(stored[0].id, fixtures::event(1).id);
    assert_eq!(stored[2].id, fixtures::event(2).id);
    // An event without an id gets one derived from its stream sequence (stable across
    // redeliveries).
    assert_eq!(stored[1].id, "nats-PLATFORM-6");
}

#[tokio::test]
async fn core_requests_are_answered_once_durable() {
    let server = NatsServer::start(&[]);
    let client = async_nats::connect(server.url()).await.unwrap();
    let queue = Arc::new(RecordingQueue::default());
    let nats = source(
        "mode = \"core\"\nsubject = \"platform.core.>\"",
        &server.url(),
        &SecretMap::new(),
    );
    let counters = nats.counters();
    let dyn_queue: Arc<dyn EventQueue> = queue.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        nats.run(dyn_queue, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    // The subscription is in place once a request is answered; retry until then.
    let good = serde_json::to_vec(&fixtures::event(7)).unwrap();
    let mut answer = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while answer.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(reply)) = tokio::time::timeout(
            Duration::from_millis(500),
            client.request("platform.core.events", good.clone().into()),
        )
        .await
        {
            answer = Some(reply);
        }
    }
    let reply: serde_json::Value =
        serde_json::from_slice(&answer.expect("answered").payload).unwrap();
    assert_eq!(reply["accepted"], true);
    assert_eq!(reply["id"], fixtures::event(7).id);
    let bad = client
        .request(
            "platform.core.events",
            br#"{"severity":"low"}"#.to_vec().into(),
        )
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&bad.payload).unwrap();
    assert_eq!(reply["accepted"], false);
    assert_eq!(reply["retry"], false);
    assert_eq!(reply["error"], "field `action`: is required");
    stop_tx.send(()).unwrap();
    let stats = running.await.unwrap().unwrap();
    assert_eq!(stats, counters.snapshot());
    assert!(stats.accepted >= 1 && stats.invalid_event == 1, "{stats:?}");
    assert!(
        queue
            .stored
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.id == fixtures::event(7).id)
    );
}

#[tokio::test]
async fn refused_credentials_end_the_run_naming_the_key() {
    let server = NatsServer::start(&["--user", "vg", "--pass", "right-pass-81c2"]);
    let lookup = SecretMap::new().with("NATS_PASS", "wrong-pass-9d1e");
    let nats = source(
        "stream = \"PLATFORM\"\nconsumer = \"vowguard\"\nuser = \"vg\"\npassword = { env = \"NATS_PASS\" }",
        &server.url(),
        &lookup,
    );
    let queue: Arc<dyn EventQueue> = Arc::new(RecordingQueue::default());
    let err = nats
        .run(queue, std::future::pending())
        .await
        .expect_err("refused");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("sources.platform.user/sources.platform.password"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-pass-9d1e") && !text.contains("right-pass"),
        "{text}"
    );
}

/// The real binary reading a JetStream stream, SIGKILLed mid-stream and started again:
/// every event reaches the SIEM (events acked to NATS were durable in the journal; the
/// others are redelivered by the server), and the consumer ends settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_killed_mid_stream_loses_nothing() {
    let server = NatsServer::start(&[]);
    let (_client, js) = platform_stream(&server).await;
    let all: Vec<Event> = (0..300).map(fixtures::event).collect();
    for event in &all {
        publish(&js, serde_json::to_vec(event).unwrap()).await;
    }
    let hec = MockServer::start().await;
    let received: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let record = received.clone();
    Mock::given(method("POST"))
        .respond_with(move |request: &Request| {
            let mut record = record.lock().unwrap();
            for id in ids_in(request) {
                *record.entry(id).or_default() += 1;
            }
            ResponseTemplate::new(200)
                .set_body_string(r#"{"text":"Success","code":0}"#)
                .set_delay(Duration::from_millis(50))
        })
        .mount(&hec)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[pipeline]
shutdown_timeout = "5s"
[sources.platform]
type = "nats"
servers = ["{}"]
stream = "PLATFORM"
consumer = "vowguard"
ack_wait = "2s"
max_in_flight = 50
[sinks.splunk]
type = "splunk_hec"
endpoint = "{}"
token = {{ env = "NATS_TEST_HEC_TOKEN" }}
batch = {{ max_events = 20, max_wait = "10ms" }}
"#,
            server.url(),
            hec.uri()
        ),
    )
    .unwrap();
    let env = [("NATS_TEST_HEC_TOKEN", "nats-test-token")];
    let count = |received: &Arc<Mutex<BTreeMap<String, usize>>>| received.lock().unwrap().len();

    let mut child = spawn_run(&config, &env, Stdio::null());
    wait_until(|| count(&received) >= 40).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let before_restart = count(&received);
    assert!(
        (40..300).contains(&before_restart),
        "killed mid-stream: {before_restart} of 300 delivered before the kill"
    );

    let child = spawn_run(&config, &env, Stdio::piped());
    wait_until(|| count(&received) == 300).await;
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let received = received.lock().unwrap().clone();
    let missing: Vec<&String> = all
        .iter()
        .map(|e| &e.id)
        .filter(|id| !received.contains_key(*id))
        .collect();
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    eprintln!(
        "nats source kill test: {} events, {before_restart} delivered before SIGKILL, {} missing, {duplicates} extra copies (at-least-once)",
        all.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "events lost across SIGKILL: {missing:?}"
    );
    assert!(
        output.status.success(),
        "the second run shuts down cleanly on SIGTERM: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info = consumer_info(&js).await;
    assert_eq!(
        (info.num_ack_pending, info.num_pending),
        (0, 0),
        "every message acked"
    );
}

/// A queue that cannot take events for its first `refuse` calls (a full or unreachable
/// backend), then stores them.
#[derive(Debug)]
struct BusyQueue {
    refuse: AtomicUsize,
    stored: Mutex<Vec<String>>,
}

#[async_trait]
impl EventQueue for BusyQueue {
    fn backend(&self) -> &'static str {
        "test"
    }

    async fn enqueue(&self, event: Event) -> Result<(), Error> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(
                Error::unavailable("journal full").with_retry_after(Duration::from_millis(50))
            );
        }
        self.stored.lock().unwrap().push(event.id);
        Ok(())
    }
}

#[tokio::test]
async fn a_queue_that_cannot_take_events_yet_gets_them_redelivered_after_a_delay() {
    let server = NatsServer::start(&[]);
    let (_client, js) = platform_stream(&server).await;
    for n in 0..3 {
        publish(&js, serde_json::to_vec(&fixtures::event(n)).unwrap()).await;
    }
    // An event without an id: its redelivery keeps the id derived from the message.
    publish(&js, br#"{"action":"login","severity":"low"}"#.to_vec()).await;
    let queue = Arc::new(BusyQueue {
        refuse: AtomicUsize::new(6),
        stored: Mutex::default(),
    });
    let nats = source(
        "stream = \"PLATFORM\"\nconsumer = \"vowguard\"\nack_wait = \"30s\"",
        &server.url(),
        &SecretMap::new(),
    );
    let watch = queue.clone();
    let dyn_queue: Arc<dyn EventQueue> = queue.clone();
    let stats = nats
        .run(dyn_queue, async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while watch.stored.lock().unwrap().len() < 4 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("source runs");
    let mut stored = queue.stored.lock().unwrap().clone();
    stored.sort();
    let mut expected: Vec<String> = (0..3).map(|n| fixtures::event(n).id).collect();
    expected.push("nats-PLATFORM-4".into());
    expected.sort();
    assert_eq!(stored, expected, "every event stored once after the NAKs");
    assert_eq!(
        (stats.requeued, stats.accepted, stats.terminated),
        (6, 4, 0),
        "{stats:?}"
    );
    // Redelivered by a NAK with delay (ack_wait is 30 s, so not by an expired ack wait).
    assert_eq!(stats.received, 10, "{stats:?}");
}

/// `vowguard validate` checks the nats source: a missing stream is named, an existing one
/// is healthy (and validate creates no consumer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_checks_the_stream() {
    let server = NatsServer::start(&[]);
    let hec = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[sources.platform]\ntype = \"nats\"\nservers = [\"{}\"]\nstream = \"PLATFORM\"\nconsumer = \"vowguard\"\n[sinks.splunk]\ntype = \"splunk_hec\"\nendpoint = \"{}\"\ntoken = {{ env = \"NATS_TEST_HEC_TOKEN\" }}\n",
            server.url(),
            hec.uri()
        ),
    )
    .unwrap();
    let validate = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vowguard"))
            .args(["validate", "--config", config.to_str().unwrap()])
            .env("NATS_TEST_HEC_TOKEN", "t")
            .output()
            .unwrap()
    };
    let output = tokio::task::spawn_blocking(validate.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("source platform (nats): UNHEALTHY")
            && stdout.contains("`sources.platform.stream`"),
        "{stdout}"
    );
    let (_client, js) = platform_stream(&server).await;
    let output = tokio::task::spawn_blocking(validate).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("source platform (nats): healthy"),
        "{stdout}"
    );
    assert!(
        try_consumer_info(&js).await.is_none(),
        "validate created no consumer"
    );
}

/// A nats-only run with `[server]` serves `/health`, `/metrics` (the source's counts
/// included) and the admin API, and no intake route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_run_with_a_server_table_serves_health_metrics_and_the_admin_api() {
    let mut server = NatsServer::start(&[]);
    let (_client, js) = platform_stream(&server).await;
    let hec = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/collector/health"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"text":"HEC is healthy","code":17}"#),
        )
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = dir.path().join("vowguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "NATS_TEST_ADMIN_TOKEN" }}
[sources.platform]
type = "nats"
servers = ["{}"]
stream = "PLATFORM"
consumer = "vowguard"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{}"
token = {{ env = "NATS_TEST_HEC_TOKEN" }}
batch = {{ max_events = 20, max_wait = "10ms" }}
"#,
            server.url(),
            hec.uri()
        ),
    )
    .unwrap();
    let env = [
        ("NATS_TEST_HEC_TOKEN", "nats-test-token"),
        ("NATS_TEST_ADMIN_TOKEN", "nats-admin-token-8c1e"),
    ];
    let child = spawn_run(&config, &env, Stdio::piped());
    let client = reqwest::Client::new();
    support::wait_healthy(&client, port).await;
    for n in 0..5 {
        publish(&js, serde_json::to_vec(&fixtures::event(n)).unwrap()).await;
    }
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // The source's counts are in /metrics once it has taken the five events.
    let mut metrics = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !metrics.contains("vowguard_nats_source_accepted_total{source=\"platform\"} 5") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the source's count never reached 5:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = support::scrape_metrics(&client, port).await;
    }
    assert!(
        metrics.contains("vowguard_sink_delivered_total"),
        "{metrics}"
    );
    let health = client.get(url("/health")).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    // No intake over HTTP: the source is NATS.
    let ingest = client
        .post(url("/v1/events"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), reqwest::StatusCode::NOT_FOUND);
    // The admin API answers behind the token.
    let refused = client.get(url("/api/cluster/status")).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let status = client
        .get(url("/api/cluster/status"))
        .bearer_auth("nats-admin-token-8c1e")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), reqwest::StatusCode::NOT_FOUND);
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["backend"], "local");
    // /health names the source's connection: connected now...
    assert_eq!(health["source"]["id"], "platform");
    assert_eq!(health["source"]["state"], "connected", "{health}");
    // ...reconnecting, and why, while its server is down (the run reads nothing: 503)...
    server.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let down: serde_json::Value = loop {
        let r = client.get(url("/health")).send().await.unwrap();
        if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break r.json().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health never reported the source's server down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(down["status"], "unavailable", "{down}");
    assert_eq!(down["source"]["state"], "reconnecting", "{down}");
    assert_eq!(down["source"]["connected"], false, "{down}");
    let why = down["source"]["problem"].as_str().unwrap_or_default();
    assert!(!why.is_empty(), "the problem says why: {down}");
    // ...and connected again once it is back.
    server.restart();
    support::wait_healthy(&client, port).await;
    let health: serde_json::Value = client
        .get(url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["source"]["state"], "connected", "{health}");
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("nats-admin-token-8c1e"), "{stderr}");
}
