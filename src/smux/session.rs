//! One smux v1 session, sans-IO: fed the peer's bytes (as the data channel delivers them, in any
//! split) and local calls; it produces bytes for the data channel and [`Event`]s. The driver
//! around it owns the sockets and the clock.
//!
//! The client (us, like the official plugin) opens streams with odd ids from 3 (§7.3); the
//! server (the agent, and the simulator's agent) accepts them and never opens one. FIN is a
//! half-close: after ours we send nothing more, after theirs we read what is buffered and then
//! end of file.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::frame::{self, Cmd, FrameError, Header, HEADER_LEN};
use super::Config;

/// Something the local side should act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Server role: the client opened this stream.
    Accepted(u32),
    /// The stream has bytes to [`Session::read`] (raised when its buffer goes from empty).
    Readable(u32),
    /// The agent half-closed the stream: after the buffered bytes comes end of file.
    Finished(u32),
    /// The agent could not connect to the destination for this stream (ConnectToPortError).
    /// The stream is gone; close its local connection.
    ConnectFailed(u32),
}

/// Misuse by the caller or a broken peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("smux stream {0} is not open")]
    UnknownStream(u32),
    #[error("smux stream {0} was already half-closed by us")]
    AlreadyFinished(u32),
    #[error("smux session has used up its stream ids; start a new session")]
    IdsExhausted,
    #[error("the server side of a smux session does not open streams")]
    ServerOpens,
}

/// Which end of the session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens streams (session-proxy, the official plugin).
    Client,
    /// Accepts them (the agent; the simulator's agent).
    Server,
}

/// Streams a server holds at once; further SYNs are answered with FIN (smux's accept backlog).
pub const MAX_STREAMS: usize = 1024;

#[derive(Debug, Default)]
struct Stream {
    rx: VecDeque<u8>,
    /// The agent sent FIN.
    fin_rx: bool,
    /// We sent FIN.
    fin_tx: bool,
    /// Any frame came back for it: the agent's dial succeeded.
    answered: bool,
}

/// One smux session (client role).
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    role: Role,
    last_id: u32,
    streams: BTreeMap<u32, Stream>,
    /// Unparsed input: at most one partial frame after [`Session::handle_input`] returns.
    input: Vec<u8>,
    output: Vec<u8>,
    /// Bytes held in stream buffers, not yet read.
    buffered: usize,
    events: VecDeque<Event>,
    /// ConnectToPortError flags not yet tied to a stream (see [`Session::connect_error`]).
    unmatched_errors: usize,
    last_tx: Instant,
    broken: Option<FrameError>,
}

impl Session {
    /// The client end of a session whose data channel opened at `now` (the keepalive
    /// interval counts from it).
    pub fn client(cfg: Config, now: Instant) -> Self {
        Self::new(Role::Client, cfg, now)
    }

    /// The server end (the agent's), for the simulator.
    pub fn server(cfg: Config, now: Instant) -> Self {
        Self::new(Role::Server, cfg, now)
    }

    fn new(role: Role, cfg: Config, now: Instant) -> Self {
        Self {
            cfg,
            role,
            last_id: 1,
            streams: BTreeMap::new(),
            input: Vec::new(),
            output: Vec::new(),
            buffered: 0,
            events: VecDeque::new(),
            unmatched_errors: 0,
            last_tx: now,
            broken: None,
        }
    }

    /// Opens a stream: queues its SYN and returns its id (3, 5, 7, …).
    pub fn open(&mut self, now: Instant) -> Result<u32, SessionError> {
        self.check()?;
        if self.role == Role::Server {
            return Err(SessionError::ServerOpens);
        }
        let id = self
            .last_id
            .checked_add(2)
            .ok_or(SessionError::IdsExhausted)?;
        self.last_id = id;
        self.streams.insert(id, Stream::default());
        self.emit(now, Cmd::Syn, id, &[]);
        Ok(id)
    }

    /// Queues as much of `data` as the output buffer takes, in frames of at most
    /// `max_frame` bytes; returns how much was taken (0: wait for [`Session::advance_output`]).
    pub fn write(&mut self, now: Instant, id: u32, data: &[u8]) -> Result<usize, SessionError> {
        self.check()?;
        let s = self
            .streams
            .get(&id)
            .ok_or(SessionError::UnknownStream(id))?;
        if s.fin_tx {
            return Err(SessionError::AlreadyFinished(id));
        }
        let mut taken = 0;
        while taken < data.len() {
            let room = self.cfg.max_output.saturating_sub(self.output.len());
            let n = (data.len() - taken)
                .min(self.cfg.max_frame)
                .min(room.saturating_sub(HEADER_LEN));
            if n == 0 {
                break;
            }
            let chunk = data.get(taken..taken + n).unwrap_or_default();
            self.emit(now, Cmd::Psh, id, chunk);
            taken += n;
        }
        Ok(taken)
    }

    /// Half-closes the stream from our side (the local connection sent EOF).
    pub fn finish(&mut self, now: Instant, id: u32) -> Result<(), SessionError> {
        self.check()?;
        let s = self
            .streams
            .get_mut(&id)
            .ok_or(SessionError::UnknownStream(id))?;
        if !s.fin_tx {
            s.fin_tx = true;
            self.emit(now, Cmd::Fin, id, &[]);
        }
        self.forget_if_done(id);
        Ok(())
    }

    /// The local connection is gone: FIN if not yet sent, drop what was buffered, and discard
    /// whatever still arrives for the stream.
    pub fn close(&mut self, now: Instant, id: u32) {
        let Some(s) = self.streams.remove(&id) else {
            return;
        };
        self.buffered = self.buffered.saturating_sub(s.rx.len());
        if !s.fin_tx && self.broken.is_none() {
            self.emit(now, Cmd::Fin, id, &[]);
        }
    }

    /// Copies buffered bytes of stream `id` into `buf`.
    pub fn read(&mut self, id: u32, buf: &mut [u8]) -> usize {
        let Some(s) = self.streams.get_mut(&id) else {
            return 0;
        };
        let n = buf.len().min(s.rx.len());
        for (dst, src) in buf.iter_mut().zip(s.rx.drain(..n)) {
            *dst = src;
        }
        self.buffered = self.buffered.saturating_sub(n);
        self.forget_if_done(id);
        n
    }

    /// The stream's buffer is empty and the agent sent FIN: the local side gets end of file.
    pub fn at_eof(&self, id: u32) -> bool {
        self.streams
            .get(&id)
            .is_none_or(|s| s.fin_rx && s.rx.is_empty())
    }

    /// How many more input bytes may be handed to [`Session::handle_input`] now. smux v1 has
    /// no per-stream window, so when one stream's buffer is full every stream of the session
    /// waits (the caller stops reading the data channel) until the local side reads.
    pub fn input_room(&self) -> usize {
        if self
            .streams
            .values()
            .any(|s| s.rx.len() >= self.cfg.max_stream_buffer)
        {
            return 0;
        }
        self.cfg
            .max_receive
            .saturating_sub(self.buffered + self.input.len())
    }

    /// Feeds bytes from the agent; takes at most [`Session::input_room`] of them and returns
    /// how many it took. A protocol error breaks the session for good.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize, SessionError> {
        self.check()?;
        let take = data.len().min(self.input_room());
        self.input
            .extend_from_slice(data.get(..take).unwrap_or_default());
        let mut used = 0;
        loop {
            let rest = self.input.get(used..).unwrap_or_default();
            match frame::parse(rest) {
                Ok(Some((h, len))) => {
                    let body = rest.get(HEADER_LEN..len).unwrap_or_default().to_vec();
                    self.on_frame(h, &body);
                    used += len;
                }
                Ok(None) => break,
                Err(e) => {
                    self.broken = Some(e);
                    self.input.clear();
                    return Err(e.into());
                }
            }
        }
        self.input.drain(..used);
        Ok(take)
    }

    fn on_frame(&mut self, h: Header, body: &[u8]) {
        match h.cmd {
            Cmd::Syn => self.on_syn(h.stream),
            Cmd::Nop => {}
            Cmd::Psh => self.on_data(h.stream, body),
            Cmd::Fin => self.on_fin(h.stream),
        }
    }

    /// Only clients open streams: a client drops a SYN (xtaci/smux would queue it for an
    /// accept() nobody calls); a server accepts it while its backlog has room.
    fn on_syn(&mut self, id: u32) {
        if self.role == Role::Client || self.streams.contains_key(&id) {
            return;
        }
        if self.streams.len() >= MAX_STREAMS {
            let now = self.last_tx;
            self.emit(now, Cmd::Fin, id, &[]);
            return;
        }
        let accepted = Stream {
            answered: true,
            ..Stream::default()
        };
        self.streams.insert(id, accepted);
        self.events.push_back(Event::Accepted(id));
    }

    fn on_data(&mut self, id: u32, body: &[u8]) {
        // Data for a stream we closed is discarded, as smux does.
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.answered = true;
        if s.fin_rx || body.is_empty() {
            return;
        }
        let was_empty = s.rx.is_empty();
        s.rx.extend(body);
        self.buffered += body.len();
        if was_empty {
            self.events.push_back(Event::Readable(id));
        }
    }

    fn on_fin(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.fin_rx {
            return;
        }
        s.fin_rx = true;
        if !s.answered && self.unmatched_errors > 0 {
            self.unmatched_errors -= 1;
            self.fail(id);
            return;
        }
        self.events.push_back(Event::Finished(id));
        self.forget_if_done(id);
    }

    /// The agent sent the ConnectToPortError flag. It names no stream: it belongs to one that
    /// is still opening (no frame back yet). With one such stream it fails now; with several
    /// it waits for the FIN the agent sends on the failed stream right after the flag.
    pub fn connect_error(&mut self) {
        let opening: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.answered && !s.fin_rx)
            .map(|(id, _)| *id)
            .collect();
        match opening.as_slice() {
            [] => {}
            [only] => self.fail(*only),
            _ => self.unmatched_errors += 1,
        }
    }

    fn fail(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(&id) {
            self.buffered = self.buffered.saturating_sub(s.rx.len());
        }
        self.events.push_back(Event::ConnectFailed(id));
    }

    /// Next event for the local side.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to send on the data channel.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Payload bytes one [`Session::write`] takes now (one frame's worth at most), so a
    /// caller can read exactly that much from its local side.
    pub fn output_room(&self) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        self.cfg
            .max_output
            .saturating_sub(self.output.len() + HEADER_LEN)
            .min(self.cfg.max_frame)
    }

    /// The stream is known (opened or accepted, and not yet forgotten).
    pub fn has_stream(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// `n` bytes of [`Session::pending_output`] were handed to the data channel.
    pub fn advance_output(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
    }

    /// When [`Session::handle_timeout`] wants to run (keepalive NOPs), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let every = self.cfg.keepalive?;
        Some(self.last_tx + every)
    }

    /// Sends a NOP when keepalive is on and nothing was sent for an interval. Only agents that
    /// still run smux keepalive need them (§7.3); to every other agent they are noise.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(every) = self.cfg.keepalive else {
            return;
        };
        if now.saturating_duration_since(self.last_tx) >= every && self.broken.is_none() {
            self.emit(now, Cmd::Nop, 0, &[]);
        }
    }

    /// The keepalive interval in force (None: no NOPs).
    pub fn keepalive(&self) -> Option<std::time::Duration> {
        self.cfg.keepalive
    }

    /// Streams still open in either direction.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    fn emit(&mut self, now: Instant, cmd: Cmd, id: u32, data: &[u8]) {
        frame::encode(&mut self.output, cmd, id, data);
        self.last_tx = now;
    }

    fn forget_if_done(&mut self, id: u32) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.fin_tx && s.fin_rx && s.rx.is_empty())
        {
            self.streams.remove(&id);
        }
    }

    fn check(&self) -> Result<(), SessionError> {
        match self.broken {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
