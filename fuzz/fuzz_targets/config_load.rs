//! Config loader from YAML text (`config::from_yaml_str`) and what is built from its result.
//!
//! Pinned: any text either loads or fails with a typed error whose position lies inside the
//! text; loading is deterministic; a loaded config diffs empty against itself and its warnings
//! can be computed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_proxy::config::{diff, from_yaml_str, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = from_yaml_str(text, "fuzz.yaml");
    match &first {
        Ok(cfg) => {
            assert!(diff(cfg, cfg).is_empty(), "a config differs from itself");
            let _ = cfg.warnings();
        }
        Err(ConfigError::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            assert!(!message.is_empty(), "syntax error without a message");
            if let Some(l) = line {
                // libyaml reports an error at the end of the stream on the line after the last.
                let last = 2 + yaml_line_breaks(text);
                assert!(*l >= 1 && *l <= last, "line {l} outside 1..={last}");
            }
            if let Some(c) = column {
                assert!(*c >= 1, "column {c} is not 1-based");
            }
        }
        Err(ConfigError::Invalid { issues, .. }) => {
            assert!(!issues.is_empty(), "invalid config with no issue");
            for issue in issues {
                assert!(
                    !issue.message.is_empty(),
                    "issue at {} has no message",
                    issue.path
                );
            }
        }
        Err(other) => panic!("loading text gave a file-system error: {other}"),
    }
    let second = from_yaml_str(text, "fuzz.yaml");
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "loading is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("loading is not deterministic"),
    }
});

/// Line breaks as YAML counts them: CR LF, a lone CR or LF, and NEL, LS and PS (YAML 1.1,
/// which libyaml follows) each end a line. `str::lines` would miss the lone CRs.
fn yaml_line_breaks(text: &str) -> usize {
    let mut chars = text.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                n += 1;
            }
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => n += 1,
            _ => {}
        }
    }
    n
}
