//! SOCKS5 wire protocol, server side, as a sans-IO core: RFC 1928 (greeting, CONNECT request,
//! replies) and RFC 1929 (username/password sub-negotiation). [`Handshake`] is fed whatever bytes
//! arrived and answers with a [`Step`]: bytes to send, credentials to check, or the parsed
//! [`Destination`]. It never touches a socket, a clock or tokio, so any chunking of the input can
//! be tested and fuzzed cheaply. Timeouts, credential checks and dialing belong to
//! [`super::server`]; routing belongs to whoever implements its `Connector`.
//!
//! Every message is bounded by its u8 length fields (greeting ≤ 257 bytes, auth ≤ 513,
//! request ≤ 262), so while the machine asks for more input it holds fewer bytes than the cap of
//! the message it is waiting for. Nothing is allocated from a length field until the bytes it
//! announces have arrived.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::redact::Redacted;

/// Wire constants (RFC 1928 §3–§6, RFC 1929 §2).
#[rustfmt::skip]
pub mod consts {
    pub const VERSION:                u8 = 0x05;
    pub const AUTH_VERSION:           u8 = 0x01;

    pub const METHOD_NO_AUTH:         u8 = 0x00;
    pub const METHOD_USER_PASS:       u8 = 0x02;
    pub const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;

    pub const CMD_CONNECT:            u8 = 0x01;
    pub const CMD_BIND:               u8 = 0x02;
    pub const CMD_UDP_ASSOCIATE:      u8 = 0x03;

    pub const ATYP_IPV4:              u8 = 0x01;
    pub const ATYP_DOMAIN:            u8 = 0x03;
    pub const ATYP_IPV6:              u8 = 0x04;

    pub const AUTH_STATUS_SUCCESS:    u8 = 0x00;
    pub const AUTH_STATUS_FAILURE:    u8 = 0x01;

    pub const REPLY_SUCCEEDED:                  u8 = 0x00;
    pub const REPLY_GENERAL_FAILURE:            u8 = 0x01;
    pub const REPLY_NOT_ALLOWED:                u8 = 0x02;
    pub const REPLY_NETWORK_UNREACHABLE:        u8 = 0x03;
    pub const REPLY_HOST_UNREACHABLE:           u8 = 0x04;
    pub const REPLY_CONNECTION_REFUSED:         u8 = 0x05;
    pub const REPLY_TTL_EXPIRED:                u8 = 0x06;
    pub const REPLY_COMMAND_NOT_SUPPORTED:      u8 = 0x07;
    pub const REPLY_ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

    /// VER NMETHODS METHODS[1..=255]
    pub const MAX_GREETING_LEN:       usize = 2 + 255;
    /// VER ULEN UNAME[..255] PLEN PASSWD[..255]
    pub const MAX_AUTH_LEN:           usize = 3 + 255 + 255;
    /// VER CMD RSV ATYP LEN DOMAIN[..255] PORT (also the largest reply)
    pub const MAX_REQUEST_LEN:        usize = 5 + 255 + 2;
}

use consts::*;

mod addr;
pub use addr::{Destination, Host};

/// REP field of a reply (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reply {
    Succeeded = REPLY_SUCCEEDED,
    GeneralFailure = REPLY_GENERAL_FAILURE,
    NotAllowed = REPLY_NOT_ALLOWED,
    NetworkUnreachable = REPLY_NETWORK_UNREACHABLE,
    HostUnreachable = REPLY_HOST_UNREACHABLE,
    ConnectionRefused = REPLY_CONNECTION_REFUSED,
    TtlExpired = REPLY_TTL_EXPIRED,
    CommandNotSupported = REPLY_COMMAND_NOT_SUPPORTED,
    AddressTypeNotSupported = REPLY_ADDRESS_TYPE_NOT_SUPPORTED,
}

impl Reply {
    /// Every reply, in code order (code == index), for counters indexed by code.
    pub const ALL: [Self; 9] = [
        Self::Succeeded,
        Self::GeneralFailure,
        Self::NotAllowed,
        Self::NetworkUnreachable,
        Self::HostUnreachable,
        Self::ConnectionRefused,
        Self::TtlExpired,
        Self::CommandNotSupported,
        Self::AddressTypeNotSupported,
    ];

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Succeeded => "succeeded",
            Self::GeneralFailure => "general SOCKS server failure",
            Self::NotAllowed => "connection not allowed by ruleset",
            Self::NetworkUnreachable => "network unreachable",
            Self::HostUnreachable => "host unreachable",
            Self::ConnectionRefused => "connection refused",
            Self::TtlExpired => "TTL expired",
            Self::CommandNotSupported => "command not supported",
            Self::AddressTypeNotSupported => "address type not supported",
        })
    }
}

/// RFC 1929 credentials as sent. They are bytes, not text: the RFC does not promise UTF-8, and
/// comparing bytes avoids two different inputs matching one configured name after lossy decoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: Vec<u8>,
    pub password: Redacted<Vec<u8>>,
}

impl Credentials {
    /// The username for log lines (never the password).
    pub fn username_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.username)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username_lossy())
            .field("password", &self.password)
            .finish()
    }
}

/// Which method the server insists on. There is no "either": once users are configured,
/// a client that only offers no-auth is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Accept method 0x00 only.
    NoAuth,
    /// Require method 0x02 (RFC 1929).
    UserPass,
}

impl AuthPolicy {
    const fn method(self) -> u8 {
        match self {
            Self::NoAuth => METHOD_NO_AUTH,
            Self::UserPass => METHOD_USER_PASS,
        }
    }
}

/// Why a handshake failed. Each variant names the offending field; see
/// [`ProtoError::as_reply`] and [`ProtoError::wire_response`] for what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("greeting: SOCKS version {got:#04x}, expected 0x05")]
    BadGreetingVersion { got: u8 },
    #[error("greeting: NMETHODS is 0, no authentication method offered")]
    NoMethodsOffered,
    #[error("greeting: client did not offer the required method {required:#04x}")]
    NoAcceptableMethod { required: u8 },
    #[error("auth: sub-negotiation version {got:#04x}, expected 0x01")]
    BadAuthVersion { got: u8 },
    #[error("auth: credentials rejected")]
    AuthFailed,
    #[error("request: SOCKS version {got:#04x}, expected 0x05")]
    BadRequestVersion { got: u8 },
    #[error("request: command {cmd:#04x} not supported (only CONNECT)")]
    UnsupportedCommand { cmd: u8 },
    #[error("request: address type {atyp:#04x} not supported")]
    UnsupportedAddressType { atyp: u8 },
    #[error("address: empty domain name")]
    EmptyDomain,
    #[error("address: invalid domain name ({reason})")]
    InvalidDomain { reason: &'static str },
    #[error("address: domain of {len} bytes does not fit in 255")]
    DomainTooLong { len: usize },
    #[error("reply: unknown REP code {code:#04x}")]
    UnknownReply { code: u8 },
    #[error("handshake API misuse: {call} called while {state}")]
    OutOfOrder {
        call: &'static str,
        state: &'static str,
    },
}

impl ProtoError {
    /// The SOCKS reply to send before closing, for errors found after method negotiation,
    /// where RFC 1928 §6 replies apply. `None` means there is no reply-shaped answer.
    pub fn as_reply(&self) -> Option<Reply> {
        match self {
            Self::BadRequestVersion { .. } | Self::EmptyDomain | Self::InvalidDomain { .. } => {
                Some(Reply::GeneralFailure)
            }
            Self::UnsupportedCommand { .. } => Some(Reply::CommandNotSupported),
            Self::UnsupportedAddressType { .. } => Some(Reply::AddressTypeNotSupported),
            _ => None,
        }
    }

    /// The exact bytes to write before closing, whatever the phase: `05 FF` when no method is
    /// acceptable, an RFC 1929 failure status for a malformed auth message, or a reply built
    /// from [`Self::as_reply`]. `None` means just close.
    pub fn wire_response(&self) -> Option<Vec<u8>> {
        match self {
            Self::NoMethodsOffered | Self::NoAcceptableMethod { .. } => {
                Some(vec![VERSION, METHOD_NONE_ACCEPTABLE])
            }
            Self::BadAuthVersion { .. } => Some(vec![AUTH_VERSION, AUTH_STATUS_FAILURE]),
            other => other.as_reply().map(|r| encode_reply(r, None)),
        }
    }
}

/// What the caller must do next. After `Send` or `Authenticate`, call [`Handshake::feed`]
/// with an empty slice before reading again: the client may have pipelined the next message.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read more from the client and feed it.
    NeedMore,
    /// Write these bytes to the client (method selection), then feed again.
    Send(Vec<u8>),
    /// Check these credentials, then call [`Handshake::auth_result`].
    Authenticate(Credentials),
    /// CONNECT to this destination, answer with [`encode_reply`]; then
    /// [`Handshake::take_leftover`] holds any bytes the client sent ahead.
    Request(Destination),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Auth,
    AwaitingAuthResult,
    Request,
    Done,
    Failed,
}

impl State {
    const fn name(self) -> &'static str {
        match self {
            Self::Greeting => "reading the greeting",
            Self::Auth => "reading credentials",
            Self::AwaitingAuthResult => "awaiting auth_result",
            Self::Request => "reading the request",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// Server side of one SOCKS5 handshake. Feeding the same bytes in any chunking yields the same
/// steps; bytes beyond the message being parsed are kept for the next message, and whatever
/// follows the request is handed back by [`Self::take_leftover`].
#[derive(Debug)]
pub struct Handshake {
    policy: AuthPolicy,
    state: State,
    buf: Vec<u8>,
}

impl Handshake {
    pub fn new(policy: AuthPolicy) -> Self {
        Self {
            policy,
            state: State::Greeting,
            buf: Vec::new(),
        }
    }

    /// Buffers `input` and parses at most one message. After an error the handshake is dead:
    /// send [`ProtoError::wire_response`] if any and close.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ProtoError> {
        if !matches!(self.state, State::Greeting | State::Auth | State::Request) {
            return Err(ProtoError::OutOfOrder {
                call: "feed",
                state: self.state.name(),
            });
        }
        self.buf.extend_from_slice(input);
        let step = self.advance();
        if step.is_err() {
            self.fail();
        }
        step
    }

    /// Records the caller's verdict on [`Step::Authenticate`] and returns the RFC 1929 status
    /// bytes to write. On `false` the handshake is over: write them and close.
    pub fn auth_result(&mut self, ok: bool) -> Result<Vec<u8>, ProtoError> {
        if self.state != State::AwaitingAuthResult {
            return Err(ProtoError::OutOfOrder {
                call: "auth_result",
                state: self.state.name(),
            });
        }
        if ok {
            self.state = State::Request;
            Ok(vec![AUTH_VERSION, AUTH_STATUS_SUCCESS])
        } else {
            self.fail();
            Ok(vec![AUTH_VERSION, AUTH_STATUS_FAILURE])
        }
    }

    /// Bytes received after the request (optimistic client data), to forward upstream first.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Bytes currently held; below the pending message's cap whenever `feed` said `NeedMore`.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.buf = Vec::new();
    }

    fn advance(&mut self) -> Result<Step, ProtoError> {
        let (step, used) = match self.state {
            State::Greeting => match parse_greeting(&self.buf, self.policy)? {
                None => return Ok(Step::NeedMore),
                Some((method, used)) => {
                    self.state = if method == METHOD_USER_PASS {
                        State::Auth
                    } else {
                        State::Request
                    };
                    (Step::Send(vec![VERSION, method]), used)
                }
            },
            State::Auth => match parse_auth(&self.buf)? {
                None => return Ok(Step::NeedMore),
                Some((creds, used)) => {
                    self.state = State::AwaitingAuthResult;
                    (Step::Authenticate(creds), used)
                }
            },
            State::Request => match parse_request(&self.buf)? {
                None => return Ok(Step::NeedMore),
                Some((dest, used)) => {
                    self.state = State::Done;
                    (Step::Request(dest), used)
                }
            },
            State::AwaitingAuthResult | State::Done | State::Failed => {
                return Err(ProtoError::OutOfOrder {
                    call: "feed",
                    state: self.state.name(),
                })
            }
        };
        if used >= self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..used);
        }
        Ok(step)
    }
}

/// Bounds-checked cursor: `None` means "not enough bytes yet", never an error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }
}

/// Returns early with `Ok(None)` when the reader ran out of bytes.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Greeting (RFC 1928 §3): `VER(1)=5 | NMETHODS(1) | METHODS(NMETHODS)`.
/// Returns the selected method and the bytes used.
fn parse_greeting(buf: &[u8], policy: AuthPolicy) -> Result<Option<(u8, usize)>, ProtoError> {
    let mut r = Reader::new(buf);
    let ver = need!(r.u8());
    if ver != VERSION {
        return Err(ProtoError::BadGreetingVersion { got: ver });
    }
    let n = need!(r.u8());
    if n == 0 {
        return Err(ProtoError::NoMethodsOffered);
    }
    let methods = need!(r.take(usize::from(n)));
    let required = policy.method();
    if methods.contains(&required) {
        Ok(Some((required, r.pos)))
    } else {
        Err(ProtoError::NoAcceptableMethod { required })
    }
}

/// Username/password (RFC 1929 §2):
/// `VER(1)=1 | ULEN(1) | UNAME(ULEN) | PLEN(1) | PASSWD(PLEN)`.
/// Zero lengths are accepted here and simply fail the credential check.
fn parse_auth(buf: &[u8]) -> Result<Option<(Credentials, usize)>, ProtoError> {
    let mut r = Reader::new(buf);
    let ver = need!(r.u8());
    if ver != AUTH_VERSION {
        return Err(ProtoError::BadAuthVersion { got: ver });
    }
    let ulen = need!(r.u8());
    let username = need!(r.take(usize::from(ulen)));
    let plen = need!(r.u8());
    let password = need!(r.take(usize::from(plen)));
    let creds = Credentials {
        username: username.to_vec(),
        password: Redacted::new(password.to_vec()),
    };
    Ok(Some((creds, r.pos)))
}

/// Request (RFC 1928 §4):
/// `VER(1)=5 | CMD(1) | RSV(1) | ATYP(1) | DST.ADDR(var) | DST.PORT(2, big-endian)`.
/// RSV is ignored rather than checked, as common servers do. Only CONNECT is supported.
fn parse_request(buf: &[u8]) -> Result<Option<(Destination, usize)>, ProtoError> {
    let mut r = Reader::new(buf);
    let ver = need!(r.u8());
    if ver != VERSION {
        return Err(ProtoError::BadRequestVersion { got: ver });
    }
    let cmd = need!(r.u8());
    if cmd != CMD_CONNECT {
        return Err(ProtoError::UnsupportedCommand { cmd });
    }
    let _rsv = need!(r.u8());
    let dest = need!(parse_address(&mut r)?);
    Ok(Some((dest, r.pos)))
}

/// ATYP + ADDR + PORT, shared by requests and replies.
fn parse_address(r: &mut Reader<'_>) -> Result<Option<Destination>, ProtoError> {
    let atyp = need!(r.u8());
    let host = match atyp {
        ATYP_IPV4 => {
            let b = need!(r.take(4));
            let octets: [u8; 4] = need!(b.try_into().ok());
            Host::Ip(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        ATYP_IPV6 => {
            let b = need!(r.take(16));
            let octets: [u8; 16] = need!(b.try_into().ok());
            Host::Ip(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        ATYP_DOMAIN => {
            let len = need!(r.u8());
            if len == 0 {
                return Err(ProtoError::EmptyDomain);
            }
            parse_domain(need!(r.take(usize::from(len))))?
        }
        atyp => return Err(ProtoError::UnsupportedAddressType { atyp }),
    };
    let port = need!(r.u16());
    Ok(Some(Destination { host, port }))
}

/// A domain must be printable ASCII-or-UTF-8 without spaces or controls (it ends up in log
/// lines and resolver calls). IP literals, bracketed or not, become [`Host::Ip`].
fn parse_domain(bytes: &[u8]) -> Result<Host, ProtoError> {
    let s = std::str::from_utf8(bytes).map_err(|_| ProtoError::InvalidDomain {
        reason: "not UTF-8",
    })?;
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ProtoError::InvalidDomain {
            reason: "contains whitespace or control characters",
        });
    }
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    match unbracketed.parse::<IpAddr>() {
        Ok(ip) => Ok(Host::Ip(ip)),
        Err(_) => Ok(Host::Domain(s.to_owned())),
    }
}

/// Appends a reply (RFC 1928 §6): `VER | REP | RSV=0 | ATYP | BND.ADDR | BND.PORT`.
/// `bind` of `None` is sent as `0.0.0.0:0`.
pub fn write_reply(reply: Reply, bind: Option<SocketAddr>, out: &mut Vec<u8>) {
    let bind = bind.unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    out.extend_from_slice(&[VERSION, reply.code(), 0x00]);
    // An IP destination always encodes.
    let _ = Destination::from(bind).write_to(out);
}

/// [`write_reply`] into a fresh buffer.
pub fn encode_reply(reply: Reply, bind: Option<SocketAddr>) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply_len(bind));
    write_reply(reply, bind, &mut out);
    out
}

/// Length of the reply [`write_reply`] produces.
pub fn reply_len(bind: Option<SocketAddr>) -> usize {
    match bind {
        Some(SocketAddr::V6(_)) => 3 + 1 + 16 + 2,
        _ => 3 + 1 + 4 + 2,
    }
}

/// Client side: appends a CONNECT request for `dest` (for tests, tools and SOCKS chaining).
pub fn write_connect_request(dest: &Destination, out: &mut Vec<u8>) -> Result<(), ProtoError> {
    let start = out.len();
    out.extend_from_slice(&[VERSION, CMD_CONNECT, 0x00]);
    dest.write_to(out).inspect_err(|_| out.truncate(start))
}

/// Client side: parses a reply. `Ok(None)` = incomplete, nothing consumed; otherwise the reply
/// code, BND address and bytes used.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, Destination, usize)>, ProtoError> {
    let mut r = Reader::new(buf);
    let ver = need!(r.u8());
    if ver != VERSION {
        return Err(ProtoError::BadRequestVersion { got: ver });
    }
    let code = need!(r.u8());
    let reply = Reply::from_code(code).ok_or(ProtoError::UnknownReply { code })?;
    let _rsv = need!(r.u8());
    let bound = need!(parse_address(&mut r)?);
    Ok(Some((reply, bound, r.pos)))
}

#[cfg(test)]
mod tests;
