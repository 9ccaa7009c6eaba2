//! [shell] The master's port forwards (`forwards:` in the config): each one a local listener
//! whose connections go to one destination, through an upstream of this master (its pool,
//! called directly) or through the forward's own SSM port sessions to an instance.
//!
//! Listeners are bound before the master reports ready, like the SOCKS listeners, so a busy
//! address is a start error naming the forward. A forward is named by its configured listen
//! address (`unix:PATH` for a socket), which is also what `reload` matches forwards by;
//! `connect`/`disconnect` take that name, or the bound address when several forwards listen on
//! port 0. A forward runs in one task that owns its listener and carrier: told to stop (by
//! `disconnect` or `reload`), it closes its sessions at once and hands the listener back, so a
//! changed forward restarts on the socket it already had; when the master stops, it closes the
//! listener, lets open connections finish within the drain, then terminates its sessions.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ServeError;
use crate::config::{Forward, Via};
use crate::control::proto::MasterPhase;
use crate::forward::listen::{ListenError, Listener};
use crate::forward::run::{accept_loop, Carrier, Through};
use crate::forward::sessions::{PortTarget, SessionSet, SlotWatch};
use crate::forward::stats::{ForwardState, ForwardStats, ForwardStatus};
use crate::ssm::api::{AwsSettings, SessionRequest, SsmApi};
use crate::upstream::{PoolState, PoolStatus, Upstreams};

/// A forward's listener, bound and not yet served.
pub struct BoundForward {
    cfg: Forward,
    listener: Listener,
}

impl BoundForward {
    /// The line `serve` prints for it.
    pub fn describe(&self) -> String {
        format!(
            "forwarding {} -> {} via {}",
            self.listener.address(),
            self.cfg.to,
            self.cfg.via
        )
    }
}

/// Binds every forward's listener, in config order.
pub async fn bind(forwards: &[Forward]) -> Result<Vec<BoundForward>, ServeError> {
    let mut out = Vec::new();
    for f in forwards {
        out.push(bind_one(f).await?);
    }
    Ok(out)
}

/// Binds one forward's listener. The config already refused remote addresses without
/// `allow_remote: true`, so the check is not repeated here.
pub async fn bind_one(f: &Forward) -> Result<BoundForward, ServeError> {
    match Listener::bind(&f.listen, true).await {
        Ok(listener) => Ok(BoundForward {
            cfg: f.clone(),
            listener,
        }),
        Err(e) => Err(ServeError::ForwardBind {
            forward: f.listen.to_string(),
            why: match e {
                ListenError::Bind { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        }),
    }
}

/// What every forward of a master shares with it.
#[derive(Clone)]
pub struct ForwardContext {
    pub upstreams: Arc<tokio::sync::RwLock<Upstreams>>,
    /// The SSM endpoint override of the master's pools (the `demo` simulator).
    pub endpoint_url: Option<String>,
    /// The config file's `proxy:` (the master's pools use the same).
    pub proxy: crate::proxy::ProxySetting,
    pub phase: watch::Receiver<MasterPhase>,
}

/// What the carrier of a running forward is, as far as `status` needs to know.
#[derive(Clone)]
enum CarrierView {
    /// Still being built (an instance name being looked up).
    Pending,
    Sessions(SlotWatch),
    Upstream(String),
    Unavailable(String),
}

/// A forward's task, while it runs.
struct Running {
    address: String,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Option<Listener>>>,
    view: Arc<Mutex<CarrierView>>,
}

impl Running {
    /// Stops the forward (its sessions terminated) and returns its listener, still bound.
    async fn stop(mut self) -> Option<Listener> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(t) => t.await.ok().flatten(),
            None => None,
        }
    }
}

/// One configured forward.
struct Entry {
    cfg: Forward,
    stats: Arc<ForwardStats>,
    run: Option<Running>,
}

impl Entry {
    fn new(cfg: Forward) -> Self {
        Self {
            cfg,
            stats: Arc::default(),
            run: None,
        }
    }

    fn name(&self) -> String {
        self.cfg.listen.to_string()
    }
}

/// The master's forwards, in config order.
#[derive(Default)]
pub struct ForwardSet {
    entries: Vec<Entry>,
}

/// What a name given to `connect`/`disconnect` picks among the forwards.
pub enum Lookup {
    Found(usize),
    NotFound,
    Ambiguous(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ForwardSet {
    /// Starts serving every bound forward.
    pub fn start(&mut self, bound: Vec<BoundForward>, ctx: &ForwardContext) {
        for b in bound {
            let mut e = Entry::new(b.cfg);
            e.run = Some(launch(&e, b.listener, ctx));
            self.entries.push(e);
        }
    }

    /// The forward `name` picks: its configured listen address, or its bound address.
    pub fn find(&self, name: &str) -> Lookup {
        let hits: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.name() == name)
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => return Lookup::Found(*i),
            [] => {}
            _ => {
                return Lookup::Ambiguous(format!(
                    "{} forwards listen on {name}; name one by its bound address (see `session-proxy status`)",
                    hits.len()
                ))
            }
        }
        let bound = self
            .entries
            .iter()
            .position(|e| e.run.as_ref().is_some_and(|r| r.address == name));
        bound.map_or(Lookup::NotFound, Lookup::Found)
    }

    /// Every forward's name, for an "unknown name" answer.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(Entry::name).collect()
    }

    pub fn name(&self, i: usize) -> Option<String> {
        self.entries.get(i).map(Entry::name)
    }

    pub fn config(&self, i: usize) -> Option<Forward> {
        self.entries.get(i).map(|e| e.cfg.clone())
    }

    /// Takes forward `i`'s task out (to stop it without holding the set's lock).
    fn take_running(&mut self, i: usize) -> Option<Running> {
        self.entries.get_mut(i).and_then(|e| e.run.take())
    }

    /// Starts forward `i` on `listener`; returns its bound address.
    fn start_one(&mut self, i: usize, listener: Listener, ctx: &ForwardContext) -> Option<String> {
        let e = self.entries.get_mut(i)?;
        let r = launch(e, listener, ctx);
        let address = r.address.clone();
        e.run = Some(r);
        Some(address)
    }

    /// The forwards' tasks, for the master's drain (each ends once its connections have).
    pub fn take_tasks(&mut self) -> Vec<JoinHandle<Option<Listener>>> {
        self.entries
            .iter_mut()
            .filter_map(|e| e.run.as_mut().and_then(|r| r.task.take()))
            .collect()
    }

    /// One status row per forward; `pools` tells how a forward's upstream is doing.
    pub fn status(&self, pools: &[PoolStatus]) -> Vec<ForwardStatus> {
        self.entries.iter().map(|e| status(e, pools)).collect()
    }
}

/// Stops forward `i` of `set` and returns its listener (none when it was not running).
pub async fn stop(set: &Mutex<ForwardSet>, i: usize) -> Option<Listener> {
    let running = lock(set).take_running(i);
    match running {
        Some(r) => r.stop().await,
        None => None,
    }
}

/// (Re)starts forward `i`: on its current listener (stopping it first), else bound anew.
/// Returns the bound address.
pub async fn restart(
    set: &Mutex<ForwardSet>,
    i: usize,
    ctx: &ForwardContext,
) -> Result<String, ServeError> {
    let listener = match stop(set, i).await {
        Some(l) => l,
        None => {
            let cfg = lock(set).config(i);
            let Some(cfg) = cfg else {
                return Err(ServeError::ForwardBind {
                    forward: format!("#{i}"),
                    why: "it is no longer configured (a reload removed it)".into(),
                });
            };
            bind_one(&cfg).await?.listener
        }
    };
    Ok(lock(set).start_one(i, listener, ctx).unwrap_or_default())
}

/// Turns the running forwards (`old` config) into `new`'s: kept ones go on untouched, changed
/// ones restart on the socket they had, removed ones stop, and added ones start on `fresh`
/// (bound beforehand by the caller: `fresh[k]` for each `new[k]` that `matched` to nothing).
pub async fn reload(
    set: &Mutex<ForwardSet>,
    new: &[Forward],
    matched: &[Option<usize>],
    fresh: Vec<BoundForward>,
    ctx: &ForwardContext,
) {
    // Stop what changes or goes, keeping the listeners of changed ones.
    let (doomed, old_len) = {
        let mut s = lock(set);
        let len = s.entries.len();
        let keep = |i: usize| {
            new.iter()
                .zip(matched)
                .any(|(n, m)| *m == Some(i) && s.entries.get(i).is_some_and(|e| e.cfg == *n))
        };
        let doomed: Vec<usize> = (0..len).filter(|&i| !keep(i)).collect();
        let taken: Vec<(usize, Option<Running>)> =
            doomed.iter().map(|&i| (i, s.take_running(i))).collect();
        (taken, len)
    };
    let mut listeners: Vec<Option<Listener>> = (0..old_len).map(|_| None).collect();
    for (i, r) in doomed {
        if let (Some(r), Some(slot)) = (r, listeners.get_mut(i)) {
            *slot = r.stop().await;
        }
    }
    let mut s = lock(set);
    let mut old: Vec<Option<Entry>> = std::mem::take(&mut s.entries)
        .into_iter()
        .map(Some)
        .collect();
    let mut fresh = fresh.into_iter();
    for (n, m) in new.iter().zip(matched) {
        let kept = m.and_then(|i| old.get_mut(i).and_then(Option::take));
        let (entry, listener) = match kept {
            Some(e) if e.cfg == *n => (e, None),
            // Changed: restart on its listener; a disconnected one stays down.
            Some(_) => {
                let l = m.and_then(|i| listeners.get_mut(i).and_then(Option::take));
                (Entry::new(n.clone()), l)
            }
            None => (Entry::new(n.clone()), fresh.next().map(|b| b.listener)),
        };
        let mut entry = entry;
        if let Some(l) = listener {
            entry.run = Some(launch(&entry, l, ctx));
        }
        s.entries.push(entry);
    }
}

/// Binds, in order, the forwards of `new` that keep no running one (`matched[k]` is `None`).
pub async fn bind_unmatched(
    new: &[Forward],
    matched: &[Option<usize>],
) -> Result<Vec<BoundForward>, ServeError> {
    let mut fresh = Vec::new();
    for (f, m) in new.iter().zip(matched) {
        if m.is_none() {
            fresh.push(bind_one(f).await?);
        }
    }
    Ok(fresh)
}

/// Spawns the task that serves `e` on `listener`.
fn launch(e: &Entry, listener: Listener, ctx: &ForwardContext) -> Running {
    let address = listener.address().to_string();
    let (stop, stop_rx) = watch::channel(false);
    let view = Arc::new(Mutex::new(CarrierView::Pending));
    let label: Arc<str> = format!("{} -> {} via {}", address, e.cfg.to, e.cfg.via).into();
    let task = tokio::spawn(serve_forward(
        listener,
        e.cfg.clone(),
        ctx.clone(),
        label,
        e.stats.clone(),
        view.clone(),
        stop_rx,
    ));
    Running {
        address,
        stop,
        task: Some(task),
        view,
    }
}

/// One forward's life: build the carrier, accept until told to stop or the master stops, then
/// terminate the carrier's sessions. Returns the listener when told to stop (the caller may
/// restart on it); when the master stops, the listener closes at once and open connections
/// get the drain to finish.
async fn serve_forward(
    listener: Listener,
    cfg: Forward,
    ctx: ForwardContext,
    label: Arc<str>,
    stats: Arc<ForwardStats>,
    view: Arc<Mutex<CarrierView>>,
    stop: watch::Receiver<bool>,
) -> Option<Listener> {
    let mut phase = ctx.phase.clone();
    let mut stop_wait = stop.clone();
    let built = tokio::select! {
        c = carrier(&cfg, &ctx) => Some(c),
        _ = stop_wait.wait_for(|s| *s) => None,
        _ = phase.wait_for(|p| *p != MasterPhase::Running) => None,
    };
    let Some(mut carrier) = built else {
        return (*stop.borrow()).then_some(listener);
    };
    *lock(&view) = match &carrier {
        Carrier::Sessions(set) => CarrierView::Sessions(set.watch()),
        Carrier::Upstream(t) => CarrierView::Upstream(t.name.clone()),
        Carrier::Master { upstream, .. } => CarrierView::Upstream(upstream.clone()),
        Carrier::Unavailable(why) => CarrierView::Unavailable(why.clone()),
    };
    tracing::info!("forward {label}: listening");
    tokio::select! {
        () = accept_loop(&listener, &mut carrier, &label, &stats, stop.clone()) => {}
        _ = phase.wait_for(|p| *p != MasterPhase::Running) => {}
    }
    if *stop.borrow() {
        carrier.stop().await;
        tracing::info!("forward {label}: stopped");
        return Some(listener);
    }
    drop(listener);
    // The master is stopping: open connections get the drain, then the sessions end. The
    // count is polled: a drain happens once per master, and a tenth of a second is nothing
    // next to its grace period.
    let drained = async {
        while stats.open() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        () = drained => {}
        _ = phase.wait_for(|p| *p == MasterPhase::Closing) => {}
    }
    carrier.stop().await;
    None
}

/// How `cfg`'s connections are carried: an upstream of this master, or port sessions to the
/// instance (looked up by name first when it is not an id). A failed lookup leaves the forward
/// `failed` until `connect` restarts it, rather than querying the API for every connection.
async fn carrier(cfg: &Forward, ctx: &ForwardContext) -> Carrier {
    let host = cfg.to.host.dial_text();
    match &cfg.via {
        Via::Upstream(name) => Carrier::Upstream(Through {
            upstreams: ctx.upstreams.clone(),
            name: name.clone(),
            host,
            port: cfg.to.port,
        }),
        Via::Instance {
            target,
            profile,
            region,
            sessions,
        } => {
            let settings = AwsSettings {
                profile: profile.clone(),
                region: region.clone(),
                credentials: None,
                endpoint_url: ctx.endpoint_url.clone(),
                proxy: ctx.proxy.clone(),
            };
            let api = Arc::new(SsmApi::new(&settings).await);
            match crate::ssm::target::resolve(&api, target.as_str()).await {
                Ok(instance) => Carrier::Sessions(SessionSet::start(
                    PortTarget {
                        api,
                        request: SessionRequest::port_forward(&instance, &host, cfg.to.port),
                        label: cfg.to.to_string(),
                    },
                    sessions.get(),
                )),
                Err(e) => Carrier::Unavailable(format!(
                    "instance {target}: {e}; fix via: and `session-proxy connect` the forward"
                )),
            }
        }
    }
}

/// The status row of `e`.
fn status(e: &Entry, pools: &[PoolStatus]) -> ForwardStatus {
    let s = e.stats.snapshot();
    let view = e.run.as_ref().map(|r| lock(&r.view).clone());
    let mut row = ForwardStatus {
        name: e.name(),
        listen: e.run.as_ref().map(|r| r.address.clone()),
        to: e.cfg.to.to_string(),
        via: e.cfg.via.to_string(),
        state: ForwardState::Stopped,
        sessions_up: 0,
        sessions_total: 0,
        session_ids: Vec::new(),
        open_connections: s.open,
        connections_total: s.total,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        last_error: s.last_error,
        last_error_at: s.last_error_at,
    };
    let (state, why) = match view {
        None => (ForwardState::Stopped, None),
        Some(CarrierView::Pending) => (ForwardState::Connecting, None),
        Some(CarrierView::Unavailable(why)) => (ForwardState::Failed, Some(why)),
        Some(CarrierView::Upstream(name)) => upstream_state(&name, pools),
        Some(CarrierView::Sessions(w)) => {
            let slots = w.states();
            row.sessions_total = slots.len();
            row.sessions_up = slots.iter().filter(|s| s.opener.is_some()).count();
            row.session_ids = slots.iter().filter_map(|s| s.session_id.clone()).collect();
            let why = slots.iter().find_map(|s| s.last_error.clone());
            if row.sessions_up > 0 {
                (ForwardState::Up, None)
            } else if slots.iter().all(|s| s.permanent) {
                (ForwardState::Failed, why)
            } else {
                (ForwardState::Connecting, why)
            }
        }
    };
    row.state = state;
    if row.last_error.is_none() {
        row.last_error = why;
    }
    row
}

/// A forward through upstream `name` is as up as that upstream's pool.
fn upstream_state(name: &str, pools: &[PoolStatus]) -> (ForwardState, Option<String>) {
    let Some(p) = pools.iter().find(|p| p.name == name) else {
        return (
            ForwardState::Failed,
            Some(format!("upstream {name} is not configured")),
        );
    };
    match p.state {
        // A lazy upstream connects on the forward's first connection.
        PoolState::Up | PoolState::Degraded | PoolState::Idle => (ForwardState::Up, None),
        PoolState::Connecting => (ForwardState::Connecting, p.last_error.clone()),
        PoolState::Down | PoolState::CredentialsExpired => {
            (ForwardState::Failed, p.last_error.clone())
        }
        PoolState::Stopped => (
            ForwardState::Failed,
            Some(format!("upstream {name} is disconnected")),
        ),
    }
}
