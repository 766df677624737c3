//! Minimal local receivers for protocols wiremock does not speak, used by the demo and the
//! benchmarks: a TCP syslog receiver (octet counting) and a plain SMTP relay. They keep
//! every message in memory. (The connector tests use real daemons: rsyslog, aiosmtpd.)

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A TCP syslog receiver (octet counting) on 127.0.0.1; returns its address and the
/// messages received so far.
pub async fn syslog_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    syslog_receiver_on("127.0.0.1:0").await
}

/// [`syslog_receiver`] on a given address (e.g. one a test reserved earlier).
pub async fn syslog_receiver_on(address: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(address).await.expect("bind syslog");
    let address = listener.local_addr().expect("addr").to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let store = store.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                loop {
                    let mut len = Vec::new();
                    if reader.read_until(b' ', &mut len).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
                        break;
                    };
                    let mut msg = vec![0; n];
                    if tokio::io::AsyncReadExt::read_exact(&mut reader, &mut msg)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    store
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&msg).into_owned());
                }
            });
        }
    });
    (address, received)
}

/// A minimal SMTP relay (no TLS, no auth) on 127.0.0.1; returns its port and the messages
/// received so far (the DATA of each, one string per message).
pub async fn smtp_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 demo-relay ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-demo-relay\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 end with .\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                message.push_str(&l);
                                message.push('\n');
                            }
                            store.lock().unwrap().push(message);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, received)
}
