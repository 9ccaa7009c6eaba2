//! The built-in demo instance: what `sim` and `demo` run when no instances are given, so that
//! someone with only a Rust toolchain can see the whole path (ssh, SOCKS5, SSM, bastion) work.
//!
//! It is a managed instance whose "sshd" is the russh server in [`demo_ssh`](super::demo_ssh),
//! inside this process, plus a tiny HTTP page standing for a service "inside the VPC" on its
//! own loopback address. Keys live in a state directory and are reused across runs, so the
//! `ssh -i …` lines and known_hosts entries users copy keep working: `id_ed25519` (+ `.pub`) is
//! the one client key the server accepts, `host_ed25519` is its host key, `known_hosts`
//! holds that host key under the instance's name for OpenSSH, and `home/` is what `scp` and
//! `sftp` see as the demo user's home.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::demo_ssh::SshServer;
use super::instance_connect::PushedKeys;
use super::instances::Instance;

/// The demo instance's id (a well-formed EC2 id).
pub const INSTANCE_ID: &str = "i-0123456789abcdef0";
/// Its `Name` tag, which `stdio demo-bastion` resolves.
pub const INSTANCE_NAME: &str = "demo-bastion";
/// The private IP it reports (documentation range; nothing dials it).
pub const INSTANCE_IP: &str = "10.77.0.10";
/// The computer name it reports.
pub const COMPUTER_NAME: &str = "ip-10-77-0-10.demo.internal";
/// Where the demo page tries to listen first: a loopback address of its own, so it looks like
/// another host; 127.0.0.1 is the fallback where only that one is configured.
pub const WEB_IP: Ipv4Addr = Ipv4Addr::new(127, 77, 0, 1);
/// The host name the demo instance reaches its page under, for a `forward` to try:
/// `session-proxy forward 8080:db.internal:PORT --via demo-bastion` with [`Demo::forward_port`].
pub const FORWARD_HOST: &str = "db.internal";
/// First line of the demo page's body.
pub const PAGE_TITLE: &str = "You reached the demo page through AWS Session Manager";

/// Largest request head the demo page reads.
const MAX_REQUEST: usize = 8 * 1024;

/// Why the demo instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot use the demo state dir {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the demo key {}: {message}; delete it to have a new one generated", path.display())]
    BadKey { path: PathBuf, message: String },
    #[error("cannot generate a demo key: {0}")]
    Generate(String),
    #[error("cannot listen on loopback for the demo instance: {0}")]
    Bind(#[source] std::io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `<state>/demo`: where `sim` and `demo` keep the demo keys by default.
pub fn default_dir() -> PathBuf {
    crate::paths::state_dir().join("demo")
}

/// Loads the key at `path`, or generates an ed25519 key there (mode 0600, with a `.pub`).
fn load_or_create_key(path: &Path, comment: &str) -> Result<PrivateKey, DemoError> {
    if path.exists() {
        return russh::keys::load_secret_key(path, None).map_err(|e| DemoError::BadKey {
            path: path.to_owned(),
            message: e.to_string(),
        });
    }
    let mut key = crate::instance_connect::key::ephemeral();
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| DemoError::Generate(e.to_string()))?;
    // Created 0600 from the start: OpenSSH refuses private keys others can read.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(pem.as_bytes()).map_err(io_err(path))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| DemoError::Generate(e.to_string()))?;
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n")).map_err(io_err(&pub_path))?;
    Ok(key)
}

/// The demo instance's files.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    pub dir: PathBuf,
    /// The client private key users pass to `ssh -i` and `identity_files`.
    pub client_key: PathBuf,
    /// OpenSSH known_hosts with the host key under [`INSTANCE_NAME`] and [`INSTANCE_ID`].
    pub known_hosts: PathBuf,
    /// The demo user's home, served as `/` by the sftp subsystem.
    pub home: PathBuf,
}

impl DemoFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            client_key: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
            home: dir.join("home"),
        }
    }
}

/// A running demo instance: its SSH server and its web page.
pub struct Demo {
    pub files: DemoFiles,
    ssh: SshServer,
    /// Keys pushed to the demo instance with EC2 Instance Connect; its SSH server takes them.
    pushed_keys: PushedKeys,
    web_addr: SocketAddr,
    web_stop: watch::Sender<bool>,
    web_task: JoinHandle<()>,
}

impl Demo {
    /// Creates (or reuses) the keys in `dir` and starts the SSH server and the web page.
    pub async fn start(dir: &Path) -> Result<Self, DemoError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
        let files = DemoFiles::in_dir(dir);
        let client = load_or_create_key(&files.client_key, "session-proxy-demo-client")?;
        let host = load_or_create_key(&dir.join("host_ed25519"), "session-proxy-demo-host")?;
        let host_pub = host
            .public_key()
            .to_openssh()
            .map_err(|e| DemoError::Generate(e.to_string()))?;
        let known = format!("{INSTANCE_NAME},{INSTANCE_ID} {host_pub}\n");
        std::fs::write(&files.known_hosts, known).map_err(io_err(&files.known_hosts))?;
        std::fs::create_dir_all(&files.home).map_err(io_err(&files.home))?;

        let ssh_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(DemoError::Bind)?;
        let pushed_keys = PushedKeys::default();
        let ssh = SshServer::start(
            ssh_listener,
            host,
            client.public_key().clone(),
            files.home.clone(),
            (pushed_keys.clone(), INSTANCE_ID.to_owned()),
        )
        .map_err(DemoError::Bind)?;
        let web = match TcpListener::bind((WEB_IP, 0)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("demo page: {WEB_IP} unavailable ({e}); using 127.0.0.1");
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .map_err(DemoError::Bind)?
            }
        };
        let web_addr = web.local_addr().map_err(DemoError::Bind)?;
        let (web_stop, stopped) = watch::channel(false);
        let web_task = tokio::spawn(serve_page(web, stopped));
        Ok(Self {
            files,
            ssh,
            pushed_keys,
            web_addr,
            web_stop,
            web_task,
        })
    }

    /// The simulator's view: an online instance whose port 22 is the demo SSH server and
    /// which reaches the demo page as [`FORWARD_HOST`].
    pub fn instance(&self) -> Instance {
        let hosts = [(FORWARD_HOST.to_owned(), self.web_addr.ip())];
        Instance {
            name: Some(INSTANCE_NAME.to_owned()),
            ip_address: Some(INSTANCE_IP.to_owned()),
            computer_name: Some(COMPUTER_NAME.to_owned()),
            hosts: hosts.into_iter().collect(),
            ..Instance::new(INSTANCE_ID, self.ssh.addr())
        }
    }

    /// The port of the demo page on [`FORWARD_HOST`] (the kernel picks it at each start).
    pub fn forward_port(&self) -> u16 {
        self.web_addr.port()
    }

    /// The store to give the simulator ([`SimOptions`](crate::sim::SimOptions)`::pushed_keys`),
    /// so keys pushed with SendSSHPublicKey log into the demo instance.
    pub fn pushed_keys(&self) -> PushedKeys {
        self.pushed_keys.clone()
    }

    pub fn ssh_addr(&self) -> SocketAddr {
        self.ssh.addr()
    }

    pub fn web_addr(&self) -> SocketAddr {
        self.web_addr
    }

    /// The demo page's URL (reachable directly too, but the point is to go through SOCKS).
    pub fn web_url(&self) -> String {
        format!("http://{}/", self.web_addr)
    }

    pub async fn shutdown(self) {
        let _ = self.web_stop.send(true);
        let _ = self.web_task.await;
        self.ssh.shutdown().await;
    }
}

/// The page's body; names the address it was served from.
pub fn page_body(addr: SocketAddr) -> String {
    format!(
        "{PAGE_TITLE}.\n\nThis page is served by the demo instance {INSTANCE_NAME} ({INSTANCE_ID}) at {addr},\n\
         standing for a private service inside a VPC. Your request went: curl -> SOCKS5 ->\n\
         session-proxy -> SSH -> SSM Session Manager data channel (simulated) -> this host.\n"
    )
}

async fn serve_page(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            acc = listener.accept() => match acc {
                Ok((stream, _)) => {
                    let addr = listener.local_addr().unwrap_or_else(|_| {
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
                    });
                    tokio::spawn(answer_http(stream, addr));
                }
                Err(e) => {
                    tracing::warn!("demo page: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Reads one request head (bounded in size and time) and answers it; one request per
/// connection, which is all curl and browsers need from a demo page.
async fn answer_http(mut stream: TcpStream, addr: SocketAddr) {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 1024];
        while buf.len() < MAX_REQUEST && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) || buf.is_empty() {
        return;
    }
    let head = String::from_utf8_lossy(&buf);
    let method = head.split_whitespace().next().unwrap_or_default();
    let body = page_body(addr);
    let response = match method {
        "GET" | "HEAD" => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if method == "GET" {
                r.push_str(&body);
            }
            r
        }
        _ => "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests;
