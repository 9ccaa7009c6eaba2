//! One running forward: its listener and where accepted connections go, either as streams on
//! its own SSM port sessions ([`SessionSet`]), through a running master's SSH pool (the
//! standalone `forward --via UPSTREAM`), or through an upstream of the master the forward runs
//! in (`forwards:` of `serve`). Every accepted connection is counted ([`Counted`]) before its
//! carrier sees it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::listen::Listener;
use super::sessions::SessionSet;
use super::stats::{Counted, ForwardStats};
use crate::control::client::Client;
use crate::control::proto::{Request, Response};
use crate::port::{BoxIo, Opened};
use crate::upstream::Upstreams;

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
    /// Inside the master: each connection is a stream through one of its upstreams, opened
    /// straight on the registry (no control socket in between).
    Upstream(Through),
    /// The forward cannot carry connections (e.g. its instance name did not resolve): each one
    /// is closed at once, and the reason logged and counted as the last error.
    Unavailable(String),
}

/// `host:port` through upstream `name` of the master's registry. Routes are not consulted: a
/// forward names its upstream and destination itself, in the same file as the routes.
pub struct Through {
    pub upstreams: Arc<tokio::sync::RwLock<Upstreams>>,
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Accepts until `stop` turns true, then terminates the forward's sessions.
pub async fn run(
    listener: Listener,
    mut carrier: Carrier,
    label: Arc<str>,
    stop: watch::Receiver<bool>,
) {
    let stats = Arc::new(ForwardStats::default());
    accept_loop(&listener, &mut carrier, &label, &stats, stop).await;
    carrier.stop().await;
}

impl Carrier {
    /// Terminates the carrier's own sessions, if it has any.
    pub async fn stop(self) {
        if let Self::Sessions(set) = self {
            set.stop().await;
        }
    }
}

/// Accepts until `stop` turns true, counting every connection into `stats` and handing it to
/// `carrier`; the caller decides when the carrier stops.
pub async fn accept_loop(
    listener: &Listener,
    carrier: &mut Carrier,
    label: &Arc<str>,
    stats: &Arc<ForwardStats>,
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
        let io: BoxIo = Box::new(Counted::new(io, stats.clone()));
        match carrier {
            Carrier::Sessions(set) => carry(set, io, &peer, label, stats).await,
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
                let (label, stats) = (label.clone(), stats.clone());
                tokio::spawn(async move {
                    if let Err(e) = via.bridge(io).await {
                        stats.set_error(format!("through the master: {e}"));
                        tracing::warn!("forward {label}: through the master: {e}; connection from {peer} closed");
                    }
                });
            }
            Carrier::Upstream(t) => t.spawn(io, peer, label.clone(), stats.clone()),
            Carrier::Unavailable(why) => {
                stats.set_error(why.clone());
                tracing::warn!("forward {label}: {why}; connection from {peer} closed");
            }
        }
    }
}

impl Through {
    /// Carries `io` through the upstream in a task of its own; a failure closes just it.
    fn spawn(&self, io: BoxIo, peer: String, label: Arc<str>, stats: Arc<ForwardStats>) {
        let (ups, name) = (self.upstreams.clone(), self.name.clone());
        let (host, port) = (self.host.clone(), self.port);
        tokio::spawn(async move {
            // Hold the registry lock only to find the pool, not while dialling.
            let pool = ups.read().await.get(&name);
            let opened = match pool {
                Some(pool) => pool
                    .open_stream(&host, port)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err(format!("upstream {name} is not configured")),
            };
            match opened {
                Ok(stream) => {
                    if let Err(e) = crate::relay::relay(io, stream).await {
                        tracing::debug!("forward {label}: connection from {peer} ended: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!("forward {label}: {e}; connection from {peer} closed");
                    stats.set_error(e);
                }
            }
        });
    }
}

/// Hands `io` to the least-loaded live session; says why when it cannot.
async fn carry(
    set: &mut SessionSet,
    io: BoxIo,
    peer: &str,
    label: &Arc<str>,
    stats: &Arc<ForwardStats>,
) {
    let Some(opener) = set.pick(PICK_WAIT).await else {
        let why = set
            .watch()
            .states()
            .into_iter()
            .find_map(|s| s.last_error)
            .unwrap_or_else(|| "no session came up".into());
        stats.set_error(format!("no session is up ({why})"));
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
    let (label, peer, stats) = (label.clone(), peer.to_owned(), stats.clone());
    tokio::spawn(async move {
        if let Ok(Opened::Refused) = rx.await {
            stats.set_error("the instance could not connect to the destination");
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
