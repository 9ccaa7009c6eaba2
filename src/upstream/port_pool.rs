//! [shell] A `kind: ssm-port` upstream at run time: no SSH, only IAM. Each destination
//! `host:port` gets its own [`SessionSet`] of `AWS-StartPortForwardingSessionToRemoteHost`
//! sessions, started on first use, shared by later streams to it, and stopped (sessions
//! terminated) once it has had no stream open for `idle_timeout_secs`. At most
//! [`MAX_DESTINATIONS`] are held at once, so a client walking many destinations cannot grow
//! memory or sessions without bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::DuplexStream;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::status::{Clock, DestinationStatus, PoolStatus};
use super::{PoolOptions, PoolState, UpstreamError, UpstreamStream};
use crate::config::{SsmPortUpstream, Upstream, UpstreamKind, UpstreamProtocol};
use crate::forward::sessions::{PortTarget, SessionSet};
use crate::port::Opened;
use crate::ssm::api::{AwsSettings, SessionRequest, SsmApi};
use crate::ssm::target;

mod stream;

pub use stream::PortStream;
use stream::{Counters, Lease};

/// Destinations held at once; past it, the longest-idle one is closed.
pub const MAX_DESTINATIONS: usize = 256;

/// Per-direction buffer of the pipe between a client and its port stream. The pipe costs one
/// extra copy per chunk, which is nothing next to the ~1 MB/s one port session carries; in
/// exchange the stream is an ordinary [`UpstreamStream`] to the SOCKS server and the master.
const PIPE_BUFFER: usize = 64 * 1024;

/// Tries to get a stream onto a live session (a session that ends under the open is replaced
/// by its slot, and the next try takes the new one).
const OPEN_ATTEMPTS: usize = 3;

/// Why an `ssm-port` upstream could not carry a stream to a destination.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortRefusal {
    /// The agent answered ConnectToPortError.
    #[error("the instance could not connect to it (connection refused)")]
    Refused,
    /// The agent will never forward there (IMDS, the VPC's own addresses).
    #[error("the instance refuses to forward there: {output}")]
    Forbidden { output: String },
    /// No port session came up (StartSession failed, or not in time).
    #[error("no port session came up: {last_error}")]
    NoSession {
        last_error: String,
        /// The failure will not fix itself (unknown instance, denied credentials, ...).
        permanent: bool,
    },
    /// Every held destination has streams open; none can make room.
    #[error("already {MAX_DESTINATIONS} destinations with open streams; close some connections and try again")]
    Full,
}

impl PortRefusal {
    /// The RFC 1928 reply a SOCKS client gets.
    pub fn socks_reply(&self) -> u8 {
        match self {
            Self::Refused => 5,
            Self::Forbidden { .. } => 2,
            Self::NoSession { .. } => 4,
            Self::Full => 1,
        }
    }
}

/// One destination: its sessions and what went through them.
struct Dest {
    instance: String,
    sessions: SessionSet,
    counters: Counters,
    /// When the last stream ended (or the destination was created).
    idle_since: Mutex<Instant>,
}

impl Dest {
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        (self.counters.open.load(Ordering::Acquire) == 0)
            .then(|| now.saturating_duration_since(*lock(&self.idle_since)))
    }

    /// Every session failed on an error that will not fix itself (not the agent refusing
    /// this one destination, which is that destination's answer, not the upstream's).
    fn gave_up(&self) -> bool {
        matches!(
            self.why_none(Duration::ZERO),
            PortRefusal::NoSession {
                permanent: true,
                ..
            }
        ) && self.sessions.all_permanent()
    }

    /// Why no session can take a stream: the agent's refusal, else the last error.
    fn why_none(&self, waited: Duration) -> PortRefusal {
        let states = self.sessions.watch().states();
        let permanent = self.sessions.all_permanent();
        let last = states.into_iter().find_map(|s| s.last_error);
        match last {
            Some(output) if permanent && output.contains("is forbidden") => {
                PortRefusal::Forbidden { output }
            }
            Some(last_error) => PortRefusal::NoSession {
                last_error,
                permanent,
            },
            None => PortRefusal::NoSession {
                last_error: format!("none within {:.0}s", waited.as_secs_f64()),
                permanent: false,
            },
        }
    }
}

type DestKey = (String, u16);

struct Inner {
    cfg: Upstream,
    settings: SsmPortUpstream,
    opts: PoolOptions,
    aws: AwsSettings,
    api: OnceCell<Arc<SsmApi>>,
    dests: Mutex<BTreeMap<DestKey, Arc<Dest>>>,
    totals: Arc<Counters>,
    stopped: AtomicBool,
    /// The last failure to reach a destination, with when it happened.
    last_error: Mutex<Option<(Instant, String)>>,
    /// Spreads new destinations over the upstream's targets.
    next_target: AtomicUsize,
}

/// The runtime of one `kind: ssm-port` upstream.
pub struct PortPool {
    inner: Arc<Inner>,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for PortPool {
    /// `shutdown` is the graceful path (sessions terminated); this is the backstop.
    fn drop(&mut self) {
        if let Some(t) = lock(&self.reaper).take() {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PortPool {
    /// `None` for an upstream of another kind.
    pub fn new(cfg: Upstream, opts: PoolOptions) -> Option<Self> {
        let UpstreamKind::SsmPort(settings) = cfg.kind.clone() else {
            return None;
        };
        let inner = Inner {
            aws: opts.aws_settings(&cfg),
            cfg,
            settings,
            opts,
            api: OnceCell::new(),
            dests: Mutex::default(),
            totals: Arc::default(),
            stopped: AtomicBool::new(false),
            last_error: Mutex::new(None),
            next_target: AtomicUsize::new(0),
        };
        Some(Self {
            inner: Arc::new(inner),
            reaper: Mutex::new(None),
        })
    }

    pub fn config(&self) -> Upstream {
        self.inner.cfg.clone()
    }

    pub fn sessions_per_destination(&self) -> usize {
        self.inner.settings.sessions_per_destination.get()
    }

    pub fn stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    /// Opens a stream to `host:port` on that destination's sessions, starting them on first
    /// use. Answers only once the agent has confirmed (or refused) the stream.
    pub async fn open_stream(
        &self,
        host: &str,
        port: u16,
    ) -> Result<UpstreamStream, UpstreamError> {
        let inner = &self.inner;
        if self.stopped() {
            return Err(UpstreamError::ShutDown {
                upstream: inner.cfg.name.clone(),
            });
        }
        self.start_reaper();
        let refused = |why: PortRefusal| {
            inner.failed(&why);
            UpstreamError::Port {
                upstream: inner.cfg.name.clone(),
                destination: dest_label(host, port),
                why,
            }
        };
        let lease = inner.lease(host, port).await.map_err(refused)?;
        let pipe = carry(&lease.dest, inner.opts.open_wait)
            .await
            .map_err(refused)?;
        lease.opened();
        Ok(UpstreamStream::port(PortStream { pipe, lease }))
    }

    /// Starts the task that closes idle destinations (idempotent; needs a runtime).
    fn start_reaper(&self) {
        let mut reaper = lock(&self.reaper);
        if reaper.is_none() {
            let inner = Arc::downgrade(&self.inner);
            let every = (self.inner.settings.idle_timeout / 2)
                .clamp(Duration::from_millis(200), Duration::from_secs(5));
            *reaper = Some(tokio::spawn(reap(inner, every)));
        }
    }

    /// True when a destination's sessions all failed on an error that will not fix itself
    /// (credentials, an unknown instance): `connect` then builds the upstream afresh.
    pub fn gave_up(&self) -> bool {
        lock(&self.inner.dests).values().any(|d| d.gave_up())
    }

    /// Stops every destination's sessions (TerminateSession each); open streams end.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        if let Some(t) = lock(&self.reaper).take() {
            t.abort();
        }
        let all: Vec<Arc<Dest>> = std::mem::take(&mut *lock(&self.inner.dests))
            .into_values()
            .collect();
        let limit = self.inner.opts.close_timeout + Duration::from_secs(1);
        let stops = all.iter().map(|d| d.sessions.stop());
        let _ = tokio::time::timeout(limit, futures_util::future::join_all(stops)).await;
    }

    /// The upstream and each destination it holds.
    pub fn snapshot(&self) -> PoolStatus {
        let inner = &self.inner;
        let clock = Clock::current();
        let now = Instant::now();
        let dests: Vec<DestinationStatus> = lock(&inner.dests)
            .iter()
            .map(|((host, port), d)| dest_status(host, *port, d, now))
            .collect();
        let up: usize = dests.iter().map(|d| d.sessions_up).sum();
        let state = if self.stopped() {
            PoolState::Stopped
        } else if up > 0 {
            PoolState::Up
        } else {
            PoolState::Idle
        };
        let last = lock(&inner.last_error).clone();
        let t = &inner.totals;
        PoolStatus {
            name: inner.cfg.name.clone(),
            state,
            instances: {
                let mut i: Vec<String> = dests.iter().map(|d| d.instance.clone()).collect();
                i.sort();
                i.dedup();
                i
            },
            connections_up: up,
            connections_total: dests.iter().map(|d| d.sessions_total).sum(),
            session_ids: dests.iter().flat_map(|d| d.session_ids.clone()).collect(),
            uptime_secs: None,
            open_streams: t.open.load(Ordering::Relaxed),
            streams_total: t.streams_total.load(Ordering::Relaxed),
            bytes_in: t.bytes_in.load(Ordering::Relaxed),
            bytes_out: t.bytes_out.load(Ordering::Relaxed),
            reconnects: 0,
            resumes: 0,
            retransmits: 0,
            last_error: last.as_ref().map(|(_, e)| e.clone()),
            last_error_at: last.map(|(at, _)| clock.unix_secs(at)),
            connections: Vec::new(),
            kind: UpstreamProtocol::SsmPort.to_string(),
            destinations: dests,
        }
    }
}

fn dest_status(host: &str, port: u16, d: &Dest, now: Instant) -> DestinationStatus {
    let states = d.sessions.watch().states();
    let live: Vec<String> = states
        .iter()
        .filter(|s| s.opener.as_ref().is_some_and(|o| !o.is_closed()))
        .filter_map(|s| s.session_id.clone())
        .collect();
    let c = &d.counters;
    DestinationStatus {
        destination: dest_label(host, port),
        instance: d.instance.clone(),
        sessions_up: live.len(),
        sessions_total: states.len(),
        session_ids: live,
        open_streams: c.open.load(Ordering::Relaxed),
        streams_total: c.streams_total.load(Ordering::Relaxed),
        bytes_in: c.bytes_in.load(Ordering::Relaxed),
        bytes_out: c.bytes_out.load(Ordering::Relaxed),
        idle_secs: d.idle_for(now).map(|t| t.as_secs()),
        last_error: states.into_iter().find_map(|s| s.last_error),
    }
}

/// Hands one end of a new pipe to a live session and waits for the agent's verdict.
async fn carry(dest: &Dest, wait: Duration) -> Result<DuplexStream, PortRefusal> {
    for _ in 0..OPEN_ATTEMPTS {
        let Some(opener) = dest.sessions.pick(wait).await else {
            return Err(dest.why_none(wait));
        };
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        let Ok(verdict) = opener.open(Box::new(theirs)).await else {
            continue;
        };
        match verdict.await {
            Ok(Opened::Connected) => return Ok(ours),
            Ok(Opened::Refused) => return Err(PortRefusal::Refused),
            // The session ended under the open: its slot starts another, or says why not.
            Ok(Opened::SessionEnded) | Err(_) => {
                wait_closed(&opener).await;
            }
        }
    }
    Err(dest.why_none(wait))
}

/// Until the session behind `opener` is gone, so the next pick does not take it again
/// (bounded: a hang guard, the pick skips closed openers anyway).
async fn wait_closed(opener: &crate::port::Opener) {
    let _ = tokio::time::timeout(Duration::from_secs(10), opener.closed()).await;
}

impl Inner {
    async fn api(&self) -> Arc<SsmApi> {
        self.api
            .get_or_init(|| async { Arc::new(SsmApi::new(&self.aws).await) })
            .await
            .clone()
    }

    fn failed(&self, why: &PortRefusal) {
        *lock(&self.last_error) = Some((Instant::now(), why.to_string()));
    }

    /// A lease on the destination's sessions, starting them if the destination is new.
    async fn lease(&self, host: &str, port: u16) -> Result<Lease, PortRefusal> {
        let key = (host.to_owned(), port);
        if let Some(d) = lock(&self.dests).get(&key) {
            return Ok(Lease::new(d.clone(), self.totals.clone()));
        }
        let (api, instance) = self.instance().await?;
        let mut dests = lock(&self.dests);
        if let Some(d) = dests.get(&key) {
            return Ok(Lease::new(d.clone(), self.totals.clone()));
        }
        if dests.len() >= MAX_DESTINATIONS {
            let now = Instant::now();
            let idle = dests.iter().map(|(k, d)| (k, d.idle_for(now)));
            let idlest = longest_idle(idle).ok_or(PortRefusal::Full)?;
            if let Some(d) = dests.remove(&idlest) {
                tracing::info!(upstream = %self.cfg.name, "closing {} to make room for a new destination", dest_label(&idlest.0, idlest.1));
                tokio::spawn(async move { d.sessions.stop().await });
            }
        }
        let label = dest_label(host, port);
        let target = PortTarget {
            api,
            request: SessionRequest::port_forward(&instance, host, port),
            label: format!("{label} via upstream {}", self.cfg.name),
        };
        let dest = Arc::new(Dest {
            instance,
            sessions: SessionSet::start(target, self.settings.sessions_per_destination.get()),
            counters: Counters::default(),
            idle_since: Mutex::new(Instant::now()),
        });
        dests.insert(key, dest.clone());
        Ok(Lease::new(dest, self.totals.clone()))
    }

    /// The instance a new destination's sessions go through: the next target in turn that
    /// resolves.
    async fn instance(&self) -> Result<(Arc<SsmApi>, String), PortRefusal> {
        let api = self.api().await;
        let n = self.cfg.targets.len();
        let first = self.next_target.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let Some(t) = self.cfg.targets.get((first + i) % n.max(1)) else {
                continue;
            };
            match target::resolve(&api, t.as_str()).await {
                Ok(id) => return Ok((api, id)),
                Err(e) => last = Some(e),
            }
        }
        Err(PortRefusal::NoSession {
            permanent: last.as_ref().is_some_and(|e| e.is_permanent()),
            last_error: last.map_or_else(|| "no targets".to_owned(), |e| e.to_string()),
        })
    }
}

/// `host:port` for messages and `status`: IPv6 in brackets, a peer-supplied name escaped.
fn dest_label(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{}:{port}", crate::printable::Printable(host))
    }
}

/// The destination with no stream open (`Some` idle time) that has been idle longest.
fn longest_idle<'a>(
    idle: impl Iterator<Item = (&'a DestKey, Option<Duration>)>,
) -> Option<DestKey> {
    idle.filter_map(|(k, t)| t.map(|t| (t, k)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, k)| k.clone())
}

/// Every `every`, closes the destinations idle for `idle_timeout` or more; ends with the pool.
async fn reap(inner: std::sync::Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        let idle = inner.settings.idle_timeout;
        let closing: Vec<(DestKey, Arc<Dest>)> = {
            let mut dests = lock(&inner.dests);
            let keys: Vec<DestKey> = dests
                .iter()
                .filter(|(_, d)| d.idle_for(now).is_some_and(|t| t >= idle))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| dests.remove(&k).map(|d| (k, d)))
                .collect()
        };
        for ((host, port), d) in closing {
            let label = dest_label(&host, port);
            tracing::info!(upstream = %inner.cfg.name, "{label}: no stream for {}s; closing its sessions", idle.as_secs());
            d.sessions.stop().await;
        }
    }
}

#[cfg(test)]
mod tests;
