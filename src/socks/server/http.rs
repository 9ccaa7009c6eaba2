//! The HTTP CONNECT handshake: drives [`RequestParser`] over the client stream and checks
//! `Proxy-Authorization` against the listener's users with the same constant-time comparison
//! as RFC 1929. Refusals get their status response written before the error is returned.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{credentials_match, write_flush, HandshakeError, ServerStats, READ_CHUNK};
use crate::http_connect::{Parse, Request, RequestParser, Status};
use crate::redact::Redacted;
use crate::socks::proto::Destination;

pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    users: &[(String, Redacted<String>)],
    stats: &ServerStats,
) -> Result<(Destination, Vec<u8>), HandshakeError> {
    let request = read_request(stream).await?;
    if !users.is_empty() {
        let Some(creds) = &request.credentials else {
            let _ = write_flush(stream, &Status::ProxyAuthRequired.response()).await;
            return Err(HandshakeError::NoCredentials);
        };
        if !credentials_match(users, creds) {
            stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            let _ = write_flush(stream, &Status::ProxyAuthRequired.response()).await;
            return Err(HandshakeError::AuthRejected {
                user: creds.username_lossy().into_owned(),
            });
        }
    }
    Ok((request.dest, request.leftover))
}

async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<Request, HandshakeError> {
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0;
    loop {
        match parser.feed(buf.get(..filled).unwrap_or_default()) {
            Ok(Parse::Request(r)) => return Ok(r),
            Ok(Parse::NeedMore) => {
                filled = stream.read(&mut buf).await?;
                if filled == 0 {
                    return Err(HandshakeError::ClosedEarly);
                }
            }
            Err(e) => {
                let _ = write_flush(stream, &e.status().response()).await;
                return Err(e.into());
            }
        }
    }
}
