//! The HTTP CONNECT handshake with a proxy (RFC 9110 §9.3.6): [`request`] writes the request
//! head and [`parse_reply`] reads the answer head, bounded and without consuming anything it
//! does not need; [`tunnel`] is the thin tokio shell that opens the socket and runs the two.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ProxyError, ProxyUrl};

/// Largest reply head accepted from a proxy (status line and headers).
pub const MAX_REPLY_HEAD: usize = 8 * 1024;
/// Most headers accepted in a reply head.
const MAX_HEADERS: usize = 32;
/// How long connecting to the proxy and its answer to CONNECT may take: a proxy that accepts
/// and stays silent must not hold a dial forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The CONNECT request head for `host:port`, with the proxy URL's Basic credentials if any.
pub fn request(proxy: &ProxyUrl, host: &str, port: u16) -> Vec<u8> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.basic_authorization() {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth.expose());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// What the proxy answered so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The head is not complete yet: read more.
    Partial,
    /// 2xx: the tunnel is open; the head was this many bytes.
    Open { head_len: usize },
}

/// Parses the proxy's reply head in `buf`. Refusals (407, 403, 502, …) become the error that
/// says what to do; a head over [`MAX_REPLY_HEAD`] or that is not HTTP is an error too.
pub fn parse_reply(proxy: &ProxyUrl, target: &str, buf: &[u8]) -> Result<Reply, ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let bad = |what: String| ProxyError::BadReply {
        proxy: proxy.to_string(),
        what,
    };
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REPLY_HEAD => Err(bad(format!(
            "an answer head longer than {MAX_REPLY_HEAD} bytes"
        ))),
        Ok(httparse::Status::Partial) => Ok(Reply::Partial),
        Err(e) => Err(bad(format!("an answer that is not HTTP ({e})"))),
        Ok(httparse::Status::Complete(head_len)) => match resp.code.unwrap_or(0) {
            200..=299 => Ok(Reply::Open { head_len }),
            // Some proxies (tinyproxy) answer wrong credentials with 401 rather than 407.
            401 | 407 if proxy.has_credentials() => Err(ProxyError::AuthRefused {
                proxy: proxy.to_string(),
            }),
            401 | 407 => Err(ProxyError::AuthRequired {
                proxy: proxy.to_string(),
            }),
            status => Err(ProxyError::Refused {
                proxy: proxy.to_string(),
                target: target.to_owned(),
                status,
                reason: crate::printable::Printable(resp.reason.unwrap_or_default())
                    .to_string()
                    .chars()
                    .take(80)
                    .collect(),
            }),
        },
    }
}

/// A TCP connection to `host:port` tunnelled through `proxy` (Nagle off, as for direct dials).
pub async fn tunnel(proxy: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    let timeout = ProxyError::Timeout {
        proxy: proxy.to_string(),
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(proxy, host, port))
        .await
        .unwrap_or(Err(timeout))
}

async fn handshake(proxy: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    let unreachable = |source| ProxyError::Unreachable {
        proxy: proxy.to_string(),
        source,
    };
    let mut s = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(unreachable)?;
    let _ = s.set_nodelay(true);
    s.write_all(&request(proxy, host, port))
        .await
        .map_err(unreachable)?;
    let target = format!("{host}:{port}");
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk).await.map_err(unreachable)?;
        let got = chunk.get(..n).unwrap_or_default();
        if got.is_empty() {
            return Err(ProxyError::Closed {
                proxy: proxy.to_string(),
            });
        }
        buf.extend_from_slice(got);
        if let Reply::Open { head_len } = parse_reply(proxy, &target, &buf)? {
            // Nothing may follow the head: the first bytes of the tunnel are ours to send.
            if head_len != buf.len() {
                return Err(ProxyError::BadReply {
                    proxy: proxy.to_string(),
                    what: "data before the tunnel was used".into(),
                });
            }
            return Ok(s);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn url(s: &str) -> ProxyUrl {
        ProxyUrl::parse("proxy", s).unwrap()
    }

    #[test]
    fn connect_request_names_the_target_and_sends_basic_credentials() {
        let r = request(
            &url("http://al%40ice:pw@p:3128"),
            "ssmmessages.x.amazonaws.com",
            443,
        );
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "CONNECT ssmmessages.x.amazonaws.com:443 HTTP/1.1\r\nHost: ssmmessages.x.amazonaws.com:443\r\n\
             Proxy-Authorization: Basic YWxAaWNlOnB3\r\n\r\n"
        );
        let plain = String::from_utf8(request(&url("p:3128"), "::1", 80)).unwrap();
        assert!(
            plain.starts_with("CONNECT [::1]:80 HTTP/1.1\r\n"),
            "{plain}"
        );
        assert!(!plain.contains("Proxy-Authorization"));
    }

    #[test]
    fn reply_is_partial_until_the_head_ends_then_open_on_2xx() {
        let p = url("p:3128");
        let full = b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_reply(&p, "t:1", &full[..cut]).unwrap(),
                Reply::Partial
            );
        }
        assert_eq!(
            parse_reply(&p, "t:1", full).unwrap(),
            Reply::Open {
                head_len: full.len()
            }
        );
    }

    #[test]
    fn a_407_says_whether_credentials_are_missing_or_wrong_without_showing_them() {
        let head = b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n";
        let e = parse_reply(&url("p:3128"), "t:1", head).unwrap_err();
        assert!(matches!(e, ProxyError::AuthRequired { .. }), "{e}");
        assert!(e.to_string().contains("http://p:3128"), "{e}");
        let e = parse_reply(&url("http://u:hunter2@p:3128"), "t:1", head).unwrap_err();
        assert!(matches!(e, ProxyError::AuthRefused { .. }), "{e}");
        assert!(e.to_string().contains("http://***@p:3128"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse_reply(
            &url("http://u:pw@p:3128"),
            "t:1",
            b"HTTP/1.0 401 Unauthorized\r\n\r\n",
        );
        assert!(matches!(e, Err(ProxyError::AuthRefused { .. })), "{e:?}");
    }

    #[test]
    fn refusals_oversized_heads_and_non_http_answers_are_errors() {
        let p = url("p:3128");
        let e = parse_reply(&p, "h:443", b"HTTP/1.1 403 Filtered\r\n\r\n").unwrap_err();
        assert!(e.to_string().contains("HTTP 403 Filtered"), "{e}");
        assert!(e.to_string().contains("h:443"), "{e}");
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(MAX_REPLY_HEAD, b'a');
        assert!(parse_reply(&p, "t:1", &long).is_err());
        assert!(parse_reply(&p, "t:1", b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
