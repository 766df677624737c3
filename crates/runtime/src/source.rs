//! The stdin source: newline-delimited JSON events.
//!
//! Lines are read with a length cap (a longer line is reported and skipped, memory stays
//! bounded), parsed per the event contract, and submitted; a malformed line is reported with
//! its line number and the field at fault, and the lines around it still flow.

use bytes::BytesMut;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};
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

/// One line, or why it could not be read.
enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

/// Bytes asked of the input per read.
const READ_CHUNK: usize = 64 * 1024;

/// Reads lines of at most `max` bytes with tokio-util's [`LinesCodec`]: a longer line is
/// reported once and skipped (its bytes are discarded as they arrive, so memory stays
/// bounded by `max` plus one read), a line that is not UTF-8 likewise.
///
/// The codec is driven by a plain read loop rather than `FramedRead`, which after a
/// decoding error (an over-long line) yields `None` and then waits for more input before
/// decoding the lines it already holds. Measured against the hand-written reader this
/// replaced (BENCHMARKS.md, "NDJSON line reader"): no slower with parsing, faster reading.
struct LineReader<R> {
    input: R,
    codec: LinesCodec,
    buf: BytesMut,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(input: R, max: usize) -> Self {
        Self {
            input,
            codec: LinesCodec::new_with_max_length(max),
            buf: BytesMut::new(),
            eof: false,
        }
    }

    /// The next line; `None` at end of input. Cancel-safe (a cancelled call loses
    /// nothing: the bytes read stay in the buffer).
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let decoded = if self.eof {
                self.codec.decode_eof(&mut self.buf)
            } else {
                self.codec.decode(&mut self.buf)
            };
            match decoded {
                Ok(Some(text)) => return Ok(Some(Line::Text(text))),
                Ok(None) if self.eof => return Ok(None),
                Ok(None) => {}
                Err(LinesCodecError::MaxLineLengthExceeded) => return Ok(Some(Line::TooLong)),
                // The codec's only own I/O error: the line is not UTF-8 (it is consumed).
                Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Ok(Some(Line::NotUtf8));
                }
                Err(LinesCodecError::Io(e)) => return Err(e),
            }
            self.buf.reserve(READ_CHUNK);
            if self.input.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }
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
    let mut lines = LineReader::new(&mut input, max_line_bytes);
    let mut stop = std::pin::pin!(stop);
    loop {
        let line = tokio::select! {
            line = lines.next() => line?,
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
            Line::TooLong => {
                stats.rejected += 1;
                tracing::warn!(
                    source = source_id,
                    line = number,
                    "line skipped: longer than max_line_bytes ({max_line_bytes})"
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
        match Event::from_json_str(&text) {
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
        let mut input = format!("short\n{}\r\nafter\n", "x".repeat(100)).into_bytes();
        input.extend_from_slice(b"\xff\xfe\n{}\n");
        input.extend_from_slice(format!("{}\nno-newline-at-end", "y".repeat(51)).as_bytes());
        let mut reader =
            LineReader::new(tokio::io::BufReader::with_capacity(8, input.as_slice()), 50);
        let mut seen = Vec::new();
        while let Some(line) = reader.next().await.unwrap() {
            seen.push(match line {
                Line::Text(t) => t,
                Line::TooLong => "too long".into(),
                Line::NotUtf8 => "not utf8".into(),
            });
        }
        assert_eq!(
            seen,
            [
                "short",
                "too long",
                "after",
                "not utf8",
                "{}",
                "too long",
                "no-newline-at-end"
            ]
        );
    }

    /// A line after an over-long one is read from what is already buffered, without
    /// waiting for more input (the input below never ends).
    #[tokio::test]
    async fn a_line_after_an_overlong_one_does_not_wait_for_more_input() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        tokio::io::AsyncWriteExt::write_all(
            &mut tx,
            format!("{}\nnext\n", "x".repeat(100)).as_bytes(),
        )
        .await
        .unwrap();
        let mut reader = LineReader::new(rx, 50);
        assert!(matches!(reader.next().await.unwrap(), Some(Line::TooLong)));
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), reader.next())
            .await
            .expect("the buffered line is returned at once")
            .unwrap();
        assert!(matches!(next, Some(Line::Text(t)) if t == "next"));
        drop(tx);
    }
}
