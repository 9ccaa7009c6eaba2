//! Typed payloads carried inside [`Message`](super::message::Message)s (reference §3, §4, §7.5).
//!
//! JSON field names and order match what the official plugin and agent emit, so our frames are
//! byte-identical to theirs (pinned by the §11 golden vectors). Decoding is lenient about extra
//! fields, strict about types, and bounded by the message payload cap.

use serde::{Deserialize, Serialize};

/// Errors turning payload bytes into a typed payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("{what} payload is not valid JSON for its schema: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("Flag payload must be 4 bytes, got {0}")]
    FlagLength(usize),
}

fn from_json<'a, T: Deserialize<'a>>(what: &'static str, b: &'a [u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(b).map_err(|source| PayloadError::Json { what, source })
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no I/O).
    serde_json::to_vec(v).unwrap_or_default()
}

/// Payload of an `acknowledge` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage", default)]
    pub is_sequential: bool,
}

impl Acknowledge {
    /// The JSON, byte for byte what serde_json writes (see [`Acknowledge::write`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(160 + self.message_type.len() + self.message_id.len());
        Self::write(
            &mut v,
            &self.message_type,
            &self.message_id,
            self.sequence_number,
            self.is_sequential,
        );
        v
    }

    /// Appends the JSON of an acknowledge with these fields to `out`, byte for byte what
    /// serde_json writes. Every received stream message gets one, so the usual case (strings
    /// that need no escaping: the message type's name and a hyphenated UUID) is written
    /// directly, with no allocation; serde_json's escaping scan and the formatting machinery
    /// were a few per cent of the CPU per message. Anything else goes through serde_json.
    pub fn write(
        out: &mut Vec<u8>,
        message_type: &str,
        message_id: &str,
        sequence_number: i64,
        is_sequential: bool,
    ) {
        let plain = |s: &str| !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        if !(plain(message_type) && plain(message_id)) {
            let ack = Self {
                message_type: message_type.to_owned(),
                message_id: message_id.to_owned(),
                sequence_number,
                is_sequential,
            };
            out.extend_from_slice(&to_json(&ack));
            return;
        }
        out.extend_from_slice(br#"{"AcknowledgedMessageType":""#);
        out.extend_from_slice(message_type.as_bytes());
        out.extend_from_slice(br#"","AcknowledgedMessageId":""#);
        out.extend_from_slice(message_id.as_bytes());
        out.extend_from_slice(br#"","AcknowledgedMessageSequenceNumber":"#);
        out.extend_from_slice(itoa::Buffer::new().format(sequence_number).as_bytes());
        out.extend_from_slice(br#","IsSequentialMessage":"#);
        out.extend_from_slice(if is_sequential { b"true}" } else { b"false}" });
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("acknowledge", b)
    }
}

/// One action the agent asks the client to perform during the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedClientAction {
    #[serde(rename = "ActionType")]
    pub action_type: String,
    #[serde(rename = "ActionParameters", default)]
    pub action_parameters: serde_json::Value,
}

/// HandshakeRequest (PayloadType 5), agent → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
    #[serde(rename = "RequestedClientActions", default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

impl HandshakeRequest {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("HandshakeRequest", b)
    }
}

/// `ActionStatus` values (§4.3).
pub mod action_status {
    pub const SUCCESS: i32 = 1;
    pub const FAILED: i32 = 2;
    pub const UNSUPPORTED: i32 = 3;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessedClientAction {
    #[serde(rename = "ActionType")]
    pub action_type: String,
    #[serde(rename = "ActionStatus")]
    pub action_status: i32,
    #[serde(rename = "ActionResult", default)]
    pub action_result: serde_json::Value,
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// HandshakeResponse (PayloadType 6), client → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    #[serde(rename = "ClientVersion", default)]
    pub client_version: String,
    #[serde(rename = "ProcessedClientActions", default)]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    #[serde(rename = "Errors", default)]
    pub errors: Option<Vec<String>>,
}

impl HandshakeResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("HandshakeResponse", b)
    }
}

/// HandshakeComplete (PayloadType 7), agent → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeComplete {
    /// Nanoseconds (a Go `time.Duration`).
    #[serde(rename = "HandshakeTimeToComplete", default)]
    pub handshake_time_to_complete: i64,
    #[serde(rename = "CustomerMessage", default)]
    pub customer_message: String,
}

impl HandshakeComplete {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("HandshakeComplete", b)
    }
}

/// Payload of a `channel_closed` message (service → peer). `CreatedDate` is a string here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ChannelClosed {
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    #[serde(rename = "CreatedDate", default)]
    pub created_date: String,
    #[serde(rename = "DestinationId", default)]
    pub destination_id: String,
    #[serde(rename = "SessionId", default)]
    pub session_id: String,
    #[serde(rename = "MessageType", default)]
    pub message_type: String,
    #[serde(rename = "SchemaVersion", default)]
    pub schema_version: i64,
    #[serde(rename = "Output", default)]
    pub output: String,
}

impl ChannelClosed {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("channel_closed", b)
    }
}

/// Flag payloads (PayloadType 10): a 4-byte big-endian u32 (§7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    DisconnectToPort,
    TerminateSession,
    ConnectToPortError,
    Unknown(u32),
}

impl Flag {
    pub fn to_u32(self) -> u32 {
        match self {
            Self::DisconnectToPort => 1,
            Self::TerminateSession => 2,
            Self::ConnectToPortError => 3,
            Self::Unknown(v) => v,
        }
    }
    pub fn to_bytes(self) -> [u8; 4] {
        self.to_u32().to_be_bytes()
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        let a: [u8; 4] = b
            .try_into()
            .map_err(|_| PayloadError::FlagLength(b.len()))?;
        Ok(match u32::from_be_bytes(a) {
            1 => Self::DisconnectToPort,
            2 => Self::TerminateSession,
            3 => Self::ConnectToPortError,
            v => Self::Unknown(v),
        })
    }
}

/// The OpenDataChannel text frame, the first WebSocket message a client sends (§1.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDataChannel {
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    #[serde(rename = "RequestId")]
    pub request_id: String,
    #[serde(rename = "TokenValue")]
    pub token_value: String,
    #[serde(rename = "ClientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(
        rename = "ClientVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_version: Option<String>,
}

impl OpenDataChannel {
    pub fn to_json(&self) -> String {
        String::from_utf8(to_json(self)).unwrap_or_default()
    }
    pub fn from_bytes(b: &[u8]) -> Result<Self, PayloadError> {
        from_json("OpenDataChannel", b)
    }
}

/// Component-wise numeric version comparison as the agent and plugin do it: `a > b`.
/// Returns false when the component counts differ or a component is not a number (§4.3).
pub fn version_greater(a: &str, b: &str) -> bool {
    let pa: Option<Vec<u64>> = a.split('.').map(|p| p.parse().ok()).collect();
    let pb: Option<Vec<u64>> = b.split('.').map(|p| p.parse().ok()).collect();
    match (pa, pb) {
        (Some(x), Some(y)) if x.len() == y.len() => x > y,
        _ => false,
    }
}

/// `a >= b`, with the same rules as [`version_greater`] but padding missing components with 0
/// (the agent's ClientVersion check for smux, §4.3).
pub fn version_at_least(a: &str, b: &str) -> bool {
    let pa: Option<Vec<u64>> = a.split('.').map(|p| p.parse().ok()).collect();
    let pb: Option<Vec<u64>> = b.split('.').map(|p| p.parse().ok()).collect();
    match (pa, pb) {
        (Some(mut x), Some(mut y)) => {
            let n = x.len().max(y.len());
            x.resize(n, 0);
            y.resize(n, 0);
            x >= y
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The direct writer and serde_json agree on every input, escapes included.
        #[test]
        fn an_ack_is_written_exactly_as_serde_json_writes_it(
            message_type in "(output_stream_data|input_stream_data|\\PC{0,24}|[\\x00-\\x7f]{0,24})",
            message_id in "([0-9a-f-]{36}|\\PC{0,40}|[\\x00-\\x7f]{0,40})",
            sequence_number in any::<i64>(),
            is_sequential in any::<bool>(),
        ) {
            let ack = Acknowledge { message_type, message_id, sequence_number, is_sequential };
            prop_assert_eq!(
                String::from_utf8(ack.to_bytes()).unwrap(),
                serde_json::to_string(&ack).unwrap()
            );
        }
    }
}
