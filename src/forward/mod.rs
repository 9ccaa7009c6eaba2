//! `session-proxy forward`, the `ssh -L` of Session Manager: [`spec`] parses the `-L`-style
//! specs and picks each one's session document; [`listen`] binds their local listeners;
//! [`sessions`] keeps a forward's SSM port sessions up; [`run`] is the accept loop that hands
//! each connection to a session (the `port` layer carries it as a smux stream) or to a running
//! master's SSH pool (or, in `serve`, an upstream of that master); [`stats`] counts a
//! forward's connections and bytes for `status`.

pub mod listen;
pub mod run;
pub mod sessions;
pub mod spec;
pub mod stats;
