//! A fast Splunk HEC receiver for `cargo xtask bench compare`: answers every request at
//! once with HEC's success body and counts the envelopes it received, so the benchmark
//! measures the forwarder, not the receiver. Runs on one thread.
//!
//! Prints `listening on <address>` as its first line, then serves until killed.
//! `GET /bench/stats` answers `<events> <requests>`: the totals since the start.
//!
//! Usage: `hec_receiver [<listen address, default 127.0.0.1:0>]`
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

/// What the receiver has seen since it started.
#[derive(Default)]
struct Totals {
    events: AtomicU64,
    requests: AtomicU64,
}

async fn stats(State(totals): State<Arc<Totals>>) -> String {
    format!(
        "{} {}\n",
        totals.events.load(Ordering::Acquire),
        totals.requests.load(Ordering::Acquire)
    )
}

async fn collect(State(totals): State<Arc<Totals>>, body: Bytes) -> impl IntoResponse {
    let events = vowguard_bench::count_envelopes(&body);
    totals.events.fetch_add(events, Ordering::AcqRel);
    totals.requests.fetch_add(1, Ordering::AcqRel);
    (
        [(CONTENT_TYPE, "application/json")],
        r#"{"text":"Success","code":0}"#,
    )
}

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        let address = listener.local_addr()?;
        let totals = Arc::new(Totals::default());
        let app = Router::new()
            .route("/bench/stats", get(stats))
            .fallback(collect)
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(totals);
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {address}")?;
        out.flush()?;
        drop(out);
        axum::serve(listener, app).await
    })
}
