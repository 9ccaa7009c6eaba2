//! The demo instance's russh server, over plain TCP with session-proxy's own SSH client: the
//! generated key logs in and a stranger's key is refused, `direct-tcpip` reaches the demo page
//! and a closed port is refused with a channel-open failure, keys survive a restart, and the
//! real OpenSSH `sftp` client cannot reach outside the demo home.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use session_proxy::sim::demo::{Demo, INSTANCE_ID, PAGE_TITLE};
use session_proxy::ssh::{HostKeyPolicy, KnownHosts, SshConnection, SshError, SshSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn settings(key: &Path, known_hosts: &Path) -> SshSettings {
    SshSettings {
        user: "anyone".into(),
        identity_files: vec![key.to_owned()],
        ssh_agent: false,
        pushed_key: None,
        host_key_policy: HostKeyPolicy::AcceptNew,
        known_hosts: KnownHosts::new(known_hosts),
        keepalive: Duration::from_secs(15),
    }
}

async fn connect(demo: &Demo, s: &SshSettings) -> Result<SshConnection, SshError> {
    let tcp = TcpStream::connect(demo.ssh_addr()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        SshConnection::connect(tcp, INSTANCE_ID, s),
    )
    .await
    .expect("connect finishes")
}

#[tokio::test]
async fn generated_key_logs_in_and_direct_tcpip_reaches_the_demo_page() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let s = settings(&demo.files.client_key, &dir.path().join("kh"));
    let conn = connect(&demo, &s).await.unwrap();
    let web = demo.web_addr();
    let mut stream = conn
        .open_direct_tcpip(&web.ip().to_string(), web.port())
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains(PAGE_TITLE), "{text}");
    conn.disconnect().await;
    demo.shutdown().await;
}

#[tokio::test]
async fn direct_tcpip_to_a_closed_port_is_refused_with_an_open_failure() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let s = settings(&demo.files.client_key, &dir.path().join("kh"));
    let conn = connect(&demo, &s).await.unwrap();
    let (_reserved, port) = common::refusing_port();
    match conn.open_direct_tcpip("127.0.0.1", port).await {
        Err(SshError::Rejected { .. }) => {}
        Err(e) => panic!("expected a channel-open failure, got {e}"),
        Ok(_) => panic!("a closed port was opened"),
    }
    // The connection survives the refusal.
    let web = demo.web_addr();
    assert!(conn
        .open_direct_tcpip(&web.ip().to_string(), web.port())
        .await
        .is_ok());
    demo.shutdown().await;
}

#[tokio::test]
async fn a_key_other_than_the_generated_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let stranger = dir.path().join("stranger");
    PrivateKey::from(Ed25519Keypair::from_seed(&rand::random()))
        .write_openssh_file(&stranger, LineEnding::LF)
        .unwrap();
    let s = settings(&stranger, &dir.path().join("kh"));
    match connect(&demo, &s).await {
        Err(SshError::Auth { tried, .. }) => {
            assert!(
                tried.iter().any(|t| t.contains("not accepted")),
                "{tried:?}"
            )
        }
        Err(e) => panic!("expected an auth failure, got {e}"),
        Ok(_) => panic!("a stranger's key was accepted"),
    }
    demo.shutdown().await;
}

#[tokio::test]
async fn keys_are_reused_across_restarts_and_the_private_key_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let first = Demo::start(&d).await.unwrap();
    let key = std::fs::read(&first.files.client_key).unwrap();
    let known = std::fs::read(&first.files.known_hosts).unwrap();
    let mode = std::fs::metadata(&first.files.client_key)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    first.shutdown().await;
    let second = Demo::start(&d).await.unwrap();
    assert_eq!(std::fs::read(&second.files.client_key).unwrap(), key);
    assert_eq!(std::fs::read(&second.files.known_hosts).unwrap(), known);
    second.shutdown().await;
}

#[tokio::test]
async fn sftp_paths_cannot_leave_the_demo_home() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo")).await.unwrap();
    let src = dir.path().join("src.txt");
    std::fs::write(&src, "inside\n").unwrap();
    let batch = format!(
        "put {src} ../../../escape.txt\nput {src} /../a/../escape2.txt\n-rmdir ..\n-rename / gone\n",
        src = src.display()
    );
    let mut child = tokio::process::Command::new("timeout")
        .arg("60")
        .arg("sftp")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "HostKeyAlias=demo-bastion",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            demo.files.known_hosts.display()
        ))
        .arg("-i")
        .arg(&demo.files.client_key)
        .arg("-P")
        .arg(demo.ssh_addr().port().to_string())
        .args(["-b", "-", "demo@127.0.0.1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(batch.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "sftp failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let home = &demo.files.home;
    assert_eq!(
        std::fs::read_to_string(home.join("escape.txt")).unwrap(),
        "inside\n"
    );
    assert!(home.join("escape2.txt").exists());
    assert!(!dir.path().join("escape.txt").exists());
    assert!(!dir.path().join("demo/escape.txt").exists());
    assert!(home.is_dir(), "the home directory was removed or renamed");
    demo.shutdown().await;
}
