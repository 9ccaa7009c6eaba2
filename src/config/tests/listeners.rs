//! Listener entries: kinds, limits, and what remote binds need.

use std::num::NonZeroUsize;

use super::*;

#[test]
fn allow_remote_permits_non_loopback_listeners_and_warns_without_users() {
    let c = cfg("listeners: [{socks5: 0.0.0.0:1080, allow_remote: true}]");
    assert!(matches!(c.listeners[0], Listener::Tcp { addr, .. } if addr.port() == 1080));
    assert_eq!(c.warnings().len(), 1);
    assert!(c.warnings()[0].contains("without a password"));
    let c = cfg("listeners: [{socks5: 0.0.0.0:1080, allow_remote: true, users: [{username: a, password: b}]}]");
    assert!(c.warnings().is_empty());
}

#[test]
fn an_http_listener_takes_users_limits_and_allow_remote_like_a_socks_one() {
    let c = cfg("listeners:\n  - http: 0.0.0.0:3128\n    allow_remote: true\n    max_connections: 7\n    idle_timeout_secs: 60\n    users: [{username: a, password: b}]\n");
    let Listener::Http {
        addr,
        users,
        limits,
    } = &c.listeners[0]
    else {
        panic!("{:?}", c.listeners)
    };
    assert_eq!(addr.port(), 3128);
    assert_eq!(users[0].username, "a");
    assert_eq!(limits.max_connections.get(), 7);
    assert_eq!(limits.idle_timeout, Some(Duration::from_secs(60)));
    assert!(c.warnings().is_empty());
    assert_eq!(c.listeners[0].to_string(), "http 0.0.0.0:3128");
    let c = cfg("listeners: [{http: 0.0.0.0:3128, allow_remote: true}]");
    assert!(
        c.warnings()[0].contains("without a password"),
        "{:?}",
        c.warnings()
    );
}

#[test]
fn listener_limits_are_read_from_the_file() {
    let c = cfg("listeners:\n  - socks5: 127.0.0.1:1080\n    max_connections: 10\n    idle_timeout_secs: 300\n  - socks5_unix: /tmp/s.sock\n    idle_timeout_secs: 0\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(
        c.listeners[0].limits(),
        Limits {
            max_connections: NonZeroUsize::new(10).unwrap(),
            idle_timeout: Some(Duration::from_secs(300)),
        }
    );
    // Off by default; 0 says so explicitly.
    assert_eq!(c.listeners[1].limits(), Limits::default());
    assert_eq!(Limits::default().max_connections.get(), 1024);
    assert_eq!(Limits::default().idle_timeout, None);
}
