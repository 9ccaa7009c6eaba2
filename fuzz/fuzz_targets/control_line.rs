//! Control-protocol framing and line parsers (`control::proto`).
//!
//! Pinned: `find_line` returns the first newline within `MAX_LINE` bytes or fails only when
//! there are `MAX_LINE` bytes without one; a request or response that decodes re-encodes to one
//! line that decodes to the same value, and a second encode is byte-identical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_proxy::control::proto::{
    decode_request, decode_response, encode_request, encode_response, find_line, ProtoError,
    MAX_LINE,
};

fuzz_target!(|data: &[u8]| {
    check_framing(data);
    let line = match find_line(data) {
        Ok(Some(n)) => data.get(..n).unwrap_or(data),
        _ => data,
    };
    check_request(line);
    check_response(line);
});

fn check_framing(data: &[u8]) {
    let first_nl = data.iter().position(|&b| b == b'\n');
    match find_line(data) {
        Ok(Some(n)) => {
            assert_eq!(
                Some(n - 1),
                first_nl,
                "line does not end at the first newline"
            );
            assert!(n <= MAX_LINE, "line of {n} bytes over MAX_LINE");
        }
        Ok(None) => {
            assert!(first_nl.is_none(), "missed a newline");
            assert!(
                data.len() < MAX_LINE,
                "no error for {} bytes without newline",
                data.len()
            );
        }
        Err(e) => {
            assert_eq!(e, ProtoError::TooLong);
            assert!(data.len() >= MAX_LINE);
            assert!(
                first_nl.is_none_or(|i| i >= MAX_LINE),
                "newline in window not found"
            );
        }
    }
}

fn check_request(line: &[u8]) {
    let Ok(req) = decode_request(line) else {
        return;
    };
    let mut wire = Vec::new();
    encode_request(&req, &mut wire);
    assert_eq!(wire.last(), Some(&b'\n'));
    assert_eq!(
        find_line(&wire),
        Ok(Some(wire.len())),
        "encoded request is not one line"
    );
    assert_eq!(
        decode_request(&wire),
        Ok(req.clone()),
        "request changed across encode/decode"
    );
    let mut again = Vec::new();
    encode_request(&req, &mut again);
    assert_eq!(again, wire);
}

fn check_response(line: &[u8]) {
    let Ok(resp) = decode_response(line) else {
        return;
    };
    let mut wire = Vec::new();
    encode_response(&resp, &mut wire);
    assert_eq!(
        find_line(&wire),
        Ok(Some(wire.len())),
        "encoded response is not one line"
    );
    assert_eq!(
        decode_response(&wire),
        Ok(resp.clone()),
        "response changed across encode/decode"
    );
    let mut again = Vec::new();
    encode_response(&resp, &mut again);
    assert_eq!(again, wire);
}
