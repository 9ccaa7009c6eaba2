//! One test per documented exit code (`session-proxy --help`, README "Exit codes"): the real
//! binary, in a throwaway HOME with no AWS settings of the caller's, against the simulator, a
//! missing or fake master, or a bad config. Everything is on loopback; ports and sockets are
//! held by the test (or reported by the child) while the binary runs, so nothing races.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use session_proxy::exit::{code_for, codes};

const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");
const ID: &str = "i-0123456789abcdef0";
const CONFIG: &str = "upstreams:\n  u: { targets: [i-0123456789abcdef0], user: ec2-user, ssh_agent: true }\ndefault: direct\n";

/// A fresh HOME with XDG dirs inside it.
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The binary with `args`, isolated from the caller's AWS and XDG settings.
    fn cmd(&self, args: &[&str]) -> Command {
        let h = self.path();
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.args(args)
            .env("HOME", h)
            .env("XDG_STATE_HOME", h.join("state"))
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_RUNTIME_DIR", h.join("run"))
            .env("AWS_CONFIG_FILE", h.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", h.join("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(h)
            .stdin(Stdio::null());
        c
    }
}

fn output(mut c: Command) -> Output {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn assert_code(out: &Output, want: u8) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(want)), "stderr:\n{err}");
    if want != codes::OK && want != codes::ARGS {
        assert!(err.contains("session-proxy: "), "one error line:\n{err}");
    }
}

/// `session-proxy sim` as a child; it reports its endpoint on stdout once it listens.
struct SimChild {
    child: Child,
    env: Vec<(String, String)>,
}

impl SimChild {
    fn start(home: &Home, target: &str) -> Self {
        let mut child = home
            .cmd(&["sim", "--target", target])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut env = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                env.push((k.to_owned(), v.to_owned()));
                if k == "AWS_EC2_METADATA_DISABLED" {
                    break;
                }
            }
        }
        assert!(env.len() >= 5, "sim printed its environment: {env:?}");
        Self { child, env }
    }

    /// Only the endpoint and region: no credentials.
    fn endpoint_only(&self, c: &mut Command) {
        for (k, v) in &self.env {
            if k == "AWS_ENDPOINT_URL" || k == "AWS_REGION" {
                c.env(k, v);
            }
        }
    }

    fn with_credentials(&self, c: &mut Command) {
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Unix socket standing in for a master; `answer` is written after the request line, or
/// nothing at all when `None` (the connection stays open and silent).
fn fake_master(path: &Path, answer: Option<&'static str>) -> UnixListener {
    let l = UnixListener::bind(path).unwrap();
    if let Some(answer) = answer {
        let server = l.try_clone().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = server.accept() {
                let mut req = [0u8; 256];
                let _ = s.read(&mut req);
                let _ = s.write_all(answer.as_bytes());
                std::thread::sleep(Duration::from_secs(5));
            }
        });
    }
    l
}

#[test]
fn success_is_0() {
    let home = Home::new();
    let cfg = home.file("config.yaml", CONFIG);
    let out = output(home.cmd(&["--config", cfg.to_str().unwrap(), "route", "example.com"]));
    assert_code(&out, codes::OK);
    assert!(String::from_utf8_lossy(&out.stdout).contains("direct"));
}

#[test]
fn a_stdout_closed_by_its_reader_is_0_and_silent() {
    let home = Home::new();
    let cfg = home.file("config.yaml", CONFIG);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = home
        .cmd(&["--config", cfg.to_str().unwrap(), "route", "example.com"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_code(&out, codes::OK);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn other_failures_are_1() {
    let home = Home::new();
    let not_a_dir = home.file("taken", "a file where a directory should go");
    let out = output(home.cmd(&["generate", "--completions", not_a_dir.to_str().unwrap()]));
    assert_code(&out, codes::FAILURE);
}

#[test]
fn bad_arguments_are_2() {
    let out = output(Home::new().cmd(&["stdio"]));
    assert_code(&out, codes::ARGS);
}

#[test]
fn arguments_that_make_no_sense_are_64() {
    let out = output(Home::new().cmd(&["sim", "--drop", "2"]));
    assert_code(&out, codes::USAGE);
}

#[tokio::test]
async fn a_refused_host_key_is_65() {
    use session_proxy::serve;
    use session_proxy::sim::{demo::Demo, Sim, SimOptions};
    use session_proxy::ssh::HostKeyPolicy;
    use session_proxy::upstream::PoolOptions;

    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Sim::start(
        listener,
        SimOptions {
            instances: vec![demo.instance()],
            ..SimOptions::default()
        },
    )
    .unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let socks = "127.0.0.1:0".parse().unwrap();
    let cfg = session_proxy::cli::demo::demo_config(socks, &demo.files.client_key, &state).unwrap();
    // Strict, with an empty known_hosts: the demo instance's key is unknown and refused.
    let mut cfg = cfg;
    for u in &mut cfg.upstreams {
        u.ssh_mut().unwrap().host_key_policy = HostKeyPolicy::Strict;
    }
    let opts = PoolOptions {
        connect_timeout: Duration::from_secs(5),
        endpoint_url: Some(sim.endpoint_url()),
        ..PoolOptions::new(&state)
    };
    let Err(err) = serve::start_upstreams(&cfg, &opts).await else {
        panic!("the pool connected although the host key is unknown and the policy strict");
    };
    let err = anyhow::Error::from(err);
    assert!(format!("{err:#}").contains("host key"), "{err:#}");
    assert_eq!(code_for(&err), codes::HOST_KEY, "{err:#}");
    sim.shutdown().await;
    demo.shutdown().await;
}

#[test]
fn an_unknown_target_is_68() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9,name=web"));
    let mut c = home.cmd(&["stdio", "no-such-host"]);
    sim.with_credentials(&mut c);
    assert_code(&output(c), codes::NO_HOST);
}

#[test]
fn no_master_running_is_69() {
    let home = Home::new();
    let sock = home.path().join("none.sock");
    let out = output(home.cmd(&["--control-socket", sock.to_str().unwrap(), "status"]));
    assert_code(&out, codes::UNAVAILABLE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master running"));
}

#[test]
fn a_listen_address_in_use_is_71() {
    let home = Home::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let sock = home.path().join("c.sock");
    let state = home.path().join("st");
    let out = output(home.cmd(&[
        "--control-socket",
        sock.to_str().unwrap(),
        "serve",
        "--foreground",
        "--target",
        ID,
        "--user",
        "ec2-user",
        "--ssh-agent",
        "--listen",
        &addr,
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    assert_code(&out, codes::OS);
    drop(taken);
}

#[test]
fn a_failing_stdout_is_74() {
    let home = Home::new();
    let cfg = home.file("config.yaml", CONFIG);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = home
        .cmd(&["--config", cfg.to_str().unwrap(), "route", "example.com"])
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_code(&out, codes::IO);
}

#[test]
fn a_master_that_does_not_answer_is_75() {
    let home = Home::new();
    let sock = home.path().join("silent.sock");
    let _held = fake_master(&sock, None);
    let out = output(home.cmd(&["--control-socket", sock.to_str().unwrap(), "status"]));
    assert_code(&out, codes::TEMP);
}

#[test]
fn a_master_answering_out_of_protocol_is_76() {
    let home = Home::new();
    let sock = home.path().join("odd.sock");
    let _held = fake_master(&sock, Some("{\"v\":1,\"type\":\"stream\"}\n"));
    let out = output(home.cmd(&["--control-socket", sock.to_str().unwrap(), "status"]));
    assert_code(&out, codes::PROTOCOL);
}

#[test]
fn missing_aws_credentials_are_77() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let mut c = home.cmd(&["stdio", ID]);
    sim.endpoint_only(&mut c);
    assert_code(&output(c), codes::NO_PERM);
}

#[test]
fn a_bad_config_file_is_78() {
    let home = Home::new();
    let cfg = home.file("bad.yaml", "upstreams: [this is not a mapping\n");
    let out = output(home.cmd(&["--config", cfg.to_str().unwrap(), "route", "example.com"]));
    assert_code(&out, codes::CONFIG);
}

/// An AWS config file that defines only the default profile, with no credentials anywhere.
fn aws_config_without(home: &Home, c: &mut Command) {
    let cfg = home.file("aws-config", "[default]\nregion = us-east-1\n");
    c.env("AWS_CONFIG_FILE", cfg);
}

/// Lines the binary wrote to stderr, and whether any looks like an SDK `Debug` dump.
fn error_lines(out: &Output) -> (Vec<String>, bool) {
    let err = String::from_utf8_lossy(&out.stderr);
    let dump = [
        "DispatchFailure",
        "ProviderChainError",
        "CredentialsNotLoaded",
        "{ ",
    ]
    .iter()
    .any(|d| err.contains(d));
    (err.lines().map(str::to_owned).collect(), dump)
}

#[test]
fn credential_errors_are_one_line_naming_the_profile_and_the_command_to_run() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let mut c = home.cmd(&["stdio", ID]);
    sim.endpoint_only(&mut c);
    aws_config_without(&home, &mut c);
    let out = output(c);
    assert_code(&out, codes::NO_PERM);
    let (lines, dump) = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!dump, "{lines:#?}");
    let line = &lines[0];
    assert!(
        line.contains("profile \"default\"") && line.contains("aws sso login --profile default"),
        "{line}"
    );
}

#[test]
fn a_profile_that_does_not_exist_is_named_and_is_a_config_error_78() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let mut c = home.cmd(&["stdio", "--profile", "nosuch", ID]);
    sim.endpoint_only(&mut c);
    aws_config_without(&home, &mut c);
    let out = output(c);
    assert_code(&out, codes::CONFIG);
    let (lines, dump) = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        !dump && lines[0].contains("\"nosuch\" is not defined"),
        "{lines:#?}"
    );
}

/// `serve` args for an ad-hoc upstream of `pool` connections to `target`.
fn serve_args<'a>(home: &'a Home, target: &'a str, pool: &'a str) -> Vec<String> {
    let sock = home.path().join("c.sock");
    let state = home.path().join("st");
    [
        "--control-socket",
        sock.to_str().unwrap(),
        "serve",
        "--target",
        target,
        "--user",
        "ec2-user",
        "--ssh-agent",
        "--pool-size",
        pool,
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn serve_stops_retrying_an_unknown_profile_at_once_and_exits_78_in_one_line() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let mut args = serve_args(&home, ID, "3");
    args.push("--foreground".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = home.cmd(&args);
    sim.endpoint_only(&mut c);
    aws_config_without(&home, &mut c);
    c.env("AWS_PROFILE", "nosuch");
    let started = std::time::Instant::now();
    let out = output(c);
    assert_code(&out, codes::CONFIG);
    let (lines, dump) = error_lines(&out);
    assert!(!dump, "{lines:#?}");
    let reports: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("session-proxy: "))
        .collect();
    assert_eq!(reports.len(), 1, "{lines:#?}");
    assert!(
        reports[0].contains("\"nosuch\" is not defined"),
        "{lines:#?}"
    );
    // Hang guard only: retrying would have waited out the 60 s connect timeout.
    assert!(started.elapsed() < Duration::from_secs(45), "{lines:#?}");
}

#[test]
fn serve_gives_up_on_an_instance_ssm_does_not_know_with_68() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let mut args = serve_args(&home, "i-0000000000000beef", "2");
    args.push("--foreground".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = home.cmd(&args);
    sim.with_credentials(&mut c);
    let out = output(c);
    assert_code(&out, codes::NO_HOST);
    let (lines, _) = error_lines(&out);
    let last = lines.last().unwrap();
    assert!(
        last.contains("i-0000000000000beef is not registered"),
        "{lines:#?}"
    );
}

#[test]
fn detached_serve_prints_the_masters_one_line_reason_not_its_log() {
    let home = Home::new();
    let sim = SimChild::start(&home, &format!("{ID}=127.0.0.1:9"));
    let args = serve_args(&home, ID, "1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = home.cmd(&args);
    sim.endpoint_only(&mut c);
    aws_config_without(&home, &mut c);
    let out = output(c);
    assert_code(&out, codes::NO_PERM);
    let (lines, dump) = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!dump, "{lines:#?}");
    assert!(lines[0].contains("no AWS credentials found"), "{lines:#?}");
    assert!(!lines[0].contains("says:"), "{lines:#?}");
}
