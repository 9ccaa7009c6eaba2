//! Where the simulated agent connects for a session, and the destinations it refuses.
//!
//! [`documents::plan`](crate::sim::documents::plan) fixes the target at StartSession: the
//! instance's own address, a name from its `hosts` map, an IP literal, or a name left for the
//! system resolver. The service checks no destination; like the real agent (reference §7.5),
//! the agent resolves the target when it dials and refuses the instance metadata service
//! (IMDS) with the agent's own text, which ends the session as `channel_closed` Output.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;

/// Where the agent connects for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// Known without resolving: the instance's address, a `hosts` entry, or an IP literal.
    Addr(SocketAddr),
    /// `AWS-StartPortForwardingSessionToRemoteHost` to a name the instance does not map: the
    /// system resolves it at dial time (loopback literals and `localhost` in tests).
    Host(String, u16),
}

/// The addresses the agent never forwards to: IMDS over IPv4 and over IPv6 (Nitro).
pub const DENIED_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Why the agent could not reach its target.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// Refused by the agent's rules; the text is the real agent's, for `channel_closed`.
    #[error("{0}")]
    Denied(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
}

/// The agent's refusal of `ip`, with its text (`Forwarding to IP address 169.254.169.254 is
/// forbidden.`), or `Ok` for an allowed address. IPv4-mapped IPv6 counts as its IPv4 address.
pub fn check_destination(ip: IpAddr) -> Result<(), DialError> {
    let ip = ip.to_canonical();
    if DENIED_IPS.contains(&ip) {
        return Err(DialError::Denied(format!(
            "Forwarding to IP address {ip} is forbidden."
        )));
    }
    Ok(())
}

impl DialTarget {
    /// The refusal known before resolving (an address target), for an agent that checks at
    /// session start; a [`DialTarget::Host`] is checked by [`DialTarget::resolve`].
    pub fn denied(&self) -> Option<String> {
        match self {
            Self::Addr(a) => match check_destination(a.ip()) {
                Err(DialError::Denied(text)) => Some(text),
                _ => None,
            },
            Self::Host(..) => None,
        }
    }

    /// The addresses to try, in order; [`DialError::Denied`] if any of them is refused (a name
    /// that resolves to IMDS among others is still refused, so DNS cannot smuggle it in).
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, DialError> {
        let addrs: Vec<SocketAddr> = match self {
            Self::Addr(a) => vec![*a],
            Self::Host(host, port) => {
                let resolve_err = |source| DialError::Resolve {
                    host: host.clone(),
                    source,
                };
                let found = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(resolve_err)?;
                found.collect()
            }
        };
        for a in &addrs {
            check_destination(a.ip())?;
        }
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no addresses");
            return Err(DialError::Resolve {
                host: self.to_string(),
                source: none,
            });
        }
        Ok(addrs)
    }

    /// Resolves, checks and connects (the first address that answers), with TCP_NODELAY.
    /// `Denied` should end the session with its text; any other error is a failed dial
    /// (ConnectToPortError in mux mode).
    pub async fn connect(&self) -> Result<TcpStream, DialError> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
        for addr in self.resolve().await? {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::debug!("sim agent: TCP_NODELAY to {addr}: {e}");
                    }
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(DialError::Connect {
            target: self.to_string(),
            source: last,
        })
    }
}

impl fmt::Display for DialTarget {
    /// `IP:PORT` (`[v6]:PORT`) or `name:PORT`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(a) => a.fmt(f),
            Self::Host(h, p) => write!(f, "{}:{p}", crate::printable::Printable(h)),
        }
    }
}

#[cfg(test)]
mod tests;
