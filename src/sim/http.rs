//! A minimal HTTP/1.1 server for the simulator's SSM API ([`api`](crate::sim::api)) on one
//! already-accepted connection: keep-alive, `Content-Length` bodies, `Expect: 100-continue`,
//! bounded heads (16 KiB) and bodies (1 MiB), idle and read timeouts. That is all the AWS SDKs
//! and the AWS CLI need; anything else gets a JSON error and, when the framing can no longer be
//! trusted, a closed connection.
//!
//! The caller accepts TCP connections and routes WebSocket upgrades elsewhere
//! ([`Sim`](crate::sim::Sim)); this file never sees them. Request heads are parsed with
//! `httparse` from a buffer, so partial reads and pipelined requests are handled by one loop.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use crate::sim::api::{self, ApiResponse, CONTENT_TYPE};
use crate::sim::registry::Registry;

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
}

/// Serves API requests on `stream` until the peer closes, asks to close, idles out or breaks
/// the protocol. IO errors end the connection quietly: the peer is gone.
pub async fn serve_api_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    registry: Registry,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => {
                // The framing can no longer be trusted: answer and close.
                let _ = respond(&mut stream, &refusal, Some("close")).await;
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
        let response = if head.method == "POST" && (head.path == "/" || head.path.starts_with("/?"))
        {
            let body = buf.get(head.len..end).unwrap_or_default();
            let (target, ct) = (head.target.as_deref(), head.content_type.as_deref());
            api::handle(&registry, target, ct, head.authorization.as_deref(), body)
        } else {
            let (method, path) = (&head.method, &head.path);
            let msg =
                format!("the simulator serves the SSM API at POST / only, not {method} {path}");
            refuse(404, &msg)
        };
        buf.drain(..end.min(buf.len()));
        if respond(&mut stream, &response, connection).await.is_err() || close {
            return;
        }
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
    connection: Option<&str>,
) -> std::io::Result<()> {
    let (status, reason, len) = (r.status, reason(r.status), r.body.len());
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {len}\r\n\
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
mod tests {
    use aws_sdk_ssm::error::ProvideErrorMetadata;
    use tokio::io::DuplexStream;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::sim::instances::Instance;

    const WEB: &str = "i-0123456789abcdef0";
    const OFFLINE: &str = "i-0000000000000000f";
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/ssm/aws4_request, \
                        SignedHeaders=host, Signature=00";

    /// WEB (Name web), OFFLINE, and six unnamed managed instances.
    fn registry(ws_base: String) -> Registry {
        let addr = "127.0.0.1:2222".parse().unwrap();
        let web = Instance {
            name: Some("web".into()),
            ip_address: Some("10.0.0.5".into()),
            ..Instance::new(WEB, addr)
        };
        let off = Instance {
            online: false,
            ..Instance::new(OFFLINE, addr)
        };
        let mut list = vec![web, off];
        list.extend((1..=6).map(|k| Instance::new(format!("mi-{k:017x}"), addr)));
        Registry::new(list, ws_base)
    }

    fn request(op: &str, body: &str, extra: &str) -> String {
        let len = body.len();
        format!(
            "POST / HTTP/1.1\r\nHost: sim\r\nX-Amz-Target: AmazonSSM.{op}\r\n\
             Content-Type: {CONTENT_TYPE}\r\nAuthorization: {AUTH}\r\n{extra}\
             Content-Length: {len}\r\n\r\n{body}"
        )
    }

    fn terminate(id: &str, extra: &str) -> String {
        request(
            "TerminateSession",
            &format!(r#"{{"SessionId":"{id}"}}"#),
            extra,
        )
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            let mut found = self
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name));
            found.next().map(|(_, v)| v.as_str())
        }
    }

    /// The client end of a connection served by `serve_api_connection`.
    struct Client {
        io: DuplexStream,
        buf: Vec<u8>,
        task: JoinHandle<()>,
    }

    impl Client {
        fn new() -> Self {
            let (io, server) = tokio::io::duplex(64 * 1024);
            let registry = registry("ws://127.0.0.1:9".into());
            let task = tokio::spawn(serve_api_connection(server, registry));
            Self {
                io,
                buf: vec![],
                task,
            }
        }

        async fn send(&mut self, bytes: &str) {
            self.io.write_all(bytes.as_bytes()).await.unwrap();
        }

        /// Reads one response (1xx included), keeping any bytes after it.
        async fn reply(&mut self) -> Reply {
            loop {
                let mut headers = [httparse::EMPTY_HEADER; 16];
                let mut resp = httparse::Response::new(&mut headers);
                if let httparse::Status::Complete(n) = resp.parse(&self.buf).unwrap() {
                    let text = |v: &[u8]| String::from_utf8(v.to_vec()).unwrap();
                    let headers: Vec<_> = resp
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), text(h.value)))
                        .collect();
                    let status = resp.code.unwrap();
                    let reply = Reply {
                        status,
                        headers,
                        body: serde_json::Value::Null,
                    };
                    let len: usize = reply
                        .header("Content-Length")
                        .map_or(0, |v| v.parse().unwrap());
                    while self.buf.len() < n + len {
                        assert!(
                            self.io.read_buf(&mut self.buf).await.unwrap() > 0,
                            "closed mid-body"
                        );
                    }
                    let body = self.buf.drain(..n + len).skip(n).collect::<Vec<u8>>();
                    let body = if len == 0 {
                        reply.body
                    } else {
                        serde_json::from_slice(&body).unwrap()
                    };
                    return Reply { body, ..reply };
                }
                assert!(
                    self.io.read_buf(&mut self.buf).await.unwrap() > 0,
                    "closed before a response"
                );
            }
        }

        async fn call(&mut self, request: &str) -> Reply {
            self.send(request).await;
            self.reply().await
        }

        /// Asserts the server closed the connection after the last response and ended.
        async fn assert_closed(mut self) {
            let mut rest = vec![];
            self.io.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "unexpected bytes after the last response");
            self.task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn keep_alive_serves_pipelined_and_byte_by_byte_requests() {
        let mut c = Client::new();
        c.send(&format!("{}{}", terminate("a", ""), terminate("b", "")))
            .await;
        for id in ["a", "b"] {
            let r = c.reply().await;
            assert_eq!((r.status, r.body["SessionId"].as_str()), (200, Some(id)));
            assert_eq!(r.header("Content-Type"), Some(CONTENT_TYPE));
            assert_eq!(r.header("x-amzn-RequestId").map(str::len), Some(36));
            assert_eq!(r.header("Connection"), None);
        }
        for b in request("DescribeInstanceInformation", "{}", "").bytes() {
            c.io.write_all(&[b]).await.unwrap();
        }
        let r = c.reply().await;
        assert_eq!(
            r.body["InstanceInformationList"].as_array().unwrap().len(),
            8
        );
        let r = c.call(&terminate("c", "Connection: close\r\n")).await;
        assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
        c.assert_closed().await;
    }

    #[tokio::test]
    async fn expect_100_continue_gets_an_interim_response_before_the_body() {
        let mut c = Client::new();
        let req = terminate("x", "Expect: 100-continue\r\n");
        let (head, body) = req.split_at(req.find("\r\n\r\n").unwrap() + 4);
        assert_eq!(c.call(head).await.status, 100);
        assert_eq!(c.call(body).await.status, 200);
    }

    #[tokio::test]
    async fn errors_carry_the_aws_error_type_header_and_body() {
        let mut c = Client::new();
        let r = c
            .call(&request("ResumeSession", r#"{"SessionId":"gone"}"#, ""))
            .await;
        let kind = "DoesNotExistException";
        assert_eq!((r.status, r.header("x-amzn-ErrorType")), (400, Some(kind)));
        assert_eq!(r.body["__type"], kind);
        let unsigned =
            request("ResumeSession", "{}", "").replace(&format!("Authorization: {AUTH}\r\n"), "");
        let r = c.call(&unsigned).await;
        let kind = "MissingAuthenticationTokenException";
        assert_eq!((r.status, r.header("x-amzn-ErrorType")), (403, Some(kind)));
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_404_json_and_keep_the_connection() {
        let mut c = Client::new();
        for req in [
            "GET / HTTP/1.1\r\n\r\n",
            "POST /v1/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        ] {
            let r = c.call(req).await;
            assert_eq!(r.status, 404);
            assert!(r.body["message"].as_str().unwrap().contains("POST /"));
        }
        assert_eq!(c.call(&terminate("a", "")).await.status, 200);
    }

    #[tokio::test]
    async fn untrustworthy_framing_is_refused_and_the_connection_closed() {
        let post = |headers: &str| format!("POST / HTTP/1.1\r\n{headers}\r\n");
        let cases = [
            (post("Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 411),
            (post("Transfer-Encoding: gzip\r\n"), 400),
            (post(&format!("Content-Length: {}\r\n", MAX_BODY + 1)), 413),
            (
                post("Content-Length: 2\r\nContent-Length: 3\r\n") + "{}",
                400,
            ),
            (post("Content-Length: -1\r\n"), 400),
            (post("Expect: magic\r\nContent-Length: 0\r\n"), 417),
            ("NOT HTTP\r\n\r\n".to_owned(), 400),
            (post(&format!("X-Pad: {}\r\n", "a".repeat(MAX_HEAD))), 431),
        ];
        for (req, status) in cases {
            let mut c = Client::new();
            let r = c.call(&req).await;
            assert_eq!(r.status, status, "{}", &req[..req.len().min(60)]);
            assert_eq!(r.header("Connection"), Some("close"));
            assert!(r.header("x-amzn-ErrorType").is_some());
            c.assert_closed().await;
        }
    }

    #[tokio::test]
    async fn http_1_0_closes_unless_asked_to_keep_alive() {
        let mut c = Client::new();
        let http10 = |extra| terminate("a", extra).replacen("HTTP/1.1", "HTTP/1.0", 1);
        let kept = c.call(&http10("Connection: keep-alive\r\n")).await;
        assert_eq!(kept.header("Connection"), Some("keep-alive"));
        assert_eq!(
            c.call(&http10("")).await.header("Connection"),
            Some("close")
        );
        c.assert_closed().await;
    }

    #[tokio::test]
    async fn peer_closing_between_requests_ends_the_task() {
        let Client { io, task, .. } = Client::new();
        drop(io);
        task.await.unwrap();
    }

    /// The real AWS SDK for Rust against the server on loopback: proves the response and error
    /// shapes (including `__type` → typed errors) are what the SDK expects.
    #[tokio::test]
    async fn aws_sdk_for_rust_accepts_the_simulators_answers() {
        use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
        use aws_sdk_ssm::types::InstanceInformationStringFilter as Filter;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reg = registry(format!("ws://{addr}"));
        let served = reg.clone();
        let server = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_api_connection(s, served.clone()));
            }
        });
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDSIM", "secret", None, None, "sim"))
            .endpoint_url(format!("http://{addr}"))
            .load()
            .await;
        let ssm = aws_sdk_ssm::Client::new(&conf);

        let filter = |k: &str, v: &str| Filter::builder().key(k).values(v).build().unwrap();
        let describe = |f| ssm.describe_instance_information().filters(f).send();
        let out = describe(filter("tag:Name", "web")).await.unwrap();
        let [web] = out.instance_information_list() else {
            panic!("{out:?}")
        };
        assert_eq!(web.instance_id(), Some(WEB));
        assert_eq!(web.ping_status().map(|p| p.as_str()), Some("Online"));
        assert_eq!(web.ip_address(), Some("10.0.0.5"));
        assert!(web.last_ping_date_time().is_some());
        let paged = ssm
            .describe_instance_information()
            .max_results(5)
            .into_paginator();
        let all: Vec<_> = paged.items().send().collect::<Vec<_>>().await;
        assert_eq!(all.into_iter().map(Result::unwrap).count(), 8);
        let e = describe(filter("Colour", "x")).await.unwrap_err();
        assert!(
            e.as_service_error().unwrap().is_invalid_filter_key(),
            "{e:?}"
        );

        let start = |target: &str| {
            ssm.start_session()
                .target(target)
                .document_name("AWS-StartSSHSession")
        };
        let ssh = vec!["22".to_owned()];
        let started = start(WEB)
            .parameters("portNumber", ssh)
            .send()
            .await
            .unwrap();
        let id = started.session_id().unwrap().to_owned();
        let url = format!("ws://{addr}/v1/data-channel/{id}?role=publish_subscribe");
        assert_eq!(started.stream_url(), Some(url.as_str()));
        let resume = || ssm.resume_session().session_id(&id).send();
        let resumed = resume().await.unwrap();
        assert!(
            reg.attach(&id, started.token_value().unwrap()).is_err(),
            "old token is void"
        );
        assert!(
            reg.attach(&id, resumed.token_value().unwrap())
                .unwrap()
                .first_attach
        );
        let ended = ssm
            .terminate_session()
            .session_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(ended.session_id(), Some(id.as_str()));
        let gone = resume().await.unwrap_err();
        assert!(
            gone.as_service_error()
                .unwrap()
                .is_does_not_exist_exception(),
            "{gone:?}"
        );

        let offline = start(OFFLINE).send().await.unwrap_err();
        let err = offline.as_service_error().unwrap();
        assert!(err.is_target_not_connected(), "{offline:?}");
        assert_eq!(err.message(), Some("i-0000000000000000f is not connected."));
        let shell = ssm.start_session().target(WEB).send().await.unwrap_err();
        assert!(
            shell.as_service_error().unwrap().is_invalid_document(),
            "{shell:?}"
        );
        server.abort();
    }
}
