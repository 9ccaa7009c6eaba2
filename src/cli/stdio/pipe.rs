//! The process's stdin and stdout as async streams that stay off tokio's blocking pool when
//! they are pipes, which is what OpenSSH gives a `ProxyCommand`.
//!
//! Why: `tokio::io::stdout()` hands every write, and every flush, to a blocking-pool thread.
//! At the real agent's pace (about a thousand 1 KiB messages a second, each arriving alone)
//! those two thread hand-offs per message were the largest part of the client's CPU. A pipe
//! can instead be driven by the runtime's reactor like a socket.
//!
//! That needs `O_NONBLOCK`, and the flag lives on the *open file description*, which every
//! process holding the pipe shares: set on an inherited fd 1, it would make a shell's or a
//! sibling's blocking writes to the same pipe fail with `EAGAIN`, and it would outlive us if
//! we were killed. So the inherited descriptions are never changed. A pipe is reopened through
//! `/proc/self/fd/N`, which yields a new open file description of the same pipe, private to
//! this process, and only that one is made non-blocking. Anything else (a terminal, a regular
//! file, `/dev/null`, a socket, a system without `/proc`) keeps tokio's stdin/stdout as before.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Which way a reopened pipe is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    Write,
}

/// A private, non-blocking description of the pipe behind `fd`, registered with the reactor.
/// `None` when `fd` is not a pipe or cannot be reopened; the caller then falls back.
fn reopen_pipe(fd: BorrowedFd<'_>, dir: Direction) -> Option<AsyncFd<File>> {
    let original = File::from(fd.try_clone_to_owned().ok()?);
    let meta = original.metadata().ok()?;
    if !meta.file_type().is_fifo() {
        return None;
    }
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&original)
    );
    let file = OpenOptions::new()
        .read(dir == Direction::Read)
        .write(dir == Direction::Write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // The same pipe, or nothing: never write session bytes anywhere else.
    let reopened = file.metadata().ok()?;
    if (reopened.dev(), reopened.ino()) != (meta.dev(), meta.ino()) {
        return None;
    }
    let interest = match dir {
        Direction::Read => Interest::READABLE,
        Direction::Write => Interest::WRITABLE,
    };
    // SAFETY: the `File` moves into the `AsyncFd`, which owns it from here on, so its
    // descriptor stays open and refers to this description for the `AsyncFd`'s whole life.
    unsafe { AsyncFd::register_with_interest(file, interest) }.ok()
}

/// stdin: a reopened pipe read by the reactor, or tokio's blocking-pool stdin.
pub(super) enum Input {
    Pipe(AsyncFd<File>),
    Blocking(tokio::io::Stdin),
}

/// stdout: a reopened pipe written by the reactor, or tokio's blocking-pool stdout.
pub(super) enum Output {
    Pipe(AsyncFd<File>),
    Blocking(tokio::io::Stdout),
}

/// The process's stdin. Must be called inside a tokio runtime (the pipe registers with its
/// reactor).
pub(super) fn stdin() -> Input {
    match reopen_pipe(io::stdin().as_fd(), Direction::Read) {
        Some(p) => Input::Pipe(p),
        None => Input::Blocking(tokio::io::stdin()),
    }
}

/// The process's stdout. Must be called inside a tokio runtime.
pub(super) fn stdout() -> Output {
    match reopen_pipe(io::stdout().as_fd(), Direction::Write) {
        Some(p) => Output::Pipe(p),
        None => Output::Blocking(tokio::io::stdout()),
    }
}

impl Input {
    /// True when reads go through the reactor rather than the blocking pool.
    #[cfg(test)]
    fn is_pipe(&self) -> bool {
        matches!(self, Self::Pipe(_))
    }
}

impl Output {
    #[cfg(test)]
    fn is_pipe(&self) -> bool {
        matches!(self, Self::Pipe(_))
    }
}

impl AsyncRead for Input {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let pipe = match self.get_mut() {
            Self::Blocking(s) => return Pin::new(s).poll_read(cx, buf),
            Self::Pipe(p) => p,
        };
        loop {
            let mut guard = ready!(pipe.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Spurious readiness: it was cleared, wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Output {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let pipe = match self.get_mut() {
            Self::Blocking(s) => return Pin::new(s).poll_write(cx, data),
            Self::Pipe(p) => p,
        };
        loop {
            let mut guard = ready!(pipe.poll_write_ready(cx))?;
            match guard.try_io(|f| f.get_ref().write(data)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    /// A pipe has no user-space buffer here: every write went to the kernel.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Blocking(s) => Pin::new(s).poll_flush(cx),
            Self::Pipe(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Blocking(s) => Pin::new(s).poll_shutdown(cx),
            Self::Pipe(_) => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on a valid, borrowed descriptor reads its flags and changes nothing.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0, "F_GETFL failed");
        flags & libc::O_NONBLOCK != 0
    }

    #[tokio::test]
    async fn a_pipe_is_reopened_privately_and_the_inherited_description_stays_blocking() {
        let (mut rx, tx) = io::pipe().unwrap();
        let out = reopen_pipe(tx.as_fd(), Direction::Write).map(Output::Pipe);
        let mut out = out.expect("a pipe is reopened");
        assert!(out.is_pipe());
        assert!(
            !is_nonblocking(tx.as_fd()),
            "the shared description kept its flags"
        );
        out.write_all(b"through the reopened pipe").await.unwrap();
        let mut got = [0u8; 25];
        rx.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through the reopened pipe");
    }

    #[tokio::test]
    async fn a_full_pipe_parks_the_writer_instead_of_blocking_the_thread() {
        let (rx, tx) = io::pipe().unwrap();
        let mut out = Output::Pipe(reopen_pipe(tx.as_fd(), Direction::Write).unwrap());
        let chunk = vec![7u8; 64 * 1024];
        // Fill the pipe: a blocking write would hang this single-threaded test for good.
        let mut written = 0usize;
        while tokio::time::timeout(Duration::from_millis(50), out.write(&chunk))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            written += chunk.len();
            assert!(written < 64 << 20, "the pipe never filled");
        }
        let mut input = Input::Pipe(reopen_pipe(rx.as_fd(), Direction::Read).unwrap());
        assert!(input.is_pipe());
        let mut buf = vec![0u8; 64 * 1024];
        let n = input.read(&mut buf).await.unwrap();
        assert!(n > 0);
        // Room again: the parked writer makes progress.
        let more = tokio::time::timeout(Duration::from_secs(5), out.write(&chunk)).await;
        assert!(matches!(more, Ok(Ok(m)) if m > 0), "{more:?}");
    }

    #[tokio::test]
    async fn a_regular_file_is_not_reopened() {
        let f = tempfile::tempfile().unwrap();
        assert!(reopen_pipe(f.as_fd(), Direction::Write).is_none());
        assert!(reopen_pipe(f.as_fd(), Direction::Read).is_none());
    }

    #[tokio::test]
    async fn reading_a_closed_pipe_ends_with_eof() {
        let (rx, tx) = io::pipe().unwrap();
        let mut input = Input::Pipe(reopen_pipe(rx.as_fd(), Direction::Read).unwrap());
        drop(tx);
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), input.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0))), "{n:?}");
    }
}
