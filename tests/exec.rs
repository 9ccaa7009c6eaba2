//! `session-proxy exec` end to end: the real binary against the simulator, whose agent runs
//! NonInteractiveCommands as the real agent does (no shell, merged output and no status for
//! AWS's document; StdErr and ExitCode for a separate-output document) and InteractiveCommands
//! in a real pty. Everything is on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{SimHandle, BIN};
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

/// The simulator and a throwaway HOME (no config file of the caller's).
struct Rig {
    sim: SimHandle,
    home: tempfile::TempDir,
}

/// A simulator with one instance (its port target is never dialled by command sessions).
fn rig() -> Rig {
    let addr = "127.0.0.1:9".parse().unwrap();
    let sim = SimHandle::start(SimOptions {
        instances: vec![common::instance(ID, addr)],
        ..SimOptions::default()
    });
    Rig {
        sim,
        home: tempfile::tempdir().unwrap(),
    }
}

/// The binary with the simulator's AWS environment, in the throwaway HOME.
fn cmd(rig: &Rig, args: &[&str]) -> Command {
    let home = rig.home.path();
    let mut c = Command::new(BIN);
    c.args(args)
        .envs(rig.sim.env())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .current_dir(home)
        .stdin(Stdio::null());
    c
}

/// Runs `exec` with `stdin` (or none), within a generous hang guard.
fn run(rig: &Rig, args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
    let mut c = cmd(rig, args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().unwrap();
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("exec hung")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_document_that_does_not_exist_is_a_clear_error_and_exit_69() {
    let rig = rig();
    let (code, out, err) = run(
        &rig,
        &["exec", "--document", "NoSuch-Document", ID, "--", "true"],
        None,
    );
    assert_eq!(code, 69, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("NoSuch-Document") && err.contains("--install-document"),
        "{err}"
    );
}

/// `exec` of `script` with AWS's document (wrapped), and what came out.
fn wrapped(rig: &Rig, script: &str) -> (i32, Vec<u8>, String) {
    run(rig, &["exec", ID, "--", script], None)
}

#[test]
fn exit_codes_0_1_and_42_propagate_with_aws_document_wrapped() {
    let rig = rig();
    for (script, want) in [("true", 0), ("false", 1), ("echo out; exit 42", 42)] {
        let (code, out, err) = wrapped(&rig, script);
        assert_eq!(code, want, "{script}: {err}");
        assert!(!String::from_utf8_lossy(&out).contains(":session-proxy:"));
    }
    let (_, out, err) = wrapped(&rig, "echo out; echo err >&2; printf tail");
    assert_eq!(String::from_utf8_lossy(&out), "out\nerr\ntail");
    // Said once: the streams are merged, and how to get them apart.
    assert_eq!(err.matches("merged").count(), 1, "{err}");
    assert!(err.contains("--install-document"), "{err}");
}

#[test]
fn twenty_megabytes_of_stdout_arrive_byte_exact_without_the_marker() {
    let rig = rig();
    let dir = tempfile::tempdir().unwrap();
    let file = common::random_file(dir.path(), "big", 20);
    let want = common::sha256_file(&file);
    let script = format!("cat {}", file.display());
    let (code, out, err) = wrapped(&rig, &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 20 << 20);
    let got = dir.path().join("got");
    std::fs::write(&got, &out).unwrap();
    assert_eq!(common::sha256_file(&got), want);
}

#[test]
fn raw_mode_runs_without_a_shell_and_says_the_status_is_unknown() {
    let rig = rig();
    let (code, out, err) = run(
        &rig,
        &["exec", "--raw", ID, "--", "sh", "-c", "'exit 3'"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("unknown"), "{err}");
}

#[test]
fn stdin_reaches_the_command_with_eof() {
    let rig = rig();
    let (code, out, err) = run(&rig, &["exec", "-i", ID, "--", "wc", "-l"], Some(b"a\nb\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "2");
    let (code, _, err) = run(&rig, &["exec", "-i", ID, "--", "exit 42"], Some(b""));
    assert_eq!(code, 42, "{err}");
}

#[test]
fn a_megabyte_of_binary_stdin_arrives_byte_exact() {
    let rig = rig();
    let dir = tempfile::tempdir().unwrap();
    let file = common::random_file(dir.path(), "in", 1);
    let data = std::fs::read(&file).unwrap();
    let want = common::sha256_file(&file);
    let (code, out, err) = run(&rig, &["exec", "-i", ID, "--", "sha256sum"], Some(&data));
    assert_eq!(code, 0, "{err}");
    let got = String::from_utf8_lossy(&out);
    assert_eq!(got.split_whitespace().next(), Some(want.as_str()), "{got}");
}

/// Installs the separate-output document under `name` with `exec --install-document`.
fn install(rig: &Rig, name: &str) -> (i32, String, String) {
    let (code, out, err) = run(rig, &["exec", "--install-document", name], None);
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

#[test]
fn install_document_twice_succeeds_both_times_and_names_the_permissions() {
    let rig = rig();
    let (code, out, err) = install(&rig, "SessionProxy-Exec");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created"), "{out}");
    assert!(
        err.contains("ssm:CreateDocument") && err.contains("ssm:StartSession"),
        "{err}"
    );
    assert!(err.contains("--document SessionProxy-Exec"), "{err}");
    let (code, out, err) = install(&rig, "SessionProxy-Exec");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("already installed"), "{out}");
    // The name defaults to SessionProxy-Exec.
    let (code, out, err) = run(&rig, &["exec", "--install-document"], None);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("SessionProxy-Exec"));
}

#[test]
fn install_document_refuses_a_different_document_of_the_same_name() {
    let rig = rig();
    let other = r#"{"schemaVersion":"1.0","description":"someone else's","sessionType":"NonInteractiveCommands","parameters":{"command":{"type":"String"}},"properties":{"linux":{"commands":"{{ command }}"}}}"#;
    rig.sim.rt.block_on(async {
        let api = common::sim_api(Some(rig.sim.endpoint.clone())).await;
        api.create_document("Taken-Name", other).await.unwrap();
    });
    let (code, _, err) = install(&rig, "Taken-Name");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("different session document named Taken-Name"),
        "{err}"
    );
}

#[test]
fn exit_codes_propagate_and_stderr_is_separate_with_an_installed_document() {
    let rig = rig();
    let (code, _, err) = install(&rig, "SessionProxy-Exec");
    assert_eq!(code, 0, "{err}");
    let doc = ["exec", "--document", "SessionProxy-Exec", ID, "--"];
    for (script, want) in [("true", 0), ("false", 1), ("exit 42", 42)] {
        let args = [&doc[..], &[script]].concat();
        let (code, _, err) = run(&rig, &args, None);
        assert_eq!(code, want, "{script}: {err}");
    }
    let args = [&doc[..], &["echo out; echo err >&2; exit 3"]].concat();
    let (code, out, err) = run(&rig, &args, None);
    assert_eq!(code, 3, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "out\n");
    assert_eq!(err, "err\n", "only the command's stderr, no notice");
}

#[test]
fn the_config_names_the_separate_output_document() {
    let rig = rig();
    let (code, _, err) = install(&rig, "My-Exec");
    assert_eq!(code, 0, "{err}");
    let config = rig.home.path().join("config.yaml");
    std::fs::write(&config, "exec:\n  document: My-Exec\n").unwrap();
    let (code, out, err) = run(&rig, &["exec", ID, "--", "echo e >&2; exit 5"], None);
    assert_eq!((code, out.as_slice(), err.as_str()), (5, &b""[..], "e\n"));
}

#[test]
fn tty_mode_runs_the_command_in_a_pty_and_reports_its_status() {
    let rig = rig();
    let script = "test -t 0 && echo in-a-pty; exit 42";
    let (code, out, err) = run(&rig, &["exec", "-t", ID, "--", script], None);
    assert_eq!(code, 42, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "in-a-pty\r\n");
}

#[test]
fn sigterm_ends_the_session_and_exits_143() {
    let rig = rig();
    let mut child = cmd(&rig, &["exec", ID, "--", "sleep 100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rig.sim.sim().open_sessions() == 0 {
        assert!(std::time::Instant::now() < deadline, "no session opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(rig.sim.wait_no_open_sessions(Duration::from_secs(30)), 0);
}

#[test]
fn tty_mode_on_a_terminal_starts_at_its_size_and_restores_it() {
    let rig = rig();
    let dir = rig.home.path();
    let mut env: String = rig
        .sim
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={v} "))
        .collect();
    env.push_str(&format!("HOME={} ", dir.display()));
    let script = format!(
        "stty -a > before; env {env} {BIN} exec -t {ID} -- 'stty size; exit 3' > out 2>&1; \
         echo $? > rc; stty -a > after; touch done; sleep 60"
    );
    let sock = dir.join("tmux.sock");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
    };
    let dir_arg = dir.display().to_string();
    let started = tmux(&[
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        &dir_arg,
        &script,
    ]);
    assert!(started.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.join("done").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux(&["kill-server"]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    assert_eq!(read("rc").trim(), "3", "{}", read("out"));
    assert_eq!(read("out"), "30 100\r\n");
    assert_eq!(read("before"), read("after"), "the terminal is restored");
}

#[test]
fn ctrl_c_interrupts_the_remote_command() {
    use std::io::{BufRead, BufReader};
    let rig = rig();
    let (code, _, err) = install(&rig, "SessionProxy-Exec");
    assert_eq!(code, 0, "{err}");
    let script = "echo started; exec sleep 100";
    let args = ["exec", "--document", "SessionProxy-Exec", ID, "--", script];
    let mut child = cmd(&rig, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hung")
        .unwrap();
    // The agent's SIGINT killed `sleep`, which the agent reports as 128 + 2.
    assert_eq!(status.code(), Some(130));
}

#[test]
fn a_reader_that_closes_stdout_early_is_a_quiet_success() {
    let rig = rig();
    let mut child = cmd(&rig, &["exec", "-q", ID, "--", "seq 1 1000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"1\n");
    drop(child.stdout.take());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hung")
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
