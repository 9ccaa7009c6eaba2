//! smux v1 frames (reference §7.4): an 8-byte little-endian header and up to 65535 data bytes.
//!
//! ```text
//! | ver u8 (=1) | cmd u8 | length u16 LE | stream id u32 LE | data[length] |
//! ```
//!
//! [`parse`] is incremental: frames are not aligned to data-channel messages, so the caller
//! keeps unparsed bytes and calls again when more arrive. A frame of another version or an
//! unknown command is a protocol error (xtaci/smux closes the session on both).

/// The protocol version the official client and agent speak (`smux.DefaultConfig()`).
pub const VERSION: u8 = 1;
/// Header bytes before the data.
pub const HEADER_LEN: usize = 8;
/// Data bytes one frame can carry (the length field is a u16).
pub const MAX_DATA: usize = u16::MAX as usize;

/// A frame's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Open a stream.
    Syn = 0,
    /// The sender will write no more on this stream (half-close).
    Fin = 1,
    /// Stream data.
    Psh = 2,
    /// Keepalive; carries nothing.
    Nop = 3,
}

impl Cmd {
    fn from_wire(b: u8) -> Result<Self, FrameError> {
        Ok(match b {
            0 => Self::Syn,
            1 => Self::Fin,
            2 => Self::Psh,
            3 => Self::Nop,
            // 4 is UPD, smux v2's window update: a v1 peer never sends it.
            other => return Err(FrameError::UnknownCmd(other)),
        })
    }
}

/// Why a byte stream is not smux v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("smux frame of version {0}; only version 1 is spoken on SSM port sessions")]
    BadVersion(u8),
    #[error("smux frame with unknown command {0}")]
    UnknownCmd(u8),
}

/// A parsed frame header; its data follows in the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub cmd: Cmd,
    pub stream: u32,
    pub len: usize,
}

/// Parses the frame at the start of `buf`: `Ok(None)` until the whole frame is there, else the
/// header and the frame's total length (header plus data).
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        // Reject a bad version or command as soon as its byte is in, not a header later.
        if let Some(&v) = buf.first() {
            check_version(v)?;
        }
        if let Some(&c) = buf.get(1) {
            Cmd::from_wire(c)?;
        }
        return Ok(None);
    };
    let [ver, cmd, l0, l1, s0, s1, s2, s3] = <[u8; HEADER_LEN]>::try_from(head).unwrap_or_default();
    check_version(ver)?;
    let header = Header {
        cmd: Cmd::from_wire(cmd)?,
        stream: u32::from_le_bytes([s0, s1, s2, s3]),
        len: usize::from(u16::from_le_bytes([l0, l1])),
    };
    let total = HEADER_LEN + header.len;
    Ok((buf.len() >= total).then_some((header, total)))
}

fn check_version(v: u8) -> Result<(), FrameError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(FrameError::BadVersion(v))
    }
}

/// Appends one frame to `out`. `data` longer than [`MAX_DATA`] is a caller bug and is cut.
pub fn encode(out: &mut Vec<u8>, cmd: Cmd, stream: u32, data: &[u8]) {
    let data = data.get(..data.len().min(MAX_DATA)).unwrap_or_default();
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.reserve(HEADER_LEN + data.len());
    out.push(VERSION);
    out.push(cmd as u8);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cmd: Cmd, stream: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, cmd, stream, data);
        v
    }

    /// The bytes §7.4 recorded from the vendored smux client (v1.5.16).
    #[test]
    fn encodes_the_official_clients_bytes() {
        assert_eq!(frame(Cmd::Syn, 3, b""), [1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(
            frame(Cmd::Psh, 3, b"abc"),
            [1, 2, 3, 0, 3, 0, 0, 0, 0x61, 0x62, 0x63]
        );
        assert_eq!(frame(Cmd::Fin, 3, b""), [1, 1, 0, 0, 3, 0, 0, 0]);
        assert_eq!(frame(Cmd::Syn, 5, b""), [1, 0, 0, 0, 5, 0, 0, 0]);
    }

    /// aws/session-manager-plugin#103: a PSH on stream 5 carrying a SOCKS5 greeting.
    #[test]
    fn parses_the_frame_reported_in_plugin_issue_103() {
        let wire = [1, 2, 3, 0, 5, 0, 0, 0, 5, 1, 0];
        let (h, used) = parse(&wire).unwrap().unwrap();
        assert_eq!(
            h,
            Header {
                cmd: Cmd::Psh,
                stream: 5,
                len: 3
            }
        );
        assert_eq!(used, wire.len());
        assert_eq!(wire.get(HEADER_LEN..used), Some(&[5, 1, 0][..]));
    }

    #[test]
    fn an_incomplete_frame_waits_for_more_bytes() {
        let wire = frame(Cmd::Psh, 7, &[9; 100]);
        for cut in 0..wire.len() {
            assert_eq!(parse(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(&wire).unwrap().unwrap().1, wire.len());
    }

    #[test]
    fn other_versions_and_unknown_commands_are_refused_at_once() {
        assert_eq!(parse(&[2]), Err(FrameError::BadVersion(2)));
        assert_eq!(parse(&[1, 4]), Err(FrameError::UnknownCmd(4)));
        assert_eq!(
            parse(&[1, 9, 0, 0, 1, 0, 0, 0]),
            Err(FrameError::UnknownCmd(9))
        );
    }

    #[test]
    fn oversized_data_is_cut_to_what_the_length_field_holds() {
        let v = frame(Cmd::Psh, 3, &vec![0; MAX_DATA + 10]);
        assert_eq!(v.len(), HEADER_LEN + MAX_DATA);
        assert_eq!(parse(&v).unwrap().unwrap().0.len, MAX_DATA);
    }
}
