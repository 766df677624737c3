//! The behaviour every HTTP notifier shows, driven through the shared retry policy (as the
//! dispatcher does).
//!
//! Scenarios: an alert is delivered; a 5xx is retried and then delivered exactly once;
//! a 429's `Retry-After` is reported to the retry policy; a permanent error is reported with the vendor's reason and
//! not retried; hostile event text is neutralised for the channel; a vendor quoting the
//! secret in its error has it removed; the secret never appears in logs, `Debug` output or
//! errors.

use std::sync::Arc;
use std::time::Duration;

use vowguard_core::{Alert, Notifier, RetryPolicy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{LogCapture, fixtures};

/// How one HTTP notifier is built and what its vendor answers.
pub trait HttpNotifierHarness: Send + Sync + 'static {
    /// The notifier's name in failure messages.
    fn name(&self) -> &str;

    /// The credential (token, or the secret part of a webhook URL) the notifier is built
    /// with; the suite checks it never leaks.
    fn secret(&self) -> &str {
        "vg-suite-secret-3f9a1c77"
    }

    /// Builds the notifier against `base_url` (a wiremock server) using [`Self::secret`].
    fn build(&self, base_url: &str) -> Arc<dyn Notifier>;

    /// The HTTP method and path alerts are sent to.
    fn endpoint(&self) -> (&'static str, String);

    /// The vendor's success answer.
    fn accept(&self, request: &Request) -> ResponseTemplate;

    /// A vendor answer that refuses the alert for good.
    fn permanent_failure(&self, request: &Request) -> ResponseTemplate;

    /// Text of the vendor's reason in [`Self::permanent_failure`], expected in the error.
    fn permanent_reason(&self) -> &str;

    /// Checks that the request sent for [`fixtures::hostile_alert`] neutralises the hostile
    /// text for this channel.
    fn check_hostile(&self, request: &Request) -> Result<(), String>;

    /// The vendor's answer refusing the credential `secret` and quoting it, the way the
    /// vendor writes errors, next to [`Self::echo_marker`]. Default: a 401 whose plain-text
    /// body quotes it.
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_string(format!("{} {secret}", self.echo_marker()))
    }

    /// Text of [`Self::refuse_secret`]'s message expected in the error (proving the
    /// vendor's text is kept, minus the secret).
    fn echo_marker(&self) -> &str {
        "invalid credential"
    }

    /// A transient server failure.
    fn server_error(&self) -> ResponseTemplate {
        ResponseTemplate::new(503).set_body_string("busy")
    }

    /// A rate-limit answer asking to wait `seconds`.
    fn rate_limited(&self, seconds: u64) -> ResponseTemplate {
        ResponseTemplate::new(429).insert_header("Retry-After", seconds.to_string().as_str())
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(10))
        .with_max_backoff(std::time::Duration::from_millis(50))
        .with_max_retry_after(std::time::Duration::from_millis(5_000))
}

async fn send(
    notifier: &Arc<dyn Notifier>,
    alert: &Alert,
) -> (Result<vowguard_core::Receipt, vowguard_core::Error>, u32) {
    policy().run(|_| notifier.notify(alert)).await
}

async fn requests_to<H: HttpNotifierHarness>(server: &MockServer, harness: &H) -> Vec<Request> {
    let (m, p) = harness.endpoint();
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

async fn mount_accept<H: HttpNotifierHarness>(server: &MockServer, harness: &Arc<H>) {
    let (m, p) = harness.endpoint();
    let h = harness.clone();
    Mock::given(method(m))
        .and(path(p))
        .respond_with(move |r: &Request| h.accept(r))
        .with_priority(5)
        .mount(server)
        .await;
}

/// Runs every scenario; panics with the notifier's name and the scenario on the first
/// failure. Call it from a `#[tokio::test]` (current-thread) so log capture sees every task.
pub async fn run<H: HttpNotifierHarness>(harness: H) {
    let harness = Arc::new(harness);
    let name = harness.name().to_owned();
    let logs = LogCapture::start();
    let (m, p) = harness.endpoint();

    // 1. Delivered.
    let server = MockServer::start().await;
    mount_accept(&server, &harness).await;
    let notifier = harness.build(&server.uri());
    let (result, attempts) = send(&notifier, &fixtures::alert(1)).await;
    assert!(result.is_ok(), "{name}: delivers: {result:?}");
    assert_eq!(attempts, 1, "{name}: one attempt");
    assert_eq!(
        requests_to(&server, &*harness).await.len(),
        1,
        "{name}: one request"
    );

    // 2. 5xx, then delivered exactly once.
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.server_error())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_accept(&server, &harness).await;
    let notifier = harness.build(&server.uri());
    let (result, attempts) = send(&notifier, &fixtures::alert(2)).await;
    assert!(result.is_ok(), "{name}: 5xx then success: {result:?}");
    assert_eq!(attempts, 2, "{name}: exactly one retry after 5xx");
    assert_eq!(
        requests_to(&server, &*harness).await.len(),
        2,
        "{name}: two requests in all"
    );

    // 3. Retry-After: the notifier reports the vendor's delay (the shared retry policy's
    //    waiting for it is tested in vowguard-core), and the alert is then delivered once.
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.rate_limited(1))
        .mount(&server)
        .await;
    let error = harness
        .build(&server.uri())
        .notify(&fixtures::alert(3))
        .await
        .expect_err("a 429 is an error");
    assert!(error.is_retryable(), "{name}: a 429 is retryable: {error}");
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_secs(1)),
        "{name}: a 429 carries the vendor's Retry-After: {error}"
    );
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.rate_limited(1))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_accept(&server, &harness).await;
    let notifier = harness.build(&server.uri());
    let (result, attempts) = send(&notifier, &fixtures::alert(3)).await;
    assert!(result.is_ok(), "{name}: 429 then success: {result:?}");
    assert_eq!(attempts, 2, "{name}: one retry after 429");

    // 4. Permanent error: reported with the vendor's reason, not retried.
    let server = MockServer::start().await;
    let h = harness.clone();
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(move |r: &Request| h.permanent_failure(r))
        .mount(&server)
        .await;
    let notifier = harness.build(&server.uri());
    let (result, attempts) = send(&notifier, &fixtures::alert(4)).await;
    let error = result.expect_err("permanent failure must be an error");
    assert!(
        !error.is_retryable(),
        "{name}: permanent failure is not retryable: {error}"
    );
    assert_eq!(attempts, 1, "{name}: a permanent failure is not retried");
    assert!(
        error.to_string().contains(harness.permanent_reason()),
        "{name}: the error carries the vendor's reason {:?}: {error}",
        harness.permanent_reason()
    );
    let error_text = error.to_string();

    // 5. Hostile event text is neutralised for this channel.
    let server = MockServer::start().await;
    mount_accept(&server, &harness).await;
    let notifier = harness.build(&server.uri());
    let (result, _) = send(&notifier, &fixtures::hostile_alert()).await;
    assert!(
        result.is_ok(),
        "{name}: a hostile alert is still delivered: {result:?}"
    );
    for request in requests_to(&server, &*harness).await {
        if let Err(why) = harness.check_hostile(&request) {
            panic!("{name}: hostile text not neutralised: {why}");
        }
    }

    // 6. A vendor that quotes the secret in its error: the error keeps the vendor's reason
    //    without the secret.
    let secret = harness.secret();
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p.clone()))
        .respond_with(harness.refuse_secret(secret))
        .mount(&server)
        .await;
    let (result, _) = send(&harness.build(&server.uri()), &fixtures::alert(6)).await;
    let echoed = result.expect_err("a refused credential is an error");
    let echoed_text = format!("{echoed} {echoed:?}");
    assert!(
        !echoed_text.contains(secret),
        "{name}: the secret appears in an error: {echoed_text}"
    );
    assert!(
        echoed.to_string().contains(harness.echo_marker()),
        "{name}: the error carries the vendor's reason {:?}: {echoed}",
        harness.echo_marker()
    );

    // 7. The secret never leaks.
    let logged = logs.text();
    assert!(
        !logged.contains(secret),
        "{name}: the secret appears in the logs:\n{logged}"
    );
    assert!(
        !format!("{notifier:?}").contains(secret),
        "{name}: the secret appears in Debug"
    );
    assert!(
        !error_text.contains(secret),
        "{name}: the secret appears in an error"
    );
}
