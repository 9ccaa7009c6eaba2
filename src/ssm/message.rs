//! The data-channel binary message ("ClientMessage"/"AgentMessage"), reference §2.
//!
//! Decoding is total: [`Message::parse`] returns `Ok(None)` (consuming nothing) when the input is
//! a prefix of a message, a typed [`DecodeError`] naming the field when it is not a message, and
//! checks every length against a cap before touching or allocating the payload.
//!
//! ```text
//! off size field           off size field
//!   0   4  HeaderLength=116  64  16 MessageId (UUID halves swapped)
//!   4  32  MessageType       80  32 PayloadDigest (SHA-256 of payload)
//!  36   4  SchemaVersion=1  112   4 PayloadType
//!  40   8  CreatedDate (ms) 116   4 PayloadLength
//!  48   8  SequenceNumber   120   N Payload
//!  56   8  Flags (1=SYN 2=FIN)
//! ```

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[rustfmt::skip]
mod layout {
    pub(super) const HEADER_LENGTH:   u32   = 116;
    pub(super) const MIN_HEADER_LENGTH: u32 = 112;
    /// HeaderLength values above this are not a message we understand; rejecting them bounds
    /// the work done on hostile input.
    pub(super) const MAX_HEADER_LENGTH: u32 = 1024;
    pub(super) const TYPE_OFF:        usize = 4;
    pub(super) const TYPE_LEN:        usize = 32;
    pub(super) const SCHEMA_OFF:      usize = 36;
    pub(super) const DATE_OFF:        usize = 40;
    pub(super) const SEQ_OFF:         usize = 48;
    pub(super) const FLAGS_OFF:       usize = 56;
    pub(super) const ID_OFF:          usize = 64;
    pub(super) const DIGEST_OFF:      usize = 80;
    pub(super) const PAYLOAD_TYPE_OFF: usize = 112;
}

/// Largest payload accepted on receive. The official ends send at most 1 KiB of stream data and
/// a few hundred bytes of JSON; 1 MiB leaves room for any control message while capping memory.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;

/// Fixed header size of every message we emit (HeaderLength 116 + the PayloadLength field).
pub const HEADER_SIZE: usize = 120;

/// Largest whole frame accepted (used to cap WebSocket message sizes too).
pub const MAX_FRAME_LEN: usize = layout::MAX_HEADER_LENGTH as usize + 4 + MAX_PAYLOAD_LEN;

/// Flags values the official ends send (§2.2).
pub mod flags {
    /// First message of a stream (agent's output seq 0).
    pub const SYN: u64 = 1;
    /// Last message of a stream.
    pub const FIN: u64 = 2;
    /// A one-message stream: acknowledges and other control messages.
    pub const SYN_FIN: u64 = 3;
}

/// MessageType strings (§3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MessageType {
    InputStreamData,
    OutputStreamData,
    Acknowledge,
    ChannelClosed,
    StartPublication,
    PausePublication,
    AgentSessionState,
    /// Anything else; kept so it can be logged and ignored (the plugin does the same).
    Other(String),
}

impl MessageType {
    pub fn as_str(&self) -> &str {
        match self {
            Self::InputStreamData => "input_stream_data",
            Self::OutputStreamData => "output_stream_data",
            Self::Acknowledge => "acknowledge",
            Self::ChannelClosed => "channel_closed",
            Self::StartPublication => "start_publication",
            Self::PausePublication => "pause_publication",
            Self::AgentSessionState => "agent_session_state",
            Self::Other(s) => s,
        }
    }

    pub fn from_wire(s: &str) -> Self {
        match s {
            "input_stream_data" => Self::InputStreamData,
            "output_stream_data" => Self::OutputStreamData,
            "acknowledge" => Self::Acknowledge,
            "channel_closed" => Self::ChannelClosed,
            "start_publication" => Self::StartPublication,
            "pause_publication" => Self::PausePublication,
            "agent_session_state" => Self::AgentSessionState,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Stream messages are the only ones that are sequenced, acknowledged and retransmitted.
    pub fn is_stream_data(&self) -> bool {
        matches!(self, Self::InputStreamData | Self::OutputStreamData)
    }
}

/// PayloadType values (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// 0: acknowledge and channel_closed carry no payload type.
    Undefined,
    Output,
    Error,
    Size,
    Parameter,
    HandshakeRequest,
    HandshakeResponse,
    HandshakeComplete,
    EncChallengeRequest,
    EncChallengeResponse,
    Flag,
    StdErr,
    ExitCode,
    Unknown(u32),
}

impl PayloadType {
    #[rustfmt::skip]
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Undefined            => 0,
            Self::Output               => 1,
            Self::Error                => 2,
            Self::Size                 => 3,
            Self::Parameter            => 4,
            Self::HandshakeRequest     => 5,
            Self::HandshakeResponse    => 6,
            Self::HandshakeComplete    => 7,
            Self::EncChallengeRequest  => 8,
            Self::EncChallengeResponse => 9,
            Self::Flag                 => 10,
            Self::StdErr               => 11,
            Self::ExitCode             => 12,
            Self::Unknown(v)           => v,
        }
    }

    #[rustfmt::skip]
    pub fn from_u32(v: u32) -> Self {
        match v {
            0  => Self::Undefined,
            1  => Self::Output,
            2  => Self::Error,
            3  => Self::Size,
            4  => Self::Parameter,
            5  => Self::HandshakeRequest,
            6  => Self::HandshakeResponse,
            7  => Self::HandshakeComplete,
            8  => Self::EncChallengeRequest,
            9  => Self::EncChallengeResponse,
            10 => Self::Flag,
            11 => Self::StdErr,
            12 => Self::ExitCode,
            v  => Self::Unknown(v),
        }
    }
}

/// One decoded (or to-be-encoded) data-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_type: MessageType,
    pub schema_version: u32,
    /// Milliseconds since the Unix epoch; must be non-zero on anything sent (§2.3).
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    pub message_id: Uuid,
    pub payload_type: PayloadType,
    pub payload: Bytes,
}

/// Why bytes are not a valid message. Each variant names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("HeaderLength {0} is outside {min}..={max}", min = layout::MIN_HEADER_LENGTH, max = layout::MAX_HEADER_LENGTH)]
    HeaderLength(u32),
    #[error("PayloadLength {0} exceeds the {MAX_PAYLOAD_LEN}-byte cap")]
    PayloadLength(u32),
    #[error("MessageType is not ASCII text")]
    MessageType,
    #[error("MessageType is empty")]
    EmptyMessageType,
    #[error("CreatedDate is zero")]
    CreatedDate,
    #[error("PayloadDigest does not match the SHA-256 of the payload")]
    PayloadDigest,
    #[error("{0} trailing bytes after the payload")]
    TrailingBytes(usize),
    /// A whole WebSocket message that ends before the lengths it declares: no more bytes will
    /// come, so this is a broken frame, not a length over a cap.
    #[error("frame is {got} bytes but its header declares {needed}")]
    Truncated { needed: usize, got: usize },
}

fn be_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

/// How long `prefix` says its message is, as far as the prefix tells: the HeaderLength field
/// (4 bytes), then the header, then the PayloadLength field and payload once those are present.
fn declared_len(prefix: &[u8]) -> usize {
    if prefix.len() < 4 {
        return 4;
    }
    let hl = be_u32(prefix, 0) as usize;
    if prefix.len() < hl + 4 {
        return hl + 4;
    }
    hl + 4 + be_u32(prefix, hl) as usize
}

/// The wire carries the UUID's low 8 bytes first, then the high 8 (§2.1).
pub fn uuid_to_wire(id: &Uuid) -> [u8; 16] {
    let b = id.as_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&b[8..]);
    out[8..].copy_from_slice(&b[..8]);
    out
}

pub fn uuid_from_wire(w: &[u8; 16]) -> Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[8..]);
    b[8..].copy_from_slice(&w[..8]);
    Uuid::from_bytes(b)
}

/// Whether `frame` is an `acknowledge` message, judged by its MessageType field alone (padded
/// with spaces, as we encode it, or NULs). Lets a shell treat acks apart without decoding.
pub fn is_acknowledge(frame: &[u8]) -> bool {
    const NAME: &[u8] = b"acknowledge";
    let Some(field) = frame.get(layout::TYPE_OFF..layout::TYPE_OFF + layout::TYPE_LEN) else {
        return false;
    };
    field
        .strip_prefix(NAME)
        .is_some_and(|pad| pad.iter().all(|&b| b == b' ' || b == 0))
}

impl Message {
    /// Parses one message from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` is a strict prefix of a message (nothing consumed), or the
    /// message and the number of bytes it used. Digest and sanity checks are skipped for
    /// start/pause_publication, whose headers the service may leave incomplete (§2.3).
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, DecodeError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let header_len = be_u32(buf, 0);
        if !(layout::MIN_HEADER_LENGTH..=layout::MAX_HEADER_LENGTH).contains(&header_len) {
            return Err(DecodeError::HeaderLength(header_len));
        }
        let hl = header_len as usize;
        if buf.len() < hl + 4 {
            return Ok(None);
        }
        let payload_len = be_u32(buf, hl);
        if payload_len as usize > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadLength(payload_len));
        }
        let total = hl + 4 + payload_len as usize;
        let Some(payload) = buf.get(hl + 4..total) else {
            return Ok(None);
        };

        let raw_type = buf
            .get(layout::TYPE_OFF..layout::TYPE_OFF + layout::TYPE_LEN)
            .unwrap_or_default();
        let type_str = std::str::from_utf8(raw_type).map_err(|_| DecodeError::MessageType)?;
        // Padding may mix spaces and NULs. Trimming both in one pass keeps decode(encode(m)) == m:
        // trimming NULs and then whitespace can expose more NULs (found by fuzz/frame_decode).
        let type_str = type_str.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if !type_str.is_ascii() {
            return Err(DecodeError::MessageType);
        }
        let message_type = MessageType::from_wire(type_str);
        let created_date = be_u64(buf, layout::DATE_OFF);
        let lenient = matches!(
            message_type,
            MessageType::StartPublication | MessageType::PausePublication
        );
        if !lenient {
            if type_str.is_empty() {
                return Err(DecodeError::EmptyMessageType);
            }
            if created_date == 0 {
                return Err(DecodeError::CreatedDate);
            }
            if !payload.is_empty() {
                let digest = Sha256::digest(payload);
                let wire = buf
                    .get(layout::DIGEST_OFF..layout::DIGEST_OFF + 32)
                    .unwrap_or_default();
                if digest.as_slice() != wire {
                    return Err(DecodeError::PayloadDigest);
                }
            }
        }
        let mut id = [0u8; 16];
        if let Some(s) = buf.get(layout::ID_OFF..layout::ID_OFF + 16) {
            id.copy_from_slice(s);
        }
        // HeaderLength 112 (reported for service-originated channel_closed) has no PayloadType.
        let payload_type = if hl >= layout::HEADER_LENGTH as usize {
            PayloadType::from_u32(be_u32(buf, layout::PAYLOAD_TYPE_OFF))
        } else {
            PayloadType::Undefined
        };
        let msg = Self {
            message_type,
            schema_version: be_u32(buf, layout::SCHEMA_OFF),
            created_date,
            sequence_number: be_u64(buf, layout::SEQ_OFF) as i64,
            flags: be_u64(buf, layout::FLAGS_OFF),
            message_id: uuid_from_wire(&id),
            payload_type,
            payload: Bytes::copy_from_slice(payload),
        };
        Ok(Some((msg, total)))
    }

    /// Decodes a whole WebSocket message: exactly one data-channel message, no trailing bytes.
    /// A frame shorter than its declared lengths is [`DecodeError::Truncated`]: no more will come.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        match Self::parse(frame)? {
            Some((msg, used)) if used == frame.len() => Ok(msg),
            Some((_, used)) => Err(DecodeError::TrailingBytes(frame.len() - used)),
            None => Err(DecodeError::Truncated {
                needed: declared_len(frame),
                got: frame.len(),
            }),
        }
    }

    pub fn encoded_len(&self) -> usize {
        HEADER_SIZE + self.payload.len()
    }

    /// Appends the wire form to `out` (HeaderLength 116, type padded with spaces, digest computed).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.encode_with(out, |o| o.extend_from_slice(&self.payload));
    }

    /// Appends the wire form of this header with the payload that `payload` appends to `out`
    /// (`self.payload` is not used): a payload built for one frame, such as an acknowledge,
    /// is written in place instead of in a buffer of its own. The digest and length are
    /// filled in once it is written.
    pub fn encode_with(&self, out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&layout::HEADER_LENGTH.to_be_bytes());
        let t = self.message_type.as_str().as_bytes();
        let t = t.get(..layout::TYPE_LEN).unwrap_or(t);
        out.extend_from_slice(t);
        out.extend(std::iter::repeat_n(b' ', layout::TYPE_LEN - t.len()));
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&uuid_to_wire(&self.message_id));
        let digest_at = out.len();
        out.extend_from_slice(&[0; 32]);
        out.extend_from_slice(&self.payload_type.to_u32().to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        payload(out);
        let (head, body) = out.split_at_mut(len_at + 4);
        if let Some(d) = head.get_mut(digest_at..digest_at + 32) {
            d.copy_from_slice(&Sha256::digest(&*body));
        }
        if let Some(l) = head.get_mut(len_at..) {
            l.copy_from_slice(&(body.len() as u32).to_be_bytes());
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    //! One vector per [`DecodeError`] variant, each built from a valid frame with one field
    //! broken, so a change to any check shows up as the variant it should produce.
    use super::*;

    fn valid() -> Vec<u8> {
        Message {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: 1_700_000_000_000,
            sequence_number: 7,
            flags: 0,
            message_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            payload_type: PayloadType::Output,
            payload: Bytes::from_static(b"hello"),
        }
        .to_bytes()
    }

    fn with(off: usize, bytes: &[u8]) -> Vec<u8> {
        let mut f = valid();
        f[off..off + bytes.len()].copy_from_slice(bytes);
        f
    }

    #[test]
    fn acknowledges_are_told_apart_by_their_type_field_alone() {
        let mut m = Message::decode(&valid()).unwrap();
        assert!(!is_acknowledge(&m.to_bytes()));
        m.message_type = MessageType::Acknowledge;
        assert!(is_acknowledge(&m.to_bytes()));
        m.message_type = MessageType::Other("acknowledgement".into());
        assert!(!is_acknowledge(&m.to_bytes()));
        assert!(!is_acknowledge(b"short"));
    }

    #[test]
    fn the_valid_vector_decodes() {
        let m = Message::decode(&valid()).unwrap();
        assert_eq!(m.payload.as_ref(), b"hello");
        assert_eq!(m.sequence_number, 7);
    }

    #[test]
    fn header_length_below_the_minimum_is_refused() {
        let f = with(0, &111u32.to_be_bytes());
        assert_eq!(Message::decode(&f), Err(DecodeError::HeaderLength(111)));
    }

    #[test]
    fn header_length_above_the_cap_is_refused_before_waiting_for_it() {
        // Only 8 bytes: the cap is checked before asking for more.
        let f = 1025u32.to_be_bytes().repeat(2);
        assert_eq!(Message::parse(&f), Err(DecodeError::HeaderLength(1025)));
    }

    #[test]
    fn payload_length_over_the_cap_is_refused_before_the_payload_arrives() {
        let over = (MAX_PAYLOAD_LEN + 1) as u32;
        let f = with(116, &over.to_be_bytes());
        let header_only = f.get(..HEADER_SIZE).unwrap();
        assert_eq!(
            Message::parse(header_only),
            Err(DecodeError::PayloadLength(over))
        );
    }

    #[test]
    fn message_type_that_is_not_utf8_is_refused() {
        let f = with(layout::TYPE_OFF, &[0xff, 0xfe]);
        assert_eq!(Message::decode(&f), Err(DecodeError::MessageType));
    }

    #[test]
    fn message_type_that_is_not_ascii_is_refused() {
        let f = with(layout::TYPE_OFF, "é".as_bytes());
        assert_eq!(Message::decode(&f), Err(DecodeError::MessageType));
    }

    #[test]
    fn empty_message_type_is_refused() {
        let f = with(layout::TYPE_OFF, &[b' '; layout::TYPE_LEN]);
        assert_eq!(Message::decode(&f), Err(DecodeError::EmptyMessageType));
    }

    #[test]
    fn zero_created_date_is_refused() {
        let f = with(layout::DATE_OFF, &0u64.to_be_bytes());
        assert_eq!(Message::decode(&f), Err(DecodeError::CreatedDate));
    }

    #[test]
    fn payload_not_matching_its_digest_is_refused() {
        let f = with(HEADER_SIZE, b"j");
        assert_eq!(Message::decode(&f), Err(DecodeError::PayloadDigest));
    }

    #[test]
    fn bytes_after_the_payload_are_refused_with_their_count() {
        let mut f = valid();
        f.extend_from_slice(b"xyz");
        assert_eq!(Message::decode(&f), Err(DecodeError::TrailingBytes(3)));
    }

    #[test]
    fn a_frame_cut_inside_the_payload_is_truncated_not_over_a_cap() {
        let f = valid();
        let cut = f.get(..f.len() - 2).unwrap();
        assert_eq!(
            Message::decode(cut),
            Err(DecodeError::Truncated {
                needed: f.len(),
                got: f.len() - 2
            })
        );
    }

    #[test]
    fn a_frame_cut_inside_the_header_is_truncated_not_a_bad_header_length() {
        let f = valid();
        assert_eq!(
            Message::decode(f.get(..50).unwrap()),
            Err(DecodeError::Truncated {
                needed: HEADER_SIZE,
                got: 50
            })
        );
        assert_eq!(
            Message::decode(f.get(..2).unwrap()),
            Err(DecodeError::Truncated { needed: 4, got: 2 })
        );
    }

    /// fuzz/frame_decode crash: NULs, a CR, then NULs again before the text. The type decoded
    /// from it must survive an encode/decode round trip unchanged.
    #[test]
    fn message_type_padding_of_mixed_nuls_and_whitespace_round_trips() {
        let mut raw = [0u8; layout::TYPE_LEN];
        raw[3] = b'\r';
        raw[12] = 0x0e;
        raw[22..].copy_from_slice(b"tacknowded");
        let mut frame = Message {
            message_type: MessageType::InputStreamData,
            schema_version: 1,
            created_date: 1,
            sequence_number: 0,
            flags: 0,
            message_id: Uuid::nil(),
            payload_type: PayloadType::Undefined,
            payload: Bytes::new(),
        }
        .to_bytes();
        frame[layout::TYPE_OFF..layout::TYPE_OFF + layout::TYPE_LEN].copy_from_slice(&raw);

        let msg = Message::decode(&frame).unwrap();
        assert_eq!(
            msg.message_type,
            MessageType::Other("\u{e}\0\0\0\0\0\0\0\0\0tacknowded".into())
        );
        assert_eq!(Message::decode(&msg.to_bytes()).unwrap(), msg);
    }
}
