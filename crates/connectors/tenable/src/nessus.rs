//! A streaming `.nessus` v2 reader ([`NessusReader`]) and the `nessus_file` scanner.
//!
//! Layout: `NessusClientData_v2 > Report > ReportHost[name] > HostProperties > tag[name]`
//! (`host-ip`, `host-fqdn`, `netbios-name`, `HOST_END`, `HOST_END_TIMESTAMP`) and
//! `ReportItem[port, protocol, severity, pluginID, pluginName]` with children `cve`
//! (repeatable: every one is kept), `cvss3_base_score`, `cvss_base_score`, `cvss3_vector`,
//! `cvss_vector`.
//!
//! The XML is read by [`vowguard_xml::XmlReader`], the hardened reader the Greenbone and
//! Qualys parsers use too, so hostile input is refused the same way with the file and byte
//! offset named: a DTD (`<!DOCTYPE`, so no entity can be declared, which rules out
//! entity-expansion bombs and external entities), entity references other than the five
//! predefined ones and character references, an encoding other than UTF-8, nesting deeper
//! than [`MAX_DEPTH`], and any single XML token (a tag with its attributes, a run of text)
//! larger than [`NessusOptions::max_event_bytes`] (default [`MAX_EVENT_BYTES`]). Memory
//! stays bounded by that limit plus one finding, whatever the file's size.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use vowguard_core::{
    Asset, Error, Finding, FindingPages, FindingState, Scanner, Severity, SyncSummary,
};
use vowguard_xml::{Element, Limits, XmlEvent, XmlReader};

use crate::record::{host_name, normalise_cve};

/// Largest single XML token (start tag with its attributes, or a run of text) accepted.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// Deepest element nesting accepted (real files nest 5 deep).
pub const MAX_DEPTH: usize = 32;
/// Longest text kept for one field (titles, vectors); longer text is cut.
const MAX_FIELD_CHARS: usize = 4096;
/// Findings handed over per page.
const PAGE: usize = 1000;

/// What a `.nessus` import keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NessusOptions {
    /// Keep informational items (severity 0). Default false.
    pub include_info: bool,
    /// Largest single XML event accepted, default [`MAX_EVENT_BYTES`].
    pub max_event_bytes: usize,
}

impl NessusOptions {
    /// These settings with [`include_info`](Self::include_info) set to `include_info`.
    #[must_use]
    pub fn with_include_info(mut self, include_info: bool) -> Self {
        self.include_info = include_info;
        self
    }

    /// These settings with [`max_event_bytes`](Self::max_event_bytes) set to `max_event_bytes`.
    #[must_use]
    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> Self {
        self.max_event_bytes = max_event_bytes;
        self
    }
}

impl Default for NessusOptions {
    fn default() -> Self {
        Self {
            include_info: false,
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

#[derive(Default)]
struct Host {
    name: String,
    ip: Option<IpAddr>,
    fqdn: Option<String>,
    hostname: Option<String>,
    seen: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Item {
    port: u16,
    protocol: String,
    severity: u8,
    plugin_id: String,
    title: Option<String>,
    cves: Vec<String>,
    cvss3: Option<f32>,
    cvss2: Option<f32>,
    vector3: Option<String>,
    vector2: Option<String>,
}

/// Reads findings one by one from a `.nessus` v2 document.
pub struct NessusReader<R: BufRead> {
    reader: XmlReader<R>,
    scanner: String,
    options: NessusOptions,
    path: Vec<String>,
    text: String,
    tag: Option<String>,
    host: Option<Host>,
    item: Option<Item>,
    saw_root: bool,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for NessusReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NessusReader")
            .field("label", &self.reader.source())
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> NessusReader<R> {
    /// A reader of `input`; `label` (the file name) prefixes every error, `scanner` is the
    /// component id the findings carry.
    pub fn new(input: R, label: &str, scanner: &str, options: NessusOptions) -> Self {
        // A .nessus file is read in one pass with memory bounded per token, so its total
        // size is not capped.
        let limits = Limits::default()
            .with_max_bytes(u64::MAX)
            .with_max_token_bytes(options.max_event_bytes as u64)
            .with_max_depth(MAX_DEPTH)
            .with_max_text_chars(MAX_FIELD_CHARS);
        Self {
            reader: XmlReader::new(input, label.replace(['\n', '\r'], "?"), limits),
            scanner: scanner.to_owned(),
            options,
            path: Vec::new(),
            text: String::new(),
            tag: None,
            host: None,
            item: None,
            saw_root: false,
            done: false,
        }
    }

    fn error(&self, position: u64, message: impl std::fmt::Display) -> Error {
        self.reader.error_at(position, message)
    }

    /// The next finding, `Ok(None)` at the end of the document.
    pub fn next_finding(&mut self) -> Result<Option<Finding>, Error> {
        while !self.done {
            if let Some(finding) = self.step()? {
                return Ok(Some(finding));
            }
        }
        Ok(None)
    }

    /// Reads one XML event; returns a finding when it closed a `ReportItem`.
    fn step(&mut self) -> Result<Option<Finding>, Error> {
        let position = self.reader.position();
        match self.reader.next_event()? {
            XmlEvent::Start(start) => self.open(&start, position)?,
            XmlEvent::End(_) => return self.close(position),
            XmlEvent::Text(text) => self.push_text(&text),
            XmlEvent::Eof => {
                if !self.saw_root {
                    return Err(
                        self.error(position, "not a .nessus v2 file (no <NessusClientData_v2>)")
                    );
                }
                self.done = true;
            }
        }
        Ok(None)
    }

    fn push_text(&mut self, text: &str) {
        let room = MAX_FIELD_CHARS.saturating_sub(self.text.len());
        if room > 0 {
            let cut = text
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .take_while(|end| *end <= room)
                .last()
                .unwrap_or(0);
            self.text.push_str(&text[..cut]);
        }
    }

    fn open(&mut self, start: &Element, position: u64) -> Result<(), Error> {
        let name = start.name.clone();
        if self.path.is_empty() {
            if self.saw_root {
                return Err(self.error(position, "content after the root element"));
            }
            if name != "NessusClientData_v2" {
                return Err(self.error(
                    position,
                    format_args!(
                        "not a .nessus v2 file: root element is <{}>, expected <NessusClientData_v2>",
                        printable(&name)
                    ),
                ));
            }
            self.saw_root = true;
        }
        self.text.clear();
        match name.as_str() {
            "ReportHost" => {
                let host_name = start.attr("name").map(str::to_owned).unwrap_or_default();
                self.host = Some(Host {
                    name: host_name,
                    ..Host::default()
                });
            }
            "tag" if self.host.is_some() => self.tag = start.attr("name").map(str::to_owned),
            "ReportItem" => {
                if self.host.is_none() {
                    return Err(self.error(position, "<ReportItem> outside <ReportHost>"));
                }
                let port = match start.attr("port").map(str::to_owned) {
                    None => 0,
                    Some(p) => p.trim().parse::<u16>().map_err(|_| {
                        self.error(
                            position,
                            format_args!("ReportItem port `{}` is not 0..=65535", printable(&p)),
                        )
                    })?,
                };
                let severity = match start.attr("severity").map(str::to_owned) {
                    None => 0,
                    Some(s) => {
                        s.trim()
                            .parse::<u8>()
                            .ok()
                            .filter(|s| *s <= 4)
                            .ok_or_else(|| {
                                self.error(
                                    position,
                                    format_args!(
                                        "ReportItem severity `{}` is not 0..=4",
                                        printable(&s)
                                    ),
                                )
                            })?
                    }
                };
                let plugin_id = start
                    .attr("pluginID")
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| self.error(position, "ReportItem without pluginID"))?;
                self.item = Some(Item {
                    port,
                    protocol: start
                        .attr("protocol")
                        .map(|p| p.trim().to_ascii_lowercase())
                        .unwrap_or_else(|| "tcp".into()),
                    severity,
                    plugin_id,
                    title: start.attr("pluginName").map(cut),
                    ..Item::default()
                });
            }
            _ => {}
        }
        self.path.push(name);
        Ok(())
    }

    fn close(&mut self, position: u64) -> Result<Option<Finding>, Error> {
        let Some(name) = self.path.pop() else {
            return Err(self.error(position, "closing tag without an opening one"));
        };
        let text = std::mem::take(&mut self.text);
        let text = text.trim();
        match name.as_str() {
            "tag" => {
                if let (Some(tag), Some(host)) = (self.tag.take(), self.host.as_mut()) {
                    match tag.as_str() {
                        "host-ip" => host.ip = text.parse().ok().or(host.ip),
                        "host-fqdn" => host.fqdn = host_name(text).or(host.fqdn.take()),
                        "netbios-name" | "hostname" if host.hostname.is_none() => {
                            host.hostname = host_name(text);
                        }
                        "HOST_END_TIMESTAMP" => {
                            if let Some(t) = text
                                .parse::<i64>()
                                .ok()
                                .and_then(|s| DateTime::from_timestamp(s, 0))
                            {
                                host.seen = Some(t);
                            }
                        }
                        "HOST_END" if host.seen.is_none() => {
                            host.seen = parse_nessus_time(text);
                        }
                        _ => {}
                    }
                }
            }
            "ReportHost" => self.host = None,
            "ReportItem" => return Ok(self.finish_item()),
            field => {
                if let Some(item) = self.item.as_mut() {
                    match field {
                        "cve" => {
                            if let Some(cve) = normalise_cve(text)
                                && !item.cves.contains(&cve)
                                && item.cves.len() < 1000
                            {
                                item.cves.push(cve);
                            }
                        }
                        "cvss3_base_score" => item.cvss3 = score(text),
                        "cvss_base_score" => item.cvss2 = score(text),
                        "cvss3_vector" => item.vector3 = (!text.is_empty()).then(|| cut(text)),
                        "cvss_vector" => item.vector2 = (!text.is_empty()).then(|| cut(text)),
                        _ => {}
                    }
                }
            }
        }
        Ok(None)
    }

    fn finish_item(&mut self) -> Option<Finding> {
        let item = self.item.take()?;
        let host = self.host.as_ref()?;
        if item.severity == 0 && !self.options.include_info {
            return None;
        }
        let name_ip = host.name.parse::<IpAddr>().ok();
        let asset = Asset {
            ip: host.ip.or(name_ip),
            fqdn: host.fqdn.clone().or_else(|| {
                (name_ip.is_none() && host.name.contains('.'))
                    .then(|| host_name(&host.name))
                    .flatten()
            }),
            hostname: host.hostname.clone().or_else(|| {
                (name_ip.is_none() && !host.name.contains('.'))
                    .then(|| host_name(&host.name))
                    .flatten()
            }),
            scanner_asset_id: None,
        };
        if asset == Asset::default() {
            return None;
        }
        let (cvss, cvss_vector) = match (item.cvss3, item.cvss2) {
            (Some(s), _) => (Some(s), item.vector3),
            (None, Some(s)) => (Some(s), item.vector2),
            _ => (None, None),
        };
        let mut cves = item.cves;
        cves.sort();
        Some(Finding {
            scanner: self.scanner.clone(),
            plugin_id: item.plugin_id,
            title: item.title,
            asset,
            port: item.port,
            protocol: if item.port == 0 {
                String::new()
            } else {
                item.protocol
            },
            cves,
            cvss,
            cvss_vector,
            severity: match item.severity {
                4 => Severity::Critical,
                3 => Severity::High,
                2 => Severity::Medium,
                1 => Severity::Low,
                _ => Severity::Info,
            },
            state: FindingState::Open,
            first_seen: host.seen,
            last_seen: host.seen,
            confidence: 1.0,
            details_missing: false,
        })
    }
}

fn score(text: &str) -> Option<f32> {
    text.parse::<f32>()
        .ok()
        .filter(|s| (0.0..=10.0).contains(s))
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

/// A name from the file, shortened and with control characters replaced, for errors.
fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Parses Nessus' `HOST_END` time, e.g. `Thu Aug 15 10:12:34 2024` (taken as UTC).
pub fn parse_nessus_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&text, "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc())
}

/// Reads the `.nessus` file at `path`, handing findings to `page` in pages of 1000.
/// Returns how many findings were read.
pub fn import_file(
    path: &Path,
    scanner: &str,
    options: NessusOptions,
    mut page: impl FnMut(Vec<Finding>) -> Result<(), Error>,
) -> Result<u64, Error> {
    let label = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(format!("{label}: cannot open"), e))?;
    let mut reader = NessusReader::new(
        BufReader::with_capacity(64 * 1024, file),
        &label,
        scanner,
        options,
    );
    let mut batch = Vec::with_capacity(PAGE);
    let mut total = 0u64;
    while let Some(finding) = reader.next_finding()? {
        batch.push(finding);
        total += 1;
        if batch.len() == PAGE {
            page(std::mem::replace(&mut batch, Vec::with_capacity(PAGE)))?;
        }
    }
    if !batch.is_empty() {
        page(batch)?;
    }
    Ok(total)
}

/// A `type = "nessus_file"` scanner: every sync imports its files whole (a `.nessus` file
/// is a full scan, so `since` is ignored).
#[derive(Debug, Clone)]
pub struct NessusFileScanner {
    id: String,
    paths: Vec<PathBuf>,
    options: NessusOptions,
}

impl NessusFileScanner {
    /// A scanner with component id `id` importing `paths`.
    pub fn new(id: &str, paths: Vec<PathBuf>, options: NessusOptions) -> Self {
        Self {
            id: id.to_owned(),
            paths,
            options,
        }
    }
}

#[async_trait]
impl Scanner for NessusFileScanner {
    fn kind(&self) -> &'static str {
        crate::NESSUS_FILE_KIND
    }

    async fn sync(
        &self,
        _since: Option<DateTime<Utc>>,
        out: &mut dyn FindingPages,
    ) -> Result<SyncSummary, Error> {
        let started_at = Utc::now();
        let mut summary = SyncSummary::default();
        for path in &self.paths {
            // Parse on a blocking thread; pages cross a channel of two, so memory stays
            // bounded by a few pages however large the file.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Finding>>(2);
            let path = path.clone();
            let id = self.id.clone();
            let options = self.options;
            let parser = tokio::task::spawn_blocking(move || {
                import_file(&path, &id, options, |page| {
                    tx.blocking_send(page)
                        .map_err(|_| Error::internal("nessus import: the receiver went away"))
                })
            });
            while let Some(page) = rx.recv().await {
                summary.pages += 1;
                summary.findings += page.len() as u64;
                out.page(page).await?;
            }
            parser
                .await
                .map_err(|e| Error::internal(format!("nessus import task failed: {e}")))?
                .map_err(|e| e.with_component(&self.id))?;
        }
        summary.checkpoint = Some(started_at);
        Ok(summary)
    }
}
