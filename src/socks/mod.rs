//! SOCKS5 front door: the wire protocol and the server that speaks it. [`proto`] is the sans-IO
//! core (RFC 1928 greeting/request, RFC 1929 username/password), fed bytes and handing back
//! what to send and what was asked for, so it can be unit-tested and fuzzed without sockets.
//! [`server`] is the thin tokio shell around it: accept, bounded handshake, ask a
//! [`server::Connector`] for the upstream (routing lives with whoever implements that trait),
//! reply, then hand both streams to [`crate::relay`].
//! The same shell serves `http:` listeners ([`server::Protocol::HttpConnect`]): only the
//! handshake and the replies differ, their wire side lives in [`crate::http_connect`].

pub mod proto;
pub mod server;
