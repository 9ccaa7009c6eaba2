//! The control socket's shell against a stub handler on a temp-dir socket: permissions, the
//! stale-socket probe, double binding, caps and version errors, and the client's messages.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::{self, Client};
use super::proto::{self, ErrorKind, Request, Response};
use super::server::{self, Exchange, HandleFuture, Handler};
use super::ControlError;

struct Echo;

impl Handler for Echo {
    fn handle(&self, req: Request, mut ex: Exchange) -> HandleFuture<'_> {
        Box::pin(async move {
            ex.send(&Response::Progress {
                message: "working".into(),
            })
            .await;
            ex.send(&Response::Done {
                lines: vec![format!("{req:?}")],
            })
            .await;
        })
    }
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

async fn raw_exchange(path: &std::path::Path, bytes: &[u8]) -> Response {
    let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    proto::decode_response(&out).unwrap()
}

#[tokio::test]
async fn socket_is_private_answers_requests_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/control.sock");
    let l = server::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        l.run(Arc::new(Echo), async move {
            let _ = rx.await;
        })
        .await;
        l
    });

    let mut c = Client::connect(&path).await.unwrap();
    let mut progress = Vec::new();
    let r = c
        .call(&Request::Reload, client::ANSWER_TIMEOUT, |m| {
            progress.push(m.to_owned())
        })
        .await
        .unwrap();
    assert_eq!(progress, ["working"]);
    assert_eq!(
        r,
        Response::Done {
            lines: vec!["Reload".into()]
        }
    );

    let r = raw_exchange(&path, b"{\"v\":9,\"cmd\":\"status\"}\n").await;
    assert!(
        matches!(&r, Response::Error { kind: ErrorKind::BadRequest, message } if message.contains("version 9")),
        "{r:?}"
    );
    let r = raw_exchange(&path, &vec![b'x'; proto::MAX_LINE + 10]).await;
    assert!(
        matches!(&r, Response::Error { kind: ErrorKind::BadRequest, message } if message.contains("longer than")),
        "{r:?}"
    );

    // A live socket cannot be taken over.
    assert!(matches!(
        server::bind(&path),
        Err(ControlError::AlreadyRunning { .. })
    ));
    let _ = tx.send(());
    let l = task.await.unwrap();
    drop(l);
    assert!(!path.exists(), "the socket file goes with the listener");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_missing_master_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let e = client::request(&path, &Request::Status).await.unwrap_err();
    assert!(matches!(e, ControlError::NotRunning { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "no master running at {}; start one with `session-proxy serve`",
            path.display()
        )
    );
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(matches!(
        client::request(&path, &Request::Status).await,
        Err(ControlError::NotRunning { .. })
    ));
    let l = server::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(l);
}
