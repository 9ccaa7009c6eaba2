//! `session-proxy demo` end to end, as a user runs it: the real binary with a fresh HOME and
//! XDG dirs, the printed `curl --socks5-hostname` line fetching the demo page, the printed
//! `ssh … ProxyCommand='session-proxy stdio …'` line running a command on the demo instance
//! with the real OpenSSH client, then SIGTERM and a clean exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{curl, BIN};
use session_proxy::sim::demo::PAGE_TITLE;

/// A `demo` child and the stderr lines it printed up to its ready line.
struct Running {
    child: Child,
    /// The SOCKS address from the ready line (the demo listens on port 0 in tests).
    socks: SocketAddr,
    lines: Vec<String>,
    _rest: mpsc::Receiver<String>,
}

fn start_demo(home: &Path) -> Running {
    let mut c = Command::new(BIN);
    c.args(["demo", "--listen", "127.0.0.1:0"])
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let mut child = c.spawn().expect("start session-proxy demo");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("demo: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    let socks = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let ready = l.strip_prefix("session-proxy demo: ready on ").map(|a| {
                    a.trim()
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|e| panic!("ready line address {a:?}: {e}"))
                });
                lines.push(l);
                if let Some(addr) = ready {
                    break addr;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "demo never printed its ready line; stderr:\n{}",
                    lines.join("\n")
                );
            }
        }
    };
    Running {
        child,
        socks,
        lines,
        _rest: rx,
    }
}

impl Running {
    fn line(&self, prefix: &str) -> String {
        self.lines
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{}", self.lines.join("\n")))
            .to_owned()
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("demo did not exit within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn printed_curl_and_ssh_lines_work_and_sigterm_exits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let socks = demo.socks;

    let curl_line = demo.line("curl --socks5-hostname");
    assert!(
        curl_line.contains(&socks.to_string()),
        "curl line uses the SOCKS port: {curl_line}"
    );
    let url = curl_line.split_whitespace().last().unwrap().to_owned();
    let (rc, body, err) = curl(socks, &url, &[]);
    assert_eq!(rc, 0, "curl through the demo failed: {err}");
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(PAGE_TITLE), "{body}");

    // The printed ssh line, run by a shell as a user would paste it; BatchMode so a mistake
    // fails instead of prompting, and no user ssh config.
    let ssh_line = demo.line("env AWS_ENDPOINT_URL=");
    let ssh_line = ssh_line.replacen(" ssh ", " ssh -F /dev/null -o BatchMode=yes ", 1);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&ssh_line)
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    let st = demo.stop();
    assert!(st.success(), "demo exit status {st:?}");
}

#[test]
fn a_restarted_demo_reuses_the_generated_key_and_serves_again() {
    let home = tempfile::tempdir().unwrap();
    let first = start_demo(home.path());
    let key = home.path().join("state/session-proxy/demo/id_ed25519");
    let before = std::fs::read(&key).unwrap();
    assert!(first.stop().success());
    let second = start_demo(home.path());
    let socks = second.socks;
    assert_eq!(std::fs::read(&key).unwrap(), before, "key regenerated");
    let line = second.line("curl --socks5-hostname");
    let url = line.split_whitespace().last().unwrap();
    let (rc, _, err) = curl(socks, url, &[]);
    assert_eq!(rc, 0, "{err}");
    assert!(second.stop().success());
}

#[test]
fn sim_without_instances_runs_the_demo_instance_under_its_name() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("sim-state");
    let mut child = Command::new(BIN)
        .args(["sim", "--state-dir"])
        .arg(&state)
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let endpoint = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("export AWS_ENDPOINT_URL=")
                .map(str::to_owned)
        })
        .expect("env lines on stdout");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    // The demo instance answers DescribeInstanceInformation under its Name tag.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let found = rt.block_on(async {
        let api = session_proxy::ssm::api::SsmApi::new(&session_proxy::ssm::api::AwsSettings {
            region: Some("us-east-1".into()),
            credentials: Some(session_proxy::ssm::api::InlineCredentials {
                access_key_id: "AKIASIMULATOR0000000".into(),
                secret_access_key: session_proxy::redact::Redacted::new("x".into()),
                session_token: None,
            }),
            endpoint_url: Some(endpoint),
            ..Default::default()
        })
        .await;
        session_proxy::ssm::target::resolve(&api, "demo-bastion").await
    });
    assert_eq!(found.unwrap(), session_proxy::sim::demo::INSTANCE_ID);
    assert!(state.join("id_ed25519").exists());
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}
