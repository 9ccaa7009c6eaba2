//! Tests of [`super`] on real loopback sockets.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::*;

/// A hang guard only: loopback accepts take microseconds.
const GUARD: Duration = Duration::from_secs(20);

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Sends `ping` from `client` to the accepted stream and `pong` back.
async fn exchange(client: &mut (impl AsyncRead + AsyncWrite + Unpin), accepted: &mut BoxedStream) {
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    accepted.write_all(b"pong").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn tcp_port_0_reports_the_port_bound_and_accepts_a_connection() {
    let l = Listener::bind(&ListenOn::Tcp("127.0.0.1:0".parse().unwrap()), false)
        .await
        .unwrap();
    let ListenOn::Tcp(addr) = l.address() else {
        panic!("a TCP spec gives a TCP listener")
    };
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the kernel's port, not the spec's 0");
    let mut client = TcpStream::connect(addr).await.unwrap();
    let (mut accepted, peer) = tokio::time::timeout(GUARD, l.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer, client.local_addr().unwrap().to_string());
    exchange(&mut client, &mut accepted).await;
}

#[tokio::test]
async fn accepted_tcp_connections_have_nodelay_set() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = tokio::time::timeout(GUARD, accept_tcp(&listener))
        .await
        .unwrap()
        .unwrap();
    assert!(stream.nodelay().unwrap());
}

#[tokio::test]
async fn remote_and_all_interface_binds_are_refused_unless_allowed() {
    let cases = [
        ("0.0.0.0:0", "listens on all interfaces"),
        ("[::]:0", "listens on all interfaces"),
        ("10.1.2.3:5432", "10.1.2.3:5432 is not a loopback address"),
        ("[fd00::1]:5432", "is not a loopback address"),
    ];
    for (addr, want) in cases {
        let addr: SocketAddr = addr.parse().unwrap();
        let err = Listener::bind(&ListenOn::Tcp(addr), false)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(want), "{addr}: {text}");
        assert!(text.contains("--allow-remote"), "names the way out: {text}");
        assert!(
            check_local(addr, true).is_ok(),
            "{addr} allowed with allow_remote"
        );
    }
    for ok in ["127.0.0.1:0", "127.77.0.1:0", "[::1]:0"] {
        assert!(check_local(ok.parse().unwrap(), false).is_ok(), "{ok}");
    }
}

#[tokio::test]
async fn a_busy_tcp_address_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let on = ListenOn::Tcp(taken.local_addr().unwrap());
    let err = Listener::bind(&on, false).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot listen on {on}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn unix_listener_is_0600_in_a_new_0700_dir_accepts_and_is_removed_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("new/dir/db.sock");
    let l = Listener::bind(&ListenOn::Unix(path.clone()), false)
        .await
        .unwrap();
    assert_eq!(l.address(), ListenOn::Unix(path.clone()));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let mut client = UnixStream::connect(&path).await.unwrap();
    let (mut accepted, peer) = tokio::time::timeout(GUARD, l.accept())
        .await
        .unwrap()
        .unwrap();
    let me = std::process::id();
    assert_eq!(peer, format!("unix:{} pid={me}", path.display()));
    exchange(&mut client, &mut accepted).await;
    drop(l);
    assert!(!path.exists(), "the socket file goes with the listener");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_but_a_live_one_or_another_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fwd.sock");
    // A socket file left by a process that died: std does not unlink on drop.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let on = ListenOn::Unix(path.clone());
    let live = Listener::bind(&on, false).await.unwrap();
    let err = Listener::bind(&on, false).await.unwrap_err().to_string();
    assert!(err.contains("already listening"), "{err}");
    assert!(path.exists(), "the live socket stays");
    drop(live);

    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let err = Listener::bind(&ListenOn::Unix(file.clone()), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
