//! The SSH client (`session_proxy::ssh`) against a real OpenSSH sshd on loopback, over plain
//! TCP (no SSM): host key policies, identity-file and ssh-agent authentication and their
//! errors, keepalive detection of a silent bastion, `direct-tcpip` data and
//! the mapping of the bastion's refusals to SOCKS reply codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::echo::{echo_server, echo_through, payload};
use common::sshd::keygen;
use common::Sshd;
use session_proxy::ssh::{
    HostKeyPolicy, KnownHosts, RejectKind, SshConnection, SshError, SshSettings,
};
use tokio::net::TcpStream;

const INSTANCE: &str = "i-0123456789abcdef0";

fn settings(sshd: &Sshd, known_hosts: PathBuf, policy: HostKeyPolicy) -> SshSettings {
    SshSettings {
        user: sshd.user.clone(),
        identity_files: vec![sshd.client_key.clone()],
        ssh_agent: false,
        pushed_key: None,
        host_key_policy: policy,
        known_hosts: KnownHosts::new(known_hosts),
        keepalive: Duration::from_secs(15),
    }
}

async fn connect(sshd: &Sshd, s: &SshSettings) -> Result<SshConnection, SshError> {
    let tcp = TcpStream::connect(sshd.addr).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        SshConnection::connect(tcp, INSTANCE, s),
    )
    .await
    .expect("connect finishes")
}

#[tokio::test]
async fn direct_tcpip_carries_a_megabyte_byte_exactly_to_a_loopback_echo_server() {
    let sshd = Sshd::start_with("");
    let (echo, _h) = echo_server().await;
    let s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    let conn = connect(&sshd, &s)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let data = payload(1 << 20, 1);
    let stream = conn
        .open_direct_tcpip("127.0.0.1", echo.port())
        .await
        .unwrap();
    let back = echo_through(stream, &data).await;
    assert!(
        back == data,
        "echo differs: {} bytes back of {}",
        back.len(),
        data.len()
    );
    // Host names are passed to the bastion unresolved.
    let stream = conn
        .open_direct_tcpip("localhost", echo.port())
        .await
        .unwrap();
    assert_eq!(echo_through(stream, b"hello").await, b"hello");
    conn.disconnect().await;
}

#[tokio::test]
async fn first_host_key_is_recorded_and_a_changed_one_is_refused_naming_the_line() {
    let sshd = Sshd::start_with("");
    let kh = sshd.dir.path().join("state/known_hosts");
    let s = settings(&sshd, kh.clone(), HostKeyPolicy::AcceptNew);
    connect(&sshd, &s)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.contains(&format!("{INSTANCE} ssh-ed25519 AAAA")),
        "{text}"
    );
    connect(&sshd, &s)
        .await
        .expect("the recorded key is accepted again");

    // Same instance id, new host key (a second sshd with the same client key).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::copy(&sshd.client_key, &key).unwrap();
    std::fs::copy(
        sshd.client_key.with_extension("pub"),
        key.with_extension("pub"),
    )
    .unwrap();
    let other = Sshd::start_in(dir, key, "");
    let mut s2 = settings(&other, kh.clone(), HostKeyPolicy::AcceptNew);
    s2.identity_files = vec![other.client_key.clone()];
    let e = connect(&other, &s2)
        .await
        .err()
        .expect("changed key refused");
    let msg = e.to_string();
    assert!(matches!(e, SshError::HostKey(_)), "{msg}");
    assert!(
        msg.contains("MISMATCH") && msg.contains(&kh.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("delete line 3"), "{msg}");
    // Strict refuses it the same way; Off lets it through.
    s2.host_key_policy = HostKeyPolicy::Strict;
    assert!(matches!(
        connect(&other, &s2).await,
        Err(SshError::HostKey(_))
    ));
    s2.host_key_policy = HostKeyPolicy::Off;
    connect(&other, &s2).await.expect("policy off accepts");
}

#[tokio::test]
async fn strict_policy_refuses_an_unknown_bastion_and_says_how_to_add_it() {
    let sshd = Sshd::start_with("");
    let kh = sshd.dir.path().join("known_hosts");
    let s = settings(&sshd, kh.clone(), HostKeyPolicy::Strict);
    let msg = connect(&sshd, &s).await.err().expect("refused").to_string();
    assert!(
        msg.contains("add this line") && msg.contains(INSTANCE),
        "{msg}"
    );
    assert!(!kh.exists());
}

#[tokio::test]
async fn rejected_keys_are_listed_with_user_and_instance() {
    let sshd = Sshd::start_with("");
    let wrong = sshd.dir.path().join("wrong");
    keygen(&wrong, "");
    let locked = sshd.dir.path().join("locked");
    keygen(&locked, "secret");
    let mut s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    s.identity_files = vec![
        locked.clone(),
        wrong.clone(),
        sshd.dir.path().join("missing"),
    ];
    let e = connect(&sshd, &s).await.err().expect("auth fails");
    let msg = e.to_string();
    assert!(matches!(e, SshError::Auth { .. }), "{msg}");
    assert!(msg.contains(&sshd.user) && msg.contains(INSTANCE), "{msg}");
    assert!(
        msg.contains(&format!("{} (not accepted)", wrong.display())),
        "{msg}"
    );
    assert!(
        msg.contains("passphrase-protected") && msg.contains("ssh-add"),
        "{msg}"
    );
    assert!(msg.contains("missing (skipped: cannot load"), "{msg}");
    // The good key after a bad one still gets in.
    s.identity_files = vec![wrong, sshd.client_key.clone()];
    connect(&sshd, &s).await.expect("second key accepted");
}

#[tokio::test]
async fn bastion_refusals_map_to_socks_reply_codes() {
    let sshd = Sshd::start_with("PermitOpen 127.0.0.1:*");
    let s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    let conn = connect(&sshd, &s)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    // A loopback port with nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    match conn.open_direct_tcpip("127.0.0.1", closed).await {
        Err(SshError::Rejected {
            kind, description, ..
        }) => {
            assert_eq!(kind, RejectKind::Refused, "{description}");
            assert_eq!(kind.socks_reply(), 5);
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // Outside PermitOpen: the bastion's policy forbids it.
    match conn.open_direct_tcpip("127.0.0.2", 80).await {
        Err(SshError::Rejected { kind, .. }) => assert_eq!(kind.socks_reply(), 2),
        other => panic!("expected prohibited, got {:?}", other.map(|_| ())),
    }
    // The connection survives refusals.
    let (echo, _h) = echo_server().await;
    let stream = conn
        .open_direct_tcpip("127.0.0.1", echo.port())
        .await
        .unwrap();
    assert_eq!(echo_through(stream, b"still up").await, b"still up");
}

#[tokio::test]
async fn connection_reports_closed_when_the_bastion_goes_away() {
    let sshd = Sshd::start_with("");
    let s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    let conn = connect(&sshd, &s).await.unwrap();
    assert!(!conn.is_closed());
    conn.disconnect().await;
    let why = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("closed");
    assert!(conn.is_closed(), "{why}");
    assert!(conn.open_direct_tcpip("127.0.0.1", 1).await.is_err());
}

/// Relays between `a` and `b` until `freeze` fires, then holds both open without moving a byte:
/// a bastion that vanished without closing anything (a dead NAT entry, a hung agent).
async fn freezable_relay(
    a: tokio::io::DuplexStream,
    b: TcpStream,
    mut freeze: tokio::sync::watch::Receiver<bool>,
) {
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = b.into_split();
    tokio::select! {
        _ = tokio::io::copy(&mut ar, &mut bw) => {}
        _ = tokio::io::copy(&mut br, &mut aw) => {}
        _ = freeze.wait_for(|f| *f) => {}
    }
    std::future::pending::<()>().await;
    drop((ar, aw, br, bw));
}

#[tokio::test]
async fn keepalives_detect_a_bastion_that_stops_answering() {
    let sshd = Sshd::start_with("");
    let mut s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    s.keepalive = Duration::from_millis(500);
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    let tcp = TcpStream::connect(sshd.addr).await.unwrap();
    let relay = tokio::spawn(freezable_relay(theirs, tcp, frozen));
    let conn = SshConnection::connect(mine, INSTANCE, &s).await.unwrap();
    // Idle but answering: keepalives are replied to, the connection stays up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !conn.is_closed(),
        "an idle, answering bastion must not be dropped"
    );
    freeze.send_replace(true);
    let started = std::time::Instant::now();
    let why = tokio::time::timeout(Duration::from_secs(15), conn.closed())
        .await
        .expect("keepalive timeout ends the connection");
    assert!(why.to_lowercase().contains("keepalive"), "{why}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    relay.abort();
}

/// A private `ssh-agent` on a socket in `dir`; killed on drop.
struct Agent {
    sock: PathBuf,
    child: std::process::Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    async fn start(dir: &std::path::Path) -> Self {
        let sock = dir.join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent socket never appeared"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { sock, child }
    }

    fn add(&self, key: &std::path::Path) {
        let out = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn ssh_agent_keys_are_tried_when_enabled() {
    // The only test in this binary that reads SSH_AUTH_SOCK.
    let sshd = Sshd::start_with("");
    let agent = Agent::start(sshd.dir.path()).await;
    std::env::set_var("SSH_AUTH_SOCK", &agent.sock);
    let mut s = settings(&sshd, sshd.dir.path().join("kh"), HostKeyPolicy::AcceptNew);
    s.identity_files.clear();
    s.ssh_agent = true;
    let msg = connect(&sshd, &s)
        .await
        .err()
        .expect("empty agent")
        .to_string();
    assert!(msg.contains("ssh-agent (no keys loaded)"), "{msg}");
    let wrong = sshd.dir.path().join("wrong");
    keygen(&wrong, "");
    agent.add(&wrong);
    agent.add(&sshd.client_key);
    connect(&sshd, &s)
        .await
        .unwrap_or_else(|e| panic!("agent key rejected: {e}"));
}
