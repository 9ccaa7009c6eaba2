//! The simulated Session Manager service (MGS): accepts data-channel WebSockets, checks the
//! token in the OpenDataChannel frame, and relays frames between the client and the agent,
//! injecting the fault plan. Like the real service it survives client WebSocket drops: the
//! agent is told `pause_publication` until the client resumes with a fresh token, then
//! `start_publication`. It sends `channel_closed` when the session ends.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::sim::faults::{DirFaults, FaultCounts, FaultPlan, Faults};
use crate::sim::memlink::MemLink;
use crate::ssm::driver::{unix_ms, Outbox, WsStream};
use crate::ssm::message::{flags, Message, MessageType, PayloadType};
use crate::ssm::payload::{ChannelClosed, OpenDataChannel};

/// How long a new WebSocket may take to present its OpenDataChannel frame.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and parses the first (text) frame of a data-channel WebSocket.
pub async fn read_open_frame(ws: &mut WsStream) -> Result<OpenDataChannel, String> {
    let first = tokio::time::timeout(OPEN_TIMEOUT, ws.next())
        .await
        .map_err(|_| "no OpenDataChannel frame within 10 s".to_owned())?;
    match first {
        Some(Ok(WsMessage::Text(t))) => OpenDataChannel::from_bytes(t.as_bytes())
            .map_err(|e| format!("bad OpenDataChannel frame: {e}")),
        Some(Ok(other)) => Err(format!(
            "first frame must be a text OpenDataChannel frame, got {}",
            kind(&other)
        )),
        Some(Err(e)) => Err(format!("WebSocket error before OpenDataChannel: {e}")),
        None => Err("closed before OpenDataChannel".into()),
    }
}

fn kind(m: &WsMessage) -> &'static str {
    match m {
        WsMessage::Text(_) => "text",
        WsMessage::Binary(_) => "binary",
        WsMessage::Ping(_) => "ping",
        WsMessage::Pong(_) => "pong",
        WsMessage::Close(_) => "close",
        WsMessage::Frame(_) => "frame",
    }
}

/// Closes a WebSocket with a code and reason (best effort).
pub async fn close_with(ws: &mut WsStream, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        ws.send(WsMessage::Close(Some(frame))),
    )
    .await;
}

fn control(t: MessageType) -> WsMessage {
    let m = Message {
        message_type: t,
        schema_version: 1,
        created_date: unix_ms(),
        sequence_number: 0,
        flags: flags::SYN_FIN,
        message_id: uuid::Uuid::new_v4(),
        payload_type: PayloadType::Undefined,
        payload: Bytes::new(),
    };
    WsMessage::Binary(Bytes::from(m.to_bytes()))
}

fn channel_closed(session_id: &str, output: &str) -> WsMessage {
    let id = uuid::Uuid::new_v4();
    let payload = ChannelClosed {
        message_id: id.to_string(),
        created_date: unix_ms().to_string(),
        destination_id: session_id.to_owned(),
        session_id: session_id.to_owned(),
        message_type: "channel_closed".into(),
        schema_version: 1,
        output: output.to_owned(),
    };
    let m = Message {
        message_type: MessageType::ChannelClosed,
        schema_version: 1,
        created_date: unix_ms(),
        sequence_number: 0,
        flags: flags::SYN_FIN,
        message_id: id,
        payload_type: PayloadType::Undefined,
        payload: Bytes::from(payload.to_bytes()),
    };
    WsMessage::Binary(Bytes::from(m.to_bytes()))
}

/// Why a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    /// The agent finished (target closed, handshake failed, TerminateSession flag).
    AgentDone,
    /// TerminateSession API.
    Terminated,
    /// No client came back within the idle timeout.
    ClientGone,
}

/// Frames held back by a delay or reorder verdict, released in time order.
#[derive(Default)]
struct Delayed {
    heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    n: u64,
}

impl Delayed {
    fn push(&mut self, at: Instant, frame: &[u8]) {
        self.n += 1;
        self.heap.push(Reverse((at, self.n, frame.to_vec())));
    }
    fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }
    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_at()? <= now {
            self.heap.pop().map(|Reverse((_, _, f))| f)
        } else {
            None
        }
    }
}

/// Everything a relay needs.
pub struct RelayParams {
    pub session_id: String,
    pub plan: FaultPlan,
    pub idle_timeout: Duration,
    pub salt: u64,
}

fn apply(
    faults: &mut Faults,
    f: &DirFaults,
    frame: &[u8],
    now: Instant,
    q: &mut Outbox,
    delayed: &mut Delayed,
) {
    let v = faults.decide(f);
    for _ in 0..v.copies {
        if v.delay.is_zero() && delayed.heap.is_empty() {
            q.push(WsMessage::Binary(Bytes::copy_from_slice(frame)));
        } else {
            delayed.push(now + v.delay, frame);
        }
    }
}

/// Relays one session until it ends; `attach` delivers resumed client WebSockets.
pub async fn relay(
    p: RelayParams,
    first: WsStream,
    agent: MemLink,
    mut attach: mpsc::Receiver<WsStream>,
    mut terminated: tokio::sync::watch::Receiver<bool>,
    counts: std::sync::Arc<std::sync::Mutex<FaultCounts>>,
    agent_output: tokio::sync::oneshot::Receiver<String>,
) -> RelayEnd {
    let mut faults = Faults::new(p.plan.seed, p.salt);
    let (mut c_sink, mut c_stream) = {
        let (s, r) = first.split();
        (Some(s), Some(r))
    };
    let (mut a_sink, mut a_stream) = agent.split();
    let (mut to_client, mut to_agent) = (Outbox::default(), Outbox::default());
    let (mut d_client, mut d_agent) = (Delayed::default(), Delayed::default());
    let mut bytes_since_kill: u64 = 0;
    let mut next_kill = p.plan.kill_every.map(|d| Instant::now() + d);
    let mut gone_since: Option<Instant> = None;
    let end = loop {
        if let Ok(mut c) = counts.lock() {
            *c = faults.counts.clone();
        }
        let now = Instant::now();
        while let Some(f) = d_agent.pop_due(now) {
            to_agent.push(WsMessage::Binary(Bytes::from(f)));
        }
        while let Some(f) = d_client.pop_due(now) {
            if c_sink.is_some() {
                to_client.push(WsMessage::Binary(Bytes::from(f)));
            }
        }
        let kill_now = p
            .plan
            .kill_after_bytes
            .is_some_and(|n| bytes_since_kill >= n)
            || next_kill.is_some_and(|t| now >= t);
        if kill_now && c_sink.is_some() {
            faults.counts.kills += 1;
            bytes_since_kill = 0;
            next_kill = p.plan.kill_every.map(|d| now + d);
            if let (Some(mut s), Some(r)) = (c_sink.take(), c_stream.take()) {
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), to_client.pump(&mut s)).await;
                if let Ok(mut ws) = s.reunite(r) {
                    close_with(&mut ws, CloseCode::Normal, "Bye").await;
                }
            }
            to_client.clear();
            to_agent.push(control(MessageType::PausePublication));
            gone_since = Some(now);
        }
        let wake = [
            d_agent.next_at(),
            d_client.next_at(),
            next_kill,
            gone_since.map(|t| t + p.idle_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            () = async { let _ = terminated.wait_for(|t| *t).await; } => break RelayEnd::Terminated,
            m = async { match c_stream.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } }, if c_stream.is_some() => {
                match m {
                    Some(Ok(WsMessage::Binary(b))) => {
                        bytes_since_kill += b.len() as u64;
                        apply(&mut faults, &p.plan.to_agent, &b, Instant::now(), &mut to_agent, &mut d_agent);
                    }
                    Some(Ok(WsMessage::Text(t))) => {
                        apply(&mut faults, &p.plan.to_agent, t.as_bytes(), Instant::now(), &mut to_agent, &mut d_agent);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        c_sink = None;
                        c_stream = None;
                        to_client.clear();
                        to_agent.push(control(MessageType::PausePublication));
                        gone_since = Some(Instant::now());
                    }
                }
            }
            m = a_stream.next() => match m {
                Some(Ok(WsMessage::Binary(b))) => {
                    if c_sink.is_some() {
                        bytes_since_kill += b.len() as u64;
                        apply(&mut faults, &p.plan.to_client, &b, Instant::now(), &mut to_client, &mut d_client);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break RelayEnd::AgentDone,
            },
            ws = attach.recv() => match ws {
                Some(ws) => {
                    let (s, r) = ws.split();
                    c_sink = Some(s);
                    c_stream = Some(r);
                    to_client.clear();
                    gone_since = None;
                    to_agent.push(control(MessageType::StartPublication));
                }
                None => break RelayEnd::ClientGone,
            },
            r = async { match c_sink.as_mut() { Some(s) => to_client.pump(s).await, None => Ok(()) } }, if c_sink.is_some() && !to_client.is_idle() => {
                if r.is_err() {
                    c_sink = None;
                    c_stream = None;
                    to_client.clear();
                    to_agent.push(control(MessageType::PausePublication));
                    gone_since = Some(Instant::now());
                }
            }
            r = to_agent.pump(&mut a_sink), if !to_agent.is_idle() => {
                if r.is_err() {
                    break RelayEnd::AgentDone;
                }
            }
            () = async { match wake { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } }, if wake.is_some() => {
                if gone_since.is_some_and(|t| t.elapsed() >= p.idle_timeout) {
                    break RelayEnd::ClientGone;
                }
            }
        }
    };
    if let Ok(mut c) = counts.lock() {
        *c = faults.counts.clone();
    }
    // Let the agent's last frames reach the client, then say channel_closed.
    if let (Some(mut s), Some(r)) = (c_sink, c_stream) {
        if end == RelayEnd::AgentDone {
            while let Ok(Some(Ok(WsMessage::Binary(b)))) =
                tokio::time::timeout(Duration::from_millis(50), a_stream.next()).await
            {
                to_client.push(WsMessage::Binary(b));
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
        to_client.push(channel_closed(&p.session_id, &output));
        let _ = tokio::time::timeout(Duration::from_secs(2), to_client.pump(&mut s)).await;
        if let Ok(mut ws) = s.reunite(r) {
            close_with(&mut ws, CloseCode::Normal, "session closed").await;
        }
    }
    end
}
