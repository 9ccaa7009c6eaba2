//! Tests of the limits around the connection tasks: the cap and its refusals, the log lines
//! they cost, accept-error backoff, and the tunnel idle timeout.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::accept::Accept;
use super::tests::{assert_closed, echo_server, eventually, read_n, socks_connect, start};
use super::*;

/// Log lines written while the guard lives (current thread: `#[tokio::test]`'s runtime).
#[derive(Clone, Default)]
pub(super) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(super) fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    pub(super) fn lines_with(&self, needle: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

fn capped(max: usize) -> ServerConfig {
    ServerConfig {
        limits: Limits {
            max_connections: std::num::NonZeroUsize::new(max).unwrap(),
            idle_timeout: None,
        },
        ..ServerConfig::default()
    }
}

/// A no-auth CONNECT that must be answered within 2 s (an over-cap client must not wait).
async fn connect_answered(c: &mut TcpStream, dest: Destination) -> Reply {
    tokio::time::timeout(Duration::from_secs(2), socks_connect(c, dest))
        .await
        .expect("no SOCKS reply within 2 s: the client was left waiting")
        .0
}

#[tokio::test]
async fn clients_over_the_cap_get_general_failure_at_once() {
    let echo = echo_server().await;
    let srv = start(capped(1), DirectConnector).await;
    let mut first = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        connect_answered(&mut first, echo.into()).await,
        Reply::Succeeded
    );
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        connect_answered(&mut second, echo.into()).await,
        Reply::GeneralFailure
    );
    assert_closed(&mut second).await;
    // The tunnel holding the slot is untouched, and its slot is free again once it ends.
    first.write_all(b"still here").await.unwrap();
    assert_eq!(read_n(&mut first, 10).await, b"still here");
    assert_eq!(srv.stats.snapshot().active, 1);
    drop(first);
    let stats = srv.stats.clone();
    eventually("the first tunnel to end", || stats.snapshot().active == 0).await;
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        connect_answered(&mut third, echo.into()).await,
        Reply::Succeeded
    );
}

#[tokio::test]
async fn reaching_the_cap_is_logged_once_not_per_refused_client() {
    let (log, _guard) = Captured::start();
    let echo = echo_server().await;
    let srv = start(capped(1), DirectConnector).await;
    let mut holder = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        connect_answered(&mut holder, echo.into()).await,
        Reply::Succeeded
    );
    for _ in 0..3 {
        let mut c = TcpStream::connect(srv.addr).await.unwrap();
        assert_eq!(
            connect_answered(&mut c, echo.into()).await,
            Reply::GeneralFailure
        );
    }
    let lines = log.lines_with("connection cap");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("max_connections"),
        "names the key: {lines:?}"
    );
}

/// Fails every other accept with EMFILE, like a process at its descriptor limit where each
/// freed descriptor lets one more client in; the clients it hands out hang up at once.
#[derive(Default)]
struct Emfile {
    calls: std::sync::atomic::AtomicUsize,
    failures: std::sync::atomic::AtomicUsize,
}

impl Accept for Emfile {
    async fn accept(&self) -> io::Result<(BoxedStream, String)> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(2) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let (client, _gone) = tokio::io::duplex(64);
        Ok((Box::new(client), "test".to_owned()))
    }
}

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_exponentially_and_are_logged_rarely() {
    let (log, _guard) = Captured::start();
    let server = Server::new(ServerConfig::default(), Arc::new(DirectConnector));
    let listener = Emfile::default();
    let mut tasks = JoinSet::new();
    let forty_seconds = tokio::time::sleep(Duration::from_secs(40));
    server
        .accept_loop(&listener, forty_seconds, &mut tasks)
        .await;
    tasks.shutdown().await;
    let failures = listener.failures.load(Ordering::Relaxed);
    let lines = log.lines_with("accept");
    assert!(
        (5..=40).contains(&failures),
        "{failures} failed accepts in 40 s: the pause should grow, not restart after each success"
    );
    assert!(
        lines.len() <= 3,
        "{} log lines in 40 s: {lines:#?}",
        lines.len()
    );
}

#[tokio::test]
async fn idle_tunnels_are_closed_after_the_idle_timeout() {
    let echo = echo_server().await;
    let cfg = ServerConfig {
        limits: Limits {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let srv = start(cfg, DirectConnector).await;
    let mut busy = TcpStream::connect(srv.addr).await.unwrap();
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(
        socks_connect(&mut busy, echo.into()).await.0,
        Reply::Succeeded
    );
    assert_eq!(
        socks_connect(&mut idle, echo.into()).await.0,
        Reply::Succeeded
    );
    // The busy tunnel outlives the timeout several times over as long as bytes move.
    for _ in 0..8 {
        busy.write_all(b"x").await.unwrap();
        assert_eq!(read_n(&mut busy, 1).await, b"x");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "idle tunnel still open: {read:?}"
    );
    busy.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut busy, 1).await, b"y");
}
