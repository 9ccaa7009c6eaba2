//! `generate` and `completions`: shell completions and man pages from the one clap definition,
//! so they never drift from the real flags (a test checks the committed copies are current).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clap_complete::{Generator, Shell};

use super::GlobalArgs;
use crate::exit::StdoutError;

/// The name completions are registered for.
const BIN: &str = "session-proxy";

/// Every shell completions are written for.
const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::Elvish,
    Shell::PowerShell,
];

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Directory for completions (bash, zsh, fish, elvish, powershell).
    #[arg(long, default_value = "completions")]
    pub completions: PathBuf,
    /// Directory for man pages.
    #[arg(long, default_value = "man")]
    pub man: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::command(), BIN, &mut out);
    if shell == Shell::Bash {
        out = fix_bash(&String::from_utf8_lossy(&out)).into_bytes();
    }
    out
}

/// Works around clap-rs/clap#6421: for a binary name with a hyphen, clap_complete's bash script
/// switches on `session__subcmd__proxy__subcmd__serve)` but sets `cmd` to
/// `session__proxy__subcmd__serve`, so nothing completes after a subcommand. Both spellings
/// are rewritten to the one `cmd` uses. A script without the bug passes through unchanged.
fn fix_bash(script: &str) -> String {
    let wrong = BIN.replace('-', "__subcmd__");
    let right = BIN.replace('-', "__");
    script.replace(&format!("{wrong}__subcmd__"), &format!("{right}__subcmd__"))
}

/// Writes every generated file; returns the paths written.
pub fn write_all(completions: &Path, man: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    std::fs::create_dir_all(completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    for shell in SHELLS {
        let path = completions.join(shell.file_name(BIN));
        std::fs::write(&path, completion(shell))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    std::fs::create_dir_all(man).with_context(|| format!("creating {}", man.display()))?;
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let names: Vec<String> = pages
        .iter()
        .map(|c| super::manual::page_name(c).to_owned())
        .collect();
    for page in &pages {
        let path = man.join(format!("{}.1", super::manual::page_name(page)));
        let text = super::manual::render(page, &names).context("rendering a man page")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

pub fn run(_g: &GlobalArgs, a: GenerateArgs) -> anyhow::Result<ExitCode> {
    for p in write_all(&a.completions, &a.man)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `completions <shell>`: the script on stdout, for `source <(session-proxy completions bash)`.
pub fn completions(_g: &GlobalArgs, a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(&completion(a.shell))
        .and_then(|()| out.flush())
        .map_err(StdoutError::from)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_script_switches_on_the_names_it_assigns() {
        let script = String::from_utf8(completion(Shell::Bash)).unwrap();
        assert!(
            !script.contains("session__subcmd__proxy"),
            "clap#6421 spelling left"
        );
        assert!(script.contains("cmd=\"session__proxy__subcmd__serve\""));
        assert!(script.contains("        session__proxy__subcmd__serve)"));
    }

    #[test]
    fn fix_bash_leaves_other_text_alone() {
        assert_eq!(fix_bash("session__proxy,serve)"), "session__proxy,serve)");
        assert_eq!(
            fix_bash("session__subcmd__proxy__subcmd__stop)"),
            "session__proxy__subcmd__stop)"
        );
    }
}
