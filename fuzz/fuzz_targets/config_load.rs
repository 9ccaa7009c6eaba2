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
            let lines = text.lines().count().max(1);
            if let Some(l) = line {
                assert!(
                    *l >= 1 && *l <= lines + 1,
                    "line {l} outside 1..={}",
                    lines + 1
                );
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
