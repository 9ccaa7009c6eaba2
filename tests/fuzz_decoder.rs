//! Property tests standing in for a fuzzer in CI: the decoder and the channel take arbitrary
//! input without panicking, hanging or allocating beyond the caps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use session_proxy::ssm::channel::{Channel, Config, Role};
use session_proxy::ssm::message::{Message, MessageType, PayloadType, MAX_FRAME_LEN};
use uuid::Uuid;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&data);
        if let Ok(Some((_, used))) = Message::parse(&data) {
            prop_assert!(used <= data.len());
        }
    }

    #[test]
    fn decoder_rejects_or_accepts_mutated_valid_frames(
        payload in proptest::collection::vec(any::<u8>(), 1..300),
        flips in proptest::collection::vec((0usize..420, any::<u8>()), 1..6),
    ) {
        let mut f = valid_frame(3, payload, 1, "output_stream_data");
        for (pos, val) in flips {
            let n = f.len();
            f[pos % n] = val;
        }
        match Message::decode(&f) {
            Ok(m) => prop_assert!(m.encoded_len() <= MAX_FRAME_LEN),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn huge_declared_lengths_are_refused_before_allocating(hl in any::<u32>(), pl in any::<u32>()) {
        let mut f = vec![0u8; 124];
        f[0..4].copy_from_slice(&hl.to_be_bytes());
        f[116..120].copy_from_slice(&pl.to_be_bytes());
        // Either needs more (nothing consumed) or a typed error; never a giant allocation.
        let _ = Message::parse(&f);
        let _ = Message::decode(&f);
    }

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
