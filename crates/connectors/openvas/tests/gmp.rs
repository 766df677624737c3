//! `OpenvasScanner::sync` against a fake gvmd speaking GMP on a Unix socket and over TLS
//! (rcgen certificates): the commands it receives, the task's last report, the incremental
//! skip, a wrong password, gvmd closing mid-report, an XML bomb for an answer, a silent
//! gvmd, and a certificate not trusted.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use secrecy::SecretString;
use vowguard_core::{Error, ErrorKind, Finding, FindingPages, Scanner, SecretRef};
use vowguard_openvas::{DEFAULT_FILTER, OpenvasConfig, OpenvasScanner};

const USER: &str = "vowguard";
/// Markup in the password: it must arrive escaped, and never appear in an error.
const PASSWORD: &str = "s3cret<&\"pw";
const TASK: &str = "f4c2b3a1-0000-4000-8000-000000000001";
const REPORT: &str = "8d3b5b8a-1f0b-4f7a-9d55-3c6a0e1c2b10";
const SCAN_END: &str = "2026-11-30T03:10:00Z";

#[derive(Default)]
struct Pages(Vec<Vec<Finding>>);

#[async_trait]
impl FindingPages for Pages {
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error> {
        self.0.push(findings);
        Ok(())
    }
}

/// The sample get_reports answer, as gvmd sends it (no XML declaration).
fn report_answer() -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report.xml"),
    )
    .unwrap();
    let start = text.find("<get_reports_response").unwrap();
    text[start..].trim_end().as_bytes().to_vec()
}

fn tasks_answer() -> Vec<u8> {
    format!(
        "<get_tasks_response status=\"200\" status_text=\"OK\"><task id=\"{TASK}\"><name>weekly</name>\
         <current_report><report id=\"still-running\"/></current_report>\
         <last_report><report id=\"{REPORT}\"><timestamp>2026-11-30T02:00:11Z</timestamp>\
         <scan_start>2026-11-30T02:00:11Z</scan_start><scan_end>{SCAN_END}</scan_end></report></last_report>\
         </task></get_tasks_response>"
    )
    .into_bytes()
}

/// How the fake gvmd answers `get_reports`.
#[derive(Clone)]
enum ReportReply {
    Whole(Vec<u8>),
    /// The first bytes, then the connection is closed.
    CutAt(usize),
    /// Nothing: gvmd stays silent with the connection open.
    Silent,
}

/// Serves GMP on one connection: records every command, authenticates against
/// `PASSWORD`, answers `get_tasks` and `get_reports`.
fn serve(mut stream: impl Read + Write, reply: &ReportReply, log: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let complete = text.ends_with("</authenticate>")
            || (text.starts_with("<get_") && text.ends_with("/>"));
        if !complete {
            continue;
        }
        buf.clear();
        log.lock().unwrap().push(text.clone());
        let answer: Vec<u8> = if text.starts_with("<authenticate>") {
            let expected = "<password>s3cret&lt;&amp;&quot;pw</password>";
            if text.contains(expected) && text.contains(&format!("<username>{USER}</username>")) {
                b"<authenticate_response status=\"200\" status_text=\"OK\"><role>Observer</role><timezone>UTC</timezone></authenticate_response>".to_vec()
            } else {
                b"<authenticate_response status=\"400\" status_text=\"Authentication failed\"/>"
                    .to_vec()
            }
        } else if text.starts_with("<get_tasks") {
            tasks_answer()
        } else if text.starts_with("<get_reports") {
            match reply {
                ReportReply::Whole(bytes) => bytes.clone(),
                ReportReply::CutAt(at) => {
                    let _ = stream.write_all(&report_answer()[..*at]);
                    let _ = stream.flush();
                    return;
                }
                ReportReply::Silent => {
                    // Wait for the client to give up and close.
                    let _ = stream.read(&mut chunk);
                    return;
                }
            }
        } else {
            b"<gmp_response status=\"400\" status_text=\"Bogus command name\"/>".to_vec()
        };
        if stream
            .write_all(&answer)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

struct FakeGvmd {
    commands: Arc<Mutex<Vec<String>>>,
    _thread: JoinHandle<()>,
}

impl FakeGvmd {
    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

/// A fake gvmd on a Unix socket in `dir`, serving connections one after the other.
fn unix_gvmd(dir: &Path, reply: ReportReply) -> (PathBuf, FakeGvmd) {
    let path = dir.join("gvmd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            serve(stream, &reply, &log);
        }
    });
    (
        path,
        FakeGvmd {
            commands,
            _thread: thread,
        },
    )
}

fn unix_config(socket: &Path) -> OpenvasConfig {
    let mut config = OpenvasConfig::unix_socket(socket, USER, SecretRef::Env("UNUSED".into()));
    config.task_id = Some(TASK.into());
    config.page_size = 2;
    config
}

fn scanner(config: &OpenvasConfig, password: &str) -> OpenvasScanner {
    OpenvasScanner::with_password(
        "gb",
        config,
        Path::new("/"),
        &SecretString::from(password.to_owned()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_task_s_last_report_is_fetched_over_the_unix_socket_then_skipped_when_not_newer() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, gvmd) = unix_gvmd(dir.path(), ReportReply::Whole(report_answer()));
    let scanner = scanner(&unix_config(&socket), PASSWORD);

    let mut pages = Pages::default();
    let summary = scanner.sync(None, &mut pages).await.unwrap();
    assert_eq!(summary.findings, 5, "the sample report's findings");
    assert_eq!(summary.pages, 3, "in pages of page_size");
    assert_eq!(
        summary.checkpoint.unwrap().to_rfc3339(),
        "2026-11-30T03:10:00+00:00",
        "the report's scan_end"
    );
    // The same findings as the file gives.
    let file = OpenvasScanner::new(
        "gb",
        &OpenvasConfig::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report.xml")),
        Path::new("/"),
    )
    .unwrap();
    let mut from_file = Pages::default();
    file.sync(None, &mut from_file).await.unwrap();
    let flat = |p: &Pages| p.0.iter().flatten().cloned().collect::<Vec<_>>();
    assert_eq!(flat(&pages), flat(&from_file));

    let commands = gvmd.commands();
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert_eq!(
        commands[0],
        "<authenticate><credentials><username>vowguard</username><password>s3cret&lt;&amp;&quot;pw</password></credentials></authenticate>"
    );
    assert_eq!(commands[1], format!("<get_tasks task_id=\"{TASK}\"/>"));
    assert_eq!(
        commands[2],
        format!(
            "<get_reports report_id=\"{REPORT}\" details=\"1\" ignore_pagination=\"1\" filter=\"{DEFAULT_FILTER}\"/>"
        )
    );

    // Incremental: the task's last report is not newer than the checkpoint.
    let mut again = Pages::default();
    let next = scanner.sync(summary.checkpoint, &mut again).await.unwrap();
    assert_eq!((next.findings, next.pages), (0, 0));
    assert_eq!(next.checkpoint, summary.checkpoint);
    assert!(again.0.is_empty());
    let commands = gvmd.commands();
    assert_eq!(
        commands.len(),
        5,
        "authenticate and get_tasks only: {commands:?}"
    );
    assert!(commands[4].starts_with("<get_tasks"));
}

#[tokio::test]
async fn a_wrong_password_is_an_error_naming_the_scanner_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, gvmd) = unix_gvmd(dir.path(), ReportReply::Whole(report_answer()));
    let wrong = "wr0ng<pw>";
    let err = scanner(&unix_config(&socket), wrong)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.component(), Some("gb"));
    let text = err.to_string();
    assert!(text.contains("scanner `gb`"), "{text}");
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(
        !text.contains("wr0ng") && !text.contains(PASSWORD),
        "{text}"
    );
    assert_eq!(gvmd.commands().len(), 1, "nothing asked after the refusal");
    assert!(!format!("{:?}", scanner(&unix_config(&socket), wrong)).contains("wr0ng"));
}

#[tokio::test]
async fn gvmd_closing_mid_report_fails_the_sync_after_the_pages_read() {
    let dir = tempfile::tempdir().unwrap();
    let answer = report_answer();
    // Cut where the fourth <result> starts: three results were whole.
    let cut = answer
        .windows(8)
        .enumerate()
        .filter(|(_, w)| w == b"<result ")
        .nth(3)
        .map(|(i, _)| i)
        .unwrap();
    let (socket, _gvmd) = unix_gvmd(dir.path(), ReportReply::CutAt(cut));
    let mut config = unix_config(&socket);
    config.page_size = 1;
    let mut pages = Pages::default();
    let err = scanner(&config, PASSWORD)
        .sync(None, &mut pages)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "gvmd at unix:{}: report {REPORT}: byte ",
            socket.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("byte {cut}: the input ends inside an element")),
        "{text}"
    );
    // The findings read before the cut were handed on (the store keeps them with the
    // last good ones; a failed sync retires nothing).
    assert!(
        !pages.0.is_empty() && pages.0.len() < 5,
        "{:?}",
        pages.0.len()
    );
}

#[tokio::test]
async fn an_xml_bomb_for_an_answer_is_refused_naming_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = b"<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><get_reports_response status=\"200\">&lol2;</get_reports_response>".to_vec();
    let (socket, _gvmd) = unix_gvmd(dir.path(), ReportReply::Whole(bomb));
    let err = scanner(&unix_config(&socket), PASSWORD)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.message(),
        format!(
            "gvmd at unix:{}: report {REPORT}: byte 0: a DOCTYPE is not accepted (no DTD or entity expansion)",
            socket.display()
        )
    );
}

#[tokio::test]
async fn an_error_status_and_a_silent_gvmd_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let refused = b"<get_reports_response status=\"404\" status_text=\"Failed to find report\"/>";
    let (socket, _gvmd) = unix_gvmd(dir.path(), ReportReply::Whole(refused.to_vec()));
    let err = scanner(&unix_config(&socket), PASSWORD)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.to_string().contains("status 404 Failed to find report"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (socket, _gvmd) = unix_gvmd(dir.path(), ReportReply::Silent);
    let mut config = unix_config(&socket);
    config.request_timeout = std::time::Duration::from_secs(1);
    let err = scanner(&config, PASSWORD)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("request_timeout"), "{err}");

    // Nobody listening.
    let err = scanner(&unix_config(&dir.path().join("none.sock")), PASSWORD)
        .sync(None, &mut Pages::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("cannot connect to gvmd at unix:"),
        "{err}"
    );
}

/// A CA and a server certificate for `localhost` signed by it.
fn pki() -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (ca_cert.pem(), server)
}

/// A fake gvmd over TLS on a loopback port.
fn tls_gvmd(server: rustls::ServerConfig) -> (u16, FakeGvmd) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Arc::new(server);
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    let thread = std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let connection = rustls::ServerConnection::new(server.clone()).unwrap();
            serve(
                rustls::StreamOwned::new(connection, tcp),
                &ReportReply::Whole(report_answer()),
                &log,
            );
        }
    });
    (
        port,
        FakeGvmd {
            commands,
            _thread: thread,
        },
    )
}

#[tokio::test]
async fn a_report_is_fetched_over_tls_with_the_configured_ca() {
    let (ca_pem, server) = pki();
    let (port, gvmd) = tls_gvmd(server);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let mut config = OpenvasConfig::tls("localhost", USER, SecretRef::Env("UNUSED".into()));
    config.port = Some(port);
    config.ca_file = Some("ca.pem".into());
    config.report_id = Some(REPORT.into());
    config.filter = Some("min_qod=70 severity>4".into());
    let scanner = OpenvasScanner::with_password(
        "gb",
        &config,
        dir.path(),
        &SecretString::from(PASSWORD.to_owned()),
    )
    .unwrap();
    let summary = scanner.sync(None, &mut Pages::default()).await.unwrap();
    assert_eq!(summary.findings, 5);
    let commands = gvmd.commands();
    assert_eq!(
        commands.len(),
        2,
        "no get_tasks with a report_id: {commands:?}"
    );
    assert_eq!(
        commands[1],
        format!(
            "<get_reports report_id=\"{REPORT}\" details=\"1\" ignore_pagination=\"1\" filter=\"min_qod=70 severity&gt;4\"/>"
        )
    );

    // Without the CA, gvmd's certificate is not accepted (on a machine without system
    // roots the configuration is refused before any connection, naming `ca_file`).
    let mut untrusted = config.clone();
    untrusted.ca_file = None;
    let err = match OpenvasScanner::with_password(
        "gb",
        &untrusted,
        dir.path(),
        &SecretString::from(PASSWORD.to_owned()),
    ) {
        Ok(scanner) => {
            let err = scanner.sync(None, &mut Pages::default()).await.unwrap_err();
            assert!(
                err.to_string().contains("certificate was not accepted"),
                "{err}"
            );
            err
        }
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");
    assert_eq!(
        gvmd.commands().len(),
        2,
        "nothing sent over the refused connection"
    );
}

#[test]
fn built_from_config_with_the_password_from_a_secret() {
    use vowguard_core::{BuildContext, Builder, Role, SecretMap};
    let factory = vowguard_core::registry::find(Role::Scanner, "openvas").unwrap();
    let Builder::Scanner(build) = factory.builder else {
        panic!("openvas is registered as a scanner");
    };
    let secrets = SecretMap::new().with("GVMD_PASSWORD", PASSWORD);
    let ctx = BuildContext {
        id: "gvmd",
        role: Role::Scanner,
        data_dir: Path::new("."),
        config_dir: Path::new("/etc/vowguard"),
        secrets: &secrets,
    };
    let table: vowguard_core::ComponentConfig = toml::from_str(&format!(
        "socket = \"/run/gvmd/gvmd.sock\"\nusername = \"vowguard\"\npassword = {{ env = \"GVMD_PASSWORD\" }}\ntask_id = \"{TASK}\""
    ))
    .unwrap();
    let scanner = build(&ctx, table).unwrap();
    assert!(!format!("{scanner:?}").contains(PASSWORD));
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "socket = \"/run/gvmd/gvmd.sock\"\nreport = \"r.xml\"\nusername = \"vowguard\"\npassword = { env = \"GVMD_PASSWORD\" }\ntask_id = \"ab\"",
    )
    .unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(err.contains("`scanners.gvmd.socket`"), "{err}");
    let table: vowguard_core::ComponentConfig = toml::from_str(
        "socket = \"/run/gvmd/gvmd.sock\"\nusername = \"vowguard\"\npassword = { env = \"NOT_SET\" }\ntask_id = \"ab\"",
    )
    .unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(err.contains("NOT_SET"), "{err}");
}
