//! Receive-side caps against a hostile or unlucky order of arrival: data that arrived early
//! and is held (already acknowledged) in the reorder buffer moves to the ready queue only while
//! the ready queue is under its cap, and the rest follows as the application reads.

use std::time::Instant;

use super::tests::agent_without_handshake;
use super::*;

#[test]
fn an_in_order_flag_does_not_release_early_data_past_the_ready_cap() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    agent.write(now, &[1u8; 2048]); // seq 0, 1
    agent.send_flag(now, Flag::Unknown(7)); // seq 2
    let early: Vec<u8> = (0..6144u32).map(|i| (i % 251) as u8).collect();
    agent.write(now, &early); // seq 3..=8
    let frames: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
    assert_eq!(frames.len(), 9);

    let cfg = Config {
        ready_buffer: 2048,
        reorder_buffer: 8192,
        ..Config::new(Role::Client)
    };
    let mut client = Channel::new(cfg, now);
    // The ready queue fills to its cap, the data after the flag arrives early, then the flag.
    for f in frames[..2].iter().chain(&frames[3..]).chain(&frames[2..3]) {
        client.handle_frame(now, f).unwrap();
    }
    assert!(
        client.ready_bytes() <= 2048 + 1024,
        "ready queue at {} bytes, cap 2048",
        client.ready_bytes()
    );
    assert_eq!(
        client.stats().acks_sent,
        9,
        "every message acknowledged once"
    );

    // Reading releases the held data, in order, and all of it.
    let mut got = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        let n = client.read(&mut buf);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        assert!(client.ready_bytes() <= 2048 + 1024);
    }
    assert_eq!(got.len(), 2048 + 6144);
    assert!(got[2048..] == early[..], "early data out of order");
    assert_eq!(client.reorder_bytes(), 0);
    let flags = std::iter::from_fn(|| client.poll_event())
        .filter(|e| matches!(e, Event::Flag(Flag::Unknown(7))))
        .count();
    assert_eq!(flags, 1, "the flag is delivered once");
}

#[test]
fn stderr_and_exit_code_reach_a_client_in_stream_order_and_apart_from_output() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    agent.write(now, b"out1 ");
    agent.send_payload(now, PayloadType::StdErr, Bytes::from_static(b"err1"));
    agent.write(now, b"out2");
    agent.send_payload(
        now,
        PayloadType::ExitCode,
        Bytes::from_static(b"EXIT_CODE: 3"),
    );
    let mut client = Channel::new(Config::new(Role::Client), now);
    while let Some(f) = agent.poll_transmit() {
        client.handle_frame(now, &f).unwrap();
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Some((t, n)) = client.read_typed(&mut buf) {
        got.push((t, String::from_utf8_lossy(&buf[..n]).into_owned()));
    }
    let want = [
        (PayloadType::Output, "out1 "),
        (PayloadType::StdErr, "err1"),
        (PayloadType::Output, "out2"),
        (PayloadType::ExitCode, "EXIT_CODE: 3"),
    ];
    let want: Vec<_> = want.iter().map(|(t, s)| (*t, (*s).to_owned())).collect();
    assert_eq!(got, want);
}

#[test]
fn an_agent_takes_size_only_after_the_handshake() {
    let now = Instant::now();
    let mut client = Channel::new(Config::new(Role::Client), now);
    let size = Bytes::from_static(br#"{"cols":120,"rows":40}"#);
    // Agent that handshakes: a Size the client sends is queued until the handshake is done.
    client.send_payload(now, PayloadType::Size, size.clone());
    let mut agent = Channel::new(Config::new(Role::Agent), now);
    for _ in 0..4 {
        while let Some(f) = agent.poll_transmit() {
            client.handle_frame(now, &f).unwrap();
        }
        while let Some(f) = client.poll_transmit() {
            agent.handle_frame(now, &f).unwrap();
        }
    }
    let mut buf = [0u8; 64];
    let (t, n) = agent.read_typed(&mut buf).expect("the Size payload");
    assert_eq!((t, &buf[..n]), (PayloadType::Size, &size[..]));
    assert_eq!(agent.stats().discarded_before_handshake, 0);
}
