//! HTTP CONNECT front door: the sans-IO wire side of an `http:` listener. [`request`] parses a
//! CONNECT request head (bounded, with `Proxy-Authorization: Basic`) into the same
//! [`Destination`](crate::socks::proto::Destination) a SOCKS5 request yields, so routing,
//! reject rules and the IPv4-literal normalisation apply to both alike; [`response`] words the
//! status lines sent back. The tokio shell is the SOCKS server's (`socks::server`, protocol
//! [`HttpConnect`](crate::socks::server::Protocol::HttpConnect)): accept loop, cap, idle timeout,
//! connector, relay and stats are shared, only the handshake and the replies differ.
//!
//! Only CONNECT is served: absolute-form requests (`GET http://…`, plain-HTTP proxying) get a
//! 501, so tools must tunnel (`curl -p`, or `https_proxy=` for HTTPS URLs).

mod basic;
pub mod request;
pub mod response;

pub use request::{Parse, Request, RequestError, RequestParser, MAX_HEAD};
pub use response::Status;
