//! `session-proxy reload` against a running `serve` (issue 12, points 5 and 6): a `pool_size`
//! change resizes the pool in place under real `curl` downloads, listener changes (users, a
//! moved address) apply without a restart, and a change that cannot be applied refuses the
//! reload as a whole, leaving the old config in force as `status` shows.
//!
//! Each test runs its own simulator, `sshd` bastion, HTTP server and `serve --foreground` with a
//! control socket next to its config, so tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::socks::{http_hello, socks_connect};
use common::*;
use session_proxy::sim::SimOptions;

const ONE: &str = "i-0000000000000a001";

struct Fixture {
    _sshd: Sshd,
    sim: SimHandle,
    serve: Serve,
    web: SocketAddr,
    blob: Vec<u8>,
    config: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
}

/// Deterministic bytes, distinct per `seed`.
fn blob(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

/// The config text: `listeners` (YAML list items), one upstream with `pool_size`, `extra` keys.
fn config_text(
    f_key: &Path,
    state: &Path,
    listeners: &str,
    pool_size: usize,
    extra: &str,
) -> String {
    format!(
        "listeners:\n{listeners}upstreams:\n  one:\n    targets: [{ONE}]\n    user: {user}\n    identity_files: [{key}]\n    pool_size: {pool_size}\nroutes:\n  - match: 127.10.0.0/16\n    via: one\ndefault: reject\nstate_dir: {state}\n{extra}",
        user = user(),
        key = f_key.display(),
        state = state.display(),
    )
}

const ONE_LISTENER: &str = "  - socks5: 127.0.0.1:0\n";

fn fixture(listeners: &str, pool_size: usize, blob_mb: usize) -> Fixture {
    let blob = blob(blob_mb * 1024 * 1024, 12);
    let web = http_server(
        "127.10.0.1:0",
        vec![
            ("/blob".into(), blob.clone()),
            ("/hello".into(), b"hello".to_vec()),
        ],
    );
    let sshd = Sshd::start_with(&format!("PermitOpen {web}"));
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ONE, sshd.addr)],
        ..SimOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let key = sshd.client_key.clone();
    let text = config_text(&key, &dir.path().join("state"), listeners, pool_size, "");
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&sim, &config);
    Fixture {
        _sshd: sshd,
        sim,
        serve,
        web,
        blob,
        config,
        key,
        dir,
    }
}

impl Fixture {
    fn rewrite(&self, listeners: &str, pool_size: usize, extra: &str) {
        let state = self.dir.path().join("state");
        let text = config_text(&self.key, &state, listeners, pool_size, extra);
        std::fs::write(&self.config, text).unwrap();
    }

    fn ctl(&self, cmd: &str) -> Output {
        Command::new(BIN)
            .args([cmd, "--control-socket"])
            .arg(self.config.with_file_name("control.sock"))
            .output()
            .unwrap()
    }

    /// `reload`; returns (success, stdout, stderr).
    fn reload(&self) -> (bool, String, String) {
        let out = self.ctl("reload");
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    fn status(&self) -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["status", "--json", "--control-socket"])
            .arg(self.config.with_file_name("control.sock"))
            .output()
            .unwrap();
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn pool(&self) -> serde_json::Value {
        self.status()["upstreams"][0].clone()
    }

    fn listeners(&self) -> Vec<String> {
        self.status()["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// `curl` of the blob through `socks` at `rate` into `name`, in the background.
    fn download(&self, socks: SocketAddr, rate: &str, name: &str) -> (Child, PathBuf) {
        let out = self.dir.path().join(name);
        let child = Command::new("curl")
            .args(["-s", "-S", "--max-time", "300", "--limit-rate", rate])
            .arg("--socks5-hostname")
            .arg(socks.to_string())
            .arg("-o")
            .arg(&out)
            .arg(format!("http://{}/blob", self.web))
            .spawn()
            .unwrap();
        (child, out)
    }

    fn hello(&self) -> String {
        format!("http://{}/hello", self.web)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Polls `check` until true; the deadline is only a hang guard.
fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The slot numbers of the pool's connections that carry a stream right now.
fn busy_slots(pool: &serde_json::Value) -> Vec<u64> {
    pool["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["open_streams"].as_u64().unwrap() > 0)
        .map(|c| c["slot"].as_u64().unwrap())
        .collect()
}

fn session_of(pool: &serde_json::Value, slot: u64) -> serde_json::Value {
    pool["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slot"] == slot)
        .map(|c| c["session_id"].clone())
        .unwrap_or_default()
}

/// Point 5: a reload that grows the pool and one that shrinks it again, each under `curl`
/// downloads in flight, cut nothing: both downloads finish byte-exact, the connection that
/// stays keeps its SSM session, the surplus one drains its download before it closes, and the
/// pool's counters run on across both reloads.
#[test]
fn downloads_in_flight_survive_reloads_that_grow_and_shrink_the_pool_with_counters_kept() {
    let f = fixture(ONE_LISTENER, 1, 24);
    let socks = f.serve.socks;
    let (mut first, first_out) = f.download(socks, "3M", "first");
    wait_until(
        "the first download started",
        Duration::from_secs(60),
        || size(&first_out) > 1024 * 1024,
    );
    let before = f.pool();
    let kept_session = session_of(&before, 0);
    assert!(kept_session.is_string(), "{before}");

    f.rewrite(ONE_LISTENER, 3, "");
    let (ok, out, err) = f.reload();
    assert!(ok, "grow: {err}");
    assert!(out.contains("pool_size 1 -> 3"), "{out}");
    wait_until("three connections up", Duration::from_secs(120), || {
        f.pool()["connections_up"] == 3
    });
    let (mut second, second_out) = f.download(socks, "3M", "second");
    wait_until(
        "the second download started",
        Duration::from_secs(60),
        || size(&second_out) > 1024 * 1024,
    );
    let grown = f.pool();
    let surplus: Vec<u64> = busy_slots(&grown).into_iter().filter(|s| *s > 0).collect();
    assert_eq!(
        surplus.len(),
        1,
        "the second download took a new connection: {grown}"
    );

    f.rewrite(ONE_LISTENER, 1, "");
    let (ok, out, err) = f.reload();
    assert!(ok, "shrink: {err}");
    assert!(out.contains("pool_size 3 -> 1"), "{out}");
    let shrunk = f.pool();
    assert!(
        size(&second_out) < f.blob.len() as u64,
        "the second download was still in flight when the pool shrank"
    );
    let draining = shrunk["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["slot"] == surplus[0])
        .cloned()
        .unwrap_or_default();
    assert_eq!(draining["phase"], "draining", "{shrunk}");

    assert!(
        first.wait().unwrap().success(),
        "the first download was cut"
    );
    assert!(
        second.wait().unwrap().success(),
        "the second download was cut"
    );
    assert!(
        std::fs::read(&first_out).unwrap() == f.blob,
        "first download corrupted"
    );
    assert!(
        std::fs::read(&second_out).unwrap() == f.blob,
        "second download corrupted"
    );
    wait_until(
        "the surplus connections closed",
        Duration::from_secs(60),
        || f.pool()["connections_total"] == 1 && f.sim.sim().open_sessions() == 1,
    );
    let after = f.pool();
    assert_eq!(
        session_of(&after, 0),
        kept_session,
        "slot 0 kept its session: {after}"
    );
    assert!(after["streams_total"].as_u64().unwrap() >= 2, "{after}");
    assert!(
        after["bytes_in"].as_u64().unwrap() >= 2 * f.blob.len() as u64,
        "byte counters ran on across both reloads: {after}"
    );
    assert!(f.serve.stop().success());
}

const ALICE: &str = "    users:\n      - username: alice\n        password: wonderland\n";

/// Point 6: users added by a reload apply to the next client at once (no-auth is refused,
/// alice gets through) on the same socket, and a tunnel opened before the reload stays up.
#[test]
fn a_reload_that_adds_users_refuses_unauthenticated_clients_at_once() {
    let f = fixture(ONE_LISTENER, 1, 0);
    let socks = f.serve.socks;
    let (rc, body, err) = curl(socks, &f.hello(), &[]);
    assert_eq!((rc, body.as_slice()), (0, &b"hello"[..]), "{err}");
    let held = socks_connect(socks, f.web).unwrap();

    f.rewrite(&format!("{ONE_LISTENER}{ALICE}"), 1, "");
    let (ok, out, err) = f.reload();
    assert!(ok, "{err}");
    assert!(
        out.contains("users changed") && !out.contains("restart"),
        "{out}"
    );
    assert_eq!(f.listeners(), [format!("socks5://{socks}")]);

    let (rc, _, _) = curl(socks, &f.hello(), &[]);
    assert_ne!(
        rc, 0,
        "an unauthenticated client got through after users were added"
    );
    assert_eq!(socks_connect(socks, f.web).err(), Some(0xFF));
    let (rc, body, err) = curl(socks, &f.hello(), &["--proxy-user", "alice:wonderland"]);
    assert_eq!((rc, body.as_slice()), (0, &b"hello"[..]), "alice: {err}");
    let (rc, _, _) = curl(socks, &f.hello(), &["--proxy-user", "alice:wrong"]);
    assert_ne!(rc, 0, "a wrong password got through");
    assert!(
        http_hello(held).ends_with("hello"),
        "the tunnel opened before the reload"
    );
    assert!(f.serve.stop().success());
}

/// Point 6: a listener whose address changes is bound anew and the old socket closed, while the
/// unchanged listener keeps its socket and the tunnels open on both go on.
#[test]
fn a_reload_that_moves_a_listener_binds_the_new_closes_the_old_and_keeps_the_rest() {
    let sockets = tempfile::tempdir().unwrap();
    let unix = |name: &str| sockets.path().join(name);
    let three = |tcp: &str, sock: &str| {
        format!(
            "{ONE_LISTENER}  - socks5: {tcp}\n  - socks5_unix: {}\n",
            unix(sock).display()
        )
    };
    let f = fixture(&three("127.0.0.2:0", "a.sock"), 1, 0);
    let (kept, moved) = (f.serve.listeners[0], f.serve.listeners[1]);
    let on_kept = socks_connect(kept, f.web).unwrap();
    let on_moved = socks_connect(moved, f.web).unwrap();
    assert!(unix("a.sock").exists());

    f.rewrite(&three("127.0.0.3:0", "b.sock"), 1, "");
    let (ok, out, err) = f.reload();
    assert!(ok, "{err}");
    assert!(
        out.contains("listener socks5 127.0.0.3:0 added")
            && out.contains("listener socks5 127.0.0.2:0 removed"),
        "{out}"
    );
    let now = f.listeners();
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[2], format!("unix:{}", unix("b.sock").display()));
    assert!(std::os::unix::net::UnixStream::connect(unix("b.sock")).is_ok());
    assert!(
        !unix("a.sock").exists(),
        "the old Unix socket file is left behind"
    );
    assert_eq!(
        now[0],
        format!("socks5://{kept}"),
        "the unchanged listener kept its socket"
    );
    let new = socks_addrs(&now[1]);
    assert_eq!(new.len(), 1, "{now:?}");
    assert_eq!(new[0].ip().to_string(), "127.0.0.3");
    assert!(
        out.contains(&format!("listening on socks5://{}", new[0])),
        "{out}"
    );
    wait_until("the old socket closed", Duration::from_secs(10), || {
        TcpStream::connect(moved).is_err()
    });
    let (rc, body, err) = curl(new[0], &f.hello(), &[]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"hello"[..]),
        "new listener: {err}"
    );
    let (rc, body, err) = curl(kept, &f.hello(), &[]);
    assert_eq!(
        (rc, body.as_slice()),
        (0, &b"hello"[..]),
        "kept listener: {err}"
    );
    assert!(
        http_hello(on_kept).ends_with("hello"),
        "tunnel on the kept listener"
    );
    assert!(
        http_hello(on_moved).ends_with("hello"),
        "tunnel on the closed listener"
    );
    assert!(f.serve.stop().success());
}

/// Point 6: a reload whose changes cannot all be applied (a key only a restart applies, a new
/// listener on a busy port) exits non-zero naming the change, and none of the others (a new
/// pool size, a new listener, new users) takes effect: `status` shows the old config.
#[test]
fn a_reload_it_cannot_apply_exits_non_zero_names_the_change_and_keeps_the_old_config() {
    let f = fixture(ONE_LISTENER, 1, 0);
    let socks = f.serve.socks;
    let old_listeners = f.listeners();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap();
    let cases = [
        (
            format!("{ONE_LISTENER}{ALICE}  - socks5: 127.0.0.5:0\n"),
            f.dir.path().join("elsewhere"),
            "",
            "state_dir changed",
        ),
        (
            format!("{ONE_LISTENER}{ALICE}  - socks5: {busy_addr}\n"),
            f.dir.path().join("state"),
            "",
            "cannot listen on 127.0.0.1",
        ),
    ];
    for (listeners, state, upstream, names) in &cases {
        let text = config_text(&f.key, state, listeners, 3, "").replacen(
            "upstreams:\n",
            &format!("upstreams:\n{upstream}"),
            1,
        );
        std::fs::write(&f.config, text).unwrap();
        let (ok, out, err) = f.reload();
        assert!(!ok, "{names}: reload succeeded: {out}");
        assert!(
            err.contains("reload refused") && err.contains(names),
            "{err}"
        );
        assert!(err.lines().count() <= 3, "{err}");
        let os_errors = err.matches("os error").count();
        assert!(os_errors <= 1, "the OS error is named once: {err}");
        assert_eq!(f.listeners(), old_listeners, "{names}: listeners");
        let pool = f.pool();
        assert_eq!(pool["connections_total"], 1, "{names}: pool size: {pool}");
        let (rc, body, e) = curl(socks, &f.hello(), &[]);
        assert_eq!(
            (rc, body.as_slice()),
            (0, &b"hello"[..]),
            "{names}: still no auth: {e}"
        );
    }
    drop(busy);
    assert!(f.serve.stop().success());
}
