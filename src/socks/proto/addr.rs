//! Destinations as SOCKS5 carries them (RFC 1928 §4–§6): DST.ADDR + DST.PORT of a request, or
//! BND.ADDR + BND.PORT of a reply. The same type names a forward's destination, so one "host:port
//! the far side dials" exists in the crate.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::consts::*;
use super::ProtoError;

/// Where the client wants to go. A domain that is really an IP literal is stored as
/// [`Host::Ip`], so routing by CIDR cannot be side-stepped by sending an IP as ATYP 0x03.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Domain(String),
}

impl Host {
    /// The text a resolver (or the instance) dials: an IP without brackets, a name as given.
    pub fn dial_text(&self) -> String {
        match self {
            Self::Ip(ip) => ip.to_string(),
            Self::Domain(d) => d.clone(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            // Peer-supplied: escape what could forge or disguise a log line.
            Self::Domain(d) => crate::printable::Printable(d).fmt(f),
        }
    }
}

/// DST.ADDR + DST.PORT of a request (or BND.ADDR + BND.PORT of a reply).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

impl Destination {
    /// Bytes of ATYP + ADDR + PORT on the wire.
    pub fn encoded_len(&self) -> usize {
        match &self.host {
            Host::Ip(IpAddr::V4(_)) => 1 + 4 + 2,
            Host::Ip(IpAddr::V6(_)) => 1 + 16 + 2,
            Host::Domain(d) => 1 + 1 + d.len() + 2,
        }
    }

    /// Appends ATYP + ADDR + PORT. Fails (writing nothing) for a domain that does not fit the
    /// one-byte length field or is empty.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        match &self.host {
            Host::Ip(IpAddr::V4(ip)) => {
                out.push(ATYP_IPV4);
                out.extend_from_slice(&ip.octets());
            }
            Host::Ip(IpAddr::V6(ip)) => {
                out.push(ATYP_IPV6);
                out.extend_from_slice(&ip.octets());
            }
            Host::Domain(d) => {
                let len = u8::try_from(d.len())
                    .map_err(|_| ProtoError::DomainTooLong { len: d.len() })?;
                if len == 0 {
                    return Err(ProtoError::EmptyDomain);
                }
                out.push(ATYP_DOMAIN);
                out.push(len);
                out.extend_from_slice(d.as_bytes());
            }
        }
        out.extend_from_slice(&self.port.to_be_bytes());
        Ok(())
    }
}

impl From<SocketAddr> for Destination {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}
