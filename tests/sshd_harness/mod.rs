//! Test harness: a real OpenSSH `sshd` on loopback with throwaway keys, and a TCP echo server.
//!
//! The test keeps a `127.0.0.1:0` listener and runs `sshd -i` (inetd mode) on each accepted
//! connection, so there is no bind-then-drop port race and no daemon to wait for. Host and
//! client keys are generated per harness with `ssh-keygen`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// Generates an unencrypted (or, with `passphrase`, encrypted) ed25519 key at `path`.
pub(crate) fn keygen(path: &Path, passphrase: &str) {
    let out = std::process::Command::new("ssh-keygen")
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
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A loopback sshd accepting `client_key`.
pub(crate) struct Sshd {
    pub(crate) addr: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) client_key: PathBuf,
    pub(crate) user: String,
    accept: JoinHandle<()>,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Sshd {
    /// Starts one with a fresh host key and client key; `extra` is appended to sshd_config.
    pub(crate) async fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let client_key = dir.path().join("id_ed25519");
        keygen(&client_key, "");
        Self::start_in(dir, client_key, extra).await
    }

    /// Starts one in `dir` (reusing its client key) with a fresh host key.
    pub(crate) async fn start_in(dir: tempfile::TempDir, client_key: PathBuf, extra: &str) -> Self {
        let d = dir.path();
        let host_key = d.join(format!("host_{}", rand_suffix()));
        keygen(&host_key, "");
        std::fs::copy(client_key.with_extension("pub"), d.join("authorized_keys")).unwrap();
        let cfg = d.join(format!("sshd_config_{}", rand_suffix()));
        std::fs::write(
            &cfg,
            format!(
                "HostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel VERBOSE\n{extra}\n",
                hk = host_key.display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        if nix_is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let check = std::process::Command::new(SSHD)
            .arg("-t")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "sshd -t: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = d.join("sshd.log");
        let accept = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let std_sock = sock.into_std().unwrap();
                std_sock.set_nonblocking(false).unwrap();
                let out: OwnedFd = std_sock.try_clone().unwrap().into();
                let inp: OwnedFd = std_sock.into();
                let err = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let child = tokio::process::Command::new(SSHD)
                    .arg("-i")
                    .arg("-e")
                    .arg("-f")
                    .arg(&cfg)
                    .stdin(Stdio::from(inp))
                    .stdout(Stdio::from(out))
                    .stderr(Stdio::from(err))
                    .kill_on_drop(true)
                    .spawn();
                if let Ok(mut child) = child {
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                }
            }
        });
        Self {
            addr,
            dir,
            client_key,
            user: current_user(),
            accept,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

fn nix_is_root() -> bool {
    current_user() == "root"
}

fn rand_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A TCP echo server on loopback; returns its address.
pub(crate) async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, h)
}

/// Deterministic pseudo-random payload.
pub(crate) fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `data` to `stream` and reads the echo back concurrently; returns what came back.
pub(crate) async fn echo_through<S>(stream: S, data: &[u8]) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let write = async {
        for chunk in data.chunks(32 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
    };
    let read = async {
        let mut back = Vec::with_capacity(data.len());
        r.read_to_end(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::join!(write, read);
    back
}
