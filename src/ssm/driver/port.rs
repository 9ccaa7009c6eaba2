//! The driver's side of the application layer: when it may open, the read buffer for input and
//! the write buffer for delivered bytes, and which directions are still open.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

use super::app::{AppLayer, Outgoing};
use crate::ssm::channel::{Channel, SessionInfo};
use crate::ssm::message::PayloadType;
use crate::ssm::payload::Flag;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The session is not ready yet: the layer is not opened.
    Waiting,
    /// The session is ready and the layer is opening.
    Opening,
    Open,
}

/// What a delivery poll did.
pub(super) enum Delivery {
    Wrote(io::Result<usize>),
    Flushed(io::Result<()>),
}

pub(super) struct AppPort<P> {
    layer: P,
    phase: Phase,
    /// Input may still come (no EOF seen).
    pub(super) read_open: bool,
    /// The application still takes delivered bytes.
    write_open: bool,
    /// Bytes were written since the last flush (stdout is buffered: flush once caught up).
    unflushed: bool,
    in_buf: Vec<u8>,
    out_buf: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    /// The payload type of the bytes in `out_buf` (Output, or StdErr/ExitCode/Size).
    out_type: PayloadType,
}

impl<P: AppLayer> AppPort<P> {
    pub(super) fn new(layer: P, io_buffer: usize) -> Self {
        let size = io_buffer.max(1024);
        Self {
            layer,
            phase: Phase::Waiting,
            read_open: true,
            write_open: false,
            unflushed: false,
            in_buf: vec![0; size],
            out_buf: vec![0; size],
            out_pos: 0,
            out_len: 0,
            out_type: PayloadType::Output,
        }
    }

    /// The session is ready: tell the layer what the peer offered and start opening it.
    pub(super) fn start_opening(&mut self, session: &SessionInfo) {
        if self.phase == Phase::Waiting {
            self.layer.on_ready(session);
            self.phase = Phase::Opening;
        }
    }

    /// A peer Flag for the layer; true when it acted on it.
    pub(super) fn on_flag(&mut self, flag: Flag) -> bool {
        self.layer.on_flag(flag)
    }

    /// The layer's own work, once it is open.
    pub(super) fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_open() {
            return Poll::Pending;
        }
        self.layer.poll_progress(cx)
    }

    pub(super) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The application still takes delivered bytes.
    pub(super) fn is_writable(&self) -> bool {
        self.is_open() && self.write_open
    }

    /// Everything taken from the channel was handed to the application.
    pub(super) fn caught_up(&self) -> bool {
        self.out_pos == self.out_len
    }

    /// Largest input read the buffer allows.
    pub(super) fn buffer_len(&self) -> usize {
        self.in_buf.len()
    }

    /// Takes delivered bytes from the channel once the previous batch is out.
    pub(super) fn refill(&mut self, ch: &mut Channel) {
        if self.caught_up() && self.is_writable() {
            self.out_pos = 0;
            (self.out_type, self.out_len) = ch
                .read_typed(&mut self.out_buf)
                .unwrap_or((PayloadType::Output, 0));
        }
    }

    pub(super) fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.phase != Phase::Opening {
            return Poll::Pending;
        }
        let r = std::task::ready!(self.layer.poll_open(cx));
        if r.is_ok() {
            self.phase = Phase::Open;
            self.write_open = true;
        } else {
            self.phase = Phase::Waiting;
        }
        Poll::Ready(r)
    }

    /// Polls for input of at most `cap` bytes (0: do not read now).
    pub(super) fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        cap: usize,
    ) -> Poll<io::Result<Outgoing>> {
        if !self.is_open() || !self.read_open || cap == 0 {
            return Poll::Pending;
        }
        let buf = self.in_buf.get_mut(..cap).unwrap_or_default();
        self.layer.poll_outgoing(cx, buf)
    }

    /// The first `n` bytes of the last input read.
    pub(super) fn input(&self, n: usize) -> &[u8] {
        self.in_buf.get(..n).unwrap_or_default()
    }

    /// Delivers pending bytes, or flushes once caught up.
    pub(super) fn poll_delivery(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        if !self.is_writable() {
            return Poll::Pending;
        }
        if !self.caught_up() {
            let data = self
                .out_buf
                .get(self.out_pos..self.out_len)
                .unwrap_or_default();
            let wrote = match self.out_type {
                PayloadType::Output => self.layer.poll_deliver(cx, data),
                other => self.layer.poll_deliver_other(cx, other, data),
            };
            return wrote.map(Delivery::Wrote);
        }
        if self.unflushed {
            return self.layer.poll_flush(cx).map(Delivery::Flushed);
        }
        Poll::Pending
    }

    pub(super) fn on_delivered(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out_len);
        self.unflushed = true;
    }

    pub(super) fn on_flushed(&mut self) {
        self.unflushed = false;
    }

    /// The application stopped reading: nothing more can be delivered.
    pub(super) fn on_write_closed(&mut self) {
        self.write_open = false;
        self.out_pos = self.out_len;
    }

    /// Tells the application nothing more will come (best effort).
    pub(super) async fn shutdown(&mut self) {
        if self.is_writable() {
            let _ = poll_fn(|cx| self.layer.poll_shutdown(cx)).await;
        }
    }

    /// Flushes what was delivered (best effort).
    pub(super) async fn flush(&mut self) {
        if self.is_writable() {
            let _ = poll_fn(|cx| self.layer.poll_flush(cx)).await;
        }
    }
}
