//! How the agent cuts a command's output into messages ([`OutputReader`]): like the real
//! agent's shell plugin, at most a chunk at a time and never inside a UTF-8 sequence, so every
//! message of a UTF-8 stream is valid UTF-8 on its own. Bytes are never changed: invalid UTF-8
//! passes through as it came.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A command's output (a pty, a pipe, a file), read a message at a time.
pub(super) struct OutputReader {
    src: Pin<Box<dyn AsyncRead + Send>>,
    /// Read and not handed out yet: an incomplete UTF-8 sequence at most, or what did not fit
    /// the last message.
    pending: Vec<u8>,
    /// The read buffer, kept between reads.
    scratch: Vec<u8>,
    eof: bool,
}

impl OutputReader {
    pub(super) fn new(src: impl AsyncRead + Send + 'static) -> Self {
        Self {
            src: Box::pin(src),
            pending: Vec::new(),
            scratch: Vec::new(),
            eof: false,
        }
    }

    /// The source is done even if it has not said so (a pty a background job keeps open):
    /// what is pending goes out, then the end.
    pub(super) fn finish(&mut self) {
        self.eof = true;
    }

    /// The next message of at most `cap` bytes, cut between UTF-8 sequences (at the end,
    /// whatever is left goes out); `None` once everything was handed out. A pty whose other
    /// side every process closed reports EIO (Linux): that is its end of file.
    pub(super) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
        cap: usize,
    ) -> Poll<io::Result<Option<Vec<u8>>>> {
        let cap = cap.max(1);
        loop {
            let avail = self.pending.len().min(cap);
            let head = self.pending.get(..avail).unwrap_or_default();
            let n = match utf8_cut(head) {
                _ if self.eof => avail,
                // Only a `cap` below 4 can hold a whole sequence back; send it as it is.
                0 if avail == cap => avail,
                n => n,
            };
            if n > 0 {
                return Poll::Ready(Ok(Some(self.pending.drain(..n).collect())));
            }
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            self.scratch
                .resize(cap - self.pending.len().min(cap - 1), 0);
            let mut rb = ReadBuf::new(&mut self.scratch);
            match ready!(self.src.as_mut().poll_read(cx, &mut rb)) {
                Ok(()) if rb.filled().is_empty() => self.eof = true,
                Ok(()) => self.pending.extend_from_slice(rb.filled()),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => self.eof = true,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The longest prefix of `data` that does not end inside a UTF-8 sequence: `data.len()`,
/// less an incomplete multi-byte sequence at its end (at most 3 bytes). Bytes that cannot
/// start a sequence count as complete, so invalid input is never held back.
pub(super) fn utf8_cut(data: &[u8]) -> usize {
    let n = data.len();
    // The last byte that is not a continuation byte (10xxxxxx), within a sequence's reach.
    for back in 1..=n.min(4) {
        let i = n - back;
        let Some(&b) = data.get(i) else { break };
        if b & 0xC0 == 0x80 {
            continue;
        }
        let len = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 1,
        };
        return if len > back { i } else { n };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::utf8_cut;

    #[test]
    fn a_cut_never_splits_a_utf8_sequence_and_never_holds_invalid_bytes() {
        let euro = "€".as_bytes(); // E2 82 AC
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut(euro), 3);
        assert_eq!(utf8_cut(&[b'a', 0xE2]), 1);
        assert_eq!(utf8_cut(&[b'a', 0xE2, 0x82]), 1);
        assert_eq!(utf8_cut(&[0xF0, 0x9F, 0x98]), 0);
        assert_eq!(utf8_cut("a😀".as_bytes()), 5);
        assert_eq!(utf8_cut(&[b'a', 0xFF]), 2, "invalid bytes pass");
        assert_eq!(
            utf8_cut(&[0x80, 0x80, 0x80, 0x80, 0x80]),
            5,
            "stray continuations pass"
        );
        assert_eq!(utf8_cut(&[]), 0);
    }
}
