//! Latency of one alert email through [`EmailNotifier`] to a local SMTP server: p50 / p90 /
//! p99 / max over `--messages` alerts sent one at a time (after one warm-up message that
//! opens the pooled connection).
//!
//! Start a server first, e.g. the tests' aiosmtpd (`cargo xtask prerequisites` installs it):
//!
//! ```sh
//! target/test-prereqs/venv/bin/python -m aiosmtpd -n -c aiosmtpd.handlers.Sink -l 127.0.0.1:2525 &
//! cargo run --release -p vowguard-email --example smtp_latency -- --port 2525 --messages 500
//! ```
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use vowguard_core::{Alert, Category, Event, Notifier, Priority, Severity};
use vowguard_email::{EmailNotifier, TlsMode};

fn number(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("`{name}` needs a value"))?
            .parse()
            .map_err(|e| format!("`{name}`: {e}")),
    }
}

fn alert(i: u64) -> Alert {
    let mut e = Event::new(
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    e.id = format!("evt-{i}");
    e.message = Some("guest list of w-1 exported".into());
    e.user_name = Some("mallory".into());
    e.wedding_id = Some("w-1".into());
    let mut alert = Alert::new(Arc::new(e), Priority::P0Critical, "critical");
    alert.reasons = vec!["severity critical".into()];
    alert
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = u16::try_from(number(&args, "--port", 2525)?).map_err(|e| e.to_string())?;
    let messages = number(&args, "--messages", 500)?.max(1);
    let notifier = EmailNotifier::builder("127.0.0.1")
        .from("vowguard@example.org")
        .to(["security@example.org"])
        .port(port)
        .tls(TlsMode::None)
        .build()
        .map_err(|e| e.to_string())?;
    notifier
        .notify(&alert(0))
        .await
        .map_err(|e| e.to_string())?;
    let mut took: Vec<Duration> = Vec::new();
    for i in 1..=messages {
        let started = Instant::now();
        notifier
            .notify(&alert(i))
            .await
            .map_err(|e| e.to_string())?;
        took.push(started.elapsed());
    }
    took.sort();
    let at = |p: f64| {
        let rank = (took.len() as f64 * p).ceil() as usize;
        took[rank.clamp(1, took.len()) - 1].as_secs_f64() * 1e3
    };
    println!(
        "smtp_latency: {messages} alert emails one at a time to 127.0.0.1:{port} (tls none)\n\
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
