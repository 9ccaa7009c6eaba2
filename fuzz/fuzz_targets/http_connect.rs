//! HTTP CONNECT request head parser (`http_connect::RequestParser`).
//!
//! Pinned: feeding the same bytes in fuzzer-chosen chunks gives the same destination,
//! credentials and error as feeding them at once, and the bytes after the head are exactly the
//! rest of the input; while waiting for input the parser holds less than `MAX_HEAD` plus the
//! chunk just fed; a parsed destination, written back as a CONNECT line, parses to itself.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use session_proxy::http_connect::{Parse, Request, RequestError, RequestParser, MAX_HEAD};
use session_proxy::socks::proto::{Destination, Host};

/// Byte 0 = chunk length for the second feeding; then the client's bytes.
fuzz_target!(|raw: &[u8]| {
    let Some((&step, data)) = raw.split_first() else {
        return;
    };
    let whole = drive([data]);
    let chunked = drive(data.chunks(usize::from(step).max(1)));
    assert_eq!(whole, chunked, "chunking changed the outcome");
    if let Ok(Some(r)) = &whole {
        check_round_trip(&r.dest);
    }
});

/// The request (its leftover with every byte not yet fed appended), the error, or `None` when
/// the input ended first.
fn drive<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<Request>, RequestError> {
    let mut p = RequestParser::default();
    let mut chunks = chunks.into_iter();
    while let Some(chunk) = chunks.next() {
        match p.feed(chunk)? {
            Parse::NeedMore => assert!(
                p.buffered() < MAX_HEAD + chunk.len(),
                "buffered {}",
                p.buffered()
            ),
            Parse::Request(mut r) => {
                r.leftover.extend(chunks.flatten());
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}

fn check_round_trip(dest: &Destination) {
    let host = match &dest.host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        Host::Ip(ip) => ip.to_string(),
        Host::Domain(d) => d.clone(),
    };
    let line = format!("CONNECT {host}:{} HTTP/1.1\r\n\r\n", dest.port);
    match RequestParser::default().feed(line.as_bytes()) {
        Ok(Parse::Request(r)) => {
            assert_eq!(&r.dest, dest, "destination changed across write/parse");
            assert!(r.leftover.is_empty(), "a written request left bytes over");
        }
        other => panic!("a written request did not parse: {other:?}"),
    }
}
