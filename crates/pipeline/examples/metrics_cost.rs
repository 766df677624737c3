//! The cost of the `metrics` facade on end-to-end throughput:
//! `cargo run --release -p vowguard-pipeline --example metrics_cost [events] [runs]`.
//!
//! Runs the pipeline (journal, one sink encoding JSON and accepting at once, no network)
//! over `events` events in a child process per run, alternating two set-ups so that both
//! see the same machine load: `none` (the facade with no recorder installed: every call
//! goes to the no-op recorder) and `prometheus` (the Prometheus recorder the runtime
//! installs for `/metrics`, rendered once at the end). Prints CPU seconds and wall time per
//! run and the ratio of the medians. A measurement, not a test: it never fails on a number.
#![allow(clippy::print_stdout, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use vowguard_core::{Category, EncodedEvent, Error, Event, EventOutcome, Severity, Sink};
use vowguard_pipeline::{Pipeline, PipelineSpec, SinkSpec};

/// Encodes each event as JSON and accepts every batch at once.
#[derive(Debug)]
struct JsonSink;

#[async_trait]
impl Sink for JsonSink {
    fn kind(&self) -> &'static str {
        "json"
    }
    fn encode(&self, event: &Event) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(event).map_err(|e| Error::internal(e.to_string()))
    }
    async fn healthcheck(&self) -> Result<(), Error> {
        Ok(())
    }
    async fn send(&self, batch: &[&EncodedEvent]) -> Vec<EventOutcome> {
        batch.iter().map(|_| EventOutcome::Delivered).collect()
    }
}

/// User + system CPU seconds of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

async fn one_run(events: usize, recorder: &str) -> (f64, f64) {
    let handle = match recorder {
        "prometheus" => {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("one recorder per process");
            Some(handle)
        }
        _ => None,
    };
    vowguard_pipeline::describe_metrics();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cpu = cpu_seconds();
    let started = Instant::now();
    let pipeline = Pipeline::start(PipelineSpec {
        data_dir: dir.path().to_owned(),
        sinks: vec![SinkSpec::new("json", Arc::new(JsonSink))],
        ..PipelineSpec::default()
    })
    .await
    .expect("the pipeline starts");
    let mut deliveries = Vec::with_capacity(events);
    for i in 0..events {
        let mut event = Event::new(Category::Authentication, "login", Severity::Medium);
        event.id = format!("m-{i:08}");
        event.user_id = Some(format!("planner-{}", i % 500));
        event.message = Some(format!("invalid password, attempt {i}"));
        deliveries.push(pipeline.submit(event).await.expect("accepted").delivery);
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    let last = pipeline.shutdown().await;
    last.emit();
    if let Some(handle) = handle {
        assert!(handle.render().contains("vowguard_sink_delivered_total"));
    }
    (cpu_seconds() - cpu, started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [child, recorder, events] = args.as_slice()
        && child == "--child"
    {
        let events: usize = events.parse().expect("events");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (cpu, wall) = runtime.block_on(one_run(events, recorder));
        println!("{cpu} {wall}");
        return;
    }
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let exe = std::env::current_exe().expect("this example's path");
    let mut figures: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let modes = ["none", "prometheus"];
    for run in 0..runs {
        for (m, mode) in modes.iter().enumerate() {
            let out = Command::new(&exe)
                .args(["--child", mode, &events.to_string()])
                .output()
                .expect("the child runs");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut parts = text
                .split_whitespace()
                .map(|p| p.parse::<f64>().unwrap_or(f64::NAN));
            let (cpu, wall) = (
                parts.next().unwrap_or(f64::NAN),
                parts.next().unwrap_or(f64::NAN),
            );
            println!(
                "run {run} {mode:<10} {events} events: {cpu:.2} CPU-s, {wall:.2} s wall ({:.0} events/CPU-s)",
                events as f64 / cpu
            );
            figures[m].0.push(cpu);
            figures[m].1.push(wall);
        }
    }
    let (none_cpu, none_wall) = (median(figures[0].0.clone()), median(figures[0].1.clone()));
    let (prom_cpu, prom_wall) = (median(figures[1].0.clone()), median(figures[1].1.clone()));
    println!(
        "median of {runs}: no recorder {none_cpu:.2} CPU-s / {none_wall:.2} s; Prometheus recorder {prom_cpu:.2} CPU-s / {prom_wall:.2} s; CPU ratio {:.3}, wall ratio {:.3}",
        prom_cpu / none_cpu,
        prom_wall / none_wall
    );
}
