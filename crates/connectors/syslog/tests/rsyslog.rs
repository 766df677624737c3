//! Against a real receiver: Debian's rsyslogd (installed on demand, see `support/rsyslog.rs`).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::pki::TestPki;
use support::rsyslog::{Listener, Rsyslog};
use support::{seq_of, siem_message};
use vowguard_syslog::{SyslogClient, SyslogConfig, TlsConfig, Transport};

const N: usize = 100;

fn tcp_client(port: u16) -> SyslogClient {
    let mut config = SyslogConfig::new(format!("127.0.0.1:{port}"));
    config.connect_timeout = std::time::Duration::from_millis(2000);
    config.write_timeout = std::time::Duration::from_millis(2000);
    SyslogClient::new(config).unwrap()
}

/// How often each sequence number arrived; panics if a line is not one of ours or is damaged.
fn tally(lines: &[String]) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for line in lines {
        let seq = seq_of(line.as_bytes())
            .unwrap_or_else(|| panic!("unexpected line from rsyslog: {line:?}"));
        let expected = String::from_utf8(siem_message(seq)).unwrap();
        assert_eq!(line, &expected, "message {seq} was altered on the way");
        *seen.entry(seq).or_insert(0) += 1;
    }
    seen
}

async fn send_all(client: &SyslogClient, messages: &[Vec<u8>]) {
    for chunk in messages.chunks(10) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        for (i, result) in client.send(&refs).await.into_iter().enumerate() {
            result.unwrap_or_else(|e| {
                panic!(
                    "message {} not sent: {e}",
                    seq_of(chunk[i].as_slice()).unwrap_or(0)
                )
            });
        }
    }
}

async fn assert_all_intact(rsyslog: &Rsyslog, n: usize) {
    let lines = rsyslog
        .wait_for(Duration::from_secs(10), |l| l.len() >= n)
        .await;
    let seen = tally(&lines);
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "rsyslog is missing {missing:?}\n{}",
        rsyslog.diagnostics()
    );
    assert_eq!(
        lines.len(),
        n,
        "duplicates: {:?}",
        seen.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_100_octet_counted_messages_over_tcp() {
    let rsyslog = Rsyslog::start(Listener::Tcp);
    let client = tcp_client(rsyslog.port);
    let messages: Vec<Vec<u8>> = (0..N).map(siem_message).collect();
    send_all(&client, &messages).await;
    assert_all_intact(&rsyslog, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_100_messages_over_tls() {
    let pki = TestPki::generate(&["localhost", "127.0.0.1"]);
    let rsyslog = Rsyslog::start(Listener::Tls {
        ca_file: pki.ca_file.clone(),
        cert_file: pki.server_cert_file.clone(),
        key_file: pki.server_key_file.clone(),
    });
    let mut config = SyslogConfig::new(format!("127.0.0.1:{}", rsyslog.port));
    config.transport = Transport::Tls;
    config.connect_timeout = std::time::Duration::from_millis(3000);
    config.write_timeout = std::time::Duration::from_millis(3000);
    config.tls = Some(
        TlsConfig::default()
            .with_ca_file(pki.ca_file.clone())
            .with_server_name("localhost"),
    );
    let client = SyslogClient::new(config).unwrap();
    client.healthcheck().await.unwrap_or_else(|e| {
        panic!(
            "TLS handshake with rsyslog failed: {e}\n{}",
            rsyslog.diagnostics()
        )
    });
    let messages: Vec<Vec<u8>> = (0..N).map(siem_message).collect();
    send_all(&client, &messages).await;
    assert_all_intact(&rsyslog, N).await;
}

/// Sends `pending` until every message was counted Ok once, resending exactly the ones that
/// came back with a retryable error (as the pipeline does). Returns how many were resent.
async fn deliver_with_retries(
    client: &SyslogClient,
    mut pending: Vec<usize>,
    rsyslog: &Rsyslog,
) -> usize {
    let mut resent = 0;
    for _round in 0..200 {
        if pending.is_empty() {
            return resent;
        }
        let batch: Vec<usize> = pending.iter().copied().take(10).collect();
        let messages: Vec<Vec<u8>> = batch.iter().map(|&i| siem_message(i)).collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let results = client.send(&refs).await;
        assert_eq!(results.len(), batch.len());
        let mut failed = Vec::new();
        for (seq, result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {}
                Err(e) => {
                    assert!(e.is_retryable(), "message {seq}: non-retryable error {e}");
                    failed.push(*seq);
                }
            }
        }
        resent += failed.len();
        pending.retain(|s| !batch.contains(s) || failed.contains(s));
        if !failed.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "messages {pending:?} were never delivered\n{}",
        rsyslog.diagnostics()
    );
}

/// rsyslogd crashes (SIGKILL) between two batches and comes back on the same port: the
/// client notices the closed connection before writing, reports the batch as retryable
/// instead of writing it into a dead socket, reconnects, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_crash_between_batches_loses_nothing() {
    let mut rsyslog = Rsyslog::start(Listener::Tcp);
    let client = tcp_client(rsyslog.port);
    let first: Vec<Vec<u8>> = (0..50).map(siem_message).collect();
    send_all(&client, &first).await;
    // Everything counted Ok has been read and written by rsyslog before it dies.
    let lines = rsyslog
        .wait_for(Duration::from_secs(10), |l| l.len() >= 50)
        .await;
    assert_eq!(lines.len(), 50, "{}", rsyslog.diagnostics());
    rsyslog.stop(true);

    // The receiver is gone: the next batch must not be counted Ok (it would be lost).
    let batch: Vec<Vec<u8>> = (50..60).map(siem_message).collect();
    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let results = client.send(&refs).await;
    for (i, result) in results.iter().enumerate() {
        let err = result.as_ref().err().unwrap_or_else(|| {
            panic!(
                "message {} was counted Ok although rsyslogd is dead",
                50 + i
            )
        });
        assert!(err.is_retryable(), "{err}");
    }

    rsyslog.restart();
    let resent = deliver_with_retries(&client, (50..N).collect(), &rsyslog).await;
    let lines = rsyslog
        .wait_for(Duration::from_secs(10), |l| l.len() >= N)
        .await;
    let seen = tally(&lines);
    let missing: Vec<usize> = (0..N).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}\n{}",
        rsyslog.diagnostics()
    );
    let duplicates: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    eprintln!(
        "crash between batches: 10 message(s) refused while rsyslogd was down, {resent} more retryable error(s) after the restart, duplicates: {duplicates:?}"
    );
    assert!(duplicates.is_empty(), "duplicates {duplicates:?}");
}

/// rsyslogd is restarted (SIGTERM, then started again on the same port) while a sender is
/// streaming. Every message that came back with a retryable error is resent until it is
/// counted Ok; all of those must arrive. Messages counted Ok in the instant before the
/// shutdown may sit unread in rsyslogd's socket buffer and be lost with it: that is the
/// documented limit of syslog over TCP (no acknowledgements); the test reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_restart_mid_stream_resends_failed_messages() {
    let mut rsyslog = Rsyslog::start(Listener::Tcp);
    let port = rsyslog.port;
    let client = std::sync::Arc::new(tcp_client(port));
    const TOTAL: usize = 400;

    // Sender: streams all messages in batches of 10, resending failures, while the main
    // task restarts rsyslogd after the first 100 are through.
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0usize);
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut ever_failed = std::collections::BTreeSet::new();
            let mut next = 0;
            let mut pending: Vec<usize> = Vec::new();
            let mut ok_count = 0;
            while next < TOTAL || !pending.is_empty() {
                while pending.len() < 10 && next < TOTAL {
                    pending.push(next);
                    next += 1;
                }
                let messages: Vec<Vec<u8>> = pending.iter().map(|&i| siem_message(i)).collect();
                let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                let results = client.send(&refs).await;
                let mut failed = Vec::new();
                for (seq, result) in pending.iter().zip(results) {
                    match result {
                        Ok(()) => ok_count += 1,
                        Err(e) => {
                            assert!(e.is_retryable(), "{e}");
                            failed.push(*seq);
                        }
                    }
                }
                ever_failed.extend(failed.iter().copied());
                let had_failures = !failed.is_empty();
                pending = failed;
                let _ = progress_tx.send(ok_count);
                // Paced so the restart happens while the stream is still going.
                let pause = if had_failures { 20 } else { 10 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            ever_failed
        })
    };
    progress_rx.wait_for(|ok| *ok >= 100).await.unwrap();
    rsyslog.stop(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    rsyslog.restart();
    let ever_failed = tokio::time::timeout(Duration::from_secs(15), sender)
        .await
        .expect("sender did not finish")
        .unwrap();

    // The old daemon is gone, so once everything from the first failure on is in the file,
    // nothing earlier can still arrive.
    let first_failure = ever_failed.iter().min().copied().unwrap_or(TOTAL);
    let lines = rsyslog
        .wait_for(Duration::from_secs(10), |l| {
            let seen = tally(l);
            (first_failure..TOTAL).all(|i| seen.contains_key(&i))
        })
        .await;
    let seen = tally(&lines);
    let missing: Vec<usize> = (0..TOTAL).filter(|i| !seen.contains_key(i)).collect();
    let duplicates: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    eprintln!(
        "restart mid-stream: {} message(s) got a retryable error and were resent; missing (counted Ok, lost in rsyslogd's socket buffer at shutdown): {missing:?}; duplicates: {duplicates:?}",
        ever_failed.len()
    );
    let lost_resends: Vec<_> = ever_failed
        .iter()
        .filter(|i| !seen.contains_key(i))
        .collect();
    assert!(
        lost_resends.is_empty(),
        "resent messages missing: {lost_resends:?}\n{}",
        rsyslog.diagnostics()
    );
    assert!(
        !ever_failed.is_empty(),
        "the restart was not noticed by the sender"
    );
    // Messages are sent in order: from the first failure on, everything was either resent
    // or written on the new connection, so only messages before it can be in the window.
    let missing_after: Vec<_> = missing.iter().filter(|&&i| i >= first_failure).collect();
    assert!(
        missing_after.is_empty(),
        "missing after the first failure ({first_failure}): {missing_after:?}"
    );
}
