//! `session-proxy stdio` as OpenSSH's ProxyCommand, end to end: the real `ssh` client, the
//! in-process simulator, and a real `sshd` on loopback. Bulk transfers compare SHA-256.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use session_proxy::sim::faults::{DirFaults, FaultPlan};
use session_proxy::sim::SimOptions;

const ID: &str = "i-0123456789abcdef0";

fn sim_for(sshd: &Sshd, faults: FaultPlan) -> SimHandle {
    let mut inst = instance(ID, sshd.addr);
    inst.name = Some("web-sim".into());
    SimHandle::start(SimOptions {
        instances: vec![inst],
        faults,
        ..SimOptions::default()
    })
}

#[test]
fn ssh_runs_a_remote_command_through_stdio() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let out = ssh_cmd(&sim, &sshd, ID, "")
        .arg("echo hello-from-sshd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello-from-sshd"
    );
    assert_eq!(
        sim.wait_no_open_sessions(Duration::from_secs(10)),
        0,
        "session left open"
    );
}

fn transfer_both_ways(sim: &SimHandle, sshd: &Sshd, mb: usize) {
    let file = random_file(sshd.dir.path(), "payload.bin", mb);
    let want = sha256_file(&file);
    // Down: remote cat → local sha256.
    let down = ssh_cmd(sim, sshd, ID, "")
        .arg(format!("cat {}", file.display()))
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "download failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(down.stdout.len(), mb * 1024 * 1024, "download length");
    let got = {
        let p = sshd.dir.path().join("down.bin");
        std::fs::write(&p, &down.stdout).unwrap();
        sha256_file(&p)
    };
    assert_eq!(got, want, "download corrupted");
    // Up: local file → remote sha256sum.
    let up = ssh_cmd(sim, sshd, ID, "")
        .arg("sha256sum")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "upload failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let remote = String::from_utf8_lossy(&up.stdout);
    assert_eq!(
        remote.split_whitespace().next(),
        Some(want.as_str()),
        "upload corrupted"
    );
}

#[test]
fn fifty_mb_down_and_up_are_byte_exact() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    transfer_both_ways(&sim, &sshd, 50);
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}

#[test]
fn fifty_mb_survive_loss_duplication_reordering_and_three_websocket_kills() {
    let sshd = Sshd::start();
    let f = DirFaults {
        drop: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        delay: Duration::ZERO,
    };
    let plan = FaultPlan {
        seed: 20261124,
        to_agent: f,
        to_client: f,
        // ~70 MB of frames cross per 50 MB session (data, headers, acks): 3 kills each way.
        kill_after_bytes: Some(17 * 1024 * 1024),
        kill_every: None,
    };
    let sim = sim_for(&sshd, plan);
    transfer_both_ways(&sim, &sshd, 50);
    let stats = sim.sim().stats();
    let kills: u64 = stats.iter().map(|s| s.faults.kills).sum();
    let dropped: u64 = stats.iter().map(|s| s.faults.dropped).sum();
    assert!(
        kills >= 6,
        "expected ≥3 WebSocket kills per transfer, got {kills} in total"
    );
    assert!(dropped > 1000, "fault plan did not drop frames ({dropped})");
    assert!(
        stats.iter().all(|s| s.client_reconnects >= 3),
        "every session resumed: {stats:?}"
    );
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}

#[test]
fn target_can_be_given_by_name_tag() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let out = ssh_cmd(&sim, &sshd, "web-sim", "")
        .arg("echo by-name")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "by-name");
}

fn stdio(sim: &SimHandle, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("stdio").args(args);
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    c
}

#[test]
fn offline_and_unknown_targets_fail_with_a_clear_message_and_no_host_code() {
    let sshd = Sshd::start();
    let mut off = instance("i-0fedcba9876543210", sshd.addr);
    off.online = false;
    off.name = Some("sleepy".into());
    let sim = SimHandle::start(SimOptions {
        instances: vec![off],
        ..SimOptions::default()
    });
    let out = stdio(&sim, &["i-0fedcba9876543210"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(68), "{err}");
    assert!(
        err.contains("i-0fedcba9876543210") && err.contains("not connected"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");

    let out = stdio(&sim, &["sleepy"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(68), "{err}");
    assert!(err.contains("not connected"), "{err}");

    let out = stdio(&sim, &["no-such-host"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(68), "{err}");
    assert!(
        err.contains("no-such-host") && err.contains("tag:Name"),
        "{err}"
    );
}

#[test]
fn unsupported_document_is_an_aws_api_error() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let out = stdio(&sim, &[ID, "--document", "AWS-RunShellScript"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(BIN)
        .args(["stdio", "i-0123456789abcdef0", "-p", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// The official plugin exits on stdin EOF and drops output still in flight; we must not.
#[test]
fn stdin_eof_still_delivers_all_output_in_flight() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let payload: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let expect = payload.clone();
    let t = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut line = [0u8; 3];
        s.read_exact(&mut line).unwrap();
        // Answer slowly enough that the client has long seen stdin EOF.
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(&payload).unwrap();
    });
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let mut child = stdio(&sim, &[ID, "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut got = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    let status = child.wait().unwrap();
    t.join().unwrap();
    assert!(status.success(), "exit {status:?}");
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "output corrupted");
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}

#[test]
fn target_can_be_a_config_alias() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let cfg = sshd.dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!("hosts:\n  my-box:\n    target: {ID}\n    region: us-east-1\n"),
    )
    .unwrap();
    let out = ssh_cmd(
        &sim,
        &sshd,
        "my-box",
        &format!("--config {}", cfg.display()),
    )
    .arg("echo by-alias")
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "by-alias");
}

/// The real `scp` and `sftp` clients, which drive the SSH connection differently from `ssh`.
#[test]
fn scp_and_sftp_copy_files_byte_exactly() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let d = sshd.dir.path();
    let src = random_file(d, "src.bin", 8);
    let common = |c: &mut Command| via_proxy(c, &sim, &sshd, "");
    // scp up then down (the remote path is on the same machine).
    let remote_copy = d.join("via-scp.bin");
    let mut up = Command::new("scp");
    common(&mut up);
    let st = up
        .arg(&src)
        .arg(format!("{}@{ID}:{}", user(), remote_copy.display()))
        .status()
        .unwrap();
    assert!(st.success(), "scp up");
    assert_eq!(sha256_file(&remote_copy), sha256_file(&src));
    let back = d.join("back-scp.bin");
    let mut down = Command::new("scp");
    common(&mut down);
    let st = down
        .arg(format!("{}@{ID}:{}", user(), remote_copy.display()))
        .arg(&back)
        .status()
        .unwrap();
    assert!(st.success(), "scp down");
    assert_eq!(sha256_file(&back), sha256_file(&src));
    // sftp in batch mode.
    let sftp_copy = d.join("via-sftp.bin");
    let batch = d.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            src.display(),
            sftp_copy.display(),
            sftp_copy.display(),
            d.join("back-sftp.bin").display()
        ),
    )
    .unwrap();
    let mut sftp = Command::new("sftp");
    common(&mut sftp);
    let out = sftp
        .arg("-b")
        .arg(&batch)
        .arg(format!("{}@{ID}", user()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&sftp_copy), sha256_file(&src));
    assert_eq!(sha256_file(&d.join("back-sftp.bin")), sha256_file(&src));
    assert_eq!(sim.wait_no_open_sessions(Duration::from_secs(10)), 0);
}

/// Downloads `file` with `cat` through `stdio -v`: what came, and stdio's log.
fn verbose_cat(sim: &SimHandle, sshd: &Sshd, file: &std::path::Path) -> (Vec<u8>, String) {
    let out = ssh_cmd(sim, sshd, ID, "-v")
        .env_remove("SESSION_PROXY_LOG")
        .arg(format!("cat {}", file.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ssh failed: {err}");
    (out.stdout, err)
}

/// Numbers in `stdio -v`'s one-line summary, by their label.
fn summary_numbers(stderr: &str) -> Option<(u64, u64, u64, u64, f64)> {
    let line = stderr.lines().find(|l| l.contains(" summary: "))?;
    let fields = line.split(" summary: ").nth(1)?;
    let num = |label: &str| -> Option<&str> {
        fields
            .split(", ")
            .find(|f| f.ends_with(label))
            .and_then(|f| f.split_whitespace().next())
    };
    Some((
        num("bytes sent")?.parse().ok()?,
        num("bytes received")?.parse().ok()?,
        num("resumes")?.parse().ok()?,
        num("retransmits")?.parse().ok()?,
        // The duration comes last, as "1.6s".
        fields
            .rsplit(", ")
            .next()?
            .trim()
            .trim_end_matches('s')
            .parse()
            .ok()?,
    ))
}

#[test]
fn verbose_stdio_prints_a_session_summary_with_real_counters_on_exit() {
    let sshd = Sshd::start();
    let sim = sim_for(&sshd, FaultPlan::default());
    let file = random_file(sshd.dir.path(), "summary.bin", 1);
    let (got, err) = verbose_cat(&sim, &sshd, &file);
    assert_eq!(got.len(), 1024 * 1024, "download length");
    assert_eq!(
        err.lines().filter(|l| l.contains(" summary: ")).count(),
        1,
        "one summary line: {err}"
    );
    let (sent, received, resumes, retransmits, secs) =
        summary_numbers(&err).unwrap_or_else(|| panic!("no parsable summary line in: {err}"));
    // SSH's own handshake goes up; the file (plus SSH framing) comes down.
    assert!(sent > 0, "{err}");
    assert!(received > 1024 * 1024, "{err}");
    assert_eq!(resumes, 0, "no WebSocket was killed: {err}");
    assert!(retransmits < 1000, "a clean loopback link: {err}");
    assert!(secs > 0.0 && secs < 120.0, "{err}");
}

#[test]
fn a_closed_port_on_the_instance_is_one_line_naming_instance_and_port_and_68() {
    let (_held, port) = refusing_port();
    let sim = SimHandle::start(SimOptions {
        instances: vec![instance(ID, format!("127.0.0.1:{port}").parse().unwrap())],
        ..SimOptions::default()
    });
    let out = stdio(&sim, &[ID, "-p", "2222"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(68), "{err}");
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(
        err.contains(ID) && err.contains("port 2222") && err.contains("-p"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

/// A number in `stdio -v`'s summary line, by its label ("messages received", "link reads").
fn summary_count(stderr: &str, label: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains(" summary: "))?;
    let field = line.split(", ").find(|f| f.ends_with(label))?;
    field
        .strip_suffix(label)?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The real agent sends a 1 KiB message, sleeps 1 ms, and sends the next. Once such a stream
/// is steady the client raises its socket's receive low-water mark and reads several messages
/// per wake-up (`driver::batch`): far fewer link reads than messages, and the file arrives
/// byte-exact. One wake-up per message, as before batching, fails the ratio.
#[test]
fn a_download_at_the_agents_pace_is_read_several_messages_per_wake_up() {
    let sshd = Sshd::start();
    let mut opts = SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        ..SimOptions::default()
    };
    opts.knobs.pace = Some(Duration::from_millis(1));
    let sim = SimHandle::start(opts);
    let file = random_file(sshd.dir.path(), "paced.bin", 2);
    let (got, err) = verbose_cat(&sim, &sshd, &file);
    let down = sshd.dir.path().join("paced-down.bin");
    std::fs::write(&down, got).unwrap();
    assert_eq!(sha256_file(&down), sha256_file(&file), "download corrupted");
    let messages = summary_count(&err, "messages received").expect("message count");
    let reads = summary_count(&err, "link reads").expect("link read count");
    assert!(messages >= 2048, "2 MiB in 1 KiB messages: {err}");
    assert!(
        reads * 3 < messages,
        "{reads} link reads for {messages} messages: not batched"
    );
}
