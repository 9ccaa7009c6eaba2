//! The agent's application layer for NonInteractiveCommands sessions, as the real agent runs
//! them (reference §12):
//! - the command is split with shlex and run without a shell, without a pty and without
//!   stdin (it reads end of file at once);
//! - client Output bytes are not input: the first of 0x03, 0x1c or 0x1a in a message becomes
//!   SIGINT, SIGQUIT or SIGTSTP to the command, everything else is dropped; Size is ignored;
//! - without `separateOutputStream`, stdout and stderr go to one file, in the order written,
//!   which is sent as Output only after the command exited, and no exit code is reported;
//! - with it, stdout streams as Output and stderr as StdErr, in messages of the chunk size
//!   less the prefix; the document's prefix starts a pipe's first message and every message
//!   after one that ended a line. Once both pipes closed and the command exited, ExitCode
//!   carries `EXIT_CODE: <n>` (a command killed by signal `s` reports 128 + s, as a shell
//!   would);
//! - a command that cannot start gets the error as StdErr, in the wording of the agent's Go
//!   runtime (`exec: "x": executable file not found in $PATH`), after `EXIT_CODE: 1` with
//!   separate output; a command shlex cannot split gets `Unable to start command: ...`; then
//!   the session ends.
//!
//! Dropping the layer (the session ended, or the client terminated it) kills the command's
//! process group.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{self, Seek};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::chunk::OutputReader;
use crate::sim::documents::{CommandPlan, Separators};
use crate::ssm::driver::{AppLayer, Outgoing};
use crate::ssm::message::PayloadType;

/// The NonInteractiveCommands layer of one session.
pub(super) struct ExecLayer {
    state: State,
    /// Bytes per message at most (`--chunk`), prefix included.
    chunk: usize,
    /// Client bytes taken (all of them: the acknowledge gate waits for none).
    written: Arc<AtomicU64>,
}

enum State {
    Starting(CommandPlan),
    /// The command could not start: what the agent says about it, until sent.
    Failed(VecDeque<(PayloadType, Bytes)>),
    Merged(Box<Merged>),
    Separate(Box<Separate>),
}

/// A running command and its reaper.
struct Proc {
    /// The command's pid, also its process group id.
    pid: Option<i32>,
    exit: JoinHandle<io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
}

/// stdout and stderr in one file, read once the command exited.
struct Merged {
    proc: Proc,
    /// The file, until the command exited.
    file: Option<File>,
    /// The file read from its start, after the command exited.
    output: Option<OutputReader>,
}

/// stdout and stderr streamed apart, then the exit code.
struct Separate {
    proc: Proc,
    /// stdout then stderr, each until it closed.
    pipes: [Option<Pipe>; 2],
    /// Which pipe is read first next time, so neither starves the other.
    stderr_first: bool,
    exit_sent: bool,
}

/// One output pipe of a separate-output command.
struct Pipe {
    reader: OutputReader,
    ptype: PayloadType,
    prefix: String,
    /// The next message starts a line (the first one, or one after a newline).
    needs_prefix: bool,
}

impl Pipe {
    fn new(reader: OutputReader, ptype: PayloadType, prefix: String) -> Self {
        Self {
            reader,
            ptype,
            prefix,
            needs_prefix: true,
        }
    }
}

impl ExecLayer {
    pub(super) fn new(plan: CommandPlan, chunk: usize, written: Arc<AtomicU64>) -> Self {
        Self {
            state: State::Starting(plan),
            chunk: chunk.max(1),
            written,
        }
    }

    fn proc(&self) -> Option<&Proc> {
        match &self.state {
            State::Merged(m) => Some(&m.proc),
            State::Separate(s) => Some(&s.proc),
            State::Starting(_) | State::Failed(_) => None,
        }
    }
}

/// Starts `plan`'s command, or the state that says why it cannot.
fn start(plan: &CommandPlan) -> State {
    let Some(argv) = shlex::split(&plan.command).filter(|a| !a.is_empty()) else {
        let text = "Unable to start command: Failed to parse commands input: the command is empty or a quote is not closed\n\n";
        return State::Failed(VecDeque::from([(PayloadType::StdErr, Bytes::from(text))]));
    };
    spawn(plan, &argv).unwrap_or_else(|e| {
        let program = argv.first().map(String::as_str).unwrap_or_default();
        tracing::debug!("sim agent: {program} did not start: {e}");
        let mut said = VecDeque::new();
        if plan.separate.is_some() {
            said.push_back((PayloadType::ExitCode, Bytes::from_static(b"EXIT_CODE: 1")));
        }
        said.push_back((PayloadType::StdErr, Bytes::from(start_error(program, &e))));
        State::Failed(said)
    })
}

/// Go's `exec.Cmd.Start` error for `program`, as the real agent passes it on.
fn start_error(program: &str, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound && !program.contains('/') {
        return format!("exec: {program:?}: executable file not found in $PATH");
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    let lower: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    format!("fork/exec {program}: {lower}")
}

/// Spawns the command of `argv` with its output as `plan` says.
fn spawn(plan: &CommandPlan, argv: &[String]) -> io::Result<State> {
    let (program, args) = argv.split_first().ok_or(io::ErrorKind::InvalidInput)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stdin(Stdio::null()).process_group(0);
    let Some(prefixes) = plan.separate.clone() else {
        let file = merged_file()?;
        cmd.stdout(file.try_clone()?).stderr(file.try_clone()?);
        let proc = Proc::reap(cmd.spawn()?);
        let (file, output) = (Some(file), None);
        return Ok(State::Merged(Box::new(Merged { proc, file, output })));
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let Separators {
        stdout_prefix,
        stderr_prefix,
    } = prefixes;
    let stdout = child.stdout.take().map(OutputReader::new);
    let stderr = child.stderr.take().map(OutputReader::new);
    let pipes = [
        stdout.map(|r| Pipe::new(r, PayloadType::Output, stdout_prefix)),
        stderr.map(|r| Pipe::new(r, PayloadType::StdErr, stderr_prefix)),
    ];
    Ok(State::Separate(Box::new(Separate {
        proc: Proc::reap(child),
        pipes,
        stderr_first: false,
        exit_sent: false,
    })))
}

/// An unnamed temporary file: created, then unlinked at once, so nothing is left behind.
/// Its two handles for stdout and stderr share one offset, so the output keeps its order.
fn merged_file() -> io::Result<File> {
    let name = format!("session-proxy-sim-{:016x}.out", rand::random::<u64>());
    let path = std::env::temp_dir().join(name);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

impl Proc {
    fn reap(mut child: tokio::process::Child) -> Self {
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let exit = tokio::spawn(async move { child.wait().await });
        Self {
            pid,
            exit,
            status: None,
        }
    }

    /// Ready with the exit status once the command exited.
    fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        if let Some(s) = self.status {
            return Poll::Ready(Ok(s));
        }
        let s = match std::task::ready!(std::pin::Pin::new(&mut self.exit).poll(cx)) {
            Ok(r) => r?,
            Err(e) => return Poll::Ready(Err(io::Error::other(e))),
        };
        self.status = Some(s);
        Poll::Ready(Ok(s))
    }

    /// Signals the command while it runs (never a pid its reaper may have freed).
    fn signal(&self, sig: libc::c_int) {
        if self.exit.is_finished() {
            return;
        }
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) only sends a signal; no memory is involved.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

impl Drop for Proc {
    /// Kills the command's process group, so a terminated session leaves nothing running.
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) only sends a signal; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// The exit code as the ExitCode payload reports it: the status, or 128 + the signal.
fn exit_code(s: ExitStatus) -> i32 {
    s.code()
        .or_else(|| s.signal().map(|sig| 128 + sig))
        .unwrap_or(-1)
}

/// `data` into `buf` as one Output message.
fn output(buf: &mut [u8], data: &[u8]) -> Outgoing {
    let n = data.len().min(buf.len());
    if let (Some(out), Some(d)) = (buf.get_mut(..n), data.get(..n)) {
        out.copy_from_slice(d);
    }
    Outgoing::Data(n)
}

impl Merged {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        cap: usize,
    ) -> Poll<io::Result<Outgoing>> {
        // The file is complete only once the command exited.
        std::task::ready!(self.proc.poll_exit(cx))?;
        if let Some(mut file) = self.file.take() {
            // The command's handles shared this one's offset: read from the start.
            file.rewind()?;
            self.output = Some(OutputReader::new(tokio::fs::File::from_std(file)));
        }
        let Some(reader) = self.output.as_mut() else {
            return Poll::Ready(Ok(Outgoing::End));
        };
        Poll::Ready(Ok(match std::task::ready!(reader.poll_chunk(cx, cap))? {
            Some(data) => output(buf, &data),
            None => Outgoing::End,
        }))
    }
}

impl Separate {
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        cap: usize,
    ) -> Poll<io::Result<Outgoing>> {
        self.stderr_first = !self.stderr_first;
        let order = if self.stderr_first { [1, 0] } else { [0, 1] };
        for i in order {
            let Some(slot) = self.pipes.get_mut(i) else {
                continue;
            };
            if let Poll::Ready(out) = poll_pipe(slot, cx, buf, cap)? {
                return Poll::Ready(Ok(out));
            }
        }
        if self.pipes.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        if self.exit_sent {
            return Poll::Ready(Ok(Outgoing::End));
        }
        let status = std::task::ready!(self.proc.poll_exit(cx))?;
        self.exit_sent = true;
        let text = format!("EXIT_CODE: {}", exit_code(status));
        Poll::Ready(Ok(Outgoing::Payload(
            PayloadType::ExitCode,
            Bytes::from(text),
        )))
    }
}

/// The next message from one pipe, with its prefix when it starts a line; Pending when the
/// pipe has nothing now or just closed (the slot is then emptied).
fn poll_pipe(
    slot: &mut Option<Pipe>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    cap: usize,
) -> Poll<io::Result<Outgoing>> {
    let Some(pipe) = slot.as_mut() else {
        return Poll::Pending;
    };
    // The real agent reads the chunk size less the prefix at a time.
    let room = cap.saturating_sub(pipe.prefix.len()).max(1);
    let Some(data) = std::task::ready!(pipe.reader.poll_chunk(cx, room))? else {
        *slot = None;
        return Poll::Pending;
    };
    let mut message = Vec::with_capacity(pipe.prefix.len() + data.len());
    if pipe.needs_prefix {
        message.extend_from_slice(pipe.prefix.as_bytes());
    }
    pipe.needs_prefix = data.last() == Some(&b'\n');
    message.extend_from_slice(&data);
    Poll::Ready(Ok(match pipe.ptype {
        PayloadType::Output => output(buf, &message),
        other => Outgoing::Payload(other, Bytes::from(message)),
    }))
}

impl AppLayer for ExecLayer {
    fn poll_open(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Starting(plan) = &self.state {
            self.state = start(plan);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        let cap = buf.len().min(self.chunk);
        match &mut self.state {
            State::Starting(_) => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            State::Failed(said) => Poll::Ready(Ok(match said.pop_front() {
                Some((ptype, text)) => Outgoing::Payload(ptype, text),
                None => Outgoing::End,
            })),
            State::Merged(m) => m.poll_next(cx, buf, cap),
            State::Separate(s) => s.poll_next(cx, buf, cap),
        }
    }

    /// Client bytes are only scanned for the control characters that become signals (the
    /// first one of what is delivered at once, as the agent takes the first of a message).
    fn poll_deliver(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let signal = data.iter().find_map(|b| match b {
            0x03 => Some(libc::SIGINT),
            0x1c => Some(libc::SIGQUIT),
            0x1a => Some(libc::SIGTSTP),
            _ => None,
        });
        if let (Some(proc), Some(sig)) = (self.proc(), signal) {
            proc.signal(sig);
        }
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
