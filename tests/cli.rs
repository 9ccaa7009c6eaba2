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

/// Runs the bash completion function as readline would for `words` (the cursor on the last
/// one) after `source <(session-proxy completions bash)`; returns the candidates.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <({BIN:?} completions bash) || exit 9\n\
         complete -p session-proxy >/dev/null || exit 8\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         _session__proxy session-proxy \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_a_subcommands_options_despite_the_hyphenated_name() {
    let got = bash_complete(&["session-proxy", "serve", "--"]);
    for want in ["--foreground", "--host-key-policy", "--config"] {
        assert!(got.iter().any(|g| g == want), "no {want} in {got:?}");
    }
}

#[test]
fn bash_completes_the_values_of_host_key_policy() {
    let got = bash_complete(&["session-proxy", "serve", "--host-key-policy", ""]);
    assert_eq!(got, ["accept-new", "strict", "off"]);
}

#[test]
fn help_lists_a_commands_own_options_before_the_global_ones() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let own = text.find("--foreground").unwrap();
    let global = text.find("Global options").unwrap();
    assert!(
        own < global && global < text.find("--control-socket").unwrap(),
        "{text}"
    );
}

#[test]
fn help_hides_internal_knobs() {
    let out = Command::new(BIN)
        .args(["stdio", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--document"), "{text}");
    assert!(!text.contains("--chunk"), "{text}");
}
