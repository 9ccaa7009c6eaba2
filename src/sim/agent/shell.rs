//! The agent's application layer for Standard_Stream and InteractiveCommands sessions: a real
//! command in a real pty on the simulated instance, as the real agent's shell plugin runs it.
//!
//! - The command gets `TERM=xterm-256color`, and `LANG=C.UTF-8` when the environment has no
//!   `LANG`; it is a session leader with the pty as its controlling terminal (`pty-process`).
//! - Client Output bytes are written to the pty; a Size payload (`{"cols":N,"rows":M}`)
//!   resizes it. A Size that is not that JSON is ignored (logged at debug), as a bad payload
//!   must not end a shell.
//! - Pty output goes out in messages of at most the agent's chunk size, cut only between
//!   UTF-8 sequences ([`OutputReader`]).
//! - The session ends once the command has exited and its output is read: the pty reports
//!   end of file (EIO) when the last process holding it is gone; a background job that keeps
//!   it open gets [`EXIT_DRAIN`] after the command's exit, the real agent's drain.
//! - Dropping the layer (the session ended, or the client terminated it) kills the command's
//!   whole process group, so nothing it started outlives the session.
//!
//! The real agent waits 1 s before its first read of the pty; the simulator reads at once, so
//! tests stay fast (the wait shows no behaviour a client depends on: output simply queues).
//! The real agent also starts its pty a moment after the session is ready and refuses (does
//! not acknowledge) input until then; here the pty starts as the session becomes ready, in
//! the same step, so that window does not exist and early input is simply taken.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;
use tokio::time::Sleep;

use super::chunk::OutputReader;
use crate::ssm::driver::{AppLayer, Outgoing};
use crate::ssm::message::PayloadType;

/// How long the pty may stay open after the command exited (a background job holding it).
const EXIT_DRAIN: Duration = Duration::from_secs(2);

/// The program a pty session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PtyCommand {
    program: String,
    args: Vec<String>,
    /// Typed into the pty once the command runs (a Standard_Stream document's `shellProfile`).
    profile: Option<String>,
}

impl PtyCommand {
    /// Standard_Stream: the instance's shell command (`sim --shell-command`), run through
    /// `sh -c` when it has arguments.
    pub(super) fn shell(shell: &str, profile: Option<String>) -> Self {
        let shell = shell.trim();
        let (program, args) = if shell.contains(char::is_whitespace) {
            ("sh".to_owned(), vec!["-c".to_owned(), shell.to_owned()])
        } else {
            (shell.to_owned(), Vec::new())
        };
        Self {
            program,
            args,
            profile,
        }
    }

    /// InteractiveCommands: `sh -c <command>`.
    pub(super) fn interactive(command: &str) -> Self {
        Self {
            program: "sh".to_owned(),
            args: vec!["-c".to_owned(), command.to_owned()],
            profile: None,
        }
    }
}

/// The pty layer of one session.
pub(super) struct ShellLayer {
    state: State,
    /// Bytes per Output message at most (`--chunk`).
    chunk: usize,
    /// Client bytes the pty took (the acknowledge gate waits for them).
    written: Arc<AtomicU64>,
}

enum State {
    Starting(PtyCommand),
    Running(Box<Running>),
}

/// A command running in its pty.
struct Running {
    output: OutputReader,
    /// The pty's write side, which also resizes it.
    input: pty_process::OwnedWritePty,
    /// The command's process (and process group) id, for the kill on drop.
    pid: Option<u32>,
    /// Reaps the command; ready when it exited.
    exit: JoinHandle<io::Result<std::process::ExitStatus>>,
    exited: bool,
    /// Armed when the command exited: the pty's last chance to report end of file.
    drain: Option<Pin<Box<Sleep>>>,
    /// Profile bytes still to type into the pty.
    typing: Vec<u8>,
}

/// A terminal size as the client sends it (u32 on the wire; the pty takes u16, so larger
/// values are clamped).
#[derive(Deserialize)]
struct TermSize {
    cols: u32,
    rows: u32,
}

impl ShellLayer {
    pub(super) fn new(cmd: PtyCommand, chunk: usize, written: Arc<AtomicU64>) -> Self {
        Self {
            state: State::Starting(cmd),
            chunk: chunk.max(1),
            written,
        }
    }

    fn running(&mut self) -> io::Result<&mut Running> {
        match &mut self.state {
            State::Running(r) => Ok(r),
            State::Starting(_) => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

fn pty_error(e: pty_process::Error) -> io::Error {
    match e {
        pty_process::Error::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Starts `cmd` in a new pty (80x24 until the client sends its size).
fn spawn(cmd: &PtyCommand) -> io::Result<Running> {
    let (pty, pts) = pty_process::open().map_err(pty_error)?;
    pty.resize(pty_process::Size::new(24, 80))
        .map_err(pty_error)?;
    let mut c = pty_process::Command::new(&cmd.program)
        .args(&cmd.args)
        .env("TERM", "xterm-256color");
    if std::env::var_os("LANG").is_none() {
        c = c.env("LANG", "C.UTF-8");
    }
    let mut child = c.spawn(pts).map_err(|e| {
        let e = pty_error(e);
        io::Error::new(e.kind(), format!("cannot run {}: {e}", cmd.program))
    })?;
    let pid = child.id();
    let exit = tokio::spawn(async move { child.wait().await });
    let typing = cmd
        .profile
        .as_ref()
        .map(|p| format!("{p}\n").into_bytes())
        .unwrap_or_default();
    let (output, input) = pty.into_split();
    Ok(Running {
        output: OutputReader::new(output),
        input,
        pid,
        exit,
        exited: false,
        drain: None,
        typing,
    })
}

impl Running {
    /// Pending while the pty is quiet: watches for the command's exit, then gives the pty
    /// [`EXIT_DRAIN`] to report its end.
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.exited {
            if Pin::new(&mut self.exit).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.exited = true;
        }
        let drain = self
            .drain
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(EXIT_DRAIN)));
        ready!(drain.as_mut().poll(cx));
        self.output.finish();
        Poll::Ready(())
    }

    fn resize(&self, data: &[u8]) {
        let sizes = serde_json::Deserializer::from_slice(data).into_iter::<TermSize>();
        match sizes.last() {
            Some(Ok(s)) => {
                let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                let size = pty_process::Size::new(clamp(s.rows), clamp(s.cols));
                if let Err(e) = self.input.resize(size) {
                    tracing::debug!("sim agent: pty resize to {}x{} failed: {e}", s.cols, s.rows);
                }
            }
            _ => tracing::debug!("sim agent: ignored a Size payload that is not {{cols,rows}}"),
        }
    }
}

impl AppLayer for ShellLayer {
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Starting(cmd) = &self.state {
            self.state = State::Running(Box::new(spawn(cmd)?));
        }
        let r = self.running()?;
        while !r.typing.is_empty() {
            let n = ready!(Pin::new(&mut r.input).poll_write(cx, &r.typing))?;
            r.typing.drain(..n.min(r.typing.len()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        let cap = buf.len().min(self.chunk);
        let r = self.running()?;
        loop {
            match r.output.poll_chunk(cx, cap)? {
                Poll::Ready(Some(chunk)) => {
                    let n = chunk.len().min(buf.len());
                    if let (Some(out), Some(head)) = (buf.get_mut(..n), chunk.get(..n)) {
                        out.copy_from_slice(head);
                    }
                    return Poll::Ready(Ok(Outgoing::Data(n)));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(Outgoing::End)),
                // Quiet: after the command's exit and the drain, the output is finished.
                Poll::Pending => ready!(r.poll_quiet(cx)),
            }
        }
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = self.written.clone();
        let r = self.running()?;
        let n = match ready!(Pin::new(&mut r.input).poll_write(cx, data)) {
            Ok(n) => n,
            // A pty nobody reads any more (the command is gone) discards input; the session
            // ends when its output is drained, not on a keystroke typed too late.
            Err(e) => {
                tracing::debug!("sim agent: pty write failed ({e}); input dropped");
                data.len()
            }
        };
        written.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_deliver_other(
        &mut self,
        _cx: &mut Context<'_>,
        ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if ptype == PayloadType::Size {
            self.running()?.resize(data);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.running()?;
        Pin::new(&mut r.input).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for Running {
    /// Kills every process of the command's session: the command is a session leader, and an
    /// interactive shell puts background jobs in process groups of their own, so its group is
    /// not enough. A terminated session leaves no process behind; the reaper task collects
    /// the command.
    fn drop(&mut self) {
        if let Some(sid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            kill_session(sid);
        }
    }
}

/// SIGKILL to the process group `sid` and to every process whose session is `sid` (read
/// from `/proc/<pid>/stat`).
fn kill_session(sid: i32) {
    let mut pids = vec![-sid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // After "pid (comm) ": state ppid pgrp session ...
            let after = stat.rsplit(')').next().unwrap_or_default();
            let session = after.split_whitespace().nth(3).and_then(|s| s.parse().ok());
            if session == Some(sid) {
                pids.push(pid);
            }
        }
    }
    for pid in pids {
        // SAFETY: kill(2) only sends a signal; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}
