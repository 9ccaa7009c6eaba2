//! Black-box tests of the SOCKS5 server on loopback: raw-byte clients for exact wire checks,
//! fake connectors for reply codes, and real `curl` when it is installed. They live beside
//! `server.rs` to keep that file under the size budget.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::socks::proto::{parse_reply, write_connect_request};

/// A running server on 127.0.0.1:0; dropping `stop` (or sending) shuts it down.
pub(super) struct Running {
    pub(super) addr: SocketAddr,
    pub(super) stats: Arc<ServerStats>,
    pub(super) stop: oneshot::Sender<()>,
    pub(super) task: JoinHandle<()>,
}

pub(super) async fn start(cfg: ServerConfig, connector: impl Connector) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(cfg, Arc::new(connector));
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        addr,
        stats,
        stop,
        task,
    }
}

/// Echo server on 127.0.0.1:0; each connection echoes until EOF, then closes its side.
pub(super) async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// Polls `cond` until true or a 5 s deadline (never a fixed sleep).
pub(super) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) async fn read_reply(s: &mut (impl AsyncRead + Unpin)) -> (Reply, Destination) {
    let mut buf = Vec::new();
    loop {
        if let Some((reply, bound, _)) = parse_reply(&buf).unwrap() {
            return (reply, bound);
        }
        let mut byte = [0u8; 1];
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "EOF before a full reply"
        );
        buf.push(byte[0]);
    }
}

pub(super) async fn read_n(s: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

pub(super) async fn assert_closed(s: &mut (impl AsyncRead + Unpin)) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "expected close, got {read:?} {rest:?}"
    );
}

pub(super) fn connect_request(dest: impl Into<Destination>) -> Vec<u8> {
    let mut req = Vec::new();
    write_connect_request(&dest.into(), &mut req).unwrap();
    req
}

/// No-auth greeting + CONNECT over `s`; returns the reply.
pub(super) async fn socks_connect(
    s: &mut (impl AsyncRead + AsyncWrite + Unpin),
    dest: Destination,
) -> (Reply, Destination) {
    s.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_n(s, 2).await, [5, 0]);
    s.write_all(&connect_request(dest)).await.unwrap();
    read_reply(s).await
}

fn users() -> ServerConfig {
    ServerConfig {
        users: vec![("alice".into(), Redacted::new("s3cret".into()))],
        ..ServerConfig::default()
    }
}

fn auth_message(user: &str, pass: &str) -> Vec<u8> {
    let mut v = vec![1, user.len() as u8];
    v.extend_from_slice(user.as_bytes());
    v.push(pass.len() as u8);
    v.extend_from_slice(pass.as_bytes());
    v
}

/// Answers every connect with a fixed outcome.
pub(super) struct FixedConnector(pub(super) Reply);

impl Connector for FixedConnector {
    fn connect(&self, dest: Destination) -> ConnectFuture<'_> {
        let reply = self.0;
        Box::pin(async move { Err(ConnectError::new(reply, format!("{dest} refused by test"))) })
    }
}

/// Never finishes connecting.
pub(super) struct HangingConnector;

impl Connector for HangingConnector {
    fn connect(&self, _: Destination) -> ConnectFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn connect_relays_bytes_and_reports_the_bound_address() {
    let echo = echo_server().await;
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let (reply, bound) = socks_connect(&mut c, echo.into()).await;
    assert_eq!(reply, Reply::Succeeded);
    assert_eq!(bound.host, Host::Ip(Ipv4Addr::LOCALHOST.into()));
    assert_ne!(bound.port, 0);
    c.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut c, 4).await, b"ping");
    c.shutdown().await.unwrap();
    assert_closed(&mut c).await;
    eventually("stats", || {
        let s = srv.stats.snapshot();
        s.active == 0 && s.bytes_client_to_upstream == 4 && s.bytes_upstream_to_client == 4
    })
    .await;
    let s = srv.stats.snapshot();
    assert_eq!(
        (
            s.accepted,
            s.replies_with(Reply::Succeeded),
            s.handshake_failures
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn data_pipelined_with_greeting_and_request_reaches_the_destination() {
    let echo = echo_server().await;
    let srv = start(users(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let mut wire = vec![5, 1, 2];
    wire.extend(auth_message("alice", "s3cret"));
    wire.extend(connect_request(echo));
    wire.extend_from_slice(b"early data");
    c.write_all(&wire).await.unwrap();
    assert_eq!(read_n(&mut c, 4).await, [5, 2, 1, 0]);
    assert_eq!(read_reply(&mut c).await.0, Reply::Succeeded);
    assert_eq!(read_n(&mut c, 10).await, b"early data");
}

#[tokio::test]
async fn wrong_password_gets_status_1_and_is_counted() {
    let srv = start(users(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&[5, 1, 2]).await.unwrap();
    assert_eq!(read_n(&mut c, 2).await, [5, 2]);
    c.write_all(&auth_message("alice", "guess")).await.unwrap();
    assert_eq!(read_n(&mut c, 2).await, [1, 1]);
    assert_closed(&mut c).await;
    eventually("auth failure counted", || {
        srv.stats.snapshot().auth_failures == 1
    })
    .await;
    assert_eq!(srv.stats.snapshot().handshake_failures, 1);
}

#[tokio::test]
async fn configured_users_turn_away_a_no_auth_client_with_ff() {
    let srv = start(users(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_n(&mut c, 2).await, [5, 0xFF]);
    assert_closed(&mut c).await;
}

#[tokio::test]
async fn bind_command_gets_reply_7_and_close() {
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80])
        .await
        .unwrap();
    assert_eq!(read_n(&mut c, 2).await, [5, 0]);
    assert_eq!(read_reply(&mut c).await.0, Reply::CommandNotSupported);
    assert_closed(&mut c).await;
    eventually("reply counted", || {
        srv.stats
            .snapshot()
            .replies_with(Reply::CommandNotSupported)
            == 1
    })
    .await;
}

#[tokio::test]
async fn closed_port_gets_connection_refused() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        socks_connect(&mut c, closed.into()).await.0,
        Reply::ConnectionRefused
    );
    assert_closed(&mut c).await;
}

#[tokio::test]
async fn connector_rejection_code_is_sent_and_counted() {
    let srv = start(ServerConfig::default(), FixedConnector(Reply::NotAllowed)).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let dest = Destination {
        host: Host::Domain("blocked.example".into()),
        port: 443,
    };
    assert_eq!(socks_connect(&mut c, dest).await.0, Reply::NotAllowed);
    eventually("reply counted", || {
        srv.stats.snapshot().replies_with(Reply::NotAllowed) == 1
    })
    .await;
}

#[tokio::test]
async fn slow_connector_is_cut_off_with_ttl_expired() {
    let cfg = ServerConfig {
        connect_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let srv = start(cfg, HangingConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    let dest = SocketAddr::from((Ipv4Addr::LOCALHOST, 9)).into();
    assert_eq!(socks_connect(&mut c, dest).await.0, Reply::TtlExpired);
}

#[tokio::test]
async fn stalled_handshake_is_dropped_after_the_timeout() {
    let cfg = ServerConfig {
        handshake_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let srv = start(cfg, DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(&[5]).await.unwrap();
    assert_closed(&mut c).await;
    eventually("failure counted", || {
        srv.stats.snapshot().handshake_failures == 1
    })
    .await;
}

#[tokio::test]
async fn garbage_greeting_is_closed_without_answer() {
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn domain_destination_is_resolved_by_the_direct_connector() {
    let echo = echo_server().await;
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    // "localhost" may resolve to ::1 first, which refuses: the next address must be tried.
    let dest = Destination {
        host: Host::Domain("localhost".into()),
        port: echo.port(),
    };
    assert_eq!(socks_connect(&mut c, dest).await.0, Reply::Succeeded);
    c.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut c, 1).await, b"x");
}

#[tokio::test]
async fn unix_listener_serves_the_same_protocol() {
    let echo = echo_server().await;
    let dir = std::env::temp_dir().join(format!(
        "socks-test-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socks.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_unix(
        listener,
        ServerConfig::default(),
        Arc::new(DirectConnector),
        async {
            let _ = stopped.await;
        },
    ));
    let mut c = UnixStream::connect(&path).await.unwrap();
    assert_eq!(socks_connect(&mut c, echo.into()).await.0, Reply::Succeeded);
    c.write_all(b"over unix").await.unwrap();
    assert_eq!(read_n(&mut c, 9).await, b"over unix");
    stop.send(()).unwrap();
    task.await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn shutdown_stops_the_server_and_drops_live_connections() {
    let echo = echo_server().await;
    let srv = start(ServerConfig::default(), DirectConnector).await;
    let mut c = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(socks_connect(&mut c, echo.into()).await.0, Reply::Succeeded);
    srv.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), srv.task)
        .await
        .unwrap()
        .unwrap();
    assert_closed(&mut c).await;
    assert_eq!(srv.stats.snapshot().active, 0);
}

/// A server on 127.0.0.1:0 run with [`Server::serve_until`]; `stop` and `abort` are separate.
async fn start_draining() -> (
    SocketAddr,
    Arc<ServerStats>,
    oneshot::Sender<()>,
    oneshot::Sender<()>,
    JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerConfig::default(), Arc::new(DirectConnector));
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let (abort, aborted) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        let abort = async {
            let _ = aborted.await;
        };
        server.serve_until(listener.into(), stop, abort).await;
    });
    (addr, stats, stop, abort, task)
}

#[tokio::test]
async fn stopping_closes_the_listener_but_lets_live_relays_finish() {
    let echo = echo_server().await;
    let (addr, stats, stop, _abort, task) = start_draining().await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(socks_connect(&mut c, echo.into()).await.0, Reply::Succeeded);
    stop.send(()).unwrap();
    // Closed means refused. A connect that succeeds, or hangs because the backlog of a
    // listener nobody accepts on is full, means the socket is still open.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let probe = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr));
        if matches!(probe.await, Ok(Err(_))) {
            break;
        }
        assert!(Instant::now() < deadline, "still accepting after stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The relay in flight still carries bytes both ways.
    c.write_all(b"after stop").await.unwrap();
    assert_eq!(read_n(&mut c, 10).await, b"after stop");
    assert!(
        !task.is_finished(),
        "the server waits for its live connection"
    );
    c.shutdown().await.unwrap();
    assert_closed(&mut c).await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.snapshot().active, 0);
}

#[tokio::test]
async fn aborting_a_drain_closes_the_relays_left() {
    let echo = echo_server().await;
    let (addr, stats, stop, abort, task) = start_draining().await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(socks_connect(&mut c, echo.into()).await.0, Reply::Succeeded);
    stop.send(()).unwrap();
    c.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut c, 1).await, b"x");
    abort.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_closed(&mut c).await;
    assert_eq!(stats.snapshot().active, 0);
}

#[test]
fn stats_snapshots_add_up_across_listeners() {
    let mut a = StatsSnapshot {
        accepted: 2,
        replies: [1, 0, 1, 0, 0, 0, 0, 0, 0],
        bytes_client_to_upstream: 10,
        ..StatsSnapshot::default()
    };
    let b = StatsSnapshot {
        accepted: 3,
        active: 1,
        replies: [2, 0, 0, 0, 1, 0, 0, 0, 0],
        bytes_upstream_to_client: 7,
        ..StatsSnapshot::default()
    };
    a.add(&b);
    assert_eq!(
        (
            a.accepted,
            a.active,
            a.replies,
            a.bytes_client_to_upstream,
            a.bytes_upstream_to_client
        ),
        (5, 1, [3, 0, 1, 0, 1, 0, 0, 0, 0], 10, 7)
    );
}

#[test]
fn io_errors_map_to_rfc_1928_reply_codes() {
    use io::ErrorKind as K;
    for (kind, reply) in [
        (K::ConnectionRefused, Reply::ConnectionRefused),
        (K::TimedOut, Reply::TtlExpired),
        (K::NetworkUnreachable, Reply::NetworkUnreachable),
        (K::HostUnreachable, Reply::HostUnreachable),
        (K::Other, Reply::GeneralFailure),
    ] {
        assert_eq!(
            reply_for_io_error(&io::Error::from(kind)),
            reply,
            "{kind:?}"
        );
    }
}

#[test]
fn config_debug_does_not_print_passwords() {
    let dbg = format!("{:?}", users());
    assert!(dbg.contains("alice") && !dbg.contains("s3cret"), "{dbg}");
}

#[test]
fn credentials_must_match_user_and_password_together() {
    let users = vec![
        ("alice".to_owned(), Redacted::new("a-pass".to_owned())),
        ("bob".to_owned(), Redacted::new("b-pass".to_owned())),
    ];
    let creds = |u: &str, p: &str| Credentials {
        username: u.as_bytes().to_vec(),
        password: Redacted::new(p.as_bytes().to_vec()),
    };
    assert!(credentials_match(&users, &creds("bob", "b-pass")));
    assert!(!credentials_match(&users, &creds("alice", "b-pass")));
    assert!(!credentials_match(&users, &creds("alice", "a-pas")));
    assert!(!credentials_match(&[], &creds("", "")));
}

/// Minimal HTTP/1.0 server on 127.0.0.1:0 answering every request with `body`.
async fn http_server(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// Runs `curl` against `url` through `proxy`; `None` (with a note) when curl is not installed.
async fn curl(proxy: &str, url: &str) -> Option<std::process::Output> {
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--proxy",
            proxy,
            url,
        ])
        .output()
        .await;
    match out {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("note: curl not installed; skipping the real-client check");
            None
        }
        other => Some(other.unwrap()),
    }
}

#[tokio::test]
async fn real_curl_fetches_through_the_proxy_with_and_without_auth() {
    let web = http_server("hello through socks\n").await;
    let url = format!("http://localhost:{}/", web.port());

    let open = start(ServerConfig::default(), DirectConnector).await;
    let Some(out) = curl(&format!("socks5h://{}", open.addr), &url).await else {
        return;
    };
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello through socks\n");

    let locked = start(users(), DirectConnector).await;
    let ok = curl(&format!("socks5h://alice:s3cret@{}", locked.addr), &url)
        .await
        .unwrap();
    assert_eq!(ok.stdout, b"hello through socks\n");
    let denied = curl(&format!("socks5h://alice:nope@{}", locked.addr), &url)
        .await
        .unwrap();
    assert!(!denied.status.success());
    let anonymous = curl(&format!("socks5h://{}", locked.addr), &url)
        .await
        .unwrap();
    assert!(!anonymous.status.success());
    assert_eq!(locked.stats.snapshot().auth_failures, 1);
}
