use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::frame::{encode, parse, HEADER_LEN};
use super::*;

fn session() -> (Session, Instant) {
    let t0 = Instant::now();
    (Session::client(Config::default(), t0), t0)
}

/// The frames the agent's smux server would send.
fn agent(frames: &[(Cmd, u32, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (cmd, id, data) in frames {
        encode(&mut v, *cmd, *id, data);
    }
    v
}

/// Splits `wire` into frames, for checking what a session sent.
fn frames(wire: &[u8]) -> Vec<(Cmd, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = wire;
    while let Some((h, len)) = parse(rest).unwrap() {
        out.push((h.cmd, h.stream, rest[HEADER_LEN..len].to_vec()));
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "trailing partial frame");
    out
}

fn drain(s: &mut Session, id: u32) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(id, &mut buf);
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn client_streams_are_odd_from_three_and_open_with_syn() {
    let (mut s, t) = session();
    assert_eq!(s.open(t).unwrap(), 3);
    assert_eq!(s.open(t).unwrap(), 5);
    assert_eq!(s.open(t).unwrap(), 7);
    assert_eq!(
        s.pending_output(),
        [1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]
    );
}

#[test]
fn writes_are_cut_at_max_frame_size() {
    let (mut s, t) = session();
    let id = s.open(t).unwrap();
    s.advance_output(usize::MAX);
    assert_eq!(s.write(t, id, &vec![7; 70_000]).unwrap(), 70_000);
    let sizes: Vec<usize> = frames(s.pending_output())
        .iter()
        .map(|f| f.2.len())
        .collect();
    assert_eq!(sizes, [32768, 32768, 4464]);
}

#[test]
fn write_takes_only_what_the_output_buffer_holds() {
    let (mut s, t) = session();
    let id = s.open(t).unwrap();
    let mut total = 0;
    loop {
        let n = s.write(t, id, &[1; 10_000]).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(s.pending_output().len() <= Config::default().max_output);
    assert!(total > 200_000, "took only {total}");
    s.advance_output(100_000);
    assert!(s.write(t, id, &[1; 10_000]).unwrap() > 0, "room came back");
}

#[test]
fn fin_is_a_half_close_in_both_directions() {
    let (mut s, t) = session();
    let id = s.open(t).unwrap();
    s.finish(t, id).unwrap();
    assert_eq!(s.write(t, id, b"x"), Err(SessionError::AlreadyFinished(id)));
    // The agent still answers after our FIN.
    s.handle_input(&agent(&[(Cmd::Psh, id, b"reply"), (Cmd::Fin, id, b"")]))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::Readable(id)));
    assert_eq!(s.poll_event(), Some(Event::Finished(id)));
    assert!(!s.at_eof(id), "buffered bytes come before end of file");
    assert_eq!(drain(&mut s, id), b"reply");
    assert!(s.at_eof(id));
    assert_eq!(
        s.open_streams(),
        0,
        "a stream closed both ways is forgotten"
    );
}

#[test]
fn connect_error_fails_the_one_stream_still_opening() {
    let (mut s, t) = session();
    let ok = s.open(t).unwrap();
    s.handle_input(&agent(&[(Cmd::Psh, ok, b"banner")]))
        .unwrap();
    let bad = s.open(t).unwrap();
    s.connect_error();
    assert_eq!(s.poll_event(), Some(Event::Readable(ok)));
    assert_eq!(s.poll_event(), Some(Event::ConnectFailed(bad)));
    assert_eq!(
        drain(&mut s, ok),
        b"banner",
        "the answered stream is untouched"
    );
    assert_eq!(s.write(t, bad, b"x"), Err(SessionError::UnknownStream(bad)));
}

#[test]
fn connect_error_among_several_opening_streams_waits_for_the_agents_fin() {
    let (mut s, t) = session();
    let a = s.open(t).unwrap();
    let b = s.open(t).unwrap();
    s.connect_error();
    assert_eq!(s.poll_event(), None, "not yet known which stream failed");
    s.handle_input(&agent(&[(Cmd::Fin, b, b""), (Cmd::Psh, a, b"hi")]))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::ConnectFailed(b)));
    assert_eq!(s.poll_event(), Some(Event::Readable(a)));
}

#[test]
fn a_fin_without_a_pending_error_is_a_plain_end_of_stream() {
    let (mut s, t) = session();
    let a = s.open(t).unwrap();
    s.handle_input(&agent(&[(Cmd::Fin, a, b"")])).unwrap();
    assert_eq!(s.poll_event(), Some(Event::Finished(a)));
}

#[test]
fn a_slow_local_reader_stops_input_and_memory_stays_bounded() {
    let (mut s, t) = session();
    let slow = s.open(t).unwrap();
    let cfg = Config::default();
    let chunk = agent(&[(Cmd::Psh, slow, &[0u8; 30_000])]);
    let mut fed = 0usize;
    let mut pending = Vec::new();
    for _ in 0..400 {
        pending.extend_from_slice(&chunk);
        let n = s.handle_input(&pending).unwrap();
        pending.drain(..n);
        fed += n;
    }
    assert_eq!(s.input_room(), 0, "input stops while the reader is away");
    assert!(fed <= cfg.max_stream_buffer + chunk.len(), "took {fed}");
    let got = drain(&mut s, slow).len();
    assert!(got >= cfg.max_stream_buffer);
    assert!(s.input_room() > 0, "reading makes room again");
}

#[test]
fn another_version_breaks_the_session_for_good() {
    let (mut s, t) = session();
    s.open(t).unwrap();
    let e = s.handle_input(&[2, 2, 0, 0, 3, 0, 0, 0]).unwrap_err();
    assert_eq!(e, SessionError::Frame(FrameError::BadVersion(2)));
    assert!(s.open(t).is_err());
    assert!(s.handle_input(&agent(&[(Cmd::Nop, 0, b"")])).is_err());
}

#[test]
fn data_for_a_closed_or_unknown_stream_is_discarded() {
    let (mut s, t) = session();
    let a = s.open(t).unwrap();
    s.close(t, a);
    s.handle_input(&agent(&[
        (Cmd::Psh, a, b"late"),
        (Cmd::Psh, 99, b"x"),
        (Cmd::Syn, 2, b""),
    ]))
    .unwrap();
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.open_streams(), 0);
    assert_eq!(s.input_room(), Config::default().max_receive);
}

#[test]
fn closing_a_stream_sends_fin_once_and_frees_its_buffer() {
    let (mut s, t) = session();
    let a = s.open(t).unwrap();
    s.handle_input(&agent(&[(Cmd::Psh, a, &[5; 1000])]))
        .unwrap();
    s.finish(t, a).unwrap();
    s.close(t, a);
    let fins = frames(s.pending_output())
        .iter()
        .filter(|f| f.0 == Cmd::Fin)
        .count();
    assert_eq!(fins, 1);
    assert_eq!(s.input_room(), Config::default().max_receive);
}

#[test]
fn nops_are_sent_only_with_keepalive_on_and_only_when_idle() {
    let (mut quiet, t) = session();
    quiet.handle_timeout(t + Duration::from_secs(60));
    assert!(quiet.pending_output().is_empty());
    assert_eq!(quiet.poll_timeout(), None);

    let cfg = Config {
        keepalive: Some(KEEPALIVE_INTERVAL),
        ..Config::default()
    };
    let mut s = Session::client(cfg, t);
    assert_eq!(s.poll_timeout(), Some(t + KEEPALIVE_INTERVAL));
    s.handle_timeout(t + Duration::from_secs(5));
    assert!(s.pending_output().is_empty(), "not idle long enough");
    s.handle_timeout(t + KEEPALIVE_INTERVAL);
    assert_eq!(frames(s.pending_output()), [(Cmd::Nop, 0, vec![])]);
}

/// Moves everything `from` has to send into `to`.
fn pump(from: &mut Session, to: &mut Session) {
    let out = from.pending_output().to_vec();
    let n = to.handle_input(&out).unwrap();
    from.advance_output(n);
}

#[test]
fn a_server_accepts_client_streams_and_both_half_close() {
    let (mut c, t) = session();
    let mut srv = Session::server(Config::default(), t);
    let id = c.open(t).unwrap();
    c.write(t, id, b"ping").unwrap();
    c.finish(t, id).unwrap();
    pump(&mut c, &mut srv);
    assert_eq!(srv.poll_event(), Some(Event::Accepted(id)));
    assert_eq!(srv.poll_event(), Some(Event::Readable(id)));
    assert_eq!(srv.poll_event(), Some(Event::Finished(id)));
    assert_eq!(drain(&mut srv, id), b"ping");
    srv.write(t, id, b"pong").unwrap();
    srv.finish(t, id).unwrap();
    pump(&mut srv, &mut c);
    assert_eq!(drain(&mut c, id), b"pong");
    assert!(c.at_eof(id));
    assert_eq!((c.open_streams(), srv.open_streams()), (0, 0));
    assert_eq!(srv.open(t), Err(SessionError::ServerOpens));
}

#[test]
fn a_server_refuses_streams_past_its_backlog_with_fin() {
    let (mut c, t) = session();
    let mut srv = Session::server(Config::default(), t);
    for _ in 0..=MAX_STREAMS {
        c.open(t).unwrap();
    }
    pump(&mut c, &mut srv);
    assert_eq!(srv.open_streams(), MAX_STREAMS);
    pump(&mut srv, &mut c);
    let last = 1 + 2 * (MAX_STREAMS as u32 + 1);
    let finished: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(finished, [Event::Finished(last)]);
}

#[test]
fn a_client_ignores_syn_from_the_agent() {
    let (mut c, _) = session();
    c.handle_input(&agent(&[(Cmd::Syn, 2, b"")])).unwrap();
    assert_eq!((c.poll_event(), c.open_streams()), (None, 0));
}

proptest! {
    /// Frames arrive cut at arbitrary data-channel message boundaries; every stream still
    /// gets exactly its bytes, in order, then its end of file.
    #[test]
    fn frames_cut_anywhere_reassemble_exactly(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..12),
        cuts in proptest::collection::vec(1usize..2500, 1..64),
    ) {
        let (mut s, t) = session();
        let ids = [s.open(t).unwrap(), s.open(t).unwrap(), s.open(t).unwrap()];
        let mut wire = Vec::new();
        let mut want: [Vec<u8>; 3] = Default::default();
        for (i, p) in payloads.iter().enumerate() {
            encode(&mut wire, Cmd::Psh, ids[i % 3], p);
            want[i % 3].extend_from_slice(p);
        }
        for id in ids {
            encode(&mut wire, Cmd::Fin, id, b"");
        }
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + c).min(wire.len());
            prop_assert_eq!(s.handle_input(&wire[at..end]).unwrap(), end - at);
            at = end;
        }
        for (k, id) in ids.iter().enumerate() {
            prop_assert_eq!(&drain(&mut s, *id), &want[k]);
            prop_assert!(s.at_eof(*id));
        }
    }

    /// Hostile input: never a panic, and never more held than the limits allow.
    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (mut s, t) = session();
        s.open(t).unwrap();
        let _ = s.handle_input(&data);
        prop_assert!(s.input_room() <= Config::default().max_receive);
        while s.poll_event().is_some() {}
    }
}
