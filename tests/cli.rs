//! The committed completions and man pages match the clap definition (regenerate with
//! `cargo run -- generate`), and the top-level help lists every subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");

fn same_tree(generated: &Path, committed: &Path) {
    for entry in std::fs::read_dir(generated).unwrap() {
        let e = entry.unwrap();
        let name = e.file_name();
        let want = std::fs::read(e.path()).unwrap();
        let have = std::fs::read(committed.join(&name)).unwrap_or_else(|_| {
            panic!(
                "{} missing; run `cargo run -- generate`",
                committed.join(&name).display()
            )
        });
        assert!(
            want == have,
            "{} is stale; run `cargo run -- generate`",
            committed.join(&name).display()
        );
    }
}

#[test]
fn committed_completions_and_man_pages_are_current() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, m) = (tmp.path().join("completions"), tmp.path().join("man"));
    session_proxy::cli::generate::write_all(&c, &m).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    same_tree(&c, &root.join("completions"));
    same_tree(&m, &root.join("man"));
}

#[test]
fn help_lists_the_subcommands_and_goes_to_stdout() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in ["stdio", "sim", "serve", "demo", "route", "generate"] {
        assert!(text.contains(sub), "help lacks {sub}:\n{text}");
    }
}
