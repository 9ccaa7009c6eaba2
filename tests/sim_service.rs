//! The simulator's data-channel service against hostile and honest clients: wrong or missing
//! tokens are refused with a WebSocket close, garbage frames are dropped without harm, and a
//! client-role core over a real WebSocket moves data byte-exactly under the fault plan, across
//! forced WebSocket kills, to a TCP target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use session_proxy::redact::Redacted;
use session_proxy::sim::faults::{DirFaults, FaultPlan};
use session_proxy::sim::instances::Instance;
use session_proxy::sim::registry::StartSessionRequest;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::ssm::api::{AwsSettings, InlineCredentials, SessionRequest, SsmApi};
use session_proxy::ssm::driver::End;
use session_proxy::ssm::payload::OpenDataChannel;
use session_proxy::ssm::session::{Session, SessionOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const ID: &str = "i-0123456789abcdef0";

/// A TCP echo server on loopback.
async fn echo_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn sim(target: std::net::SocketAddr, faults: FaultPlan) -> Sim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Sim::start(
        l,
        SimOptions {
            instances: vec![Instance::new(ID, target)],
            faults,
            ..SimOptions::default()
        },
    )
    .unwrap()
}

fn start(sim: &Sim) -> session_proxy::sim::registry::StartSessionResponse {
    let mut parameters = HashMap::new();
    parameters.insert("portNumber".to_owned(), vec!["22".to_owned()]);
    sim.registry()
        .start_session(StartSessionRequest {
            target: ID.into(),
            document: Some("AWS-StartSSHSession".into()),
            parameters,
            reason: None,
        })
        .unwrap()
}

fn open_frame(token: &str) -> Message {
    Message::text(
        OpenDataChannel {
            message_schema_version: "1.0".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            token_value: token.into(),
            client_id: Some("test".into()),
            client_version: Some("1.0.0".into()),
        }
        .to_json(),
    )
}

async fn close_code(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Option<CloseCode> {
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        if let Ok(Message::Close(f)) = m {
            return f.map(|f| f.code);
        }
    }
    None
}

#[tokio::test]
async fn wrong_or_missing_token_closes_the_websocket_with_policy_violation() {
    let sim = sim(echo_server().await, FaultPlan::default()).await;
    let s = start(&sim);
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.stream_url)
        .await
        .unwrap();
    ws.send(open_frame("not-the-token")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));

    let (mut ws, _) = tokio_tungstenite::connect_async(&s.stream_url)
        .await
        .unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        close_code(&mut ws).await,
        Some(CloseCode::Policy),
        "binary first frame"
    );

    // The right token still works afterwards, exactly once.
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.stream_url)
        .await
        .unwrap();
    ws.send(open_frame(&s.token)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, Message::Binary(_)),
        "HandshakeRequest expected, got {first:?}"
    );
    let (mut again, _) = tokio_tungstenite::connect_async(&s.stream_url)
        .await
        .unwrap();
    again.send(open_frame(&s.token)).await.unwrap();
    assert_eq!(
        close_code(&mut again).await,
        Some(CloseCode::Policy),
        "token reuse refused"
    );
}

#[tokio::test]
async fn garbage_frames_are_dropped_and_the_agent_keeps_retransmitting() {
    let sim = sim(echo_server().await, FaultPlan::default()).await;
    let s = start(&sim);
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.stream_url)
        .await
        .unwrap();
    ws.send(open_frame(&s.token)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = first.into_data();
    // Garbage: random bytes, a huge declared length, and the request with a broken digest.
    let mut broken = first.to_vec();
    let last = broken.len() - 1;
    broken[last] ^= 0xff;
    for bad in [
        vec![0xffu8; 50],
        [0u8, 0, 0, 116]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(7u8, 200))
            .collect(),
        broken,
    ] {
        ws.send(Message::binary(bad)).await.unwrap();
    }
    // Unacknowledged, the HandshakeRequest comes again (same bytes): the agent is alive.
    let again = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(again.into_data(), first);
}

#[tokio::test]
async fn client_core_moves_data_exactly_under_faults_and_websocket_kills() {
    let f = DirFaults {
        drop: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        delay: Duration::ZERO,
    };
    let plan = FaultPlan {
        seed: 99,
        to_agent: f,
        to_client: f,
        kill_after_bytes: Some(6 << 20),
        kill_every: None,
    };
    let sim = sim(echo_server().await, plan).await;
    let api = Arc::new(
        SsmApi::new(&AwsSettings {
            profile: None,
            region: Some("us-east-1".into()),
            credentials: Some(InlineCredentials {
                access_key_id: "AKIASIMULATOR0000000".into(),
                secret_access_key: Redacted::new("x".into()),
                session_token: None,
            }),
            endpoint_url: Some(sim.endpoint_url()),
            ..Default::default()
        })
        .await,
    );
    let (mine, theirs) = tokio::io::duplex(1 << 20);
    let session = Session::start(
        api,
        &SessionRequest::ssh(ID, 22),
        theirs,
        SessionOptions::default(),
    )
    .await
    .unwrap();
    let size = 20 << 20;
    let data: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let (mut r, mut w) = tokio::io::split(mine);
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w
    });
    let mut got = vec![0u8; size];
    tokio::time::timeout(Duration::from_secs(120), r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == expect, "echoed bytes differ");
    let _w = writer.await.unwrap();
    let stats = sim.stats();
    assert!(
        stats
            .iter()
            .any(|s| s.faults.kills >= 3 && s.client_reconnects >= 3),
        "{stats:?}"
    );
    session.request_stop().await;
    let end = session.finish().await.unwrap();
    assert!(
        matches!(end, End::Cancelled | End::ChannelClosed { .. }),
        "{end:?}"
    );
}
