//! `generate`: shell completions and man pages from the one clap definition, so they never
//! drift from the real flags (a test checks the committed copies are current).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

use super::GlobalArgs;

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Directory for completions (bash, zsh, fish, elvish, powershell).
    #[arg(long, default_value = "completions")]
    pub completions: PathBuf,
    /// Directory for man pages.
    #[arg(long, default_value = "man")]
    pub man: PathBuf,
}

/// Writes every generated file; returns the paths written.
pub fn write_all(completions: &Path, man: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    std::fs::create_dir_all(completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = super::command();
        let p = clap_complete::generate_to(shell, &mut cmd, "session-proxy", completions)
            .with_context(|| format!("writing {shell} completions"))?;
        written.push(p);
    }
    std::fs::create_dir_all(man).with_context(|| format!("creating {}", man.display()))?;
    let cmd = super::command();
    clap_mangen::generate_to(cmd, man).context("writing man pages")?;
    for e in std::fs::read_dir(man)?.flatten() {
        written.push(e.path());
    }
    Ok(written)
}

pub fn run(_g: &GlobalArgs, a: GenerateArgs) -> anyhow::Result<ExitCode> {
    for p in write_all(&a.completions, &a.man)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
