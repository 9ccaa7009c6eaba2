//! `session-proxy forward`, the `ssh -L` of Session Manager: [`spec`] parses the `-L`-style
//! specs and picks each one's session document; [`listen`] binds their local listeners.
//! Carrying the accepted connections over port sessions is the `port` layer's job.

pub mod listen;
pub mod spec;
