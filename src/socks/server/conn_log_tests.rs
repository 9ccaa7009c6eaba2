//! The one log line per SOCKS connection, on a real loopback server: written at close (or on
//! refusal), at info, with client, destination, route, upstream, result, bytes and duration.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::limit_tests::Captured;
use super::tests::{echo_server, eventually, read_n, socks_connect, start};
use super::*;

/// Dials directly and says it did so by `routes[0]`, as the routing connector would.
struct Routed;

impl Connector for Routed {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_> {
        Box::pin(async move {
            let via = Via {
                route: "routes[0]".into(),
                upstream: "direct".into(),
            };
            Ok(direct_connect(dest).await?.with_via(via))
        })
    }
}

/// Refuses everything by `routes[1]`, as a `reject` rule would.
struct Rejecting;

impl Connector for Rejecting {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_> {
        Box::pin(async move {
            let via = Via {
                route: "routes[1]".into(),
                upstream: "reject".into(),
            };
            Err(
                ConnectError::new(Reply::NotAllowed, format!("{dest} matched routes[1]"))
                    .with_via(via),
            )
        })
    }
}

/// Waits (bounded) for exactly one line containing `what` and returns it.
async fn one_line(log: &Captured, what: &str) -> String {
    eventually(what, || !log.lines_with(what).is_empty()).await;
    let lines = log.lines_with("socks: connection");
    assert_eq!(lines.len(), 1, "one line per connection: {lines:#?}");
    lines.into_iter().next().unwrap_or_default()
}

fn assert_fields(line: &str, fields: &[&str]) {
    for f in fields {
        assert!(line.contains(f), "{f:?} missing from: {line}");
    }
}

#[tokio::test]
async fn a_relayed_connection_logs_one_info_line_at_close_with_route_bytes_and_duration() {
    let (log, _guard) = Captured::start();
    let echo = echo_server().await;
    let srv = start(ServerConfig::default(), Routed).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let client = c.local_addr().unwrap();
    assert_eq!(socks_connect(&mut c, echo.into()).await.0, Reply::Succeeded);
    c.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut c, 5).await, b"hello");
    assert!(
        log.lines_with("socks: connection").is_empty(),
        "logged before close"
    );
    drop(c);
    let line = one_line(&log, "socks: connection closed").await;
    assert_fields(
        &line,
        &[
            " INFO ",
            &format!("client={client}"),
            &format!("destination={echo}"),
            "route=routes[0]",
            "upstream=direct",
            "result=ok",
            "bytes_up=5",
            "bytes_down=5",
            "duration=0.",
        ],
    );
}

#[tokio::test]
async fn a_rejected_connection_logs_one_line_naming_the_rule() {
    let (log, _guard) = Captured::start();
    let echo = echo_server().await;
    let srv = start(ServerConfig::default(), Rejecting).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        socks_connect(&mut c, echo.into()).await.0,
        Reply::NotAllowed
    );
    let line = one_line(&log, "socks: connection refused").await;
    assert_fields(
        &line,
        &[
            " INFO ",
            &format!("destination={echo}"),
            "route=routes[1]",
            "upstream=reject",
            "result=rejected",
            "matched routes[1]",
        ],
    );
}
