//! smux v1 client session (`smux::Session`) fed the agent's bytes, cut into messages of the
//! sizes the input chooses.
//!
//! Pinned: no panic; the session never holds more than its limits (`input_room` never grows
//! past `max_receive`, and once every stream is read only a partial frame is held); after a
//! protocol error every later call fails the same way.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use session_proxy::smux::{Config, Event, Session};

fuzz_target!(|data: &[u8]| {
    let cfg = Config { max_receive: 64 * 1024, max_stream_buffer: 16 * 1024, ..Config::default() };
    let t = Instant::now();
    let mut s = Session::client(cfg, t);
    let ids: Vec<u32> = (0..3).filter_map(|_| s.open(t).ok()).collect();
    // The first byte picks the cut size; the rest is the agent's byte stream.
    let Some((&cut, wire)) = data.split_first() else { return };
    let cut = usize::from(cut).max(1);
    let mut buf = [0u8; 8192];
    let mut broken = None;
    for piece in wire.chunks(cut) {
        match s.handle_input(piece) {
            Ok(n) => assert!(n <= piece.len()),
            Err(e) => {
                if let Some(first) = broken {
                    assert_eq!(first, e, "the error changed");
                }
                broken = Some(e);
            }
        }
        assert!(s.input_room() <= cfg.max_receive);
        while let Some(ev) = s.poll_event() {
            if let Event::Readable(id) = ev {
                while s.read(id, &mut buf) > 0 {}
            }
        }
        if piece.first() == Some(&0xff) {
            s.connect_error();
        }
    }
    // Once every stream is read out, only a partial frame (under one header plus 64 KiB) can
    // still hold room.
    for id in ids {
        while s.read(id, &mut buf) > 0 {}
    }
    if broken.is_none() {
        let held = cfg.max_receive - s.input_room();
        assert!(held < 8 + 65_536, "{held} bytes held with every stream read");
    }
});
