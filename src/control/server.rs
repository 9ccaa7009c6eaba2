//! \[shell\] The master's end of the control socket.
//!
//! Binding: the socket's directory is created 0700 when missing (an existing directory, e.g.
//! one named with `--control-socket /tmp/x.sock`, is left as it is). A socket file that is
//! already there is probed by connecting: an answer means another master owns it
//! ([`ControlError::AlreadyRunning`]); a refusal means it is stale and it is removed. The socket
//! is created under a 0177 umask, so it is 0600 from the moment it exists and hence before it
//! listens (tokio binds and listens in one call), then chmod'ed 0600 again to be explicit.
//!
//! Serving: every connection's peer uid is checked with `SO_PEERCRED`; other users get a
//! `permission_denied` error and are closed. A request line must arrive within
//! [`REQUEST_TIMEOUT`] and fit in `proto::MAX_LINE`. The request is handed to a [`Handler`].
//! Connection tasks are owned by a `JoinSet` and capped by a semaphore like the SOCKS server's
//! (at most [`MAX_CONNECTIONS`]; clients over it wait in the listen backlog), and are aborted
//! when the server stops, so none outlives the master's shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::conn::LineConn;
use super::proto::{self, ErrorKind, Request, Response};
use super::ControlError;

/// How long a client has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Control connections served at once. Each `stdio` through the master holds one for as long
/// as its SSH session lasts, so this is well above a quick command's needs.
pub const MAX_CONNECTIONS: usize = 256;

/// One accepted request and the means to answer it.
pub struct Exchange {
    conn: LineConn,
}

impl Exchange {
    /// Sends one answer line; a vanished client is not an error worth more than a debug line.
    pub async fn send(&mut self, resp: &Response) -> bool {
        let mut line = Vec::new();
        proto::encode_response(resp, &mut line);
        match self.conn.write_line(&line).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("control client went away: {e}");
                false
            }
        }
    }

    /// The socket and the bytes the client sent past its request (for `open`).
    pub fn into_parts(self) -> (UnixStream, Vec<u8>) {
        self.conn.into_parts()
    }
}

/// Boxed future returned by [`Handler::handle`].
pub type HandleFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the master does with a request.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request, ex: Exchange) -> HandleFuture<'_>;
}

/// A bound control socket; removes its file when dropped.
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
    max_connections: usize,
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn socket_err(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
    move |source| ControlError::Socket {
        path: path.to_path_buf(),
        source,
    }
}

/// Binds the control socket at `path` (see the module doc for the permission scheme).
pub fn bind(path: &Path) -> Result<ControlListener, ControlError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::paths::create_private_dir(dir).map_err(socket_err(path))?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(ControlError::AlreadyRunning {
                    path: path.to_path_buf(),
                    pid: None,
                })
            }
            Err(_) => {
                tracing::info!("removing stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(socket_err(path))?;
            }
        }
    }
    // SAFETY: umask only swaps the process's file-mode mask; no memory is involved.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(socket_err(path))?;
    let guard = ControlListener {
        listener,
        path: path.to_path_buf(),
        max_connections: MAX_CONNECTIONS,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(socket_err(path))?;
    Ok(guard)
}

impl ControlListener {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Caps the connections served at once (at least 1; [`MAX_CONNECTIONS`] by default).
    pub fn set_max_connections(&mut self, n: usize) {
        self.max_connections = n.max(1);
    }

    /// Accepts until `shutdown` resolves, answering each connection on its own task, then
    /// aborts the connections still open. The listener stays bound (and its file present)
    /// until the caller drops it.
    pub async fn run(&self, handler: Arc<dyn Handler>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut tasks = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                a = self.accept(&limit) => a,
            };
            while tasks.try_join_next().is_some() {}
            let Some((stream, permit)) = accepted else {
                continue;
            };
            let handler = handler.clone();
            tasks.spawn(async move {
                let _permit = permit;
                serve_one(stream, me, handler).await;
            });
        }
        tasks.shutdown().await;
    }

    /// Waits for a free slot, then for a client. `None` after an accept error (logged, with a
    /// short pause so a persistent error such as EMFILE does not spin).
    async fn accept(&self, limit: &Arc<Semaphore>) -> Option<(UnixStream, OwnedSemaphorePermit)> {
        let permit = limit.clone().acquire_owned().await.ok()?;
        match self.listener.accept().await {
            Ok((s, _)) => Some((s, permit)),
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                None
            }
        }
    }
}

async fn serve_one(stream: UnixStream, me: u32, handler: Arc<dyn Handler>) {
    let peer = stream.peer_cred().map(|c| c.uid()).ok();
    let mut ex = Exchange {
        conn: LineConn::new(stream),
    };
    if peer != Some(me) {
        let who = peer.map_or_else(|| "unknown".to_owned(), |u| u.to_string());
        tracing::warn!("control socket: refused a client with uid {who}");
        ex.send(&Response::error(
            ErrorKind::PermissionDenied,
            "permission denied: the master only takes commands from its own user",
        ))
        .await;
        return;
    }
    let line = match ex.conn.read_line(Some(REQUEST_TIMEOUT)).await {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => {
            ex.send(&Response::error(ErrorKind::BadRequest, e.to_string()))
                .await;
            return;
        }
    };
    match proto::decode_request(&line) {
        Ok(req) => handler.handle(req, ex).await,
        Err(e) => {
            ex.send(&Response::error(ErrorKind::BadRequest, e.to_string()))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;
    use crate::control::client::{Client, ANSWER_TIMEOUT};

    /// Holds every request until released, counting how many it holds at once.
    #[derive(Default)]
    struct Gate {
        held: AtomicUsize,
        peak: AtomicUsize,
        release: Notify,
    }

    impl Handler for Gate {
        fn handle(&self, _req: Request, mut ex: Exchange) -> HandleFuture<'_> {
            Box::pin(async move {
                let now = self.held.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                self.release.notified().await;
                self.held.fetch_sub(1, Ordering::SeqCst);
                ex.send(&Response::Done { lines: vec![] }).await;
            })
        }
    }

    async fn ask(path: &Path) -> Result<Response, ControlError> {
        let mut c = Client::connect(path).await?;
        c.call(&Request::Status, ANSWER_TIMEOUT, |_| {}).await
    }

    #[tokio::test]
    async fn connections_over_the_limit_wait_and_stopping_aborts_the_ones_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let mut l = bind(&path).unwrap();
        l.set_max_connections(1);
        let gate = Arc::new(Gate::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler: Arc<dyn Handler> = gate.clone();
        let server = tokio::spawn(async move {
            l.run(handler, async {
                let _ = stopped.await;
            })
            .await;
        });
        let first = tokio::spawn({
            let path = path.clone();
            async move { ask(&path).await }
        });
        while gate.held.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let path = path.clone();
            async move { ask(&path).await }
        });
        // The second client sits in the backlog while the first holds the only slot.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(gate.held.load(Ordering::SeqCst), 1);
        assert!(!second.is_finished(), "second client served over the limit");
        gate.release.notify_one();
        assert!(matches!(first.await.unwrap(), Ok(Response::Done { .. })));
        while gate.held.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.peak.load(Ordering::SeqCst), 1, "never two at once");
        // Stopping the server aborts the held request: its client hears the close.
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(r, Err(ControlError::Closed)), "{r:?}");
    }
}
