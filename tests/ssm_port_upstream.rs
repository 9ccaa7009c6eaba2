//! `serve` with a `kind: ssm-port` upstream (issue 13, point 4): SOCKS destinations reached
//! through `AWS-StartPortForwardingSessionToRemoteHost` sessions of the simulator, with no SSH
//! server anywhere. Real curl through the real binary; loopback HTTP servers stand behind the
//! "instance".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

struct Fixture {
    sim: SimHandle,
    serve: Serve,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

/// `serve` whose default goes to an `ssm-port` upstream on the simulator's one instance (its
/// SSH address is never dialled: nothing listens there and nothing needs to).
fn fixture(idle_timeout_secs: u64) -> Fixture {
    fixture_on(ID, idle_timeout_secs)
}

fn fixture_on(target: &str, idle_timeout_secs: u64) -> Fixture {
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, "127.0.0.1:9".parse().unwrap())],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("config.yaml");
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  ports:\n    kind: ssm-port\n    targets: [{target}]\n    idle_timeout_secs: {idle_timeout_secs}\n    sessions_per_destination: 1\ndefault: ports\nstate_dir: {}\n",
        state.display()
    );
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&sim, &config);
    Fixture {
        sim,
        serve,
        config,
        _dir: dir,
    }
}

impl Fixture {
    fn status_json(&self) -> serde_json::Value {
        let out = Command::new(BIN)
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

    fn upstream(&self) -> serde_json::Value {
        self.status_json()["upstreams"][0].clone()
    }

    fn ctl(&self, what: &str) -> (bool, String) {
        let out = Command::new(BIN)
            .args([what, "ports", "--control-socket"])
            .arg(self.config.with_file_name("control.sock"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn get(&self, web: SocketAddr, path: &str) -> Vec<u8> {
        let (rc, body, err) = curl(self.serve.socks, &format!("http://{web}{path}"), &[]);
        assert_eq!(rc, 0, "curl {web}{path}: {err}");
        body
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn blob(mb: usize, seed: u64) -> Vec<u8> {
    echo::payload(mb << 20, seed)
}

/// Waits (bounded, a hang guard) until `check` holds.
fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_destinations_get_their_own_port_sessions_and_arrive_byte_exact() {
    let f = fixture(300);
    let (one, two) = (blob(3, 1), blob(3, 2));
    let web_one = http_server("127.0.0.1:0", vec![("/blob".into(), one.clone())]);
    let web_two = http_server("127.0.0.1:0", vec![("/blob".into(), two.clone())]);
    assert_eq!(sha256(&f.get(web_one, "/blob")), sha256(&one));
    assert_eq!(sha256(&f.get(web_two, "/blob")), sha256(&two));
    // A second connection to the first destination rides its existing session.
    assert_eq!(sha256(&f.get(web_one, "/blob")), sha256(&one));
    assert_eq!(
        f.sim.sim().registry().session_ids().len(),
        2,
        "one session per destination"
    );
    let up = f.upstream();
    assert_eq!(up["kind"], "ssm-port", "{up}");
    assert_eq!(up["state"], "up", "{up}");
    let dests = up["destinations"].as_array().unwrap();
    let names: Vec<&str> = dests
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    let mut want = vec![web_one.to_string(), web_two.to_string()];
    want.sort();
    assert_eq!(names, want, "{up}");
    let first = dests
        .iter()
        .find(|d| d["destination"] == web_one.to_string())
        .unwrap();
    assert_eq!(first["streams_total"], 2, "{first}");
    assert_eq!(first["sessions_up"], 1, "{first}");
    assert_eq!(first["instance"], ID, "{first}");
    assert!(first["bytes_in"].as_u64().unwrap() > 6 << 20, "{first}");
    let Fixture { sim, serve, .. } = f;
    assert!(serve.stop().success());
    assert_eq!(
        sim.wait_no_open_sessions(Duration::from_secs(30)),
        0,
        "stop terminates every destination's sessions"
    );
}

#[test]
fn a_refused_destination_gets_the_socks_refusal_and_the_metadata_address_is_not_allowed() {
    let f = fixture(300);
    let (_held, closed) = refusing_port();
    let (rc, _, err) = curl(f.serve.socks, &format!("http://127.0.0.1:{closed}/"), &[]);
    // curl 7.88 names the SOCKS reply by its number: 5 is "connection refused".
    assert_eq!(rc, 97, "{err}");
    assert!(err.contains("(5)"), "{err}");
    let (rc, _, err) = curl(
        f.serve.socks,
        "http://169.254.169.254/latest/meta-data/",
        &[],
    );
    // 2 is "connection not allowed by ruleset".
    assert_eq!(rc, 97, "{err}");
    assert!(err.contains("(2)"), "{err}");
    let up = f.upstream();
    assert!(
        up["last_error"]
            .as_str()
            .unwrap()
            .contains("Forwarding to IP address 169.254.169.254 is forbidden."),
        "{up}"
    );
    // A destination that works still does, next to the refused ones.
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    assert_eq!(f.get(web, "/hello"), b"hello");
}

#[test]
fn an_idle_destination_closes_its_sessions_and_the_next_connection_opens_a_new_one() {
    let f = fixture(1);
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    assert_eq!(f.get(web, "/hello"), b"hello");
    assert_eq!(
        f.sim.wait_no_open_sessions(Duration::from_secs(30)),
        0,
        "the idle destination's session was terminated"
    );
    wait_until(
        "the destination leaves status",
        Duration::from_secs(30),
        || f.upstream()["destinations"].as_array().unwrap().is_empty(),
    );
    assert_eq!(f.get(web, "/hello"), b"hello");
    assert_eq!(
        f.sim.sim().registry().session_ids().len(),
        2,
        "a new session carried the second connection"
    );
}

#[test]
fn disconnect_terminates_the_port_sessions_and_connect_makes_the_upstream_usable_again() {
    let f = fixture(300);
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    assert_eq!(f.get(web, "/hello"), b"hello");
    let (ok, text) = f.ctl("disconnect");
    assert!(ok, "{text}");
    assert_eq!(f.sim.wait_no_open_sessions(Duration::from_secs(30)), 0);
    assert_eq!(f.upstream()["state"], "stopped");
    let (rc, _, err) = curl(f.serve.socks, &format!("http://{web}/hello"), &[]);
    assert_eq!(rc, 97, "a stopped upstream refuses: {err}");
    let (ok, text) = f.ctl("connect");
    assert!(ok, "{text}");
    assert_eq!(f.get(web, "/hello"), b"hello");
}

/// `forward --via ports` while the master runs: the master's `open` carries each connection on
/// the upstream's port sessions, so the forward starts none of its own.
#[test]
fn forward_via_the_upstream_rides_the_masters_port_sessions() {
    let f = fixture(300);
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut child = Command::new(BIN)
        .args([
            "forward",
            &format!("0:{web}"),
            "--via",
            "ports",
            "--ready-file",
        ])
        .arg(&ready)
        .arg("--control-socket")
        .arg(f.config.with_file_name("control.sock"))
        .env("HOME", dir.path())
        .env("XDG_RUNTIME_DIR", dir.path())
        .envs(f.sim.env())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut bound = String::new();
    wait_until("forward is ready", Duration::from_secs(60), || {
        bound = std::fs::read_to_string(&ready).unwrap_or_default();
        bound.ends_with('\n') || child.try_wait().unwrap().is_some()
    });
    let addr: SocketAddr = bound.lines().next().unwrap().parse().unwrap();
    for _ in 0..2 {
        let answer = socks::http_hello(std::net::TcpStream::connect(addr).unwrap());
        assert!(answer.ends_with("hello"), "{answer}");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        f.sim.sim().registry().session_ids().len(),
        1,
        "the upstream's one session carried both"
    );
    let dest = f.upstream()["destinations"][0].clone();
    assert_eq!(dest["streams_total"], 2, "{dest}");
}

/// `reload` with the upstream's settings changed replaces it: the old sessions are
/// terminated and the destination's next connection uses the new settings.
#[test]
fn reload_replaces_a_changed_port_upstream() {
    let f = fixture(300);
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    assert_eq!(f.get(web, "/hello"), b"hello");
    let text = std::fs::read_to_string(&f.config).unwrap();
    let text = text.replace("sessions_per_destination: 1", "sessions_per_destination: 2");
    std::fs::write(&f.config, text).unwrap();
    let st = Command::new(BIN)
        .args(["reload", "--control-socket"])
        .arg(f.config.with_file_name("control.sock"))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(f.sim.wait_no_open_sessions(Duration::from_secs(30)), 0);
    assert_eq!(f.get(web, "/hello"), b"hello");
    let dest = f.upstream()["destinations"][0].clone();
    assert_eq!(dest["sessions_total"], 2, "{dest}");
}

/// Sessions that cannot start (here: the target names no instance) answer REP 0x04 at once
/// and `status` says why.
#[test]
fn a_target_that_matches_no_instance_makes_destinations_host_unreachable() {
    let f = fixture_on("no-such-bastion", 300);
    let web = http_server("127.0.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    let (rc, _, err) = curl(f.serve.socks, &format!("http://{web}/hello"), &[]);
    assert_eq!(rc, 97, "{err}");
    assert!(err.contains("(4)"), "host unreachable: {err}");
    let up = f.upstream();
    assert!(
        up["last_error"]
            .as_str()
            .unwrap()
            .contains("no-such-bastion"),
        "{up}"
    );
    assert_eq!(f.sim.sim().registry().session_ids().len(), 0);
}

#[test]
fn a_serve_forward_via_the_upstream_rides_its_port_sessions() {
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, "127.0.0.1:9".parse().unwrap())],
        ..SimOptions::default()
    });
    let echo = sim.rt.block_on(echo::echo_server()).0;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  ports:\n    kind: ssm-port\n    targets: [{ID}]\ndefault: reject\nstate_dir: {}\nforwards:\n  - listen: 127.0.0.1:0\n    to: {echo}\n    via: ports\n",
        dir.path().join("state").display()
    );
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&sim, &config);
    let fixture = Fixture {
        sim,
        serve,
        config,
        _dir: dir,
    };
    let status = fixture.status_json();
    let listen: SocketAddr = status["forwards"][0]["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    echo::echo_check(listen, 1 << 20, 90);
    let dest = &fixture.upstream()["destinations"][0];
    assert!(
        dest.to_string().contains(&echo.port().to_string()),
        "the forward's destination is one of the upstream's: {dest}"
    );
}
