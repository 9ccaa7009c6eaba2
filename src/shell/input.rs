//! What the user sends to a shell, as one ordered stream of [`Input`]s: stdin bytes read on a
//! dedicated thread, and terminal sizes sent at start and on every SIGWINCH (the plugin polls
//! the size every 500 ms; a signal costs nothing while nothing changes).
//!
//! Why a thread for stdin: a blocking read of a terminal cannot be cancelled, and on tokio's
//! blocking pool it would hold the runtime at exit. A plain thread blocked in `read` simply
//! ends with the process. The channel behind it is bounded, so a fast pipe waits for the
//! data channel instead of filling memory.

use std::io::Read;

use bytes::Bytes;
use tokio::sync::mpsc;

/// How many [`Input`]s may wait for the data channel (each at most [`READ_SIZE`] bytes).
pub const QUEUE: usize = 16;
/// Bytes per stdin read: the agent's own message size (§8: 1–1024 bytes per message).
pub const READ_SIZE: usize = 1024;

/// One thing for the remote shell, in the order the user produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes for the remote pty, as typed or piped (an Output payload).
    Keys(Bytes),
    /// The local terminal's size (a Size payload).
    Resize { cols: u16, rows: u16 },
    /// stdin ended (a pipe ran dry). See [`eof_keys`] for what the shell is sent.
    Eof,
}

/// The Size payload (§8): `{"cols":C,"rows":R}`.
pub fn size_payload(cols: u16, rows: u16) -> Bytes {
    Bytes::from(format!("{{\"cols\":{cols},\"rows\":{rows}}}"))
}

/// What the remote shell gets when piped stdin ends.
///
/// The shell protocol has no end-of-input: the agent's shell reads a pty. So the end of a
/// script is sent the way a terminal sends it, as the pty's EOF character (Ctrl-D, 0x04): at
/// the start of a line the shell's read returns 0 and the shell exits, as it does at the end
/// of `ssh host < script`. After an unterminated last line the first Ctrl-D only hands that
/// line over, so a second one follows. Sending `exit` instead would be swallowed by an open
/// here-document or quote and would run as a command in whatever program is reading.
pub fn eof_keys(last_sent: Option<u8>) -> &'static [u8] {
    match last_sent {
        None | Some(b'\n' | b'\r') => b"\x04",
        Some(_) => b"\x04\x04",
    }
}

/// Reads stdin on its own thread into `tx` until EOF or a read error, then sends [`Input::Eof`].
/// The thread also ends when the receiver is gone.
pub fn spawn_stdin_reader(tx: mpsc::Sender<Input>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("shell-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; READ_SIZE];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("reading stdin: {e}");
                        break;
                    }
                };
                let keys = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                if tx.blocking_send(Input::Keys(keys)).is_err() {
                    return;
                }
            }
            let _ = tx.blocking_send(Input::Eof);
        })
        .map(drop)
}

/// Sends the terminal's size now, then again on every SIGWINCH, for as long as `tx` is open.
/// The signal handler is installed before the first size is read, so no resize is missed.
pub fn spawn_resize_watcher(tx: mpsc::Sender<Input>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut winch = signal(SignalKind::window_change())?;
    tokio::spawn(async move {
        loop {
            match super::terminal::size() {
                Ok((cols, rows)) => {
                    if tx.send(Input::Resize { cols, rows }).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!("reading the terminal size: {e}"),
            }
            if winch.recv().await.is_none() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_payload_is_the_agents_json() {
        assert_eq!(&size_payload(120, 40)[..], br#"{"cols":120,"rows":40}"#);
    }

    #[test]
    fn end_of_a_script_is_one_ctrl_d_after_a_newline_and_two_after_a_partial_line() {
        assert_eq!(eof_keys(None), b"\x04");
        assert_eq!(eof_keys(Some(b'\n')), b"\x04");
        assert_eq!(eof_keys(Some(b'x')), b"\x04\x04");
    }
}
