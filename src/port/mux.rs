//! The tokio shell around a smux [`Session`] (§7.3): the layer a mux port session's driver
//! carries. Client role: each local connection from the [`Opener`](super::Opener) becomes a
//! stream. Server role (the simulator's agent): each stream the client opens is dialled, and a
//! failed dial answers ConnectToPortError and closes that stream, as the agent does.
//!
//! The driver calls one method per direction; each does its part and leaves the rest:
//! `poll_outgoing` takes new connections and local input, `poll_deliver` feeds the session,
//! and `poll_progress` writes to local sockets, finishes dials and runs the timers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use super::local::Local;
use super::{BoxIo, OpenRequest, Opened, PortStats};
use crate::smux::{self, Event, Session, MAX_STREAMS};
use crate::ssm::driver::{AppLayer, BoxFuture, Outgoing};
use crate::ssm::message::PayloadType;
use crate::ssm::payload::Flag;

/// Server role: how a stream's destination is dialled.
pub type Dial = Box<dyn FnMut() -> BoxFuture<io::Result<BoxIo>> + Send>;

/// Where streams come from.
enum Source {
    Client(Option<mpsc::Receiver<OpenRequest>>),
    Server {
        dial: Dial,
        dialing: FuturesUnordered<BoxFuture<(u32, io::Result<BoxIo>)>>,
    },
}

/// A stream with its local connection, and who waits to hear how opening went.
struct Stream {
    local: Local,
    confirm: Option<oneshot::Sender<Opened>>,
}

pub struct MuxLayer {
    session: Session,
    source: Source,
    streams: BTreeMap<u32, Stream>,
    /// Streams with bytes or an end of file for their local side.
    to_write: BTreeSet<u32>,
    /// Client role: when each unconfirmed stream counts as connected, oldest first.
    confirms: VecDeque<(Instant, u32)>,
    confirm_after: Duration,
    /// Server role: streams whose dial failed; each gets a ConnectToPortError, then its FIN.
    refused: VecDeque<u32>,
    /// Round-robin position for local reads.
    cursor: u32,
    scratch: Vec<u8>,
    /// Made on first use: a layer may be built outside the runtime (unit tests).
    timer: Option<Pin<Box<Sleep>>>,
    stats: Arc<PortStats>,
    /// Server role: bytes taken off the data channel, for whoever acknowledges by them.
    taken: Option<Arc<AtomicU64>>,
    broken: bool,
}

impl MuxLayer {
    pub(super) fn client(
        cfg: smux::Config,
        rx: mpsc::Receiver<OpenRequest>,
        stats: Arc<PortStats>,
        confirm_after: Duration,
    ) -> Self {
        let session = Session::client(cfg, Instant::now());
        Self::new(session, Source::Client(Some(rx)), stats, confirm_after)
    }

    /// The agent's end: every stream the client opens is dialled with `dial`; `taken` counts
    /// the bytes the session takes off the data channel (the simulator acknowledges by it).
    pub fn server(cfg: smux::Config, dial: Dial, taken: Arc<AtomicU64>) -> Self {
        let source = Source::Server {
            dial,
            dialing: FuturesUnordered::new(),
        };
        let session = Session::server(cfg, Instant::now());
        let mut layer = Self::new(session, source, Arc::default(), Duration::ZERO);
        layer.taken = Some(taken);
        layer
    }

    fn new(
        session: Session,
        source: Source,
        stats: Arc<PortStats>,
        confirm_after: Duration,
    ) -> Self {
        Self {
            session,
            source,
            streams: BTreeMap::new(),
            to_write: BTreeSet::new(),
            confirms: VecDeque::new(),
            confirm_after,
            refused: VecDeque::new(),
            cursor: 0,
            scratch: vec![0; smux::Config::default().max_frame],
            timer: None,
            stats,
            taken: None,
            broken: false,
        }
    }

    /// The NOP interval this session runs, if any (tests pin the version gate with it).
    #[cfg(test)]
    pub(super) fn keepalive(&self) -> Option<Duration> {
        self.session.keepalive()
    }

    /// Client role: takes queued local connections while the session can hold more streams.
    fn accept_new(&mut self, cx: &mut Context<'_>, now: Instant) -> io::Result<()> {
        let Source::Client(Some(rx)) = &mut self.source else {
            return Ok(());
        };
        while self.streams.len() < MAX_STREAMS {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(req)) => {
                    let id = self.session.open(now).map_err(io::Error::other)?;
                    self.stats.stream_accepted();
                    self.confirms.push_back((now + self.confirm_after, id));
                    let stream = Stream {
                        local: Local::new(req.io),
                        confirm: req.reply,
                    };
                    self.streams.insert(id, stream);
                }
                Poll::Ready(None) => {
                    self.source = Source::Client(None);
                    break;
                }
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Reads local input round-robin while the session has room for it.
    fn read_locals(&mut self, cx: &mut Context<'_>, now: Instant) {
        let ids: Vec<u32> = self
            .streams
            .range(self.cursor..)
            .chain(self.streams.range(..self.cursor))
            .filter(|(_, s)| s.local.read_open)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let room = self.session.output_room().min(self.scratch.len());
            if room == 0 {
                self.cursor = id;
                return;
            }
            self.read_local(cx, now, id, room);
            self.cursor = id.wrapping_add(1);
        }
    }

    fn read_local(&mut self, cx: &mut Context<'_>, now: Instant, id: u32, room: usize) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let buf = self.scratch.get_mut(..room).unwrap_or_default();
        match s.local.poll_read(cx, buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(0)) => {
                s.local.read_open = false;
                let _ = self.session.finish(now, id);
                self.forget_if_done(id);
            }
            Poll::Ready(Ok(n)) => {
                let data = self.scratch.get(..n).unwrap_or_default();
                match self.session.write(now, id, data) {
                    Ok(taken) => {
                        debug_assert_eq!(taken, n, "reads are sized to the session's room");
                        PortStats::add(&self.stats.bytes_up, taken);
                    }
                    Err(e) => tracing::debug!("smux stream {id}: {e}"),
                }
            }
            Poll::Ready(Err(e)) => {
                tracing::debug!("smux stream {id}: local read failed: {e}");
                self.drop_stream(now, id);
            }
        }
    }

    /// Writes what the session holds for local sides; true when anything moved.
    fn pump_writes(&mut self, cx: &mut Context<'_>) -> bool {
        let ids: Vec<u32> = self.to_write.iter().copied().collect();
        let mut moved = false;
        for id in ids {
            moved |= self.pump_stream(cx, id);
        }
        moved
    }

    fn pump_stream(&mut self, cx: &mut Context<'_>, id: u32) -> bool {
        let Some(s) = self.streams.get_mut(&id) else {
            self.to_write.remove(&id);
            return false;
        };
        let mut moved = false;
        loop {
            if !s.local.write_open {
                self.to_write.remove(&id);
                break;
            }
            if s.local.out_empty() && s.local.refill(|b| self.session.read(id, b)) == 0 {
                if !self.session.at_eof(id) {
                    self.to_write.remove(&id);
                    break;
                }
                match s.local.poll_shutdown(cx) {
                    Poll::Pending => return moved,
                    Poll::Ready(_) => {
                        s.local.write_open = false;
                        moved = true;
                        continue;
                    }
                }
            }
            match s.local.poll_write_out(cx) {
                Poll::Pending => return moved,
                Poll::Ready(Ok(n)) => {
                    PortStats::add(&self.stats.bytes_down, n);
                    moved = true;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!("smux stream {id}: local write failed: {e}");
                    self.drop_stream(Instant::now(), id);
                    return true;
                }
            }
        }
        self.forget_if_done(id);
        moved
    }

    /// Acts on what the session reported.
    fn on_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Accepted(id) => self.on_accepted(id),
                Event::Readable(id) | Event::Finished(id) => {
                    self.confirm(id, Opened::Connected);
                    self.to_write.insert(id);
                }
                Event::ConnectFailed(id) => self.on_connect_failed(id),
            }
        }
    }

    fn on_accepted(&mut self, id: u32) {
        if let Source::Server { dial, dialing } = &mut self.source {
            let fut = dial();
            dialing.push(Box::pin(async move { (id, fut.await) }));
        }
    }

    fn on_connect_failed(&mut self, id: u32) {
        tracing::debug!("smux stream {id}: the instance could not connect to the destination");
        PortStats::add(&self.stats.refused, 1);
        self.confirm(id, Opened::Refused);
        if self.streams.remove(&id).is_some() {
            self.stats.stream_ended();
        }
        self.to_write.remove(&id);
    }

    /// Server role: a dial finished.
    fn on_dialled(&mut self, id: u32, r: io::Result<BoxIo>) {
        match r {
            Ok(io) if self.session.has_stream(id) => {
                self.stats.stream_started();
                let stream = Stream {
                    local: Local::new(io),
                    confirm: None,
                };
                self.streams.insert(id, stream);
                self.to_write.insert(id);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!("smux stream {id}: dial failed: {e}");
                self.refused.push_back(id);
            }
        }
    }

    fn confirm(&mut self, id: u32, how: Opened) {
        if let Some(tx) = self.streams.get_mut(&id).and_then(|s| s.confirm.take()) {
            let _ = tx.send(how);
        }
    }

    /// Client role: streams nobody refused within the confirmation time count as connected.
    fn expire_confirms(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.confirms.front() {
            if at > now {
                break;
            }
            self.confirms.pop_front();
            self.confirm(id, Opened::Connected);
        }
    }

    /// The local connection is gone: FIN the stream and forget it.
    fn drop_stream(&mut self, now: Instant, id: u32) {
        self.session.close(now, id);
        self.confirm(id, Opened::SessionEnded);
        if self.streams.remove(&id).is_some() {
            self.stats.stream_ended();
        }
        self.to_write.remove(&id);
    }

    fn forget_if_done(&mut self, id: u32) {
        if self.streams.get(&id).is_some_and(|s| s.local.is_done()) {
            self.streams.remove(&id);
            self.stats.stream_ended();
        }
    }

    /// Runs due timers (confirmations, keepalive); true when one fired.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let next = [
            self.confirms.front().map(|c| c.0),
            self.session.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(at) = next else {
            return false;
        };
        let at = tokio::time::Instant::from_std(at);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let now = Instant::now();
        self.expire_confirms(now);
        self.session.handle_timeout(now);
        true
    }

    fn poll_dials(&mut self, cx: &mut Context<'_>) -> bool {
        let Source::Server { dialing, .. } = &mut self.source else {
            return false;
        };
        let mut done = Vec::new();
        while let Poll::Ready(Some(r)) = dialing.poll_next_unpin(cx) {
            done.push(r);
        }
        let any = !done.is_empty();
        for (id, r) in done {
            self.on_dialled(id, r);
        }
        any
    }

    fn broken_err() -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, "the smux session broke")
    }
}

impl AppLayer for MuxLayer {
    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        if self.broken {
            return Poll::Ready(Err(Self::broken_err()));
        }
        let now = Instant::now();
        if let Some(id) = self.refused.pop_front() {
            self.session.close(now, id);
            let flag = Bytes::copy_from_slice(&Flag::ConnectToPortError.to_bytes());
            return Poll::Ready(Ok(Outgoing::Payload(PayloadType::Flag, flag)));
        }
        self.accept_new(cx, now)?;
        self.read_locals(cx, now);
        let out = self.session.pending_output();
        let n = out.len().min(buf.len());
        if n > 0 {
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), out.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.session.advance_output(n);
            return Poll::Ready(Ok(Outgoing::Data(n)));
        }
        if matches!(self.source, Source::Client(None)) && self.streams.is_empty() {
            return Poll::Ready(Ok(Outgoing::End));
        }
        Poll::Pending
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.broken {
            return Poll::Ready(Err(Self::broken_err()));
        }
        if self.session.input_room() == 0 {
            self.pump_writes(cx);
            if self.session.input_room() == 0 {
                return Poll::Pending;
            }
        }
        match self.session.handle_input(data) {
            Ok(n) => {
                if let Some(t) = &self.taken {
                    t.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                self.on_events();
                self.pump_writes(cx);
                Poll::Ready(Ok(n))
            }
            Err(e) => {
                tracing::warn!("the agent's smux stream is broken ({e}); ending the session");
                self.broken = true;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pump_writes(cx);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        for s in self.streams.values_mut() {
            if let Some(tx) = s.confirm.take() {
                let _ = tx.send(Opened::SessionEnded);
            }
            let _ = s.local.poll_shutdown(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn on_flag(&mut self, flag: Flag) -> bool {
        if flag != Flag::ConnectToPortError {
            return false;
        }
        self.session.connect_error();
        self.on_events();
        true
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let dialled = self.poll_dials(cx);
        let fired = self.poll_timers(cx);
        let wrote = self.pump_writes(cx);
        if dialled || fired || wrote {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for MuxLayer {
    fn drop(&mut self) {
        for _ in 0..self.streams.len() {
            self.stats.stream_ended();
        }
    }
}
