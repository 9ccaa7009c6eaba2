//! Receive-side caps against a hostile or unlucky order of arrival: data that arrived early
//! and is held (already acknowledged) in the reorder buffer moves to the ready queue only while
//! the ready queue is under its cap, and the rest follows as the application reads.

use std::time::Instant;

use super::*;

#[test]
fn an_in_order_flag_does_not_release_early_data_past_the_ready_cap() {
    let now = Instant::now();
    let mut agent = Channel::new(
        Config {
            require_handshake: false,
            ..Config::new(Role::Agent)
        },
        now,
    );
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
