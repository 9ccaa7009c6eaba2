//! [shell] One upstream's pool: `pool_size` SSH connections, each carried by its own SSM
//! session, spread round-robin over the upstream's instances and rebuilt with backoff when they
//! fail (moving to the next instance).
//!
//! Each slot has a background task that connects, waits for the connection to die, and
//! reconnects; the decisions (which instance, how long to wait, which connection gets a new
//! stream) come from [`super::state`]. Streams are `direct-tcpip` channels wrapped so that the
//! pool counts open streams and bytes per connection for `status`. `reload` resizes a pool in
//! place ([`resize`]), so a `pool_size` change never cuts a stream.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;

use super::connect;
pub use super::connect::ConnectError;
use super::state::{self, ConnView, Slot};
use super::status::Clock;
pub use super::status::{ConnStatus, PoolStatus};
use super::stream::{Conn, Lease, Totals, UpstreamStream};
use super::UpstreamError;
use crate::config::{SshUpstream, Upstream, UpstreamKind};
use crate::instance_connect::InstanceConnect;
use crate::ssh::{Bastion, SshError, SshSettings};
use crate::ssm::api::{AwsSettings, SsmApi};
use crate::ssm::session::Session;
use crate::ssm::target;

mod options;
mod resize;
mod slot;

pub use options::PoolOptions;

use slot::run_slot;

struct SlotEntry {
    slot: Slot,
    /// The slot's task ended because the pool shrank below it; the entry waits to be trimmed
    /// (or reused when the pool grows again).
    retired: bool,
    conn: Option<Arc<Conn>>,
    /// Resolved instance id of the current or last attempt.
    instance: Option<String>,
    /// The typed form of `slot.last_error` when that was a failed connect (not a loss).
    failure: Option<Arc<ConnectError>>,
}

struct Inner {
    cfg: Upstream,
    /// The SSH settings of `cfg` (a pool is only built for a `kind: ssh` upstream).
    login: SshUpstream,
    opts: PoolOptions,
    ssh: SshSettings,
    aws: AwsSettings,
    api: OnceCell<Arc<SsmApi>>,
    /// `instance_connect: true` only: the client that pushes each connection's key.
    eic: OnceCell<InstanceConnect>,
    slots: Mutex<Vec<SlotEntry>>,
    /// The configured number of slots (`pool_size`, changed by [`Pool::resize`]); slots at or
    /// past it are surplus and drain. Changed only while holding `slots`.
    size: watch::Sender<NonZeroUsize>,
    /// Bumped on every slot change; `wait_ready` waits on it.
    changed: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    totals: Arc<Totals>,
    cursor: AtomicUsize,
    /// Bumped when a client asks for a stream while the credentials need a human: the slots
    /// waiting for them try again at once.
    retry_credentials: watch::Sender<u64>,
}

/// A pool of SSH connections for one upstream.
pub struct Pool {
    inner: Arc<Inner>,
    tasks: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.cfg.name)
            .finish_non_exhaustive()
    }
}

impl Drop for Pool {
    /// Slot tasks are owned by the pool; `shutdown` is the graceful path, this is the backstop.
    fn drop(&mut self) {
        if let Some(tasks) = lock(&self.tasks).take() {
            for t in tasks {
                t.abort();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Builds the pool without connecting; see [`Pool::start`]. `cfg` was validated by
    /// `config` (targets non-empty, a way to log in); the one refusal is an upstream that is
    /// not `kind: ssh`, which this SSH pool cannot run.
    pub fn new(cfg: Upstream, opts: PoolOptions) -> Result<Self, UpstreamError> {
        let UpstreamKind::Ssh(login) = cfg.kind.clone() else {
            return Err(UpstreamError::Unsupported {
                upstream: cfg.name,
                kind: cfg.kind.protocol(),
            });
        };
        let slots = (0..login.pool_size.get())
            .map(|i| SlotEntry::new(i, cfg.targets.len()))
            .collect();
        let ssh = opts.ssh_settings(&login);
        let aws = opts.aws_settings(&cfg);
        let inner = Inner {
            size: watch::channel(login.pool_size).0,
            cfg,
            login,
            opts,
            ssh,
            aws,
            api: OnceCell::new(),
            eic: OnceCell::new(),
            slots: Mutex::new(slots),
            changed: watch::channel(0).0,
            stop: watch::channel(false).0,
            totals: Arc::default(),
            cursor: AtomicUsize::new(0),
            retry_credentials: watch::channel(0).0,
        };
        Ok(Self {
            inner: Arc::new(inner),
            tasks: Mutex::new(None),
        })
    }

    /// The upstream's settings, with the `pool_size` in force (see [`Pool::resize`]).
    pub fn config(&self) -> Upstream {
        Upstream {
            kind: UpstreamKind::Ssh(SshUpstream {
                pool_size: self.inner.size(),
                ..self.inner.login.clone()
            }),
            ..self.inner.cfg.clone()
        }
    }

    /// The `pool_size` in force (see [`Pool::resize`]).
    pub fn pool_size(&self) -> NonZeroUsize {
        self.inner.size()
    }

    /// Whether the pool connects on first use rather than at start (`lazy:`).
    pub fn lazy(&self) -> bool {
        self.inner.login.lazy
    }

    /// Starts the slot tasks (idempotent). Must run inside a tokio runtime.
    pub fn start(&self) {
        let mut tasks = lock(&self.tasks);
        if tasks.is_some() || *self.inner.stop.borrow() {
            return;
        }
        let handles = (0..self.inner.size().get())
            .map(|i| tokio::spawn(run_slot(self.inner.clone(), i)))
            .collect();
        *tasks = Some(handles);
    }

    /// Waits until at least one connection is up, through any number of failed attempts.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), UpstreamError> {
        self.wait_usable(timeout, false).await
    }

    /// Like `wait_ready`; with `fail_fast`, gives up as soon as every slot keeps failing, so a
    /// client asking for a stream through a broken upstream hears why at once.
    async fn wait_usable(&self, timeout: Duration, fail_fast: bool) -> Result<(), UpstreamError> {
        self.start();
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut rx = self.inner.changed.subscribe();
        let mut nudged = false;
        loop {
            rx.borrow_and_update();
            if *self.inner.stop.borrow() {
                return Err(self.inner.shut_down());
            }
            let slots = self.inner.slot_copies();
            if slots.iter().any(Slot::is_up) {
                return Ok(());
            }
            // The credentials need a human: wait for one attempt now (the user may have logged
            // in), then refuse with the command to run; the slots keep retrying meanwhile.
            if state::awaiting_credentials(&slots) {
                if nudged {
                    return Err(self.inner.gave_up_error(started.elapsed()));
                }
                nudged = true;
                self.inner
                    .retry_credentials
                    .send_modify(|n| *n = n.wrapping_add(1));
            }
            // Every slot gave up: nothing will change until the pool is rebuilt.
            if state::gave_up(&slots) {
                return Err(self.inner.gave_up_error(started.elapsed()));
            }
            if fail_fast && !nudged && state::failing_persistently(&slots) {
                return Err(self.inner.not_ready(started.elapsed()));
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(self.inner.not_ready(started.elapsed()));
            }
        }
    }

    /// Opens a `direct-tcpip` stream to `host:port` (resolved by the bastion) on the least
    /// loaded healthy connection. If the connection turns out to be dead, tries another; a
    /// refusal by the bastion is returned as is (another bastion would most likely agree).
    pub async fn open_stream(
        &self,
        host: &str,
        port: u16,
    ) -> Result<UpstreamStream, UpstreamError> {
        self.start();
        let attempts = self.inner.size().get() + 1;
        let mut cause = None;
        for _ in 0..attempts {
            let Some(lease) = self.inner.reserve() else {
                self.wait_usable(self.inner.opts.open_wait, true).await?;
                continue;
            };
            match lease.conn.ssh.open_direct_tcpip(host, port).await {
                Ok(stream) => {
                    lease.opened();
                    return Ok(UpstreamStream::ssh(stream, lease));
                }
                Err(SshError::Rejected {
                    instance,
                    kind,
                    description,
                    ..
                }) => {
                    return Err(UpstreamError::Rejected {
                        upstream: self.inner.cfg.name.clone(),
                        instance,
                        host: host.to_owned(),
                        port,
                        kind,
                        description,
                    })
                }
                Err(e) => {
                    tracing::debug!(upstream = %self.inner.cfg.name, "stream open failed, trying another connection: {e}");
                    lease.conn.suspect.store(true, Ordering::Relaxed);
                    cause = Some(Box::new(e));
                }
            }
        }
        Err(UpstreamError::ConnectionsLost {
            upstream: self.inner.cfg.name.clone(),
            host: host.to_owned(),
            port,
            cause,
        })
    }

    /// True when every connection gave up on an error that will not fix itself; only a new
    /// pool (`connect`, `reload`) tries again.
    pub fn gave_up(&self) -> bool {
        state::gave_up(&self.inner.slot_copies())
    }

    /// A consistent view of the pool.
    pub fn snapshot(&self) -> PoolStatus {
        let inner = &self.inner;
        let clock = Clock::current();
        let slots = lock(&inner.slots);
        let copies: Vec<Slot> = slots.iter().map(|e| e.slot.clone()).collect();
        let connections: Vec<ConnStatus> = slots
            .iter()
            .enumerate()
            .map(|(i, e)| conn_status(i, e, &clock, inner.size().get()))
            .collect();
        let live: Vec<&ConnStatus> = connections.iter().filter(|c| c.phase == "up").collect();
        let mut instances: Vec<String> = slots
            .iter()
            .filter(|e| e.conn.is_some())
            .filter_map(|e| e.instance.clone())
            .collect();
        instances.sort();
        instances.dedup();
        let totals = &inner.totals;
        let last = state::last_failure(&copies);
        PoolStatus {
            name: inner.cfg.name.clone(),
            state: state::pool_state(copies.get(..inner.size().get()).unwrap_or(&copies)),
            instances,
            connections_up: copies.iter().filter(|s| s.is_up()).count(),
            connections_total: copies.len(),
            session_ids: live.iter().filter_map(|c| c.session_id.clone()).collect(),
            uptime_secs: live.iter().filter_map(|c| c.uptime_secs).max(),
            open_streams: totals.open_streams.load(Ordering::Relaxed),
            streams_total: totals.streams_total.load(Ordering::Relaxed),
            bytes_in: totals.bytes_in.load(Ordering::Relaxed),
            bytes_out: totals.bytes_out.load(Ordering::Relaxed),
            reconnects: totals.ended_reconnects.load(Ordering::Relaxed)
                + copies.iter().map(Slot::reconnects).sum::<u64>(),
            resumes: totals.ended_resumes.load(Ordering::Relaxed)
                + connections.iter().map(|c| c.resumes).sum::<u64>(),
            retransmits: totals.ended_retransmits.load(Ordering::Relaxed)
                + connections.iter().map(|c| c.retransmits).sum::<u64>(),
            last_error: last.map(|(_, e)| e.to_owned()),
            last_error_at: last.map(|(at, _)| clock.unix_secs(at)),
            connections,
            kind: crate::config::UpstreamProtocol::Ssh.to_string(),
            destinations: Vec::new(),
        }
    }

    /// Stops every slot: SSH disconnect, then stop and TerminateSession for each SSM session.
    /// Open streams end with their connections.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let tasks = lock(&self.tasks).take().unwrap_or_default();
        let limit = self.inner.opts.close_timeout + Duration::from_secs(1);
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(limit, t).await.is_err() {
                abort.abort();
            }
        }
        let mut slots = lock(&self.inner.slots);
        let before = copies_of(&slots);
        for e in slots.iter_mut() {
            e.slot.on_stopped();
            e.conn = None;
        }
        let after = copies_of(&slots);
        drop(slots);
        super::status::log_state_change(&self.inner.cfg.name, &before, &after);
        self.inner.bump();
    }
}

impl Inner {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn last_error_locked(&self, slots: &[SlotEntry]) -> Option<String> {
        let copies: Vec<Slot> = slots.iter().map(|e| e.slot.clone()).collect();
        state::last_error(&copies).map(str::to_owned)
    }

    fn not_ready(&self, waited: Duration) -> UpstreamError {
        let slots = lock(&self.slots);
        // The typed failure of the slot whose failure is the most recent, as `last_error` is.
        let cause = slots
            .iter()
            .filter_map(|e| Some((e.slot.failed_at?, e)))
            .max_by_key(|&(at, _)| at)
            .and_then(|(_, e)| e.failure.clone());
        UpstreamError::NotReady {
            upstream: self.cfg.name.clone(),
            waited,
            last_error: self
                .last_error_locked(&slots)
                .unwrap_or_else(|| "still connecting".into()),
            cause,
        }
    }

    /// The error of a pool whose every slot gave up: the most recent permanent failure.
    fn gave_up_error(&self, waited: Duration) -> UpstreamError {
        match self.not_ready(waited) {
            UpstreamError::NotReady {
                upstream,
                cause: Some(cause),
                ..
            } => UpstreamError::GaveUp { upstream, cause },
            other => other,
        }
    }

    fn shut_down(&self) -> UpstreamError {
        UpstreamError::ShutDown {
            upstream: self.cfg.name.clone(),
        }
    }

    /// Picks a connection and counts the stream on it before opening, so concurrent opens see
    /// each other's load.
    fn reserve(&self) -> Option<Lease> {
        let slots = lock(&self.slots);
        let size = self.size().get();
        let views: Vec<ConnView> = slots
            .iter()
            .enumerate()
            // A surplus slot (the pool shrank) takes no new streams while it drains.
            .map(|(i, e)| match e.conn.as_ref().filter(|_| i < size) {
                Some(c) => ConnView {
                    healthy: c.healthy(),
                    open_streams: c.open_streams.load(Ordering::Relaxed),
                },
                None => ConnView {
                    healthy: false,
                    open_streams: 0,
                },
            })
            .collect();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let i = state::pick_from(&views, start)?;
        let conn = slots.get(i)?.conn.clone()?;
        Some(Lease::new(conn, self.totals.clone()))
    }

    /// Records a failed connect on slot `index`: the text for status, the error for exit codes.
    /// Returns the backoff delay, or `None` when the slot gave up (a permanent error on every
    /// target); the pool says so once, when its last slot gives up.
    fn connect_failed(&self, index: usize, target: &str, e: ConnectError) -> Option<Duration> {
        let text = e.to_string();
        let permanent = e.is_permanent();
        let credentials = e.credentials_problem().is_some();
        let (policy, retry) = (self.opts.backoff, self.opts.credentials_retry);
        let now = Instant::now();
        let (delay, all_gave_up, before, after) = {
            let mut slots = lock(&self.slots);
            let before = copies_of(&slots);
            let delay = slots.get_mut(index).and_then(|s| {
                s.failure = Some(Arc::new(e));
                if credentials {
                    Some(s.slot.on_credentials_expired(now, text.clone(), retry))
                } else if permanent {
                    s.slot
                        .on_permanent_failure(now, text.clone(), &policy, unit())
                } else {
                    Some(s.slot.on_connect_failed(now, text.clone(), &policy, unit()))
                }
            });
            let after = copies_of(&slots);
            let all = delay.is_none() && state::gave_up(&after);
            (delay, all, before, after)
        };
        // A failure can be the pool's state change (connecting → down): one line for it too.
        super::status::log_state_change(&self.cfg.name, &before, &after);
        self.bump();
        let name = &self.cfg.name;
        match delay {
            Some(d) if credentials => {
                tracing::warn!(upstream = %name, "connection {index}: {text}; trying again in {}s and on the next request", d.as_secs())
            }
            Some(d) => {
                tracing::warn!(upstream = %name, "connection {index} to {target} failed: {text}; retrying in {:.1}s", d.as_secs_f64())
            }
            None if all_gave_up => {
                tracing::error!(upstream = %name, "not retrying, this will not fix itself: {text}")
            }
            None => tracing::debug!(upstream = %name, "connection {index} gave up: {text}"),
        }
        delay
    }

    /// Changes slot `index` and wakes the waiters; logs the pool's state change, if any.
    fn update<R>(&self, index: usize, f: impl FnOnce(&mut SlotEntry) -> R) -> Option<R> {
        let mut slots = lock(&self.slots);
        let before = copies_of(&slots);
        let r = slots.get_mut(index).map(f);
        let after = copies_of(&slots);
        drop(slots);
        super::status::log_state_change(&self.cfg.name, &before, &after);
        self.bump();
        r
    }

    async fn api(&self) -> Arc<SsmApi> {
        self.api
            .get_or_init(|| async { Arc::new(SsmApi::new(&self.aws).await) })
            .await
            .clone()
    }

    /// Resolves the slot's target and connects to it.
    async fn connect(&self, index: usize, target_name: &str) -> Result<Bastion, ConnectError> {
        let api = self.api().await;
        let instance = target::resolve(&api, target_name).await?;
        self.update(index, |e| e.instance = Some(instance.clone()));
        let pushed;
        let ssh = if self.login.instance_connect {
            let eic = self
                .eic
                .get_or_init(|| InstanceConnect::new(&self.aws))
                .await;
            pushed = connect::push_ephemeral_key(eic, &instance, &self.ssh).await?;
            &pushed
        } else {
            &self.ssh
        };
        connect::dial(
            api,
            &instance,
            self.login.port,
            ssh,
            self.opts.session.clone(),
        )
        .await
    }
}

/// The status of slot `index`; the counters are those of its live connection, if any.
fn conn_status(index: usize, e: &SlotEntry, clock: &Clock, size: usize) -> ConnStatus {
    let conn = e.conn.as_deref();
    let draining = index >= size && conn.is_some();
    let phase = if draining {
        "draining"
    } else {
        e.slot.phase.label()
    };
    let load = |f: fn(&Conn) -> u64| conn.map_or(0, f);
    let (resumes, retransmits) = conn.map_or((0, 0), Conn::session_counters);
    ConnStatus {
        slot: index,
        phase: phase.to_owned(),
        instance: e.instance.clone(),
        session_id: conn.map(|c| c.session_id.clone()),
        uptime_secs: e.slot.up_since().map(|t| clock.age_secs(t)),
        open_streams: conn.map_or(0, |c| c.open_streams.load(Ordering::Relaxed)),
        streams_total: load(|c| c.streams_total.load(Ordering::Relaxed)),
        bytes_in: load(|c| c.bytes_in.load(Ordering::Relaxed)),
        bytes_out: load(|c| c.bytes_out.load(Ordering::Relaxed)),
        connects: e.slot.connects,
        reconnects: e.slot.reconnects(),
        resumes,
        retransmits,
        failures: e.slot.failures,
        last_error: e.slot.last_error.clone(),
        last_error_at: e.slot.failed_at.map(|t| clock.unix_secs(t)),
    }
}

fn copies_of(slots: &[SlotEntry]) -> Vec<Slot> {
    slots.iter().map(|e| e.slot.clone()).collect()
}

/// Uniform in `[0, 1)` for backoff jitter.
fn unit() -> f64 {
    rand::random::<f64>()
}
