//! The counting SIEM receiver of `cargo xtask bench compare` and `cargo xtask bench
//! scenarios`: it answers every request with the success body its protocol expects,
//! counts the events it received per protocol, and records when they arrived, so the
//! benchmarks measure the forwarder, not the receiver. Runs on one thread.
//!
//! What it serves, on one HTTP listener:
//!
//! * Splunk HEC: `POST /services/collector/event` (concatenated envelopes, counted);
//!   with `--ack`, every answer carries an `ackId` and `POST /services/collector/ack`
//!   answers `{"acks":{"<id>":true,…}}` for the ids it has issued (the events of an id
//!   count as acknowledged the first time it is reported `true`);
//! * Elasticsearch: `POST /_bulk` (NDJSON action + document pairs, counted), answered
//!   `{"errors":false}`;
//! * Datadog logs intake: `POST /api/v2/logs` (a JSON array, counted), answered `202 {}`;
//! * gzip bodies (`Content-Encoding: gzip`) are decompressed before counting;
//! * anything else (health checks): `200 {"text":"Success","code":0}`.
//!
//! and, on its own TCP listener, RFC 6587 syslog (octet-counted or LF-framed, both
//! accepted); each message is counted as CEF (`CEF:`) or LEEF (`LEEF:`). With
//! `--blackhole`, a third TCP listener accepts connections, reads and discards what it is
//! sent and never answers (a threat-intel provider that hangs).
//!
//! `--delay-ms N` holds every HTTP answer (event posts and ack polls alike) for N ms
//! before sending it: a slow SIEM. The receiver itself stays one thread; held answers do
//! not block others.
//!
//! Latency: an event whose text carries `sentus_<microseconds since the Unix epoch>` (the
//! load client stamps it at send time) adds `arrival - sent` to the latency record;
//! arrival is when the request body (or syslog frame) has been read, before any delay.
//!
//! Prints `listening on <http address> syslog <tcp address> blackhole <tcp address or ->`
//! as its first line, then serves until killed. `GET /bench/stats` answers one line of
//! `key=value` pairs: `hec`, `hec_requests`, `hec_acked`, `bulk`, `datadog`, `cef`,
//! `leef`, `latency_count`, `latency_p50_us`, `latency_p99_us`, `latency_max_us`.
//!
//! Usage: `siem_receiver [--listen ADDR] [--delay-ms N] [--ack] [--blackhole]`
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::AsyncReadExt as _;

/// What the receiver has seen since it started.
#[derive(Default)]
struct Totals {
    hec: AtomicU64,
    hec_requests: AtomicU64,
    hec_acked: AtomicU64,
    bulk: AtomicU64,
    datadog: AtomicU64,
    cef: AtomicU64,
    leef: AtomicU64,
    /// Latencies in microseconds of the stamped events.
    latencies_us: Mutex<Vec<u64>>,
    /// Issued ack ids not yet reported acknowledged, with their event counts.
    pending_acks: Mutex<HashMap<u64, u64>>,
    next_ack: AtomicU64,
}

/// The receiver's options.
struct Options {
    listen: String,
    delay: Duration,
    ack: bool,
    blackhole: bool,
}

struct Shared {
    totals: Totals,
    options: Options,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Calls `found` with every `sentus_<digits>` stamp in `body`.
fn send_stamps(body: &[u8], mut found: impl FnMut(u64)) {
    const MARKER: &[u8] = b"sentus_";
    let mut rest = body;
    while let Some(at) = rest.windows(MARKER.len()).position(|w| w == MARKER) {
        rest = &rest[at + MARKER.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0
            && let Some(value) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse().ok())
        {
            found(value);
        }
        rest = &rest[digits..];
    }
}

fn record_latencies(totals: &Totals, body: &[u8]) {
    let arrival = now_us();
    let mut new = Vec::new();
    send_stamps(body, |sent| new.push(arrival.saturating_sub(sent)));
    if !new.is_empty() {
        totals
            .latencies_us
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(new);
    }
}

fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank: the smallest value with at least per_mille/1000 of the values <= it.
    let rank = (sorted.len() * per_mille).div_ceil(1000).max(1);
    sorted[rank - 1]
}

async fn stats(State(shared): State<Arc<Shared>>) -> String {
    let t = &shared.totals;
    let mut latencies = t
        .latencies_us
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    latencies.sort_unstable();
    format!(
        "hec={} hec_requests={} hec_acked={} bulk={} datadog={} cef={} leef={} latency_count={} latency_p50_us={} latency_p99_us={} latency_max_us={}\n",
        t.hec.load(Ordering::Acquire),
        t.hec_requests.load(Ordering::Acquire),
        t.hec_acked.load(Ordering::Acquire),
        t.bulk.load(Ordering::Acquire),
        t.datadog.load(Ordering::Acquire),
        t.cef.load(Ordering::Acquire),
        t.leef.load(Ordering::Acquire),
        latencies.len(),
        percentile(&latencies, 500),
        percentile(&latencies, 990),
        latencies.last().copied().unwrap_or(0),
    )
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// The request body, gunzipped when it says `Content-Encoding: gzip` (Datadog's default;
/// HEC's option).
fn decoded(headers: &HeaderMap, body: Bytes) -> Result<Bytes, String> {
    let gzip = headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzip {
        return Ok(body);
    }
    let mut plain = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut plain)
        .map_err(|e| format!(r#"{{"error":"bad gzip: {e}"}}"#))?;
    Ok(Bytes::from(plain))
}

async fn hec_event(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match decoded(&headers, body) {
        Ok(body) => body,
        Err(answer) => return json(StatusCode::BAD_REQUEST, answer),
    };
    record_latencies(&shared.totals, &body);
    let events = vowguard_bench::count_envelopes(&body);
    let t = &shared.totals;
    t.hec.fetch_add(events, Ordering::AcqRel);
    t.hec_requests.fetch_add(1, Ordering::AcqRel);
    let answer = if shared.options.ack {
        let id = t.next_ack.fetch_add(1, Ordering::AcqRel);
        t.pending_acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, events);
        format!(r#"{{"text":"Success","code":0,"ackId":{id}}}"#)
    } else {
        r#"{"text":"Success","code":0}"#.to_owned()
    };
    tokio::time::sleep(shared.options.delay).await;
    json(StatusCode::OK, answer)
}

async fn hec_ack(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let ids: Option<Vec<u64>> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("acks")?
                .as_array()?
                .iter()
                .map(serde_json::Value::as_u64)
                .collect()
        });
    let Some(ids) = ids else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"text":"Invalid data format","code":6}"#.to_owned(),
        );
    };
    tokio::time::sleep(shared.options.delay).await;
    let t = &shared.totals;
    let mut answer = String::from(r#"{"acks":{"#);
    {
        let mut pending = t
            .pending_acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let issued = t.next_ack.load(Ordering::Acquire);
        for (i, id) in ids.iter().enumerate() {
            if let Some(events) = pending.remove(id) {
                t.hec_acked.fetch_add(events, Ordering::AcqRel);
            }
            // Every id issued so far is indexed by the time it is polled.
            let indexed = *id < issued;
            if i > 0 {
                answer.push(',');
            }
            answer.push_str(&format!(r#""{id}":{indexed}"#));
        }
    }
    answer.push_str("}}");
    json(StatusCode::OK, answer)
}

async fn bulk(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match decoded(&headers, body) {
        Ok(body) => body,
        Err(answer) => return json(StatusCode::BAD_REQUEST, answer),
    };
    record_latencies(&shared.totals, &body);
    // Action line + document line per event.
    let values = vowguard_bench::count_envelopes(&body);
    shared.totals.bulk.fetch_add(values / 2, Ordering::AcqRel);
    tokio::time::sleep(shared.options.delay).await;
    json(StatusCode::OK, r#"{"errors":false}"#.to_owned())
}

async fn datadog(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match decoded(&headers, body) {
        Ok(body) => body,
        Err(answer) => return json(StatusCode::BAD_REQUEST, answer),
    };
    record_latencies(&shared.totals, &body);
    let events = vowguard_bench::count_values_closing_at(&body, 1);
    shared.totals.datadog.fetch_add(events, Ordering::AcqRel);
    tokio::time::sleep(shared.options.delay).await;
    json(StatusCode::ACCEPTED, "{}".to_owned())
}

async fn other(State(shared): State<Arc<Shared>>) -> Response {
    tokio::time::sleep(shared.options.delay).await;
    json(
        StatusCode::OK,
        r#"{"text":"Success","code":0,"valid":true}"#.to_owned(),
    )
}

/// Splits complete RFC 6587 frames off the front of `buffer` (octet counting `LEN SP MSG`
/// or `MSG LF`), calls `frame` with each, and returns the bytes consumed.
fn split_frames(buffer: &[u8], mut frame: impl FnMut(&[u8])) -> usize {
    let mut at = 0;
    while at < buffer.len() {
        let rest = &buffer[at..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && rest.get(digits) == Some(&b' ') {
            let Some(length) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                break;
            };
            let start = digits + 1;
            if rest.len() < start + length {
                break;
            }
            frame(&rest[start..start + length]);
            at += start + length;
        } else if digits == rest.len() {
            break; // an octet count still arriving
        } else {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            if end > 0 {
                frame(&rest[..end]);
            }
            at += end + 1;
        }
    }
    at
}

fn count_syslog_frame(totals: &Totals, frame: &[u8]) {
    let contains = |needle: &[u8]| frame.windows(needle.len()).any(|w| w == needle);
    if contains(b"CEF:") {
        totals.cef.fetch_add(1, Ordering::AcqRel);
    } else if contains(b"LEEF:") {
        totals.leef.fetch_add(1, Ordering::AcqRel);
    }
}

async fn serve_syslog(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(256 * 1024);
            let mut chunk = vec![0u8; 128 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buffer.extend_from_slice(&chunk[..n]);
                        let totals = &shared.totals;
                        let consumed = split_frames(&buffer, |frame| {
                            record_latencies(totals, frame);
                            count_syslog_frame(totals, frame);
                        });
                        buffer.drain(..consumed);
                    }
                }
            }
        });
    }
}

/// Accepts, reads and discards, never writes: a provider that hangs.
async fn serve_blackhole(listener: tokio::net::TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut sink = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
    }
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:0".to_owned(),
        delay: Duration::ZERO,
        ack: false,
        blackhole: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => options.listen = args.next().ok_or("`--listen` needs an address")?,
            "--delay-ms" => {
                let ms: u64 = args
                    .next()
                    .ok_or("`--delay-ms` needs a value")?
                    .parse()
                    .map_err(|e| format!("`--delay-ms`: {e}"))?;
                options.delay = Duration::from_millis(ms);
            }
            "--ack" => options.ack = true,
            "--blackhole" => options.blackhole = true,
            other => {
                return Err(format!(
                    "unknown option `{other}`; usage: siem_receiver [--listen ADDR] [--delay-ms N] [--ack] [--blackhole]"
                ));
            }
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen).await?;
        let address = listener.local_addr()?;
        let syslog = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let syslog_address = syslog.local_addr()?;
        let blackhole = if options.blackhole {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
        } else {
            None
        };
        let blackhole_address = match &blackhole {
            Some(listener) => listener.local_addr()?.to_string(),
            None => "-".to_owned(),
        };
        let shared = Arc::new(Shared {
            totals: Totals::default(),
            options,
        });
        tokio::spawn(serve_syslog(syslog, Arc::clone(&shared)));
        if let Some(listener) = blackhole {
            tokio::spawn(serve_blackhole(listener));
        }
        let app = Router::new()
            .route("/bench/stats", get(stats))
            .route("/services/collector/event", post(hec_event))
            .route("/services/collector/event/1.0", post(hec_event))
            .route("/services/collector/ack", post(hec_ack))
            .route("/_bulk", post(bulk))
            .route("/api/v2/logs", post(datadog))
            .fallback(other)
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(shared);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "listening on {address} syslog {syslog_address} blackhole {blackhole_address}"
        )?;
        out.flush()?;
        drop(out);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{percentile, send_stamps, split_frames};

    #[test]
    fn stamps_are_found_anywhere_in_a_body() {
        let mut found = Vec::new();
        send_stamps(
            br#"{"message":"x sentus_17 y"}{"message":"sentus_ sentus_5"}"#,
            |s| found.push(s),
        );
        assert_eq!(found, vec![17, 5]);
    }

    #[test]
    fn frames_of_both_framings_split_and_partial_ones_wait() {
        let mut frames = Vec::new();
        let buffer = b"5 <1>CEF<2>LEEF\n7 <3>a";
        let consumed = split_frames(buffer, |f| frames.push(f.to_vec()));
        assert_eq!(frames, vec![b"<1>CE".to_vec(), b"F<2>LEEF".to_vec()]);
        // "F<2>LEEF" is the LF frame after the 5-octet one; "7 <3>a" is incomplete.
        assert_eq!(&buffer[consumed..], b"7 <3>a");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 500), 50);
        assert_eq!(percentile(&values, 990), 99);
        assert_eq!(percentile(&[], 990), 0);
    }
}
