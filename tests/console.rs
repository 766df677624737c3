//! The operator console at `/ui` against the real binary: access (401 without the admin
//! token, bearer or session cookie), security headers, escaping of attacker-controlled
//! event fields, the confirmed CSRF-protected dead-letter replay, pages that still render
//! with the sink down, and (headless Chromium) the pages as a browser renders them, with
//! screenshots.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::{free_port, spawn_run, terminate, wait_healthy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HEC_TOKEN: &str = "console-hec-token-71f0";
const ADMIN: &str = "console-admin-s3cret";
const ATTACK: &str = "<script>alert('pwned')</script><img src=x onerror=alert(1)>";

fn config(dir: &Path, hec: &str, port: u16) -> PathBuf {
    let text = format!(
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:{port}"
admin_token = {{ env = "CONSOLE_ADMIN_TOKEN" }}
[sources.api]
type = "http"
[pipeline]
shutdown_timeout = "2s"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{hec}"
token = {{ env = "CONSOLE_HEC_TOKEN" }}
batch = {{ max_events = 10, max_wait = "20ms" }}
retry = {{ max_attempts = 2, initial_backoff = "10ms", max_backoff = "20ms" }}
breaker = {{ failure_threshold = 0 }}
"#
    );
    let file = dir.join("vowguard.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `GET path` with the bearer token: status and body.
async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let r = client
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_need_the_token_escape_events_and_replay_dead_letters() {
    let hec = MockServer::start().await;
    // The sink refuses everything: the event is dead-lettered.
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string(r#"{"text":"Incorrect index","code":7}"#),
        )
        .mount(&hec)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), &hec.uri(), port);
    let child = spawn_run(
        &config,
        &[
            ("CONSOLE_HEC_TOKEN", HEC_TOKEN),
            ("CONSOLE_ADMIN_TOKEN", ADMIN),
        ],
        Stdio::piped(),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_healthy(&client, port).await;
    let base = format!("http://127.0.0.1:{port}");

    // An event whose fields carry markup.
    let event = serde_json::json!({
        "id": "evt-console-1",
        "category": "authentication",
        "action": ATTACK,
        "severity": "high",
        "user_name": ATTACK,
        "message": ATTACK,
    });
    let r = client
        .post(format!("{base}/v1/events"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    // Without the token: 401 and the login form, under the strict CSP, on every page.
    for page in [
        "/ui",
        "/ui/alerts",
        "/ui/dead-letters",
        "/ui/incidents",
        "/ui/dead-letters/replay?sink=splunk",
    ] {
        for auth in [None, Some("Bearer nope")] {
            let mut request = client.get(format!("{base}{page}"));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 401, "{page} {auth:?}");
            let csp = r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
                "{csp}"
            );
            let body = r.text().await.unwrap();
            assert!(body.contains("action=\"/ui/login\""), "{body}");
            assert!(!body.contains("evt-console-1"));
        }
    }
    let r = client
        .post(format!("{base}/ui/dead-letters/replay"))
        .form(&[("sink", "splunk"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the replay needs the token too");

    // With the token: the health page names the sink.
    let (status, health) = get(&client, &base, "/ui").await;
    assert_eq!(status, 200);
    assert!(
        health.contains("<td>splunk</td><td>splunk_hec</td>"),
        "{health}"
    );
    assert!(health.contains("<svg"), "{health}");

    // The dead letter shows, every event field escaped.
    let mut letters = String::new();
    for _ in 0..400 {
        letters = get(&client, &base, "/ui/dead-letters").await.1;
        if letters.contains("evt-console-1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(letters.contains("evt-console-1"), "{letters}");
    assert!(
        letters.contains(
            "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        ),
        "{letters}"
    );
    assert!(
        !letters.contains("<script") && !letters.contains("<img"),
        "{letters}"
    );

    // Sign in with the form: a session cookie derived from the token.
    let r = client
        .post(format!("{base}/ui/login"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = client
        .post(format!("{base}/ui/login"))
        .form(&[("token", ADMIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(ADMIN),
        "the cookie does not carry the token"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = client
        .get(format!("{base}/ui/alerts"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The replay: a confirmation page, then a POST that needs its CSRF token.
    let (status, confirm) = get(&client, &base, "/ui/dead-letters/replay?sink=splunk").await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Replay 1 letter(s)"), "{confirm}");
    let csrf = confirm
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form carries a CSRF token")
        .to_owned();
    let r = client
        .post(format!("{base}/ui/dead-letters/replay"))
        .header("cookie", &session)
        .form(&[("sink", "splunk"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a forged CSRF token is refused");

    // The incidents page renders (no response engine configured) with the sink down.
    let (status, incidents) = get(&client, &base, "/ui/incidents").await;
    assert_eq!(status, 200);
    assert!(
        incidents.contains("Open incidents") && incidents.contains("Breaches"),
        "{incidents}"
    );

    // Headless Chromium renders the pages (through a proxy adding the bearer token):
    // the markup stays text, nothing runs; screenshots in the test output dir.
    browse(&base, &letters).await;

    // The sink accepts again: the replay delivers the letter and it leaves the list.
    hec.reset().await;
    Mock::given(method("POST"))
        .and(path("/services/collector/event"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"text":"Success","code":0}"#))
        .mount(&hec)
        .await;
    let r = client
        .post(format!("{base}/ui/dead-letters/replay"))
        .header("cookie", &session)
        .form(&[("sink", "splunk"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done = r.text().await.unwrap();
    assert!(
        done.contains("Replayed 1 dead letter(s) of splunk: 1 delivered, 0 failed again"),
        "{done}"
    );
    let (_, letters) = get(&client, &base, "/ui/dead-letters").await;
    assert!(letters.contains("No pending dead letter"), "{letters}");
    let delivered = hec.received_requests().await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert!(String::from_utf8_lossy(&delivered[0].body).contains("evt-console-1"));

    terminate(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Headless Chromium: `VOWGUARD_CHROMIUM`, else `chromium` on the PATH, else the private
/// copy `cargo xtask prerequisites` installs. Missing: the test fails saying so.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("VOWGUARD_CHROMIUM") {
        return PathBuf::from(path);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    }) {
        return path;
    }
    let private =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-prereqs/chromium/chromium");
    assert!(
        private.is_file(),
        "headless Chromium is required by the console test: run `cargo xtask prerequisites` \
         (installs Debian's chromium privately) or set VOWGUARD_CHROMIUM"
    );
    private
}

/// Runs headless Chromium with `args`; its standard output.
async fn chromium_run(args: &[String]) -> String {
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .args(args)
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finished within two minutes")
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback proxy in front of `upstream` that adds the admin bearer token (Chromium
/// cannot send one from the command line).
async fn token_proxy(upstream: String) -> String {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| {
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            let uri = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let r = client
                .get(format!("{upstream}{uri}"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let status = axum::http::StatusCode::from_u16(r.status().as_u16()).unwrap();
            let mut headers = axum::http::HeaderMap::new();
            for name in ["content-type", "content-security-policy"] {
                if let Some(v) = r.headers().get(name) {
                    headers.insert(
                        name,
                        axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                    );
                }
            }
            (status, headers, r.bytes().await.unwrap()).into_response()
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

async fn browse(base: &str, letters_html: &str) {
    assert!(letters_html.contains("evt-console-1"));
    let proxy = token_proxy(base.to_owned()).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (page, name, expect) in [
        ("/ui", "health", "Pipeline health"),
        ("/ui/alerts", "alerts", "Recent alerts"),
        ("/ui/dead-letters", "dead-letters", "evt-console-1"),
        ("/ui/incidents", "incidents", "Breaches"),
    ] {
        let url = format!("{proxy}{page}");
        let dom = chromium_run(&["--dump-dom".to_owned(), url.clone()]).await;
        assert!(dom.contains(expect), "{page}: {dom}");
        // The attacker's markup is text in the rendered DOM: no script or img element.
        assert!(
            !dom.contains("<script") && !dom.contains("<img"),
            "{page}: {dom}"
        );
        if page == "/ui/dead-letters" {
            assert!(
                dom.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"),
                "{dom}"
            );
        }
        let shot = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        chromium_run(&[format!("--screenshot={}", shot.display()), url]).await;
        let png = std::fs::read(&shot).expect("the screenshot is written");
        assert!(png.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
}
