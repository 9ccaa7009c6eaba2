//! The relay between one client WebSocket (replaced when the client resumes) and the agent's
//! in-process link, in the same shape as the driver: a struct that owns the state, a short loop
//! that waits for the next event ([`Relay::poll_step`]), and one method per event. Faults are
//! applied per frame on the way through; delayed frames wait in a time-ordered heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::{channel_closed, close_with, control, RelayEnd, RelayParams};
use crate::sim::faults::{DirFaults, FaultCounts, Faults};
use crate::sim::memlink::{LinkClosed, MemLink};
use crate::ssm::driver::{BoxFuture, Outbox, WsStream};
use crate::ssm::message::MessageType;

/// Bytes a lane may hold (queued for its sink plus held back by faults) before the relay stops
/// reading the side that feeds it. A peer that never reads then stalls its sender, as a TCP
/// window would, instead of growing the simulator without limit (measured before this cap: a
/// client flooding without reading took the simulator from 17 to 398 MB). 1 MiB is a second of
/// the real agent's output and far more than loopback needs in flight.
pub(super) const LANE_CAP: usize = 1 << 20;

/// Frames held back by a delay or reorder verdict, released in time order.
#[derive(Default)]
struct Delayed {
    heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    n: u64,
    bytes: usize,
}

impl Delayed {
    fn push(&mut self, at: Instant, frame: &[u8]) {
        self.n += 1;
        self.bytes += frame.len();
        self.heap.push(Reverse((at, self.n, frame.to_vec())));
    }
    fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }
    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_at()? <= now {
            let f = self.heap.pop().map(|Reverse((_, _, f))| f)?;
            self.bytes = self.bytes.saturating_sub(f.len());
            Some(f)
        } else {
            None
        }
    }
}

/// One direction: the queue to its sink, the frames held back, and the faults applied.
#[derive(Default)]
struct Lane {
    out: Outbox,
    delayed: Delayed,
    /// Bytes handed to `out` since it was last idle: an upper bound on what it holds (the
    /// outbox does not count bytes), reset once it has flushed everything.
    queued: usize,
}

impl Lane {
    fn push(&mut self, frame: Bytes) {
        self.queued += frame.len();
        self.out.push(WsMessage::Binary(frame));
    }

    /// Whether the lane holds [`LANE_CAP`] bytes or more: then its feeding side is not read.
    fn is_full(&mut self) -> bool {
        if self.out.is_idle() {
            self.queued = 0;
        }
        self.queued + self.delayed.bytes >= LANE_CAP
    }

    /// Queues `frame` as the fault plan decides: dropped, copied, delayed or passed on.
    fn apply(&mut self, faults: &mut Faults, f: &DirFaults, frame: &[u8], now: Instant) {
        let v = faults.decide(f);
        for _ in 0..v.copies {
            // Behind a delayed frame, later ones wait too, so a delay is not a reorder.
            if v.delay.is_zero() && self.delayed.heap.is_empty() {
                self.push(Bytes::copy_from_slice(frame));
            } else {
                self.delayed.push(now + v.delay, frame);
            }
        }
    }

    /// Moves delayed frames that are due into the queue (dropped if `open` is false).
    fn release_due(&mut self, now: Instant, open: bool) {
        while let Some(f) = self.delayed.pop_due(now) {
            if open {
                self.push(Bytes::from(f));
            }
        }
    }
}

/// The links a relay starts with.
pub(super) struct Links {
    pub(super) client: WsStream,
    pub(super) agent: MemLink,
    /// Resumed client WebSockets.
    pub(super) attach: mpsc::Receiver<WsStream>,
    /// Resolves when the session is terminated (TerminateSession API).
    pub(super) terminated: BoxFuture<()>,
}

enum Step {
    Terminated,
    FromClient(Option<Result<WsMessage, WsError>>),
    FromAgent(Option<Result<WsMessage, LinkClosed>>),
    /// Boxed: a WebSocket is large next to the other steps.
    Attached(Option<Box<WsStream>>),
    ClientWritten(Result<(), WsError>),
    AgentWritten(Result<(), LinkClosed>),
    Timeout,
}

pub(super) struct Relay {
    p: RelayParams,
    faults: Faults,
    counts: Arc<Mutex<FaultCounts>>,
    client: Option<WsStream>,
    agent: MemLink,
    attach: mpsc::Receiver<WsStream>,
    terminated: BoxFuture<()>,
    to_client: Lane,
    to_agent: Lane,
    bytes_since_kill: u64,
    next_kill: Option<Instant>,
    /// The client's WebSocket dropped at this instant and has not come back.
    gone_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// Alternates which side is read first, so neither starves the other.
    agent_first: bool,
}

impl Relay {
    pub(super) fn new(p: RelayParams, links: Links, counts: Arc<Mutex<FaultCounts>>) -> Self {
        let now = Instant::now();
        Self {
            faults: Faults::new(p.plan.seed, p.salt),
            next_kill: p.plan.kill_every.map(|d| now + d),
            p,
            counts,
            client: Some(links.client),
            agent: links.agent,
            attach: links.attach,
            terminated: links.terminated,
            to_client: Lane::default(),
            to_agent: Lane::default(),
            bytes_since_kill: 0,
            gone_since: None,
            timer: Box::pin(tokio::time::sleep_until(now.into())),
            agent_first: false,
        }
    }

    /// Relays until the session ends, then tells the client `channel_closed`.
    pub(super) async fn run(mut self, agent_output: oneshot::Receiver<String>) -> RelayEnd {
        let end = loop {
            self.publish_counts();
            let now = Instant::now();
            self.to_agent.release_due(now, true);
            self.to_client.release_due(now, self.client.is_some());
            if self.kill_due(now) {
                self.kill_client(now).await;
            }
            let step = poll_fn(|cx| self.poll_step(cx)).await;
            if let Some(end) = self.on_step(step) {
                break end;
            }
        };
        self.publish_counts();
        self.close(&end, agent_output).await;
        end
    }

    fn on_step(&mut self, step: Step) -> Option<RelayEnd> {
        match step {
            Step::Terminated => return Some(RelayEnd::Terminated),
            Step::FromClient(m) => self.on_client_message(m),
            Step::FromAgent(m) => return self.on_agent_message(m),
            Step::Attached(Some(ws)) => self.on_client_attached(*ws),
            Step::Attached(None) => return Some(RelayEnd::ClientGone),
            Step::ClientWritten(r) => {
                if r.is_err() {
                    self.on_client_lost(Instant::now());
                }
            }
            Step::AgentWritten(r) => return r.err().map(|_| RelayEnd::AgentDone),
            Step::Timeout => return self.on_timeout(),
        }
        None
    }

    /// Waits for the next event: termination first, then both sides' input (alternating; a
    /// side is not read while the lane it feeds is full), resumed clients, output, and the one
    /// timer. A full lane empties through output or the timer, both of which wake this loop.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if self.terminated.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Step::Terminated);
        }
        self.agent_first = !self.agent_first;
        let input = if self.agent_first {
            self.poll_agent_in(cx).or_else(|| self.poll_client_in(cx))
        } else {
            self.poll_client_in(cx).or_else(|| self.poll_agent_in(cx))
        };
        if let Some(s) = input {
            return Poll::Ready(s);
        }
        if let Poll::Ready(ws) = self.attach.poll_recv(cx) {
            return Poll::Ready(Step::Attached(ws.map(Box::new)));
        }
        if let Poll::Ready(s) = self.poll_output(cx) {
            return Poll::Ready(s);
        }
        self.poll_timer(cx).map(|()| Step::Timeout)
    }

    /// The client is not read while either lane is full: its input feeds the agent, and the
    /// agent answers every message (acks at least) toward the client. A client that sends
    /// without reading would otherwise keep the agent answering into queues that never drain.
    fn poll_client_in(&mut self, cx: &mut Context<'_>) -> Option<Step> {
        if self.to_agent.is_full() || self.to_client.is_full() {
            return None;
        }
        let ws = self.client.as_mut()?;
        match Pin::new(ws).poll_next(cx) {
            Poll::Ready(m) => Some(Step::FromClient(m)),
            Poll::Pending => None,
        }
    }

    fn poll_agent_in(&mut self, cx: &mut Context<'_>) -> Option<Step> {
        if self.to_client.is_full() {
            return None;
        }
        match self.agent.poll_next_unpin(cx) {
            Poll::Ready(m) => Some(Step::FromAgent(m)),
            Poll::Pending => None,
        }
    }

    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if let Some(ws) = self
            .client
            .as_mut()
            .filter(|_| !self.to_client.out.is_idle())
        {
            if let Poll::Ready(r) = self.to_client.out.poll_pump(cx, ws) {
                return Poll::Ready(Step::ClientWritten(r));
            }
        }
        if self.to_agent.out.is_idle() {
            return Poll::Pending;
        }
        self.to_agent
            .out
            .poll_pump(cx, &mut self.agent)
            .map(Step::AgentWritten)
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let wake = [
            self.to_agent.delayed.next_at(),
            self.to_client.delayed.next_at(),
            self.next_kill,
            self.gone_since.map(|t| t + self.p.idle_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(at) = wake.map(tokio::time::Instant::from_std) else {
            return Poll::Pending;
        };
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll(cx)
    }

    fn on_client_message(&mut self, m: Option<Result<WsMessage, WsError>>) {
        let now = Instant::now();
        let plan = &self.p.plan.to_agent;
        match m {
            Some(Ok(WsMessage::Binary(b))) => {
                self.bytes_since_kill += b.len() as u64;
                self.to_agent.apply(&mut self.faults, plan, &b, now);
            }
            Some(Ok(WsMessage::Text(t))) => {
                self.to_agent
                    .apply(&mut self.faults, plan, t.as_bytes(), now);
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => self.on_client_lost(now),
        }
    }

    fn on_agent_message(&mut self, m: Option<Result<WsMessage, LinkClosed>>) -> Option<RelayEnd> {
        match m {
            Some(Ok(WsMessage::Binary(b))) => {
                // While the client is away the agent is paused; anything it still sends is lost,
                // as with the real service.
                if self.client.is_some() {
                    self.bytes_since_kill += b.len() as u64;
                    let plan = &self.p.plan.to_client;
                    self.to_client
                        .apply(&mut self.faults, plan, &b, Instant::now());
                }
                None
            }
            Some(Ok(_)) => None,
            Some(Err(_)) | None => Some(RelayEnd::AgentDone),
        }
    }

    fn on_client_attached(&mut self, ws: WsStream) {
        self.client = Some(ws);
        self.to_client.out.clear();
        self.gone_since = None;
        self.to_agent
            .out
            .push(control(MessageType::StartPublication));
    }

    /// The client's WebSocket is gone: pause the agent until the client resumes.
    fn on_client_lost(&mut self, now: Instant) {
        self.client = None;
        self.to_client.out.clear();
        self.to_agent
            .out
            .push(control(MessageType::PausePublication));
        self.gone_since = Some(now);
    }

    fn on_timeout(&mut self) -> Option<RelayEnd> {
        self.gone_since
            .is_some_and(|t| t.elapsed() >= self.p.idle_timeout)
            .then_some(RelayEnd::ClientGone)
    }

    fn kill_due(&self, now: Instant) -> bool {
        let by_bytes = self
            .p
            .plan
            .kill_after_bytes
            .is_some_and(|n| self.bytes_since_kill >= n);
        self.client.is_some() && (by_bytes || self.next_kill.is_some_and(|t| now >= t))
    }

    /// The fault plan's WebSocket kill: flush briefly, close the client's WebSocket.
    async fn kill_client(&mut self, now: Instant) {
        self.faults.counts.kills += 1;
        self.bytes_since_kill = 0;
        self.next_kill = self.p.plan.kill_every.map(|d| now + d);
        if let Some(mut ws) = self.client.take() {
            let pump = self.to_client.out.pump(&mut ws);
            let _ = tokio::time::timeout(Duration::from_millis(200), pump).await;
            close_with(&mut ws, CloseCode::Normal, "Bye").await;
        }
        self.on_client_lost(now);
    }

    fn publish_counts(&self) {
        if let Ok(mut c) = self.counts.lock() {
            *c = self.faults.counts.clone();
        }
    }

    /// Lets the agent's last frames reach the client, then says channel_closed.
    async fn close(&mut self, end: &RelayEnd, agent_output: oneshot::Receiver<String>) {
        let Some(mut ws) = self.client.take() else {
            return;
        };
        if *end == RelayEnd::AgentDone {
            while let Ok(Some(Ok(WsMessage::Binary(b)))) =
                tokio::time::timeout(Duration::from_millis(50), self.agent.next()).await
            {
                self.to_client.out.push(WsMessage::Binary(b));
            }
        }
        let output = match end {
            RelayEnd::AgentDone => tokio::time::timeout(Duration::from_secs(1), agent_output)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            RelayEnd::Terminated | RelayEnd::ClientGone => String::new(),
        };
        let out = &mut self.to_client.out;
        out.push(channel_closed(&self.p.session_id, &output));
        let _ = tokio::time::timeout(Duration::from_secs(2), out.pump(&mut ws)).await;
        close_with(&mut ws, CloseCode::Normal, "session closed").await;
    }
}
