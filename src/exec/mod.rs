//! `exec`: one remote command as a scriptable Unix citizen, within what the real agent allows
//! (§8, §12). Sans-IO pieces, one concept each: [`marker`] (the end marker that carries the
//! status of a wrapped command), [`exit_code`] (the ExitCode payload), [`stdin_frame`] (stdin
//! through a pty for `-i`), [`wrap`] (the command line each mode sends) and [`document`] (the
//! separate-output session document); [`layer`] is the application layer the session runs.

pub mod document;
pub mod exit_code;
pub mod layer;
pub mod marker;
pub mod stdin_frame;
pub mod wrap;
