//! Which wire protocol a [`super::Server`] speaks to its clients. Everything else (accept loop,
//! cap, idle timeout, the connector's routing, relay, stats, log line) is shared, so an HTTP
//! CONNECT listener behaves like a SOCKS5 one in every respect but the bytes of its handshake
//! and replies.

use std::net::SocketAddr;

use super::super::proto::{encode_reply, Reply};
use crate::http_connect::Status;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 1928 SOCKS5, RFC 1929 username/password.
    #[default]
    Socks5,
    /// HTTP/1.1 CONNECT, `Proxy-Authorization: Basic` (see [`crate::http_connect`]).
    HttpConnect,
}

impl Protocol {
    /// The `proto=` field of the connection's log line (and the listener's address scheme).
    pub fn name(self) -> &'static str {
        match self {
            Self::Socks5 => "socks5",
            Self::HttpConnect => "http",
        }
    }

    /// The answer to a connect that ended with `reply` (success or not).
    pub(super) fn reply(self, reply: Reply, bound: Option<SocketAddr>) -> Vec<u8> {
        match self {
            Self::Socks5 => encode_reply(reply, bound),
            Self::HttpConnect => Status::from_reply(reply).response(),
        }
    }

    /// The answer to a client over `max_connections`.
    pub(super) fn over_cap(self) -> Vec<u8> {
        match self {
            Self::Socks5 => encode_reply(Reply::GeneralFailure, None),
            Self::HttpConnect => Status::ServiceUnavailable.response(),
        }
    }
}
