//! Sans-IO parser of an HTTP/1.x CONNECT request head (RFC 9110 §9.3.6): fed bytes as they
//! arrive, it answers "need more", a [`Request`] (destination, credentials, and the bytes the
//! client already sent past the head), or a [`RequestError`] that names the status to answer.
//!
//! The head is bounded ([`MAX_HEAD`], [`MAX_HEADERS`]): a client cannot make the parser hold
//! more than one head plus the chunk it just fed, whatever it sends.

use std::net::{IpAddr, Ipv6Addr};

use super::basic;
use super::response::Status;
use crate::socks::proto::{Credentials, Destination, Host};

/// Largest request head accepted (request line plus headers); past it the answer is 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// Header lines accepted in one head; more is answered with 431 too.
pub const MAX_HEADERS: usize = 64;

/// Longest host name a CONNECT target may carry (what DNS and SOCKS5's length byte allow).
const MAX_HOST_LEN: usize = 255;

/// A parsed CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub dest: Destination,
    /// From `Proxy-Authorization: Basic …`; `None` when the header is absent.
    pub credentials: Option<Credentials>,
    /// Bytes after the head (a client that did not wait for the 200): relayed, not dropped.
    pub leftover: Vec<u8>,
}

/// What one [`RequestParser::feed`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    NeedMore,
    Request(Request),
}

/// Why a request head was refused. [`RequestError::status`] is the answer the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request head over {MAX_HEAD} bytes or {MAX_HEADERS} header lines")]
    HeadTooLarge,
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("method is not CONNECT (absolute-form proxying is not served)")]
    AbsoluteForm,
    #[error("method is not CONNECT")]
    NotConnect,
    #[error("bad CONNECT target: {0}")]
    BadTarget(&'static str),
    #[error("Proxy-Authorization is not Basic base64(user:password)")]
    BadCredentials,
    #[error("more than one Proxy-Authorization header")]
    DuplicateCredentials,
}

impl RequestError {
    pub fn status(&self) -> Status {
        match self {
            Self::HeadTooLarge => Status::HeadersTooLarge,
            Self::Malformed(_) | Self::BadTarget(_) | Self::DuplicateCredentials => {
                Status::BadRequest
            }
            Self::AbsoluteForm => Status::NotImplemented,
            Self::NotConnect => Status::MethodNotAllowed,
            Self::BadCredentials => Status::ProxyAuthRequired,
        }
    }
}

/// Accumulates a request head until it is complete.
#[derive(Debug, Default)]
pub struct RequestParser {
    buf: Vec<u8>,
}

impl RequestParser {
    /// Appends `input` and parses what is buffered. After a `Request` or an error the parser
    /// is spent; feeding it again starts from whatever it still holds (nothing useful).
    pub fn feed(&mut self, input: &[u8]) -> Result<Parse, RequestError> {
        self.buf.extend_from_slice(input);
        // Only the first MAX_HEAD bytes are ever parsed, so how the input was cut into chunks
        // cannot change the outcome (a head past the cap is 431 whatever follows).
        let head = self.buf.get(..MAX_HEAD).unwrap_or(&self.buf);
        match parse_head(head) {
            Ok(None) if self.buf.len() >= MAX_HEAD => Err(RequestError::HeadTooLarge),
            Ok(None) => Ok(Parse::NeedMore),
            Ok(Some((len, (dest, credentials)))) => {
                let leftover = self.buf.split_off(len.min(self.buf.len()));
                self.buf.clear();
                Ok(Parse::Request(Request {
                    dest,
                    credentials,
                    leftover,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Bytes held while waiting for the rest of the head.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

type Head = (Destination, Option<Credentials>);

/// The head's length and contents once complete, `None` while partial.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(RequestError::Malformed("no request line".into()));
    };
    if method != "CONNECT" {
        return Err(if target.contains("://") {
            RequestError::AbsoluteForm
        } else {
            RequestError::NotConnect
        });
    }
    let dest = parse_target(target).map_err(RequestError::BadTarget)?;
    let mut auth = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("proxy-authorization"));
    let credentials = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(h), None) => Some(basic::parse(h.value).ok_or(RequestError::BadCredentials)?),
        (Some(_), Some(_)) => return Err(RequestError::DuplicateCredentials),
    };
    Ok(Some((len, (dest, credentials))))
}

/// The authority-form target: `host:port` or `[IPv6]:port`, the port mandatory. A host that
/// parses as an IP becomes [`Host::Ip`]; other spellings of an address (`127.2`, `0x7f000002`)
/// stay names here and are classified by the router exactly as SOCKS5 domains are.
fn parse_target(target: &str) -> Result<Destination, &'static str> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (ip, port) = rest
            .split_once("]:")
            .ok_or("an IPv6 address is written [address]:port")?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| "not an IPv6 address inside [ ]")?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = target.rsplit_once(':').ok_or("needs host:port")?;
        (parse_host(host)?, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    let port: u16 = port.parse().map_err(|_| "the port is over 65535")?;
    if port == 0 {
        return Err("port 0 cannot be dialled");
    }
    Ok(Destination { host, port })
}

fn parse_host(host: &str) -> Result<Host, &'static str> {
    if host.is_empty() {
        return Err("empty host");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("host name over 255 bytes");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if !host.bytes().all(allowed) {
        return Err("host has characters other than letters, digits, '-', '.', '_'");
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Domain(host.to_owned()),
    })
}

#[cfg(test)]
mod tests;
