//! Which filter `serve` logs with: `-v`/`-q` > `SESSION_PROXY_LOG` > the config's `log_level` >
//! `warn`, and `reload` applies a changed `log_level` to the running master. Real `serve`
//! children (no upstreams, `default: direct`) whose stderr goes to a file; a SOCKS CONNECT to a
//! loopback listener makes them log at debug level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_ready_file, BIN};

struct Master {
    child: Child,
    socks: SocketAddr,
    log: PathBuf,
    control: PathBuf,
    /// What the SOCKS CONNECTs go to.
    target: TcpListener,
}

fn write_config(dir: &Path, log_level: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        "listeners:\n  - socks5: 127.0.0.1:0\ndefault: direct\nstate_dir: {}\nlog_level: {log_level}\n",
        dir.join("state").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl Master {
    /// `serve --foreground` on the config in `dir`, with `flags`, and `env` as
    /// `SESSION_PROXY_LOG` (unset when `None`).
    fn start(dir: &Path, flags: &[&str], env: Option<&str>) -> Self {
        let log = dir.join("serve.stderr");
        let control = dir.join("control.sock");
        let ready = dir.join("serve.ready");
        let _ = std::fs::remove_file(&ready);
        let mut c = Command::new(BIN);
        c.args(["serve", "--foreground", "--config"])
            .arg(dir.join("config.yaml"))
            .arg("--control-socket")
            .arg(&control)
            .arg("--ready-file")
            .arg(&ready)
            .args(flags)
            .env_remove("SESSION_PROXY_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(v) = env {
            c.env("SESSION_PROXY_LOG", v);
        }
        let mut child = c.spawn().unwrap();
        let socks = wait_ready_file(&ready, &mut child, Duration::from_secs(60)).unwrap()[0];
        Self {
            child,
            socks,
            log,
            control,
            target: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A SOCKS5 CONNECT to the loopback target, answered with success, then closed.
    fn connect(&self) {
        let port = self.target.local_addr().unwrap().port();
        let mut s = TcpStream::connect(self.socks).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&[5, 1, 0]).unwrap();
        let mut method = [0u8; 2];
        s.read_exact(&mut method).unwrap();
        let [hi, lo] = port.to_be_bytes();
        s.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, hi, lo]).unwrap();
        let mut reply = [0u8; 10];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[1], 0, "CONNECT refused");
        let _ = self.target.accept().unwrap();
    }

    /// `session-proxy reload`; returns what it printed.
    fn reload(&self) -> String {
        let out = Command::new(BIN)
            .arg("reload")
            .arg("--control-socket")
            .arg(&self.control)
            .env_remove("SESSION_PROXY_LOG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "reload failed: {text}");
        text
    }

    /// Waits (bounded) until the log contains `what` after byte `from`.
    fn wait_for(&self, what: &str, from: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().get(from..).is_some_and(|l| l.contains(what)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGTERM, wait; returns the whole log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn config_log_level_sets_the_filter_and_reload_changes_it_live() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "debug");
    let m = Master::start(dir.path(), &[], None);
    m.connect();
    assert!(
        m.wait_for("DEBUG", 0),
        "log_level: debug logged no debug line:\n{}",
        m.log()
    );
    write_config(dir.path(), "warn");
    let said = m.reload();
    assert!(said.contains("log level"), "reload said: {said}");
    let mark = m.log().len();
    m.connect();
    // Back at debug, the same CONNECT shows: the live filter follows the file both ways.
    write_config(dir.path(), "debug");
    m.reload();
    let quiet_until = m.log().len();
    m.connect();
    assert!(m.wait_for("DEBUG", quiet_until), "{}", m.log());
    let log = m.stop();
    let after_warn = log.get(mark..quiet_until).unwrap_or_default();
    assert!(
        !after_warn.contains("DEBUG"),
        "debug lines after reloading log_level: warn:\n{after_warn}"
    );
}

#[test]
fn flags_beat_the_environment_which_beats_log_level() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "debug");
    // -q: errors only, whatever the config says; a reload says the flag keeps precedence.
    let m = Master::start(dir.path(), &["-q"], None);
    m.connect();
    write_config(dir.path(), "trace");
    let said = m.reload();
    assert!(said.contains("-v/-q"), "reload said: {said}");
    m.connect();
    let log = m.stop();
    assert!(!log.contains("DEBUG") && !log.contains("INFO"), "{log}");

    // SESSION_PROXY_LOG over log_level.
    write_config(dir.path(), "debug");
    let m = Master::start(dir.path(), &[], Some("warn"));
    m.connect();
    let log = m.stop();
    assert!(!log.contains("DEBUG") && !log.contains("INFO"), "{log}");

    // -vv over SESSION_PROXY_LOG.
    let m = Master::start(dir.path(), &["-vv"], Some("error"));
    m.connect();
    assert!(
        m.wait_for("DEBUG", 0),
        "-vv lost to the environment:\n{}",
        m.log()
    );
}

/// `serve` with no filter anywhere logs at `session_proxy=info,warn`: each SOCKS connection's
/// line shows, debug lines do not; `log_level: warn` (here through `reload`) silences it.
#[test]
fn serve_logs_its_connection_lines_by_default_and_log_level_warn_silences_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "listeners:\n  - socks5: 127.0.0.1:0\ndefault: direct\nstate_dir: {}\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let m = Master::start(dir.path(), &[], None);
    m.connect();
    assert!(
        m.wait_for("socks: connection closed", 0),
        "no connection line at the default level:\n{}",
        m.log()
    );
    write_config(dir.path(), "warn");
    m.reload();
    let mark = m.log().len();
    m.connect();
    let log = m.stop();
    assert!(!log.contains("DEBUG"), "{log}");
    let after = log.get(mark..).unwrap_or_default();
    assert!(
        !after.contains("connection closed"),
        "log_level: warn still logs connections:\n{after}"
    );
}
