//! The signed data-channel upgrade (§1.4) end to end: the real `ssh` client through
//! `session-proxy stdio` to a simulator that refuses upgrades not SigV4-signed with its key,
//! resumes that re-sign, and a wrong secret refused with the credentials exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use session_proxy::sim::faults::FaultPlan;
use session_proxy::sim::SimOptions;
use tokio_tungstenite::tungstenite;

const ID: &str = "i-0123456789abcdef0";

fn signing_sim(sshd: &Sshd, faults: FaultPlan) -> SimHandle {
    SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        faults,
        require_signed_upgrade: true,
        ..SimOptions::default()
    })
}

#[test]
fn ssh_through_a_sim_requiring_signed_upgrades_is_byte_exact_and_resumes_re_sign() {
    let sshd = Sshd::start();
    let sim = signing_sim(
        &sshd,
        FaultPlan {
            kill_after_bytes: Some(3 * 1024 * 1024),
            ..FaultPlan::default()
        },
    );
    let file = random_file(sshd.dir.path(), "payload.bin", 8);
    let out = ssh_cmd(&sim, &sshd, ID, "")
        .arg(format!("cat {}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sshd.dir.path().join("down.bin");
    std::fs::write(&got, &out.stdout).unwrap();
    assert_eq!(sha256_file(&got), sha256_file(&file), "download corrupted");
    let reconnects: u32 = sim.sim().stats().iter().map(|s| s.client_reconnects).sum();
    assert!(reconnects >= 2, "the kill fault did not fire: {reconnects}");
    let up = sim.sim().upgrades();
    assert_eq!(up.refused, 0, "{up:?}");
    assert_eq!(
        up.signed,
        1 + u64::from(reconnects),
        "every dial signed: {up:?}"
    );
}

#[test]
fn a_wrong_secret_is_refused_at_the_upgrade_with_exit_77_naming_the_cause() {
    let sshd = Sshd::start();
    let sim = signing_sim(&sshd, FaultPlan::default());
    let mut c = Command::new(BIN);
    c.args(["stdio", ID, "-p", "22"]);
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    let out = c
        .env("AWS_SECRET_ACCESS_KEY", "not-the-simulator-secret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "stderr: {stderr}");
    assert!(
        stderr.contains("refused the WebSocket upgrade (HTTP 403")
            && stderr.contains("signature does not match")
            && stderr.contains("check the AWS credentials"),
        "stderr: {stderr}"
    );
    assert!(
        !stderr.contains("not-the-simulator-secret"),
        "secret leaked"
    );
    assert_eq!(sim.sim().upgrades().refused, 1);
    assert_eq!(
        sim.wait_no_open_sessions(Duration::from_secs(10)),
        0,
        "session left open"
    );
}

/// A raw, unsigned upgrade: what the status of the handshake is.
fn unsigned_upgrade_status(sim: &SimHandle) -> u16 {
    let url = format!(
        "ws://{}/v1/data-channel/s-0123456789abcdef0",
        sim.sim().addr()
    );
    sim.rt.block_on(async {
        match tokio_tungstenite::connect_async(url).await {
            Ok((_ws, resp)) => resp.status().as_u16(),
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("upgrade failed otherwise: {e}"),
        }
    })
}

#[test]
fn unsigned_upgrades_are_refused_only_when_the_sim_requires_signatures() {
    let sshd = Sshd::start();
    let strict = signing_sim(&sshd, FaultPlan::default());
    assert_eq!(unsigned_upgrade_status(&strict), 403);
    let lax = SimHandle::start(SimOptions {
        instances: vec![instance(ID, sshd.addr)],
        ..SimOptions::default()
    });
    assert_eq!(unsigned_upgrade_status(&lax), 101);
    assert_eq!(lax.sim().upgrades().unsigned, 1);
}
