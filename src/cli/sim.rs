//! `sim`: runs the simulator on loopback until SIGINT/SIGTERM, printing `eval`-able
//! environment lines once ready and per-session stats on exit. Without `--target` or
//! `--instances` it runs the built-in demo instance ([`crate::sim::demo`]), so it works on a
//! machine with no sshd.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use super::GlobalArgs;
use crate::exit::{StdoutError, UsageError};
use crate::sim::agent::AgentKnobs;
use crate::sim::demo::{self, Demo};
use crate::sim::faults::{DirFaults, FaultPlan};
use crate::sim::{instances, Sim, SimOptions};

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// An instance: `i-0123456789abcdef0=127.0.0.1:2222[,name=web,ip=10.0.0.5,computer=host,offline,agent=3.3.987.0,host=db.internal@127.0.0.1]`.
    /// `host=NAME@LOOPBACK-IP` (repeatable) names a host the instance reaches, for
    /// AWS-StartPortForwardingSessionToRemoteHost.
    #[arg(long = "target", value_name = "SPEC")]
    pub targets: Vec<String>,
    /// YAML file listing instances.
    #[arg(long, value_name = "FILE")]
    pub instances: Option<PathBuf>,
    /// Milliseconds the agent sleeps per chunk read (1 imitates the real agent's ~1 MB/s).
    #[arg(long, default_value_t = 0)]
    pub pace_ms: u64,
    /// Bytes per agent output message.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub chunk: u32,
    /// AgentVersion to report in the handshake (default: each instance's).
    #[arg(long)]
    pub agent_version: Option<String>,
    /// Imitate agents that skip the handshake.
    #[arg(long)]
    pub legacy_agent: bool,
    /// Bytes per second the agent writes to its target at most; it acknowledges client data
    /// only once written, so e.g. 7000000 gives the real agent's late acks during uploads.
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub write_rate: Option<u64>,
    /// Lose the first acknowledge of every Nth agent message (the real agent's send/ack race).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub ack_race_every: Option<u32>,
    /// KMS key ARN: shell sessions (never port sessions) are then encrypted with it, as with
    /// a KMS key in the Session Manager preferences; the simulator answers the KMS calls.
    #[arg(long, value_name = "ARN")]
    pub kms_key_id: Option<String>,
    /// What a shell session (SSM-SessionManagerRunShell) runs in its pty on every instance;
    /// a command with arguments runs through `sh -c`.
    #[arg(long, value_name = "CMD", default_value = "sh")]
    pub shell_command: String,
    /// Seed of the fault plan (printed so a failure can be replayed).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Drop rate (0..1) of frames in both directions.
    #[arg(long, default_value_t = 0.0)]
    pub drop: f64,
    /// Duplicate rate (0..1) of frames in both directions.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// Reorder rate (0..1) of frames in both directions.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Extra delay in milliseconds for every frame.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Close the client's WebSocket (code 1000) after this many bytes, repeatedly.
    #[arg(long)]
    pub kill_after_bytes: Option<u64>,
    /// Close the client's WebSocket (code 1000) every this many seconds.
    #[arg(long)]
    pub kill_every_secs: Option<u64>,
    /// Refuse (HTTP 403) data-channel upgrades that are not SigV4-signed with the simulator's
    /// credentials (the ones its environment lines print). Without it both forms are accepted
    /// (and counted in the stats).
    #[arg(long)]
    pub require_signed_upgrade: bool,
    /// Mint credentials that expire after SECS on `GET /_sim/credentials` (credential_process
    /// JSON, e.g. `credential_process = curl -s http://ADDR/_sim/credentials`) and accept only
    /// those: an unknown key is UnrecognizedClientException, an expired one
    /// ExpiredTokenException. Tests refreshes of expiring credentials.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub credential_lifetime: Option<u64>,
    /// Answer this IAM action with AccessDenied, as an account whose policy lacks it would
    /// (repeatable): `ssm:StartSession`, `ssm:DescribeInstanceInformation`, `kms:Decrypt`,
    /// `tag:GetResources`.
    #[arg(long, value_name = "SERVICE:OPERATION", value_parser = parse_action)]
    pub deny: Vec<String>,
    /// Seconds a session may wait for its client to resume before it is closed.
    #[arg(long, default_value_t = 1200)]
    pub idle_timeout_secs: u64,
    /// Write per-session stats (JSON) here on exit.
    #[arg(long, value_name = "FILE")]
    pub stats_file: Option<PathBuf>,
    /// Directory for the demo instance's keys (default: $XDG_STATE_HOME/session-proxy/demo).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

fn rate(name: &str, v: f64) -> Result<f64, UsageError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(UsageError::Usage(format!(
            "--{name} must be between 0 and 1, got {v}"
        )))
    }
}

impl SimArgs {
    pub fn options(&self) -> anyhow::Result<SimOptions> {
        if !self.listen.ip().is_loopback() {
            return Err(UsageError::Usage(format!("--listen {} is not a loopback address; the simulator only serves 127.0.0.0/8 or ::1", self.listen)).into());
        }
        let mut list = Vec::new();
        if let Some(p) = &self.instances {
            list.extend(instances::load_file(p)?);
        }
        for t in &self.targets {
            list.push(
                instances::parse_target_flag(t)
                    .map_err(|e| UsageError::Usage(format!("--target {t}: {e}")))?,
            );
        }
        let dir = DirFaults {
            drop: rate("drop", self.drop)?,
            duplicate: rate("duplicate", self.duplicate)?,
            reorder: rate("reorder", self.reorder)?,
            delay: Duration::from_millis(self.delay_ms),
        };
        Ok(SimOptions {
            instances: list,
            knobs: AgentKnobs {
                pace: (self.pace_ms > 0).then(|| Duration::from_millis(self.pace_ms)),
                chunk: self.chunk as usize,
                legacy: self.legacy_agent,
                agent_version: self.agent_version.clone(),
                write_rate: self.write_rate,
                ack_race_every: self.ack_race_every,
                kms_key_id: self.kms_key_id.clone(),
                shell_command: self.shell_command.clone(),
            },
            faults: FaultPlan {
                seed: self.seed,
                to_agent: dir,
                to_client: dir,
                kill_after_bytes: self.kill_after_bytes,
                kill_every: self.kill_every_secs.map(Duration::from_secs),
            },
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            require_signed_upgrade: self.require_signed_upgrade,
            credential_lifetime: self.credential_lifetime.map(Duration::from_secs),
            deny: self.deny.clone(),
            pushed_keys: Default::default(),
        })
    }
}

/// An IAM action as `--deny` takes it: `service:Operation`, both parts non-empty.
fn parse_action(s: &str) -> Result<String, String> {
    match s.split_once(':') {
        Some((svc, op)) if !svc.is_empty() && !op.is_empty() && !op.contains(':') => {
            Ok(s.to_owned())
        }
        _ => Err(format!(
            "expected an IAM action SERVICE:OPERATION such as ssm:StartSession, got `{s}`"
        )),
    }
}

pub async fn run(_g: &GlobalArgs, a: SimArgs) -> anyhow::Result<ExitCode> {
    let mut opts = a.options()?;
    let demo = if opts.instances.is_empty() {
        let dir = a.state_dir.clone().unwrap_or_else(demo::default_dir);
        let d = Demo::start(&dir).await?;
        opts.instances.push(d.instance());
        opts.pushed_keys = d.pushed_keys();
        eprintln!(
            "# no --target/--instances: running the demo instance {} ({})",
            demo::INSTANCE_NAME,
            demo::INSTANCE_ID
        );
        eprintln!("# demo SSH key: {}", d.files.client_key.display());
        eprintln!("# demo known_hosts: {}", d.files.known_hosts.display());
        eprintln!("# demo page (inside the \"VPC\"): {}", d.web_url());
        Some(d)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let sim = Sim::start(listener, opts.clone())?;
    // Handlers go in before the env lines announce us: a SIGTERM right after must stop us
    // cleanly (with the stats), not kill us with the default action.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    if !opts.faults.is_quiet() {
        eprintln!(
            "# fault plan seed {} (replay with --seed {})",
            opts.faults.seed, opts.faults.seed
        );
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(sim.env_lines().as_bytes())
            .and_then(|()| out.flush())
            .map_err(StdoutError::from)?;
    }
    if let Some(l) = opts.credential_lifetime {
        eprintln!(
            "# credentials expire after {}s; only minted ones work: credential_process = curl -sf {}{}",
            l.as_secs(),
            sim.endpoint_url(),
            crate::sim::credentials::PATH
        );
    }
    for i in &opts.instances {
        eprintln!(
            "# instance {} → {}{}",
            i.id,
            i.address,
            if i.online { "" } else { " (offline)" }
        );
    }
    tokio::select! {
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
    }
    let stats = sim.stats();
    let open = sim.open_sessions();
    let json = serde_json::json!({
        "sessions": stats,
        "open_sessions": open,
        "upgrades": sim.upgrades(),
        "credentials_issued": sim.credentials_issued(),
    });
    let text = serde_json::to_string_pretty(&json)?;
    if let Some(p) = &a.stats_file {
        std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!("{text}");
    sim.shutdown().await;
    if let Some(d) = demo {
        d.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}
