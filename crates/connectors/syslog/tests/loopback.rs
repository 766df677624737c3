//! The client against in-test tokio receivers on loopback: TCP, UDP, TLS, reconnects.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use support::frames::{FrameReader, read_all};
use support::pki::TestPki;
use support::{seq_of, siem_message};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio_rustls::TlsAcceptor;
use vowguard_core::ErrorKind;
use vowguard_syslog::{Framing, MAX_UDP_MESSAGE, SyslogClient, SyslogConfig, TlsConfig, Transport};

const LIMIT: Duration = Duration::from_secs(10);

fn config(addr: std::net::SocketAddr) -> SyslogConfig {
    let mut config = SyslogConfig::new(addr.to_string());
    config.connect_timeout = std::time::Duration::from_millis(2000);
    config.write_timeout = std::time::Duration::from_millis(2000);
    config
}

fn refs(messages: &[Vec<u8>]) -> Vec<&[u8]> {
    messages.iter().map(Vec::as_slice).collect()
}

fn assert_all_ok(results: Vec<Result<(), vowguard_core::Error>>) {
    for (i, r) in results.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[tokio::test]
async fn tcp_octet_counting_delivers_messages_intact_and_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_all(&mut stream).await
    });
    let client = SyslogClient::new(config(addr)).unwrap();
    let messages: Vec<Vec<u8>> = (0..50).map(siem_message).collect();
    for chunk in messages.chunks(7) {
        assert_all_ok(client.send(&refs(chunk)).await);
    }
    client.close().await;
    let (frames, leftover) = tokio::time::timeout(LIMIT, receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(leftover, 0);
    assert_eq!(
        frames, messages,
        "one connection, every frame intact and in order"
    );
}

#[tokio::test]
async fn tcp_lf_framing_keeps_one_record_per_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        all
    });
    let mut cfg = config(addr);
    cfg.framing = Framing::Lf;
    let client = SyslogClient::new(cfg).unwrap();
    let messages: Vec<&[u8]> = vec![
        b"<13>1 - - - - - - first",
        b"<13>1 - - - - - - evil\n<13>1 - - - - - - injected\r\nrecord",
        b"<13>1 - - - - - - third",
    ];
    assert_all_ok(client.send(&messages).await);
    client.close().await;
    let all = tokio::time::timeout(LIMIT, receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(all).unwrap(),
        "<13>1 - - - - - - first\n<13>1 - - - - - - evil <13>1 - - - - - - injected  record\n<13>1 - - - - - - third\n"
    );
}

#[tokio::test]
async fn udp_sends_one_datagram_per_message_truncated_to_2048() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(receiver.local_addr().unwrap());
    cfg.transport = Transport::Udp;
    let client = SyslogClient::new(cfg).unwrap();
    client.healthcheck().await.unwrap();
    let mut long = b"<13>1 - - - - - - ".to_vec();
    while long.len() < 3000 {
        long.extend_from_slice("ü€".as_bytes());
    }
    let messages = vec![siem_message(1), long.clone(), siem_message(2)];
    assert_all_ok(client.send(&refs(&messages)).await);
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(LIMIT, receiver.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got[0], messages[0], "no framing on UDP");
    assert!(
        got[1].len() <= MAX_UDP_MESSAGE && got[1].len() > MAX_UDP_MESSAGE - 4,
        "{}",
        got[1].len()
    );
    assert!(long.starts_with(&got[1]));
    assert!(
        std::str::from_utf8(&got[1]).is_ok(),
        "cut at a UTF-8 boundary"
    );
    assert_eq!(got[2], messages[2]);
}

async fn tls_server(
    pki: &TestPki,
    require_client_cert: bool,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<Vec<Vec<u8>>, std::io::Error>>,
) {
    let (chain, key) = pki.server_identity();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let server = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap()
    } else {
        builder
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap()
    };
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Serves until one client completes a handshake, then reads that session to its end.
    let handle = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await?;
            if let Ok(mut tls) = acceptor.accept(stream).await {
                return Ok(read_all(&mut tls).await.0);
            }
        }
    });
    (addr, handle)
}

fn tls_config(addr: std::net::SocketAddr, tls: TlsConfig) -> SyslogConfig {
    let mut cfg = config(addr);
    cfg.transport = Transport::Tls;
    cfg.tls = Some(tls);
    cfg
}

#[tokio::test]
async fn tls_with_ca_file_verifies_and_delivers() {
    let pki = TestPki::generate(&["syslog.test", "127.0.0.1"]);
    let (addr, server) = tls_server(&pki, false).await;
    let client = SyslogClient::new(tls_config(
        addr,
        TlsConfig::default().with_ca_file(pki.ca_file.clone()),
    ))
    .unwrap();
    let messages: Vec<Vec<u8>> = (0..20).map(siem_message).collect();
    assert_all_ok(client.send(&refs(&messages)).await);
    client.close().await;
    let frames = tokio::time::timeout(LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frames, messages);
}

#[tokio::test]
async fn tls_server_name_override_is_used_for_verification() {
    let pki = TestPki::generate(&["syslog.test"]);
    let (addr, server) = tls_server(&pki, false).await;
    let client = SyslogClient::new(tls_config(
        addr,
        TlsConfig::default()
            .with_ca_file(pki.ca_file.clone())
            .with_server_name("syslog.test"),
    ))
    .unwrap();
    assert_all_ok(client.send(&[siem_message(7).as_slice()]).await);
    client.close().await;
    let frames = tokio::time::timeout(LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frames, vec![siem_message(7)]);
}

#[tokio::test]
async fn tls_with_unknown_ca_fails_clearly_and_is_not_retryable() {
    let pki = TestPki::generate(&["127.0.0.1"]);
    let (addr, _server) = tls_server(&pki, false).await;
    // No ca_file: only the system roots, which do not know the test CA.
    match SyslogClient::new(tls_config(addr, TlsConfig::default())) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Config, "no system roots here: {e}"),
        Ok(client) => {
            let results = client
                .send(&[
                    b"<13>1 - - - - - - x".as_slice(),
                    b"<13>1 - - - - - - y".as_slice(),
                ])
                .await;
            assert_eq!(results.len(), 2);
            for r in results {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Config, "{e}");
                assert!(!e.is_retryable());
                let text = e.to_string();
                assert!(
                    text.contains("certificate") && text.contains("tls.ca_file"),
                    "{text}"
                );
                assert!(text.contains("UnknownIssuer"), "{text}");
            }
            let e = client.healthcheck().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        }
    }
}

#[tokio::test]
async fn tls_with_wrong_server_name_fails_verification() {
    let pki = TestPki::generate(&["syslog.test"]);
    let (addr, _server) = tls_server(&pki, false).await;
    let client = SyslogClient::new(tls_config(
        addr,
        TlsConfig::default().with_ca_file(pki.ca_file.clone()),
    ))
    .unwrap();
    let e = client.healthcheck().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("NotValidForName"), "{e}");
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = TestPki::generate(&["127.0.0.1"]);
    let (addr, server) = tls_server(&pki, true).await;
    let client = SyslogClient::new(tls_config(
        addr,
        TlsConfig::default()
            .with_ca_file(pki.ca_file.clone())
            .with_client_cert_file(pki.client_cert_file.clone())
            .with_client_key_file(pki.client_key_file.clone()),
    ))
    .unwrap();
    assert_all_ok(client.send(&[siem_message(3).as_slice()]).await);
    client.close().await;
    let frames = tokio::time::timeout(LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frames, vec![siem_message(3)]);
}

#[tokio::test]
async fn tls_config_errors() {
    let pki = TestPki::generate(&["127.0.0.1"]);
    let addr: std::net::SocketAddr = "127.0.0.1:6514".parse().unwrap();
    let mut lf = tls_config(addr, TlsConfig::default().with_ca_file(pki.ca_file.clone()));
    lf.framing = Framing::Lf;
    assert_eq!(SyslogClient::new(lf).unwrap_err().kind(), ErrorKind::Config);
    let missing = tls_config(
        addr,
        TlsConfig::default().with_ca_file(pki.dir.path().join("nope.pem")),
    );
    let e = SyslogClient::new(missing).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("nope.pem"), "{e}");
    let not_pem = tls_config(
        addr,
        TlsConfig::default().with_ca_file(pki.server_key_file.clone()),
    );
    assert_eq!(
        SyslogClient::new(not_pem).unwrap_err().kind(),
        ErrorKind::Config
    );
    let bad_key = tls_config(
        addr,
        TlsConfig::default()
            .with_ca_file(pki.ca_file.clone())
            .with_client_cert_file(pki.client_cert_file.clone())
            .with_client_key_file(pki.ca_file),
    );
    assert_eq!(
        SyslogClient::new(bad_key).unwrap_err().kind(),
        ErrorKind::Config
    );
}

#[tokio::test]
async fn connection_refused_is_retryable_for_every_message() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = SyslogClient::new(config(addr)).unwrap();
    let results = client
        .send(&[b"a".as_slice(), b"b".as_slice(), b"c".as_slice()])
        .await;
    assert_eq!(results.len(), 3);
    for r in results {
        let e = r.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
    assert!(client.healthcheck().await.unwrap_err().is_retryable());
    assert!(client.send(&[]).await.is_empty());
}

#[tokio::test]
async fn healthcheck_connects_and_the_connection_is_reused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = SyslogClient::new(config(addr)).unwrap();
    client.healthcheck().await.unwrap();
    let (mut stream, _) = listener.accept().await.unwrap();
    assert_all_ok(client.send(&[b"x".as_slice()]).await);
    client.close().await;
    let (frames, _) = tokio::time::timeout(LIMIT, read_all(&mut stream))
        .await
        .unwrap();
    assert_eq!(frames, vec![b"x".to_vec()]);
}

/// The receiver reads K messages and closes the connection. The client notices the closed
/// connection before writing the next batch, reconnects, and every message arrives once.
#[tokio::test]
async fn receiver_closing_after_k_messages_causes_a_reconnect_without_loss() {
    const K: usize = 10;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let receiver = tokio::spawn(async move {
        let mut received = Vec::new();
        let (mut first, _) = listener.accept().await.unwrap();
        let mut reader = FrameReader::default();
        for _ in 0..K {
            received.push(
                reader
                    .next(&mut first)
                    .await
                    .expect("K frames on the first connection"),
            );
        }
        drop(first);
        closed_tx.send(()).unwrap();
        let (mut second, _) = listener.accept().await.unwrap();
        let (rest, leftover) = read_all(&mut second).await;
        assert_eq!(leftover, 0);
        received.extend(rest);
        received
    });
    let client = SyslogClient::new(config(addr)).unwrap();
    let messages: Vec<Vec<u8>> = (0..30).map(siem_message).collect();
    assert_all_ok(client.send(&refs(&messages[..K])).await);
    closed_rx.await.unwrap();
    // The receiver is gone; without the closed-peer check these would be "written" into a
    // dead socket and lost.
    let mut pending: Vec<usize> = (K..30).collect();
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        let batch: Vec<Vec<u8>> = pending.iter().map(|&i| messages[i].clone()).collect();
        let results = client.send(&refs(&batch)).await;
        let mut failed = Vec::new();
        for (seq, r) in pending.iter().zip(results) {
            if let Err(e) = r {
                assert!(e.is_retryable(), "{e}");
                failed.push(*seq);
            }
        }
        pending = failed;
    }
    assert!(pending.is_empty());
    client.close().await;
    let received = tokio::time::timeout(LIMIT, receiver)
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<usize> = received.iter().map(|m| seq_of(m).unwrap()).collect();
    assert_eq!(
        seqs,
        (0..30).collect::<Vec<_>>(),
        "every message exactly once, in order"
    );
}

const PADDING: usize = 64 * 1024;

/// Enough padded messages to fill the client's send buffer (up to tcp_wmem max) twice.
fn message_count() -> usize {
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 << 20);
    (2 * wmem_max) / PADDING + 16
}

/// A receiver that stops reading: the write times out, the connection is dropped, that
/// message and the rest of the batch come back retryable, and after resending them the
/// receiver has every message exactly once (the cut-off frame is incomplete and dropped).
#[tokio::test]
async fn write_timeout_reports_the_rest_retryable_and_resending_loses_nothing() {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let total = message_count();
    let receiver = tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        drain_rx.await.unwrap();
        let (mut frames, mut dropped) = read_all(&mut first).await;
        // Each later connection is read to its end; a resend that times out again leaves
        // another cut-off frame, which is dropped the same way.
        while frames.len() < total {
            let (mut next, _) = listener.accept().await.unwrap();
            let (more, leftover) = read_all(&mut next).await;
            frames.extend(more);
            dropped += leftover;
        }
        (frames, dropped)
    });
    let count = total;
    let messages: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut m = siem_message(i);
            m.extend(std::iter::repeat_n(b'x', PADDING));
            m
        })
        .collect();
    let mut cfg = config(addr);
    cfg.write_timeout = std::time::Duration::from_millis(300);
    let client = SyslogClient::new(cfg).unwrap();
    let results = client.send(&refs(&messages)).await;
    let first_err = results
        .iter()
        .position(Result::is_err)
        .expect("the stalled receiver made a write time out");
    assert!(results[..first_err].iter().all(Result::is_ok));
    for r in &results[first_err..] {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }
    assert_eq!(
        results[first_err].as_ref().unwrap_err().kind(),
        ErrorKind::Timeout
    );

    drain_tx.send(()).unwrap();
    // Same client: the next send reconnects. Resend what failed, as the pipeline would.
    let mut pending: Vec<usize> = (first_err..count).collect();
    for _ in 0..50 {
        if pending.is_empty() {
            break;
        }
        let batch: Vec<Vec<u8>> = pending.iter().map(|&i| messages[i].clone()).collect();
        let results = client.send(&refs(&batch)).await;
        let mut failed = Vec::new();
        for (seq, r) in pending.iter().zip(results) {
            if let Err(e) = r {
                assert!(e.is_retryable(), "{e}");
                failed.push(*seq);
            }
        }
        pending = failed;
    }
    assert!(pending.is_empty(), "never delivered: {pending:?}");
    client.close().await;
    let (frames, leftover) = tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<usize> = frames.iter().map(|m| seq_of(m).unwrap()).collect();
    assert_eq!(
        seqs,
        (0..count).collect::<Vec<_>>(),
        "every message exactly once (cut-off frame: {leftover} bytes dropped)"
    );
}
