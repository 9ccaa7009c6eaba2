//! \[core\] The control protocol between `session-proxy` commands and the running master: one
//! JSON object per line in each direction, every object carrying the protocol version `v`.
//!
//! ```text
//! client → {"v":1,"cmd":"status"}                       master → {"v":1,"type":"status",...}
//! client → {"v":1,"cmd":"connect","upstream":"prod"}    master → {"v":1,"type":"progress",...}*
//!                                                              {"v":1,"type":"done",...}
//! client → {"v":1,"cmd":"route","destination":"10.0.0.5"}
//!                                                       master → {"v":1,"type":"done",...}
//! client → {"v":1,"cmd":"open","host":"10.0.0.5","port":22}
//!                                                       master → {"v":1,"type":"stream"}
//!          ...after which the same connection carries the raw bytes of the stream.
//! ```
//!
//! Sans-IO: [`find_line`] frames a buffer (incomplete input is `Ok(None)`, a line longer than
//! [`MAX_LINE`] is an error before anything is allocated for it), [`decode_request`] /
//! [`decode_response`] parse one line, and the encoders append a line to a caller's buffer.

use serde::{Deserialize, Serialize};

use crate::forward::stats::ForwardStatus;
use crate::socks::server::StatsSnapshot;
use crate::upstream::status::PoolStatus;

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;
/// Longest accepted line, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a line could not be framed or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("control message longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("control message is not valid JSON: {0}")]
    Json(String),
    #[error("control protocol version {got} is not supported (this build speaks {VERSION}); use the same session-proxy binary for the master and its commands")]
    Version { got: u64 },
    #[error("control message has no version field \"v\"")]
    NoVersion,
    #[error("control message has the key \"{0}\" more than once; send each key once")]
    DuplicateKey(String),
}

/// A command for the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    /// `upstream` names an upstream or a forward (its listen address).
    Connect {
        upstream: String,
    },
    Disconnect {
        upstream: String,
    },
    Reload,
    Stop,
    /// Open a stream to `host:port` through upstream `via` (`forward --via`), or else the one
    /// routed for `host`; on success the connection turns into that stream. Reject routes
    /// hold either way.
    Open {
        host: String,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    /// Where `destination` (`host[:port]`) would go under the running config, and which config
    /// that is; answered with `done`.
    Route {
        destination: String,
    },
}

/// What kind of failure a [`Response::Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself was malformed or of another version.
    BadRequest,
    UnknownUpstream,
    /// `open`: the host has no route to an upstream; the caller should go direct.
    NotRouted,
    /// The operation was tried and failed (connect timeout, reload with a bad config, ...).
    Failed,
    PermissionDenied,
}

/// Where the master is in its life, as `status` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterPhase {
    #[default]
    Running,
    /// `stop` (or a signal) arrived: no new clients, streams in flight are finishing.
    Draining,
    /// The drain is over (everything finished, the grace period ran out, or a second stop
    /// came): what is left is closed and every SSM session terminated.
    Closing,
}

impl std::fmt::Display for MasterPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Draining => "draining",
            Self::Closing => "closing",
        })
    }
}

/// The answer to `status`. Fields added after the first release are `#[serde(default)]`, so a
/// newer client reads an older master's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub pid: u32,
    pub uptime_secs: u64,
    pub listeners: Vec<String>,
    #[serde(default)]
    pub phase: MasterPhase,
    /// The SOCKS5 listeners' counters, summed over every listener.
    #[serde(default)]
    pub socks: StatsSnapshot,
    pub upstreams: Vec<PoolStatus>,
    /// The port forwards of `forwards:`, in config order.
    #[serde(default)]
    pub forwards: Vec<ForwardStatus>,
}

/// A message from the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Status(StatusReport),
    /// An intermediate step of a long command; more lines follow.
    Progress {
        message: String,
    },
    /// The command finished; `lines` says what it did.
    Done {
        lines: Vec<String>,
    },
    /// `open` succeeded: raw stream bytes follow on this connection.
    Stream,
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Response {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Error {
            kind,
            message: message.into(),
        }
    }

    /// Whether more responses follow this one for the same request.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Progress { .. })
    }
}

/// Length of the first line in `buf` including its `\n`, or `None` when `buf` holds no complete
/// line yet. Fails once `buf` has [`MAX_LINE`] bytes without a newline.
pub fn find_line(buf: &[u8]) -> Result<Option<usize>, ProtoError> {
    let window = buf.get(..MAX_LINE.min(buf.len())).unwrap_or(buf);
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i + 1)),
        None if buf.len() >= MAX_LINE => Err(ProtoError::TooLong),
        None => Ok(None),
    }
}

/// Parses JSON into a [`serde_json::Value`], refusing any object that names a key twice
/// (`serde_json` keeps the last one, so `{"cmd":"status","cmd":"stop"}` would read as `stop`).
/// The first repeated key is left in `dup`, so the caller can name it.
struct Unique<'a> {
    dup: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if obj.contains_key(&key) {
                let msg = format!("duplicate key {key:?}");
                *self.dup.borrow_mut() = Some(key);
                return Err(serde::de::Error::custom(msg));
            }
            let value = map.next_value_seed(Unique { dup: self.dup })?;
            obj.insert(key, value);
        }
        Ok(serde_json::Value::Object(obj))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique { dup: self.dup })? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

/// One JSON document, every object's keys unique; trailing non-whitespace is an error.
fn parse_unique(line: &[u8]) -> Result<serde_json::Value, ProtoError> {
    use serde::de::DeserializeSeed;
    let dup = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed = Unique { dup: &dup }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match (parsed, dup.into_inner()) {
        (_, Some(key)) => Err(ProtoError::DuplicateKey(key)),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(ProtoError::Json(e.to_string())),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, ProtoError> {
    if line.len() > MAX_LINE {
        return Err(ProtoError::TooLong);
    }
    let mut value = parse_unique(line)?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ProtoError::Json("expected a JSON object".into()))?;
    let v = obj.remove("v").ok_or(ProtoError::NoVersion)?;
    match v.as_u64() {
        Some(n) if n == u64::from(VERSION) => {}
        Some(n) => return Err(ProtoError::Version { got: n }),
        None => return Err(ProtoError::Json("\"v\" must be a number".into())),
    }
    serde_json::from_value(value).map_err(|e| ProtoError::Json(e.to_string()))
}

fn encode<T: Serialize>(msg: &T, out: &mut Vec<u8>) {
    let mut value = serde_json::to_value(msg).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = value.as_object_mut() {
        obj.insert("v".into(), VERSION.into());
    }
    // Serialising a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
    out.push(b'\n');
}

/// Parses one request line (with or without its `\n`).
pub fn decode_request(line: &[u8]) -> Result<Request, ProtoError> {
    decode(line)
}

/// Parses one response line (with or without its `\n`).
pub fn decode_response(line: &[u8]) -> Result<Response, ProtoError> {
    decode(line)
}

/// Appends `req` as one line.
pub fn encode_request(req: &Request, out: &mut Vec<u8>) {
    encode(req, out);
}

/// Appends `resp` as one line.
pub fn encode_response(resp: &Response, out: &mut Vec<u8>) {
    encode(resp, out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::upstream::status::ConnStatus;
    use crate::upstream::PoolState;

    fn requests() -> Vec<Request> {
        vec![
            Request::Status,
            Request::Connect {
                upstream: "prod".into(),
            },
            Request::Disconnect {
                upstream: "p\"r\nod".into(),
            },
            Request::Reload,
            Request::Stop,
            Request::Open {
                host: "10.0.0.5".into(),
                port: 22,
                via: None,
            },
            Request::Open {
                host: "db.internal".into(),
                port: 5432,
                via: Some("bastion".into()),
            },
            Request::Route {
                destination: "db.prod.internal:5432".into(),
            },
        ]
    }

    #[test]
    fn every_request_round_trips_as_one_versioned_line() {
        for r in requests() {
            let mut buf = Vec::new();
            encode_request(&r, &mut buf);
            assert_eq!(find_line(&buf).unwrap(), Some(buf.len()));
            assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
            assert!(buf.starts_with(b"{") && buf.windows(5).any(|w| w == b"\"v\":1"));
            assert_eq!(decode_request(&buf).unwrap(), r);
        }
    }

    fn pool_status() -> PoolStatus {
        PoolStatus {
            name: "a".into(),
            state: PoolState::Degraded,
            instances: vec!["i-1".into()],
            connections_up: 1,
            connections_total: 2,
            session_ids: vec!["s-1".into()],
            uptime_secs: Some(5),
            open_streams: 1,
            streams_total: 4,
            bytes_in: 1,
            bytes_out: 2,
            reconnects: 1,
            resumes: 2,
            retransmits: 3,
            last_error: Some("x".into()),
            last_error_at: Some(1_700_000_000),
            connections: vec![ConnStatus {
                slot: 0,
                phase: "up".into(),
                instance: Some("i-1".into()),
                session_id: Some("s-1".into()),
                uptime_secs: Some(5),
                open_streams: 1,
                streams_total: 4,
                bytes_in: 1,
                bytes_out: 2,
                connects: 2,
                reconnects: 1,
                resumes: 2,
                retransmits: 3,
                failures: 0,
                last_error: Some("x".into()),
                last_error_at: Some(1_700_000_000),
            }],
            kind: "ssh".into(),
            destinations: Vec::new(),
        }
    }

    #[test]
    fn a_status_report_from_an_older_master_still_reads() {
        let line =
            br#"{"v":1,"type":"status","pid":7,"uptime_secs":3,"listeners":[],"upstreams":[]}"#;
        let Ok(Response::Status(r)) = decode_response(line) else {
            panic!("old report refused");
        };
        assert_eq!(
            (r.phase, r.socks),
            (MasterPhase::Running, StatsSnapshot::default())
        );
        assert!(r.forwards.is_empty());
    }

    #[test]
    fn every_response_round_trips() {
        let rs = [
            Response::Status(StatusReport {
                pid: 7,
                uptime_secs: 3,
                listeners: vec!["socks5://127.0.0.1:1080".into()],
                phase: MasterPhase::Draining,
                socks: StatsSnapshot {
                    accepted: 3,
                    replies: [2, 1, 0, 0, 0, 0, 0, 0, 0],
                    ..StatsSnapshot::default()
                },
                upstreams: vec![pool_status()],
                forwards: vec![],
            }),
            Response::Progress {
                message: "connecting".into(),
            },
            Response::Done {
                lines: vec!["ok".into()],
            },
            Response::Stream,
            Response::error(ErrorKind::NotRouted, "no route"),
        ];
        for r in rs {
            let mut buf = Vec::new();
            encode_response(&r, &mut buf);
            assert_eq!(decode_response(&buf).unwrap(), r);
        }
        assert!(!Response::Progress {
            message: String::new()
        }
        .is_final());
    }

    #[test]
    fn the_documented_wire_form_is_accepted() {
        assert_eq!(
            decode_request(br#"{"v":1,"cmd":"status"}"#).unwrap(),
            Request::Status
        );
        assert_eq!(
            decode_request(br#"{"cmd":"open","host":"h","port":22,"v":1}"#).unwrap(),
            Request::Open {
                host: "h".into(),
                port: 22,
                via: None,
            }
        );
    }

    #[test]
    fn wrong_or_missing_versions_and_unknown_commands_are_refused() {
        assert_eq!(
            decode_request(br#"{"v":2,"cmd":"status"}"#),
            Err(ProtoError::Version { got: 2 })
        );
        assert_eq!(
            decode_request(br#"{"cmd":"status"}"#),
            Err(ProtoError::NoVersion)
        );
        assert!(matches!(
            decode_request(br#"{"v":1,"cmd":"format-disk"}"#),
            Err(ProtoError::Json(_))
        ));
        assert!(matches!(
            decode_request(br#"{"v":1,"cmd":"open","host":"h","port":22,"extra":1}"#),
            Err(ProtoError::Json(_))
        ));
        assert!(matches!(
            decode_request(br#"{"v":1,"cmd":"open","host":"h","port":70000}"#),
            Err(ProtoError::Json(_))
        ));
        assert!(matches!(decode_request(b"[1]"), Err(ProtoError::Json(_))));
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_sits() {
        // The last one used to win: `{"cmd":"status","cmd":"stop"}` stopped the master.
        let dup = |line: &[u8]| decode_request(line).err();
        let want = |k: &str| Some(ProtoError::DuplicateKey(k.into()));
        assert_eq!(dup(br#"{"v":1,"cmd":"status","cmd":"stop"}"#), want("cmd"));
        assert_eq!(dup(br#"{"v":1,"v":1,"cmd":"status"}"#), want("v"));
        // An escaped spelling is the same key.
        assert_eq!(
            dup(br#"{"v":1,"cmd":"status","c\u006dd":"stop"}"#),
            want("cmd")
        );
        let open = br#"{"v":1,"cmd":"open","host":"a","port":22,"host":"b"}"#;
        assert_eq!(dup(open), want("host"));
        // Nested objects are checked too.
        let nested = br#"{"v":1,"type":"status","pid":1,"uptime_secs":0,"listeners":[],
            "socks":{"accepted":1,"accepted":2},"upstreams":[]}"#;
        assert_eq!(decode_response(nested).err(), want("accepted"));
        let msg = ProtoError::DuplicateKey("cmd".into()).to_string();
        assert!(msg.contains("\"cmd\"") && msg.contains("once"), "{msg}");
        // Equal keys in different objects are fine.
        assert!(decode_response(br#"{"v":1,"type":"done","lines":["v"]}"#).is_ok());
    }

    #[test]
    fn lines_are_framed_and_capped() {
        assert_eq!(find_line(b"abc"), Ok(None));
        assert_eq!(find_line(b"ab\ncd\n"), Ok(Some(3)));
        let long = vec![b'x'; MAX_LINE];
        assert_eq!(find_line(&long), Err(ProtoError::TooLong));
        let mut ok = vec![b'x'; MAX_LINE - 1];
        ok.push(b'\n');
        assert_eq!(find_line(&ok), Ok(Some(MAX_LINE)));
        assert_eq!(
            decode_request(&[b' '; MAX_LINE + 1]),
            Err(ProtoError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = find_line(&bytes);
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }

        #[test]
        fn arbitrary_hosts_and_ports_round_trip(host in ".{0,200}", port in any::<u16>()) {
            let r = Request::Open { host, port, via: None };
            let mut buf = Vec::new();
            encode_request(&r, &mut buf);
            prop_assert_eq!(find_line(&buf).unwrap(), Some(buf.len()));
            prop_assert_eq!(decode_request(&buf).unwrap(), r);
        }
    }
}
