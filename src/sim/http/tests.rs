//! Tests of [`super`]: behaviour pinned per rule.
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
    let shell = ssm.start_session().target(WEB).send().await.unwrap();
    assert!(shell.session_id().is_some(), "no DocumentName is the shell");
    let missing = start(WEB).document_name("AWS-RunShellScript").send();
    let missing = missing.await.unwrap_err();
    assert!(
        missing.as_service_error().unwrap().is_invalid_document(),
        "{missing:?}"
    );
    server.abort();
}
