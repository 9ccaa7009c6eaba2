//! `doctor [TARGET]`: runs the checks of [`crate::doctor`] and prints one line per check (or
//! one JSON object with `--json`). Exits 0 when nothing failed (warnings allowed), else with
//! the first failed check's code from the exit-code table.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::GlobalArgs;
use crate::doctor::{self, Inputs};
use crate::exit::StdoutError;

/// Shown under `doctor --help`.
const ORDER: &str = "Checks, in order: config, region, credentials, endpoint, perm-describe, \
documents, perm-sessions, target, agent, master, upstreams, ssh. Each prints ok, warn, FAIL or \
skip, and a fix under every FAIL and warn. A bad config file fails `config` and the other \
checks run without it; no running master is a warning. Exit status: 0 unless a check failed, \
else the code (see below) of the first failed check.";

#[derive(Debug, Clone, Args)]
#[command(after_help = ORDER)]
pub struct DoctorArgs {
    /// Also check this target as `stdio` resolves it (instance id, Name tag, IP address,
    /// computer name or `hosts:` alias): online, agent version, platform.
    pub target: Option<String>,
    /// Print one JSON object {"ok": bool, "checks": [{name, status, detail, fix}]} instead of
    /// the text.
    #[arg(long)]
    pub json: bool,
    /// AWS profile (default: the alias's, the config's `aws.profile`, else AWS_PROFILE or the
    /// default).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: the alias's, the config's `aws.region`, else AWS_REGION or the
    /// profile's).
    #[arg(long)]
    pub region: Option<String>,
}

pub async fn run(g: &GlobalArgs, a: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = doctor::run(&Inputs {
        config: g.config.clone(),
        control_socket: g.control_socket.clone(),
        profile: a.profile,
        region: a.region,
        target: a.target,
    })
    .await;
    let text = if a.json {
        report.to_json()
    } else {
        report.to_text()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(StdoutError::from)?;
    report.into_result()?;
    Ok(ExitCode::SUCCESS)
}
