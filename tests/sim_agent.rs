//! The simulated agent's real-agent habits over real sockets (issue 11, finding 3): it
//! acknowledges client data only once written to its target, so an upload to a slow target
//! sees late acknowledges, which must cost the client (almost) no resends; and its send/ack race
//! loses acknowledges, which the client repairs by re-acknowledging duplicates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_proxy::sim::agent::AgentKnobs;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::ssm::api::SessionRequest;
use session_proxy::ssm::session::{Session, SessionOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ID: &str = "i-0123456789abcdef0";

async fn sim(target: SocketAddr, knobs: AgentKnobs) -> Sim {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(
        l,
        SimOptions {
            instances: vec![common::instance(ID, target)],
            knobs,
            ..SimOptions::default()
        },
    )
    .unwrap()
}

async fn session(sim: &Sim) -> (Session, DuplexStream) {
    let api = Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let (mine, theirs) = tokio::io::duplex(1 << 20);
    let s = Session::start(
        api,
        &SessionRequest::ssh(ID, 22),
        theirs,
        SessionOptions::default(),
    )
    .await
    .unwrap();
    (s, mine)
}

/// A target that reads `len` bytes from one connection; reports what it got.
async fn sink(len: usize) -> (SocketAddr, oneshot::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = vec![0u8; len];
        let n = s.read_exact(&mut got).await.map_or(0, |_| len);
        got.truncate(n);
        let _ = tx.send(got);
    });
    (addr, rx)
}

/// A target that sends `data` on one connection and closes it.
async fn source(data: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(&data).await.unwrap();
        let _ = s.shutdown().await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_an_agent_that_acks_after_writing_resends_under_one_percent() {
    let data = common::echo::payload(6 << 20, 5);
    let (target, got) = sink(data.len()).await;
    let knobs = AgentKnobs {
        // 1 MiB in flight drains in ~260 ms at this rate: acknowledges come that late.
        write_rate: Some(4_000_000),
        ..AgentKnobs::default()
    };
    let sim = sim(target, knobs).await;
    let (session, mut mine) = session(&sim).await;
    mine.write_all(&data).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(90), got)
        .await
        .expect("upload did not finish within 90 s")
        .unwrap();
    assert!(
        got == data,
        "target got {} bytes, not the upload",
        got.len()
    );
    let st = session.status().borrow().stats.clone();
    assert!(
        st.peak_rtt_ms >= 100,
        "the agent should acknowledge at the target's pace (peak RTT {} ms)",
        st.peak_rtt_ms
    );
    assert!(
        st.retransmits * 100 < st.messages_sent,
        "{} resends for {} messages",
        st.retransmits,
        st.messages_sent
    );
    session.request_stop().await;
    let _ = session.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_loses_acks_in_its_send_race_resends_each_once() {
    let data = common::echo::payload(1 << 20, 9);
    let every = 20;
    let knobs = AgentKnobs {
        ack_race_every: Some(every),
        ..AgentKnobs::default()
    };
    let sim = sim(source(data.clone()).await, knobs).await;
    let (session, mut mine) = session(&sim).await;
    let mut got = vec![0u8; data.len()];
    tokio::time::timeout(Duration::from_secs(60), mine.read_exact(&mut got))
        .await
        .expect("download did not finish within 60 s")
        .unwrap();
    assert!(got == data, "downloaded bytes differ");
    // The target closed: the session ends once the agent has every acknowledge, which it gets
    // only because the client acknowledges the duplicates it resends.
    let end = tokio::time::timeout(Duration::from_secs(8), session.finish())
        .await
        .expect("the agent never got all its acknowledges");
    assert!(end.is_ok(), "{end:?}");
    let stats = sim.stats();
    let agent = &stats.first().expect("one session").agent;
    let races = agent.messages_sent / u64::from(every);
    assert!(races >= 40, "{races} races");
    assert!(
        agent.retransmits >= races && agent.retransmits <= 2 * races + 10,
        "{} resends for {races} lost acknowledges",
        agent.retransmits
    );
}
