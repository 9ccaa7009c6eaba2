//! One local connection of a port session: its socket, which directions are open, and the
//! bytes taken from the session that it has not written yet (bounded by [`OUT_BUFFER`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use super::BoxIo;

/// Bytes held for one local writer at most; the rest stays in the session's stream buffer.
pub(super) const OUT_BUFFER: usize = 32 * 1024;

pub(super) struct Local {
    io: BoxIo,
    /// The local side may still send (no EOF or error read yet).
    pub(super) read_open: bool,
    /// We still write to the local side (no shutdown or error yet).
    pub(super) write_open: bool,
    out: Vec<u8>,
    out_pos: usize,
}

impl Local {
    pub(super) fn new(io: BoxIo) -> Self {
        Self {
            io,
            read_open: true,
            write_open: true,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Both directions are done: the connection can go.
    pub(super) fn is_done(&self) -> bool {
        !self.read_open && !self.write_open
    }

    /// Reads local input into `buf`; `Ok(0)` is end of file.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        crate::relay::poll_read_into(&mut self.io, cx, buf)
    }

    /// Nothing is waiting to be written.
    pub(super) fn out_empty(&self) -> bool {
        self.out_pos >= self.out.len()
    }

    /// Refills the empty write buffer from `fill` (which copies into the slice it is given and
    /// returns how much); returns the bytes taken.
    pub(super) fn refill(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        self.out.resize(OUT_BUFFER, 0);
        let n = fill(&mut self.out);
        self.out_pos = 0;
        if n == 0 {
            // An idle connection holds no buffer: a thousand of them cost little memory.
            self.out = Vec::new();
        } else {
            self.out.truncate(n);
        }
        n
    }

    /// Writes buffered bytes; Ready(Ok(n)) with n > 0 when some went out.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let data = self.out.get(self.out_pos..).unwrap_or_default();
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, data))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.out_pos += n;
        Poll::Ready(Ok(n))
    }

    /// The socket, while we still write to it (basic mode writes delivered bytes directly).
    pub(super) fn io_mut(&mut self) -> Option<&mut BoxIo> {
        self.write_open.then_some(&mut self.io)
    }

    /// Half-closes the local side's input (the remote side sent its EOF).
    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
