//! The background master and its control socket end to end: `serve` detaching and returning
//! once ready, `status` (table and JSON), `connect`/`disconnect`/`reload`/`stop`, SIGHUP,
//! socket permissions and another uid being refused, stale-socket recovery, double-start
//! refusal, and the real `ssh` through `stdio` reusing the master's pooled connection.
//!
//! Every test gets its own XDG_RUNTIME_DIR / XDG_STATE_HOME / HOME under a temp dir, so tests
//! run in parallel and never touch the real user's files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::socks::{http_hello, socks_connect};
use common::*;
use session_proxy::sim::SimOptions;

const ONE: &str = "i-0000000000000a001";
const TWO: &str = "i-0000000000000b002";

struct Master {
    sim: SimHandle,
    one: Sshd,
    _two: Sshd,
    dir: tempfile::TempDir,
    web_one: SocketAddr,
    config: PathBuf,
}

/// The master's config; its SOCKS listener takes any free port (see [`Master::socks`]).
fn config_text(one: &Sshd, two: &Sshd, with_two: bool, extra_routes: &str) -> String {
    let user = user();
    let two_text = if with_two {
        format!(
            "  two:\n    targets: [{TWO}]\n    user: {user}\n    identity_files: [{}]\n    pool_size: 1\n    lazy: true\n",
            two.client_key.display()
        )
    } else {
        String::new()
    };
    format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  one:\n    targets: [{ONE}]\n    user: {user}\n    identity_files: [{k1}]\n    pool_size: 1\n{two_text}routes:\n  - match: 127.10.0.0/16\n    via: one\n  - match: 127.0.0.1/32\n    via: one\n{extra_routes}default: reject\n",
        k1 = one.client_key.display(),
    )
}

impl Master {
    fn new() -> Self {
        let web_one = http_server("127.10.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
        let one = Sshd::start_with(&format!("PermitOpen {web_one} 127.0.0.1:*"));
        let two = Sshd::start();
        let sim = SimHandle::start(SimOptions {
            instances: vec![instance(ONE, one.addr), instance(TWO, two.addr)],
            ..SimOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        for d in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        // The runtime dir must be private, as it is under /run/user.
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_text(&one, &two, true, "")).unwrap();
        Self {
            sim,
            one,
            _two: two,
            dir,
            web_one,
            config,
        }
    }

    fn rewrite_config(&self, with_two: bool, extra_routes: &str) {
        std::fs::write(
            &self.config,
            config_text(&self.one, &self._two, with_two, extra_routes),
        )
        .unwrap();
    }

    /// The SOCKS address the running master bound, as `status` reports it.
    fn socks(&self) -> SocketAddr {
        let status = self.status_json();
        let listeners: Vec<&str> = status["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        *socks_addrs(&listeners.join("\n"))
            .first()
            .unwrap_or_else(|| panic!("no socks5 listener in status: {status}"))
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/session-proxy/control.sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("state/session-proxy/serve.pid")
    }

    fn env(&self, c: &mut Command) {
        for (k, v) in self.sim.env() {
            c.env(k, v);
        }
        c.env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("home/.config"))
            .env("HOME", self.dir.path().join("home"))
            .current_dir(self.dir.path().join("home"));
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).stdin(Stdio::null());
        self.env(&mut c);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn serve(&self) -> Output {
        self.run(&["serve", "--config", self.config.to_str().unwrap()])
    }

    fn start(&self) {
        let out = self.serve();
        assert!(out.status.success(), "serve: {}", text(&out.stderr));
    }

    fn status_json(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn upstream(&self, name: &str) -> Option<serde_json::Value> {
        self.status_json()["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
    }

    fn stop(&self) {
        let out = self.run(&["stop"]);
        assert!(out.status.success(), "stop: {}", text(&out.stderr));
        assert_eq!(
            self.sim.wait_no_open_sessions(Duration::from_secs(10)),
            0,
            "SSM sessions left open after stop"
        );
    }

    fn pid(&self) -> u32 {
        std::fs::read_to_string(self.pid_file())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        // Never leave a detached master behind a failed test.
        if let Ok(p) = std::fs::read_to_string(self.pid_file()) {
            let _ = Command::new("kill").arg("-TERM").arg(p.trim()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.pid_file().exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn background_serve_returns_once_ready_and_status_stop_round_trip() {
    let m = Master::new();
    let out = m.run(&["status"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no master running at") && err.contains("session-proxy serve"),
        "{err}"
    );

    m.start();
    let pid = m.pid();
    assert!(alive(pid), "pid file names a live process");
    assert_eq!(mode(&m.socket()), 0o600, "socket mode");
    assert_eq!(mode(m.socket().parent().unwrap()), 0o700, "socket dir mode");
    assert!(m.dir.path().join("state/session-proxy/serve.log").exists());

    let out = m.run(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains(&format!("master pid {pid}")), "{table}");
    assert!(
        table.contains("UPSTREAM") && table.contains("LAST ERROR"),
        "{table}"
    );
    let one = table.lines().find(|l| l.starts_with("one ")).unwrap();
    assert!(
        one.contains(" up ") && one.contains(ONE) && one.contains("1/1"),
        "{one}"
    );
    let two = table.lines().find(|l| l.starts_with("two ")).unwrap();
    assert!(two.contains("idle") && two.contains("0/1"), "{two}");

    let j = m.status_json();
    assert_eq!(j["pid"], pid);
    assert_eq!(j["upstreams"][0]["name"], "one");
    assert_eq!(j["upstreams"][0]["connections_up"], 1);
    assert_eq!(j["upstreams"][0]["instances"][0], ONE);

    // A second master on the same socket refuses, naming the first.
    let out = m.serve();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already running") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    assert!(alive(pid), "the first master survives the attempt");

    m.stop();
    assert!(!m.socket().exists() && !m.pid_file().exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "master exited");
}

#[test]
fn connect_disconnect_and_reload_steer_the_pools_without_dropping_unaffected_streams() {
    let m = Master::new();
    m.start();
    assert!(http_hello(socks_connect(m.socks(), m.web_one).unwrap()).ends_with("hello"));

    // connect: a lazy upstream comes up; progress on stderr, result on stdout.
    let out = m.run(&["connect", "two"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("connecting upstream two"));
    assert!(
        text(&out.stdout).contains("1/1 connections up"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(m.upstream("two").unwrap()["connections_up"], 1);
    assert_eq!(m.sim.sim().open_sessions(), 2);
    let out = m.run(&["connect", "nope"]);
    assert!(!out.status.success() && text(&out.stderr).contains("unknown upstream \"nope\""));

    // disconnect: sessions terminated, destinations routed there are host-unreachable (4).
    let out = m.run(&["disconnect", "one"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(m.sim.sim().open_sessions(), 1, "one's session terminated");
    assert_eq!(m.upstream("one").unwrap()["state"], "stopped");
    assert_eq!(socks_connect(m.socks(), m.web_one).err(), Some(4));
    let out = m.run(&["connect", "one"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(http_hello(socks_connect(m.socks(), m.web_one).unwrap()).ends_with("hello"));

    // reload: remove two, add a route; a stream through one stays open across it.
    let held = socks_connect(m.socks(), m.web_one).unwrap();
    m.rewrite_config(false, "  - match: 127.50.0.0/16\n    via: one\n");
    let out = m.run(&["reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("upstream two removed") && said.contains("routes changed"),
        "{said}"
    );
    assert!(m.upstream("two").is_none());
    assert_eq!(m.sim.sim().open_sessions(), 1, "two's session terminated");
    assert!(
        http_hello(held).ends_with("hello"),
        "stream survived the reload"
    );
    let out = m.run(&["reload"]);
    assert!(text(&out.stdout).contains("no changes"));

    // SIGHUP reloads too.
    m.rewrite_config(true, "");
    Command::new("kill")
        .arg("-HUP")
        .arg(m.pid().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.upstream("two").is_none() {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A broken config is refused and the running one kept.
    std::fs::write(&m.config, "upstreams: [").unwrap();
    let out = m.run(&["reload"]);
    assert!(!out.status.success() && text(&out.stderr).contains("keeping the running config"));
    assert!(http_hello(socks_connect(m.socks(), m.web_one).unwrap()).ends_with("hello"));
    m.stop();
}

#[test]
fn stale_socket_is_replaced_and_other_users_are_refused() {
    let m = Master::new();
    std::fs::create_dir_all(m.socket().parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(m.socket()).unwrap());
    assert!(m.socket().exists(), "a dead socket file is left behind");
    let out = m.run(&["status"]);
    assert!(
        text(&out.stderr).contains("no master running at"),
        "{}",
        text(&out.stderr)
    );
    m.start();
    assert!(m.run(&["status"]).status.success());

    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root, cannot run a client as another uid; skipping that check");
    } else {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "status",
        ])
        .stdin(Stdio::null());
        m.env(&mut c);
        c.current_dir("/");
        let out = c.output().unwrap();
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "another uid got an answer: {} / {err} / {:?}",
            text(&out.stdout),
            out.status
        );
        assert!(
            err.contains("ermission denied"),
            "refusal should say so: {err}"
        );
        // Past the file permissions (loosened here on purpose), SO_PEERCRED still refuses.
        let open = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        open(m.dir.path(), 0o755);
        open(&m.dir.path().join("run"), 0o755);
        open(m.socket().parent().unwrap(), 0o755);
        open(&m.socket(), 0o666);
        let out = c.output().unwrap();
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "another uid got an answer: {} / {err} / {:?}",
            text(&out.stdout),
            out.status
        );
        assert!(
            err.contains("only takes commands from its own user"),
            "{err}"
        );
        open(&m.socket(), 0o600);
    }
    // SIGTERM drains and exits like `stop`: no SSM session left open.
    let pid = m.pid();
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        assert!(Instant::now() < deadline, "master ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        m.sim.sim().open_sessions(),
        0,
        "sessions left open after SIGTERM"
    );
    assert!(!m.socket().exists() && !m.pid_file().exists());
}

#[test]
fn ssh_through_stdio_reuses_the_masters_pooled_connection() {
    let m = Master::new();
    m.start();
    let started_before = m.sim.sim().registry().session_ids().len();
    let ssh = |m: &Master| {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .args(["-o", "HostKeyAlias=sim-target"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            m.one.known_hosts.display()
        ))
        .arg("-i")
        .arg(&m.one.client_key)
        .arg("-o")
        .arg(format!("ProxyCommand={BIN} stdio %h -p %p"))
        .args(["-p", &m.one.addr.port().to_string(), "-l", &user()])
        .args(["127.0.0.1", "echo", "through-the-master"])
        .stdin(Stdio::null());
        m.env(&mut c);
        c.output().unwrap()
    };
    for _ in 0..3 {
        let out = ssh(&m);
        assert!(out.status.success(), "ssh: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "through-the-master\n");
    }
    assert_eq!(
        m.sim.sim().registry().session_ids().len(),
        started_before,
        "no new SSM session for ssh through the master"
    );
    let j = m.status_json();
    assert!(
        j["upstreams"][0]["bytes_in"].as_u64().unwrap() > 1000,
        "{j}"
    );
    m.stop();
}

/// Time until the first byte (the sshd banner) arrives on `stdio`'s stdout.
fn ttfb(m: &Master, target: &str, port: u16) -> Duration {
    let t0 = Instant::now();
    let mut c = m.cmd(&["stdio", target, "-p", &port.to_string()]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let took = t0.elapsed();
    assert_eq!(b[0], b'S', "sshd banner");
    // SIGTERM, not SIGKILL: stdio then terminates its SSM session.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let _ = child.wait();
    took
}

/// Benchmark (run with `cargo test --test control -- --ignored --nocapture`): `stdio` time to
/// first byte through the master's pooled connection versus a fresh SSM session.
#[test]
#[ignore = "benchmark; prints a table"]
fn bench_stdio_time_to_first_byte_master_vs_fresh_session() {
    let m = Master::new();
    m.start();
    let port = m.one.addr.port();
    let runs = 10;
    let mut rows = Vec::new();
    for (label, target) in [
        ("through the master", "127.0.0.1"),
        ("fresh SSM session", ONE),
    ] {
        let mut v: Vec<Duration> = (0..runs).map(|_| ttfb(&m, target, port)).collect();
        v.sort();
        rows.push((label, v[runs / 2], v[0], v[runs - 1]));
    }
    println!("\nstdio time to first byte (simulator on loopback, {runs} runs)");
    println!(
        "{:<20} {:>10} {:>10} {:>10}",
        "path", "median", "min", "max"
    );
    for (label, med, min, max) in rows {
        println!("{label:<20} {med:>10.1?} {min:>10.1?} {max:>10.1?}");
    }
    m.stop();
}

/// Issue 10: `status` shows the counters that used to stay internal, per upstream and per
/// connection, with values that match the traffic just sent.
#[test]
fn status_reports_sessions_streams_bytes_and_socks_counters_after_traffic() {
    let m = Master::new();
    m.start();
    for _ in 0..3 {
        assert!(http_hello(socks_connect(m.socks(), m.web_one).unwrap()).ends_with("hello"));
    }
    assert_eq!(
        socks_connect(m.socks(), "127.99.0.1:9".parse().unwrap()).err(),
        Some(2)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let j = loop {
        let j = m.status_json();
        if j["upstreams"][0]["open_streams"] == 0 || Instant::now() > deadline {
            break j;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(j["phase"], "running", "{j}");
    assert_eq!(j["socks"]["accepted"], 4, "{j}");
    assert_eq!(j["socks"]["replies"][0], 3, "three connected: {j}");
    assert_eq!(
        j["socks"]["replies"][2], 1,
        "one rejected by the rules: {j}"
    );
    assert!(j["socks"]["bytes_upstream_to_client"].as_u64().unwrap() > 3 * 5);

    let one = &j["upstreams"][0];
    let conn = &one["connections"][0];
    let session = conn["session_id"].as_str().unwrap();
    assert!(
        m.sim
            .sim()
            .registry()
            .session_ids()
            .iter()
            .any(|s| s == session),
        "{session} is a session the simulator started"
    );
    assert_eq!(one["session_ids"][0], session);
    assert_eq!(
        (&one["open_streams"], &one["streams_total"]),
        (&0.into(), &3.into()),
        "{one}"
    );
    assert_eq!(conn["streams_total"], 3);
    assert_eq!(conn["phase"], "up");
    assert!(one["bytes_in"].as_u64().unwrap() > 3 * 5, "{one}");
    assert!(one["bytes_out"].as_u64().unwrap() > 3 * 20, "{one}");
    assert_eq!(conn["bytes_in"], one["bytes_in"]);
    assert!(conn["uptime_secs"].as_u64().unwrap() <= j["uptime_secs"].as_u64().unwrap());
    assert_eq!(
        (&one["reconnects"], &one["resumes"]),
        (&0.into(), &0.into())
    );
    assert!(one["retransmits"].is_u64() && conn["retransmits"].is_u64());
    assert!(one["last_error"].is_null() && one["last_error_at"].is_null());

    let out = m.run(&["status"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("RETRANSMITS") && table.contains("socks: 4 accepted"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("one#0 ")).unwrap();
    assert!(row.contains(session) && row.contains(" 0/3 "), "{row}");
    m.stop();
}

/// `stdio` through the master honours a CIDR `reject` for every spelling of the address: it is
/// refused with the rule named, and no direct SSM session is opened around it.
#[test]
fn stdio_through_the_master_refuses_every_spelling_of_a_rejected_address() {
    let m = Master::new();
    m.rewrite_config(true, "  - match: 127.10.0.2/32\n    via: reject\n");
    m.start();
    let before = m.sim.sim().registry().session_ids().len();
    for spelling in [
        "127.10.0.2",
        "127.10.2",
        "2131361794",
        "0x7f0a0002",
        "0177.012.0.2",
        "0x7f.10.0.2",
        "127.10.0.02",
        "127.10.0.2.",
    ] {
        let out = m.run(&["stdio", spelling, "-p", "80"]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{spelling}: stdio succeeded");
        assert!(
            err.contains("matched routes[") && err.contains("reject"),
            "{spelling}: {err}"
        );
    }
    assert_eq!(
        m.sim.sim().registry().session_ids().len(),
        before,
        "a refused stdio must not open an SSM session"
    );
    m.stop();
}

#[test]
fn reload_changes_a_listeners_connection_cap_for_new_clients() {
    let m = Master::new();
    m.start();
    let held = socks_connect(m.socks(), m.web_one).unwrap();
    let text_now = std::fs::read_to_string(&m.config).unwrap();
    let capped = text_now.replacen(
        "  - socks5: 127.0.0.1:0\n",
        "  - socks5: 127.0.0.1:0\n    max_connections: 1\n",
        1,
    );
    assert_ne!(capped, text_now);
    std::fs::write(&m.config, capped).unwrap();
    let out = m.run(&["reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("max_connections 1024 -> 1")
            && said.contains("applies to new connections")
            && !said.contains("restart"),
        "{said}"
    );
    // The open tunnel keeps its place; a new client is over the cap and hears so at once.
    assert_eq!(socks_connect(m.socks(), m.web_one).err(), Some(1));
    assert!(http_hello(held).ends_with("hello"), "held stream survived");
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match socks_connect(m.socks(), m.web_one) {
            Ok(c) => break c,
            Err(code) => {
                assert_eq!(code, 1);
                assert!(Instant::now() < deadline, "the slot never came back");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(http_hello(again).ends_with("hello"));
    assert!(m.status_json()["socks"]["over_cap"].as_u64().unwrap() >= 1);
    m.stop();
}

#[test]
fn connect_stops_at_a_permanent_error_printing_one_line_per_change() {
    let m = Master::new();
    let bad = "  bad:\n    targets: [i-00000000000000bad]\n    user: u\n    ssh_agent: true\n    lazy: true\nroutes:\n";
    let cfg = std::fs::read_to_string(&m.config)
        .unwrap()
        .replace("routes:\n", bad);
    std::fs::write(&m.config, cfg).unwrap();
    m.start();

    let out = m.run(&["connect", "bad"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("i-00000000000000bad is not registered"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    let mut changes = lines.clone();
    changes.dedup();
    assert_eq!(lines, changes, "the same progress line twice in a row");
    assert!(lines.len() <= 4, "{err}");

    let out = m.run(&["connect", "nosuch"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("configured: bad, one, two"), "{err}");

    // A connect that works reports how long it really took ("after 0.4s").
    let out = m.run(&["connect", "two"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let secs: f64 = said
        .rsplit_once(" after ")
        .and_then(|(_, t)| t.trim().strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {said:?}"));
    assert!((0.0..60.0).contains(&secs), "{said}");

    // stdio through a disconnected upstream says so, and how to bring it back.
    let out = m.run(&["disconnect", "one"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = m.run(&["stdio", "127.10.0.1", "-p", "80"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("upstream one is disconnected") && err.contains("session-proxy connect one"),
        "{err}"
    );
    m.stop();
}
