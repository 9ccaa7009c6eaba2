//! The simulator against clients that misbehave on purpose: one that opens a data-channel
//! upgrade and never finishes it, and (as a measurement, `--ignored`) one that floods a session
//! and never reads, while the simulator's peak memory is sampled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use session_proxy::sim::{Sim, SimOptions};
use session_proxy::ssm::api::SessionRequest;
use session_proxy::ssm::message::{flags, Message, MessageType, PayloadType};
use session_proxy::ssm::payload::OpenDataChannel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const ID: &str = "i-0123456789abcdef0";

#[tokio::test]
async fn a_websocket_upgrade_that_never_finishes_is_dropped() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Sim::start(l, SimOptions::default()).unwrap();
    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    // A data-channel request line and one header, then silence: the head never ends.
    s.write_all(b"GET /v1/data-channel/sim-user-0 HTTP/1.1\r\nHost: sim\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        end.is_ok(),
        "the simulator still holds a half-done upgrade after 15 s"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "dropped before the client had a fair chance: {:?}",
        started.elapsed()
    );
}

/// Peak RSS (VmHWM) and current RSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn data_message(seq: i64, payload: &[u8]) -> WsMessage {
    let m = Message {
        message_type: MessageType::InputStreamData,
        schema_version: 1,
        created_date: session_proxy::ssm::driver::unix_ms(),
        sequence_number: seq,
        flags: if seq == 0 { flags::SYN } else { 0 },
        message_id: uuid::Uuid::new_v4(),
        payload_type: PayloadType::Output,
        payload: Bytes::copy_from_slice(payload),
    };
    WsMessage::Binary(Bytes::from(m.to_bytes()))
}

/// Measurement for the report, not a pass/fail test: a `session-proxy sim` child (the binary
/// in `$SIM_BIN`, else this build's) serves one session to an echo target; a client opens the
/// data channel, sends 1 KiB data messages for `$FLOOD_SECS` (default 10) and never reads.
/// Prints the simulator's RSS before and after, and its peak; `$SIM_LOG` keeps its stderr.
/// `SIM_BIN=… cargo test --test sim_limits flood -- --ignored --nocapture`
#[tokio::test]
#[ignore = "measurement: run by hand, prints the simulator's peak RSS"]
async fn flood_without_reading_peak_rss() {
    let (echo, _h) = common::echo::echo_server().await;
    let bin = std::env::var("SIM_BIN").unwrap_or_else(|_| common::BIN.to_owned());
    let secs: u64 = std::env::var("FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `$SIM_LOG`: a file for the simulator's stderr (with `SESSION_PROXY_LOG` set, its log).
    let stderr = match std::env::var("SIM_LOG") {
        Ok(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        Err(_) => Stdio::null(),
    };
    let mut child = Command::new(&bin)
        .args(["sim", "--target", &format!("{ID}={echo}")])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut endpoint = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(v) = line.strip_prefix("export AWS_ENDPOINT_URL=") {
            endpoint = Some(v.to_owned());
            break;
        }
    }
    let api = common::sim_api(endpoint).await;
    let ticket = api
        .start_session(&SessionRequest::ssh(ID, echo.port()))
        .await
        .unwrap();
    let before = rss_kib(pid);
    let (mut ws, _) = tokio_tungstenite::connect_async(&ticket.stream_url)
        .await
        .unwrap();
    let open = OpenDataChannel {
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: ticket.token.expose().clone(),
        client_id: Some("flood".into()),
        client_version: Some("1.0.0".into()),
    };
    ws.send(WsMessage::text(open.to_json())).await.unwrap();
    let chunk = vec![b'x'; 1024];
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut seq, mut peak) = (0i64, 0u64);
    while Instant::now() < deadline {
        let sent = tokio::time::timeout(
            Duration::from_millis(200),
            ws.send(data_message(seq, &chunk)),
        )
        .await;
        if matches!(sent, Ok(Ok(()))) {
            seq += 1;
        }
        if seq % 256 == 0 {
            peak = peak.max(rss_kib(pid).1);
        }
    }
    let after = rss_kib(pid);
    println!(
        "sim flood {secs}s: {seq} messages of 1 KiB sent, never read; sim RSS before {} MiB, \
         after {} MiB, peak (VmHWM) {} MiB, sampled peak {} MiB",
        before.1 / 1024,
        after.1 / 1024,
        after.0 / 1024,
        peak / 1024
    );
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
}
