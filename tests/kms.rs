//! KMS-encrypted sessions against the simulator's KMS (issue 14, points 3 and 4): botocore
//! parses the simulated GenerateDataKey and Decrypt answers and gets the right error codes;
//! and a client driver with the real aws-sdk-kms key service and an agent driver with the
//! simulator's key service complete the KMS handshake and move ciphertext, while a client
//! that binds the key to the wrong target is refused by the agent's Decrypt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::botocore;

use std::process::Command;
use std::time::{Duration, Instant};

use session_proxy::sim::agent::AgentKnobs;
use session_proxy::sim::kms::AgentKeys;
use session_proxy::sim::memlink::{self, MemLink};
use session_proxy::sim::SimOptions;
use session_proxy::ssm::channel::{Channel, Config, KmsOffer, Role, ENCRYPTED_MESSAGE};
use session_proxy::ssm::driver::{
    self, BoxFuture, ByteStream, Control, DriverError, End, Options, Parts, ReconnectError, Status,
    Transport,
};
use session_proxy::ssm::kms::{AwsKeyService, KeyProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-sim";
const ID: &str = "i-0123456789abcdef0";
const SESSION: &str = "kms-test-session";

fn sim_with_kms() -> common::SimHandle {
    // Never dialed: these tests talk KMS, or run their own agent.
    let addr = "127.0.0.1:9".parse().unwrap();
    common::SimHandle::start(SimOptions {
        instances: vec![common::instance(ID, addr)],
        knobs: AgentKnobs {
            kms_key_id: Some(ARN.into()),
            ..AgentKnobs::default()
        },
        ..SimOptions::default()
    })
}

const BOTOCORE_SCRIPT: &str = r#"
import os, sys
import botocore.session
from botocore.exceptions import ClientError
arn = sys.argv[1]
kms = botocore.session.get_session().create_client("kms", region_name="us-east-1",
                                                    endpoint_url=os.environ["AWS_ENDPOINT_URL"])
ctx = {"aws:ssm:SessionId": "s-1", "aws:ssm:TargetId": "i-1"}
out = kms.generate_data_key(KeyId=arn, NumberOfBytes=64, EncryptionContext=ctx)
assert len(out["Plaintext"]) == 64, out
assert out["KeyId"] == arn, out["KeyId"]
back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=ctx)
assert back["Plaintext"] == out["Plaintext"]
assert back["KeyId"] == arn
def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "no error"
wrong = dict(ctx, **{"aws:ssm:TargetId": "i-2"})
print("wrong-context", code(lambda: kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=wrong)))
print("unknown-key", code(lambda: kms.generate_data_key(KeyId=arn + "-other", NumberOfBytes=64)))
print("ok")
"#;

#[test]
fn botocore_parses_the_simulated_kms_and_gets_its_error_codes() {
    let sim = sim_with_kms();
    let stdout = botocore(BOTOCORE_SCRIPT, &[ARN], &sim.env());
    assert!(
        stdout.contains("wrong-context InvalidCiphertextException"),
        "{stdout}"
    );
    assert!(stdout.contains("unknown-key NotFoundException"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
}

/// The agent's end of an in-process link never comes back; nor does the client's here.
struct NoReconnect;

impl Transport<MemLink> for NoReconnect {
    fn reconnect(&mut self, _attempt: u32) -> BoxFuture<Result<MemLink, ReconnectError>> {
        Box::pin(async { Err(ReconnectError::LinkClosed) })
    }
}

struct Ends {
    client_io: tokio::io::DuplexStream,
    agent_io: tokio::io::DuplexStream,
    client_status: watch::Receiver<Status>,
    agent_status: watch::Receiver<Status>,
    client: tokio::task::JoinHandle<Result<End, DriverError>>,
    agent: tokio::task::JoinHandle<Result<End, DriverError>>,
    _commands: (mpsc::Sender<driver::Command>, mpsc::Sender<driver::Command>),
}

fn spawn_driver(
    ch: Channel,
    link: MemLink,
    app: tokio::io::DuplexStream,
    keys: KeyProvider,
) -> (
    watch::Receiver<Status>,
    tokio::task::JoinHandle<Result<End, DriverError>>,
    mpsc::Sender<driver::Command>,
) {
    let (cmd_tx, commands) = mpsc::channel(1);
    let (status, rx) = watch::channel(Status::default());
    let parts = Parts {
        channel: ch,
        link: Some(link),
        app: ByteStream::ready(app),
        transport: NoReconnect,
        opts: Options {
            keys: Some(keys),
            reconnect_budget: Duration::from_millis(200),
            ..Options::default()
        },
    };
    let control = Control {
        commands,
        status,
        shutdown: Box::pin(std::future::pending()),
    };
    let task = tokio::spawn(async move { driver::run(parts, control).await.0 });
    (rx, task, cmd_tx)
}

/// A shell session's two ends: the client's key service is aws-sdk-kms against the
/// simulator's endpoint, binding the key to `client_target`; the agent decrypts through the
/// simulator's KMS with its own instance id.
async fn shell_ends(sim: &common::SimHandle, client_target: &str, key_id: &str) -> Ends {
    let api = common::sim_api(Some(sim.endpoint.clone())).await;
    let client_keys = AwsKeyService::new(api.kms_client(), SESSION, client_target);
    let agent_keys = AgentKeys {
        kms: sim.sim().registry().kms(),
        session_id: SESSION.into(),
        instance_id: ID.into(),
    };
    let mut agent_cfg = Config::new(Role::Agent);
    agent_cfg.session_type = "Standard_Stream".into();
    agent_cfg.properties = serde_json::Value::Null;
    agent_cfg.require_handshake = false;
    agent_cfg.kms = Some(KmsOffer {
        key_id: key_id.into(),
        challenge: [3; 16],
        proof: [4; 64],
    });
    let now = Instant::now();
    let (client_link, agent_link) = memlink::pair(64);
    let (client_io, client_app) = tokio::io::duplex(1 << 16);
    let (agent_io, agent_app) = tokio::io::duplex(1 << 16);
    let (client_status, client, c1) = spawn_driver(
        Channel::new(Config::new(Role::Client), now),
        client_link,
        client_app,
        KeyProvider::new(client_keys),
    );
    let (agent_status, agent, c2) = spawn_driver(
        Channel::new(agent_cfg, now),
        agent_link,
        agent_app,
        KeyProvider::new(agent_keys),
    );
    Ends {
        client_io,
        agent_io,
        client_status,
        agent_status,
        client,
        agent,
        _commands: (c1, c2),
    }
}

async fn read_n(io: &mut tokio::io::DuplexStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(30), io.read_exact(&mut buf))
        .await
        .expect("hang guard: nothing arrived in 30 s")
        .unwrap();
    buf
}

#[test]
fn a_shell_session_with_a_kms_key_moves_ciphertext_both_ways() {
    let sim = sim_with_kms();
    sim.rt.block_on(async {
        let mut e = shell_ends(&sim, ID, ARN).await;
        e.agent_io
            .write_all(b"$ prompt from the shell\n")
            .await
            .unwrap();
        let got = read_n(&mut e.client_io, 24).await;
        assert_eq!(got, b"$ prompt from the shell\n");
        e.client_io.write_all(b"echo hi\n").await.unwrap();
        assert_eq!(read_n(&mut e.agent_io, 8).await, b"echo hi\n");

        let client = e.client_status.borrow().clone();
        let agent = e.agent_status.borrow().clone();
        let said = client.session.map(|s| s.customer_message);
        assert_eq!(said.as_deref(), Some(ENCRYPTED_MESSAGE));
        assert!(agent.stats.encrypted_sent >= 1, "{:?}", agent.stats);
        assert!(client.stats.decrypted_received >= 1, "{:?}", client.stats);
        assert!(client.stats.encrypted_sent >= 1, "{:?}", client.stats);
        assert!(agent.stats.decrypted_received >= 1, "{:?}", agent.stats);
        // 24 bytes of shell output and 8 of input, each 28 bytes longer on the wire.
        assert!(agent.stats.bytes_sent >= 24 + 28, "{:?}", agent.stats);
        e.client.abort();
        e.agent.abort();
    });
}

#[test]
fn a_client_that_binds_the_key_to_the_wrong_target_is_refused_by_the_agents_decrypt() {
    let sim = sim_with_kms();
    sim.rt.block_on(async {
        let e = shell_ends(&sim, "i-0fffffffffffffff0", ARN).await;
        let agent_end = tokio::time::timeout(Duration::from_secs(30), e.agent)
            .await
            .expect("hang guard: the agent did not end in 30 s")
            .unwrap();
        let err = agent_end.expect_err("the agent must refuse the session");
        let text = format!("{:#}", anyhow::Error::new(err));
        assert!(text.contains("KMS Decrypt failed"), "{text}");
        assert!(text.contains("InvalidCiphertextException"), "{text}");
        let client = e.client_status.borrow().clone();
        assert!(!client.ready, "the client must not see a ready session");
        e.client.abort();
    });
}

#[test]
fn a_failed_generate_data_key_ends_the_client_with_the_kms_error_and_tells_the_agent() {
    let sim = sim_with_kms();
    sim.rt.block_on(async {
        let other = "arn:aws:kms:us-east-1:111122223333:key/not-held";
        let e = shell_ends(&sim, ID, other).await;
        let client_end = tokio::time::timeout(Duration::from_secs(30), e.client)
            .await
            .expect("hang guard: the client did not end in 30 s")
            .unwrap();
        let err = client_end.expect_err("the client must fail");
        assert!(matches!(err, DriverError::Kms(_)), "{err:?}");
        let text = format!("{:#}", anyhow::Error::new(err));
        assert!(text.contains("kms:GenerateDataKey"), "{text}");
        assert!(text.contains(other), "{text}");
        let agent_end = tokio::time::timeout(Duration::from_secs(30), e.agent)
            .await
            .expect("hang guard: the agent did not end in 30 s")
            .unwrap();
        let text = format!("{:#}", anyhow::Error::new(agent_end.unwrap_err()));
        assert!(text.contains("KMSEncryption"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    });
}

/// A simulator on the test's runtime whose agent encrypts shell sessions with [`ARN`]; its
/// instance's port sessions reach `target`.
async fn kms_sim_to(target: std::net::SocketAddr) -> session_proxy::sim::Sim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = SimOptions {
        instances: vec![common::instance(ID, target)],
        knobs: AgentKnobs {
            kms_key_id: Some(ARN.into()),
            ..AgentKnobs::default()
        },
        ..SimOptions::default()
    };
    session_proxy::sim::Sim::start(l, opts).unwrap()
}

async fn kms_sim() -> session_proxy::sim::Sim {
    // Never dialed: shell sessions run a pty.
    kms_sim_to("127.0.0.1:9".parse().unwrap()).await
}

/// Reads until `want` shows up; returns everything read.
async fn wait_for(io: &mut tokio::io::DuplexStream, want: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(60), async {
        while !String::from_utf8_lossy(&seen).contains(want) {
            let n = io.read(&mut buf).await.unwrap();
            assert!(n > 0, "the session ended before {want:?}: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("hang guard: no {want:?} in 60 s: {seen:?}"));
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_session_on_a_kms_simulator_works_and_its_wire_carries_ciphertext() {
    use session_proxy::ssm::api::SessionRequest;
    use session_proxy::ssm::session::{Session, SessionOptions};
    let sim = kms_sim().await;
    let api = std::sync::Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let (mut mine, theirs) = tokio::io::duplex(1 << 16);
    let req = SessionRequest {
        target: ID.into(),
        document: "SSM-SessionManagerRunShell".into(),
        parameters: vec![],
    };
    let app = ByteStream::ready(theirs);
    let session = Session::start_layer(api, &req, app, SessionOptions::default())
        .await
        .unwrap();
    mine.write_all(b"echo $((6*7))-encrypted\n").await.unwrap();
    wait_for(&mut mine, "42-encrypted").await;

    let status = session.status().borrow().clone();
    let said = status.session.map(|s| s.customer_message);
    assert_eq!(said.as_deref(), Some(ENCRYPTED_MESSAGE));
    assert!(status.stats.decrypted_received >= 1, "{:?}", status.stats);
    assert!(status.stats.encrypted_sent >= 1, "{:?}", status.stats);
    let agent = sim.stats().into_iter().next().unwrap().agent;
    assert!(agent.encrypted_sent >= 1, "{agent:?}");
    assert!(agent.decrypted_received >= 1, "{agent:?}");
    assert_eq!(agent.decrypt_failures, 0);
    mine.write_all(b"exit\n").await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(60), session.finish())
        .await
        .expect("hang guard: the session did not end in 60 s")
        .unwrap();
    assert!(matches!(end, End::ChannelClosed { .. }), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_key_names_the_wrong_target_is_closed_with_the_kms_refusal() {
    use session_proxy::ssm::api::SessionRequest;
    use session_proxy::ssm::session::{Session, SessionOptions};
    let sim = kms_sim().await;
    let api = std::sync::Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let req = SessionRequest {
        target: ID.into(),
        document: "SSM-SessionManagerRunShell".into(),
        parameters: vec![],
    };
    let ticket = api.start_session(&req).await.unwrap();
    // The client binds the data key to another instance than the agent's own.
    let keys = AwsKeyService::new(api.kms_client(), &ticket.session_id, "i-0fffffffffffffff0");
    let mut opts = SessionOptions::default();
    opts.driver.keys = Some(KeyProvider::new(keys));
    let (_mine, theirs) = tokio::io::duplex(1 << 16);
    let app = ByteStream::ready(theirs);
    let session = Session::attach_layer(api, ticket, app, opts).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(60), session.finish())
        .await
        .expect("hang guard: the session did not end in 60 s")
        .unwrap();
    let End::ChannelClosed { output } = end else {
        panic!("expected channel_closed, got {end:?}");
    };
    assert!(output.contains("KMS Decrypt failed"), "{output}");
    assert!(output.contains("InvalidCiphertextException"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_interactive_command_on_a_kms_simulator_sends_its_output_encrypted() {
    use session_proxy::ssm::api::SessionRequest;
    use session_proxy::ssm::session::{Session, SessionOptions};
    let sim = kms_sim().await;
    let api = std::sync::Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let (mut mine, theirs) = tokio::io::duplex(1 << 16);
    let req = SessionRequest {
        target: ID.into(),
        document: "AWS-StartNonInteractiveCommand".into(),
        parameters: vec![("command".into(), "echo non-interactive-output".into())],
    };
    let session = Session::start_layer(
        api,
        &req,
        ByteStream::ready(theirs),
        SessionOptions::default(),
    )
    .await
    .unwrap();
    wait_for(&mut mine, "non-interactive-output").await;
    let end = tokio::time::timeout(Duration::from_secs(60), session.finish())
        .await
        .expect("hang guard: the session did not end in 60 s")
        .unwrap();
    assert!(matches!(end, End::ChannelClosed { .. }), "{end:?}");
    let agent = sim.stats().into_iter().next().unwrap().agent;
    assert!(agent.encrypted_sent >= 1, "{agent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_sessions_are_never_encrypted_even_with_a_kms_key() {
    use session_proxy::ssm::api::SessionRequest;
    use session_proxy::ssm::session::{Session, SessionOptions};
    let (echo, _server) = common::echo::echo_server().await;
    let sim = kms_sim_to(echo).await;
    let api = std::sync::Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let (mut mine, theirs) = tokio::io::duplex(1 << 16);
    let session = Session::start(
        api,
        &SessionRequest::ssh(ID, 22),
        theirs,
        SessionOptions::default(),
    )
    .await
    .unwrap();
    let data = common::echo::payload(4096, 7);
    mine.write_all(&data).await.unwrap();
    assert_eq!(read_n(&mut mine, data.len()).await, data);
    let status = session.status().borrow().clone();
    assert_eq!(
        status.session.map(|s| s.customer_message).as_deref(),
        Some("")
    );
    let agent = sim.stats().into_iter().next().unwrap().agent;
    assert_eq!(
        (agent.encrypted_sent, agent.decrypted_received),
        (0, 0),
        "{agent:?}"
    );
    session.request_stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(60), session.finish()).await;
}

/// `sim --kms-key-id` and `shell`, both the real binary: the shell works, says the session is
/// encrypted, and the simulator's stats file counts sealed payloads both ways.
#[test]
fn the_shell_command_against_sim_kms_key_id_is_encrypted_end_to_end() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut sim = KillOnDrop(
        Command::new(common::BIN)
            .args(["sim", "--kms-key-id", ARN, "--target"])
            .arg(format!("{ID}=127.0.0.1:9"))
            .arg("--stats-file")
            .arg(&stats)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sim = &mut sim.0;
    // The env lines come once the simulator listens.
    let mut env = vec![
        ("AWS_CONFIG_FILE".to_owned(), "/dev/null".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            "/dev/null".to_owned(),
        ),
    ];
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    while !env.iter().any(|(k, _)| k == "AWS_EC2_METADATA_DISABLED") {
        let line = lines
            .next()
            .expect("sim exited before its env lines")
            .unwrap();
        let (k, v) = line.trim_start_matches("export ").split_once('=').unwrap();
        env.push((k.to_owned(), v.to_owned()));
    }
    let mut shell = Command::new(common::BIN)
        .args(["shell", ID])
        .envs(env)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo sealed-$((6*7))\n")
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(shell.wait_with_output()));
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("hang guard: shell did not end at stdin EOF in 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("sealed-42"), "{stdout}");
    assert!(stderr.contains(ENCRYPTED_MESSAGE), "{stderr}");

    // SIGTERM: the simulator writes its stats and exits.
    let pid = i32::try_from(sim.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = sim.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let agent = &json["sessions"][0]["agent"];
    assert!(agent["encrypted_sent"].as_u64().unwrap() >= 1, "{json}");
    assert!(agent["decrypted_received"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(agent["decrypt_failures"].as_u64(), Some(0), "{json}");
}

/// A child killed if the test fails before it ends it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
