//! The status lines an HTTP CONNECT listener answers with, and how a connector's
//! [`Reply`] (the SOCKS5 reply code every connector speaks) maps onto them.

use crate::socks::proto::Reply;

/// Realm sent with 407, so clients know which credentials to offer.
pub const REALM: &str = "session-proxy";

/// Every status the listener sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 200: the tunnel is open; bytes flow both ways from here.
    Established,
    BadRequest,
    ProxyAuthRequired,
    Forbidden,
    MethodNotAllowed,
    HeadersTooLarge,
    NotImplemented,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl Status {
    pub const fn code(self) -> u16 {
        match self {
            Self::Established => 200,
            Self::BadRequest => 400,
            Self::ProxyAuthRequired => 407,
            Self::Forbidden => 403,
            Self::MethodNotAllowed => 405,
            Self::HeadersTooLarge => 431,
            Self::NotImplemented => 501,
            Self::BadGateway => 502,
            Self::ServiceUnavailable => 503,
            Self::GatewayTimeout => 504,
        }
    }

    const fn reason(self) -> &'static str {
        match self {
            Self::Established => "Connection established",
            Self::BadRequest => "Bad Request",
            Self::ProxyAuthRequired => "Proxy Authentication Required",
            Self::Forbidden => "Forbidden",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::HeadersTooLarge => "Request Header Fields Too Large",
            Self::NotImplemented => "Not Implemented",
            Self::BadGateway => "Bad Gateway",
            Self::ServiceUnavailable => "Service Unavailable",
            Self::GatewayTimeout => "Gateway Timeout",
        }
    }

    /// What the user reads in the body: what went wrong and the next step. Nothing from the
    /// request or the route (upstream names, internal addresses) is echoed; the log has it.
    const fn body(self) -> &'static str {
        match self {
            Self::Established => "",
            Self::BadRequest => "session-proxy: malformed request; send CONNECT host:port HTTP/1.1\n",
            Self::ProxyAuthRequired => "session-proxy: this listener needs a username and password; e.g. curl -x http://USER:PASSWORD@HOST:PORT\n",
            Self::Forbidden => "session-proxy: the destination is refused by a reject route of the config\n",
            Self::MethodNotAllowed => "session-proxy: only CONNECT is served here\n",
            Self::HeadersTooLarge => "session-proxy: request head over 8 KiB or 64 header lines\n",
            Self::NotImplemented => "session-proxy: plain-HTTP proxying is not served, only CONNECT tunnels; use curl -p (--proxytunnel) or an https:// URL\n",
            Self::BadGateway => "session-proxy: the destination could not be reached; see the proxy's log\n",
            Self::ServiceUnavailable => "session-proxy: too many connections on this listener (max_connections); retry later\n",
            Self::GatewayTimeout => "session-proxy: timed out connecting to the destination\n",
        }
    }

    /// The status a failed connect answers with.
    pub fn from_reply(reply: Reply) -> Self {
        match reply {
            Reply::Succeeded => Self::Established,
            Reply::NotAllowed => Self::Forbidden,
            Reply::TtlExpired => Self::GatewayTimeout,
            Reply::CommandNotSupported | Reply::AddressTypeNotSupported => Self::BadRequest,
            Reply::GeneralFailure
            | Reply::NetworkUnreachable
            | Reply::HostUnreachable
            | Reply::ConnectionRefused => Self::BadGateway,
        }
    }

    /// The whole response. 200 has no body and keeps the connection (it is the tunnel);
    /// every other status closes it after its body.
    pub fn response(self) -> Vec<u8> {
        let (code, reason) = (self.code(), self.reason());
        if self == Self::Established {
            return format!("HTTP/1.1 {code} {reason}\r\n\r\n").into_bytes();
        }
        let extra = match self {
            Self::ProxyAuthRequired => {
                format!("Proxy-Authenticate: Basic realm=\"{REALM}\"\r\n")
            }
            Self::MethodNotAllowed => "Allow: CONNECT\r\n".to_owned(),
            _ => String::new(),
        };
        let body = self.body();
        format!(
            "HTTP/1.1 {code} {reason}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}
