//! Two drivers, client and agent, joined by the simulator's in-process link: bytes cross both
//! ways through the application layers, and the ends and errors come out typed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::sim::memlink::{self, MemLink};
use crate::ssm::channel::{Config, Role};

struct NoReconnect;

impl Transport<MemLink> for NoReconnect {
    fn reconnect(&mut self, _attempt: u32) -> BoxFuture<Result<MemLink, ReconnectError>> {
        Box::pin(async { Err(ReconnectError::LinkClosed) })
    }
}

type Ended = (Result<End, DriverError>, Option<MemLink>);

fn spawn_driver<P: AppLayer>(
    role: Role,
    link: MemLink,
    app: P,
) -> (
    tokio::task::JoinHandle<Ended>,
    watch::Receiver<Status>,
    mpsc::Sender<Command>,
) {
    let mut cfg = Config::new(role);
    cfg.id_seed = role as u64 + 7;
    let parts = Parts {
        channel: Channel::new(cfg, Instant::now()),
        link: Some(link),
        app,
        transport: NoReconnect,
        opts: Options::default(),
    };
    let (cmd_tx, commands) = mpsc::channel(1);
    let (status, status_rx) = watch::channel(Status::default());
    let control = Control {
        commands,
        status,
        shutdown: Box::pin(std::future::pending()),
    };
    (tokio::spawn(run(parts, control)), status_rx, cmd_tx)
}

#[tokio::test]
async fn bytes_cross_both_ways_and_the_agent_ends_when_its_target_closes() {
    let (client_link, agent_link) = memlink::pair(64);
    let (mut user, client_app) = tokio::io::duplex(1 << 16);
    let (mut target, agent_app) = tokio::io::duplex(1 << 16);
    let opened: AppConnect<DuplexStream> = Box::pin(async move { Ok(agent_app) });
    let (client, client_status, _c) =
        spawn_driver(Role::Client, client_link, ByteStream::ready(client_app));
    let (agent, _agent_status, _a) =
        spawn_driver(Role::Agent, agent_link, ByteStream::connect(opened));

    let up: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    user.write_all(&up).await.unwrap();
    let mut got = vec![0u8; up.len()];
    target.read_exact(&mut got).await.unwrap();
    assert!(got == up, "upload differs");
    target.write_all(b"reply").await.unwrap();
    drop(target);
    let mut reply = [0u8; 5];
    user.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"reply");

    let (end, link) = tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, Ok(End::TargetClosed)), "{end:?}");
    drop(link);
    // With the agent gone the client tries to resume; this transport never can.
    let (end, _) = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            end,
            Err(DriverError::ResumeFailed(ResumeError::Fatal(
                ReconnectError::LinkClosed
            )))
        ),
        "{end:?}"
    );
    let st = client_status.borrow().clone();
    assert!(!st.connected && st.ready, "{st:?}");
    // Payload bytes: the upload plus the client's HandshakeResponse.
    assert!(st.stats.bytes_sent > up.len() as u64, "{st:?}");
    assert_eq!(st.stats.bytes_delivered, 5);
}

#[tokio::test]
async fn terminate_command_ends_the_client_as_cancelled() {
    let (client_link, agent_link) = memlink::pair(64);
    let (_user, client_app) = tokio::io::duplex(1 << 16);
    let (_target, agent_app) = tokio::io::duplex(1 << 16);
    let opened: AppConnect<DuplexStream> = Box::pin(async move { Ok(agent_app) });
    let (client, mut client_status, cmd) =
        spawn_driver(Role::Client, client_link, ByteStream::ready(client_app));
    let (agent, _s, _a) = spawn_driver(Role::Agent, agent_link, ByteStream::connect(opened));
    client_status.wait_for(|s| s.ready).await.unwrap();
    cmd.send(Command::Terminate).await.unwrap();
    let (end, _) = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, Ok(End::Cancelled)), "{end:?}");
    let (end, _) = tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(end, Ok(End::PeerTerminated(Flag::TerminateSession))),
        "{end:?}"
    );
}

/// Counters move with every message; watchers (stdio's main task, a pool slot) must not be
/// woken for each one, yet `borrow()` must still show current counters.
#[tokio::test]
async fn status_watchers_wake_for_state_changes_not_for_every_message() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let (client_link, agent_link) = memlink::pair(64);
    let (mut user, client_app) = tokio::io::duplex(1 << 16);
    let (mut target, agent_app) = tokio::io::duplex(1 << 16);
    let opened: AppConnect<DuplexStream> = Box::pin(async move { Ok(agent_app) });
    let (_client, client_status, _c) =
        spawn_driver(Role::Client, client_link, ByteStream::ready(client_app));
    let (_agent, _s, _a) = spawn_driver(Role::Agent, agent_link, ByteStream::connect(opened));
    let wakes = Arc::new(AtomicU64::new(0));
    let (mut watcher, counted) = (client_status.clone(), wakes.clone());
    tokio::spawn(async move {
        while watcher.changed().await.is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });

    // Paced like the agent, so that each message arrives alone and could wake the watcher.
    const LEN: usize = 100 * 1024;
    let writer = tokio::spawn(async move {
        for _ in 0..LEN / 1024 {
            target.write_all(&[0x5au8; 1024]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        target
    });
    let mut got = vec![0u8; LEN];
    user.read_exact(&mut got).await.unwrap();
    let _target = writer.await.unwrap();

    let st = client_status.borrow().clone();
    assert!(st.stats.messages_received >= 100, "{st:?}");
    assert_eq!(st.stats.bytes_delivered, LEN as u64, "counters are current");
    let wakes = wakes.load(Ordering::Relaxed);
    assert!(
        wakes <= 5,
        "{wakes} wake-ups for {} messages",
        st.stats.messages_received
    );
}
