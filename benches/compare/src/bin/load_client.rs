//! The load client of `cargo xtask bench scenarios`: posts events to vowguard's
//! `POST /v1/events` in batches (JSON arrays), several requests in flight, either as fast
//! as the server acknowledges them or at a steady rate, and counts the events the server
//! acknowledged (`202 Accepted` with `"accepted": n`: durable in the journal).
//!
//! The events are the ~600-byte login failures of the other benchmarks. With `--stamp`,
//! each measured event's message carries `sentus_<microseconds since the Unix epoch>`,
//! taken just before its request is sent, so the SIEM receiver can compute the latency.
//! `--warmup N` first posts N events (unstamped, not timed, not in the figures) so that
//! connections and the server's caches are warm.
//!
//! Prints `warmed up` when the warm-up is acknowledged (also with no warm-up), then one
//! line: `sent=<events> accepted=<events> failed_requests=<n> seconds=<s>
//! rate=<accepted events/s>` for the measured events only. Exits with an error when a
//! request fails or an event is not accepted.
//!
//! Usage: `load_client --url http://127.0.0.1:8686 --events N [--batch 100]
//! [--concurrency 4] [--rate EVENTS_PER_S] [--warmup N] [--stamp]`
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

struct Options {
    url: String,
    events: u64,
    batch: u64,
    concurrency: usize,
    rate: f64,
    warmup: u64,
    stamp: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: String::new(),
        events: 0,
        batch: 100,
        concurrency: 4,
        rate: 0.0,
        warmup: 0,
        stamp: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("`{name}` needs a value"));
        match arg.as_str() {
            "--url" => options.url = value("--url")?,
            "--events" => {
                options.events = value("--events")?
                    .parse()
                    .map_err(|e| format!("`--events`: {e}"))?;
            }
            "--batch" => {
                options.batch = value("--batch")?
                    .parse()
                    .map_err(|e| format!("`--batch`: {e}"))?;
            }
            "--concurrency" => {
                options.concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("`--concurrency`: {e}"))?;
            }
            "--rate" => {
                options.rate = value("--rate")?
                    .parse()
                    .map_err(|e| format!("`--rate`: {e}"))?;
            }
            "--warmup" => {
                options.warmup = value("--warmup")?
                    .parse()
                    .map_err(|e| format!("`--warmup`: {e}"))?;
            }
            "--stamp" => options.stamp = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if options.url.is_empty() || options.events == 0 || options.batch == 0 {
        return Err(
            "usage: load_client --url URL --events N [--batch 100] [--concurrency 4] [--rate R] [--warmup N] [--stamp]"
                .into(),
        );
    }
    if options.concurrency == 0 || !options.rate.is_finite() || options.rate < 0.0 {
        return Err("`--concurrency` must be at least 1 and `--rate` a number >= 0".into());
    }
    Ok(options)
}

/// The JSON array body of events `first..first + count`.
fn batch_body(first: u64, count: u64, stamp: bool) -> String {
    let sent = if stamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        format!(" sentus_{micros}")
    } else {
        String::new()
    };
    let mut body = String::with_capacity(usize::try_from(count).unwrap_or(0) * 700 + 2);
    body.push('[');
    for i in first..first + count {
        if i > first {
            body.push(',');
        }
        let outcome = if i % 7 == 0 { "success" } else { "failure" };
        let _ = write!(
            body,
            concat!(
                r#"{{"id":"load-{i:09}","timestamp":"2026-06-20T11:30:00.123Z","category":"authentication","action":"login","#,
                r#""outcome":"{outcome}","severity":"medium","risk_score":{risk},"#,
                r#""message":"invalid password for planner account, attempt {i} from a known proxy network{sent}","#,
                r#""user_id":"planner-{user}","user_name":"alex.planner@example.org","source_ip":"203.0.{ip_c}.{ip_d}","#,
                r#""user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","#,
                r#""resource_type":"accounts","resource_id":"acct-{user}","wedding_id":"w-2026-06-20-{wedding}","#,
                r#""labels":{{"env":"prod","service":"auth-gateway"}},"attributes":{{"session_id":"s-{i:x}","mfa":false}}}}"#,
            ),
            i = i,
            outcome = outcome,
            risk = i % 100,
            sent = sent,
            user = i % 500,
            ip_c = (i / 256) % 256,
            ip_d = i % 256,
            wedding = i % 40,
        );
    }
    body.push(']');
    body
}

/// Posts one batch; `Ok(accepted events)` on 202.
async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<u64, String> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot post to {url}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
    if status != reqwest::StatusCode::ACCEPTED {
        let shown: String = text.chars().take(300).collect();
        return Err(format!("{url} answered {status}: {shown}"));
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("accepted")?.as_u64())
        .ok_or_else(|| format!("{url} answered 202 without an `accepted` count"))
}

struct Counters {
    accepted: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

/// Sends the events numbered `ids`, paced at `rate` events/s when `rate > 0`.
async fn send(
    client: &reqwest::Client,
    url: &str,
    options: &Options,
    ids: std::ops::Range<u64>,
    rate: f64,
    stamp: bool,
    counters: &Arc<Counters>,
) {
    let (first, events) = (ids.start, ids.end - ids.start);
    let slots = Arc::new(Semaphore::new(options.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = first;
    while next < first + events {
        let count = options.batch.min(first + events - next);
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64((next - first) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (client, url, counters) = (client.clone(), url.to_owned(), Arc::clone(counters));
        let batch_first = next;
        tasks.spawn(async move {
            let body = batch_body(batch_first, count, stamp);
            match post(&client, &url, body).await {
                Ok(accepted) => {
                    counters.accepted.fetch_add(accepted, Ordering::AcqRel);
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Ordering::AcqRel);
                    counters
                        .first_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_or_insert(e);
                }
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        next += count;
    }
    while tasks.join_next().await.is_some() {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let url = format!("{}/v1/events", options.url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    runtime.block_on(async {
        let counters = Arc::new(Counters {
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
        });
        if options.warmup > 0 {
            send(
                &client,
                &url,
                &options,
                1_000_000_000..1_000_000_000 + options.warmup,
                0.0,
                false,
                &counters,
            )
            .await;
            counters.accepted.store(0, Ordering::Release);
        }
        {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "warmed up");
            let _ = out.flush();
        }
        let started = Instant::now();
        send(
            &client,
            &url,
            &options,
            0..options.events,
            options.rate,
            options.stamp,
            &counters,
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let accepted = counters.accepted.load(Ordering::Acquire);
        let failed = counters.failed.load(Ordering::Acquire);
        println!(
            "sent={} accepted={accepted} failed_requests={failed} seconds={seconds:.3} rate={:.0}",
            options.events,
            accepted as f64 / seconds
        );
        let first_error = counters
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(error) = first_error {
            return Err(format!("{failed} requests failed; the first: {error}").into());
        }
        if accepted != options.events {
            return Err(
                format!("{accepted} of {} events were acknowledged", options.events).into(),
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::batch_body;

    #[test]
    fn a_batch_is_a_json_array_of_events_with_their_ids_and_stamps() {
        let body = batch_body(7, 3, true);
        let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["id"], "load-000000007");
        assert_eq!(events[2]["id"], "load-000000009");
        let message = events[1]["message"].as_str().unwrap();
        let stamp = message.rsplit_once(" sentus_").unwrap().1;
        assert!(stamp.parse::<u64>().unwrap() > 1_600_000_000_000_000);
    }

    #[test]
    fn unstamped_events_carry_no_stamp() {
        assert!(!batch_body(0, 2, false).contains("sentus_"));
    }
}
