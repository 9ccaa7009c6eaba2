//! `session-proxy forward` end to end (issue 13): the real binary against the simulator, with
//! loopback echo and answer servers behind the "instance": parallel connections byte-exact,
//! half-close, a refused destination, WebSocket kills and a terminated session, basic mode on an
//! old agent, a Unix-socket listener, and `--via UPSTREAM` through a running master.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::agent::AgentKnobs;
use session_proxy::sim::faults::FaultPlan;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

/// A running `forward` child, its bound addresses and its stderr so far.
struct Forward {
    child: Child,
    bound: Vec<String>,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Forward {
    fn start(sim: &SimHandle, specs: &[String], extra: &[&str]) -> Self {
        Self::start_via(sim, specs, ID, extra)
    }

    fn start_via(sim: &SimHandle, specs: &[String], via: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let mut c = Command::new(BIN);
        c.arg("forward")
            .args(specs)
            .args(["--via", via, "--ready-file"])
            .arg(&ready)
            .args(extra)
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in sim.env() {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(err);
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) > 0 {
                eprint!("forward: {line}");
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let bound = loop {
            if let Ok(t) = std::fs::read_to_string(&ready) {
                if t.ends_with('\n') {
                    break t.lines().map(str::to_owned).collect();
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "forward exited ({st}) before it was ready:\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "forward never wrote its ready file"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            bound,
            log,
            _dir: dir,
        }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.bound[i].parse().unwrap()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log contains `what`.
    fn wait_log(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.contains(what) {
                return log;
            }
            assert!(Instant::now() < deadline, "no {what:?} in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; returns the exit status (bounded wait).
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "forward did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim_with(knobs: AgentKnobs, faults: FaultPlan) -> SimHandle {
    SimHandle::start(SimOptions {
        instances: vec![instance(ID, "127.0.0.1:22".parse().unwrap())],
        knobs,
        faults,
        ..SimOptions::default()
    })
}

fn spec(dest: SocketAddr) -> String {
    format!("0:{}:{}", dest.ip(), dest.port())
}

fn echo_server(sim: &SimHandle) -> SocketAddr {
    sim.rt.block_on(echo::echo_server()).0
}

#[test]
fn twenty_parallel_connections_of_5_mb_arrive_byte_exact_both_ways() {
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    let echo = echo_server(&sim);
    let fwd = Forward::start(&sim, &[spec(echo)], &["--sessions", "2"]);
    let addr = fwd.addr(0);
    let workers: Vec<_> = (0..20u64)
        .map(|i| std::thread::spawn(move || echo::echo_check(addr, 5 << 20, i + 1)))
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        sim.sim().registry().session_ids().len(),
        2,
        "two sessions carried them"
    );
    assert!(fwd.stop().success());
    assert_eq!(
        sim.wait_no_open_sessions(Duration::from_secs(20)),
        0,
        "sessions terminated"
    );
}

#[test]
fn a_half_close_reaches_the_destination_and_its_answer_still_arrives() {
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    // Reads to end of file, then answers with how much it got.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let fwd = Forward::start(&sim, &[spec(dest)], &[]);
    let mut s = TcpStream::connect(fwd.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&[7u8; 100_000]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "got 100000 bytes");
}

#[test]
fn a_refused_destination_closes_that_connection_others_go_on_and_the_log_names_it() {
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    let echo = echo_server(&sim);
    let (_held, closed) = refusing_port();
    let refused: SocketAddr = format!("127.0.0.1:{closed}").parse().unwrap();
    let fwd = Forward::start(&sim, &[spec(refused), spec(echo)], &[]);
    let mut s = TcpStream::connect(fwd.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "the refused connection is closed"
    );
    let log = fwd.wait_log("could not connect");
    assert!(
        log.contains(&refused.to_string()),
        "the log names the destination:\n{log}"
    );
    echo::echo_check(fwd.addr(1), 256 * 1024, 9);
    // The refused forward's session is still usable: a second connection is refused too.
    let mut again = TcpStream::connect(fwd.addr(0)).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(again.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn the_listener_survives_websocket_kills_and_a_terminated_session() {
    let faults = FaultPlan {
        kill_after_bytes: Some(4 << 20),
        ..FaultPlan::default()
    };
    let sim = sim_with(AgentKnobs::default(), faults);
    let echo = echo_server(&sim);
    let fwd = Forward::start(&sim, &[spec(echo)], &[]);
    // 6 MB each way is 12 MB through the WebSocket: at least 3 kills, each resumed. (A link
    // that dies within less than the unacknowledged window, 1 MiB, can make no progress: both
    // ends resend that window first.)
    echo::echo_check(fwd.addr(0), 6 << 20, 21);
    let resumes = fwd.log().matches("data channel resumed").count();
    assert!(resumes >= 3, "{resumes} resumes");
    let first = sim.sim().registry().session_ids();
    assert_eq!(first.len(), 1, "resumed, not replaced");
    sim.sim().registry().terminate_session(&first[0]);
    fwd.wait_log("starting a new session");
    echo::echo_check(fwd.addr(0), 1 << 20, 22);
    assert!(
        sim.sim().registry().session_ids().len() >= 2,
        "a new session was started"
    );
    assert!(fwd.stop().success());
}

#[test]
fn an_old_agent_gets_basic_mode_one_connection_after_another() {
    let knobs = AgentKnobs {
        agent_version: Some("3.0.161.0".into()),
        ..AgentKnobs::default()
    };
    let sim = sim_with(knobs, FaultPlan::default());
    let echo = echo_server(&sim);
    let fwd = Forward::start(&sim, &[spec(echo)], &[]);
    for i in 0..3u64 {
        // Basic mode has no half-close (§7.2): read the echo back in full, then close.
        let data = echo::payload(300 * 1024, 40 + i);
        let mut s = TcpStream::connect(fwd.addr(0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut back = vec![0u8; data.len()];
        s.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == data, "connection {i} came back intact");
    }
    assert_eq!(sim.sim().registry().session_ids().len(), 1);
}

#[test]
fn a_unix_socket_listener_is_private_and_forwards() {
    use std::os::unix::fs::PermissionsExt;
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    let echo = echo_server(&sim);
    let dir = tempfile::tempdir().unwrap();
    let sock: PathBuf = dir.path().join("db.sock");
    let spec = format!("{}:{}:{}", sock.display(), echo.ip(), echo.port());
    let fwd = Forward::start(&sim, &[spec], &[]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"over a unix socket").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    assert_eq!(back, "over a unix socket");
    assert!(fwd.stop().success());
    assert!(
        !Path::new(&sock).exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn via_an_upstream_the_forward_rides_the_running_masters_ssh_pool() {
    let sim0 = sim_with(AgentKnobs::default(), FaultPlan::default());
    let echo = echo_server(&sim0);
    let sshd = Sshd::start_with(&format!("PermitOpen {echo}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  one:\n    targets: [{ID}]\n    user: {user}\n    identity_files: [{key}]\n    pool_size: 1\nroutes:\n  - match: 127.0.0.1/32\n    via: one\ndefault: reject\nstate_dir: {state}\n",
        user = user(),
        key = sshd.client_key.display(),
        state = dir.path().join("state").display(),
    );
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&sim, &config);
    let sessions = sim.sim().registry().session_ids().len();
    let control = config.with_file_name("control.sock");
    let control = control.to_str().unwrap();
    let fwd = Forward::start_via(&sim, &[spec(echo)], "one", &["--control-socket", control]);
    fwd.wait_log("the master's SSH pool");
    echo::echo_check(fwd.addr(0), 1 << 20, 50);
    echo::echo_check(fwd.addr(0), 1 << 20, 51);
    assert_eq!(
        sim.sim().registry().session_ids().len(),
        sessions,
        "no SSM session of its own: the master's pooled connection carried it"
    );
    assert!(fwd.stop().success());
    assert!(serve.stop().success());
}

#[test]
fn a_destination_the_agent_refuses_is_reported_once_and_not_retried() {
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    let fwd = Forward::start(&sim, &["0:169.254.169.254:80".to_owned()], &[]);
    let mut s = TcpStream::connect(fwd.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "the connection is closed");
    let log = fwd.wait_log("Forwarding to IP address 169.254.169.254 is forbidden.");
    assert!(log.contains("refuses this destination"), "{log}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sim.sim().registry().session_ids().len(), 1, "no retry loop");
    assert!(fwd.stop().success());
}

#[test]
fn a_burst_of_connections_spreads_one_per_session() {
    let sim = sim_with(AgentKnobs::default(), FaultPlan::default());
    let echo = echo_server(&sim);
    let fwd = Forward::start(&sim, &[spec(echo)], &["--sessions", "4"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fwd.log().matches("session up").count() < 4 {
        assert!(
            Instant::now() < deadline,
            "4 sessions never came up:\n{}",
            fwd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // All four connect before any sends, so each pick sees the ones before it.
    let conns: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(fwd.addr(0)).unwrap())
        .collect();
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || {
                let data = echo::payload(256 * 1024, 70 + i as u64);
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
                let mut back = vec![0u8; data.len()];
                s.read_exact(&mut back).unwrap();
                writer.join().unwrap();
                assert!(back == data);
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let carried: Vec<u64> = sim
        .sim()
        .stats()
        .iter()
        .map(|s| s.agent.bytes_delivered)
        .collect();
    assert_eq!(carried.len(), 4, "{carried:?}");
    assert!(
        carried.iter().all(|&b| b >= 256 * 1024),
        "every session carried one connection: {carried:?}"
    );
}
