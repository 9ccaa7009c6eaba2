//! Forwards run by `serve` (issue 13, point 3): the real binary as the master, the simulator as
//! AWS, loopback echo and HTTP servers behind the simulated instance, `curl` and plain sockets
//! as clients. Each test runs its own simulator and `serve --foreground` with a control socket
//! next to its config, so tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

struct Fixture {
    sim: SimHandle,
    serve: Serve,
    echo: SocketAddr,
    web: SocketAddr,
    blob: Vec<u8>,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A master whose config has `forwards` (YAML list items, `ECHO`/`WEB`/`DIR` filled in).
    fn start(forwards: &str) -> Self {
        let sim = SimHandle::start(SimOptions {
            instances: vec![instance(ID, "127.0.0.1:22".parse().unwrap())],
            ..SimOptions::default()
        });
        let echo = sim.rt.block_on(echo::echo_server()).0;
        let blob = echo::payload(3 << 20, 77);
        let web = http_server("127.0.0.1:0", vec![("/blob".into(), blob.clone())]);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        write_config(&config, dir.path(), echo, web, forwards);
        let serve = Serve::start(&sim, &config);
        Self {
            sim,
            serve,
            echo,
            web,
            blob,
            config,
            dir,
        }
    }

    /// Rewrites the config with `forwards` (for `reload`).
    fn write_config(&self, forwards: &str) {
        write_config(&self.config, self.dir.path(), self.echo, self.web, forwards);
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--control-socket")
            .arg(self.config.with_file_name("control.sock"))
            .output()
            .unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["status", "--json"]);
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The status row of the forward called `name`.
    fn forward(&self, name: &str) -> serde_json::Value {
        let s = self.status();
        let rows = s["forwards"].as_array().unwrap().clone();
        rows.into_iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no forward {name} in {s:#}"))
    }

    /// The bound TCP address of forward `name`.
    fn addr(&self, name: &str) -> SocketAddr {
        self.forward(name)["listen"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn sock(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A config with one SOCKS listener on port 0 and `forwards` (YAML list items, with `ECHO`,
/// `WEB`, `DIR` and `VIA` filled in).
fn write_config(config: &Path, dir: &Path, echo: SocketAddr, web: SocketAddr, forwards: &str) {
    let forwards = forwards
        .replace("ECHO", &echo.to_string())
        .replace("WEB", &web.to_string())
        .replace("DIR", &dir.display().to_string())
        .replace("VIA", ID);
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\ndefault: reject\nstate_dir: {}\nforwards:\n{forwards}",
        dir.join("state").display()
    );
    std::fs::write(config, text).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `curl --unix-socket` GET of `/blob` through the forward on `sock`.
fn curl_unix(sock: &Path) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "120", "--unix-socket"])
        .arg(sock)
        .arg("http://web/blob")
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", text(&out.stderr));
    out.stdout
}

/// Waits (bounded) until `f` holds.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TWO: &str = "  - { listen: 127.0.0.1:0, to: ECHO, via: VIA }\n  - { listen: DIR/web.sock, to: WEB, via: VIA, sessions: 2 }\n";

#[test]
fn serve_carries_tcp_and_unix_forwards_byte_exact_and_status_counts_them() {
    let f = Fixture::start(TWO);
    let tcp = "127.0.0.1:0";
    let unix = format!("unix:{}", f.sock("web.sock").display());
    echo::echo_check(f.addr(tcp), 1 << 20, 1);
    assert!(
        curl_unix(&f.sock("web.sock")) == f.blob,
        "the blob arrives intact"
    );
    let (t, u) = (f.forward(tcp), f.forward(&unix));
    assert_eq!(t["state"], "up", "{t:#}");
    assert_eq!(
        (
            t["connections_total"].as_u64(),
            t["open_connections"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert!(t["bytes_in"].as_u64().unwrap() >= 1 << 20, "{t:#}");
    assert!(t["bytes_out"].as_u64().unwrap() >= 1 << 20, "{t:#}");
    assert_eq!(u["sessions_total"], 2, "{u:#}");
    assert!(u["bytes_in"].as_u64().unwrap() >= 3 << 20, "{u:#}");
    assert_eq!(u["to"], f.web.to_string());
    // The table shows them too.
    let table = text(&f.ctl(&["status"]).stdout);
    assert!(
        table.contains("FORWARD") && table.contains(&unix),
        "{table}"
    );

    // disconnect closes the listener; connect starts it again.
    let before = f.addr(tcp);
    let out = f.ctl(&["disconnect", tcp]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        TcpStream::connect(before).is_err(),
        "refused once disconnected"
    );
    assert_eq!(f.forward(tcp)["state"], "stopped");
    let out = f.ctl(&["connect", tcp]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    echo::echo_check(f.addr(tcp), 256 << 10, 2);

    let sim = &f.sim;
    assert!(sim.sim().open_sessions() > 0);
    assert!(f.serve.stop().success());
    assert_eq!(
        sim.wait_no_open_sessions(Duration::from_secs(30)),
        0,
        "stop terminated every forward session"
    );
}

#[test]
fn reload_adds_and_removes_forwards_while_a_transfer_on_a_kept_one_goes_on() {
    let f = Fixture::start(TWO);
    let tcp = "127.0.0.1:0";
    let kept = f.addr(tcp);
    // A transfer in flight on the kept forward: half written before the reload, half after.
    let data = echo::payload(2 << 20, 5);
    let mut s = TcpStream::connect(kept).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut w = s.try_clone().unwrap();
    let (half_tx, half_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        let (a, b) = sent.split_at(sent.len() / 2);
        w.write_all(a).unwrap();
        half_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        w.write_all(b).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let reader = std::thread::spawn(move || {
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        back
    });
    half_rx.recv().unwrap();
    wait_until("the first half to be echoed", || {
        f.forward(tcp)["bytes_in"].as_u64().unwrap() >= 1 << 20
    });

    // Keep the TCP forward, drop the Unix one, add another TCP one on another address.
    f.write_config(
        "  - { listen: 127.0.0.1:0, to: ECHO, via: VIA }\n  - { listen: 127.0.0.2:0, to: ECHO, via: VIA }\n",
    );
    let out = f.ctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("forward 127.0.0.2:0 added"), "{said}");
    assert!(said.contains("web.sock removed"), "{said}");
    assert!(
        !f.sock("web.sock").exists(),
        "the removed forward's socket is gone"
    );

    go_tx.send(()).unwrap();
    writer.join().unwrap();
    let back = reader.join().unwrap();
    assert!(
        back == data,
        "{} of {} bytes came back intact across the reload",
        back.len(),
        data.len()
    );
    assert_eq!(f.addr(tcp), kept, "the kept forward was not restarted");
    echo::echo_check(f.addr("127.0.0.2:0"), 256 << 10, 6);
    let rows = f.status()["forwards"].as_array().unwrap().len();
    assert_eq!(rows, 2);

    let sim = &f.sim;
    assert!(f.serve.stop().success());
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(30)), 0);
}

#[test]
fn a_forward_via_an_upstream_rides_its_ssh_pool_with_no_session_of_its_own() {
    let sim0 = SimHandle::start(SimOptions::default());
    let echo = sim0.rt.block_on(echo::echo_server()).0;
    let sshd = Sshd::start_with(&format!("PermitOpen {echo}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\nupstreams:\n  one:\n    targets: [{ID}]\n    user: {user}\n    identity_files: [{key}]\n    pool_size: 1\ndefault: reject\nstate_dir: {state}\nforwards:\n  - {{ listen: 127.0.0.1:0, to: {echo}, via: one }}\n",
        user = user(),
        key = sshd.client_key.display(),
        state = dir.path().join("state").display(),
    );
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&sim, &config);
    let status = || {
        let out = Command::new(BIN)
            .args(["status", "--json", "--control-socket"])
            .arg(config.with_file_name("control.sock"))
            .output()
            .unwrap();
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        s["forwards"][0].clone()
    };
    let row = status();
    assert_eq!(row["via"], "upstream one", "{row:#}");
    let addr: SocketAddr = row["listen"].as_str().unwrap().parse().unwrap();
    echo::echo_check(addr, 1 << 20, 11);
    echo::echo_check(addr, 1 << 20, 12);
    assert_eq!(
        sim.sim().registry().session_ids().len(),
        1,
        "only the pool's SSM session: the forward has none of its own"
    );
    let row = status();
    assert_eq!(row["state"], "up", "{row:#}");
    assert_eq!(row["connections_total"], 2, "{row:#}");
    assert_eq!(row["sessions_total"], 0, "{row:#}");
    assert!(serve.stop().success());
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(30)), 0);
}

#[test]
fn a_forward_address_in_use_is_a_start_error_naming_the_forward() {
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, "127.0.0.1:22".parse().unwrap())],
        ..SimOptions::default()
    });
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\ndefault: reject\nstate_dir: {}\nforwards:\n  - {{ listen: {busy}, to: 127.0.0.1:9, via: {ID} }}\n",
        dir.path().join("state").display()
    );
    std::fs::write(&config, yaml).unwrap();
    let mut c = Command::new(BIN);
    c.args(["serve", "--foreground", "--config"])
        .arg(&config)
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"));
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert!(
        err.contains(&format!("cannot start forward {busy}")),
        "the error names the forward: {err}"
    );
    assert_eq!(sim.sim().open_sessions(), 0);
}

#[test]
fn reload_restarts_a_changed_forward_on_its_address_and_refuses_a_busy_new_one() {
    let f = Fixture::start("  - { listen: 127.0.0.1:0, to: WEB, via: VIA }\n");
    let tcp = "127.0.0.1:0";
    let before = f.addr(tcp);
    // Changed destination: the same socket now reaches the echo server.
    f.write_config("  - { listen: 127.0.0.1:0, to: ECHO, via: VIA }\n");
    let out = f.ctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("forward 127.0.0.1:0 changed"));
    assert_eq!(f.addr(tcp), before, "restarted on the socket it had");
    echo::echo_check(before, 64 << 10, 3);
    assert_eq!(f.forward(tcp)["to"], f.echo.to_string());
    // A new forward on a busy address refuses the whole reload.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    f.write_config(&format!(
        "  - {{ listen: 127.0.0.1:0, to: WEB, via: VIA }}\n  - {{ listen: {busy}, to: ECHO, via: VIA }}\n"
    ));
    let out = f.ctl(&["reload"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("reload refused") && err.contains(&busy.to_string()),
        "{err}"
    );
    assert_eq!(f.forward(tcp)["to"], f.echo.to_string(), "nothing changed");
    assert_eq!(f.status()["forwards"].as_array().unwrap().len(), 1);
    echo::echo_check(before, 64 << 10, 4);
}
