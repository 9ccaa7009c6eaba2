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

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use super::conn::LineConn;
use super::proto::{self, ErrorKind, Request, Response};
use super::ControlError;

/// How long a client has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(socket_err(path))?;
    Ok(guard)
}

impl ControlListener {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts until `shutdown` resolves, answering each connection on its own task. The
    /// listener stays bound (and its file present) until the caller drops it.
    pub async fn run(&self, handler: Arc<dyn Handler>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let handler = handler.clone();
            tokio::spawn(async move { serve_one(stream, me, handler).await });
        }
    }
}

async fn serve_one(stream: UnixStream, me: u32, handler: Arc<dyn Handler>) {
    let peer = stream.peer_cred().map(|c| c.uid()).ok();
    let mut ex = Exchange {
        conn: LineConn::new(stream),
    };
    if peer != Some(me) {
        tracing::warn!("control socket: refused a client with uid {peer:?}");
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
