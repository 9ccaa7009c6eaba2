//! The end marker of a wrapped command: the wrapper shell prints
//! `<nl>:session-proxy:<token>:<value><nl>` (the exit status, or `ready` when it can take
//! framed stdin), and [`MarkerFilter`] takes it back out of the output stream.
//!
//! Why a per-run random token: the command's own output may contain marker-looking lines (a
//! nested `exec`, a log of an earlier run); only this run's token counts, anything else passes
//! through untouched. Why the leading newline: output need not end with one, and the marker
//! must start a line to be recognised; the wrapper always adds exactly one newline before the
//! marker and the filter strips exactly that one.
//!
//! The filter is a streaming state machine: the marker may be cut across any chunk boundary,
//! so it holds back at most one marker's length of bytes that could still become a marker.

/// The fixed text between the newline and the token.
pub const PREFIX: &str = ":session-proxy:";

/// Longest value after the token (`ready`, or an exit status of up to three digits).
const MAX_VALUE: usize = 5;

/// One run's random token: 32 lowercase hex digits (128 bits from `rand`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn random() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `:session-proxy:<token>:`, what precedes a marker's value.
    pub fn tag(&self) -> String {
        format!("{PREFIX}{}:", self.0)
    }
}

/// How lines end in the stream: a pipe gives `\n`; a pty with `onlcr` (the `-t` mode) turns
/// the wrapper's `\n` into `\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    Lf,
    CrLf,
}

impl LineEnd {
    fn bytes(self) -> &'static [u8] {
        match self {
            Self::Lf => b"\n",
            Self::CrLf => b"\r\n",
        }
    }
}

/// What a marker said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The wrapper is ready for framed stdin (`-i`).
    Ready,
    /// The command exited with this status; the wrapper prints nothing after it.
    Exit(u8),
}

/// How far held bytes match a marker.
enum Match {
    No,
    Partial,
    Full(Event),
}

/// Strips this run's markers from a byte stream and reports them.
#[derive(Debug)]
pub struct MarkerFilter {
    /// `<nl>:session-proxy:<token>:`.
    head: Vec<u8>,
    nl: &'static [u8],
    /// Bytes that may still be the start of a marker (never longer than one marker).
    held: Vec<u8>,
    /// The exit marker was seen: everything after it is plain output.
    exited: bool,
}

impl MarkerFilter {
    pub fn new(token: &Token, line_end: LineEnd) -> Self {
        let nl = line_end.bytes();
        let mut head = nl.to_vec();
        head.extend_from_slice(token.tag().as_bytes());
        Self {
            head,
            nl,
            held: Vec::new(),
            exited: false,
        }
    }

    /// The longest run of bytes the filter ever holds back.
    pub fn max_held(&self) -> usize {
        self.head.len() + MAX_VALUE + self.nl.len()
    }

    /// Filters `input`, appending the output bytes to `out` and the markers found to `events`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, events: &mut Vec<Event>) {
        let first = self.head.first().copied().unwrap_or(b'\n');
        while !input.is_empty() {
            if self.exited {
                out.extend_from_slice(input);
                return;
            }
            if self.held.is_empty() {
                // Fast path: nothing can start a marker before the next line end.
                match input.iter().position(|&b| b == first) {
                    None => {
                        out.extend_from_slice(input);
                        return;
                    }
                    Some(i) => {
                        let (plain, rest) = input.split_at(i);
                        out.extend_from_slice(plain);
                        input = rest;
                    }
                }
            }
            if let Some((&b, rest)) = input.split_first() {
                self.held.push(b);
                input = rest;
                self.settle(out, events);
            }
        }
    }

    /// The stream ended: bytes held back were not a marker after all.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }

    /// Releases held bytes from the front until what is left could still be a marker.
    fn settle(&mut self, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        while !self.held.is_empty() {
            match self.classify(&self.held) {
                Match::Partial => return,
                Match::Full(ev) => {
                    self.held.clear();
                    self.exited = matches!(ev, Event::Exit(_));
                    events.push(ev);
                    return;
                }
                Match::No => {
                    out.push(self.held.remove(0));
                }
            }
        }
    }

    fn classify(&self, s: &[u8]) -> Match {
        let n = s.len().min(self.head.len());
        if s.get(..n) != self.head.get(..n) {
            return Match::No;
        }
        let Some(rest) = s.get(self.head.len()..) else {
            return Match::Partial;
        };
        let value_len = rest
            .iter()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        if value_len > MAX_VALUE {
            return Match::No;
        }
        let (value, after) = rest.split_at(value_len);
        if after.is_empty() {
            return Match::Partial;
        }
        let m = after.len().min(self.nl.len());
        if value.is_empty() || after.get(..m) != self.nl.get(..m) || after.len() > self.nl.len() {
            return Match::No;
        }
        if after.len() < self.nl.len() {
            return Match::Partial;
        }
        match parse_value(value) {
            Some(ev) => Match::Full(ev),
            None => Match::No,
        }
    }
}

fn parse_value(v: &[u8]) -> Option<Event> {
    if v == b"ready" {
        return Some(Event::Ready);
    }
    let s = std::str::from_utf8(v).ok()?;
    // `$?` prints without leading zeros; anything else is not our wrapper's.
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u8>().ok().map(Event::Exit)
}

#[cfg(test)]
mod tests;
