//! Publishing checkpoints outside the log directory, so that deleting or rewriting the
//! whole log (checkpoints included) is detectable: a file (another disk, a mounted share)
//! and/or an HTTP endpoint that receives each signed note (`POST`, `text/plain`).

use std::io::Write as _;
use std::path::PathBuf;

use vowguard_http::reqwest;

/// Where checkpoints are published besides `<data_dir>/audit/checkpoints`.
#[derive(Debug, Clone, Default)]
pub struct Witness {
    /// Appended with every checkpoint note (fsynced).
    pub file: Option<PathBuf>,
    /// POSTed every checkpoint note.
    pub http: Option<HttpWitness>,
}

/// An HTTP witness endpoint.
#[derive(Debug, Clone)]
pub struct HttpWitness {
    /// The client (built with `vowguard_http::build_client`).
    pub client: reqwest::Client,
    /// The endpoint.
    pub url: reqwest::Url,
    /// The runtime the POSTs run on (the writer thread is not async).
    pub runtime: tokio::runtime::Handle,
}

impl Witness {
    /// Publishes `note`; failures are logged (the local checkpoint is already durable) and
    /// never block the log.
    pub(crate) fn publish(&self, note: &str) {
        if let Some(path) = &self.file {
            let result = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    f.write_all(format!("{note}\n").as_bytes())?;
                    f.sync_data()
                });
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "audit witness file: cannot publish checkpoint");
            }
        }
        if let Some(http) = &self.http {
            let request = http
                .client
                .post(http.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(note.to_owned());
            let origin = vowguard_http::origin(&http.url);
            http.runtime.spawn(async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(witness = %origin, status = r.status().as_u16(), "audit witness refused the checkpoint"),
                    Err(e) => tracing::warn!(witness = %origin, error = %e.without_url(), "audit witness unreachable"),
                }
            });
        }
    }
}
