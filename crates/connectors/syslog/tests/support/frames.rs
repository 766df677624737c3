//! An independent RFC 6587 octet-counting reader for the in-test receivers.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads octet-counted frames from a stream, one at a time.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next complete frame, or `None` at end of stream (an incomplete trailing frame,
    /// left by a write that was cut off, is dropped and reported by [`Self::leftover`]).
    pub async fn next<R: AsyncRead + Unpin>(&mut self, stream: &mut R) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            let mut chunk = vec![0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Bytes of an incomplete frame still buffered.
    pub fn leftover(&self) -> usize {
        self.buf.len()
    }

    fn take_frame(&mut self) -> Option<Vec<u8>> {
        let space = self.buf.iter().position(|&b| b == b' ')?;
        let digits = std::str::from_utf8(&self.buf[..space]).expect("frame length is ASCII");
        let len: usize = digits
            .parse()
            .unwrap_or_else(|_| panic!("bad frame length {digits:?}"));
        if self.buf.len() < space + 1 + len {
            return None;
        }
        let frame = self.buf[space + 1..space + 1 + len].to_vec();
        self.buf.drain(..space + 1 + len);
        Some(frame)
    }
}

/// Reads every complete frame until end of stream.
pub async fn read_all<R: AsyncRead + Unpin>(stream: &mut R) -> (Vec<Vec<u8>>, usize) {
    let mut reader = FrameReader::default();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next(stream).await {
        frames.push(frame);
    }
    (frames, reader.leftover())
}
