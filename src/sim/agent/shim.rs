//! The IO side of the simulated agent's real-agent habits, wrapped around the parts the shared
//! driver already uses, so the driver and the channel core stay the client's own:
//! - [`GatedLink`] sits on the agent's link: it shows incoming client messages to the
//!   [`AckGate`], holds the channel's acknowledges until the target has taken the bytes, and
//!   can lose acknowledges the way the real agent's send/ack race does (reference §12);
//! - [`Target`] sits on the target connection: it counts the bytes the target took and can
//!   write at a set rate, the pace of a slow target or of the real agent's write-then-ack loop.
//!
//! Both run in the driver's one task; the byte count passes through an atomic. Released
//! acknowledges go out from whichever of the link's `poll_next`/`poll_flush` runs next: the
//! driver polls `poll_next` on every step, so they leave as soon as the write that released
//! them is done.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::gate::{AckGate, Carries};
use crate::ssm::driver::Link;
use crate::ssm::message::{self, Message, MessageType, PayloadType};
use crate::ssm::payload::Acknowledge;

/// Raced sequence numbers remembered (each loses only its first acknowledge).
const MAX_RACED: usize = 4096;

/// The agent's link with its acknowledges gated on target writes.
pub(crate) struct GatedLink<L> {
    inner: L,
    gate: AckGate<WsMessage>,
    /// Bytes the target has taken, as counted by [`Target`].
    written: Arc<AtomicU64>,
    /// The part of `written` already told to the gate.
    seen: u64,
    /// Lose the first acknowledge of every agent message whose `seq % n == n - 1`.
    race_every: Option<u32>,
    raced: BTreeSet<i64>,
    unflushed: bool,
}

impl<L: Link> GatedLink<L> {
    pub(crate) fn new(
        inner: L,
        handshake: bool,
        race_every: Option<u32>,
        written: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner,
            gate: AckGate::new(handshake),
            written,
            seen: 0,
            race_every: race_every.filter(|n| *n > 0),
            raced: BTreeSet::new(),
            unflushed: false,
        }
    }

    /// Sends the acknowledges the target's progress has released, as far as the link takes.
    fn release(&mut self, cx: &mut Context<'_>) -> Result<(), L::Err> {
        let w = self.written.load(Ordering::Relaxed);
        if w > self.seen {
            self.gate.on_written(w - self.seen);
            self.seen = w;
        }
        while self.gate.has_released() {
            match Pin::new(&mut self.inner).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
            if let Some(m) = self.gate.pop_released() {
                Pin::new(&mut self.inner).start_send(m)?;
                self.unflushed = true;
            }
        }
        if self.unflushed {
            if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_flush(cx) {
                self.unflushed = false;
                r?;
            }
        }
        Ok(())
    }

    /// Looks at a frame from the service; false means "lose it" (the send/ack race).
    fn on_incoming(&mut self, frame: &[u8]) -> bool {
        let Ok(m) = Message::decode(frame) else {
            return true;
        };
        match m.message_type {
            MessageType::InputStreamData => {
                let carries = match m.payload_type {
                    PayloadType::Output => Carries::Data(m.payload.len() as u64),
                    PayloadType::HandshakeResponse => Carries::HandshakeResponse,
                    _ => Carries::Nothing,
                };
                self.gate.on_incoming(m.sequence_number, carries);
                true
            }
            MessageType::Acknowledge => !self.races(&m.payload),
            _ => true,
        }
    }

    /// The real agent sends a message before it records it as sent; an acknowledge that comes
    /// in between is lost, and the message is resent until a duplicate is acknowledged.
    fn races(&mut self, ack: &[u8]) -> bool {
        let (Some(n), Ok(a)) = (self.race_every, Acknowledge::from_bytes(ack)) else {
            return false;
        };
        let seq = a.sequence_number;
        if seq.rem_euclid(i64::from(n)) != i64::from(n) - 1 || !self.raced.insert(seq) {
            return false;
        }
        if self.raced.len() > MAX_RACED {
            self.raced.pop_first();
        }
        true
    }
}

/// Whether an outgoing frame is an acknowledge, and of which sequence number.
fn acked_seq(m: &WsMessage) -> Option<i64> {
    let WsMessage::Binary(b) = m else {
        return None;
    };
    if !message::is_acknowledge(b) {
        return None;
    }
    let msg = Message::decode(b).ok()?;
    Acknowledge::from_bytes(&msg.payload)
        .ok()
        .map(|a| a.sequence_number)
}

impl<L: Link> Stream for GatedLink<L> {
    type Item = Result<WsMessage, L::Err>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Err(e) = this.release(cx) {
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let m = ready!(Pin::new(&mut this.inner).poll_next(cx));
            if let Some(Ok(WsMessage::Binary(b))) = &m {
                if !this.on_incoming(b) {
                    continue;
                }
            }
            return Poll::Ready(m);
        }
    }
}

impl<L: Link> Sink<WsMessage> for GatedLink<L> {
    type Error = L::Err;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), L::Err>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: WsMessage) -> Result<(), L::Err> {
        let item = match acked_seq(&item) {
            Some(seq) => match self.gate.on_ack(seq, item) {
                Some(item) => item,
                None => return Ok(()),
            },
            None => item,
        };
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), L::Err>> {
        self.release(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), L::Err>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<L: Link> Link for GatedLink<L> {
    type Err = L::Err;
}

/// Falling further behind the rate than this is forgiven rather than made up in a burst.
const MAX_LAG: Duration = Duration::from_millis(10);
/// Largest single write when paced, so the rate holds at a fine grain.
const PACED_WRITE: usize = 16 * 1024;

/// Writes at most `rate` bytes per second, on a fixed schedule so timer overshoot does not
/// lower the average.
struct Pace {
    rate: u64,
    next: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Pace {
    fn new(rate: u64) -> Self {
        let now = Instant::now();
        Self {
            rate: rate.max(1),
            next: now,
            sleep: Box::pin(tokio::time::sleep_until(now.into())),
        }
    }

    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.next {
            return Poll::Ready(());
        }
        let at = tokio::time::Instant::from_std(self.next);
        if self.sleep.deadline() != at {
            self.sleep.as_mut().reset(at);
        }
        self.sleep.as_mut().poll(cx)
    }

    fn on_written(&mut self, n: usize) {
        let now = Instant::now();
        let base = if self.next + MAX_LAG < now {
            now
        } else {
            self.next
        };
        self.next = base + Duration::from_secs_f64(n as f64 / self.rate as f64);
    }
}

/// The agent's connection to its target, counting what the target took.
pub(crate) struct Target<S> {
    inner: S,
    written: Arc<AtomicU64>,
    pace: Option<Pace>,
}

impl<S> Target<S> {
    /// `rate`: bytes per second the agent writes at most (`None`: as fast as the target reads).
    pub(crate) fn new(inner: S, written: Arc<AtomicU64>, rate: Option<u64>) -> Self {
        Self {
            inner,
            written,
            pace: rate.map(Pace::new),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Target<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Target<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let buf = match this.pace.as_mut() {
            Some(p) => {
                ready!(p.poll_turn(cx));
                buf.get(..buf.len().min(PACED_WRITE)).unwrap_or(buf)
            }
            None => buf,
        };
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.written.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(p) = this.pace.as_mut() {
            p.on_written(n);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
