//! Port sessions end to end at the library level (issue 13): the client's port layer against
//! the simulator's agent over real sockets, in mux mode (smux streams, ConnectToPortError) and
//! in basic mode (an agent at or below 3.0.196.0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use session_proxy::port::{Opened, Opener, PortConfig, PortLayer, MUX_CLIENT_VERSION};
use session_proxy::sim::agent::AgentKnobs;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::ssm::api::SessionRequest;
use session_proxy::ssm::session::{Session, SessionOptions};
use tokio::net::TcpListener;

const ID: &str = "i-0123456789abcdef0";

async fn sim(knobs: AgentKnobs) -> Sim {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = common::instance(ID, "127.0.0.1:22".parse().unwrap());
    let opts = SimOptions {
        instances: vec![instance],
        knobs,
        ..SimOptions::default()
    };
    Sim::start(l, opts).unwrap()
}

/// A port session to `dest` through the simulator, and the opener that feeds it.
async fn forward(sim: &Sim, dest: SocketAddr) -> (Session, Opener) {
    let api = Arc::new(common::sim_api(Some(sim.endpoint_url())).await);
    let (layer, opener) = PortLayer::client(PortConfig::default());
    let mut opts = SessionOptions::default();
    opts.channel.client_version = MUX_CLIENT_VERSION.to_owned();
    let req = SessionRequest::port_forward(ID, &dest.ip().to_string(), dest.port());
    let s = Session::start_layer(api, &req, layer, opts).await.unwrap();
    (s, opener)
}

/// Opens a stream and returns our end of it (an in-memory pipe standing for a local socket).
async fn open(
    opener: &Opener,
) -> (
    tokio::io::DuplexStream,
    tokio::sync::oneshot::Receiver<Opened>,
) {
    let (mine, theirs) = tokio::io::duplex(256 * 1024);
    let rx = opener.open(Box::new(theirs)).await.ok().unwrap();
    (mine, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_streams_on_one_mux_session_echo_byte_exact() {
    let (echo, _h) = common::echo::echo_server().await;
    let sim = sim(AgentKnobs::default()).await;
    let (session, opener) = forward(&sim, echo).await;
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let (io, _) = open(&opener).await;
        tasks.push(tokio::spawn(async move {
            let data = common::echo::payload(1 << 20, i + 1);
            let back = common::echo::echo_through(io, &data).await;
            assert!(
                back == data,
                "stream {i}: {} of {} bytes came back intact",
                back.len(),
                data.len()
            );
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .unwrap()
            .unwrap();
    }
    let stats = opener.stats();
    assert_eq!(
        stats
            .streams_opened
            .load(std::sync::atomic::Ordering::Relaxed),
        20
    );
    session.request_stop().await;
    session.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_destination_fails_only_its_stream() {
    let (echo, _h) = common::echo::echo_server().await;
    let (_held, closed_port) = common::refusing_port();
    let sim = sim(AgentKnobs::default()).await;
    let refused: SocketAddr = format!("127.0.0.1:{closed_port}").parse().unwrap();
    let (bad, bad_opener) = forward(&sim, refused).await;
    let (good, good_opener) = forward(&sim, echo).await;
    let (_io, rx) = open(&bad_opener).await;
    let how = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(how, Opened::Refused);
    // The session survives a refused stream: the next one is refused too, not hung.
    let (_io2, rx2) = open(&bad_opener).await;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), rx2)
            .await
            .unwrap()
            .unwrap(),
        Opened::Refused
    );
    let (io, _) = open(&good_opener).await;
    let data = common::echo::payload(64 * 1024, 7);
    assert_eq!(common::echo::echo_through(io, &data).await, data);
    for s in [bad, good] {
        s.request_stop().await;
        let _ = s.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_agent_gets_basic_mode_and_carries_connections_one_after_another() {
    let (echo, _h) = common::echo::echo_server().await;
    let knobs = AgentKnobs {
        agent_version: Some("3.0.161.0".into()),
        ..AgentKnobs::default()
    };
    let sim = sim(knobs).await;
    let (session, opener) = forward(&sim, echo).await;
    for i in 0..3u64 {
        let (io, rx) = open(&opener).await;
        assert_eq!(rx.await.unwrap(), Opened::Connected);
        let data = common::echo::payload(200 * 1024, 100 + i);
        // Basic mode has no half-close: the local EOF ends the connection (§7.2).
        let back = tokio::time::timeout(Duration::from_secs(60), echo_exact(io, &data))
            .await
            .unwrap();
        assert!(back == data, "connection {i}: {} bytes back", back.len());
    }
    session.request_stop().await;
    let _ = session.finish().await;
}

/// Writes `data` and reads as many bytes back, then closes.
async fn echo_exact(io: tokio::io::DuplexStream, data: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut r, mut w) = tokio::io::split(io);
    let mut back = vec![0u8; data.len()];
    let (wr, rd) = tokio::join!(w.write_all(data), r.read_exact(&mut back));
    wr.unwrap();
    rd.unwrap();
    back
}
