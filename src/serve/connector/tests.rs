//! The routing connector behind a real SOCKS5 listener on loopback, spoken to with raw bytes:
//! every spelling of a rejected address is refused, and what is dialled is what was routed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::route::{Matcher, Resolve, Rule};
use crate::socks::proto::parse_reply;
use crate::socks::server::ServerConfig;

fn rule(m: &str, action: Action, resolve: Resolve) -> Rule {
    Rule {
        matcher: Matcher::parse(m).unwrap(),
        action,
        resolve,
    }
}

/// A SOCKS5 server on 127.0.0.1:0 routing with `rules` and `default`.
async fn serve(rules: Vec<Rule>, default: Action, default_resolve: Resolve) -> SocketAddr {
    let router = Router::new(rules)
        .unwrap()
        .with_default_resolve(default_resolve);
    let connector = RoutingConnector::new(
        Routing { router, default },
        Arc::new(tokio::sync::RwLock::new(Upstreams::default())),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::socks::server::run(
        listener,
        ServerConfig::default(),
        Arc::new(connector),
        std::future::pending(),
    ));
    addr
}

/// CONNECT with a raw address field (ATYP byte and address bytes as given); returns REP.
async fn connect_raw(proxy: SocketAddr, atyp_and_addr: &[u8], port: u16) -> u8 {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).await.unwrap();
    assert_eq!(method, [5, 0]);
    let mut req = vec![5, 1, 0];
    req.extend_from_slice(atyp_and_addr);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some((reply, _, _)) = parse_reply(&buf).unwrap() {
            return reply.code();
        }
        let mut byte = [0u8; 1];
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "EOF before a reply");
        buf.push(byte[0]);
    }
}

fn name(n: &str) -> Vec<u8> {
    let mut v = vec![3, u8::try_from(n.len()).unwrap()];
    v.extend_from_slice(n.as_bytes());
    v
}

/// True when `l` has a connection waiting (the proxy dialled it).
async fn was_dialled(l: &TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(200), l.accept())
        .await
        .is_ok()
}

const SPELLINGS_OF_127_0_0_2: [&str; 11] = [
    "127.0.0.2",
    "127.2",
    "127.0.2",
    "2130706434",
    "0x7f000002",
    "0177.0.0.2",
    "0x7f.0.0.2",
    "127.0.0.02",
    "127.0.0.2.",
    "[127.0.0.2]",
    "::ffff:127.0.0.2",
];

#[tokio::test]
async fn every_spelling_of_a_rejected_address_is_refused_and_never_dialled() {
    let target = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let rules = vec![rule("127.0.0.2/32", Action::Reject, Resolve::Remote)];
    let proxy = serve(rules, Action::Direct, Resolve::Remote).await;
    assert_eq!(connect_raw(proxy, &[1, 127, 0, 0, 2], port).await, 2);
    for spelling in SPELLINGS_OF_127_0_0_2 {
        let rep = connect_raw(proxy, &name(spelling), port).await;
        assert_eq!(rep, 2, "{spelling} must get REP 0x02 (not allowed)");
    }
    // Refused, whether by the SOCKS parser (1) or by routing (2).
    for odd in [
        "127.0.0.2 x",
        "127.0.0.2\t",
        "4294967298",
        "1.2.3.4.5",
        "127.0.0.2..",
    ] {
        let rep = connect_raw(proxy, &name(odd), port).await;
        assert!(rep == 1 || rep == 2, "{odd:?} got REP {rep}");
    }
    assert!(
        !was_dialled(&target).await,
        "a rejected address was dialled"
    );
}

#[tokio::test]
async fn a_numeric_spelling_is_dialled_as_the_address_it_stands_for() {
    let target = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let rules = vec![rule("127.0.0.2/32", Action::Reject, Resolve::Remote)];
    let proxy = serve(rules, Action::Direct, Resolve::Remote).await;
    for spelling in ["127.3", "2130706435", "0x7f.0.0.03"] {
        assert_eq!(
            connect_raw(proxy, &name(spelling), port).await,
            0,
            "{spelling}"
        );
        assert!(
            was_dialled(&target).await,
            "{spelling} did not reach 127.0.0.3"
        );
    }
}

#[tokio::test]
async fn resolve_local_applies_cidr_rules_to_the_addresses_of_a_name() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let reject = || rule("127.0.0.0/8", Action::Reject, Resolve::Remote);
    // Remote resolution: the name matches no CIDR, so the default lets it through.
    let proxy = serve(vec![reject()], Action::Direct, Resolve::Remote).await;
    assert_eq!(connect_raw(proxy, &name("localhost"), port).await, 0);
    assert!(was_dialled(&target).await);
    // Local resolution by default: localhost is 127.0.0.1 here, which the CIDR rejects.
    let proxy = serve(vec![reject()], Action::Direct, Resolve::Local).await;
    assert_eq!(connect_raw(proxy, &name("localhost"), port).await, 2);
    // Local resolution on the name's own rule.
    let by_rule = vec![reject(), rule("localhost", Action::Direct, Resolve::Local)];
    let proxy = serve(by_rule, Action::Reject, Resolve::Remote).await;
    assert_eq!(connect_raw(proxy, &name("localhost"), port).await, 2);
    assert!(!was_dialled(&target).await);
}
