//! [`QualysScanner`]: the host detection list API, paged, within the quota, with QIDs
//! mapped to CVEs through a cached KnowledgeBase.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use vowguard_core::{Error, ErrorKind, Finding, FindingPages, RetryPolicy, Scanner, SyncSummary};
use vowguard_http::reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use vowguard_http::reqwest::{Client, Method, StatusCode, Url};

use crate::config::QualysConfig;
use crate::parse::{
    KbEntry, apply_kb, parse_detection_page, parse_knowledge_base, parse_simple_return,
};

/// Most pages one sync follows (a guard against a next-page loop).
pub const MAX_PAGES: u64 = 100_000;

/// Most KnowledgeBase entries kept in memory.
pub const MAX_KB_ENTRIES: usize = 500_000;

/// Wait when the concurrency limit is taken by other clients and Qualys gave no wait.
pub const CONCURRENCY_WAIT: Duration = Duration::from_secs(5);

/// The quota Qualys reported in its last answer's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// `X-RateLimit-Limit`: calls allowed per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Window-Sec`.
    pub window_secs: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left in the window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-ToWait-Sec`: seconds before the next call is allowed.
    pub to_wait_secs: Option<u64>,
    /// `X-Concurrency-Limit-Limit`: calls allowed at once.
    pub concurrency_limit: Option<u64>,
    /// `X-Concurrency-Limit-Running`: calls running (this one included).
    pub concurrency_running: Option<u64>,
}

impl Quota {
    fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Self {
            limit: get("x-ratelimit-limit"),
            window_secs: get("x-ratelimit-window-sec"),
            remaining: get("x-ratelimit-remaining"),
            to_wait_secs: get("x-ratelimit-towait-sec"),
            concurrency_limit: get("x-concurrency-limit-limit"),
            concurrency_running: get("x-concurrency-limit-running"),
        }
    }

    /// How long to wait before the next call: `ToWait-Sec` when Qualys asks for a wait; the
    /// rest of the window (`ToWait-Sec`, else `Window-Sec`) when no call is left; a short
    /// pause when other clients hold every concurrent slot.
    pub fn wait_before_next(&self) -> Option<Duration> {
        if let Some(secs) = self.to_wait_secs.filter(|s| *s > 0) {
            return Some(Duration::from_secs(secs));
        }
        if self.remaining == Some(0) {
            return Some(Duration::from_secs(self.window_secs.unwrap_or(60).max(1)));
        }
        match (self.concurrency_limit, self.concurrency_running) {
            (Some(limit), Some(running)) if limit > 0 && running > limit => Some(CONCURRENCY_WAIT),
            _ => None,
        }
    }
}

/// Counters of one scanner, for tests and status output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QualysStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// KnowledgeBase requests sent (retries included).
    pub kb_requests: u64,
    /// Times a sync waited for the quota.
    pub quota_waits: u64,
    /// The waits' total, as the quota asked for them.
    pub quota_waited: Duration,
}

struct KbCache {
    entries: HashMap<String, (KbEntry, Instant)>,
}

/// The Qualys VMDR scanner; see the [crate docs](crate).
pub struct QualysScanner {
    id: String,
    base: Url,
    authorization: HeaderValue,
    client: Client,
    statuses: String,
    truncation_limit: u32,
    include_info: bool,
    max_page_bytes: usize,
    max_quota_wait: Duration,
    kb_ttl: Duration,
    kb_batch: usize,
    retry: RetryPolicy,
    quota: Mutex<Quota>,
    stats: Mutex<QualysStats>,
    kb: tokio::sync::Mutex<KbCache>,
}

impl fmt::Debug for QualysScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QualysScanner")
            .field("id", &self.id)
            .field("api", &vowguard_http::origin(&self.base))
            .field("authorization", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl QualysScanner {
    /// The scanner for component `id` (`[scanners.<id>]`) with the resolved password.
    pub fn new(id: &str, config: &QualysConfig, password: &SecretString) -> Result<Self, Error> {
        let base = config.validate(&format!("scanners.{id}"))?;
        let credentials = format!("{}:{}", config.username.trim(), password.expose_secret());
        let authorization =
            vowguard_http::sensitive_header(&format!("Basic {}", BASE64.encode(credentials)))?;
        let statuses: Vec<&str> = config
            .statuses
            .iter()
            .filter_map(|s| {
                crate::config::DEFAULT_STATUSES
                    .iter()
                    .find(|d| d.eq_ignore_ascii_case(s))
                    .copied()
            })
            .collect();
        Ok(Self {
            id: id.to_owned(),
            base,
            authorization,
            client: vowguard_http::build_client(&config.http)?,
            statuses: statuses.join(","),
            truncation_limit: config.truncation_limit,
            include_info: config.include_info,
            max_page_bytes: config.max_page_bytes,
            max_quota_wait: config.max_quota_wait,
            kb_ttl: config.kb_cache_ttl,
            kb_batch: config.kb_batch,
            retry: config.retry,
            quota: Mutex::new(Quota::default()),
            stats: Mutex::new(QualysStats::default()),
            kb: tokio::sync::Mutex::new(KbCache {
                entries: HashMap::new(),
            }),
        })
    }

    /// The quota as of the last answer.
    pub fn quota(&self) -> Quota {
        *self.quota.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Request and wait counters.
    pub fn stats(&self) -> QualysStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
            // Qualys paths end with a slash.
            path.push("");
        }
        url
    }

    fn detection_endpoint(&self) -> Url {
        self.endpoint(&["api", "2.0", "fo", "asset", "host", "vm", "detection"])
    }

    /// The first page's URL: `action=list`, statuses, page size, no scan output, and
    /// `vm_processed_after` when syncing incrementally.
    pub fn detection_url(&self, since: Option<DateTime<Utc>>) -> Url {
        let mut url = self.detection_endpoint();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("action", "list")
                .append_pair("output_format", "XML")
                .append_pair("status", &self.statuses)
                .append_pair("truncation_limit", &self.truncation_limit.to_string())
                .append_pair("show_results", "0")
                .append_pair("show_igs", if self.include_info { "1" } else { "0" });
            if let Some(since) = since {
                query.append_pair(
                    "vm_processed_after",
                    &since.to_rfc3339_opts(SecondsFormat::Secs, true),
                );
            }
        }
        url
    }

    /// Checks a `WARNING/URL` before following it: it must be the detection endpoint on
    /// the configured origin (credentials go with the request), and not the page just read.
    fn next_page_url(&self, next: &str, current: &Url) -> Result<Url, Error> {
        let url = Url::parse(next.trim()).map_err(|_| {
            Error::rejected("Qualys gave a next-page URL that is not a URL".to_owned())
                .with_component(&self.id)
        })?;
        let endpoint = self.detection_endpoint();
        if url.origin() != self.base.origin() || url.path() != endpoint.path() {
            return Err(Error::rejected(format!(
                "Qualys gave a next-page URL outside {}{}; not following it with credentials",
                vowguard_http::origin(&self.base),
                endpoint.path()
            ))
            .with_component(&self.id));
        }
        if &url == current {
            return Err(Error::rejected(
                "Qualys gave the page just read as the next page".to_owned(),
            )
            .with_component(&self.id));
        }
        Ok(url)
    }

    /// Waits as the last answer's quota headers ask (at most `max_quota_wait`; a
    /// longer wait is a rate-limit error carrying it).
    async fn wait_for_quota(&self, what: &str) -> Result<(), Error> {
        let Some(wait) = self.quota().wait_before_next() else {
            return Ok(());
        };
        if wait > self.max_quota_wait {
            return Err(Error::new(
                ErrorKind::RateLimited,
                format!(
                    "{what}: the Qualys API quota asks for a {} wait, more than max_quota_wait ({})",
                    vowguard_core::duration::format(wait),
                    vowguard_core::duration::format(self.max_quota_wait)
                ),
            )
            .with_retry_after(wait));
        }
        tracing::info!(scanner = %self.id, wait_secs = wait.as_secs(), "waiting for the Qualys API quota");
        {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.quota_waits += 1;
            stats.quota_waited += wait;
        }
        tokio::time::sleep(wait).await;
        *self.quota.lock().unwrap_or_else(|e| e.into_inner()) = Quota::default();
        Ok(())
    }

    /// One call with the quota honoured and retries by the shared [`RetryPolicy`] (5xx,
    /// timeouts, 409). Returns the body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        form: Option<&[(&str, String)]>,
        what: &str,
        kb: bool,
    ) -> Result<Vec<u8>, Error> {
        // A wait the quota asks for is taken once, before the call; a 409 within the retries
        // carries its own wait (`retry_after`), which the policy honours.
        self.wait_for_quota(what)
            .await
            .map_err(|e| e.with_component(&self.id))?;
        let (result, _) = self
            .retry
            .run(|_| self.attempt(method.clone(), url.clone(), form, what, kb))
            .await;
        result.map_err(|e| e.with_component(&self.id))
    }

    async fn attempt(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(&str, String)]>,
        what: &str,
        kb: bool,
    ) -> Result<Vec<u8>, Error> {
        {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.requests += 1;
            if kb {
                stats.kb_requests += 1;
            }
        }
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header("X-Requested-With", "vowguard");
        if let Some(form) = form {
            request = request.form(form);
        }
        let response = request
            .send()
            .await
            .map_err(|e| vowguard_http::transport_error(e, what))?;
        let status = response.status();
        let headers = response.headers().clone();
        let quota = Quota::from_headers(&headers);
        *self.quota.lock().unwrap_or_else(|e| e.into_inner()) = quota;
        let body = vowguard_http::read_capped(response, self.max_page_bytes + 1, what).await?;
        response_result(status, &headers, &quota, body, self.max_page_bytes, what)
    }

    /// Fills title, CVEs and CVSS of `findings` from the KnowledgeBase, asking it only for
    /// QIDs not cached (or expired).
    ///
    /// A KnowledgeBase call that fails (after the retries) or answers something unreadable
    /// does not fail the sync: it is recorded in `failure` (the first one), no further
    /// KnowledgeBase call is made in this sync, an expired entry still cached is used as
    /// it is, and a finding whose QID has no entry at all is handed on with
    /// [`Finding::details_missing`] set. Returns how many findings were so marked. The
    /// QIDs not fetched are not cached, so the next sync asks for them again.
    async fn fill_kb(
        &self,
        findings: &mut [Finding],
        failure: &mut Option<String>,
    ) -> Result<u64, Error> {
        let mut cache = self.kb.lock().await;
        let now = Instant::now();
        let mut missing: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for f in findings.iter() {
            let fresh = cache
                .entries
                .get(&f.plugin_id)
                .is_some_and(|(_, at)| now.duration_since(*at) < self.kb_ttl);
            if !fresh && seen.insert(f.plugin_id.clone()) {
                missing.push(f.plugin_id.clone());
            }
        }
        if !missing.is_empty() && failure.is_none() {
            if cache.entries.len() + missing.len() > MAX_KB_ENTRIES {
                let ttl = self.kb_ttl;
                cache
                    .entries
                    .retain(|_, (_, at)| now.duration_since(*at) < ttl);
                if cache.entries.len() + missing.len() > MAX_KB_ENTRIES {
                    cache.entries.clear();
                }
            }
            let url = self.endpoint(&["api", "2.0", "fo", "knowledge_base", "vuln"]);
            let what = format!(
                "read the Qualys KnowledgeBase at {}",
                vowguard_http::origin(&self.base)
            );
            for batch in missing.chunks(self.kb_batch) {
                let form = [
                    ("action", "list".to_owned()),
                    ("details", "All".to_owned()),
                    ("ids", batch.join(",")),
                ];
                let answer = match self
                    .call(Method::POST, &url, Some(&form), &what, true)
                    .await
                {
                    Ok(body) => tokio::task::spawn_blocking(move || {
                        parse_knowledge_base(&body, "Qualys KnowledgeBase answer")
                    })
                    .await
                    .map_err(|e| {
                        Error::internal(format!("the KnowledgeBase parser stopped: {e}"))
                    })?,
                    Err(e) => Err(e),
                };
                let mut entries = match answer {
                    Ok(entries) => entries,
                    Err(e) => {
                        let e = e.with_component(&self.id);
                        tracing::warn!(
                            scanner = %self.id,
                            qids = batch.len(),
                            error = %e,
                            "the Qualys KnowledgeBase failed; findings are kept without CVE/CVSS details until the next sync"
                        );
                        *failure = Some(e.to_string());
                        break;
                    }
                };
                let fetched = Instant::now();
                for qid in batch {
                    // A QID the KnowledgeBase does not know is remembered as such.
                    let entry = entries.remove(qid).unwrap_or_default();
                    cache.entries.insert(qid.clone(), (entry, fetched));
                }
            }
        }
        let mut marked = 0;
        for f in findings.iter_mut() {
            if let Some((entry, _)) = cache.entries.get(&f.plugin_id) {
                apply_kb(f, entry);
            } else {
                f.details_missing = true;
                marked += 1;
            }
        }
        Ok(marked)
    }
}

/// Maps one answer: a 2xx body (refused above `max` bytes), 409 as a retryable rate limit
/// carrying `X-RateLimit-ToWait-Sec` (or `Retry-After`), everything else by
/// [`vowguard_http::classify_status`], with Qualys' `SIMPLE_RETURN` code and text as the
/// reason.
fn response_result(
    status: StatusCode,
    headers: &HeaderMap,
    quota: &Quota,
    body: Vec<u8>,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, Error> {
    if status.is_success() {
        if body.len() > max {
            return Err(Error::rejected(format!(
                "{what}: the answer is larger than max_page_bytes ({max}); lower truncation_limit"
            )));
        }
        return Ok(body);
    }
    let reason = match parse_simple_return(&body) {
        Some(ret) => format!(
            "code {}: {}",
            crate::parse::printable(&ret.code, 16),
            crate::parse::printable(&ret.text, 300)
        ),
        None => vowguard_http::snippet(&String::from_utf8_lossy(&body[..body.len().min(2048)])),
    };
    if status == StatusCode::CONFLICT {
        let mut error = Error::new(
            ErrorKind::RateLimited,
            format!("{what}: Qualys refused the call (concurrency or rate limit): {reason}"),
        )
        .with_status(409);
        let wait = quota
            .to_wait_secs
            .map(Duration::from_secs)
            .or_else(|| vowguard_http::retry_after(headers));
        if let Some(wait) = wait {
            error = error.with_retry_after(wait);
        }
        return Err(error);
    }
    Err(
        vowguard_http::classify_status(status, headers, what, &reason)
            .err()
            .unwrap_or_else(|| Error::internal(format!("{what}: unexpected HTTP {status}"))),
    )
}

#[async_trait]
impl Scanner for QualysScanner {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    /// Lists host detections (processed after `since` when given), page by page following
    /// `WARNING/URL`, each page's QIDs mapped through the KnowledgeBase before it is handed
    /// on. The checkpoint is Qualys' `DATETIME` of the first page, or none when the
    /// KnowledgeBase failed and some findings were handed on without their details.
    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let started = Utc::now();
        let what = format!(
            "list Qualys host detections at {}",
            vowguard_http::origin(&self.base)
        );
        let mut url = self.detection_url(since);
        let mut summary = SyncSummary::default();
        let mut kb_failure: Option<String> = None;
        loop {
            let body = self.call(Method::GET, &url, None, &what, false).await?;
            let number = summary.pages + 1;
            let (scanner, include_info) = (self.id.clone(), self.include_info);
            let page = tokio::task::spawn_blocking(move || {
                parse_detection_page(
                    &body,
                    &format!("Qualys detection page {number}"),
                    &scanner,
                    include_info,
                )
            })
            .await
            .map_err(|e| Error::internal(format!("the detection parser stopped: {e}")))?
            .map_err(|e| e.with_component(&self.id))?;
            if summary.checkpoint.is_none() {
                summary.checkpoint = Some(page.datetime.unwrap_or(started));
            }
            if page.skipped > 0 {
                tracing::warn!(scanner = %self.id, page = number, skipped = page.skipped, "skipped unreadable Qualys detections");
            }
            let mut findings = page.findings;
            summary.details_missing += self.fill_kb(&mut findings, &mut kb_failure).await?;
            summary.pages += 1;
            summary.findings += findings.len() as u64;
            if !findings.is_empty() {
                out.page(findings).await?;
            }
            match page.next_url {
                Some(next) if summary.pages < MAX_PAGES => url = self.next_page_url(&next, &url)?,
                Some(_) => {
                    return Err(Error::rejected(format!(
                        "{what}: more than {MAX_PAGES} pages; raise truncation_limit"
                    ))
                    .with_component(&self.id));
                }
                None => break,
            }
        }
        if summary.details_missing > 0 {
            // Not moving the checkpoint makes the next sync list these detections again,
            // with the KnowledgeBase asked for the QIDs it could not give this time.
            summary.checkpoint = None;
            summary.details_missing_reason = kb_failure;
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_waits() {
        let q = Quota::default();
        assert_eq!(q.wait_before_next(), None);
        let q = Quota {
            remaining: Some(3),
            to_wait_secs: Some(0),
            ..Quota::default()
        };
        assert_eq!(q.wait_before_next(), None);
        let q = Quota {
            remaining: Some(0),
            window_secs: Some(3600),
            ..Quota::default()
        };
        assert_eq!(q.wait_before_next(), Some(Duration::from_secs(3600)));
        let q = Quota {
            remaining: Some(0),
            to_wait_secs: Some(12),
            window_secs: Some(3600),
            ..Quota::default()
        };
        assert_eq!(q.wait_before_next(), Some(Duration::from_secs(12)));
        let q = Quota {
            concurrency_limit: Some(2),
            concurrency_running: Some(2),
            ..Quota::default()
        };
        assert_eq!(
            q.wait_before_next(),
            None,
            "our own call is one of the running"
        );
        let q = Quota {
            concurrency_limit: Some(2),
            concurrency_running: Some(3),
            ..Quota::default()
        };
        assert_eq!(q.wait_before_next(), Some(CONCURRENCY_WAIT));
    }
}
