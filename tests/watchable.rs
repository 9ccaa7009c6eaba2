//! A master you can watch: detached `serve` writes a plain-text log with one line per SOCKS
//! connection at the default level; each master (one per control socket) has its own pid and
//! log file, and `stop` removes only its own files, `socks5_unix` sockets included; `status`
//! exits 68 while an upstream is down, shortening LAST ERROR in the table but not in `--json`;
//! `route` asks the running master and names the config it judged by.
//!
//! Each test has its own XDG dirs and HOME under a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::SimOptions;

struct Home {
    dir: tempfile::TempDir,
    sim: Option<SimHandle>,
}

impl Home {
    fn new(sim: Option<SimHandle>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Self { dir, sim }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn state_dir(&self) -> PathBuf {
        self.path("state/session-proxy")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .stdin(Stdio::null())
            .env_remove("SESSION_PROXY_LOG")
            .env_remove("NO_COLOR")
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("HOME", self.path("home"))
            .current_dir(self.path("home"));
        if let Some(sim) = &self.sim {
            for (k, v) in sim.env() {
                c.env(k, v);
            }
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Files in the state dir whose names end with `ext`.
    fn state_files(&self, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.state_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with(ext));
        v.sort();
        v
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // Never leave a detached master behind a failed test.
        for pid_file in self.state_files(".pid") {
            if let Ok(p) = std::fs::read_to_string(&pid_file) {
                let _ = Command::new("kill").arg("-TERM").arg(p.trim()).status();
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{}", pid.trim())).exists()
}

/// The first `socks5://` listener `status --json` reports on `socket`.
fn socks_of(home: &Home, socket: &Path) -> SocketAddr {
    let out = home.run(&[
        "status",
        "--json",
        "--control-socket",
        socket.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listeners: Vec<&str> = j["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    socks_addrs(&listeners.join("\n"))[0]
}

/// A no-auth SOCKS5 CONNECT to `dest`; returns the reply code and the stream.
fn socks_connect(socks: SocketAddr, dest: SocketAddr) -> (u8, TcpStream) {
    let mut s = TcpStream::connect(socks).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).unwrap();
    let SocketAddr::V4(v4) = dest else {
        panic!("IPv4 only")
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&v4.ip().octets());
    req.extend_from_slice(&v4.port().to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    (reply[1], s)
}

fn direct_config(home: &Home, name: &str) -> PathBuf {
    let path = home.path(&format!("{name}.yaml"));
    let unix = home.path(&format!("{name}-socks.sock"));
    std::fs::write(
        &path,
        format!(
            "listeners:\n  - socks5: 127.0.0.1:0\n  - socks5_unix: {}\ndefault: direct\n",
            unix.display()
        ),
    )
    .unwrap();
    path
}

fn start(home: &Home, config: &Path, socket: &Path) {
    let out = home.run(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--control-socket",
        socket.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "serve: {}", text(&out.stderr));
}

fn stop(home: &Home, socket: &Path) {
    let out = home.run(&["stop", "--control-socket", socket.to_str().unwrap()]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));
}

#[test]
fn masters_on_two_sockets_keep_their_own_files_and_log_each_connection_in_plain_text() {
    let home = Home::new(None);
    let (sock_a, sock_b) = (home.path("a.ctl"), home.path("b.ctl"));
    start(&home, &direct_config(&home, "a"), &sock_a);
    start(&home, &direct_config(&home, "b"), &sock_b);
    let (pids, logs) = (home.state_files(".pid"), home.state_files(".log"));
    assert_eq!(pids.len(), 2, "one pid file per master: {pids:?}");
    assert_eq!(logs.len(), 2, "one log per master: {logs:?}");
    assert!(home.path("a-socks.sock").exists() && home.path("b-socks.sock").exists());

    // One CONNECT through A, closed after a few bytes.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let (rep, mut s) = socks_connect(socks_of(&home, &sock_a), target.local_addr().unwrap());
    assert_eq!(rep, 0, "CONNECT refused");
    let (mut peer, _) = target.accept().unwrap();
    s.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    peer.read_exact(&mut got).unwrap();
    drop((s, peer));

    let pid_text = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
    let a_pid = std::fs::read_to_string(&pids[0]).unwrap();
    let b_pid = std::fs::read_to_string(&pids[1]).unwrap();
    stop(&home, &sock_a);
    let left = home.state_files(".pid");
    assert_eq!(left.len(), 1, "stopping A left {left:?}");
    let b_left = pid_text(&left[0]);
    assert!(
        [&a_pid, &b_pid].contains(&&b_left) && alive(&b_left),
        "the other master's pid file and process stay"
    );
    assert!(
        !home.path("a-socks.sock").exists(),
        "stop removes its socks5_unix socket"
    );
    assert!(home.path("b-socks.sock").exists(), "and only its own");
    let out = home.run(&["status", "--control-socket", sock_b.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "B still answers: {}",
        text(&out.stderr)
    );
    stop(&home, &sock_b);
    assert!(!home.path("b-socks.sock").exists());
    assert!(home.state_files(".pid").is_empty());

    // A's log: plain text, and the connection's one line with its fields.
    let a_log = logs
        .iter()
        .map(|l| std::fs::read(l).unwrap())
        .find(|l| text(l).contains("connection closed"))
        .unwrap_or_else(|| panic!("no connection line in either log: {logs:?}"));
    assert!(
        !a_log.contains(&0x1b),
        "escape codes in the log:\n{}",
        text(&a_log)
    );
    let log = text(&a_log);
    let line = log
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap();
    for field in [
        " INFO ",
        "client=127.0.0.1:",
        &format!("destination={}", target.local_addr().unwrap()),
        "route=default",
        "upstream=direct",
        "result=ok",
        "bytes_up=4",
        "bytes_down=0",
        "duration=",
    ] {
        assert!(line.contains(field), "{field:?} missing: {line}");
    }
    assert!(
        !log.contains("DEBUG"),
        "debug lines at the default level:\n{log}"
    );
}

const BAD: &str = "i-0000000000000dead";

/// A master with one lazy upstream whose instance does not exist, routed for 127.0.0.2.
fn failing_master(home: &Home) -> (PathBuf, PathBuf) {
    let config = home.path("master.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  bad:\n    targets: [{BAD}]\n    user: ec2-user\n    identity_files: [{}]\n    lazy: true\nroutes:\n  - match: 127.0.0.2/32\n    via: bad\ndefault: direct\n",
            home.path("no-such-key").display()
        ),
    )
    .unwrap();
    let socket = home.path("run/session-proxy/control.sock");
    let out = home.run(&["serve", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "serve: {}", text(&out.stderr));
    (config, socket)
}

#[test]
fn status_exits_68_while_an_upstream_is_down_and_json_keeps_the_whole_error() {
    let home = Home::new(Some(SimHandle::start(SimOptions::default())));
    let (_config, socket) = failing_master(&home);
    let out = home.run(&["status"]);
    assert!(
        out.status.success(),
        "an idle lazy upstream is not down: {}",
        text(&out.stderr)
    );

    // A CONNECT routed to it starts the pool, which fails and keeps retrying.
    let (rep, _s) = socks_connect(socks_of(&home, &socket), "127.0.0.2:80".parse().unwrap());
    assert_ne!(rep, 0, "CONNECT through a broken upstream succeeded");
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = home.run(&["status"]);
        if !out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(out.status.code(), Some(68), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("down: bad") && err.contains("session-proxy connect"),
        "{err}"
    );
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("bad ")).unwrap();

    let out = home.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(68), "--json exits alike");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let whole = j["upstreams"][0]["last_error"].as_str().unwrap();
    assert!(whole.contains(BAD), "{whole}");
    assert!(
        whole.chars().count() > 60,
        "a short error proves nothing: {whole}"
    );
    assert!(!row.contains(whole), "the table shortens it: {row}");
    let head: String = whole.chars().take(30).collect();
    assert!(row.contains(&head) && row.contains('…'), "{row}");
    let out = home.run(&["stop"]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));
    // The master's own log has the pool's state changes, one line each.
    let log = std::fs::read_to_string(home.state_dir().join("serve.log")).unwrap();
    assert!(log.contains("upstream bad: idle → connecting"), "{log}");
    let down = log
        .lines()
        .find(|l| l.contains("upstream bad: connecting → down"))
        .unwrap_or_else(|| panic!("no state change to down:\n{log}"));
    assert!(down.contains(" WARN ") && down.contains(BAD), "{down}");
}

#[test]
fn route_asks_the_running_master_and_names_the_config_it_judged_by() {
    let home = Home::new(Some(SimHandle::start(SimOptions::default())));
    // A config in the working directory that routes nothing: without asking the master,
    // `route` would judge by this one.
    std::fs::write(home.path("home/config.yaml"), "default: reject\n").unwrap();
    let (config, _socket) = failing_master(&home);
    let out = home.run(&["route", "127.0.0.2"]);
    assert!(out.status.success(), "route: {}", text(&out.stderr));
    let said = text(&out.stdout);
    let mut lines = said.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .contains("matched routes[0] (127.0.0.2/32) → upstream bad"),
        "{said}"
    );
    let judged = lines.next().unwrap();
    assert!(
        judged.contains("running master (pid") && judged.contains(&config.display().to_string()),
        "{said}"
    );

    // --config judges that file, and says so.
    let local = home.path("home/config.yaml");
    let out = home.run(&["--config", local.to_str().unwrap(), "route", "127.0.0.2"]);
    let said = text(&out.stdout);
    assert!(
        said.contains("default is reject") && said.contains("(--config)"),
        "{said}"
    );
    let out = home.run(&["stop"]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));

    // No master: the discovered file, named, and why the master was not asked.
    let out = home.run(&["route", "127.0.0.2"]);
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("judged by {}", local.display()))
            && said.contains("no master running at"),
        "{said}"
    );
}

const ONE: &str = "i-0000000000000a001";

/// A GET through the SOCKS proxy at `socks` to `web`; returns the body's length.
fn get_through(socks: SocketAddr, web: SocketAddr, path: &str) -> usize {
    let (rep, mut s) = socks_connect(socks, web);
    assert_eq!(rep, 0, "CONNECT refused");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    body.len()
}

#[test]
fn resumes_state_changes_connect_disconnect_reload_and_stop_are_logged_at_the_default_level() {
    let web = http_server("127.10.0.1:0", vec![("/blob".into(), vec![7u8; 1 << 20])]);
    let sshd = Sshd::start_with(&format!("PermitOpen {web}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ONE, sshd.addr)],
        faults: session_proxy::sim::faults::FaultPlan {
            // The MiB below crosses it: the WebSocket is closed under the stream, and resumed.
            kill_after_bytes: Some(768 * 1024),
            ..Default::default()
        },
        ..SimOptions::default()
    });
    let home = Home::new(Some(sim));
    let config = home.path("master.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  one:\n    targets: [{ONE}]\n    user: {}\n    identity_files: [{}]\n    pool_size: 1\nroutes:\n  - match: 127.10.0.0/16\n    via: one\ndefault: reject\n",
            user(),
            sshd.client_key.display()
        ),
    )
    .unwrap();
    let out = home.run(&["serve", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "serve: {}", text(&out.stderr));
    let socket = home.path("run/session-proxy/control.sock");
    let socks = socks_of(&home, &socket);
    let got = get_through(socks, web, "/blob");
    let log_now =
        || std::fs::read_to_string(home.state_dir().join("serve.log")).unwrap_or_default();
    assert!(
        got > 1 << 20,
        "{got} bytes through the proxy; log:\n{}",
        log_now()
    );
    for args in [&["disconnect", "one"][..], &["connect", "one"], &["reload"]] {
        let out = home.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let out = home.run(&["stop"]);
    assert!(out.status.success(), "stop: {}", text(&out.stderr));

    let log = std::fs::read_to_string(home.state_dir().join("serve.log")).unwrap();
    let has = |what: &str| {
        log.lines()
            .any(|l| l.contains(what) && l.contains(" INFO "))
    };
    for what in [
        "upstream one: connecting → up (1/1 connections up)",
        "data channel resumed",
        "upstream=one",
        "upstream one: up → stopped",
        "disconnect one: upstream one disconnected",
        "connect one: upstream one is up",
        "reload: no changes",
        "stop: master (pid",
    ] {
        assert!(has(what), "no INFO line with {what:?}:\n{log}");
    }
    let resumed = log
        .lines()
        .find(|l| l.contains("data channel resumed"))
        .unwrap();
    assert!(
        resumed.contains("ssm{session="),
        "names its session: {resumed}"
    );
    assert!(!log.contains('\x1b') && !log.contains("DEBUG"), "{log}");
}
