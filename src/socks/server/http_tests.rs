//! The HTTP CONNECT protocol of the shared server shell: what a connector's outcome, a timeout
//! and credentials become on the wire, and what is counted. End-to-end runs with curl and the
//! simulator are in tests/http_connect.rs.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tests::{echo_server, eventually, start, FixedConnector, HangingConnector};
use super::*;

fn http(users: &[(&str, &str)]) -> ServerConfig {
    ServerConfig {
        protocol: Protocol::HttpConnect,
        users: users
            .iter()
            .map(|(u, p)| ((*u).to_owned(), Redacted::new((*p).to_owned())))
            .collect(),
        ..ServerConfig::default()
    }
}

/// Sends `head`, returns everything the server wrote before closing (hang-guarded).
async fn exchange(addr: SocketAddr, head: &str) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut out))
        .await
        .expect("the server closed after its answer")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connector_refusals_become_403_and_502_and_are_counted() {
    for (reply, status) in [
        (Reply::NotAllowed, "403 Forbidden"),
        (Reply::ConnectionRefused, "502 Bad Gateway"),
        (Reply::HostUnreachable, "502 Bad Gateway"),
    ] {
        let srv = start(http(&[]), FixedConnector(reply)).await;
        let answer = exchange(srv.addr, "CONNECT example.com:443 HTTP/1.1\r\n\r\n").await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        assert_eq!(srv.stats.snapshot().replies_with(reply), 1);
    }
}

#[tokio::test]
async fn the_log_line_of_an_http_client_says_proto_http() {
    let (log, _guard) = super::limit_tests::Captured::start();
    let srv = start(http(&[]), FixedConnector(Reply::NotAllowed)).await;
    let answer = exchange(srv.addr, "CONNECT 127.30.1:80 HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    let refused = "connection refused";
    eventually("the line", || !log.lines_with(refused).is_empty()).await;
    let line = log.lines_with(refused).join("\n");
    assert!(line.contains(" proto=http "), "{line}");
    assert!(line.contains("destination=127.30.1:80"), "{line}");
}

#[tokio::test]
async fn a_connect_that_does_not_finish_in_time_is_504() {
    let cfg = ServerConfig {
        connect_timeout: Duration::from_millis(100),
        ..http(&[])
    };
    let srv = start(cfg, HangingConnector).await;
    let answer = exchange(srv.addr, "CONNECT 10.9.9.9:22 HTTP/1.1\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_407_and_counted_a_missing_one_is_407_only() {
    let srv = start(http(&[("alice", "wonderland")]), DirectConnector).await;
    // base64("alice:wrong")
    let wrong =
        "CONNECT 127.0.0.1:9 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n";
    let answer = exchange(srv.addr, wrong).await;
    assert!(answer.starts_with("HTTP/1.1 407 "), "{answer}");
    eventually("auth failure counted", || {
        srv.stats.snapshot().auth_failures == 1
    })
    .await;
    let answer = exchange(srv.addr, "CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n").await;
    assert!(
        answer.contains("Proxy-Authenticate: Basic realm=\"session-proxy\"\r\n"),
        "{answer}"
    );
    eventually("two failed handshakes", || {
        srv.stats.snapshot().handshake_failures == 2
    })
    .await;
    assert_eq!(srv.stats.snapshot().auth_failures, 1);
}

#[tokio::test]
async fn the_right_password_opens_a_tunnel_that_relays_both_ways() {
    let echo = echo_server().await;
    let srv = start(http(&[("alice", "wonderland")]), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    // base64("alice:wonderland"), and early bytes after the head.
    let head = format!("CONNECT {echo} HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\nping");
    c.write_all(head.as_bytes()).await.unwrap();
    let want = b"HTTP/1.1 200 Connection established\r\n\r\nping";
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(Duration::from_secs(30), c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(srv.stats.snapshot().replies_with(Reply::Succeeded), 1);
}

#[tokio::test]
async fn a_malformed_request_is_400_and_counted_as_a_failed_handshake() {
    let srv = start(http(&[]), DirectConnector).await;
    let answer = exchange(srv.addr, "CONNECT nohost HTTP/1.1\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    eventually("failure counted", || {
        srv.stats.snapshot().handshake_failures == 1
    })
    .await;
}
