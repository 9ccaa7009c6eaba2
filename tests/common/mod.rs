//! Shared harness for end-to-end tests: a real OpenSSH `sshd` on loopback with throwaway keys,
//! the in-process simulator, and helpers to run the real `ssh` through `session-proxy stdio`.
//! Readiness is polled against a deadline; ports come from binding 127.0.0.1:0.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_proxy::sim::instances::Instance;
use session_proxy::sim::{Sim, SimOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A real sshd on 127.0.0.1 with a throwaway host key and one authorized client key.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    child: Child,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// With extra sshd_config lines (e.g. `PermitOpen 127.10.0.1:*`).
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let cfg = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nAllowTcpForwarding yes\nSubsystem sftp internal-sftp\nLogLevel ERROR\n{extra}\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), cfg).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start /usr/sbin/sshd (apt-get install openssh-server)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_for_port(addr, Duration::from_secs(10));
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let known_hosts = d.join("known_hosts");
        Self {
            client_key: d.join("client_key"),
            known_hosts,
            addr,
            dir,
            child,
        }
        .with_known(&host_pub)
    }

    fn with_known(self, host_pub: &str) -> Self {
        let mut parts = host_pub.split_whitespace();
        let (t, k) = (parts.next().unwrap(), parts.next().unwrap());
        // ssh checks the key under the name given on its command line (HostKeyAlias below).
        std::fs::write(&self.known_hosts, format!("sim-target {t} {k}\n")).unwrap();
        self
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_owned()
        })
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
            ("AWS_ACCESS_KEY_ID".into(), "AKIASIMULATOR0000000".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "simulator-secret".into()),
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
    pub socks: SocketAddr,
}

impl Serve {
    pub fn start(sim: &SimHandle, config: &Path, socks: SocketAddr) -> Self {
        let mut c = Command::new(BIN);
        // A control socket per test, next to its config, so tests run in parallel.
        let control = config.with_file_name("control.sock");
        c.args(["serve", "--foreground", "--config"])
            .arg(config)
            .arg("--control-socket")
            .arg(control)
            .stdin(Stdio::null());
        for (k, v) in sim.env() {
            c.env(k, v);
        }
        let child = c.spawn().expect("start serve");
        wait_for_port(socks, Duration::from_secs(60));
        Self { child, socks }
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
