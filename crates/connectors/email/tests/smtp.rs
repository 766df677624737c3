//! The email notifier against a real SMTP server (aiosmtpd, see `support/`): plain relay,
//! STARTTLS + AUTH, implicit TLS, refusal to downgrade, credential and certificate
//! failures, reply-code mapping, hostile event text, per-route recipients and the registry.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use support::{Certs, Mode, PASSWORD, Received, SmtpServer, USER};
use vowguard_core::registry::{self, BuildContext, Builder, Role};
use vowguard_core::{
    Alert, Category, Error, ErrorKind, Event, Notifier, Priority, SecretMap, Severity,
};
use vowguard_email::{EmailConfig, EmailNotifier, TlsMode};

const FROM: &str = "vowguard <alerts@example.org>";
const TO: &str = "secops@example.org";

fn config(server: &SmtpServer, tls: TlsMode) -> EmailConfig {
    let mut c = EmailConfig::new("127.0.0.1", FROM, vec![TO.to_owned()]);
    c.port = Some(server.port);
    c.tls = tls;
    c.timeout = std::time::Duration::from_millis(5_000);
    c
}

/// A notifier from a config and its resolved password: the path the registry's factory takes.
fn notifier_from(
    config: EmailConfig,
    password: Option<SecretString>,
) -> Result<EmailNotifier, vowguard_core::Error> {
    config.into_builder(password).build()
}

fn with_ca(mut config: EmailConfig, certs: &Certs) -> EmailConfig {
    config.ca_file = Some(certs.ca.clone());
    config
}

fn with_auth(mut config: EmailConfig) -> (EmailConfig, Option<SecretString>) {
    config.username = Some(USER.to_owned());
    (config, Some(SecretString::from(PASSWORD)))
}

fn event() -> Event {
    let mut e = Event::new(
        Category::DataExport,
        "guest_list.export",
        Severity::Critical,
    );
    e.message = Some("guest list of w-1 exported".into());
    e.user_name = Some("mallory".into());
    e.wedding_id = Some("w-1".into());
    e.risk_score = Some(91);
    e
}

fn alert(event: Event) -> Alert {
    let mut alert = Alert::new(Arc::new(event), Priority::P0Critical, "critical");
    alert.reasons = vec!["severity critical".into()];
    alert
}

fn only(server: &SmtpServer) -> Received {
    let mut received = server.received();
    assert_eq!(
        received.len(),
        1,
        "messages received: {received:#?}\n{}",
        server.log()
    );
    received.remove(0)
}

/// Checks the message is well-formed multipart/alternative with both parts.
fn assert_well_formed(m: &Received) {
    assert!(m.defects.is_empty(), "MIME defects: {:?}", m.defects);
    assert_eq!(m.content_type, "multipart/alternative");
    assert!(m.is_multipart);
    assert_eq!(m.parts.len(), 2, "{:?}", m.parts);
    assert_eq!(m.parts[0].content_type, "text/plain");
    assert_eq!(m.parts[1].content_type, "text/html");
    assert_eq!(m.parts[0].charset.as_deref(), Some("utf-8"));
    assert!(m.header("Date").len() > 10);
    assert_eq!(m.header("MIME-Version"), "1.0");
}

#[tokio::test]
async fn plain_relay_delivers_a_valid_mime_message() {
    let server = SmtpServer::start(Mode::Plain, None, false);
    let notifier = notifier_from(config(&server, TlsMode::None), None).unwrap();
    let receipt = notifier.notify(&alert(event())).await.unwrap();

    let m = only(&server);
    assert_well_formed(&m);
    assert_eq!(m.mail_from, "alerts@example.org");
    assert_eq!(m.rcpt_tos, vec![TO]);
    assert!(!m.tls);
    assert_eq!(
        m.header("Subject"),
        "[vowguard] P0_CRITICAL guest_list.export – wedding w-1"
    );
    assert_eq!(m.header("From"), FROM);
    assert_eq!(m.header("To"), TO);
    assert_eq!(m.header("X-Priority"), "1 (Highest)");
    assert_eq!(m.header("Importance"), "high");
    assert_eq!(m.header("Auto-Submitted"), "auto-generated");
    let message_id = m.header("Message-ID");
    assert!(message_id.starts_with("<vowguard.") && message_id.ends_with("@example.org>"));
    assert_eq!(receipt.delivery_id.as_deref(), Some(message_id));
    let text = m.part("text/plain");
    assert!(text.contains("guest list of w-1 exported"), "{text}");
    assert!(text.contains("Risk score:"), "{text}");
    assert!(text.contains("severity critical"), "{text}");
    let html = m.part("text/html");
    assert!(html.contains("<td>mallory</td>"), "{html}");
    assert!(html.contains("<li>severity critical</li>"), "{html}");
}

#[tokio::test]
async fn starttls_with_private_ca_and_auth_delivers() {
    let certs = Certs::generate();
    let server = SmtpServer::start(Mode::Starttls, Some(&certs), true);
    let (config, password) = with_auth(with_ca(config(&server, TlsMode::Starttls), &certs));
    let notifier = notifier_from(config, password).unwrap();
    notifier.healthcheck().await.unwrap();
    // Two alerts through the same pooled transport.
    notifier.notify(&alert(event())).await.unwrap();
    notifier.notify(&alert(event())).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 2, "{}", server.log());
    for m in &received {
        assert_well_formed(m);
        assert!(m.tls, "sent only after STARTTLS");
        assert!(m.authenticated);
        assert_eq!(m.login.as_deref(), Some(USER));
        assert_eq!(m.rcpt_tos, vec![TO]);
    }
}

#[tokio::test]
async fn starttls_never_downgrades_to_plain_text() {
    let certs = Certs::generate();
    // This server does not offer STARTTLS at all (as a stripping attacker would show it).
    let server = SmtpServer::start(Mode::Plain, None, false);
    let notifier =
        notifier_from(with_ca(config(&server, TlsMode::Starttls), &certs), None).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("does not offer STARTTLS"), "{err}");
    assert!(
        server.received().is_empty(),
        "nothing may be sent in plain text"
    );
    let err = notifier.healthcheck().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn wrong_password_is_unauthorized_and_not_retryable() {
    let certs = Certs::generate();
    let server = SmtpServer::start(Mode::Starttls, Some(&certs), true);
    let (config, _) = with_auth(with_ca(config(&server, TlsMode::Starttls), &certs));
    let wrong = "not-the-password-Zq9";
    let notifier = notifier_from(config, Some(SecretString::from(wrong))).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Unauthorized,
        "{err}\n{}",
        server.log()
    );
    assert!(!err.is_retryable());
    assert_eq!(err.status(), Some(535));
    let text = format!("{err} {err:?} {notifier:?}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let certs = Certs::generate();
    let server = SmtpServer::start(Mode::Tls, Some(&certs), true);
    let (config, password) = with_auth(with_ca(config(&server, TlsMode::Tls), &certs));
    let notifier = notifier_from(config, password).unwrap();
    notifier.notify(&alert(event())).await.unwrap();
    let m = only(&server);
    assert_well_formed(&m);
    assert!(m.tls);
    assert!(m.authenticated);
}

#[tokio::test]
async fn untrusted_certificate_is_a_non_retryable_tls_error() {
    let certs = Certs::generate();
    let other_ca = Certs::generate();
    let server = SmtpServer::start(Mode::Tls, Some(&certs), false);
    let notifier = notifier_from(with_ca(config(&server, TlsMode::Tls), &other_ca), None).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
    assert!(server.received().is_empty());

    // The same with STARTTLS: the upgrade fails, nothing is sent.
    let server = SmtpServer::start(Mode::Starttls, Some(&certs), false);
    let notifier =
        notifier_from(with_ca(config(&server, TlsMode::Starttls), &other_ca), None).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn reply_codes_map_to_error_kinds() {
    let server = SmtpServer::start(Mode::Plain, None, false);
    let notifier = notifier_from(config(&server, TlsMode::None), None).unwrap();

    let mut a = alert(event());
    a.params
        .insert("recipients".into(), json!(["unknown-mailbox@example.org"]));
    let err = notifier.notify(&a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert_eq!(err.status(), Some(550));
    assert!(err.to_string().contains("Mailbox unavailable"), "{err}");

    a.params
        .insert("recipients".into(), json!(["busy-mailbox@example.org"]));
    let err = notifier.notify(&a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(451));

    assert!(server.received().is_empty());
    // The pooled connection is still good after refused transactions.
    notifier.notify(&alert(event())).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn unreachable_and_silent_servers_are_retryable() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut c = EmailConfig::new("127.0.0.1", FROM, vec![TO.to_owned()]);
    c.port = Some(port);
    c.tls = TlsMode::None;
    c.timeout = std::time::Duration::from_millis(2_000);
    let notifier = notifier_from(c.clone(), None).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        notifier.healthcheck().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    // A server that accepts the connection but never greets: bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    c.port = Some(silent.local_addr().unwrap().port());
    c.timeout = std::time::Duration::from_millis(200);
    let notifier = notifier_from(c, None).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), notifier.notify(&alert(event())))
        .await
        .expect("the notifier's own timeout ends the attempt")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    drop(silent);
}

#[tokio::test]
async fn hostile_event_text_adds_no_headers_or_recipients() {
    let server = SmtpServer::start(Mode::Plain, None, false);
    let notifier = notifier_from(config(&server, TlsMode::None), None).unwrap();
    let mut e = event();
    e.wedding_id = None;
    e.action = "login\r\nBcc: victim@example.org".into();
    e.user_name = Some("eve\r\nBcc: victim@example.org\r\nX-Injected: yes".into());
    e.message = Some(format!(
        "hello\r\nBcc: victim@example.org\r\n\r\n<script>alert('x')</script>{}",
        "A".repeat(10_000)
    ));
    let mut a = alert(e);
    a.route = "r\r\nCc: victim@example.org".into();
    notifier.notify(&a).await.unwrap();

    let m = only(&server);
    assert_well_formed(&m);
    assert_eq!(
        m.rcpt_tos,
        vec![TO],
        "the envelope has only the configured recipient"
    );
    let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "From",
            "Subject",
            "Date",
            "Message-ID",
            "User-Agent",
            "To",
            "X-Priority",
            "Importance",
            "Auto-Submitted",
            "X-Vowguard-Priority",
            "Priority",
            "MIME-Version",
            "Content-Type",
        ],
        "{:?}",
        m.headers
    );
    assert_eq!(m.header("To"), TO);
    let subject = m.header("Subject");
    assert!(
        subject.starts_with(
            "[vowguard] P0_CRITICAL login Bcc: victim@example.org – hello Bcc: victim@example.org <script>"
        ),
        "{subject}"
    );
    assert!(subject.chars().count() <= 200, "{subject}");
    let head_end = m.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&m.raw[..head_end]);
    assert!(!head.to_ascii_lowercase().contains("\nbcc:"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("\ncc:"), "{head}");
    assert!(!head.contains("X-Injected"), "{head}");

    let html = m.part("text/html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    let text = m.part("text/plain");
    assert!(text.contains("Message:"), "{text}");
    assert!(
        !text.contains("\nBcc:"),
        "no fake lines in the text part either: {text}"
    );
}

#[tokio::test]
async fn per_route_recipients_and_priority_from_params() {
    let server = SmtpServer::start(Mode::Plain, None, false);
    let notifier = notifier_from(config(&server, TlsMode::None), None).unwrap();
    let mut a = alert(event());
    a.priority = Priority::P2Medium;
    a.params.insert(
        "recipients".into(),
        json!(["oncall@example.org", "Wedding Ops <ops@example.org>"]),
    );
    a.params.insert("email_priority".into(), json!("urgent"));
    notifier.notify(&a).await.unwrap();
    let m = only(&server);
    assert_eq!(m.rcpt_tos, vec!["oncall@example.org", "ops@example.org"]);
    assert_eq!(
        m.header("To"),
        "oncall@example.org, Wedding Ops <ops@example.org>"
    );
    assert_eq!(m.header("X-Priority"), "1 (Highest)");
    assert_eq!(m.header("X-Vowguard-Priority"), "P2_MEDIUM");

    // A bad per-route address is a config error, and nothing is sent.
    a.params
        .insert("recipients".into(), json!(["not an address"]));
    let err = notifier.notify(&a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("params.recipients[0]"), "{err}");
    assert_eq!(server.received().len(), 1);
}

fn build_from_registry(
    id: &str,
    toml_text: &str,
    secrets: &SecretMap,
) -> Result<Arc<dyn Notifier>, Error> {
    let factory = registry::find(Role::Notifier, "email").unwrap();
    let Builder::Notifier(build) = factory.builder else {
        panic!("email is registered as a notifier");
    };
    let ctx = BuildContext {
        id,
        role: Role::Notifier,
        data_dir: Path::new("."),
        config_dir: Path::new("."),
        secrets,
    };
    build(&ctx, toml::from_str(toml_text).unwrap())
}

#[tokio::test]
async fn registry_builds_a_working_notifier() {
    let certs = Certs::generate();
    let server = SmtpServer::start(Mode::Starttls, Some(&certs), true);
    let secrets = SecretMap::new().with("SMTP_PASSWORD", PASSWORD);
    let notifier = build_from_registry(
        "mail",
        &format!(
            r#"
            host = "localhost"
            port = {port}
            ca_file = {ca:?}
            username = "{USER}"
            password = {{ env = "SMTP_PASSWORD" }}
            from = "{FROM}"
            to = ["{TO}"]
            subject_prefix = "[wedsec]"
            "#,
            port = server.port,
            ca = certs.ca.display().to_string(),
        ),
        &secrets,
    )
    .unwrap();
    assert_eq!(notifier.kind(), "email");
    assert_eq!(
        notifier.rate_limit(),
        Some(vowguard_core::RateLimit {
            per_second: 5.0,
            burst: 10
        })
    );
    let debug = format!("{notifier:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    notifier.notify(&alert(event())).await.unwrap();
    let m = only(&server);
    assert!(m.tls && m.authenticated);
    assert!(
        m.header("Subject").starts_with("[wedsec] P0_CRITICAL"),
        "{:?}",
        m.headers
    );
}

#[test]
fn registry_config_errors_name_the_key() {
    let secrets = SecretMap::new().with("SMTP_PASSWORD", PASSWORD);
    let base = "host = \"smtp.example.org\"\nfrom = \"alerts@example.org\"\n";
    let cases = [
        (
            format!("{base}to = [\"ok@example.org\", \"bad address\"]"),
            "mail: `notifiers.mail.to[1]`: not a valid email address",
        ),
        (
            format!("{base}to = [\"ok@example.org\"]\nusername = \"u\""),
            "mail: `notifiers.mail.password`: `username` is set but `password` is not",
        ),
        (
            format!("{base}to = [\"ok@example.org\"]\npassword = {{ env = \"SMTP_PASSWORD\" }}"),
            "mail: `notifiers.mail.username`: `password` is set but `username` is not",
        ),
        (
            format!("{base}to = [\"ok@example.org\"]\ntls = \"plain\""),
            "`notifiers.mail.tls`: `tls` must be \"starttls\", \"tls\" or \"none\"",
        ),
        (
            format!(
                "{base}to = [\"ok@example.org\"]\ntls = \"none\"\nusername = \"u\"\npassword = {{ env = \"SMTP_PASSWORD\" }}"
            ),
            "mail: `notifiers.mail.tls`: the password would cross the network in plain text",
        ),
        (
            format!("{base}to = [\"ok@example.org\"]\nca_file = \"/nonexistent/ca.pem\""),
            "mail: `notifiers.mail.ca_file`: cannot read /nonexistent/ca.pem",
        ),
        (
            format!(
                "{base}to = [\"ok@example.org\"]\nusername = \"u\"\npassword = {{ env = \"MISSING\" }}"
            ),
            "`notifiers.mail.password`: environment variable MISSING is not set",
        ),
    ];
    for (text, expected) in cases {
        let err = build_from_registry("mail", &text, &secrets).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        let shown = err.to_string();
        assert!(shown.starts_with(expected), "{text}\n=> {shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    // Without a `tls` key the notifier uses STARTTLS on 587, never plain SMTP.
    let notifier = notifier_from(
        toml::from_str(&format!("{base}to = [\"ok@example.org\"]")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(notifier.config().tls, TlsMode::Starttls);
    assert_eq!(notifier.config().effective_port(), 587);
}

/// A server that quotes the password in its refusal: the error keeps the reply, not the
/// password (a scripted SMTP peer, since no real server echoes credentials on request).
#[tokio::test]
async fn a_reply_quoting_the_password_is_redacted() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    const SECRET: &str = "smtp-pw-Qx81-echoed";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let reply = match verb.as_str() {
                        "EHLO" => "250-fake\r\n250 AUTH PLAIN LOGIN\r\n".to_owned(),
                        "AUTH" => "235 2.7.0 ok\r\n".to_owned(),
                        "RCPT" => format!("550 5.7.1 relay refused for credential {SECRET}\r\n"),
                        "QUIT" => "221 bye\r\n".to_owned(),
                        _ => "250 ok\r\n".to_owned(),
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    let mut c = EmailConfig::new("127.0.0.1", FROM, vec![TO.to_owned()]);
    c.port = Some(port);
    c.tls = TlsMode::None;
    c.timeout = std::time::Duration::from_millis(5_000);
    c.username = Some(USER.to_owned());
    let notifier = notifier_from(c, Some(SecretString::from(SECRET))).unwrap();
    let err = notifier.notify(&alert(event())).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("relay refused for credential"), "{text}");
}
