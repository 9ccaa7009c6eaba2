//! [pure] The `-L`-style spec of `session-proxy forward`: where to listen, where to go, and
//! which SSM session document reaches that destination.
//!
//! ```text
//! SPEC  = [ BIND ":" ] LPORT ":" HOST ":" PORT    ; TCP listener; BIND defaults to 127.0.0.1
//!       / PATH ":" HOST ":" PORT                  ; Unix socket listener
//! BIND  = IPv4 / "[" IPv6 "]"
//! LPORT = 0-65535                                 ; 0: the kernel picks a free port
//! PATH  = "/" … / "~/" …                          ; ~ is the home directory
//! HOST  = DNS name / IPv4 / "[" IPv6 "]"          ; localhost: the instance itself
//! PORT  = 1-65535
//! ```
//!
//! The spec is read from the right (PORT, then HOST, then the listener), so a socket path may
//! itself contain `:`. The bind address is never implied to be "all interfaces": an empty BIND
//! is an error rather than `ssh -L`'s `*`, so exposing a forward is always written out.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::socks::proto::{Destination, Host};
use crate::ssm::api::SessionRequest;

/// The form every spec error repeats, so the fix is on the same line as the problem.
pub const EXPECTED: &str =
    "expected [BIND:]LPORT:HOST:PORT or /PATH.sock:HOST:PORT, e.g. 5432:db.internal:5432";

/// The bind address when the spec names none: loopback, so nothing else on the network can
/// use the forward unless asked for.
pub const DEFAULT_BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Where a forward (or a SOCKS listener) accepts local connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenOn {
    Tcp(SocketAddr),
    /// Absolute, `~` already expanded.
    Unix(PathBuf),
}

impl fmt::Display for ListenOn {
    /// `127.0.0.1:5432`, `[::1]:5432` or `unix:/path.sock`, as logs and `status` show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => a.fmt(f),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// One parsed `forward` spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardSpec {
    pub listen: ListenOn,
    /// The destination as the instance sees it (the SOCKS server's destination type: one type
    /// for "host:port the instance dials", whoever asked for it).
    pub dest: Destination,
}

/// Why a spec was refused; each names the bad part and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("forward spec {0:?} has too few parts; {EXPECTED}")]
    Shape(String),
    #[error("bind address {0:?} is not an IP address (IPv6 in brackets, e.g. [::1]); {EXPECTED}")]
    Bind(String),
    #[error("local port {0:?} is not a number from 0 to 65535 (0: any free port); {EXPECTED}")]
    LocalPort(String),
    #[error(
        "destination host {0:?} is not a DNS name, IPv4 address or [IPv6] address; {EXPECTED}"
    )]
    Host(String),
    #[error("destination port {0:?} is not a number from 1 to 65535; {EXPECTED}")]
    Port(String),
    #[error(
        "socket path {0:?} starts with ~ but the home directory is unknown; write an absolute path"
    )]
    NoHome(String),
    #[error("socket path {0:?}: only ~/ is expanded, not ~user; write an absolute path")]
    TildeUser(String),
}

impl ForwardSpec {
    /// Parses `s` (grammar in the module doc); `home` expands a leading `~/`.
    pub fn parse(s: &str, home: Option<&Path>) -> Result<Self, SpecError> {
        let shape = || SpecError::Shape(s.to_owned());
        let (rest, port) = s.rsplit_once(':').ok_or_else(shape)?;
        let (rest, host) = split_last_host(rest).ok_or_else(shape)?;
        let port = match parse_u16(port) {
            Some(p) if p > 0 => p,
            _ => return Err(SpecError::Port(port.to_owned())),
        };
        let dest = Destination {
            host: parse_host(host)?,
            port,
        };
        let listen = if rest.starts_with('/') || rest.starts_with('~') {
            ListenOn::Unix(socket_path(rest, home)?)
        } else {
            ListenOn::Tcp(parse_bind(rest)?)
        };
        Ok(Self { listen, dest })
    }

    /// The StartSession request that carries this forward to `target` (an instance id): see
    /// [`SessionRequest::port_forward`] for the document choice. An IPv6 host goes without
    /// brackets, as the agent resolves it.
    pub fn session_request(&self, target: &str) -> SessionRequest {
        SessionRequest::port_forward(target, &self.dest.host.dial_text(), self.dest.port)
    }
}

impl fmt::Display for ForwardSpec {
    /// The canonical spec, which [`ForwardSpec::parse`] reads back to the same value (the bind
    /// address is always written, and a `~` path appears expanded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.listen {
            ListenOn::Tcp(a) => write!(f, "{a}:{}", self.dest),
            ListenOn::Unix(p) => write!(f, "{}:{}", p.display(), self.dest),
        }
    }
}

impl FromStr for ForwardSpec {
    type Err = SpecError;

    /// [`ForwardSpec::parse`] with the user's home directory, for clap.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
        Self::parse(s, home.as_deref())
    }
}

/// Decimal digits only (no sign, no spaces), as a port.
fn parse_u16(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| s.parse().ok()).flatten()
}

/// Splits `rest:HOST` at the colon before HOST, where HOST may be a bracketed IPv6 address.
fn split_last_host(s: &str) -> Option<(&str, &str)> {
    if s.ends_with(']') {
        let open = s.rfind('[')?;
        let before = s.get(..open)?.strip_suffix(':')?;
        Some((before, s.get(open..)?))
    } else {
        s.rsplit_once(':')
    }
}

/// `[v6]` in brackets, otherwise what is inside them.
fn bracketed(s: &str) -> Option<&str> {
    s.strip_prefix('[')?.strip_suffix(']')
}

fn parse_host(s: &str) -> Result<Host, SpecError> {
    let bad = || SpecError::Host(s.to_owned());
    if let Some(inner) = bracketed(s) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| bad());
    }
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    if is_dns_name(s) {
        Ok(Host::Domain(s.to_owned()))
    } else {
        Err(bad())
    }
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63 bytes, 253 bytes at most
/// (what a resolver and SOCKS's one-byte length field accept).
fn is_dns_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (1..=253).contains(&s.len()) && s.split('.').all(label_ok)
}

/// `[BIND:]LPORT`.
fn parse_bind(s: &str) -> Result<SocketAddr, SpecError> {
    let (bind, lport) = match s.rsplit_once(':') {
        Some((b, p)) => (Some(b), p),
        None => (None, s),
    };
    let lport = parse_u16(lport).ok_or_else(|| SpecError::LocalPort(lport.to_owned()))?;
    let ip = match bind {
        None => DEFAULT_BIND,
        Some(b) => match bracketed(b) {
            Some(inner) => inner.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
            None => b.parse::<Ipv4Addr>().map(IpAddr::V4).ok(),
        }
        .ok_or_else(|| SpecError::Bind(b.to_owned()))?,
    };
    Ok(SocketAddr::new(ip, lport))
}

/// `/abs/path` as is; `~/rel` under `home`.
fn socket_path(s: &str, home: Option<&Path>) -> Result<PathBuf, SpecError> {
    let Some(rel) = s.strip_prefix('~') else {
        return Ok(PathBuf::from(s));
    };
    let Some(rel) = rel.strip_prefix('/') else {
        return Err(SpecError::TildeUser(s.to_owned()));
    };
    let home = home.ok_or_else(|| SpecError::NoHome(s.to_owned()))?;
    Ok(home.join(rel))
}

#[cfg(test)]
mod tests;
