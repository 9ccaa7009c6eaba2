use super::*;
use proptest::prelude::*;

fn token() -> Token {
    Token("0123456789abcdef0123456789abcdef".into())
}

/// What the wrapper appends to the command's output.
fn wrapped(output: &[u8], code: u8, le: LineEnd) -> Vec<u8> {
    let mut s = output.to_vec();
    s.extend_from_slice(le.bytes());
    s.extend_from_slice(token().tag().as_bytes());
    s.extend_from_slice(code.to_string().as_bytes());
    s.extend_from_slice(le.bytes());
    s
}

/// Runs the filter over `stream` cut at `cuts` (chunk sizes, cycled).
fn run(stream: &[u8], cuts: &[usize], le: LineEnd) -> (Vec<u8>, Vec<Event>) {
    let mut f = MarkerFilter::new(&token(), le);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let mut rest = stream;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        f.feed(chunk, &mut out, &mut ev);
        assert!(f.held.len() <= f.max_held());
        rest = tail;
    }
    f.finish(&mut out);
    (out, ev)
}

#[test]
fn the_exit_marker_is_stripped_with_exactly_the_newline_the_wrapper_added() {
    for output in [&b"hello\n"[..], b"no newline at the end", b"", b"\n\n"] {
        let (out, ev) = run(&wrapped(output, 42, LineEnd::Lf), &[1000], LineEnd::Lf);
        assert_eq!(out, output);
        assert_eq!(ev, vec![Event::Exit(42)]);
    }
}

#[test]
fn a_pty_marker_ends_its_lines_with_crlf() {
    let (out, ev) = run(&wrapped(b"a\r\nb", 0, LineEnd::CrLf), &[3], LineEnd::CrLf);
    assert_eq!(out, b"a\r\nb");
    assert_eq!(ev, vec![Event::Exit(0)]);
}

#[test]
fn a_marker_with_another_runs_token_passes_through_untouched() {
    let other = b"x\n:session-proxy:ffffffffffffffffffffffffffffffff:3\ny";
    let mut stream = other.to_vec();
    stream.extend_from_slice(b"\n:session-proxy:0123456789abcdef0123456789abcdef:01\n");
    stream.extend_from_slice(b"\n:session-proxy:0123456789abcdef0123456789abcdef:256\n");
    stream.extend_from_slice(b"\n:session-proxy:0123456789abcdef0123456789abcdef:nope\n");
    let (out, ev) = run(&wrapped(&stream, 1, LineEnd::Lf), &[7, 1, 2], LineEnd::Lf);
    assert_eq!(out, stream);
    assert_eq!(ev, vec![Event::Exit(1)]);
}

#[test]
fn ready_is_reported_and_output_after_the_exit_marker_is_kept() {
    let mut stream = b"\n:session-proxy:0123456789abcdef0123456789abcdef:ready\n".to_vec();
    stream.extend_from_slice(&wrapped(b"data", 7, LineEnd::Lf));
    stream.extend_from_slice(b"late background output");
    let (out, ev) = run(&stream, &[5], LineEnd::Lf);
    assert_eq!(out, b"datalate background output");
    assert_eq!(ev, vec![Event::Ready, Event::Exit(7)]);
}

#[test]
fn a_truncated_marker_at_the_end_of_the_stream_is_output() {
    let stream = b"out\n:session-proxy:0123456789abcdef0123456789abcdef:4";
    let (out, ev) = run(stream, &[2], LineEnd::Lf);
    assert_eq!(out, stream);
    assert!(ev.is_empty());
}

/// Output made of pieces that look like markers, so the proptest hits the partial matches.
fn tricky_output() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..20),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n:session-proxy:".to_vec()),
        Just(b"\n:session-proxy:0123456789abcdef".to_vec()),
        Just(b"\n:session-proxy:0123456789abcdef0123456789abcdef:".to_vec()),
        Just(b"\n:session-proxy:0123456789abcdef0123456789abcdef:12".to_vec()),
        Just(b"\n:session-proxy:1123456789abcdef0123456789abcdef:5\n".to_vec()),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest! {
    /// Cutting the wrapped stream anywhere gives back the command's output and its status.
    #[test]
    fn cutting_the_stream_anywhere_gives_the_same_output_and_code(
        output in tricky_output(),
        code in any::<u8>(),
        cuts in prop::collection::vec(1usize..80, 1..40),
        crlf in any::<bool>(),
    ) {
        let le = if crlf { LineEnd::CrLf } else { LineEnd::Lf };
        // Output that by chance holds this run's exact marker (here: glued together from the
        // pieces, or ending in one that the wrapper's newline completes) cannot be told apart.
        let mut probe = output.clone();
        probe.extend_from_slice(le.bytes());
        probe.push(b'x');
        prop_assume!(run(&probe, &[4096], le).1.is_empty());
        let stream = wrapped(&output, code, le);
        let (out, ev) = run(&stream, &cuts, le);
        prop_assert_eq!(out, output);
        prop_assert_eq!(ev, vec![Event::Exit(code)]);
    }

    /// Hostile input never panics, holds back at most one marker, and loses no byte.
    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(
        stream in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(1usize..64, 1..20),
    ) {
        let (out, ev) = run(&stream, &cuts, LineEnd::Lf);
        if ev.is_empty() {
            prop_assert_eq!(out, stream);
        }
    }
}
