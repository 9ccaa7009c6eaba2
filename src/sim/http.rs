//! A minimal HTTP/1.1 server for the simulator's SSM API ([`api`](crate::sim::api)) on one
//! already-accepted connection: keep-alive, `Content-Length` bodies, `Expect: 100-continue`,
//! bounded heads (16 KiB) and bodies (1 MiB), idle and read timeouts. That is all the AWS SDKs
//! and the AWS CLI need; anything else gets a JSON error and, when the framing can no longer be
//! trusted, a closed connection.
//!
//! The caller accepts TCP connections and routes WebSocket upgrades elsewhere
//! ([`Sim`](crate::sim::Sim)); this file never sees them. Request heads are parsed with
//! `httparse` from a buffer, so partial reads and pipelined requests are handled by one loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use crate::sim::api::{self, ApiResponse, CONTENT_TYPE};
use crate::sim::credentials::{self, Minter, SignedRequest};
use crate::sim::instance_connect;
use crate::sim::registry::Registry;
use crate::sim::sts;

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body; SSM requests are a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// How long a kept-alive connection may sit idle before the next request starts.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the head, and then the body, of a started request may take to arrive.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The parts of a request head the server acts on, copied out of the read buffer.
#[derive(Debug, Default)]
struct Head {
    len: usize,
    method: String,
    path: String,
    http10: bool,
    body_len: usize,
    expect_continue: bool,
    connection: Option<String>,
    target: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    /// Every header (at most `MAX_HEADERS`), for [`Minter::check_api`]'s signature check.
    headers: Vec<(String, String)>,
}

/// Serves API requests on `stream` until the peer closes, asks to close, idles out or breaks
/// the protocol. IO errors end the connection quietly: the peer is gone.
pub async fn serve_api_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    registry: Registry,
) {
    serve_checked_api_connection(stream, registry, None).await;
}

/// [`serve_api_connection`], with `sim --credential-lifetime`'s `minter`: it answers
/// `GET /_sim/credentials` and checks every call's signature against the keys it minted.
pub async fn serve_checked_api_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    registry: Registry,
    minter: Option<Arc<Minter>>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => {
                // The framing can no longer be trusted: answer and close.
                let _ = respond(&mut stream, &refusal, CONTENT_TYPE, Some("close")).await;
                return;
            }
        };
        let connection = connection_header(&head);
        let close = connection == Some("close");
        let end = head.len.saturating_add(head.body_len);
        if buf.len() < end && head.expect_continue {
            let interim = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
            if interim.is_err() || stream.flush().await.is_err() {
                return;
            }
        }
        if !matches!(
            timeout(READ_TIMEOUT, fill(&mut stream, &mut buf, end)).await,
            Ok(Ok(true))
        ) {
            return;
        }
        let body = buf.get(head.len..end).unwrap_or_default();
        let minted = minter.as_deref().and_then(|m| minted(m, &head, body));
        let mut content_type = CONTENT_TYPE;
        let response = if let Some(r) = minted {
            r
        } else if head.method == "POST" && (head.path == "/" || head.path.starts_with("/?")) {
            let (target, ct) = (head.target.as_deref(), head.content_type.as_deref());
            if sts::is_query(ct) {
                content_type = sts::CONTENT_TYPE;
                sts::handle(head.authorization.as_deref(), body)
            } else {
                api::handle(&registry, target, ct, head.authorization.as_deref(), body)
            }
        } else if head.method == "GET" && head.path.starts_with(instance_connect::IMDS_PREFIX) {
            imds_answer(&registry, &head.path)
        } else {
            let (method, path) = (&head.method, &head.path);
            let msg =
                format!("the simulator serves the SSM API at POST / only, not {method} {path}");
            refuse(404, &msg)
        };
        buf.drain(..end.min(buf.len()));
        let sent = respond(&mut stream, &response, content_type, connection).await;
        if sent.is_err() || close {
            return;
        }
    }
}

/// What `minter` answers itself: the credentials it mints, or a call whose signature fails
/// its check; `None` lets the API answer.
fn minted(minter: &Minter, head: &Head, body: &[u8]) -> Option<ApiResponse> {
    let now = SystemTime::now();
    if head.method == "GET" && head.path == credentials::PATH {
        let body = minter.issue(now).to_string().into_bytes();
        return Some(ApiResponse {
            status: 200,
            error_type: None,
            body,
        });
    }
    let req = SignedRequest {
        method: &head.method,
        path: &head.path,
        headers: &head.headers,
        body,
    };
    (head.method == "POST")
        .then(|| minter.check_api(&req, now).err())
        .flatten()
        .map(|e| ApiResponse::error(&e))
}

/// An instance's metadata document (the keys pushed with EC2 Instance Connect), or 404.
fn imds_answer(registry: &Registry, path: &str) -> ApiResponse {
    let now = std::time::Instant::now();
    match instance_connect::imds(registry, path, now) {
        Some(text) => ApiResponse {
            status: 200,
            error_type: None,
            body: text.into_bytes(),
        },
        None => refuse(404, &format!("no metadata document at {path}")),
    }
}

/// Reads until a full head is buffered. `Ok(None)`: the peer closed, failed or idled out;
/// `Err`: a request to refuse before reading its body.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<Head>, ApiResponse> {
    let mut deadline = Instant::now() + IDLE_TIMEOUT;
    let mut started = false;
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf)? {
                return Ok(Some(head));
            }
            if buf.len() >= MAX_HEAD {
                return Err(refuse(431, "request head exceeds 16 KiB"));
            }
            if !started {
                // A request has begun: it gets READ_TIMEOUT in all, however it trickles in.
                started = true;
                deadline = Instant::now() + READ_TIMEOUT;
            }
        }
        match timeout_at(deadline, read_some(stream, buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Ok(None),
        }
    }
}

/// Appends up to 8 KiB from `stream`; returns how many bytes arrived (0 at end of stream).
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// Reads until `buf` holds `end` bytes; false if the peer closed first.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    end: usize,
) -> std::io::Result<bool> {
    while buf.len() < end {
        if read_some(stream, buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Parses and checks a head: `Ok(None)` until it is complete, `Err` for one to refuse.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
        Ok(httparse::Status::Complete(_)) => {
            return Err(refuse(431, "request head exceeds 16 KiB"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(431, &format!("more than {MAX_HEADERS} headers")))
        }
        Err(e) => return Err(refuse(400, &format!("malformed HTTP request: {e}"))),
    };
    let mut head = Head {
        len,
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        http10: req.version == Some(0),
        ..Head::default()
    };
    let mut content_length = None;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value).map(str::trim) else {
            return Err(refuse(400, &format!("header {} is not UTF-8", h.name)));
        };
        head.headers
            .push((h.name.to_ascii_lowercase(), value.to_owned()));
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse().ok());
                match (n.flatten(), content_length) {
                    (Some(n), None) => content_length = Some(n),
                    (Some(n), Some(prev)) if n == prev => {}
                    _ => return Err(refuse(400, "invalid or conflicting Content-Length")),
                }
            }
            "transfer-encoding" if value.to_ascii_lowercase().contains("chunked") => {
                return Err(refuse(
                    411,
                    "chunked request bodies are not supported; send Content-Length",
                ))
            }
            "transfer-encoding" => {
                return Err(refuse(
                    400,
                    "Transfer-Encoding is not supported; send Content-Length",
                ))
            }
            "expect" if value.eq_ignore_ascii_case("100-continue") => head.expect_continue = true,
            "expect" => return Err(refuse(417, "only Expect: 100-continue is supported")),
            "connection" => head.connection = Some(value.to_owned()),
            "x-amz-target" => head.target = Some(value.to_owned()),
            "content-type" => head.content_type = Some(value.to_owned()),
            "authorization" => head.authorization = Some(value.to_owned()),
            _ => {}
        }
    }
    head.body_len = content_length.unwrap_or(0);
    if head.body_len > MAX_BODY {
        return Err(refuse(413, "request body exceeds 1 MiB"));
    }
    Ok(Some(head))
}

/// The response's `Connection` header: HTTP/1.1 keeps the connection unless told `close`;
/// HTTP/1.0 closes unless told `keep-alive`, and then needs to hear it back.
fn connection_header(head: &Head) -> Option<&'static str> {
    let has = |token: &str| {
        let mut tokens = head.connection.iter().flat_map(|c| c.split(','));
        tokens.any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match (head.http10, has("close"), has("keep-alive")) {
        (_, true, _) | (true, _, false) => Some("close"),
        (true, false, true) => Some("keep-alive"),
        (false, false, _) => None,
    }
}

/// A simulator-level refusal (not an SSM operation error) in the API's JSON error shape, named
/// after AWS's common errors where one fits.
fn refuse(status: u16, message: &str) -> ApiResponse {
    let kind = match status {
        404 => "UnknownOperationException",
        413 => "RequestEntityTooLargeException",
        431 => "RequestHeaderFieldsTooLarge",
        _ => "MalformedHttpRequestException",
    };
    let body = serde_json::json!({ "__type": kind, "message": message });
    ApiResponse {
        status,
        error_type: Some(kind),
        body: body.to_string().into_bytes(),
    }
}

#[rustfmt::skip]
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",                       400 => "Bad Request",
        403 => "Forbidden",                404 => "Not Found",
        411 => "Length Required",          413 => "Content Too Large",
        417 => "Expectation Failed",       431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    r: &ApiResponse,
    content_type: &str,
    connection: Option<&str>,
) -> std::io::Result<()> {
    let (status, reason, len) = (r.status, reason(r.status), r.body.len());
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         x-amzn-RequestId: {}\r\n",
        uuid::Uuid::new_v4()
    );
    if let Some(kind) = r.error_type {
        out.push_str(&format!("x-amzn-ErrorType: {kind}\r\n"));
    }
    if let Some(c) = connection {
        out.push_str(&format!("Connection: {c}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&r.body);
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    if connection == Some("close") {
        stream.shutdown().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
