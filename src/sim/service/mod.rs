//! The simulated Session Manager service (MGS): accepts data-channel WebSockets, checks the
//! token in the OpenDataChannel frame, and relays frames between the client and the agent,
//! injecting the fault plan. Like the real service it survives client WebSocket drops: the
//! agent is told `pause_publication` until the client resumes with a fresh token, then
//! `start_publication`. It sends `channel_closed` when the session ends.

mod relay;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::sim::faults::{FaultCounts, FaultPlan};
use crate::sim::memlink::MemLink;
use crate::ssm::driver::{unix_ms, WsStream};
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

/// A pause_publication or start_publication message for the agent.
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

/// The service's channel_closed message, carrying the agent's final output.
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

/// Everything a relay needs.
pub struct RelayParams {
    pub session_id: String,
    pub plan: FaultPlan,
    pub idle_timeout: Duration,
    pub salt: u64,
}

/// Relays one session until it ends; `attach` delivers resumed client WebSockets.
pub async fn relay(
    p: RelayParams,
    first: WsStream,
    agent: MemLink,
    attach: mpsc::Receiver<WsStream>,
    mut terminated: watch::Receiver<bool>,
    counts: Arc<Mutex<FaultCounts>>,
    agent_output: oneshot::Receiver<String>,
) -> RelayEnd {
    let terminated = Box::pin(async move {
        let _ = terminated.wait_for(|t| *t).await;
    });
    let links = relay::Links {
        client: first,
        agent,
        attach,
        terminated,
    };
    relay::Relay::new(p, links, counts).run(agent_output).await
}

#[cfg(test)]
mod tests;
