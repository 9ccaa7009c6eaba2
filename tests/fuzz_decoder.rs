//! Property tests standing in for a fuzzer in CI: the decoder and the channel take arbitrary
//! input without panicking, hanging or allocating beyond the caps, and every broken frame is
//! refused with the error that names what is broken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use session_proxy::ssm::channel::{Channel, Config, Role};
use session_proxy::ssm::message::{
    DecodeError, Message, MessageType, PayloadType, HEADER_SIZE, MAX_PAYLOAD_LEN,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Records the largest single allocation made on this thread while armed, so a test can show
/// that a declared length was refused before anything of that size was allocated.
struct Watching;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the thread-locals are
// const-initialised Cells without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.try_with(Cell::get).unwrap_or(false) {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Watching = Watching;

/// Runs `f` and returns its result and the largest allocation it made.
fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, LARGEST.with(Cell::get))
}

fn valid_frame(seq: i64, payload: Vec<u8>, ptype: u32, mtype: &str) -> Vec<u8> {
    Message {
        message_type: MessageType::from_wire(mtype),
        schema_version: 1,
        created_date: 1,
        sequence_number: seq,
        flags: 0,
        message_id: Uuid::nil(),
        payload_type: PayloadType::from_u32(ptype),
        payload: Bytes::from(payload),
    }
    .to_bytes()
}

/// A 120-byte header declaring HeaderLength `hl` and (at offset 116) PayloadLength `pl`.
fn header(hl: u32, pl: u32) -> Vec<u8> {
    let mut f = valid_frame(1, Vec::new(), 1, "output_stream_data");
    f[0..4].copy_from_slice(&hl.to_be_bytes());
    f[116..120].copy_from_slice(&pl.to_be_bytes());
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_accepts_exactly_what_parse_reads_whole(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let decoded = Message::decode(&data);
        match Message::parse(&data) {
            Ok(Some((m, used))) if used == data.len() => prop_assert_eq!(decoded, Ok(m)),
            Ok(Some((_, used))) => {
                prop_assert_eq!(decoded, Err(DecodeError::TrailingBytes(data.len() - used)));
            }
            Ok(None) => prop_assert!(
                matches!(&decoded, Err(DecodeError::Truncated { got, .. }) if *got == data.len()),
                "{:?}", decoded
            ),
            Err(e) => prop_assert_eq!(decoded, Err(e)),
        }
    }

    #[test]
    fn a_changed_payload_byte_fails_the_digest(
        payload in proptest::collection::vec(any::<u8>(), 1..300),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut f = valid_frame(3, payload.clone(), 1, "output_stream_data");
        f[HEADER_SIZE + at.index(payload.len())] ^= xor;
        prop_assert_eq!(Message::decode(&f), Err(DecodeError::PayloadDigest));
    }

    #[test]
    fn a_cut_frame_is_truncated_with_the_declared_length(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        keep in any::<prop::sample::Index>(),
    ) {
        let f = valid_frame(3, payload, 1, "output_stream_data");
        let got = keep.index(f.len());
        prop_assert_eq!(
            Message::decode(&f[..got]),
            Err(DecodeError::Truncated { needed: if got < 4 { 4 } else if got < HEADER_SIZE { HEADER_SIZE } else { f.len() }, got })
        );
    }

    #[test]
    fn bytes_after_a_frame_are_counted_as_trailing(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        extra in proptest::collection::vec(any::<u8>(), 1..50),
    ) {
        let mut f = valid_frame(3, payload, 1, "output_stream_data");
        f.extend_from_slice(&extra);
        prop_assert_eq!(Message::decode(&f), Err(DecodeError::TrailingBytes(extra.len())));
    }

    #[test]
    fn a_mutated_frame_that_decodes_carries_the_bytes_it_declares(
        payload in proptest::collection::vec(any::<u8>(), 1..300),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut f = valid_frame(3, payload, 1, "output_stream_data");
        for (at, val) in flips {
            let i = at.index(f.len());
            f[i] = val;
        }
        if let Ok(m) = Message::decode(&f) {
            let hl = u32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
            prop_assert_eq!(m.payload.as_ref(), &f[hl + 4..]);
            if !matches!(m.message_type, MessageType::StartPublication | MessageType::PausePublication)
                && !m.payload.is_empty()
            {
                let digest = Sha256::digest(&m.payload);
                prop_assert_eq!(digest.as_slice(), &f[80..112]);
            }
        }
    }

    #[test]
    fn header_lengths_out_of_range_are_refused_without_allocating(hl in any::<u32>()) {
        prop_assume!(!(112..=1024).contains(&hl));
        let f = header(hl, 0);
        let (parsed, largest) = largest_alloc(|| Message::parse(&f));
        prop_assert_eq!(parsed, Err(DecodeError::HeaderLength(hl)));
        prop_assert_eq!(largest, 0);
    }

    #[test]
    fn payload_lengths_over_the_cap_are_refused_without_allocating(pl in any::<u32>()) {
        let f = header(116, pl);
        let (parsed, largest) = largest_alloc(|| Message::parse(&f));
        if pl as usize > MAX_PAYLOAD_LEN {
            prop_assert_eq!(parsed, Err(DecodeError::PayloadLength(pl)));
        } else if pl > 0 {
            prop_assert_eq!(parsed, Ok(None));
        }
        prop_assert!(largest < 1024, "parse allocated {} bytes", largest);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn channel_survives_arbitrary_frame_sequences(
        ops in proptest::collection::vec(
            prop_oneof![
                (any::<i64>(), proptest::collection::vec(any::<u8>(), 0..64), 0u32..14,
                 prop_oneof![Just("output_stream_data"), Just("input_stream_data"), Just("acknowledge"),
                             Just("channel_closed"), Just("pause_publication"), Just("start_publication"), Just("bogus")])
                    .prop_map(|(s, p, t, m)| (0u8, valid_frame(s.rem_euclid(64), p, t, m))),
                proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (1u8, b)),
                (0u64..3000).prop_map(|ms| (2u8, ms.to_be_bytes().to_vec())),
                proptest::collection::vec(any::<u8>(), 0..5000).prop_map(|b| (3u8, b)),
            ],
            0..60),
        agent in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut cfg = Config::new(if agent { Role::Agent } else { Role::Client });
        cfg.send_buffer = 16 * 1024;
        cfg.reorder_buffer = 8 * 1024;
        cfg.ready_buffer = 8 * 1024;
        let mut ch = Channel::new(cfg.clone(), now);
        let mut out = [0u8; 4096];
        for (kind, bytes) in ops {
            match kind {
                0 | 1 => { let _ = ch.handle_frame(now, &bytes); }
                2 => {
                    let ms = u64::from_be_bytes(bytes.try_into().unwrap());
                    now += Duration::from_millis(ms);
                    ch.handle_timeout(now);
                }
                _ => { let _ = ch.write(now, &bytes); }
            }
            while ch.poll_transmit().is_some() {}
            while ch.poll_event().is_some() {}
            if kind == 1 { let _ = ch.read(&mut out); }
            prop_assert!(ch.buffered_send_bytes() <= cfg.send_buffer + 1024);
            prop_assert!(ch.reorder_bytes() <= cfg.reorder_buffer);
            if let Some(t) = ch.poll_timeout() { prop_assert!(t >= t0); }
        }
    }
}
