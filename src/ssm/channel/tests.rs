//! Two cores joined by a faulty in-memory link under a virtual clock (after quinn's `Pair`).
//! Property pinned: for any seed, the bytes delivered equal the bytes written, both ways, and
//! no buffer exceeds its cap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::*;

/// Small deterministic PRNG so a failing seed replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Default)]
pub(super) struct Faults {
    pub drop: f64,
    pub dup: f64,
    pub reorder: f64,
    /// Time the agent spends on each client frame before it takes the next, as the real one
    /// does when it writes each message to its target before acknowledging it (reference §12):
    /// client frames queue up and their acks come late during an upload burst.
    pub agent_busy: Duration,
    /// Every `.0` client frames the agent stalls for up to `.1` (uniformly drawn): its target
    /// takes data in bursts, so its acknowledges come in bursts at uneven intervals.
    pub agent_stalls: Option<(u64, Duration)>,
}

/// One direction of the link: frames in flight ordered by arrival time.
struct Link {
    q: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    n: u64,
    base_delay: Duration,
    /// Per-frame service time at the receiving end (frames are handled one after another).
    busy: Duration,
    stalls: Option<(u64, Duration)>,
    /// When the receiving end is done with the last frame queued.
    free_at: Option<Instant>,
}

impl Link {
    fn new(busy: Duration, stalls: Option<(u64, Duration)>) -> Self {
        Self {
            q: BinaryHeap::new(),
            n: 0,
            base_delay: Duration::from_millis(2),
            busy,
            stalls,
            free_at: None,
        }
    }

    fn send(&mut self, now: Instant, frame: Bytes, f: Faults, rng: &mut Rng) {
        if rng.chance(f.drop) {
            return;
        }
        let copies = if rng.chance(f.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + self.base_delay;
            if rng.chance(f.reorder) {
                at += Duration::from_micros(rng.below(20_000));
            }
            if !self.busy.is_zero() {
                at = at.max(self.free_at.unwrap_or(at)) + self.busy;
                if let Some((every, max)) = self.stalls {
                    if self.n.is_multiple_of(every.max(1)) {
                        let us = rng.below(max.as_micros() as u64);
                        at += Duration::from_micros(us);
                    }
                }
                self.free_at = Some(at);
            }
            self.n += 1;
            self.q.push(Reverse((at, self.n, frame.to_vec())));
        }
    }
    fn next_time(&self) -> Option<Instant> {
        self.q.peek().map(|Reverse((t, _, _))| *t)
    }
    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_time()? <= now {
            self.q.pop().map(|Reverse((_, _, f))| f)
        } else {
            None
        }
    }
}

struct Side {
    ch: Channel,
    to_send: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
}

pub(super) struct Outcome {
    pub client_got: Vec<u8>,
    pub agent_got: Vec<u8>,
    pub client: Stats,
    pub agent: Stats,
    /// Virtual time from the start until everything was delivered and acknowledged.
    pub elapsed: Duration,
}

pub(super) fn pattern(len: usize, salt: u64) -> Vec<u8> {
    let mut r = Rng(salt | 1);
    (0..len).map(|_| r.next() as u8).collect()
}

fn check_caps(s: &Side) {
    let c = &s.ch.cfg;
    // Data obeys the cap exactly; handshake and flag messages (a few hundred bytes) may top it.
    assert!(
        s.ch.buffered_send_bytes() <= c.send_buffer + 1024,
        "send buffer over cap"
    );
    assert!(
        s.ch.reorder_bytes() <= c.reorder_buffer,
        "reorder buffer over cap"
    );
    // Data moves into the ready queue only below its cap: one message may top it.
    assert!(
        s.ch.ready_bytes() <= c.ready_buffer + c.chunk_size,
        "ready buffer over cap"
    );
}

pub(super) fn run_pair(
    seed: u64,
    up: usize,
    down: usize,
    f: Faults,
    tweak: impl Fn(&mut Config),
) -> Outcome {
    let t0 = Instant::now();
    let mut now = t0;
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut ccfg = Config::new(Role::Client);
    ccfg.id_seed = seed;
    tweak(&mut ccfg);
    let mut acfg = Config::new(Role::Agent);
    acfg.id_seed = !seed;
    tweak(&mut acfg);
    let mut client = Side {
        ch: Channel::new(ccfg, now),
        to_send: pattern(up, seed),
        sent: 0,
        got: Vec::new(),
    };
    let mut agent = Side {
        ch: Channel::new(acfg, now),
        to_send: pattern(down, !seed),
        sent: 0,
        got: Vec::new(),
    };
    let mut c2a = Link::new(f.agent_busy, f.agent_stalls);
    let mut a2c = Link::new(Duration::ZERO, None);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = t0 + Duration::from_secs(3600);
    loop {
        for side in [&mut client, &mut agent] {
            // Application writes in random-sized pieces, as much as the channel accepts.
            while side.sent < side.to_send.len() {
                let want = (1 + rng.below(8192) as usize).min(side.to_send.len() - side.sent);
                let n = side
                    .ch
                    .write(now, &side.to_send[side.sent..side.sent + want]);
                side.sent += n;
                if n < want {
                    break;
                }
            }
            // Application reads in random-sized pieces.
            loop {
                let cap = 1 + rng.below(buf.len() as u64) as usize;
                let n = side.ch.read(&mut buf[..cap]);
                if n == 0 {
                    break;
                }
                side.got.extend_from_slice(&buf[..n]);
            }
            while let Some(ev) = side.ch.poll_event() {
                if let Event::HandshakeFailed(r) = ev {
                    panic!("handshake failed: {r}");
                }
            }
            check_caps(side);
        }
        while let Some(fr) = client.ch.poll_transmit() {
            c2a.send(now, fr, f, &mut rng);
        }
        while let Some(fr) = agent.ch.poll_transmit() {
            a2c.send(now, fr, f, &mut rng);
        }
        let done = client.got.len() == down
            && agent.got.len() == up
            && client.sent == up
            && agent.sent == down
            && client.ch.is_flushed()
            && agent.ch.is_flushed();
        if done {
            break;
        }
        let mut progressed = false;
        while let Some(fr) = c2a.pop_due(now) {
            let _ = agent.ch.handle_frame(now, &fr);
            progressed = true;
        }
        while let Some(fr) = a2c.pop_due(now) {
            let _ = client.ch.handle_frame(now, &fr);
            progressed = true;
        }
        if progressed {
            continue;
        }
        let next = [
            c2a.next_time(),
            a2c.next_time(),
            client.ch.poll_timeout(),
            agent.ch.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("stalled: no frames in flight and no timers armed");
        assert!(
            next < deadline,
            "did not finish within an hour of virtual time"
        );
        now = now.max(next);
        client.ch.handle_timeout(now);
        agent.ch.handle_timeout(now);
    }
    Outcome {
        client_got: client.got,
        agent_got: agent.got,
        client: client.ch.stats().clone(),
        agent: agent.ch.stats().clone(),
        elapsed: now.saturating_duration_since(t0),
    }
}

fn assert_exact(seed: u64, up: usize, down: usize, o: &Outcome) {
    assert!(
        o.agent_got == pattern(up, seed),
        "seed {seed}: client→agent bytes differ"
    );
    assert!(
        o.client_got == pattern(down, !seed),
        "seed {seed}: agent→client bytes differ"
    );
}

#[test]
fn clean_link_delivers_both_ways_without_retransmits() {
    let o = run_pair(1, 300_000, 500_000, Faults::default(), |_| {});
    assert_exact(1, 300_000, 500_000, &o);
    assert_eq!(o.client.retransmits, 0);
    assert_eq!(o.agent.retransmits, 0);
    assert_eq!(o.client.duplicates_received, 0);
}

#[test]
fn lossy_link_delivers_exactly_and_counts_recovery() {
    let f = Faults {
        drop: 0.1,
        dup: 0.1,
        reorder: 0.1,
        ..Faults::default()
    };
    let o = run_pair(7, 200_000, 200_000, f, |_| {});
    assert_exact(7, 200_000, 200_000, &o);
    assert!(o.client.retransmits > 0 && o.agent.retransmits > 0);
    assert!(o.client.duplicates_received > 0);
    assert!(o.client.reordered > 0);
}

#[test]
fn tiny_buffers_push_back_instead_of_evicting() {
    let f = Faults {
        drop: 0.05,
        dup: 0.05,
        reorder: 0.2,
        ..Faults::default()
    };
    let o = run_pair(11, 300_000, 300_000, f, |c| {
        c.send_buffer = 8 * 1024;
        c.reorder_buffer = 4 * 1024;
        c.ready_buffer = 2 * 1024;
    });
    assert_exact(11, 300_000, 300_000, &o);
    assert!(o.client.peak_send_buffer_bytes <= 8 * 1024 + 1024);
    assert!(o.agent.dropped_no_room > 0 || o.client.dropped_no_room > 0);
}

#[test]
fn larger_chunks_are_honoured() {
    let o = run_pair(3, 100_000, 100_000, Faults::default(), |c| {
        c.chunk_size = 4096
    });
    assert_exact(3, 100_000, 100_000, &o);
    assert!(
        o.client.messages_sent < 100_000 / 1024,
        "fewer, larger messages than 1 KiB chunks"
    );
}

#[test]
fn agent_without_handshake_still_delivers_both_ways() {
    // A legacy agent that never handshakes: the client starts on the first output (§4.4).
    let o = run_pair(5, 50_000, 50_000, Faults::default(), |c| {
        c.require_handshake = false
    });
    assert_exact(5, 50_000, 50_000, &o);
}

/// 5 MB each way at 10 % drop + 10 % dup + 10 % reorder, per seed. CI runs 32 seeds in four
/// shards (the runner spreads them over cores); issue #2's full 200-seed acceptance sweep is
/// `faults_5mb_all_200_seeds`, ignored by default because it costs ~3.5 CPU-minutes in a debug
/// build: `cargo test --release --lib -- --ignored faults_5mb_all_200_seeds`.
fn heavy_fault_seeds(seeds: std::ops::Range<u64>) {
    let f = Faults {
        drop: 0.1,
        dup: 0.1,
        reorder: 0.1,
        ..Faults::default()
    };
    let size = 5 * 1024 * 1024;
    for seed in seeds {
        let seed = 1000 + seed;
        let o = run_pair(seed, size, size, f, |_| {});
        assert_exact(seed, size, size, &o);
    }
}

macro_rules! shards {
    ($($name:ident = $seeds:expr),*) => {$(
        #[test]
        fn $name() { heavy_fault_seeds($seeds) }
    )*};
}
shards!(
    faults_5mb_seeds_000_007 = 0..8,
    faults_5mb_seeds_050_057 = 50..58,
    faults_5mb_seeds_100_107 = 100..108,
    faults_5mb_seeds_150_157 = 150..158
);

#[test]
#[ignore = "full 200-seed sweep: run with --release -- --ignored"]
fn faults_5mb_all_200_seeds() {
    heavy_fault_seeds(0..200);
}

#[test]
fn many_small_seeds_with_faults_deliver_exactly() {
    let f = Faults {
        drop: 0.1,
        dup: 0.1,
        reorder: 0.1,
        ..Faults::default()
    };
    for seed in 0..40 {
        let o = run_pair(seed, 60_000, 80_000, f, |_| {});
        assert_exact(seed, 60_000, 80_000, &o);
    }
}

/// An agent that sends data at once: the tests that use it are about data, not the handshake.
pub(super) fn agent_without_handshake(now: Instant) -> Channel {
    Channel::new(
        Config {
            require_handshake: false,
            ..Config::new(Role::Agent)
        },
        now,
    )
}

/// The acknowledge is written in place (no `Acknowledge` value, no payload buffer); its bytes
/// must still be the plugin's: the header and the serde_json form of the fields it answers.
#[test]
fn an_ack_written_in_place_is_the_same_bytes_as_one_built_from_its_fields() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    let mut client = Channel::new(Config::new(Role::Client), now);
    agent.write(now, b"hello");
    let data = Message::decode(&agent.poll_transmit().unwrap()).unwrap();
    client.handle_frame(now, &data.to_bytes()).unwrap();
    let sent = client.poll_transmit().unwrap();
    let ack = Message::decode(&sent).unwrap();
    let fields = Acknowledge {
        message_type: data.message_type.as_str().to_owned(),
        message_id: data.message_id.hyphenated().to_string(),
        sequence_number: data.sequence_number,
        is_sequential: true,
    };
    let built = Message {
        payload: Bytes::from(fields.to_bytes()),
        ..ack.clone()
    };
    assert_eq!(sent.as_ref(), built.to_bytes().as_slice());
    assert_eq!(Acknowledge::from_bytes(&ack.payload).unwrap(), fields);
}

#[test]
fn duplicate_of_delivered_message_is_reacked_not_redelivered() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    let mut client = Channel::new(Config::new(Role::Client), now);
    agent.write(now, b"hello");
    let frame = agent.poll_transmit().unwrap();
    client.handle_frame(now, &frame).unwrap();
    client.handle_frame(now, &frame).unwrap();
    let acks: Vec<_> = std::iter::from_fn(|| client.poll_transmit()).collect();
    assert_eq!(acks.len(), 2, "both copies acknowledged");
    let mut out = [0u8; 16];
    assert_eq!(client.read(&mut out), 5);
    assert_eq!(client.read(&mut out), 0, "duplicate not delivered twice");
    assert_eq!(client.stats().duplicates_received, 1);
}

#[test]
fn client_sends_nothing_before_handshake_complete() {
    let now = Instant::now();
    let mut client = Channel::new(Config::new(Role::Client), now);
    assert_eq!(client.write(now, b"early"), 5);
    assert!(client.poll_transmit().is_none());
    let mut agent = Channel::new(Config::new(Role::Agent), now);
    let req = agent.poll_transmit().unwrap();
    client.handle_frame(now, &req).unwrap();
    // Ack of the request, then the HandshakeResponse as client seq 0; still no data.
    let out: Vec<_> = std::iter::from_fn(|| client.poll_transmit()).collect();
    assert_eq!(out.len(), 2);
    let resp = Message::decode(&out[1]).unwrap();
    assert_eq!(resp.payload_type, PayloadType::HandshakeResponse);
    assert_eq!(resp.sequence_number, 0);
}

#[test]
fn channel_closed_is_reported_once() {
    let now = Instant::now();
    let mut client = Channel::new(Config::new(Role::Client), now);
    let cc = ChannelClosed {
        output: "bye".into(),
        message_type: "channel_closed".into(),
        ..Default::default()
    };
    let m = Message {
        message_type: MessageType::ChannelClosed,
        schema_version: 1,
        created_date: 1,
        sequence_number: 0,
        flags: 3,
        message_id: Uuid::nil(),
        payload_type: PayloadType::Undefined,
        payload: Bytes::from(cc.to_bytes()),
    };
    client.handle_frame(now, &m.to_bytes()).unwrap();
    client.handle_frame(now, &m.to_bytes()).unwrap();
    let evs: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert_eq!(
        evs,
        vec![Event::Closed {
            output: "bye".into()
        }]
    );
}

#[test]
fn paused_channel_holds_data_until_start_publication() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    let ctl = |t: MessageType| {
        Message {
            message_type: t,
            schema_version: 1,
            created_date: 0,
            sequence_number: 0,
            flags: 0,
            message_id: Uuid::nil(),
            payload_type: PayloadType::Undefined,
            payload: Bytes::new(),
        }
        .to_bytes()
    };
    agent
        .handle_frame(now, &ctl(MessageType::PausePublication))
        .unwrap();
    agent.write(now, b"x");
    assert!(agent.poll_transmit().is_none());
    agent
        .handle_frame(now, &ctl(MessageType::StartPublication))
        .unwrap();
    assert!(agent.poll_transmit().is_some());
}

#[test]
fn reconnect_resends_everything_unacked_with_same_bytes() {
    let now = Instant::now();
    let mut agent = agent_without_handshake(now);
    agent.write(now, &[7u8; 3000]);
    let first: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
    assert_eq!(first.len(), 3);
    agent.on_disconnect();
    agent.write(now, b"more");
    assert!(
        agent.poll_transmit().is_none(),
        "nothing sent while disconnected"
    );
    agent.on_reconnect(now + Duration::from_secs(1));
    let again: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
    assert_eq!(again.len(), 4);
    assert_eq!(&again[..3], &first[..]);
}

#[test]
fn agent_fails_handshake_when_client_refuses() {
    let now = Instant::now();
    let mut agent = Channel::new(
        Config {
            session_type: "Telepathy".into(),
            ..Config::new(Role::Agent)
        },
        now,
    );
    let mut client = Channel::new(Config::new(Role::Client), now);
    for _ in 0..4 {
        while let Some(f) = agent.poll_transmit() {
            let _ = client.handle_frame(now, &f);
        }
        while let Some(f) = client.poll_transmit() {
            let _ = agent.handle_frame(now, &f);
        }
    }
    let evs: Vec<_> = std::iter::from_fn(|| agent.poll_event()).collect();
    assert!(
        matches!(evs.as_slice(), [Event::HandshakeFailed(_)]),
        "{evs:?}"
    );
}

#[test]
fn agent_handshake_times_out_without_response() {
    let now = Instant::now();
    let mut agent = Channel::new(Config::new(Role::Agent), now);
    let t = agent.poll_timeout().unwrap();
    assert!(t <= now + Duration::from_secs(15));
    agent.handle_timeout(now + Duration::from_secs(16));
    assert!(
        std::iter::from_fn(|| agent.poll_event()).any(|e| matches!(e, Event::HandshakeFailed(_)))
    );
}

/// Found by fuzz/channel_ops: every repeated HandshakeRequest used to get its own answer,
/// queued outside the send-buffer cap.
#[test]
fn repeated_handshake_requests_get_one_answer_and_the_send_buffer_stays_capped() {
    let now = Instant::now();
    let mut cfg = Config::new(Role::Client);
    cfg.send_buffer = 1024;
    let mut ch = Channel::new(cfg, now);
    let req = agent_request(
        "3.3.0.0",
        "Port",
        &serde_json::json!({"portNumber": "22"}),
        None,
    );
    for seq in 0..100 {
        ch.handle_message(
            now,
            Message {
                message_type: MessageType::OutputStreamData,
                schema_version: 1,
                created_date: 1,
                sequence_number: seq,
                flags: 0,
                message_id: Uuid::nil(),
                payload_type: PayloadType::HandshakeRequest,
                payload: Bytes::from(req.to_bytes()),
            },
        );
    }
    assert!(
        ch.buffered_send_bytes() <= 2048,
        "{} bytes queued",
        ch.buffered_send_bytes()
    );
}
