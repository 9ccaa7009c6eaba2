//! \[shell\] One control connection on either side: reads capped lines with a timeout, writes
//! lines, and hands back the socket plus any bytes read past the last line when the connection
//! turns into a raw stream (`open`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::proto::{self, ProtoError};
use super::ControlError;

/// A Unix stream with a read buffer for line framing.
pub struct LineConn {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl LineConn {
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Reads the next line (without limit on how long the peer takes when `timeout` is `None`).
    /// `Ok(None)` is a clean EOF before any byte of a new line.
    pub async fn read_line(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, ControlError> {
        let fut = self.read_line_inner();
        match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ControlError::Timeout(t))?,
            None => fut.await,
        }
    }

    async fn read_line_inner(&mut self) -> Result<Option<Vec<u8>>, ControlError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(n) = proto::find_line(&self.buf).map_err(ControlError::Proto)? {
                let rest = self.buf.split_off(n);
                let line = std::mem::replace(&mut self.buf, rest);
                return Ok(Some(line));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ControlError::Proto(ProtoError::Json(
                        "connection closed in the middle of a message".into(),
                    )))
                };
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    pub async fn write_line(&mut self, line: &[u8]) -> Result<(), ControlError> {
        self.stream.write_all(line).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The socket and the bytes already read past the last line.
    pub fn into_parts(self) -> (UnixStream, Vec<u8>) {
        (self.stream, self.buf)
    }
}
