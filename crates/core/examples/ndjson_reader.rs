//! Issue 17's question: should the stdin source (`vowguard-runtime`'s `source.rs`) read its
//! NDJSON lines with tokio-util's length-capped codecs instead of its hand-written reader?
//!
//! `cargo run -p vowguard-core --example ndjson_reader --profile bench-fast [-- LINES]`
//!
//! Three readers over the same input (a `BufReader` over bytes in memory, as the source
//! reads stdin through one), each parsing every line with [`Event::from_json_str`] as the
//! source does:
//! * `hand-written`: the source's `next_line`, copied here verbatim: it copies each line
//!   into one reused buffer and parses it in place (no allocation per line);
//! * `LinesCodec`: `FramedRead` + `LinesCodec::new_with_max_length`: a `String` per line;
//! * `LinesCodec, own loop`: `LinesCodec` driven by a plain `read_buf` loop instead of
//!   `FramedRead` (what the source uses: `FramedRead` pauses after a decoding error, such
//!   as an over-long line, until more input arrives);
//! * `AnyDelimiterCodec`: `FramedRead` + `AnyDelimiterCodec::new_with_max_length`: a
//!   `Bytes` per line (split off the read buffer), checked as UTF-8 and parsed in place.
//!
//! Five rounds alternating the three, the median of each. The bench-fast build of
//! `vowguard-core` is small, so the comparison does not need the whole runtime built.
#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use futures::StreamExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio_util::codec::{AnyDelimiterCodec, FramedRead, LinesCodec};
use vowguard_core::Event;

const MAX_LINE: usize = 1 << 20;

/// A copy of `vowguard-runtime`'s `source::Line`.
enum Line<'a> {
    Text(&'a str),
    TooLong(usize),
    NotUtf8,
}

/// A copy of `vowguard-runtime`'s `source::next_line`.
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

/// 1 for a line that is an event (parsed as the source does), or for any non-blank line
/// when `PARSE` is off (then only the reading is measured).
fn parse<const PARSE: bool>(text: &str) -> usize {
    usize::from(!text.trim().is_empty() && (!PARSE || Event::from_json_str(text).is_ok()))
}

async fn hand_written<const PARSE: bool>(input: &[u8]) -> usize {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut buf = Vec::new();
    let mut ok = 0;
    let mut too_long = 0;
    while let Some(line) = next_line(&mut reader, MAX_LINE, &mut buf).await.unwrap() {
        match line {
            Line::Text(text) => ok += parse::<PARSE>(text),
            Line::TooLong(len) => too_long += len,
            Line::NotUtf8 => {}
        }
    }
    assert_eq!(too_long, 0, "no sample line is over the cap");
    ok
}

async fn lines_codec<const PARSE: bool>(input: &[u8]) -> usize {
    let mut frames = FramedRead::new(
        BufReader::with_capacity(64 * 1024, input),
        LinesCodec::new_with_max_length(MAX_LINE),
    );
    let mut ok = 0;
    while let Some(line) = frames.next().await {
        if let Ok(text) = line {
            ok += parse::<PARSE>(&text);
        }
    }
    ok
}

async fn lines_codec_own_loop<const PARSE: bool>(input: &[u8]) -> usize {
    use tokio::io::AsyncReadExt;
    use tokio_util::codec::Decoder;
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut codec = LinesCodec::new_with_max_length(MAX_LINE);
    let mut buf = bytes::BytesMut::new();
    let mut eof = false;
    let mut ok = 0;
    loop {
        let decoded = if eof {
            codec.decode_eof(&mut buf)
        } else {
            codec.decode(&mut buf)
        };
        match decoded {
            Ok(Some(text)) => {
                ok += parse::<PARSE>(&text);
                continue;
            }
            Ok(None) if eof => return ok,
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
        buf.reserve(64 * 1024);
        if reader.read_buf(&mut buf).await.unwrap() == 0 {
            eof = true;
        }
    }
}

async fn any_delimiter_codec<const PARSE: bool>(input: &[u8]) -> usize {
    let mut frames = FramedRead::new(
        BufReader::with_capacity(64 * 1024, input),
        AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), MAX_LINE),
    );
    let mut ok = 0;
    while let Some(line) = frames.next().await {
        if let Ok(bytes) = line {
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
            if let Ok(text) = std::str::from_utf8(bytes) {
                ok += parse::<PARSE>(text);
            }
        }
    }
    ok
}

fn line(i: usize) -> String {
    format!(
        r#"{{"id":"evt-{i:08}","timestamp":"2026-06-20T14:03:07.{ms:03}Z","category":"authentication","action":"login","outcome":"failure","severity":"high","risk_score":{risk},"message":"failed login {i} for planner account","user_id":"planner-{u}","user_name":"alex.planner","source_ip":"203.0.113.{oct}","user_agent":"Mozilla/5.0 (X11; Linux x86_64)","wedding_id":"w-2026-06-20-smith","labels":{{"env":"prod"}}}}"#,
        ms = i % 1000,
        risk = i % 101,
        u = i % 97,
        oct = i % 250,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .map_or(200_000, |n| n.parse().expect("LINES is a number"));
    let mut input = Vec::new();
    for i in 0..lines {
        input.extend_from_slice(line(i).as_bytes());
        input.push(b'\n');
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    println!(
        "{lines} lines, {:.1} MB, 64 KiB BufReader (as the stdin source), 5 rounds",
        input.len() as f64 / 1e6
    );
    for parse in [true, false] {
        println!(
            "\n## {}",
            if parse {
                "read and parse each line (what the source does)"
            } else {
                "read only (UTF-8 checked, not parsed)"
            }
        );
        let mut times: [Vec<f64>; 4] = Default::default();
        let names = [
            "hand-written",
            "LinesCodec",
            "LinesCodec, own loop",
            "AnyDelimiterCodec",
        ];
        for round in 0..5 {
            for (i, name) in names.iter().enumerate() {
                let start = Instant::now();
                let ok = rt.block_on(async {
                    match (i, parse) {
                        (0, true) => hand_written::<true>(&input).await,
                        (1, true) => lines_codec::<true>(&input).await,
                        (2, true) => lines_codec_own_loop::<true>(&input).await,
                        (_, true) => any_delimiter_codec::<true>(&input).await,
                        (0, false) => hand_written::<false>(&input).await,
                        (1, false) => lines_codec::<false>(&input).await,
                        (2, false) => lines_codec_own_loop::<false>(&input).await,
                        (_, false) => any_delimiter_codec::<false>(&input).await,
                    }
                });
                let took = start.elapsed().as_secs_f64();
                assert_eq!(ok, lines, "{name} read every line");
                times[i].push(took);
                println!("round {round}: {name} {took:.3} s");
            }
        }
        let reference = median(times[0].clone());
        for (name, t) in names.iter().zip(times) {
            let m = median(t);
            println!(
                "median {name}: {:.0} ns/line ({:.0} lines/s), {:.2}x the hand-written time",
                m * 1e9 / lines as f64,
                lines as f64 / m,
                m / reference
            );
        }
    }
}
