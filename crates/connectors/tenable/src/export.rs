//! The Tenable Vulnerability Management export API client ([`TenableScanner`]).

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vowguard_core::{Error, ErrorKind, Finding, FindingPages, RetryPolicy, Scanner, SyncSummary};
use vowguard_http::reqwest::{self, Method, StatusCode, Url, header::HeaderValue};

use crate::config::{DEFAULT_BASE_URL, PollOptions, TenableConfig};
use crate::record::parse_record;

/// Largest status or job-start answer read (they are small JSON objects).
const MAX_SMALL_BODY: usize = 256 * 1024;
/// Attempts at a chunk whose body is not a JSON array (pyTenable retries 3 times).
const CHUNK_JSON_ATTEMPTS: u32 = 3;

/// A `type = "tenable"` scanner: findings from the vulns export API.
pub struct TenableScanner {
    id: String,
    base: Url,
    client: reqwest::Client,
    keys: HeaderValue,
    num_assets: u32,
    max_chunk_bytes: usize,
    poll: PollOptions,
    retry: RetryPolicy,
}

impl fmt::Debug for TenableScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenableScanner")
            .field("id", &self.id)
            .field("base", &vowguard_http::origin(&self.base))
            .field("num_assets", &self.num_assets)
            .finish_non_exhaustive()
    }
}

/// The export job's status as `GET /vulns/export/{uuid}/status` reports it.
#[derive(Debug)]
struct ExportStatus {
    status: String,
    chunks: BTreeSet<u64>,
}

impl TenableScanner {
    /// A scanner with component id `id` from its config and resolved API keys.
    pub fn new(
        id: &str,
        config: &TenableConfig,
        access_key: &SecretString,
        secret_key: &SecretString,
    ) -> Result<Self, Error> {
        let base = vowguard_http::parse_url(
            &format!("scanners.{id}.base_url"),
            config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        )?;
        if !(50..=5000).contains(&config.num_assets) {
            return Err(Error::config(format!(
                "`scanners.{id}.num_assets`: must be 50..=5000, got {}",
                config.num_assets
            )));
        }
        if config.poll.initial.is_zero() || config.poll.max < config.poll.initial {
            return Err(Error::config(format!(
                "`scanners.{id}.poll`: need 0s < initial <= max"
            )));
        }
        let keys = vowguard_http::sensitive_header(&format!(
            "accessKey={};secretKey={}",
            access_key.expose_secret(),
            secret_key.expose_secret()
        ))?;
        Ok(Self {
            id: id.to_owned(),
            base,
            client: vowguard_http::build_client(&config.http)?,
            keys,
            num_assets: config.num_assets,
            max_chunk_bytes: config.max_chunk_bytes.max(1024),
            poll: config.poll,
            retry: RetryPolicy::default()
                .with_max_attempts(4)
                .with_initial_backoff(std::time::Duration::from_millis(1_000))
                .with_max_backoff(std::time::Duration::from_millis(30_000))
                .with_max_retry_after(std::time::Duration::from_millis(120_000)),
        })
    }

    /// Replaces the retry policy of single requests (5xx, 429, timeouts).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        url
    }

    /// One request with retries; returns the status and at most `max` bytes of body
    /// (`max + 1` read, so the caller can tell a body that was too large). 409 is returned
    /// to the caller, other non-2xx answers become errors.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        max: usize,
        what: &str,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let (result, _) = self
            .retry
            .run(|_| async {
                let mut request = self
                    .client
                    .request(method.clone(), self.url(path))
                    .header("X-ApiKeys", self.keys.clone())
                    .header("Accept", "application/json");
                if let Some(body) = body {
                    request = request.json(body);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| vowguard_http::transport_error(e, what))?;
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = vowguard_http::read_capped(response, max + 1, what).await?;
                if status != StatusCode::CONFLICT {
                    vowguard_http::classify_status(
                        status,
                        &headers,
                        what,
                        &String::from_utf8_lossy(&bytes),
                    )?;
                }
                Ok((status, bytes))
            })
            .await;
        result.map_err(|e| e.with_component(&self.id))
    }

    /// Starts an export (or adopts the identical job already running, on 409) and returns
    /// its uuid.
    async fn start_export(&self, since: Option<DateTime<Utc>>) -> Result<String, Error> {
        let mut filters = json!({ "state": ["OPEN", "REOPENED", "FIXED"] });
        if let Some(since) = since {
            filters["since"] = json!(since.timestamp().max(0));
        }
        let body = json!({ "num_assets": self.num_assets, "filters": filters });
        let what = "tenable: start vulns export";
        let (status, bytes) = self
            .call(
                Method::POST,
                "/vulns/export",
                Some(&body),
                MAX_SMALL_BODY,
                what,
            )
            .await?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::rejected(format!("{what}: answer is not JSON ({e})")).with_component(&self.id)
        })?;
        let field = if status == StatusCode::CONFLICT {
            "active_job_id"
        } else {
            "export_uuid"
        };
        let uuid = answer
            .get(field)
            .and_then(Value::as_str)
            .filter(|u| valid_uuid(u))
            .ok_or_else(|| {
                Error::rejected(format!("{what}: HTTP {status} without a valid `{field}`"))
                    .with_component(&self.id)
            })?;
        if status == StatusCode::CONFLICT {
            tracing::info!(scanner = %self.id, export = uuid, "adopting the export job already running");
        }
        Ok(uuid.to_owned())
    }

    async fn status(&self, uuid: &str) -> Result<ExportStatus, Error> {
        let what = "tenable: export status";
        let path = format!("/vulns/export/{uuid}/status");
        let (_, bytes) = self
            .call(Method::GET, &path, None, MAX_SMALL_BODY, what)
            .await?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::unavailable(format!("{what}: answer is not JSON ({e})")).with_component(&self.id)
        })?;
        let status = answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let chunks = answer
            .get("chunks_available")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        Ok(ExportStatus { status, chunks })
    }

    /// One chunk's records; a body that is not a JSON array is fetched again.
    async fn chunk(&self, uuid: &str, chunk: u64) -> Result<Vec<Value>, Error> {
        let what = format!("tenable: export chunk {chunk}");
        let path = format!("/vulns/export/{uuid}/chunks/{chunk}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (_, bytes) = self
                .call(Method::GET, &path, None, self.max_chunk_bytes, &what)
                .await?;
            if bytes.len() > self.max_chunk_bytes {
                return Err(Error::rejected(format!(
                    "{what}: larger than max_chunk_bytes ({} bytes); lower num_assets",
                    self.max_chunk_bytes
                ))
                .with_component(&self.id));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Vec::new());
            }
            match serde_json::from_slice::<Vec<Value>>(&bytes) {
                Ok(records) => return Ok(records),
                Err(e) if attempt < CHUNK_JSON_ATTEMPTS => {
                    tracing::warn!(scanner = %self.id, chunk, attempt, error = %e, "export chunk is not a JSON array; fetching it again");
                    tokio::time::sleep(
                        self.retry
                            .backoff_ceiling(attempt)
                            .min(Duration::from_secs(5)),
                    )
                    .await;
                }
                Err(e) => {
                    return Err(Error::unavailable(format!(
                        "{what}: not a JSON array after {attempt} attempts ({e})"
                    ))
                    .with_component(&self.id));
                }
            }
        }
    }
}

/// 8-4-4-4-12 hex digits: a job id safe to put in a URL path.
fn valid_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[async_trait]
impl Scanner for TenableScanner {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    async fn sync(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let started_at = Utc::now();
        let uuid = self.start_export(since).await?;
        let started = Instant::now();
        let max_wait = self.poll.max_wait;
        let mut delay = self.poll.initial;
        let mut done = BTreeSet::new();
        let mut summary = SyncSummary::default();
        let mut skipped = 0u64;
        loop {
            let status = self.status(&uuid).await?;
            let new: Vec<u64> = status.chunks.difference(&done).copied().collect();
            for chunk in &new {
                let records = self.chunk(&uuid, *chunk).await?;
                let mut findings: Vec<Finding> = Vec::with_capacity(records.len());
                for (i, record) in records.iter().enumerate() {
                    match parse_record(&self.id, record) {
                        Ok(f) => findings.push(f),
                        Err(reason) => {
                            skipped += 1;
                            tracing::warn!(scanner = %self.id, chunk, record = i, %reason, "skipping export record");
                        }
                    }
                }
                summary.findings += findings.len() as u64;
                summary.pages += 1;
                done.insert(*chunk);
                if !findings.is_empty() {
                    out.page(findings).await?;
                }
            }
            match status.status.as_str() {
                "FINISHED" => break,
                "ERROR" | "CANCELLED" => {
                    return Err(Error::unavailable(format!(
                        "tenable: export {uuid} ended {} after {} chunks",
                        status.status,
                        done.len()
                    ))
                    .with_component(&self.id));
                }
                _ => {}
            }
            if new.is_empty() {
                if started.elapsed() >= max_wait {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "tenable: export {uuid} not finished after {} (status {})",
                            vowguard_core::duration::format(self.poll.max_wait),
                            status.status
                        ),
                    )
                    .with_component(&self.id));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.poll.max);
            } else {
                delay = self.poll.initial;
            }
        }
        if skipped > 0 {
            tracing::warn!(scanner = %self.id, skipped, "export records without identity were skipped");
        }
        summary.checkpoint = Some(started_at);
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(valid_uuid("0a1b2c3d-0000-4000-8000-00000000abcd"));
        assert!(!valid_uuid("../../admin"));
        assert!(!valid_uuid("0a1b2c3d-0000-4000-8000-00000000abc/"));
    }
}
