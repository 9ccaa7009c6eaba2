//! The SSM port sessions behind one forward: `--sessions N` slots, each keeping one session up.
//! A WebSocket drop is resumed inside the session; when a session itself dies, its slot starts
//! a new one (with backoff) and the forward's listener never notices. Local connections go to
//! the live session carrying the fewest streams, so parallel connections spread over the
//! sessions and get past the ~1 MB/s a single session carries.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::port::{Opener, PortConfig, PortLayer, MUX_CLIENT_VERSION};
use crate::ssm::api::{SessionRequest, SsmApi};
use crate::ssm::driver::{DriverError, End};
use crate::ssm::session::{Session, SessionOptions};

/// First wait before a failed slot tries again; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session that lived this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// Where a forward's sessions go and how they are opened.
#[derive(Clone)]
pub struct PortTarget {
    pub api: Arc<SsmApi>,
    pub request: SessionRequest,
    /// `host:port` as the instance sees it, for messages.
    pub label: String,
}

/// What a slot is doing, for `status` and for the give-up decision.
#[derive(Debug, Clone, Default)]
pub struct SlotState {
    /// The live session's opener.
    pub opener: Option<Opener>,
    pub session_id: Option<String>,
    pub sessions_started: u64,
    pub last_error: Option<String>,
    /// The last failure will not fix itself (unknown instance, bad credentials, ...).
    pub permanent: bool,
}

/// The forward's sessions.
pub struct SessionSet {
    slots: Vec<watch::Receiver<SlotState>>,
    /// Behind a lock so a set shared by many connections (an `ssm-port` upstream's
    /// destination) can be stopped through a shared reference.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl SessionSet {
    /// Starts `n` slots towards `target`.
    pub fn start(target: PortTarget, n: usize) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..n.max(1) {
            let (tx, rx) = watch::channel(SlotState::default());
            slots.push(rx);
            let slot = Slot {
                index: i,
                target: target.clone(),
                state: tx,
                stop: stop_rx.clone(),
            };
            tasks.push(tokio::spawn(slot.run()));
        }
        Self {
            slots,
            tasks: std::sync::Mutex::new(tasks),
            stop,
        }
    }

    /// The live session with the fewest open streams, waiting up to `within` for one.
    pub async fn pick(&self, within: Duration) -> Option<Opener> {
        let deadline = tokio::time::Instant::now() + within;
        // Clones taken before each look, so a change after the look still wakes the wait.
        let mut watch = self.slots.clone();
        loop {
            if let Some(o) = self.least_loaded() {
                return Some(o);
            }
            if self.all_permanent() {
                return None;
            }
            let changed =
                futures_util::future::select_all(watch.iter_mut().map(|s| Box::pin(s.changed())));
            match tokio::time::timeout_at(deadline, changed).await {
                // A slot that ended (the set is stopping) will not bring a session.
                Err(_) | Ok((Err(_), _, _)) => return None,
                Ok((Ok(()), _, _)) => {}
            }
        }
    }

    fn least_loaded(&self) -> Option<Opener> {
        self.slots
            .iter()
            .filter_map(|s| s.borrow().opener.clone())
            .filter(|o| !o.is_closed())
            .min_by_key(|o| o.stats().streams_open.load(Ordering::Relaxed))
    }

    /// Every slot failed with an error that will not fix itself.
    pub fn all_permanent(&self) -> bool {
        self.slots.iter().all(|s| s.borrow().permanent)
    }

    /// A handle that reads the slots' states while the set itself is busy in a forward's
    /// accept loop (for the master's `status`).
    pub fn watch(&self) -> SlotWatch {
        SlotWatch(self.slots.clone())
    }

    /// Terminates every session (TerminateSession flag and API) and waits for the slots.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Reads a [`SessionSet`]'s slot states from elsewhere; see [`SessionSet::watch`].
#[derive(Clone)]
pub struct SlotWatch(Vec<watch::Receiver<SlotState>>);

impl SlotWatch {
    /// A snapshot of every slot.
    pub fn states(&self) -> Vec<SlotState> {
        self.0.iter().map(|s| s.borrow().clone()).collect()
    }
}

impl Drop for SessionSet {
    /// The backstop when a set is dropped without [`SessionSet::stop`] (a replaced upstream
    /// that still had destinations): its slots still terminate their sessions themselves.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// One slot: keeps one session up until told to stop.
struct Slot {
    index: usize,
    target: PortTarget,
    state: watch::Sender<SlotState>,
    stop: watch::Receiver<bool>,
}

impl Slot {
    async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        while !*self.stop.borrow() {
            let started = Instant::now();
            let ok = self.one_session().await;
            if *self.stop.borrow() {
                break;
            }
            if ok && started.elapsed() >= HEALTHY {
                backoff = FIRST_BACKOFF;
            }
            if self.state.borrow().permanent {
                // Nothing to retry; the forward reports it and stays up for the next attempt
                // only if told to (`connect`), so the slot waits for the stop.
                let _ = self.stop.wait_for(|s| *s).await;
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.wait_for(|s| *s) => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs one session to its end; false when it could not start.
    async fn one_session(&mut self) -> bool {
        let (layer, opener) = PortLayer::client(PortConfig::default());
        let mut opts = SessionOptions::default();
        opts.channel.client_version = MUX_CLIENT_VERSION.to_owned();
        let t = &self.target;
        let session = match Session::start_layer(t.api.clone(), &t.request, layer, opts).await {
            Ok(s) => s,
            Err(e) => {
                let permanent = e.is_permanent();
                tracing::warn!(
                    "forward to {} (session {}): could not start a session: {e}",
                    t.label,
                    self.index + 1
                );
                self.state.send_modify(|s| {
                    s.last_error = Some(e.to_string());
                    s.permanent = permanent;
                });
                return false;
            }
        };
        tracing::info!(session_id = %session.session_id, "forward to {}: session up", t.label);
        let stats = opener.stats().clone();
        self.state.send_modify(|s| {
            s.opener = Some(opener);
            s.session_id = Some(session.session_id.clone());
            s.sessions_started += 1;
            s.permanent = false;
        });
        let mut status = session.status();
        let stopped = tokio::select! {
            _ = self.stop.wait_for(|s| *s) => true,
            _ = async { while status.changed().await.is_ok() {} } => false,
        };
        if stopped {
            session.request_stop().await;
        }
        let id = session.session_id.clone();
        let end = session.finish().await;
        let open = stats.streams_open.load(Ordering::Relaxed);
        let why = match &end {
            Ok(e) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let refused = refused_by_agent(&end);
        self.state.send_modify(|s| {
            s.opener = None;
            s.session_id = None;
            if !stopped {
                s.last_error = Some(refused.clone().unwrap_or_else(|| why.clone()));
                s.permanent = refused.is_some();
            }
        });
        if let Some(text) = refused {
            tracing::error!(
                "forward to {}: the instance refuses this destination: {text}",
                t.label
            );
        } else if !stopped {
            tracing::warn!(
                "forward to {}: session {id} ended ({why}); {open} open connection(s) closed; starting a new session",
                t.label
            );
        }
        true
    }
}

/// The agent's refusal of a destination it will never forward to (IMDS and the VPC's own
/// addresses, §7.5): it closes the channel with "Forwarding to IP address … is forbidden.".
/// Retrying cannot help.
pub fn refused_by_agent(end: &Result<End, DriverError>) -> Option<String> {
    match end {
        Ok(End::ChannelClosed { output }) if output.contains("is forbidden") => {
            Some(output.clone())
        }
        _ => None,
    }
}
