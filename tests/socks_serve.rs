//! `session-proxy serve` end to end: real `curl --socks5-hostname` → SOCKS5 → routing → pools of
//! SSH connections over simulated SSM sessions → real `sshd` bastions on loopback → local HTTP
//! servers on distinct 127.x addresses. Bastion `PermitOpen` rules prove which upstream carried
//! each request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use session_proxy::sim::SimOptions;

const ONE: &str = "i-0000000000000a001";
const TWO: &str = "i-0000000000000b002";
const OFF: &str = "i-0000000000000c003";

struct Fixture {
    _one: Sshd,
    _two: Sshd,
    sim: SimHandle,
    serve: Option<Serve>,
    auth_socks: SocketAddr,
    web_one: SocketAddr,
    web_two: SocketAddr,
    web_local: SocketAddr,
    web_direct: SocketAddr,
    blobs: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn blob(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

fn fixture(pool_size: usize, blobs: usize, blob_mb: usize) -> Fixture {
    let blobs: Vec<Vec<u8>> = (0..blobs)
        .map(|i| blob(blob_mb * 1024 * 1024, i as u32))
        .collect();
    let files: Vec<(String, Vec<u8>)> = std::iter::once(("/hello".to_owned(), b"hello".to_vec()))
        .chain(
            blobs
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("/blob{i}"), b.clone())),
        )
        .collect();
    let web_one = http_server("127.10.0.1:0", files.clone());
    let web_two = http_server("127.20.0.1:0", vec![("/hello".into(), b"two".to_vec())]);
    let web_local = http_server("127.0.0.1:0", vec![("/hello".into(), b"local".to_vec())]);
    let web_direct = http_server("127.40.0.1:0", vec![("/hello".into(), b"direct".to_vec())]);
    let one = Sshd::start_with(&format!(
        "PermitOpen {web_one} localhost:{}",
        web_local.port()
    ));
    let two = Sshd::start_with(&format!("PermitOpen {web_two}"));
    let mut off = instance(OFF, one.addr);
    off.online = false;
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ONE, one.addr), off, instance(TWO, two.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let user = user();
    let cfg = format!(
        r#"
listeners:
  - socks5: 127.0.0.1:0
  - socks5: 127.0.0.1:0
    users:
      - username: alice
        password: wonderland
upstreams:
  one:
    targets: [{ONE}]
    user: {user}
    identity_files: [{k1}]
    pool_size: {pool_size}
  two:
    targets: [{OFF}, {TWO}]
    user: {user}
    identity_files: [{k2}]
    pool_size: 1
routes:
  - match: 127.10.0.0/16
    via: one
  - match: 127.20.0.0/16
    via: two
  - match: localhost
    via: one
  - match: 127.30.0.0/16
    via: reject
  - match: 127.40.0.0/16
    via: direct
default: reject
state_dir: {state}
"#,
        k1 = one.client_key.display(),
        k2 = two.client_key.display(),
        state = dir.path().join("state").display(),
    );
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, cfg).unwrap();
    let serve = Serve::start(&sim, &path);
    let auth_socks = serve.listeners[1];
    Fixture {
        _one: one,
        _two: two,
        sim,
        serve: Some(serve),
        auth_socks,
        web_one,
        web_two,
        web_local,
        web_direct,
        blobs,
        _dir: dir,
    }
}

impl Fixture {
    fn socks(&self) -> SocketAddr {
        self.serve.as_ref().unwrap().socks
    }
}

#[test]
fn destinations_are_routed_by_cidr_and_glob_rejected_or_dialled_directly() {
    let f = fixture(2, 0, 0);
    let s = f.socks();
    let (rc, body, err) = curl(s, &format!("http://{}/hello", f.web_one), &[]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"hello"[..]),
        "via upstream one: {err}"
    );
    // Upstream "two" lists an offline instance first: the pool fails over to the online one.
    let (rc, body, err) = curl(s, &format!("http://{}/hello", f.web_two), &[]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"two"[..]),
        "via upstream two: {err}"
    );
    // The name is resolved on the bastion (glob route), not locally.
    let (rc, body, err) = curl(
        s,
        &format!("http://localhost:{}/hello", f.web_local.port()),
        &[],
    );
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"local"[..]),
        "glob route: {err}"
    );
    let (rc, body, err) = curl(s, &format!("http://{}/hello", f.web_direct), &[]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"direct"[..]),
        "direct route: {err}"
    );
    let (rc, _, err) = curl(s, "http://127.30.0.1:9/", &[]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("(2)") || err.contains("not allowed"),
        "reject rule gives reply 2: {err}"
    );
    let (rc, _, err) = curl(s, "http://127.99.0.1:9/", &[]);
    assert!(
        rc != 0 && (err.contains("(2)") || err.contains("not allowed")),
        "default reject: {err}"
    );
    // RFC 1929 on the second listener.
    let url = format!("http://{}/hello", f.web_one);
    let (rc, body, err) = curl(f.auth_socks, &url, &["--proxy-user", "alice:wonderland"]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"hello"[..]),
        "auth accepted: {err}"
    );
    let (rc, _, _) = curl(f.auth_socks, &url, &["--proxy-user", "alice:wrong"]);
    assert_ne!(rc, 0, "wrong password refused");
    let (rc, _, _) = curl(f.auth_socks, &url, &[]);
    assert_ne!(rc, 0, "no-auth refused when users are configured");
    // Shutdown terminates every SSM session.
    let mut f = f;
    let st = f.serve.take().unwrap().stop();
    assert!(st.success(), "serve exit {st:?}");
    assert_eq!(
        f.sim.wait_no_open_sessions(Duration::from_secs(10)),
        0,
        "sessions left open"
    );
}

#[test]
fn thirty_two_parallel_ten_mb_downloads_are_byte_exact() {
    let f = fixture(4, 4, 10);
    let s = f.socks();
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let url = format!("http://{}/blob{}", f.web_one, i % 4);
            std::thread::spawn(move || (i, curl(s, &url, &[])))
        })
        .collect();
    for h in handles {
        let (i, (rc, body, err)) = h.join().unwrap();
        assert_eq!(rc, 0, "download {i}: {err}");
        assert!(
            body == f.blobs[i % 4],
            "download {i} corrupted ({} bytes)",
            body.len()
        );
    }
}

fn socks_exchange(s: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(s).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

#[test]
fn malformed_socks_requests_get_the_right_reply_and_never_crash_the_server() {
    let f = fixture(1, 0, 0);
    let s = f.socks();
    // Wrong version: closed without a reply.
    assert!(socks_exchange(s, b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00").is_empty());
    // BIND: command not supported (7).
    let r = socks_exchange(s, b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50");
    assert_eq!(&r[..2], b"\x05\x00");
    assert_eq!(r[3], 7, "{r:?}");
    // Unknown address type: address type not supported (8).
    let r = socks_exchange(s, b"\x05\x01\x00\x05\x01\x00\x09\x00\x50");
    assert_eq!(r[3], 8, "{r:?}");
    // No acceptable method.
    assert_eq!(socks_exchange(s, b"\x05\x01\x02"), b"\x05\xff");
    // Garbage and a truncated greeting.
    let _ = socks_exchange(s, &[0xffu8; 300]);
    let _ = socks_exchange(s, b"\x05");
    // Refused by the bastion's sshd: reply 2 (prohibited) or 5 (refused), not a crash.
    let r = socks_exchange(
        s,
        &[b"\x05\x01\x00\x05\x01\x00\x01\x7f\x0a\x00\x01\x00\x01".as_slice()].concat(),
    );
    assert!(r.len() >= 4 && r[3] != 0, "{r:?}");
    // Still serving.
    let (rc, body, err) = curl(s, &format!("http://{}/hello", f.web_one), &[]);
    assert_eq!((rc, body.as_slice()), (0, &b"hello"[..]), "{err}");
}

#[test]
fn pool_rebuilds_after_the_simulator_terminates_its_sessions() {
    let f = fixture(2, 0, 0);
    let s = f.socks();
    let url = format!("http://{}/hello", f.web_one);
    assert_eq!(curl(s, &url, &[]).0, 0);
    for id in f.sim.sim().registry().session_ids() {
        f.sim.sim().registry().terminate_session(&id);
    }
    // The pool notices, rebuilds with backoff, and serves again.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (rc, body, _) = curl(s, &url, &[]);
        if rc == 0 && body == b"hello" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pool did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One upstream over one simulated session to a bastion that may reach `web`, with the given
/// drain grace period; returns the running `serve` and its config path.
struct Draining {
    _sshd: Sshd,
    sim: SimHandle,
    serve: Serve,
    web: SocketAddr,
    blob: Vec<u8>,
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
}

fn draining_fixture(drain_secs: u64) -> Draining {
    let blob = blob(20 * 1024 * 1024, 77);
    let web = http_server("127.10.0.1:0", vec![("/blob".into(), blob.clone())]);
    let sshd = Sshd::start_with(&format!("PermitOpen {web}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ONE, sshd.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  one:\n    targets: [{ONE}]\n    user: {user}\n    identity_files: [{key}]\n    pool_size: 1\nroutes:\n  - match: 127.10.0.0/16\n    via: one\ndefault: reject\nstate_dir: {state}\ndrain_timeout_secs: {drain_secs}\n",
        user = user(),
        key = sshd.client_key.display(),
        state = dir.path().join("state").display(),
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, cfg).unwrap();
    let serve = Serve::start(&sim, &config);
    Draining {
        _sshd: sshd,
        sim,
        serve,
        web,
        blob,
        config,
        dir,
    }
}

impl Draining {
    /// `curl` of the 20 MB blob at `rate` into a file, in the background.
    fn download(&self, rate: &str) -> (std::process::Child, std::path::PathBuf) {
        let out = self.dir.path().join("download");
        let child = std::process::Command::new("curl")
            .args(["-s", "-S", "--max-time", "120", "--limit-rate", rate])
            .arg("--socks5-hostname")
            .arg(self.serve.socks.to_string())
            .arg("-o")
            .arg(&out)
            .arg(format!("http://{}/blob", self.web))
            .spawn()
            .unwrap();
        (child, out)
    }

    fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .arg(sig)
            .arg(self.serve.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn status_json(&self) -> serde_json::Value {
        let out = std::process::Command::new(BIN)
            .args(["status", "--json", "--control-socket"])
            .arg(self.config.with_file_name("control.sock"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue 10: `stop` drains. A download in flight when SIGTERM arrives finishes byte-exact,
/// while new clients are refused at once and every SSM session is terminated at the end.
#[test]
fn a_twenty_mb_download_in_flight_when_stop_arrives_completes_byte_exact() {
    let mut f = draining_fixture(60);
    let (mut curl, out) = f.download("8M");
    wait_until("the download started", Duration::from_secs(30), || {
        size(&out) > 1024 * 1024
    });
    f.signal("-TERM");
    let socks = f.serve.socks;
    wait_until("the listener closed", Duration::from_secs(10), || {
        TcpStream::connect(socks).is_err()
    });
    let j = f.status_json();
    assert_eq!(j["phase"], "draining", "{j}");
    assert!(j["socks"]["active"].as_u64().unwrap() >= 1, "{j}");
    assert!(
        size(&out) < f.blob.len() as u64,
        "the download was still in flight when stop arrived"
    );
    assert!(curl.wait().unwrap().success(), "the download was cut");
    assert!(std::fs::read(&out).unwrap() == f.blob, "download corrupted");
    let st = f.serve.child.wait().unwrap();
    assert!(st.success(), "serve exit {st:?}");
    assert_eq!(f.sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}

/// A second SIGTERM during the drain closes the streams still open at once instead of waiting
/// out the grace period, and still terminates every SSM session.
#[test]
fn a_second_signal_during_the_drain_aborts_at_once() {
    let mut f = draining_fixture(120);
    let (mut curl, out) = f.download("1M");
    wait_until("the download started", Duration::from_secs(30), || {
        size(&out) > 256 * 1024
    });
    f.signal("-TERM");
    wait_until("draining", Duration::from_secs(10), || {
        f.status_json()["phase"] == "draining"
    });
    assert!(
        f.serve.child.try_wait().unwrap().is_none(),
        "still draining"
    );
    let second = std::time::Instant::now();
    f.signal("-INT");
    let st = f.serve.child.wait().unwrap();
    let took = second.elapsed();
    assert!(st.success(), "serve exit {st:?}");
    assert!(
        took < Duration::from_secs(15),
        "the second signal did not abort the 120 s drain (took {took:?})"
    );
    assert!(
        !curl.wait().unwrap().success(),
        "the download was cut short"
    );
    assert!(size(&out) < f.blob.len() as u64);
    assert_eq!(f.sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}
