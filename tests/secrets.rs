//! No secret reaches the logs, whatever filter the user sets: real `stdio` and `serve` runs
//! against the simulator with `SESSION_PROXY_LOG` at every level (and a filter that names the
//! AWS SDK's wire-logging targets outright), their stderr searched for the session tokens the
//! simulator handed out, the AWS secret key and session token, the SOCKS passwords (right and
//! wrong) and the SSH private key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use session_proxy::sim::SimOptions;

const ECHO_ID: &str = "i-00000000000000e01";
const BASTION: &str = "i-00000000000000b01";
const SECRET_KEY: &str = "wJalrXUtnFEMI-secret-key-do-not-log-7Q2x";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjE-aws-session-token-do-not-log-9Zk";
const SOCKS_PASSWORD: &str = "socks-password-do-not-log-5Kq";
const WRONG_PASSWORD: &str = "wrong-password-do-not-log-3Jd";

/// Every level, and a filter that asks for the SDK's, hyper's and h2's wire logs by name (each
/// directive more specific than a plain `trace`).
const FILTERS: &[&str] = &[
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "aws_smithy_runtime::client::orchestrator=trace,aws_sigv4=trace,hyper=trace,h2=trace,trace",
];

/// The simulator's session tokens are 128 hex digits; nothing else we log is that long a run.
const TOKEN_HEX_DIGITS: usize = 128;

/// What `log` gives away: each of `secrets` it contains, and any run of hex digits as long as
/// a simulator session token (the client receives those in StartSession/ResumeSession).
fn leaks(log: &str, secrets: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = secrets
        .iter()
        .filter(|s| log.contains(**s))
        .map(|s| format!("secret {s:?}"))
        .collect();
    let mut run = 0;
    for (i, b) in log.bytes().enumerate() {
        run = if b.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run == TOKEN_HEX_DIGITS {
            let start = i + 1 - TOKEN_HEX_DIGITS;
            found.push(format!("a session token ({}…)", &log[start..start + 16]));
        }
    }
    found
}

fn assert_no_leaks(what: &str, filter: &str, log: &str, secrets: &[&str]) {
    let found = leaks(log, secrets);
    assert!(
        found.is_empty(),
        "{what} with SESSION_PROXY_LOG={filter} logged {found:?}"
    );
    // The filter really was in force: trace and debug runs are not silent (the capped
    // libraries still speak at debug).
    if filter.ends_with("trace") || filter == "debug" {
        assert!(
            log.contains("DEBUG"),
            "{what} at {filter} logged no debug line"
        );
    }
}

fn aws_env(c: &mut Command, sim: &SimHandle) {
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    c.env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// Reads `child`'s stderr from now on (a trace-level child fills a pipe buffer in moments and
/// would block on its next log line); the receiver gets all of it once the child exits.
fn collect_stderr(child: &mut Child) -> mpsc::Receiver<Vec<u8>> {
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// SIGTERM, then waits (bounded) for `child` and returns its stderr as text.
fn stop(mut child: Child, stderr: &mpsc::Receiver<Vec<u8>>) -> String {
    sigterm(&child);
    let text = stderr.recv_timeout(Duration::from_secs(60));
    if text.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    String::from_utf8_lossy(&text.expect("the child did not finish in time")).into_owned()
}

/// `stdio` to the echo instance: one line there and back, then SIGTERM (TerminateSession).
fn stdio_log(sim: &SimHandle, echo_port: u16, filter: &str) -> String {
    let mut c = Command::new(BIN);
    c.args(["stdio", ECHO_ID, "-p", &echo_port.to_string()])
        .env("SESSION_PROXY_LOG", filter)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    aws_env(&mut c, sim);
    let mut child = c.spawn().unwrap();
    let stderr = collect_stderr(&mut child);
    child.stdin.as_mut().unwrap().write_all(b"ping\n").unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = [0u8; 5];
        let _ = tx.send(out.read_exact(&mut got).map(|()| got));
    });
    let echoed = rx.recv_timeout(Duration::from_secs(60));
    let log = stop(child, &stderr);
    assert!(
        matches!(echoed, Ok(Ok(b))if &b == b"ping\n"),
        "no echo through stdio: {echoed:?}\n{log}"
    );
    log
}

/// `serve` with a password-protected listener and one upstream: a request through it with the
/// right password, one with a wrong password, then SIGTERM.
fn serve_log(sim: &SimHandle, sshd: &Sshd, dir: &Path, filter: &str) -> String {
    let web = http_server("127.10.0.1:0", vec![("/hello".into(), b"hello".to_vec())]);
    let cfg = format!(
        r#"
listeners:
  - socks5: 127.0.0.1:0
    users:
      - username: alice
        password: {SOCKS_PASSWORD}
upstreams:
  bastion:
    targets: [{BASTION}]
    user: {user}
    identity_files: [{key}]
    pool_size: 1
routes:
  - match: 127.10.0.0/16
    via: bastion
default: reject
state_dir: {state}
"#,
        user = user(),
        key = sshd.client_key.display(),
        state = dir.join("state").display(),
    );
    let config = dir.join("config.yaml");
    std::fs::write(&config, cfg).unwrap();
    let ready = dir.join("serve.ready");
    let _ = std::fs::remove_file(&ready);
    let mut c = Command::new(BIN);
    c.args(["serve", "--foreground", "--config"])
        .arg(&config)
        .arg("--control-socket")
        .arg(dir.join("control.sock"))
        .arg("--ready-file")
        .arg(&ready)
        .env("SESSION_PROXY_LOG", filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    aws_env(&mut c, sim);
    let mut child = c.spawn().unwrap();
    let stderr = collect_stderr(&mut child);
    let socks = wait_ready_file(&ready, &mut child, Duration::from_secs(60)).unwrap()[0];
    let url = format!("http://{web}/hello");
    let good = format!("alice:{SOCKS_PASSWORD}");
    let (rc, body, err) = curl(socks, &url, &["--proxy-user", &good]);
    let bad = format!("alice:{WRONG_PASSWORD}");
    let (bad_rc, _, _) = curl(socks, &url, &["--proxy-user", &bad]);
    let log = stop(child, &stderr);
    assert_eq!((rc, body.as_slice()), (0, &b"hello"[..]), "{err}\n{log}");
    assert_ne!(bad_rc, 0, "a wrong password was let in");
    log
}

/// The longest line of the SSH private key's base64 body.
fn private_key_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("-----"))
        .max_by_key(|l| l.len())
        .unwrap()
        .to_owned()
}

#[test]
fn no_token_secret_or_password_is_logged_at_any_level() {
    let sshd = Sshd::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (echo, _h) = rt.block_on(common::echo::echo_server());
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ECHO_ID, echo), instance(BASTION, sshd.addr)],
        ..SimOptions::default()
    });
    let key_line = private_key_line(&sshd.client_key);
    let secrets = [
        SECRET_KEY,
        SESSION_TOKEN,
        SOCKS_PASSWORD,
        WRONG_PASSWORD,
        key_line.as_str(),
    ];
    let dir = tempfile::tempdir().unwrap();
    for filter in FILTERS {
        let log = stdio_log(&sim, echo.port(), filter);
        assert_no_leaks("stdio", filter, &log, &secrets);
        let log = serve_log(&sim, &sshd, dir.path(), filter);
        assert_no_leaks("serve", filter, &log, &secrets);
    }
}

#[test]
fn the_leak_check_finds_what_it_looks_for() {
    // The checker itself must not be a test that cannot fail.
    let token = "ab".repeat(TOKEN_HEX_DIGITS / 2);
    assert_eq!(leaks(&format!("x {token} y"), &[]).len(), 1);
    assert_eq!(leaks(&token[1..], &[]).len(), 0);
    assert_eq!(leaks("pw=hunter2!", &["hunter2"]).len(), 1);
    assert!(leaks("nothing here", &["hunter2"]).is_empty());
}
