//! The bare reference forwarder of `cargo xtask bench compare`: what this machine can do
//! for the job with no durability. It reads NDJSON from standard input, parses each line
//! with `serde_json` (a line that is not JSON is counted and skipped), wraps it in a
//! Splunk HEC envelope, and posts batches of 500 envelopes, one request at a time, over a
//! keep-alive HTTP client. It exits once everything is posted; a non-success answer ends
//! it with an error.
//!
//! Usage: `reference_forwarder <HEC base URL, e.g. http://127.0.0.1:8088>`
#![allow(clippy::print_stdout)]

use std::io::BufRead as _;

use serde_json::Value;

/// Envelopes per request, as the reference program.
const BATCH: usize = 500;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .ok_or("usage: reference_forwarder <HEC base URL>")?;
    let url = format!("{}/services/collector/event", base.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let stdin = std::io::stdin().lock();
    let mut body = Vec::with_capacity(BATCH * 1100);
    let (mut in_batch, mut forwarded, mut skipped) = (0usize, 0u64, 0u64);
    let mut line = String::new();
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, stdin);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let Ok(event) = serde_json::from_str::<Value>(line.trim_end()) else {
            skipped += 1;
            continue;
        };
        let envelope = serde_json::json!({
            "host": "reference",
            "source": "reference_forwarder",
            "sourcetype": "_json",
            "event": event,
        });
        serde_json::to_writer(&mut body, &envelope)?;
        in_batch += 1;
        if in_batch == BATCH {
            let full = std::mem::replace(&mut body, Vec::with_capacity(BATCH * 1100));
            runtime.block_on(post(&client, &url, full))?;
            forwarded += in_batch as u64;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        runtime.block_on(post(&client, &url, body))?;
        forwarded += in_batch as u64;
    }
    println!("forwarded {forwarded} events, skipped {skipped} lines that are not JSON");
    Ok(())
}

/// Posts one batch body and reads the answer to the end (so the connection is kept alive
/// for the next batch); anything but a success status is an error.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let response = client
        .post(url)
        .header("Authorization", "Splunk reference")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot post to {url}: {e}"))?;
    let status = response.status();
    response
        .bytes()
        .await
        .map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}
