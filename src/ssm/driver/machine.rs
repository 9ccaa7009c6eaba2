//! The driver proper: a struct that owns the session's state, a short loop that waits for the
//! next thing that can happen ([`Driver::poll_step`]), and one method per event.
//!
//! Everything is polled from one task, in priority order (shutdown, commands, the link, the
//! app, timers), so a slow application never stops acknowledgements and a slow link never stops
//! reading (no write/write deadlock). One timer serves every deadline: the channel's, the next
//! resume attempt, pacing, pings, and the terminate and drain limits.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::app::{AppLayer, Outgoing};
use super::batch::{Batching, LowWater, LOW_WATER};
use super::error::{DriverError, ReconnectError};
use super::outbox::Outbox;
use super::pace::Pacer;
use super::port::{AppPort, Delivery};
use super::resume::Resume;
use super::{BoxFuture, Command, Control, End, Link, Options, Parts, Status, Transport};
use crate::ssm::channel::{Channel, DataKey, Event, Role};
use crate::ssm::kms::KmsError;
use crate::ssm::message;
use crate::ssm::payload::Flag;

/// How long `Terminate` waits for the TerminateSession flag to be acknowledged.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// At most this many link messages, or [`STEP_BYTES`] of them, are taken in one step. A batched
/// read brings a hundred messages at once, and a step for each (status publish, queue and
/// timer polls, bookkeeping) was a measurable share of the CPU per message; the caps keep one
/// step's share of the link small, whatever size of message a peer sends.
const STEP_MESSAGES: usize = 64;
const STEP_BYTES: usize = 64 * 1024;

/// Something that happened, found by [`Driver::poll_step`].
enum Step<L: Link> {
    Shutdown,
    Command(Option<Command>),
    /// Messages the link had ready, in `Driver::arrived`.
    WsMessages,
    LinkWritten(Result<(), L::Err>),
    AppOpened(io::Result<()>),
    AppReadable(io::Result<Outgoing>),
    AppDelivered(Delivery),
    /// The layer did work of its own; nothing to do but look again.
    AppProgress,
    Timeout,
    Reconnected(Result<L, ReconnectError>),
    /// The KMS call the channel waited for finished.
    KeyReady(Result<DataKey, KmsError>),
}

pub(super) struct Driver<P, T, L: Link> {
    ch: Channel,
    role: Role,
    app: AppPort<P>,
    pacer: Option<Pacer>,
    link: Option<L>,
    /// Whether the link's reads are batched (raised receive low-water mark).
    batching: Batching,
    outbox: Outbox,
    resume: Resume<L>,
    transport: T,
    opts: Options,
    /// None once every sender is gone (that counted as `Terminate`).
    commands: Option<mpsc::Receiver<Command>>,
    status_tx: watch::Sender<Status>,
    /// State the watchers care about (not the counters, which live in `ch`).
    status: Status,
    /// `status` changed since it was last published.
    status_changed: bool,
    shutdown: Option<BoxFuture<()>>,
    timer: Pin<Box<Sleep>>,
    /// When the current step was found: one clock reading serves the step's handler and the
    /// bookkeeping after it. A paced download is one step per message, and reading the clock
    /// again in each of those places was a measurable share of the CPU per message.
    woke: Instant,
    /// What the link gave in this step, oldest first; a close, an error or the end (`None`)
    /// is always last.
    arrived: Vec<Option<Result<WsMessage, L::Err>>>,
    next_ping: Instant,
    /// Terminate: end once the flag is acknowledged, or at this instant.
    terminating: Option<Instant>,
    /// Agent role, target closed: end once output is acknowledged, or at this instant.
    draining: Option<Instant>,
    /// The service sent channel_closed with this output.
    closed_output: Option<String>,
    ended: Option<Result<End, DriverError>>,
    /// The KMS call the channel waits for (`Event::KeyNeeded`), if any.
    key_job: Option<BoxFuture<Result<DataKey, KmsError>>>,
}

impl<P: AppLayer, T: Transport<L>, L: Link> Driver<P, T, L> {
    pub(super) fn new(parts: Parts<P, T, L>, control: Control) -> Self {
        let now = Instant::now();
        let opts = parts.opts;
        let mut d = Self {
            role: parts.channel.role(),
            ch: parts.channel,
            app: AppPort::new(parts.app, opts.io_buffer),
            pacer: opts.pace.map(|(every, chunk)| Pacer::new(every, chunk)),
            link: None,
            batching: Batching::default(),
            outbox: Outbox::default(),
            resume: Resume::new(),
            transport: parts.transport,
            commands: Some(control.commands),
            status_tx: control.status,
            status: Status::default(),
            status_changed: true,
            shutdown: Some(control.shutdown),
            timer: Box::pin(tokio::time::sleep_until(now.into())),
            woke: now,
            arrived: Vec::new(),
            next_ping: now + opts.ping_interval,
            opts,
            terminating: None,
            draining: None,
            closed_output: None,
            ended: None,
            key_job: None,
        };
        match parts.link {
            Some(l) => d.link = Some(l),
            None => {
                d.ch.on_disconnect();
                d.resume.on_lost(now);
            }
        }
        d
    }

    /// Runs until the session ends; returns how, and the link if it is still up.
    pub(super) async fn run(mut self) -> (Result<End, DriverError>, Option<L>) {
        loop {
            self.after_step().await;
            if let Some(end) = self.ended.take() {
                return self.finish(end).await;
            }
            self.publish_status();
            let step = poll_fn(|cx| self.poll_step(cx)).await;
            self.on_step(step);
        }
    }

    fn on_step(&mut self, step: Step<L>) {
        match step {
            Step::Shutdown => self.on_shutdown(),
            Step::Command(c) => self.on_command(c),
            Step::WsMessages => self.on_ws_messages(),
            Step::LinkWritten(r) => self.on_link_written(r),
            Step::AppOpened(r) => self.on_app_opened(r),
            Step::AppReadable(r) => self.on_app_readable(r),
            Step::AppDelivered(d) => self.on_app_delivered(d),
            Step::AppProgress => {}
            Step::Timeout => self.on_timeout(Instant::now()),
            Step::Reconnected(r) => self.on_reconnected(r),
            Step::KeyReady(r) => self.on_key_ready(r),
        }
    }

    /// Waits for the next event, in priority order.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step<L>> {
        // One clock reading for the whole step: the pacer's "not yet" (read_cap) and the timer
        // that wakes us for it (next_deadline) must agree, or a read slot passing between two
        // readings leaves no wake-up but the 30 s ping (a stalled paced transfer).
        let now = Instant::now();
        self.woke = now;
        if let Some(f) = self.shutdown.as_mut() {
            if f.as_mut().poll(cx).is_ready() {
                self.shutdown = None;
                return Poll::Ready(Step::Shutdown);
            }
        }
        if let Some(rx) = self.commands.as_mut() {
            if let Poll::Ready(c) = rx.poll_recv(cx) {
                if c.is_none() {
                    self.commands = None;
                }
                return Poll::Ready(Step::Command(c));
            }
        }
        if let Poll::Ready(s) = self.poll_link(cx) {
            return Poll::Ready(s);
        }
        if let Some(job) = self.key_job.as_mut() {
            if let Poll::Ready(r) = job.as_mut().poll(cx) {
                self.key_job = None;
                return Poll::Ready(Step::KeyReady(r));
            }
        }
        if let Poll::Ready(s) = self.poll_app(cx, now) {
            return Poll::Ready(s);
        }
        if self.poll_timer(cx, now).is_ready() {
            return Poll::Ready(Step::Timeout);
        }
        self.resume.poll(cx).map(Step::Reconnected)
    }

    fn poll_link(&mut self, cx: &mut Context<'_>) -> Poll<Step<L>> {
        let Some(link) = self.link.as_mut() else {
            return Poll::Pending;
        };
        let mut bytes = 0;
        while self.arrived.len() < STEP_MESSAGES && bytes < STEP_BYTES {
            let Poll::Ready(m) = Pin::new(&mut *link).poll_next(cx) else {
                break;
            };
            self.batching.on_message();
            let more = match &m {
                Some(Ok(m)) => {
                    bytes += m.len();
                    !m.is_close()
                }
                _ => false,
            };
            self.arrived.push(m);
            if !more {
                break;
            }
        }
        if !self.arrived.is_empty() {
            return Poll::Ready(Step::WsMessages);
        }
        let now = Instant::now();
        if let Some(change) = self.batching.on_dry(now) {
            Self::set_low_water(&mut self.batching, link, change);
        }
        if self.batching.is_batching() {
            self.outbox.release_held();
        }
        // Held acknowledgements wait for their deadline in `next_deadline`.
        if !self.outbox.is_due(now) {
            return Poll::Pending;
        }
        self.outbox.poll_pump(cx, link).map(Step::LinkWritten)
    }

    fn poll_app(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<Step<L>> {
        if let Poll::Ready(r) = self.app.poll_open(cx) {
            return Poll::Ready(Step::AppOpened(r));
        }
        let cap = self.read_cap(now);
        if let Poll::Ready(r) = self.app.poll_input(cx, cap) {
            return Poll::Ready(Step::AppReadable(r));
        }
        // Taken from the channel only now, once the link has run dry: a batched read then goes
        // to the application in one write, not its first message alone and then the rest.
        self.app.refill(&mut self.ch);
        if let Poll::Ready(d) = self.app.poll_delivery(cx) {
            return Poll::Ready(Step::AppDelivered(d));
        }
        self.app.poll_progress(cx).map(|()| Step::AppProgress)
    }

    /// Applies a batching decision to the link's socket.
    fn set_low_water(batching: &mut Batching, link: &mut L, change: LowWater) {
        let bytes = match change {
            LowWater::Raise => LOW_WATER,
            LowWater::Lower => 1,
        };
        if !link.set_read_low_water(bytes) && change == LowWater::Raise {
            batching.on_refused();
        }
    }

    /// How much application input the channel can take now (0: read nothing).
    fn read_cap(&self, now: Instant) -> usize {
        if self.terminating.is_some() {
            return 0;
        }
        let cap = self.ch.send_capacity().min(self.app.buffer_len());
        match &self.pacer {
            Some(p) if p.wait_until(now).is_some() => 0,
            Some(p) => p.cap(cap),
            None => cap,
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Some(at) = self.next_deadline(now) else {
            return Poll::Pending;
        };
        let at = tokio::time::Instant::from_std(at);
        let armed = self.timer.deadline();
        if at > armed {
            // tokio moves a timer later lazily: the old entry still wakes the task at the old
            // deadline, only to find it moved. A deadline that moves on with every batch (see
            // `batch`) made that a second wake-up per batch; a fresh timer wakes only when due
            // (dropping the old one takes it off the wheel).
            self.timer = Box::pin(tokio::time::sleep_until(at));
        } else if at < armed {
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll(cx)
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let pace = self
            .pacer
            .as_ref()
            .filter(|_| self.app.read_open)
            .and_then(|p| p.wait_until(now));
        let ping = self.link.as_ref().map(|_| self.next_ping);
        let acks = self.link.as_ref().and_then(|_| self.outbox.hold_deadline());
        let batch = self.link.as_ref().and_then(|_| self.batching.deadline());
        [
            self.ch.poll_timeout(),
            acks,
            batch,
            self.resume.deadline(),
            pace,
            ping,
            self.terminating,
            self.draining,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_shutdown(&mut self) {
        self.ended = Some(Ok(End::Cancelled));
    }

    fn on_command(&mut self, cmd: Option<Command>) {
        match cmd {
            Some(Command::SendFlag(f)) => self.ch.send_flag(Instant::now(), f),
            Some(Command::Terminate) | None => {
                if self.terminating.is_none() {
                    let now = Instant::now();
                    self.ch.send_flag(now, Flag::TerminateSession);
                    self.terminating = Some(now + TERMINATE_GRACE);
                }
            }
        }
    }

    fn on_ws_messages(&mut self) {
        let mut arrived = std::mem::take(&mut self.arrived);
        for m in arrived.drain(..) {
            self.on_ws_message(m);
        }
        // The buffer goes back to be reused: no allocation per step.
        self.arrived = arrived;
    }

    fn on_ws_message(&mut self, m: Option<Result<WsMessage, L::Err>>) {
        match m {
            Some(Ok(WsMessage::Binary(b))) => self.on_ws_frame(&b),
            Some(Ok(WsMessage::Text(t))) => self.on_ws_frame(t.as_bytes()),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
            Some(Ok(WsMessage::Close(_))) | None => self.on_link_lost("closed"),
            Some(Err(e)) => self.on_link_lost(&format!("read failed: {e}")),
        }
    }

    fn on_ws_frame(&mut self, frame: &[u8]) {
        // Undecodable frames are counted in the channel's stats and otherwise ignored.
        let _ = self.ch.handle_frame(self.woke, frame);
    }

    fn on_link_written(&mut self, r: Result<(), L::Err>) {
        if let Err(e) = r {
            self.on_link_lost(&format!("write failed: {e}"));
        }
    }

    /// The link is gone: keep the channel's state and start resuming, unless the service
    /// already said channel_closed (it then hangs up on purpose).
    fn on_link_lost(&mut self, why: &str) {
        self.link = None;
        self.batching.reset();
        self.outbox.clear();
        self.ch.on_disconnect();
        if self.closed_output.is_none() {
            tracing::info!("data channel WebSocket {why}; resuming");
            self.resume.on_lost(Instant::now());
        }
    }

    fn on_app_opened(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.ended = Some(Err(DriverError::AppConnect(e)));
        }
    }

    fn on_app_readable(&mut self, r: io::Result<Outgoing>) {
        let now = Instant::now();
        if matches!(r, Ok(Outgoing::Data(_) | Outgoing::Payload(..))) {
            self.batching.on_sent();
        }
        match r {
            Ok(Outgoing::Data(n)) => {
                let taken = self.ch.write(now, self.app.input(n));
                debug_assert_eq!(taken, n);
                if let Some(p) = self.pacer.as_mut() {
                    p.on_read(now);
                }
            }
            Ok(Outgoing::Payload(ptype, payload)) => self.ch.send_payload(now, ptype, payload),
            // A broken input counts as its end, as it always has.
            Ok(Outgoing::End) | Err(_) => self.on_app_input_ended(now),
        }
    }

    fn on_app_input_ended(&mut self, now: Instant) {
        self.app.read_open = false;
        self.ch.close_write();
        if self.role == Role::Agent {
            self.draining = Some(now + self.opts.drain_timeout);
        }
    }

    fn on_app_delivered(&mut self, d: Delivery) {
        match d {
            Delivery::Wrote(Ok(n)) if n > 0 => self.app.on_delivered(n),
            Delivery::Flushed(Ok(())) => self.app.on_flushed(),
            // The application stopped reading: nothing more can be delivered.
            Delivery::Wrote(_) | Delivery::Flushed(Err(_)) => {
                self.app.on_write_closed();
                if !self.app.read_open || self.role == Role::Agent {
                    self.ended = Some(Ok(End::AppClosed));
                }
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.ch.poll_timeout().is_some_and(|t| t <= now) {
            self.ch.handle_timeout(now);
        }
        if let Some(link) = self.link.as_mut() {
            if let Some(change) = self.batching.on_timeout(now) {
                Self::set_low_water(&mut self.batching, link, change);
            }
        }
        self.resume.start_if_due(now, &mut self.transport);
        if self.next_ping <= now {
            self.next_ping = now + self.opts.ping_interval;
            if self.link.is_some() {
                self.outbox
                    .push(WsMessage::Ping(bytes::Bytes::from_static(b"keepalive")));
            }
        }
    }

    fn on_reconnected(&mut self, r: Result<L, ReconnectError>) {
        let now = Instant::now();
        match r {
            Ok(link) => {
                self.link = Some(link);
                self.batching.reset();
                self.outbox.clear();
                self.ch.on_reconnect(now);
                self.resume.on_success();
                self.status.reconnects += 1;
                self.status_changed = true;
                tracing::info!(reconnects = self.status.reconnects, "data channel resumed");
            }
            Err(e) => match self.resume.on_failure(now, e, self.opts.reconnect_budget) {
                Ok(wait) => tracing::info!(
                    "resume attempt failed; retrying in {:.1}s",
                    wait.as_secs_f64()
                ),
                Err(e) => self.ended = Some(Err(DriverError::ResumeFailed(e))),
            },
        }
    }

    /// Hands the KMS result to the channel (which answers the peer, even with a failure);
    /// a client whose key could not be had then ends with that typed error.
    fn on_key_ready(&mut self, r: Result<DataKey, KmsError>) {
        let now = Instant::now();
        match r {
            Ok(key) => self.ch.provide_key(now, Ok(key)),
            Err(e) => {
                self.ch.provide_key(now, Err(e.to_string()));
                if self.role == Role::Client {
                    self.ended = Some(Err(DriverError::Kms(e)));
                }
            }
        }
    }

    /// After every event: queue the channel's frames, react to its events, move delivered
    /// bytes toward the application, and see whether the session is over.
    async fn after_step(&mut self) {
        let now = self.woke;
        while let Some(frame) = self.ch.poll_transmit() {
            // The client holds its acks briefly to send several per write (see `outbox`); the
            // agent role acknowledges at once, as the real agent does.
            if self.role == Role::Client && message::is_acknowledge(&frame) {
                self.outbox.push_ack(WsMessage::Binary(frame), now);
            } else {
                self.outbox.push(WsMessage::Binary(frame));
            }
        }
        while let Some(ev) = self.ch.poll_event() {
            self.on_channel_event(ev);
        }
        self.check_closed().await;
        if self.terminating.is_none() && self.draining.is_none() {
            return;
        }
        let now = Instant::now();
        let flushed = self.ch.is_flushed();
        if self.terminating.is_some_and(|t| flushed || now >= t) {
            self.ended = Some(Ok(End::Cancelled));
        }
        if self.draining.is_some_and(|t| flushed || now >= t) {
            self.ended = Some(Ok(End::TargetClosed));
        }
    }

    fn on_channel_event(&mut self, ev: Event) {
        match ev {
            Event::Ready { session, .. } => {
                self.status.ready = true;
                self.app.start_opening(&session);
                self.status.session = Some(session);
                self.status_changed = true;
            }
            Event::HandshakeFailed(r) => self.ended = Some(Err(DriverError::Handshake(r))),
            Event::KeyNeeded(req) => {
                self.key_job = Some(match &self.opts.keys {
                    Some(keys) => keys.0.fetch(req),
                    None => Box::pin(async { Err(KmsError::Unavailable) }),
                });
            }
            Event::EncryptionFailed(e) => self.ended = Some(Err(DriverError::Encryption(e))),
            Event::Closed { output } => self.closed_output = Some(output),
            Event::Flag(f) if self.app.on_flag(f) => {}
            Event::Flag(f @ (Flag::TerminateSession | Flag::DisconnectToPort))
                if self.role == Role::Agent =>
            {
                self.ended = Some(Ok(End::PeerTerminated(f)));
            }
            Event::Flag(_) | Event::Readable | Event::Flushed => {}
        }
    }

    /// channel_closed ends the session once everything delivered reached the application.
    async fn check_closed(&mut self) {
        let Some(output) = &self.closed_output else {
            return;
        };
        if self.app.caught_up() && (self.ch.ready_bytes() == 0 || !self.app.is_writable()) {
            let output = output.clone();
            self.app.shutdown().await;
            self.ended = Some(Ok(End::ChannelClosed { output }));
        }
    }

    /// Counters change with every message, and waking every watcher of the status (stdio's
    /// main task, a pool slot) for each one cost a task wake-up per message. So counters are
    /// updated in place, visible to `borrow()` at once, and only a change of state (link up or
    /// down, ready, resumes) notifies.
    fn publish_status(&mut self) {
        let connected = self.link.is_some();
        let state_changed = std::mem::take(&mut self.status_changed);
        let (status, stats) = (&self.status, self.ch.stats());
        let link_reads = self.batching.reads();
        self.status_tx.send_if_modified(|s| {
            s.stats.clone_from(stats);
            s.link_reads = link_reads;
            if !state_changed && s.connected == connected {
                return false;
            }
            s.connected = connected;
            s.ready = status.ready;
            s.reconnects = status.reconnects;
            s.session.clone_from(&status.session);
            true
        });
    }

    /// Best effort: push out what is queued (e.g. the last acknowledges), flush the app.
    async fn finish(
        mut self,
        end: Result<End, DriverError>,
    ) -> (Result<End, DriverError>, Option<L>) {
        if let Some(link) = self.link.as_mut() {
            let outbox = &mut self.outbox;
            let _ = tokio::time::timeout(self.opts.drain_timeout, outbox.pump(link)).await;
        }
        self.app.flush().await;
        self.status.stats = self.ch.stats().clone();
        self.status.link_reads = self.batching.reads();
        self.status.connected = false;
        self.status_tx.send_replace(self.status);
        (end, self.link)
    }
}

#[cfg(test)]
mod tests;
