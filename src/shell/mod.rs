//! Interactive shells on an instance (`session-proxy shell`): the client side of the agent's
//! Standard_Stream and InteractiveCommands sessions (§8).
//!
//! - [`input`]: what the user sends (keystrokes, terminal sizes, the end of piped input), read
//!   from stdin on its own thread and from SIGWINCH, never polled.
//! - [`layer`]: the [`AppLayer`](crate::ssm::driver::AppLayer) that turns that input into
//!   Output and Size payloads and writes the shell's output to stdout.
//! - [`terminal`]: raw mode on the local terminal and the guarantee that it is restored.
//! - [`notice`]: the one-line notices on stderr (the service's CustomerMessage, a resume).
//!
//! The CLI edge (`cli::shell`) resolves the target, starts the session and maps its end to an
//! exit code.

pub mod input;
pub mod layer;
pub mod notice;
pub mod terminal;

pub use input::Input;
pub use layer::ShellLayer;
