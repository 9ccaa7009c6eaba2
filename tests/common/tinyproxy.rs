//! A real HTTP proxy for the tests: Debian's `tinyproxy`, run in the foreground as the current
//! user from a generated config in a temp dir. It binds its outgoing connections to
//! [`OUTGOING`], so the simulator's peer table tells what came through it from what did not.
//!
//! tinyproxy refuses `Port 0`, so a free port is found by binding port 0 and closing it; if
//! another process takes the port before tinyproxy does, tinyproxy exits and the next port is
//! tried.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The address tinyproxy connects from (`Bind`): nothing else on the machine uses it.
pub const OUTGOING: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A running tinyproxy; killed on drop.
pub struct Tinyproxy {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts one allowing CONNECT to `connect_ports`, asking for `user:pass` when given.
    pub fn start(connect_ports: &[u16], basic_auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some((child, log)) = try_start(dir.path(), port, connect_ports, basic_auth) {
                return Self {
                    child,
                    addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    log,
                    _dir: dir,
                };
            }
        }
        panic!("tinyproxy did not start on any of 10 ports");
    }
}

/// Runs tinyproxy on `port`; `None` when it exits (the port was taken) before it is ready.
fn try_start(
    dir: &std::path::Path,
    port: u16,
    connect_ports: &[u16],
    basic_auth: Option<(&str, &str)>,
) -> Option<(Child, PathBuf)> {
    let log = dir.join(format!("tinyproxy-{port}.log"));
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nBind {OUTGOING}\nTimeout 600\nLogFile \"{}\"\n\
             LogLevel Info\nMaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
        log.display()
    );
    for p in connect_ports {
        conf.push_str(&format!("ConnectPort {p}\n"));
    }
    if let Some((u, p)) = basic_auth {
        conf.push_str(&format!("BasicAuth {u} {p}\n"));
    }
    let path = dir.join(format!("tinyproxy-{port}.conf"));
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy (apt-get install tinyproxy)");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Starting main loop") {
            return Some((child, log));
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Tinyproxy {
    /// `http://127.0.0.1:PORT`, or with `userinfo@` in front of the host.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("http://{u}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The request lines tinyproxy logged (`CONNECT 127.0.0.1:N HTTP/1.1`, `POST http://… HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once("): ")
                    .filter(|_| l.contains("Request (file descriptor"))
            })
            .map(|(_, r)| r.trim().to_owned())
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
