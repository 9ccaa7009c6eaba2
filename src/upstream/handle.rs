//! [shell] One configured upstream, whichever its kind: the one seam `serve` (SOCKS connector,
//! the master's `open`, `status`, `connect`, `disconnect`, `reload`) uses, so no caller needs
//! to know whether streams go over SSH or over port sessions.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use super::{Pool, PoolOptions, PoolStatus, PortPool, UpstreamError, UpstreamStream};
use crate::config::{Upstream, UpstreamKind};

/// A running upstream. Cheap to clone.
#[derive(Clone)]
pub enum UpstreamHandle {
    /// `kind: ssh`: pooled SSH connections.
    Ssh(Arc<Pool>),
    /// `kind: ssm-port`: port sessions per destination.
    Port(Arc<PortPool>),
}

impl std::fmt::Debug for UpstreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UpstreamHandle")
            .field(&self.config().name)
            .finish()
    }
}

impl UpstreamHandle {
    /// The runtime for `up`'s kind, not started.
    pub fn new(up: Upstream, opts: &PoolOptions) -> Result<Self, UpstreamError> {
        match &up.kind {
            UpstreamKind::Ssh(_) => Ok(Self::Ssh(Arc::new(Pool::new(up, opts.clone())?))),
            UpstreamKind::SsmPort(_) => {
                let kind = up.kind.protocol();
                let name = up.name.clone();
                PortPool::new(up, opts.clone())
                    .map(|p| Self::Port(Arc::new(p)))
                    .ok_or(UpstreamError::Unsupported {
                        upstream: name,
                        kind,
                    })
            }
        }
    }

    pub fn config(&self) -> Upstream {
        match self {
            Self::Ssh(p) => p.config(),
            Self::Port(p) => p.config(),
        }
    }

    /// Whether the upstream waits for first use; a port upstream has nothing to connect
    /// before a destination is known.
    pub fn lazy(&self) -> bool {
        match self {
            Self::Ssh(p) => p.lazy(),
            Self::Port(_) => true,
        }
    }

    /// Starts connecting (an SSH pool; a port upstream starts per destination).
    pub fn start(&self) {
        if let Self::Ssh(p) = self {
            p.start();
        }
    }

    /// Connections an SSH pool keeps, or sessions a port upstream opens per destination.
    pub fn pool_size(&self) -> usize {
        match self {
            Self::Ssh(p) => p.pool_size().get(),
            Self::Port(p) => p.sessions_per_destination(),
        }
    }

    /// Changes an SSH pool's size in place (`reload`); port upstreams have none.
    pub fn resize(&self, size: NonZeroUsize) {
        if let Self::Ssh(p) = self {
            p.resize(size);
        }
    }

    /// Until the upstream can carry streams: an SSH pool's first connection; a port upstream
    /// is ready as soon as it runs.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), UpstreamError> {
        match self {
            Self::Ssh(p) => p.wait_ready(timeout).await,
            Self::Port(p) if p.stopped() => Err(UpstreamError::ShutDown {
                upstream: p.config().name,
            }),
            Self::Port(_) => Ok(()),
        }
    }

    /// Opens a stream to `host:port` (resolved where the upstream dials it).
    pub async fn open_stream(
        &self,
        host: &str,
        port: u16,
    ) -> Result<UpstreamStream, UpstreamError> {
        match self {
            Self::Ssh(p) => p.open_stream(host, port).await,
            Self::Port(p) => p.open_stream(host, port).await,
        }
    }

    /// True when the upstream stopped retrying on an error that will not fix itself.
    pub fn gave_up(&self) -> bool {
        match self {
            Self::Ssh(p) => p.gave_up(),
            Self::Port(p) => p.gave_up(),
        }
    }

    pub fn snapshot(&self) -> PoolStatus {
        match self {
            Self::Ssh(p) => p.snapshot(),
            Self::Port(p) => p.snapshot(),
        }
    }

    /// Terminates every SSM session of the upstream; open streams end.
    pub async fn shutdown(&self) {
        match self {
            Self::Ssh(p) => p.shutdown().await,
            Self::Port(p) => p.shutdown().await,
        }
    }
}
