//! Framed stdin for `exec -i`: the real agent gives a NonInteractiveCommands command no stdin
//! at all, so stdin travels through an InteractiveCommands pty instead. A pty would mangle
//! raw bytes (line editing, signals, a 4 KiB line limit, no way to say EOF without ending the
//! session), so the client sends base64 lines and a last line `:session-proxy:<token>:eof`;
//! on the target, `sed` stops at that line and `base64 -d` hands the command its bytes and
//! then EOF (see [`super::wrap`]).
//!
//! The lines together are one base64 text: only whole 3-byte groups are encoded until the end,
//! so padding appears once, at the very end, which every `base64 -d` accepts.

use base64::Engine as _;

use super::marker::Token;

/// Input bytes per full line (76 base64 characters, as `base64` itself writes).
pub const LINE_BYTES: usize = 57;

/// Turns stdin into base64 lines and the end line.
#[derive(Debug)]
pub struct StdinFramer {
    /// 0–2 bytes left over from the last call (not yet a whole group).
    carry: Vec<u8>,
    end_line: String,
    ended: bool,
}

impl StdinFramer {
    pub fn new(token: &Token) -> Self {
        Self {
            carry: Vec::with_capacity(2),
            end_line: format!("{}eof\n", token.tag()),
            ended: false,
        }
    }

    /// Encodes `input`, appending whole lines to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.carry.extend_from_slice(input);
        let whole = self.carry.len() - self.carry.len() % 3;
        let rest = self.carry.split_off(whole);
        for line in self.carry.chunks(LINE_BYTES) {
            push_line(line, out);
        }
        self.carry = rest;
    }

    /// Stdin ended: the last bytes (padded) and the end line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if !self.carry.is_empty() {
            push_line(&self.carry, out);
            self.carry.clear();
        }
        self.abort(out);
    }

    /// The command already exited: just the end line, so the decoder on the target stops.
    pub fn abort(&mut self, out: &mut Vec<u8>) {
        if !self.ended {
            out.extend_from_slice(self.end_line.as_bytes());
            self.ended = true;
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

fn push_line(bytes: &[u8], out: &mut Vec<u8>) {
    let mut s = String::with_capacity(bytes.len() / 3 * 4 + 5);
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut s);
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> Token {
        Token::random()
    }

    /// What the target's `sed` + `base64 -d` make of the framed text.
    fn decode(framed: &[u8], t: &Token) -> (Vec<u8>, bool) {
        let text = String::from_utf8(framed.to_vec()).unwrap();
        let end = format!("{}eof", t.tag());
        let mut b64 = String::new();
        for line in text.lines() {
            if line == end {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&b64)
                    .unwrap();
                return (bytes, true);
            }
            assert!(line.len() <= 76, "{line}");
            b64.push_str(line);
        }
        (Vec::new(), false)
    }

    #[test]
    fn empty_stdin_is_just_the_end_line() {
        let t = token();
        let mut f = StdinFramer::new(&t);
        let mut out = Vec::new();
        f.finish(&mut out);
        assert_eq!(out, format!("{}eof\n", t.tag()).into_bytes());
        assert_eq!(decode(&out, &t), (vec![], true));
    }

    #[test]
    fn after_abort_no_more_lines_are_sent() {
        let t = token();
        let mut f = StdinFramer::new(&t);
        let mut out = Vec::new();
        f.encode(b"abcd", &mut out);
        f.abort(&mut out);
        let n = out.len();
        f.encode(b"more", &mut out);
        f.finish(&mut out);
        assert_eq!(out.len(), n);
        assert!(f.is_ended());
    }

    proptest! {
        /// Any stdin, read in any pieces, decodes on the target to exactly itself, then EOF.
        #[test]
        fn stdin_in_any_pieces_decodes_to_itself(
            data in prop::collection::vec(any::<u8>(), 0..3000),
            cuts in prop::collection::vec(1usize..200, 1..20),
        ) {
            let t = token();
            let mut f = StdinFramer::new(&t);
            let mut out = Vec::new();
            let mut rest = &data[..];
            let mut sizes = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                f.encode(&rest[..n], &mut out);
                prop_assert!(f.carry.len() < 3);
                rest = &rest[n..];
            }
            f.finish(&mut out);
            prop_assert_eq!(decode(&out, &t), (data, true));
        }
    }
}
