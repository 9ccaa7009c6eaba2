//! The local terminal: raw mode for the length of a shell, and its restoration on every way
//! out. Terminal handling is crossterm's (termios through rustix); nothing here touches termios
//! by hand.
//!
//! Raw mode turns off echo, line editing and ISIG, so Ctrl-C, Ctrl-Z and Ctrl-\ reach the
//! remote shell as the bytes 03, 1A and 1C instead of signalling us. It is undone by
//! [`RawMode`]'s `Drop` (every return path, errors included), by a panic hook installed with it
//! (a panic must not leave the user's terminal unusable), and by the CLI before it exits on
//! SIGTERM, SIGHUP or SIGQUIT (whose handlers exist before raw mode starts).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether raw mode is on, so that the guard and the panic hook restore it exactly once.
static RAW: AtomicBool = AtomicBool::new(false);

/// Why the terminal could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("cannot put the terminal into raw mode ({0}); pipe the input instead to run without a terminal")]
    Raw(#[source] std::io::Error),
}

/// True when stdin is a terminal: the shell then runs in raw mode; otherwise stdin is a pipe.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal's size as (columns, rows).
pub fn size() -> std::io::Result<(u16, u16)> {
    crossterm::terminal::size()
}

/// Raw mode while alive. Create it only after the signal handlers that restore it exist.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> Result<Self, TerminalError> {
        install_panic_hook();
        crossterm::terminal::enable_raw_mode().map_err(TerminalError::Raw)?;
        RAW.store(true, Ordering::SeqCst);
        Ok(Self(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode if it is on; safe to call from anywhere, any number of times.
pub fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        if let Err(e) = crossterm::terminal::disable_raw_mode() {
            tracing::warn!("could not restore the terminal: {e}; run `stty sane`");
        }
    }
}

/// A panic hook that restores the terminal, then runs the hook that was there before (which
/// prints the message, now on a terminal that shows it properly).
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// A line for stderr while the terminal may be raw: raw mode also turns off the LF → CRLF
/// translation, so a bare LF would leave the cursor mid-line.
pub fn line(text: &str) -> String {
    if RAW.load(Ordering::SeqCst) {
        format!("{text}\r\n")
    } else {
        format!("{text}\n")
    }
}
