//! smux protocol version 1, as the official client and agent speak it on SSM port sessions
//! (reference §7.3–7.4; xtaci/smux v1.5.x `DefaultConfig`), sans-IO.
//!
//! `frame` is the codec; `session` the client-side state machine that `forward` (and `serve`'s
//! SSH-less upstreams) drive over one data channel. The data channel carries one continuous
//! smux byte stream, so frames are reassembled across message boundaries.
//!
//! **What a slow local reader does.** smux v1 has no per-stream window (v2's UPD is not used by
//! the agent), so the only back-pressure is to stop reading the data channel. Every stream has a
//! bounded buffer ([`Config::max_stream_buffer`]) and the session a bounded total
//! ([`Config::max_receive`]); when a local reader falls behind and its stream's buffer fills,
//! the *other streams of the same session* wait too, until it reads. Memory stays bounded; the
//! remedy for independent streams is more sessions (`forward --sessions N`).

pub mod frame;
pub mod session;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::frame::{Cmd, FrameError};
pub use self::session::{Event, Role, Session, SessionError, MAX_STREAMS};

/// Limits and timers of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest PSH we send (`MaxFrameSize`, 32768 in DefaultConfig).
    pub max_frame: usize,
    /// Received bytes held for all streams together (`MaxReceiveBuffer`, 4 MiB).
    pub max_receive: usize,
    /// Received bytes held for one stream before the whole session stops reading.
    pub max_stream_buffer: usize,
    /// Bytes queued for the data channel before [`Session::write`] takes no more.
    pub max_output: usize,
    /// Send a NOP after this long without sending anything. `None` for agents above
    /// 3.1.1511.0 given a ClientVersion above 1.2.331.0, which have smux keepalive off (§7.3).
    pub keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: 32 * 1024,
            max_receive: 4 * 1024 * 1024,
            max_stream_buffer: 1024 * 1024,
            max_output: 256 * 1024,
            keepalive: None,
        }
    }
}

/// smux's keepalive interval (`KeepAliveInterval`), for agents that still expect NOPs.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
