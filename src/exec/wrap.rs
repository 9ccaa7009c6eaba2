//! The command line each `exec` mode asks the agent to run (the `command` parameter of the
//! session document). The agent splits a NonInteractiveCommands command into words (shlex)
//! and runs it without a shell, and runs an InteractiveCommands command as `sh -c <command>`
//! in a pty (§8, §12). So the user's words are joined with spaces, as `ssh host cmd…` does,
//! and then read by a POSIX `sh` on the target in every mode but `--raw`.

use super::marker::Token;

/// `s` as one single-quoted shell word (also one shlex word: shlex reads `'\''` the same way).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The user's command words as one shell command line (`ssh`'s rule: joined with spaces).
pub fn user_command(words: &[String]) -> String {
    words.join(" ")
}

/// The script that runs `user` and then prints the exit marker with its status.
///
/// The EXIT trap is set on its own line first, so the marker is printed whatever the command
/// does: it fails, calls `exit`, or has a syntax error (the shell parses the user's line only
/// after the trap is in place). Only `exec` replacing the shell or a signal killing it lose the
/// status, which the client then reports as unknown.
pub fn marked_script(user: &str, token: &Token) -> String {
    let action = format!("printf '\\n{}%d\\n' \"$?\"", token.tag());
    format!("trap {} EXIT\n{user}", sh_quote(&action))
}

/// NonInteractiveCommands with a separate-output document: a shell, no marker (the agent
/// reports the status itself).
pub fn separate(user: &str) -> String {
    format!("sh -c {}", sh_quote(user))
}

/// NonInteractiveCommands with AWS's document: a shell and the exit marker.
pub fn merged(user: &str, token: &Token) -> String {
    format!("sh -c {}", sh_quote(&marked_script(user, token)))
}

/// `-t`: InteractiveCommands already runs `sh -c`, so the script itself, after setting the
/// pty to the local terminal's `size` (columns, rows). The agent starts the command at once,
/// so a Size payload can arrive after the command read its size; `stty` first cannot.
pub fn tty(user: &str, token: &Token, size: Option<(u16, u16)>) -> String {
    let script = marked_script(user, token);
    match size {
        Some((cols, rows)) => format!("stty cols {cols} rows {rows} 2>/dev/null\n{script}"),
        None => script,
    }
}

/// `-i`: InteractiveCommands whose pty is made raw and silent, then `ready` tells the client
/// to send framed stdin, which `sed` unframes up to the end line and `base64 -d` decodes into
/// the command's stdin. The marked script is the pipeline's last member, so the exit marker
/// is printed as soon as the command exits, even while `sed` still waits for the end line
/// (the client then sends it, and the shell ends).
pub fn stdin(user: &str, token: &Token) -> String {
    let tag = token.tag();
    format!(
        "stty raw -echo && printf '\\n{tag}ready\\n' && sed -n '/^{tag}eof$/q;p' | base64 -d | sh -c {}",
        sh_quote(&marked_script(user, token))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::marker::{Event, LineEnd, MarkerFilter};
    use std::process::Command;

    /// Runs `script` with the local `sh`, as the agent runs it with the target's.
    fn sh(script: &str) -> (Vec<u8>, Option<i32>) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        let mut all = out.stdout;
        all.extend_from_slice(&out.stderr);
        (all, out.status.code())
    }

    fn filtered(raw: &[u8], t: &Token) -> (Vec<u8>, Vec<Event>) {
        let mut f = MarkerFilter::new(t, LineEnd::Lf);
        let (mut out, mut ev) = (Vec::new(), Vec::new());
        f.feed(raw, &mut out, &mut ev);
        f.finish(&mut out);
        (out, ev)
    }

    #[test]
    fn a_tty_command_starts_at_the_local_terminals_size() {
        let t = Token::random();
        let cmd = tty("true", &t, Some((132, 43)));
        assert!(
            cmd.starts_with("stty cols 132 rows 43 2>/dev/null\ntrap "),
            "{cmd}"
        );
        assert_eq!(tty("true", &t, None), marked_script("true", &t));
    }

    #[test]
    fn quoting_survives_single_quotes_and_newlines() {
        let word = "it's \"quoted\" $HOME\nline2";
        let (out, code) = sh(&format!("printf %s {}", sh_quote(word)));
        assert_eq!((out, code), (word.as_bytes().to_vec(), Some(0)));
    }

    #[test]
    fn the_marked_script_reports_failures_exit_and_syntax_errors() {
        let t = Token::random();
        for (user, want_out, want) in [
            ("printf out; false", &b"out"[..], 1u8),
            ("echo hi; exit 42", b"hi\n", 42),
            ("true # a comment", b"", 0),
        ] {
            let (raw, _) = sh(&marked_script(user, &t));
            let (out, ev) = filtered(&raw, &t);
            assert_eq!(
                (out.as_slice(), ev),
                (want_out, vec![Event::Exit(want)]),
                "{user}"
            );
        }
        let (raw, _) = sh(&marked_script("if then fi", &t));
        let (_, ev) = filtered(&raw, &t);
        assert!(
            matches!(ev.as_slice(), [Event::Exit(c)] if *c != 0),
            "{ev:?}"
        );
    }
}
