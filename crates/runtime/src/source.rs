//! The stdin source: newline-delimited JSON events.
//!
//! Lines are read with a length cap (a longer line is reported and skipped, memory stays
//! bounded), parsed per the event contract, and submitted; a malformed line is reported with
//! its line number and the field at fault, and the lines around it still flow.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use vowguard_core::Event;
use vowguard_pipeline::Pipeline;

/// What the source read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStats {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Events accepted into the pipeline.
    pub accepted: u64,
    /// Lines rejected (malformed, too long, not UTF-8).
    pub rejected: u64,
    /// Whether reading stopped on request (a signal) rather than at the end of input.
    pub stopped: bool,
}

/// One line (borrowed from the line buffer: parsed from there, never copied), or why it
/// could not be read.
enum Line<'a> {
    Text(&'a str),
    TooLong(usize),
    NotUtf8,
}

/// Reads lines of at most `max` bytes; returns `None` at end of input.
async fn next_line<'a, R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &'a mut Vec<u8>,
) -> std::io::Result<Option<Line<'a>>> {
    buf.clear();
    let mut total = 0usize;
    let mut saw_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        saw_any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (chunk.len(), false),
        };
        let content = if done {
            &chunk[..take - 1]
        } else {
            &chunk[..take]
        };
        total += content.len();
        if total <= max {
            buf.extend_from_slice(content);
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    if !saw_any {
        return Ok(None);
    }
    if total > max {
        return Ok(Some(Line::TooLong(total)));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let line: &'a [u8] = buf;
    Ok(Some(match std::str::from_utf8(line) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::NotUtf8,
    }))
}

/// Where the source hands its events: the local pipeline, or the cluster's queue.
pub(crate) trait Accept {
    /// Takes one event; `false` when nothing more can be taken (input is left unread).
    async fn accept(&mut self, event: Event) -> bool;
}

struct ToPipeline<'a>(&'a Pipeline);

impl Accept for ToPipeline<'_> {
    async fn accept(&mut self, event: Event) -> bool {
        // Nobody waits on a stdin event's acknowledgement: the drain at the end of input
        // covers it, so nothing is registered per event.
        self.0.submit_unawaited(event).await.is_ok()
    }
}

/// Reads events from `input` until it ends (or `stop` completes) and submits them.
pub async fn read_ndjson<R, S>(
    source_id: &str,
    input: R,
    max_line_bytes: usize,
    pipeline: &Pipeline,
    stop: S,
) -> std::io::Result<SourceStats>
where
    R: AsyncBufRead + Unpin,
    S: std::future::Future<Output = ()>,
{
    read_events(
        source_id,
        input,
        max_line_bytes,
        stop,
        &mut ToPipeline(pipeline),
    )
    .await
}

/// [`read_ndjson`] handing the events to any [`Accept`].
pub(crate) async fn read_events<R, S, A>(
    source_id: &str,
    mut input: R,
    max_line_bytes: usize,
    stop: S,
    sink: &mut A,
) -> std::io::Result<SourceStats>
where
    R: AsyncBufRead + Unpin,
    S: std::future::Future<Output = ()>,
    A: Accept,
{
    let mut stats = SourceStats::default();
    let mut buf = Vec::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let line = tokio::select! {
            line = next_line(&mut input, max_line_bytes, &mut buf) => line?,
            () = &mut stop => {
                tracing::info!(source = source_id, "stop requested; no more input is read");
                stats.stopped = true;
                break;
            }
        };
        let Some(line) = line else { break };
        stats.lines += 1;
        let number = stats.lines;
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong(len) => {
                stats.rejected += 1;
                tracing::warn!(
                    source = source_id,
                    line = number,
                    "line skipped: {len} bytes is longer than max_line_bytes ({max_line_bytes})"
                );
                continue;
            }
            Line::NotUtf8 => {
                stats.rejected += 1;
                tracing::warn!(
                    source = source_id,
                    line = number,
                    "line skipped: not valid UTF-8"
                );
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match Event::from_json_str(text) {
            Ok(event) => {
                if !sink.accept(event).await {
                    tracing::error!(
                        source = source_id,
                        line = number,
                        "pipeline stopped; input left unread"
                    );
                    break;
                }
                stats.accepted += 1;
            }
            Err(e) => {
                stats.rejected += 1;
                tracing::warn!(
                    source = source_id,
                    line = number,
                    "line {number} rejected: {e}"
                );
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_line_length_and_keeps_going() {
        let input = format!("short\n{}\r\nafter\nno-newline-at-end", "x".repeat(100));
        let mut reader = tokio::io::BufReader::with_capacity(8, input.as_bytes());
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while let Some(line) = next_line(&mut reader, 50, &mut buf).await.unwrap() {
            seen.push(match line {
                Line::Text(t) => t.to_owned(),
                Line::TooLong(n) => format!("too long {n}"),
                Line::NotUtf8 => "not utf8".into(),
            });
        }
        assert_eq!(
            seen,
            ["short", "too long 101", "after", "no-newline-at-end"]
        );
    }
}
