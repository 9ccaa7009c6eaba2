//! The ExitCode payload (type 12) the agent sends for a NonInteractiveCommands session whose
//! document sets `separateOutputStream` (§8, §12): ASCII text `EXIT_CODE: <n>`, where `n` is
//! Go's `ExitCode()` (-1 for a command killed by a signal).

/// The longest payload accepted (`EXIT_CODE: ` and a 64-bit integer, with room to spare).
pub const MAX_LEN: usize = 64;

/// An ExitCode payload that is not `EXIT_CODE: <integer>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitCodeError {
    #[error("the agent's exit code payload is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("the agent's exit code payload is not `EXIT_CODE: <number>` ({0})")]
    Malformed(String),
}

/// Parses `EXIT_CODE: <n>` (surrounding whitespace allowed).
pub fn parse(payload: &[u8]) -> Result<i64, ExitCodeError> {
    if payload.len() > MAX_LEN {
        return Err(ExitCodeError::TooLong);
    }
    let shown = || crate::printable::Printable(&String::from_utf8_lossy(payload)).to_string();
    let text = std::str::from_utf8(payload).map_err(|_| ExitCodeError::Malformed(shown()))?;
    let n = text
        .trim()
        .strip_prefix("EXIT_CODE:")
        .map(str::trim_start)
        .filter(|n| {
            let digits = n.strip_prefix('-').unwrap_or(n);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or_else(|| ExitCodeError::Malformed(shown()))?;
    n.parse().map_err(|_| ExitCodeError::Malformed(shown()))
}

/// The local process exit code for a remote status: 0–255 as is; anything else (-1 for a
/// command killed by a signal) is 255, never a success.
pub fn process_code(status: i64) -> u8 {
    u8::try_from(status).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_agents_exit_code_text_parses() {
        assert_eq!(parse(b"EXIT_CODE: 0"), Ok(0));
        assert_eq!(parse(b"EXIT_CODE: 42"), Ok(42));
        assert_eq!(parse(b"EXIT_CODE: -1\n"), Ok(-1));
        assert_eq!(parse(b"EXIT_CODE:3"), Ok(3));
    }

    #[test]
    fn hostile_exit_code_payloads_are_errors() {
        for bad in [
            &b""[..],
            b"EXIT_CODE: ",
            b"EXIT_CODE: x",
            b"EXIT_CODE: 1 2",
            b"EXIT_CODE: --1",
            b"EXIT_CODE: +1",
            b"exit_code: 1",
            b"EXIT_CODE: 99999999999999999999",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse(&[b'1'; 65]), Err(ExitCodeError::TooLong));
    }

    #[test]
    fn statuses_outside_a_byte_exit_255() {
        assert_eq!(process_code(0), 0);
        assert_eq!(process_code(42), 42);
        assert_eq!(process_code(255), 255);
        assert_eq!(process_code(256), 255);
        assert_eq!(process_code(-1), 255);
    }

    proptest! {
        #[test]
        fn arbitrary_exit_code_payloads_never_panic(b in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse(&b);
        }
    }
}
