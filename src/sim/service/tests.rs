//! The relay's bounds: a side that stops reading stalls the side that feeds it, so the relay
//! never holds more than its lane cap (plus what the links and sockets hold) for a peer that
//! reads nothing, and everything flows again, in order, once that peer reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;
use crate::sim::faults::DirFaults;
use crate::sim::memlink;
use crate::ssm::driver::ws_config;

/// What a peer that reads nothing may get accepted: the relay's queue plus the in-process link
/// (1024 messages of 1 KiB) and the loopback socket buffers (a few MiB), with room to spare.
/// Without the bound the relay takes all [`FLOOD`] bytes.
const BOUND: usize = 16 << 20;
/// How much the flooding side tries to send.
const FLOOD: usize = 48 << 20;
const FRAME: usize = 1024;

struct Harness {
    client: WebSocketStream<MaybeTlsStream<TcpStream>>,
    agent: MemLink,
    relay: JoinHandle<RelayEnd>,
    /// Held so the relay sees neither a termination nor a closed attach channel.
    _keep: (
        mpsc::Sender<WsStream>,
        watch::Sender<bool>,
        oneshot::Sender<String>,
    ),
}

/// A relay between a loopback WebSocket (the harness's client end) and an in-process link
/// (its agent end), as the simulator wires one after a client's first attach.
async fn harness(plan: FaultPlan) -> Harness {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/data-channel/s", l.local_addr().unwrap());
    let accept = async {
        let (s, _) = l.accept().await.unwrap();
        let s = MaybeTlsStream::Plain(s);
        tokio_tungstenite::accept_async_with_config(s, Some(ws_config())).await
    };
    let (client, server) = tokio::join!(tokio_tungstenite::connect_async(url), accept);
    let (agent, service) = memlink::pair(1024);
    let (attach_tx, attach_rx) = mpsc::channel(4);
    let (term_tx, term_rx) = watch::channel(false);
    let (out_tx, out_rx) = oneshot::channel();
    let params = RelayParams {
        session_id: "s".into(),
        plan,
        idle_timeout: Duration::from_secs(60),
        salt: 0,
    };
    let counts = Arc::new(Mutex::new(FaultCounts::default()));
    let relay = tokio::spawn(relay(
        params,
        server.unwrap(),
        service,
        attach_rx,
        term_rx,
        counts,
        out_rx,
    ));
    Harness {
        client: client.unwrap().0,
        agent,
        relay,
        _keep: (attach_tx, term_tx, out_tx),
    }
}

/// Sends `frame` into `sink` until [`FLOOD`] bytes went in or one send stalls for half a
/// second; returns the bytes sent.
async fn flood<S>(sink: &mut S, frame: &[u8]) -> usize
where
    S: futures_util::Sink<WsMessage> + Unpin,
    S::Error: std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while sent < FLOOD && Instant::now() < deadline {
        let m = WsMessage::Binary(Bytes::copy_from_slice(frame));
        match tokio::time::timeout(Duration::from_millis(500), sink.send(m)).await {
            Ok(Ok(())) => sent += frame.len(),
            Ok(Err(e)) => panic!("the relay hung up: {e:?}"),
            Err(_) => break,
        }
    }
    sent
}

/// Reads binary payload bytes from `stream` until `want` arrived; checks each is `byte`.
async fn drain<S, E>(stream: &mut S, want: usize, byte: u8) -> usize
where
    S: futures_util::Stream<Item = Result<WsMessage, E>> + Unpin,
    E: std::fmt::Debug,
{
    let mut got = 0;
    while got < want {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        let Ok(Some(Ok(WsMessage::Binary(b)))) = next else {
            panic!("stream ended or stalled after {got} of {want} bytes: {next:?}");
        };
        assert!(b.iter().all(|&x| x == byte), "foreign bytes in the stream");
        got += b.len();
    }
    got
}

async fn agent_output_stalls_while_the_client_reads_nothing(plan: FaultPlan) {
    let mut h = harness(plan).await;
    let sent = flood(&mut h.agent, &[7u8; FRAME]).await;
    assert!(
        sent <= BOUND,
        "the relay took {} MiB of agent output for a client that reads nothing",
        sent >> 20
    );
    // Once the client reads, everything held arrives and the agent can send again.
    let got = drain(&mut h.client, sent, 7).await;
    assert_eq!(got, sent);
    h.agent
        .send(WsMessage::binary(vec![7u8; 10]))
        .await
        .unwrap();
    assert_eq!(drain(&mut h.client, 10, 7).await, 10);
    assert!(!h.relay.is_finished());
}

#[tokio::test]
async fn agent_output_is_bounded_for_a_client_that_never_reads() {
    agent_output_stalls_while_the_client_reads_nothing(FaultPlan::default()).await;
}

#[tokio::test]
async fn frames_held_back_by_a_delay_count_against_the_bound() {
    let delayed = DirFaults {
        delay: Duration::from_millis(20),
        ..DirFaults::default()
    };
    let plan = FaultPlan {
        to_client: delayed,
        ..FaultPlan::default()
    };
    agent_output_stalls_while_the_client_reads_nothing(plan).await;
}

#[tokio::test]
async fn client_input_is_bounded_for_an_agent_that_never_reads() {
    let mut h = harness(FaultPlan::default()).await;
    let sent = flood(&mut h.client, &[9u8; FRAME]).await;
    assert!(
        sent <= BOUND,
        "the relay took {} MiB from the client for an agent that reads nothing",
        sent >> 20
    );
    // A send cut short by the stall may still be on its way: at most one frame more arrives.
    let got = drain(&mut h.agent, sent, 9).await;
    assert!(got <= sent + FRAME, "{got} > {sent}");
    assert!(!h.relay.is_finished());
}

/// An agent that reads eagerly and answers every message, queueing its answers without limit
/// while its link is full, as the driver's outbox does: what a flooding client talks to.
fn answering_agent(link: MemLink) {
    let (mut tx, mut rx) = futures_util::StreamExt::split(link);
    let (answers, mut queued) = mpsc::unbounded_channel::<WsMessage>();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let _ = answers.send(m);
        }
    });
    tokio::spawn(async move {
        while let Some(m) = queued.recv().await {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    });
}

#[tokio::test]
async fn a_client_that_floods_without_reading_is_stalled_though_the_agent_keeps_reading() {
    let mut h = harness(FaultPlan::default()).await;
    let (agent, _spare) = memlink::pair(1);
    answering_agent(std::mem::replace(&mut h.agent, agent));
    let sent = flood(&mut h.client, &[5u8; FRAME]).await;
    assert!(
        sent <= BOUND,
        "a client that reads nothing got {} MiB accepted while the agent answered",
        sent >> 20
    );
    let got = drain(&mut h.client, sent, 5).await;
    assert!(got >= sent, "{got} < {sent}");
}
