use proptest::prelude::*;

use super::*;

fn parse_all(bytes: &[u8]) -> Result<Parse, RequestError> {
    RequestParser::default().feed(bytes)
}

fn request(bytes: &[u8]) -> Request {
    match parse_all(bytes) {
        Ok(Parse::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn domain(name: &str, port: u16) -> Destination {
    Destination {
        host: Host::Domain(name.into()),
        port,
    }
}

#[test]
fn connect_host_port_yields_the_destination() {
    let r = request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(r.dest, domain("example.com", 443));
    assert_eq!(r.credentials, None);
    assert!(r.leftover.is_empty());
}

#[test]
fn bracketed_ipv6_and_ipv4_targets_are_ip_hosts() {
    let r = request(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
    assert_eq!(r.dest.host, Host::Ip("::1".parse().unwrap()));
    assert_eq!(r.dest.port, 8443);
    let r = request(b"CONNECT 10.1.2.3:22 HTTP/1.0\r\n\r\n");
    assert_eq!(r.dest.host, Host::Ip("10.1.2.3".parse().unwrap()));
}

#[test]
fn odd_ipv4_spellings_stay_names_for_the_router_to_classify() {
    // The router turns these into 127.0.0.2 (route/literal.rs), as it does for SOCKS5 domains.
    for spelling in ["127.2", "0x7f000002", "2130706434", "0177.0.0.2"] {
        let r = request(format!("CONNECT {spelling}:80 HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(r.dest, domain(spelling, 80), "{spelling}");
    }
}

#[test]
fn bytes_after_the_head_are_kept_as_leftover() {
    let r = request(b"CONNECT h:1 HTTP/1.1\r\n\r\nSSH-2.0-early\r\n");
    assert_eq!(r.leftover, b"SSH-2.0-early\r\n");
}

#[test]
fn a_head_fed_byte_by_byte_parses_like_one_fed_whole() {
    let wire = b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\nxyz";
    let mut p = RequestParser::default();
    let mut last = Ok(Parse::NeedMore);
    for b in wire {
        last = p.feed(std::slice::from_ref(b));
        if last != Ok(Parse::NeedMore) {
            break;
        }
    }
    let Ok(Parse::Request(mut r)) = last else {
        panic!("{last:?}")
    };
    // Fed byte by byte, the head completes before "xyz" arrives.
    assert!(r.leftover.is_empty());
    r.leftover = b"xyz".to_vec();
    assert_eq!(Ok(Parse::Request(r)), parse_all(wire));
}

#[test]
fn proxy_authorization_basic_is_read() {
    let r = request(b"CONNECT h:1 HTTP/1.1\r\nproxy-authorization: Basic dTpw\r\n\r\n");
    let c = r.credentials.unwrap();
    assert_eq!(
        (c.username.as_slice(), c.password.expose().as_slice()),
        (&b"u"[..], &b"p"[..])
    );
}

#[test]
fn each_refusal_answers_its_status() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET http://example.com/ HTTP/1.1\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\n\r\n", 405),
        (b"connect h:1 HTTP/1.1\r\n\r\n", 405),
        (b"CONNECT h HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT h:0 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT h:65536 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT h:+80 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT ::1:80 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [nope]:80 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT us@h:80 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT h:1 HTTP/2.0\r\n\r\n", 400),
        (b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Bearer x\r\n\r\n", 407),
        (
            b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
            400,
        ),
    ];
    for (wire, code) in cases {
        let got = parse_all(wire).map_err(|e| e.status().code());
        assert_eq!(got, Err(*code), "{}", String::from_utf8_lossy(wire));
    }
}

#[test]
fn a_head_over_the_cap_is_431_and_the_buffer_stays_bounded() {
    let mut p = RequestParser::default();
    p.feed(b"CONNECT h:1 HTTP/1.1\r\n").unwrap();
    let filler = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let err = loop {
        match p.feed(filler) {
            Ok(Parse::NeedMore) => assert!(p.buffered() < MAX_HEAD + filler.len()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.status().code(), 431);
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let wire = format!("CONNECT h:1 HTTP/1.1\r\n{many}\r\n");
    assert_eq!(
        parse_all(wire.as_bytes()).map_err(|e| e.status().code()),
        Err(431)
    );
}

#[test]
fn a_malformed_byte_past_the_cap_is_431_however_the_input_is_cut() {
    let mut wire = b"CONNECT h:1 HTTP/1.1\r\n".to_vec();
    while wire.len() < MAX_HEAD + 100 {
        wire.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaa\r\n");
    }
    wire.extend_from_slice(b"\x00bad\r\n\r\n");
    let whole = parse_all(&wire);
    assert_eq!(whole, Err(RequestError::HeadTooLarge));
    let mut p = RequestParser::default();
    let chunked = wire
        .chunks(255)
        .map(|c| p.feed(c))
        .find(|r| *r != Ok(Parse::NeedMore));
    assert_eq!(chunked, Some(whole));
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2048), 0..16)
    ) {
        let mut p = RequestParser::default();
        for c in &chunks {
            match p.feed(c) {
                Ok(Parse::NeedMore) => prop_assert!(p.buffered() < MAX_HEAD + c.len()),
                Ok(Parse::Request(_)) | Err(_) => break,
            }
        }
    }

    #[test]
    fn any_valid_target_round_trips_whatever_the_chunking(
        host in "[a-z0-9][a-z0-9.-]{0,40}",
        port in 1u16..,
        early in proptest::collection::vec(any::<u8>(), 0..64),
        step in 1usize..32,
    ) {
        let mut wire = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        let head = wire.len();
        wire.extend_from_slice(&early);
        let whole = parse_all(&wire);
        let Ok(Parse::Request(r)) = &whole else { panic!("{whole:?}") };
        prop_assert_eq!(r.dest.port, port);
        prop_assert_eq!(&r.leftover, &early);
        let mut p = RequestParser::default();
        let mut fed = 0;
        for c in wire.chunks(step) {
            fed += c.len();
            if let Parse::Request(r) = p.feed(c).unwrap() {
                prop_assert!(fed >= head);
                prop_assert_eq!(&r.leftover[..], &wire[head..fed]);
                break;
            }
        }
    }
}
