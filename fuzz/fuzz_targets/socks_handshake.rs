//! SOCKS5 server handshake (`socks::proto::Handshake`) and client-side reply parser.
//!
//! Pinned: feeding the same bytes in fuzzer-chosen chunks gives the same steps as feeding them
//! at once; while waiting for input the core holds less than one message's cap; a parsed
//! request re-encodes with `write_connect_request` to bytes that parse to the same destination;
//! `parse_reply` consumes at most its input and an IP reply re-encodes to the same bytes.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use session_proxy::socks::proto::{
    consts::{ATYP_IPV4, ATYP_IPV6, MAX_AUTH_LEN},
    encode_reply, parse_reply, write_connect_request, AuthPolicy, Credentials, Destination,
    Handshake, Host, ProtoError, Step,
};

/// Input layout (plain bytes, so seeds are readable): byte 0 bit 0 = require username/password,
/// bit 1 = accept the credentials; byte 1 = chunk length for the second feeding; then the
/// client's bytes.
struct Input<'a> {
    user_pass: bool,
    accept: bool,
    step: usize,
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(raw: &'a [u8]) -> Option<Self> {
        let (&[mode, step], data) = raw.split_first_chunk::<2>()?;
        Some(Self {
            user_pass: mode & 1 != 0,
            accept: mode & 2 != 0,
            step: usize::from(step).max(1),
            data,
        })
    }
}

/// Everything observable from one handshake, to compare chunkings.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    sent: Vec<u8>,
    creds: Vec<Credentials>,
    end: End,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Request {
        dest: Destination,
        leftover: Vec<u8>,
    },
    Failed(ProtoError),
    Incomplete,
}

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::new(raw) else {
        return;
    };
    let policy = if input.user_pass {
        AuthPolicy::UserPass
    } else {
        AuthPolicy::NoAuth
    };
    let whole = drive(policy, input.accept, [input.data]);
    let chunked = drive(policy, input.accept, input.data.chunks(input.step));
    assert_eq!(whole, chunked, "chunking changed the outcome");
    if let End::Request { dest, .. } = &whole.end {
        check_request_round_trip(dest);
    }
    check_reply_parser(input.data);
});

/// Drives a handshake as the server does: feed a chunk, act on each step, feed `&[]` after
/// `Send`/`Authenticate`, and read the next chunk only on `NeedMore`.
fn drive<'a>(
    policy: AuthPolicy,
    accept: bool,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Trace {
    let mut hs = Handshake::new(policy);
    let mut sent = Vec::new();
    let mut creds = Vec::new();
    let mut chunks = chunks.into_iter();
    while let Some(chunk) = chunks.next() {
        let mut input = chunk;
        loop {
            let step = hs.feed(input);
            input = &[];
            match step {
                Err(e) => return trace(sent, creds, End::Failed(e)),
                Ok(Step::NeedMore) => {
                    assert!(hs.buffered() < MAX_AUTH_LEN, "buffered {}", hs.buffered());
                    break;
                }
                Ok(Step::Send(bytes)) => sent.extend(bytes),
                Ok(Step::Authenticate(c)) => {
                    creds.push(c);
                    match hs.auth_result(accept) {
                        Ok(status) => sent.extend(status),
                        Err(e) => return trace(sent, creds, End::Failed(e)),
                    }
                    if !accept {
                        return trace(sent, creds, End::Incomplete);
                    }
                }
                Ok(Step::Request(dest)) => {
                    // What the client sent ahead: held by the core, plus what was not fed yet.
                    let mut leftover = hs.take_leftover();
                    leftover.extend(chunks.flatten());
                    return trace(sent, creds, End::Request { dest, leftover });
                }
            }
        }
    }
    trace(sent, creds, End::Incomplete)
}

fn trace(sent: Vec<u8>, creds: Vec<Credentials>, end: End) -> Trace {
    Trace { sent, creds, end }
}

fn check_request_round_trip(dest: &Destination) {
    let mut wire = vec![5, 1, 0];
    if let Err(e) = write_connect_request(dest, &mut wire) {
        panic!("a parsed destination does not re-encode: {e}");
    }
    let again = drive(AuthPolicy::NoAuth, true, [wire.as_slice()]);
    match again.end {
        End::Request { dest: d, leftover } => {
            assert_eq!(&d, dest, "destination changed across encode/parse");
            assert!(leftover.is_empty(), "re-encoded request left bytes over");
        }
        other => panic!("re-encoded request did not parse: {other:?}"),
    }
}

fn check_reply_parser(data: &[u8]) {
    let Ok(Some((reply, bound, used))) = parse_reply(data) else {
        return;
    };
    assert!(
        used <= data.len(),
        "parse_reply used {used} of {} bytes",
        data.len()
    );
    let ip_atyp = matches!(data.get(3), Some(&ATYP_IPV4 | &ATYP_IPV6));
    if let (Host::Ip(ip), true) = (&bound.host, ip_atyp) {
        let mut expect = encode_reply(reply, Some(SocketAddr::new(*ip, bound.port)));
        // RSV is ignored on input and always 0 on output.
        if let (Some(e), Some(&r)) = (expect.get_mut(2), data.get(2)) {
            *e = r;
        }
        assert_eq!(
            data.get(..used),
            Some(expect.as_slice()),
            "IP reply re-encodes differently"
        );
    }
}
