//! The application layer a driver carries: today a plain byte stream ([`ByteStream`]); later a
//! smux session, a shell that also sends terminal sizes, or an encrypting layer. The driver
//! polls it through [`AppLayer`] and never needs to know which one it is, so a new layer adds
//! no branch to the driver's loop. Control input a layer needs (a terminal resize, say) reaches
//! it through its own channel and comes out of [`AppLayer::poll_outgoing`] as a payload.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::BoxFuture;
use crate::ssm::channel::SessionInfo;
use crate::ssm::message::PayloadType;
use crate::ssm::payload::Flag;

/// What the application has for the data channel.
#[derive(Debug)]
pub enum Outgoing {
    /// `n` bytes of stream data were written into the buffer given to `poll_outgoing`.
    Data(usize),
    /// A typed payload (e.g. `Size` for a terminal resize), sent as its own message.
    Payload(PayloadType, Bytes),
    /// The application will send nothing more (input EOF): the channel's write side closes.
    End,
}

/// An application layer on top of the data channel, polled by the driver.
///
/// The driver calls `poll_open` once the session is ready (the agent dials its target only
/// after the handshake, §7.1), then the other methods. Errors from `poll_outgoing` count as
/// input EOF and errors from `poll_deliver`/`poll_flush` as "the application stopped reading",
/// which is how the driver has always treated a broken local stream.
pub trait AppLayer: Send + 'static {
    /// Ready when the layer can carry data; layers with nothing to open are ready at once.
    fn poll_open(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Produces the next thing to send; `buf.len()` is what the channel can take now.
    fn poll_outgoing(&mut self, cx: &mut Context<'_>, buf: &mut [u8])
        -> Poll<io::Result<Outgoing>>;
    /// Hands bytes the channel delivered to the application; returns how many it took
    /// (0: it will take no more).
    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;
    /// Delivered bytes of a payload type other than Output, in stream order with the data:
    /// StdErr (11) and ExitCode (12) at a client (NonInteractiveCommands with separate output,
    /// §8), Size (3) at an agent. Returns how many bytes it took. By default they are dropped:
    /// a port session never gets them, and a peer sending them must not stall the stream.
    fn poll_deliver_other(
        &mut self,
        _cx: &mut Context<'_>,
        _ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(data.len()))
    }
    /// Flushes what `poll_deliver` took (stdout is buffered).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// The channel closed: nothing more will be delivered.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The handshake finished, before `poll_open`: what the peer offered (client role: the
    /// agent's version and the document's properties; agent role: the client's version, in
    /// `agent_version`). Port layers pick smux or basic forwarding from it (§7).
    fn on_ready(&mut self, _session: &SessionInfo) {}

    /// A Flag from the peer, in stream order. True when the layer acted on it; otherwise the
    /// driver does what it always did (the agent ends the session on TerminateSession and
    /// DisconnectToPort). ConnectToPortError reaches a smux client here (§7.3).
    fn on_flag(&mut self, _flag: Flag) -> bool {
        false
    }

    /// The layer's own work once open: writing to many local sockets, dials, timers. Ready when
    /// it did something the driver should look at again (new output, room for more input);
    /// the driver then polls every direction once more. A byte stream has none.
    fn poll_progress(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// A layer chosen at the handshake among several (a port session's mux or basic mode; the
/// simulated agent's SSH, mux or basic). [`Chosen`] forwards every call to the one in force,
/// so a chooser writes only its choice.
pub trait Choose: Send + 'static {
    /// Picks the layer from what the handshake offered (see [`AppLayer::on_ready`]).
    fn choose(&mut self, session: &SessionInfo);
    /// The layer in force; an error before the choice, or when the choice was a refusal.
    fn chosen(&mut self) -> io::Result<&mut dyn AppLayer>;
}

/// The [`AppLayer`] of a [`Choose`]r.
pub struct Chosen<C>(pub C);

impl<C: Choose> AppLayer for Chosen<C> {
    fn on_ready(&mut self, session: &SessionInfo) {
        self.0.choose(session);
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.chosen()?.poll_open(cx)
    }

    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        self.0.chosen()?.poll_outgoing(cx, buf)
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.0.chosen()?.poll_deliver(cx, data)
    }

    fn poll_deliver_other(
        &mut self,
        cx: &mut Context<'_>,
        ptype: PayloadType,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.chosen()?.poll_deliver_other(cx, ptype, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.chosen()?.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.chosen()?.poll_shutdown(cx)
    }

    fn on_flag(&mut self, flag: Flag) -> bool {
        self.0.chosen().is_ok_and(|l| l.on_flag(flag))
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.chosen() {
            Ok(l) => l.poll_progress(cx),
            Err(_) => Poll::Pending,
        }
    }
}

/// Opens the application side of a [`ByteStream`] once the session is ready.
pub type AppConnect<A> = BoxFuture<io::Result<A>>;

/// The plain byte-stream layer: channel data in and out of an `AsyncRead + AsyncWrite`.
pub struct ByteStream<A> {
    state: State<A>,
}

enum State<A> {
    Connecting(AppConnect<A>),
    Open(Pin<Box<A>>),
}

impl<A> ByteStream<A> {
    /// A stream that already exists (the client's stdin/stdout or pipe).
    pub fn ready(a: A) -> Self {
        Self {
            state: State::Open(Box::pin(a)),
        }
    }

    /// A stream opened by `connect` when the session becomes ready (the agent's target).
    pub fn connect(connect: AppConnect<A>) -> Self {
        Self {
            state: State::Connecting(connect),
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut A>> {
        match &mut self.state {
            State::Open(a) => Ok(a.as_mut()),
            State::Connecting(_) => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<A: AsyncRead + AsyncWrite + Send + 'static> AppLayer for ByteStream<A> {
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Connecting(f) = &mut self.state {
            let a = ready!(f.as_mut().poll(cx))?;
            self.state = State::Open(Box::pin(a));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_outgoing(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<Outgoing>> {
        let mut rb = ReadBuf::new(buf);
        ready!(self.stream()?.poll_read(cx, &mut rb))?;
        Poll::Ready(Ok(match rb.filled().len() {
            0 => Outgoing::End,
            n => Outgoing::Data(n),
        }))
    }

    fn poll_deliver(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.stream()?.poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_shutdown(cx)
    }
}
