//! [shell] A forward's local listener, bound for real: a TCP address (loopback unless the user
//! allows remote clients, as for SOCKS listeners) or a Unix socket (0600 in a 0700 dir, see
//! [`crate::paths::bind_unix_socket`]). Accepted connections come out as one boxed stream type,
//! so the forward's relay does not care which kind of listener it serves.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::{TcpListener, TcpStream, UnixListener};

use super::spec::ListenOn;
use crate::paths::SocketFile;

pub use crate::relay::BoxedStream;

/// Why a forward's listener could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0} listens on all interfaces, so other hosts could use the forward; bind 127.0.0.1 or pass --allow-remote if you mean it")]
    AllInterfaces(SocketAddr),
    #[error("{0} is not a loopback address, so other hosts could use the forward; bind 127.0.0.1 or pass --allow-remote if you mean it")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {on}: {source}")]
    Bind {
        on: ListenOn,
        #[source]
        source: io::Error,
    },
}

/// Refuses a TCP bind address other hosts could reach (unspecified or not loopback) unless
/// `allow_remote`. Pure, so a command can check every spec before it binds any.
pub fn check_local(addr: SocketAddr, allow_remote: bool) -> Result<(), ListenError> {
    if allow_remote {
        Ok(())
    } else if addr.ip().is_unspecified() {
        Err(ListenError::AllInterfaces(addr))
    } else if !addr.ip().is_loopback() {
        Err(ListenError::NotLoopback(addr))
    } else {
        Ok(())
    }
}

/// A bound forward listener. A Unix socket's file is removed when this is dropped (unless
/// someone else has bound that path since).
#[derive(Debug)]
pub enum Listener {
    Tcp {
        listener: TcpListener,
        /// The address bound, with the port the kernel picked for port 0.
        addr: SocketAddr,
    },
    Unix {
        listener: UnixListener,
        path: PathBuf,
        file: SocketFile,
    },
}

impl Listener {
    /// Binds `on`; TCP addresses pass [`check_local`] first.
    pub async fn bind(on: &ListenOn, allow_remote: bool) -> Result<Self, ListenError> {
        let failed = |source| ListenError::Bind {
            on: on.clone(),
            source,
        };
        match on {
            ListenOn::Tcp(want) => {
                check_local(*want, allow_remote)?;
                let listener = TcpListener::bind(want).await.map_err(failed)?;
                let addr = listener.local_addr().map_err(failed)?;
                Ok(Self::Tcp { listener, addr })
            }
            ListenOn::Unix(path) => {
                let listener = crate::paths::bind_unix_socket(path).map_err(failed)?;
                let file = SocketFile::claim(path);
                let path = path.clone();
                Ok(Self::Unix {
                    listener,
                    path,
                    file,
                })
            }
        }
    }

    /// Where this listens: for TCP the bound address (the real port when the spec said 0).
    pub fn address(&self) -> ListenOn {
        match self {
            Self::Tcp { addr, .. } => ListenOn::Tcp(*addr),
            Self::Unix { path, .. } => ListenOn::Unix(path.clone()),
        }
    }

    /// Accepts one connection: the stream and a description of the peer for logs (`IP:PORT`,
    /// or `unix:PATH pid=N` with the peer's pid when the kernel reports it). Errors are the
    /// OS's; a caller should back off briefly on them (e.g. out of file descriptors).
    pub async fn accept(&self) -> io::Result<(BoxedStream, String)> {
        match self {
            Self::Tcp { listener, .. } => {
                let (stream, peer) = accept_tcp(listener).await?;
                Ok((Box::new(stream), peer.to_string()))
            }
            Self::Unix { listener, path, .. } => {
                let (stream, _) = listener.accept().await?;
                let pid = stream.peer_cred().ok().and_then(|c| c.pid());
                let peer = match pid {
                    Some(pid) => format!("unix:{} pid={pid}", path.display()),
                    None => format!("unix:{}", path.display()),
                };
                Ok((Box::new(stream), peer))
            }
        }
    }
}

/// Accepts with TCP_NODELAY on: forwarded protocols (database queries, TLS handshakes) are
/// request/response, and Nagle's delay would add up to 40 ms per small write.
async fn accept_tcp(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("forward: TCP_NODELAY on a connection from {peer}: {e}");
    }
    Ok((stream, peer))
}

#[cfg(test)]
mod tests;
