//! `serve` with `http:` listeners end to end: real `curl -p -x http://…` (and curl reading
//! `http_proxy`/`https_proxy`) → HTTP CONNECT → the same routing as SOCKS5 → an SSH upstream
//! pool over simulated SSM sessions → a real `sshd` bastion, or a direct dial, or a reject
//! route. Auth is `Proxy-Authorization: Basic` from the listener's `users:`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::SimOptions;
use sha2::{Digest, Sha256};

const ONE: &str = "i-0000000000000a001";
const BLOB_MB: usize = 8;

struct Fixture {
    _one: Sshd,
    _sim: SimHandle,
    _serve: Serve,
    /// The `http:` listeners, in config order: open, with users, capped at one connection.
    open: SocketAddr,
    auth: SocketAddr,
    capped: SocketAddr,
    web_one: SocketAddr,
    web_direct: SocketAddr,
    web_rejected: SocketAddr,
    blob: Vec<u8>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn blob(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

fn listeners_yaml() -> &'static str {
    "listeners:
  - socks5: 127.0.0.1:0
  - http: 127.0.0.1:0
  - http: 127.0.0.1:0
    users:
      - username: alice
        password: wonderland
  - http: 127.0.0.1:0
    max_connections: 1
"
}

fn fixture() -> Fixture {
    let blob = blob(BLOB_MB * 1024 * 1024);
    let files = vec![
        ("/hello".to_owned(), b"hello".to_vec()),
        ("/blob".to_owned(), blob.clone()),
    ];
    let web_one = http_server("127.10.0.1:0", files.clone());
    let web_direct = http_server("127.40.0.1:0", files);
    let web_rejected = http_server("127.30.0.1:0", vec![("/hello".into(), b"bypass".to_vec())]);
    let one = Sshd::start_with(&format!("PermitOpen {web_one}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ONE, one.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_text(listeners_yaml(), &one, dir.path())).unwrap();
    let serve = Serve::start(&sim, &config);
    let http = http_addrs(&std::fs::read_to_string(config.with_file_name("serve.ready")).unwrap());
    assert_eq!(
        http.len(),
        3,
        "the ready file lists the http listeners: {http:?}"
    );
    Fixture {
        _one: one,
        _sim: sim,
        _serve: serve,
        open: http[0],
        auth: http[1],
        capped: http[2],
        web_one,
        web_direct,
        web_rejected,
        blob,
        config,
        _dir: dir,
    }
}

/// Routes: 127.10/16 through the SSH upstream, 127.30/16 rejected, everything else direct (so
/// a reject rule that some spelling slipped past would be dialled and answer "bypass").
fn config_text(listeners: &str, one: &Sshd, dir: &Path) -> String {
    format!(
        "{listeners}upstreams:
  one:
    targets: [{ONE}]
    user: {user}
    identity_files: [{key}]
    pool_size: 1
routes:
  - match: 127.10.0.0/16
    via: one
  - match: 127.30.0.0/16
    via: reject
default: direct
state_dir: {state}
",
        user = user(),
        key = one.client_key.display(),
        state = dir.join("state").display(),
    )
}

/// The `http://IP:PORT` entries of a ready file or of `status` listeners.
fn http_addrs(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("http://"))
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// What one curl run through an HTTP proxy gave.
struct Curl {
    rc: i32,
    /// `%{http_connect}`: the proxy's answer to CONNECT (`000` when none was sent).
    connect: String,
    body: Vec<u8>,
    stderr: String,
}

/// `curl -p -x http://proxy url` (a CONNECT tunnel even for http:// URLs).
fn curl_tunnel(proxy: SocketAddr, url: &str, extra: &[&str]) -> Curl {
    let mut c = Command::new("curl");
    c.args(["-p", "-x"]).arg(format!("http://{proxy}"));
    curl_run(c, url, extra)
}

fn curl_run(mut c: Command, url: &str, extra: &[&str]) -> Curl {
    let body = tempfile::NamedTempFile::new().unwrap();
    let out = c
        .args([
            "-s",
            "-S",
            "--max-time",
            "120",
            "-w",
            "%{http_connect}",
            "-o",
        ])
        .arg(body.path())
        .args(extra)
        .arg(url)
        .env_remove("all_proxy")
        .env_remove("no_proxy")
        .output()
        .expect("curl");
    Curl {
        rc: out.status.code().unwrap_or(-1),
        connect: String::from_utf8_lossy(&out.stdout).into_owned(),
        body: std::fs::read(body.path()).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends `head` on a fresh connection to `proxy` and reads what comes back until `want` has
/// been seen or the peer closes (bounded by a hang guard).
fn raw_exchange(proxy: SocketAddr, head: &[u8], want: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (s, String::from_utf8_lossy(&got).into_owned())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn curl_tunnels_through_an_ssh_upstream_and_directly_via_http_connect() {
    let f = fixture();
    let r = curl_tunnel(f.open, &format!("http://{}/hello", f.web_one), &[]);
    assert_eq!(
        (r.rc, r.connect.as_str(), r.body.as_slice()),
        (0, "200", &b"hello"[..]),
        "via upstream one: {}",
        r.stderr
    );
    let r = curl_tunnel(f.open, &format!("http://{}/hello", f.web_direct), &[]);
    assert_eq!(
        (r.rc, r.connect.as_str(), r.body.as_slice()),
        (0, "200", &b"hello"[..]),
        "direct: {}",
        r.stderr
    );

    // curl takes the proxy from http_proxy (and tunnels with -p).
    let mut c = Command::new("curl");
    c.arg("-p").env("http_proxy", format!("http://{}", f.open));
    let r = curl_run(c, &format!("http://{}/hello", f.web_one), &[]);
    assert_eq!(
        (r.rc, r.connect.as_str(), r.body.as_slice()),
        (0, "200", &b"hello"[..]),
        "http_proxy=: {}",
        r.stderr
    );

    // https_proxy= with an https:// URL: the TLS ClientHello reaches the destination through
    // the tunnel (the destination here is no TLS server, so curl then fails the handshake).
    let tls_peer = TcpListener::bind("127.40.0.2:0").unwrap();
    let tls_addr = tls_peer.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut s, _) = tls_peer.accept().unwrap();
        let mut first = [0u8; 3];
        s.read_exact(&mut first).unwrap();
        first
    });
    let mut c = Command::new("curl");
    c.env("https_proxy", format!("http://{}", f.open));
    let r = curl_run(c, &format!("https://{tls_addr}/"), &["--max-time", "10"]);
    assert_eq!(
        r.connect, "200",
        "https_proxy= CONNECT answer: {}",
        r.stderr
    );
    let first = seen.join().unwrap();
    assert_eq!(
        first[..2],
        [0x16, 0x03],
        "a TLS handshake record came through the tunnel"
    );
}

#[test]
fn a_reject_route_answers_403_for_every_spelling_of_the_address() {
    let f = fixture();
    let port = f.web_rejected.port();
    // 127.30.0.1 as inet_aton reads it: dotted, short forms, hex, decimal, octal.
    for host in [
        "127.30.0.1",
        "127.30.1",
        "0x7f1e0001",
        "2132672513",
        "0177.036.0.1",
        "0x7f.0x1e.0.1",
    ] {
        let r = curl_tunnel(f.open, &format!("http://{host}:{port}/hello"), &[]);
        assert_eq!(r.connect, "403", "{host}: {}", r.stderr);
        assert_ne!(r.rc, 0, "{host}");
        assert!(r.body.is_empty(), "{host} reached the rejected server");
    }
    // The refusal is an HTTP answer with a body naming the cause.
    let (_, answer) = raw_exchange(
        f.open,
        format!("CONNECT 127.30.1:{port} HTTP/1.1\r\n\r\n").as_bytes(),
        "\r\n\r\nsession-proxy",
    );
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("reject route"), "{answer}");
}

#[test]
fn proxy_authorization_basic_is_required_checked_and_accepted() {
    let f = fixture();
    let url = format!("http://{}/hello", f.web_one);
    let r = curl_tunnel(f.auth, &url, &["--proxy-user", "alice:wonderland"]);
    assert_eq!(
        (r.rc, r.connect.as_str(), r.body.as_slice()),
        (0, "200", &b"hello"[..]),
        "alice: {}",
        r.stderr
    );
    let r = curl_tunnel(f.auth, &url, &["--proxy-user", "alice:wrong"]);
    assert_eq!(r.connect, "407", "wrong password: {}", r.stderr);
    assert!(r.body.is_empty());
    let r = curl_tunnel(f.auth, &url, &[]);
    assert_eq!(r.connect, "407", "no credentials: {}", r.stderr);
    let (_, answer) = raw_exchange(
        f.auth,
        b"CONNECT 127.10.0.1:1 HTTP/1.1\r\n\r\n",
        "\r\n\r\nsession-proxy",
    );
    assert!(answer.starts_with("HTTP/1.1 407 "), "{answer}");
    assert!(
        answer.contains("\r\nProxy-Authenticate: Basic realm=\"session-proxy\"\r\n"),
        "{answer}"
    );
    // The open listener ignores credentials it did not ask for.
    let r = curl_tunnel(f.open, &url, &["--proxy-user", "who:ever"]);
    assert_eq!(
        (r.connect.as_str(), r.body.as_slice()),
        ("200", &b"hello"[..]),
        "{}",
        r.stderr
    );
}

#[test]
fn an_eight_mb_download_through_the_tunnel_is_byte_exact() {
    let f = fixture();
    let want = sha256(&f.blob);
    for web in [f.web_one, f.web_direct] {
        let r = curl_tunnel(f.open, &format!("http://{web}/blob"), &[]);
        assert_eq!(
            (r.rc, r.connect.as_str()),
            (0, "200"),
            "{web}: {}",
            r.stderr
        );
        assert_eq!(r.body.len(), f.blob.len(), "{web}");
        assert_eq!(sha256(&r.body), want, "{web}");
    }
}

#[test]
fn bytes_sent_right_after_the_connect_head_reach_the_destination() {
    let f = fixture();
    for web in [f.web_one, f.web_direct] {
        let head =
            format!("CONNECT {web} HTTP/1.1\r\nHost: {web}\r\n\r\nGET /hello HTTP/1.0\r\n\r\n");
        let (_, answer) = raw_exchange(f.open, head.as_bytes(), "\r\n\r\nhello");
        assert!(
            answer.starts_with("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200 OK"),
            "{web}: {answer}"
        );
        assert!(answer.ends_with("\r\n\r\nhello"), "{web}: {answer}");
    }
}

#[test]
fn plain_http_proxying_is_501_and_a_client_over_the_cap_gets_503() {
    let f = fixture();
    // Without -p curl sends an absolute-form GET, which is not served.
    let mut c = Command::new("curl");
    c.arg("-x")
        .arg(format!("http://{}", f.open))
        .args(["-D", "-"]);
    let out = c
        .args(["-s", "--max-time", "60"])
        .arg(format!("http://{}/hello", f.web_direct))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 501 "), "{text}");
    assert!(text.contains("only CONNECT tunnels"), "{text}");

    let head = format!("CONNECT {} HTTP/1.1\r\n\r\n", f.web_direct);
    let (held, answer) = raw_exchange(f.capped, head.as_bytes(), "\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let (_, answer) = raw_exchange(f.capped, head.as_bytes(), "\r\n\r\nsession-proxy");
    assert!(
        answer.starts_with("HTTP/1.1 503 "),
        "second client over max_connections: 1: {answer}"
    );
    assert!(answer.contains("max_connections"), "{answer}");
    drop(held);
}

fn ctl(config: &Path, cmd: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(cmd)
        .arg("--control-socket")
        .arg(config.with_file_name("control.sock"))
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn status_listeners(config: &Path) -> Vec<String> {
    let (ok, out, err) = ctl(config, &["status", "--json"]);
    assert!(ok, "status: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn reload_adds_and_removes_http_listeners_and_status_counts_their_clients() {
    let f = fixture();
    let before = status_listeners(&f.config);
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(before[1], format!("http://{}", f.open));
    let r = curl_tunnel(f.open, &format!("http://{}/hello", f.web_direct), &[]);
    assert_eq!(r.connect, "200", "{}", r.stderr);
    let (ok, out, err) = ctl(&f.config, &["status", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["socks"]["accepted"].as_u64().unwrap() >= 1, "{out}");

    // Keep the open listener, drop the other two, add one on 127.0.0.5.
    let text = std::fs::read_to_string(&f.config).unwrap();
    let listeners =
        "listeners:\n  - socks5: 127.0.0.1:0\n  - http: 127.0.0.1:0\n  - http: 127.0.0.5:0\n";
    std::fs::write(&f.config, text.replace(listeners_yaml(), listeners)).unwrap();
    let (ok, out, err) = ctl(&f.config, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("listener http 127.0.0.5:0 added"), "{out}");
    assert!(out.contains("listener http 127.0.0.1:0 removed"), "{out}");
    let now = status_listeners(&f.config);
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(
        now[1],
        format!("http://{}", f.open),
        "the kept listener kept its socket"
    );
    let added = http_addrs(&now[2]);
    assert_eq!(added.len(), 1, "{now:?}");
    assert_eq!(added[0].ip().to_string(), "127.0.0.5");
    let r = curl_tunnel(added[0], &format!("http://{}/hello", f.web_one), &[]);
    assert_eq!(
        (r.connect.as_str(), r.body.as_slice()),
        ("200", &b"hello"[..]),
        "{}",
        r.stderr
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(f.auth).is_ok() || TcpStream::connect(f.capped).is_ok() {
        assert!(Instant::now() < deadline, "removed listeners still accept");
        std::thread::sleep(Duration::from_millis(50));
    }
}
