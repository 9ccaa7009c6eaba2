//! Tests of [`super`]: the agent's refusals and real loopback dials.
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

use super::*;

/// A hang guard only.
const GUARD: Duration = Duration::from_secs(20);

#[test]
fn imds_is_refused_with_the_agents_text_and_other_addresses_are_not() {
    let text = "Forwarding to IP address 169.254.169.254 is forbidden.";
    let v4: SocketAddr = "169.254.169.254:80".parse().unwrap();
    assert_eq!(DialTarget::Addr(v4).denied().as_deref(), Some(text));
    let mapped: IpAddr = "::ffff:169.254.169.254".parse().unwrap();
    let err = check_destination(mapped).unwrap_err().to_string();
    assert_eq!(err, text, "IPv4-mapped IPv6 is the same host");
    let v6 = check_destination("fd00:ec2::254".parse().unwrap()).unwrap_err();
    assert_eq!(
        v6.to_string(),
        "Forwarding to IP address fd00:ec2::254 is forbidden."
    );
    for ok in ["127.0.0.1", "169.254.169.253", "::1", "10.0.0.2"] {
        assert!(check_destination(ok.parse().unwrap()).is_ok(), "{ok}");
    }
    let name = DialTarget::Host("db.internal".into(), 5432);
    assert_eq!(name.denied(), None, "a name is checked once resolved");
}

#[tokio::test]
async fn a_denied_address_is_refused_without_dialling() {
    let target = DialTarget::Addr("169.254.169.254:80".parse().unwrap());
    let err = tokio::time::timeout(GUARD, target.connect())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DialError::Denied(_)), "{err}");
}

#[tokio::test]
async fn names_resolve_through_the_system_and_connect_with_nodelay() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = DialTarget::Host("localhost".into(), port);
    let addrs = target.resolve().await.unwrap();
    assert!(
        addrs
            .iter()
            .all(|a| a.port() == port && a.ip().is_loopback()),
        "{addrs:?}"
    );
    let (dialled, accepted) = tokio::join!(target.connect(), listener.accept());
    let dialled = dialled.unwrap();
    assert!(dialled.nodelay().unwrap());
    assert_eq!(accepted.unwrap().1, dialled.local_addr().unwrap());
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_a_connect_error_naming_the_target() {
    // Bound but not listening: the port stays ours, and a connect to it is refused.
    let held = TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = held.local_addr().unwrap();
    let target = DialTarget::Addr(addr);
    let err = tokio::time::timeout(GUARD, target.connect())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DialError::Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {addr}: ")),
        "{err}"
    );
}
