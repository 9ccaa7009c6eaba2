//! Shared harness for end-to-end tests: the one sshd harness ([`sshd`]), the in-process
//! simulator, `serve` children that report their bound port, and helpers to run the real
//! `ssh` through `session-proxy stdio`. No port is picked by bind-then-drop: every listener is
//! bound on port 0 and kept, or its owner reports the port it got.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod echo;
pub mod socks;
pub mod sshd;
pub mod tinyproxy;

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_proxy::sim::instances::Instance;
use session_proxy::sim::signed_upgrade::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use session_proxy::sim::{Sim, SimOptions};
pub use sshd::{user, Sshd};

pub const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");

/// A loopback port that refuses connections for as long as the returned socket lives: bound
/// but never listening, so nothing else can take the port meanwhile.
pub fn refusing_port() -> (OwnedFd, u16) {
    // SAFETY: plain socket calls on a fresh descriptor that the OwnedFd then owns; the address
    // structs are fully initialised and passed with their real sizes.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, (&raw const sa).cast(), len);
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        let rc = libc::getsockname(fd, (&raw mut got).cast(), &mut got_len);
        assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
        (owned, u16::from_be(got.sin_port))
    }
}

pub fn wait_for_port(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{addr} did not start listening within {within:?}");
}

pub fn instance(id: &str, addr: SocketAddr) -> Instance {
    session_proxy::sim::instances::parse_target_flag(&format!("{id}={addr}")).unwrap()
}

/// A simulator on its own runtime thread, so blocking tests can drive processes.
pub struct SimHandle {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<Sim>,
    pub endpoint: String,
}

impl SimHandle {
    pub fn start(opts: SimOptions) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            Sim::start(l, opts).unwrap()
        });
        let endpoint = sim.endpoint_url();
        Self {
            rt,
            sim: Some(sim),
            endpoint,
        }
    }

    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().unwrap()
    }

    /// Environment that points AWS tools at the simulator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_ACCESS_KEY.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ]
    }

    /// Waits until the simulator reports no open sessions (bounded).
    pub fn wait_no_open_sessions(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let n = self.sim().open_sessions();
            if n == 0 || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Options shared by `ssh`, `scp` and `sftp`: throwaway key and known_hosts, no user config,
/// `session-proxy stdio` as ProxyCommand, and the simulator's AWS environment.
pub fn via_proxy(c: &mut Command, sim: &SimHandle, sshd: &Sshd, extra_proxy_args: &str) {
    c.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "HostKeyAlias=sim-target",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", sshd.known_hosts.display()))
    .arg("-i")
    .arg(&sshd.client_key)
    .arg("-o")
    .arg(format!(
        "ProxyCommand={BIN} stdio %h -p %p {extra_proxy_args}"
    ));
    for (k, v) in sim.env() {
        c.env(k, v);
    }
}

/// `ssh` configured to go through `session-proxy stdio` to `target`.
pub fn ssh_cmd(sim: &SimHandle, sshd: &Sshd, target: &str, extra_proxy_args: &str) -> Command {
    let mut c = Command::new("ssh");
    via_proxy(&mut c, sim, sshd, extra_proxy_args);
    c.arg("-l").arg(user()).arg(target);
    c
}

pub fn sha256_file(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

pub fn random_file(dir: &Path, name: &str, mb: usize) -> PathBuf {
    let p = dir.join(name);
    let st = Command::new("head")
        .arg("-c")
        .arg((mb * 1024 * 1024).to_string())
        .arg("/dev/urandom")
        .stdout(std::fs::File::create(&p).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    p
}

/// A tiny HTTP/1.0 file server on `addr` (blocking threads), serving `files` by path.
pub fn http_server(addr: &str, files: Vec<(String, Vec<u8>)>) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind(addr).expect("bind http server");
    let local = l.local_addr().unwrap();
    let files = std::sync::Arc::new(files);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut r = BufReader::new(s.try_clone().unwrap());
                if r.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = files
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, b)| b.clone());
                let _ = match body {
                    Some(b) => s
                        .write_all(
                            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", b.len())
                                .as_bytes(),
                        )
                        .and_then(|()| s.write_all(&b)),
                    None => s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
                };
            });
        }
    });
    local
}

/// A running `session-proxy serve --foreground` child; killed (SIGTERM) on drop.
pub struct Serve {
    pub child: Child,
    /// The first SOCKS listener.
    pub socks: SocketAddr,
    /// Every TCP SOCKS listener, in config order.
    pub listeners: Vec<SocketAddr>,
}

impl Serve {
    /// Starts `serve` on `config` (whose first listener may use port 0) and waits for its
    /// `--ready-file`, which names the address it bound.
    pub fn start(sim: &SimHandle, config: &Path) -> Self {
        Self::start_with_env(sim, config, &[])
    }

    /// [`Serve::start`] with `extra` environment variables on top of the simulator's.
    pub fn start_with_env(sim: &SimHandle, config: &Path, extra: &[(&str, &str)]) -> Self {
        Self::launch(sim, config, extra, false)
    }

    /// [`Serve::start_with_env`] with stderr in `serve.log` beside the config, for tests that
    /// read the log.
    pub fn start_logged(sim: &SimHandle, config: &Path, extra: &[(&str, &str)]) -> Self {
        Self::launch(sim, config, extra, true)
    }

    fn launch(sim: &SimHandle, config: &Path, extra: &[(&str, &str)], log: bool) -> Self {
        let mut c = Command::new(BIN);
        // A control socket per test, next to its config, so tests run in parallel.
        let control = config.with_file_name("control.sock");
        let ready = config.with_file_name("serve.ready");
        c.args(["serve", "--foreground", "--config"])
            .arg(config)
            .arg("--control-socket")
            .arg(control)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null());
        for (k, v) in sim.env() {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        if log {
            let log = std::fs::File::create(config.with_file_name("serve.log")).unwrap();
            c.stderr(log);
        }
        let mut child = c.spawn().expect("start serve");
        let listeners = match wait_ready_file(&ready, &mut child, Duration::from_secs(60)) {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{e}");
            }
        };
        Self {
            child,
            socks: listeners[0],
            listeners,
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let st = self.child.wait().unwrap();
        std::mem::forget(self);
        st
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) for `serve --ready-file` at `path` and returns the SOCKS addresses in it
/// (at least one); fails early if `child` exits first.
pub fn wait_ready_file(
    path: &Path,
    child: &mut Child,
    within: Duration,
) -> Result<Vec<SocketAddr>, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let addrs = socks_addrs(&text);
            if addrs.is_empty() {
                return Err(format!("no socks5:// address in the ready file: {text:?}"));
            }
            return Ok(addrs);
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("serve exited ({st}) before it was ready"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "serve did not write {} within {within:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `socks5://IP:PORT` entries of a ready file (or of `status` listeners) as addresses.
pub fn socks_addrs(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("socks5://"))
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// `curl --socks5-hostname` through `socks`; returns (exit code, body, stderr).
pub fn curl(socks: SocketAddr, url: &str, extra: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "60", "--socks5-hostname"])
        .arg(socks.to_string())
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An SSM API client for the simulator at `endpoint` (the simulator takes any key).
pub async fn sim_api(endpoint: Option<String>) -> session_proxy::ssm::api::SsmApi {
    session_proxy::ssm::api::SsmApi::new(&sim_settings(endpoint)).await
}

/// AWS settings for the simulator at `endpoint` (the simulator takes any key).
pub fn sim_settings(endpoint: Option<String>) -> session_proxy::ssm::api::AwsSettings {
    use session_proxy::ssm::api::{AwsSettings, InlineCredentials};
    AwsSettings {
        profile: None,
        region: Some("us-east-1".into()),
        credentials: Some(InlineCredentials {
            access_key_id: "AKIASIMULATOR0000000".into(),
            secret_access_key: session_proxy::redact::Redacted::new("x".into()),
            session_token: None,
        }),
        endpoint_url: endpoint,
        ..Default::default()
    }
}

/// Runs the botocore `script` (`python3 -c script args...`) with `env` and returns its
/// stdout; fails the test with both streams when the script fails. botocore is the reference
/// parser the simulator's answers are checked against (`.ci/run` installs it).
pub fn botocore(script: &str, args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("python3 (with botocore: pip install boto3) is needed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "botocore failed:\n{stdout}\n{stderr}");
    stdout
}
