//! `session-proxy forward`, the `ssh -L` of Session Manager: [`spec`] parses the `-L`-style
//! specs and picks each one's session document.

pub mod spec;
