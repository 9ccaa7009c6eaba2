//! `session-proxy demo` end to end, as a user runs it: the real binary with a fresh HOME and
//! XDG dirs, the printed `curl --socks5-hostname` line fetching the demo page, the printed
//! `ssh -F <ssh_config> demo-bastion` line running a command on the demo instance with the real
//! OpenSSH client, `scp` and `sftp` copying a checksummed file both ways, `status`, `route` and
//! `stop` reaching the demo's master, the env file pointing `stdio` at the simulator, the
//! printed `shell` line naming a target whose shell runs, a busy first port being named, then
//! SIGTERM and a clean exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{curl, random_file, sha256_file, BIN};
use session_proxy::sim::demo::PAGE_TITLE;

/// A `demo` child and the stderr lines it printed up to its ready line.
struct Running {
    child: Child,
    /// The SOCKS address from the ready line (the demo listens on port 0 in tests).
    socks: SocketAddr,
    lines: Vec<String>,
    _rest: mpsc::Receiver<String>,
}

/// A command with the fresh HOME and XDG dirs of `home` and no AWS settings of the caller's,
/// as a new user would run it.
fn as_user(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("SESSION_PROXY_DEMO_PORT")
        .current_dir(home)
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c
}

/// The demo's state dir under `home`.
fn demo_dir(home: &Path) -> std::path::PathBuf {
    home.join("state/session-proxy/demo")
}

fn start_demo(home: &Path) -> Running {
    start_demo_with(home, &["--listen", "127.0.0.1:0"], &[])
}

fn start_demo_with(home: &Path, args: &[&str], env: &[(&str, String)]) -> Running {
    let mut c = as_user(BIN, home);
    c.arg("demo")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    fn stop(self) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        self.wait()
    }

    /// Waits (bounded) for the demo to exit.
    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("demo did not exit within 30s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `cmd` (OpenSSH clients through the demo) under `timeout`, so a hang fails the test
/// instead of stalling it; returns the output.
fn run_bounded(home: &Path, cmd: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut c = as_user("timeout", home);
    c.arg("120")
        .args(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(124),
        "{cmd:?} hung: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn assert_ok(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn printed_curl_and_ssh_f_lines_work_and_sigterm_exits_cleanly() {
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
    // fails instead of prompting.
    let ssh_line = demo.line("ssh -F ");
    assert!(ssh_line.len() < 120, "the ssh line is short: {ssh_line}");
    let ssh_line = ssh_line.replacen("ssh ", "ssh -o BatchMode=yes ", 1);
    let out = run_bounded(home.path(), &["sh", "-c", &ssh_line], None);
    assert_ok("ssh -F", &out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    let st = demo.stop();
    assert!(st.success(), "demo exit status {st:?}");
}

#[test]
fn scp_and_sftp_through_the_demo_copy_a_checksummed_file_both_ways() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let cfg = demo_dir(home.path()).join("ssh_config");
    let cfg = cfg.to_str().unwrap();
    let remote_home = demo_dir(home.path()).join("home");
    let file = random_file(home.path(), "up.bin", 3);
    let sum = sha256_file(&file);

    let out = run_bounded(
        home.path(),
        &[
            "scp",
            "-F",
            cfg,
            "-o",
            "BatchMode=yes",
            file.to_str().unwrap(),
            "demo-bastion:up.bin",
        ],
        None,
    );
    assert_ok("scp upload", &out);
    assert_eq!(sha256_file(&remote_home.join("up.bin")), sum);
    let back = home.path().join("back.bin");
    let out = run_bounded(
        home.path(),
        &[
            "scp",
            "-F",
            cfg,
            "-o",
            "BatchMode=yes",
            "demo-bastion:up.bin",
            back.to_str().unwrap(),
        ],
        None,
    );
    assert_ok("scp download", &out);
    assert_eq!(sha256_file(&back), sum);

    // sftp: put under another name into a new directory, list it, get it back, clean up.
    let got = home.path().join("got.bin");
    let batch = format!(
        "mkdir d\nput {} d/copy.bin\nls -l d\nget d/copy.bin {}\nrm d/copy.bin\nrmdir d\n",
        file.display(),
        got.display()
    );
    let out = run_bounded(
        home.path(),
        &[
            "sftp",
            "-F",
            cfg,
            "-o",
            "BatchMode=yes",
            "-b",
            "-",
            "demo-bastion",
        ],
        Some(&batch),
    );
    assert_ok("sftp batch", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("copy.bin"),
        "ls shows the file: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(sha256_file(&got), sum);
    assert!(
        !remote_home.join("d").exists(),
        "rmdir removed the directory"
    );
    assert!(demo.stop().success());
}

#[test]
fn a_subsystem_other_than_sftp_is_refused_at_once() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let cfg = demo_dir(home.path()).join("ssh_config");
    let out = run_bounded(
        home.path(),
        &[
            "ssh",
            "-F",
            cfg.to_str().unwrap(),
            "-o",
            "BatchMode=yes",
            "-s",
            "demo-bastion",
            "netconf",
        ],
        None,
    );
    assert!(!out.status.success(), "an unknown subsystem was accepted");
    assert!(demo.stop().success());
}

#[test]
fn status_route_and_stop_reach_the_running_demo() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    // The printed lines name the default control socket's plain commands.
    assert_eq!(demo.line("session-proxy status"), "session-proxy status");

    let out = as_user(BIN, home.path()).arg("status").output().unwrap();
    assert_ok("status", &out);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("demo"),
        "status lists the demo upstream: {table}"
    );

    let config = demo_dir(home.path()).join("config.yaml");
    let out = as_user(BIN, home.path())
        .arg("--config")
        .arg(&config)
        .args(["route", "example.com:443"])
        .output()
        .unwrap();
    assert_ok("route", &out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("demo"),
        "route names the demo upstream: {said}"
    );

    let out = as_user(BIN, home.path()).arg("stop").output().unwrap();
    assert_ok("stop", &out);
    let st = demo.wait();
    assert!(st.success(), "demo exit status after stop: {st:?}");
}

#[test]
fn the_env_file_points_session_proxy_stdio_at_the_simulator() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let dir = demo_dir(home.path());
    let script = format!(
        ". '{env}' && exec ssh -F /dev/null -o BatchMode=yes -i '{key}' \
         -o UserKnownHostsFile='{known}' -o ProxyCommand='{BIN} stdio %h -p %p' \
         demo@demo-bastion echo via-env",
        env = dir.join("env").display(),
        key = dir.join("id_ed25519").display(),
        known = dir.join("known_hosts").display(),
    );
    let out = run_bounded(home.path(), &["sh", "-c", &script], None);
    assert_ok("ssh with the env file", &out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via-env\n");
    assert!(demo.stop().success());
}

#[test]
fn the_printed_forward_line_reaches_the_page_over_native_port_sessions() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let dir = demo_dir(home.path());
    let line = demo.line("session-proxy forward ");
    // The printed line binds 8080; the test takes any free port instead.
    let spec = line.split_whitespace().nth(2).unwrap();
    let spec = spec.replacen("8080:", "0:", 1);
    assert!(spec.starts_with("0:db.internal:"), "{line}");
    let ready = home.path().join("forward.ready");
    let script = format!(
        ". '{env}' && {{ '{BIN}' forward {spec} --via demo-bastion --ready-file '{r}' & pid=$!; \
         i=0; while [ ! -s '{r}' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         curl -sS --max-time 20 \"http://$(cat '{r}')/\"; rc=$?; kill $pid; wait $pid; exit $rc; }}",
        env = dir.join("env").display(),
        r = ready.display(),
    );
    let out = run_bounded(home.path(), &["sh", "-c", &script], None);
    assert_ok("curl through the printed forward", &out);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains(session_proxy::sim::demo::PAGE_TITLE),
        "{page}"
    );
    assert!(demo.stop().success());
}

#[test]
fn the_printed_shell_line_names_a_target_whose_shell_runs_on_the_simulator() {
    let home = tempfile::tempdir().unwrap();
    let demo = start_demo(home.path());
    let line = demo.line("session-proxy shell ");
    let target = line.split_whitespace().nth(2).unwrap().to_owned();
    let env = std::fs::read_to_string(demo_dir(home.path()).join("env")).unwrap();
    let endpoint = env
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_ENDPOINT_URL="))
        .unwrap()
        .to_owned();
    // What `shell` does with the line's target: resolve it, start the default shell document.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let screen = rt.block_on(async {
        use session_proxy::ssm::{api::SessionRequest, driver::ByteStream, session::*, target};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let api = std::sync::Arc::new(common::sim_api(Some(endpoint)).await);
        let id = target::resolve(&api, &target).await.unwrap();
        let (mut mine, theirs) = tokio::io::duplex(64 * 1024);
        let req = SessionRequest {
            target: id,
            document: "SSM-SessionManagerRunShell".to_owned(),
            parameters: Vec::new(),
        };
        let opts = SessionOptions::default();
        let layer = ByteStream::ready(theirs);
        let session = Session::start_layer(api, &req, layer, opts).await.unwrap();
        mine.write_all(b"echo $((6*7)); exit\n").await.unwrap();
        let mut screen = Vec::new();
        let read = mine.read_to_end(&mut screen);
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap()
            .unwrap();
        session.finish().await.unwrap();
        String::from_utf8_lossy(&screen).into_owned()
    });
    assert!(screen.contains("42\r\n"), "{screen:?}");
    assert!(demo.stop().success());
}

#[test]
fn a_busy_first_port_is_named_and_the_next_free_one_used() {
    let home = tempfile::tempdir().unwrap();
    // Held for the whole test, so the port is busy and no one else takes it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let demo = start_demo_with(
        home.path(),
        &[],
        &[("SESSION_PROXY_DEMO_PORT", busy.to_string())],
    );
    let said = demo.line(&format!("session-proxy demo: 127.0.0.1:{busy} is busy"));
    assert!(
        said.contains(&format!("using {}", demo.socks)),
        "names the port it took instead: {said}"
    );
    assert_ne!(demo.socks.port(), busy);
    assert!(demo.stop().success());
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
