//! \[shell\] The client side of the control socket: connect (a missing or dead socket is
//! [`ControlError::NotRunning`]), send one request, read the answer(s) with a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixStream;

use super::conn::LineConn;
use super::proto::{self, Request, Response};
use super::ControlError;

/// How long a quick command waits for each answer line.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the master.
pub struct Client {
    path: PathBuf,
    conn: LineConn,
}

impl Client {
    /// Connects; "no such file" and "connection refused" (a stale socket) mean no master.
    pub async fn connect(path: &Path) -> Result<Self, ControlError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    ControlError::NotRunning {
                        path: path.to_path_buf(),
                    }
                }
                _ => ControlError::Socket {
                    path: path.to_path_buf(),
                    source: e,
                },
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: LineConn::new(stream),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `req`. If the master already hung up (it refuses some clients before reading),
    /// its explanation is read and returned as the error.
    pub async fn send(&mut self, req: &Request) -> Result<(), ControlError> {
        let mut line = Vec::new();
        proto::encode_request(req, &mut line);
        match self.conn.write_line(&line).await {
            Ok(()) => Ok(()),
            Err(e) => match self.recv(Some(ANSWER_TIMEOUT)).await {
                Ok(Response::Error { kind, message }) => {
                    Err(ControlError::Remote { kind, message })
                }
                _ => Err(e),
            },
        }
    }

    /// The next answer line; `timeout` bounds the wait for it.
    pub async fn recv(&mut self, timeout: Option<Duration>) -> Result<Response, ControlError> {
        let line = self
            .conn
            .read_line(timeout)
            .await?
            .ok_or(ControlError::Closed)?;
        Ok(proto::decode_response(&line)?)
    }

    /// Sends `req` and returns its final answer, passing progress lines to `progress`.
    pub async fn call(
        &mut self,
        req: &Request,
        timeout: Duration,
        mut progress: impl FnMut(&str),
    ) -> Result<Response, ControlError> {
        self.send(req).await?;
        loop {
            match self.recv(Some(timeout)).await? {
                Response::Progress { message } => progress(&message),
                other => return Ok(other),
            }
        }
    }

    /// The socket and any stream bytes already received (after a `Stream` answer).
    pub fn into_parts(self) -> (UnixStream, Vec<u8>) {
        self.conn.into_parts()
    }
}

/// One request, one final answer; a `Response::Error` becomes [`ControlError::Remote`].
pub async fn request(path: &Path, req: &Request) -> Result<Response, ControlError> {
    let mut c = Client::connect(path).await?;
    match c.call(req, ANSWER_TIMEOUT, |_| {}).await? {
        Response::Error { kind, message } => Err(ControlError::Remote { kind, message }),
        other => Ok(other),
    }
}
