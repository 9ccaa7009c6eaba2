//! One running forward: its listener and where accepted connections go, either as streams on
//! its own SSM port sessions ([`SessionSet`]) or through a running master's SSH pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::listen::Listener;
use super::sessions::SessionSet;
use crate::control::client::Client;
use crate::control::proto::{Request, Response};
use crate::port::{BoxIo, Opened};

/// How long an accepted connection waits for a session to come up before it is closed.
const PICK_WAIT: Duration = Duration::from_secs(30);

/// Where a forward's connections go.
pub enum Carrier {
    /// Streams on the forward's own SSM port sessions.
    Sessions(SessionSet),
    /// `--via UPSTREAM` with a master running: each connection is a stream through the
    /// master's pooled SSH connection (direct-tcpip), so it starts at once.
    Master {
        socket: PathBuf,
        upstream: String,
        host: String,
        port: u16,
    },
}

/// Accepts until `stop` turns true, then terminates the forward's sessions.
pub async fn run(
    listener: Listener,
    mut carrier: Carrier,
    label: Arc<str>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (io, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("forward {label}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tracing::debug!("forward {label}: connection from {peer}");
        match &mut carrier {
            Carrier::Sessions(set) => carry(set, io, &peer, &label).await,
            Carrier::Master {
                socket,
                upstream,
                host,
                port,
            } => {
                let via = Via {
                    socket: socket.clone(),
                    upstream: upstream.clone(),
                    host: host.clone(),
                    port: *port,
                };
                let label = label.clone();
                tokio::spawn(async move {
                    if let Err(e) = via.bridge(io).await {
                        tracing::warn!("forward {label}: through the master: {e}; connection from {peer} closed");
                    }
                });
            }
        }
    }
    if let Carrier::Sessions(set) = carrier {
        set.stop().await;
    }
}

/// Hands `io` to the least-loaded live session; says why when it cannot.
async fn carry(set: &mut SessionSet, io: BoxIo, peer: &str, label: &Arc<str>) {
    let Some(opener) = set.pick(PICK_WAIT).await else {
        let why = set
            .states()
            .into_iter()
            .find_map(|s| s.last_error)
            .unwrap_or_else(|| "no session came up".into());
        tracing::warn!("forward {label}: no session is up ({why}); connection from {peer} closed");
        return;
    };
    let rx = match opener.open(io).await {
        Ok(rx) => rx,
        Err(_io) => {
            tracing::warn!(
                "forward {label}: its session ended just now; connection from {peer} closed"
            );
            return;
        }
    };
    let (label, peer) = (label.clone(), peer.to_owned());
    tokio::spawn(async move {
        if let Ok(Opened::Refused) = rx.await {
            tracing::warn!("forward {label}: the instance could not connect to the destination; connection from {peer} closed");
        }
    });
}

/// One connection through the master.
struct Via {
    socket: PathBuf,
    upstream: String,
    host: String,
    port: u16,
}

impl Via {
    async fn bridge(self, mut io: BoxIo) -> anyhow::Result<()> {
        let mut c = Client::connect(&self.socket).await?;
        let req = Request::Open {
            host: self.host.clone(),
            port: self.port,
            via: Some(self.upstream.clone()),
        };
        c.send(&req).await?;
        match c.recv(Some(Duration::from_secs(60))).await? {
            Response::Stream => {}
            Response::Error { message, .. } => anyhow::bail!("{message}"),
            _ => anyhow::bail!("the master answered something other than a stream"),
        }
        let (mut sock, early) = c.into_parts();
        io.write_all(&early).await?;
        tokio::io::copy_bidirectional(&mut io, &mut sock).await?;
        Ok(())
    }
}
