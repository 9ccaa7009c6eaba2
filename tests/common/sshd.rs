//! The one sshd harness: a real OpenSSH `sshd` on loopback with throwaway keys.
//!
//! The harness binds `127.0.0.1:0`, keeps the listener for the life of the [`Sshd`], and runs
//! `sshd -i` (inetd mode) on each connection it accepts, so there is no bind-then-drop port
//! race and no daemon to wait for. The accept loop is a plain thread, so blocking tests and
//! `#[tokio::test]`s use the same harness. The config text is `tests/common/sshd_config`, shared
//! with `bench/lib.sh` and `scripts/try-stdio.sh`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub const SSHD: &str = "/usr/sbin/sshd";

/// The shared sshd_config template (`@HOST_KEY@`, `@DIR@` are filled in by [`Sshd`]).
pub const SSHD_CONFIG: &str = include_str!("sshd_config");

/// Generates an ed25519 key at `path`, encrypted with `passphrase` unless it is empty.
pub fn keygen(path: &Path, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "session-proxy-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (apt-get install openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user the tests run as (sshd accepts the client key for this user).
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

/// A loopback sshd accepting `client_key` for [`user()`]; stops (and kills its per-connection
/// `sshd -i` children) on drop.
pub struct Sshd {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub client_key: PathBuf,
    /// A known_hosts file naming the host key under the alias `sim-target` (for `ssh -o
    /// HostKeyAlias=sim-target`).
    pub known_hosts: PathBuf,
    pub user: String,
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
    accept: Option<JoinHandle<()>>,
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// With extra sshd_config lines (e.g. `PermitOpen 127.10.0.1:*`).
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let client_key = dir.path().join("client_key");
        keygen(&client_key, "");
        Self::start_in(dir, client_key, extra)
    }

    /// Starts one in `dir`, accepting the existing `client_key`, with a fresh host key.
    pub fn start_in(dir: tempfile::TempDir, client_key: PathBuf, extra: &str) -> Self {
        let d = dir.path();
        let host_key = d.join("host_key");
        keygen(&host_key, "");
        std::fs::copy(client_key.with_extension("pub"), d.join("authorized_keys")).unwrap();
        let cfg = d.join("sshd_config");
        let text = SSHD_CONFIG
            .replace("@HOST_KEY@", &host_key.display().to_string())
            .replace("@DIR@", &d.display().to_string());
        std::fs::write(&cfg, format!("{text}{extra}\n")).unwrap();
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let check = Command::new(SSHD).arg("-t").arg("-f").arg(&cfg).output();
        let check = check.expect("run /usr/sbin/sshd (apt-get install openssh-server)");
        assert!(
            check.status.success(),
            "sshd -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let known_hosts = d.join("alias_known_hosts");
        let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (t, k) = (parts.next().unwrap(), parts.next().unwrap());
        std::fs::write(&known_hosts, format!("sim-target {t} {k}\n")).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::new()));
        let acceptor = Acceptor {
            listener,
            cfg,
            log: d.join("sshd.log"),
            stop: stop.clone(),
            children: children.clone(),
        };
        let accept = std::thread::spawn(move || acceptor.run());
        Self {
            addr,
            dir,
            client_key,
            known_hosts,
            user: user(),
            stop,
            children,
            accept: Some(accept),
        }
    }

    /// What sshd logged so far (LogLevel VERBOSE), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The accept loop: one `sshd -i` per connection, its stdin and stdout the socket.
struct Acceptor {
    listener: TcpListener,
    cfg: PathBuf,
    log: PathBuf,
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
}

impl Acceptor {
    fn run(self) {
        for conn in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(sock) = conn else { continue };
            if let Some(child) = self.spawn(sock) {
                let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
                // Reap the ones that finished, so the list stays as long as the open sessions.
                children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
                children.push(child);
            }
        }
    }

    fn spawn(&self, sock: TcpStream) -> Option<Child> {
        let out = sock.try_clone().ok()?;
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .ok()?;
        Command::new(SSHD)
            .args(["-i", "-e", "-f"])
            .arg(&self.cfg)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(sock)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(out)))
            .stderr(Stdio::from(err))
            .spawn()
            .ok()
    }
}
