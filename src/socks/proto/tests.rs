//! Tests for the SOCKS5 core: one unit test per wire rule, plus proptest properties for
//! hostile input (no panics, bounded buffering), chunking independence and encode/parse
//! round trips. They live beside `proto.rs` to keep that file under the size budget.

use std::net::{Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

/// What a whole session came to, for comparing different chunkings of the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Request {
        dest: Destination,
        leftover: Vec<u8>,
    },
    Failed(ProtoError),
    AuthRejected,
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    sent: Vec<u8>,
    creds: Vec<Credentials>,
    outcome: Outcome,
}

/// Drives a handshake the way the server does: feed a chunk, act on each step, feed `&[]`
/// after `Send`/`Authenticate`, read the next chunk only on `NeedMore`. Asserts the buffering
/// bound on every `NeedMore`.
fn drive<'a>(
    policy: AuthPolicy,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    verdict: impl Fn(&Credentials) -> bool,
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
                Err(e) => {
                    return Trace {
                        sent,
                        creds,
                        outcome: Outcome::Failed(e),
                    }
                }
                Ok(Step::NeedMore) => {
                    assert!(hs.buffered() < MAX_AUTH_LEN, "buffered {}", hs.buffered());
                    break;
                }
                Ok(Step::Send(bytes)) => sent.extend(bytes),
                Ok(Step::Authenticate(c)) => {
                    let ok = verdict(&c);
                    creds.push(c);
                    sent.extend(hs.auth_result(ok).unwrap());
                    if !ok {
                        return Trace {
                            sent,
                            creds,
                            outcome: Outcome::AuthRejected,
                        };
                    }
                }
                Ok(Step::Request(dest)) => {
                    let mut leftover = hs.take_leftover();
                    chunks.for_each(|c| leftover.extend_from_slice(c));
                    return Trace {
                        sent,
                        creds,
                        outcome: Outcome::Request { dest, leftover },
                    };
                }
            }
        }
    }
    Trace {
        sent,
        creds,
        outcome: Outcome::Incomplete,
    }
}

fn accept_all(_: &Credentials) -> bool {
    true
}

fn ipv4_connect(port: u16) -> Vec<u8> {
    let mut v = vec![5, 1, 0, 1, 127, 0, 0, 1];
    v.extend_from_slice(&port.to_be_bytes());
    v
}

fn userpass(user: &[u8], pass: &[u8]) -> Vec<u8> {
    let mut v = vec![1, user.len() as u8];
    v.extend_from_slice(user);
    v.push(pass.len() as u8);
    v.extend_from_slice(pass);
    v
}

fn dest(host: &str, port: u16) -> Destination {
    Destination {
        host: Host::Domain(host.to_owned()),
        port,
    }
}

fn loopback(port: u16) -> Destination {
    Destination {
        host: Host::Ip(Ipv4Addr::LOCALHOST.into()),
        port,
    }
}

#[test]
fn no_auth_policy_selects_method_zero_then_parses_connect() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    assert_eq!(hs.feed(&[5, 2, 2, 0]).unwrap(), Step::Send(vec![5, 0]));
    assert_eq!(
        hs.feed(&ipv4_connect(8080)).unwrap(),
        Step::Request(loopback(8080))
    );
    assert!(hs.take_leftover().is_empty());
}

#[test]
fn user_pass_policy_refuses_a_client_offering_only_no_auth() {
    let err = Handshake::new(AuthPolicy::UserPass)
        .feed(&[5, 1, 0])
        .unwrap_err();
    assert_eq!(
        err,
        ProtoError::NoAcceptableMethod {
            required: METHOD_USER_PASS
        }
    );
    assert_eq!(err.wire_response(), Some(vec![5, 0xFF]));
    assert_eq!(err.as_reply(), None);
}

#[test]
fn user_pass_policy_picks_user_pass_even_when_no_auth_is_offered_too() {
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    assert_eq!(hs.feed(&[5, 2, 0, 2]).unwrap(), Step::Send(vec![5, 2]));
}

#[test]
fn no_auth_policy_refuses_a_client_offering_only_user_pass() {
    let err = Handshake::new(AuthPolicy::NoAuth)
        .feed(&[5, 1, 2])
        .unwrap_err();
    assert_eq!(err.wire_response(), Some(vec![5, 0xFF]));
}

#[test]
fn empty_method_list_is_refused_with_ff() {
    let err = Handshake::new(AuthPolicy::NoAuth)
        .feed(&[5, 0])
        .unwrap_err();
    assert_eq!(err, ProtoError::NoMethodsOffered);
    assert_eq!(err.wire_response(), Some(vec![5, 0xFF]));
}

#[test]
fn socks4_greeting_is_rejected_on_the_first_byte_without_answer() {
    let err = Handshake::new(AuthPolicy::NoAuth).feed(&[4]).unwrap_err();
    assert_eq!(err, ProtoError::BadGreetingVersion { got: 4 });
    assert_eq!(err.wire_response(), None);
}

#[test]
fn user_pass_flow_asks_caller_to_check_credentials() {
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    assert_eq!(hs.feed(&[5, 1, 2]).unwrap(), Step::Send(vec![5, 2]));
    let Step::Authenticate(c) = hs.feed(&userpass(b"alice", b"s3cret")).unwrap() else {
        panic!("expected Authenticate");
    };
    assert_eq!(c.username, b"alice");
    assert_eq!(c.password.expose(), b"s3cret");
    assert_eq!(hs.auth_result(true).unwrap(), vec![1, 0]);
    assert_eq!(
        hs.feed(&ipv4_connect(22)).unwrap(),
        Step::Request(loopback(22))
    );
}

#[test]
fn rejected_credentials_answer_status_1_and_end_the_handshake() {
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    let _ = hs.feed(&[5, 1, 2]).unwrap();
    let _ = hs.feed(&userpass(b"alice", b"wrong")).unwrap();
    assert_eq!(hs.auth_result(false).unwrap(), vec![1, 1]);
    assert!(matches!(
        hs.feed(&ipv4_connect(22)),
        Err(ProtoError::OutOfOrder { .. })
    ));
}

#[test]
fn feeding_before_auth_result_is_an_api_error() {
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    let _ = hs.feed(&[5, 1, 2]).unwrap();
    let _ = hs.feed(&userpass(b"a", b"b")).unwrap();
    assert!(matches!(hs.feed(&[]), Err(ProtoError::OutOfOrder { .. })));
}

#[test]
fn auth_result_without_pending_credentials_is_an_api_error() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    assert!(matches!(
        hs.auth_result(true),
        Err(ProtoError::OutOfOrder { .. })
    ));
}

#[test]
fn bad_auth_version_answers_failure_status() {
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    let _ = hs.feed(&[5, 1, 2]).unwrap();
    let err = hs.feed(&[5, 1, b'a', 1, b'b']).unwrap_err();
    assert_eq!(err, ProtoError::BadAuthVersion { got: 5 });
    assert_eq!(err.wire_response(), Some(vec![1, 1]));
}

#[test]
fn bind_and_udp_associate_reply_command_not_supported() {
    for cmd in [CMD_BIND, CMD_UDP_ASSOCIATE, 0x09] {
        let mut hs = Handshake::new(AuthPolicy::NoAuth);
        let _ = hs.feed(&[5, 1, 0]).unwrap();
        let err = hs.feed(&[5, cmd, 0, 1, 127, 0, 0, 1, 0, 80]).unwrap_err();
        assert_eq!(err, ProtoError::UnsupportedCommand { cmd });
        assert_eq!(err.as_reply(), Some(Reply::CommandNotSupported));
        assert_eq!(
            err.wire_response(),
            Some(vec![5, 7, 0, 1, 0, 0, 0, 0, 0, 0])
        );
    }
}

#[test]
fn unknown_address_type_replies_8() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    let err = hs.feed(&[5, 1, 0, 2]).unwrap_err();
    assert_eq!(err.as_reply(), Some(Reply::AddressTypeNotSupported));
}

#[test]
fn bad_request_version_replies_general_failure() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    let err = hs.feed(&[4, 1]).unwrap_err();
    assert_eq!(err, ProtoError::BadRequestVersion { got: 4 });
    assert_eq!(err.as_reply(), Some(Reply::GeneralFailure));
}

fn request_domain(domain: &[u8]) -> Result<Step, ProtoError> {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    let mut req = vec![5, 1, 0, 3, domain.len() as u8];
    req.extend_from_slice(domain);
    req.extend_from_slice(&443u16.to_be_bytes());
    hs.feed(&req)
}

#[test]
fn empty_or_malformed_domains_are_refused_with_a_reply() {
    assert_eq!(request_domain(b"").unwrap_err(), ProtoError::EmptyDomain);
    for bad in [&b"a b"[..], b"a\0b", b"x\ny", &[0xFF, 0xFE]] {
        let err = request_domain(bad).unwrap_err();
        assert!(
            matches!(err, ProtoError::InvalidDomain { .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(err.as_reply(), Some(Reply::GeneralFailure));
    }
}

#[test]
fn domain_that_is_an_ip_literal_becomes_an_ip_host() {
    let ip = |s: &str| {
        Step::Request(Destination {
            host: Host::Ip(s.parse().unwrap()),
            port: 443,
        })
    };
    assert_eq!(request_domain(b"10.1.2.3").unwrap(), ip("10.1.2.3"));
    assert_eq!(request_domain(b"::1").unwrap(), ip("::1"));
    assert_eq!(request_domain(b"[::1]").unwrap(), ip("::1"));
    assert_eq!(
        request_domain(b"db.internal").unwrap(),
        Step::Request(dest("db.internal", 443))
    );
}

#[test]
fn ipv6_request_parses() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    let mut req = vec![5, 1, 0, 4];
    req.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    req.extend_from_slice(&[0x1F, 0x90]);
    let want = Destination {
        host: Host::Ip(Ipv6Addr::LOCALHOST.into()),
        port: 8080,
    };
    assert_eq!(hs.feed(&req).unwrap(), Step::Request(want));
}

#[test]
fn whole_session_in_one_chunk_needs_empty_feeds_and_keeps_pipelined_data() {
    let mut wire = vec![5, 1, 2];
    wire.extend(userpass(b"u", b"p"));
    wire.extend(ipv4_connect(80));
    wire.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    let mut hs = Handshake::new(AuthPolicy::UserPass);
    assert_eq!(hs.feed(&wire).unwrap(), Step::Send(vec![5, 2]));
    assert!(matches!(hs.feed(&[]).unwrap(), Step::Authenticate(_)));
    let _ = hs.auth_result(true).unwrap();
    assert_eq!(hs.feed(&[]).unwrap(), Step::Request(loopback(80)));
    assert_eq!(hs.take_leftover(), b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn partial_message_is_kept_and_more_is_asked_for() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    assert_eq!(
        hs.feed(&[5, 1, 0, 3, 9, b'l', b'o']).unwrap(),
        Step::NeedMore
    );
    assert_eq!(hs.buffered(), 7);
    assert_eq!(
        hs.feed(b"calhost\x00\x50").unwrap(),
        Step::Request(dest("localhost", 80))
    );
}

#[test]
fn feeding_after_the_request_is_an_api_error() {
    let mut hs = Handshake::new(AuthPolicy::NoAuth);
    let _ = hs.feed(&[5, 1, 0]).unwrap();
    let _ = hs.feed(&ipv4_connect(1)).unwrap();
    assert!(matches!(hs.feed(b"x"), Err(ProtoError::OutOfOrder { .. })));
}

#[test]
fn reply_without_bind_address_is_zero_ipv4() {
    assert_eq!(
        encode_reply(Reply::Succeeded, None),
        vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    );
    let bind: SocketAddr = "127.0.0.1:1080".parse().unwrap();
    assert_eq!(
        encode_reply(Reply::ConnectionRefused, Some(bind)),
        vec![5, 5, 0, 1, 127, 0, 0, 1, 4, 56]
    );
}

#[test]
fn reply_with_ipv6_bind_address_uses_atyp_4() {
    let bind: SocketAddr = "[::1]:443".parse().unwrap();
    let bytes = encode_reply(Reply::Succeeded, Some(bind));
    assert_eq!(bytes.len(), reply_len(Some(bind)));
    assert_eq!(bytes[..4], [5, 0, 0, 4]);
    assert_eq!(bytes[20..], [1, 187]);
}

#[test]
fn destination_display_brackets_ipv6_only() {
    let v6: SocketAddr = "[::1]:22".parse().unwrap();
    assert_eq!(Destination::from(v6).to_string(), "[::1]:22");
    assert_eq!(loopback(22).to_string(), "127.0.0.1:22");
    assert_eq!(dest("db.internal", 5432).to_string(), "db.internal:5432");
}

#[test]
fn credentials_debug_never_shows_the_password() {
    let c = Credentials {
        username: b"alice".to_vec(),
        password: Redacted::new(b"hunter2".to_vec()),
    };
    let dbg = format!("{:?}", Step::Authenticate(c));
    assert!(dbg.contains("alice") && !dbg.contains("hunter2"), "{dbg}");
}

#[test]
fn reply_codes_match_rfc_1928_and_round_trip() {
    for (code, reply) in Reply::ALL.iter().enumerate() {
        assert_eq!(usize::from(reply.code()), code);
        assert_eq!(Reply::from_code(reply.code()), Some(*reply));
    }
    assert_eq!(Reply::from_code(9), None);
    assert_eq!(Reply::TtlExpired.code(), 6);
}

#[test]
fn encoding_an_oversized_or_empty_domain_fails_without_writing() {
    let mut out = vec![0xAA];
    let long = dest(&"a".repeat(256), 1);
    assert_eq!(
        write_connect_request(&long, &mut out),
        Err(ProtoError::DomainTooLong { len: 256 })
    );
    assert_eq!(
        write_connect_request(&dest("", 1), &mut out),
        Err(ProtoError::EmptyDomain)
    );
    assert_eq!(out, vec![0xAA]);
}

fn arb_destination() -> impl Strategy<Value = Destination> {
    let host = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Host::Ip(Ipv4Addr::from(o).into())),
        any::<[u8; 16]>().prop_map(|o| Host::Ip(Ipv6Addr::from(o).into())),
        "[a-z]{1,63}(\\.[a-z0-9-]{1,63}){0,3}".prop_map(Host::Domain),
    ];
    (host, any::<u16>()).prop_map(|(host, port)| Destination { host, port })
}

fn arb_policy() -> impl Strategy<Value = AuthPolicy> {
    prop_oneof![Just(AuthPolicy::NoAuth), Just(AuthPolicy::UserPass)]
}

/// Full client byte stream for a session: greeting, auth if needed, request, early data.
fn client_stream(
    policy: AuthPolicy,
    user: &[u8],
    pass: &[u8],
    d: &Destination,
    data: &[u8],
) -> Vec<u8> {
    let mut wire = match policy {
        AuthPolicy::NoAuth => vec![5, 2, 0x80, 0],
        AuthPolicy::UserPass => {
            let mut v = vec![5, 3, 0, 0x80, 2];
            v.extend(userpass(user, pass));
            v
        }
    };
    write_connect_request(d, &mut wire).unwrap();
    wire.extend_from_slice(data);
    wire
}

proptest! {
    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic_or_overbuffer(
        bytes in prop::collection::vec(any::<u8>(), 0..1500),
        sizes in prop::collection::vec(1usize..64, 1..64),
        policy in arb_policy(),
        ok in any::<bool>(),
    ) {
        // Bias towards getting past the first bytes: half the cases start with a valid greeting.
        let mut wire = if ok { vec![5, 2, 0, 2] } else { Vec::new() };
        wire.extend(bytes);
        let mut chunks = Vec::new();
        let mut rest = &wire[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() { break; }
            let (a, b) = rest.split_at((*size).min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        let _ = drive(policy, chunks, |_| ok);
    }

    #[test]
    fn buffer_capacity_stays_bounded_under_byte_at_a_time_garbage(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        policy in arb_policy(),
    ) {
        let mut hs = Handshake::new(policy);
        for b in &bytes {
            match hs.feed(std::slice::from_ref(b)) {
                Ok(Step::NeedMore) => prop_assert!(hs.buf.capacity() <= 2 * MAX_AUTH_LEN),
                Ok(Step::Authenticate(_)) => { let _ = hs.auth_result(true).unwrap(); }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    #[test]
    fn valid_sessions_parse_identically_under_every_split(
        policy in arb_policy(),
        user in prop::collection::vec(any::<u8>(), 0..=255),
        pass in prop::collection::vec(any::<u8>(), 0..=255),
        d in arb_destination(),
        data in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let wire = client_stream(policy, &user, &pass, &d, &data);
        let whole = drive(policy, [&wire[..]], accept_all);
        prop_assert_eq!(&whole.outcome, &Outcome::Request { dest: d, leftover: data });
        for i in 0..=wire.len() {
            let (a, b) = wire.split_at(i);
            prop_assert_eq!(&drive(policy, [a, b], accept_all), &whole, "split at {}", i);
        }
        let bytewise = drive(policy, wire.chunks(1), accept_all);
        prop_assert_eq!(&bytewise, &whole);
    }

    #[test]
    fn connect_request_round_trips_through_the_parser(d in arb_destination()) {
        let mut req = Vec::new();
        write_connect_request(&d, &mut req).unwrap();
        prop_assert_eq!(req.len(), 3 + d.encoded_len());
        let mut hs = Handshake::new(AuthPolicy::NoAuth);
        let _ = hs.feed(&[5, 1, 0]).unwrap();
        prop_assert_eq!(hs.feed(&req).unwrap(), Step::Request(d));
    }

    #[test]
    fn reply_round_trips_and_partial_replies_consume_nothing(
        code in 0u8..9,
        addr in any::<SocketAddr>(),
        with_addr in any::<bool>(),
    ) {
        let reply = Reply::from_code(code).unwrap();
        let bind = with_addr.then_some(addr);
        let bytes = encode_reply(reply, bind);
        prop_assert_eq!(bytes.len(), reply_len(bind));
        for i in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&bytes[..i]).unwrap(), None);
        }
        let (r, bound, used) = parse_reply(&bytes).unwrap().unwrap();
        let want = bind.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        prop_assert_eq!((r, bound, used), (reply, Destination::from(want), bytes.len()));
    }
}
