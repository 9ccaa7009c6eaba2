//! [`ExecLayer`]: the client side of an `exec` session. Output goes to stdout (through the
//! end-marker filter when the command is wrapped), StdErr to stderr, ExitCode and the exit
//! marker to an [`Outcome`] the CLI reads when the session ends. Stdin goes out raw (`-t`),
//! framed (`-i`, once the wrapper says it is ready) or not at all; interrupts and terminal
//! sizes come from the CLI through a small channel.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

use super::exit_code::{self, ExitCodeError};
use super::marker::{Event, MarkerFilter};
use super::stdin_frame::StdinFramer;
use crate::ssm::driver::{AppLayer, Outgoing};
use crate::ssm::message::PayloadType;

/// The byte the agent turns into SIGINT for the command (§8).
pub const INTERRUPT: u8 = 0x03;

/// Stdin bytes read at a time; the framed queue holds at most their encoding.
const STDIN_CHUNK: usize = 3 * 1024;

/// What the remote command's end looked like, as far as the session told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Nothing yet (or never: `--raw`, or the wrapper was replaced or killed).
    #[default]
    Unknown,
    /// The status from the ExitCode payload or the exit marker.
    Exited(i64),
    /// An ExitCode payload that could not be read.
    BadExitCode(ExitCodeError),
    /// Our stdout's reader went away (`exec … | head -1`): nothing more can be shown.
    StdoutClosed,
}

/// Input from the CLI while the session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Ctrl-C: byte 0x03, which the agent delivers as SIGINT.
    Interrupt,
    /// The local terminal's size (Size payload, `-t`).
    Size { cols: u16, rows: u16 },
}

/// How stdin reaches the command.
pub enum Input {
    /// Not read (like `ssh -n`).
    None,
    /// As typed, into the pty (`-t`).
    Raw(Pin<Box<dyn AsyncRead + Send>>),
    /// Base64 lines after the wrapper's `ready` (`-i`).
    Framed(Pin<Box<dyn AsyncRead + Send>>, StdinFramer),
}

/// Where output and status come from.
pub enum Output {
    /// As delivered (separate-output documents, `--raw`).
    Plain,
    /// Through the end-marker filter (wrapped modes).
    Marked(MarkerFilter),
}

pub struct ExecLayer {
    input: Input,
    output: Output,
    stdout: Pin<Box<dyn AsyncWrite + Send>>,
    stderr: Pin<Box<dyn AsyncWrite + Send>>,
    control: mpsc::Receiver<Control>,
    outcome: watch::Sender<Outcome>,
    /// Bytes for the channel not yet taken (framed stdin, an interrupt).
    queue: Vec<u8>,
    queue_pos: usize,
    /// Filtered output not yet written to stdout.
    pending: Vec<u8>,
    pending_pos: usize,
    /// ExitCode payload bytes so far (bounded by [`exit_code::MAX_LEN`]).
    exit_payload: Vec<u8>,
    /// The wrapper asked for framed stdin.
    ready: bool,
    stdin_done: bool,
    /// The input side waits for `ready` or the exit marker.
    input_waker: Option<Waker>,
}

impl ExecLayer {
    pub fn new(
        input: Input,
        output: Output,
        stdout: Pin<Box<dyn AsyncWrite + Send>>,
        stderr: Pin<Box<dyn AsyncWrite + Send>>,
        control: mpsc::Receiver<Control>,
        outcome: watch::Sender<Outcome>,
    ) -> Self {
        let stdin_done = matches!(input, Input::None);
        Self {
            input,
            output,
            stdout,
            stderr,
            control,
            outcome,
            queue: Vec::new(),
            queue_pos: 0,
            pending: Vec::new(),
            pending_pos: 0,
            exit_payload: Vec::new(),
            ready: false,
            stdin_done,
            input_waker: None,
        }
    }

    fn exited(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Exited(_))
    }

    /// Copies queued bytes into `buf`.
    fn take_queued(&mut self, buf: &mut [u8]) -> Option<usize> {
        let q = self.queue.get(self.queue_pos..).unwrap_or_default();
        if q.is_empty() {
            return None;
        }
        let n = q.len().min(buf.len());
        buf.get_mut(..n)?.copy_from_slice(q.get(..n)?);
        self.queue_pos += n;
        if self.queue_pos >= self.queue.len() {
            self.queue.clear();
            self.queue_pos = 0;
        }
        Some(n)
    }

    /// Reads stdin for the channel: raw into `buf`, or framed into the queue.
    fn poll_stdin(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let exited = self.exited();
        match &mut self.input {
            Input::None => Poll::Pending,
            Input::Raw(r) => {
                let mut rb = ReadBuf::new(buf);
                ready!(r.as_mut().poll_read(cx, &mut rb))?;
                if rb.filled().is_empty() {
                    self.stdin_done = true;
                    return Poll::Pending;
                }
                Poll::Ready(Ok(rb.filled().len()))
            }
            Input::Framed(r, framer) => {
                // Woken by `ready` and by the exit marker as well as by stdin.
                self.input_waker = Some(cx.waker().clone());
                if exited {
                    // The command is gone: stop the target's decoder, read no more.
                    framer.abort(&mut self.queue);
                    self.stdin_done = true;
                    return Poll::Ready(Ok(0));
                }
                if !self.ready {
                    return Poll::Pending;
                }
                let mut chunk = [0u8; STDIN_CHUNK];
                let mut rb = ReadBuf::new(&mut chunk);
                ready!(r.as_mut().poll_read(cx, &mut rb))?;
                if rb.filled().is_empty() {
                    framer.finish(&mut self.queue);
                    self.stdin_done = true;
                } else {
                    framer.encode(rb.filled(), &mut self.queue);
                }
                Poll::Ready(Ok(0))
            }
        }
    }

    /// Writes filtered output to stdout until none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.poll_drain_inner(cx);
        self.note_stdout_error(&r);
        r
    }

    /// A broken pipe on stdout is its reader going away, which the CLI treats as success.
    fn note_stdout_error(&self, r: &Poll<io::Result<()>>) {
        if let Poll::Ready(Err(e)) = r {
            if e.kind() == io::ErrorKind::BrokenPipe {
                self.outcome.send_if_modified(|o| {
                    let unknown = *o == Outcome::Unknown;
                    if unknown {
                        *o = Outcome::StdoutClosed;
                    }
                    unknown
                });
            }
        }
    }

    fn poll_drain_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = self
            .pending
            .get(self.pending_pos..)
            .filter(|r| !r.is_empty())
        {
            let n = ready!(self.stdout.as_mut().poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_pos += n;
        }
        self.pending.clear();
        self.pending_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn on_events(&mut self, events: &[Event]) {
        for ev in events {
            match ev {
                Event::Ready => self.ready = true,
                Event::Exit(code) => {
                    self.outcome.send_replace(Outcome::Exited(i64::from(*code)));
                }
            }
            if let Some(w) = self.input_waker.take() {
                w.wake();
            }
        }
    }

    fn on_exit_code(&mut self, data: &[u8]) {
        let room = exit_code::MAX_LEN + 1 - self.exit_payload.len().min(exit_code::MAX_LEN + 1);
        self.exit_payload
            .extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
        let parsed = match exit_code::parse(&self.exit_payload) {
            Ok(n) => Outcome::Exited(n),
            Err(e) => Outcome::BadExitCode(e),
        };
        self.outcome.send_replace(parsed);
    }
}

impl AppLayer for ExecLayer {
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        loop {
            if let Some(n) = self.take_queued(buf) {
                return Poll::Ready(Ok(Outgoing::Data(n)));
            }
            match self.control.poll_recv(cx) {
                Poll::Ready(Some(Control::Interrupt)) => {
                    self.queue.push(INTERRUPT);
                    continue;
                }
                Poll::Ready(Some(Control::Size { cols, rows })) => {
                    let json = format!("{{\"cols\":{cols},\"rows\":{rows}}}");
                    return Poll::Ready(Ok(Outgoing::Payload(
                        PayloadType::Size,
                        Bytes::from(json),
                    )));
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
            // No End: interrupts and sizes may still have to go out after stdin's EOF.
            if self.stdin_done {
                return Poll::Pending;
            }
            match ready!(self.poll_stdin(cx, buf))? {
                0 => continue,
                n => return Poll::Ready(Ok(Outgoing::Data(n))),
            }
        }
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        let mut events = Vec::new();
        match &mut self.output {
            Output::Plain => self.pending.extend_from_slice(data),
            Output::Marked(f) => f.feed(data, &mut self.pending, &mut events),
        }
        self.on_events(&events);
        // Whatever stdout does not take now goes out on the next call or at the flush.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_deliver_other(
        &mut self,
        cx: &mut Context<'_>,
        ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match ptype {
            PayloadType::StdErr => self.stderr.as_mut().poll_write(cx, data),
            PayloadType::ExitCode => {
                self.on_exit_code(data);
                Poll::Ready(Ok(data.len()))
            }
            _ => Poll::Ready(Ok(data.len())),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        let flushed = self.stdout.as_mut().poll_flush(cx);
        self.note_stdout_error(&flushed);
        ready!(flushed)?;
        self.stderr.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Output::Marked(f) = &mut self.output {
            f.finish(&mut self.pending);
        }
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests;
